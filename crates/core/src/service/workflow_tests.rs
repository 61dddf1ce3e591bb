//! Workflow rules: several approvers, auto-approval rules and extensions, against the fakes.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{verify_chain, Action, AuditEvent};
use crate::config::Config;
use crate::events::ScheduledAction;
use crate::machine::{self, Command, Transition};
use crate::model::{Actor, By, MessageRef, Request, RequestId, State};
use crate::ports::{AuditPage, AuditWindow, ListPage, ListQuery, RequestStore, StoreError};
use crate::testing::{caller_of, FakeApp, MemoryStore, Notice, SAMPLE_CONFIG};

use super::*;

/// The sample config plus dave and four flows:
/// - `two_man`: two of alice, bob, carol and dave (never the requester) must approve (target
///   `ops`, max 4h);
/// - `three_man`: alice's requests need all three of bob, carol and dave (target `three_ops`);
/// - `auto`: bob or carol approve, and rule `business_hours` approves alice for at most 30m on
///   weekdays 09:00-17:00 Berlin time (target `auto_ops`);
/// - `ext`: alice, bob or carol approve (never their own), max 2h (target `ext_ops`);
/// - `ext_auto`: bob or carol approve, and rule `short` approves alice for up to 2h of a 4h
///   cap at any time (target `ext_auto_ops`).
const WORKFLOW_FLOWS: &str = r#"
[[people]]
name = "dave"
iam_user = "dave"
slack_id = "U0DAVE001"
email = "dave@example.com"

[[flows]]
name = "two_man"
max_duration = "4h"
pending_timeout = "30m"
approvals_required = 2

[flows.approvers]
channel = "C0TWOMAN"
people = ["alice", "bob", "carol", "dave"]

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "TwoManOps"

[[flows]]
name = "three_man"
max_duration = "4h"
pending_timeout = "30m"
approvals_required = 3
requesters = ["alice"]

[flows.approvers]
channel = "C0THREEMAN"
people = ["bob", "carol", "dave"]

[[flows.targets]]
name = "three_ops"
type = "iam_group"
group = "ThreeManOps"

[[flows]]
name = "auto"
max_duration = "4h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0AUTO"
people = ["bob", "carol"]

[[flows.targets]]
name = "auto_ops"
type = "iam_group"
group = "AutoOps"

[[flows.auto_approve]]
name = "business_hours"
requesters = ["alice"]
max_duration = "30m"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-17:00"
time_zone = "Europe/Berlin"

[[flows]]
name = "ext"
max_duration = "2h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0EXT"
people = ["alice", "bob", "carol"]

[[flows.targets]]
name = "ext_ops"
type = "iam_group"
group = "ExtOps"

[[flows]]
name = "ext_auto"
max_duration = "4h"
pending_timeout = "30m"

[flows.approvers]
channel = "C0EXTAUTO"
people = ["bob", "carol"]

[[flows.targets]]
name = "ext_auto_ops"
type = "iam_group"
group = "ExtAutoOps"

[[flows.auto_approve]]
name = "short"
requesters = ["alice"]
max_duration = "2h"
"#;

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6";

fn config() -> Config {
    Config::parse(&format!("{SAMPLE_CONFIG}\n{WORKFLOW_FLOWS}")).unwrap()
}

/// The sample config with an Identity Center and a flow `oncall` whose rule `on_call`
/// approves members of the Identity Store group `OnCall` (target `oncall_ops`).
fn group_config() -> Config {
    Config::parse(&format!(
        "{SAMPLE_CONFIG}\n\
         [identity_center]\ninstance_arn = \"{INSTANCE}\"\nidentity_store_id = \"d-9067a1b2c3\"\n\n\
         [[flows]]\nname = \"oncall\"\nmax_duration = \"1h\"\n\
         [flows.approvers]\nchannel = \"C0ONCALL\"\npeople = [\"bob\", \"carol\"]\n\
         [[flows.targets]]\nname = \"oncall_ops\"\ntype = \"iam_group\"\ngroup = \"OnCallOps\"\n\
         [[flows.auto_approve]]\nname = \"on_call\"\nrequesters = {{ groups = [\"OnCall\"] }}\n"
    ))
    .unwrap()
}

fn app() -> FakeApp {
    FakeApp::new(config())
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// 2026-01-05 is a Monday; 09:00 UTC is 10:00 in Berlin (CET, UTC+1).
const MONDAY_10_BERLIN: &str = "2026-01-05T09:00:00Z";
/// 2026-01-10 is a Saturday; 10:00 in Berlin.
const SATURDAY_10_BERLIN: &str = "2026-01-10T09:00:00Z";

fn caller<'a>(app: &'a FakeApp, who: &str) -> Caller<'a> {
    caller_of(app.app.config.person(who).unwrap())
}

async fn ask(app: &FakeApp, who: &str, flow: &str, minutes: u64) -> Result<Request, ServiceError> {
    let submission = Submission {
        flow: flow.into(),
        target: None,
        account: None,
        duration: mins(minutes),
        reason: "INC-7: rotate the leaked key".into(),
    };
    submit(&app.app, &caller(app, who), submission).await
}

async fn decide_as(
    app: &FakeApp,
    who: &str,
    id: &RequestId,
    decision: Decision,
) -> Result<Request, ServiceError> {
    decide(&app.app, &caller(app, who), id, decision, None).await
}

async fn extend_as(
    app: &FakeApp,
    who: &str,
    id: &RequestId,
    minutes: u64,
) -> Result<Request, ServiceError> {
    extend(
        &app.app,
        &caller(app, who),
        id,
        mins(minutes),
        "INC-7: the rotation takes longer",
    )
    .await
}

