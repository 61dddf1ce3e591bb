//! The stand-in over HTTP: trigger ids and `views.open`, refused blocks, and elevate's own
//! messages against Slack's limits.

use std::time::Duration;

use elevate_core::model::By;
use elevate_core::{apply, open, Command, Config, NewRequest, Request, RequestId};
use serde_json::{json, Value};

use super::*;
use crate::blocks::{notice, notice_about, request_message, Message};

const TOKEN: &str = "xoxb-standin-test";
const ALICE: &str = "U0ALICE01";

async fn call(standin: &SlackStandin, method: &str, body: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/{method}", standin.base_url()))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200, "Slack answers errors with HTTP 200");
    response.json().await.expect("json")
}

fn modal() -> Value {
    json!({
        "type": "modal",
        "callback_id": "request_access",
        "title": { "type": "plain_text", "text": "Request access" },
        "submit": { "type": "plain_text", "text": "Request" },
        "blocks": [{
            "type": "input",
            "block_id": "reason",
            "label": { "type": "plain_text", "text": "Reason" },
            "element": { "type": "plain_text_input", "action_id": "value", "multiline": true },
        }],
    })
}

fn is_view_id(id: &str) -> bool {
    id.len() > 1
        && id.starts_with('V')
        && id[1..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[tokio::test]
async fn standin_triggers_look_like_slacks_and_differ() {
    let state = StandinState::new(TOKEN);
    let first = state.issue_trigger(ALICE);
    let second = state.issue_trigger(ALICE);
    assert_ne!(first, second);
    for trigger in [&first, &second] {
        let parts: Vec<&str> = trigger.split('.').collect();
        assert_eq!(parts.len(), 3, "{trigger}");
        assert!(parts[..2]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())));
        assert!(!parts[2].is_empty() && parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    }
}

#[tokio::test]
async fn standin_opens_a_view_for_an_issued_trigger_and_records_it() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let trigger = standin.state().issue_trigger(ALICE);
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": modal() }),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let view = &answer["view"];
    let id = view["id"].as_str().expect("id").to_owned();
    assert!(is_view_id(&id), "{id}");
    assert_eq!(view["state"], json!({ "values": {} }));
    assert!(view["hash"].as_str().is_some_and(|h| h.contains('.')));
    assert_eq!(view["callback_id"], "request_access");
    assert_eq!(view["blocks"], modal()["blocks"]);

    let opened = standin.state().views();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].id, id);
    assert_eq!(opened[0].trigger_id, trigger);
    assert_eq!(opened[0].user_id, ALICE);
    assert_eq!(&opened[0].view, view);
    assert_eq!(standin.state().view(&id), Some(opened[0].clone()));
    assert_eq!(standin.state().view("VNOSUCHVIEW"), None);
    let calls = standin.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "views.open");
    assert!(calls[0].is_ok());

    // Like Slack, the view may also come as a JSON string.
    let trigger = standin.state().issue_trigger("U0BOB0001");
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": modal().to_string() }),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_ne!(answer["view"]["id"], id.as_str());
    assert_eq!(standin.state().views()[1].user_id, "U0BOB0001");
}

#[tokio::test]
async fn standin_refuses_unknown_and_reused_triggers() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let open = |trigger: &str| json!({ "trigger_id": trigger, "view": modal() });

    let answer = call(&standin, "views.open", &open("12345.98765.abcd2358fdea")).await;
    assert_eq!(
        answer,
        json!({ "ok": false, "error": "invalid_trigger_id" })
    );

    let trigger = standin.state().issue_trigger(ALICE);
    let answer = call(&standin, "views.open", &open(&trigger)).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let answer = call(&standin, "views.open", &open(&trigger)).await;
    assert_eq!(
        answer,
        json!({ "ok": false, "error": "expired_trigger_id" })
    );

    let errors: Vec<_> = standin.calls().into_iter().map(|c| c.error).collect();
    assert_eq!(
        errors,
        [
            Some("invalid_trigger_id".to_owned()),
            None,
            Some("expired_trigger_id".to_owned())
        ]
    );
    assert_eq!(standin.state().views().len(), 1);
}

/// The one slow test: Slack's 3 seconds are kept real.
#[tokio::test]
async fn standin_triggers_expire_after_3_seconds() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let trigger = standin.state().issue_trigger(ALICE);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": modal() }),
    )
    .await;
    assert_eq!(
        answer,
        json!({ "ok": false, "error": "expired_trigger_id" })
    );
    assert!(standin.state().views().is_empty());
}

#[tokio::test]
async fn standin_refuses_an_invalid_view_and_says_why() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let trigger = standin.state().issue_trigger(ALICE);
    let mut view = modal();
    view["title"]["text"] = json!("Request temporary AWS access");
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": view }),
    )
    .await;
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "invalid_arguments");
    let message = answer["response_metadata"]["messages"][0]
        .as_str()
        .expect("message");
    assert!(message.starts_with("[ERROR] "), "{message}");
    assert!(
        message.contains("at most 24 characters, got 28 [json-pointer:/view/title/text]"),
        "{message}"
    );
    let calls = standin.calls();
    assert_eq!(calls[0].error.as_deref(), Some("invalid_arguments"));
    assert_eq!(calls[0].detail.as_deref(), message.strip_prefix("[ERROR] "));
    assert!(standin.state().views().is_empty());

    let answer = call(&standin, "views.open", &json!({ "trigger_id": trigger })).await;
    assert_eq!(answer["error"], "invalid_arguments");
    assert!(standin.calls()[1]
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("missing required field: view")));

    // The refused view did not use the trigger up.
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": modal() }),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
}

