//! The write-once audit archive, end to end: every audit event goes from the table's stream
//! through the archive function into moto's S3 bucket under Object Lock, an anchor pins the
//! chain heads, and `elevate audit verify --archive` finds what was rewritten or deleted in the
//! table, even when the table alone still verifies.
//!
//! The tests that rewrite the trail share [`LocalStack::archive_shared`] and touch only their
//! own requests; the one that needs a clean trail first and then deletes an event starts its
//! own stack.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use elevate_core::audit::AuditEvent;

use super::harness::{LocalStack, Outcome};

/// How long an event may take from the table to the bucket: the stream pump reads every
/// 250 ms, so this is generous.
const ARCHIVED_WITHIN: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(30);

/// `profile` asks for infra_access (half an hour, so nothing expires meanwhile) and `approver`
/// approves: the request's id once it is ACTIVE (events request, approve, activate).
async fn active_request(stack: &LocalStack, profile: &str, approver: &str, reason: &str) -> String {
    let requested = stack.run(
        profile,
        &[
            "request",
            "infra_access",
            "--duration",
            "30m",
            "--reason",
            reason,
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    // Each test asks as its own person: their newest request is this one.
    let id = stack
        .requests_of(profile)
        .last()
        .and_then(|r| r["id"].as_str())
        .expect("a request")
        .to_owned();
    let approved = stack.run(approver, &["approve", &id]);
    assert!(approved.ok(), "{approved:?}");
    stack.wait_for_state(profile, &id, "ACTIVE", WAIT).await;
    id
}

/// The key of an archived event (docs/contracts.md, "Audit archive").
fn event_key(id: &str, seq: u64) -> String {
    format!("events/{id}/{seq:010}.json")
}

/// The key of an event item in the table.
fn event_item_key(id: &str, seq: u64) -> [(&'static str, AttributeValue); 2] {
    [
        ("pk", AttributeValue::S(format!("REQ#{id}"))),
        ("sk", AttributeValue::S(format!("EVT#{seq:010}"))),
    ]
}

/// Waits until every event of request `id` (as the API exports them) is in the archive: the
/// events.
async fn wait_all_archived(stack: &LocalStack, id: &str) -> Vec<AuditEvent> {
    let events = stack.audit_events(id);
    assert!(!events.is_empty(), "request {id} has no audit events");
    let keys = stack
        .wait_for_archived(&format!("events/{id}/"), events.len(), ARCHIVED_WITHIN)
        .await;
    let expected: Vec<String> = events.iter().map(|e| event_key(id, e.seq)).collect();
    assert_eq!(keys, expected, "the archived events of {id}");
    events
}

/// Whether a line of the output names request `id`'s event `seq` with `what`.
fn names(outcome: &Outcome, id: &str, seq: u64, what: &str) -> bool {
    let needle = format!("request {id}: event {seq} ");
    outcome
        .stdout
        .lines()
        .chain(outcome.stderr.lines())
        .any(|line| line.contains(&needle) && line.contains(what))
}

#[tokio::test]
async fn every_event_of_a_request_reaches_the_archive_within_seconds() {
    let stack = LocalStack::archive_shared();
    // The bucket keeps what it is given: Object Lock, COMPLIANCE by default.
    let s3 = aws_sdk_s3::Client::new(&stack.moto());
    let lock = s3
        .get_object_lock_configuration()
        .bucket(stack.archive_bucket())
        .send()
        .await
        .expect("the archive bucket's Object Lock configuration");
    let retention = lock
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .expect("a default retention");
    assert_eq!(
        retention.mode(),
        Some(&aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
    );
    assert_eq!(retention.days(), Some(1));

    let id = active_request(stack, "erin", "carol", "archive every event").await;

    let events = wait_all_archived(stack, &id).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["request", "approve", "activate"]);
    for event in &events {
        // The object is the event as the API exports it, byte for byte in meaning.
        let archived = stack.archive_object(&event_key(&id, event.seq)).await;
        let archived: AuditEvent = serde_json::from_value(archived).expect("an archived event");
        assert_eq!(&archived, event, "archived event {}", event.seq);
        assert_eq!(archived.computed_hash(), archived.hash);
    }
    // Only audit events are archived: no request item, no change.
    let everything = stack.archive_keys(&format!("events/{id}")).await;
    assert_eq!(everything.len(), events.len(), "{everything:?}");
    assert!(stack
        .archive_keys(&format!("changes/{id}/"))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_rewritten_chain_that_verifies_alone_is_named_by_the_archive() {
    let stack = LocalStack::archive_shared();
    let id = active_request(stack, "alice", "bob", "rewrite me").await;
    let events = wait_all_archived(stack, &id).await;
    for event in &events {
        assert_eq!(
            event.computed_hash(),
            event.hash,
            "exported event {}",
            event.seq
        );
    }

    let anchored = stack.anchor().await;
    let anchors = stack.archive_keys("anchors/").await;
    assert!(
        !anchors.is_empty(),
        "no anchor after the anchor task ({anchored:?})"
    );
    if let Some(key) = &anchored {
        assert!(anchors.contains(key), "{key} not in {anchors:?}");
    }
    let newest = stack.archive_object(&anchors[0]).await;
    assert!(
        newest["until"].is_string() && newest["hash"].is_string(),
        "{newest}"
    );

    // Someone with DynamoDB access rewrites who approved, and covers it up: the approve event
    // and every later one are sealed again, and the request's head follows, so that the table
    // alone verifies.
    let mut rewritten = events.clone();
    rewritten[1].reason = Some("approved by the CISO, on the phone".to_owned());
    let mut prev_hash = rewritten[0].hash.clone();
    for event in rewritten.iter_mut().skip(1) {
        event.prev_hash = prev_hash;
        event.hash = event.computed_hash();
        prev_hash = event.hash.clone();
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.moto());
    let table = stack.info.str("table");
    for event in rewritten.iter().skip(1) {
        let mut update = dynamo
            .update_item()
            .table_name(table)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":prev", AttributeValue::S(event.prev_hash.clone()))
            .expression_attribute_values(":hash", AttributeValue::S(event.hash.clone()));
        for (name, value) in event_item_key(&id, event.seq) {
            update = update.key(name, value);
        }
        update = match &event.reason {
            Some(reason) if event.seq == 2 => update
                .update_expression("SET prev_hash = :prev, #hash = :hash, reason = :reason")
                .expression_attribute_values(":reason", AttributeValue::S(reason.clone())),
            _ => update.update_expression("SET prev_hash = :prev, #hash = :hash"),
        };
        update
            .expression_attribute_names("#hash", "hash")
            .send()
            .await
            .unwrap_or_else(|e| panic!("rewrite event {}: {e:?}", event.seq));
    }
    dynamo
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("REQ#{id}")))
        .key("sk", AttributeValue::S("REQ".to_owned()))
        .condition_expression("attribute_exists(pk)")
        .update_expression("SET audit_head = :head")
        .expression_attribute_values(":head", AttributeValue::S(prev_hash))
        .send()
        .await
        .expect("rewrite the request's audit head");

    // The table alone: the rewritten chain verifies.
    assert_eq!(stack.audit_events(&id), rewritten, "the table as rewritten");
    let plain = stack.run("bob", &["audit", "verify"]);
    assert!(plain.ok(), "audit verify without the archive: {plain:?}");

    // Against the archive: the approve event is named as altered.
    let url = stack.info.str("archive_url");
    assert_eq!(url, format!("s3://{}", stack.archive_bucket()));
    let verified = stack.run("bob", &["audit", "verify", "--archive", url]);
    assert!(!verified.ok(), "{verified:?}");
    assert_eq!(verified.code(), Some(9), "{verified:?}");
    assert!(names(&verified, &id, 2, "altered"), "{verified:?}");
    assert!(names(&verified, &id, 3, "altered"), "{verified:?}");
    assert!(!names(&verified, &id, 1, "altered"), "{verified:?}");

    // The stream recorded the rewrite too, as evidence of its own.
    let changes = stack
        .wait_for_archived(&format!("changes/{id}/0000000002/"), 1, ARCHIVED_WITHIN)
        .await;
    let change = stack.archive_object(&changes[0]).await;
    assert_eq!(change["change"], "modify", "{change}");
}

#[tokio::test]
async fn a_clean_stack_verifies_with_its_archive_until_an_event_is_deleted() {
    // Its own stack: the other archive tests rewrite their shared trail.
    let stack = LocalStack::start();
    let id = active_request(&stack, "frank", "bob", "verify me").await;
    let events = wait_all_archived(&stack, &id).await;
    assert_eq!(events.len(), 3);
    stack.anchor().await;
    assert!(!stack.archive_keys("anchors/").await.is_empty());

    let url = stack.info.str("archive_url");
    let clean = stack.run("bob", &["audit", "verify", "--archive", url]);
    assert!(clean.ok(), "a clean trail against its archive: {clean:?}");

    // Someone hides who approved.
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.moto());
    let mut delete = dynamo
        .delete_item()
        .table_name(stack.info.str("table"))
        .condition_expression("attribute_exists(pk)");
    for (name, value) in event_item_key(&id, 2) {
        delete = delete.key(name, value);
    }
    delete.send().await.expect("delete the approve event");

    let verified = stack.run("bob", &["audit", "verify", "--archive", url]);
    assert_eq!(verified.code(), Some(9), "{verified:?}");
    assert!(names(&verified, &id, 2, "deleted"), "{verified:?}");
    assert!(!names(&verified, &id, 1, "deleted"), "{verified:?}");
    assert!(!names(&verified, &id, 3, "deleted"), "{verified:?}");
}
