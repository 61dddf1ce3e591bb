//! `approve`, `deny`, `cancel`, `revoke`: one decision on one request.

use elevate_core::{format_duration, RequestId};

use super::Exit;
use crate::api::{Change, Client, Decision};
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
        Change::Decide(Decision::Approve) => format!("approved {id}: {what}; now {}", r.state),
        Change::Decide(Decision::Deny) => format!("denied {id}: {what}"),
        Change::Cancel => format!("cancelled {id}: {what}"),
        Change::Revoke => format!(
            "revoked {id}: {what}; access ended {}",
            r.ended_at.map_or_else(|| "now".to_owned(), output::clock)
        ),
    });
    Ok(Exit::Ok)
}
