//! The in-memory [`RequestStore`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::machine::Transition;
use crate::model::{MessageRef, Request, RequestId, State};
use crate::ports::{
    check_pair, AuditPage, AuditWindow, ListBinding, ListPage, ListPartition, ListQuery,
    RequestStore, StoreError, LIST_READ_BUDGET,
};

use super::{injected, lock, take_failure};

#[derive(Default)]
struct StoreInner {
    requests: HashMap<RequestId, Request>,
    /// Audit events by request, keyed by sequence number.
    events: HashMap<RequestId, BTreeMap<u64, AuditEvent>>,
    /// Every event in the order it was written.
    log: Vec<AuditEvent>,
    failures: u32,
    calls: u64,
    /// The items a page of a listing reads at most; `None` is [`LIST_READ_BUDGET`].
    list_budget: Option<usize>,
    /// The requests the pages of listings read, in all.
    list_reads: u64,
}

/// [`RequestStore`] in memory, with the DynamoDB adapter's conditional-write semantics.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<StoreInner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `StoreError::Unavailable`.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every audit event written, in write order.
    pub fn events_all(&self) -> Vec<AuditEvent> {
        lock(&self.inner).log.clone()
    }

    /// Every stored request, oldest first.
    pub fn requests_all(&self) -> Vec<Request> {
        let mut all: Vec<Request> = lock(&self.inner).requests.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// The stored request, without going through the port (no failure injection).
    pub fn request(&self, id: &RequestId) -> Option<Request> {
        lock(&self.inner).requests.get(id).cloned()
    }

    /// Makes a page of a listing read at most `items` requests (at least one more than the
    /// page holds), as the adapter's budget does with [`LIST_READ_BUDGET`].
    pub fn set_list_read_budget(&self, items: usize) {
        lock(&self.inner).list_budget = Some(items);
    }

    /// How many stored requests the pages of listings have read, in all: what DynamoDB would
    /// have read for them.
    pub fn list_reads(&self) -> u64 {
        lock(&self.inner).list_reads
    }

    /// How many port calls were made (failed ones included).
    pub fn calls(&self) -> u64 {
        lock(&self.inner).calls
    }

    /// Puts a request and its events as they are, with no checks: seeds a test with a request
    /// in any state, or tampers with the trail.
    pub fn insert_unchecked(&self, request: Request, events: Vec<AuditEvent>) {
        let mut inner = lock(&self.inner);
        for event in events {
            inner
                .events
                .entry(event.request_id.clone())
                .or_default()
                .insert(event.seq, event.clone());
            inner.log.push(event);
        }
        inner.requests.insert(request.id.clone(), request);
    }

    fn enter(&self) -> Result<MutexGuard<'_, StoreInner>, StoreError> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if take_failure(&mut inner.failures) {
            return Err(StoreError::Unavailable(injected("store")));
        }
        Ok(inner)
    }
}

/// The cursor of a page of `audit_page`: the window of the export and the last event given so
/// far (by time, request and sequence), as hex of its JSON (URL-safe).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageCursor {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    request_id: RequestId,
    seq: u64,
}

impl PageCursor {
    fn after(window: &AuditWindow, last: &AuditEvent) -> String {
        let cursor = PageCursor {
            since: window.since,
            until: window.until,
            at: last.at,
            request_id: last.request_id.clone(),
            seq: last.seq,
        };
        hex::encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    fn read(window: &AuditWindow, text: &str) -> Result<PageCursor, StoreError> {
        let cursor: PageCursor = hex::decode(text)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| {
                StoreError::BadCursor(format!("`{text}` is not a cursor of an audit export"))
            })?;
        if cursor.since != window.since || cursor.until != window.until {
            return Err(StoreError::BadCursor(format!(
                "a cursor of the export since {:?} until {:?}, not of this one (since {:?}, until {:?})",
                cursor.since, cursor.until, window.since, window.until
            )));
        }
        Ok(cursor)
    }
}

/// The cursor of a page of `list_page`: the listing and the last request read so far (by
/// creation time and id), as hex of its JSON (URL-safe).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCursor {
    query: ListBinding,
    created_at: DateTime<Utc>,
    id: RequestId,
}

impl ListCursor {
    fn after(query: &ListQuery, last: &Request) -> String {
        let cursor = ListCursor {
            query: query.binding(),
            created_at: last.created_at,
            id: last.id.clone(),
        };
        hex::encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    fn read(query: &ListQuery, text: &str) -> Result<ListCursor, StoreError> {
        let cursor: ListCursor = hex::decode(text)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| {
                StoreError::BadCursor(format!("`{text}` is not a cursor of a request listing"))
            })?;
        if cursor.query != query.binding() {
            return Err(StoreError::BadCursor(format!(
                "a cursor of {}, not of this listing ({query})",
                cursor.query
            )));
        }
        Ok(cursor)
    }
}