/// The audit events of `id`, by sequence number.
fn events(app: &FakeApp, id: &RequestId) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = app
        .store
        .events_all()
        .into_iter()
        .filter(|e| &e.request_id == id)
        .collect();
    events.sort_by_key(|e| e.seq);
    events
}

fn last_event(app: &FakeApp, id: &RequestId) -> AuditEvent {
    events(app, id).pop().unwrap()
}

fn assert_chain(app: &FakeApp, id: &RequestId) {
    let request = app.request(id);
    verify_chain(
        &events(app, id),
        Some((request.audit_seq, &request.audit_head)),
    )
    .unwrap();
}

fn timeout_schedule(app: &FakeApp, id: &RequestId) -> Option<crate::ports::ScheduleInfo> {
    app.scheduler.schedule_named(&format!("timeout-{id}"))
}

fn revoke_schedule(app: &FakeApp, id: &RequestId) -> Option<crate::ports::ScheduleInfo> {
    app.scheduler.schedule_named(&format!("revoke-{id}"))
}

/// The Slack message updates of request `id`, as the request looked each time.
fn updates(app: &FakeApp, id: &RequestId) -> Vec<Request> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::Update { request, .. } if &request.id == id => Some(request),
            _ => None,
        })
        .collect()
}

fn approvers_of(request: &Request) -> Vec<&str> {
    request.approvals.iter().map(|a| a.by.as_str()).collect()
}

/// An ACTIVE grant of alice on `flow` for `minutes`, approved by whoever the flow needs.
async fn active(app: &FakeApp, flow: &str, minutes: u64) -> Request {
    let request = ask(app, "alice", flow, minutes).await.unwrap();
    if request.state == State::Pending {
        decide_as(app, "bob", &request.id, Decision::Approve)
            .await
            .unwrap();
        if app.request(&request.id).state == State::Pending {
            decide_as(app, "carol", &request.id, Decision::Approve)
                .await
                .unwrap();
        }
    }
    assert_eq!(app.request(&request.id).state, State::Approved);
    let activated = escalate(&app.app, &request.id).await.unwrap().unwrap();
    assert_eq!(activated.state, State::Active);
    activated
}

