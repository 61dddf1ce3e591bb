//! The functions of template.yaml, run in process behind the [`Dispatcher`]: each gets the
//! event Lambda would give it and answers what Lambda would hand back.
//!
//! The request function receives API Gateway payload 2.0 events, turned into an
//! `http::Request` by lambda_http's own `LambdaRequest` conversion (so it sees the same
//! request, request context included, as under `lambda_http::run`), and answers payload 2.0
//! responses. approve, escalate, revoke, the example target and the example hook get the JSON event as it is
//! (approve and revoke turn API events into requests the same way); an `Err` becomes the
//! function error Lambda reports (`errorType`, `errorMessage`). The archive function gets the
//! table's stream batches from [`crate::streams`] and its anchor task from the anchor schedule.

use std::sync::Arc;

use async_trait::async_trait;
use elevate_core::service::App;
use lambda_http::request::LambdaRequest;
use lambda_runtime::Diagnostic;
use serde_json::Value;

use crate::dispatch::{DispatchError, Dispatcher};

pub const REQUEST: &str = "elevate-request";
pub const APPROVE: &str = "elevate-approve";
pub const ESCALATE: &str = "elevate-escalate";
pub const REVOKE: &str = "elevate-revoke";
pub const EXAMPLE_TARGET: &str = "elevate-example-target";
pub const EXAMPLE_HOOK: &str = "elevate-example-hook";
pub const ARCHIVE: &str = "elevate-archive";

/// Every function the local stack runs, by the name it has in template.yaml.
pub const NAMES: [&str; 7] = [
    REQUEST,
    APPROVE,
    ESCALATE,
    REVOKE,
    EXAMPLE_TARGET,
    EXAMPLE_HOOK,
    ARCHIVE,
];

/// The ARN a function has in the local account (what schedules and flow targets name).
pub fn function_arn(name: &str) -> String {
    format!(
        "arn:aws:lambda:us-east-1:{}:function:{name}",
        crate::identity::MOTO_ACCOUNT_ID
    )
}

/// The example custom target's state: its IAM client and the group it grants.
pub struct ExampleTarget {
    pub iam: aws_sdk_iam::Client,
    pub group: String,
}

/// The functions' state, built once like at a cold start.
pub struct Functions {
    pub request: App,
    pub approve: App,
    /// What approve needs of Slack: the signing secret, the Web API that opens forms.
    pub slack: elevate_approve::Slack,
    pub escalate: App,
    pub revoke: App,
    pub example_target: ExampleTarget,
    /// The example request hook, with the on-call file built into it.
    pub example_hook: elevate_example_hook::OnCall,
    pub archive: elevate_archive::Archiver,
}

/// The [`Dispatcher`] running [`Functions`] in process.
#[derive(Clone)]
pub struct InProcess {
    functions: Arc<Functions>,
}

impl InProcess {
    pub fn new(functions: Functions) -> Self {
        InProcess {
            functions: Arc::new(functions),
        }
    }

    pub fn functions(&self) -> &Functions {
        &self.functions
    }
}

#[async_trait]
impl Dispatcher for InProcess {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, DispatchError> {
        let f = &*self.functions;
        match function {
            REQUEST => {
                let request = http_request(payload)?;
                Ok(http_answer(
                    elevate_request::handle(&f.request, request).await,
                ))
            }
            // An HTTP event, or a follow-up approve handed itself.
            APPROVE => elevate_approve::handle_event(&f.approve, &f.slack, payload)
                .await
                .map_err(|error| function_error(error.into())),
            ESCALATE => match elevate_escalate::handle(&f.escalate, payload).await {
                Ok(escalated) => serde_json::to_value(escalated).map_err(|e| {
                    DispatchError::failed("Runtime.SerializationError", e.to_string())
                }),
                Err(error) => Err(function_error(error.into())),
            },
            REVOKE => elevate_revoke::handle(&f.revoke, payload)
                .await
                .map_err(|error| function_error(error.into())),
            EXAMPLE_TARGET => {
                let target = &f.example_target;
                Ok(elevate_example_target::handle(&target.iam, &target.group, payload).await)
            }
            EXAMPLE_HOOK => Ok(elevate_example_hook::handle(&f.example_hook, &payload)),
            // A stream batch (answered with its batchItemFailures) or the anchor task.
            ARCHIVE => elevate_archive::handle(&f.archive, payload)
                .await
                .map_err(|error| function_error(error.into())),
            other => Err(DispatchError::UnknownFunction(other.to_owned())),
        }
    }
}

/// The request lambda_http would hand an HTTP function for this event.
fn http_request(payload: Value) -> Result<lambda_http::Request, DispatchError> {
    let event: LambdaRequest = serde_json::from_value(payload).map_err(|e| {
        // What lambda_http's runtime reports when the event does not deserialize.
        DispatchError::failed("Runtime.UnmarshalError", e.to_string())
    })?;
    Ok(event.into())
}

/// The payload 2.0 answer of an HTTP function's response, as lambda_http serializes it.
fn http_answer(response: lambda_http::Response<lambda_http::Body>) -> Value {
    elevate_http::http_response(response)
}

fn function_error(diagnostic: Diagnostic) -> DispatchError {
    DispatchError::failed(diagnostic.error_type, diagnostic.error_message)
}
