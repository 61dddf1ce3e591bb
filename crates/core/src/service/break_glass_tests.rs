//! Break-glass, against the fakes: active at once on the requester's word, posted to the
//! security channel, reviewed by an approver afterwards or marked unreviewed, and refused
//! where the flow does not allow it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::audit::Action;
use crate::config::Config;
use crate::events::ScheduledAction;
use crate::machine::{self, Command, TransitionError};
use crate::model::{AutoDecider, By, Request, State};
use crate::rules::RuleError;
use crate::testing::{caller_of, FakeApp, Notice, SAMPLE_CONFIG};

use super::*;

/// The sample config plus flow `urgent` (alice, bob or carol approve, never their own; break-glass for up to 30m of
/// its 2h, posted to C0SECURITY, reviewed within 1h; target `urgent_ops`).
fn config() -> Config {
    Config::parse(&format!(
        r#"{SAMPLE_CONFIG}
[[flows]]
name = "urgent"
max_duration = "2h"
reason_required = false

[flows.approvers]
channel = "C0URGENT"
people = ["alice", "bob", "carol"]

[flows.break_glass]
max_duration = "30m"
channel = "C0SECURITY"
review_within = "1h"

[[flows.targets]]
name = "urgent_ops"
type = "iam_group"
group = "UrgentOps"
"#
    ))
    .unwrap()
}

fn submission(flow: &str, minutes: u64, reason: &str) -> Submission {
    Submission {
        flow: flow.into(),
        target: None,
        account: None,
        duration: Duration::from_secs(minutes * 60),
        reason: reason.into(),
    }
}

async fn break_glass(
    app: &FakeApp,
    flow: &str,
    minutes: u64,
    reason: &str,
) -> Result<Request, ServiceError> {
    let alice = app.app.config.person("alice").unwrap();
    submit_break_glass(
        &app.app,
        &caller_of(alice),
        submission(flow, minutes, reason),
    )
    .await
}

async fn review_as(app: &FakeApp, who: &str, request: &Request) -> Result<Request, ServiceError> {
    let person = app.app.config.person(who).unwrap();
    decide(
        &app.app,
        &caller_of(person),
        &request.id,
        Decision::Review,
        None,
    )
    .await
}

fn review_schedule(app: &FakeApp, request: &Request) -> Option<crate::ports::ScheduleInfo> {
    app.scheduler
        .schedule_named(&format!("timeout-{}", request.id))
}

#[tokio::test]
async fn a_break_glass_request_is_active_at_once_and_posted_to_the_security_channel() {
    let app = FakeApp::new(config());
    let now = app.clock.now();
    let request = break_glass(&app, "urgent", 20, "INC-11: the database is down")
        .await
        .unwrap();

    assert_eq!(request.state, State::Approved);
    let stored = app.request(&request.id);
    assert_eq!(stored.decided_by.as_deref(), Some("elevate:break_glass"));
    assert_eq!(
        stored.decision_reason.as_deref(),
        Some("break-glass: INC-11: the database is down")
    );
    assert_eq!(
        stored.decided_automatically(),
        Some(AutoDecider::BreakGlass)
    );
    assert_eq!(stored.channel.as_deref(), Some("C0SECURITY"));
    let review = stored.break_glass.clone().unwrap();
    assert_eq!(review.review_by, now + chrono::Duration::hours(1));
    assert!(review.awaits_review() && !review.unreviewed);
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Approve]
    );
    assert_eq!(app.escalation.started(), vec![request.id.clone()]);

    let posted: Vec<String> = app
        .notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Announce {
                request: r,
                message,
                ..
            } if r.id == request.id => Some(message.channel),
            _ => None,
        })
        .collect();
    assert_eq!(posted, ["C0SECURITY"]);
    // Its time-out is the review deadline, kept after the approval.
    let schedule = review_schedule(&app, &request).expect("the review deadline");
    assert_eq!(schedule.at, review.review_by);
    assert_eq!(
        schedule.action,
        ScheduledAction::Timeout {
            request_id: request.id.clone()
        }
    );
}

