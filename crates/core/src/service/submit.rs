//! Opening a request and deciding on it.

use std::time::Duration;

use crate::audit::Action;
use crate::config::{AutoApproval, Flow, Person, TargetKind};
use crate::events::ScheduledAction;
use crate::machine::{self, Command, TransitionError};
use crate::model::{format_duration, AutoDecider, BreakGlass, Request, RequestId, State, Terms};
use crate::names::{FlowName, TargetName};
use crate::rules::{Nudge, RuleError};

use super::hook::{ask_hook, Hooked};
use super::{App, Caller, ServiceError};

/// A new request as the caller asked for it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub flow: FlowName,
    pub target: Option<TargetName>,
    /// The AWS account asked for, for a target granted in several.
    pub account: Option<String>,
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
    let request = open(app, caller, submission).await?;
    Ok(announced(app, request).await)
}

/// The second half of a submission: the request is posted and its time-out (or review
/// deadline) scheduled, then what follows a decision taken on submission is done (the
/// escalation started, a denial told). Faults are logged and left to the sweep, so the caller
/// still gets the request it made.
async fn announced(app: &App, mut request: Request) -> Request {
    if let Err(err) = announce(app, &mut request).await {
        tracing::error!(request_id = %request.id, error = %err, "could not announce the request or schedule its time-out or review; the sweep will");
    }
    if matches!(request.state, State::Approved | State::Denied) {
        // Logged where it failed; the sweep starts an escalation left unstarted. A request a
        // hook denied is told to its requester.
        let _ = after_decision(app, &request).await;
    }
    request
}

/// A break-glass request: checked like any request and against the flow's
/// `[flows.break_glass]` (allowed, within its cap, with a reason), then approved at once by
/// `elevate:break_glass`, posted to the flow's break-glass channel and escalated. An approver
/// must review it within `review_within` ([`Decision::Review`]), or it is marked unreviewed
/// and the channel is told again. Neither the flow's hook nor its rules are asked.
#[tracing::instrument(skip_all, fields(requester = %caller.name(), flow = %submission.flow, request_id, break_glass = true))]
pub async fn submit_break_glass(
    app: &App,
    caller: &Caller<'_>,
    submission: Submission,
) -> Result<Request, ServiceError> {
    let request = open_with(app, caller, submission, true).await?;
    Ok(announced(app, request).await)
}

/// The first half of [`submit`]: checks the request against its flow and stores it.
pub(crate) async fn open(
    app: &App,
    caller: &Caller<'_>,
    submission: Submission,
) -> Result<Request, ServiceError> {
    open_with(app, caller, submission, false).await
}

