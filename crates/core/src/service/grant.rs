//! Granting access and taking it away again.

use crate::audit::Action;
use crate::config::TargetKind;
use crate::events::ScheduledAction;
use crate::machine::{self, Command};
use crate::model::{format_duration, By, Request, RequestId, SessionsEnded, State, Terms};
use crate::ports::{Membership, StoreError};

use super::{App, Caller, ServiceError};

/// APPROVED → ACTIVE: grants the access its terms describe, reads it back, schedules its
/// revocation, records it. Any fault is `Err` so the platform retries; every step is
/// idempotent, and a request that is no longer APPROVED (a second delivery) is left alone.
/// When the grant ended while this delivery was adding the access (failed and swept, or
/// revoked), the write loses and the access just added is taken away again.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn escalate(app: &App, id: &RequestId) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if matches!(request.state, State::Expired | State::Revoked) {
        // A retry of a delivery whose undo failed: the access it added may still be there.
        let terms = app.terms(&request)?.into_owned();
        if app.strategy.is_member(&terms.target, &terms.person).await? == Membership::Present {
            undo_lost_escalation(app, &request, &terms).await?;
        }
        return Ok(None);
    }
    if request.state != State::Approved {
        tracing::info!(state = %request.state, "not APPROVED; nothing to escalate");
        return Ok(None);
    }
    let terms = app.terms(&request)?.into_owned();
    app.strategy
        .escalate(&terms.target, &terms.person, &request)
        .await?;
    read_back(app, &terms, Membership::Absent, "escalation").await?;

    let transition = machine::apply(
        &request,
        Command::Activate,
        &app.system("escalate"),
        app.clock.now(),
    )?;
    let expires_at = transition
        .request
        .expires_at
        .unwrap_or(transition.request.created_at);
    let lead = chrono::Duration::from_std(app.settings.revoke_lead).unwrap_or_default();
    // The revocation is in place before the grant is recorded, so no ACTIVE grant lacks one.
    let expire = ScheduledAction::Expire {
        request_id: request.id.clone(),
    };
    app.scheduler.schedule(expires_at - lead, &expire).await?;

    let Some(activated) = app.write(&transition).await? else {
        undo_lost_escalation(app, &request, &terms).await?;
        return Ok(None);
    };
    tracing::info!(%expires_at, "access granted");
    let text = format!(
        "Your {} access on {} is active until {} UTC.",
        activated.flow,
        activated.target,
        expires_at.format("%Y-%m-%d %H:%M:%S")
    );
    app.tell(&activated, Some(&text)).await;
    Ok(Some(activated))
}

/// The escalation added the access but lost the write that records it. When another delivery
/// activated the request, the access is its; when the request still waits for escalation, it
/// will be. Otherwise the grant ended meanwhile and nothing may keep the access it no longer
/// has: it is removed again (unless another grant covers it) and read back.
async fn undo_lost_escalation(
    app: &App,
    request: &Request,
    terms: &Terms,
) -> Result<(), ServiceError> {
    let stored = app.load(&request.id).await?;
    if matches!(stored.state, State::Active | State::Approved) {
        tracing::info!(state = %stored.state, "another delivery moved the request first");
        return Ok(());
    }
    if let Some(other) = covering_grant(app, &stored, terms, app.clock.now()).await? {
        tracing::info!(state = %stored.state, covering = %other.id, "the grant ended meanwhile; another grant keeps the access");
        return Ok(());
    }
    app.strategy
        .deescalate(&terms.target, &terms.person, &stored)
        .await?;
    read_back(app, terms, Membership::Present, "undoing a late escalation").await?;
    cancel_expiry(app, &stored.id).await;
    tracing::warn!(
        repair = "late_escalation_undone",
        state = %stored.state,
        person = %terms.person.name,
        target = %terms.target.name,
        "the grant ended while its escalation ran; the access it added was removed"
    );
    Ok(())
}

/// Deletes the revocation schedule of a grant that ended otherwise. Best effort: a schedule
/// left behind finds the grant ended and does nothing.
async fn cancel_expiry(app: &App, id: &RequestId) {
    let expire = ScheduledAction::Expire {
        request_id: id.clone(),
    }
    .schedule_name();
    if let Err(err) = app.scheduler.cancel(&expire).await {
        tracing::warn!(error = %err, "could not delete the revocation schedule; it will find the grant ended");
    }
}

