//! The S3 archive against moto's S3, in a bucket made as template.yaml makes it: Object Lock
//! with a default COMPLIANCE retention (and so versioning). What was written is read back from
//! the bucket itself, versions included.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use chrono::{Duration, Utc};
use elevate_aws::S3Archive;
use elevate_core::archive::{
    anchor_key, event_key, Anchor, AnchoredHead, Archive, ArchiveError, Archived, ChangeKind,
    TableChange,
};
use elevate_core::audit::AuditEvent;
use elevate_core::machine::{apply, Command};
use elevate_testkit::{unique_name, Moto};

use crate::{at, by_person, by_system, new_request};

/// A bucket with Object Lock and a one-day COMPLIANCE default retention.
async fn locked_bucket(client: &Client) -> String {
    let bucket = unique_name("archive");
    S3Archive::create_bucket(client, &bucket, 1)
        .await
        .expect("a bucket with Object Lock");
    bucket
}

struct Bucket {
    _moto: Moto,
    client: Client,
    name: String,
}

impl Bucket {
    async fn new() -> Self {
        let moto = Moto::start().await;
        let client = Client::new(&moto.sdk_config().await);
        let name = locked_bucket(&client).await;
        Bucket {
            _moto: moto,
            client,
            name,
        }
    }

    fn archive(&self, prefix: &str) -> S3Archive {
        S3Archive::new(self.client.clone(), &self.name, prefix)
    }

    /// The object's body and content type.
    async fn get(&self, key: &str) -> (Vec<u8>, Option<String>) {
        let object = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
        let content_type = object.content_type().map(str::to_owned);
        let body = object.body.collect().await.expect("body").into_bytes();
        (body.to_vec(), content_type)
    }

    /// How many versions of `key` the bucket keeps.
    async fn versions(&self, key: &str) -> usize {
        let listed = self
            .client
            .list_object_versions()
            .bucket(&self.name)
            .prefix(key)
            .send()
            .await
            .expect("ListObjectVersions");
        listed
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .count()
            + listed
                .delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
                .count()
    }