// ---------------------------------------------------------------------------------------
// Several approvers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn two_approvals_are_needed_and_the_first_leaves_the_request_pending() {
    let app = app();
    let request = ask(&app, "alice", "two_man", 60).await.unwrap();
    assert_eq!(request.state, State::Pending);
    assert_eq!(request.approvals_required, 2);
    let id = request.id.clone();

    // bob's approval counts, but it is not enough.
    let after_bob = decide_as(&app, "bob", &id, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(after_bob.state, State::Pending);
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(approvers_of(&stored), ["bob"]);
    assert_eq!(stored.decided_by, None, "nobody decided yet");
    assert!(
        app.escalation.started().is_empty(),
        "no escalation before the last approval"
    );
    assert_eq!(
        timeout_schedule(&app, &id).map(|s| s.at),
        Some(stored.pending_until),
        "the request can still time out"
    );
    let shown = updates(&app, &id);
    assert!(
        shown
            .last()
            .is_some_and(|r| r.state == State::Pending && approvers_of(r) == ["bob"]),
        "the Slack message shows bob's approval: {shown:?}"
    );
    let partial = last_event(&app, &id);
    assert_eq!(partial.action, Action::Approve);
    assert_eq!(partial.actor, Actor::person("bob"));
    assert_eq!(
        (partial.from, partial.to),
        (Some(State::Pending), State::Pending)
    );

    // bob again: refused, nothing written.
    let seq = stored.audit_seq;
    let events_before = app.store.events_all().len();
    let err = decide_as(&app, "bob", &id, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(app.request(&id).audit_seq, seq);
    assert_eq!(app.store.events_all().len(), events_before);
    assert_eq!(approvers_of(&app.request(&id)), ["bob"]);

    // The requester is no approver of their own request.
    let err = decide_as(&app, "alice", &id, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "self_approval", "{err}");
    assert_eq!(app.request(&id).audit_seq, seq);

    // carol's is the second approval: APPROVED, escalation started, time-out gone.
    let approved = decide_as(&app, "carol", &id, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(approved.state, State::Approved);
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Approved);
    assert_eq!(approvers_of(&stored), ["bob", "carol"]);
    assert_eq!(stored.decided_by.as_deref(), Some("carol"));
    assert_eq!(app.escalation.started(), vec![id.clone()]);
    assert!(timeout_schedule(&app, &id).is_none());

    let trail = events(&app, &id);
    let approvals: Vec<(Actor, Option<State>, State)> = trail
        .iter()
        .filter(|e| e.action == Action::Approve)
        .map(|e| (e.actor.clone(), e.from, e.to))
        .collect();
    assert_eq!(
        approvals,
        vec![
            (Actor::person("bob"), Some(State::Pending), State::Pending),
            (
                Actor::person("carol"),
                Some(State::Pending),
                State::Approved
            ),
        ]
    );
    assert_chain(&app, &id);

    // A third approver finds it decided.
    let err = decide_as(&app, "dave", &id, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
}

#[tokio::test]
async fn a_denial_after_one_of_two_approvals_ends_the_request() {
    let app = app();
    let id = ask(&app, "alice", "two_man", 60).await.unwrap().id;
    decide_as(&app, "bob", &id, Decision::Approve)
        .await
        .unwrap();

    let denied = decide_as(&app, "dave", &id, Decision::Deny).await.unwrap();
    assert_eq!(denied.state, State::Denied);
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Denied);
    assert_eq!(stored.decided_by.as_deref(), Some("dave"));
    assert!(!stored.approved_automatically());
    assert!(app.escalation.started().is_empty());
    assert!(timeout_schedule(&app, &id).is_none());
    assert!(
        app.notifier
            .told("alice")
            .iter()
            .any(|t| t.starts_with("dave denied your two_man request")),
        "{:?}",
        app.notifier.told("alice")
    );
    assert_eq!(last_event(&app, &id).action, Action::Deny);
    assert_chain(&app, &id);

    // Nobody approves it any more.
    let err = decide_as(&app, "carol", &id, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
}

#[tokio::test]
async fn a_request_with_one_of_two_approvals_still_times_out() {
    let app = app();
    let id = ask(&app, "alice", "two_man", 60).await.unwrap().id;
    decide_as(&app, "bob", &id, Decision::Approve)
        .await
        .unwrap();
    let due = timeout_schedule(&app, &id).unwrap();
    app.clock.set(due.at);
    let fired = app.scheduler.take_due(app.clock.now());
    assert_eq!(fired.len(), 1);
    end_by_schedule(&app.app, &fired[0].action).await.unwrap();
    assert_eq!(app.request(&id).state, State::TimedOut);
    assert!(app.escalation.started().is_empty());
}

/// A [`RequestStore`] over a [`MemoryStore`] that, when armed, lets a step of someone else
/// (a decision on the same request) land just before the next transition: the write that
/// follows finds the request moved, as when two people click at once.
struct RacingStore {
    inner: Arc<MemoryStore>,
    racer: Mutex<Option<(By, Command)>>,
}

impl RacingStore {
    fn new(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            racer: Mutex::new(None),
        }
    }

    /// The next transition is preceded by `command` of `by`, written first.
    fn arm(&self, by: By, command: Command) {
        *self.racer.lock().unwrap() = Some((by, command));
    }

    fn armed(&self) -> bool {
        self.racer.lock().unwrap().is_some()
    }
}

#[async_trait]
impl RequestStore for RacingStore {
    async fn create(&self, request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.create(request, event).await
    }
    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        self.inner.get(id).await
    }
    async fn transition(&self, step: &Transition) -> Result<(), StoreError> {
        let racer = self.racer.lock().unwrap().take();
        if let Some((by, command)) = racer {
            let stored = self.inner.request(&step.request.id).unwrap();
            let first = machine::apply(&stored, command, &by, step.event.at).unwrap();
            self.inner.transition(&first).await.unwrap();
        }
        self.inner.transition(step).await
    }
    async fn transition_while(
        &self,
        step: &Transition,
        unchanged: &Request,
    ) -> Result<(), StoreError> {
        self.inner.transition_while(step, unchanged).await
    }
    async fn set_message(&self, id: &RequestId, message: &MessageRef) -> Result<(), StoreError> {
        self.inner.set_message(id, message).await
    }
    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        self.inner.list_by_requester(requester, states).await
    }
    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError> {
        self.inner.list_by_state(state).await
    }
    async fn list_page(
        &self,
        query: &ListQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        self.inner.list_page(query, after, limit).await
    }
    async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_events(id).await
    }
    async fn audit_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_since(since).await
    }
    async fn audit_page(
        &self,
        window: &AuditWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.inner.audit_page(window, after, limit).await
    }
}

/// The fakes, and an [`App`] over them whose store can be made to lose a race.
fn racing() -> (FakeApp, App, Arc<RacingStore>) {
    let fakes = app();
    let store = Arc::new(RacingStore::new(fakes.store.clone()));
    let mut racing = fakes.app.clone();
    racing.store = store.clone();
    (fakes, racing, store)
}

fn person_by(name: &str) -> By {
    By::person(name, format!("arn:aws:iam::123456789012:user/{name}"))
}

#[tokio::test]
async fn approvals_by_two_people_at_once_both_count() {
    let (fakes, app, store) = racing();
    let id = ask(&fakes, "alice", "two_man", 60).await.unwrap().id;

    // carol's approval is written between bob's read and bob's write.
    store.arm(person_by("carol"), Command::Approve { reason: None });
    let bob = fakes.person("bob");
    let approved = decide(&app, &caller_of(&bob), &id, Decision::Approve, None)
        .await
        .unwrap();
    assert!(!store.armed(), "the race happened");
    assert_eq!(approved.state, State::Approved);
    let stored = fakes.request(&id);
    assert_eq!(stored.state, State::Approved);
    assert_eq!(approvers_of(&stored), ["carol", "bob"]);
    assert_eq!(stored.decided_by.as_deref(), Some("bob"));
    assert_eq!(fakes.escalation.started(), vec![id.clone()]);
    let approvals: Vec<(Actor, State)> = events(&fakes, &id)
        .into_iter()
        .filter(|e| e.action == Action::Approve)
        .map(|e| (e.actor, e.to))
        .collect();
    assert_eq!(
        approvals,
        vec![
            (Actor::person("carol"), State::Pending),
            (Actor::person("bob"), State::Approved),
        ]
    );
    assert_chain(&fakes, &id);
}

