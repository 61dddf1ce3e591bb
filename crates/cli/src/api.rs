//! The elevate HTTP API as the CLI sees it: SigV4-signed calls (service `execute-api`) with the
//! caller's standard AWS credentials, typed answers, and errors that say what to do next.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{
    error::CredentialsError, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, SecondsFormat, Utc};
pub use elevate_core::ports::AuditWindow;
pub use elevate_core::service::{AuditExport, AuditHead, Decision};
use elevate_core::{AuditEvent, Request, RequestId, State};
use http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

/// The signing name of API Gateway.
pub const SERVICE: &str = "execute-api";

/// Credentials are fetched again when they expire within this margin.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Signing failed before anything was sent.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the request: {0}")]
pub struct SignError(String);

/// Signs `request` in place for `service` in `region` at `time`: adds `x-amz-date`,
/// `x-amz-security-token` (temporary credentials) and `authorization`. The canonical request
/// covers every header already on the request, the host (from the header or the URI) and the
/// SHA-256 of the body.
pub fn sign(
    request: &mut http::Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), SignError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|value| (name.as_str(), value))
                .map_err(|_| SignError(format!("header `{name}` is not visible ASCII")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Why a call to the API did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no AWS credentials found{}", .profile.as_deref().map(|p| format!(" for profile `{p}`")).unwrap_or_default())]
    NoCredentials { profile: Option<String> },
    #[error("could not load AWS credentials: {0}")]
    Credentials(String),
    #[error("no AWS region to sign the request for")]
    NoRegion,
    #[error("cannot reach the elevate API at {url}: {reason}")]
    Unreachable {
        url: String,
        reason: String,
        refused: bool,
        local: bool,
    },
    #[error("the elevate API at {url} did not answer in time")]
    Timeout { url: String },
    /// An expected refusal: 4xx with `{"error", "message"}` (or API Gateway's own `{"message"}`).
    #[error("{message} ({status}{})", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    #[error("the elevate API failed ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from the elevate API ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl ApiError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApiError::NoCredentials { .. } => Some(
                "run `aws sso login` (or `aws configure`), or pick a profile with --profile"
                    .into(),
            ),
            ApiError::Credentials(detail) => {
                if detail.contains("expired") || detail.contains("sso") || detail.contains("SSO") {
                    Some("run `aws sso login` (with --profile if you use one)".into())
                } else {
                    Some("check --profile and your AWS config (`aws sts get-caller-identity` shows who you are)".into())
                }
            }
            ApiError::NoRegion => Some(
                "pass --region, set AWS_REGION, or add `region = \"...\"` to ~/.config/elevate/config.toml"
                    .into(),
            ),
            ApiError::Unreachable { local: true, .. } => Some(
                "check --api-url / ELEVATE_API_URL; for local development, is `make dev` running?"
                    .into(),
            ),
            ApiError::Unreachable { .. } | ApiError::Timeout { .. } => {
                Some("check --api-url / ELEVATE_API_URL and your network".into())
            }
            ApiError::Refused {
                status,
                code,
                request_id,
                ..
            } => refusal_hint(*status, code.as_deref(), request_id.as_deref()),
            ApiError::Server { .. } => {
                Some("the failure is on the server side; its logs have the detail".into())
            }
            ApiError::Unexpected { .. } => {
                Some("is --api-url the elevate API (and the CLI up to date)?".into())
            }
            ApiError::Sign(_) => None,
        }
    }

    /// Worth trying again a moment later (while polling).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Unreachable { .. } | ApiError::Timeout { .. } | ApiError::Server { .. }
        )
    }
}

fn refusal_hint(status: u16, code: Option<&str>, request_id: Option<&str>) -> Option<String> {
    let show = request_id.map_or_else(
        || "`elevate show <id>`".to_owned(),
        |id| format!("`elevate show {id}`"),
    );
    match (status, code) {
        (_, Some("unknown_caller")) => Some(
            "your AWS identity is not accepted as a person of elevate.toml: the message names the rule (check --profile; an assumed role must be one of [identity] trusted_roles)"
                .into(),
        ),
        (_, Some("not_an_approver")) => {
            Some("only the flow's approvers may decide (see `elevate config check`)".into())
        }
        (_, Some("self_approval")) => Some("ask another approver of the flow".into()),
        (_, Some("target_required")) => Some(
            "name one with --target (`elevate config check` lists the flows and their targets)"
                .into(),
        ),
        (_, Some("reason_required")) => Some("say why with --reason \"...\"".into()),
        (_, Some("unknown_flow" | "unknown_target")) => {
            Some("`elevate config check` lists the flows and their targets".into())
        }
        (_, Some("duration_over_cap" | "duration_not_allowed" | "invalid_duration")) => Some(
            "`elevate config check` lists each flow's allowed durations".into(),
        ),
        (409, _) => Some(format!(
            "the request is no longer in a state that allows this; {show} shows where it is"
        )),
        (404, _) => Some("check the id (`elevate list` shows your requests)".into()),
        (401 | 403, None) => Some(
            "API Gateway refused the signature: check --region and that your credentials are valid (`aws sts get-caller-identity`)"
                .into(),
        ),
        _ => None,
    }
}

