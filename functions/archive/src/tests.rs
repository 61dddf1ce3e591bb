//! The archive function with DynamoDB stream batches shaped as Lambda delivers them (typed
//! attribute values, sequence numbers, the stream's ARN), real audit trails of the fakes, and
//! the in-memory archive with S3's write-once semantics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use elevate_core::archive::{Anchor, Archive, ArchiveError, Archived, ChangeKind, TableChange};
use elevate_core::audit::AuditEvent;
use elevate_core::ports::Clock;
use elevate_core::testing::{infra_config, FakeApp, FakeArchive};
use elevate_core::RequestId;
use serde_json::{json, Value};

use crate::{handle, Archiver, Error, ANCHOR_INPUT};

const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/elevate/stream/2026-01-05T09:00:00.000";

/// The archive, failing the first put of one event as an unreachable S3 would.
struct FailingOnce {
    archive: Arc<FakeArchive>,
    failing: Mutex<Option<(String, u64)>>,
}

#[async_trait]
impl Archive for FailingOnce {
    async fn put_event(&self, event: &AuditEvent) -> Result<Archived, ArchiveError> {
        let identity = (event.request_id.as_str().to_owned(), event.seq);
        let fails = {
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            failing.take_if(|f| *f == identity).is_some()
        };
        if fails {
            return Err(ArchiveError::Unavailable("injected: S3 unreachable".into()));
        }
        self.archive.put_event(event).await
    }

    async fn put_change(&self, change: &TableChange) -> Result<(), ArchiveError> {
        self.archive.put_change(change).await
    }

    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError> {
        self.archive.latest_anchor().await
    }

    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError> {
        self.archive.put_anchor(anchor).await
    }
}

struct Fixture {
    app: FakeApp,
    archive: Arc<FakeArchive>,
    archiver: Archiver,
}

impl Fixture {
    fn new() -> Self {
        let app = FakeApp::new(infra_config());
        let archive = Arc::new(FakeArchive::new());
        let archiver = Archiver {
            archive: archive.clone(),
            store: app.store.clone(),
            clock: app.clock.clone(),
        };
        Fixture {
            app,
            archive,
            archiver,
        }
    }

    /// The first put of `event` fails as unavailable.
    fn fail_once(&mut self, event: &AuditEvent) {
        self.archiver.archive = Arc::new(FailingOnce {
            archive: self.archive.clone(),
            failing: Mutex::new(Some((event.request_id.as_str().to_owned(), event.seq))),
        });
    }

    /// A request submitted, approved and escalated: its events, the first with its terms.
    async fn trail(&self) -> Vec<AuditEvent> {
        let id = self
            .app
            .submit("alice", "infra_access", Duration::from_secs(3600))
            .await;
        self.app.clock.advance(Duration::from_secs(30));
        self.app.approve(&id, "bob").await;
        elevate_core::service::escalate(&self.app.app, &id)
            .await
            .expect("escalate")
            .expect("escalated");
        self.events_of(&id)
    }

    fn events_of(&self, id: &RequestId) -> Vec<AuditEvent> {
        let mut events: Vec<AuditEvent> = self
            .app
            .store
            .events_all()
            .into_iter()
            .filter(|e| &e.request_id == id)
            .collect();
        events.sort_by_key(|e| e.seq);
        events
    }

    async fn handle(&self, event: Value) -> Value {
        handle(&self.archiver, event).await.expect("handled")
    }
}

/// A JSON value as a DynamoDB attribute value (`{"S": ...}`, `{"N": "..."}`, `{"M": ...}`).
fn typed(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::String(s) => json!({ "S": s }),
        Value::Array(items) => json!({ "L": items.iter().filter_map(typed).collect::<Vec<_>>() }),
        Value::Object(fields) => json!({ "M": typed_map(fields) }),
    })
}

