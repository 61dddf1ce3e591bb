//! [`RequestStore`] on one DynamoDB table (docs/contracts.md, "DynamoDB table").
//!
//! Items, all keyed by the request so one request's history is one item collection:
//! - request: `pk = REQ#<id>`, `sk = REQ`, every `Request` field as its own attribute (strings,
//!   numbers, a map for `message`) so the table reads well in the console, plus
//!   `gsi1pk = REQUESTER#<name>` / `gsi1sk = <created_at>#<id>` (GSI `by_requester`) and
//!   `gsi2pk = STATE#<STATE>` / `gsi2sk = <created_at>#<id>` (GSI `by_state`);
//! - audit event: `pk = REQ#<id>`, `sk = EVT#<seq, 10 digits>`, every `AuditEvent` field, plus
//!   `gsi3pk = AUDIT#<yyyy-mm-dd>` / `gsi3sk = <at>#<id>#<seq>` (GSI `by_day`).
//!
//! `audit_since` uses the `by_day` GSI rather than a table Scan: only audit events carry
//! `gsi3pk`, so the index is sparse and holds nothing but events. An export from a recent date
//! is one Query per day (events of day D are `gsi3pk = AUDIT#D`, in time order by `gsi3sk`);
//! a full export, or one reaching back more than [`MAX_DAY_QUERIES`] days, scans the sparse
//! index, which still reads only events, never requests.
//!
//! Timestamps are RFC 3339 in UTC with nine fractional digits: they round-trip exactly and sort
//! as strings, which the sort keys rely on.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TableStatus, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use elevate_core::audit::{Action, AuditEvent};
use elevate_core::model::{Actor, MessageRef, Request, RequestId, State, Terms};
use elevate_core::ports::{BoxError, RequestStore, StoreError};
use tracing::instrument;

use crate::error::AwsError;

/// GSI of requests by requester, newest first.
pub const BY_REQUESTER: &str = "by_requester";
/// GSI of requests by state, oldest first.
pub const BY_STATE: &str = "by_state";
/// Sparse GSI of audit events by UTC day, in time order.
pub const BY_DAY: &str = "by_day";

/// Above this many days, `audit_since` scans the `by_day` index once instead of querying it
/// day by day.
pub const MAX_DAY_QUERIES: i64 = 62;

/// Attempts of a transaction that DynamoDB cancelled because another transaction was writing
/// the same item at that moment (`TransactionConflict`, not a failed condition).
const TRANSACTION_ATTEMPTS: u32 = 4;

type Item = HashMap<String, AttributeValue>;

