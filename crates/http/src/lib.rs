//! The edge of elevate's HTTP API (API Gateway HTTP API, payload 2.0), shared by the functions
//! that answer it (request, approve, revoke): who the caller is, path and body parsing into
//! typed values, and answers of docs/contracts.md (`{"error","message"}` with the [`status`]
//! of the error's [`ErrorKind`]; a 500 says nothing and logs the detail).

#[cfg(feature = "testing")]
pub mod testing;

use elevate_core::service::{App, Caller, ErrorKind, ServiceError};
use elevate_core::RequestId;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An answer that is not a success: a refusal (4xx) with a code and a message for the caller,
/// or a fault (500) whose detail only goes to the log.
#[derive(Debug)]
pub enum ApiError {
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
    Fault(String),
}

impl ApiError {
    /// 400 `bad_request`: the request could not be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Refused {
            status: 400,
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::Refused {
            status: 404,
            code: "not_found",
            message: message.into(),
        }
    }

    /// The HTTP answer. A fault is logged here, with its detail, and answered generically.
    pub fn into_response(self) -> Response<Body> {
        match self {
            ApiError::Refused {
                status,
                code,
                message,
            } => {
                tracing::info!(status, code, %message, "request refused");
                error_response(status, code, &message)
            }
            ApiError::Fault(detail) => {
                tracing::error!(error = %detail, "request failed");
                error_response(500, "internal", "internal error")
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        if err.is_refusal() {
            ApiError::Refused {
                status: status(err.kind()),
                code: err.code(),
                message: err.to_string(),
            }
        } else {
            ApiError::Fault(error_chain(&err))
        }
    }
}

/// The HTTP status of an answer of `kind`.
pub fn status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Invalid => 400,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::Fault => 500,
    }
}

/// An error and all its sources, for the log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A JSON answer.
pub fn json_response(status: u16, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(text) => response(status, text),
        Err(err) => ApiError::Fault(format!("cannot serialize the answer: {err}")).into_response(),
    }
}

/// `{"error": code, "message": message}` with `status`.
pub fn error_response(status: u16, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message });
    response(status, body.to_string())
}

fn response(status: u16, body: String) -> Response<Body> {
    let mut answer = Response::new(Body::Text(body));
    *answer.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer.headers_mut().insert(
        CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// The IAM principal API Gateway's IAM authorizer verified (`requestContext.authorizer.iam.userArn`).
pub fn principal_arn(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context
            .authorizer
            .as_ref()?
            .iam
            .as_ref()?
            .user_arn
            .clone()
            .filter(|arn| !arn.is_empty()),
        _ => None,
    }
}

/// The account the API runs in (`requestContext.accountId`): the only account whose
/// principals may call when elevate.toml's `[identity] accounts` is not set.
pub fn api_account(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context
            .account_id
            .clone()
            .filter(|account| !account.is_empty()),
        _ => None,
    }
}

/// The person of elevate.toml who signed the request, with their principal; 403
/// `unknown_caller` naming the `[identity]` rule that refused the principal otherwise.
pub fn caller<'a>(app: &'a App, request: &Request) -> Result<Caller<'a>, ApiError> {
    let arn = principal_arn(request);
    match app
        .config
        .caller(arn.as_deref(), api_account(request).as_deref())
    {
        Ok(person) => {
            tracing::Span::current().record("caller", person.name.as_str());
            Ok(Caller::new(person, arn.unwrap_or_default()))
        }
        Err(refused) => {
            tracing::warn!(
                principal = arn.as_deref().unwrap_or("<none>"),
                rule = %refused,
                "caller refused"
            );
            Err(ServiceError::from(refused).into())
        }
    }
}

/// The route a request is for: its method and the segments of its path.
pub struct Route<'a> {
    pub method: &'a Method,
    pub segments: Vec<&'a str>,
}

/// The method and path segments of `request` (`/requests/{id}/cancel` → `["requests", id,
/// "cancel"]`). The raw path API Gateway received is used, so a stage name never shows.
pub fn route(request: &Request) -> Route<'_> {
    let path = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    Route {
        method: request.method(),
        segments: path.split('/').filter(|s| !s.is_empty()).collect(),
    }
}

/// A request id from the path; 400 when it is not one.
pub fn request_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse()
        .map_err(|err: elevate_core::model::InvalidRequestId| {
            ApiError::bad_request(err.to_string())
        })
}

/// 404 for a route this function does not answer.
pub fn no_route(request: &Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// The JSON body as `T`. An empty body reads as `{}`, so bodies whose fields are all optional
/// may be left out. Malformed JSON, unknown fields and wrong types are 400 `bad_request`.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    // serde reads a struct from an array too (`["infra_access", null, "1h"]`, `[]`): only an
    // object is a body.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "invalid request body: expected a JSON object",
        ));
    }
    serde_json::from_str(text)
        .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
}

/// The value of one query parameter.
pub fn query(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

/// Turns a handler's result into the answer.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// `{"reason"?}`, the body of approve, deny and revoke.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: Option<String>,
}

impl ReasonBody {
    /// The reason, `None` when absent or blank.
    pub fn reason(self) -> Option<String> {
        self.reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
    }
}

/// The HTTP answer as API Gateway (payload 2.0) expects it from a function invoked with the
/// raw event (the revoke function, which also takes schedules and destination records).
pub fn http_response(response: Response<Body>) -> serde_json::Value {
    let (parts, body) = response.into_parts();
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.headers = parts.headers;
    answer.is_base64_encoded = matches!(body, Body::Binary(_));
    answer.body = match body {
        Body::Empty => None,
        other => Some(other),
    };
    serde_json::to_value(&answer).unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot serialize the HTTP answer");
        serde_json::json!({ "statusCode": 500, "body": "{\"error\":\"internal\",\"message\":\"internal error\"}" })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<ReasonBody, ApiError> {
        json_body::<ReasonBody>(&Request::new(Body::from(body)))
    }

    #[test]
    fn a_body_is_a_json_object_or_nothing() {
        assert_eq!(read("").expect("empty").reason(), None);
        assert_eq!(
            read(r#" {"reason": "ok"}"#)
                .expect("object")
                .reason()
                .as_deref(),
            Some("ok")
        );
        for body in ["[]", r#"["ok"]"#, "null", "\"ok\"", "1"] {
            match read(body) {
                Err(ApiError::Refused { status, code, .. }) => {
                    assert_eq!((status, code), (400, "bad_request"), "{body}")
                }
                other => panic!("{body} was read: {other:?}"),
            }
        }
    }
}
