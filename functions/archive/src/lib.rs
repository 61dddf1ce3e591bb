//! The archive function: every audit event into the write-once archive, and the anchors that
//! pin every chain head (docs/contracts.md, "Audit archive"). It receives two kinds of event:
//!
//! - a batch of the table's DynamoDB stream (`Records`, audit event items only: the event
//!   source mapping filters on `sk` beginning with `EVT#`; any other item is ignored here too):
//!   - an INSERT is the event written: [`Archive::put_event`]. The same event archived before
//!     (a retried batch) is fine; another one under the same identity is a
//!     [`ArchiveError::Conflict`], logged at error level and archived as a change, never
//!     retried.
//!   - a MODIFY or REMOVE is an audit event changed or deleted in the table, which elevate
//!     never does: archived as a [`TableChange`] and logged at error level.
//!
//!   When the archive is unavailable the answer names that record and every one after it in
//!   `batchItemFailures` (the records after it are not attempted), and Lambda retries the
//!   batch from there: no event is skipped, and none is archived out of order by a retry.
//! - the anchor task ([`ANCHOR_INPUT`], from a schedule): [`write_anchor`] seals the heads of
//!   every chain that moved since the last anchor and archives it; the answer names its key.
//!
//! Every change and conflict is logged with the field `audit_change` (the alarm's metric
//! filter in template.yaml counts them).

use std::sync::Arc;

use aws_lambda_events::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use elevate_aws::dynamo::{event_from_stream_image, stream_event_key};
use elevate_core::archive::{
    anchor_key, write_anchor, AnchorError, Archive, ArchiveError, Archived, ChangeKind,
    TableChange, SETTLE,
};
use elevate_core::ports::{Clock, RequestStore, SystemClock};
use elevate_runtime::ArchiveParts;
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::{json, Value};

/// The input of the anchor schedule.
pub const ANCHOR_INPUT: &str = r#"{"task":"anchor"}"#;

/// What the function works with.
#[derive(Clone)]
pub struct Archiver {
    pub archive: Arc<dyn Archive>,
    pub store: Arc<dyn RequestStore>,
    pub clock: Arc<dyn Clock>,
}