#[tokio::test]
async fn break_glass_is_refused_where_the_flow_does_not_allow_it_and_nothing_is_stored() {
    let app = FakeApp::new(config());
    let refusals = [
        (
            break_glass(&app, "infra_access", 20, "INC-11").await,
            "break_glass_not_allowed",
        ),
        (
            break_glass(&app, "urgent", 45, "INC-11").await,
            "duration_over_cap",
        ),
        (
            break_glass(&app, "urgent", 20, "  ").await,
            "reason_required",
        ),
    ];
    for (outcome, code) in refusals {
        match outcome {
            Err(ServiceError::Rule(rule)) => assert_eq!(rule.code(), code, "{rule}"),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    assert!(matches!(
        break_glass(&app, "infra_access", 20, "INC-11").await,
        Err(ServiceError::Rule(RuleError::BreakGlassNotAllowed { .. }))
    ));
    assert!(app.store.events_all().is_empty(), "nothing is written");
    assert!(app.escalation.started().is_empty());
    assert!(app.notifier.notices().is_empty());
}

#[tokio::test]
async fn an_approver_reviews_it_once_and_never_the_one_who_used_it() {
    let app = FakeApp::new(config());
    let request = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();

    // alice used it: an approver, but not of her own break-glass.
    let own = review_as(&app, "alice", &request).await.unwrap_err();
    assert!(
        matches!(own, ServiceError::Rule(RuleError::SelfApproval { .. })),
        "{own:?}"
    );
    let reviewed = review_as(&app, "bob", &request).await.unwrap();
    assert_eq!(reviewed.state, State::Approved, "a review keeps the state");
    let review = reviewed.break_glass.clone().unwrap();
    assert_eq!(review.reviewed_by.as_deref(), Some("bob"));
    assert!(review.reviewed_at.is_some());
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Approve, Action::Review]
    );
    // Reviewed: the deadline goes.
    assert!(review_schedule(&app, &request).is_none());

    let again = review_as(&app, "carol", &request).await.unwrap_err();
    assert!(
        matches!(
            again,
            ServiceError::Transition(TransitionError::AlreadyReviewed { .. })
        ),
        "{again:?}"
    );
    assert_eq!(app.actions(&request.id).len(), 3, "nothing more is written");
}

#[tokio::test]
async fn a_request_that_is_not_break_glass_has_nothing_to_review() {
    let app = FakeApp::new(config());
    let alice = app.app.config.person("alice").unwrap();
    let request = submit(
        &app.app,
        &caller_of(alice),
        submission("urgent", 20, "INC-12"),
    )
    .await
    .unwrap();
    let err = review_as(&app, "bob", &request).await.unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Transition(TransitionError::NotBreakGlass)
        ),
        "{err:?}"
    );
    // Nor may elevate approve it as break-glass.
    let err = machine::apply(
        &request,
        Command::Approve { reason: None },
        &By::system("break_glass", "lambda:elevate-request"),
        app.clock.now(),
    )
    .unwrap_err();
    assert_eq!(err, TransitionError::NotBreakGlass);
}

#[tokio::test]
async fn an_unreviewed_grant_is_marked_at_its_deadline_and_the_channel_is_reminded() {
    let app = FakeApp::new(config());
    let request = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();
    let review_by = request.break_glass.as_ref().unwrap().review_by;

    // The deadline's schedule fires (the time-out waits for the deadline itself).
    let marked = time_out(&app.app, &request.id).await.unwrap().unwrap();
    assert!(app.clock.now() >= review_by);
    let review = marked.break_glass.clone().unwrap();
    assert!(review.unreviewed);
    assert_eq!(review.reviewed_by, None);
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Approve, Action::ReviewOverdue]
    );
    let reminders: Vec<(Option<String>, String)> = app
        .notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Remind {
                channel,
                thread,
                text,
                ping,
            } => {
                assert_eq!(thread, marked.message.as_ref().map(|m| m.ts.clone()));
                assert!(ping.is_empty());
                Some((Some(channel), text))
            }
            _ => None,
        })
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].0.as_deref(), Some("C0SECURITY"));
    assert!(reminders[0].1.contains("was not reviewed"), "{reminders:?}");

    // Fired again: nothing more. Reviewed late: recorded, and it stays marked unreviewed.
    assert!(time_out(&app.app, &request.id).await.unwrap().is_none());
    let late = review_as(&app, "carol", &request).await.unwrap();
    let review = late.break_glass.unwrap();
    assert!(review.unreviewed);
    assert_eq!(review.reviewed_by.as_deref(), Some("carol"));
    assert_eq!(
        app.actions(&request.id),
        vec![
            Action::Request,
            Action::Approve,
            Action::ReviewOverdue,
            Action::Review
        ]
    );
}

