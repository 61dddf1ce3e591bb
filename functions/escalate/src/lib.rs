//! The escalate function: invoked asynchronously by approve (and by the sweep) with an
//! [`EscalateEvent`] `{"request_id": "..."}`, it grants an APPROVED request's access through
//! its target's strategy, reads it back, schedules the revocation and records the request
//! ACTIVE.
//!
//! A fault is returned as `Err`, so Lambda retries the event; when its retries are exhausted,
//! Lambda hands the event and the error to the revoke function (the OnFailure destination),
//! which records the request FAILED. A second delivery finds the request ACTIVE and does
//! nothing.

use elevate_core::events::EscalateEvent;
use elevate_core::service::{self, App, ServiceError};
use elevate_core::{RequestId, State};
use lambda_runtime::Diagnostic;
use serde::Serialize;

/// What one delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalated {
    pub request_id: RequestId,
    /// Whether this delivery granted the access (false: nothing to do).
    pub escalated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
}

#[derive(Debug, thiserror::Error)]
pub enum EscalateError {
    #[error("not an escalate event (expected {{\"request_id\": \"<uuid>\"}}): {0}")]
    BadEvent(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The error Lambda records: its message reaches the revoke function as the failure of the
/// request once retries are exhausted.
impl From<EscalateError> for Diagnostic {
    fn from(err: EscalateError) -> Diagnostic {
        let error_type = match &err {
            EscalateError::BadEvent(_) => "BadEvent",
            EscalateError::Service(_) => "EscalationFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// Handles one delivery of the event.
#[tracing::instrument(skip_all, fields(request_id))]
pub async fn handle(app: &App, event: serde_json::Value) -> Result<Escalated, EscalateError> {
    let event: EscalateEvent =
        serde_json::from_value(event).map_err(|err| EscalateError::BadEvent(err.to_string()))?;
    let id = event.request_id;
    tracing::Span::current().record("request_id", tracing::field::display(&id));
    match service::escalate(app, &id).await {
        Ok(Some(request)) => Ok(Escalated {
            request_id: id,
            escalated: true,
            state: Some(request.state),
        }),
        Ok(None) => Ok(Escalated {
            request_id: id,
            escalated: false,
            state: None,
        }),
        // A request that does not exist cannot become escalatable by retrying.
        Err(err) if err.is_refusal() => {
            tracing::warn!(error = %err, "nothing to escalate");
            Ok(Escalated {
                request_id: id,
                escalated: false,
                state: None,
            })
        }
        Err(err) => {
            tracing::error!(error = %err, "escalation failed; Lambda will retry");
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests;
