//! A PENDING request nobody answers is brought up again before it times out
//! (`[flows.reminders]`): its approvers are reminded, then its backup approvers asked, who may
//! decide it from then on. Each step has a one-time schedule of its own, set when the request
//! is announced; the sweep takes a step whose schedule was lost.

use chrono::{DateTime, Utc};

use super::{App, ServiceError};
use crate::config::{Flow, ReminderPolicy};
use crate::events::ScheduledAction;
use crate::machine::Command;
use crate::model::{format_duration, MessageRef, Request, RequestId, State};
use crate::names::PersonName;
use crate::rules::Nudge;

/// How much earlier than its step a delivery may come and still wait for it (an earlier one
/// is of a flow whose reminders moved later since: the sweep takes the step when it is due).
const EARLY: chrono::Duration = chrono::Duration::seconds(10);

/// The schedules of the steps still to come on PENDING `request` before its time-out.
pub(crate) fn schedules(flow: &Flow, request: &Request) -> Vec<(DateTime<Utc>, ScheduledAction)> {
    flow.nudges_ahead(request)
        .into_iter()
        .map(|(nudge, at)| (at, schedule_of(nudge, &request.id)))
        .collect()
}

/// The one-time schedule that takes `nudge` on request `id`.
pub(crate) fn schedule_of(nudge: Nudge, id: &RequestId) -> ScheduledAction {
    let request_id = id.clone();
    match nudge {
        Nudge::Remind => ScheduledAction::Remind { request_id },
        Nudge::AskBackup => ScheduledAction::AskBackup { request_id },
        Nudge::TimeOut => ScheduledAction::Timeout { request_id },
    }
}

/// A step's schedule fired (or the sweep found it due): takes the step due on the request
/// now, once. `Ok(None)` when none is, or the request was answered meanwhile.
pub(crate) async fn nudge(app: &App, id: &RequestId) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if request.state != State::Pending {
        return Ok(None);
    }
    let Some(flow) = app.config.flow(&request.flow) else {
        return Ok(None);
    };
    let Some(policy) = &flow.reminders else {
        return Ok(None);
    };
    let (next, at) = flow.next_nudge(&request);
    if next == Nudge::TimeOut || at - app.clock.now() > EARLY {
        return Ok(None);
    }
    app.clock.sleep_until(at).await;
    // It may have been answered while this waited.
    let request = app.load(id).await?;
    if request.state != State::Pending {
        return Ok(None);
    }
    let step = flow.nudge_due(&request, app.clock.now());
    match (step, step.and_then(|step| flow.nudge_at(&request, step))) {
        (Some(Nudge::Remind), Some(due)) => remind(app, flow, request, due).await,
        (Some(Nudge::AskBackup), Some(due)) => ask_backup(app, flow, policy, request, due).await,
        // The time-out's own schedule ends it.
        _ => Ok(None),
    }
}

/// Reminds the approvers in the request's thread, naming those listed by name, then records
/// it (audit `remind`). Posted first: a failure is retried, and may remind twice, never not.
async fn remind(
    app: &App,
    flow: &Flow,
    request: Request,
    due: DateTime<Utc>,
) -> Result<Option<Request>, ServiceError> {
    let ping = slack_ids(app, &flow.approvers.people, &request);
    let text = format!(
        "{} has waited {} for an answer; it times out at {}.",
        about(&request),
        waited(&request, app.clock.now()),
        request.pending_until.format("%Y-%m-%d %H:%M UTC"),
    );
    app.remind_in_thread(&request, &text, &ping).await?;
    let recorded = step_pending(app, request, || Command::Remind { due }).await?;
    if let Some(reminded) = &recorded {
        tracing::info!(request_id = %reminded.id, "approvers reminded");
        refresh(app, &reminded.id).await;
    }
    Ok(recorded)
}

