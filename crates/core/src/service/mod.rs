//! The use cases: what the functions do, written once against the ports. Each function's
//! handler parses its event, calls one of these, and turns the result into its answer.

mod error;
mod extend;
mod grant;
mod hook;
mod query;
mod reconcile;
mod remind;
mod slack;
mod submit;
mod sweep;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ErrorKind, ServiceError};
pub use extend::extend;
pub use grant::{end_by_schedule, escalate, fail, revoke, time_out};
pub use query::{
    audit_export, list, show, AuditExport, AuditHead, Scope, AUDIT_PAGE_EVENTS, LIST_PAGE_DEFAULT,
    LIST_PAGE_MAX,
};
pub use reconcile::{reconcile, reconcile_preview, Reconciliation, Repair, RepairKind};
pub use slack::{
    decide_from_slack, end_access_from_slack, follow_up, slack_caller, submit_from_slack,
    SlackOutcome,
};
pub use submit::{cancel, decide, submit, submit_break_glass, Decision, Submission};
pub use sweep::{sweep, SweepReport};

use crate::config::{Config, Flow, Person};
use crate::machine::{self, Command, Transition};
use crate::model::{AutoDecider, By, MessageRef, Request, RequestId, Terms};
use crate::ports::{
    Clock, Directory, Escalation, FollowUps, Invoker, Notifier, NotifyError, RequestStore,
    Scheduler, StoreError, Strategy,
};
use crate::rules::RuleError;

/// Knobs of the use cases that are not in the flows file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The principal recorded on the audit events of elevate's own steps: the function that
    /// took them (`lambda:<function name>`).
    pub principal: String,
    /// How much earlier than expiry the revocation is scheduled. EventBridge Scheduler fires
    /// up to a minute late, so the revoke function is woken early and waits out the rest.
    pub revoke_lead: Duration,
    /// An APPROVED request not escalated, or a PENDING one not announced, after this long is
    /// escalated or announced again by the sweep (until then its own follow-up does it).
    pub escalation_retry_after: Duration,
    /// An APPROVED request still not escalated after this long is marked FAILED.
    pub escalation_deadline: Duration,
    /// How long a flow's request hook may take to answer; a later answer counts as
    /// `continue`. The caller waits meanwhile, and Slack gives a form submission 3 s in all.
    pub hook_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            principal: "elevate".to_owned(),
            revoke_lead: Duration::from_secs(60),
            escalation_retry_after: Duration::from_secs(120),
            escalation_deadline: Duration::from_secs(15 * 60),
            hook_timeout: Duration::from_secs(2),
        }
    }
}

/// Everything a use case needs, built once per cold start.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn RequestStore>,
    pub strategy: Arc<dyn Strategy>,
    /// The Identity Store of `[identity_center]` ([`NoDirectory`](crate::ports::NoDirectory)
    /// without one).
    pub directory: Arc<dyn Directory>,
    pub scheduler: Arc<dyn Scheduler>,
    pub notifier: Arc<dyn Notifier>,
    pub escalation: Arc<dyn Escalation>,
    /// Work that runs after Slack has been answered (see [`FollowUp`](crate::events::FollowUp)).
    pub follow_ups: Arc<dyn FollowUps>,
    /// Asks flows' request hooks (synchronous Lambda invokes).
    pub hooks: Arc<dyn Invoker>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}

/// A person of elevate.toml and the authenticated principal that proved who they are (the
/// caller's IAM ARN, or `slack:<team>/<user>` for a click). The principal is recorded on every
/// audit event the caller causes.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub person: &'a Person,
    pub principal: String,
}

impl<'a> Caller<'a> {
    pub fn new(person: &'a Person, principal: impl Into<String>) -> Self {
        Caller {
            person,
            principal: principal.into(),
        }
    }

    pub fn name(&self) -> &'a str {
        &self.person.name
    }

    pub(crate) fn by(&self) -> By {
        By::person(&self.person.name, &self.principal)
    }
}

/// What the directory said of a person and the groups a flow names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupsFound {
    /// The groups the person is a member of, now.
    pub member_of: Vec<String>,
    /// The groups the directory does not have.
    pub missing: Vec<String>,
}

impl GroupsFound {
    /// A refusal of someone who is not admitted, said better when a group the flow names
    /// does not exist (the config is wrong, not the person).
    pub fn explain(&self, refusal: RuleError, person: &Person, flow: &Flow) -> ServiceError {
        let not_admitted = matches!(
            refusal,
            RuleError::NotARequester { .. } | RuleError::NotAnApprover { .. }
        );
        if self.missing.is_empty() || !not_admitted {
            return refusal.into();
        }
        RuleError::UnknownGroup {
            person: person.name.clone(),
            flow: flow.name.clone(),
            groups: self.missing.join(", "),
        }
        .into()
    }
}

