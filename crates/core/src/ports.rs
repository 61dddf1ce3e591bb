//! The ports: what the domain needs from the outside world. Adapters live in `elevate-aws`;
//! in-memory fakes live in [`crate::testing`] (feature `testing`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::config::{Flow, Person, Target};
use crate::events::ScheduledAction;
use crate::machine::Transition;
use crate::model::{MessageRef, Request, RequestId, SessionsEnded, State};
use crate::names::FlowName;
use crate::names::TargetName;

/// A failure of an outside system, with its source kept for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request was not in the expected state (someone else moved it first), or an item
    /// that must be new already exists. Nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("request {0} not found")]
    NotFound(RequestId),
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// A page cursor this store did not hand out for this export or listing (or no longer
    /// reads).
    #[error("not a cursor of this query: {0}")]
    BadCursor(String),
}

/// The audit events an export asks for: at or after `since`, before `until` (either end open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditWindow {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditWindow {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at < until)
    }
}

/// One page of an audit export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditPage {
    /// In time order within the page, each page after the one before.
    pub events: Vec<AuditEvent>,
    /// The cursor of the next page (opaque, URL-safe); `None` on the last page.
    pub next: Option<String>,
}

/// Which requests a listing reads, page by page ([`RequestStore::list_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListQuery {
    /// The requests of `requester`, newest first; only those in `state` when given.
    Requester {
        requester: String,
        state: Option<State>,
    },
    /// The requests in `state`, oldest first; only those `decider` may decide when given.
    State {
        state: State,
        decider: Option<Decider>,
    },
}

/// Whom a listing of requests in one state is for: the requests of `flows` (those the person
/// approves), less the person's own requests in a flow not also in `self_approval`. The same
/// rule as [`Flow::check_decider`], so a store can keep exactly those while it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub person: String,
    pub flows: Vec<FlowName>,
    /// The flows of `flows` that let their approvers decide their own requests.
    pub self_approval: Vec<FlowName>,
}

impl ListQuery {
    /// Whether `request` belongs to the listing (ordering and paging aside).
    pub fn keeps(&self, request: &Request) -> bool {
        match self {
            ListQuery::Requester { requester, state } => {
                request.requester == *requester && state.is_none_or(|s| request.state == s)
            }
            ListQuery::State { state, decider } => {
                request.state == *state && decider.as_ref().is_none_or(|d| d.may_decide(request))
            }
        }
    }

    /// Newest first (a requester's), or oldest first (a state's).
    pub fn newest_first(&self) -> bool {
        matches!(self, ListQuery::Requester { .. })
    }

    /// The requests a store reads for this listing, in creation order (or its reverse), to
    /// keep those of the listing. A requester's requests in an open state come from all the
    /// requests in that state: the open requests of everyone are few, while a requester's
    /// history grows without end. Their requests in a final state, or in any, come from their
    /// history.
    pub fn partition(&self) -> ListPartition<'_> {
        match self {
            ListQuery::Requester {
                state: Some(state), ..
            } if !state.is_final() => ListPartition::State(*state),
            ListQuery::Requester { requester, .. } => ListPartition::Requester(requester),
            ListQuery::State { state, .. } => ListPartition::State(*state),
        }
    }

    /// What a cursor of this listing is bound to.
    pub fn binding(&self) -> ListBinding {
        match self {
            ListQuery::Requester { requester, state } => ListBinding {
                of: ListOf::Requester,
                who: Some(requester.clone()),
                state: *state,
            },
            ListQuery::State { state, decider } => ListBinding {
                of: ListOf::State,
                who: decider.as_ref().map(|d| d.person.clone()),
                state: Some(*state),
            },
        }
    }
}

impl std::fmt::Display for ListQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.binding().fmt(f)
    }
}

/// The requests a listing reads from: one requester's, or those in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPartition<'a> {
    Requester(&'a str),
    State(State),
}

/// What a listing's cursor is bound to: its kind, whose it is, and its state. A decider's
/// flows are not part of it: they come from elevate.toml, and the next page after a change
/// of the file reads on from the same place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListBinding {
    pub of: ListOf,
    pub who: Option<String>,
    pub state: Option<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOf {
    /// A requester's requests.
    Requester,
    /// The requests in one state (that one person may decide, or all).
    State,
}

impl std::fmt::Display for ListBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.map(|s| format!("{s} ")).unwrap_or_default();
        let who = self.who.as_deref().unwrap_or("?");
        match (self.of, &self.who) {
            (ListOf::Requester, _) => write!(f, "the {state}requests of {who}"),
            (ListOf::State, Some(_)) => write!(f, "the {state}requests {who} may decide"),
            (ListOf::State, None) => write!(f, "the {state}requests"),
        }
    }
}

