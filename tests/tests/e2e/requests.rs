//! Opening and cancelling requests: what is refused writes nothing anywhere.

use std::time::Duration;

use elevate_core::events::ScheduledAction;
use elevate_core::State;
use elevate_tests::{World, APPROVALS};
use serde_json::json;

#[tokio::test]
async fn refused_requests_write_nothing() {
    let world = World::new().await;
    let cases = [
        (
            "alice",
            json!({"flow": "break_glass", "duration": "1h", "reason": "x"}),
            400,
            "unknown_flow",
        ),
        (
            "alice",
            json!({"flow": "infra_access", "duration": "5h", "reason": "x"}),
            400,
            "duration_over_cap",
        ),
        (
            "alice",
            json!({"flow": "infra_access", "duration": "1h"}),
            400,
            "reason_required",
        ),
        (
            "alice",
            json!({"flow": "custom", "duration": "30m"}),
            400,
            "duration_not_allowed",
        ),
        (
            "mallory",
            json!({"flow": "infra_access", "duration": "1h", "reason": "x"}),
            403,
            "unknown_caller",
        ),
    ];
    for (caller, body, status, code) in cases {
        let mut event = world
            .api_event("apigw-create-request.json", "alice", None)
            .json(&body);
        if caller == "mallory" {
            event = event.caller("arn:aws:iam::123456789012:user/mallory");
        }
        let (got, answer) = world.request_fn(&event).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let mine = world
        .api_event("apigw-list-requests.json", "alice", None)
        .query("scope=mine");
    let (status, answer) = world.request_fn(&mine).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["requests"], json!([]), "nothing in DynamoDB");
    assert!(world.slack.calls().is_empty(), "nothing posted to Slack");
    let schedules = world
        .schedules
        .list_schedules()
        .group_name(&world.schedule_group)
        .send()
        .await
        .expect("list schedules");
    assert!(schedules.schedules().is_empty(), "nothing scheduled");
}

#[tokio::test]
async fn cancel_deletes_the_time_out_and_updates_the_message() {
    let world = World::new().await;
    let id = world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": 1800, "reason": "INC-4211"}),
        )
        .await;
    let timeout = ScheduledAction::Timeout {
        request_id: id.clone(),
    };
    assert!(world.schedule(&timeout.schedule_name()).await.is_some());
    let ts = world.stored(&id).await.message.expect("announced").ts;

    let by_bob = world.api_event("apigw-cancel-request.json", "bob", Some(&id));
    let (status, answer) = world.request_fn(&by_bob).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("forbidden")),
        "{answer}"
    );

    let cancel = world.api_event("apigw-cancel-request.json", "alice", Some(&id));
    let (status, answer) = world.request_fn(&cancel).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["state"], "CANCELLED");
    assert_eq!(world.stored(&id).await.state, State::Cancelled);
    assert!(
        world.schedule(&timeout.schedule_name()).await.is_none(),
        "time-out deleted"
    );
    let message = world
        .slack
        .state()
        .message(APPROVALS, &ts)
        .expect("message");
    assert_eq!(message.edits, 1);
    assert!(
        message.buttons().is_empty(),
        "no buttons on a cancelled request"
    );
    world.verified_audit(&id).await;

    // A click on the old message now only explains.
    let (status, _) = world
        .approve_fn(&world.click("slack-interaction-approve.json", &id, "U0BOB0001"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(world.stored(&id).await.state, State::Cancelled);
    assert!(world.invoker.escalations().is_empty());
}

#[tokio::test]
async fn an_unanswered_request_times_out_when_its_schedule_fires() {
    let world = World::new().await;
    let id = world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": "1h", "reason": "INC-4211"}),
        )
        .await;
    let timeout = ScheduledAction::Timeout {
        request_id: id.clone(),
    };
    world.clock.advance(Duration::from_secs(60));
    let input = world.fire(&timeout).await;
    let answer = world.revoke_fn(input).await.expect("time out");
    assert_eq!(answer["state"], "TIMED_OUT", "{answer}");
    assert_eq!(world.stored(&id).await.state, State::TimedOut);
    world.verified_audit(&id).await;
}
