//! The revoke function with real-shaped Scheduler, API Gateway and destination events, and
//! the fakes.

use std::time::Duration;

use elevate_core::ports::Clock;
use elevate_core::service;
use elevate_core::testing::{infra_config, FakeApp};
use elevate_core::{RequestId, State};
use elevate_http::testing::{fixture, ApiEvent, BOB_ARN, DAVE_ARN, FIXTURE_ID};
use serde_json::{json, Value};

use crate::{handle, Event, RevokeError};

fn with_id(mut event: Value, id: &RequestId) -> Value {
    event["request_id"] = Value::from(id.as_str());
    event
}

fn expire(id: &RequestId) -> Value {
    with_id(fixture("scheduler-expire.json"), id)
}

fn destination_record(id: &RequestId) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events/escalate-retries-exhausted.json");
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut record: Value = serde_json::from_str(&text).expect("json");
    record["requestPayload"]["request_id"] = Value::from(id.as_str());
    record
}

async fn active(app: &FakeApp, hours: u64) -> RequestId {
    let id = app
        .submit("alice", "infra_access", Duration::from_secs(hours * 3600))
        .await;
    app.approve(&id, "bob").await;
    service::escalate(&app.app, &id)
        .await
        .expect("escalate")
        .expect("escalated");
    id
}

/// Moves the clock to when the expiry schedule of `id` fires.
fn at_schedule(app: &FakeApp, id: &RequestId) {
    let schedule = app
        .scheduler
        .schedule_named(&format!("revoke-{id}"))
        .expect("revocation scheduled");
    app.clock.set(schedule.at);
}

