//! The AWS adapters against a real moto server (one per test, see `elevate_testkit::Moto`).
//! All in one test binary: one link, and the tests run in parallel with unique resource names.
//! They fail when moto cannot be started, never skip.

mod archive;
mod dynamo;
mod iam;
mod identity_center;
mod lambda;
mod scheduler;
mod sessions;

use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::audit::AuditEvent;
use elevate_core::config::{Person, Target, TargetKind};
use elevate_core::machine::{open, NewRequest};
use elevate_core::model::{By, Request, RequestId, Terms};

pub fn person(name: &str, iam_user: &str) -> Person {
    Person {
        name: name.into(),
        iam_user: iam_user.to_owned(),
        slack_id: format!("U{}", name.to_uppercase()),
        email: format!("{name}@example.com"),
    }
}

/// The IAM principal `name` signs API calls with.
pub fn principal_of(name: &str) -> String {
    format!("arn:aws:iam::123456789012:user/{name}")
}

/// `name` approving, denying or revoking through the API.
pub fn by_person(name: &str) -> By {
    By::person(name, principal_of(name))
}

/// elevate's own `component` (escalate, revoke, sweep, ...), run as its function.
pub fn by_system(component: &str) -> By {
    By::system(component, format!("lambda:elevate-{component}"))
}

/// A fresh PENDING request of `requester` opened at `now`, and its creation event.
pub fn new_request(requester: &str, now: DateTime<Utc>) -> (Request, AuditEvent) {
    open(
        RequestId::generate(now),
        NewRequest {
            flow: "infra_access".into(),
            target: "admins".into(),
            requester: requester.into(),
            reason: "incident 42: restart the stuck workers".to_owned(),
            duration: Duration::from_secs(3600),
            pending_timeout: Duration::from_secs(900),
            approvals_required: 1,
            terms: Terms {
                target: Target {
                    name: "admins".into(),
                    kind: TargetKind::IamGroup {
                        group: "SymDemoAdmins".to_owned(),
                        roles: Vec::new(),
                    },
                },
                person: person(requester, requester),
            },
        },
        &principal_of(requester),
        now,
    )
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}