fn typed_map(fields: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), typed(v)?)))
        .collect()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The keys of an audit event item (docs/contracts.md, "DynamoDB table").
fn event_keys(request_id: &str, seq: u64) -> Value {
    json!({ "pk": { "S": format!("REQ#{request_id}") }, "sk": { "S": format!("EVT#{seq:010}") } })
}

/// The item the store writes for `event`, as a stream image.
fn image(event: &AuditEvent) -> Value {
    let mut item = serde_json::to_value(event).expect("json");
    let fields = item.as_object_mut().expect("object");
    let id = event.request_id.as_str();
    fields.insert("at".into(), json!(timestamp(event.at)));
    fields.insert("pk".into(), json!(format!("REQ#{id}")));
    fields.insert("sk".into(), json!(format!("EVT#{:010}", event.seq)));
    fields.insert("entity".into(), json!("audit_event"));
    fields.insert(
        "gsi3pk".into(),
        json!(format!("AUDIT#{}", event.at.format("%Y-%m-%d"))),
    );
    fields.insert(
        "gsi3sk".into(),
        json!(format!("{}#{id}#{:010}", timestamp(event.at), event.seq)),
    );
    Value::Object(typed_map(fields))
}

/// When the test stream records a write: a minute after the fixture's clock starts, so the
/// events the fixture writes are dated as they were written.
const RECORDED: i64 = 1_767_603_660;

/// One stream record as Lambda delivers it.
fn record(
    name: &str,
    sequence_number: &str,
    keys: Value,
    new_image: Option<Value>,
    old_image: Option<Value>,
) -> Value {
    let mut change = json!({
        "ApproximateCreationDateTime": RECORDED as f64,
        "Keys": keys,
        "SequenceNumber": sequence_number,
        "SizeBytes": 812,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(image) = new_image {
        change["NewImage"] = image;
    }
    if let Some(image) = old_image {
        change["OldImage"] = image;
    }
    json!({
        "eventID": format!("{:032x}", sequence_number.parse::<u128>().unwrap_or(0)),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    })
}

fn insert(event: &AuditEvent, sequence_number: &str) -> Value {
    record(
        "INSERT",
        sequence_number,
        event_keys(event.request_id.as_str(), event.seq),
        Some(image(event)),
        None,
    )
}

fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// Sequence numbers as DynamoDB Streams writes them: long decimal strings, increasing.
fn sequence_number(n: usize) -> String {
    format!("{}", 100_000_000_000_000_000_000_u128 + n as u128)
}

fn failures(answer: &Value) -> Vec<&str> {
    answer["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().expect("itemIdentifier"))
        .collect()
}

#[tokio::test]
async fn inserted_events_are_archived_once() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    assert!(trail.len() >= 2, "{trail:?}");
    assert!(trail[0].terms.is_some(), "the creation event carries terms");
    let records: Vec<Value> = trail
        .iter()
        .enumerate()
        .map(|(i, e)| insert(e, &sequence_number(i)))
        .collect();

    let answer = fx.handle(batch(records.clone())).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(
        fx.archive.events(),
        trail,
        "every event, as the table has it"
    );

    // Lambda delivers a batch again (after a timeout, say): nothing new, no failure.
    let again = fx.handle(batch(records)).await;
    assert_eq!(again, json!({ "batchItemFailures": [] }));
    assert_eq!(fx.archive.events(), trail);
    assert!(fx.archive.changes().is_empty());
}

#[tokio::test]
async fn modified_and_removed_events_are_archived_as_changes() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let first = &trail[0];
    let mut altered = first.clone();
    altered.reason = Some("nothing to see here".into());
    altered.hash = altered.computed_hash();
    let id = first.request_id.as_str();

    let modify = record(
        "MODIFY",
        &sequence_number(1),
        event_keys(id, first.seq),
        Some(image(&altered)),
        Some(image(first)),
    );
    let remove = record(
        "REMOVE",
        &sequence_number(2),
        event_keys(id, trail[1].seq),
        None,
        Some(image(&trail[1])),
    );
    let answer = fx.handle(batch(vec![modify.clone(), remove.clone()])).await;
    assert_eq!(failures(&answer), Vec::<&str>::new());

    let changes = fx.archive.changes();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let at = DateTime::from_timestamp(RECORDED, 0).expect("time");
    let modified = changes
        .iter()
        .find(|c| c.change == ChangeKind::Modify)
        .expect("modify");
    assert_eq!(
        (modified.request_id.as_str(), modified.seq),
        (id, first.seq)
    );
    assert_eq!(modified.at, at);
    assert_eq!(
        modified.stream_event_id,
        modify["eventID"].as_str().expect("id")
    );
    assert_eq!(
        modified.before,
        Some(serde_json::to_value(first).expect("json"))
    );
    assert_eq!(
        modified.after,
        Some(serde_json::to_value(&altered).expect("json"))
    );

    let removed = changes
        .iter()
        .find(|c| c.change == ChangeKind::Remove)
        .expect("remove");
    assert_eq!(
        (removed.request_id.as_str(), removed.seq),
        (id, trail[1].seq)
    );
    assert_eq!(
        removed.before,
        Some(serde_json::to_value(&trail[1]).expect("json"))
    );
    assert_eq!(removed.after, None);
    assert!(fx.archive.events().is_empty(), "a change is not an event");
}

#[tokio::test]
async fn a_changed_item_that_is_no_event_any_more_is_kept_as_the_table_had_it() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let first = &trail[0];
    let mut broken = image(first);
    broken.as_object_mut().expect("item").remove("hash");
    let modify = record(
        "MODIFY",
        &sequence_number(1),
        event_keys(first.request_id.as_str(), first.seq),
        Some(broken.clone()),
        Some(image(first)),
    );
    fx.handle(batch(vec![modify])).await;
    let changes = fx.archive.changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].after,
        Some(broken),
        "DynamoDB JSON, as the stream had it"
    );
}

