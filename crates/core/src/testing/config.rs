//! The sample `elevate.toml` of the tests, and `infra/elevate.toml` with extras.

use crate::config::{Config, Person};

/// What a request of `requester` on `infra_access` grants under the sample config.
///
/// # Panics
/// When `requester` is not a person of the sample config.
pub fn sample_terms(requester: &str) -> crate::model::Terms {
    let config = sample_config();
    crate::model::Terms {
        target: config.flows[0].targets[0].clone(),
        person: config
            .person(requester)
            .unwrap_or_else(|| panic!("no person {requester} in the sample config"))
            .clone(),
    }
}

/// The ARN an IAM user `person` of the sample account signs API calls with.
pub fn iam_arn(person: &Person) -> String {
    format!("arn:aws:iam::123456789012:user/{}", person.iam_user)
}

/// `person` as an authenticated caller, signing as their IAM user.
pub fn caller_of(person: &Person) -> crate::service::Caller<'_> {
    crate::service::Caller::new(person, iam_arn(person))
}

/// The text of [`sample_config`].
pub const SAMPLE_CONFIG: &str = r#"
auditors = ["carol"]

[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[people]]
name = "carol"
iam_user = "carol"
slack_id = "U0CAROL01"
email = "carol@example.com"

[[flows]]
name = "infra_access"
description = "Admin access through SymDemoAdmins"
max_duration = "4h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["bob", "carol", "alice"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"

[[flows]]
name = "custom"
description = "A custom target behind a Lambda function"
durations = ["15m", "1h"]
reason_required = false
allow_self_approval = true

[flows.approvers]
channel = "C0CUSTOM1"
people = ["bob", "carol"]

[[flows.targets]]
name = "db"
type = "lambda"
function_arn = "arn:aws:lambda:us-east-1:123456789012:function:elevate-example-target"
"#;

/// A small valid config: people alice, bob, carol (auditor carol); flow `infra_access`
/// (target `admins` = IAM group `SymDemoAdmins`, max 4h, reason required, approvers
/// bob, carol, alice, no self-approval, pending timeout 30m, channel `C0APPROVALS`); flow
/// `custom` (target `db` = Lambda `elevate-example-target`, durations 15m or 1h, no reason
/// required, approvers bob and carol, self-approval allowed, channel `C0CUSTOM1`).
pub fn sample_config() -> Config {
    match Config::parse(SAMPLE_CONFIG) {
        Ok(config) => config,
        Err(err) => panic!("the sample config is invalid: {err}"),
    }
}
