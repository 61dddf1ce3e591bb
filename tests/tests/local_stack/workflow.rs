//! Workflow rules end to end: a flow that needs two approvers, an auto-approval rule, and
//! extensions of an active grant, driven by the `elevate` CLI and the Slack page, with the
//! membership read from moto's IAM and the steps from the audit trail.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::audit::Action;
use elevate_core::Actor;
use serde_json::Value;

use super::harness::{members, wait_membership, LocalStack, CONFIG};

const WAIT: Duration = Duration::from_secs(30);

/// People only these tests ask as, a flow that needs two of three approvers, a flow whose
/// rule approves mia (for up to 30 minutes of its hour) without a person, a flow that asks the
/// example hook (its on-call file names mia, for up to an hour, and sends everyone else to
/// C0ONCALL), a flow with break-glass (posted to C0SECURITY, reviewed within 20 seconds), a
/// flow whose hook is not deployed, and a flow whose approvers (in C0SLOW) are reminded after 6
/// seconds and whose backup, mia, is asked in C0BACKUP after 12.
const WORKFLOW_EXTRA: &str = r#"
[[people]]
name = "liam"
iam_user = "liam"
slack_id = "U0LIAM001"
email = "liam@healthy-health.example"

[[people]]
name = "mia"
iam_user = "mia"
slack_id = "U0MIA0001"
email = "mia@healthy-health.example"

[[people]]
name = "olivia"
iam_user = "olivia"
slack_id = "U0OLIVIA1"
email = "olivia@healthy-health.example"

[[people]]
name = "noah"
iam_user = "noah"
slack_id = "U0NOAH001"
email = "noah@healthy-health.example"

[[flows]]
name = "two_person"
description = "Deploy to production: two approvers"
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
description = "On-call access: the on-call engineer is approved by rule"
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
description = "Break-glass: active at once, reviewed by an approver within 20 seconds"
max_duration = "1h"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob", "mia"]

[flows.break_glass]
max_duration = "15m"
channel = "C0SECURITY"
review_within = "20s"

[[flows.targets]]
name = "urgent"
type = "iam_group"
group = "SymDemoUrgent"

[[flows]]
name = "broken_hook"
description = "A hook that is not deployed: requests wait for people"
max_duration = "1h"
hook = "arn:aws:lambda:us-east-1:123456789012:function:elevate-no-such-hook"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "broken_hook"
type = "iam_group"
group = "SymDemoBrokenHook"

[[flows]]
name = "slow"
description = "Approvers reminded after 6 seconds; mia asked as backup after 12"
max_duration = "1h"
pending_timeout = "5m"

[flows.approvers]
channel = "C0SLOW"
people = ["alice", "bob"]

[flows.reminders]
remind_after = "6s"
backup_after = "12s"
backup_people = ["mia"]
backup_channel = "C0BACKUP"

[[flows.targets]]
name = "slow"
type = "iam_group"
group = "SymDemoSlow"
"#;

fn stack() -> &'static LocalStack {
    static STACK: OnceLock<LocalStack> = OnceLock::new();
    STACK.get_or_init(|| LocalStack::start_with(&format!("{CONFIG}{WORKFLOW_EXTRA}")))
}

