//! Reading requests and the audit trail.

use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::model::{Request, RequestId, State};
use crate::ports::{AuditWindow, Decider, ListPage, ListQuery};

use super::{App, Caller, ServiceError};

/// One request with its audit trail, for its requester or an approver of its flow.
pub async fn show(
    app: &App,
    caller: &Caller<'_>,
    id: &RequestId,
) -> Result<(Request, Vec<AuditEvent>), ServiceError> {
    let request = app.load(id).await?;
    let name = caller.name();
    let may_view = app.config.is_auditor(name) || app.may_view(caller, &request).await?;
    if !may_view {
        // Same answer as a missing request: ids of other people's requests are not confirmed.
        return Err(ServiceError::NotFound(id.clone()));
    }
    let events = app.store.audit_events(id).await?;
    Ok((request, events))
}

/// Which requests `list` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The caller's own requests.
    #[default]
    Mine,
    /// Requests the caller may decide (PENDING unless another state is asked for).
    ToApprove,
}

/// How many requests a page of `list` holds when the caller does not say.
pub const LIST_PAGE_DEFAULT: usize = 50;
/// The most requests a page of `list` may hold: about 1 KB each, far below Lambda's 6 MB
/// answer.
pub const LIST_PAGE_MAX: usize = 200;

/// One page of the requests of `scope` (in `state` when given): the first, or the one `after`
/// (the `next` of the page before) points at, of at most `limit` requests (1 to
/// [`LIST_PAGE_MAX`]).
///
/// - `mine`: the caller's requests, newest first. In an open state they are read from the
///   requests in that state (everyone's open requests are few); otherwise from the caller's
///   history, one page of it.
/// - `to_approve`: the requests in `state` (PENDING when not given) that the caller may
///   decide, oldest first. The store keeps, while it reads the state's requests, those of the
///   flows the caller approves, less the caller's own unless the flow allows self-approval
///   (the rule of [`Flow::check_decider`](crate::config::Flow::check_decider)); someone who
///   approves no flow reads nothing.
///
/// A page may hold fewer than `limit` requests, even none, and still have a `next` (the store
/// bounds what one page reads); the listing ends where `next` is absent.
pub async fn list(
    app: &App,
    caller: &Caller<'_>,
    scope: Scope,
    state: Option<State>,
    after: Option<&str>,
    limit: usize,
) -> Result<ListPage, ServiceError> {
    if !(1..=LIST_PAGE_MAX).contains(&limit) {
        return Err(ServiceError::BadRequest(format!(
            "limit {limit} is not from 1 to {LIST_PAGE_MAX}"
        )));
    }
    let name = caller.name();
    // The caller's directory groups, asked once for every flow they may approve by group.
    let mut groups = Vec::new();
    let query = match scope {
        Scope::Mine => ListQuery::Requester {
            requester: name.to_owned(),
            state,
        },
        Scope::ToApprove => {
            let mut ask: Vec<String> = Vec::new();
            for flow in &app.config.flows {
                for group in flow.approver_groups_to_ask(name) {
                    if !ask.contains(group) {
                        ask.push(group.clone());
                    }
                }
            }
            groups = app.groups_of(caller.person, &ask).await?.member_of;
            let approves: Vec<_> = app
                .config
                .flows
                .iter()
                .filter(|flow| flow.is_approver(name, &groups) || flow.is_backup(name))
                .collect();
            ListQuery::State {
                state: state.unwrap_or(State::Pending),
                decider: Some(Decider {
                    person: name.to_owned(),
                    flows: approves.iter().map(|flow| flow.name.clone()).collect(),
                    self_approval: approves
                        .iter()
                        .filter(|flow| flow.allow_self_approval)
                        .map(|flow| flow.name.clone())
                        .collect(),
                }),
            }
        }
    };
    let mut page = app.store.list_page(&query, after, limit).await?;
    if scope == Scope::ToApprove {
        // What the store kept already; checked again with the rule itself.
        page.requests.retain(|request| {
            app.config
                .flow(&request.flow)
                .is_some_and(|flow| flow.check_decider(name, &groups, request).is_ok())
        });
    }
    Ok(page)
}

/// Where one request's chain ends, to catch a deleted last event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub request_id: RequestId,
    pub audit_seq: u64,
    pub audit_head: String,
}

/// One page of an audit export: its events, the chain heads of their requests, and where the
/// next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    pub events: Vec<AuditEvent>,
    #[serde(default)]
    pub heads: Vec<AuditHead>,
    /// The cursor of the next page (`GET /audit?cursor=`); absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// How many events one page of an export holds. An event is about 700 bytes of JSON, and at
/// most about 5 KB (a 1,000-character reason of 4-byte characters), so a page stays far below
/// Lambda's 6 MB answer even then.
pub const AUDIT_PAGE_EVENTS: usize = 500;

/// One page of the audit events in `window` (the first, or the one `after` points at), with
/// the chain heads of the requests they belong to. Auditors only.
pub async fn audit_export(
    app: &App,
    caller: &Caller<'_>,
    window: AuditWindow,
    after: Option<&str>,
) -> Result<AuditExport, ServiceError> {
    require_auditor(app, caller)?;
    let page = app
        .store
        .audit_page(&window, after, AUDIT_PAGE_EVENTS)
        .await?;
    let events = page.events;
    let mut ids: Vec<&RequestId> = events.iter().map(|e| &e.request_id).collect();
    ids.sort();
    ids.dedup();
    let mut heads = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(request) = app.store.get(id).await? {
            heads.push(AuditHead {
                request_id: request.id,
                audit_seq: request.audit_seq,
                audit_head: request.audit_head,
            });
        }
    }
    Ok(AuditExport {
        events,
        heads,
        next: page.next,
    })
}

/// Auditors only: the whole trail, and what reconciliation would change.
pub(crate) fn require_auditor(app: &App, caller: &Caller<'_>) -> Result<(), ServiceError> {
    if app.config.is_auditor(caller.name()) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{} is not an auditor (add them to `auditors` in elevate.toml)",
            caller.name()
        )))
    }
}
