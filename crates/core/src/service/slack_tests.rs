//! Steps taken from Slack: taken before Slack is answered, followed up after.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::audit::Action;
use crate::config::Config;
use crate::events::{FollowUp, ScheduledAction};
use crate::model::State;
use crate::testing::{sample_config, FakeApp, Notice, SAMPLE_CONFIG};

use super::*;

const TEAM: &str = "T0ELEVATE";
const ALICE: &str = "U0ALICE01";
const BOB: &str = "U0BOB0001";

/// The sample config and dave, who approves nothing.
fn with_dave() -> FakeApp {
    let text = format!(
        "{SAMPLE_CONFIG}\n[[people]]\nname = \"dave\"\niam_user = \"dave\"\nslack_id = \"U0DAVE001\"\nemail = \"dave@example.com\"\n"
    );
    FakeApp::new(Config::parse(&text).unwrap())
}

fn events_of(app: &FakeApp, id: &crate::model::RequestId) -> Vec<crate::audit::AuditEvent> {
    let mut events: Vec<_> = app
        .store
        .events_all()
        .into_iter()
        .filter(|e| &e.request_id == id)
        .collect();
    events.sort_by_key(|e| e.seq);
    events
}

fn submission(hours: u64, reason: &str) -> Submission {
    Submission {
        flow: "infra_access".into(),
        target: None,
        account: None,
        duration: Duration::from_secs(hours * 3600),
        reason: reason.into(),
    }
}

fn announcements(app: &FakeApp) -> usize {
    app.notifier
        .notices()
        .iter()
        .filter(|n| matches!(n, Notice::Announce { .. }))
        .count()
}

fn dms_to(app: &FakeApp, person: &str) -> Vec<(State, String)> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Tell {
                person: p,
                state,
                text,
                ..
            } if p == person => Some((state, text)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_request_from_the_form_is_stored_before_the_answer_and_announced_after() {
    let app = FakeApp::new(sample_config());
    let request = submit_from_slack(&app.app, TEAM, ALICE, submission(1, "INC-4211"))
        .await
        .unwrap();

    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.requester, "alice");
    assert_eq!(
        events_of(&app, &request.id)[0].principal.as_deref(),
        Some(format!("slack:{TEAM}/{ALICE}").as_str())
    );
    assert_eq!(
        app.follow_ups.deferred(),
        [FollowUp::Opened {
            request_id: request.id.clone()
        }]
    );
    assert_eq!(announcements(&app), 0, "nothing slow before the answer");

    app.run_follow_ups().await;
    assert_eq!(announcements(&app), 1);
    assert!(app.request(&request.id).message.is_some());
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    };
    assert!(app
        .scheduler
        .schedule_named(&timeout.schedule_name())
        .is_some());
    let told = dms_to(&app, "alice");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].1.contains("waiting for an approver"), "{told:?}");

    // A retried follow-up announces nothing twice.
    follow_up(
        &app.app,
        &FollowUp::Opened {
            request_id: request.id.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(announcements(&app), 1);
    assert_eq!(dms_to(&app, "alice").len(), 1);
}

#[tokio::test]
async fn a_refused_form_stores_nothing_and_defers_nothing() {
    let app = FakeApp::new(sample_config());
    let cases = [
        (ALICE, submission(100, "INC-4211"), "duration_over_cap"),
        (ALICE, submission(1, "  "), "reason_required"),
        (
            ALICE,
            submission(1, "a\u{7}bell"),
            "reason_invalid_characters",
        ),
        ("U0STRANGER", submission(1, "INC-4211"), "forbidden"),
    ];
    for (user, submission, code) in cases {
        let err = submit_from_slack(&app.app, TEAM, user, submission)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }
    let err = submit_from_slack(
        &app.app,
        TEAM,
        ALICE,
        Submission {
            flow: "no_such_flow".into(),
            ..submission(1, "INC-4211")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "unknown_flow", "{err}");
    assert!(app.store.requests_all().is_empty());
    assert!(app.store.events_all().is_empty());
    assert!(app.follow_ups.deferred().is_empty());
    assert!(app.notifier.notices().is_empty());
}

#[tokio::test]
async fn a_decision_from_slack_is_written_before_the_answer_and_followed_up_after() {
    let app = FakeApp::new(sample_config());
    let id = app
        .submit("alice", "infra_access", Duration::from_secs(3600))
        .await;
    app.notifier.clear();

    let outcome = decide_from_slack(&app.app, TEAM, BOB, "C0APPROVALS", &id, Decision::Approve)
        .await
        .unwrap();
    assert!(matches!(outcome, SlackOutcome::Decided(ref r) if r.state == State::Approved));
    assert_eq!(app.request(&id).state, State::Approved, "written at once");
    assert!(
        app.escalation.started().is_empty(),
        "started after the answer"
    );
    assert!(
        app.notifier.notices().is_empty(),
        "Slack told after the answer"
    );

    app.run_follow_ups().await;
    assert_eq!(app.escalation.started(), std::slice::from_ref(&id));
    assert!(app
        .notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Update { request, .. } if request.state == State::Approved)));
    let timeout = ScheduledAction::Timeout {
        request_id: id.clone(),
    };
    assert!(app
        .scheduler
        .schedule_named(&timeout.schedule_name())
        .is_none());
}

