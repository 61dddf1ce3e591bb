//! Reminders and backup approvers, against the fakes: a request nobody answers is brought up
//! again in its thread, then posted to the backup channel where the backup approvers may
//! decide it, each once, on the time-out schedule, and caught up by the sweep.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::audit::Action;
use crate::config::Config;
use crate::events::ScheduledAction;
use crate::machine::{self, Command, TransitionError};
use crate::model::{By, MessageRef, Request, State};
use crate::rules::{Nudge, RuleError};
use crate::testing::{caller_of, FakeApp, Notice, SAMPLE_CONFIG};

use super::*;

/// The sample config plus dave, and flow `slow` (bob or carol approve in C0SLOW; reminded
/// after 10m, dave asked in C0BACKUP after 20m, timed out after 30m) and flow `quiet` (the
/// same people, dave asked in the request's own thread after 5m).
fn config() -> Config {
    Config::parse(&format!(
        r#"{SAMPLE_CONFIG}
[[people]]
name = "dave"
iam_user = "dave"
slack_id = "U0DAVE001"
email = "dave@example.com"

[[flows]]
name = "slow"
max_duration = "2h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0SLOW"
people = ["bob", "carol"]

[flows.reminders]
remind_after = "10m"
backup_after = "20m"
backup_people = ["dave"]
backup_channel = "C0BACKUP"

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "Ops"

[[flows]]
name = "selfish"
max_duration = "2h"
pending_timeout = "30m"
allow_self_approval = true

[flows.approvers]
channel = "C0SELFISH"
people = ["bob", "carol"]

[flows.reminders]
backup_after = "5m"
backup_people = ["alice", "dave"]

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "Ops"

[[flows]]
name = "quiet"
max_duration = "2h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0QUIET"
people = ["bob", "carol"]

[flows.reminders]
backup_after = "5m"
backup_people = ["dave"]

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "Ops"
"#
    ))
    .unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

async fn ask(app: &FakeApp, flow: &str) -> Request {
    let alice = app.app.config.person("alice").unwrap();
    let submission = Submission {
        flow: flow.into(),
        target: None,
        account: None,
        duration: Duration::from_secs(3600),
        reason: "INC-7: the queue is stuck".into(),
    };
    submit(&app.app, &caller_of(alice), submission)
        .await
        .unwrap()
}

async fn decide_as(
    app: &FakeApp,
    who: &str,
    request: &Request,
    decision: Decision,
) -> Result<Request, ServiceError> {
    let person = app.app.config.person(who).unwrap();
    decide(&app.app, &caller_of(person), &request.id, decision, None).await
}

/// When the request's schedule `suffix` (`""` for the time-out, `-remind`, `-backup`) fires.
fn fires_at(
    app: &FakeApp,
    request: &Request,
    suffix: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    app.scheduler
        .schedule_named(&format!("timeout-{}{suffix}", request.id))
        .map(|s| s.at)
}

/// The reminders posted: channel, thread, text, pinged.
/// Runs the request's schedule `suffix` as the revoke function does when it fires.
async fn fire(app: &FakeApp, request: &Request, suffix: &str) -> Option<Request> {
    let name = format!("timeout-{}{suffix}", request.id);
    let schedule = app
        .scheduler
        .schedule_named(&name)
        .unwrap_or_else(|| panic!("no schedule {name}"));
    end_by_schedule(&app.app, &schedule.action).await.unwrap()
}

fn reminders(app: &FakeApp) -> Vec<(String, Option<String>, String, Vec<String>)> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Remind {
                channel,
                thread,
                text,
                ping,
            } => Some((channel, thread, text, ping)),
            _ => None,
        })
        .collect()
}

fn posted_in(app: &FakeApp, channel: &str) -> Vec<MessageRef> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Announce { message, .. } if message.channel == channel => Some(message),
            _ => None,
        })
        .collect()
}

