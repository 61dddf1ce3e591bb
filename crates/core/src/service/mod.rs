//! The use cases: what the functions do, written once against the ports. Each function's
//! handler parses its event, calls one of these, and turns the result into its answer.

mod error;
mod grant;
mod query;
mod submit;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

pub use error::ServiceError;
pub use grant::{end_by_schedule, escalate, fail, revoke, time_out};
pub use query::{audit_export, list, show, AuditExport, AuditHead, Scope};
pub use submit::{cancel, decide, decide_from_slack, submit, Decision, SlackOutcome, Submission};
pub use sweep::{sweep, SweepReport};

use crate::config::{Config, Flow, Person, Target};
use crate::model::Request;
use crate::ports::{Clock, Invoker, Notifier, RequestStore, Scheduler, Strategy};

/// Knobs of the use cases that are not in the flows file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name or ARN of the escalate function, invoked asynchronously on approval.
    pub escalate_function: String,
    /// How much earlier than expiry the revocation is scheduled. EventBridge Scheduler fires
    /// up to a minute late, so the revoke function is woken early and waits out the rest.
    pub revoke_lead: Duration,
    /// An APPROVED request not escalated after this long is escalated again by the sweep.
    pub escalation_retry_after: Duration,
    /// An APPROVED request still not escalated after this long is marked FAILED.
    pub escalation_deadline: Duration,
}

impl Settings {
    pub fn new(escalate_function: impl Into<String>) -> Self {
        Self {
            escalate_function: escalate_function.into(),
            revoke_lead: Duration::from_secs(60),
            escalation_retry_after: Duration::from_secs(120),
            escalation_deadline: Duration::from_secs(15 * 60),
        }
    }
}

/// Everything a use case needs, built once per cold start.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn RequestStore>,
    pub strategy: Arc<dyn Strategy>,
    pub scheduler: Arc<dyn Scheduler>,
    pub notifier: Arc<dyn Notifier>,
    pub invoker: Arc<dyn Invoker>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}

/// The flow, target and requester a stored request refers to.
pub(crate) struct Parts<'a> {
    pub flow: &'a Flow,
    pub target: &'a Target,
    pub requester: &'a Person,
}

impl App {
    /// Resolves what a stored request names. A request whose flow, target or requester has
    /// left the config since is an error that needs a person, not a retry.
    pub(crate) fn parts<'a>(&'a self, request: &Request) -> Result<Parts<'a>, ServiceError> {
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
        let requester = self.config.person(&request.requester).ok_or_else(|| {
            ServiceError::Orphaned(format!(
                "person `{}` is no longer in elevate.toml",
                request.requester
            ))
        })?;
        Ok(Parts {
            flow,
            target,
            requester,
        })
    }

    /// Shows the request's new state in its Slack message. Best effort: Slack being down must
    /// not undo or block a grant, so a failure is logged, not returned.
    pub(crate) async fn refresh_message(&self, request: &Request) {
        let Some(message) = &request.message else {
            return;
        };
        let Ok(parts) = self.parts(request) else {
            return;
        };
        if let Err(err) = self
            .notifier
            .update(request, parts.flow, parts.requester, message)
            .await
        {
            tracing::warn!(request_id = %request.id, error = %err, "could not update the Slack message");
        }
    }

    /// A direct message to the requester; best effort like [`App::refresh_message`].
    pub(crate) async fn tell_requester(&self, request: &Request, text: &str) {
        let Some(person) = self.config.person(&request.requester) else {
            return;
        };
        if let Err(err) = self.notifier.tell(person, text).await {
            tracing::warn!(request_id = %request.id, error = %err, "could not message the requester");
        }
    }

    pub(crate) async fn load(&self, id: &crate::model::RequestId) -> Result<Request, ServiceError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.clone()))
    }
}

#[cfg(test)]
mod tests;