#[tokio::test]
async fn a_follow_up_that_cannot_be_handed_over_runs_at_once() {
    let app = FakeApp::new(sample_config());
    let id = app
        .submit("alice", "infra_access", Duration::from_secs(3600))
        .await;
    app.follow_ups.fail_next(1);
    decide_from_slack(&app.app, TEAM, BOB, "C0APPROVALS", &id, Decision::Deny)
        .await
        .unwrap();
    assert!(app.follow_ups.deferred().is_empty());
    assert_eq!(app.request(&id).state, State::Denied);
    let told = dms_to(&app, "alice");
    assert!(
        told.iter()
            .any(|(_, text)| text.contains("bob denied your")),
        "{told:?}"
    );
}

#[tokio::test]
async fn end_access_now_ends_the_grant_as_its_requester() {
    let app = FakeApp::new(sample_config());
    let id = app.approved().await;
    escalate(&app.app, &id).await.unwrap().unwrap();
    assert!(app.strategy.has("admins", "alice"));
    let activated = dms_to(&app, "alice");
    assert!(
        activated.iter().any(|(state, _)| *state == State::Active),
        "the DM about the grant is sent while it is ACTIVE (Slack adds End access now): {activated:?}"
    );

    end_access_from_slack(&app.app, TEAM, ALICE, "D0ALICE", &id)
        .await
        .unwrap();
    assert_eq!(
        app.request(&id).state,
        State::Active,
        "ended after the answer"
    );
    app.run_follow_ups().await;

    let ended = app.request(&id);
    assert_eq!(ended.state, State::Revoked);
    assert!(!app.strategy.has("admins", "alice"));
    let events = events_of(&app, &id);
    let revoke = events.last().unwrap();
    assert_eq!(revoke.action, Action::Revoke);
    assert_eq!(revoke.actor, crate::model::Actor::Person("alice".into()));
    assert_eq!(
        revoke.principal.as_deref(),
        Some(format!("slack:{TEAM}/{ALICE}").as_str())
    );
}

#[tokio::test]
async fn end_access_now_by_anyone_else_is_refused_privately_and_twice_is_quiet() {
    let app = with_dave();
    let id = app.approved().await;
    escalate(&app.app, &id).await.unwrap().unwrap();

    // dave is neither the requester nor an approver; a stranger is no one.
    for user in ["U0DAVE001", "U0STRANGER"] {
        end_access_from_slack(&app.app, TEAM, user, "D0X", &id)
            .await
            .unwrap();
    }
    app.run_follow_ups().await;
    assert_eq!(app.request(&id).state, State::Active);
    assert!(app.strategy.has("admins", "alice"));

    end_access_from_slack(&app.app, TEAM, ALICE, "D0ALICE", &id)
        .await
        .unwrap();
    end_access_from_slack(&app.app, TEAM, ALICE, "D0ALICE", &id)
        .await
        .unwrap();
    app.run_follow_ups().await;
    assert_eq!(app.request(&id).state, State::Revoked);
    let private: Vec<(String, String)> = app
        .notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::TellPrivately {
                person_slack_id,
                text,
                ..
            } => Some((person_slack_id, text)),
            _ => None,
        })
        .collect();
    // alice's second click finds the grant she ended: she already has her answer.
    assert_eq!(private.len(), 2, "{private:?}");
    assert_eq!(private[0].0, "U0DAVE001");
    assert!(private[0].1.contains("only the requester"), "{private:?}");
    assert!(private[1].1.contains("not a person"), "{private:?}");

    // Someone else's click on the ended grant still gets a why.
    end_access_from_slack(&app.app, TEAM, "U0DAVE001", "D0X", &id)
        .await
        .unwrap();
    app.run_follow_ups().await;
    let last = app.notifier.notices().into_iter().last().unwrap();
    assert!(
        matches!(last, Notice::TellPrivately { ref text, .. } if text.contains("only the requester")),
        "{last:?}"
    );
}

