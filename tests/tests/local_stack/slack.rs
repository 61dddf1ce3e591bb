//! Slack-native requests, end to end: `/elevate` typed on the Slack page (a slash command
//! signed like Slack's, posted to the public `/slack/commands`), its modal opened through the
//! stand-in's `views.open`, submitted as a signed `view_submission`, and the End access now
//! button of the requester's direct message. What came of it is read back with the CLI, from
//! the stand-in and from moto's IAM.
//!
//! These tests share a stack of their own ([`LocalStack::slack_shared`]): heidi, ivan, judy
//! and ken ask there, and billing_access is a flow only heidi may request.

use std::time::Duration;

use elevate_slack::modal::{access_value, ACCESS_BLOCK, DURATION_BLOCK, REASON_BLOCK};
use serde_json::{json, Value};

use super::harness::{members, wait_membership, LocalStack, APPROVALS_CHANNEL, GROUP};

const WAIT: Duration = Duration::from_secs(30);

/// A Slack user of the workspace who is no person of elevate.toml.
const STRANGER: &str = "U0STRANGE1";

/// `/elevate` as `person`: the request modal it opened.
pub async fn open_modal(stack: &LocalStack, person: &str) -> Value {
    let answer = stack
        .slack_page("command", json!({"as": person, "text": ""}))
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(
        answer["body"].is_null(),
        "a modal is answered with an empty 200: {answer}"
    );
    let view = answer["view"].clone();
    assert_eq!(
        view["type"], "modal",
        "no modal opened for {person}: {answer}"
    );
    assert!(view["id"].is_string(), "{view}");
    view
}

/// The values of the options of the input block `block_id` (grouped or not).
pub fn options(view: &Value, block_id: &str) -> Vec<String> {
    let element = view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|block| block["block_id"] == block_id)
        .map(|block| block["element"].clone())
        .unwrap_or_else(|| panic!("the modal has no block {block_id}: {view}"));
    let groups = element["option_groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    groups
        .iter()
        .flat_map(|group| group["options"].as_array().cloned().unwrap_or_default())
        .chain(element["options"].as_array().cloned().unwrap_or_default())
        .filter_map(|option| option["value"].as_str().map(str::to_owned))
        .collect()
}

/// A duration the modal offers (10 minutes when it lets the person type one).
pub fn a_duration(view: &Value) -> String {
    let offered = options(view, DURATION_BLOCK);
    ["10m", "15m", "30m"]
        .into_iter()
        .map(str::to_owned)
        .find(|d| offered.contains(d))
        .or_else(|| offered.first().cloned())
        .unwrap_or_else(|| "10m".to_owned())
}

/// Submits `view` as `person` with these fields: the page's answer.
async fn submit(
    stack: &LocalStack,
    person: &str,
    view: &Value,
    access: &str,
    duration: &str,
    reason: &str,
) -> Value {
    stack
        .slack_page(
            "submit",
            json!({
                "as": person,
                "view_id": view["id"],
                "access": access,
                "duration": duration,
                "reason": reason,
            }),
        )
        .await
}