/// Requests and their audit events in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its key schema and GSIs (on-demand billing) and waits until the
    /// table and its indexes are ACTIVE. A table that already exists is only waited for. For
    /// tests and `make dev`; deployed tables come from template.yaml.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let build = |e| StoreError::Unavailable(AwsError::boxed(format!("table {table}"), e));
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build)
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(attr::PK, KeyType::Hash)?)
            .key_schema(key(attr::SK, KeyType::Range)?);
        for name in [
            attr::PK,
            attr::SK,
            attr::GSI1PK,
            attr::GSI1SK,
            attr::GSI2PK,
            attr::GSI2SK,
            attr::GSI3PK,
            attr::GSI3SK,
        ] {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            );
        }
        for (index, pk, sk) in [
            (BY_REQUESTER, attr::GSI1PK, attr::GSI1SK),
            (BY_STATE, attr::GSI2PK, attr::GSI2SK),
            (BY_DAY, attr::GSI3PK, attr::GSI3SK),
        ] {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build)?,
            );
        }
        match request.send().await {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => {
                return Err(StoreError::Unavailable(AwsError::boxed(
                    format!("dynamodb CreateTable {table}"),
                    err,
                )))
            }
        }
        Self::wait_active(client, table).await
    }

    async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(AwsError::boxed(
                        format!("dynamodb DescribeTable {table}"),
                        e,
                    ))
                })?;
            let ready = described.table().is_some_and(|t| {
                t.table_status() == Some(&TableStatus::Active)
                    && t.global_secondary_indexes()
                        .iter()
                        .all(|i| i.index_status() == Some(&IndexStatus::Active))
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Unavailable(
                    format!("table {table} is not ACTIVE after 10 minutes").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
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

    async fn query_requests(
        &self,
        index: &str,
        pk_attr: &str,
        pk: String,
        newest_first: bool,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(!newest_first);
        if !states.is_empty() {
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
        let items = query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.unavailable(&format!("Query {index}"), e))?;
        items.iter().map(request_from_item).collect()
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

/// The request and its event must describe the same step, or the audit chain would lie.
fn check_pair(request: &Request, event: &AuditEvent) -> Result<(), StoreError> {
    if event.request_id != request.id
        || event.seq != request.audit_seq
        || event.hash != request.audit_head
        || event.to != request.state
    {
        return Err(StoreError::Corrupt(format!(
            "inconsistent write: request {} (state {}, audit_seq {}) with event of {} (seq {}, to {})",
            request.id, request.state, request.audit_seq, event.request_id, event.seq, event.to
        )));
    }
    Ok(())
}

fn build_error(err: aws_smithy_types::error::operation::BuildError) -> StoreError {
    StoreError::Unavailable(Box::new(err) as BoxError)
}

impl DynamoStore {
    /// A transition's transaction: the conditional update of the request and its new audit
    /// event, plus, when `unchanged` is given, a check that that request has not moved.
    async fn write_transition(
        &self,
        expected: State,
        request: &Request,
        event: &AuditEvent,
        unchanged: Option<&Request>,
    ) -> Result<(), StoreError> {
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

    #[instrument(skip_all, fields(request_id = %request.id, from = %expected, to = %request.state), err)]
    async fn transition(
        &self,
        expected: State,
        request: &Request,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.write_transition(expected, request, event, None).await
    }

    #[instrument(skip_all, fields(request_id = %request.id, from = %expected, to = %request.state, unchanged = %unchanged.id), err)]
    async fn transition_while(
        &self,
        expected: State,
        request: &Request,
        event: &AuditEvent,
        unchanged: &Request,
    ) -> Result<(), StoreError> {
        self.write_transition(expected, request, event, Some(unchanged))
            .await
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
        self.query_requests(
            BY_REQUESTER,
            attr::GSI1PK,
            requester_key(requester),
            true,
            states,
        )
        .await
    }

    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, StoreError> {
        self.query_requests(BY_STATE, attr::GSI2PK, state_key(state), false, &[])
            .await
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
        let mut events = items
            .iter()
            .map(event_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by(|a, b| (a.at, &a.request_id, a.seq).cmp(&(b.at, &b.request_id, b.seq)));
        Ok(events)
    }
}

// ---------------------------------------------------------------------------------------------
// Items

/// Attribute names.
mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
    pub const GSI3PK: &str = "gsi3pk";
    pub const GSI3SK: &str = "gsi3sk";
    /// `request` or `audit_event`, for people reading the table.
    pub const ENTITY: &str = "entity";

    pub const ID: &str = "id";
    pub const FLOW: &str = "flow";
    pub const TARGET: &str = "target";
    pub const REQUESTER: &str = "requester";
    pub const REASON: &str = "reason";
    pub const DURATION: &str = "duration";
    pub const STATE: &str = "state";
    pub const CREATED_AT: &str = "created_at";
    pub const PENDING_UNTIL: &str = "pending_until";
    pub const DECIDED_AT: &str = "decided_at";
    pub const DECIDED_BY: &str = "decided_by";
    pub const DECISION_REASON: &str = "decision_reason";
    pub const ACTIVATED_AT: &str = "activated_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const ENDED_AT: &str = "ended_at";
    pub const ENDED_BY: &str = "ended_by";
    pub const FAILURE: &str = "failure";
    pub const MESSAGE: &str = "message";
    pub const CHANNEL: &str = "channel";
    pub const TS: &str = "ts";
    pub const AUDIT_SEQ: &str = "audit_seq";
    pub const AUDIT_HEAD: &str = "audit_head";
    pub const TERMS: &str = "terms";
    pub const KEPT_ACCESS_FOR: &str = "kept_access_for";
    pub const PRINCIPAL: &str = "principal";

    pub const REQUEST_ID: &str = "request_id";
    pub const SEQ: &str = "seq";
    pub const AT: &str = "at";
    pub const ACTOR: &str = "actor";
    pub const KIND: &str = "kind";
    pub const NAME: &str = "name";
    pub const ACTION: &str = "action";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const PREV_HASH: &str = "prev_hash";
    pub const HASH: &str = "hash";
}

const REQUEST_SK: &str = "REQ";
const EVENT_SK_PREFIX: &str = "EVT#";

fn request_pk(id: &RequestId) -> String {
    format!("REQ#{id}")
}

fn event_sk(seq: u64) -> String {
    format!("{EVENT_SK_PREFIX}{seq:010}")
}

fn requester_key(requester: &str) -> String {
    format!("REQUESTER#{requester}")
}

fn state_key(state: State) -> String {
    format!("STATE#{state}")
}

fn day_key(day: NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn message_attribute(message: &MessageRef) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (attr::CHANNEL.to_owned(), s(&message.channel)),
        (attr::TS.to_owned(), s(&message.ts)),
    ]))
}

/// Every non-key attribute of a request item; `None` for an optional field that is unset.
fn request_attributes(r: &Request) -> Vec<(&'static str, Option<AttributeValue>)> {
    let at = |t: Option<DateTime<Utc>>| t.map(|t| s(timestamp(t)));
    let text = |t: &Option<String>| t.as_ref().map(s);
    let sort_key = format!("{}#{}", timestamp(r.created_at), r.id);
    vec![
        (attr::ENTITY, Some(s("request"))),
        (attr::ID, Some(s(r.id.as_str()))),
        (attr::FLOW, Some(s(&r.flow))),
        (attr::TARGET, Some(s(&r.target))),
        (attr::REQUESTER, Some(s(&r.requester))),
        (attr::TERMS, r.terms.as_ref().map(terms_attribute)),
        (attr::REASON, Some(s(&r.reason))),
        (attr::DURATION, Some(n(r.duration.as_secs()))),
        (attr::STATE, Some(s(r.state.as_str()))),
        (attr::CREATED_AT, Some(s(timestamp(r.created_at)))),
        (attr::PENDING_UNTIL, Some(s(timestamp(r.pending_until)))),
        (attr::DECIDED_AT, at(r.decided_at)),
        (attr::DECIDED_BY, text(&r.decided_by)),
        (attr::DECISION_REASON, text(&r.decision_reason)),
        (attr::ACTIVATED_AT, at(r.activated_at)),
        (attr::EXPIRES_AT, at(r.expires_at)),
        (attr::ENDED_AT, at(r.ended_at)),
        (attr::ENDED_BY, text(&r.ended_by)),
        (
            attr::KEPT_ACCESS_FOR,
            r.kept_access_for.as_ref().map(|id| s(id.as_str())),
        ),
        (attr::FAILURE, text(&r.failure)),
        (attr::MESSAGE, r.message.as_ref().map(message_attribute)),
        (attr::AUDIT_SEQ, Some(n(r.audit_seq))),
        (attr::AUDIT_HEAD, Some(s(&r.audit_head))),
        (attr::GSI1PK, Some(s(requester_key(&r.requester)))),
        (attr::GSI1SK, Some(s(&sort_key))),
        (attr::GSI2PK, Some(s(state_key(r.state)))),
        (attr::GSI2SK, Some(s(sort_key))),
    ]
}

fn request_item(r: &Request) -> Item {
    let mut item: Item = request_attributes(r)
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
    item.insert(attr::PK.to_owned(), s(request_pk(&r.id)));
    item.insert(attr::SK.to_owned(), s(REQUEST_SK));
    item
}

fn event_item(e: &AuditEvent) -> Item {
    let (kind, name) = match &e.actor {
        Actor::Person(name) => ("person", name),
        Actor::System(name) => ("system", name),
    };
    let mut item = HashMap::from([
        (attr::PK.to_owned(), s(request_pk(&e.request_id))),
        (attr::SK.to_owned(), s(event_sk(e.seq))),
        (attr::ENTITY.to_owned(), s("audit_event")),
        (attr::REQUEST_ID.to_owned(), s(e.request_id.as_str())),
        (attr::SEQ.to_owned(), n(e.seq)),
        (attr::AT.to_owned(), s(timestamp(e.at))),
        (
            attr::ACTOR.to_owned(),
            AttributeValue::M(HashMap::from([
                (attr::KIND.to_owned(), s(kind)),
                (attr::NAME.to_owned(), s(name)),
            ])),
        ),
        (attr::ACTION.to_owned(), s(e.action.as_str())),
        (attr::TO.to_owned(), s(e.to.as_str())),
        (attr::PREV_HASH.to_owned(), s(&e.prev_hash)),
        (attr::HASH.to_owned(), s(&e.hash)),
        (attr::GSI3PK.to_owned(), s(day_key(e.at.date_naive()))),
        (
            attr::GSI3SK.to_owned(),
            s(format!(
                "{}#{}#{:010}",
                timestamp(e.at),
                e.request_id,
                e.seq
            )),
        ),
    ]);
    if let Some(from) = e.from {
        item.insert(attr::FROM.to_owned(), s(from.as_str()));
    }
    if let Some(reason) = &e.reason {
        item.insert(attr::REASON.to_owned(), s(reason));
    }
    if let Some(principal) = &e.principal {
        item.insert(attr::PRINCIPAL.to_owned(), s(principal));
    }
    if let Some(terms) = &e.terms {
        item.insert(attr::TERMS.to_owned(), terms_attribute(terms));
    }
    item
}

/// A grant's terms as a map attribute, field for field as in the API's JSON.
fn terms_attribute(terms: &Terms) -> AttributeValue {
    json_attribute(&serde_json::to_value(terms).unwrap_or_default())
}

fn json_attribute(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => s(text),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_attribute).collect()),
        Value::Object(fields) => AttributeValue::M(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), json_attribute(v)))
                .collect(),
        ),
    }
}