#[test]
fn events_are_told_apart_by_shape() {
    let id: RequestId = FIXTURE_ID.parse().expect("id");
    assert!(matches!(
        Event::parse(fixture("apigw-revoke-request.json")),
        Ok(Event::Http(_))
    ));
    for (name, action) in [
        ("scheduler-expire.json", "expire"),
        ("scheduler-timeout.json", "timeout"),
        ("scheduler-sweep.json", "sweep"),
    ] {
        match Event::parse(fixture(name)) {
            Ok(Event::Scheduled(parsed)) => {
                assert_eq!(
                    serde_json::to_value(&parsed).expect("json")["action"],
                    action
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match Event::parse(destination_record(&id)) {
        Ok(Event::EscalationFailed(record)) => {
            assert_eq!(record.request_payload.request_id, id);
            let error = record.failure();
            assert!(error.contains("iam:AddUserToGroup"), "{error}");
            assert!(error.ends_with("(after 3 attempts)"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        json!({}),
        json!({"action": "explode"}),
        json!({"action": "expire"}),
        json!({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {}}),
        json!([1, 2]),
    ] {
        assert!(
            matches!(Event::parse(bad.clone()), Err(RevokeError::BadEvent(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn expiry_waits_out_the_lead_then_removes_and_reads_back() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    let expires_at = app.request(&id).expires_at.expect("expires");
    at_schedule(&app, &id);

    let answer = handle(&app.app, expire(&id)).await.expect("expire");
    assert_eq!(answer["state"], "EXPIRED");
    assert_eq!(
        app.clock.waits().last(),
        Some(&expires_at),
        "waited until expiry"
    );
    assert!(app.clock.now() >= expires_at);
    assert!(!app.strategy.has("admins", "alice"));
    let request = app.request(&id);
    assert_eq!(request.state, State::Expired);
    assert!(
        app.strategy.is_member_calls() >= 2,
        "read back after removal"
    );

    // A duplicate or late delivery does nothing.
    let again = handle(&app.app, expire(&id)).await.expect("duplicate");
    assert_eq!(again, json!({"noop": true}));
    assert_eq!(app.strategy.deescalate_calls(), 1);
}

#[tokio::test]
async fn an_iam_failure_leaves_the_grant_active_and_is_an_error() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    at_schedule(&app, &id);
    app.strategy.fail_deescalate(1);
    let err = handle(&app.app, expire(&id)).await.expect_err("fault");
    assert!(matches!(err, RevokeError::Service(_)), "{err:?}");
    assert_eq!(app.request(&id).state, State::Active);
    assert!(app.strategy.has("admins", "alice"));

    // The removal that did not happen is caught by the read-back too.
    app.strategy.ignore_deescalate(1);
    let err = handle(&app.app, expire(&id))
        .await
        .expect_err("still there");
    assert!(err.to_string().contains("still on"), "{err}");
    assert_eq!(app.request(&id).state, State::Active);

    // The platform's retry succeeds.
    let answer = handle(&app.app, expire(&id)).await.expect("retry");
    assert_eq!(answer["state"], "EXPIRED");
}

#[tokio::test]
async fn overlapping_grants_keep_the_access_until_the_last_ends() {
    let app = FakeApp::new(infra_config());
    let short = active(&app, 1).await;
    let long = active(&app, 2).await;
    at_schedule(&app, &short);
    handle(&app.app, expire(&short)).await.expect("short");
    assert_eq!(app.request(&short).state, State::Expired);
    assert!(
        app.strategy.has("admins", "alice"),
        "the 2h grant still covers it"
    );
    assert_eq!(app.strategy.deescalate_calls(), 0);

    at_schedule(&app, &long);
    handle(&app.app, expire(&long)).await.expect("long");
    assert_eq!(app.request(&long).state, State::Expired);
    assert!(!app.strategy.has("admins", "alice"));
}

#[tokio::test]
async fn a_membership_removed_by_hand_still_expires_cleanly() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    app.strategy.remove_by_hand("admins", "alice");
    at_schedule(&app, &id);
    let answer = handle(&app.app, expire(&id)).await.expect("expire");
    assert_eq!(answer["state"], "EXPIRED");
}

#[tokio::test]
async fn a_pending_request_times_out() {
    let app = FakeApp::new(infra_config());
    let id = app
        .submit("alice", "infra_access", Duration::from_secs(3600))
        .await;
    let timeout = with_id(fixture("scheduler-timeout.json"), &id);
    let answer = handle(&app.app, timeout.clone()).await.expect("timeout");
    assert_eq!(answer["state"], "TIMED_OUT");
    assert_eq!(app.request(&id).state, State::TimedOut);
    assert_eq!(
        handle(&app.app, timeout).await.expect("late"),
        json!({"noop": true})
    );
    let unknown = with_id(
        fixture("scheduler-timeout.json"),
        &FIXTURE_ID.parse().expect("id"),
    );
    assert_eq!(
        handle(&app.app, unknown).await.expect("unknown"),
        json!({"noop": true})
    );
}

#[tokio::test]
async fn the_sweep_ends_what_was_missed_and_fails_loudly() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    app.clock.advance(Duration::from_secs(2 * 3600));
    let answer = handle(&app.app, fixture("scheduler-sweep.json"))
        .await
        .expect("sweep");
    assert_eq!(answer["sweep"]["expired"], 1, "{answer}");
    assert_eq!(app.request(&id).state, State::Expired);

    let other = active(&app, 1).await;
    app.clock.advance(Duration::from_secs(2 * 3600));
    app.strategy.fail_deescalate(1);
    let err = handle(&app.app, fixture("scheduler-sweep.json"))
        .await
        .expect_err("a step failed");
    assert!(
        matches!(err, RevokeError::Sweep(ref report) if report.errors == 1),
        "{err:?}"
    );
    assert_eq!(app.request(&other).state, State::Active);
}

#[tokio::test]
async fn the_sweep_re_invokes_escalate_for_forgotten_approvals() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    let before = app.escalation.started().len();
    app.clock.advance(Duration::from_secs(180));
    let answer = handle(&app.app, fixture("scheduler-sweep.json"))
        .await
        .expect("sweep");
    assert_eq!(answer["sweep"]["escalations_retried"], 1, "{answer}");
    let started = app.escalation.started();
    assert_eq!(started.len(), before + 1);
    assert_eq!(started[before], id);
}

#[tokio::test]
async fn retries_exhausted_marks_the_request_failed_and_says_why() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    let answer = handle(&app.app, destination_record(&id))
        .await
        .expect("fail");
    assert_eq!(answer["state"], "FAILED");
    let request = app.request(&id);
    assert_eq!(request.state, State::Failed);
    assert!(request
        .failure
        .as_deref()
        .is_some_and(|f| f.contains("iam:AddUserToGroup")));
    assert!(app
        .notifier
        .told("alice")
        .iter()
        .any(|t| t.contains("failed")));
    // Delivered twice: nothing more.
    assert_eq!(
        handle(&app.app, destination_record(&id))
            .await
            .expect("again"),
        json!({"noop": true})
    );
}

#[tokio::test]
async fn early_revoke_over_http() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    let event = ApiEvent::fixture("apigw-revoke-request.json").id(id.as_str());

    let answer = handle(&app.app, event.clone().caller(DAVE_ARN).0)
        .await
        .expect("http");
    assert_eq!(answer["statusCode"], 403);
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["error"], "forbidden");

    let answer = handle(&app.app, event.0.clone()).await.expect("http");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(answer["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["request"]["state"], "REVOKED");
    assert_eq!(body["request"]["ended_by"], "alice");
    assert!(!app.strategy.has("admins", "alice"));
    assert!(app
        .scheduler
        .schedule_named(&format!("revoke-{id}"))
        .is_none());

    let again = handle(&app.app, event.clone().caller(BOB_ARN).0)
        .await
        .expect("http");
    assert_eq!(again["statusCode"], 409, "{again}");

    let mut wrong_route = event.0.clone();
    wrong_route["rawPath"] = Value::from(format!("/requests/{id}/cancel"));
    let answer = handle(&app.app, wrong_route).await.expect("http");
    assert_eq!(answer["statusCode"], 404);
}

#[tokio::test]
async fn an_http_fault_is_a_500_answer_not_an_error() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    app.strategy.fail_deescalate(1);
    let event = ApiEvent::fixture("apigw-revoke-request.json").id(id.as_str());
    let answer = handle(&app.app, event.0).await.expect("answered");
    assert_eq!(answer["statusCode"], 500);
    assert_eq!(app.request(&id).state, State::Active);
}

#[tokio::test]
async fn end_access_now_from_slack_revokes_as_the_requester() {
    let app = FakeApp::new(infra_config());
    let id = active(&app, 1).await;
    let event = json!({
        "follow_up": "end_access",
        "request_id": id,
        "team_id": "T0ELEVATE",
        "slack_user_id": "U0ALICE01",
        "channel": "D0ALICE",
    });
    assert!(matches!(
        Event::parse(event.clone()),
        Ok(Event::FollowUp(_))
    ));
    handle(&app.app, event).await.expect("ended");
    let request = app.request(&id);
    assert_eq!(request.state, State::Revoked);
    assert_eq!(
        app.store
            .events_all()
            .into_iter()
            .filter(|e| e.request_id == id)
            .max_by_key(|e| e.seq)
            .and_then(|e| e.principal),
        Some("slack:T0ELEVATE/U0ALICE01".to_owned())
    );
    assert!(app
        .scheduler
        .schedule_named(&format!("revoke-{id}"))
        .is_none());

    // Again (a second click, or Lambda's retry): nothing changes, and nothing more is said.
    let again = json!({
        "follow_up": "end_access",
        "request_id": id,
        "team_id": "T0ELEVATE",
        "slack_user_id": "U0ALICE01",
        "channel": "D0ALICE",
    });
    let notices = app.notifier.notices().len();
    handle(&app.app, again)
        .await
        .expect("not an error to retry");
    assert_eq!(app.request(&id).state, State::Revoked);
    assert_eq!(app.notifier.notices().len(), notices);
}

#[tokio::test]
async fn approves_follow_ups_are_not_revokes_to_run() {
    let app = FakeApp::new(infra_config());
    let id = app
        .submit("alice", "infra_access", Duration::from_secs(3600))
        .await;
    let event = json!({"follow_up": "opened", "request_id": id});
    let err = handle(&app.app, event).await.expect_err("approve's");
    assert!(matches!(err, RevokeError::BadEvent(_)), "{err}");
}