/// How long a read-back waits, between tries, for a membership change to show: IAM is
/// eventually consistent, and a retry by the platform would come a minute later.
const READ_BACK_WAITS_MS: [i64; 5] = [50, 100, 200, 400, 800];

/// Reads back that the change `after` took: `Unverified` when the person's membership of the
/// target still reads `wrong` after the short waits a change may take to show in reads.
pub(crate) async fn read_back(
    app: &App,
    terms: &Terms,
    wrong: Membership,
    after: &str,
) -> Result<(), ServiceError> {
    for wait_ms in std::iter::once(0).chain(READ_BACK_WAITS_MS) {
        if wait_ms > 0 {
            let at = app.clock.now() + chrono::Duration::milliseconds(wait_ms);
            app.clock.sleep_until(at).await;
        }
        if app.strategy.is_member(&terms.target, &terms.person).await? != wrong {
            return Ok(());
        }
    }
    tracing::warn!(target = %terms.target.name, person = %terms.person.name, "membership read back unchanged");
    let is = if wrong == Membership::Present {
        "is still"
    } else {
        "is not"
    };
    Err(ServiceError::Unverified(format!(
        "{} {is} on {} after {after}",
        terms.person.name, terms.target.name
    )))
}

/// Writes a step of a grant, which may be a step of its extension. The last approval of an
/// extension moves the expiry in the one write of the step; the revocation schedule stays
/// where it is, earlier than the new expiry, and the revoke function it wakes arms it again
/// for the new expiry (the functions that approve never touch a grant's schedule). No step of
/// an extension is taken in the last `revoke_lead` before expiry, when the revocation may
/// already be under way.
pub(crate) async fn write_extension_aware(
    app: &App,
    before: &Request,
    step: &machine::Transition,
) -> Result<Option<Request>, ServiceError> {
    let extension_step = matches!(
        step.event.action,
        Action::AskExtension | Action::ApproveExtension | Action::Extend | Action::DenyExtension
    );
    if extension_step {
        let lead = chrono::Duration::from_std(app.settings.revoke_lead).unwrap_or_default();
        if let Some(old) = before
            .expires_at
            .filter(|old| *old - lead <= app.clock.now())
        {
            return Err(ServiceError::Conflict(format!(
                "request {} expires at {} and its access is being removed; request access again",
                before.id,
                old.format("%Y-%m-%d %H:%M:%S UTC")
            )));
        }
    }
    app.write(step).await
}

/// The grant was extended after its revocation was scheduled: the schedule that fired arms
/// the revocation again for the new expiry.
async fn rearm_expiry(app: &App, request: &Request) -> Result<Option<Request>, ServiceError> {
    let Some(at) = request.expires_at else {
        return Ok(None);
    };
    let lead = chrono::Duration::from_std(app.settings.revoke_lead).unwrap_or_default();
    let expire = ScheduledAction::Expire {
        request_id: request.id.clone(),
    };
    app.scheduler.schedule(at - lead, &expire).await?;
    // The schedule that fired is deleted by the scheduler once it has delivered this: when
    // that deletion lands after the update above, the schedule is gone; set it again.
    if app.scheduler.get(&expire.schedule_name()).await?.is_none() {
        tracing::warn!(request_id = %request.id, "the revocation schedule was deleted after it was moved; scheduling it again");
        app.scheduler.schedule(at - lead, &expire).await?;
    }
    tracing::info!(request_id = %request.id, expires_at = %at, "extended: the revocation is scheduled for the new expiry");
    Ok(None)
}