impl App {
    /// The groups of `wanted` that `person` is a member of in the Identity Store, asked now
    /// (memberships are never kept: leaving a group takes its rights away at once). Nothing
    /// is asked when `wanted` is empty; someone the directory does not know is in no group.
    pub(crate) async fn groups_of(
        &self,
        person: &Person,
        wanted: &[String],
    ) -> Result<GroupsFound, ServiceError> {
        let mut found = GroupsFound::default();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut ids = Vec::with_capacity(wanted.len());
        for name in wanted {
            match self.directory.group_id(name).await? {
                Some(id) => ids.push((name, id)),
                None => {
                    tracing::warn!(group = %name, "elevate.toml names an Identity Store group that does not exist");
                    found.missing.push(name.clone());
                }
            }
        }
        let Some(user_id) = self.directory.user_id(person).await? else {
            return Ok(found);
        };
        let of_user = self.directory.group_ids_of(&user_id).await?;
        found.member_of = ids
            .into_iter()
            .filter(|(_, id)| of_user.contains(id))
            .map(|(name, _)| name.clone())
            .collect();
        Ok(found)
    }

    /// Whether `caller` may see (and revoke) `request`: its requester, or an approver of its
    /// flow by name or, asked only then, by directory group.
    pub(crate) async fn may_view(
        &self,
        caller: &Caller<'_>,
        request: &Request,
    ) -> Result<bool, ServiceError> {
        let name = caller.name();
        if request.requester == name {
            return Ok(true);
        }
        let Some(flow) = self.config.flow(&request.flow) else {
            return Ok(false);
        };
        let groups = self
            .groups_of(caller.person, flow.approver_groups_to_ask(name))
            .await?;
        Ok(flow.may_view(name, &groups.member_of, request))
    }

    /// elevate's own `component` (escalate, revoke, sweep, ...) as the actor of a step.
    pub(crate) fn system(&self, component: &str) -> By {
        By::system(component, &self.settings.principal)
    }

    /// The actor of a decision by a rule or hook, recorded with this function's principal.
    pub(crate) fn decider(&self, decider: &AutoDecider) -> By {
        self.system(&decider.component())
    }