#[tokio::test]
async fn standin_refuses_a_message_of_51_blocks_with_invalid_blocks() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let blocks: Vec<Value> = (0..51)
        .map(|i| json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("line {i}") } }))
        .collect();
    let answer = call(
        &standin,
        "chat.postMessage",
        &json!({ "channel": "C0APPROVALS", "text": "too long", "blocks": blocks }),
    )
    .await;
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "invalid_blocks");
    let calls = standin.calls();
    assert_eq!(calls[0].method, "chat.postMessage");
    assert_eq!(calls[0].error.as_deref(), Some("invalid_blocks"));
    let detail = calls[0].detail.as_deref().expect("detail");
    assert!(detail.contains("51 blocks, at most 50"), "{detail}");
    assert!(standin.messages("C0APPROVALS").is_empty());

    // An update is checked the same way, and the message stays as it was.
    let answer = call(
        &standin,
        "chat.postMessage",
        &json!({ "channel": "C0APPROVALS", "text": "hello" }),
    )
    .await;
    let ts = answer["ts"].as_str().expect("ts");
    let answer = call(
        &standin,
        "chat.update",
        &json!({ "channel": "C0APPROVALS", "ts": ts, "blocks": [{ "type": "header", "text": { "type": "mrkdwn", "text": "*x*" } }] }),
    )
    .await;
    assert_eq!(answer["error"], "invalid_blocks");
    assert_eq!(standin.messages("C0APPROVALS")[0].edits, 0);
}

#[tokio::test]
async fn standin_refuses_a_message_text_over_40000_characters() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let answer = call(
        &standin,
        "chat.postMessage",
        &json!({ "channel": "C0APPROVALS", "text": "x".repeat(40_001) }),
    )
    .await;
    assert_eq!(answer["error"], "msg_too_long");
}

#[tokio::test]
async fn standin_wait_for_wakes_on_views_and_clear_forgets_them() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let state = standin.state().clone();
    let waiter = tokio::spawn(async move {
        state
            .wait_for(|r| r.views.len() == 1, Duration::from_secs(5))
            .await
    });
    let trigger = standin.state().issue_trigger(ALICE);
    call(
        &standin,
        "views.open",
        &json!({ "trigger_id": trigger, "view": modal() }),
    )
    .await;
    let recording = waiter.await.expect("join").expect("woken");
    assert_eq!(recording.views[0].user_id, ALICE);

    let unused = standin.state().issue_trigger(ALICE);
    standin.state().clear();
    assert!(standin.state().views().is_empty());
    assert!(standin.calls().is_empty());
    let answer = call(
        &standin,
        "views.open",
        &json!({ "trigger_id": unused, "view": modal() }),
    )
    .await;
    assert_eq!(answer["error"], "invalid_trigger_id");
}

use crate::TEST_CONFIG as CONFIG;

/// elevate's own messages, in the states a request moves through, with the longest user text
/// they can carry.
fn elevate_messages() -> Vec<Message> {
    let config = Config::parse(CONFIG).expect("config");
    let flow = config.flow("infra_access").expect("flow");
    let alice = config.person("alice").expect("alice");
    let now = Utc::now();
    let long = "é".repeat(10_000);
    let new = NewRequest {
        flow: flow.name.clone(),
        target: "admins".into(),
        requester: "alice".into(),
        reason: format!("debug prod incident #42\n*APPROVED* <@U0BOB0001> {long}"),
        duration: Duration::from_secs(3600),
        pending_timeout: Duration::from_secs(1800),
        approvals_required: 1,
        terms: elevate_core::model::Terms {
            target: flow.targets[0].clone(),
            person: alice.clone(),
        },
    };
    let pending = open(
        RequestId::generate(now),
        new,
        "arn:aws:iam::123456789012:user/alice",
        now,
    )
    .0;
    let bob = By::person("bob", "slack:T0ELEVATE/U0BOB0001");
    let system = By::system("test", "lambda:elevate-test");
    let step = |request: &Request, command: Command, by: &By| -> Request {
        apply(request, command, by, now)
            .expect("transition")
            .request
    };
    let approved = step(
        &pending,
        Command::Approve {
            reason: Some(long.clone()),
        },
        &bob,
    );
    let active = step(&approved, Command::Activate, &system);
    let denied = step(
        &pending,
        Command::Deny {
            reason: Some(long.clone()),
        },
        &bob,
    );
    let failed = step(
        &approved,
        Command::Fail {
            error: long.clone(),
        },
        &system,
    );
    let mut messages: Vec<Message> = [&pending, &approved, &active, &denied, &failed]
        .into_iter()
        .map(|request| request_message(request, flow, alice))
        .collect();
    messages.push(notice(&format!("bob denied your request: {long}")));
    messages.push(notice_about("Your access is active.", &active));
    messages.push(notice_about(&long, &pending));
    messages
}

#[test]
fn standin_takes_elevates_own_messages() {
    for message in elevate_messages() {
        let blocks = Value::Array(message.blocks.clone());
        if let Err(error) = check_message_blocks(&blocks) {
            panic!("{error}\n{blocks:#}");
        }
        assert!(message.text.chars().count() <= MAX_MESSAGE_TEXT_CHARS);
    }
}
