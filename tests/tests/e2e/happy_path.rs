//! One request from the command line to the end of its grant, through all four handlers.

use elevate_core::events::ScheduledAction;
use elevate_core::{Action, State};
use elevate_tests::{World, APPROVALS};
use serde_json::{json, Value};

#[tokio::test]
async fn request_approve_in_slack_escalate_expire() {
    let world = World::new().await;

    // alice asks from the CLI (the fixture's body: infra_access on admins for 1h).
    let event = world.api_event("apigw-create-request.json", "alice", None);
    let (status, answer) = world.request_fn(&event).await;
    assert_eq!(status, 201, "{answer}");
    let id: elevate_core::RequestId = answer["request"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("request id");
    assert_eq!(answer["request"]["state"], "PENDING");

    // The approvers see it in Slack with Approve/Deny buttons carrying the id.
    let messages = world.slack.messages(APPROVALS);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    let buttons = message.buttons();
    assert_eq!(
        buttons
            .iter()
            .map(|b| b.action_id.as_str())
            .collect::<Vec<_>>(),
        ["approve", "deny"]
    );
    assert!(buttons
        .iter()
        .all(|b| b.value.as_deref() == Some(id.to_string().as_str())));
    assert!(
        message.all_text().contains("alice"),
        "{}",
        message.all_text()
    );
    let stored = world.stored(&id).await;
    assert_eq!(
        stored.message.as_ref().map(|m| m.ts.as_str()),
        Some(message.ts.as_str())
    );
    let (timeout_at, timeout_input) = world
        .schedule(&format!("timeout-{id}"))
        .await
        .expect("time-out scheduled in moto");
    assert_eq!(timeout_at, stored.pending_until);
    assert_eq!(
        timeout_input,
        json!({"action": "timeout", "request_id": id})
    );

    // bob clicks Approve; Slack signs the click.
    world.clock.advance(std::time::Duration::from_secs(40));
    let click = world.click("slack-interaction-approve.json", &id, "U0BOB0001");
    let (status, answer) = world.approve_fn(&click).await;
    assert_eq!((status, answer), (200, Value::Null));
    assert_eq!(world.stored(&id).await.state, State::Approved);
    assert!(
        world.schedule(&format!("timeout-{id}")).await.is_none(),
        "time-out deleted"
    );

    // approve started escalate asynchronously; Lambda delivers that payload.
    let escalations = world.invoker.escalations();
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0].payload, json!({ "request_id": id }));
    world.clock.advance(std::time::Duration::from_secs(1));
    let done = world
        .escalate_fn(escalations[0].payload.clone())
        .await
        .expect("escalate");
    assert!(done.escalated);

    // alice is in the group, in IAM itself.
    assert!(world.is_member(&world.admins, "alice").await);
    let active = world.stored(&id).await;
    assert_eq!(active.state, State::Active);
    let expires_at = active.expires_at.expect("expires_at");
    assert_eq!(expires_at, world.now() + chrono::Duration::hours(1));

    // The revocation is scheduled in moto a minute before expiry, to the revoke function.
    let expire = ScheduledAction::Expire {
        request_id: id.clone(),
    };
    let (revoke_at, input) = world
        .schedule(&expire.schedule_name())
        .await
        .expect("revoke-<id>");
    assert_eq!(revoke_at, expires_at - chrono::Duration::seconds(60));
    assert_eq!(input, json!({"action": "expire", "request_id": id}));
    let raw = world
        .schedules
        .get_schedule()
        .group_name(&world.schedule_group)
        .name(expire.schedule_name())
        .send()
        .await
        .expect("schedule");
    assert_eq!(
        raw.target().map(|t| t.arn()),
        Some("arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke")
    );

    // The Slack message shows the grant and has no buttons left; alice was told.
    let message = world
        .slack
        .state()
        .message(APPROVALS, &message.ts)
        .expect("message");
    assert!(message.buttons().is_empty());
    assert!(message.edits >= 2, "updated on approval and on activation");
    let dm = world.slack.messages("U0ALICE01");
    assert!(dm.iter().any(|m| m.text.contains("active until")), "{dm:?}");

    // The Scheduler fires the schedule (a minute early); revoke waits until expiry.
    let delivered = world.fire(&expire).await;
    assert_eq!(world.now(), revoke_at);
    let answer = world.revoke_fn(delivered).await.expect("revoke");
    assert_eq!(answer["state"], "EXPIRED", "{answer}");
    assert!(world.now() >= expires_at, "waited out the lead");

    // The membership is gone in IAM, the request EXPIRED in DynamoDB, the trail intact.
    assert!(!world.is_member(&world.admins, "alice").await);
    let ended = world.stored(&id).await;
    assert_eq!(ended.state, State::Expired);
    let trail = world.verified_audit(&id).await;
    assert_eq!(
        trail.iter().map(|e| e.action).collect::<Vec<_>>(),
        [
            Action::Request,
            Action::Approve,
            Action::Activate,
            Action::Expire
        ]
    );
    assert_eq!(trail[1].actor.person_name(), Some("bob"));
    let message = world
        .slack
        .state()
        .message(APPROVALS, &message.ts)
        .expect("message");
    assert!(
        message.all_text().to_lowercase().contains("expired"),
        "{}",
        message.all_text()
    );

    // A late duplicate delivery changes nothing.
    let again = world
        .revoke_fn(json!({"action": "expire", "request_id": id}))
        .await;
    assert_eq!(again.expect("duplicate"), json!({"noop": true}));
    assert_eq!(world.verified_audit(&id).await.len(), 4);

    // The requester reads it all back.
    let show = world.api_event("apigw-show-request.json", "alice", Some(&id));
    let (status, answer) = world.request_fn(&show).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["state"], "EXPIRED");
    assert_eq!(answer["audit"].as_array().map(Vec::len), Some(4));
}