/// The ids of `person`'s requests, read with the CLI.
fn request_ids(stack: &LocalStack, person: &str) -> Vec<String> {
    stack
        .requests_of(person)
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

/// The one request `person` has that is not in `before`.
fn new_request(stack: &LocalStack, person: &str, before: &[String]) -> Value {
    let new: Vec<Value> = stack
        .requests_of(person)
        .into_iter()
        .filter(|r| !before.iter().any(|id| r["id"] == id.as_str()))
        .collect();
    assert_eq!(new.len(), 1, "{person}'s new requests: {new:#?}");
    new[0].clone()
}

fn message_of(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |m: &Value| m["channel"] == APPROVALS_CHANNEL && m["request_id"] == id
}

#[tokio::test]
async fn a_request_made_in_the_slack_modal_is_stored_announced_and_listed() {
    let stack = LocalStack::slack_shared();
    let before = request_ids(stack, "heidi");

    let view = open_modal(stack, "heidi").await;
    // The stand-in holds the view, opened for heidi, and the page shows it to her.
    let shown = stack.slack_view_as("heidi").await;
    assert_eq!(shown["views"][0]["id"], view["id"], "{shown}");
    assert_eq!(shown["views"][0]["closed"], false, "{shown}");
    let access = options(&view, ACCESS_BLOCK);
    for (flow, target) in [("infra_access", "admins"), ("billing_access", "billing")] {
        assert!(
            access.contains(&access_value(flow, target, None)),
            "heidi may request {flow} on {target}, the modal offers {access:?}"
        );
    }

    let answer = submit(
        stack,
        "heidi",
        &view,
        &access_value("infra_access", "admins", None),
        &a_duration(&view),
        "rotate the modal's keys",
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(answer["closed"], true, "{answer}");

    let request = new_request(stack, "heidi", &before);
    let id = request["id"].as_str().expect("id").to_owned();
    assert_eq!(request["flow"], "infra_access", "{request}");
    assert_eq!(request["target"], "admins", "{request}");
    assert_eq!(request["state"], "PENDING", "{request}");
    let stored = stack.request("heidi", &id);
    assert_eq!(stored["reason"], "rotate the modal's keys", "{stored}");
    assert_eq!(stored["requester"], "heidi", "{stored}");

    let announced = stack
        .wait_for_message(
            "announcement in the approvers' channel",
            WAIT,
            message_of(&id),
        )
        .await;
    assert_eq!(announced["requester"], "heidi", "{announced}");
    assert!(
        announced["buttons"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["action_id"] == "approve")),
        "{announced}"
    );
    stack
        .wait_for_message("direct message to heidi", WAIT, |m| {
            m["direct_to"] == "heidi"
        })
        .await;
    let closed = stack.slack_view_as("heidi").await;
    assert_eq!(closed["views"][0]["closed"], true, "{closed}");

    // `/elevate list` shows her requests, this one among them.
    let listed = stack
        .slack_page("command", json!({"as": "heidi", "text": "list"}))
        .await;
    assert_eq!(listed["status"], 200, "{listed}");
    assert_eq!(listed["body"]["response_type"], "ephemeral", "{listed}");
    assert!(listed["view"].is_null(), "{listed}");
    assert!(listed["body"].to_string().contains(&id), "{listed}");

    let cancelled = stack.run("heidi", &["cancel", &id]);
    assert!(cancelled.ok(), "{cancelled:?}");
}

#[tokio::test]
async fn a_slack_user_elevate_does_not_know_gets_a_refusal_and_no_modal() {
    let stack = LocalStack::slack_shared();
    let answer = stack
        .slack_page("command", json!({"slack_id": STRANGER, "text": ""}))
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["response_type"], "ephemeral", "{answer}");
    assert!(answer["view"].is_null(), "{answer}");
    let views = stack.slack_views().await;
    assert!(
        !views.iter().any(|v| v["user_id"] == STRANGER),
        "a view was opened for a stranger: {views:#?}"
    );

    // Nor does `/elevate list` tell them anything but the same refusal.
    let listed = stack
        .slack_page("command", json!({"slack_id": STRANGER, "text": "list"}))
        .await;
    assert_eq!(listed["status"], 200, "{listed}");
    assert_eq!(listed["body"]["response_type"], "ephemeral", "{listed}");
    assert!(listed["view"].is_null(), "{listed}");
}