fn updated(app: &FakeApp) -> Vec<(State, MessageRef)> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Update { request, message } => Some((request.state, message)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn nobody_answers_so_the_approvers_are_reminded_then_the_backups_decide() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    let opened = request.created_at;
    let announced = app.request(&request.id).message.clone().unwrap();
    assert_eq!(announced.channel, "C0SLOW");
    // Each step has its schedule, set with the time-out's.
    let minutes = |n| Some(opened + chrono::Duration::minutes(n));
    assert_eq!(fires_at(&app, &request, "-remind"), minutes(10));
    assert_eq!(fires_at(&app, &request, "-backup"), minutes(20));
    assert_eq!(fires_at(&app, &request, ""), minutes(30));

    // Before their turn, dave is no approver: refused, nothing written.
    let early = decide_as(&app, "dave", &request, Decision::Approve).await;
    assert!(
        matches!(
            early,
            Err(ServiceError::Rule(RuleError::NotAnApprover { .. }))
        ),
        "{early:?}"
    );
    assert_eq!(app.actions(&request.id), vec![Action::Request]);

    // 10m: the approvers are reminded in the request's thread, by name.
    app.clock.advance(10 * MINUTE);
    let reminded = fire(&app, &request, "-remind").await.unwrap();
    assert_eq!(reminded.state, State::Pending);
    assert_eq!(
        reminded.reminders.as_ref().unwrap().reminded_at,
        Some(app.clock.now())
    );
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Remind]
    );
    let said = reminders(&app);
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].0, "C0SLOW");
    assert_eq!(said[0].1.as_deref(), Some(announced.ts.as_str()));
    assert!(said[0].2.contains("has waited 10m"), "{said:?}");
    assert_eq!(said[0].3, ["U0BOB0001", "U0CAROL01"]);
    // A repeated delivery takes no step twice; the time-out's schedule waits for its time.
    assert!(fire(&app, &request, "-remind").await.is_none());
    assert_eq!(reminders(&app).len(), 1);

    // 20m: the request is posted in the backup channel and dave is pinged there.
    app.clock.advance(10 * MINUTE);
    let asked = fire(&app, &request, "-backup").await.unwrap();
    let backup = asked.reminders.as_ref().unwrap();
    assert_eq!(backup.backup_asked_at, Some(app.clock.now()));
    let copy = backup.backup_message.clone().unwrap();
    assert_eq!(posted_in(&app, "C0BACKUP"), std::slice::from_ref(&copy));
    let said = reminders(&app);
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(said[1].0, "C0BACKUP");
    assert_eq!(said[1].1.as_deref(), Some(copy.ts.as_str()));
    assert_eq!(said[1].3, ["U0DAVE001"]);
    let events = app.store.events_all();
    let event = events
        .iter()
        .find(|e| e.action == Action::AskBackup)
        .unwrap();
    assert_eq!(
        event.reason.as_deref(),
        Some("no answer for 20m: dave may decide too; posted in C0BACKUP")
    );
    assert_eq!(event.actor.to_string(), "elevate:revoke");

    // dave decides, and both messages show it.
    app.notifier.clear();
    let approved = decide_as(&app, "dave", &request, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(approved.state, State::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("dave"));
    let shown: Vec<MessageRef> = updated(&app)
        .into_iter()
        .filter(|(state, _)| *state == State::Approved)
        .map(|(_, message)| message)
        .collect();
    assert!(shown.contains(&announced), "{shown:?}");
    assert!(shown.contains(&copy), "{shown:?}");
    assert_eq!(
        app.actions(&request.id),
        vec![
            Action::Request,
            Action::Remind,
            Action::AskBackup,
            Action::Approve
        ]
    );
}

#[tokio::test]
async fn a_late_delivery_asks_the_backups_without_reminding_first() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    app.clock.advance(25 * MINUTE);
    let asked = fire(&app, &request, "-remind").await.unwrap();
    assert!(asked.reminders.as_ref().unwrap().backup_asked_at.is_some());
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::AskBackup]
    );
    // The backups' own schedule then finds nothing to do, and the time-out ends it.
    assert!(fire(&app, &request, "-backup").await.is_none());
    app.clock.advance(5 * MINUTE);
    let timed_out = fire(&app, &request, "").await.unwrap();
    assert_eq!(timed_out.state, State::TimedOut);
}

#[tokio::test]
async fn a_delivery_long_before_its_step_takes_none() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    app.clock.advance(MINUTE);
    assert!(fire(&app, &request, "-remind").await.is_none());
    assert_eq!(
        app.clock.now(),
        request.created_at + chrono::Duration::minutes(1)
    );
    assert_eq!(app.actions(&request.id), vec![Action::Request]);
    assert!(reminders(&app).is_empty());
}

