//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), answering like
//! Lambda does, so that `aws-sdk-lambda` clients (approve → escalate, custom targets) work
//! unchanged against the local gateway.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::dispatch::{function_name, DispatchError, Dispatcher};

/// The path the SDK posts to; `{name}` is a name or an (URL-encoded) ARN.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/{name}/invocations";

/// A router serving the Invoke API through `dispatcher`.
pub fn router(dispatcher: Arc<dyn Dispatcher>) -> Router {
    Router::new()
        .route(INVOKE_PATH, post(invoke))
        .with_state(dispatcher)
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
    State(dispatcher): State<Arc<dyn Dispatcher>>,
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
            tokio::spawn(async move {
                match dispatcher.invoke(&function, payload).await {
                    Ok(_) => tracing::debug!(%function, "async invocation done"),
                    Err(error) => tracing::error!(%function, %error, "async invocation failed"),
                }
            });
            with_version(StatusCode::ACCEPTED.into_response())
        }
        InvocationType::RequestResponse => match dispatcher.invoke(&function, payload).await {
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
        },
    }
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
