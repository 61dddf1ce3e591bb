//! `approve`, `deny`, `cancel`, `revoke`: one decision on one request.

use elevate_core::{format_duration, RequestId, State};

use super::Exit;
use crate::api::{Change, Client, Decision};
use crate::cli::ExtendArgs;
use crate::output::{self, Out};

pub async fn decide(
    client: &Client,
    change: Change,
    id: RequestId,
    reason: Option<String>,
    out: Out,
) -> anyhow::Result<Exit> {
    let answer = client.change(&id, change, reason.as_deref()).await?;
    if out.json {
        out.json(&answer.json);
        return Ok(Exit::Ok);
    }
    let r = answer.value.request;
    let what = format!(
        "{} (target {}) for {}, requested by {}",
        r.flow,
        r.target_label(),
        format_duration(r.duration),
        r.requester
    );
    out.result(match change {
        Change::Decide(Decision::Approve) => match r.state {
            State::Pending => format!(
                "approved {id}: {what}; {} of {} approvals, waiting for more",
                r.approvals.len(),
                r.approvals_required
            ),
            state => format!("approved {id}: {what}; now {state}"),
        },
        Change::Decide(Decision::Deny) => format!("denied {id}: {what}"),
        Change::Decide(Decision::ApproveExtension) => match &r.extension {
            Some(extension) => format!(
                "approved the extension of {id} by {}; {} of {} approvals, waiting for more",
                format_duration(extension.by),
                extension.approvals.len(),
                r.approvals_required
            ),
            None => format!(
                "extended {id}: {what}; active until {}",
                r.expires_at.map_or_else(|| "?".to_owned(), output::clock)
            ),
        },
        Change::Decide(Decision::DenyExtension) => {
            format!("denied the extension of {id}: {what}; it ends as before")
        }
        Change::Decide(Decision::Review) => {
            format!(
                "reviewed the break-glass grant {id}: {what}; it is {}",
                r.state
            )
        }
        Change::Cancel => format!("cancelled {id}: {what}"),
        Change::Revoke => format!(
            "revoked {id}: {what}; access ended {}",
            r.ended_at.map_or_else(|| "now".to_owned(), output::clock)
        ),
    });
    Ok(Exit::Ok)
}

/// `extend`: more time on the caller's active grant.
pub async fn extend(client: &Client, args: ExtendArgs, out: Out) -> anyhow::Result<Exit> {
    let id = args.id;
    let answer = client.extend(&id, args.by, args.reason.as_deref()).await?;
    if out.json {
        out.json(&answer.json);
        return Ok(Exit::Ok);
    }
    let r = answer.value.request;
    let until = r.expires_at.map_or_else(|| "?".to_owned(), output::clock);
    out.result(match &r.extension {
        Some(extension) => format!(
            "asked for {} more on {id} ({} on {}); the approvers are asked, and until they approve it ends at {until}",
            format_duration(extension.by),
            r.flow,
            r.target_label()
        ),
        None => format!(
            "extended {id} by {} ({} on {}): active until {until}",
            format_duration(args.by),
            r.flow,
            r.target_label()
        ),
    });
    Ok(Exit::Ok)
}
