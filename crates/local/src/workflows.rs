//! `elevate-local up --workflows` (what `make dev` runs): the elevate.toml the stack serves
//! gets flows that show each workflow rule on the Slack page, and the people they need.
//!
//! The reviewed file (`infra/elevate.toml`) is the one a stack deploys, so the demonstration
//! flows are not written into it: the stack appends them to the copy it serves, as
//! `--identity-center` does with its flow.

/// The people appended: carol approves and is a backup; mia is on call (the example hook's
/// bundled on-call file names her, and a rule of `on_call` approves her).
pub const PEOPLE: [(&str, &str); 2] = [("carol", "U0CAROL01"), ("mia", "U0MIA0001")];

/// The flows appended, each showing one rule.
pub const FLOWS: [(&str, &str); 5] = [
    (
        "two_person",
        "needs two approvers: the Slack message shows 1 of 2",
    ),
    (
        "on_call",
        "a rule approves mia for up to 30m without a person",
    ),
    (
        "hooked",
        "the example hook approves who is on call and routes the rest to C0ONCALL",
    ),
    (
        "urgent",
        "--break-glass: active at once, posted to C0SECURITY, reviewed within 10m",
    ),
    (
        "slow",
        "nobody answers: reminded after 1m, carol asked in C0BACKUP after 2m",
    ),
];

/// The TOML appended to the file served.
pub fn config_section() -> String {
    let mut text = String::from(
        "\n# Added by elevate-local --workflows: flows that show the workflow rules (README, \"Workflow rules\").\n",
    );
    for (name, slack_id) in PEOPLE {
        text.push_str(&format!(
            "\n[[people]]\nname = \"{name}\"\niam_user = \"{name}\"\nslack_id = \"{slack_id}\"\nemail = \"{name}@healthy-health.example\"\n"
        ));
    }
    text.push_str(FLOWS_TOML);
    text
}

const FLOWS_TOML: &str = r#"
[[flows]]
name = "two_person"
description = "Two approvers: a deploy to production"
max_duration = "1h"
approvals_required = 2

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob", "carol"]

[[flows.targets]]
name = "deployers"
type = "iam_group"
group = "SymDemoDeployers"

[[flows]]
name = "on_call"
description = "On-call access: the engineer on call is approved by rule"
max_duration = "1h"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.auto_approve]]
name = "on_call_engineer"
requesters = ["mia"]
max_duration = "30m"

[[flows.targets]]
name = "on_call"
type = "iam_group"
group = "SymDemoOnCall"

[[flows]]
name = "hooked"
description = "On-call access decided by the example hook and its on-call file"
max_duration = "2h"
hook = "arn:aws:lambda:us-east-1:123456789012:function:elevate-example-hook"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "hooked"
type = "iam_group"
group = "SymDemoHooked"

[[flows]]
name = "urgent"
description = "Break-glass: active at once, reviewed by an approver within 10 minutes"
max_duration = "1h"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob", "carol"]

[flows.break_glass]
max_duration = "15m"
channel = "C0SECURITY"
review_within = "10m"

[[flows.targets]]
name = "urgent"
type = "iam_group"
group = "SymDemoUrgent"

[[flows]]
name = "slow"
description = "Reminders: approvers pinged after 1 minute, carol asked as backup after 2"
max_duration = "1h"
pending_timeout = "5m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[flows.reminders]
remind_after = "1m"
backup_after = "2m"
backup_people = ["carol"]
backup_channel = "C0BACKUP"

[[flows.targets]]
name = "slow"
type = "iam_group"
group = "SymDemoSlow"
"#;

#[cfg(test)]
mod tests {
    use elevate_core::config::Config;

    use super::*;

    const REVIEWED: &str = include_str!("../../../infra/elevate.toml");

    #[test]
    fn the_flows_appended_to_the_reviewed_file_show_every_workflow_rule() {
        let config = Config::parse(&format!("{REVIEWED}{}", config_section())).expect("valid");
        for (name, _) in FLOWS {
            assert!(config.flow(name).is_some(), "{name}");
        }
        for (name, _) in PEOPLE {
            assert!(config.person(name).is_some(), "{name}");
        }
        let flow = |name: &str| config.flow(name).expect("flow");
        assert_eq!(flow("two_person").approvals_required, 2);
        assert_eq!(flow("on_call").auto_approve.len(), 1);
        assert!(flow("hooked")
            .hook
            .as_deref()
            .is_some_and(|arn| arn.ends_with(":function:elevate-example-hook")));
        assert!(flow("urgent").break_glass.is_some());
        let reminders = flow("slow").reminders.clone().expect("reminders");
        assert_eq!(reminders.backup_people, ["carol"]);
    }

    #[test]
    fn the_example_hooks_on_call_person_is_a_person_appended() {
        let on_call = include_str!("../../../functions/example-hook/on-call.toml");
        assert!(on_call.contains("people = [\"mia\"]"), "{on_call}");
        assert!(PEOPLE.iter().any(|(name, _)| *name == "mia"));
    }
}