async fn open_with(
    app: &App,
    caller: &Caller<'_>,
    submission: Submission,
    break_glass: bool,
) -> Result<Request, ServiceError> {
    let flow = app
        .config
        .flow(&submission.flow)
        .ok_or_else(|| ServiceError::UnknownFlow(submission.flow.clone()))?;
    let groups = app
        .groups_of(caller.person, flow.requester_groups_to_ask(caller.name()))
        .await?;
    flow.check_requester(caller.person, &groups.member_of)
        .map_err(|refusal| groups.explain(refusal, caller.person, flow))?;
    let new = flow.check_terms(
        caller.person,
        submission.target.as_deref(),
        submission.account.as_deref(),
        submission.duration,
        &submission.reason,
    )?;
    let policy = if break_glass {
        let policy = flow.check_break_glass(new.duration, &submission.reason)?;
        // One break-glass grant at a time: a second waits until the first ends or is reviewed.
        let open = app
            .store
            .list_by_requester(
                caller.name(),
                &[State::Pending, State::Approved, State::Active],
            )
            .await?;
        if let Some(used) = open.iter().find(|r| {
            r.flow == flow.name && r.break_glass.as_ref().is_some_and(|b| b.awaits_review())
        }) {
            return Err(RuleError::BreakGlassInUse {
                flow: flow.name.clone(),
                request: used.id.to_string(),
            }
            .into());
        }
        Some(policy)
    } else {
        None
    };
    in_directory(app, &new.terms).await?;
    let now = app.clock.now();
    // A break-glass request is its requester's word alone: neither rules nor the hook are asked.
    let rule = match policy {
        Some(_) => None,
        None => auto_approval(app, flow, caller.person, &new.target, new.duration, now).await,
    };
    let (mut request, event) = machine::open(RequestId::generate(now), new, &caller.principal, now);
    tracing::Span::current().record("request_id", tracing::field::display(&request.id));
    let hooked = match (policy, &flow.hook) {
        (None, Some(function)) => ask_hook(app, function, &request, caller.person).await,
        _ => Hooked::Continue { channel: None },
    };
    match (policy, &hooked) {
        (Some(policy), _) => {
            request.channel = Some(policy.channel.clone());
            request.break_glass = Some(BreakGlass {
                review_by: now
                    + chrono::Duration::from_std(policy.review_within).unwrap_or_default(),
                reviewed_by: None,
                reviewed_at: None,
                unreviewed: false,
            });
        }
        (None, Hooked::Continue { channel }) => request.channel.clone_from(channel),
        (None, _) => {}
    }
    app.store.create(&request, &event).await?;
    let duration = format_duration(request.duration);
    if policy.is_some() {
        tracing::warn!(request_id = %request.id, %duration, "break-glass request opened; approved at once, to be reviewed");
    } else {
        tracing::info!(request_id = %request.id, %duration, "request opened");
    }
    // Break-glass approves; else a hook's denial wins, then a rule of the reviewed file, then
    // the hook's approval.
    let (command, decider) = match (policy, hooked, rule) {
        (Some(_), _, _) => (
            Command::Approve {
                reason: Some(format!("break-glass: {}", request.reason)),
            },
            AutoDecider::BreakGlass,
        ),
        (None, Hooked::Deny { by, reason }, _) => (
            Command::Deny {
                reason: Some(reason),
            },
            by,
        ),
        (None, _, Some(rule)) => (
            Command::Approve {
                reason: Some(rule.describe()),
            },
            AutoDecider::Rule(rule.name.clone()),
        ),
        (None, Hooked::Approve { by, reason }, None) => (
            Command::Approve {
                reason: Some(reason),
            },
            by,
        ),
        (None, Hooked::Continue { .. }, None) => return Ok(request),
    };
    decided_on_submission(app, request, command, decider).await
}

/// Writes the decision a rule, hook or break-glass takes on a request just stored. When it
/// cannot be written the request waits for people, and the caller gets what is stored.
async fn decided_on_submission(
    app: &App,
    request: Request,
    command: Command,
    decider: AutoDecider,
) -> Result<Request, ServiceError> {
    match app.step(&request, command, &app.decider(&decider)).await {
        Ok(Some(decided)) => {
            tracing::info!(decider = %decider, state = %decided.state, "request decided on submission");
            Ok(decided)
        }
        // Stored but not decided: it waits for people like any other request.
        Ok(None) => app.load(&request.id).await,
        Err(err) => {
            tracing::error!(error = %err, decider = %decider, "could not record the decision on submission; the request waits for approvers");
            // The write may have landed before the failure was seen: answer with what is
            // stored when it can be read.
            Ok(app.load(&request.id).await.unwrap_or(request))
        }
    }
}

/// The auto-approval rule of `flow` that approves `person` getting `target` for `duration`
/// (the whole grant) now, if any. The directory is asked only for the groups of rules that do
/// not name the person; when it cannot answer, no rule approves (the request waits for people,
/// never the other way round).
pub(crate) async fn auto_approval<'f>(
    app: &App,
    flow: &'f Flow,
    person: &Person,
    target: &str,
    duration: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<&'f AutoApproval> {
    if flow.auto_approve.is_empty() {
        return None;
    }
    let groups = match app
        .groups_of(person, &flow.auto_approval_groups_to_ask(&person.name))
        .await
    {
        Ok(found) => found.member_of,
        Err(err) => {
            tracing::warn!(error = %err, "could not ask the directory for auto-approval groups; no rule approves");
            Vec::new()
        }
    };
    flow.auto_approval(&person.name, &groups, target, duration, now)
}

