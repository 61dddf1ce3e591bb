//! In-memory fakes of every port, for tests (feature `testing`).
//!
//! Each fake keeps the semantics its AWS adapter promises (conditional writes, idempotent
//! removals, create-or-replace schedules), so a service test that passes here means something.
//! Every fake can be told to fail its next calls, and records what it was asked to do.
//!
//! The fakes are cheap to share: build them in an `Arc`, hand a clone to the service as
//! `Arc<dyn Port>`, keep the other to inspect.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::config::{Config, Flow, Person, Target};
use crate::model::{MessageRef, Request, RequestId, State};
use crate::ports::{
    BoxError, Clock, InvokeError, Invoker, Membership, Notifier, NotifyError, RequestStore,
    ScheduleInfo, ScheduledAction, Scheduler, SchedulerError, StoreError, Strategy, StrategyError,
};

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error an injected failure carries.
#[derive(Debug, thiserror::Error)]
#[error("injected failure: {0}")]
pub struct InjectedFailure(pub String);

fn injected(what: &str) -> BoxError {
    Box::new(InjectedFailure(what.to_owned()))
}

/// Consumes one pending injected failure, if any.
fn take_failure(pending: &mut u32) -> bool {
    if *pending > 0 {
        *pending -= 1;
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// RequestStore

#[derive(Default)]
struct StoreInner {
    requests: HashMap<RequestId, Request>,
    /// Audit events by request, keyed by sequence number.
    events: HashMap<RequestId, BTreeMap<u64, AuditEvent>>,
    /// Every event in the order it was written.
    log: Vec<AuditEvent>,
    failures: u32,
    calls: u64,
}

/// [`RequestStore`] in memory, with the DynamoDB adapter's conditional-write semantics.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<StoreInner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `StoreError::Unavailable`.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every audit event written, in write order.
    pub fn events_all(&self) -> Vec<AuditEvent> {
        lock(&self.inner).log.clone()
    }

    /// Every stored request, oldest first.
    pub fn requests_all(&self) -> Vec<Request> {
        let mut all: Vec<Request> = lock(&self.inner).requests.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// The stored request, without going through the port (no failure injection).
    pub fn request(&self, id: &RequestId) -> Option<Request> {
        lock(&self.inner).requests.get(id).cloned()
    }

    /// How many port calls were made (failed ones included).
    pub fn calls(&self) -> u64 {
        lock(&self.inner).calls
    }

    /// Puts a request and its events as they are, with no checks: seeds a test with a request
    /// in any state, or tampers with the trail.
    pub fn insert_unchecked(&self, request: Request, events: Vec<AuditEvent>) {
        let mut inner = lock(&self.inner);
        for event in events {
            inner
                .events
                .entry(event.request_id.clone())
                .or_default()
                .insert(event.seq, event.clone());
            inner.log.push(event);
        }
        inner.requests.insert(request.id.clone(), request);
    }

    fn enter(&self) -> Result<MutexGuard<'_, StoreInner>, StoreError> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if take_failure(&mut inner.failures) {
            return Err(StoreError::Unavailable(injected("store")));
        }
        Ok(inner)
    }
}

/// A write whose request and event disagree is a bug of the caller, not a race: say so loudly.
fn check_pair(request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
    if event.request_id != request.id
        || event.seq != request.audit_seq
        || event.hash != request.audit_head
        || event.to != request.state
    {
        return Err(StoreError::Corrupt(format!(
            "inconsistent write: request {} (state {}, audit_seq {}) with event of {} (seq {}, to {})",
            request.id, request.state, request.audit_seq, event.request_id, event.seq, event.to
        )));
    }
    Ok(())
}

/// A transition's checks and writes, under the store's lock.
fn apply_transition(
    inner: &mut StoreInner,
    expected: State,
    request: &Request,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    check_pair(request, event)?;
    let stored = inner
        .requests
        .get(&request.id)
        .ok_or_else(|| StoreError::NotFound(request.id.clone()))?;
    if stored.state != expected || stored.audit_seq + 1 != event.seq {
        return Err(StoreError::Conflict(format!(
            "request {} is {} at audit_seq {}, expected {} at {}",
            request.id,
            stored.state,
            stored.audit_seq,
            expected,
            event.seq.saturating_sub(1)
        )));
    }
    let taken = inner
        .events
        .get(&request.id)
        .is_some_and(|events| events.contains_key(&event.seq));
    if taken {
        return Err(StoreError::Conflict(format!(
            "audit event {} of request {} already exists",
            event.seq, request.id
        )));
    }
    // The stored announcement survives a transition written from an older copy, as the
    // adapter's update only sets the fields a transition changes.
    let mut next = request.clone();
    if next.message.is_none() {
        next.message = stored.message.clone();
    }
    inner.requests.insert(request.id.clone(), next);
    inner
        .events
        .entry(request.id.clone())
        .or_default()
        .insert(event.seq, event.clone());
    inner.log.push(event.clone());
    Ok(())
}