impl Archiver {
    /// The archiver of `parts` ([`elevate_runtime::build_archive`]) on the system clock.
    pub fn from_parts(parts: ArchiveParts) -> Self {
        Archiver {
            archive: parts.archive,
            store: parts.store,
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event not understood: {0}")]
    BadEvent(String),
    /// The anchor could not be written; the next schedule (or a retry) writes it.
    #[error("anchor: {0}")]
    Anchor(#[from] AnchorError),
    /// A stream record failed that Lambda cannot be told about by itself (it has no sequence
    /// number): the whole batch is retried.
    #[error("stream record {record} not archived: {error}")]
    Stream { record: String, error: ArchiveError },
}

impl From<Error> for Diagnostic {
    fn from(err: Error) -> Diagnostic {
        let error_type = match &err {
            Error::BadEvent(_) => "BadEvent",
            Error::Anchor(_) => "AnchorFailed",
            Error::Stream { .. } => "ArchiveUnavailable",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// A task's input, e.g. [`ANCHOR_INPUT`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskInput {
    task: Task,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Task {
    Anchor,
}

#[derive(Debug, Deserialize)]
struct StreamBatch {
    #[serde(rename = "Records")]
    records: Vec<EventRecord>,
}

/// Handles one event: a stream batch (answered with its `batchItemFailures`, empty when every
/// record is done) or the anchor task (answered `{"anchor": key or null}`).
pub async fn handle(archiver: &Archiver, event: Value) -> Result<Value, Error> {
    if event.get("Records").is_some() {
        let batch: StreamBatch = serde_json::from_value(event)
            .map_err(|err| Error::BadEvent(format!("not a DynamoDB stream batch: {err}")))?;
        return archive_batch(archiver, &batch.records).await;
    }
    match serde_json::from_value::<TaskInput>(event) {
        Ok(TaskInput { task: Task::Anchor }) => anchor(archiver).await,
        Err(_) => Err(Error::BadEvent(format!(
            "expected a DynamoDB stream batch {{\"Records\": [...]}} or {ANCHOR_INPUT}"
        ))),
    }
}

/// What became of one stream record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Archived(Archived),
    /// A modified or removed event, archived as a change.
    Changed,
    /// The archive holds another event under this one's identity; archived as a change.
    Conflict,
    /// An inserted item under an event key that does not read as an event.
    Unreadable,
    Ignored,
}

#[derive(Debug, Default)]
struct Tally {
    written: usize,
    already_there: usize,
    changed: usize,
    conflicts: usize,
    unreadable: usize,
    ignored: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        let count = match outcome {
            Outcome::Archived(Archived::Written) => &mut self.written,
            Outcome::Archived(Archived::AlreadyThere) => &mut self.already_there,
            Outcome::Changed => &mut self.changed,
            Outcome::Conflict => &mut self.conflicts,
            Outcome::Unreadable => &mut self.unreadable,
            Outcome::Ignored => &mut self.ignored,
        };
        *count += 1;
    }
}

#[tracing::instrument(skip_all, fields(records = records.len()))]
async fn archive_batch(archiver: &Archiver, records: &[EventRecord]) -> Result<Value, Error> {
    let mut tally = Tally::default();
    for (index, record) in records.iter().enumerate() {
        let error = match archive_record(archiver, record).await {
            Ok(outcome) => {
                tally.add(outcome);
                continue;
            }
            Err(error) => error,
        };
        tracing::warn!(
            %error,
            event_id = %record.event_id,
            sequence_number = record.change.sequence_number.as_deref().unwrap_or("-"),
            not_attempted = records.len() - index - 1,
            ?tally,
            "archive unavailable; Lambda retries the batch from this record"
        );
        if record.change.sequence_number.is_none() {
            // Lambda cannot be told which record: the whole batch is retried.
            return Err(Error::Stream {
                record: record.event_id.clone(),
                error,
            });
        }
        // Lambda retries from the lowest sequence number reported: this record.
        let failed: Vec<Value> = records[index..]
            .iter()
            .filter_map(|r| r.change.sequence_number.as_deref())
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        return Ok(json!({ "batchItemFailures": failed }));
    }
    tracing::info!(?tally, "stream batch archived");
    Ok(json!({ "batchItemFailures": [] }))
}

/// Archives one record. `Err` only when the archive is unavailable (worth retrying).
#[tracing::instrument(skip_all, fields(event_id = %record.event_id, event_name = %record.event_name))]
async fn archive_record(
    archiver: &Archiver,
    record: &EventRecord,
) -> Result<Outcome, ArchiveError> {
    let change = &record.change;
    // Lambda always sends the keys; the images are a fallback for a record without them.
    let key = [&change.keys, &change.new_image, &change.old_image]
        .into_iter()
        .find(|item| !item.inner().is_empty())
        .and_then(stream_event_key);
    let (request_id, seq) = match key {
        None => return Ok(Outcome::Ignored),
        Some(Ok(identity)) => identity,
        Some(Err(why)) => {
            // Written by someone else: its key must not choose an archive object (nor make
            // S3 refuse the write for good and hold up the stream behind it).
            tracing::error!(
                audit_change = "unreadable",
                why,
                "an item under an audit event's sort key that elevate never writes: not archived"
            );
            return Ok(Outcome::Unreadable);
        }
    };
    let kind = match record.event_name.as_str() {
        "INSERT" => return archive_insert(archiver, record, &request_id, seq).await,
        "MODIFY" => ChangeKind::Modify,
        "REMOVE" => ChangeKind::Remove,
        other => {
            tracing::warn!(
                event_name = other,
                "stream record of an unknown kind, ignored"
            );
            return Ok(Outcome::Ignored);
        }
    };
    let table_change = TableChange {
        request_id,
        seq,
        change: kind,
        at: recorded_at(archiver, record),
        stream_event_id: record.event_id.clone(),
        before: image_json(&change.old_image),
        after: match kind {
            ChangeKind::Modify => image_json(&change.new_image),
            ChangeKind::Remove | ChangeKind::Misdated => None,
        },
    };
    archiver.archive.put_change(&table_change).await?;
    let what = match kind {
        ChangeKind::Modify => "modify",
        ChangeKind::Remove => "remove",
        ChangeKind::Misdated => "misdated",
    };
    tracing::error!(
        audit_change = what,
        request_id = %table_change.request_id,
        seq = table_change.seq,
        at = %table_change.at,
        "an audit event was changed or deleted in the table; the change is archived"
    );
    Ok(Outcome::Changed)
}

async fn archive_insert(
    archiver: &Archiver,
    record: &EventRecord,
    request_id: &str,
    seq: u64,
) -> Result<Outcome, ArchiveError> {
    let event = match event_from_stream_image(&record.change.new_image) {
        Ok(event) => event,
        Err(err) => {
            tracing::error!(
                audit_change = "unreadable",
                request_id,
                seq,
                error = %err,
                "an item written under an audit event key is not an audit event: not archived"
            );
            return Ok(Outcome::Unreadable);
        }
    };
    if (event.request_id.as_str(), event.seq) != (request_id, seq) {
        // The body names another event than the keys: archived under its own identity it
        // could take the archive key of an event elevate has yet to write.
        tracing::error!(
            audit_change = "unreadable",
            request_id,
            seq,
            claims_request_id = %event.request_id,
            claims_seq = event.seq,
            "an audit event item whose body names another event than its keys: not archived"
        );
        return Ok(Outcome::Unreadable);
    }
    let written_at = recorded_at(archiver, record);
    if (event.at - written_at).abs() > SETTLE {
        // Archived as written, and the time it was really written beside it: an event dated
        // ahead would otherwise pass every check until its time came, and then be anchored.
        archiver
            .archive
            .put_change(&TableChange {
                request_id: request_id.to_owned(),
                seq,
                change: ChangeKind::Misdated,
                at: written_at,
                stream_event_id: record.event_id.clone(),
                before: None,
                after: serde_json::to_value(&event).ok(),
            })
            .await?;
        tracing::error!(
            audit_change = "misdated",
            request_id,
            seq,
            dated = %event.at,
            written = %written_at,
            "an audit event was written with a time far from when it was written; the write time is archived beside it"
        );
    }
    let refused = match archiver.archive.put_event(&event).await {
        Ok(archived) => return Ok(Outcome::Archived(archived)),
        Err(ArchiveError::Unavailable(err)) => return Err(ArchiveError::Unavailable(err)),
        Err(refused) => refused,
    };
    // The archived event stays; the table's is kept as a change so that both are evidence.
    tracing::error!(
        audit_change = "conflict",
        request_id,
        seq,
        error = %refused,
        "the table's audit event is not the one archived under its identity"
    );
    archiver
        .archive
        .put_change(&TableChange {
            request_id: request_id.to_owned(),
            seq,
            change: ChangeKind::Modify,
            at: recorded_at(archiver, record),
            stream_event_id: record.event_id.clone(),
            before: None,
            after: serde_json::to_value(&event).ok(),
        })
        .await?;
    Ok(Outcome::Conflict)
}

/// When the stream recorded the change (Lambda always sends it; the clock otherwise).
fn recorded_at(archiver: &Archiver, record: &EventRecord) -> DateTime<Utc> {
    let at = record.change.approximate_creation_date_time;
    if at.timestamp() == 0 {
        archiver.clock.now()
    } else {
        at
    }
}

/// An image as the event it holds, or as DynamoDB JSON when it does not read as one; `None`
/// when the record carries no such image.
fn image_json(image: &serde_dynamo::Item) -> Option<Value> {
    if image.inner().is_empty() {
        return None;
    }
    match event_from_stream_image(image) {
        Ok(event) => serde_json::to_value(event).ok(),
        Err(_) => serde_json::to_value(image).ok(),
    }
}

#[tracing::instrument(skip_all)]
async fn anchor(archiver: &Archiver) -> Result<Value, Error> {
    let now = archiver.clock.now();
    match write_anchor(archiver.store.as_ref(), archiver.archive.as_ref(), now).await {
        Ok(Some(anchor)) => {
            let key = anchor_key(anchor.until);
            tracing::info!(%key, heads = anchor.heads.len(), until = %anchor.until, "anchor written");
            Ok(json!({ "anchor": key }))
        }
        Ok(None) => {
            tracing::info!("the latest anchor is recent enough");
            Ok(json!({ "anchor": null }))
        }
        Err(err) => {
            tracing::error!(error = %err, "anchor not written");
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests;
