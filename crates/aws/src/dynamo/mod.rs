//! [`RequestStore`] on one DynamoDB table (docs/contracts.md, "DynamoDB table").
//!
//! Items, all keyed by the request so one request's history is one item collection:
//! - request: `pk = REQ#<id>`, `sk = REQ`, every `Request` field as its own attribute (strings,
//!   numbers, a map for `message`) so the table reads well in the console, plus
//!   `gsi1pk = REQUESTER#<name>` / `gsi1sk = <created_at>#<id>` (GSI `by_requester`) and
//!   `gsi2pk = STATE#<STATE>` / `gsi2sk = <created_at>#<id>` (GSI `by_state`), and while the
//!   request is open (not in a final state) `gsi4pk = REQUESTER#<name>` / `gsi4sk` as `gsi1sk`
//!   (the sparse GSI `open_by_requester`);
//! - audit event: `pk = REQ#<id>`, `sk = EVT#<seq, 10 digits>`, every `AuditEvent` field, plus
//!   `gsi3pk = AUDIT#<yyyy-mm-dd>` / `gsi3sk = <at>#<id>#<seq>` (GSI `by_day`).
//!
//! `audit_since` and `audit_page` use the `by_day` GSI rather than a table Scan: only audit
//! events carry `gsi3pk`, so the index is sparse and holds nothing but events. An export from a
//! recent date is one Query per day (events of day D are `gsi3pk = AUDIT#D`, in time order by
//! `gsi3sk`); a full export, or one spanning more than [`MAX_DAY_QUERIES`] days, scans the
//! sparse index, which still reads only events, never requests. `audit_page` reads one page of
//! items per call (`Limit`, continuing from the cursor's `ExclusiveStartKey`); a day-by-day
//! export is in time order across pages, a scanned one only within each page (see
//! [`DynamoStore::audit_page`]).
//!
//! The requests of one requester in open states only (the covering-grant checks, twice in
//! every end of a grant) come from `open_by_requester`, one Query that reads that requester's
//! open requests alone: a requester's history grows without end, and everyone's open grants
//! grow with the company (hundreds at once is a busy hour). Listing an open state adds a
//! request written before the index existed to it, so the sweep completes it after an upgrade.
//!
//! `list_page` reads one page of a listing: one partition of `by_requester` (a requester's
//! history, newest first) or of `by_state` (a state's requests, oldest first, or newest first
//! for a requester's requests in an open state, as above), from the cursor's
//! `ExclusiveStartKey` on, with `Limit` one past what the page still needs and a
//! `FilterExpression` for the rest of the listing's condition (the state, the requester, or the
//! flows a decider may decide). The page's cursor is the key of its last request when a next
//! one was read, else DynamoDB's `LastEvaluatedKey`; a filter that keeps few items stops the
//! page after [`LIST_READ_BUDGET`] items read.
//!
//! Timestamps are RFC 3339 in UTC with nine fractional digits: they round-trip exactly and sort
//! as strings, which the sort keys rely on.
//!
//! Layout: this file holds the store itself ([`DynamoStore`] and its [`RequestStore`] impl:
//! queries, transactions, the transition writes, cancellation handling); `item.rs` the item
//! codec (attribute names, keys, requests and events to and from items); `cursor.rs` the page
//! cursors of `audit_page` and `list_page`; `table.rs` the table setup ([`DynamoStore::create_table`] and the
//! GSI names and definitions).

mod cursor;
mod item;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, Utc};
use elevate_core::audit::AuditEvent;
use elevate_core::machine::Transition;
use elevate_core::model::{MessageRef, Request, RequestId, State};
use elevate_core::ports::{
    check_pair, AuditPage, AuditWindow, BoxError, ListPage, ListPartition, ListQuery, RequestStore,
    StoreError, LIST_READ_BUDGET,
};
use tracing::instrument;

use crate::error::AwsError;
use cursor::{ListIndex, Position};
use item::{
    attr, day_key, event_from_item, message_attribute, n, request_attributes, request_from_item,
    request_pk, requester_key, s, state_key, timestamp, Item, EVENT_SK_PREFIX, REQUEST_SK,
};

