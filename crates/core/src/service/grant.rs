//! Granting access and taking it away again.

use crate::config::Person;
use crate::machine::{self, Command};
use crate::model::{Actor, Request, RequestId, State};
use crate::ports::{Membership, ScheduledAction, StoreError};

use super::{App, Parts, ServiceError};

/// APPROVED → ACTIVE: grants the access, reads it back, schedules its revocation, records it.
/// Any fault is `Err` so the platform retries; every step is idempotent, and a request that is
/// no longer APPROVED (a second delivery) is left alone.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn escalate(app: &App, id: &RequestId) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if request.state != State::Approved {
        tracing::info!(state = %request.state, "not APPROVED; nothing to escalate");
        return Ok(None);
    }
    let parts = app.parts(&request)?;
    app.strategy
        .escalate(parts.target, parts.requester, &request)
        .await?;
    if read_back(app, &parts, Membership::Absent).await? {
        return Err(ServiceError::Unverified(format!(
            "{} is not on {} after escalation",
            parts.requester.name, parts.target.name
        )));
    }

    let transition = machine::apply(
        &request,
        Command::Activate,
        &Actor::system("escalate"),
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

    match app
        .store
        .transition(State::Approved, &transition.request, &transition.event)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            tracing::info!("another delivery activated the request first");
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    }
    let request = transition.request;
    tracing::info!(%expires_at, "access granted");
    app.refresh_message(&request).await;
    app.tell_requester(
        &request,
        &format!(
            "Your {} access on {} is active until {} UTC.",
            request.flow,
            request.target,
            expires_at.format("%Y-%m-%d %H:%M:%S")
        ),
    )
    .await;
    Ok(Some(request))
}

/// How long a read-back waits, between tries, for a membership change to show: IAM is
/// eventually consistent, and a retry by the platform would come a minute later.
const READ_BACK_WAITS_MS: [i64; 5] = [50, 100, 200, 400, 800];

/// Whether the requester's membership of the target still reads `wrong` after the change,
/// and after the short waits a change may take to show in reads.
async fn read_back(app: &App, parts: &Parts<'_>, wrong: Membership) -> Result<bool, ServiceError> {
    for wait_ms in std::iter::once(0).chain(READ_BACK_WAITS_MS) {
        if wait_ms > 0 {
            let at = app.clock.now() + chrono::Duration::milliseconds(wait_ms);
            app.clock.sleep_until(at).await;
        }
        if app
            .strategy
            .is_member(parts.target, parts.requester)
            .await?
            != wrong
        {
            return Ok(false);
        }
    }
    tracing::warn!(target = %parts.target.name, person = %parts.requester.name, "membership read back unchanged");
    Ok(true)
}

/// A schedule fired: `expire` ends an ACTIVE grant at its expiry (waiting out the lead the
/// schedule fired with), `timeout` ends an unanswered PENDING request. Late or duplicate
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
            if let Some(at) = request.expires_at {
                app.clock.sleep_until(at).await;
            }
            end_grant(app, request, Command::Expire, &Actor::system("revoke")).await
        }
        ScheduledAction::Timeout { request_id } => time_out(app, request_id).await,
        ScheduledAction::Sweep => Err(ServiceError::BadRequest(
            "a sweep is not a schedule of one request".into(),
        )),
    }
}

/// Early revocation by the requester or an approver of the flow.
#[tracing::instrument(skip_all, fields(caller = %caller.name, request_id = %id))]
pub async fn revoke(
    app: &App,
    caller: &Person,
    id: &RequestId,
    reason: Option<String>,
) -> Result<Request, ServiceError> {
    let request = app.load(id).await?;
    let flow = app.parts(&request)?.flow;
    if !flow.may_view(&caller.name, &request) {
        return Err(ServiceError::Forbidden(format!(
            "only the requester or an approver of `{}` may revoke request {id}",
            flow.name
        )));
    }
    let command = Command::Revoke { reason };
    // Refuse at once (409) when the request cannot be revoked, before touching any access.
    machine::apply(
        &request,
        command.clone(),
        &Actor::person(&caller.name),
        app.clock.now(),
    )?;
    let ended = end_grant(app, request, command, &Actor::person(&caller.name)).await?;
    let request = match ended {
        Some(request) => request,
        None => app.load(id).await?,
    };
    let expire = ScheduledAction::Expire {
        request_id: request.id.clone(),
    }
    .schedule_name();
    if let Err(err) = app.scheduler.cancel(&expire).await {
        tracing::warn!(error = %err, "could not delete the revocation schedule; it will find the grant ended");
    }
    Ok(request)
}