#[tokio::test]
async fn items_other_than_audit_events_are_ignored() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let id = trail[0].request_id.as_str();
    let request_item = json!({
        "pk": { "S": format!("REQ#{id}") },
        "sk": { "S": "REQ" },
        "state": { "S": "APPROVED" },
        "audit_seq": { "N": "2" },
    });
    let records = vec![
        record(
            "INSERT",
            &sequence_number(1),
            json!({ "pk": { "S": format!("REQ#{id}") }, "sk": { "S": "REQ" } }),
            Some(request_item.clone()),
            None,
        ),
        record(
            "MODIFY",
            &sequence_number(2),
            json!({ "pk": { "S": format!("REQ#{id}") }, "sk": { "S": "REQ" } }),
            Some(request_item.clone()),
            Some(request_item),
        ),
    ];
    let answer = fx.handle(batch(records)).await;
    assert_eq!(failures(&answer), Vec::<&str>::new());
    assert!(fx.archive.keys().is_empty(), "{:?}", fx.archive.keys());
}

#[tokio::test]
async fn an_unavailable_archive_fails_that_record_and_the_rest_for_lambda_to_retry() {
    let mut fx = Fixture::new();
    let trail = fx.trail().await;
    assert!(trail.len() >= 3, "{trail:?}");
    let numbers: Vec<String> = (0..trail.len()).map(sequence_number).collect();
    let records: Vec<Value> = trail
        .iter()
        .zip(&numbers)
        .map(|(e, n)| insert(e, n))
        .collect();
    fx.fail_once(&trail[1]);

    let answer = fx.handle(batch(records.clone())).await;
    let expected: Vec<&str> = numbers[1..].iter().map(String::as_str).collect();
    assert_eq!(failures(&answer), expected);
    assert_eq!(
        fx.archive.events(),
        trail[..1].to_vec(),
        "the records after the failed one are not attempted"
    );

    // Lambda retries from the failed record.
    let retried = fx.handle(batch(records[1..].to_vec())).await;
    assert_eq!(failures(&retried), Vec::<&str>::new());
    assert_eq!(fx.archive.events(), trail);
}