/// A permission set is granted to the person's Identity Store user: someone the directory
/// does not have is refused now, not when an approved grant fails.
async fn in_directory(app: &App, terms: &Terms) -> Result<(), ServiceError> {
    if !matches!(terms.target.kind, TargetKind::SsoPermissionSet { .. }) {
        return Ok(());
    }
    match app.directory.user_id(&terms.person).await? {
        Some(_) => Ok(()),
        None => Err(RuleError::NotInDirectory {
            person: terms.person.name.clone(),
            email: terms.person.email.clone(),
            target: terms.target.name.clone(),
        }
        .into()),
    }
}

/// The second half of [`submit`]: posts a stored PENDING request to its approvers (unless it
/// already was) and schedules its time-out. Returns whether it posted; `request` gets its
/// Slack message. Stops at the first fault, which the caller logs or retries: the sweep
/// announces what is left unannounced.
pub(crate) async fn announce(app: &App, request: &mut Request) -> Result<bool, ServiceError> {
    // A request approved without a person (a rule, a hook, break-glass) is posted too, saying
    // so, so the channel sees every grant.
    let auto_approved = matches!(request.state, State::Approved | State::Active)
        && request.approved_automatically();
    if request.state != State::Pending && !auto_approved {
        return Ok(false);
    }
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    };
    // A break-glass grant's time-out is its review deadline, set before the post so that a
    // failed post still leaves the deadline (the sweep posts what was not posted).
    let review_by = request
        .break_glass
        .as_ref()
        .filter(|r| r.awaits_review() && !r.unreviewed && request.state != State::Pending)
        .map(|r| r.review_by);
    if let Some(at) = review_by {
        app.scheduler.schedule(at, &timeout).await?;
    }
    let posted = request.message.is_none();
    if posted {
        let flow = app.flow_of(request)?;
        let terms = app.terms(request)?;
        let channel = flow.channel_for(request);
        let message = app
            .notifier
            .announce(request, flow, &terms.person, channel)
            .await?;
        let recorded = app.store.set_message(&request.id, &message).await;
        request.message = Some(message);
        recorded?;
    }
    if request.state != State::Pending || review_by.is_some() {
        return Ok(posted);
    }
    app.scheduler
        .schedule(request.pending_until, &timeout)
        .await?;
    // And the flow's reminders before it, if any.
    if let Some(flow) = app.config.flow(&request.flow) {
        for (at, step) in super::remind::schedules(flow, request) {
            app.scheduler.schedule(at, &step).await?;
        }
    }
    Ok(posted)
}

/// Approve or deny a request, or the extension asked for on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    ApproveExtension,
    DenyExtension,
    /// Acknowledge a break-glass grant (whatever its state now).
    Review,
}

impl Decision {
    fn is_extension(self) -> bool {
        matches!(self, Decision::ApproveExtension | Decision::DenyExtension)
    }
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
    let request = record_decision(app, decider, id, decision, reason).await?;
    // Logged where it failed; the sweep starts an escalation left unstarted.
    let _ = after_decision(app, &request).await;
    Ok(request)
}