/// A parsed answer together with the JSON it came from (for `--json`).
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub value: T,
    pub json: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestEnvelope {
    pub request: Request,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestDetail {
    pub request: Request,
    #[serde(default)]
    pub audit: Vec<AuditEvent>,
}

/// One page of `GET /requests`.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestList {
    pub requests: Vec<Request>,
    /// The cursor of the next page; absent on the last.
    #[serde(default)]
    pub next: Option<String>,
}

/// The body of `POST /requests`.
#[derive(Debug, Clone, Serialize)]
pub struct NewRequestBody {
    pub flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Whole seconds.
    pub duration: u64,
    pub reason: String,
    /// Active at once, reviewed afterwards (the flow's `[flows.break_glass]`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// Which requests `GET /requests` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mine,
    ToApprove,
}

/// What a person asks to do with one request: `POST /requests/{id}/<path>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Decide(Decision),
    Cancel,
    Revoke,
}

impl Change {
    fn path(self) -> &'static [&'static str] {
        match self {
            Change::Decide(Decision::Approve) => &["approve"],
            Change::Decide(Decision::Deny) => &["deny"],
            Change::Decide(Decision::ApproveExtension) => &["extension", "approve"],
            Change::Decide(Decision::DenyExtension) => &["extension", "deny"],
            Change::Decide(Decision::Review) => &["review"],
            Change::Cancel => &["cancel"],
            Change::Revoke => &["revoke"],
        }
    }
}

/// Where the API is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api_url: Url,
    /// AWS profile for the credential chain (`None`: the SDK's default resolution).
    pub profile: Option<String>,
    /// Region to sign for when the API URL does not name one.
    pub region: Option<String>,
}

/// A signed client of the elevate API.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    region: String,
    provider: SharedCredentialsProvider,
    profile: Option<String>,
    cached: Mutex<Option<Credentials>>,
}

