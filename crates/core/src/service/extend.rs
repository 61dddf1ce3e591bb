//! More time on an ACTIVE grant: asked by its requester, approved like a request (by enough
//! approvers, or by an auto-approval rule), and never by removing and adding the access again.

use std::time::Duration;

use crate::machine::{self, Command};
use crate::model::{format_duration, AutoDecider, Request, RequestId, State};

use super::grant::write_extension_aware;
use super::submit::{auto_approval, still_granted};
use super::{App, Caller, ServiceError};

/// The requester of ACTIVE grant `id` asks for `by` more. The whole grant must stay within
/// the flow's cap, and the terms must be ones elevate.toml still gives. An auto-approval rule
/// that approves the whole grant approves it at once (the expiry moves before this returns;
/// the revocation follows when its schedule fires); otherwise the approvers are asked in the
/// grant's Slack message, and until they answer the grant ends as it would.
#[tracing::instrument(skip_all, fields(caller = %caller.name(), request_id = %id))]
pub async fn extend(
    app: &App,
    caller: &Caller<'_>,
    id: &RequestId,
    by: Duration,
    reason: &str,
) -> Result<Request, ServiceError> {
    let reason = reason.trim();
    crate::rules::check_reason(reason)?;
    let request = app.load(id).await?;
    if request.requester != caller.name() {
        return Err(ServiceError::Forbidden(format!(
            "only {} may extend request {id}",
            request.requester
        )));
    }
    let flow = app.flow_of(&request)?;
    if request.state != State::Active {
        return Err(ServiceError::Conflict(format!(
            "request {id} is {}; only an ACTIVE grant can be extended",
            request.state
        )));
    }
    flow.check_extension(&request, by)?;
    if flow.reason_required && reason.is_empty() {
        return Err(crate::rules::RuleError::ReasonRequired {
            flow: flow.name.clone(),
        }
        .into());
    }
    // More time is given only on terms elevate.toml still gives, as an approval is.
    still_granted(app, flow, &request).await?;
    let now = app.clock.now();
    let ask = Command::AskExtension {
        by,
        reason: reason.to_owned(),
    };
    let step = machine::apply(&request, ask, &caller.by(), now)?;
    let Some(asked) = write_extension_aware(app, &request, &step).await? else {
        return Err(ServiceError::Conflict(format!(
            "request {id} changed meanwhile; look at it and ask again"
        )));
    };
    tracing::info!(by = %format_duration(by), "extension asked");

    let rule = auto_approval(
        app,
        flow,
        caller.person,
        &asked.target,
        asked.duration + by,
        now,
    )
    .await;
    if let Some(rule) = rule {
        let approve = Command::ApproveExtension {
            reason: Some(rule.describe()),
        };
        let written = match machine::apply(
            &asked,
            approve,
            &app.decider(&AutoDecider::Rule(rule.name.clone())),
            app.clock.now(),
        ) {
            Ok(step) => write_extension_aware(app, &asked, &step).await,
            Err(err) => Err(err.into()),
        };
        match written {
            Ok(Some(extended)) => {
                tracing::info!(rule = %rule.name, "extension approved by an auto-approval rule");
                extended_told(app, &extended).await;
                return Ok(extended);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, rule = %rule.name, "could not record the auto-approval of the extension; it waits for approvers")
            }
        }
    }
    let asked = app.load(id).await?;
    app.tell(&asked, None).await;
    if let Some(extension) = asked
        .extension
        .as_ref()
        .filter(|_| asked.state == State::Active)
    {
        // The approvers hear of it where they decided the request.
        let ping = super::remind::slack_ids(app, &flow.approvers.people, &asked);
        let text = format!(
            "{} asks for {} more on {}: approve or deny the extension on the request's message.",
            asked.requester,
            format_duration(extension.by),
            super::remind::about(&asked),
        );
        if let Err(err) = app.remind_in_thread(&asked, &text, &ping).await {
            tracing::warn!(error = %err, "could not ping the approvers about the extension; the message shows it");
        }
    }
    Ok(asked)
}

/// Tells the world an extension was decided: the message shows it, the requester hears.
pub(crate) async fn extended_told(app: &App, request: &Request) {
    let text = match request.expires_at {
        Some(at) => format!(
            "Your {} access on {} is extended: it is active until {} UTC.",
            request.flow,
            request.target_label(),
            at.format("%Y-%m-%d %H:%M:%S")
        ),
        None => format!("Your {} access is extended.", request.flow),
    };
    app.tell(request, Some(&text)).await;
}
