//! How a failed AWS call becomes the source of a port error.

use std::error::Error;

use aws_smithy_types::error::display::DisplayErrorContext;
use elevate_core::ports::BoxError;

/// A failed AWS call: which operation on what, the full error chain in its message (the SDK's
/// own `Display` says only "service error"), and the SDK error kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsError {
    operation: String,
    detail: String,
    #[source]
    source: BoxError,
}

impl AwsError {
    pub fn new<E>(operation: impl Into<String>, source: E) -> Self
    where
        E: Error + Send + Sync + 'static,
    {
        AwsError {
            operation: operation.into(),
            detail: DisplayErrorContext(&source).to_string(),
            source: Box::new(source),
        }
    }

    /// The same, boxed for a port error's `Unavailable` variant.
    pub fn boxed<E>(operation: impl Into<String>, source: E) -> BoxError
    where
        E: Error + Send + Sync + 'static,
    {
        Box::new(AwsError::new(operation, source))
    }

    /// What was being done, e.g. `dynamodb TransactWriteItems on table elevate`.
    pub fn operation(&self) -> &str {
        &self.operation
    }
}