fn attribute_json(value: &AttributeValue) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(number) => serde_json::from_str(number).ok()?,
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(attribute_json).collect::<Option<_>>()?)
        }
        AttributeValue::M(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Some((k.clone(), attribute_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Reads typed attributes out of an item, naming the item and attribute when one is wrong.
struct Fields<'a> {
    item: &'a Item,
    what: &'static str,
}

impl Fields<'_> {
    fn corrupt(&self, name: &str, problem: impl std::fmt::Display) -> StoreError {
        let key = self
            .item
            .get(attr::PK)
            .and_then(|v| v.as_s().ok())
            .map_or("?", String::as_str);
        StoreError::Corrupt(format!("{} {key}: attribute `{name}` {problem}", self.what))
    }

    fn opt_s(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.corrupt(name, "is not a string")),
        }
    }

    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    fn u64(&self, name: &str) -> Result<u64, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(value)) => value
                .parse()
                .map_err(|_| self.corrupt(name, format!("`{value}` is not a whole number"))),
            None => Err(self.corrupt(name, "is missing")),
            Some(_) => Err(self.corrupt(name, "is not a number")),
        }
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_s(name)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        self.corrupt(name, format!("`{text}` is not an RFC 3339 time: {e}"))
                    })
            })
            .transpose()
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    fn state(&self, name: &str) -> Result<State, StoreError> {
        let text = self.s(name)?;
        text.parse().map_err(|e| self.corrupt(name, e))
    }

    fn opt_state(&self, name: &str) -> Result<Option<State>, StoreError> {
        self.opt_s(name)?
            .map(|text| text.parse().map_err(|e| self.corrupt(name, e)))
            .transpose()
    }

    fn request_id(&self, name: &str) -> Result<RequestId, StoreError> {
        let text = self.s(name)?;
        text.parse().map_err(|e| self.corrupt(name, e))
    }

    fn terms(&self, name: &str) -> Result<Option<Terms>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(value) => attribute_json(value)
                .and_then(|json| serde_json::from_value(json).ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(name, "is not a grant's terms")),
        }
    }

    fn map(&self, name: &str) -> Result<Option<Fields<'_>>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::M(map)) => Ok(Some(Fields {
                item: map,
                what: self.what,
            })),
            Some(_) => Err(self.corrupt(name, "is not a map")),
        }
    }
}

