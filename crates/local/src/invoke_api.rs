//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), answering like
//! Lambda does, so that `aws-sdk-lambda` clients (approve → escalate, custom targets) work
//! unchanged against the local gateway.
//!
//! An asynchronous (`Event`) invocation that fails is retried like Lambda retries it (twice by
//! default, after a delay), and when the retries are exhausted its on-failure destination gets
//! Lambda's destination record (template.yaml: escalate's failures go to revoke).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use elevate_core::events::{FailedInvocation, FunctionError, InvocationContext, ResponseContext};
use serde_json::{json, Value};

use crate::dispatch::{function_name, DispatchError, Dispatcher};

/// The path the SDK posts to; `{name}` is a name or an (URL-encoded) ARN.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/{name}/invocations";

/// What happens to a failed asynchronous invocation, and how long functions take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokePolicy {
    /// Lambda's `MaximumRetryAttempts` (0 to 2, default 2).
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one (Lambda waits about a
    /// minute, then two; a local stack need not).
    pub first_delay: Duration,
    /// Function name → the function receiving its failure record (`OnFailure` destination).
    pub on_failure: HashMap<String, String>,
    /// Function name → how long it takes before it starts (a slow function, as a cold start or
    /// a slow dependency makes one: what a caller's time-out is tested against).
    pub latency: HashMap<String, Duration>,
}

impl Default for InvokePolicy {
    /// Lambda's two retries, without a destination.
    fn default() -> Self {
        InvokePolicy {
            retries: 2,
            first_delay: Duration::from_secs(1),
            on_failure: HashMap::new(),
            latency: HashMap::new(),
        }
    }
}

#[derive(Clone)]
struct Invoke {
    dispatcher: Arc<dyn Dispatcher>,
    policy: Arc<InvokePolicy>,
}

/// A router serving the Invoke API through `dispatcher`, with Lambda's default retries of
/// asynchronous invocations.
pub fn router(dispatcher: Arc<dyn Dispatcher>) -> Router {
    router_with(dispatcher, InvokePolicy::default())
}

/// A router serving the Invoke API through `dispatcher`, asynchronous failures handled by
/// `policy`.
pub fn router_with(dispatcher: Arc<dyn Dispatcher>, policy: InvokePolicy) -> Router {
    Router::new()
        .route(INVOKE_PATH, post(invoke))
        .with_state(Invoke {
            dispatcher,
            policy: Arc::new(policy),
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        match headers
            .get("x-amz-invocation-type")
            .map(|v| v.to_str().unwrap_or_default())
        {
            None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
            Some("Event") => Ok(InvocationType::Event),
            Some("DryRun") => Ok(InvocationType::DryRun),
            Some(other) => Err(format!("unknown X-Amz-Invocation-Type {other:?}")),
        }
    }
}

async fn invoke(
    State(Invoke { dispatcher, policy }): State<Invoke>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let function = function_name(&name).to_owned();
    let invocation_type = match InvocationType::from_headers(&headers) {
        Ok(t) => t,
        Err(message) => {
            return service_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &message,
            )
        }
    };
    let payload: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return service_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("Could not parse request body into json: {e}"),
                )
            }
        }
    };

    match invocation_type {
        InvocationType::DryRun => StatusCode::NO_CONTENT.into_response(),
        InvocationType::Event => {
            tokio::spawn(invoke_async(dispatcher, policy, function, payload));
            with_version(StatusCode::ACCEPTED.into_response())
        }
        InvocationType::RequestResponse => {
            if let Some(latency) = policy.latency.get(&function) {
                tokio::time::sleep(*latency).await;
            }
            answer(
                dispatcher.invoke(&function, payload).await,
                &function,
                &name,
            )
        }
    }
}

/// A synchronous invocation's answer, as Lambda shapes it.
fn answer(result: Result<Value, DispatchError>, function: &str, name: &str) -> Response {
    match result {
        Ok(answer) => with_version((StatusCode::OK, json_body(&answer)).into_response()),
        Err(DispatchError::UnknownFunction(_)) => service_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        ),
        Err(DispatchError::Failed {
            error_type,
            message,
        }) => {
            tracing::warn!(%function, %error_type, %message, "function error");
            let body = json!({"errorMessage": message, "errorType": error_type});
            let mut response = (StatusCode::OK, json_body(&body)).into_response();
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            with_version(response)
        }
    }
}

/// One asynchronous invocation: the first attempt, the retries, then the destination.
async fn invoke_async(
    dispatcher: Arc<dyn Dispatcher>,
    policy: Arc<InvokePolicy>,
    function: String,
    payload: Value,
) {
    let mut delay = policy.first_delay;
    let mut attempts = 0;
    let failure = loop {
        attempts += 1;
        match dispatcher.invoke(&function, payload.clone()).await {
            Ok(_) => {
                tracing::debug!(%function, attempts, "async invocation done");
                return;
            }
            Err(error @ DispatchError::UnknownFunction(_)) => {
                tracing::error!(%function, %error, "async invocation of an unknown function");
                return;
            }
            Err(DispatchError::Failed {
                error_type,
                message,
            }) => {
                if attempts > policy.retries {
                    break (error_type, message);
                }
                tracing::warn!(%function, attempts, %error_type, %message, retry_in = ?delay, "async invocation failed; Lambda retries it");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
    };
    let (error_type, message) = failure;
    let Some(destination) = policy.on_failure.get(&function) else {
        tracing::error!(%function, attempts, %error_type, %message, "async invocation failed; retries exhausted");
        return;
    };
    tracing::error!(%function, attempts, %error_type, %message, %destination, "async invocation failed; retries exhausted, sending the record to its destination");
    let record = failure_record(&function, attempts, payload, &error_type, &message);
    if let Err(error) = dispatcher.invoke(destination, record).await {
        tracing::error!(%function, %destination, %error, "the on-failure destination failed");
    }
}

/// The record Lambda sends to an `OnFailure` destination once retries are exhausted.
pub fn failure_record(
    function: &str,
    attempts: u32,
    request_payload: Value,
    error_type: &str,
    message: &str,
) -> Value {
    let record = FailedInvocation {
        version: "1.0".to_owned(),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        request_context: InvocationContext {
            request_id: uuid::Uuid::now_v7().to_string(),
            function_arn: format!("{}:$LATEST", crate::functions::function_arn(function)),
            condition: "RetriesExhausted".to_owned(),
            approximate_invoke_count: Some(attempts.into()),
        },
        request_payload,
        response_context: Some(ResponseContext {
            status_code: 200,
            executed_version: "$LATEST".to_owned(),
            function_error: Some("Unhandled".to_owned()),
        }),
        response_payload: Some(FunctionError {
            error_type: error_type.to_owned(),
            error_message: message.to_owned(),
        }),
    };
    serde_json::to_value(record).unwrap_or(Value::Null)
}

fn json_body(value: &Value) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "application/json")], value.to_string())
}

fn with_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    response
}

/// A Lambda service error, shaped so the SDK maps it to its typed error.
fn service_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = json!({"Type": "User", "message": message});
    let mut response = (status, json_body(&body)).into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}
