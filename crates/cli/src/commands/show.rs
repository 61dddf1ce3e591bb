//! `list` and `show`.

use elevate_core::{verify_chain, RequestId};

use super::Exit;
use crate::api::{Client, Scope};
use crate::cli::ListArgs;
use crate::output::{self, Out};

/// How many requests `list` asks for a page: the most the API gives.
const LIST_PAGE: u64 = 200;

/// `list`: follows the pages of `GET /requests` and prints each as it comes, so a history of
/// any length lists in bounded memory; `--limit` stops after that many requests.
pub async fn list(client: &Client, args: ListArgs, out: Out) -> anyhow::Result<Exit> {
    let scope = if args.to_approve {
        Scope::ToApprove
    } else {
        Scope::Mine
    };
    let mut left = args.limit;
    let mut cursor: Option<String> = None;
    let mut listed = 0_u64;
    let mut table = output::RequestsTable::default();
    let mut json = output::JsonRequests::default();
    // The cursor of what `--limit` left out.
    let cut = loop {
        let size = left.map_or(LIST_PAGE, |left| left.min(LIST_PAGE));
        let answer = client
            .list_requests(scope, args.state, size as usize, cursor.as_deref())
            .await?;
        let mut page = answer.value;
        // Never more than asked, whatever the API answers.
        page.requests.truncate(size as usize);
        if out.json {
            let raw = answer.json["requests"].as_array().into_iter().flatten();
            for request in raw.take(page.requests.len()) {
                json.push(&out, request);
            }
        } else if let Some(rows) = table.page(&page.requests) {
            out.result(rows);
        }
        listed += page.requests.len() as u64;
        left = left.map(|left| left - page.requests.len() as u64);
        match page.next {
            None => break None,
            Some(next) if left == Some(0) => break Some(next),
            Some(next) => cursor = Some(next),
        }
    };
    if out.json {
        json.finish(&out, cut.as_deref());
    } else if listed == 0 {
        out.progress(match scope {
            Scope::Mine => "you have no requests",
            Scope::ToApprove => "nothing waits for your approval",
        });
    } else if cut.is_some() {
        out.progress(format!(
            "more than {listed} requests: without --limit, `elevate list` shows them all"
        ));
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