#[async_trait]
impl RequestStore for MemoryStore {
    async fn create(&self, request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        check_pair(request, event)?;
        if inner.requests.contains_key(&request.id) || inner.events.contains_key(&request.id) {
            return Err(StoreError::Conflict(format!(
                "request {} already exists",
                request.id
            )));
        }
        inner.requests.insert(request.id.clone(), request.clone());
        inner
            .events
            .entry(request.id.clone())
            .or_default()
            .insert(event.seq, event.clone());
        inner.log.push(event.clone());
        Ok(())
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        let inner = self.enter()?;
        Ok(inner.requests.get(id).cloned())
    }

    async fn transition(
        &self,
        expected: State,
        request: &Request,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        apply_transition(&mut inner, expected, request, event)
    }

    async fn transition_while(
        &self,
        expected: State,
        request: &Request,
        event: &AuditEvent,
        unchanged: &Request,
    ) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        let same = inner.requests.get(&unchanged.id).is_some_and(|stored| {
            stored.state == unchanged.state && stored.audit_seq == unchanged.audit_seq
        });
        if !same {
            return Err(StoreError::Conflict(format!(
                "request {} is no longer {} at audit_seq {}",
                unchanged.id, unchanged.state, unchanged.audit_seq
            )));
        }
        apply_transition(&mut inner, expected, request, event)
    }

    async fn set_message(&self, id: &RequestId, message: &MessageRef) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        let stored = inner
            .requests
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        stored.message = Some(message.clone());
        Ok(())
    }

    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<Request> = inner
            .requests
            .values()
            .filter(|r| {
                r.requester == requester && (states.is_empty() || states.contains(&r.state))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(found)
    }

    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<Request> = inner
            .requests
            .values()
            .filter(|r| r.state == state)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, StoreError> {
        let inner = self.enter()?;
        Ok(inner
            .events
            .get(id)
            .map(|events| events.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn audit_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<AuditEvent> = inner
            .events
            .values()
            .flat_map(|events| events.values())
            .filter(|e| since.is_none_or(|since| e.at >= since))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        Ok(found)
    }
}

// ---------------------------------------------------------------------------------------------
// Strategy

#[derive(Default)]
struct StrategyInner {
    /// (target name, person name)
    members: HashSet<(String, String)>,
    fail_escalate: u32,
    fail_deescalate: u32,
    fail_is_member: u32,
    refuse_escalate: Option<String>,
    ineffective_deescalate: u32,
    unknown_membership: bool,
    escalate_calls: u32,
    deescalate_calls: u32,
    is_member_calls: u32,
}

/// [`Strategy`] in memory: a set of (target name, person name) memberships. Granting twice and
/// removing what is absent are both success, as with the IAM adapter.
#[derive(Default)]
pub struct FakeStrategy {
    inner: Mutex<StrategyInner>,
}

impl FakeStrategy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `person` is a member of `target` right now (no call counted).
    pub fn has(&self, target: &str, person: &str) -> bool {
        lock(&self.inner)
            .members
            .contains(&(target.to_owned(), person.to_owned()))
    }

    /// Every (target name, person name) membership, sorted.
    pub fn members(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.inner).members.iter().cloned().collect();
        all.sort();
        all
    }

    /// Someone added the membership outside elevate (drift).
    pub fn add_by_hand(&self, target: &str, person: &str) {
        lock(&self.inner)
            .members
            .insert((target.to_owned(), person.to_owned()));
    }

    /// Someone removed the membership outside elevate.
    pub fn remove_by_hand(&self, target: &str, person: &str) {
        lock(&self.inner)
            .members
            .remove(&(target.to_owned(), person.to_owned()));
    }

    /// The next `n` escalate calls answer `Unavailable` and change nothing.
    pub fn fail_escalate(&self, n: u32) {
        lock(&self.inner).fail_escalate = n;
    }

    /// The next `n` deescalate calls answer `Unavailable` and change nothing.
    pub fn fail_deescalate(&self, n: u32) {
        lock(&self.inner).fail_deescalate = n;
    }

    /// The next `n` is_member calls answer `Unavailable`.
    pub fn fail_is_member(&self, n: u32) {
        lock(&self.inner).fail_is_member = n;
    }

    /// Every escalate call answers `Refused(message)` (a custom target saying no) until
    /// cleared with `None`.
    pub fn refuse_escalate(&self, message: Option<&str>) {
        lock(&self.inner).refuse_escalate = message.map(str::to_owned);
    }

    /// The next `n` deescalate calls answer success but leave the membership in place, so only
    /// a read-back notices.
    pub fn ignore_deescalate(&self, n: u32) {
        lock(&self.inner).ineffective_deescalate = n;
    }

    /// is_member answers `Unknown` (a custom target that cannot be read back).
    pub fn answer_unknown(&self, unknown: bool) {
        lock(&self.inner).unknown_membership = unknown;
    }

    pub fn escalate_calls(&self) -> u32 {
        lock(&self.inner).escalate_calls
    }

    pub fn deescalate_calls(&self) -> u32 {
        lock(&self.inner).deescalate_calls
    }

    pub fn is_member_calls(&self) -> u32 {
        lock(&self.inner).is_member_calls
    }
}

