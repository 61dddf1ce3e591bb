//! Steps taken from Slack: a request from the `/elevate` form, a click on Approve or Deny, a
//! click on "End access now".
//!
//! Slack wants an answer within 3 seconds. So the step itself (the request stored, the
//! decision written) is taken before answering, and refusals are known by then; what may be
//! slow (Slack messages, starting the escalation, removing access) is a [`FollowUp`] that
//! runs after the answer. When the follow-up cannot be handed over, it runs at once instead:
//! late for Slack, but nothing is lost.

use crate::events::FollowUp;
use crate::model::{format_duration, Request, RequestId, State};

use super::submit::{after_decision, announce, open, record_decision};
use super::{revoke, App, Caller, Decision, ServiceError, Submission};

/// What came of an action taken in Slack.
#[derive(Debug)]
pub enum SlackOutcome {
    /// Taken; its follow-up is on its way.
    Decided(Box<Request>),
    /// Refused; the person is told why in a message only they see. Nothing changed.
    Refused(ServiceError),
}

/// The person of elevate.toml behind Slack user `slack_user_id` of workspace `team_id`, as
/// the caller of what they do (principal `slack:<team>/<user>`).
pub fn slack_caller<'a>(
    app: &'a App,
    team_id: &str,
    slack_user_id: &str,
) -> Result<Caller<'a>, ServiceError> {
    match app.config.person_by_slack_id(slack_user_id) {
        Some(person) => Ok(Caller::new(
            person,
            format!("slack:{team_id}/{slack_user_id}"),
        )),
        None => Err(ServiceError::Forbidden(format!(
            "Slack user {slack_user_id} is not a person in elevate.toml, so elevate cannot take this from them"
        ))),
    }
}

/// A request from the `/elevate` form of Slack user `slack_user_id`: checked and stored like
/// one from the API, so a refusal is returned (to be shown on the form) and stores nothing.
/// Announcing it and scheduling its time-out follow.
pub async fn submit_from_slack(
    app: &App,
    team_id: &str,
    slack_user_id: &str,
    submission: Submission,
) -> Result<Request, ServiceError> {
    let caller = slack_caller(app, team_id, slack_user_id)?;
    if let Some(same) = just_submitted(app, &caller, &submission).await? {
        tracing::info!(request_id = %same.id, "the same form submitted again; answering with the request it made");
        return Ok(same);
    }
    let request = open(app, &caller, submission).await?;
    later(
        app,
        FollowUp::Opened {
            request_id: request.id.clone(),
        },
    )
    .await;
    Ok(request)
}

/// A click on Approve or Deny in Slack, by `slack_user_id` of workspace `team_id` (from the
/// signed payload). The decision is written before this returns; refusals (unknown Slack
/// user, not an approver, self-approval, already decided) change nothing and are told to the
/// clicker privately; faults are returned as `Err`.
pub async fn decide_from_slack(
    app: &App,
    team_id: &str,
    slack_user_id: &str,
    channel: &str,
    id: &RequestId,
    decision: Decision,
) -> Result<SlackOutcome, ServiceError> {
    let result = match slack_caller(app, team_id, slack_user_id) {
        Ok(clicker) => record_decision(app, &clicker, id, decision, None).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(request) => {
            later(
                app,
                FollowUp::Decided {
                    request_id: request.id.clone(),
                },
            )
            .await;
            Ok(SlackOutcome::Decided(Box::new(request)))
        }
        Err(err) if err.is_refusal() => {
            later(app, refused(channel, slack_user_id, &err)).await;
            Ok(SlackOutcome::Refused(err))
        }
        Err(err) => Err(err),
    }
}

/// A click on "End access now": handed to the function that may remove access. Unlike the
/// other follow-ups it cannot run here, so a failure to hand it over is returned (Slack then
/// shows the click failed, and the person can click again).
pub async fn end_access_from_slack(
    app: &App,
    team_id: &str,
    slack_user_id: &str,
    channel: &str,
    id: &RequestId,
) -> Result<(), ServiceError> {
    let work = FollowUp::EndAccess {
        request_id: id.clone(),
        team_id: team_id.to_owned(),
        slack_user_id: slack_user_id.to_owned(),
        channel: channel.to_owned(),
    };
    app.follow_ups.defer(&work).await?;
    Ok(())
}

