//! The approve function: Slack's front door (the `/elevate` command, its request form, the
//! Approve/Deny and End access now buttons) and the CLI's approve and deny.
//!
//! | route | auth | answer |
//! | --- | --- | --- |
//! | `POST /slack/commands` | Slack signature | 200: empty (the request form opened) or an ephemeral message |
//! | `POST /slack/interactions` | Slack signature (v0 HMAC-SHA256, 5-minute window) | 200: empty, or the form's field errors |
//! | `POST /requests/{id}/approve` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//! | `POST /requests/{id}/deny` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//! | `POST /requests/{id}/extension/approve` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//! | `POST /requests/{id}/extension/deny` `{"reason"?}` | AWS IAM | 200 `{"request"}` |
//! | `POST /requests/{id}/review` `{"reason"?}` | AWS IAM | 200 `{"request"}` (a break-glass grant reviewed) |
//!
//! A Slack call whose signature does not verify (forged, or older than five minutes) is
//! answered 401 and changes nothing. Slack wants an answer within 3 seconds, so the step a
//! Slack action asks for (the request stored, the decision written) is taken before the
//! answer, and what may be slow runs after it, in a [`FollowUp`] this function (or revoke,
//! for End access now) receives as an event of its own. A refused action (not an approver,
//! self-approval, already decided, unknown Slack user) changes nothing and is told to the
//! person privately, or on the form's field; Slack still gets 200, since it shows any other
//! answer as a failure of the app itself.

use async_trait::async_trait;
use elevate_core::events::FollowUp;
use elevate_core::ports::NotifyError;
use elevate_core::service::{self, App, Decision, Scope, ServiceError, SlackOutcome, Submission};
use elevate_core::{parse_duration, RequestId};
pub use elevate_http::http_response;
use elevate_http::{
    self as api, caller, json_body, json_response, request_id, respond, route, ApiError, ReasonBody,
};
use elevate_slack::modal::{self, ACCESS_BLOCK, DURATION_BLOCK};
use elevate_slack::{
    parse_payload, Clicked, Interaction, InteractionError, Payload, SlackNotifier, SlashCommand,
    Verb, ViewSubmission,
};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::Method;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::Value;

/// Opens Slack views (`views.open`): the request form.
#[async_trait]
pub trait Views: Send + Sync {
    async fn open(&self, trigger_id: &str, view: &Value) -> Result<(), NotifyError>;
}

#[async_trait]
impl Views for SlackNotifier {
    async fn open(&self, trigger_id: &str, view: &Value) -> Result<(), NotifyError> {
        self.open_view(trigger_id, view).await
    }
}

/// How long opening the request form may take: Slack gives the whole answer 3 seconds.
pub const VIEWS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the function needs of Slack besides the App: the signing secret Slack's calls are
/// checked with, and the Web API that opens the request form.
pub struct Slack {
    pub signing_secret: String,
    pub views: Box<dyn Views>,
}

