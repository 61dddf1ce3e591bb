//! Ending grants in IAM: overlapping grants, hand-made changes, failures.

use std::time::Duration;

use elevate_core::events::ScheduledAction;
use elevate_core::{RequestId, State};
use elevate_tests::World;
use serde_json::json;

async fn active(world: &World, duration: &str) -> RequestId {
    let id = world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": duration, "reason": "INC-4211"}),
        )
        .await;
    world.approve_and_escalate(&id).await;
    assert_eq!(world.stored(&id).await.state, State::Active);
    id
}

fn expire(id: &RequestId) -> ScheduledAction {
    ScheduledAction::Expire {
        request_id: id.clone(),
    }
}

#[tokio::test]
async fn overlapping_grants_keep_the_membership_until_the_last_ends() {
    let world = World::new().await;
    let short = active(&world, "1h").await;
    world.clock.advance(Duration::from_secs(600));
    let long = active(&world, "2h").await;
    assert_eq!(
        world.members(&world.admins).await,
        [world.users["alice"].clone()]
    );

    let input = world.fire(&expire(&short)).await;
    let answer = world.revoke_fn(input).await.expect("first expiry");
    assert_eq!(answer["state"], "EXPIRED");
    assert!(
        world.is_member(&world.admins, "alice").await,
        "the 2h grant still covers alice"
    );
    assert_eq!(world.stored(&long).await.state, State::Active);

    let input = world.fire(&expire(&long)).await;
    let answer = world.revoke_fn(input).await.expect("last expiry");
    assert_eq!(answer["state"], "EXPIRED");
    assert!(!world.is_member(&world.admins, "alice").await);
    world.verified_audit(&short).await;
    world.verified_audit(&long).await;
}

/// elevate's session-ending policies on the role, as IAM returns them, one after another;
/// `None` when there are none.
async fn ended_sessions_policy(world: &World) -> Option<String> {
    let role = elevate_aws::iam::IamGroupStrategy::new(world.iam.clone())
        .read_role(&world.escalated)
        .await
        .expect("read the role")
        .expect("the role");
    let ours: Vec<String> = role
        .policies
        .into_iter()
        .filter(|(name, _)| name.starts_with(elevate_aws::sessions::POLICY_PREFIX))
        .map(|(_, document)| document)
        .collect();
    (!ours.is_empty()).then(|| ours.join("\n"))
}

#[tokio::test]
async fn sessions_end_with_the_last_grant_that_allowed_them() {
    let world = World::new().await;
    let role_id = world
        .iam
        .get_role()
        .role_name(&world.escalated)
        .send()
        .await
        .expect("GetRole")
        .role()
        .expect("role")
        .role_id()
        .to_owned();
    let alice = format!("\"{role_id}:{}\"", world.users["alice"]);
    let short = active(&world, "1h").await;
    world.clock.advance(Duration::from_secs(600));
    let long = active(&world, "2h").await;

    let input = world.fire(&expire(&short)).await;
    world.revoke_fn(input).await.expect("first expiry");
    assert_eq!(world.stored(&short).await.sessions_ended, None);
    assert!(
        ended_sessions_policy(&world)
            .await
            .is_none_or(|policy| !policy.contains(&alice)),
        "the 2h grant still allows alice's sessions"
    );

    let input = world.fire(&expire(&long)).await;
    world.revoke_fn(input).await.expect("last expiry");
    assert_eq!(
        world.stored(&long).await.sessions_ended,
        Some(elevate_core::model::SessionsEnded::Person)
    );
    let policy = ended_sessions_policy(&world).await.expect("policy written");
    assert!(policy.contains(&alice), "{policy}");
    let events = world.verified_audit(&long).await;
    assert_eq!(
        events.last().and_then(|e| e.sessions),
        Some(elevate_core::model::SessionsEnded::Person)
    );
}

#[tokio::test]
async fn a_user_removed_by_hand_still_revokes_cleanly() {
    let world = World::new().await;
    let id = active(&world, "1h").await;
    world
        .iam
        .remove_user_from_group()
        .group_name(&world.admins)
        .user_name(&world.users["alice"])
        .send()
        .await
        .expect("removed by an admin");

    // alice revokes early from the CLI.
    let event = world.api_event("apigw-revoke-request.json", "alice", Some(&id));
    let answer = world.revoke_fn(event.0).await.expect("answered");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let request = world.stored(&id).await;
    assert_eq!(request.state, State::Revoked);
    assert_eq!(request.ended_by.as_deref(), Some("alice"));
    assert!(
        world.schedule(&expire(&id).schedule_name()).await.is_none(),
        "expiry deleted"
    );
    world.verified_audit(&id).await;
}

#[tokio::test]
async fn an_iam_failure_during_revoke_leaves_the_grant_active_and_is_an_error() {
    let world = World::new().await;
    let id = active(&world, "1h").await;
    let input = world.fire(&expire(&id)).await;

    world.iam_strategy.fail_deescalate(1);
    let err = world
        .revoke_fn(input.clone())
        .await
        .expect_err("IAM failed");
    assert!(err.to_string().contains("Throttling"), "{err}");
    assert_eq!(world.stored(&id).await.state, State::Active);
    assert!(
        world.is_member(&world.admins, "alice").await,
        "access not recorded as gone"
    );
    assert_eq!(world.verified_audit(&id).await.len(), 3);

    // The Scheduler's retry succeeds.
    let answer = world.revoke_fn(input).await.expect("retry");
    assert_eq!(answer["state"], "EXPIRED");
    assert!(!world.is_member(&world.admins, "alice").await);
}

#[tokio::test]
async fn exhausted_escalation_retries_mark_the_request_failed() {
    let world = World::new().await;
    let id = world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": "1h", "reason": "INC-4211"}),
        )
        .await;
    let (status, _) = world
        .approve_fn(&world.click("slack-interaction-approve.json", &id, "U0BOB0001"))
        .await;
    assert_eq!(status, 200);

    // Escalate failed three times; Lambda invokes revoke with the destination record.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../functions/revoke/events/escalate-retries-exhausted.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    record["requestPayload"] = world.invoker.escalations()[0].payload.clone();
    let answer = world.revoke_fn(record).await.expect("recorded");
    assert_eq!(answer["state"], "FAILED", "{answer}");

    let request = world.stored(&id).await;
    assert_eq!(request.state, State::Failed);
    assert!(request
        .failure
        .as_deref()
        .is_some_and(|f| f.contains("AddUserToGroup") && f.contains("after 3 attempts")));
    let ts = request.message.expect("announced").ts;
    let message = world
        .slack
        .state()
        .message(elevate_tests::APPROVALS, &ts)
        .expect("message");
    assert!(
        message.all_text().contains("AddUserToGroup"),
        "{}",
        message.all_text()
    );
    world.verified_audit(&id).await;

    // The sweep removes whatever a failed grant left behind and ends it.
    let answer = world
        .revoke_fn(json!({"action": "sweep"}))
        .await
        .expect("sweep");
    assert_eq!(answer["sweep"]["revoked_failed"], 1, "{answer}");
    assert_eq!(world.stored(&id).await.state, State::Revoked);
}
