//! Opening a request and deciding on it.

use std::time::Duration;

use crate::config::Flow;
use crate::events::ScheduledAction;
use crate::machine::{self, Command};
use crate::model::{format_duration, Request, RequestId, State};
use crate::names::{FlowName, TargetName};

use super::{App, Caller, ServiceError};

/// A new request as the caller asked for it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub flow: FlowName,
    pub target: Option<TargetName>,
    pub duration: Duration,
    pub reason: String,
}

/// Opens a request: validates it against its flow, stores it (PENDING, with its audit event),
/// announces it to the approvers and schedules its time-out. Nothing is written when the flow
/// refuses it. Once stored, a failed announcement or schedule is logged and left to the sweep,
/// so the caller still gets the request it made.
#[tracing::instrument(skip_all, fields(requester = %caller.name(), flow = %submission.flow, request_id))]
pub async fn submit(
    app: &App,
    caller: &Caller<'_>,
    submission: Submission,
) -> Result<Request, ServiceError> {
    let flow = app
        .config
        .flow(&submission.flow)
        .ok_or_else(|| ServiceError::UnknownFlow(submission.flow.clone()))?;
    let new = flow.check_request(
        caller.person,
        submission.target.as_deref(),
        submission.duration,
        &submission.reason,
    )?;
    let now = app.clock.now();
    let (mut request, event) = machine::open(RequestId::generate(now), new, &caller.principal, now);
    tracing::Span::current().record("request_id", tracing::field::display(&request.id));
    app.store.create(&request, &event).await?;
    tracing::info!(duration = %format_duration(request.duration), "request opened");

    match app.notifier.announce(&request, flow, caller.person).await {
        Ok(message) => match app.store.set_message(&request.id, &message).await {
            Ok(()) => request.message = Some(message),
            Err(err) => {
                tracing::error!(error = %err, "announced, but could not record the Slack message")
            }
        },
        Err(err) => {
            tracing::error!(error = %err, "could not announce the request; the sweep will retry")
        }
    }
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    };
    if let Err(err) = app
        .scheduler
        .schedule(request.pending_until, &timeout)
        .await
    {
        tracing::error!(error = %err, "could not schedule the time-out; the sweep will time it out");
    }
    Ok(request)
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// An approver approves or denies a PENDING request. The move is conditional on the request
/// still being PENDING, so of two simultaneous clicks exactly one wins and the other is a
/// `Conflict` that changes nothing. An approval asynchronously starts the escalation.
///
/// The decider is checked against elevate.toml as it is now, and an approval only grants
/// terms that elevate.toml still gives (the requester may still request, with the same IAM
/// user, the target still grants the same access).
#[tracing::instrument(skip_all, fields(decider = %decider.name(), request_id = %id, decision = ?decision))]
pub async fn decide(
    app: &App,
    decider: &Caller<'_>,
    id: &RequestId,
    decision: Decision,
    reason: Option<String>,
) -> Result<Request, ServiceError> {
    crate::rules::check_reason(reason.as_deref().unwrap_or_default())?;
    let request = app.load(id).await?;
    let flow = app.flow_of(&request)?;
    flow.check_decider(decider.name(), &request)?;
    if request.state != State::Pending {
        return Err(already_decided(&request));
    }
    if decision == Decision::Approve {
        still_granted(app, flow, &request)?;
    }
    let command = match decision {
        Decision::Approve => Command::Approve { reason },
        Decision::Deny => Command::Deny { reason },
    };
    let Some(request) = app.step(&request, command, &decider.by()).await? else {
        return Err(already_decided(&app.load(id).await?));
    };
    tracing::info!(state = %request.state, "request decided");

    if decision == Decision::Approve {
        if let Err(err) = app.escalation.start(&request.id).await {
            tracing::error!(error = %err, "could not start the escalation; the sweep will retry");
        }
    }
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    }
    .schedule_name();
    if let Err(err) = app.scheduler.cancel(&timeout).await {
        tracing::warn!(error = %err, "could not delete the time-out schedule; it will find the request decided");
    }
    let denied = (decision == Decision::Deny).then(|| {
        let why = request
            .decision_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!(
            "{} denied your {} request{why}",
            decider.name(),
            request.flow
        )
    });
    app.tell(&request, denied.as_deref()).await;
    Ok(request)
}