/// Runs `elevate --json request ...` as `profile` and returns the request it made.
fn request(stack: &LocalStack, profile: &str, flow: &str, duration: &str) -> Value {
    let made = stack.run(
        profile,
        &[
            "--json",
            "request",
            flow,
            "--duration",
            duration,
            "--reason",
            "release 42",
        ],
    );
    assert!(made.ok(), "elevate request: {made:?}");
    let answer: Value = serde_json::from_str(&made.stdout).expect("request --json");
    answer["request"].clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// Whether `message` is the approvers' message of request `id` (not a direct message, nor a
/// reply in its thread).
fn in_channel(message: &Value, id: &str) -> bool {
    message["request_id"] == id
        && message["channel"] == "C0APPROVALS"
        && message["thread_ts"].is_null()
}

/// The approvers' Slack message of request `id` (messages are updated in place).
async fn message_of(stack: &LocalStack, id: &str) -> Value {
    stack
        .messages()
        .await
        .into_iter()
        .rev()
        .find(|m| in_channel(m, id))
        .unwrap_or_else(|| panic!("no message of {id}"))
}

#[tokio::test]
async fn two_approvers_are_needed_and_the_same_one_twice_is_refused() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let made = request(stack, "liam", "two_person", "10m");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["state"], "PENDING");
    assert_eq!(made["approvals_required"], 2, "{made}");

    let message = stack.pending_message("liam").await;
    let click = stack.click("bob", "approve", &message).await;
    assert_eq!(click["outcome"], "done", "{click}");
    let shown = stack
        .wait_for_message("1 of 2 approved", WAIT, |m| {
            in_channel(m, &id) && m["blocks"].to_string().contains("1 of 2 approved (bob)")
        })
        .await;
    assert!(
        shown["buttons"].as_array().is_some_and(|b| b.len() == 2),
        "the buttons stay for the second approver: {shown}"
    );
    assert_eq!(stack.state("liam", &id), "PENDING");
    assert!(!members(&iam, "SymDemoDeployers")
        .await
        .contains(&"liam".to_owned()));

    // bob again, from Slack and from the CLI: refused, nothing written.
    // The refusal reaches bob alone, in a message only he sees (a follow-up, so it may come
    // after the click's answer).
    stack.click("bob", "approve", &shown).await;
    stack
        .wait_for_message("bob's refusal", WAIT, |m| {
            m["visible_to_name"] == "bob" && m["text"].to_string().contains("already approved")
        })
        .await;
    assert_eq!(
        stack.request("liam", &id)["approvals"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the second click wrote nothing"
    );
    let cli_again = stack.run("bob", &["approve", &id]);
    assert!(!cli_again.ok(), "bob approved twice: {cli_again:?}");
    assert!(
        cli_again.stderr.contains("already approved"),
        "{cli_again:?}"
    );
    // liam is no approver of his own request, however many are needed.
    let own = stack.run("liam", &["approve", &id]);
    assert!(!own.ok(), "{own:?}");

    let second = stack.run("carol", &["approve", &id, "--reason", "reviewed the diff"]);
    assert!(second.ok(), "{second:?}");
    stack.wait_for_state("liam", &id, "ACTIVE", WAIT).await;
    wait_membership(&iam, "SymDemoDeployers", "liam", true, WAIT).await;

    let events = stack.audit_events(&id);
    let approvals: Vec<(&Actor, elevate_core::State)> = events
        .iter()
        .filter(|e| e.action == Action::Approve)
        .map(|e| (&e.actor, e.to))
        .collect();
    assert_eq!(
        approvals,
        vec![
            (&Actor::person("bob"), elevate_core::State::Pending),
            (&Actor::person("carol"), elevate_core::State::Approved),
        ],
        "each approval is its own audit event"
    );
    let revoked = stack.run("liam", &["revoke", &id]);
    assert!(revoked.ok(), "{revoked:?}");
}

#[tokio::test]
async fn a_rule_approves_the_on_call_engineer_and_nobody_else() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let made = request(stack, "mia", "on_call", "10m");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["state"], "APPROVED", "{made}");
    assert_eq!(
        made["decided_by"], "elevate:rule:on_call_engineer",
        "{made}"
    );
    stack.wait_for_state("mia", &id, "ACTIVE", WAIT).await;
    wait_membership(&iam, "SymDemoOnCall", "mia", true, WAIT).await;
    let message = stack
        .wait_for_message("the auto-approval", WAIT, |m| in_channel(m, &id))
        .await;
    assert!(
        message["blocks"]
            .to_string()
            .contains("automatically by rule on_call_engineer"),
        "{message}"
    );
    let approve = stack
        .audit_events(&id)
        .into_iter()
        .find(|e| e.action == Action::Approve)
        .expect("an approve event");
    assert_eq!(approve.actor.to_string(), "elevate:rule:on_call_engineer");

    // Longer than the rule allows, or someone the rule does not name: people decide.
    let long = request(stack, "mia", "on_call", "45m");
    assert_eq!(long["state"], "PENDING", "{long}");
    let other = request(stack, "noah", "on_call", "10m");
    assert_eq!(other["state"], "PENDING", "{other}");
    for pending in [&long, &other] {
        let requester = pending["requester"].as_str().expect("requester");
        let id = pending["id"].as_str().expect("id");
        assert!(stack.run(requester, &["cancel", id]).ok());
    }
    assert!(stack.run("mia", &["revoke", &id]).ok());
}

