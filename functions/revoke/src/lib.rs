//! The revoke function. It receives these kinds of event, one [`Event`] variant each:
//!
//! - an API Gateway HTTP API event (`requestContext.http`): `POST /requests/{id}/revoke`
//!   `{"reason"?}` by the requester or an approver, and `GET /reconcile`, answered like the
//!   other API routes;
//! - a schedule's input ([`ScheduledAction`]): `{"action":"expire"|"timeout","request_id"}`
//!   ends a grant at expiry or an unanswered request, `{"action":"sweep"}` runs the sweep;
//! - escalate's `OnFailure` destination record ([`FailedInvocation`]): escalate failed every
//!   retry, so the request becomes FAILED with the error;
//! - a [`FollowUp`] handed over by approve: `{"follow_up":"end_access",...}`, the requester's
//!   click on "End access now" in Slack.
//!
//! Faults of scheduled and destination events are returned as `Err`, so the platform retries
//! them; duplicate or late deliveries find the request moved on and do nothing.

use elevate_core::events::{EscalateEvent, FailedInvocation, FollowUp, ScheduledAction};
use elevate_core::service::{self, App, ServiceError, SweepReport};
use elevate_core::RequestId;
pub use elevate_http::http_response;
use elevate_http::{self as api, caller, json_body, json_response, request_id, respond, route};
use elevate_http::{ApiError, ReasonBody};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::Method;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::{json, Value};

/// One event. The variants' shapes do not overlap: only an API event has
/// `requestContext.http`, only a destination record has `requestPayload`, only a schedule's
/// input has `action`, only a follow-up has `follow_up`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Http(Box<ApiGatewayV2httpRequest>),
    /// escalate's OnFailure destination: the request it could not escalate, and why.
    EscalationFailed(Box<FailedInvocation<EscalateEvent>>),
    Scheduled(ScheduledAction),
    FollowUp(FollowUp),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("event not understood: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("the sweep had {} failed steps (see the log); the next sweep retries them", .0.errors)]
    Sweep(SweepReport),
}

impl From<RevokeError> for Diagnostic {
    fn from(err: RevokeError) -> Diagnostic {
        let error_type = match &err {
            RevokeError::BadEvent(_) => "BadEvent",
            RevokeError::Service(_) => "RevokeFailed",
            RevokeError::Sweep(_) => "SweepFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

impl Event {
    /// Reads an event of one of the four kinds.
    pub fn parse(value: Value) -> Result<Event, RevokeError> {
        serde_json::from_value(value).map_err(|_| {
            RevokeError::BadEvent(
                "expected an API Gateway v2 event, a schedule's {\"action\": \"expire\"|\"timeout\", \"request_id\"} or {\"action\": \"sweep\"}, a Lambda destination record of escalate, or a follow-up {\"follow_up\": ...}"
                    .to_owned(),
            )
        })
    }
}

/// Handles one event. An HTTP event is always answered `Ok` with its HTTP response (a 500
/// included); the others answer `Err` on faults so the platform retries.
pub async fn handle(app: &App, event: Value) -> Result<Value, RevokeError> {
    match Event::parse(event)? {
        Event::Http(request) => {
            let request = Request::from(LambdaRequest::ApiGatewayV2(*request));
            Ok(http_response(handle_http(app, request).await))
        }
        Event::Scheduled(action) => scheduled(app, &action).await,
        Event::EscalationFailed(record) => {
            let id = &record.request_payload.request_id;
            escalation_failed(app, id, &record.failure()).await
        }
        Event::FollowUp(work @ FollowUp::EndAccess { .. }) => {
            service::follow_up(app, &work).await?;
            Ok(json!({ "follow_up": "done" }))
        }
        // The others are approve's (its own Slack steps).
        Event::FollowUp(_) => Err(RevokeError::BadEvent(
            "only End access now is the revoke function's follow-up".to_owned(),
        )),
    }
}

/// `POST /requests/{id}/revoke`, and `GET /reconcile` (auditors: what reconciliation would
/// change, changing nothing).
#[tracing::instrument(skip_all, fields(method = %request.method(), path = %request.uri().path(), caller))]
pub async fn handle_http(app: &App, request: Request) -> Response<Body> {
    let answer = async {
        let route = route(&request);
        match (route.method, route.segments.as_slice()) {
            (&Method::POST, ["requests", id, "revoke"]) => {
                let person = caller(app, &request)?;
                let id = request_id(id)?;
                let reason = json_body::<ReasonBody>(&request)?.reason();
                let revoked = service::revoke(app, &person, &id, reason).await?;
                Ok::<_, ApiError>(json_response(200, &json!({ "request": revoked })))
            }
            (&Method::GET, ["reconcile"]) => {
                let person = caller(app, &request)?;
                let preview = service::reconcile_preview(app, &person).await?;
                Ok(json_response(200, &preview))
            }
            _ => Err(api::no_route(&request)),
        }
    };
    respond(answer.await)
}

#[tracing::instrument(skip_all, fields(action = ?action))]
async fn scheduled(app: &App, action: &ScheduledAction) -> Result<Value, RevokeError> {
    if *action == ScheduledAction::Sweep {
        let report = service::sweep(app).await?;
        if report.errors > 0 {
            return Err(RevokeError::Sweep(report));
        }
        return Ok(json!({ "sweep": report }));
    }
    match service::end_by_schedule(app, action).await {
        Ok(Some(request)) => Ok(json!({ "request_id": request.id, "state": request.state })),
        Ok(None) => Ok(json!({ "noop": true })),
        // A schedule for a request that does not exist (any more): retrying cannot help.
        Err(err) if err.is_refusal() => {
            tracing::warn!(error = %err, "schedule refers to nothing to end");
            Ok(json!({ "noop": true }))
        }
        Err(err) => {
            tracing::error!(error = %err, "could not end the request; the platform retries");
            Err(err.into())
        }
    }
}

#[tracing::instrument(skip_all, fields(request_id = %id))]
async fn escalation_failed(app: &App, id: &RequestId, error: &str) -> Result<Value, RevokeError> {
    match service::fail(app, id, "escalate", error).await {
        Ok(Some(request)) => Ok(json!({ "request_id": request.id, "state": request.state })),
        Ok(None) => Ok(json!({ "noop": true })),
        Err(err) if err.is_refusal() => {
            tracing::warn!(error = %err, "failed escalation of an unknown request");
            Ok(json!({ "noop": true }))
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests;
