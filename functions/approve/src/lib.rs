//! The approve function: approvals and denials, from a Slack button or from the CLI.
//!
//! | route | auth | answer |
//! | --- | --- | --- |
//! | `POST /slack/interactions` | Slack signature (v0 HMAC-SHA256, 5-minute window) | 200, empty |
//! | `POST /requests/{id}/approve` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//! | `POST /requests/{id}/deny` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//!
//! A Slack click whose signature does not verify (forged, or older than five minutes) is
//! answered 401 and changes nothing. A click that is refused (not an approver, self-approval,
//! already decided, unknown Slack user) is told to the clicker in an ephemeral message and
//! still answered 200, since Slack shows any other answer as a failure of the app itself.

use elevate_core::service::{self, App, Decision, SlackOutcome};
use elevate_http::{
    self as api, caller, json_body, json_response, request_id, respond, route, ApiError, ReasonBody,
};
use elevate_slack::{Interaction, InteractionError};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// Answers one API Gateway request. `signing_secret` is the Slack app's signing secret.
#[tracing::instrument(skip_all, fields(method = %request.method(), path = %request.uri().path(), caller))]
pub async fn handle(app: &App, signing_secret: &str, request: Request) -> Response<Body> {
    respond(dispatch(app, signing_secret, &request).await)
}

async fn dispatch(
    app: &App,
    signing_secret: &str,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let route = route(request);
    match (route.method, route.segments.as_slice()) {
        (&Method::POST, ["slack", "interactions"]) => {
            slack_interaction(app, signing_secret, request).await
        }
        (&Method::POST, ["requests", id, "approve"]) => {
            decide(app, request, id, Decision::Approve).await
        }
        (&Method::POST, ["requests", id, "deny"]) => decide(app, request, id, Decision::Deny).await,
        _ => Err(api::no_route(request)),
    }
}

async fn decide(
    app: &App,
    request: &Request,
    id: &str,
    decision: Decision,
) -> Result<Response<Body>, ApiError> {
    let person = caller(app, request)?;
    let id = request_id(id)?;
    let reason = json_body::<ReasonBody>(request)?.reason();
    let decided = service::decide(app, &person, &id, decision, reason).await?;
    Ok(json_response(
        200,
        &serde_json::json!({ "request": decided }),
    ))
}

/// Header with the Unix time Slack signed at.
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header with Slack's `v0=` signature.
const SIGNATURE_HEADER: &str = "x-slack-signature";

/// Checks that `request` comes from Slack: the signature over the body exactly as API Gateway
/// received it (lambda_http has already undone API Gateway's base64), within five minutes of
/// the app's clock.
pub fn verify_slack(app: &App, signing_secret: &str, request: &Request) -> Result<(), ApiError> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    elevate_slack::verify(
        signing_secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        request.body().as_ref(),
        app.clock.now().timestamp(),
    )
    .map_err(|err| {
        tracing::warn!(error = %err, "Slack interaction refused: bad signature");
        ApiError::Refused {
            status: 401,
            code: "bad_signature",
            message: format!("not a request signed by Slack: {err}"),
        }
    })
}

async fn slack_interaction(
    app: &App,
    signing_secret: &str,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    verify_slack(app, signing_secret, request)?;
    let interaction = match Interaction::parse(request.body().as_ref()) {
        Ok(interaction) => interaction,
        // Another kind of interaction (a shortcut, a modal): not one of elevate's buttons.
        Err(err @ InteractionError::UnsupportedType(_)) => {
            tracing::info!(error = %err, "Slack interaction ignored");
            return Ok(slack_ok());
        }
        Err(err) => {
            tracing::warn!(error = %err, "Slack interaction not understood");
            return Err(ApiError::bad_request(err.to_string()));
        }
    };
    let click = match interaction.click() {
        Ok(click) => click,
        // Another button, or none: nothing of elevate's was clicked.
        Err(err @ (InteractionError::NoAction | InteractionError::UnknownAction(_))) => {
            tracing::info!(error = %err, user = %interaction.user_id, "Slack interaction ignored");
            return Ok(slack_ok());
        }
        Err(err) => {
            tracing::warn!(error = %err, "Slack interaction not understood");
            return Err(ApiError::bad_request(err.to_string()));
        }
    };
    let outcome = service::decide_from_slack(
        app,
        &interaction.team_id,
        &interaction.user_id,
        &interaction.channel_id,
        &click.request_id,
        click.decision,
    )
    .await?;
    match outcome {
        SlackOutcome::Decided(request) => {
            tracing::info!(request_id = %request.id, state = %request.state, slack_user = %interaction.user_id, "decided from Slack");
        }
        SlackOutcome::Refused(err) => {
            tracing::info!(request_id = %click.request_id, slack_user = %interaction.user_id, code = err.code(), error = %err, "Slack click refused");
        }
    }
    Ok(slack_ok())
}

/// What Slack expects back from an interaction: 200 with an empty body.
fn slack_ok() -> Response<Body> {
    Response::new(Body::Empty)
}

#[cfg(test)]
mod tests;