impl Client {
    /// Resolves the credential chain and the signing region; credentials themselves are fetched
    /// on the first call.
    pub async fn new(endpoint: Endpoint) -> Result<Client, ApiError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &endpoint.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let region = region_of_url(&endpoint.api_url)
            .or(endpoint.region)
            .or_else(|| sdk.region().map(|r| r.to_string()))
            .ok_or(ApiError::NoRegion)?;
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| ApiError::NoCredentials {
                profile: endpoint.profile.clone(),
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("elevate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: endpoint.api_url.to_string(),
                reason: error_chain(&e),
                refused: false,
                local: false,
            })?;
        Ok(Client {
            http,
            base: endpoint.api_url,
            region,
            provider,
            profile: endpoint.profile,
            cached: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub async fn create_request(
        &self,
        body: &NewRequestBody,
    ) -> Result<Answer<RequestEnvelope>, ApiError> {
        self.call(Method::POST, &["requests"], &[], Some(to_json(body)))
            .await
    }

    pub async fn get_request(&self, id: &RequestId) -> Result<Answer<RequestDetail>, ApiError> {
        self.call(Method::GET, &["requests", id.as_str()], &[], None)
            .await
    }

    /// One page of at most `limit` requests of `scope`: the first, or the one `cursor` (the
    /// `next` of the page before) points at.
    pub async fn list_requests(
        &self,
        scope: Scope,
        state: Option<State>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Answer<RequestList>, ApiError> {
        let mut query = vec![(
            "scope",
            match scope {
                Scope::Mine => "mine".to_owned(),
                Scope::ToApprove => "to_approve".to_owned(),
            },
        )];
        if let Some(state) = state {
            query.push(("state", state.as_str().to_owned()));
        }
        query.push(("limit", limit.to_string()));
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        self.call(Method::GET, &["requests"], &query, None).await
    }

    /// Approve, deny, cancel or revoke; cancel takes no reason.
    pub async fn change(
        &self,
        id: &RequestId,
        change: Change,
        reason: Option<&str>,
    ) -> Result<Answer<RequestEnvelope>, ApiError> {
        let body = match change {
            Change::Cancel => None,
            _ => Some(match reason {
                Some(reason) => serde_json::json!({ "reason": reason }),
                None => serde_json::json!({}),
            }),
        };
        let mut path = vec!["requests", id.as_str()];
        path.extend_from_slice(change.path());
        self.call(Method::POST, &path, &[], body).await
    }

    /// Asks for `by` more on active grant `id` (`POST /requests/{id}/extend`).
    pub async fn extend(
        &self,
        id: &RequestId,
        by: std::time::Duration,
        reason: Option<&str>,
    ) -> Result<Answer<RequestEnvelope>, ApiError> {
        let mut body = serde_json::json!({ "by": by.as_secs() });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        self.call(
            Method::POST,
            &["requests", id.as_str(), "extend"],
            &[],
            Some(body),
        )
        .await
    }

    /// One page of the audit trail in `window` (`GET /audit`, auditors only): the first, or
    /// the one `cursor` (the `next` of the page before) points at.
    pub async fn audit(
        &self,
        window: &AuditWindow,
        cursor: Option<&str>,
    ) -> Result<Answer<AuditExport>, ApiError> {
        let time = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(since) = window.since {
            query.push(("since", time(since)));
        }
        if let Some(until) = window.until {
            query.push(("until", time(until)));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        self.call(Method::GET, &["audit"], &query, None).await
    }

    /// What reconciliation would change (`GET /reconcile`, auditors only).
    pub async fn reconcile_preview(
        &self,
    ) -> Result<Answer<elevate_core::service::Reconciliation>, ApiError> {
        self.call(Method::GET, &["reconcile"], &[], None).await
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    async fn credentials(&self) -> Result<Credentials, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            let fresh = credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_MARGIN);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|err| credentials_error(err, self.profile.clone()))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Answer<T>, ApiError> {
        let url = self.url(segments, query);
        let request_id = match segments {
            ["requests", id, ..] => Some((*id).to_owned()),
            _ => None,
        };
        let mut builder = http::Request::builder().method(method).uri(url.as_str());
        let bytes = match &body {
            Some(body) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                body.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let mut request = builder.body(bytes).map_err(|e| SignError(e.to_string()))?;
        let credentials = self.credentials().await?;
        sign(
            &mut request,
            &credentials,
            &self.region,
            SERVICE,
            SystemTime::now(),
        )?;
        let request = reqwest::Request::try_from(request).map_err(|e| SignError(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(&url, &e))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(&url, &e))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            let json = json.ok_or_else(|| ApiError::Unexpected {
                status,
                detail: format!("not JSON: {}", snippet(&text)),
            })?;
            let value = serde_json::from_value(json.clone()).map_err(|e| ApiError::Unexpected {
                status,
                detail: e.to_string(),
            })?;
            return Ok(Answer { value, json });
        }
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let message = field("message")
            .or_else(|| field("Message"))
            .unwrap_or_else(|| {
                if text.trim().is_empty() {
                    format!("HTTP {status}")
                } else {
                    snippet(&text)
                }
            });
        if status >= 500 {
            return Err(ApiError::Server { status, message });
        }
        Err(ApiError::Refused {
            status,
            code: field("error"),
            message,
            request_id,
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `https://abc.execute-api.eu-west-1.amazonaws.com/prod` → `eu-west-1`.
pub fn region_of_url(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let mut labels = host.split('.');
    let (_api, service, region) = (labels.next()?, labels.next()?, labels.next()?);
    (service == "execute-api" && host.contains(".amazonaws.")).then(|| region.to_owned())
}

fn credentials_error(err: CredentialsError, profile: Option<String>) -> ApiError {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => ApiError::NoCredentials { profile },
        other => ApiError::Credentials(error_chain(&other)),
    }
}

fn transport_error(url: &Url, err: &reqwest::Error) -> ApiError {
    let url_text = url.origin().ascii_serialization();
    if err.is_timeout() {
        return ApiError::Timeout { url: url_text };
    }
    let refused = std::iter::successors(Some(err as &(dyn StdError + 'static)), |&e| e.source())
        .any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        });
    let local = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1" | "0.0.0.0")
    );
    ApiError::Unreachable {
        url: url_text,
        reason: if refused {
            "connection refused".to_owned()
        } else {
            innermost(err)
        },
        refused,
        local,
    }
}

/// The messages of an error and its sources, joined, without repeats.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn innermost(err: &(dyn StdError + 'static)) -> String {
    std::iter::successors(Some(err), |&e| e.source())
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn snippet(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_execute_api_urls_only() {
        let url = |s: &str| Url::parse(s).expect("url");
        assert_eq!(
            region_of_url(&url(
                "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
            ))
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of_url(&url("http://127.0.0.1:9000")), None);
        assert_eq!(region_of_url(&url("https://elevate.example.com")), None);
    }

    #[test]
    fn conflicts_hint_at_show_with_the_id() {
        let err = ApiError::Refused {
            status: 409,
            code: Some("conflict".into()),
            message: "already approved".into(),
            request_id: Some("abc".into()),
        };
        assert_eq!(err.to_string(), "already approved (409 conflict)");
        assert!(err.hint().expect("hint").contains("elevate show abc"));
    }

    #[test]
    fn the_flags_a_refusal_asks_for_are_named_by_the_cli() {
        let refused = |code: &str| ApiError::Refused {
            status: 400,
            code: Some(code.into()),
            message: "refused".into(),
            request_id: None,
        };
        assert!(refused("target_required")
            .hint()
            .expect("hint")
            .contains("--target"));
        assert!(refused("reason_required")
            .hint()
            .expect("hint")
            .contains("--reason"));
    }
}