/// The first half of [`decide`]: checks the decider and writes the decision. When the
/// flow needs several approvals, approvals by different people that meet are each written
/// (the loser reads the request again and adds theirs); the same person twice is refused.
pub(crate) async fn record_decision(
    app: &App,
    decider: &Caller<'_>,
    id: &RequestId,
    decision: Decision,
    reason: Option<String>,
) -> Result<Request, ServiceError> {
    /// Each lost race is another approver's write; a few rounds settle any real contention.
    const ROUNDS: usize = 4;
    crate::rules::check_reason(reason.as_deref().unwrap_or_default())?;
    let mut request = app.load(id).await?;
    let flow = app.flow_of(&request)?;
    let groups = app
        .groups_of(decider.person, flow.approver_groups_to_ask(decider.name()))
        .await?;
    flow.check_decider(decider.name(), &groups.member_of, &request)
        .map_err(|refusal| groups.explain(refusal, decider.person, flow))?;
    for _ in 0..ROUNDS {
        let command = match decision {
            Decision::Approve | Decision::Deny => {
                if request.state != State::Pending {
                    return Err(already_decided(&request));
                }
                if decision == Decision::Approve {
                    still_granted(app, flow, &request).await?;
                    Command::Approve {
                        reason: reason.clone(),
                    }
                } else {
                    Command::Deny {
                        reason: reason.clone(),
                    }
                }
            }
            Decision::Review => {
                if request.break_glass.is_none() {
                    return Err(TransitionError::NotBreakGlass.into());
                }
                Command::Review {
                    reason: reason.clone(),
                }
            }
            Decision::ApproveExtension | Decision::DenyExtension => {
                let Some(extension) = request
                    .extension
                    .as_ref()
                    .filter(|_| request.state == State::Active)
                else {
                    return Err(ServiceError::Conflict(format!(
                        "request {id} has no extension waiting for approval (it is {})",
                        request.state
                    )));
                };
                if decision == Decision::ApproveExtension {
                    still_granted(app, flow, &request).await?;
                    flow.check_extension(&request, extension.by)?;
                    Command::ApproveExtension {
                        reason: reason.clone(),
                    }
                } else {
                    Command::DenyExtension {
                        reason: reason.clone(),
                    }
                }
            }
        };
        let step = machine::apply(&request, command, &decider.by(), app.clock.now())?;
        if let Some(written) = super::grant::write_extension_aware(app, &request, &step).await? {
            tracing::info!(state = %written.state, action = %step.event.action, "request decided");
            return Ok(written);
        }
        let stored = app.load(id).await?;
        // The same extension (asked at the same moment), or the same pending request.
        let asked_at = |r: &Request| r.extension.as_ref().map(|e| e.asked_at);
        // A review is tried again on the request as it is now; the machine refuses a second.
        let same_question = if decision == Decision::Review {
            true
        } else if decision.is_extension() {
            stored.state == State::Active
                && asked_at(&stored).is_some()
                && asked_at(&stored) == asked_at(&request)
        } else {
            stored.state == State::Pending
        };
        let approving = matches!(decision, Decision::Approve | Decision::ApproveExtension);
        if approving && same_question && stored.approved_by(decider.name()) {
            return Err(TransitionError::AlreadyApproved {
                person: decider.name().to_owned(),
                required: stored.approvals_required.max(1),
            }
            .into());
        }
        if !same_question {
            return Err(if decision.is_extension() {
                ServiceError::Conflict(format!(
                    "the extension of request {id} was decided meanwhile"
                ))
            } else {
                already_decided(&stored)
            });
        }
        tracing::info!("another approval was written first; adding this one to it");
        request = stored;
    }
    Err(ServiceError::Conflict(format!(
        "request {id} kept changing while deciding; try again"
    )))
}

