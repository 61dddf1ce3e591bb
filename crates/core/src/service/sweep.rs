//! The periodic sweep: catches whatever a missed, failed or lost event left behind.

use serde::Serialize;

use crate::machine::Command;
use crate::model::{Request, State};

use super::grant::{end_grant, fail, time_out};
use super::reconcile::reconcile;
use super::submit::announce;
use super::{App, ServiceError};

/// What one sweep did. Errors are counted and logged; the next sweep tries again.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub expired: usize,
    pub revoked_failed: usize,
    pub timed_out: usize,
    pub escalations_retried: usize,
    pub escalations_failed: usize,
    pub announced: usize,
    /// Break-glass grants found past their review time unreviewed, and marked.
    pub reviews_overdue: usize,
    /// PENDING requests whose reminder or backup approvers were due, and taken now.
    pub reminded: usize,
    /// Differences between IAM and the grants that reconciliation repaired.
    pub repairs: usize,
    pub errors: usize,
}

/// ACTIVE grants past expiry are ended; FAILED grants have their access removed and end;
/// APPROVED requests never escalated are escalated again, then failed after the deadline;
/// PENDING requests past their time-out time out, those past a reminder or their backups' turn
/// get it, and those still unannounced a while after
/// they were opened (see [`Settings::escalation_retry_after`](super::Settings)) are announced; then
/// reconciliation repairs any difference between the managed groups and the grants. A grant
/// approved without a person (a rule, a hook, break-glass) never posted is posted, and a
/// break-glass grant past its review time is marked unreviewed, in case its own follow-up or
/// schedule was lost.
pub async fn sweep(app: &App) -> Result<SweepReport, ServiceError> {
    let mut report = SweepReport::default();
    let now = app.clock.now();
    // Every open state is listed before anything is acted on: listing also completes the
    // store's index of open requests (after an upgrade), which the ends below consult.
    let mut active = app.store.list_by_state(State::Active).await?;
    let failed = app.store.list_by_state(State::Failed).await?;
    let mut approved = app.store.list_by_state(State::Approved).await?;
    let pending = app.store.list_by_state(State::Pending).await?;
    // Not posted a while after it was opened: its own follow-up had its chance.
    let unposted = |request: &Request| {
        request.message.is_none()
            && (now - request.created_at).to_std().unwrap_or_default()
                >= app.settings.escalation_retry_after
    };
    // A reminder step that long overdue: its own schedule had its chance.
    let grace = chrono::Duration::from_std(app.settings.escalation_retry_after).unwrap_or_default();

    // Grants approved without a person whose post was lost: posted (for break-glass, which
    // schedules its review deadline again); break-glass grants whose deadline passed
    // unnoticed: marked unreviewed. A grant posted here is ended below as posted, so that its
    // end shows in the post.
    for request in active.iter_mut().chain(approved.iter_mut()) {
        let overdue = request
            .break_glass
            .as_ref()
            .is_some_and(|r| r.awaits_review() && !r.unreviewed && r.review_by <= now);
        if overdue {
            let result = time_out(app, &request.id).await.map(|r| r.is_some());
            note(result, &mut report.reviews_overdue, &mut report.errors);
        } else if request.approved_automatically() && unposted(request) {
            let result = announce(app, request).await;
            note(result, &mut report.announced, &mut report.errors);
        }
    }

    for request in active {
        if request.expires_at.is_some_and(|at| at <= now) {
            let result = end_grant(app, request, Command::Expire, &app.system("sweep"))
                .await
                .map(|r| r.is_some());
            note(result, &mut report.expired, &mut report.errors);
        }
    }

    for request in failed {
        let command = Command::Revoke {
            reason: Some("access removed after a failure".into()),
        };
        let result = end_grant(app, request, command, &app.system("sweep"))
            .await
            .map(|r| r.is_some());
        note(result, &mut report.revoked_failed, &mut report.errors);
    }

    for request in approved {
        let since = now - request.decided_at.unwrap_or(request.created_at);
        let since = since.to_std().unwrap_or_default();
        if since >= app.settings.escalation_deadline {
            let error = "escalation did not complete before the deadline";
            let result = fail(app, &request.id, "sweep", error)
                .await
                .map(|r| r.is_some());
            note(result, &mut report.escalations_failed, &mut report.errors);
        } else if since >= app.settings.escalation_retry_after {
            let result = app.escalation.start(&request.id).await.map(|()| true);
            note(
                result.map_err(ServiceError::from),
                &mut report.escalations_retried,
                &mut report.errors,
            );
        }
    }

    for request in pending {
        let nudge = app
            .config
            .flow(&request.flow)
            .and_then(|flow| flow.nudge_due(&request, now - grace));
        if request.pending_until <= now {
            let result = time_out(app, &request.id).await.map(|r| r.is_some());
            note(result, &mut report.timed_out, &mut report.errors);
        } else if nudge.is_some() && request.message.is_some() {
            // A reminder or the backups' turn whose schedule was lost.
            let result = super::remind::nudge(app, &request.id)
                .await
                .map(|r| r.is_some());
            note(result, &mut report.reminded, &mut report.errors);
        } else if unposted(&request) {
            // A request just opened is being announced by its own follow-up.
            let mut request = request;
            let result = announce(app, &mut request).await;
            note(result, &mut report.announced, &mut report.errors);
        }
    }

    match reconcile(app, false).await {
        Ok(done) => {
            report.repairs = done.repairs.len();
            report.errors += done.errors;
        }
        Err(err) => {
            report.errors += 1;
            tracing::error!(error = %err, "reconciliation failed; the next sweep retries");
        }
    }

    tracing::info!(?report, "sweep done");
    Ok(report)
}

fn note(result: Result<bool, ServiceError>, counter: &mut usize, errors: &mut usize) {
    match result {
        Ok(true) => *counter += 1,
        Ok(false) => {}
        Err(err) => {
            *errors += 1;
            tracing::error!(error = %err, "sweep step failed; the next sweep retries");
        }
    }
}
