//! Helpers shared by the core test binaries: fixed times, requests driven into any state through
//! real transitions, and a valid config to edit into invalid ones.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::model::{By, Terms};
use elevate_core::{
    apply, open, Actor, AuditEvent, Command, NewRequest, Person, Request, RequestId, State, Target,
    TargetKind,
};

/// 2023-11-14T22:13:20Z: every test time is an offset from it.
pub const T0: i64 = 1_700_000_000;

pub fn at(offset_secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0 + offset_secs, 0).unwrap()
}

/// Grant duration of the requests built here.
pub const DURATION: Duration = Duration::from_secs(3600);
/// Pending timeout of the requests built here.
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(1800);

pub const REQUESTER: &str = "alice";
pub const APPROVER: &str = "bob";

pub fn request_id(n: u8) -> RequestId {
    format!("0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c{n:02x}")
        .parse()
        .unwrap()
}

/// The AWS account of the principals built here.
pub const ACCOUNT: &str = "123456789012";

/// The terms of the requests built here: `alice` on `admins` of `infra_access`, as [`CONFIG`]
/// describes them.
pub fn terms() -> Terms {
    Terms {
        target: Target {
            name: "admins".into(),
            kind: TargetKind::IamGroup {
                group: "SymDemoAdmins".into(),
                roles: Vec::new(),
            },
        },
        person: Person {
            name: REQUESTER.into(),
            iam_user: REQUESTER.into(),
            slack_id: "U0ALICE".into(),
            email: "alice@example.com".into(),
        },
    }
}

pub fn new_request() -> NewRequest {
    NewRequest {
        flow: "infra_access".into(),
        target: "admins".into(),
        requester: REQUESTER.into(),
        reason: "INC-42: restart the stuck ingest job".into(),
        duration: DURATION,
        pending_timeout: PENDING_TIMEOUT,
        approvals_required: 1,
        terms: terms(),
    }
}

/// The IAM principal a person of the tests signs API calls with.
pub fn principal_of(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// `actor` with the principal behind it: a person's IAM user, or the function of a component.
pub fn by(actor: &Actor) -> By {
    match actor {
        Actor::Person(name) => By::person(name, principal_of(name)),
        Actor::System(component) => By::system(component, format!("lambda:elevate-{component}")),
    }
}

/// A PENDING request opened at `at(0)` and its audit trail so far.
pub fn opened(n: u8) -> (Request, Vec<AuditEvent>) {
    let (request, event) = open(
        request_id(n),
        new_request(),
        &principal_of(REQUESTER),
        at(0),
    );
    (request, vec![event])
}

/// Applies one accepted transition and appends its event; panics if it is refused.
pub fn step(
    (request, mut events): (Request, Vec<AuditEvent>),
    command: Command,
    actor: &Actor,
    when: i64,
) -> (Request, Vec<AuditEvent>) {
    let transition = apply(&request, command.clone(), &by(actor), at(when))
        .unwrap_or_else(|err| panic!("{command:?} by {actor} from {}: {err}", request.state));
    events.push(transition.event);
    (transition.request, events)
}

pub fn person(name: &str) -> Actor {
    Actor::person(name)
}

pub fn system() -> Actor {
    Actor::system("sweep")
}

pub fn approve() -> Command {
    Command::Approve {
        reason: Some("looks right".into()),
    }
}

/// A request driven from PENDING into `state` through the transitions a user would cause, with
/// the audit events of every step.
pub fn request_in(state: State) -> (Request, Vec<AuditEvent>) {
    request_in_chain(1, state)
}

/// Like [`request_in`], for request number `n` (a distinct id).
pub fn request_in_chain(n: u8, state: State) -> (Request, Vec<AuditEvent>) {
    let pending = opened(n);
    let approved = || step(opened(n), approve(), &person(APPROVER), 60);
    let active = || {
        step(
            approved(),
            Command::Activate,
            &Actor::system("escalate"),
            120,
        )
    };
    match state {
        State::Pending => pending,
        State::Approved => approved(),
        State::Active => active(),
        State::Expired => step(
            active(),
            Command::Expire,
            &Actor::system("revoke"),
            120 + 3600,
        ),
        State::Revoked => step(
            active(),
            Command::Revoke {
                reason: Some("done early".into()),
            },
            &person(REQUESTER),
            600,
        ),
        State::Denied => step(
            pending,
            Command::Deny {
                reason: Some("use the read-only flow".into()),
            },
            &person(APPROVER),
            60,
        ),
        State::Cancelled => step(pending, Command::Cancel, &person(REQUESTER), 60),
        State::TimedOut => step(pending, Command::TimeOut, &system(), 1800),
        State::Failed => step(
            approved(),
            Command::Fail {
                error: "AddUserToGroup: AccessDenied".into(),
            },
            &Actor::system("escalate"),
            120,
        ),
    }
}

/// A valid `elevate.toml` with three people and two flows (one IAM group flow without
/// self-approval, one two-target Lambda flow with a duration list, self-approval and a
/// requester list). Tests edit it into the invalid files they need.
pub const CONFIG: &str = r#"auditors = ["carol"]

[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob.smith"
slack_id = "U0BOB"
email = "Bob.Smith@example.com"

[[people]]
name = "carol"
iam_user = "carol"
slack_id = "U0CAROL"
email = "carol@example.com"

[[flows]]
name = "infra_access"
description = "Assume SymDemoEscalated through SymDemoAdmins"
max_duration = "4h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"

[[flows]]
name = "db_access"
durations = ["15m", "1h"]
reason_required = false
allow_self_approval = true
requesters = ["alice", "bob"]

[flows.approvers]
channel = "C0DB"
people = ["alice"]

[[flows.targets]]
name = "read"
type = "lambda"
function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:db-read"

[[flows.targets]]
name = "write"
type = "lambda"
function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:db-write"
"#;

/// [`CONFIG`] with `from` (which must occur exactly once) replaced by `to`.
pub fn config_with(from: &str, to: &str) -> String {
    assert_eq!(
        CONFIG.matches(from).count(),
        1,
        "`{from}` must occur exactly once in the base config"
    );
    CONFIG.replacen(from, to, 1)
}

/// 1-based line of the only occurrence of `needle` in `text`.
pub fn line_of(text: &str, needle: &str) -> usize {
    assert_eq!(
        text.matches(needle).count(),
        1,
        "`{needle}` must occur exactly once"
    );
    let offset = text.find(needle).unwrap();
    text[..offset].matches('\n').count() + 1
}