#[tokio::test]
async fn the_same_approval_clicked_twice_at_once_counts_once() {
    let (fakes, app, store) = racing();
    let id = ask(&fakes, "alice", "two_man", 60).await.unwrap().id;

    store.arm(person_by("bob"), Command::Approve { reason: None });
    let bob = fakes.person("bob");
    let err = decide(&app, &caller_of(&bob), &id, Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    let stored = fakes.request(&id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(approvers_of(&stored), ["bob"]);
    assert_eq!(stored.audit_seq, 2, "one approval written");
}

#[tokio::test]
async fn an_approval_that_meets_a_denial_finds_the_request_denied() {
    let (fakes, app, store) = racing();
    let id = ask(&fakes, "alice", "two_man", 60).await.unwrap().id;

    store.arm(person_by("carol"), Command::Deny { reason: None });
    let bob = fakes.person("bob");
    let err = decide(&app, &caller_of(&bob), &id, Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(err.to_string().contains("DENIED by carol"), "{err}");
    let stored = fakes.request(&id);
    assert_eq!(stored.state, State::Denied);
    assert!(stored.approvals.is_empty());
    assert!(fakes.escalation.started().is_empty());
}

#[tokio::test]
async fn a_denial_by_an_earlier_approver_that_loses_a_race_is_still_a_denial() {
    // Without a race bob may deny after approving (the machine allows it).
    let plain = app();
    let id = ask(&plain, "alice", "three_man", 60).await.unwrap().id;
    decide_as(&plain, "bob", &id, Decision::Approve)
        .await
        .unwrap();
    let denied = decide_as(&plain, "bob", &id, Decision::Deny).await.unwrap();
    assert_eq!(denied.state, State::Denied);

    // With dave's approval landing just before bob's denial, the answer must be the same.
    let (fakes, app, store) = racing();
    let id = ask(&fakes, "alice", "three_man", 60).await.unwrap().id;
    decide_as(&fakes, "bob", &id, Decision::Approve)
        .await
        .unwrap();
    store.arm(person_by("dave"), Command::Approve { reason: None });
    let bob = fakes.person("bob");
    let outcome = decide(&app, &caller_of(&bob), &id, Decision::Deny, None).await;
    assert!(!store.armed());
    let denied = outcome.unwrap();
    assert_eq!(denied.state, State::Denied);
}

// ---------------------------------------------------------------------------------------
// Auto-approval rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rule_approves_a_short_request_in_office_hours_at_once() {
    let app = FakeApp::at(config(), utc(MONDAY_10_BERLIN));
    let request = ask(&app, "alice", "auto", 30).await.unwrap();
    assert_eq!(request.state, State::Approved);
    let id = request.id.clone();
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Approved);
    assert_eq!(
        stored.decided_by.as_deref(),
        Some("elevate:rule:business_hours")
    );
    assert!(stored.approved_automatically());
    assert_eq!(approvers_of(&stored), ["elevate:rule:business_hours"]);
    let rule = app.app.config.flow("auto").unwrap().auto_approve[0].describe();
    assert_eq!(stored.decision_reason.as_deref(), Some(rule.as_str()));

    let trail = events(&app, &id);
    assert_eq!(
        trail.iter().map(|e| e.action).collect::<Vec<_>>(),
        [Action::Request, Action::Approve]
    );
    let approval = &trail[1];
    assert_eq!(approval.actor, Actor::system("rule:business_hours"));
    assert_eq!(
        (approval.from, approval.to),
        (Some(State::Pending), State::Approved)
    );
    assert_eq!(approval.reason.as_deref(), Some(rule.as_str()));
    assert_chain(&app, &id);

    // Escalation started, no time-out left, and the channel still sees the grant.
    assert_eq!(app.escalation.started(), vec![id.clone()]);
    assert!(timeout_schedule(&app, &id).is_none());
    assert!(stored.message.is_some());
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Announce { request, .. } if request.id == id && request.state == State::Approved
    )));

    // Nobody approves it a second time.
    let err = decide_as(&app, "bob", &id, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
}

#[tokio::test]
async fn a_rule_approved_grant_slack_missed_is_posted_by_the_sweep() {
    let app = FakeApp::at(config(), utc(MONDAY_10_BERLIN));
    app.notifier.fail_next(1);
    let request = ask(&app, "alice", "auto", 30).await.unwrap();
    let id = request.id.clone();
    assert_eq!(request.state, State::Approved);
    assert!(app.request(&id).message.is_none(), "the post failed");
    // Granted meanwhile; the sweep posts it once its own follow-up had its chance.
    escalate(&app.app, &id).await.unwrap();
    assert_eq!(app.request(&id).state, State::Active);
    assert_eq!(sweep(&app.app).await.unwrap().announced, 0);
    app.clock.advance(Duration::from_secs(180));
    assert_eq!(sweep(&app.app).await.unwrap().announced, 1);
    assert!(app.request(&id).message.is_some());
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Announce { request, .. } if request.id == id && request.state == State::Active
    )));
    // No time-out for a grant, and no second post.
    assert!(timeout_schedule(&app, &id).is_none());
    assert_eq!(sweep(&app.app).await.unwrap().announced, 0);
}

#[tokio::test]
async fn a_grant_the_sweep_posts_and_ends_at_once_shows_its_end() {
    let app = FakeApp::at(config(), utc(MONDAY_10_BERLIN));
    app.notifier.fail_next(1);
    let id = ask(&app, "alice", "auto", 30).await.unwrap().id;
    escalate(&app.app, &id).await.unwrap();
    // Its post and its revocation were both lost; the sweep finds it past its expiry.
    app.clock.advance(Duration::from_secs(31 * 60));
    app.notifier.clear();
    let report = sweep(&app.app).await.unwrap();
    assert_eq!((report.announced, report.expired), (1, 1), "{report:?}");
    let ended = app.request(&id);
    assert_eq!(ended.state, State::Expired);
    let message = ended.message.clone().unwrap();
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Update { request, message: m } if request.id == id
            && request.state == State::Expired
            && *m == message
    )));
}