#[tokio::test]
async fn a_record_without_a_sequence_number_fails_the_whole_batch() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let mut only = insert(&trail[0], "1");
    only["dynamodb"]
        .as_object_mut()
        .expect("dynamodb")
        .remove("SequenceNumber");
    fx.archive.fail_next(1);
    let err = handle(&fx.archiver, batch(vec![only]))
        .await
        .expect_err("the batch fails");
    assert!(matches!(err, Error::Stream { .. }), "{err}");
}

#[tokio::test]
async fn a_conflict_is_archived_as_a_change_and_does_not_block_the_shard() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    // The archive already holds another event under the first one's identity.
    let mut original = trail[0].clone();
    original.reason = Some("the reason that was archived".into());
    original.hash = original.computed_hash();
    fx.archive.put_event(&original).await.expect("seed");

    let records: Vec<Value> = trail
        .iter()
        .enumerate()
        .map(|(i, e)| insert(e, &sequence_number(i)))
        .collect();
    let answer = fx.handle(batch(records.clone())).await;
    assert_eq!(failures(&answer), Vec::<&str>::new(), "never retried");

    let archived = fx.archive.events();
    assert_eq!(archived[0], original, "the archived event stays");
    assert_eq!(
        archived[1..],
        trail[1..],
        "the records after it are archived"
    );
    let changes = fx.archive.changes();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].change, ChangeKind::Modify);
    assert_eq!(
        (changes[0].request_id.as_str(), changes[0].seq),
        (trail[0].request_id.as_str(), trail[0].seq)
    );
    assert_eq!(
        changes[0].after,
        Some(serde_json::to_value(&trail[0]).expect("json"))
    );

    // Delivered again: the same outcome, still nothing to retry, one change.
    let again = fx.handle(batch(records)).await;
    assert_eq!(failures(&again), Vec::<&str>::new());
    assert_eq!(fx.archive.changes().len(), 1);
}

#[tokio::test]
async fn an_event_dated_away_from_its_write_is_archived_with_its_write_time_beside_it() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let recorded = DateTime::from_timestamp(RECORDED, 0).expect("time");
    // Appended by someone who writes the table, dated a week ahead (to be anchored then as if
    // on time), and one back-dated by an hour, each sealed with a correct hash.
    let mut ahead = trail[trail.len() - 1].clone();
    ahead.seq += 1;
    ahead.prev_hash = trail[trail.len() - 1].hash.clone();
    ahead.at = recorded + chrono::Duration::days(7);
    ahead.hash = ahead.computed_hash();
    let mut behind = ahead.clone();
    behind.seq += 1;
    behind.prev_hash = ahead.hash.clone();
    behind.at = recorded - chrono::Duration::hours(1);
    behind.hash = behind.computed_hash();
    // Within SETTLE of the write: on time.
    let mut close = behind.clone();
    close.seq += 1;
    close.prev_hash = behind.hash.clone();
    close.at = recorded + chrono::Duration::minutes(4);
    close.hash = close.computed_hash();

    let events = [&ahead, &behind, &close];
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| insert(e, &sequence_number(i)))
        .collect();
    let answer = fx.handle(batch(records.clone())).await;
    assert_eq!(failures(&answer), Vec::<&str>::new());

    let archived = fx.archive.events();
    for event in events {
        assert!(archived.contains(event), "archived as written: {event:?}");
    }
    let changes = fx.archive.changes();
    let misdated: Vec<(u64, DateTime<Utc>)> = changes
        .iter()
        .filter(|c| c.change == ChangeKind::Misdated)
        .map(|c| (c.seq, c.at))
        .collect();
    assert_eq!(
        misdated,
        vec![(ahead.seq, recorded), (behind.seq, recorded)],
        "{changes:#?}"
    );
    assert_eq!(
        changes[0].after,
        Some(serde_json::to_value(&ahead).expect("json"))
    );

    // Delivered again: nothing new.
    fx.handle(batch(records)).await;
    assert_eq!(fx.archive.changes().len(), 2);

    // An archived event written again with its old time (deleted, then put back altered) is
    // both misdated and a conflict: both are kept.
    fx.archive.put_event(&trail[0]).await.expect("archived");
    let mut rewritten = trail[0].clone();
    rewritten.reason = Some("nothing to see here".into());
    rewritten.hash = rewritten.computed_hash();
    let mut record = insert(&rewritten, &sequence_number(9));
    record["dynamodb"]["ApproximateCreationDateTime"] = json!((RECORDED + 3600) as f64);
    let answer = fx.handle(batch(vec![record])).await;
    assert_eq!(failures(&answer), Vec::<&str>::new());
    let kinds: Vec<ChangeKind> = fx
        .archive
        .changes()
        .into_iter()
        .filter(|c| c.seq == rewritten.seq && c.request_id == rewritten.request_id.as_str())
        .map(|c| c.change)
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.contains(&ChangeKind::Misdated) && kinds.contains(&ChangeKind::Modify));
}

