//! Request hooks, against the fakes: what a hook's answer does to a request at submission,
//! and that a hook that fails, is late or answers nonsense never approves.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};

use crate::audit::Action;
use crate::config::Config;
use crate::model::{AutoDecider, Request, State};
use crate::testing::{caller_of, FakeApp, Notice, SAMPLE_CONFIG};

use super::*;

const HOOK: &str = "arn:aws:lambda:us-east-1:123456789012:function:on-call-hook";

/// The sample config plus flow `hooked` (bob or carol approve; the hook is asked; target
/// `hooked_ops`) and flow `hooked_rule`, whose rule `short` approves alice for up to 30m and
/// whose hook is asked too.
fn config() -> Config {
    Config::parse(&format!(
        r#"{SAMPLE_CONFIG}
[[flows]]
name = "hooked"
max_duration = "2h"
hook = "{HOOK}"

[flows.approvers]
channel = "C0HOOKED"
people = ["bob", "carol"]

[[flows.targets]]
name = "hooked_ops"
type = "iam_group"
group = "HookedOps"

[[flows]]
name = "hooked_rule"
max_duration = "2h"
hook = "{HOOK}"

[flows.approvers]
channel = "C0HOOKED"
people = ["bob", "carol"]

[[flows.targets]]
name = "hooked_rule_ops"
type = "iam_group"
group = "HookedRuleOps"

[[flows.auto_approve]]
name = "short"
requesters = ["alice"]
max_duration = "30m"
"#
    ))
    .unwrap()
}

/// The fakes, the hook answering `answer`.
fn app_answering(answer: Value) -> FakeApp {
    let app = FakeApp::new(config());
    app.hooks.answer(HOOK, answer);
    app
}

async fn ask(app: &FakeApp, flow: &str, minutes: u64) -> Result<Request, ServiceError> {
    let submission = Submission {
        flow: flow.into(),
        target: None,
        account: None,
        duration: Duration::from_secs(minutes * 60),
        reason: "INC-9: the claims API pages".into(),
    };
    let alice = app.app.config.person("alice").unwrap();
    submit(&app.app, &caller_of(alice), submission).await
}

fn announced_in(app: &FakeApp, request: &Request) -> Option<String> {
    app.notifier.notices().into_iter().find_map(|n| match n {
        Notice::Announce {
            request: r,
            message,
            ..
        } if r.id == request.id => Some(message.channel),
        _ => None,
    })
}

/// The request waits for people, announced in the flow's channel, with no decision.
fn waits_for_people(app: &FakeApp, request: &Request) {
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.decided_by, None);
    assert_eq!(stored.channel, None);
    assert_eq!(app.actions(&request.id), vec![Action::Request]);
    assert_eq!(announced_in(app, request).as_deref(), Some("C0HOOKED"));
    assert!(app.escalation.started().is_empty());
}

#[tokio::test]
async fn the_hook_is_asked_with_the_documented_event_before_anything_is_stored() {
    let app = app_answering(json!({"decision": "continue"}));
    let request = ask(&app, "hooked", 60).await.unwrap();

    let calls = app.hooks.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, HOOK);
    assert!(!calls[0].asynchronous, "a hook is asked synchronously");
    let event = &calls[0].payload;
    assert_eq!(event["type"], "request_submitted");
    assert_eq!(event["flow"], "hooked");
    assert_eq!(event["request"]["id"], request.id.as_str());
    assert_eq!(event["request"]["state"], "PENDING");
    assert_eq!(event["request"]["duration"], 3600);
    assert_eq!(event["request"]["requester"], "alice");
    assert_eq!(event["person"]["name"], "alice");
    assert_eq!(event["person"]["slack_id"], "U0ALICE01");
    // The same keys as the contract's fixture.
    let fixture: Value =
        serde_json::from_str(include_str!("../../../../infra/events/hook-submitted.json")).unwrap();
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(event), keys(&fixture));
    assert_eq!(keys(&event["person"]), keys(&fixture["person"]));
    waits_for_people(&app, &request);
}

#[tokio::test]
async fn a_flow_without_a_hook_asks_none() {
    let app = app_answering(json!({"decision": "approve", "reason": "yes"}));
    let alice = app.app.config.person("alice").unwrap();
    let submission = Submission {
        flow: "infra_access".into(),
        target: None,
        account: None,
        duration: Duration::from_secs(600),
        reason: "INC-9".into(),
    };
    let request = submit(&app.app, &caller_of(alice), submission)
        .await
        .unwrap();
    assert_eq!(request.state, State::Pending);
    assert!(app.hooks.calls().is_empty());
}