#[tokio::test]
async fn a_grant_reviewed_in_time_is_left_alone_at_the_deadline() {
    let app = FakeApp::new(config());
    let request = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();
    review_as(&app, "bob", &request).await.unwrap();
    assert!(time_out(&app.app, &request.id).await.unwrap().is_none());
    let stored = app.request(&request.id);
    assert!(!stored.break_glass.unwrap().unreviewed);
    assert!(!app
        .notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Remind { .. })));
}

#[tokio::test]
async fn one_break_glass_at_a_time_until_it_is_reviewed() {
    let app = FakeApp::new(config());
    let first = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();
    let again = break_glass(&app, "urgent", 20, "INC-11 again").await;
    match again {
        Err(ServiceError::Rule(rule)) => assert_eq!(rule.code(), "break_glass_in_use", "{rule}"),
        other => panic!("a second break-glass was not refused: {other:?}"),
    }
    assert_eq!(app.store.events_all().len(), 2, "nothing more is written");
    review_as(&app, "bob", &first).await.unwrap();
    let second = break_glass(&app, "urgent", 20, "INC-12").await.unwrap();
    assert_eq!(second.state, State::Approved);
}

#[tokio::test]
async fn a_break_glass_grant_is_extended_within_its_break_glass_cap_only() {
    let app = FakeApp::new(config());
    let request = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();
    escalate(&app.app, &request.id).await.unwrap();
    assert_eq!(app.request(&request.id).state, State::Active);
    let alice = app.app.config.person("alice").unwrap();
    // 20m + 15m is over the break-glass cap of 30m (the flow's own cap is 2h).
    let err = extend(
        &app.app,
        &caller_of(alice),
        &request.id,
        Duration::from_secs(15 * 60),
        "INC-11 is not over",
    )
    .await
    .unwrap_err();
    match err {
        ServiceError::Rule(rule) => assert_eq!(rule.code(), "extension_over_cap", "{rule}"),
        other => panic!("{other:?}"),
    }
    let asked = extend(
        &app.app,
        &caller_of(alice),
        &request.id,
        Duration::from_secs(10 * 60),
        "INC-11 is not over",
    )
    .await
    .unwrap();
    assert!(
        asked.extension.is_some(),
        "within the cap, approvers decide"
    );
}

#[tokio::test]
async fn the_sweep_posts_a_break_glass_grant_slack_missed_and_marks_a_lost_deadline() {
    let app = FakeApp::new(config());
    // Slack is down when it is used: the deadline is scheduled all the same.
    app.notifier.fail_next(1);
    let request = break_glass(&app, "urgent", 20, "INC-11").await.unwrap();
    assert!(app.request(&request.id).message.is_none());
    assert!(review_schedule(&app, &request).is_some());

    app.clock.advance(Duration::from_secs(5 * 60));
    let report = sweep(&app.app).await.unwrap();
    assert_eq!(report.announced, 1, "{report:?}");
    let posted = app
        .request(&request.id)
        .message
        .expect("posted by the sweep");
    assert_eq!(posted.channel, "C0SECURITY");

    // The deadline's schedule is lost; the sweep after the deadline marks it.
    app.clock.advance(Duration::from_secs(60 * 60));
    let report = sweep(&app.app).await.unwrap();
    assert_eq!(report.reviews_overdue, 1, "{report:?}");
    assert!(app.request(&request.id).break_glass.unwrap().unreviewed);
}
