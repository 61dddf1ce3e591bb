//! `elevate request`: ask for access and, with `--wait`, follow the request until the access is
//! active or refused.

use std::time::Duration;

use elevate_core::{format_duration, Request, State};
use tokio::time::Instant;

use super::Exit;
use crate::api::{Client, NewRequestBody};
use crate::cli::RequestArgs;
use crate::output::{self, Out};

const POLL_EVERY: Duration = Duration::from_secs(1);

pub async fn request(client: &Client, args: RequestArgs, out: Out) -> anyhow::Result<Exit> {
    let body = NewRequestBody {
        flow: args.flow,
        target: args.target,
        account: args.account,
        duration: args.duration.as_secs(),
        reason: args.reason.unwrap_or_default(),
        break_glass: args.break_glass,
    };
    let created = client.create_request(&body).await?;
    let request = created.value.request;

    if !args.wait {
        if out.json {
            out.json(&created.json);
        } else {
            out.result(format!(
                "requested {} (target {}) for {}: {}",
                request.flow,
                request.target_label(),
                format_duration(request.duration),
                request.id
            ));
            if request.state == State::Pending {
                let waiting = if request.approvals_required > 1 {
                    format!("waiting for {} approvals", request.approvals_required)
                } else {
                    "waiting for approval".to_owned()
                };
                out.progress(format!(
                    "{waiting} until {}; follow it with `elevate show {}`",
                    output::clock(request.pending_until),
                    request.id
                ));
            } else {
                out.progress(format!(
                    "{} {}; follow it with `elevate show {}`",
                    request.state,
                    request
                        .decided_by
                        .as_deref()
                        .map(|by| format!("by {by}"))
                        .unwrap_or_default(),
                    request.id
                ));
            }
        }
        return Ok(Exit::Ok);
    }

    out.progress(format!(
        "requested {} (target {}) for {}: {}",
        request.flow,
        request.target_label(),
        format_duration(request.duration),
        request.id
    ));
    let deadline = Instant::now() + args.timeout;
    let mut progress = Progress::default();
    let mut latest = created.json;
    let mut current = request;
    let mut poll_failing = false;
    loop {
        if let Some(exit) = progress.observe(&current, out) {
            if out.json {
                out.json(&latest);
            }
            return Ok(exit);
        }
        if Instant::now() + POLL_EVERY > deadline {
            out.outcome(format!(
                "still {} after {}; the request stays open: `elevate show {}` (or `elevate cancel {}`)",
                current.state,
                format_duration(args.timeout),
                current.id,
                current.id
            ));
            if out.json {
                out.json(&latest);
            }
            return Ok(Exit::WaitTimeout);
        }
        tokio::time::sleep(POLL_EVERY).await;
        match client.get_request(&current.id).await {
            Ok(answer) => {
                poll_failing = false;
                current = answer.value.request;
                latest = answer.json;
            }
            Err(err) if err.is_transient() => {
                if !poll_failing {
                    out.warn(format!("{err}; still trying"));
                    poll_failing = true;
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// What has been told to the user so far, so each step is said once.
#[derive(Debug, Default)]
struct Progress {
    seen: Option<(State, usize)>,
    told_approval: bool,
}

impl Progress {
    /// Reports a newly seen state; returns the exit status once the wait is over.
    fn observe(&mut self, request: &Request, out: Out) -> Option<Exit> {
        if self.seen == Some((request.state, request.approvals.len())) {
            return None;
        }
        self.seen = Some((request.state, request.approvals.len()));
        let by = request.decided_by.as_deref().unwrap_or("an approver");
        let why = request
            .decision_reason
            .as_deref()
            .map(|why| format!(": {why}"))
            .unwrap_or_default();
        // A poll can miss APPROVED entirely; the approval is still worth telling.
        if !self.told_approval
            && matches!(
                request.state,
                State::Approved | State::Active | State::Failed | State::Expired | State::Revoked
            )
            && request.decided_at.is_some()
        {
            self.told_approval = true;
            out.progress(format!("approved by {by}{why}"));
        }
        match request.state {
            State::Pending if request.approvals_required > 1 => {
                let names: Vec<&str> = request.approvals.iter().map(|a| a.by.as_str()).collect();
                let so_far = if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                };
                out.progress(format!(
                    "{} of {} approved{so_far}; waiting… times out at {}",
                    names.len(),
                    request.approvals_required,
                    output::clock(request.pending_until)
                ));
                None
            }
            State::Pending => {
                out.progress(format!(
                    "waiting for approval… times out at {}",
                    output::clock(request.pending_until)
                ));
                None
            }
            State::Approved => {
                out.progress("granting access…");
                None
            }
            State::Active => {
                match request.expires_at {
                    Some(at) => out.progress(format!("active until {}", output::clock(at))),
                    None => out.progress("active"),
                }
                Some(Exit::Ok)
            }
            State::Denied => {
                out.outcome(format!("denied by {by}{why}"));
                Some(Exit::Denied)
            }
            State::Cancelled => {
                out.outcome(format!("cancelled by {by}"));
                Some(Exit::Cancelled)
            }
            State::TimedOut => {
                out.outcome("nobody answered in time: the request timed out");
                Some(Exit::TimedOut)
            }
            State::Failed => {
                out.outcome(format!(
                    "granting access failed: {}",
                    request.failure.as_deref().unwrap_or("no detail recorded")
                ));
                Some(Exit::Failed)
            }
            State::Expired | State::Revoked => {
                out.outcome(format!(
                    "the grant already ended ({})",
                    request.state.as_str().to_lowercase()
                ));
                Some(Exit::Ended)
            }
        }
    }
}