#[tokio::test]
async fn an_active_grant_is_extended_by_rule_or_by_an_approver_and_never_past_the_cap() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let made = request(stack, "mia", "on_call", "10m");
    let id = made["id"].as_str().expect("id").to_owned();
    stack.wait_for_state("mia", &id, "ACTIVE", WAIT).await;
    let first = time(&stack.request("mia", &id)["expires_at"]);

    // Within the rule (20m of its 30m): extended at once.
    let extended = stack.run(
        "mia",
        &[
            "extend",
            &id,
            "--by",
            "10m",
            "--reason",
            "still rolling out",
        ],
    );
    assert!(extended.ok(), "{extended:?}");
    assert!(extended.stdout.contains("active until"), "{extended:?}");
    let now = stack.request("mia", &id);
    assert_eq!(
        time(&now["expires_at"]) - first,
        chrono::Duration::minutes(10)
    );
    assert_eq!(now["state"], "ACTIVE");

    // Past the flow's hour: refused, nothing changes.
    let over = stack.run(
        "mia",
        &["extend", &id, "--by", "45m", "--reason", "all day"],
    );
    assert!(!over.ok(), "{over:?}");
    assert!(over.stderr.contains("over the cap"), "{over:?}");
    assert_eq!(stack.request("mia", &id)["expires_at"], now["expires_at"]);
    // Someone else's grant: refused.
    let foreign = stack.run(
        "noah",
        &["extend", &id, "--by", "5m", "--reason", "mine now"],
    );
    assert!(!foreign.ok(), "{foreign:?}");

    // Past the rule but within the cap: an approver is asked in Slack.
    let asked = stack.run(
        "mia",
        &["extend", &id, "--by", "20m", "--reason", "one more region"],
    );
    assert!(asked.ok(), "{asked:?}");
    assert!(asked.stdout.contains("approvers are asked"), "{asked:?}");
    let message = stack
        .wait_for_message("the extension's buttons", WAIT, |m| {
            in_channel(m, &id)
                && m["buttons"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|b| b["action_id"] == "approve_extension"))
        })
        .await;
    assert!(
        message["blocks"].to_string().contains("20m more"),
        "{message}"
    );
    // The approvers are pinged in the request's thread.
    let ping = stack
        .wait_for_message("the approvers' ping", WAIT, |m| {
            m["channel"] == "C0APPROVALS"
                && m["thread_ts"] == message["ts"]
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("mia asks for 20m more"))
        })
        .await;
    assert!(
        ping["blocks"].to_string().contains("<@U0ALICE01>"),
        "{ping}"
    );
    let again = stack.run(
        "mia",
        &["extend", &id, "--by", "5m", "--reason", "and more"],
    );
    assert!(!again.ok(), "a second extension while one waits: {again:?}");

    let click = stack.click("bob", "approve_extension", &message).await;
    assert_eq!(click["outcome"], "done", "{click}");
    let after = stack.request("mia", &id);
    assert_eq!(
        time(&after["expires_at"]) - first,
        chrono::Duration::minutes(30)
    );
    assert!(after["extension"].is_null(), "{after}");
    assert_eq!(after["extended"], 1800, "{after}");
    // The access stayed all along: never removed and added again.
    assert!(members(&iam, "SymDemoOnCall")
        .await
        .contains(&"mia".to_owned()));
    let shown = message_of(stack, &id).await;
    assert!(
        shown["blocks"].to_string().contains("extended by 30m"),
        "{shown}"
    );

    let actions: Vec<Action> = stack
        .audit_events(&id)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            Action::Request,
            Action::Approve,
            Action::Activate,
            Action::AskExtension,
            Action::Extend,
            Action::AskExtension,
            Action::Extend,
        ]
    );
    let verified = stack.run("bob", &["audit", "verify"]);
    assert!(verified.ok(), "{verified:?}");
    assert!(stack.run("mia", &["revoke", &id]).ok());
}

