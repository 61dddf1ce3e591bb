//! API Gateway (HTTP API, payload format 2.0): the routes of docs/contracts.md, SigV4 caller
//! verification on every route but the Slack one, the event a function receives, and the
//! function's answer turned back into an HTTP response.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use crate::dispatch::Dispatcher;
use crate::functions;
use crate::identity::{Caller, MOTO_ACCOUNT_ID};
use crate::sigv4::{self, Expect, IncomingRequest, SecretLookup};

/// API Gateway's own limit on a request payload.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One route of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// With `{name}` for a path parameter, as in the route key.
    pub path: &'static str,
    pub function: &'static str,
    /// Whether the AWS_IAM authorizer guards it.
    pub iam_auth: bool,
}

impl Route {
    const fn iam(method: &'static str, path: &'static str, function: &'static str) -> Self {
        Route {
            method,
            path,
            function,
            iam_auth: true,
        }
    }

    /// `"POST /requests/{id}/approve"`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters when `method` and the (still encoded) `raw_path` match this route.
    pub fn matches(&self, method: &str, raw_path: &str) -> Option<BTreeMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut pattern = self.path.split('/');
        let mut actual = raw_path.split('/');
        let mut params = BTreeMap::new();
        loop {
            match (pattern.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(p), Some(a)) => {
                    if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                        if a.is_empty() {
                            return None;
                        }
                        let value = percent_decode_str(a).decode_utf8().ok()?;
                        params.insert(name.to_owned(), value.into_owned());
                    } else if p != a {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// The routes of docs/contracts.md and the function serving each.
pub const ROUTES: &[Route] = &[
    Route::iam("POST", "/requests", functions::REQUEST),
    Route::iam("GET", "/requests", functions::REQUEST),
    Route::iam("GET", "/requests/{id}", functions::REQUEST),
    Route::iam("POST", "/requests/{id}/cancel", functions::REQUEST),
    Route::iam("POST", "/requests/{id}/extend", functions::REQUEST),
    Route::iam("GET", "/audit", functions::REQUEST),
    Route::iam("POST", "/requests/{id}/approve", functions::APPROVE),
    Route::iam("POST", "/requests/{id}/deny", functions::APPROVE),
    Route::iam(
        "POST",
        "/requests/{id}/extension/approve",
        functions::APPROVE,
    ),
    Route::iam("POST", "/requests/{id}/extension/deny", functions::APPROVE),
    Route::iam("POST", "/requests/{id}/review", functions::APPROVE),
    Route::iam("POST", "/requests/{id}/revoke", functions::REVOKE),
    Route::iam("GET", "/reconcile", functions::REVOKE),
    // Public: the approve function checks Slack's signature itself.
    Route {
        method: "POST",
        path: "/slack/interactions",
        function: functions::APPROVE,
        iam_auth: false,
    },
    // Public: the `/elevate` slash command; the approve function checks Slack's signature.
    Route {
        method: "POST",
        path: "/slack/commands",
        function: functions::APPROVE,
        iam_auth: false,
    },
];

/// The first route matching, with its path parameters.
pub fn match_route<'r>(
    routes: &'r [Route],
    method: &str,
    raw_path: &str,
) -> Option<(&'r Route, BTreeMap<String, String>)> {
    routes.iter().find_map(|route| {
        route
            .matches(method, raw_path)
            .map(|params| (route, params))
    })
}

/// An HTTP request as the gateway received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Path and query as on the wire (still percent-encoded).
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: Option<IpAddr>,
}

/// What API Gateway adds to a request: its id, its time and the verified caller.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub request_id: &'a str,
    pub time: DateTime<Utc>,
    pub caller: Option<&'a Caller>,
}