/// Runs a follow-up. Safe to run again: it reads the request as it is now. `Err` only for
/// faults worth retrying.
#[tracing::instrument(skip_all, fields(request_id = ?work.request_id()))]
pub async fn follow_up(app: &App, work: &FollowUp) -> Result<(), ServiceError> {
    match work {
        FollowUp::Opened { request_id } => {
            let mut request = app.load(request_id).await?;
            if announce(app, &mut request).await? && request.state == State::Pending {
                let text = format!(
                    "Your {} request for {} ({}) is waiting for an approver. Request {}",
                    request.flow,
                    request.target,
                    format_duration(request.duration),
                    request.id
                );
                // Best effort: the request is announced, which is what matters.
                let _ = app.tell_requester(&request, &text).await;
            }
            if matches!(request.state, State::Approved | State::Denied) {
                // Decided on submission (a rule, a hook, break-glass): start its escalation
                // (once, however often this runs), or tell the requester why it was denied.
                after_decision(app, &request).await?;
            }
            Ok(())
        }
        FollowUp::Decided { request_id } => {
            let request = app.load(request_id).await?;
            after_decision(app, &request).await
        }
        FollowUp::Refused {
            channel,
            slack_user_id,
            text,
        } => {
            if let Err(err) = app
                .notifier
                .tell_privately(channel, slack_user_id, text)
                .await
            {
                tracing::warn!(error = %err, "could not tell the person why Slack's action was refused");
            }
            Ok(())
        }
        FollowUp::EndAccess {
            request_id,
            team_id,
            slack_user_id,
            channel,
        } => {
            let result = match slack_caller(app, team_id, slack_user_id) {
                Ok(caller) => match revoke(app, &caller, request_id, None).await {
                    Ok(_) => Ok(()),
                    // Delivered again after it ended the grant (a second click, a retry):
                    // the person already has their answer.
                    Err(err) if err.is_refusal() && ended_by(app, request_id, &caller).await => {
                        tracing::info!(request_id = %request_id, "End access now again after it ended; nothing to say");
                        Ok(())
                    }
                    Err(err) => Err(err),
                },
                Err(err) => Err(err),
            };
            match result {
                Err(err) if err.is_refusal() => {
                    tracing::info!(code = err.code(), error = %err, "End access now refused");
                    if let Err(notify) = app
                        .notifier
                        .tell_privately(channel, slack_user_id, &format!("Not done: {err}"))
                        .await
                    {
                        tracing::warn!(error = %notify, "could not tell the person why their click was refused");
                    }
                    Ok(())
                }
                Err(err) => {
                    // Retried by Lambda; meanwhile the person knows their click was not lost.
                    let text = format!(
                        "elevate could not end your access yet ({err}); it tries again. `elevate revoke {request_id}` works too."
                    );
                    if let Err(notify) = app
                        .notifier
                        .tell_privately(channel, slack_user_id, &text)
                        .await
                    {
                        tracing::warn!(error = %notify, "could not tell the person their End access now is retried");
                    }
                    Err(err)
                }
                Ok(()) => Ok(()),
            }
        }
    }
}

/// Whether `caller` revoked request `id` (it is REVOKED, by them).
async fn ended_by(app: &App, id: &RequestId, caller: &Caller<'_>) -> bool {
    matches!(
        app.store.get(id).await,
        Ok(Some(request)) if request.state == State::Revoked
            && request.ended_by.as_deref() == Some(caller.name())
    )
}

/// How long a form submitted again counts as the same submission.
const RESUBMIT_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// The request the caller made from these same answers in the last few minutes.
/// Slack shows a form whose answer came late as failed and lets it be submitted again, so a
/// second identical submission returns the first request instead of opening another.
async fn just_submitted(
    app: &App,
    caller: &Caller<'_>,
    submission: &Submission,
) -> Result<Option<Request>, ServiceError> {
    let since = app.clock.now() - RESUBMIT_WINDOW;
    // An auto-approved request is APPROVED (or already ACTIVE) by the time the form is sent
    // again.
    let pending = app
        .store
        .list_by_requester(
            caller.name(),
            &[State::Pending, State::Approved, State::Active],
        )
        .await?;
    Ok(pending.into_iter().find(|request| {
        request.created_at >= since
            && request.flow == submission.flow
            && submission
                .target
                .as_ref()
                .is_none_or(|t| request.target == *t)
            && submission
                .account
                .as_deref()
                .is_none_or(|a| request.account() == Some(a))
            && request.duration == submission.duration
            && request.reason == submission.reason.trim()
    }))
}

fn refused(channel: &str, slack_user_id: &str, err: &ServiceError) -> FollowUp {
    FollowUp::Refused {
        channel: channel.to_owned(),
        slack_user_id: slack_user_id.to_owned(),
        text: format!("Not done: {err}"),
    }
}

/// Hands `work` over to run after the answer; runs it now when that fails.
async fn later(app: &App, work: FollowUp) {
    let Err(err) = app.follow_ups.defer(&work).await else {
        return;
    };
    tracing::warn!(error = %err, "could not hand the follow-up over; running it now");
    if let Err(err) = follow_up(app, &work).await {
        tracing::error!(error = %err, "follow-up failed; the sweep will pick up what it can");
    }
}