/// One event: an API Gateway HTTP API event (only it has `requestContext.http`), or a
/// follow-up this function handed itself (only it has `follow_up`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Http(Box<ApiGatewayV2httpRequest>),
    FollowUp(FollowUp),
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("event not understood: expected an API Gateway v2 event or a follow-up {{\"follow_up\": ...}}")]
    BadEvent,
    #[error("End access now is the revoke function's to run, not approve's")]
    NotMine,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ApproveError> for Diagnostic {
    fn from(err: ApproveError) -> Diagnostic {
        let error_type = match &err {
            ApproveError::BadEvent | ApproveError::NotMine => "BadEvent",
            ApproveError::Service(_) => "FollowUpFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// Handles one event. An HTTP event is always answered `Ok` with its HTTP response; a
/// follow-up answers `Err` on faults, so Lambda retries it.
pub async fn handle_event(app: &App, slack: &Slack, event: Value) -> Result<Value, ApproveError> {
    match serde_json::from_value(event).map_err(|_| ApproveError::BadEvent)? {
        Event::Http(request) => {
            let request = Request::from(LambdaRequest::ApiGatewayV2(*request));
            Ok(http_response(handle(app, slack, request).await))
        }
        // Ending access is revoke's: this function may not remove it.
        Event::FollowUp(FollowUp::EndAccess { .. }) => Err(ApproveError::NotMine),
        Event::FollowUp(work) => {
            service::follow_up(app, &work).await?;
            Ok(Value::Null)
        }
    }
}

/// Answers one API Gateway request.
#[tracing::instrument(skip_all, fields(method = %request.method(), path = %request.uri().path(), caller))]
pub async fn handle(app: &App, slack: &Slack, request: Request) -> Response<Body> {
    respond(dispatch(app, slack, &request).await)
}

async fn dispatch(app: &App, slack: &Slack, request: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(request);
    match (route.method, route.segments.as_slice()) {
        (&Method::POST, ["slack", "interactions"]) => {
            verify_slack(app, &slack.signing_secret, request)?;
            slack_interaction(app, request).await
        }
        (&Method::POST, ["slack", "commands"]) => {
            verify_slack(app, &slack.signing_secret, request)?;
            slash_command(app, slack, request).await
        }
        (&Method::POST, ["requests", id, "approve"]) => {
            decide(app, request, id, Decision::Approve).await
        }
        (&Method::POST, ["requests", id, "deny"]) => decide(app, request, id, Decision::Deny).await,
        (&Method::POST, ["requests", id, "extension", "approve"]) => {
            decide(app, request, id, Decision::ApproveExtension).await
        }
        (&Method::POST, ["requests", id, "extension", "deny"]) => {
            decide(app, request, id, Decision::DenyExtension).await
        }
        (&Method::POST, ["requests", id, "review"]) => {
            decide(app, request, id, Decision::Review).await
        }
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

async fn slack_interaction(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    match parse_payload(request.body().as_ref()) {
        Ok(Payload::Actions(interaction)) => clicked(app, &interaction).await,
        Ok(Payload::ViewSubmission(submission)) => submitted(app, &submission).await,
        // Another kind of interaction (a shortcut, a closed view): nothing of elevate's.
        Err(err @ InteractionError::UnsupportedType(_)) => {
            tracing::info!(error = %err, "Slack interaction ignored");
            Ok(slack_ok())
        }
        Err(err) => {
            tracing::warn!(error = %err, "Slack interaction not understood");
            Err(ApiError::bad_request(err.to_string()))
        }
    }
}

/// A click on one of elevate's buttons.
async fn clicked(app: &App, interaction: &Interaction) -> Result<Response<Body>, ApiError> {
    let user = &interaction.user_id;
    let click = match interaction.clicked() {
        Ok(click) => click,
        // Another button, or none: nothing of elevate's was clicked.
        Err(err @ (InteractionError::NoAction | InteractionError::UnknownAction(_))) => {
            tracing::info!(error = %err, slack_user = %user, "Slack interaction ignored");
            return Ok(slack_ok());
        }
        Err(err) => {
            tracing::warn!(error = %err, "Slack interaction not understood");
            return Err(ApiError::bad_request(err.to_string()));
        }
    };
    match click {
        Clicked::Decide(click) => {
            let outcome = service::decide_from_slack(
                app,
                &interaction.team_id,
                user,
                &interaction.channel_id,
                &click.request_id,
                click.decision,
            )
            .await?;
            match outcome {
                SlackOutcome::Decided(request) => {
                    tracing::info!(request_id = %request.id, state = %request.state, slack_user = %user, "decided from Slack");
                }
                SlackOutcome::Refused(err) => {
                    tracing::info!(request_id = %click.request_id, slack_user = %user, code = err.code(), error = %err, "Slack click refused");
                }
            }
        }
        Clicked::EndAccess(id) => end_access(app, interaction, &id).await?,
    }
    Ok(slack_ok())
}

async fn end_access(app: &App, interaction: &Interaction, id: &RequestId) -> Result<(), ApiError> {
    let user = &interaction.user_id;
    service::end_access_from_slack(app, &interaction.team_id, user, &interaction.channel_id, id)
        .await
        .inspect(|()| tracing::info!(request_id = %id, slack_user = %user, "End access now handed to revoke"))
        .map_err(|err| {
            tracing::error!(request_id = %id, slack_user = %user, error = %err, "could not hand End access now over");
            ApiError::from(err)
        })
}

/// The request form, submitted: the request is stored, or the form shows why not.
async fn submitted(app: &App, view: &ViewSubmission) -> Result<Response<Body>, ApiError> {
    if view.callback_id != modal::REQUEST_CALLBACK {
        tracing::info!(callback_id = %view.callback_id, "Slack view submission ignored");
        return Ok(slack_ok());
    }
    let form = &view.form;
    let Some(access) = form.access.as_deref().and_then(modal::parse_access) else {
        return Ok(form_errors(&[(
            ACCESS_BLOCK,
            "Choose what to request.".to_owned(),
        )]));
    };
    let duration = match form.duration.as_deref().map(parse_duration) {
        Some(Ok(duration)) => duration,
        Some(Err(err)) => return Ok(form_errors(&[(DURATION_BLOCK, err.to_string())])),
        None => {
            return Ok(form_errors(&[(
                DURATION_BLOCK,
                "Choose a duration.".to_owned(),
            )]))
        }
    };
    let submission = Submission {
        flow: access.flow.into(),
        target: Some(access.target.into()),
        account: access.account,
        duration,
        reason: form.reason.clone().unwrap_or_default(),
    };
    match service::submit_from_slack(app, &view.team_id, &view.user_id, submission).await {
        Ok(request) => {
            tracing::info!(request_id = %request.id, slack_user = %view.user_id, "request opened from Slack");
            // An empty answer closes the form.
            Ok(slack_ok())
        }
        Err(err) if err.is_refusal() => {
            tracing::info!(slack_user = %view.user_id, code = err.code(), error = %err, "request from Slack refused");
            Ok(form_errors(&[(modal::error_block(&err), err.to_string())]))
        }
        Err(err) => {
            // The form stays open with what was typed, so nothing is lost: ask to try again.
            tracing::error!(slack_user = %view.user_id, error = %err, "could not store a request from Slack");
            Ok(form_errors(&[(
                ACCESS_BLOCK,
                "elevate could not store the request just now; submit again in a moment."
                    .to_owned(),
            )]))
        }
    }
}

/// `/elevate [request | list | help]`.
async fn slash_command(
    app: &App,
    slack: &Slack,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let command = SlashCommand::parse(request.body().as_ref()).map_err(|err| {
        tracing::warn!(error = %err, "Slack command not understood");
        ApiError::bad_request(err.to_string())
    })?;
    let caller = match service::slack_caller(app, &command.team_id, &command.user_id) {
        Ok(caller) => caller,
        Err(err) => {
            tracing::info!(slack_user = %command.user_id, error = %err, "Slack command refused");
            return Ok(ephemeral(&format!("Not done: {err}")));
        }
    };
    match command.verb() {
        Verb::Request => {
            let Some(view) = modal::request_modal(&app.config, caller.person, &command.channel_id)
            else {
                return Ok(ephemeral(
                    "There is no flow in elevate.toml you may request.",
                ));
            };
            match slack.views.open(&command.trigger_id, &view).await {
                Ok(()) => Ok(slack_ok()),
                Err(err) => {
                    tracing::warn!(slack_user = %command.user_id, error = %err, "could not open the request form");
                    Ok(ephemeral(&format!(
                        "Could not open the request form ({err}). Run /elevate again, or use `elevate request` from the CLI."
                    )))
                }
            }
        }
        // The newest page only: the person's history is not read for a glance at it.
        Verb::List => {
            match service::list(app, &caller, Scope::Mine, None, None, modal::MAX_LISTED).await {
                Ok(page) => Ok(json_response(
                    200,
                    &modal::requests_answer(&page.requests, page.next.is_some()),
                )),
                Err(err) => {
                    tracing::error!(slack_user = %command.user_id, error = %err, "could not list requests for Slack");
                    Ok(ephemeral(
                    "elevate could not list your requests just now; try again, or run `elevate list`.",
                ))
                }
            }
        }
        Verb::Help { unknown } => Ok(json_response(200, &modal::help_answer(unknown.as_deref()))),
    }
}

fn ephemeral(text: &str) -> Response<Body> {
    json_response(200, &modal::ephemeral_answer(text))
}

fn form_errors(errors: &[(&str, String)]) -> Response<Body> {
    json_response(200, &modal::errors_answer(errors))
}

/// What Slack expects back from an interaction: 200 with an empty body.
fn slack_ok() -> Response<Body> {
    Response::new(Body::Empty)
}

#[cfg(test)]
mod tests;