#[tokio::test]
async fn the_example_hook_approves_who_is_on_call_and_routes_everyone_else() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());

    // mia is on call: approved by the hook, named in the audit trail and in Slack.
    let made = request(stack, "mia", "hooked", "30m");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["state"], "APPROVED", "{made}");
    assert_eq!(
        made["decided_by"], "elevate:hook:elevate-example-hook",
        "{made}"
    );
    assert!(
        made["decision_reason"]
            .as_str()
            .is_some_and(|r| r.contains("mia is on call")),
        "{made}"
    );
    stack.wait_for_state("mia", &id, "ACTIVE", WAIT).await;
    wait_membership(&iam, "SymDemoHooked", "mia", true, WAIT).await;
    let message = stack
        .wait_for_message("the hook's approval", WAIT, |m| in_channel(m, &id))
        .await;
    assert!(
        message["blocks"]
            .to_string()
            .contains("automatically by hook elevate-example-hook"),
        "{message}"
    );
    let approve = stack
        .audit_events(&id)
        .into_iter()
        .find(|e| e.action == Action::Approve)
        .expect("an approve event");
    assert_eq!(approve.actor, Actor::system("hook:elevate-example-hook"));

    // noah is not on call, and mia asks for longer than the file allows: both wait for
    // approvers, in the on-call channel the hook names.
    let other = request(stack, "noah", "hooked", "30m");
    let long = request(stack, "mia", "hooked", "90m");
    for pending in [&other, &long] {
        assert_eq!(pending["state"], "PENDING", "{pending}");
        assert_eq!(pending["decided_by"], Value::Null, "{pending}");
        let pending_id = pending["id"].as_str().expect("id");
        let posted = stack
            .wait_for_message("the routed request", WAIT, |m| {
                m["request_id"] == pending_id && m["channel"] == "C0ONCALL"
            })
            .await;
        assert!(
            posted["buttons"].as_array().is_some_and(|b| b.len() == 2),
            "{posted}"
        );
    }
    assert!(!members(&iam, "SymDemoHooked")
        .await
        .contains(&"noah".to_owned()));

    // A hook that cannot be invoked never approves: the request waits in the flow's channel.
    let broken = request(stack, "mia", "broken_hook", "10m");
    assert_eq!(broken["state"], "PENDING", "{broken}");
    let broken_id = broken["id"].as_str().expect("id");
    stack
        .wait_for_message("the request of the broken hook", WAIT, |m| {
            in_channel(m, broken_id)
        })
        .await;
    assert_eq!(
        stack.audit_events(broken_id).len(),
        1,
        "only the request itself is recorded"
    );

    for (requester, pending) in [("noah", &other), ("mia", &long), ("mia", &broken)] {
        let pending_id = pending["id"].as_str().expect("id");
        assert!(stack.run(requester, &["cancel", pending_id]).ok());
    }
    assert!(stack.run("mia", &["revoke", &id]).ok());
    wait_membership(&iam, "SymDemoHooked", "mia", false, WAIT).await;
}

/// `elevate --json request <flow> --break-glass` as `profile`.
fn break_glass(
    stack: &LocalStack,
    profile: &str,
    flow: &str,
    duration: &str,
) -> super::harness::Outcome {
    stack.run(
        profile,
        &[
            "--json",
            "request",
            flow,
            "--duration",
            duration,
            "--reason",
            "INC-77: the claims API is down",
            "--break-glass",
        ],
    )
}