/// Asks the backup approvers: posts the request again in the backup channel (with its
/// buttons), or else in its own thread, pinging them; then records it (audit `ask_backup`),
/// from when they may decide it.
async fn ask_backup(
    app: &App,
    flow: &Flow,
    policy: &ReminderPolicy,
    request: Request,
    due: DateTime<Utc>,
) -> Result<Option<Request>, ServiceError> {
    let ping = slack_ids(app, &policy.backup_people, &request);
    let names = policy
        .backup_people
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let waited = waited(&request, app.clock.now());
    let id = request.id.clone();
    let posted: Option<MessageRef> = match &policy.backup_channel {
        Some(channel) => {
            let terms = app.terms(&request)?;
            Some(
                app.notifier
                    .announce(&request, flow, &terms.person, channel)
                    .await?,
            )
        }
        None => None,
    };
    let text = format!(
        "{} has had no answer for {waited}: backup approvers {names}, you may approve or deny it now.",
        about(&request),
    );
    let pinged = match &posted {
        Some(message) => {
            app.notifier
                .remind(&message.channel, Some(&message.ts), &text, &ping)
                .await
        }
        None => app.remind_in_thread(&request, &text, &ping).await,
    };
    match (pinged, &posted) {
        (Ok(()), _) => {}
        // Without a copy of its own, the ping is how the backups hear of it: retried.
        (Err(err), None) => return Err(err.into()),
        // The copy is posted and is what they act on: recorded all the same, not posted twice.
        (Err(err), Some(_)) => {
            tracing::warn!(error = %err, "could not ping the backup approvers under the copy of the request");
        }
    }
    let reason = match &posted {
        Some(message) => format!(
            "no answer for {waited}: {names} may decide too; posted in {}",
            message.channel
        ),
        None => format!("no answer for {waited}: {names} may decide too"),
    };
    let recorded = step_pending(app, request, || Command::AskBackup {
        due,
        message: posted.clone(),
        reason: reason.clone(),
    })
    .await?;
    match (&recorded, &posted) {
        (Some(asked), _) => {
            tracing::info!(request_id = %asked.id, "backup approvers asked");
            refresh(app, &asked.id).await;
        }
        (None, Some(message)) => {
            let now = app.load(&id).await?;
            if now.state == State::Pending {
                // Another delivery asked them first, with a copy of its own.
                tracing::warn!(request_id = %id, channel = %message.channel, ts = %message.ts, "the backups were asked twice; this copy of the request is not kept up to date");
            } else {
                // Answered meanwhile: the copy just posted shows the answer, not its buttons.
                let terms = app.terms(&now)?;
                if let Err(err) = app
                    .notifier
                    .update(&now, flow, &terms.person, message)
                    .await
                {
                    tracing::warn!(error = %err, "could not show the answer in the backup channel's copy");
                }
            }
        }
        (None, None) => {}
    }
    Ok(recorded)
}

/// Writes `command` on `request` while it is PENDING, reading it again when another step
/// (an approval of several) was written first. `None` once it is PENDING no more, or the
/// step was taken by someone else.
async fn step_pending(
    app: &App,
    mut request: Request,
    command: impl Fn() -> Command,
) -> Result<Option<Request>, ServiceError> {
    for _ in 0..3 {
        if request.state != State::Pending {
            return Ok(None);
        }
        match app.step(&request, command(), &app.system("revoke")).await {
            Ok(Some(done)) => return Ok(Some(done)),
            Ok(None) => request = app.load(&request.id).await?,
            Err(ServiceError::Transition(err)) => {
                tracing::info!(error = %err, "already taken; nothing to record");
                return Ok(None);
            }
            Err(err) => return Err(err),
        }
    }
    Err(ServiceError::Conflict(format!(
        "request {} kept changing while reminding its approvers; the sweep tries again",
        request.id
    )))
}

/// The Slack ids of `people` (other than the requester and those who approved already, the
/// request or the extension asked), to mention them.
pub(crate) fn slack_ids(app: &App, people: &[PersonName], request: &Request) -> Vec<String> {
    people
        .iter()
        .filter(|p| **p != request.requester)
        .filter(|p| !request.approved_by(p))
        .filter_map(|p| app.config.person(p))
        .map(|p| p.slack_id.clone())
        .collect()
}

/// Shows the request as it is now (a decision written since the step is not undone).
async fn refresh(app: &App, id: &RequestId) {
    match app.load(id).await {
        Ok(now) => {
            app.refresh_message(&now).await.ok();
        }
        Err(err) => tracing::warn!(error = %err, "could not read the request to show it"),
    }
}

/// "Request <id> of <requester> (<flow>, <duration>)".
pub(crate) fn about(request: &Request) -> String {
    format!(
        "Request {} of {} ({}, {})",
        request.id,
        request.requester,
        request.flow,
        format_duration(request.duration)
    )
}

fn waited(request: &Request, now: DateTime<Utc>) -> String {
    format_duration((now - request.created_at).to_std().unwrap_or_default())
}