/// The payload 2.0 event of `request` on `route`, as API Gateway would hand it to the function.
pub fn request_event(
    request: &HttpRequest<'_>,
    route: &Route,
    path_parameters: &BTreeMap<String, String>,
    context: &EventContext<'_>,
) -> Value {
    let mut headers: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in request.headers {
        let Ok(value) = value.to_str() else {
            continue;
        };
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
        } else {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(value);
        }
    }
    let headers: Map<String, Value> = headers
        .into_iter()
        .map(|(name, values)| (name, Value::String(values.join(","))))
        .collect();

    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(request.raw_query.as_bytes()) {
        query
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }

    let host = header(request.headers, "host").unwrap_or("localhost");
    let domain_name = host.split(':').next().unwrap_or(host);
    let route_key = route.route_key();

    let mut http = Map::new();
    http.insert("method".into(), json!(request.method.to_ascii_uppercase()));
    http.insert("path".into(), json!(request.raw_path));
    http.insert("protocol".into(), json!(request.protocol));
    http.insert(
        "sourceIp".into(),
        json!(request
            .source_ip
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string())),
    );
    http.insert(
        "userAgent".into(),
        json!(header(request.headers, "user-agent").unwrap_or_default()),
    );

    let mut request_context = Map::new();
    request_context.insert("accountId".into(), json!(MOTO_ACCOUNT_ID));
    request_context.insert("apiId".into(), json!("local"));
    if let Some(caller) = context.caller {
        request_context.insert("authorizer".into(), json!({"iam": caller.iam_context()}));
    }
    request_context.insert("domainName".into(), json!(domain_name));
    request_context.insert(
        "domainPrefix".into(),
        json!(domain_name.split('.').next().unwrap_or(domain_name)),
    );
    request_context.insert("http".into(), Value::Object(http));
    request_context.insert("requestId".into(), json!(context.request_id));
    request_context.insert("routeKey".into(), json!(route_key));
    request_context.insert("stage".into(), json!("$default"));
    request_context.insert(
        "time".into(),
        json!(context.time.format("%d/%b/%Y:%H:%M:%S %z").to_string()),
    );
    request_context.insert("timeEpoch".into(), json!(context.time.timestamp_millis()));

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(route_key));
    event.insert("rawPath".into(), json!(request.raw_path));
    event.insert("rawQueryString".into(), json!(request.raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), Value::Object(headers));
    if !query.is_empty() {
        let query: Map<String, Value> = query
            .into_iter()
            .map(|(name, values)| (name, Value::String(values.join(","))))
            .collect();
        event.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(path_parameters));
    }
    event.insert("requestContext".into(), Value::Object(request_context));
    let base64 = !request.body.is_empty() && !is_text(header(request.headers, "content-type"));
    if !request.body.is_empty() {
        let body = if base64 {
            BASE64.encode(request.body)
        } else {
            String::from_utf8_lossy(request.body).into_owned()
        };
        event.insert("body".into(), json!(body));
    }
    event.insert("isBase64Encoded".into(), json!(base64));
    Value::Object(event)
}

/// API Gateway passes text bodies as they are and base64-encodes the rest, form bodies included
/// (so Slack's `payload=...` arrives encoded, as in AWS).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime == "application/json"
        || mime.ends_with("+json")
        || mime == "application/xml"
        || mime.ends_with("+xml")
        || mime == "application/javascript"
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    #[error("statusCode {0} is not an HTTP status")]
    Status(Value),
    #[error("header {0}: {1}")]
    Header(String, String),
    #[error("body is not valid base64")]
    Base64,
}

/// The HTTP response of a function's answer, by payload 2.0's rules: an object with a
/// `statusCode` is a response (`headers`, `cookies`, `body`, `isBase64Encoded`); anything else
/// is the JSON body of a 200.
pub fn http_response(answer: &Value) -> Result<Response, ResponseError> {
    let Some(status) = answer.get("statusCode") else {
        let mut response = Response::new(Body::from(answer.to_string()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ResponseError::Status(status.clone()))?;

    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str, append: bool| -> Result<(), ResponseError> {
        let bad = |e: &dyn std::fmt::Display| ResponseError::Header(name.to_owned(), e.to_string());
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        if append {
            headers.append(name, value);
        } else {
            headers.insert(name, value);
        }
        Ok(())
    };
    if let Some(map) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            put(name, &scalar(value), false)?;
        }
    }
    if let Some(map) = answer.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            if answer
                .get("headers")
                .and_then(|h| h.get(name.as_str()))
                .is_some()
            {
                continue;
            }
            for value in values.as_array().into_iter().flatten() {
                put(name, &scalar(value), true)?;
            }
        }
    }
    for cookie in answer
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        put("set-cookie", &scalar(cookie), true)?;
    }

    let body = match answer.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(body) => {
            let text = scalar(body);
            if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                BASE64.decode(text).map_err(|_| ResponseError::Base64)?
            } else {
                text.into_bytes()
            }
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// API Gateway's own answers, which never reach a function.
fn gateway_answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Who may call: looks up the secret of an access key and the caller it belongs to.
pub type Callers = dyn SecretLookup<Principal = Caller> + Send + Sync;

/// The local API Gateway.
#[derive(Clone)]
pub struct Gateway {
    pub callers: Arc<Callers>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub routes: &'static [Route],
    /// The region the callers sign for (service `execute-api`).
    pub region: String,
}

impl Gateway {
    pub fn new(callers: Arc<Callers>, dispatcher: Arc<dyn Dispatcher>) -> Self {
        Gateway {
            callers,
            dispatcher,
            routes: ROUTES,
            region: "us-east-1".to_owned(),
        }
    }

    /// Every path goes through the gateway. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` to fill in `sourceIp`.
    pub fn router(self) -> Router {
        Router::new().fallback(handle).with_state(self)
    }