    /// Every key in the bucket, in order.
    async fn keys(&self) -> Vec<String> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .send()
            .await
            .expect("ListObjectsV2");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

/// A request's trail: created, approved, activated.
fn trail(requester: &str) -> Vec<AuditEvent> {
    let t0 = Utc::now() - Duration::hours(2);
    let (request, created) = new_request(requester, t0);
    let approved = apply(
        &request,
        Command::Approve {
            reason: Some("looks right".to_owned()),
        },
        &by_person("bob"),
        t0 + Duration::minutes(3),
    )
    .expect("approve");
    let activated = apply(
        &approved.request,
        Command::Activate,
        &by_system("escalate"),
        t0 + Duration::minutes(4),
    )
    .expect("activate");
    vec![created, approved.event, activated.event]
}

fn forged(event: &AuditEvent) -> AuditEvent {
    let mut forged = event.clone();
    forged.reason = Some("nothing to see here".to_owned());
    forged.hash = forged.computed_hash();
    forged
}

#[tokio::test]
async fn an_event_is_written_once_and_another_under_its_key_is_a_conflict() {
    let bucket = Bucket::new().await;
    let archive = bucket.archive("");
    let event = trail("alice").remove(0);
    let key = event_key(event.request_id.as_str(), event.seq);

    assert_eq!(
        archive.put_event(&event).await.expect("put"),
        Archived::Written
    );
    let (body, content_type) = bucket.get(&key).await;
    let stored: AuditEvent = serde_json::from_slice(&body).expect("an event");
    assert_eq!(stored, event);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    // The bucket's default retention applies to what was written, which carries its checksum.
    let head = bucket
        .client
        .head_object()
        .bucket(&bucket.name)
        .key(&key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    assert!(head.object_lock_retain_until_date().is_some());
    assert!(head.checksum_sha256().is_some(), "{head:?}");

    // Delivered again: nothing new, not even a version.
    assert_eq!(
        archive.put_event(&event).await.expect("put again"),
        Archived::AlreadyThere
    );
    assert_eq!(bucket.versions(&key).await, 1);

    // Another event under the same identity: refused, the archived one stays.
    let other = forged(&event);
    match archive.put_event(&other).await {
        Err(ArchiveError::Conflict {
            request_id,
            seq,
            archived,
            offered,
        }) => {
            assert_eq!(
                (request_id.as_str(), seq),
                (event.request_id.as_str(), event.seq)
            );
            assert_eq!(archived, event.hash);
            assert_eq!(offered, other.hash);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(bucket.versions(&key).await, 1);
    let (body, _) = bucket.get(&key).await;
    assert_eq!(
        serde_json::from_slice::<AuditEvent>(&body).expect("event"),
        event
    );
}

#[tokio::test]
async fn changes_are_written_once_under_their_stream_event() {
    let bucket = Bucket::new().await;
    let archive = bucket.archive("");
    let event = trail("carol").remove(1);
    let change = TableChange {
        request_id: event.request_id.as_str().to_owned(),
        seq: event.seq,
        change: ChangeKind::Modify,
        at: at("2026-01-05T10:00:00Z"),
        stream_event_id: "c81e728d9d4c2f636f067f89cc14862c".to_owned(),
        before: Some(serde_json::to_value(&event).expect("json")),
        after: Some(serde_json::to_value(forged(&event)).expect("json")),
    };
    archive.put_change(&change).await.expect("put");
    archive.put_change(&change).await.expect("put again");
    let key = format!(
        "changes/{}/{:010}/c81e728d9d4c2f636f067f89cc14862c.json",
        event.request_id, event.seq
    );
    assert_eq!(bucket.versions(&key).await, 1);
    assert_eq!(archive.changes().await.expect("changes"), vec![change]);
}

#[tokio::test]
async fn anchors_are_listed_newest_first_and_the_latest_is_the_newest() {
    let bucket = Bucket::new().await;
    let archive = bucket.archive("");
    assert_eq!(archive.latest_anchor().await.expect("latest"), None);
    assert!(archive.anchors().await.expect("anchors").is_empty());

    let events = trail("dave");
    let head = |e: &AuditEvent| AnchoredHead {
        request_id: e.request_id.as_str().to_owned(),
        seq: e.seq,
        hash: e.hash.clone(),
    };
    let t0 = at("2026-01-05T09:00:00Z");
    let first = Anchor::seal(None, t0, vec![head(&events[0])]);
    let second = Anchor::seal(
        Some(&first),
        t0 + Duration::hours(1),
        vec![head(&events[2])],
    );
    let third = Anchor::seal(Some(&second), t0 + Duration::hours(2), Vec::new());
    // Written out of order: the listing orders them by key.
    for anchor in [&second, &first, &third] {
        archive.put_anchor(anchor).await.expect("put anchor");
    }
    archive.put_anchor(&third).await.expect("put again");
    // Another run's anchor of the same time, sealed from another read: refused, and named.
    let other = Anchor::seal(Some(&second), third.until, vec![head(&events[1])]);
    assert!(matches!(
        archive.put_anchor(&other).await,
        Err(ArchiveError::AnchorTaken { ref key, ref archived, ref offered })
            if *key == anchor_key(third.until) && *archived == third.hash && *offered == other.hash
    ));
    assert_eq!(bucket.versions(&anchor_key(third.until)).await, 1);

    assert_eq!(
        archive.latest_anchor().await.expect("latest"),
        Some(third.clone())
    );
    let listed = archive.anchors().await.expect("anchors");
    assert_eq!(
        listed,
        vec![
            (anchor_key(third.until), third),
            (anchor_key(second.until), second),
            (anchor_key(first.until), first),
        ]
    );
}

#[tokio::test]
async fn the_readers_give_what_was_archived_under_the_prefix() {
    let bucket = Bucket::new().await;
    let sdk = bucket._moto.sdk_config().await;
    let archive =
        S3Archive::from_url(&sdk, &format!("s3://{}/prod/audit/", bucket.name)).expect("url");
    assert_eq!(archive.prefix(), "prod/audit/");
    assert_eq!(archive.url(), format!("s3://{}/prod/audit/", bucket.name));
    // Another archive in the same bucket, which the first must not see.
    let other = bucket.archive("staging");

    let mut requests = [trail("alice"), trail("bob"), trail("carol")];
    requests.sort_by(|a, b| a[0].request_id.as_str().cmp(b[0].request_id.as_str()));
    // Written newest request first and last event first: the listing still comes in key order.
    for events in requests.iter().rev() {
        for event in events.iter().rev() {
            archive.put_event(event).await.expect("put");
        }
    }
    other.put_event(&trail("erin")[0]).await.expect("put");

    let expected: Vec<(String, u64)> = requests
        .iter()
        .flatten()
        .map(|e| (e.request_id.as_str().to_owned(), e.seq))
        .collect();
    assert_eq!(archive.list_events().await.expect("list"), expected);
    let keys = bucket.keys().await;
    assert!(
        keys.iter()
            .filter(|k| k.starts_with("prod/audit/events/"))
            .count()
            == expected.len(),
        "{keys:#?}"
    );

    let alice = &requests[0];
    let id = alice[0].request_id.as_str();
    assert_eq!(
        archive.get_events(id, &[3, 1, 2]).await.expect("get"),
        alice.clone(),
        "in seq order"
    );
    assert_eq!(
        archive.get_events(id, &[2]).await.expect("get"),
        vec![alice[1].clone()]
    );
    assert_eq!(other.list_events().await.expect("list").len(), 1);
    assert!(archive.changes().await.expect("changes").is_empty());
}

#[tokio::test]
async fn many_events_are_read_concurrently_and_given_in_seq_order() {
    let bucket = Bucket::new().await;
    let archive = bucket.archive("");
    let (_, created) = new_request("frank", Utc::now() - Duration::hours(1));
    // A chain longer than the readers' concurrency: the creation event sealed again under
    // each seq, each linked to the one before.
    let mut events = vec![created];
    for seq in 2..=40_u64 {
        let mut next = events[0].clone();
        next.seq = seq;
        next.prev_hash = events.last().expect("previous").hash.clone();
        next.hash = next.computed_hash();
        events.push(next);
    }
    for event in &events {
        archive.put_event(event).await.expect("put");
    }
    let id = events[0].request_id.as_str();
    let seqs: Vec<u64> = (1..=40).rev().collect();
    assert_eq!(archive.get_events(id, &seqs).await.expect("get"), events);
    assert_eq!(archive.list_events().await.expect("list").len(), 40);
}

#[tokio::test]
async fn an_object_that_is_not_the_event_its_key_names_is_corrupt() {
    let bucket = Bucket::new().await;
    let archive = bucket.archive("");
    let events = trail("gina");
    let id = events[0].request_id.as_str();
    archive.put_event(&events[0]).await.expect("put");
    // Written outside elevate: event 2's key holding event 3, and garbage at event 3's key.
    for (seq, body) in [
        (2, serde_json::to_vec(&events[2]).expect("json")),
        (3, b"{not json".to_vec()),
    ] {
        bucket
            .client
            .put_object()
            .bucket(&bucket.name)
            .key(event_key(id, seq))
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("PutObject");
    }
    for seq in [2, 3] {
        match archive.get_events(id, &[1, seq]).await {
            Err(ArchiveError::Corrupt { key, why }) => {
                assert!(key.ends_with(&event_key(id, seq)), "{key}");
                assert!(key.starts_with(&format!("s3://{}/", bucket.name)), "{key}");
                assert!(!why.is_empty());
            }
            other => panic!("seq {seq}: expected corrupt, got {other:?}"),
        }
    }
    // Offered the event its key names, the garbage is corrupt too (and not replaced).
    match archive.put_event(&events[2]).await {
        Err(ArchiveError::Corrupt { .. }) => {}
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_bucket_is_unavailable() {
    let moto = Moto::start().await;
    let client = Client::new(&moto.sdk_config().await);
    let archive = S3Archive::new(client, unique_name("missing"), "");
    let event = trail("hank").remove(0);
    match archive.put_event(&event).await {
        Err(ArchiveError::Unavailable(err)) => {
            let message = err.to_string();
            assert!(message.contains("PutObject"), "{message}");
            assert!(message.contains("NoSuchBucket"), "{message}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(matches!(
        archive.list_events().await,
        Err(ArchiveError::Unavailable(_))
    ));
}