#[tokio::test]
async fn break_glass_is_active_at_once_and_reviewed_or_marked_unreviewed() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());

    // A flow without break-glass, or longer than its cap: refused, nothing stored (noah's
    // requests of other flows are other tests', on the same stack).
    let of_these = |stack: &LocalStack| {
        stack
            .requests_of("noah")
            .into_iter()
            .filter(|r| r["flow"] == "two_person" || r["flow"] == "urgent")
            .count()
    };
    let before = of_these(stack);
    let refused = break_glass(stack, "noah", "two_person", "10m");
    assert!(!refused.ok(), "{refused:?}");
    assert!(refused.stderr.contains("has no break-glass"), "{refused:?}");
    let too_long = break_glass(stack, "noah", "urgent", "30m");
    assert!(!too_long.ok(), "{too_long:?}");
    assert!(too_long.stderr.contains("at most 15m"), "{too_long:?}");
    assert_eq!(of_these(stack), before);

    // noah breaks the glass: active at once, posted to the security channel.
    let made = break_glass(stack, "noah", "urgent", "10m");
    assert!(made.ok(), "{made:?}");
    let made: Value = serde_json::from_str(&made.stdout).expect("request --json");
    let made = &made["request"];
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["state"], "APPROVED", "{made}");
    assert_eq!(made["decided_by"], "elevate:break_glass", "{made}");
    stack.wait_for_state("noah", &id, "ACTIVE", WAIT).await;
    wait_membership(&iam, "SymDemoUrgent", "noah", true, WAIT).await;
    let posted = stack
        .wait_for_message("the break-glass post", WAIT, |m| {
            m["request_id"] == id.as_str()
                && m["channel"] == "C0SECURITY"
                && m["buttons"].to_string().contains("review")
        })
        .await;
    assert!(
        posted["blocks"].to_string().contains("Break-glass"),
        "{posted}"
    );

    // noah cannot review his own; bob reviews it from Slack.
    let own = stack.run("noah", &["review", &id]);
    assert!(!own.ok(), "{own:?}");
    let click = stack.click("bob", "review", &posted).await;
    assert_eq!(click["outcome"], "done", "{click}");
    let reviewed = stack.request("noah", &id);
    assert_eq!(reviewed["break_glass"]["reviewed_by"], "bob", "{reviewed}");
    stack
        .wait_for_message("the reviewed post", WAIT, |m| {
            m["request_id"] == id.as_str()
                && m["channel"] == "C0SECURITY"
                && m["blocks"].to_string().contains("reviewed by bob")
        })
        .await;

    // A second one nobody reviews: marked unreviewed at its deadline, and the channel is
    // told again; a late review is recorded and the mark stays.
    let second = break_glass(stack, "noah", "urgent", "10m");
    assert!(second.ok(), "{second:?}");
    let second: Value = serde_json::from_str(&second.stdout).expect("request --json");
    let second_id = second["request"]["id"].as_str().expect("id").to_owned();
    stack
        .wait_for_message("the reminder", Duration::from_secs(60), |m| {
            m["channel"] == "C0SECURITY"
                && m["text"].as_str().is_some_and(|t| {
                    t.contains("was not reviewed") && t.contains(second_id.as_str())
                })
        })
        .await;
    let marked = stack.request("noah", &second_id);
    assert_eq!(marked["break_glass"]["unreviewed"], true, "{marked}");
    let late = stack.run(
        "alice",
        &["review", &second_id, "--reason", "checked the logs"],
    );
    assert!(late.ok(), "{late:?}");
    let late = stack.request("noah", &second_id);
    assert_eq!(late["break_glass"]["reviewed_by"], "alice", "{late}");
    assert_eq!(late["break_glass"]["unreviewed"], true, "{late}");
    let actions: Vec<Action> = stack
        .audit_events(&second_id)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.ends_with(&[Action::ReviewOverdue, Action::Review]),
        "{actions:?}"
    );

    for grant in [&id, &second_id] {
        assert!(stack.run("noah", &["revoke", grant]).ok());
    }
    wait_membership(&iam, "SymDemoUrgent", "noah", false, WAIT).await;
}

