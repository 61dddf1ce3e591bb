//! Slack clicks that must change nothing, and the one that must change things only once.

use elevate_core::{Action, RequestId, State};
use elevate_http::testing::slack_fixture_body;
use elevate_tests::{World, APPROVALS, FIXTURE_ID};
use serde_json::{json, Value};

const APPROVE: &str = "slack-interaction-approve.json";

async fn pending(world: &World) -> RequestId {
    world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": "1h", "reason": "INC-4211"}),
        )
        .await
}

/// The ephemeral messages the stand-in recorded for `slack_user`.
fn ephemerals(world: &World, slack_user: &str) -> Vec<String> {
    world
        .slack
        .messages(APPROVALS)
        .into_iter()
        .filter(|m| m.visible_to.as_deref() == Some(slack_user))
        .map(|m| m.text)
        .collect()
}

/// Nothing happened to `id`: still PENDING with only its creation event, no escalation, its
/// time-out schedule still there.
async fn untouched(world: &World, id: &RequestId) {
    let request = world.stored(id).await;
    assert_eq!(request.state, State::Pending);
    assert_eq!(world.verified_audit(id).await.len(), 1);
    assert!(world.invoker.escalations().is_empty());
    assert!(world.schedule(&format!("timeout-{id}")).await.is_some());
}

#[tokio::test]
async fn forged_and_stale_signatures_are_401_and_change_nothing() {
    let world = World::new().await;
    let id = pending(&world).await;
    let calls = world.slack.calls().len();
    let body = slack_fixture_body(APPROVE).replace(FIXTURE_ID, id.as_str());
    let now = world.now().timestamp();
    let event = elevate_http::testing::ApiEvent::fixture(APPROVE);

    let forged = event
        .clone()
        .slack_body(body.as_bytes(), "guessed-secret", now);
    let stale = event
        .clone()
        .slack_body(body.as_bytes(), &world.signing_secret, now - 301);
    let replayed = {
        // A click Slack really signed, for another request, with this request's id put in.
        let other = slack_fixture_body(APPROVE);
        let mut signed = event
            .clone()
            .slack_body(other.as_bytes(), &world.signing_secret, now);
        let tampered = event
            .clone()
            .slack_body(body.as_bytes(), &world.signing_secret, now);
        signed.0["body"] = tampered.0["body"].clone();
        signed
    };
    for attempt in [forged, stale, replayed] {
        let (status, answer) = world.approve_fn(&attempt).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"], "bad_signature");
    }
    untouched(&world, &id).await;
    assert_eq!(world.slack.calls().len(), calls, "nothing said in Slack");
}

#[tokio::test]
async fn self_approval_and_ineligible_approvers_are_told_why_in_slack() {
    let world = World::new().await;
    let id = pending(&world).await;

    for (slack_user, says) in [
        ("U0ALICE01", "own request"),
        ("U0DAVE001", "not an approver"),
        ("U0STRANGER", "not a person in elevate.toml"),
    ] {
        let (status, answer) = world
            .approve_fn(&world.click(APPROVE, &id, slack_user))
            .await;
        assert_eq!((status, &answer), (200, &Value::Null), "{slack_user}");
        let told = ephemerals(&world, slack_user);
        assert_eq!(told.len(), 1, "{slack_user}: {told:?}");
        assert!(told[0].contains(says), "{slack_user}: {told:?}");
    }
    untouched(&world, &id).await;
}

#[tokio::test]
async fn a_double_approval_escalates_exactly_once() {
    let world = World::new().await;
    let id = pending(&world).await;
    let click = world.click(APPROVE, &id, "U0BOB0001");
    let first = world.approve_fn(&click).await;
    // Slack retries the same click; bob also clicks Deny on the stale message.
    let second = world.approve_fn(&click).await;
    let deny = world
        .approve_fn(&world.click("slack-interaction-deny.json", &id, "U0BOB0001"))
        .await;
    // And approves from the CLI.
    let cli = world
        .approve_fn(&world.api_event("apigw-approve-request.json", "bob", Some(&id)))
        .await;
    assert_eq!(first.0, 200);
    assert_eq!(second.0, 200);
    assert_eq!(deny.0, 200);
    assert_eq!(
        (cli.0, cli.1["error"].as_str()),
        (409, Some("conflict")),
        "{}",
        cli.1
    );

    assert_eq!(
        world.invoker.escalations().len(),
        1,
        "exactly one escalation"
    );
    let trail = world.verified_audit(&id).await;
    let approvals = trail.iter().filter(|e| e.action == Action::Approve).count();
    assert_eq!(approvals, 1, "exactly one APPROVE event");
    assert_eq!(world.stored(&id).await.state, State::Approved);
    let told = ephemerals(&world, "U0BOB0001");
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told.iter().all(|t| t.contains("already APPROVED by bob")),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_deny_click_denies_and_tells_the_requester() {
    let world = World::new().await;
    let id = pending(&world).await;
    let (status, _) = world
        .approve_fn(&world.click("slack-interaction-deny.json", &id, "U0BOB0001"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(world.stored(&id).await.state, State::Denied);
    assert!(world.invoker.escalations().is_empty());
    assert!(world.schedule(&format!("timeout-{id}")).await.is_none());
    let told = world.slack.messages("U0ALICE01");
    assert!(told.iter().any(|m| m.text.contains("denied")), "{told:?}");
    world.verified_audit(&id).await;
}