impl Decider {
    pub fn may_decide(&self, request: &Request) -> bool {
        self.flows.contains(&request.flow)
            && (request.requester != self.person || self.self_approval.contains(&request.flow))
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// In the listing's order, each page after the one before.
    pub requests: Vec<Request>,
    /// The cursor of the next page (opaque, URL-safe); `None` on the last page.
    pub next: Option<String>,
}

/// How many items a store reads at most for one page of a listing that filters what it reads
/// (say a requester's DENIED requests from their whole history). A page that reaches it ends
/// early, with fewer requests than asked (even none) and a `next`, so one call's work stays
/// bounded however few items match.
pub const LIST_READ_BUDGET: usize = 1000;

/// What a store checks before every write of a request with its audit event: both describe
/// the same step, or the audit chain would lie. A pair that disagrees is a bug of the caller,
/// not a race, so it is `Corrupt`, loudly.
pub fn check_pair(request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
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

/// Requests and their audit events.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Writes a new request and its first event; `Conflict` if the id exists.
    async fn create(&self, request: &Request, event: &AuditEvent) -> Result<(), StoreError>;
    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError>;
    /// Writes the step the state machine made (the request and its audit event) atomically,
    /// only if the stored request is still in `step.from` at the audit sequence before the
    /// step's event. A lost race is `Conflict` and leaves neither the request change nor the
    /// event.
    async fn transition(&self, step: &Transition) -> Result<(), StoreError>;
    /// Like `transition`, and only while the stored `unchanged` is still in the state and at
    /// the audit sequence of the copy given, checked in the same atomic write. Ending a grant
    /// whose access another grant keeps is only right while that other grant has not ended
    /// meanwhile; without the check, two such grants ending at once could each leave the
    /// access to the other. A lost race on either request is `Conflict`.
    async fn transition_while(
        &self,
        step: &Transition,
        unchanged: &Request,
    ) -> Result<(), StoreError>;
    /// Records where the request was announced. Not a state change, so no audit event.
    async fn set_message(&self, id: &RequestId, message: &MessageRef) -> Result<(), StoreError>;
    /// Requests of one requester, newest first: those in any of `states`, or all of them
    /// when `states` is empty. Reads them all: for internal checks on open states (few), not
    /// for listings people page through, which use [`RequestStore::list_page`].
    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError>;
    /// Requests in one state, oldest first. Reads them all: for the sweep and reconciliation,
    /// which act on every open request.
    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError>;
    /// One page of the listing `query`: at most `limit` requests (at least 1 is asked for)
    /// from where `after` (the `next` of the page before; `None` for the first page) says, in
    /// the listing's order. Reads only what the page needs: the items of one index partition
    /// from the cursor on, up to one past the page, or [`LIST_READ_BUDGET`] items when a filter
    /// keeps few of them (then the page may hold fewer requests, even none, and still have a
    /// `next`). The listing ends where `next` is absent. A cursor handed out for another query,
    /// or altered, is `BadCursor`.
    async fn list_page(
        &self,
        query: &ListQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;
    /// The audit events of one request, by sequence number.
    async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, StoreError>;
    /// Every audit event at or after `since` (all when `None`), ordered by time.
    async fn audit_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, StoreError>;
    /// One page of the audit events in `window`: at most `limit` events from where `after`
    /// (the `next` of the page before; `None` for the first page) says. Reads about one page
    /// of items, so an export of any size runs in bounded memory. Pages are in time order
    /// (a page may be empty only when it is the last).
    async fn audit_page(
        &self,
        window: &AuditWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The target answered and refused (a custom target's `{"ok":false,"error":...}`).
    #[error("target refused: {0}")]
    Refused(String),
    /// This strategy does not handle that kind of target (a wiring mistake).
    #[error("target `{0}` is not handled by this strategy")]
    WrongTarget(TargetName),
    #[error("target unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Whether a person's access on a target exists right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    Present,
    Absent,
    /// The target cannot be read back (a custom target that only acknowledges).
    Unknown,
}

/// Grants and removes access on a target.
#[async_trait]
pub trait Strategy: Send + Sync {
    /// Grants `person` access on `target` for `request`. Granting twice is success.
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError>;
    /// Removes the access. Removing access that is already gone is success.
    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError>;
    /// Reads back whether the access exists.
    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError>;
    /// Who holds access on `target` right now, for reconciliation: IAM user names, or for a
    /// permission set Identity Store user ids; `None` when the target cannot be listed (a
    /// custom target).
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError>;
    /// Removes the access of `iam_user` (as `members` names them), whom no grant explains.
    /// Removing what is absent is success.
    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError>;
    /// Ends `person`'s live sessions, issued before `before`, of the roles `target` lets its
    /// members assume, and reads that back. `Ok(None)` when the target names no roles.
    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError>;
}

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// elevate.toml has no `[identity_center]`, so there is no directory to ask.
    #[error("elevate.toml has no [identity_center]: there is no Identity Store to find people and groups in")]
    NotConfigured,
    /// The directory answered, but not with one answer (two users for one email).
    #[error("{0}")]
    Ambiguous(String),
    #[error("Identity Store unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// The Identity Store of `[identity_center]`: people's users, and the groups they are in.
/// Memberships are asked each time (leaving a group takes its rights away at once); ids,
/// which never change, may be kept.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The user id of `person`, found by their email as a user name or an email; `None` when
    /// the directory has no such user.
    async fn user_id(&self, person: &Person) -> Result<Option<String>, DirectoryError>;
    /// The id of the group whose display name is `name`; `None` when there is none.
    async fn group_id(&self, name: &str) -> Result<Option<String>, DirectoryError>;
    /// The ids of the groups the user is a member of, now.
    async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, DirectoryError>;
}

/// The directory of a config without `[identity_center]`: every question is refused as
/// [`DirectoryError::NotConfigured`] (such a config names no group and no permission set).
pub struct NoDirectory;

#[async_trait]
impl Directory for NoDirectory {
    async fn user_id(&self, _person: &Person) -> Result<Option<String>, DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
    async fn group_id(&self, _name: &str) -> Result<Option<String>, DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
    async fn group_ids_of(&self, _user_id: &str) -> Result<Vec<String>, DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
}

/// Sends each target to the strategy of its kind.
pub struct StrategyRouter {
    pub iam_group: Arc<dyn Strategy>,
    pub lambda: Arc<dyn Strategy>,
    pub sso_permission_set: Arc<dyn Strategy>,
}

impl StrategyRouter {
    fn pick(&self, target: &Target) -> &dyn Strategy {
        match target.kind {
            crate::config::TargetKind::IamGroup { .. } => self.iam_group.as_ref(),
            crate::config::TargetKind::Lambda { .. } => self.lambda.as_ref(),
            crate::config::TargetKind::SsoPermissionSet { .. } => self.sso_permission_set.as_ref(),
        }
    }
}

#[async_trait]
impl Strategy for StrategyRouter {
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        self.pick(target).escalate(target, person, request).await
    }
    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        self.pick(target).deescalate(target, person, request).await
    }
    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        self.pick(target).is_member(target, person).await
    }
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        self.pick(target).members(target).await
    }
    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError> {
        self.pick(target).remove_member(target, iam_user).await
    }
    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError> {
        self.pick(target).end_sessions(target, person, before).await
    }
}