/// What follows a decision: an approval starts its escalation, the time-out schedule goes,
/// the Slack message shows the decision and a denied requester is told. It goes by the
/// request's state now, so a request that moved on in the meantime is only shown as it is
/// (and starting an escalation twice escalates once). Every step is tried; the first fault
/// worth retrying is returned (the escalation not started, Slack unavailable), after logging.
pub(crate) async fn after_decision(app: &App, request: &Request) -> Result<(), ServiceError> {
    if request.state == State::Active {
        return after_extension_decision(app, request).await;
    }
    let mut fault = None;
    if request.state == State::Approved {
        if let Err(err) = app.escalation.start(&request.id).await {
            tracing::error!(request_id = %request.id, error = %err, "could not start the escalation; it is retried (the sweep too)");
            fault = Some(err.into());
        }
    }
    // A break-glass grant's time-out schedule is its review deadline: kept until reviewed.
    let awaits_review = request
        .break_glass
        .as_ref()
        .is_some_and(|r| r.awaits_review());
    if request.state != State::Pending && !awaits_review {
        cancel_time_outs(app, request).await;
    }
    let denied = (request.state == State::Denied).then(|| {
        let by = request.decided_by.as_deref().unwrap_or("an approver");
        let why = request
            .decision_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!("{by} denied your {} request{why}", request.flow)
    });
    if let Err(err) = app.tell_checked(request, denied.as_deref()).await {
        fault = fault.or(Some(err.into()));
    }
    fault.map_or(Ok(()), Err)
}

/// What follows a decision on an extension: the message shows it (the approvals so far, or
/// the new expiry), and the requester hears of the new expiry or of the denial.
async fn after_extension_decision(app: &App, request: &Request) -> Result<(), ServiceError> {
    if request.extension.is_some() {
        return Ok(app.tell_checked(request, None).await?);
    }
    let last = app.store.audit_events(&request.id).await?;
    match last.iter().max_by_key(|event| event.seq) {
        Some(event) if event.action == Action::Extend => {
            super::extend::extended_told(app, request).await;
        }
        Some(event) if event.action == Action::DenyExtension => {
            let why = event
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let text = format!(
                "{} denied more time on your {} access{why}. It still ends as before.",
                event.actor, request.flow
            );
            app.tell(request, Some(&text)).await;
        }
        _ => app.tell(request, None).await,
    }
    Ok(())
}

/// Refuses to approve terms that elevate.toml no longer gives: the requester offboarded or no
/// longer a requester of the flow (by name or, asked now, by group), their IAM user or Slack
/// id changed, the target removed or pointed elsewhere. The request was made under other
/// rules; it is denied or asked again.
pub(crate) async fn still_granted(
    app: &App,
    flow: &Flow,
    request: &Request,
) -> Result<(), ServiceError> {
    let Some(terms) = &request.terms else {
        return Ok(());
    };
    let changed = |what: String| {
        Err(ServiceError::Conflict(format!(
            "request {} cannot be approved: {what} since it was made; deny it and ask again",
            request.id
        )))
    };
    let person = match app.config.person(&request.requester) {
        None => return changed(format!("{} left elevate.toml", request.requester)),
        Some(now) if *now != terms.person => {
            return changed(format!("{}'s identities changed", request.requester))
        }
        Some(now) => now,
    };
    let groups = app
        .groups_of(person, flow.requester_groups_to_ask(&person.name))
        .await?;
    if flow.check_requester(person, &groups.member_of).is_err() {
        return changed(format!(
            "{} may no longer request `{}`",
            request.requester, flow.name
        ));
    }
    match flow.targets.iter().find(|t| t.name == terms.target.name) {
        Some(now) if now.still_gives(&terms.target) => Ok(()),
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

/// Deletes the schedules of an answered request: its time-out and, on a flow with
/// reminders, theirs. One left behind finds the request answered and does nothing.
async fn cancel_time_outs(app: &App, request: &Request) {
    let reminders = app
        .config
        .flow(&request.flow)
        .is_some_and(|flow| flow.reminders.is_some());
    let steps: &[Nudge] = if reminders {
        &[Nudge::TimeOut, Nudge::Remind, Nudge::AskBackup]
    } else {
        &[Nudge::TimeOut]
    };
    for step in steps {
        let name = super::remind::schedule_of(*step, &request.id).schedule_name();
        if let Err(err) = app.scheduler.cancel(&name).await {
            tracing::warn!(request_id = %request.id, schedule = %name, error = %err, "could not delete the schedule; it will find the request answered");
        }
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
    cancel_time_outs(app, &request).await;
    app.tell(&request, None).await;
    Ok(request)
}