async fn assert_waits_for_people(app: &FakeApp, who: &str, minutes: u64) {
    let request = ask(app, who, "auto", minutes).await.unwrap();
    assert_eq!(request.state, State::Pending, "{who} for {minutes}m");
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert!(stored.approvals.is_empty());
    assert!(timeout_schedule(app, &request.id).is_some());
    assert!(!app.escalation.started().contains(&request.id));
    assert_eq!(
        events(app, &request.id)
            .iter()
            .map(|e| e.action)
            .collect::<Vec<_>>(),
        [Action::Request]
    );
}

#[tokio::test]
async fn a_rule_approves_nothing_outside_its_conditions() {
    // Longer than the rule's 30m.
    let app = FakeApp::at(config(), utc(MONDAY_10_BERLIN));
    assert_waits_for_people(&app, "alice", 60).await;
    // Not a requester the rule names.
    assert_waits_for_people(&app, "bob", 30).await;

    // On a Saturday.
    let app = FakeApp::at(config(), utc(SATURDAY_10_BERLIN));
    assert_waits_for_people(&app, "alice", 30).await;

    // Monday 16:30 UTC is 17:30 in Berlin: closed, though 16:30 is inside 09:00-17:00.
    let app = FakeApp::at(config(), utc("2026-01-05T16:30:00Z"));
    assert_waits_for_people(&app, "alice", 30).await;
}

#[tokio::test]
async fn a_rule_reads_the_clock_of_its_time_zone() {
    // 08:30 UTC is 09:30 in Berlin: open, though 08:30 is before 09:00.
    let app = FakeApp::at(config(), utc("2026-01-05T08:30:00Z"));
    let request = ask(&app, "alice", "auto", 30).await.unwrap();
    assert_eq!(request.state, State::Approved);

    // In summer Berlin is UTC+2: 15:30 UTC on a Friday is 17:30 there, closed.
    let app = FakeApp::at(config(), utc("2026-07-03T15:30:00Z"));
    assert_waits_for_people(&app, "alice", 30).await;
    // ... and 07:30 UTC is 09:30 there, open.
    let app = FakeApp::at(config(), utc("2026-07-03T07:30:00Z"));
    let request = ask(&app, "alice", "auto", 30).await.unwrap();
    assert_eq!(request.state, State::Approved);
}

#[tokio::test]
async fn a_rule_by_group_approves_a_member_and_only_a_member() {
    let app = FakeApp::new(group_config());
    app.directory.add_to_group("OnCall", &["alice@example.com"]);

    let request = ask(&app, "alice", "oncall", 30).await.unwrap();
    assert_eq!(request.state, State::Approved);
    assert_eq!(request.decided_by.as_deref(), Some("elevate:rule:on_call"));
    assert_eq!(
        last_event(&app, &request.id).actor,
        Actor::system("rule:on_call")
    );
    assert_eq!(app.escalation.started(), vec![request.id.clone()]);

    // bob is not in OnCall: his request waits for people.
    let request = ask(&app, "bob", "oncall", 30).await.unwrap();
    assert_eq!(request.state, State::Pending);

    // Someone who left the group is not approved any more.
    app.directory
        .remove_from_group("OnCall", "alice@example.com");
    let request = ask(&app, "alice", "oncall", 30).await.unwrap();
    assert_eq!(request.state, State::Pending);
}

#[tokio::test]
async fn a_rule_by_group_approves_nothing_when_the_directory_fails() {
    let app = FakeApp::new(group_config());
    app.directory.add_to_group("OnCall", &["alice@example.com"]);
    let calls = app.directory.calls();
    app.directory.fail_next(1);

    let request = ask(&app, "alice", "oncall", 30).await.unwrap();
    assert!(app.directory.calls() > calls, "the directory was asked");
    assert_eq!(request.state, State::Pending, "never a silent approval");
    let stored = app.request(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert!(stored.approvals.is_empty());
    assert!(stored.message.is_some(), "the approvers are asked");
    assert!(timeout_schedule(&app, &request.id).is_some());
    assert!(app.escalation.started().is_empty());

    // With the directory back, the same request is approved.
    let request = ask(&app, "alice", "oncall", 30).await.unwrap();
    assert_eq!(request.state, State::Approved);
}

// ---------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_approved_extension_moves_the_expiry_without_touching_the_access() {
    let app = app();
    let grant = active(&app, "ext", 60).await;
    let id = grant.id.clone();
    let old_expiry = grant.expires_at.unwrap();
    let revoke_at = revoke_schedule(&app, &id).unwrap().at;
    let escalations = app.strategy.escalate_calls();
    app.clock.advance(mins(10));
    let asked_at = app.clock.now();

    // alice asks for 30m more: asked, not yet granted.
    let asked = extend_as(&app, "alice", &id, 30).await.unwrap();
    assert_eq!(asked.state, State::Active);
    let stored = app.request(&id);
    let extension = stored.extension.clone().unwrap();
    assert_eq!(extension.by, mins(30));
    assert_eq!(extension.reason, "INC-7: the rotation takes longer");
    assert_eq!(extension.asked_at, asked_at);
    assert!(extension.approvals.is_empty());
    assert_eq!(stored.expires_at, Some(old_expiry));
    assert_eq!(stored.duration, mins(60));
    let ask_event = last_event(&app, &id);
    assert_eq!(ask_event.action, Action::AskExtension);
    assert_eq!(ask_event.actor, Actor::person("alice"));
    assert_eq!(ask_event.extend_by, Some(1800));
    assert_eq!(
        (ask_event.from, ask_event.to),
        (Some(State::Active), State::Active)
    );
    assert!(
        updates(&app, &id)
            .last()
            .is_some_and(|r| r.extension.is_some()),
        "the approvers see the question in the grant's message"
    );
    // And are pinged in its thread, bob who approved the request included.
    let message = stored.message.clone().unwrap();
    let pings: Vec<(String, Option<String>, String, Vec<String>)> = app
        .notifier
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
        .collect();
    assert_eq!(pings.len(), 1, "{pings:?}");
    assert_eq!(pings[0].0, message.channel);
    assert_eq!(pings[0].1.as_deref(), Some(message.ts.as_str()));
    assert!(pings[0].2.contains("alice asks for 30m more"), "{pings:?}");
    assert!(pings[0].3.contains(&"U0BOB0001".to_owned()), "{pings:?}");

    // bob approves: the expiry moves by 30m.
    let extended = decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap();
    assert_eq!(extended.state, State::Active);
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Active);
    assert_eq!(
        stored.expires_at,
        Some(old_expiry + chrono::Duration::minutes(30))
    );
    assert_eq!(stored.duration, mins(90));
    assert_eq!(stored.extended, mins(30));
    assert!(stored.extension.is_none());
    let extend_event = last_event(&app, &id);
    assert_eq!(extend_event.action, Action::Extend);
    assert_eq!(extend_event.actor, Actor::person("bob"));
    assert_eq!(extend_event.extend_by, Some(1800));
    assert_eq!(
        (extend_event.from, extend_event.to),
        (Some(State::Active), State::Active)
    );
    assert_chain(&app, &id);

    // The access was never taken away or granted again.
    assert!(app.strategy.has("ext_ops", "alice"));
    assert_eq!(app.strategy.deescalate_calls(), 0);
    assert_eq!(app.strategy.escalate_calls(), escalations);
    // The revocation stays where it was; it arms itself again when it fires.
    assert_eq!(revoke_schedule(&app, &id).map(|s| s.at), Some(revoke_at));
    assert!(
        app.notifier
            .told("alice")
            .iter()
            .any(|t| t.contains("is extended")),
        "{:?}",
        app.notifier.told("alice")
    );
}