    /// What a stored request grants: the terms it carries. Requests stored before terms were
    /// recorded fall back to what elevate.toml says now; when that is gone too, a person has
    /// to look (an error, not a retry).
    pub(crate) fn terms<'r>(&self, request: &'r Request) -> Result<Cow<'r, Terms>, ServiceError> {
        if let Some(terms) = &request.terms {
            return Ok(Cow::Borrowed(terms));
        }
        let flow = self.config.flow(&request.flow).ok_or_else(|| {
            ServiceError::Orphaned(format!(
                "flow `{}` is no longer in elevate.toml",
                request.flow
            ))
        })?;
        let target = flow
            .targets
            .iter()
            .find(|t| t.name == request.target)
            .ok_or_else(|| {
                ServiceError::Orphaned(format!(
                    "target `{}` is no longer in flow `{}`",
                    request.target, request.flow
                ))
            })?;
        let person = self.config.person(&request.requester).ok_or_else(|| {
            ServiceError::Orphaned(format!(
                "person `{}` is no longer in elevate.toml",
                request.requester
            ))
        })?;
        Ok(Cow::Owned(Terms {
            target: target.clone(),
            person: person.clone(),
        }))
    }

    /// The flow of a request as elevate.toml says now, for deciding on it and for showing it.
    pub(crate) fn flow_of(&self, request: &Request) -> Result<&Flow, ServiceError> {
        self.config.flow(&request.flow).ok_or_else(|| {
            ServiceError::Conflict(format!(
                "request {} is of flow `{}`, which is no longer in elevate.toml",
                request.id, request.flow
            ))
        })
    }

    /// Applies `command` by `by` to `request` and writes the step (see [`App::write`]).
    pub(crate) async fn step(
        &self,
        request: &Request,
        command: Command,
        by: &By,
    ) -> Result<Option<Request>, ServiceError> {
        let step = machine::apply(request, command, by, self.clock.now())?;
        self.write(&step).await
    }

    /// Writes a step of the state machine. `Ok(None)` when the write lost a race: someone
    /// else moved the request first, and nothing was written.
    pub(crate) async fn write(&self, step: &Transition) -> Result<Option<Request>, ServiceError> {
        match self.store.transition(step).await {
            Ok(()) => Ok(Some(step.request.clone())),
            Err(StoreError::Conflict(why)) => {
                tracing::info!(request_id = %step.request.id, %why, "someone else moved the request first");
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Tells the world about a step: the Slack message shows the request's new state, and the
    /// requester gets `text` in a direct message. Best effort, like both of those.
    pub(crate) async fn tell(&self, request: &Request, text: Option<&str>) {
        // Each failure is logged where it happens.
        let _ = self.tell_checked(request, text).await;
    }

    /// [`App::tell`], returning the first failure worth retrying (Slack unavailable): a
    /// follow-up retries then. A refusal (a deleted channel, say) is logged only.
    pub(crate) async fn tell_checked(
        &self,
        request: &Request,
        text: Option<&str>,
    ) -> Result<(), NotifyError> {
        let shown = self.refresh_message(request).await;
        let told = match text {
            Some(text) => self.tell_requester(request, text).await,
            None => Ok(()),
        };
        shown.and(told)
    }

    /// Shows the request's new state in its Slack message. Slack being down must not undo or
    /// block a grant, so a failure is logged; it is returned when it is worth retrying.
    /// The request posted again for its backup approvers is shown the same way, except while
    /// an extension waits (which is not theirs to decide).
    pub(crate) async fn refresh_message(&self, request: &Request) -> Result<(), NotifyError> {
        let backup = request
            .reminders
            .as_ref()
            .and_then(|r| r.backup_message.as_ref())
            .filter(|_| request.extension.is_none());
        let messages: Vec<&MessageRef> = request.message.iter().chain(backup).collect();
        if messages.is_empty() {
            return Ok(());
        }
        let (Some(flow), Ok(terms)) = (self.config.flow(&request.flow), self.terms(request)) else {
            tracing::info!(request_id = %request.id, "flow no longer configured; Slack message left as it is");
            return Ok(());
        };
        let mut shown = Ok(());
        for message in messages {
            let result = self
                .notifier
                .update(request, flow, &terms.person, message)
                .await;
            let result = retry_worthy(result, || {
                format!(
                    "could not update the Slack message of request {} in {}",
                    request.id, message.channel
                )
            });
            shown = shown.and(result);
        }
        shown
    }

    /// Brings up `request` again ([`Notifier::remind`]), mentioning `ping`: in the thread of
    /// its announcement, else (never posted) in the channel it belongs to.
    pub(crate) async fn remind_in_thread(
        &self,
        request: &Request,
        text: &str,
        ping: &[String],
    ) -> Result<(), NotifyError> {
        let (channel, thread) = match &request.message {
            Some(message) => (message.channel.as_str(), Some(message.ts.as_str())),
            None => match self.config.flow(&request.flow) {
                Some(flow) => (flow.channel_for(request), None),
                None => (request.channel.as_deref().unwrap_or_default(), None),
            },
        };
        self.notifier.remind(channel, thread, text, ping).await
    }

    /// A direct message to the requester; like [`App::refresh_message`].
    pub(crate) async fn tell_requester(
        &self,
        request: &Request,
        text: &str,
    ) -> Result<(), NotifyError> {
        let Ok(terms) = self.terms(request) else {
            return Ok(());
        };
        let result = self.notifier.tell(&terms.person, request, text).await;
        retry_worthy(result, || {
            format!("could not message the requester of request {}", request.id)
        })
    }

    pub(crate) async fn load(&self, id: &RequestId) -> Result<Request, ServiceError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.clone()))
    }
}

/// Logs a failure to tell Slack (`what` says what failed), and keeps it only when a retry
/// may help.
fn retry_worthy(
    result: Result<(), NotifyError>,
    what: impl FnOnce() -> String,
) -> Result<(), NotifyError> {
    match result {
        Ok(()) => Ok(()),
        Err(err @ NotifyError::Unavailable(_)) => {
            tracing::warn!(error = %err, "{}", what());
            Err(err)
        }
        Err(err) => {
            tracing::warn!(error = %err, "{}", what());
            Ok(())
        }
    }
}

#[cfg(test)]
mod break_glass_tests;
#[cfg(test)]
mod directory_tests;
#[cfg(test)]
mod hook_tests;
#[cfg(test)]
mod remind_tests;
#[cfg(test)]
mod sessions_tests;
#[cfg(test)]
mod slack_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workflow_tests;