pub use item::{event_from_stream_image, event_item, request_item, stream_event_key};
pub use table::{BY_DAY, BY_REQUESTER, BY_STATE, OPEN_BY_REQUESTER};

/// Above this many days, `audit_since` and `audit_page` scan the `by_day` index instead of
/// querying it day by day.
pub const MAX_DAY_QUERIES: i64 = 62;

/// Attempts of a transaction that DynamoDB cancelled because another transaction was writing
/// the same item at that moment (`TransactionConflict`, not a failed condition).
const TRANSACTION_ATTEMPTS: u32 = 4;
/// At most this many values in one `IN (...)` of a filter (DynamoDB's limit); a decider of
/// more flows is filtered after the read.
const MAX_IN_VALUES: usize = 100;

/// Requests and their audit events in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The items a page of a listing reads at most.
    list_budget: usize,
    /// The items the pages of listings have had DynamoDB read, shared by the clones.
    list_reads: Arc<AtomicU64>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            list_budget: LIST_READ_BUDGET,
            list_reads: Arc::default(),
        }
    }

    /// Makes a page of a listing read at most `items` items (at least one more than the page
    /// holds) instead of [`LIST_READ_BUDGET`]: for tests of a budget that runs out.
    pub fn with_list_read_budget(mut self, items: usize) -> Self {
        self.list_budget = items;
        self
    }

    /// How many items DynamoDB has read (its `ScannedCount`) for the pages of listings of this
    /// store and its clones, in all: what a page costs, for tests and the bench.
    pub fn list_reads(&self) -> u64 {
        self.list_reads.load(Ordering::Relaxed)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn unavailable(
        &self,
        operation: &str,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Unavailable(AwsError::boxed(
            format!("dynamodb {operation} on table {}", self.table),
            err,
        ))
    }

    /// Runs one transaction, retrying it when another transaction held one of its items.
    async fn transact(
        &self,
        operation: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), TransactFailure> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            match cancellation(&err) {
                Cancellation::Condition => return Err(TransactFailure::Condition),
                Cancellation::Contention if attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(attempt, table = %self.table, "transaction contended, retrying");
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                    attempt += 1;
                }
                Cancellation::Contention | Cancellation::Other => {
                    return Err(TransactFailure::Unavailable(
                        self.unavailable(&format!("TransactWriteItems ({operation})"), err),
                    ))
                }
            }
        }
    }

    async fn query_items(
        &self,
        index: &str,
        pk_attr: &str,
        pk: String,
        newest_first: bool,
        keep: Keep<'_>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(!newest_first);
        match keep {
            Keep::All => {}
            Keep::States(states) => {
                let mut wanted = Vec::new();
                for (i, state) in states.iter().enumerate() {
                    let placeholder = format!(":state{i}");
                    query = query.expression_attribute_values(&placeholder, s(state.as_str()));
                    wanted.push(placeholder);
                }
                query = query
                    .filter_expression(format!("#state IN ({})", wanted.join(", ")))
                    .expression_attribute_names("#state", attr::STATE);
            }
        }
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.unavailable(&format!("Query {index}"), e))
    }

    async fn query_requests(
        &self,
        index: &str,
        pk_attr: &str,
        pk: String,
        newest_first: bool,
        keep: Keep<'_>,
    ) -> Result<Vec<Request>, StoreError> {
        let items = self
            .query_items(index, pk_attr, pk, newest_first, keep)
            .await?;
        items.iter().map(request_from_item).collect()
    }

    /// Adds `requests` (open, read from items that `open_by_requester` lacks: written before
    /// the index existed) to it, with the index attributes [`request_attributes`] gives them,
    /// each only while its state is still the one read: a request that moved on was written
    /// whole by that move. Best effort: a failure is logged, and the next listing tries again.
    async fn index_open<'a>(&self, requests: impl Iterator<Item = &'a Request>) {
        for request in requests {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(attr::PK, s(request_pk(&request.id)))
                .key(attr::SK, s(REQUEST_SK))
                .update_expression("SET #open_pk = :open_pk, #open_sk = :open_sk")
                .condition_expression("#state = :state")
                .expression_attribute_names("#open_pk", attr::GSI4PK)
                .expression_attribute_names("#open_sk", attr::GSI4SK)
                .expression_attribute_names("#state", attr::STATE)
                .expression_attribute_values(":state", s(request.state.as_str()));
            for (name, value) in request_attributes(request) {
                let placeholder = match name {
                    attr::GSI4PK => ":open_pk",
                    attr::GSI4SK => ":open_sk",
                    _ => continue,
                };
                if let Some(value) = value {
                    update = update.expression_attribute_values(placeholder, value);
                }
            }
            match update.send().await {
                Ok(_) => tracing::info!(
                    request_id = %request.id,
                    "an open request added to the open_by_requester index"
                ),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => tracing::warn!(
                    error = %AwsError::boxed(format!("dynamodb UpdateItem {}", self.table), err),
                    "could not add an open request to the open_by_requester index; the next listing tries again"
                ),
            }
        }
    }

    /// The requests of `requester` in `states`, all of them open: one Query of the sparse
    /// index `open_by_requester`, which holds only open requests, so it reads the requester's
    /// open requests and nothing else (not their history, not everyone's open requests).
    /// Newest first, as from `by_requester`.
    async fn open_requests_of(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        self.query_requests(
            OPEN_BY_REQUESTER,
            attr::GSI4PK,
            requester_key(requester),
            true,
            Keep::States(states),
        )
        .await
    }

    /// One page of `query` from `plan`'s partition after `after` (from its start when `None`):
    /// reads with `Limit` one past what the page still needs, until the page is full and one
    /// more request of it was read, the partition ends, or the budget is spent.
    async fn read_list_page(
        &self,
        query: &ListQuery,
        plan: &ListPlan,
        mut after: Option<Item>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let budget = self.list_budget.max(limit + 1);
        let mut kept: Vec<(Request, Item)> = Vec::new();
        let mut read = 0;
        loop {
            let room = (limit + 1 - kept.len()).min(budget - read);
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(plan.index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", plan.pk_attr)
                .expression_attribute_values(":pk", s(&plan.partition))
                .scan_index_forward(!query.newest_first())
                .limit(page_limit(room))
                .set_exclusive_start_key(after.take());
            if let Some(filter) = &plan.filter {
                request = request.filter_expression(&filter.expression);
                for (name, attribute) in &filter.names {
                    request = request.expression_attribute_names(*name, *attribute);
                }
                for (placeholder, value) in &filter.values {
                    request = request.expression_attribute_values(placeholder, s(value));
                }
            }
            let output = request
                .send()
                .await
                .map_err(|e| self.unavailable(&format!("Query {}", plan.index), e))?;
            let scanned = usize::try_from(output.scanned_count).unwrap_or(0);
            read += scanned;
            self.list_reads.fetch_add(scanned as u64, Ordering::Relaxed);
            for item in output.items.unwrap_or_default() {
                let found = request_from_item(&item)?;
                // What the filter kept, checked again here (and all of it for a decider of more
                // flows than a filter may name).
                if query.keeps(&found) {
                    kept.push((found, item));
                }
            }
            let next = if kept.len() > limit {
                kept.truncate(limit);
                kept.last().map(|(_, item)| index_key(item, plan.index()))
            } else {
                match output.last_evaluated_key {
                    None => None,
                    Some(key) if read >= budget => Some(key),
                    Some(key) => {
                        after = Some(key);
                        continue;
                    }
                }
            };
            return Ok(ListPage {
                requests: kept.into_iter().map(|(request, _)| request).collect(),
                next: next.map(|key| cursor::encode_list(query, &key)),
            });
        }
    }

    /// One page of an export, day by day through `by_day` from `day` (after `after` in it):
    /// the items in time order, and where the next page starts unless this is the last.
    async fn page_by_day(
        &self,
        window: &AuditWindow,
        mut day: NaiveDate,
        mut after: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Position>), StoreError> {
        let last = last_day(window);
        let mut items = Vec::new();
        while day <= last {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_DAY)
                .expression_attribute_names("#pk", attr::GSI3PK)
                .expression_attribute_values(":day", s(day_key(day)))
                .limit(page_limit(limit - items.len()))
                .set_exclusive_start_key(after.take());
            // `gsi3sk` is `<at>#<id>#<seq>`: it sorts after the bare timestamp of its own
            // instant, so `>= since` keeps the events at `since`, and `BETWEEN since AND until`
            // (inclusive) or `< until` leaves out those at `until`.
            let (since, until) = (window.since.map(timestamp), window.until.map(timestamp));
            let condition = match (&since, &until) {
                (Some(_), Some(_)) => "#pk = :day AND #sk BETWEEN :since AND :until",
                (Some(_), None) => "#pk = :day AND #sk >= :since",
                (None, Some(_)) => "#pk = :day AND #sk < :until",
                (None, None) => "#pk = :day",
            };
            query = query.key_condition_expression(condition);
            if since.is_some() || until.is_some() {
                query = query.expression_attribute_names("#sk", attr::GSI3SK);
            }
            if let Some(since) = since {
                query = query.expression_attribute_values(":since", s(since));
            }
            if let Some(until) = until {
                query = query.expression_attribute_values(":until", s(until));
            }
            let output = query
                .send()
                .await
                .map_err(|e| self.unavailable(&format!("Query {BY_DAY}"), e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) => after = Some(key),
                None => day = day + chrono::Days::new(1),
            }
            if items.len() >= limit {
                let next = (day <= last).then_some(Position::Day { day, after });
                return Ok((items, next));
            }
        }
        Ok((items, None))
    }

    /// One page of an export from a scan of `by_day` (after `after`): the items in no
    /// particular order, and where the next page starts unless this is the last.
    async fn page_by_scan(
        &self,
        window: &AuditWindow,
        mut after: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Position>), StoreError> {
        let mut items = Vec::new();
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .index_name(BY_DAY)
                .limit(page_limit(limit - items.len()))
                .set_exclusive_start_key(after.take());
            let mut filter = Vec::new();
            if let Some(since) = window.since {
                filter.push("#at >= :since");
                scan = scan.expression_attribute_values(":since", s(timestamp(since)));
            }
            if let Some(until) = window.until {
                filter.push("#at < :until");
                scan = scan.expression_attribute_values(":until", s(timestamp(until)));
            }
            if !filter.is_empty() {
                scan = scan
                    .filter_expression(filter.join(" AND "))
                    .expression_attribute_names("#at", attr::AT);
            }
            let output = scan
                .send()
                .await
                .map_err(|e| self.unavailable(&format!("Scan {BY_DAY}"), e))?;
            // `Limit` counts the items read before the filter: a read may keep fewer, even
            // none, so read on until the page is full or the index ends.
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                None => return Ok((items, None)),
                Some(key) if items.len() >= limit => {
                    return Ok((items, Some(Position::Scan { after: Some(key) })))
                }
                Some(key) => after = Some(key),
            }
        }
    }

    /// Events of one UTC day at or after `since`.
    async fn events_of_day(
        &self,
        day: NaiveDate,
        since: DateTime<Utc>,
    ) -> Result<Vec<Item>, StoreError> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(BY_DAY)
            .key_condition_expression("#pk = :day AND #sk >= :since")
            .expression_attribute_names("#pk", attr::GSI3PK)
            .expression_attribute_names("#sk", attr::GSI3SK)
            .expression_attribute_values(":day", s(day_key(day)))
            .expression_attribute_values(":since", s(timestamp(since)))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.unavailable(&format!("Query {BY_DAY}"), e))
    }

    /// Every event, or every event at or after `since`, from the sparse `by_day` index.
    async fn scan_events(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Item>, StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .index_name(BY_DAY);
        if let Some(since) = since {
            scan = scan
                .filter_expression("#at >= :since")
                .expression_attribute_names("#at", attr::AT)
                .expression_attribute_values(":since", s(timestamp(since)));
        }
        scan.into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.unavailable(&format!("Scan {BY_DAY}"), e))
    }
}

