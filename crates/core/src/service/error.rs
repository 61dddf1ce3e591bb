use crate::identity::IdentityError;
use crate::machine::TransitionError;
use crate::model::RequestId;
use crate::ports::{InvokeError, NotifyError, SchedulerError, StoreError, StrategyError};
use crate::rules::RuleError;

/// Why a use case did not happen. The first group are answers to the caller (4xx, nothing
/// changed); the second are faults of the outside world (5xx, or `Err` so the platform retries).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's principal is refused by `[identity]`, or is nobody of elevate.toml.
    #[error("not accepted as a person of elevate.toml: {0}")]
    UnknownCaller(#[from] IdentityError),
    #[error("unknown flow `{0}`")]
    UnknownFlow(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("{0}")]
    Forbidden(String),
    #[error("request {0} not found")]
    NotFound(RequestId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Conflict(String),

    #[error("request refers to something no longer configured: {0}")]
    Orphaned(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    #[error("access check failed: {0}")]
    Unverified(String),
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ServiceError::Conflict(what),
            StoreError::NotFound(id) => ServiceError::NotFound(id),
            other => ServiceError::Store(other),
        }
    }
}

impl ServiceError {
    /// HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::UnknownFlow(_) | ServiceError::BadRequest(_) => 400,
            ServiceError::Rule(rule) => match rule {
                RuleError::NotARequester { .. }
                | RuleError::NotAnApprover { .. }
                | RuleError::SelfApproval { .. } => 403,
                _ => 400,
            },
            ServiceError::UnknownCaller(_) | ServiceError::Forbidden(_) => 403,
            ServiceError::NotFound(_) => 404,
            ServiceError::Transition(_) | ServiceError::Conflict(_) => 409,
            _ => 500,
        }
    }

    /// Machine-readable code, the `error` field of HTTP answers (docs/contracts.md).
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::UnknownCaller(_) => "unknown_caller",
            ServiceError::UnknownFlow(_) => "unknown_flow",
            ServiceError::BadRequest(_) => "bad_request",
            ServiceError::Rule(rule) => rule.code(),
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Transition(_) | ServiceError::Conflict(_) => "conflict",
            _ => "internal",
        }
    }

    /// Whether this is an answer to the caller (nothing to retry) rather than a fault.
    pub fn is_refusal(&self) -> bool {
        self.status() < 500
    }
}
