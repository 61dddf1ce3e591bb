//! The request function: the user routes of elevate's HTTP API that open and read requests.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /requests` `{"flow","target"?,"account"?,"duration":"1h" or seconds,"reason"}` | 201 `{"request"}` |
//! | `GET /requests?scope=mine\|to_approve&state=S&limit=N&cursor=C` | 200 `{"requests","next"?}`, one page |
//! | `GET /requests/{id}` | 200 `{"request","audit"}` |
//! | `POST /requests/{id}/cancel` | 200 `{"request"}` |
//! | `POST /requests/{id}/extend` `{"by":"30m" or seconds,"reason"?}` | 200 `{"request"}` |
//! | `GET /audit?since=&until=&cursor=` | 200 `{"events","heads","next"?}`, one page |
//!
//! The caller is the IAM principal API Gateway verified; see [`elevate_http::caller`].

#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::model::parse_duration;
use elevate_core::ports::AuditWindow;
use elevate_core::service::{self, App, Scope, Submission, LIST_PAGE_DEFAULT, LIST_PAGE_MAX};
use elevate_core::{State, TargetName};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use elevate_http::{
    self as api, caller, json_body, json_response, query, request_id, respond, route, ApiError,
};

/// Answers one API Gateway request.
#[tracing::instrument(skip_all, fields(method = %request.method(), path = %request.uri().path(), caller))]
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    respond(dispatch(app, &request).await)
}

async fn dispatch(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(request);
    match (route.method, route.segments.as_slice()) {
        (&Method::POST, ["requests"]) => create(app, request).await,
        (&Method::GET, ["requests"]) => list(app, request).await,
        (&Method::GET, ["requests", id]) => show(app, request, id).await,
        (&Method::POST, ["requests", id, "cancel"]) => cancel(app, request, id).await,
        (&Method::POST, ["requests", id, "extend"]) => extend(app, request, id).await,
        (&Method::GET, ["audit"]) => audit(app, request).await,
        _ => Err(api::no_route(request)),
    }
}

/// The body of `POST /requests`, as the caller sent it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    pub flow: String,
    #[serde(default)]
    pub target: Option<String>,
    /// The AWS account, for a target granted in several.
    #[serde(default)]
    pub account: Option<String>,
    pub duration: DurationField,
    /// Absent is the same as empty: the flow decides whether a reason is required.
    #[serde(default)]
    pub reason: Option<String>,
    /// Active at once, reviewed afterwards: the flow's `[flows.break_glass]`.
    #[serde(default)]
    pub break_glass: bool,
}

/// A duration as people and scripts write it: `"1h30m"` or whole seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationField {
    Seconds(u64),
    Text(String),
    Other(serde_json::Value),
}

impl DurationField {
    /// The duration, or 400 `invalid_duration` saying how to write one.
    pub fn parse(&self) -> Result<Duration, ApiError> {
        let invalid = |message: String| ApiError::Refused {
            status: 400,
            code: "invalid_duration",
            message,
        };
        match self {
            DurationField::Seconds(secs) => Ok(Duration::from_secs(*secs)),
            DurationField::Text(text) => {
                parse_duration(text).map_err(|err| invalid(err.to_string()))
            }
            DurationField::Other(value) => Err(invalid(format!(
                "duration {value} is neither a text like \"1h\" nor whole seconds"
            ))),
        }
    }
}

impl NewRequestBody {
    /// The submission the service validates against the flow.
    pub fn into_submission(self) -> Result<Submission, ApiError> {
        let duration = self.duration.parse()?;
        Ok(Submission {
            flow: self.flow.trim().into(),
            target: self
                .target
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(TargetName::from),
            account: self
                .account
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty()),
            duration,
            reason: self.reason.unwrap_or_default().trim().to_owned(),
        })
    }
}

async fn create(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let body = json_body::<NewRequestBody>(request)?;
    let break_glass = body.break_glass;
    let submission = body.into_submission()?;
    let created = if break_glass {
        service::submit_break_glass(app, &person, submission).await?
    } else {
        service::submit(app, &person, submission).await?
    };
    Ok(json_response(
        201,
        &serde_json::json!({ "request": created }),
    ))
}

async fn list(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let scope = match query(request, "scope").as_deref() {
        None | Some("") | Some("mine") => Scope::Mine,
        Some("to_approve") => Scope::ToApprove,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown scope `{other}` (expected mine or to_approve)"
            )))
        }
    };
    let state = match query(request, "state").filter(|s| !s.is_empty()) {
        Some(text) => Some(
            text.parse::<State>()
                .map_err(|err| ApiError::bad_request(err.to_string()))?,
        ),
        None => None,
    };
    let limit = match query(request, "limit").filter(|l| !l.is_empty()) {
        None => LIST_PAGE_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit `{}` is not a whole number from 1 to {LIST_PAGE_MAX}",
                    text.chars().take(40).collect::<String>()
                ))
            })?,
    };
    let cursor = cursor_param(request)?;
    let page = service::list(app, &person, scope, state, cursor.as_deref(), limit).await?;
    let mut answer = serde_json::json!({ "requests": page.requests });
    if let Some(next) = page.next {
        answer["next"] = serde_json::Value::from(next);
    }
    Ok(json_response(200, &answer))
}

async fn show(app: &App, request: &Request, id: &str) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let id = request_id(id)?;
    let (found, audit) = service::show(app, &person, &id).await?;
    Ok(json_response(
        200,
        &serde_json::json!({ "request": found, "audit": audit }),
    ))
}

async fn cancel(app: &App, request: &Request, id: &str) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let id = request_id(id)?;
    let cancelled = service::cancel(app, &person, &id).await?;
    Ok(json_response(
        200,
        &serde_json::json!({ "request": cancelled }),
    ))
}

/// The body of `POST /requests/{id}/extend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// How much more time.
    pub by: DurationField,
    #[serde(default)]
    pub reason: Option<String>,
}

async fn extend(app: &App, request: &Request, id: &str) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let id = request_id(id)?;
    let body = json_body::<ExtendBody>(request)?;
    let by = body.by.parse()?;
    let reason = body.reason.unwrap_or_default();
    let extended = service::extend(app, &person, &id, by, &reason).await?;
    Ok(json_response(
        200,
        &serde_json::json!({ "request": extended }),
    ))
}

async fn audit(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let window = AuditWindow {
        since: time_param(request, "since")?,
        until: time_param(request, "until")?,
    };
    if let (Some(since), Some(until)) = (window.since, window.until) {
        if until <= since {
            return Err(ApiError::bad_request(format!(
                "until ({until}) must be after since ({since})"
            )));
        }
    }
    let cursor = cursor_param(request)?;
    let export = service::audit_export(app, &person, window, cursor.as_deref()).await?;
    Ok(json_response(200, &export))
}

/// Longer than any cursor the store hands out.
const MAX_CURSOR_CHARS: usize = 4096;

/// The `cursor` of a page after the first (absent or empty for the first).
fn cursor_param(request: &Request) -> Result<Option<String>, ApiError> {
    let cursor = query(request, "cursor").filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > MAX_CURSOR_CHARS) {
        return Err(ApiError::bad_request(
            "cursor is not one this API handed out (too long)".to_owned(),
        ));
    }
    Ok(cursor)
}

/// An optional RFC 3339 time in the query string.
fn time_param(request: &Request, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match query(request, name).filter(|s| !s.is_empty()) {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|err| {
                ApiError::bad_request(format!(
                    "{name} `{text}` is not an RFC 3339 time such as 2026-11-01T00:00:00Z: {err}"
                ))
            }),
        None => Ok(None),
    }
}
