//! Ending a grant ends the role sessions it allowed (iam_group targets that name `roles`).

use std::time::Duration;

use crate::audit::verify_chain;
use crate::config::Config;
use crate::events::ScheduledAction;
use crate::model::{RequestId, SessionsEnded, State};
use crate::testing::{caller_of, FakeApp, Notice, SAMPLE_CONFIG};

use super::*;

/// The sample config whose `admins` target lets its group assume SymDemoEscalated.
fn with_roles() -> FakeApp {
    let text = SAMPLE_CONFIG.replacen(
        "group = \"SymDemoAdmins\"\n",
        "group = \"SymDemoAdmins\"\nroles = [\"arn:aws:iam::123456789012:role/SymDemoEscalated\"]\n",
        1,
    );
    FakeApp::new(Config::parse(&text).expect("config"))
}

async fn active(app: &FakeApp, who: &str, approver: &str) -> RequestId {
    let id = app
        .submit(who, "infra_access", Duration::from_secs(3600))
        .await;
    app.approve(&id, approver).await;
    escalate(&app.app, &id)
        .await
        .expect("escalate")
        .expect("escalated");
    id
}

async fn expire(app: &FakeApp, id: &RequestId) -> Option<Request> {
    app.clock.advance(Duration::from_secs(3600));
    end_by_schedule(
        &app.app,
        &ScheduledAction::Expire {
            request_id: id.clone(),
        },
    )
    .await
    .expect("expire")
}

fn dms(app: &FakeApp) -> Vec<String> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Tell { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_ended_grant_ends_the_persons_earlier_sessions_before_it_is_recorded() {
    let app = with_roles();
    let id = active(&app, "alice", "bob").await;
    let ended = expire(&app, &id).await.expect("ended");

    assert_eq!(ended.state, State::Expired);
    let stored = app.request(&id);
    assert_eq!(stored.sessions_ended, Some(SessionsEnded::Person));
    let calls = app.strategy.sessions_ended();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].0.as_str(), calls[0].1.as_str()),
        ("admins", "alice")
    );
    let end = stored.ended_at.expect("ended at");
    assert!(
        calls[0].2 >= end,
        "sessions issued up to the end (and the removal after it) are denied"
    );

    let events = app.store.audit_events(&id).await.expect("events");
    let last = events.last().expect("event");
    assert_eq!(
        last.sessions,
        Some(SessionsEnded::Person),
        "the audit event says so"
    );
    verify_chain(&events, Some((stored.audit_seq, &stored.audit_head)))
        .expect("the chain verifies with the sessions hashed");
    assert!(
        dms(&app)
            .iter()
            .any(|t| t.contains("role sessions from it were ended")),
        "{:?}",
        dms(&app)
    );
}

#[tokio::test]
async fn a_grant_still_covered_by_another_ends_no_sessions() {
    let app = with_roles();
    let first = active(&app, "alice", "bob").await;
    app.clock.advance(Duration::from_secs(600));
    let _second = active(&app, "alice", "carol").await;
    let person = app.person("alice");

    revoke(&app.app, &caller_of(&person), &first, None)
        .await
        .expect("revoke");

    assert_eq!(app.request(&first).state, State::Revoked);
    assert!(app.request(&first).kept_access_for.is_some());
    assert_eq!(app.request(&first).sessions_ended, None);
    assert!(
        app.strategy.sessions_ended().is_empty(),
        "the other grant still allows the sessions"
    );
    assert!(app.strategy.has("admins", "alice"));
}

#[tokio::test]
async fn a_failed_end_of_sessions_leaves_the_grant_active_until_a_retry_ends_them() {
    let app = with_roles();
    let id = active(&app, "alice", "bob").await;
    app.strategy.fail_end_sessions(1);
    app.clock.advance(Duration::from_secs(3600));
    let action = ScheduledAction::Expire {
        request_id: id.clone(),
    };
    let err = end_by_schedule(&app.app, &action)
        .await
        .expect_err("sessions not ended");
    assert_eq!(err.kind(), ErrorKind::Fault, "{err}");
    assert_eq!(
        app.request(&id).state,
        State::Active,
        "not recorded as ended"
    );
    assert!(
        !app.strategy.has("admins", "alice"),
        "the membership is gone"
    );

    let ended = end_by_schedule(&app.app, &action)
        .await
        .expect("retry")
        .expect("ended");
    assert_eq!(ended.state, State::Expired);
    assert_eq!(ended.sessions_ended, Some(SessionsEnded::Person));
}

#[tokio::test]
async fn a_role_without_room_for_the_person_denies_every_earlier_session_and_says_so() {
    let app = with_roles();
    app.strategy.sessions_fall_back(true);
    let id = active(&app, "alice", "bob").await;
    expire(&app, &id).await.expect("ended");

    assert_eq!(
        app.request(&id).sessions_ended,
        Some(SessionsEnded::AllSessions)
    );
    let events = app.store.audit_events(&id).await.expect("events");
    assert_eq!(
        events.last().and_then(|e| e.sessions),
        Some(SessionsEnded::AllSessions)
    );
    assert!(dms(&app).iter().any(|t| t.contains("Every role session")));
}

#[tokio::test]
async fn a_target_without_roles_claims_no_ended_sessions() {
    let app = FakeApp::new(crate::testing::sample_config());
    let id = active(&app, "alice", "bob").await;
    expire(&app, &id).await.expect("ended");
    assert_eq!(app.request(&id).sessions_ended, None);
    assert!(app.strategy.sessions_ended().is_empty());
    assert!(dms(&app).iter().all(|t| !t.contains("sessions")));
}