#[tokio::test]
async fn a_request_nobody_answers_is_reminded_then_decided_by_its_backup() {
    let stack = stack();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let made = request(stack, "olivia", "slow", "10m");
    let id = made["id"].as_str().expect("id").to_owned();
    let announced = stack
        .wait_for_message("the announcement", WAIT, |m| {
            m["request_id"] == id.as_str() && m["channel"] == "C0SLOW" && m["thread_ts"].is_null()
        })
        .await;

    // mia is no approver until the backups are asked: refused, nothing written.
    let early = stack.run("mia", &["approve", &id]);
    assert!(!early.ok(), "{early:?}");
    assert!(early.stderr.contains("not an approver"), "{early:?}");

    // After 6 seconds: a reply in the request's thread pings alice and bob.
    let reminder = stack
        .wait_for_message("the reminder", WAIT, |m| {
            m["channel"] == "C0SLOW"
                && m["thread_ts"] == announced["ts"]
                && m["text"].as_str().is_some_and(|t| t.contains("has waited"))
        })
        .await;
    let pinged = reminder["blocks"].to_string();
    assert!(
        pinged.contains("<@U0ALICE01>") && pinged.contains("<@U0BOB0001>"),
        "{reminder}"
    );

    // After 12: posted again in C0BACKUP with its buttons, and mia pinged there.
    let copy = stack
        .wait_for_message("the backup post", WAIT, |m| {
            m["request_id"] == id.as_str()
                && m["channel"] == "C0BACKUP"
                && m["thread_ts"].is_null()
                && m["buttons"].to_string().contains("approve")
        })
        .await;
    let ping = stack
        .wait_for_message("mia's ping", WAIT, |m| {
            m["channel"] == "C0BACKUP" && m["thread_ts"] == copy["ts"]
        })
        .await;
    assert!(
        ping["blocks"].to_string().contains("<@U0MIA0001>"),
        "{ping}"
    );
    let asked = stack.request("olivia", &id);
    assert!(asked["reminders"]["backup_asked_at"].is_string(), "{asked}");
    assert_eq!(asked["reminders"]["backup_message"]["channel"], "C0BACKUP");

    // mia approves from the backup channel: the access is granted, both posts show it.
    let click = stack.click("mia", "approve", &copy).await;
    assert_eq!(click["outcome"], "done", "{click}");
    stack.wait_for_state("olivia", &id, "ACTIVE", WAIT).await;
    wait_membership(&iam, "SymDemoSlow", "olivia", true, WAIT).await;
    for channel in ["C0SLOW", "C0BACKUP"] {
        stack
            .wait_for_message("the decided post", WAIT, |m| {
                m["request_id"] == id.as_str()
                    && m["channel"] == channel
                    && m["thread_ts"].is_null()
                    && m["buttons"].as_array().is_some_and(Vec::is_empty)
                    && m["blocks"].to_string().contains("mia")
            })
            .await;
    }
    let actions: Vec<Action> = stack
        .audit_events(&id)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions[..4],
        [
            Action::Request,
            Action::Remind,
            Action::AskBackup,
            Action::Approve
        ],
        "{actions:?}"
    );

    assert!(stack.run("olivia", &["revoke", &id]).ok());
    wait_membership(&iam, "SymDemoSlow", "olivia", false, WAIT).await;
}

