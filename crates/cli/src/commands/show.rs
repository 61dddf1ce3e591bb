//! `list` and `show`.

use elevate_core::{verify_chain, RequestId};

use super::Exit;
use crate::api::{Client, Scope};
use crate::cli::ListArgs;
use crate::output::{self, Out};

pub async fn list(client: &Client, args: ListArgs, out: Out) -> anyhow::Result<Exit> {
    let scope = if args.to_approve {
        Scope::ToApprove
    } else {
        Scope::Mine
    };
    let answer = client.list_requests(scope, args.state).await?;
    if out.json {
        out.json(&answer.json);
    } else if answer.value.requests.is_empty() {
        out.progress(match scope {
            Scope::Mine => "you have no requests",
            Scope::ToApprove => "nothing waits for your approval",
        });
    } else {
        out.result(output::requests_table(&answer.value.requests));
    }
    Ok(Exit::Ok)
}

pub async fn show(client: &Client, id: RequestId, out: Out) -> anyhow::Result<Exit> {
    let answer = client.get_request(&id).await?;
    if out.json {
        out.json(&answer.json);
        return Ok(Exit::Ok);
    }
    let detail = answer.value;
    let request = &detail.request;
    out.result(output::request_detail(request));
    out.result(format!("\naudit trail ({} events):", detail.audit.len()));
    out.result(output::audit_lines(&detail.audit));
    // The trail is at hand: checking its chain costs nothing and catches tampering early.
    match verify_chain(
        &detail.audit,
        Some((request.audit_seq, request.audit_head.as_str())),
    ) {
        Ok(()) => out.progress("audit chain verified"),
        Err(err) => out.warn(format!("audit chain does not verify: {err}")),
    }
    Ok(Exit::Ok)
}

/// `reconcile --dry-run`: what reconciliation would change, changing nothing.
pub async fn reconcile(client: &Client, out: Out) -> anyhow::Result<Exit> {
    let answer = client.reconcile_preview().await?;
    if out.json {
        out.json(&answer.json);
        return Ok(Exit::Ok);
    }
    let plan = answer.value;
    if plan.repairs.is_empty() {
        out.result(format!(
            "nothing to change: {} groups match their {} active and approved grants",
            plan.groups, plan.grants
        ));
    } else {
        let mut table =
            output::Table::new(&["WOULD", "GROUP", "IAM USER", "PERSON", "REQUEST", "DETAIL"]);
        for repair in &plan.repairs {
            table.row(vec![
                repair.kind.as_str().to_owned(),
                repair.group.clone(),
                repair.iam_user.clone(),
                repair.person.as_deref().unwrap_or("-").to_owned(),
                repair
                    .request_id
                    .as_ref()
                    .map_or_else(|| "-".into(), ToString::to_string),
                repair.detail.clone(),
            ]);
        }
        out.result(table.render());
        out.result(format!(
            "{} changes in {} groups ({} active and approved grants); the sweep makes them within five minutes",
            plan.repairs.len(),
            plan.groups,
            plan.grants
        ));
    }
    if plan.errors > 0 {
        out.warn(format!(
            "{} steps failed (see the revoke function's log)",
            plan.errors
        ));
    }
    Ok(Exit::Ok)
}