/// Ends a grant (ACTIVE or FAILED): removes the access unless another grant of the same person
/// on the same target still covers it, reads back that it is gone, and only then records the
/// end. Any fault leaves the grant as it was and is returned, so the caller retries: a grant is
/// never recorded as ended while its access is still there.
///
/// Keeping the access for another grant is recorded only while that grant is unchanged (one
/// atomic write): when two overlapping grants end at once, one of them finds the other moved,
/// looks again, and removes the access.
pub(crate) async fn end_grant(
    app: &App,
    request: Request,
    command: Command,
    actor: &Actor,
) -> Result<Option<Request>, ServiceError> {
    /// Each lost race means the covering grant changed; a few rounds settle any real overlap.
    const ROUNDS: usize = 4;
    let parts = app.parts(&request)?;
    for _ in 0..ROUNDS {
        let now = app.clock.now();
        let transition = machine::apply(&request, command.clone(), actor, now)?;
        let covering = covering_grant(app, &request, now).await?;
        if let Some(other) = &covering {
            tracing::info!(request_id = %request.id, covering = %other.id, "another grant still covers this access; keeping it");
        } else {
            app.strategy
                .deescalate(parts.target, parts.requester, &request)
                .await?;
            if read_back(app, &parts, Membership::Present).await? {
                return Err(ServiceError::Unverified(format!(
                    "{} is still on {} after removal",
                    parts.requester.name, parts.target.name
                )));
            }
        }

        let written = match &covering {
            Some(other) => {
                app.store
                    .transition_while(request.state, &transition.request, &transition.event, other)
                    .await
            }
            None => {
                app.store
                    .transition(request.state, &transition.request, &transition.event)
                    .await
            }
        };
        match written {
            Ok(()) => return Ok(Some(ended(app, transition.request).await)),
            Err(StoreError::Conflict(why)) => {
                let stored = app.load(&request.id).await?;
                if stored.state != request.state || stored.audit_seq != request.audit_seq {
                    tracing::info!(request_id = %request.id, "the grant was ended concurrently");
                    return Ok(None);
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

/// Tells the world a grant ended.
async fn ended(app: &App, request: Request) -> Request {
    tracing::info!(request_id = %request.id, state = %request.state, "access ended");
    app.refresh_message(&request).await;
    app.tell_requester(
        &request,
        &format!(
            "Your {} access on {} has ended ({}).",
            request.flow, request.target, request.state
        ),
    )
    .await;
    request
}

/// Another grant of the same person on the same target that still needs the access: ACTIVE
/// and unexpired, or APPROVED and about to be escalated. The listing comes from an index that
/// may lag, so a candidate counts only as read back from the table.
async fn covering_grant(
    app: &App,
    request: &Request,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Request>, ServiceError> {
    let needs_access = |other: &Request| {
        other.state == State::Approved || (other.state == State::Active && other.covers(now))
    };
    let mut others = app
        .store
        .list_by_requester(&request.requester, &[State::Active, State::Approved])
        .await?;
    // An ACTIVE grant first: it stays as it is until it ends, while an APPROVED one changes
    // as soon as its escalation is done, which would fail the guarded write below.
    others.sort_by_key(|other| other.state != State::Active);
    for other in others {
        if other.id == request.id
            || other.target != request.target
            || !same_access(app, request, &other)
            || !needs_access(&other)
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

/// Two grants give the same access when their targets are the same resource, even across flows.
fn same_access(app: &App, a: &Request, b: &Request) -> bool {
    let kind = |r: &Request| {
        app.config
            .flow(&r.flow)
            .and_then(|f| f.targets.iter().find(|t| t.name == r.target))
            .map(|t| t.kind.clone())
    };
    match (kind(a), kind(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.flow == b.flow,
    }
}

/// PENDING → TIMED_OUT once nobody answered in time.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn time_out(app: &App, id: &RequestId) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if request.state != State::Pending {
        return Ok(None);
    }
    app.clock.sleep_until(request.pending_until).await;
    let transition = machine::apply(
        &request,
        Command::TimeOut,
        &Actor::system("revoke"),
        app.clock.now(),
    )?;
    match app
        .store
        .transition(State::Pending, &transition.request, &transition.event)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let request = transition.request;
    app.refresh_message(&request).await;
    app.tell_requester(
        &request,
        &format!(
            "Your {} request timed out: nobody answered in time.",
            request.flow
        ),
    )
    .await;
    Ok(Some(request))
}

/// APPROVED or ACTIVE → FAILED after the platform's retries are exhausted, with the error
/// recorded and shown. The sweep later removes whatever access a failed grant left behind.
#[tracing::instrument(skip_all, fields(request_id = %id))]
pub async fn fail(
    app: &App,
    id: &RequestId,
    component: &str,
    error: &str,
) -> Result<Option<Request>, ServiceError> {
    let request = app.load(id).await?;
    if !matches!(request.state, State::Approved | State::Active) {
        return Ok(None);
    }
    let command = Command::Fail {
        error: error.to_owned(),
    };
    let transition = machine::apply(
        &request,
        command,
        &Actor::system(component),
        app.clock.now(),
    )?;
    match app
        .store
        .transition(request.state, &transition.request, &transition.event)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    let request = transition.request;
    tracing::error!(error, "grant failed");
    app.refresh_message(&request).await;
    app.tell_requester(
        &request,
        &format!("Your {} request failed: {error}", request.flow),
    )
    .await;
    Ok(Some(request))
}