/// `make dev`: the reviewed tutorial file served with `--identity-center --workflows` shows each
/// workflow rule on the Slack page, through the real CLI.
#[tokio::test]
async fn make_dev_shows_the_workflow_rules() {
    let stack = LocalStack::start_with_args(
        include_str!("../../../infra/elevate.toml"),
        &["--identity-center", "--workflows"],
    );
    let stack = &stack;
    let iam = aws_sdk_iam::Client::new(&stack.moto());

    // mia is on call: the rule approves her at once.
    let on_call = request(stack, "mia", "on_call", "15m");
    assert_eq!(
        on_call["decided_by"], "elevate:rule:on_call_engineer",
        "{on_call}"
    );
    wait_membership(&iam, "SymDemoOnCall", "mia", true, WAIT).await;

    // The example hook approves her too; alice waits for people.
    let hooked = request(stack, "mia", "hooked", "30m");
    assert_eq!(
        hooked["decided_by"], "elevate:hook:elevate-example-hook",
        "{hooked}"
    );

    // Two approvers: the message counts them.
    let two = request(stack, "alice", "two_person", "10m");
    let id = two["id"].as_str().expect("id").to_owned();
    let message = stack
        .wait_for_message("the two-person request", WAIT, |m| {
            m["request_id"] == id.as_str() && m["channel"] == "C0APPROVALS"
        })
        .await;
    let click = stack.click("bob", "approve", &message).await;
    assert_eq!(click["outcome"], "done", "{click}");
    stack
        .wait_for_message("1 of 2 approved", WAIT, |m| {
            m["request_id"] == id.as_str()
                && m["blocks"].to_string().contains("1 of 2 approved (bob)")
        })
        .await;

    // Break-glass: active at once, posted to the security channel.
    let urgent = stack.run(
        "alice",
        &[
            "--json",
            "request",
            "urgent",
            "--duration",
            "10m",
            "--reason",
            "INC-1: the claims API is down",
            "--break-glass",
        ],
    );
    assert!(urgent.ok(), "{urgent:?}");
    let urgent: Value = serde_json::from_str(&urgent.stdout).expect("request --json");
    let urgent_id = urgent["request"]["id"].as_str().expect("id").to_owned();
    stack
        .wait_for_message("the break-glass post", WAIT, |m| {
            m["request_id"] == urgent_id.as_str() && m["channel"] == "C0SECURITY"
        })
        .await;
    wait_membership(&iam, "SymDemoUrgent", "alice", true, WAIT).await;

    // The tutorial and Identity Center flows are still there.
    let served = stack.info.0["config_path"]
        .as_str()
        .expect("config_path")
        .to_owned();
    let flows = stack.run(
        "alice",
        &["--json", "config", "check", "--offline", &served],
    );
    assert!(flows.ok(), "{flows:?}");
    for flow in [
        "infra_access",
        "prod_readonly",
        "two_person",
        "on_call",
        "hooked",
        "urgent",
        "slow",
    ] {
        assert!(flows.stdout.contains(flow), "{flow}: {}", flows.stdout);
    }
    assert!(
        flows
            .stdout
            .contains("carol may decide after 2m (posted in C0BACKUP)"),
        "{}",
        flows.stdout
    );
}

/// The example hook deployed slow (it starts 5 seconds after it is invoked, past the 2 seconds
/// elevate waits): mia, whom it would approve, waits for approvers instead.
#[tokio::test]
async fn a_hook_that_answers_too_late_approves_nothing() {
    let stack = LocalStack::start_with_args(
        &format!("{CONFIG}{WORKFLOW_EXTRA}"),
        &["--function-latency", "elevate-example-hook=5s"],
    );
    let stack = &stack;
    let made = request(stack, "mia", "hooked", "30m");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["state"], "PENDING", "{made}");
    assert_eq!(made["decided_by"], Value::Null, "{made}");
    // Announced to the flow's approvers, not routed, with buttons.
    let posted = stack
        .wait_for_message("the request", WAIT, |m| in_channel(m, &id))
        .await;
    assert!(
        posted["buttons"].to_string().contains("approve"),
        "{posted}"
    );
    assert!(
        stack.logged("the request hook did not answer in time"),
        "{}",
        stack.log()
    );
    // The hook's late answer changes nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(stack.state("mia", &id), "PENDING");
    let actions: Vec<Action> = stack
        .audit_events(&id)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, [Action::Request]);
    let click = stack.click("bob", "approve", &posted).await;
    assert_eq!(click["outcome"], "done", "{click}");
    stack.wait_for_state("mia", &id, "ACTIVE", WAIT).await;
    assert!(stack.run("mia", &["revoke", &id]).ok());
}