/// What a listing keeps of an index partition, filtered by DynamoDB before the items travel.
enum Keep<'a> {
    All,
    States(&'a [State]),
}

/// How a listing is read: the partition of the index, and the filter DynamoDB applies to it.
struct ListPlan {
    index: &'static str,
    pk_attr: &'static str,
    sk_attr: &'static str,
    partition: String,
    filter: Option<Filter>,
    /// The listing is empty without reading anything (a decider of no flow).
    empty: bool,
}

impl ListPlan {
    fn index(&self) -> ListIndex<'_> {
        ListIndex {
            name: self.index,
            pk_attr: self.pk_attr,
            sk_attr: self.sk_attr,
            partition: &self.partition,
        }
    }
}

/// A `FilterExpression` with its names and values (all strings).
struct Filter {
    expression: String,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(String, String)>,
}

/// The plan of `query` (see [`ListQuery::partition`] for which partition a listing reads).
fn list_plan(query: &ListQuery) -> ListPlan {
    let partition = query.partition();
    let (index, pk_attr, sk_attr, key) = match partition {
        ListPartition::Requester(requester) => (
            BY_REQUESTER,
            attr::GSI1PK,
            attr::GSI1SK,
            requester_key(requester),
        ),
        ListPartition::State(state) => (BY_STATE, attr::GSI2PK, attr::GSI2SK, state_key(state)),
    };
    let mut empty = false;
    let mut conditions = Vec::new();
    let mut names = Vec::new();
    let mut values = Vec::new();
    match query {
        ListQuery::Requester { requester, state } => {
            if matches!(partition, ListPartition::State(_)) {
                conditions.push("#requester = :requester".to_owned());
                names.push(("#requester", attr::REQUESTER));
                values.push((":requester".to_owned(), requester.clone()));
            } else if let Some(state) = state {
                conditions.push("#state = :state".to_owned());
                names.push(("#state", attr::STATE));
                values.push((":state".to_owned(), state.as_str().to_owned()));
            }
        }
        ListQuery::State { decider: None, .. } => {}
        ListQuery::State {
            decider: Some(decider),
            ..
        } => {
            empty = decider.flows.is_empty();
            if !empty
                && decider.flows.len() <= MAX_IN_VALUES
                && decider.self_approval.len() <= MAX_IN_VALUES
            {
                let mut list = |prefix: &str, flows: &[elevate_core::FlowName]| {
                    let placeholders: Vec<String> = flows
                        .iter()
                        .enumerate()
                        .map(|(i, flow)| {
                            let placeholder = format!(":{prefix}{i}");
                            values.push((placeholder.clone(), flow.to_string()));
                            placeholder
                        })
                        .collect();
                    format!("#flow IN ({})", placeholders.join(", "))
                };
                let flows = list("f", &decider.flows);
                let own = if decider.self_approval.is_empty() {
                    "#requester <> :person".to_owned()
                } else {
                    format!(
                        "(#requester <> :person OR {})",
                        list("s", &decider.self_approval)
                    )
                };
                conditions.push(format!("{flows} AND {own}"));
                names.push(("#flow", attr::FLOW));
                names.push(("#requester", attr::REQUESTER));
                values.push((":person".to_owned(), decider.person.clone()));
            }
        }
    }
    let filter = (!conditions.is_empty()).then(|| Filter {
        expression: conditions.join(" AND "),
        names,
        values,
    });
    ListPlan {
        index,
        pk_attr,
        sk_attr,
        partition: key,
        filter,
        empty,
    }
}