    /// Answers one request as API Gateway would.
    pub async fn handle(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                return gateway_answer(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
            }
        };
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let protocol = format!("{:?}", parts.version);
        let http_request = HttpRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or_default(),
            protocol: &protocol,
            headers: &parts.headers,
            body: &body,
            source_ip,
        };
        let request_id = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();

        let Some((route, path_parameters)) =
            match_route(self.routes, http_request.method, http_request.raw_path)
        else {
            tracing::info!(
                method = http_request.method,
                path = http_request.raw_path,
                "no route"
            );
            return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
        };

        let caller = if route.iam_auth {
            let signed = IncomingRequest {
                method: http_request.method,
                path: http_request.raw_path,
                query: http_request.raw_query,
                headers: http_request.headers,
                body: http_request.body,
            };
            match sigv4::verify(
                &signed,
                self.callers.as_ref(),
                &Expect::execute_api(&self.region),
                now,
            ) {
                Ok(verified) => Some(verified.principal),
                Err(error) => {
                    tracing::info!(route = %route.route_key(), %error, "refused the caller");
                    return gateway_answer(StatusCode::FORBIDDEN, "Forbidden");
                }
            }
        } else {
            None
        };

        let event = request_event(
            &http_request,
            route,
            &path_parameters,
            &EventContext {
                request_id: &request_id,
                time: now,
                caller: caller.as_ref(),
            },
        );
        let span = tracing::info_span!(
            "api",
            %request_id,
            route = %route.route_key(),
            function = route.function,
            principal = caller.as_ref().map(|c| c.person.as_str()),
        );
        let _entered = span.enter();
        match self.dispatcher.invoke(route.function, event).await {
            Ok(answer) => http_response(&answer).unwrap_or_else(|error| {
                tracing::error!(%error, "the function's answer is not a valid response");
                gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }),
            Err(error) => {
                tracing::error!(%error, "the function failed");
                gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

async fn handle(State(gateway): State<Gateway>, request: Request) -> Response {
    gateway.handle(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_every_route_of_the_contract() {
        let cases = [
            (
                "POST",
                "/requests",
                functions::REQUEST,
                "POST /requests",
                None,
            ),
            (
                "GET",
                "/requests",
                functions::REQUEST,
                "GET /requests",
                None,
            ),
            (
                "GET",
                "/requests/r1",
                functions::REQUEST,
                "GET /requests/{id}",
                Some("r1"),
            ),
            (
                "POST",
                "/requests/r1/cancel",
                functions::REQUEST,
                "POST /requests/{id}/cancel",
                Some("r1"),
            ),
            ("GET", "/audit", functions::REQUEST, "GET /audit", None),
            (
                "POST",
                "/requests/r1/approve",
                functions::APPROVE,
                "POST /requests/{id}/approve",
                Some("r1"),
            ),
            (
                "POST",
                "/requests/r1/deny",
                functions::APPROVE,
                "POST /requests/{id}/deny",
                Some("r1"),
            ),
            (
                "POST",
                "/requests/r1/revoke",
                functions::REVOKE,
                "POST /requests/{id}/revoke",
                Some("r1"),
            ),
            (
                "POST",
                "/slack/interactions",
                functions::APPROVE,
                "POST /slack/interactions",
                None,
            ),
            (
                "POST",
                "/slack/commands",
                functions::APPROVE,
                "POST /slack/commands",
                None,
            ),
        ];
        for (method, path, function, key, id) in cases {
            let (route, params) = match_route(ROUTES, method, path).expect(path);
            assert_eq!(route.function, function, "{path}");
            assert_eq!(route.route_key(), key);
            assert_eq!(params.get("id").map(String::as_str), id, "{path}");
            assert_eq!(route.iam_auth, !path.starts_with("/slack/"));
        }
    }

    #[test]
    fn refuses_what_the_contract_does_not_list() {
        for (method, path) in [
            ("DELETE", "/requests"),
            ("GET", "/requests/r1/approve"),
            ("POST", "/requests/"),
            ("POST", "/requests//approve"),
            ("GET", "/"),
            ("POST", "/requests/r1/approve/x"),
            ("GET", "/slack/interactions"),
            ("GET", "/slack/commands"),
        ] {
            assert!(
                match_route(ROUTES, method, path).is_none(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn decodes_path_parameters() {
        let (_, params) = match_route(ROUTES, "GET", "/requests/a%20b").expect("route");
        assert_eq!(params["id"], "a b");
    }

    #[test]
    fn a_response_object_becomes_the_http_response() {
        let response = http_response(&json!({
            "statusCode": 409,
            "headers": {"content-type": "application/json", "x-one": "1"},
            "multiValueHeaders": {"x-two": ["a", "b"], "x-one": ["ignored"]},
            "cookies": ["a=1"],
            "body": "{\"error\":\"conflict\"}",
            "isBase64Encoded": false
        }))
        .expect("valid");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let headers = response.headers();
        assert_eq!(headers["x-one"], "1");
        assert_eq!(headers.get_all("x-two").iter().count(), 2);
        assert_eq!(headers["set-cookie"], "a=1");
    }

    #[test]
    fn rejects_a_bad_status() {
        assert!(matches!(
            http_response(&json!({"statusCode": "two hundred"})),
            Err(ResponseError::Status(_))
        ));
        assert!(matches!(
            http_response(&json!({"statusCode": 99})),
            Err(ResponseError::Status(_))
        ));
    }

    #[test]
    fn text_types_are_not_base64() {
        assert!(is_text(Some("application/json; charset=utf-8")));
        assert!(is_text(Some("text/plain")));
        assert!(is_text(Some("application/vnd.api+json")));
        assert!(!is_text(Some("application/x-www-form-urlencoded")));
        assert!(!is_text(Some("application/octet-stream")));
        assert!(!is_text(None));
    }
}