/// A schedule fired: `expire` ends an ACTIVE grant at its expiry (waiting out the lead the
/// schedule fired with), `timeout` ends an unanswered PENDING request, `remind` and
/// `ask_backup` bring one up again. Late or duplicate
/// deliveries find the request already moved on and do nothing.
pub async fn end_by_schedule(
    app: &App,
    action: &ScheduledAction,
) -> Result<Option<Request>, ServiceError> {
    match action {
        ScheduledAction::Expire { request_id } => {
            let request = app.load(request_id).await?;
            if request.state != State::Active {
                tracing::info!(request_id = %request.id, state = %request.state, "not ACTIVE; nothing to expire");
                return Ok(None);
            }
            let lead = chrono::Duration::from_std(app.settings.revoke_lead).unwrap_or_default();
            if let Some(at) = request.expires_at {
                // Extended after this was scheduled: the revocation moves to the new expiry.
                if at - app.clock.now() > lead + chrono::Duration::seconds(10) {
                    return rearm_expiry(app, &request).await;
                }
                app.clock.sleep_until(at).await;
            }
            // An extension may have moved the expiry while this waited: read it again.
            let request = app.load(request_id).await?;
            if request.state != State::Active {
                tracing::info!(request_id = %request.id, state = %request.state, "ended meanwhile; nothing to expire");
                return Ok(None);
            }
            if request.covers(app.clock.now()) {
                return rearm_expiry(app, &request).await;
            }
            end_grant(app, request, Command::Expire, &app.system("revoke")).await
        }
        ScheduledAction::Timeout { request_id } => time_out(app, request_id).await,
        ScheduledAction::Remind { request_id } | ScheduledAction::AskBackup { request_id } => {
            super::remind::nudge(app, request_id).await
        }
        ScheduledAction::Sweep => Err(ServiceError::BadRequest(
            "a sweep is not a schedule of one request".into(),
        )),
    }
}

/// Early revocation by the requester or an approver of the flow.
#[tracing::instrument(skip_all, fields(caller = %caller.name(), request_id = %id))]
pub async fn revoke(
    app: &App,
    caller: &Caller<'_>,
    id: &RequestId,
    reason: Option<String>,
) -> Result<Request, ServiceError> {
    crate::rules::check_reason(reason.as_deref().unwrap_or_default())?;
    let request = app.load(id).await?;
    if !app.may_view(caller, &request).await? {
        return Err(ServiceError::Forbidden(format!(
            "only the requester or an approver of `{}` may revoke request {id}",
            request.flow
        )));
    }
    // A request that cannot be revoked is refused (409) by end_grant's first step, before
    // any access is touched.
    let ended = end_grant(app, request, Command::Revoke { reason }, &caller.by()).await?;
    let request = match ended {
        Some(request) => request,
        None => app.load(id).await?,
    };
    cancel_expiry(app, &request.id).await;
    Ok(request)
}

/// How long after a removal role sessions are still denied: IAM applies a removed group
/// membership within seconds, so a session assumed in that window is ended too.
pub const SESSION_END_MARGIN: chrono::Duration = chrono::Duration::seconds(10);