#[tokio::test]
async fn end_access_now_that_cannot_be_handed_over_fails_the_click() {
    let app = FakeApp::new(sample_config());
    let id = app.approved().await;
    escalate(&app.app, &id).await.unwrap().unwrap();
    app.follow_ups.fail_next(1);
    let err = end_access_from_slack(&app.app, TEAM, ALICE, "D0ALICE", &id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fault, "{err}");
    assert_eq!(app.request(&id).state, State::Active);
}

#[tokio::test]
async fn a_follow_up_that_meets_slack_or_lambda_down_fails_so_it_is_retried() {
    let app = FakeApp::new(sample_config());
    let request = submit_from_slack(&app.app, TEAM, ALICE, submission(1, "INC-4211"))
        .await
        .unwrap();
    let opened = FollowUp::Opened {
        request_id: request.id.clone(),
    };
    app.follow_ups.take();
    app.notifier.fail_next(1);
    let err = follow_up(&app.app, &opened).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fault, "{err}");
    assert_eq!(announcements(&app), 0);
    // Lambda's retry announces it, once.
    follow_up(&app.app, &opened).await.unwrap();
    follow_up(&app.app, &opened).await.unwrap();
    assert_eq!(announcements(&app), 1);

    decide_from_slack(
        &app.app,
        TEAM,
        BOB,
        "C0APPROVALS",
        &request.id,
        Decision::Approve,
    )
    .await
    .unwrap();
    let decided = app.follow_ups.take();
    app.escalation.fail_next(1);
    let err = follow_up(&app.app, &decided[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fault, "{err}");
    app.notifier.fail_next(1);
    let err = follow_up(&app.app, &decided[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fault, "Slack down: {err}");
    follow_up(&app.app, &decided[0]).await.unwrap();
    assert!(app
        .notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Update { request, .. } if request.state == State::Approved)));
}

#[tokio::test]
async fn the_same_form_submitted_again_is_the_same_request() {
    let app = FakeApp::new(sample_config());
    let first = submit_from_slack(&app.app, TEAM, ALICE, submission(1, "INC-4211"))
        .await
        .unwrap();
    // Slack showed the late answer as failed; alice submits the same answers again.
    app.clock.advance(Duration::from_secs(10));
    let again = submit_from_slack(&app.app, TEAM, ALICE, submission(1, " INC-4211 "))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(app.store.requests_all().len(), 1);
    // Other answers, or the same ones much later, are a new request.
    let other = submit_from_slack(&app.app, TEAM, ALICE, submission(2, "INC-4211"))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    app.clock.advance(Duration::from_secs(6 * 60));
    let later = submit_from_slack(&app.app, TEAM, ALICE, submission(1, "INC-4211"))
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
    assert_eq!(app.store.requests_all().len(), 3);
}

#[tokio::test]
async fn end_access_now_that_fails_is_retried_and_the_person_told() {
    let app = FakeApp::new(sample_config());
    let id = app.approved().await;
    escalate(&app.app, &id).await.unwrap().unwrap();
    end_access_from_slack(&app.app, TEAM, ALICE, "D0ALICE", &id)
        .await
        .unwrap();
    let work = app.follow_ups.take();
    app.strategy.fail_deescalate(1);
    let err = follow_up(&app.app, &work[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fault, "{err}");
    assert_eq!(app.request(&id).state, State::Active);
    let last = app.notifier.notices().into_iter().last().unwrap();
    assert!(
        matches!(last, Notice::TellPrivately { ref person_slack_id, ref text, .. }
            if person_slack_id == ALICE && text.contains("could not end your access yet")),
        "{last:?}"
    );
    // Lambda's retry ends it.
    follow_up(&app.app, &work[0]).await.unwrap();
    assert_eq!(app.request(&id).state, State::Revoked);
    assert!(!app.strategy.has("admins", "alice"));
}