#[tokio::test]
async fn an_inserted_item_that_is_not_an_event_is_not_archived_nor_retried() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let mut broken = image(&trail[0]);
    broken["seq"] = json!({ "S": "one" });
    let records = vec![
        record(
            "INSERT",
            &sequence_number(0),
            event_keys(trail[0].request_id.as_str(), trail[0].seq),
            Some(broken),
            None,
        ),
        insert(&trail[1], &sequence_number(1)),
    ];
    let answer = fx.handle(batch(records)).await;
    assert_eq!(failures(&answer), Vec::<&str>::new());
    assert_eq!(fx.archive.events(), vec![trail[1].clone()]);
}

#[tokio::test]
async fn the_anchor_task_pins_every_head_and_waits_for_the_next_window() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let head = trail.last().expect("events");
    fx.app.clock.advance(Duration::from_secs(15 * 60));
    let input: Value = serde_json::from_str(ANCHOR_INPUT).expect("json");

    let answer = fx.handle(input.clone()).await;
    let anchors = fx.archive.anchors();
    assert_eq!(anchors.len(), 1, "{anchors:#?}");
    let (key, anchor) = &anchors[0];
    assert_eq!(answer, json!({ "anchor": key }));
    assert_eq!(anchor.since, None, "the first anchor");
    assert!(anchor.until <= fx.app.clock.now() - elevate_core::archive::SETTLE);
    assert_eq!(anchor.hash, anchor.computed_hash());
    let pinned: Vec<(&str, u64, &str)> = anchor
        .heads
        .iter()
        .map(|h| (h.request_id.as_str(), h.seq, h.hash.as_str()))
        .collect();
    assert_eq!(
        pinned,
        vec![(head.request_id.as_str(), head.seq, head.hash.as_str())]
    );

    // At once again: the latest anchor is recent enough.
    assert_eq!(fx.handle(input.clone()).await, json!({ "anchor": null }));

    // An hour later: the next anchor chains to the first; nothing moved, so it pins nothing.
    fx.app.clock.advance(Duration::from_secs(3600));
    let answer = fx.handle(input).await;
    let anchors = fx.archive.anchors();
    assert_eq!(anchors.len(), 2);
    let (newest_key, newest) = &anchors[0];
    assert_eq!(answer, json!({ "anchor": newest_key }));
    assert_eq!(newest.previous, anchor.hash);
    assert_eq!(newest.since, Some(anchor.until));
    assert!(newest.heads.is_empty(), "{newest:?}");
}