/// Refuses to approve terms that elevate.toml no longer gives: the requester offboarded or no
/// longer a requester of the flow, their IAM user or Slack id changed, the target removed or
/// pointed elsewhere. The request was made under other rules; it is denied or asked again.
fn still_granted(app: &App, flow: &Flow, request: &Request) -> Result<(), ServiceError> {
    let Some(terms) = &request.terms else {
        return Ok(());
    };
    let changed = |what: String| {
        Err(ServiceError::Conflict(format!(
            "request {} cannot be approved: {what} since it was made; deny it and ask again",
            request.id
        )))
    };
    match app.config.person(&request.requester) {
        None => return changed(format!("{} left elevate.toml", request.requester)),
        Some(now) if *now != terms.person => {
            return changed(format!("{}'s identities changed", request.requester))
        }
        Some(_) => {}
    }
    if flow
        .requesters
        .as_ref()
        .is_some_and(|list| !list.contains(&request.requester))
    {
        return changed(format!(
            "{} may no longer request `{}`",
            request.requester, flow.name
        ));
    }
    match flow.targets.iter().find(|t| t.name == terms.target.name) {
        Some(now) if now.kind == terms.target.kind => Ok(()),
        Some(_) => changed(format!(
            "target `{}` grants something else",
            terms.target.name
        )),
        None => changed(format!(
            "target `{}` left flow `{}`",
            terms.target.name, flow.name
        )),
    }
}

fn already_decided(request: &Request) -> ServiceError {
    let by = request
        .decided_by
        .as_deref()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    ServiceError::Conflict(format!(
        "request {} is already {}{by}",
        request.id, request.state
    ))
}

/// What happened to a click in Slack.
#[derive(Debug)]
pub enum SlackOutcome {
    Decided(Box<Request>),
    /// Refused; the clicker was told why in an ephemeral message. Nothing changed.
    Refused(ServiceError),
}

/// A click on Approve or Deny in Slack, by `slack_user_id` of workspace `team_id` (from the
/// signed payload). Refusals (unknown Slack user, not an approver, self-approval, already
/// decided) are told to the clicker privately and change nothing; faults are returned as
/// `Err`.
pub async fn decide_from_slack(
    app: &App,
    team_id: &str,
    slack_user_id: &str,
    channel: &str,
    id: &RequestId,
    decision: Decision,
) -> Result<SlackOutcome, ServiceError> {
    let result = match app.config.person_by_slack_id(slack_user_id) {
        Some(person) => {
            let clicker = Caller::new(person, format!("slack:{team_id}/{slack_user_id}"));
            decide(app, &clicker, id, decision, None).await
        }
        None => Err(ServiceError::Forbidden(format!(
            "Slack user {slack_user_id} is not a person in elevate.toml, so elevate cannot take the click"
        ))),
    };
    match result {
        Ok(request) => Ok(SlackOutcome::Decided(Box::new(request))),
        Err(err) if err.is_refusal() => {
            if let Err(notify) = app
                .notifier
                .tell_privately(channel, slack_user_id, &format!("Not done: {err}"))
                .await
            {
                tracing::warn!(error = %notify, "could not tell the clicker why their click was refused");
            }
            Ok(SlackOutcome::Refused(err))
        }
        Err(err) => Err(err),
    }
}

/// The requester withdraws a PENDING request.
#[tracing::instrument(skip_all, fields(caller = %caller.name(), request_id = %id))]
pub async fn cancel(
    app: &App,
    caller: &Caller<'_>,
    id: &RequestId,
) -> Result<Request, ServiceError> {
    let request = app.load(id).await?;
    if request.requester != caller.name() {
        return Err(ServiceError::Forbidden(format!(
            "only {} may cancel request {id}",
            request.requester
        )));
    }
    let Some(request) = app.step(&request, Command::Cancel, &caller.by()).await? else {
        return Err(already_decided(&app.load(id).await?));
    };
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    }
    .schedule_name();
    if let Err(err) = app.scheduler.cancel(&timeout).await {
        tracing::warn!(error = %err, "could not delete the time-out schedule; it will find the request cancelled");
    }
    app.tell(&request, None).await;
    Ok(request)
}