/// One page of `query`, as the adapter reads it: the requests of the query's partition in its
/// order after `start`, one past the page or `budget` of them at most, keeping the query's.
fn list_page(
    inner: &mut StoreInner,
    query: &ListQuery,
    start: Option<ListCursor>,
    limit: usize,
) -> ListPage {
    if let ListQuery::State {
        decider: Some(decider),
        ..
    } = query
    {
        if decider.flows.is_empty() {
            return ListPage::default();
        }
    }
    let limit = limit.max(1);
    let budget = inner.list_budget.unwrap_or(LIST_READ_BUDGET).max(limit + 1);
    let newest_first = query.newest_first();
    let mut partition: Vec<&Request> = inner
        .requests
        .values()
        .filter(|r| match query.partition() {
            ListPartition::Requester(requester) => r.requester == requester,
            ListPartition::State(state) => r.state == state,
        })
        .filter(|r| {
            start.as_ref().is_none_or(|start| {
                let key = (r.created_at, &r.id);
                let start = (start.created_at, &start.id);
                if newest_first {
                    key < start
                } else {
                    key > start
                }
            })
        })
        .collect();
    partition.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if newest_first {
        partition.reverse();
    }
    let mut kept: Vec<&Request> = Vec::new();
    let mut read = 0;
    let mut next = None;
    for (i, request) in partition.iter().enumerate() {
        if read == budget {
            next = Some(ListCursor::after(query, partition[i - 1]));
            break;
        }
        read += 1;
        if query.keeps(request) {
            kept.push(request);
            if kept.len() > limit {
                kept.pop();
                next = kept.last().map(|last| ListCursor::after(query, last));
                break;
            }
        }
    }
    let requests = kept.into_iter().cloned().collect();
    inner.list_reads += read as u64;
    ListPage { requests, next }
}

/// A transition's checks and writes, under the store's lock.
fn apply_transition(inner: &mut StoreInner, step: &Transition) -> Result<(), StoreError> {
    let (expected, request, event) = (step.from, &step.request, &step.event);
    check_pair(request, event)?;
    let stored = inner
        .requests
        .get(&request.id)
        .ok_or_else(|| StoreError::NotFound(request.id.clone()))?;
    if stored.state != expected || stored.audit_seq + 1 != event.seq {
        return Err(StoreError::Conflict(format!(
            "request {} is {} at audit_seq {}, expected {} at {}",
            request.id,
            stored.state,
            stored.audit_seq,
            expected,
            event.seq.saturating_sub(1)
        )));
    }
    let taken = inner
        .events
        .get(&request.id)
        .is_some_and(|events| events.contains_key(&event.seq));
    if taken {
        return Err(StoreError::Conflict(format!(
            "audit event {} of request {} already exists",
            event.seq, request.id
        )));
    }
    // The stored announcement survives a transition written from an older copy, as the
    // adapter's update only sets the fields a transition changes.
    let mut next = request.clone();
    if next.message.is_none() {
        next.message = stored.message.clone();
    }
    inner.requests.insert(request.id.clone(), next);
    inner
        .events
        .entry(request.id.clone())
        .or_default()
        .insert(event.seq, event.clone());
    inner.log.push(event.clone());
    Ok(())
}

#[async_trait]
impl RequestStore for MemoryStore {
    async fn create(&self, request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        check_pair(request, event)?;
        if inner.requests.contains_key(&request.id) || inner.events.contains_key(&request.id) {
            return Err(StoreError::Conflict(format!(
                "request {} already exists",
                request.id
            )));
        }
        inner.requests.insert(request.id.clone(), request.clone());
        inner
            .events
            .entry(request.id.clone())
            .or_default()
            .insert(event.seq, event.clone());
        inner.log.push(event.clone());
        Ok(())
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        let inner = self.enter()?;
        Ok(inner.requests.get(id).cloned())
    }

    async fn transition(&self, step: &Transition) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        apply_transition(&mut inner, step)
    }

    async fn transition_while(
        &self,
        step: &Transition,
        unchanged: &Request,
    ) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        let same = inner.requests.get(&unchanged.id).is_some_and(|stored| {
            stored.state == unchanged.state && stored.audit_seq == unchanged.audit_seq
        });
        if !same {
            return Err(StoreError::Conflict(format!(
                "request {} is no longer {} at audit_seq {}",
                unchanged.id, unchanged.state, unchanged.audit_seq
            )));
        }
        apply_transition(&mut inner, step)
    }

    async fn set_message(&self, id: &RequestId, message: &MessageRef) -> Result<(), StoreError> {
        let mut inner = self.enter()?;
        let stored = inner
            .requests
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        stored.message = Some(message.clone());
        Ok(())
    }

    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<Request> = inner
            .requests
            .values()
            .filter(|r| {
                r.requester == requester && (states.is_empty() || states.contains(&r.state))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(found)
    }

    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<Request> = inner
            .requests
            .values()
            .filter(|r| r.state == state)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn list_page(
        &self,
        query: &ListQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let mut inner = self.enter()?;
        let start = after
            .map(|text| ListCursor::read(query, text))
            .transpose()?;
        Ok(list_page(&mut inner, query, start, limit))
    }

    async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, StoreError> {
        let inner = self.enter()?;
        Ok(inner
            .events
            .get(id)
            .map(|events| events.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn audit_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let inner = self.enter()?;
        let mut found: Vec<AuditEvent> = inner
            .events
            .values()
            .flat_map(|events| events.values())
            .filter(|e| since.is_none_or(|since| e.at >= since))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        Ok(found)
    }

    async fn audit_page(
        &self,
        window: &AuditWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let inner = self.enter()?;
        let start = after
            .map(|text| PageCursor::read(window, text))
            .transpose()?;
        let start = start
            .as_ref()
            .map(|cursor| (cursor.at, &cursor.request_id, cursor.seq));
        let mut found: Vec<&AuditEvent> = inner
            .events
            .values()
            .flat_map(|events| events.values())
            .filter(|e| window.contains(e.at))
            .filter(|e| start.is_none_or(|start| (e.at, &e.request_id, e.seq) > start))
            .collect();
        found.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        // As the adapter: a page of nothing would never end an export.
        let limit = limit.max(1);
        let next = (found.len() > limit).then(|| PageCursor::after(window, found[limit - 1]));
        found.truncate(limit);
        Ok(AuditPage {
            events: found.into_iter().cloned().collect(),
            next,
        })
    }
}