/// The key of a request item in `index` (as a `LastEvaluatedKey` of it would be).
fn index_key(item: &Item, index: ListIndex<'_>) -> Item {
    [attr::PK, attr::SK, index.pk_attr, index.sk_attr]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), item.get(name)?.clone())))
        .collect()
}

/// The last day an export walked day by day reads: the day of the last instant before
/// `until`, or, with no end, up to tomorrow (a clock a little ahead of ours may already have
/// written events there).
fn last_day(window: &AuditWindow) -> NaiveDate {
    match window.until {
        Some(until) => (until - chrono::Duration::nanoseconds(1)).date_naive(),
        None => {
            let today = Utc::now().date_naive();
            today.max(window.since.map_or(today, |since| since.date_naive())) + chrono::Days::new(1)
        }
    }
}

/// Where the first page of the export of `window` starts: day by day from the day of `since`
/// when that spans a few days, else a scan.
fn first_position(window: &AuditWindow) -> Position {
    match window.since {
        Some(since) if (last_day(window) - since.date_naive()).num_days() <= MAX_DAY_QUERIES => {
            Position::Day {
                day: since.date_naive(),
                after: None,
            }
        }
        _ => Position::Scan { after: None },
    }
}

/// DynamoDB's `Limit` for a read that may fill `room` more events of a page.
fn page_limit(room: usize) -> i32 {
    i32::try_from(room).unwrap_or(i32::MAX)
}