#[tokio::test]
async fn a_hook_approval_approves_at_once_naming_the_hook_and_its_reason() {
    let app = app_answering(json!({"decision": "approve", "reason": "alice is on call"}));
    let request = ask(&app, "hooked", 60).await.unwrap();

    assert_eq!(request.state, State::Approved);
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Approved);
    assert_eq!(
        stored.decided_by.as_deref(),
        Some("elevate:hook:on-call-hook")
    );
    assert_eq!(stored.decision_reason.as_deref(), Some("alice is on call"));
    assert_eq!(
        stored.decided_automatically(),
        Some(AutoDecider::Hook("on-call-hook".into()))
    );
    assert!(stored.approved_automatically());
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Approve]
    );
    assert_eq!(app.escalation.started(), vec![request.id.clone()]);
    // The channel still sees the grant, saying who approved it.
    assert_eq!(announced_in(&app, &request).as_deref(), Some("C0HOOKED"));
}

#[tokio::test]
async fn a_hook_denial_ends_the_request_and_wins_over_a_rule() {
    let app = app_answering(json!({"decision": "deny", "reason": "change freeze until Monday"}));
    // `short` would approve 20 minutes for alice.
    let request = ask(&app, "hooked_rule", 20).await.unwrap();

    assert_eq!(request.state, State::Denied);
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Denied);
    assert_eq!(
        stored.decided_by.as_deref(),
        Some("elevate:hook:on-call-hook")
    );
    assert_eq!(
        stored.decision_reason.as_deref(),
        Some("change freeze until Monday")
    );
    assert!(!stored.approved_automatically());
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Deny]
    );
    assert!(app.escalation.started().is_empty());
    // The requester hears why.
    let told = app.notifier.told("alice");
    assert!(
        told.iter()
            .any(|t| t.contains("denied") && t.contains("change freeze until Monday")),
        "{told:?}"
    );
    assert!(!app.strategy.has("hooked_rule_ops", "alice"));
}

#[tokio::test]
async fn a_rule_names_itself_when_rule_and_hook_both_approve() {
    let app = app_answering(json!({"decision": "approve", "reason": "on call"}));
    let request = ask(&app, "hooked_rule", 20).await.unwrap();
    assert_eq!(request.state, State::Approved);
    assert_eq!(
        app.request(&request.id).decided_by.as_deref(),
        Some("elevate:rule:short")
    );
}

#[tokio::test]
async fn a_hook_sends_the_request_to_another_channel() {
    let app = app_answering(json!({"decision": "continue", "channel": "C0ONCALL"}));
    let request = ask(&app, "hooked", 60).await.unwrap();
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.channel.as_deref(), Some("C0ONCALL"));
    assert_eq!(announced_in(&app, &request).as_deref(), Some("C0ONCALL"));
    assert_eq!(
        stored.message.as_ref().map(|m| m.channel.as_str()),
        Some("C0ONCALL")
    );
}

#[tokio::test]
async fn a_hook_that_times_out_means_continue() {
    let mut app = app_answering(json!({"decision": "approve", "reason": "too late"}));
    app.hooks.hang(HOOK);
    app.app.settings.hook_timeout = Duration::from_millis(50);
    let started = std::time::Instant::now();
    let request = ask(&app, "hooked", 60).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the submission waited {:?} for a hung hook",
        started.elapsed()
    );
    assert_eq!(app.hooks.calls().len(), 1);
    waits_for_people(&app, &request);
}

#[tokio::test]
async fn a_hook_that_fails_or_cannot_be_reached_means_continue() {
    let app = FakeApp::new(config());
    app.hooks
        .answer_error(HOOK, "Runtime.ExitError: the hook crashed");
    let request = ask(&app, "hooked", 60).await.unwrap();
    waits_for_people(&app, &request);

    let app = FakeApp::new(config());
    app.hooks.fail_next(1);
    let request = ask(&app, "hooked", 60).await.unwrap();
    waits_for_people(&app, &request);
}

#[tokio::test]
async fn an_answer_elevate_cannot_act_on_means_continue_never_approve() {
    for answer in [
        json!({"decision": "approve"}),
        json!({"decision": "approve", "reason": "   "}),
        json!({"decision": "approve", "reason": "on call\u{7}"}),
        json!({"decision": "approve", "reason": "x".repeat(501)}),
        json!({"decision": "approve", "reason": "on call", "duration": 99999}),
        json!({"decision": "APPROVE", "reason": "on call"}),
        json!({"decision": "continue", "channel": "#general; rm"}),
        json!({"decision": "continue", "channel": "U0ALICE01"}),
        json!({"decision": "continue", "channel": "c0oncall"}),
        json!({"ok": true}),
        json!("approve"),
        Value::Null,
    ] {
        let app = app_answering(answer.clone());
        let request = ask(&app, "hooked", 60).await.unwrap();
        assert_eq!(
            app.request(&request.id).state,
            State::Pending,
            "{answer} approved or denied"
        );
        waits_for_people(&app, &request);
    }
}