#[tokio::test]
async fn the_modal_refuses_what_the_api_refuses_and_stores_nothing() {
    let stack = LocalStack::slack_shared();
    let before = request_ids(stack, "ivan");

    let view = open_modal(stack, "ivan").await;
    let access = options(&view, ACCESS_BLOCK);
    let infra = access_value("infra_access", "admins", None);
    let billing = access_value("billing_access", "billing", None);
    assert!(access.contains(&infra), "{access:?}");
    assert!(
        !access.contains(&billing),
        "the modal offers ivan a flow only heidi may request: {access:?}"
    );
    let duration = a_duration(&view);

    // Each refusal names its field, and the modal stays open for the next try.
    let cases = [
        (
            "a flow ivan may not request",
            billing.as_str(),
            duration.as_str(),
            "need the invoices",
            ACCESS_BLOCK,
        ),
        (
            "a duration over the flow's hour",
            infra.as_str(),
            "2h",
            "a long job",
            DURATION_BLOCK,
        ),
        (
            "a reason of blanks",
            infra.as_str(),
            duration.as_str(),
            "   ",
            REASON_BLOCK,
        ),
    ];
    for (case, access, duration, reason, block) in cases {
        let answer = submit(stack, "ivan", &view, access, duration, reason).await;
        assert_eq!(answer["status"], 200, "{case}: {answer}");
        assert_eq!(answer["closed"], false, "{case}: {answer}");
        let message = answer["errors"][block].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{case}: no error on `{block}`: {answer}"
        );
    }
    assert_eq!(
        request_ids(stack, "ivan"),
        before,
        "a refused submission stored a request"
    );
    let shown = stack.slack_view_as("ivan").await;
    assert_eq!(shown["views"][0]["id"], view["id"], "{shown}");
    assert_eq!(shown["views"][0]["closed"], false, "{shown}");

    // Closing the modal without submitting stores nothing either.
    let closed = stack
        .slack_page("close", json!({"view_id": view["id"]}))
        .await;
    assert_eq!(closed["closed"], true, "{closed}");
    assert_eq!(request_ids(stack, "ivan"), before);

    // Help, or a word it does not know: the usage, to ivan only.
    for text in ["help", "frobnicate"] {
        let answer = stack
            .slack_page("command", json!({"as": "ivan", "text": text}))
            .await;
        assert_eq!(answer["status"], 200, "{text}: {answer}");
        assert_eq!(
            answer["body"]["response_type"], "ephemeral",
            "{text}: {answer}"
        );
        assert!(answer["view"].is_null(), "{text}: {answer}");
        assert!(
            answer["body"].to_string().contains("/elevate"),
            "{text}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_requester_ends_an_active_grant_from_the_slack_direct_message() {
    let stack = LocalStack::slack_shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let before = request_ids(stack, "judy");

    let view = open_modal(stack, "judy").await;
    let answer = submit(
        stack,
        "judy",
        &view,
        &access_value("infra_access", "admins", None),
        &a_duration(&view),
        "deploy the hotfix",
    )
    .await;
    assert_eq!(answer["closed"], true, "{answer}");
    let id = new_request(stack, "judy", &before)["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let announced = stack
        .wait_for_message(
            "judy's request in the approvers' channel",
            WAIT,
            message_of(&id),
        )
        .await;
    let click = stack.click("bob", "approve", &announced).await;
    assert_eq!(click["outcome"], "done", "{click}");
    stack
        .wait_for_state("judy", &id, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(
        members(&iam, GROUP).await.contains(&"judy".to_owned()),
        "judy is not in {GROUP} once ACTIVE"
    );

    // Her direct message about the grant carries the button, with a confirmation.
    let has_end_button = |m: &Value| {
        m["direct_to"] == "judy"
            && m["buttons"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|b| b["action_id"] == "end_access" && b["value"] == id.as_str())
            })
    };
    let dm = stack
        .wait_for_message(
            "End access now in judy's direct messages",
            WAIT,
            has_end_button,
        )
        .await;
    let button = dm["buttons"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["action_id"] == "end_access"))
        .expect("the button")
        .clone();
    assert_eq!(button["text"], "End access now", "{dm}");
    assert!(button["confirm"]["text"]["text"].is_string(), "{dm}");
    // Nobody else sees it.
    let bobs = stack.slack_view_as("bob").await;
    assert!(
        !bobs["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["ts"] == dm["ts"] && m["channel"] == dm["channel"]),
        "bob sees judy's direct message"
    );

    let ended = stack.click("judy", "end_access", &dm).await;
    assert_eq!(ended["status"], 200, "{ended}");
    assert_eq!(ended["outcome"], "done", "{ended}");

    stack.wait_for_state("judy", &id, "REVOKED", WAIT).await;
    wait_membership(&iam, GROUP, "judy", false, Duration::from_secs(10)).await;
    let request = stack.request("judy", &id);
    assert_eq!(request["ended_by"], "judy", "{request}");

    // She is told, and the approvers' message says so.
    stack
        .wait_for_message("the direct message that judy's access ended", WAIT, |m| {
            m["direct_to"] == "judy" && m["ts"].as_str() > dm["ts"].as_str()
        })
        .await;
    stack
        .wait_for_message("the approvers' message showing REVOKED", WAIT, |m| {
            message_of(&id)(m) && m["blocks"].to_string().contains("REVOKED")
        })
        .await;
}