#[async_trait]
impl Strategy for FakeStrategy {
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        _request: &Request,
    ) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.escalate_calls += 1;
        if take_failure(&mut inner.fail_escalate) {
            return Err(StrategyError::Unavailable(injected("escalate")));
        }
        if let Some(message) = &inner.refuse_escalate {
            return Err(StrategyError::Refused(message.clone()));
        }
        inner
            .members
            .insert((target.name.clone(), person.name.clone()));
        Ok(())
    }

    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        _request: &Request,
    ) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.deescalate_calls += 1;
        if take_failure(&mut inner.fail_deescalate) {
            return Err(StrategyError::Unavailable(injected("deescalate")));
        }
        if take_failure(&mut inner.ineffective_deescalate) {
            return Ok(());
        }
        inner
            .members
            .remove(&(target.name.clone(), person.name.clone()));
        Ok(())
    }

    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        let mut inner = lock(&self.inner);
        inner.is_member_calls += 1;
        if take_failure(&mut inner.fail_is_member) {
            return Err(StrategyError::Unavailable(injected("is_member")));
        }
        if inner.unknown_membership {
            return Ok(Membership::Unknown);
        }
        let key = (target.name.clone(), person.name.clone());
        Ok(if inner.members.contains(&key) {
            Membership::Present
        } else {
            Membership::Absent
        })
    }

    /// The people on `target` (in the sample config a person's name is their IAM user).
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        let inner = lock(&self.inner);
        if inner.unknown_membership {
            return Ok(None);
        }
        let mut found: Vec<String> = inner
            .members
            .iter()
            .filter(|(t, _)| *t == target.name)
            .map(|(_, p)| p.clone())
            .collect();
        found.sort();
        Ok(Some(found))
    }

    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.deescalate_calls += 1;
        if take_failure(&mut inner.fail_deescalate) {
            return Err(StrategyError::Unavailable(injected("remove_member")));
        }
        inner
            .members
            .remove(&(target.name.clone(), iam_user.to_owned()));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduler

#[derive(Default)]
struct SchedulerInner {
    schedules: BTreeMap<String, (DateTime<Utc>, ScheduledAction)>,
    failures: u32,
    calls: u32,
}

/// [`Scheduler`] in memory: one schedule per name, create-or-replace, idempotent cancel. It
/// never fires by itself; a test fires what is due with [`FakeScheduler::take_due`].
#[derive(Default)]
pub struct FakeScheduler {
    inner: Mutex<SchedulerInner>,
}