#[tokio::test]
async fn without_a_backup_channel_the_backups_are_pinged_in_the_requests_thread() {
    let app = FakeApp::new(config());
    let request = ask(&app, "quiet").await;
    let announced = app.request(&request.id).message.clone().unwrap();
    assert_eq!(fires_at(&app, &request, "-remind"), None);
    assert_eq!(
        fires_at(&app, &request, "-backup"),
        Some(request.created_at + chrono::Duration::minutes(5))
    );
    app.clock.advance(5 * MINUTE);
    let asked = fire(&app, &request, "-backup").await.unwrap();
    assert_eq!(asked.reminders.as_ref().unwrap().backup_message, None);
    let said = reminders(&app);
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].0, "C0QUIET");
    assert_eq!(said[0].1.as_deref(), Some(announced.ts.as_str()));
    assert_eq!(said[0].3, ["U0DAVE001"]);
    assert!(
        said[0].2.contains("dave, you may approve or deny"),
        "{said:?}"
    );
    let denied = decide_as(&app, "dave", &request, Decision::Deny)
        .await
        .unwrap();
    assert_eq!(denied.state, State::Denied);
}

#[tokio::test]
async fn an_answered_request_is_neither_reminded_nor_offered_to_the_backups() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    decide_as(&app, "bob", &request, Decision::Approve)
        .await
        .unwrap();
    app.clock.advance(25 * MINUTE);
    // Its schedules are gone; one delivered all the same takes no step.
    for suffix in ["", "-remind", "-backup"] {
        assert_eq!(fires_at(&app, &request, suffix), None, "{suffix}");
    }
    let late = ScheduledAction::AskBackup {
        request_id: request.id.clone(),
    };
    assert!(end_by_schedule(&app.app, &late).await.unwrap().is_none());
    assert!(reminders(&app).is_empty());
    assert!(posted_in(&app, "C0BACKUP").is_empty());
    let stored = app.request(&request.id);
    assert_eq!(stored.reminders, None);
    // Nor may dave decide anything of it now.
    let flow = app.app.config.flow("slow").unwrap();
    assert!(!flow.is_backup_for("dave", &stored));
}

#[tokio::test]
async fn the_sweep_takes_a_step_whose_schedule_was_lost_and_lists_it_for_the_backups() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    let dave = app.app.config.person("dave").unwrap();
    let to_approve = |app: &FakeApp| {
        let app = app.app.clone();
        async move {
            list(
                &app,
                &caller_of(app.config.person("dave").unwrap()),
                Scope::ToApprove,
                None,
                None,
                50,
            )
            .await
            .unwrap()
            .requests
            .len()
        }
    };
    assert_eq!(to_approve(&app).await, 0);
    let _ = dave;

    // Due at 10m; the sweep leaves it to its schedule for a while, then takes it.
    app.clock.advance(11 * MINUTE);
    assert_eq!(sweep(&app.app).await.unwrap().reminded, 0);
    app.clock.advance(MINUTE);
    let report = sweep(&app.app).await.unwrap();
    assert_eq!(report.reminded, 1, "{report:?}");
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Remind]
    );
    // Nothing more is due: the next sweep leaves it.
    assert_eq!(sweep(&app.app).await.unwrap().reminded, 0);

    app.clock.advance(10 * MINUTE);
    assert_eq!(sweep(&app.app).await.unwrap().reminded, 1);
    assert_eq!(to_approve(&app).await, 1);
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::Remind, Action::AskBackup]
    );
}

#[tokio::test]
async fn slack_being_down_leaves_the_step_to_the_retry() {
    let app = FakeApp::new(config());
    let request = ask(&app, "slow").await;
    app.clock.advance(10 * MINUTE);
    app.notifier.fail_next(1);
    let action = ScheduledAction::Remind {
        request_id: request.id.clone(),
    };
    assert!(end_by_schedule(&app.app, &action).await.is_err());
    assert_eq!(app.actions(&request.id), vec![Action::Request]);
    // The retry reminds, once.
    fire(&app, &request, "-remind").await.unwrap();
    assert_eq!(reminders(&app).len(), 1);
}