/// Ends a grant (ACTIVE or FAILED): removes the access unless another grant of the same person
/// on the same target still covers it, reads back that it is gone, and only then records the
/// end. Any fault leaves the grant as it was and is returned, so the caller retries: a grant is
/// never recorded as ended while its access is still there. When the target names the roles
/// its group may assume, the person's sessions of them issued before the end are ended too,
/// and read back, before the end is recorded.
///
/// Keeping the access for another grant is recorded only while that grant is unchanged (one
/// atomic write): when two overlapping grants end at once, one of them finds the other moved,
/// looks again, and removes the access.
pub(crate) async fn end_grant(
    app: &App,
    mut request: Request,
    command: Command,
    by: &By,
) -> Result<Option<Request>, ServiceError> {
    /// Each lost race means the covering grant changed; a few rounds settle any real overlap.
    const ROUNDS: usize = 4;
    let terms = app.terms(&request)?.into_owned();
    for _ in 0..ROUNDS {
        let now = app.clock.now();
        let mut transition = machine::apply(&request, command.clone(), by, now)?;
        let covering = covering_grant(app, &request, &terms, now).await?;
        transition.request.kept_access_for = covering.as_ref().map(|other| other.id.clone());
        if let Some(other) = &covering {
            tracing::info!(request_id = %request.id, covering = %other.id, "another grant still covers this access; keeping it");
        } else {
            app.strategy
                .deescalate(&terms.target, &terms.person, &request)
                .await?;
            read_back(app, &terms, Membership::Present, "removal").await?;
            let before = app.clock.now() + SESSION_END_MARGIN;
            if let Some(sessions) = app
                .strategy
                .end_sessions(&terms.target, &terms.person, before)
                .await?
            {
                transition = transition.with_sessions_ended(sessions);
            }
        }

        let written = match &covering {
            Some(other) => app.store.transition_while(&transition, other).await,
            None => app.store.transition(&transition).await,
        };
        match written {
            Ok(()) => {
                if covering.is_none() {
                    restore_for_late_grant(app, &transition.request, &terms).await;
                }
                return Ok(Some(ended(app, transition.request).await));
            }
            Err(StoreError::Conflict(why)) => {
                let stored = app.load(&request.id).await?;
                if stored.state != request.state {
                    tracing::info!(request_id = %request.id, "the grant was ended concurrently");
                    return Ok(None);
                }
                // Still running but moved on (an extension asked, approved or denied): end
                // it as it is now. The access removed above stays removed; ending it again
                // is a no-op.
                if stored.audit_seq != request.audit_seq {
                    tracing::info!(request_id = %request.id, %why, "the grant changed while ending; ending it as it is now");
                    request = stored;
                    continue;
                }
                tracing::info!(request_id = %request.id, %why, "the covering grant changed; looking again");
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ServiceError::Conflict(format!(
        "request {}: the grants covering its access kept changing; try again",
        request.id
    )))
}

/// Closes the race the other way round: another grant of the same access that was approved
/// after the covering check above may have had its access added just before the removal. Such
/// a grant, seen now, gets its access back. (What this misses, reconciliation in the sweep
/// repairs.)
async fn restore_for_late_grant(app: &App, ended: &Request, terms: &Terms) {
    let now = app.clock.now();
    let other = match covering_grant(app, ended, terms, now).await {
        Ok(Some(other)) => other,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "could not look for grants approved meanwhile; reconciliation will");
            return;
        }
    };
    match app
        .strategy
        .escalate(&terms.target, &terms.person, &other)
        .await
    {
        Ok(()) => tracing::warn!(
            repair = "access_restored",
            request_id = %other.id,
            ended = %ended.id,
            "a grant approved while another ended keeps its access"
        ),
        Err(err) => {
            tracing::error!(error = %err, request_id = %other.id, "could not restore the access of a grant approved meanwhile; reconciliation will")
        }
    }
}

/// Tells the world a grant ended.
async fn ended(app: &App, request: Request) -> Request {
    tracing::info!(request_id = %request.id, state = %request.state, "access ended");
    let sessions = match request.sessions_ended {
        Some(SessionsEnded::Person) => " Your role sessions from it were ended too.",
        Some(SessionsEnded::AllSessions) => {
            " Every role session issued before now was ended too (yours included)."
        }
        None => "",
    };
    let text = format!(
        "Your {} access on {} has ended ({}).{sessions}",
        request.flow, request.target, request.state
    );
    app.tell(&request, Some(&text)).await;
    request
}

