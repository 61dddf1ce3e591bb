//! A flow whose target is a Lambda function: the LambdaStrategy speaking the JSON contract to
//! the example target's handler, which grants by IAM group membership in moto.

use std::time::Duration;

use elevate_core::events::ScheduledAction;
use elevate_core::State;
use elevate_tests::{World, CUSTOM_CHANNEL, EXAMPLE_TARGET_ARN};
use serde_json::json;

#[tokio::test]
async fn a_custom_target_grants_and_removes_through_the_contract() {
    let world = World::new().await;
    let id = world
        .open("alice", &json!({"flow": "custom", "duration": "15m"}))
        .await;
    assert_eq!(world.slack.messages(CUSTOM_CHANNEL).len(), 1);

    // bob approves from the CLI; the escalation it started is delivered.
    let approve = world.api_event("apigw-approve-request.json", "bob", Some(&id));
    let (status, answer) = world.approve_fn(&approve).await;
    assert_eq!(status, 200, "{answer}");
    let payload = world.invoker.escalations()[0].payload.clone();
    let done = world.escalate_fn(payload).await.expect("escalate");
    assert!(done.escalated);

    // The example target was invoked synchronously with the contract, and granted.
    let calls = world.invoker.calls();
    let call = calls
        .iter()
        .find(|c| !c.asynchronous)
        .expect("the target was invoked");
    assert_eq!(call.function, EXAMPLE_TARGET_ARN);
    assert_eq!(call.payload["type"], "escalate");
    assert_eq!(call.payload["request"]["id"], id.as_str());
    assert_eq!(
        call.payload["person"]["iam_user"],
        world.users["alice"].as_str()
    );
    assert_eq!(call.payload["target"], "example");
    assert!(world.is_member(&world.example_group, "alice").await);
    assert!(!world.is_member(&world.admins, "alice").await);
    assert_eq!(world.stored(&id).await.state, State::Active);

    // At expiry the target is asked to remove it.
    world.clock.advance(Duration::from_secs(60));
    let expire = ScheduledAction::Expire {
        request_id: id.clone(),
    };
    let input = world.fire(&expire).await;
    let answer = world.revoke_fn(input).await.expect("expire");
    assert_eq!(answer["state"], "EXPIRED");
    assert!(!world.is_member(&world.example_group, "alice").await);
    let deescalate = world
        .invoker
        .calls()
        .into_iter()
        .rev()
        .find(|c| !c.asynchronous)
        .expect("deescalate call");
    assert_eq!(deescalate.payload["type"], "deescalate");
    world.verified_audit(&id).await;
}

#[tokio::test]
async fn a_target_that_refuses_leaves_the_request_approved_for_a_retry() {
    let world = World::new().await;
    let id = world
        .open("alice", &json!({"flow": "custom", "duration": "1h"}))
        .await;
    world
        .iam
        .delete_user()
        .user_name(&world.users["alice"])
        .send()
        .await
        .expect("delete user");
    // alice's IAM user is gone: the example target answers ok:false, saying why.
    let approve = world.api_event("apigw-approve-request.json", "bob", Some(&id));
    assert_eq!(world.approve_fn(&approve).await.0, 200);
    let payload = world.invoker.escalations()[0].payload.clone();
    let err = world.escalate_fn(payload).await.expect_err("refused");
    assert!(err.to_string().contains("target refused"), "{err}");
    assert_eq!(world.stored(&id).await.state, State::Approved);
}