#[tokio::test]
async fn only_elevate_reminds_only_when_due_and_only_once() {
    let app = FakeApp::new(config());
    let flow = app.app.config.flow("slow").unwrap();
    let request = ask(&app, "slow").await;
    let opened = request.created_at;
    let due = opened + chrono::Duration::minutes(10);
    let elevate = By::system("revoke", "lambda:revoke");

    let by_bob = machine::apply(
        &request,
        Command::Remind { due },
        &By::person("bob", "slack:T1/U0BOB0001"),
        due,
    );
    assert_eq!(
        by_bob.unwrap_err(),
        TransitionError::SystemOnly {
            action: Action::Remind
        }
    );
    let early = machine::apply(&request, Command::Remind { due }, &elevate, opened);
    assert!(matches!(
        early,
        Err(TransitionError::NotYetDue { due: at, .. }) if at == due
    ));
    let reminded = machine::apply(&request, Command::Remind { due }, &elevate, due)
        .unwrap()
        .request;
    assert_eq!(reminded.state, State::Pending);
    assert_eq!(
        machine::apply(&reminded, Command::Remind { due }, &elevate, due).unwrap_err(),
        TransitionError::AlreadyReminded {
            action: Action::Remind
        }
    );

    // The flow's steps, in order, each due once.
    let mut request = request;
    assert_eq!(flow.next_nudge(&request), (Nudge::Remind, due));
    assert_eq!(flow.nudge_due(&request, opened), None);
    assert_eq!(flow.nudge_due(&request, due), Some(Nudge::Remind));
    let backup_due = opened + chrono::Duration::minutes(20);
    assert_eq!(flow.nudge_due(&request, backup_due), Some(Nudge::AskBackup));
    request.reminders = reminded.reminders;
    assert_eq!(flow.next_nudge(&request), (Nudge::AskBackup, backup_due));
    let command = Command::AskBackup {
        due: backup_due,
        message: None,
        reason: "no answer".into(),
    };
    let asked = machine::apply(&request, command.clone(), &elevate, backup_due)
        .unwrap()
        .request;
    assert_eq!(
        flow.next_nudge(&asked),
        (Nudge::TimeOut, asked.pending_until)
    );
    assert!(matches!(
        machine::apply(&asked, command, &elevate, backup_due),
        Err(TransitionError::AlreadyReminded { .. })
    ));
    // A backup decides only while the request is PENDING, once asked.
    assert!(!flow.is_backup_for("dave", &request));
    assert!(flow.is_backup_for("dave", &asked));
    assert!(!flow.is_backup_for("carol", &asked));
    let mut decided = asked;
    decided.state = State::Approved;
    assert!(!flow.is_backup_for("dave", &decided));
}

#[test]
fn reminders_are_checked_against_the_flow() {
    let flow = |reminders: &str| {
        Config::parse(&format!(
            r#"{SAMPLE_CONFIG}
[[flows]]
name = "slow"
max_duration = "2h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0SLOW"
people = ["bob", "carol"]

[flows.reminders]
{reminders}

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "Ops"
"#
        ))
    };
    let parsed = flow(r#"remind_after = "10m""#).unwrap();
    let policy = parsed.flow("slow").unwrap().reminders.clone().unwrap();
    assert_eq!(policy.remind_after, Some(10 * MINUTE));
    assert_eq!(policy.backup_after, None);

    for (reminders, says) in [
        ("", "needs remind_after or backup_after"),
        (
            r#"remind_after = "30m""#,
            "must be shorter than pending_timeout",
        ),
        (
            r#"backup_after = "40m"
backup_people = ["carol"]"#,
            "must be shorter than pending_timeout",
        ),
        (
            r#"remind_after = "20m"
backup_after = "10m"
backup_people = ["carol"]"#,
            "backup_after must come after remind_after",
        ),
        (
            r#"backup_after = "10m""#,
            "backup_after and backup_people go together",
        ),
        (
            r#"remind_after = "5m"
backup_people = ["carol"]"#,
            "backup_after and backup_people go together",
        ),
        (
            r#"backup_after = "10m"
backup_people = ["zed"]"#,
            "unknown person `zed` in reminders.backup_people",
        ),
        (
            r#"remind_after = "5m"
backup_channel = "C0BACKUP""#,
            "backup_channel needs backup_after",
        ),
        (
            r##"backup_after = "10m"
backup_people = ["carol"]
backup_channel = "#backup""##,
            "reminders.backup_channel must name a Slack channel id",
        ),
        (r#"remind_after = "soon""#, "reminders.remind_after"),
        (r#"remind_every = "5m""#, "unknown field"),
    ] {
        let err = flow(reminders).unwrap_err().to_string();
        assert!(err.contains(says), "{reminders}: {err}");
    }
}

#[tokio::test]
async fn a_backup_never_decides_their_own_request_whatever_the_flow_allows() {
    let app = FakeApp::new(config());
    let request = ask(&app, "selfish").await;
    app.clock.advance(5 * MINUTE);
    fire(&app, &request, "-backup").await.unwrap();
    let own = decide_as(&app, "alice", &request, Decision::Approve).await;
    assert!(
        matches!(own, Err(ServiceError::Rule(RuleError::SelfApproval { .. }))),
        "{own:?}"
    );
    assert_eq!(
        app.actions(&request.id),
        vec![Action::Request, Action::AskBackup]
    );
    // Nor is she pinged about it; dave is, and may decide.
    assert_eq!(reminders(&app)[0].3, ["U0DAVE001"]);
    let approved = decide_as(&app, "dave", &request, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(approved.state, State::Approved);
}