#[tokio::test]
async fn a_failed_anchor_is_an_error_for_the_platform_to_retry() {
    let fx = Fixture::new();
    fx.trail().await;
    fx.app.clock.advance(Duration::from_secs(15 * 60));
    fx.app.store.fail_next(1);
    let err = handle(&fx.archiver, json!({ "task": "anchor" }))
        .await
        .expect_err("store unavailable");
    assert!(matches!(err, Error::Anchor(_)), "{err}");
    assert!(fx.archive.anchors().is_empty());
}

#[tokio::test]
async fn other_events_are_refused() {
    let fx = Fixture::new();
    for bad in [
        json!({}),
        json!({ "task": "explode" }),
        json!({ "task": "anchor", "extra": 1 }),
        json!({ "Records": "nope" }),
        json!([1, 2]),
    ] {
        let err = handle(&fx.archiver, bad.clone()).await.expect_err("bad");
        assert!(matches!(err, Error::BadEvent(_)), "{bad}: {err}");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "BadEvent");
    }
    // An empty batch is a batch.
    assert_eq!(
        fx.handle(json!({ "Records": [] })).await,
        json!({ "batchItemFailures": [] })
    );
}

#[tokio::test]
async fn keys_that_elevate_never_writes_name_no_archive_object_and_hold_up_nothing() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let id = trail[0].request_id.as_str();
    // A key longer than S3 allows (S3 would refuse the write for good and Lambda would retry
    // it, and everything after it, until the stream drops it) and one that climbs folders.
    let long = "a".repeat(1100);
    let mut records = Vec::new();
    for (n, pk) in [format!("REQ#{long}"), "REQ#../anchors/x".to_owned()]
        .into_iter()
        .enumerate()
    {
        let keys = json!({ "pk": { "S": pk }, "sk": { "S": "EVT#0000000001" } });
        let mut forged = image(&trail[0]);
        forged["pk"] = keys["pk"].clone();
        records.push(record(
            "INSERT",
            &sequence_number(3 * n),
            keys.clone(),
            Some(forged.clone()),
            None,
        ));
        records.push(record(
            "REMOVE",
            &sequence_number(3 * n + 1),
            keys,
            None,
            Some(forged),
        ));
    }
    records.push(insert(&trail[1], &sequence_number(9)));
    let answer = fx.handle(batch(records)).await;
    assert_eq!(failures(&answer), Vec::<&str>::new(), "nothing to retry");
    assert_eq!(fx.archive.events(), vec![trail[1].clone()]);
    assert!(fx.archive.changes().is_empty(), "{:?}", fx.archive.keys());
    assert!(
        fx.archive.keys().iter().all(|k| k.contains(id)),
        "{:?}",
        fx.archive.keys()
    );
}

#[tokio::test]
async fn an_item_whose_body_claims_another_event_does_not_take_its_archive_key() {
    let fx = Fixture::new();
    let trail = fx.trail().await;
    let next = trail.last().expect("events").seq + 1;
    // Someone with table write puts an item under a junk request whose body is the request's
    // next event, chosen by them, before elevate writes the real one.
    let mut forged = trail.last().expect("events").clone();
    forged.seq = next;
    forged.prev_hash = forged.hash.clone();
    forged.reason = Some("approved by the attacker".to_owned());
    forged.hash = forged.computed_hash();
    let junk = RequestId::generate(fx.app.clock.now());
    let keys = event_keys(junk.as_str(), 1);
    let mut body = image(&forged);
    body["pk"] = keys["pk"].clone();
    body["sk"] = keys["sk"].clone();
    let answer = fx
        .handle(batch(vec![record(
            "INSERT",
            &sequence_number(0),
            keys,
            Some(body),
            None,
        )]))
        .await;
    assert_eq!(failures(&answer), Vec::<&str>::new());
    assert!(fx.archive.keys().is_empty(), "{:?}", fx.archive.keys());
}