/// Another grant of the same access (same resource, same identity) that still needs it:
/// ACTIVE and unexpired, or APPROVED and about to be escalated. The listing comes from an
/// index that may lag, so a candidate counts only as read back from the table.
pub(crate) async fn covering_grant(
    app: &App,
    request: &Request,
    terms: &Terms,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Request>, ServiceError> {
    let needs_access = |other: &Request| {
        other.state == State::Approved || (other.state == State::Active && other.covers(now))
    };
    // A grant approved a moment ago may still read PENDING in the index: those are read too.
    let mut others = app
        .store
        .list_by_requester(
            &request.requester,
            &[State::Active, State::Approved, State::Pending],
        )
        .await?;
    // An ACTIVE grant first: it stays as it is until it ends, while an APPROVED one changes
    // as soon as its escalation is done, which would fail the guarded write below.
    others.sort_by_key(|other| other.state != State::Active);
    for other in others {
        if other.id == request.id
            || (other.state != State::Pending && !needs_access(&other))
            || !app
                .terms(&other)
                .is_ok_and(|theirs| same_access(terms, &theirs))
        {
            continue;
        }
        if let Some(fresh) = app.store.get(&other.id).await? {
            if needs_access(&fresh) {
                return Ok(Some(fresh));
            }
        }
    }
    Ok(None)
}

/// Two grants give the same access when they grant the same resource (even across flows) to
/// the same identity: the IAM user, or for a permission set the directory user found by email.
pub(crate) fn same_access(a: &Terms, b: &Terms) -> bool {
    let same_identity = match a.target.kind {
        TargetKind::SsoPermissionSet { .. } => a.person.email.eq_ignore_ascii_case(&b.person.email),
        TargetKind::IamGroup { .. } | TargetKind::Lambda { .. } => {
            a.person.iam_user == b.person.iam_user
        }
    };
    a.target.kind == b.target.kind && same_identity
}

/// PENDING → TIMED_OUT once nobody answered in time.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn time_out(app: &App, id: &RequestId) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if request.break_glass.is_some() && request.state != State::Pending {
        return review_overdue(app, request).await;
    }
    if request.state != State::Pending {
        return Ok(None);
    }
    app.clock.sleep_until(request.pending_until).await;
    let Some(request) = app
        .step(&request, Command::TimeOut, &app.system("revoke"))
        .await?
    else {
        return Ok(None);
    };
    let text = format!(
        "Your {} request timed out: nobody answered in time.",
        request.flow
    );
    app.tell(&request, Some(&text)).await;
    Ok(Some(request))
}

/// A break-glass grant's review deadline: when no approver acknowledged it by then, it is
/// marked unreviewed (audit `review_overdue`), its message says so, and the channel is told
/// again in the message's thread. A grant reviewed in time, or already marked, is left alone.
async fn review_overdue(app: &App, request: Request) -> Result<Option<Request>, ServiceError> {
    let mut request = request;
    for _ in 0..3 {
        let Some(review) = request.break_glass.clone() else {
            return Ok(None);
        };
        if !review.awaits_review() || review.unreviewed {
            return Ok(None);
        }
        app.clock.sleep_until(review.review_by).await;
        // Another step (the grant's end, a review) may be written first: read and try again.
        match app
            .step(&request, Command::ReviewOverdue, &app.system("revoke"))
            .await?
        {
            Some(marked) => {
                tracing::warn!(request_id = %marked.id, "break-glass grant not reviewed in time; marked unreviewed");
                let text = format!(
                    ":rotating_light: Break-glass grant {} of {} ({}, {}) was not reviewed by {}. It is marked unreviewed in the audit trail; an approver should review it now.",
                    marked.id,
                    marked.requester,
                    marked.flow,
                    format_duration(marked.duration),
                    review.review_by.format("%Y-%m-%d %H:%M UTC"),
                );
                if let Err(err) = app.remind_in_thread(&marked, &text, &[]).await {
                    tracing::error!(error = %err, "could not remind the channel of the unreviewed break-glass grant");
                }
                app.tell(&marked, None).await;
                return Ok(Some(marked));
            }
            None => request = app.load(&request.id).await?,
        }
    }
    Err(ServiceError::Conflict(format!(
        "request {} kept changing while marking it unreviewed; the sweep tries again",
        request.id
    )))
}

/// APPROVED → FAILED after the escalation's retries are exhausted, with the error recorded
/// and shown. The sweep later removes whatever access a failed grant left behind. A late or
/// repeated failure record finds the request moved on (an ACTIVE grant stays ACTIVE).
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn fail(
    app: &App,
    id: &RequestId,
    component: &str,
    error: &str,
) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if request.state != State::Approved {
        tracing::info!(state = %request.state, "not APPROVED; the failure record is stale");
        return Ok(None);
    }
    let command = Command::Fail {
        error: error.to_owned(),
    };
    let Some(request) = app.step(&request, command, &app.system(component)).await? else {
        return Ok(None);
    };
    tracing::error!(error, "grant failed");
    let text = format!("Your {} request failed: {error}", request.flow);
    app.tell(&request, Some(&text)).await;
    Ok(Some(request))
}