/// A schedule as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInfo {
    pub name: String,
    pub at: DateTime<Utc>,
    pub action: ScheduledAction,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("scheduler unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("schedule is corrupt: {0}")]
    Corrupt(String),
}

/// One-time schedules that call elevate back.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Creates the schedule named [`ScheduledAction::schedule_name`] firing at `at`, or
    /// replaces it when it exists.
    async fn schedule(
        &self,
        at: DateTime<Utc>,
        action: &ScheduledAction,
    ) -> Result<(), SchedulerError>;
    /// Deletes a schedule; deleting one that does not exist is success.
    async fn cancel(&self, name: &str) -> Result<(), SchedulerError>;
    async fn get(&self, name: &str) -> Result<Option<ScheduleInfo>, SchedulerError>;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification refused: {0}")]
    Refused(String),
    #[error("notifier unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// Tells people about requests (Slack).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Posts a request in `channel` (the approvers', or its backups') with Approve/Deny
    /// buttons.
    async fn announce(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
        channel: &str,
    ) -> Result<MessageRef, NotifyError>;
    /// Rewrites the announcement to show the request's current state.
    async fn update(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
        message: &MessageRef,
    ) -> Result<(), NotifyError>;
    /// A direct message to `person` about `request` (they asked for it). While the request
    /// is ACTIVE, the message offers its requester a way to end the access at once.
    async fn tell(&self, person: &Person, request: &Request, text: &str)
        -> Result<(), NotifyError>;
    /// What needs a channel's attention again (a request nobody answered, a break-glass
    /// grant nobody reviewed): a reply in the thread of the message `thread` (a `ts`), shown
    /// in the channel too, or a new message in `channel` without one. `ping` (Slack user ids)
    /// are mentioned, so that they are notified.
    async fn remind(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
        ping: &[String],
    ) -> Result<(), NotifyError>;
    /// A message only `person` sees, in `channel` (why a click was refused).
    async fn tell_privately(
        &self,
        channel: &str,
        person_slack_id: &str,
        text: &str,
    ) -> Result<(), NotifyError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("function error: {0}")]
    FunctionError(String),
    #[error("invoke failed: {0}")]
    Unavailable(#[source] BoxError),
}

/// Starts the escalation of an approved request without waiting for it: in AWS, an
/// asynchronous invoke of the escalate function with an [`EscalateEvent`](crate::events::EscalateEvent).
#[async_trait]
pub trait Escalation: Send + Sync {
    async fn start(&self, request_id: &RequestId) -> Result<(), InvokeError>;
}

/// Runs a [`FollowUp`](crate::events::FollowUp) after the caller has been answered: in AWS,
/// an asynchronous invoke (Lambda queues it and retries it on failure).
#[async_trait]
pub trait FollowUps: Send + Sync {
    async fn defer(&self, work: &crate::events::FollowUp) -> Result<(), InvokeError>;
}

/// Invokes functions by name (custom targets, and the escalation's adapter).
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Fire and forget (`InvocationType=Event`).
    async fn invoke_async(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<(), InvokeError>;
    /// Waits for the answer (`InvocationType=RequestResponse`).
    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError>;
}

/// Time, as a port so tests control it.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Waits until `at` (returns at once when it has passed).
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The real clock.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}