fn request_from_item(item: &Item) -> Result<Request, StoreError> {
    let f = Fields {
        item,
        what: "request",
    };
    let message = match f.map(attr::MESSAGE)? {
        None => None,
        Some(m) => Some(MessageRef {
            channel: m.s(attr::CHANNEL)?,
            ts: m.s(attr::TS)?,
        }),
    };
    Ok(Request {
        id: f.request_id(attr::ID)?,
        flow: f.s(attr::FLOW)?,
        target: f.s(attr::TARGET)?,
        requester: f.s(attr::REQUESTER)?,
        terms: f.terms(attr::TERMS)?,
        reason: f.s(attr::REASON)?,
        duration: Duration::from_secs(f.u64(attr::DURATION)?),
        state: f.state(attr::STATE)?,
        created_at: f.time(attr::CREATED_AT)?,
        pending_until: f.time(attr::PENDING_UNTIL)?,
        decided_at: f.opt_time(attr::DECIDED_AT)?,
        decided_by: f.opt_s(attr::DECIDED_BY)?,
        decision_reason: f.opt_s(attr::DECISION_REASON)?,
        activated_at: f.opt_time(attr::ACTIVATED_AT)?,
        expires_at: f.opt_time(attr::EXPIRES_AT)?,
        ended_at: f.opt_time(attr::ENDED_AT)?,
        ended_by: f.opt_s(attr::ENDED_BY)?,
        kept_access_for: f
            .opt_s(attr::KEPT_ACCESS_FOR)?
            .map(|text| {
                text.parse()
                    .map_err(|e| f.corrupt(attr::KEPT_ACCESS_FOR, e))
            })
            .transpose()?,
        failure: f.opt_s(attr::FAILURE)?,
        message,
        audit_seq: f.u64(attr::AUDIT_SEQ)?,
        audit_head: f.s(attr::AUDIT_HEAD)?,
    })
}

