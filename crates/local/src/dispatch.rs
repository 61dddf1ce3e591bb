//! The one way the gateway runs a function: the API routes, the Invoke API and the scheduler
//! pump all hand a JSON payload to a [`Dispatcher`], which runs the handler in process.

use async_trait::async_trait;
use serde_json::Value;

/// Runs a function by name with a JSON payload, like one synchronous Lambda invocation.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// `function` is the bare name (see [`function_name`]); the answer is the function's JSON.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, DispatchError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("function not found: {0}")]
    UnknownFunction(String),
    /// The handler returned an error: what Lambda reports as an `Unhandled` function error.
    #[error("{error_type}: {message}")]
    Failed { error_type: String, message: String },
}

impl DispatchError {
    pub fn failed(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        DispatchError::Failed {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// The function name in a name, a partial ARN (`123456789012:function:name`) or a full ARN,
/// without a version or alias qualifier.
pub fn function_name(name_or_arn: &str) -> &str {
    let rest = match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest,
        None => name_or_arn,
    };
    rest.split(':').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_a_function_from_any_form() {
        for given in [
            "elevate-revoke",
            "elevate-revoke:$LATEST",
            "123456789012:function:elevate-revoke",
            "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke",
            "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke:live",
        ] {
            assert_eq!(function_name(given), "elevate-revoke", "{given}");
        }
    }
}