#[tokio::test]
async fn only_the_requester_extends_and_only_within_the_cap() {
    let app = app();
    let id = active(&app, "ext", 60).await.id;
    let seq = app.request(&id).audit_seq;

    let err = extend_as(&app, "bob", &id, 30).await.unwrap_err();
    assert_eq!(err.code(), "forbidden", "{err}");
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    // 1h + 1h30m is over the flow's 2h.
    let err = extend_as(&app, "alice", &id, 90).await.unwrap_err();
    assert_eq!(err.code(), "extension_over_cap", "{err}");
    let stored = app.request(&id);
    assert_eq!(stored.audit_seq, seq, "nothing written");
    assert!(stored.extension.is_none());

    // An absurd extension is over the cap, not an overflow.
    let err = extend(
        &app.app,
        &caller(&app, "alice"),
        &id,
        Duration::MAX,
        "INC-7: forever",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "extension_over_cap", "{err}");
    assert_eq!(app.request(&id).audit_seq, seq);

    // Exactly up to the cap is fine.
    extend_as(&app, "alice", &id, 60).await.unwrap();
    assert_eq!(app.request(&id).extension.unwrap().by, mins(60));
}

#[tokio::test]
async fn only_an_active_grant_is_extended() {
    let app = app();
    let pending = ask(&app, "alice", "ext", 60).await.unwrap();
    let err = extend_as(&app, "alice", &pending.id, 30).await.unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(app.request(&pending.id).extension.is_none());
}

