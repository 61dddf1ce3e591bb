use crate::identity::IdentityError;
use crate::machine::TransitionError;
use crate::model::RequestId;
use crate::names::FlowName;
use crate::ports::{
    DirectoryError, InvokeError, NotifyError, SchedulerError, StoreError, StrategyError,
};
use crate::rules::RuleError;

/// Why a use case did not happen. The first group are answers to the caller (nothing
/// changed); the second are faults of the outside world (the platform retries). See
/// [`ServiceError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's principal is refused by `[identity]`, or is nobody of elevate.toml.
    #[error("not accepted as a person of elevate.toml: {0}")]
    UnknownCaller(#[from] IdentityError),
    #[error("unknown flow `{0}`")]
    UnknownFlow(FlowName),
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
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("access check failed: {0}")]
    Unverified(String),
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ServiceError::Conflict(what),
            StoreError::NotFound(id) => ServiceError::NotFound(id),
            StoreError::BadCursor(why) => ServiceError::BadRequest(why),
            other => ServiceError::Store(other),
        }
    }
}

/// What kind of answer an error is. The HTTP edge maps it to a status; the functions that
/// the platform retries retry only a [`ErrorKind::Fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong: unknown flow or target, bad duration, missing reason.
    Invalid,
    /// The caller may not do this: unknown caller, not a requester or approver, their own
    /// request.
    Forbidden,
    NotFound,
    /// The request is not (any more) in a state that allows it.
    Conflict,
    /// The outside world failed; nothing the caller did.
    Fault,
}

impl ServiceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::UnknownFlow(_) | ServiceError::BadRequest(_) => ErrorKind::Invalid,
            ServiceError::Rule(rule) => match rule {
                RuleError::NotARequester { .. }
                | RuleError::NotAnApprover { .. }
                | RuleError::SelfApproval { .. }
                | RuleError::UnknownGroup { .. } => ErrorKind::Forbidden,
                _ => ErrorKind::Invalid,
            },
            ServiceError::UnknownCaller(_) | ServiceError::Forbidden(_) => ErrorKind::Forbidden,
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Transition(_) | ServiceError::Conflict(_) => ErrorKind::Conflict,
            // Two directory users for one person: someone has to fix the directory.
            ServiceError::Directory(DirectoryError::Ambiguous(_)) => ErrorKind::Conflict,
            ServiceError::Orphaned(_)
            | ServiceError::Store(_)
            | ServiceError::Strategy(_)
            | ServiceError::Scheduler(_)
            | ServiceError::Notify(_)
            | ServiceError::Invoke(_)
            | ServiceError::Directory(_)
            | ServiceError::Unverified(_) => ErrorKind::Fault,
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
            ServiceError::Directory(DirectoryError::Ambiguous(_)) => "ambiguous_directory_user",
            _ => "internal",
        }
    }

    /// Whether this is an answer to the caller (nothing to retry) rather than a fault.
    pub fn is_refusal(&self) -> bool {
        self.kind() != ErrorKind::Fault
    }
}