enum TransactFailure {
    /// A condition of the transaction failed; nothing was written.
    Condition,
    Unavailable(StoreError),
}

enum Cancellation {
    Condition,
    Contention,
    Other,
}

fn cancellation(err: &SdkError<TransactWriteItemsError>) -> Cancellation {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    else {
        return match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                Cancellation::Contention
            }
            _ => Cancellation::Other,
        };
    };
    let codes: Vec<&str> = cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|reason| reason.code())
        .collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Cancellation::Condition
    } else if codes.iter().any(|code| {
        matches!(
            *code,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    }) {
        Cancellation::Contention
    } else {
        Cancellation::Other
    }
}

fn build_error(err: aws_smithy_types::error::operation::BuildError) -> StoreError {
    StoreError::Unavailable(Box::new(err) as BoxError)
}

impl DynamoStore {
    /// A transition's transaction: the conditional update of the request and its new audit
    /// event, plus, when `unchanged` is given, a check that that request has not moved.
    async fn write_transition(
        &self,
        step: &Transition,
        unchanged: Option<&Request>,
    ) -> Result<(), StoreError> {
        let (expected, request, event) = (step.from, &step.request, &step.event);
        // A step is made by the state machine; one put together by hand must still agree.
        check_pair(request, event)?;
        let previous_seq = event.seq.checked_sub(1).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "inconsistent write: a transition of request {} cannot be its first event",
                request.id
            ))
        })?;

        // An update, not a put: it sets the fields of the request and removes the optional
        // ones that are unset, but it never removes `message`, which `set_message` may have
        // written after the caller read its copy of the request.
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(attr::PK, s(request_pk(&request.id)))
            .key(attr::SK, s(REQUEST_SK))
            .condition_expression("#c_state = :c_expected AND #c_seq = :c_seq")
            .expression_attribute_names("#c_state", attr::STATE)
            .expression_attribute_names("#c_seq", attr::AUDIT_SEQ)
            .expression_attribute_values(":c_expected", s(expected.as_str()))
            .expression_attribute_values(":c_seq", n(previous_seq));
        let mut set = Vec::new();
        let mut remove = Vec::new();
        for (i, (name, value)) in request_attributes(request).into_iter().enumerate() {
            match value {
                Some(value) => {
                    set.push(format!("#a{i} = :a{i}"));
                    update = update
                        .expression_attribute_names(format!("#a{i}"), name)
                        .expression_attribute_values(format!(":a{i}"), value);
                }
                None if name == attr::MESSAGE => {}
                None => {
                    remove.push(format!("#a{i}"));
                    update = update.expression_attribute_names(format!("#a{i}"), name);
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(build_error)?;
        let put_event = Put::builder()
            .table_name(&self.table)
            .set_item(Some(event_item(event)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(put_event).build(),
        ];
        if let Some(other) = unchanged {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(attr::PK, s(request_pk(&other.id)))
                .key(attr::SK, s(REQUEST_SK))
                .condition_expression("#u_state = :u_state AND #u_seq = :u_seq")
                .expression_attribute_names("#u_state", attr::STATE)
                .expression_attribute_names("#u_seq", attr::AUDIT_SEQ)
                .expression_attribute_values(":u_state", s(other.state.as_str()))
                .expression_attribute_values(":u_seq", n(other.audit_seq))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }

        match self.transact("transition", items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Unavailable(err)) => Err(err),
            Err(TransactFailure::Condition) => match self.get(&request.id).await? {
                None => Err(StoreError::NotFound(request.id.clone())),
                Some(stored) => match unchanged {
                    // The request is as expected, so the other request's check failed.
                    Some(other) if stored.state == expected && stored.audit_seq == previous_seq => {
                        Err(StoreError::Conflict(format!(
                            "request {} is no longer {} at audit_seq {}",
                            other.id, other.state, other.audit_seq
                        )))
                    }
                    _ => Err(StoreError::Conflict(format!(
                        "request {} is {} at audit_seq {}, expected {} at {}",
                        request.id, stored.state, stored.audit_seq, expected, previous_seq
                    ))),
                },
            },
        }
    }
}

#[async_trait]
impl RequestStore for DynamoStore {
    #[instrument(skip_all, fields(request_id = %request.id), err)]
    async fn create(&self, request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
        check_pair(request, event)?;
        let new_item = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
                .build()
                .map_err(build_error)?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let items = vec![
            new_item(request_item(request))?,
            new_item(event_item(event))?,
        ];
        match self.transact("create", items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Condition) => Err(StoreError::Conflict(format!(
                "request {} already exists",
                request.id
            ))),
            Err(TransactFailure::Unavailable(err)) => Err(err),
        }
    }

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(request_pk(id)))
            .key(attr::SK, s(REQUEST_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", e))?;
        found.item().map(request_from_item).transpose()
    }

    // No `err` here: a lost race (Conflict) is an expected answer, which the caller logs as
    // such; a fault is logged by the function that returns it.
    #[instrument(skip_all, fields(request_id = %step.request.id, from = %step.from, to = %step.request.state))]
    async fn transition(&self, step: &Transition) -> Result<(), StoreError> {
        self.write_transition(step, None).await
    }

    #[instrument(skip_all, fields(request_id = %step.request.id, from = %step.from, to = %step.request.state, unchanged = %unchanged.id))]
    async fn transition_while(
        &self,
        step: &Transition,
        unchanged: &Request,
    ) -> Result<(), StoreError> {
        self.write_transition(step, Some(unchanged)).await
    }

    #[instrument(skip_all, fields(request_id = %id), err)]
    async fn set_message(&self, id: &RequestId, message: &MessageRef) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::PK, s(request_pk(id)))
            .key(attr::SK, s(REQUEST_SK))
            .update_expression("SET #message = :message")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#message", attr::MESSAGE)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":message", message_attribute(message))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::NotFound(id.clone()))
            }
            Err(err) => Err(self.unavailable("UpdateItem", err)),
        }
    }

    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        if !states.is_empty() && states.iter().all(|state| !state.is_final()) {
            return self.open_requests_of(requester, states).await;
        }
        let keep = if states.is_empty() {
            Keep::All
        } else {
            Keep::States(states)
        };
        self.query_requests(
            BY_REQUESTER,
            attr::GSI1PK,
            requester_key(requester),
            true,
            keep,
        )
        .await
    }

    /// Listing an open state also puts its requests that `open_by_requester` lacks into it
    /// (`DynamoStore::index_open`): the sweep lists every open state each pass, so requests
    /// opened before the index existed are in it from the first sweep after an upgrade.
    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError> {
        let items = self
            .query_items(BY_STATE, attr::GSI2PK, state_key(state), false, Keep::All)
            .await?;
        let requests = items
            .iter()
            .map(request_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        if !state.is_final() {
            let unindexed = items
                .iter()
                .zip(&requests)
                .filter(|(item, _)| !item.contains_key(attr::GSI4PK))
                .map(|(_, request)| request);
            self.index_open(unindexed).await;
        }
        Ok(requests)
    }

    /// No `err` on the span: a refused cursor is the caller's mistake, answered as such.
    #[instrument(skip_all, fields(query = %query, limit))]
    async fn list_page(
        &self,
        query: &ListQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let plan = list_plan(query);
        let start = after
            .map(|text| cursor::decode_list(query, plan.index(), text))
            .transpose()?;
        if plan.empty {
            return Ok(ListPage::default());
        }
        self.read_list_page(query, &plan, start, limit.max(1)).await
    }

    async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, StoreError> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :evt)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", s(request_pk(id)))
            .expression_attribute_values(":evt", s(EVENT_SK_PREFIX))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.unavailable("Query", e))?;
        items.iter().map(event_from_item).collect()
    }

    async fn audit_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let items = match since {
            None => self.scan_events(None).await?,
            Some(since) => {
                // Up to tomorrow: a clock a little ahead of ours may already have written
                // events there.
                let last = Utc::now().date_naive().max(since.date_naive()) + chrono::Days::new(1);
                let first = since.date_naive();
                if (last - first).num_days() > MAX_DAY_QUERIES {
                    self.scan_events(Some(since)).await?
                } else {
                    let mut items = Vec::new();
                    let mut day = first;
                    while day <= last {
                        items.extend(self.events_of_day(day, since).await?);
                        day = day + chrono::Days::new(1);
                    }
                    items
                }
            }
        };
        let mut events = events_of_index(&items);
        events.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        Ok(events)
    }

    /// Day by day through `by_day` when the window has a start and spans at most
    /// [`MAX_DAY_QUERIES`] days (to `until`, or to tomorrow): then pages follow each other in
    /// time order. Otherwise (the whole trail, or a long window) a scan of `by_day`, whose
    /// pages are each in time order but not after one another: the events of one request may
    /// be spread over several pages in any order, so a reader orders or verifies them per
    /// request.
    ///
    /// No `err` on the span: a refused cursor is the caller's mistake, answered as such.
    #[instrument(skip_all, fields(since = ?window.since, until = ?window.until, limit))]
    async fn audit_page(
        &self,
        window: &AuditWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let position = match after {
            Some(text) => cursor::decode(window, text)?,
            None => first_position(window),
        };
        if window
            .since
            .zip(window.until)
            .is_some_and(|(since, until)| until <= since)
        {
            return Ok(AuditPage::default());
        }
        // A page of nothing would never end an export.
        let limit = limit.max(1);
        let (items, next) = match position {
            Position::Day { day, after } => self.page_by_day(window, day, after, limit).await?,
            Position::Scan { after } => self.page_by_scan(window, after, limit).await?,
        };
        let mut events = events_of_index(&items);
        events.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        Ok(AuditPage {
            events,
            next: next.map(|position| cursor::encode(window, &position)),
        })
    }
}

/// The audit events of items read from the `by_day` index. elevate indexes only its audit
/// events by day: anything else there was written by someone else, and is left out (and
/// logged) rather than stopping every export and anchor behind it. A genuine event that does
/// not read still shows, as a chain that does not verify, or as deleted next to the archive.
fn events_of_index(items: &[Item]) -> Vec<AuditEvent> {
    items
        .iter()
        .filter_map(|item| match event_from_item(item) {
            Ok(event) => Some(event),
            Err(error) => {
                tracing::error!(
                    %error,
                    pk = ?item.get(attr::PK),
                    sk = ?item.get(attr::SK),
                    "an item in the by_day index is not an audit event: left out of the trail"
                );
                None
            }
        })
        .collect()
}