#[tokio::test]
async fn one_extension_at_a_time_and_none_to_approve_when_none_is_asked() {
    let app = app();
    let id = active(&app, "ext", 60).await.id;

    let err = decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    let err = decide_as(&app, "bob", &id, Decision::DenyExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");

    extend_as(&app, "alice", &id, 30).await.unwrap();
    let seq = app.request(&id).audit_seq;
    let err = extend_as(&app, "alice", &id, 15).await.unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    let stored = app.request(&id);
    assert_eq!(stored.audit_seq, seq);
    assert_eq!(
        stored.extension.unwrap().by,
        mins(30),
        "the first one stays"
    );

    // The requester cannot approve their own extension.
    let err = decide_as(&app, "alice", &id, Decision::ApproveExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "self_approval", "{err}");
}

#[tokio::test]
async fn an_extension_needs_as_many_approvers_as_the_request() {
    let app = app();
    let grant = active(&app, "two_man", 60).await;
    let id = grant.id.clone();
    let old_expiry = grant.expires_at.unwrap();
    extend_as(&app, "alice", &id, 30).await.unwrap();

    decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap();
    let stored = app.request(&id);
    assert_eq!(stored.expires_at, Some(old_expiry), "not yet");
    let extension = stored.extension.unwrap();
    assert_eq!(
        extension
            .approvals
            .iter()
            .map(|a| a.by.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    let partial = last_event(&app, &id);
    assert_eq!(partial.action, Action::ApproveExtension);
    assert_eq!(partial.extend_by, Some(1800));

    let seq = app.request(&id).audit_seq;
    let err = decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert_eq!(app.request(&id).audit_seq, seq);

    decide_as(&app, "carol", &id, Decision::ApproveExtension)
        .await
        .unwrap();
    let stored = app.request(&id);
    assert!(stored.extension.is_none());
    assert_eq!(
        stored.expires_at,
        Some(old_expiry + chrono::Duration::minutes(30))
    );
    assert_eq!(stored.extended, mins(30));
    assert_eq!(last_event(&app, &id).action, Action::Extend);
    assert_chain(&app, &id);
}

#[tokio::test]
async fn extension_approvals_by_two_people_at_once_both_count() {
    let (fakes, app, store) = racing();
    let grant = active(&fakes, "two_man", 60).await;
    let id = grant.id.clone();
    extend_as(&fakes, "alice", &id, 30).await.unwrap();

    store.arm(
        person_by("carol"),
        Command::ApproveExtension { reason: None },
    );
    let bob = fakes.person("bob");
    decide(
        &app,
        &caller_of(&bob),
        &id,
        Decision::ApproveExtension,
        None,
    )
    .await
    .unwrap();
    assert!(!store.armed());
    let stored = fakes.request(&id);
    assert!(stored.extension.is_none());
    assert_eq!(
        stored.expires_at,
        Some(grant.expires_at.unwrap() + chrono::Duration::minutes(30))
    );
    let actions: Vec<(Action, Actor)> = events(&fakes, &id)
        .into_iter()
        .skip_while(|e| e.action != Action::AskExtension)
        .map(|e| (e.action, e.actor))
        .collect();
    assert_eq!(
        actions,
        vec![
            (Action::AskExtension, Actor::person("alice")),
            (Action::ApproveExtension, Actor::person("carol")),
            (Action::Extend, Actor::person("bob")),
        ]
    );
}

#[tokio::test]
async fn an_extension_is_not_approved_once_the_revocation_may_be_under_way() {
    let app = app();
    let grant = active(&app, "ext", 60).await;
    let id = grant.id.clone();
    let expiry = grant.expires_at.unwrap();
    extend_as(&app, "alice", &id, 30).await.unwrap();

    // Within revoke_lead (60s) of the expiry.
    app.clock.set(expiry - chrono::Duration::seconds(30));
    let seq = app.request(&id).audit_seq;
    let err = decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    let stored = app.request(&id);
    assert_eq!(stored.audit_seq, seq, "nothing written");
    assert_eq!(stored.expires_at, Some(expiry));
    assert!(stored.extension.is_some());

    // Nor is one asked then.
    let late = active(&app, "ext", 60).await;
    app.clock
        .set(late.expires_at.unwrap() - chrono::Duration::seconds(30));
    let err = extend_as(&app, "alice", &late.id, 30).await.unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(app.request(&late.id).extension.is_none());

    // After the expiry even asking is refused.
    let other = active(&app, "ext", 60).await;
    app.clock.set(other.expires_at.unwrap());
    let err = extend_as(&app, "alice", &other.id, 30).await.unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(app.request(&other.id).extension.is_none());
}

#[tokio::test]
async fn a_denied_extension_leaves_the_expiry_as_it_was() {
    let app = app();
    let grant = active(&app, "ext", 60).await;
    let id = grant.id.clone();
    extend_as(&app, "alice", &id, 30).await.unwrap();

    decide_as(&app, "carol", &id, Decision::DenyExtension)
        .await
        .unwrap();
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Active);
    assert!(stored.extension.is_none());
    assert_eq!(stored.expires_at, grant.expires_at);
    assert_eq!(stored.extended, Duration::ZERO);
    let denial = last_event(&app, &id);
    assert_eq!(denial.action, Action::DenyExtension);
    assert_eq!(denial.actor, Actor::person("carol"));
    assert_eq!(denial.extend_by, Some(1800));
    assert!(
        app.notifier
            .told("alice")
            .iter()
            .any(|t| t.contains("denied more time")),
        "{:?}",
        app.notifier.told("alice")
    );

    // She may ask again.
    extend_as(&app, "alice", &id, 15).await.unwrap();
    assert_eq!(app.request(&id).extension.unwrap().by, mins(15));
}

#[tokio::test]
async fn a_rule_approves_an_extension_when_it_approves_the_whole_grant() {
    let app = app();
    let grant = active(&app, "ext_auto", 60).await;
    assert_eq!(grant.decided_by.as_deref(), Some("elevate:rule:short"));
    let id = grant.id.clone();
    let old_expiry = grant.expires_at.unwrap();

    // 1h + 30m is within the rule's 2h: approved at once.
    let extended = extend_as(&app, "alice", &id, 30).await.unwrap();
    assert!(extended.extension.is_none());
    assert_eq!(
        extended.expires_at,
        Some(old_expiry + chrono::Duration::minutes(30))
    );
    let stored = app.request(&id);
    assert_eq!(stored, extended);
    assert_eq!(stored.extended, mins(30));
    let extend_event = last_event(&app, &id);
    assert_eq!(extend_event.action, Action::Extend);
    assert_eq!(extend_event.actor, Actor::system("rule:short"));
    assert_eq!(extend_event.extend_by, Some(1800));
    assert_eq!(app.strategy.deescalate_calls(), 0);
    assert_chain(&app, &id);

    // 1h30m + 1h is over the rule's 2h (not the flow's 4h): it waits for people.
    let asked = extend_as(&app, "alice", &id, 60).await.unwrap();
    assert_eq!(asked.extension.as_ref().map(|e| e.by), Some(mins(60)));
    let stored = app.request(&id);
    assert_eq!(stored.duration, mins(90));
    assert_eq!(last_event(&app, &id).action, Action::AskExtension);
}

#[tokio::test]
async fn the_revocation_arms_itself_again_for_an_extended_grant() {
    let app = app();
    let grant = active(&app, "ext", 60).await;
    let id = grant.id.clone();
    let old_expiry = grant.expires_at.unwrap();
    let lead = chrono::Duration::from_std(app.app.settings.revoke_lead).unwrap();
    extend_as(&app, "alice", &id, 30).await.unwrap();
    decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap();
    let new_expiry = old_expiry + chrono::Duration::minutes(30);

    // The old schedule fires: the grant goes on, revoked at its new expiry instead.
    app.clock.set(old_expiry - lead);
    let fired = app.scheduler.take_due(app.clock.now());
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].name, format!("revoke-{id}"));
    let ended = end_by_schedule(&app.app, &fired[0].action).await.unwrap();
    assert!(ended.is_none());
    assert_eq!(app.request(&id).state, State::Active);
    assert!(app.strategy.has("ext_ops", "alice"));
    let again = revoke_schedule(&app, &id).unwrap();
    assert_eq!(again.at, new_expiry - lead);
    assert_eq!(
        again.action,
        ScheduledAction::Expire {
            request_id: id.clone()
        }
    );

    // Fired late, at the old expiry itself, it does the same.
    app.clock.set(old_expiry);
    let ended = end_by_schedule(
        &app.app,
        &ScheduledAction::Expire {
            request_id: id.clone(),
        },
    )
    .await
    .unwrap();
    assert!(ended.is_none());
    assert_eq!(app.request(&id).state, State::Active);
    assert_eq!(revoke_schedule(&app, &id).unwrap().at, new_expiry - lead);

    // The new schedule ends the grant at the new expiry.
    app.clock.set(new_expiry - lead);
    let fired = app.scheduler.take_due(app.clock.now());
    assert_eq!(fired.len(), 1, "{fired:?}");
    let ended = end_by_schedule(&app.app, &fired[0].action)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, State::Expired);
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Expired);
    assert_eq!(stored.ended_at, Some(new_expiry));
    assert!(!app.strategy.has("ext_ops", "alice"));
    assert_chain(&app, &id);
}

