//! The escalate function with its fixture event and the fakes.

use elevate_core::ports::Clock;
use elevate_core::testing::{infra_config, FakeApp};
use elevate_core::State;
use elevate_http::testing::{fixture, FIXTURE_ID};
use lambda_runtime::Diagnostic;
use serde_json::{json, Value};

use crate::{handle, EscalateError};

fn event(id: &str) -> Value {
    let mut event = fixture("escalate.json");
    assert_eq!(event["request_id"], FIXTURE_ID);
    event["request_id"] = Value::from(id);
    event
}

#[tokio::test]
async fn grants_reads_back_and_schedules_the_revocation() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    let done = handle(&app.app, event(id.as_str()))
        .await
        .expect("escalate");
    assert!(done.escalated);
    assert_eq!(done.state, Some(State::Active));

    let request = app.request(&id);
    assert_eq!(request.state, State::Active);
    assert!(app.strategy.has("admins", "alice"));
    let expires_at = request.expires_at.expect("expires");
    assert_eq!(expires_at, app.clock.now() + chrono::Duration::hours(1));
    let revoke = app
        .scheduler
        .schedule_named(&format!("revoke-{id}"))
        .expect("revocation scheduled");
    assert_eq!(
        revoke.at,
        expires_at - chrono::Duration::seconds(60),
        "a minute early"
    );
    assert!(app
        .notifier
        .told("alice")
        .iter()
        .any(|t| t.contains("active until")));
}

#[tokio::test]
async fn a_second_delivery_is_a_no_op() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    handle(&app.app, event(id.as_str())).await.expect("first");
    let again = handle(&app.app, event(id.as_str())).await.expect("second");
    assert!(!again.escalated);
    assert_eq!(app.strategy.escalate_calls(), 1);
    let activations = app
        .store
        .events_all()
        .iter()
        .filter(|e| e.to == State::Active)
        .count();
    assert_eq!(activations, 1);
}

#[tokio::test]
async fn a_fault_is_an_error_so_lambda_retries() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    app.strategy.fail_escalate(1);
    let err = handle(&app.app, event(id.as_str()))
        .await
        .expect_err("fault");
    assert!(matches!(err, EscalateError::Service(_)), "{err:?}");
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "EscalationFailed");
    assert!(
        diagnostic.error_message.contains("unavailable"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(app.request(&id).state, State::Approved, "nothing recorded");
    assert!(app
        .scheduler
        .schedule_named(&format!("revoke-{id}"))
        .is_none());

    // The retry succeeds.
    let done = handle(&app.app, event(id.as_str())).await.expect("retry");
    assert!(done.escalated);
}

#[tokio::test]
async fn malformed_events_and_unknown_requests() {
    let app = FakeApp::new(infra_config());
    for bad in [json!({}), json!({"request_id": "nope"}), json!("x")] {
        let err = handle(&app.app, bad.clone()).await.expect_err("bad event");
        assert!(matches!(err, EscalateError::BadEvent(_)), "{bad}: {err:?}");
    }
    let unknown = handle(&app.app, event(FIXTURE_ID))
        .await
        .expect("unknown id");
    assert!(!unknown.escalated);
}