fn event_from_item(item: &Item) -> Result<AuditEvent, StoreError> {
    let f = Fields {
        item,
        what: "audit event",
    };
    let actor = f
        .map(attr::ACTOR)?
        .ok_or_else(|| f.corrupt(attr::ACTOR, "is missing"))?;
    let actor = match actor.s(attr::KIND)?.as_str() {
        "person" => Actor::Person(actor.s(attr::NAME)?),
        "system" => Actor::System(actor.s(attr::NAME)?),
        other => {
            return Err(f.corrupt(
                attr::ACTOR,
                format!("has kind `{other}` (expected person or system)"),
            ))
        }
    };
    let action_text = f.s(attr::ACTION)?;
    let action: Action = serde_json::from_value(serde_json::Value::String(action_text.clone()))
        .map_err(|_| f.corrupt(attr::ACTION, format!("`{action_text}` is not an action")))?;
    Ok(AuditEvent {
        request_id: f.request_id(attr::REQUEST_ID)?,
        seq: f.u64(attr::SEQ)?,
        at: f.time(attr::AT)?,
        actor,
        principal: f.opt_s(attr::PRINCIPAL)?,
        action,
        from: f.opt_state(attr::FROM)?,
        to: f.state(attr::TO)?,
        reason: f.opt_s(attr::REASON)?,
        terms: f.terms(attr::TERMS)?,
        prev_hash: f.s(attr::PREV_HASH)?,
        hash: f.s(attr::HASH)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_core::config::{Person, Target, TargetKind};
    use elevate_core::machine::{apply, open, Command, NewRequest};
    use elevate_core::model::By;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn full_request() -> (Request, AuditEvent) {
        let now = at("2026-11-25T10:00:00.123456789Z");
        let (request, _) = open(
            RequestId::generate(now),
            NewRequest {
                flow: "infra_access".into(),
                target: "admins".into(),
                requester: "alice".into(),
                reason: "incident 42".into(),
                duration: Duration::from_secs(3600),
                pending_timeout: Duration::from_secs(600),
                terms: Terms {
                    target: Target {
                        name: "admins".into(),
                        kind: TargetKind::IamGroup {
                            group: "SymDemoAdmins".into(),
                        },
                    },
                    person: Person {
                        name: "alice".into(),
                        iam_user: "alice.iam".into(),
                        slack_id: "U0ALICE01".into(),
                        email: "alice@example.com".into(),
                    },
                },
            },
            "arn:aws:iam::123456789012:user/alice.iam",
            now,
        );
        let approved = apply(
            &request,
            Command::Approve {
                reason: Some("ok".into()),
            },
            &By::person("bob", "slack:T1/U0BOB0001"),
            at("2026-11-25T10:01:00.000000001Z"),
        )
        .expect("approve");
        let mut full = approved.request;
        full.activated_at = Some(at("2026-11-25T10:01:02Z"));
        full.expires_at = Some(at("2026-11-25T11:01:02Z"));
        full.ended_at = Some(at("2026-11-25T10:30:00.5Z"));
        full.ended_by = Some("elevate:revoke".into());
        full.kept_access_for = Some(request.id.clone());
        full.failure = Some("IAM said no".into());
        full.message = Some(MessageRef {
            channel: "C123".into(),
            ts: "1700000000.000100".into(),
        });
        (full, approved.event)
    }

    #[test]
    fn request_items_round_trip_with_every_field() {
        let (request, _) = full_request();
        let item = request_item(&request);
        assert_eq!(request_from_item(&item).expect("parse"), request);
        assert_eq!(
            item.get("gsi2pk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("STATE#APPROVED")
        );
        assert_eq!(
            item.get("created_at")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("2026-11-25T10:00:00.123456789Z")
        );
        assert!(matches!(item.get("duration"), Some(AttributeValue::N(secs)) if secs == "3600"));
    }

    #[test]
    fn event_items_round_trip() {
        let (_, event) = full_request();
        let item = event_item(&event);
        assert_eq!(event_from_item(&item).expect("parse"), event);
        assert_eq!(
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("EVT#0000000002")
        );
        assert_eq!(
            item.get("gsi3pk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("AUDIT#2026-11-25")
        );
    }

    #[test]
    fn a_corrupt_item_names_the_attribute() {
        let (request, _) = full_request();
        let mut item = request_item(&request);
        item.insert("state".into(), s("ACTIVATED"));
        let err = request_from_item(&item).expect_err("corrupt");
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("`state`")),
            "{err}"
        );
        item.remove("audit_seq");
        let err = request_from_item(&item).expect_err("corrupt");
        assert!(matches!(&err, StoreError::Corrupt(_)), "{err}");
    }
}