#[tokio::test]
async fn an_unextended_grant_still_expires_when_its_schedule_fires() {
    let app = app();
    let grant = active(&app, "ext", 60).await;
    let id = grant.id.clone();
    let expiry = grant.expires_at.unwrap();
    // An extension asked but never approved does not keep the grant.
    extend_as(&app, "alice", &id, 30).await.unwrap();

    let lead = chrono::Duration::from_std(app.app.settings.revoke_lead).unwrap();
    app.clock.set(expiry - lead);
    let fired = app.scheduler.take_due(app.clock.now());
    assert_eq!(fired.len(), 1);
    let ended = end_by_schedule(&app.app, &fired[0].action)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, State::Expired);
    assert_eq!(ended.ended_at, Some(expiry));
    assert!(!app.strategy.has("ext_ops", "alice"));
    assert!(
        app.request(&id).extension.is_none(),
        "an ended grant has no extension waiting"
    );

    // The extension asked is no longer approvable.
    let err = decide_as(&app, "bob", &id, Decision::ApproveExtension)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
}

#[tokio::test]
async fn an_extension_asks_for_some_time_and_says_why() {
    let app = app();
    let id = active(&app, "ext", 60).await.id;
    let seq = app.request(&id).audit_seq;
    let err = extend_as(&app, "alice", &id, 0).await.unwrap_err();
    assert_eq!(err.code(), "invalid_duration", "{err}");
    let err = extend(&app.app, &caller(&app, "alice"), &id, mins(30), "  ")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reason_required", "{err}");
    let err = extend(
        &app.app,
        &caller(&app, "alice"),
        &id,
        mins(30),
        "two\nlines",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "reason_invalid_characters", "{err}");
    assert_eq!(app.request(&id).audit_seq, seq, "nothing written");
}

#[tokio::test]
async fn a_rule_does_not_extend_what_no_person_could_approve_any_more() {
    let fakes = app();
    let first = active(&fakes, "ext_auto", 60).await;
    let second = active(&fakes, "ext_auto", 60).await;
    // 1h + 2h30m is over the rule's 2h: asked of people.
    extend_as(&fakes, "alice", &first.id, 150).await.unwrap();
    assert!(fakes.request(&first.id).extension.is_some());

    // elevate.toml changes: only bob may request `ext_auto` now (the rule still names alice).
    let original = format!("{SAMPLE_CONFIG}\n{WORKFLOW_FLOWS}");
    let text = original.replacen(
        "[[flows]]\nname = \"ext_auto\"\n",
        "[[flows]]\nname = \"ext_auto\"\nrequesters = [\"bob\"]\n",
        1,
    );
    assert_ne!(text, original);
    let mut later = fakes.app.clone();
    later.config = Arc::new(Config::parse(&text).unwrap());
    let alice = later.config.person("alice").unwrap().clone();
    let bob = later.config.person("bob").unwrap().clone();

    // A person may not approve more time for her: the terms are no longer given.
    let err = decide(
        &later,
        &caller_of(&bob),
        &first.id,
        Decision::ApproveExtension,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(err.to_string().contains("may no longer request"), "{err}");
    assert_eq!(fakes.request(&first.id).expires_at, first.expires_at);

    // Nor may the rule (asking may be refused outright, or left to people).
    let outcome = extend(&later, &caller_of(&alice), &second.id, mins(30), "INC-7").await;
    if let Err(err) = &outcome {
        assert_eq!(err.code(), "conflict", "{err}");
    }
    let stored = fakes.request(&second.id);
    assert_eq!(
        stored.expires_at, second.expires_at,
        "the rule extended a grant no approver could extend"
    );
    assert_eq!(stored.extended, Duration::ZERO);
}