impl FakeScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `SchedulerError::Unavailable`.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Vec<ScheduleInfo> {
        lock(&self.inner)
            .schedules
            .iter()
            .map(|(name, (at, action))| ScheduleInfo {
                name: name.clone(),
                at: *at,
                action: action.clone(),
            })
            .collect()
    }

    /// The schedule of that name, without going through the port.
    pub fn schedule_named(&self, name: &str) -> Option<ScheduleInfo> {
        lock(&self.inner)
            .schedules
            .get(name)
            .map(|(at, action)| ScheduleInfo {
                name: name.to_owned(),
                at: *at,
                action: action.clone(),
            })
    }

    /// Removes and returns the schedules due at `now`, earliest first: what EventBridge would
    /// fire (one-time schedules delete themselves after completion).
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<ScheduleInfo> {
        let mut inner = lock(&self.inner);
        let due: Vec<String> = inner
            .schedules
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut fired: Vec<ScheduleInfo> = due
            .into_iter()
            .filter_map(|name| {
                inner
                    .schedules
                    .remove(&name)
                    .map(|(at, action)| ScheduleInfo { name, at, action })
            })
            .collect();
        fired.sort_by(|a, b| (a.at, &a.name).cmp(&(b.at, &b.name)));
        fired
    }

    /// How many port calls were made (failed ones included).
    pub fn calls(&self) -> u32 {
        lock(&self.inner).calls
    }

    fn enter(&self) -> Result<MutexGuard<'_, SchedulerInner>, SchedulerError> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if take_failure(&mut inner.failures) {
            return Err(SchedulerError::Unavailable(injected("scheduler")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Scheduler for FakeScheduler {
    async fn schedule(
        &self,
        at: DateTime<Utc>,
        action: &ScheduledAction,
    ) -> Result<(), SchedulerError> {
        let mut inner = self.enter()?;
        inner
            .schedules
            .insert(action.schedule_name(), (at, action.clone()));
        Ok(())
    }

    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        let mut inner = self.enter()?;
        inner.schedules.remove(name);
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<ScheduleInfo>, SchedulerError> {
        let inner = self.enter()?;
        Ok(inner.schedules.get(name).map(|(at, action)| ScheduleInfo {
            name: name.to_owned(),
            at: *at,
            action: action.clone(),
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Notifier

/// One call the [`RecordingNotifier`] received (successful ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Announce {
        request: Request,
        flow: String,
        requester: String,
        message: MessageRef,
    },
    Update {
        request: Request,
        message: MessageRef,
    },
    Tell {
        person: String,
        text: String,
    },
    TellPrivately {
        channel: String,
        person_slack_id: String,
        text: String,
    },
}

#[derive(Default)]
struct NotifierInner {
    notices: Vec<Notice>,
    failures: u32,
    next_ts: u64,
}

/// [`Notifier`] that records what it was asked to say. An announcement answers a
/// [`MessageRef`] in the flow's approvers channel with an increasing Slack-like `ts`.
#[derive(Default)]
pub struct RecordingNotifier {
    inner: Mutex<NotifierInner>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `NotifyError::Unavailable` and record nothing.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Everything said so far, in order.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.inner).notices.clone()
    }

    /// The texts of the direct messages to the person named `person`.
    pub fn told(&self, person: &str) -> Vec<String> {
        lock(&self.inner)
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::Tell { person: p, text } if p == person => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.inner).notices.clear();
    }

    fn enter(&self) -> Result<MutexGuard<'_, NotifierInner>, NotifyError> {
        let mut inner = lock(&self.inner);
        if take_failure(&mut inner.failures) {
            return Err(NotifyError::Unavailable(injected("notifier")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn announce(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
    ) -> Result<MessageRef, NotifyError> {
        let mut inner = self.enter()?;
        inner.next_ts += 1;
        let message = MessageRef {
            channel: flow.approvers.channel.clone(),
            ts: format!("1700000000.{:06}", inner.next_ts),
        };
        inner.notices.push(Notice::Announce {
            request: request.clone(),
            flow: flow.name.clone(),
            requester: requester.name.clone(),
            message: message.clone(),
        });
        Ok(message)
    }

    async fn update(
        &self,
        request: &Request,
        _flow: &Flow,
        _requester: &Person,
        message: &MessageRef,
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::Update {
            request: request.clone(),
            message: message.clone(),
        });
        Ok(())
    }

    async fn tell(&self, person: &Person, text: &str) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::Tell {
            person: person.name.clone(),
            text: text.to_owned(),
        });
        Ok(())
    }

    async fn tell_privately(
        &self,
        channel: &str,
        person_slack_id: &str,
        text: &str,
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::TellPrivately {
            channel: channel.to_owned(),
            person_slack_id: person_slack_id.to_owned(),
            text: text.to_owned(),
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Invoker

/// One call the [`RecordingInvoker`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: String,
    pub payload: serde_json::Value,
    /// `InvocationType=Event` (fire and forget) rather than a synchronous call.
    pub asynchronous: bool,
}

#[derive(Default)]
struct InvokerInner {
    calls: Vec<Invocation>,
    answers: HashMap<String, Result<serde_json::Value, String>>,
    failures: u32,
}

/// [`Invoker`] that records its calls. A synchronous call answers what [`Self::answer`] set for
/// that function, `{"ok": true}` otherwise (a custom target that accepts).
#[derive(Default)]
pub struct RecordingInvoker {
    inner: Mutex<InvokerInner>,
}

impl RecordingInvoker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Synchronous calls of `function` answer `value`.
    pub fn answer(&self, function: &str, value: serde_json::Value) {
        lock(&self.inner)
            .answers
            .insert(function.to_owned(), Ok(value));
    }

    /// Synchronous calls of `function` fail with `InvokeError::FunctionError(message)`.
    pub fn answer_error(&self, function: &str, message: &str) {
        lock(&self.inner)
            .answers
            .insert(function.to_owned(), Err(message.to_owned()));
    }

    /// The next `n` calls (either kind) answer `InvokeError::Unavailable`; they are recorded.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<Invocation> {
        lock(&self.inner).calls.clone()
    }

    fn record(
        &self,
        function: &str,
        payload: &serde_json::Value,
        asynchronous: bool,
    ) -> Result<MutexGuard<'_, InvokerInner>, InvokeError> {
        let mut inner = lock(&self.inner);
        inner.calls.push(Invocation {
            function: function.to_owned(),
            payload: payload.clone(),
            asynchronous,
        });
        if take_failure(&mut inner.failures) {
            return Err(InvokeError::Unavailable(injected("invoke")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Invoker for RecordingInvoker {
    async fn invoke_async(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<(), InvokeError> {
        drop(self.record(function, payload, true)?);
        Ok(())
    }

    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        let inner = self.record(function, payload, false)?;
        match inner.answers.get(function) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(InvokeError::FunctionError(message.clone())),
            None => Ok(serde_json::json!({"ok": true})),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clock

struct ClockInner {
    now: DateTime<Utc>,
    waits: Vec<DateTime<Utc>>,
}

/// [`Clock`] that stands still until told. `sleep_until` returns at once, having moved the time
/// forward to the wake-up instant, and records the instant it waited for.
pub struct FakeClock {
    inner: Mutex<ClockInner>,
}

impl FakeClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            inner: Mutex::new(ClockInner {
                now,
                waits: Vec::new(),
            }),
        }
    }

    /// A fixed, arbitrary instant: 2026-01-05T09:00:00Z (a Monday morning).
    pub fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_603_600, 0).unwrap_or_default()
    }

    pub fn set(&self, now: DateTime<Utc>) {
        lock(&self.inner).now = now;
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut inner = lock(&self.inner);
        inner.now += by;
    }

    /// The instants `sleep_until` was asked to wait for, in order (past ones included).
    pub fn waits(&self) -> Vec<DateTime<Utc>> {
        lock(&self.inner).waits.clone()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new(Self::start())
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.inner).now
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut inner = lock(&self.inner);
        inner.waits.push(at);
        if at > inner.now {
            inner.now = at;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Config

/// What a request of `requester` on `infra_access` grants under the sample config.
///
/// # Panics
/// When `requester` is not a person of the sample config.
pub fn sample_terms(requester: &str) -> crate::model::Terms {
    let config = sample_config();
    crate::model::Terms {
        target: config.flows[0].targets[0].clone(),
        person: config
            .person(requester)
            .unwrap_or_else(|| panic!("no person {requester} in the sample config"))
            .clone(),
    }
}

/// The ARN an IAM user `person` of the sample account signs API calls with.
pub fn iam_arn(person: &Person) -> String {
    format!("arn:aws:iam::123456789012:user/{}", person.iam_user)
}

/// `person` as an authenticated caller, signing as their IAM user.
pub fn caller_of(person: &Person) -> crate::service::Caller<'_> {
    crate::service::Caller::new(person, iam_arn(person))
}

/// The text of [`sample_config`].
pub const SAMPLE_CONFIG: &str = r#"
auditors = ["carol"]

[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[people]]
name = "carol"
iam_user = "carol"
slack_id = "U0CAROL01"
email = "carol@example.com"

[[flows]]
name = "infra_access"
description = "Admin access through SymDemoAdmins"
max_duration = "4h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["bob", "carol", "alice"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"

[[flows]]
name = "custom"
description = "A custom target behind a Lambda function"
durations = ["15m", "1h"]
reason_required = false
allow_self_approval = true

[flows.approvers]
channel = "C0CUSTOM1"
people = ["bob", "carol"]

[[flows.targets]]
name = "db"
type = "lambda"
function_arn = "arn:aws:lambda:us-east-1:123456789012:function:elevate-example-target"
"#;

/// A small valid config: people alice, bob, carol (auditor carol); flow `infra_access`
/// (target `admins` = IAM group `SymDemoAdmins`, max 4h, reason required, approvers
/// bob, carol, alice, no self-approval, pending timeout 30m, channel `C0APPROVALS`); flow
/// `custom` (target `db` = Lambda `elevate-example-target`, durations 15m or 1h, no reason
/// required, approvers bob and carol, self-approval allowed, channel `C0CUSTOM1`).
pub fn sample_config() -> Config {
    match Config::parse(SAMPLE_CONFIG) {
        Ok(config) => config,
        Err(err) => panic!("the sample config is invalid: {err}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A whole App over the fakes

/// The flows config the fixtures are written for (`infra/elevate.toml`).
///
/// # Panics
/// When the file is missing or invalid.
pub fn infra_config() -> Config {
    infra_config_with("")
}

/// `infra/elevate.toml` with `extra` TOML appended, plus dave (IAM user `dave`, Slack
/// `U0DAVE001`), a person who approves nothing.
///
/// # Panics
/// When the file is missing or the result invalid.
pub fn infra_config_with(extra: &str) -> Config {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/elevate.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text = format!("{text}\n{DAVE}\n{extra}");
    Config::parse(&text).unwrap_or_else(|e| panic!("infra/elevate.toml (+ extra) is invalid: {e}"))
}

const DAVE: &str = r#"
[[people]]
name = "dave"
iam_user = "dave"
slack_id = "U0DAVE001"
email = "dave@healthy-health.example"
"#;

/// An [`App`] over the in-memory fakes, each kept for inspection.
pub struct FakeApp {
    pub app: crate::service::App,
    pub store: Arc<MemoryStore>,
    pub strategy: Arc<FakeStrategy>,
    pub scheduler: Arc<FakeScheduler>,
    pub notifier: Arc<RecordingNotifier>,
    pub invoker: Arc<RecordingInvoker>,
    pub clock: Arc<FakeClock>,
}

/// The name the fakes' app invokes escalate by.
pub const ESCALATE_FUNCTION: &str = "elevate-escalate";

impl FakeApp {
    pub fn new(config: Config) -> Self {
        Self::at(config, FakeClock::start())
    }

    /// The fakes with the clock at `now`.
    pub fn at(config: Config, now: chrono::DateTime<chrono::Utc>) -> Self {
        let store = Arc::new(MemoryStore::new());
        let strategy = Arc::new(FakeStrategy::new());
        let scheduler = Arc::new(FakeScheduler::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let invoker = Arc::new(RecordingInvoker::new());
        let clock = Arc::new(FakeClock::new(now));
        let app = crate::service::App {
            config: Arc::new(config),
            store: store.clone(),
            strategy: strategy.clone(),
            scheduler: scheduler.clone(),
            notifier: notifier.clone(),
            invoker: invoker.clone(),
            clock: clock.clone(),
            settings: crate::service::Settings::new(ESCALATE_FUNCTION),
        };
        FakeApp {
            app,
            store,
            strategy,
            scheduler,
            notifier,
            invoker,
            clock,
        }
    }

    /// A PENDING request of `requester` for the first target of `flow`.
    ///
    /// # Panics
    /// When the service refuses it.
    pub async fn submit(
        &self,
        requester: &str,
        flow: &str,
        duration: std::time::Duration,
    ) -> RequestId {
        let person = self.person(requester);
        let submission = crate::service::Submission {
            flow: flow.to_owned(),
            target: None,
            duration,
            reason: "INC-4211: restore the claims export".to_owned(),
        };
        match crate::service::submit(&self.app, &crate::testing::caller_of(&person), submission)
            .await
        {
            Ok(request) => request.id,
            Err(err) => panic!("submit refused: {err}"),
        }
    }

    /// `approver` approves request `id`.
    ///
    /// # Panics
    /// When the service refuses it.
    pub async fn approve(&self, id: &RequestId, approver: &str) {
        let person = self.person(approver);
        let decision = crate::service::Decision::Approve;
        if let Err(err) = crate::service::decide(
            &self.app,
            &crate::testing::caller_of(&person),
            id,
            decision,
            None,
        )
        .await
        {
            panic!("approval refused: {err}");
        }
    }

    /// An APPROVED (not yet escalated) one-hour request of alice on infra_access, approved by bob.
    pub async fn approved(&self) -> RequestId {
        let id = self
            .submit(
                "alice",
                "infra_access",
                std::time::Duration::from_secs(3600),
            )
            .await;
        self.approve(&id, "bob").await;
        id
    }

    /// The person named `name`.
    ///
    /// # Panics
    /// When there is none.
    pub fn person(&self, name: &str) -> crate::config::Person {
        self.app
            .config
            .person(name)
            .unwrap_or_else(|| panic!("no person {name}"))
            .clone()
    }

    /// The stored request.
    ///
    /// # Panics
    /// When there is none.
    pub fn request(&self, id: &RequestId) -> crate::model::Request {
        self.store
            .request(id)
            .unwrap_or_else(|| panic!("request {id} is not stored"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{apply, open, Command, NewRequest};
    use crate::model::By;
    use std::time::Duration;

    fn new_request(clock: &FakeClock, requester: &str) -> (Request, AuditEvent) {
        let now = clock.now();
        open(
            RequestId::generate(now),
            NewRequest {
                flow: "infra_access".into(),
                target: "admins".into(),
                requester: requester.into(),
                reason: "incident 42".into(),
                duration: Duration::from_secs(3600),
                pending_timeout: Duration::from_secs(1800),
                terms: sample_terms(requester),
            },
            &iam_arn(&sample_terms(requester).person),
            now,
        )
    }

    #[tokio::test]
    async fn create_twice_is_a_conflict() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");
        let err = store
            .create(&request, &event)
            .await
            .expect_err("second create");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(store.events_all().len(), 1);
    }

    #[tokio::test]
    async fn transition_checks_state_and_sequence() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");

        let approve = apply(
            &request,
            Command::Approve { reason: None },
            &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
            clock.now(),
        )
        .expect("approve");
        // Wrong expected state: nothing written.
        let err = store
            .transition(State::Approved, &approve.request, &approve.event)
            .await
            .expect_err("wrong state");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(
            store.request(&request.id).expect("stored").state,
            State::Pending
        );
        assert_eq!(store.events_all().len(), 1);

        store
            .transition(State::Pending, &approve.request, &approve.event)
            .await
            .expect("approve");

        // A racing deny computed from the same PENDING copy loses: the state moved on.
        let deny = apply(
            &request,
            Command::Deny { reason: None },
            &By::person("carol", "arn:aws:iam::123456789012:user/carol"),
            clock.now(),
        )
        .expect("deny");
        let err = store
            .transition(State::Pending, &deny.request, &deny.event)
            .await
            .expect_err("lost race");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        // The same transition delivered twice: the second one conflicts on the state.
        let err = store
            .transition(State::Pending, &approve.request, &approve.event)
            .await
            .expect_err("duplicate");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        let stored = store.request(&request.id).expect("stored");
        assert_eq!(stored.state, State::Approved);
        assert_eq!(stored.audit_seq, 2);
        let events = store.audit_events(&request.id).await.expect("events");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        crate::audit::verify_chain(&events, Some((stored.audit_seq, &stored.audit_head)))
            .expect("chain");
    }

    #[tokio::test]
    async fn transition_with_a_stale_sequence_conflicts() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");
        let approve = apply(
            &request,
            Command::Approve { reason: None },
            &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
            clock.now(),
        )
        .expect("approve");
        store
            .transition(State::Pending, &approve.request, &approve.event)
            .await
            .expect("approve");

        // Same expected state, but the stored sequence is ahead of the copy's.
        let activate = apply(
            &approve.request,
            Command::Activate,
            &By::system("escalate", "lambda:elevate-escalate"),
            clock.now(),
        )
        .expect("activate");
        let mut seeded = approve.request.clone();
        seeded.audit_seq = 5;
        store.insert_unchecked(seeded, Vec::new());
        let err = store
            .transition(State::Approved, &activate.request, &activate.event)
            .await
            .expect_err("stale seq");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(store.events_all().len(), 2);
    }

    #[tokio::test]
    async fn transition_of_a_missing_request_is_not_found() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, _) = new_request(&clock, "alice");
        let approve = apply(
            &request,
            Command::Approve { reason: None },
            &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
            clock.now(),
        )
        .expect("approve");
        let err = store
            .transition(State::Pending, &approve.request, &approve.event)
            .await
            .expect_err("missing");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(store.events_all().is_empty());
    }

    #[tokio::test]
    async fn inconsistent_pairs_are_refused() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        let mut wrong = request.clone();
        wrong.audit_seq = 2;
        let err = store
            .create(&wrong, &event)
            .await
            .expect_err("inconsistent");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[tokio::test]
    async fn injected_failures_are_unavailable_then_clear() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        store.fail_next(2);
        for _ in 0..2 {
            let err = store.create(&request, &event).await.expect_err("injected");
            assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        }
        store.create(&request, &event).await.expect("create");
        assert_eq!(store.calls(), 3);
    }

    #[tokio::test]
    async fn listings_are_ordered() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let mut ids = Vec::new();
        for requester in ["alice", "alice", "bob"] {
            let (request, event) = new_request(&clock, requester);
            store.create(&request, &event).await.expect("create");
            ids.push(request.id.clone());
            clock.advance(Duration::from_secs(60));
        }
        let mine = store.list_by_requester("alice", &[]).await.expect("mine");
        assert_eq!(
            mine.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            [ids[1].clone(), ids[0].clone()]
        );
        let none = store
            .list_by_requester("alice", &[State::Active])
            .await
            .expect("none");
        assert!(none.is_empty());
        let pending = store.list_by_state(State::Pending).await.expect("pending");
        assert_eq!(
            pending.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            ids
        );

        let since = FakeClock::start() + chrono::Duration::seconds(60);
        let events = store.audit_since(Some(since)).await.expect("since");
        assert_eq!(
            events
                .iter()
                .map(|e| e.request_id.clone())
                .collect::<Vec<_>>(),
            [ids[1].clone(), ids[2].clone()]
        );
        assert_eq!(store.audit_since(None).await.expect("all").len(), 3);
    }

    #[tokio::test]
    async fn set_message_survives_a_transition_from_an_older_copy() {
        let store = MemoryStore::new();
        let clock = FakeClock::default();
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");
        let message = MessageRef {
            channel: "C0APPROVALS".into(),
            ts: "1.1".into(),
        };
        store.set_message(&request.id, &message).await.expect("set");
        let approve = apply(
            &request,
            Command::Approve { reason: None },
            &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
            clock.now(),
        )
        .expect("approve");
        store
            .transition(State::Pending, &approve.request, &approve.event)
            .await
            .expect("approve");
        let stored = store.get(&request.id).await.expect("get").expect("some");
        assert_eq!(stored.message, Some(message));
    }

    #[tokio::test]
    async fn strategy_and_scheduler_fakes_behave_like_their_adapters() {
        let config = sample_config();
        let flow = config.flow("infra_access").expect("flow");
        let target = &flow.targets[0];
        let alice = config.person("alice").expect("alice");
        let clock = FakeClock::default();
        let (request, _) = new_request(&clock, "alice");

        let strategy = FakeStrategy::new();
        strategy
            .escalate(target, alice, &request)
            .await
            .expect("escalate");
        strategy
            .escalate(target, alice, &request)
            .await
            .expect("twice");
        assert_eq!(
            strategy.is_member(target, alice).await.expect("read"),
            Membership::Present
        );
        strategy
            .deescalate(target, alice, &request)
            .await
            .expect("remove");
        strategy
            .deescalate(target, alice, &request)
            .await
            .expect("absent is fine");
        assert_eq!(
            strategy.is_member(target, alice).await.expect("read"),
            Membership::Absent
        );
        strategy.fail_escalate(1);
        assert!(strategy.escalate(target, alice, &request).await.is_err());
        assert!(!strategy.has("admins", "alice"));
        assert_eq!(strategy.escalate_calls(), 3);

        let scheduler = FakeScheduler::new();
        let action = ScheduledAction::Expire {
            request_id: request.id.clone(),
        };
        let at = clock.now() + chrono::Duration::hours(1);
        scheduler
            .schedule(clock.now(), &action)
            .await
            .expect("create");
        scheduler.schedule(at, &action).await.expect("replace");
        assert_eq!(scheduler.schedules().len(), 1);
        assert_eq!(
            scheduler
                .get(&action.schedule_name())
                .await
                .expect("get")
                .map(|s| s.at),
            Some(at)
        );
        assert!(scheduler.take_due(clock.now()).is_empty());
        clock.sleep_until(at).await;
        assert_eq!(clock.now(), at);
        assert_eq!(scheduler.take_due(clock.now()).len(), 1);
        scheduler
            .cancel(&action.schedule_name())
            .await
            .expect("idempotent");
    }

    #[tokio::test]
    async fn notifier_and_invoker_record() {
        let config = sample_config();
        let flow = config.flow("infra_access").expect("flow");
        let alice = config.person("alice").expect("alice");
        let clock = FakeClock::default();
        let (request, _) = new_request(&clock, "alice");

        let notifier = RecordingNotifier::new();
        let first = notifier
            .announce(&request, flow, alice)
            .await
            .expect("announce");
        let second = notifier
            .announce(&request, flow, alice)
            .await
            .expect("announce");
        assert_eq!(first.channel, "C0APPROVALS");
        assert!(second.ts > first.ts);
        notifier.tell(alice, "you are in").await.expect("tell");
        assert_eq!(notifier.told("alice"), ["you are in"]);
        notifier.fail_next(1);
        assert!(notifier.tell(alice, "lost").await.is_err());
        assert_eq!(notifier.notices().len(), 3);

        let invoker = RecordingInvoker::new();
        let payload = serde_json::json!({"request_id": request.id});
        invoker
            .invoke_async("escalate", &payload)
            .await
            .expect("async");
        assert_eq!(
            invoker.invoke("target", &payload).await.expect("sync"),
            serde_json::json!({"ok": true})
        );
        invoker.answer_error("target", "boom");
        assert!(matches!(
            invoker.invoke("target", &payload).await,
            Err(InvokeError::FunctionError(_))
        ));
        let calls = invoker.calls();
        assert_eq!(calls.len(), 3);
        assert!(calls[0].asynchronous && !calls[1].asynchronous);
    }

    #[test]
    fn sample_config_has_what_the_docs_say() {
        let config = sample_config();
        assert_eq!(config.people.len(), 3);
        let infra = config.flow("infra_access").expect("infra");
        assert_eq!(infra.approvers.people, ["bob", "carol", "alice"]);
        assert!(!infra.allow_self_approval);
        assert_eq!(infra.max_duration, Duration::from_secs(4 * 3600));
        assert!(config.flow("custom").is_some());
    }
}
