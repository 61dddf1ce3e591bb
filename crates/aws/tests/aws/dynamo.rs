use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};
use elevate_aws::dynamo::{BY_REQUESTER, OPEN_BY_REQUESTER};
use elevate_aws::DynamoStore;
use elevate_core::audit::AuditEvent;
use elevate_core::machine::{apply, Command, Transition};
use elevate_core::model::{MessageRef, RequestId, State};
use elevate_core::ports::{
    AuditPage, AuditWindow, Decider, ListPage, ListQuery, RequestStore, StoreError,
};
use elevate_core::verify_chain;
use elevate_testkit::{unique_name, Moto};

use crate::{at, by_person, by_system, new_request};

async fn store(moto: &Moto) -> (DynamoStore, Client) {
    let client = Client::new(&moto.sdk_config().await);
    let table = unique_name("requests");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    (DynamoStore::new(client.clone(), table), client)
}

fn approve(request: &elevate_core::Request, by: &str, now: chrono::DateTime<Utc>) -> Transition {
    apply(
        request,
        Command::Approve {
            reason: Some("looks right".to_owned()),
        },
        &by_person(by),
        now,
    )
    .expect("approve")
}

fn deny(request: &elevate_core::Request, by: &str, now: chrono::DateTime<Utc>) -> Transition {
    apply(
        request,
        Command::Deny {
            reason: Some("not during the freeze".to_owned()),
        },
        &by_person(by),
        now,
    )
    .expect("deny")
}

#[tokio::test]
async fn a_request_with_every_field_set_round_trips_as_native_attributes() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;

    let (mut request, event) = new_request("alice", at("2026-11-25T10:00:00.123456789Z"));
    request.decided_at = Some(at("2026-11-25T10:01:00.000000001Z"));
    request.decided_by = Some("bob".to_owned());
    request.decision_reason = Some("ok ✓, \"quoted\"".to_owned());
    request.activated_at = Some(at("2026-11-25T10:01:02Z"));
    request.expires_at = Some(at("2026-11-25T11:01:02.5Z"));
    request.ended_at = Some(at("2026-11-25T10:30:00.999999999Z"));
    request.ended_by = Some("elevate:revoke".to_owned());
    request.failure = Some("IAM throttled us".to_owned());
    request.message = Some(MessageRef {
        channel: "C0123".to_owned(),
        ts: "1764064800.000100".to_owned(),
    });

    store.create(&request, &event).await.expect("create");
    assert_eq!(
        store.get(&request.id).await.expect("get"),
        Some(request.clone())
    );
    assert_eq!(
        store.audit_events(&request.id).await.expect("events"),
        vec![event.clone()]
    );
    let unknown = RequestId::generate(Utc::now());
    assert_eq!(store.get(&unknown).await.expect("get unknown"), None);

    // Readable in the console: one attribute per field, numbers as numbers.
    let raw = client
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("REQ#{}", request.id)))
        .key("sk", AttributeValue::S("REQ".to_owned()))
        .send()
        .await
        .expect("raw get")
        .item
        .expect("item");
    assert_eq!(raw.get("state"), Some(&AttributeValue::S("PENDING".into())));
    assert_eq!(raw.get("duration"), Some(&AttributeValue::N("3600".into())));
    assert_eq!(raw.get("audit_seq"), Some(&AttributeValue::N("1".into())));
    assert_eq!(
        raw.get("created_at"),
        Some(&AttributeValue::S("2026-11-25T10:00:00.123456789Z".into()))
    );
    assert!(matches!(raw.get("message"), Some(AttributeValue::M(_))));
    assert!(request.terms.is_some(), "open records the terms");
    assert!(
        matches!(raw.get("terms"), Some(AttributeValue::M(_))),
        "terms are a map attribute: {:?}",
        raw.get("terms")
    );
    assert_eq!(
        raw.get("gsi1pk"),
        Some(&AttributeValue::S("REQUESTER#alice".into()))
    );
    assert_eq!(
        raw.get("gsi2pk"),
        Some(&AttributeValue::S("STATE#PENDING".into()))
    );

    // The same id again is refused and changes nothing.
    let err = store.create(&request, &event).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store.audit_events(&request.id).await.expect("events").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_decisions_exactly_one_wins_and_only_its_event_is_stored() {
    // A server of our own, which handles one request at a time as DynamoDB serializes writes
    // to an item: a shared moto lets a failed transaction undo a concurrent one.
    let moto = Moto::start_own().await;
    assert!(moto.serializes_requests());
    let (store, _) = store(&moto).await;

    for round in 0..5 {
        let created_at = Utc::now();
        let (request, event) = new_request("alice", created_at);
        store.create(&request, &event).await.expect("create");
        let decided_at = created_at + Duration::seconds(30);
        let approved = approve(&request, "bob", decided_at);
        let denied = deny(&request, "carol", decided_at);

        let (approve_result, deny_result) =
            tokio::join!(store.transition(&approved), store.transition(&denied),);
        let winner = match (approve_result, deny_result) {
            (Ok(()), Err(StoreError::Conflict(_))) => &approved,
            (Err(StoreError::Conflict(_)), Ok(())) => &denied,
            other => panic!("round {round}: expected one Ok and one Conflict, got {other:?}"),
        };

        let events = store.audit_events(&request.id).await.expect("events");
        assert_eq!(events.len(), 2, "round {round}: creation + the winner only");
        assert_eq!(events[0], event);
        assert_eq!(events[1], winner.event);
        let stored = store.get(&request.id).await.expect("get").expect("stored");
        assert_eq!(stored, winner.request);
        verify_chain(&events, Some((stored.audit_seq, &stored.audit_head))).expect("chain");
    }
}

#[tokio::test]
async fn a_stale_or_inconsistent_transition_writes_nothing() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let now = Utc::now();
    let (request, event) = new_request("alice", now);
    store.create(&request, &event).await.expect("create");

    // Expected state wrong.
    let approved = approve(&request, "bob", now);
    let wrong = Transition {
        from: State::Approved,
        ..approved.clone()
    };
    let err = store
        .transition(&wrong)
        .await
        .expect_err("wrong expected state");
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("PENDING")),
        "{err}"
    );

    // Right state, but the event does not follow the stored audit sequence.
    store.transition(&approved).await.expect("approve");
    let replay = store
        .transition(&approved)
        .await
        .expect_err("replayed transition");
    assert!(matches!(replay, StoreError::Conflict(_)), "{replay}");
    let activated = apply(
        &approved.request,
        Command::Activate,
        &by_system("escalate"),
        now,
    )
    .expect("activate");
    let mut skipped = activated.clone();
    skipped.event.seq += 1;
    skipped.request.audit_seq += 1;
    let err = store
        .transition(&skipped)
        .await
        .expect_err("gap in the sequence");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    // A request and an event that do not belong together are refused before any write.
    let mismatched = Transition {
        from: State::Approved,
        request: activated.request.clone(),
        event: approved.event.clone(),
    };
    let err = store
        .transition(&mismatched)
        .await
        .expect_err("mismatched pair");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");

    assert_eq!(
        store.audit_events(&request.id).await.expect("events").len(),
        2
    );
    assert_eq!(
        store.get(&request.id).await.expect("get"),
        Some(approved.request.clone())
    );

    // A request that does not exist is NotFound, for transitions and announcements alike.
    let (ghost, _) = new_request("alice", now);
    let ghost_approved = approve(&ghost, "bob", now);
    let err = store
        .transition(&ghost_approved)
        .await
        .expect_err("missing request");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store
        .audit_events(&ghost.id)
        .await
        .expect("events")
        .is_empty());
    let message = MessageRef {
        channel: "C1".into(),
        ts: "1.2".into(),
    };
    let err = store
        .set_message(&ghost.id, &message)
        .await
        .expect_err("missing request");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn a_transition_keeps_the_announcement_and_clears_unset_fields() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let now = Utc::now();
    let (mut request, event) = new_request("alice", now);
    request.failure = Some("left over".to_owned());
    store.create(&request, &event).await.expect("create");
    let message = MessageRef {
        channel: "C0123".into(),
        ts: "1764064800.000100".into(),
    };
    store
        .set_message(&request.id, &message)
        .await
        .expect("set message");

    // Approved from the copy read before the announcement was recorded, with failure unset.
    let mut approved = approve(&request, "bob", now);
    approved.request.failure = None;
    store.transition(&approved).await.expect("approve");

    let stored = store.get(&request.id).await.expect("get").expect("stored");
    assert_eq!(stored.message, Some(message));
    assert_eq!(stored.failure, None);
    assert_eq!(stored.state, State::Approved);
    assert_eq!(stored.decided_by.as_deref(), Some("bob"));
}

fn ids(requests: Vec<elevate_core::Request>) -> Vec<RequestId> {
    requests.into_iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn listings_follow_state_changes() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let t0 = Utc::now() - Duration::hours(1);
    let (first, e1) = new_request("alice", t0);
    let (second, e2) = new_request("alice", t0 + Duration::minutes(1));
    let (other, e3) = new_request("bob", t0 + Duration::minutes(2));
    for (request, event) in [(&first, &e1), (&second, &e2), (&other, &e3)] {
        store.create(request, event).await.expect("create");
    }

    assert_eq!(
        ids(store.list_by_requester("alice", &[]).await.expect("list")),
        vec![second.id.clone(), first.id.clone()],
        "newest first"
    );
    assert_eq!(
        ids(store.list_by_state(State::Pending).await.expect("list")),
        vec![first.id.clone(), second.id.clone(), other.id.clone()],
        "oldest first"
    );

    let approved = approve(&first, "bob", t0 + Duration::minutes(5));
    store.transition(&approved).await.expect("approve");

    assert_eq!(
        ids(store.list_by_state(State::Pending).await.expect("list")),
        vec![second.id.clone(), other.id.clone()]
    );
    assert_eq!(
        store.list_by_state(State::Approved).await.expect("list"),
        vec![approved.request.clone()]
    );
    assert_eq!(
        store
            .list_by_requester("alice", &[State::Approved])
            .await
            .expect("list"),
        vec![approved.request.clone()]
    );
    assert_eq!(
        ids(store
            .list_by_requester("alice", &[State::Pending])
            .await
            .expect("list")),
        vec![second.id.clone()]
    );
    assert_eq!(
        ids(store
            .list_by_requester("alice", &[State::Approved, State::Pending])
            .await
            .expect("list")),
        vec![second.id.clone(), first.id.clone()],
        "either state, newest first"
    );
    assert!(store
        .list_by_requester("alice", &[State::Active, State::Denied])
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        ids(store.list_by_requester("alice", &[]).await.expect("list")),
        vec![second.id.clone(), first.id.clone()]
    );
    assert!(store
        .list_by_requester("carol", &[])
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_by_state(State::Active)
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn audit_since_returns_the_events_from_a_time_on_in_time_order() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let now = Utc::now();

    let (old, old_created) = new_request("alice", now - Duration::days(100));
    store.create(&old, &old_created).await.expect("create");
    let (mid, mid_created) = new_request("bob", now - Duration::days(3));
    store.create(&mid, &mid_created).await.expect("create");
    let mid_approved = approve(&mid, "alice", now - Duration::days(2));
    store.transition(&mid_approved).await.expect("approve");
    let (recent, recent_created) = new_request("carol", now - Duration::minutes(1));
    store
        .create(&recent, &recent_created)
        .await
        .expect("create");

    let everything = vec![
        old_created.clone(),
        mid_created.clone(),
        mid_approved.event.clone(),
        recent_created.clone(),
    ];
    assert_eq!(store.audit_since(None).await.expect("all"), everything);

    // More than the day-by-day limit back: served by one scan of the index.
    assert_eq!(
        store
            .audit_since(Some(now - Duration::days(90)))
            .await
            .expect("since 90 days"),
        everything[1..].to_vec()
    );
    // Recent: day by day, inclusive of the first instant.
    assert_eq!(
        store
            .audit_since(Some(mid_approved.event.at))
            .await
            .expect("since the approval"),
        everything[2..].to_vec()
    );
    assert_eq!(
        store
            .audit_since(Some(mid_approved.event.at + Duration::nanoseconds(1)))
            .await
            .expect("just after the approval"),
        everything[3..].to_vec()
    );
    assert!(store
        .audit_since(Some(now + Duration::hours(1)))
        .await
        .expect("future")
        .is_empty());
}

#[tokio::test]
async fn creating_the_table_again_is_harmless() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;
    DynamoStore::create_table(&client, store.table())
        .await
        .expect("create again");
    let (request, event) = new_request("alice", Utc::now());
    store.create(&request, &event).await.expect("create");
    DynamoStore::create_table(&client, store.table())
        .await
        .expect("create a third time");
    assert_eq!(store.get(&request.id).await.expect("get"), Some(request));
}

#[tokio::test]
async fn a_transition_while_another_request_is_unchanged_fails_once_that_request_moved() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let now = at("2026-11-25T10:00:00Z");
    let (kept, kept_event) = new_request("alice", now);
    let (other, other_event) = new_request("alice", now);
    store.create(&kept, &kept_event).await.expect("create");
    store.create(&other, &other_event).await.expect("create");

    // While `other` is as read, `kept` moves.
    let first = approve(&kept, "bob", now);
    store
        .transition_while(&first, &other)
        .await
        .expect("other unchanged: written");
    assert_eq!(
        store.get(&kept.id).await.expect("get").map(|r| r.state),
        Some(State::Approved)
    );

    // Once `other` moved, a write that relies on the old copy of it is refused, atomically.
    let moved = deny(&other, "bob", now);
    store.transition(&moved).await.expect("other moves");
    let (fresh, fresh_event) = new_request("alice", now);
    store.create(&fresh, &fresh_event).await.expect("create");
    let refused = approve(&fresh, "bob", now);
    let err = store
        .transition_while(&refused, &other)
        .await
        .expect_err("other moved: refused");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&other.id.to_string()), "{err}");
    let stored = store.get(&fresh.id).await.expect("get").expect("fresh");
    assert_eq!(stored.state, State::Pending);
    assert_eq!(
        store.audit_events(&fresh.id).await.expect("events").len(),
        1,
        "no audit event of the refused write"
    );
}

/// Every page of the export of `window`, checking the promises of each: at most `limit`
/// events, in time order, and only the last one may be empty.
async fn pages(store: &DynamoStore, window: &AuditWindow, limit: usize) -> Vec<Vec<AuditEvent>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .audit_page(window, after.as_deref(), limit)
            .await
            .expect("page");
        assert!(page.events.len() <= limit, "at most {limit} events a page");
        assert!(
            page.events
                .is_sorted_by_key(|e| (e.at, e.request_id.clone(), e.seq)),
            "a page is in time order"
        );
        assert!(
            page.next.is_none() || !page.events.is_empty(),
            "only the last page may be empty"
        );
        pages.push(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

/// A trail over four recent days, in time order: one event the day before the others, two on
/// the next day, two opened at the same instant the day after, and an approval on the last.
async fn seed_trail(store: &DynamoStore) -> Vec<AuditEvent> {
    let day0 = (Utc::now() - Duration::days(3))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let mut trail = Vec::new();
    let mut opened = Vec::new();
    for at in [
        day0 - Duration::hours(2),
        day0 + Duration::hours(9),
        day0 + Duration::hours(15),
        day0 + Duration::days(1) + Duration::hours(9),
        day0 + Duration::days(1) + Duration::hours(9),
    ] {
        let (request, event) = new_request("alice", at);
        store.create(&request, &event).await.expect("create");
        trail.push(event);
        opened.push(request);
    }
    let approved = approve(
        &opened[1],
        "bob",
        day0 + Duration::days(2) + Duration::hours(8),
    );
    store.transition(&approved).await.expect("approve");
    trail.push(approved.event);
    trail.sort_by_key(|e| (e.at, e.request_id.clone(), e.seq));
    assert_eq!(store.audit_since(None).await.expect("trail"), trail);
    trail
}

#[tokio::test]
async fn audit_pages_walk_the_days_in_time_order_within_the_window() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let trail = seed_trail(&store).await;
    let window = |since: Option<usize>, until: Option<usize>| AuditWindow {
        since: since.map(|i| trail[i].at),
        until: until.map(|i| trail[i].at),
    };

    // From the first event of a day on: across three days, limit 2 over 5 events.
    let paged = pages(&store, &window(Some(1), None), 2).await;
    assert!(paged.len() >= 3, "{paged:?}");
    assert_eq!(paged.concat(), trail[1..]);
    for limit in [1, 3, 5, 100] {
        assert_eq!(
            pages(&store, &window(Some(0), None), limit).await.concat(),
            trail,
            "limit {limit}"
        );
    }

    // `since` is inclusive, `until` exclusive, to the nanosecond.
    assert_eq!(
        pages(&store, &window(Some(2), Some(5)), 2).await.concat(),
        trail[2..5]
    );
    let nanosecond = Duration::nanoseconds(1);
    let just_after = AuditWindow {
        since: Some(trail[2].at + nanosecond),
        until: Some(trail[5].at + nanosecond),
    };
    assert_eq!(pages(&store, &just_after, 2).await.concat(), trail[3..]);
    let one_day = AuditWindow {
        since: Some(trail[3].at),
        until: Some(trail[3].at + Duration::hours(1)),
    };
    assert_eq!(
        pages(&store, &one_day, 1).await.concat(),
        trail[3..5],
        "two events at one instant, a page each"
    );

    // An empty window, or one with nothing in it, is one empty last page.
    for empty in [
        window(Some(2), Some(2)),
        window(Some(4), Some(1)),
        AuditWindow {
            since: Some(Utc::now() + Duration::hours(1)),
            until: None,
        },
    ] {
        let page = store.audit_page(&empty, None, 2).await.expect("page");
        assert_eq!(page, AuditPage::default(), "{empty:?}");
    }
}

#[tokio::test]
async fn audit_pages_of_the_whole_trail_or_a_long_window_scan_the_index() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let trail = seed_trail(&store).await;
    let by_time = |mut events: Vec<AuditEvent>| {
        events.sort_by_key(|e| (e.at, e.request_id.clone(), e.seq));
        events
    };

    // The whole trail: each page in time order, every event exactly once.
    let paged = pages(&store, &AuditWindow::default(), 2).await;
    assert!(paged.len() >= 3, "{paged:?}");
    assert_eq!(by_time(paged.concat()), trail);

    // Reaching back further than the day-by-day walk goes, or with only an end: a scan that
    // keeps to the window.
    let long = AuditWindow {
        since: Some(Utc::now() - Duration::days(100)),
        until: Some(trail[5].at),
    };
    assert_eq!(by_time(pages(&store, &long, 2).await.concat()), trail[..5]);
    let until = AuditWindow {
        since: None,
        until: Some(trail[3].at),
    };
    assert_eq!(by_time(pages(&store, &until, 1).await.concat()), trail[..3]);
}

#[tokio::test]
async fn an_item_in_the_day_index_that_is_no_event_does_not_stop_the_trail() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;
    let trail = seed_trail(&store).await;
    // Someone with table write indexes junk by day, between the trail's events.
    let at = trail[2].at;
    let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    client
        .put_item()
        .table_name(store.table())
        .item("pk", s("JUNK#1".to_owned()))
        .item("sk", s("EVT#0000000001".to_owned()))
        .item("gsi3pk", s(format!("AUDIT#{}", at.format("%Y-%m-%d"))))
        .item(
            "gsi3sk",
            s(format!(
                "{}#junk#0000000001",
                at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )),
        )
        .send()
        .await
        .expect("put junk");
    let by_time = |mut events: Vec<AuditEvent>| {
        events.sort_by_key(|e| (e.at, e.request_id.clone(), e.seq));
        events
    };
    let whole = store
        .audit_page(&AuditWindow::default(), None, 100)
        .await
        .expect("the whole trail, by scan");
    assert_eq!(by_time(whole.events), trail);
    let days = AuditWindow {
        since: Some(trail[0].at),
        until: None,
    };
    let mut read = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .audit_page(&days, after.as_deref(), 1)
            .await
            .expect("day by day");
        read.extend(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(by_time(read), trail);
}

#[tokio::test]
async fn audit_page_cursors_of_another_window_or_tampered_are_refused() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let trail = seed_trail(&store).await;
    let bad_cursor = |result: Result<AuditPage, StoreError>| match result {
        Err(StoreError::BadCursor(why)) => why,
        other => panic!("expected BadCursor, got {other:?}"),
    };

    for window in [
        AuditWindow {
            since: Some(trail[0].at),
            until: None,
        },
        AuditWindow::default(),
    ] {
        let next = store
            .audit_page(&window, None, 2)
            .await
            .expect("page")
            .next
            .expect("more pages");
        let other = AuditWindow {
            since: Some(trail[1].at),
            ..window
        };
        let why = bad_cursor(store.audit_page(&other, Some(&next), 2).await);
        assert!(why.contains("not of this one"), "{why}");
        bad_cursor(store.audit_page(&window, Some("not a cursor"), 2).await);
        bad_cursor(
            store
                .audit_page(&window, Some(&format!("{next}A")), 2)
                .await,
        );
        bad_cursor(store.audit_page(&window, Some(&next[4..]), 2).await);
        // Still good once the refused ones were tried.
        let second = store
            .audit_page(&window, Some(&next), 2)
            .await
            .expect("page");
        assert!(!second.events.is_empty());
    }
}

#[tokio::test]
async fn open_requests_of_a_requester_are_listed_from_the_open_index() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;
    let t0 = Utc::now() - Duration::days(2);

    // A long history of ended requests, one grant that is ACTIVE and one request PENDING,
    // and someone else's open requests.
    for i in 0..30 {
        let (request, event) = new_request("alice", t0 + Duration::minutes(i));
        store.create(&request, &event).await.expect("create");
        store
            .transition(&deny(&request, "bob", t0 + Duration::minutes(i)))
            .await
            .expect("deny");
    }
    let (grant, created) = new_request("alice", t0 + Duration::hours(1));
    store.create(&grant, &created).await.expect("create");
    let approved = approve(&grant, "bob", t0 + Duration::hours(1));
    store.transition(&approved).await.expect("approve");
    let active = apply(
        &approved.request,
        Command::Activate,
        &by_system("escalate"),
        t0 + Duration::hours(1),
    )
    .expect("activate");
    store.transition(&active).await.expect("activate");
    let (pending, created) = new_request("alice", t0 + Duration::hours(2));
    store.create(&pending, &created).await.expect("create");
    for i in 0..3 {
        let (theirs, created) = new_request("bob", t0 + Duration::hours(i));
        store.create(&theirs, &created).await.expect("create");
    }

    let open = [State::Active, State::Approved, State::Pending];
    let listed = store.list_by_requester("alice", &open).await.expect("open");
    assert_eq!(
        listed,
        vec![
            store.get(&pending.id).await.expect("get").expect("pending"),
            active.request.clone(),
        ],
        "alice's open requests, newest first"
    );
    let filtered: Vec<_> = store
        .list_by_requester("alice", &[])
        .await
        .expect("all")
        .into_iter()
        .filter(|r| open.contains(&r.state))
        .collect();
    assert_eq!(listed, filtered, "the same as her whole history filtered");
    assert_eq!(
        store
            .list_by_requester("alice", &[State::Active, State::Active])
            .await
            .expect("active"),
        vec![active.request.clone()],
        "a state asked twice, listed once"
    );
    assert_eq!(
        store
            .list_by_requester("alice", &[State::Denied])
            .await
            .expect("ended")
            .len(),
        30
    );
    assert_eq!(
        store
            .list_by_requester("alice", &[State::Active, State::Denied])
            .await
            .expect("mixed")
            .len(),
        31,
        "with a final state asked, from her history"
    );

    // What each index would have DynamoDB read (the store does not report what it read): her
    // partition of the open index is her two open requests, her history 32.
    let read = |index: &'static str, pk: &'static str, key: String| {
        let client = client.clone();
        let table = store.table().to_owned();
        async move {
            client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk)
                .expression_attribute_values(":pk", AttributeValue::S(key))
                .send()
                .await
                .expect("query")
                .scanned_count()
        }
    };
    assert_eq!(
        read(OPEN_BY_REQUESTER, "gsi4pk", "REQUESTER#alice".to_owned()).await,
        2
    );
    assert_eq!(
        read(BY_REQUESTER, "gsi1pk", "REQUESTER#alice".to_owned()).await,
        32
    );
    assert_eq!(
        read(OPEN_BY_REQUESTER, "gsi4pk", "REQUESTER#bob".to_owned()).await,
        3
    );
}

#[tokio::test]
async fn an_open_request_written_before_the_open_index_is_added_to_it_by_a_state_listing() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;
    let t0 = Utc::now() - Duration::hours(1);
    let (old, created) = new_request("alice", t0);
    store.create(&old, &created).await.expect("create");
    let (ended, created) = new_request("alice", t0 + Duration::minutes(1));
    store.create(&ended, &created).await.expect("create");
    store
        .transition(&deny(&ended, "bob", t0 + Duration::minutes(2)))
        .await
        .expect("deny");
    // As an earlier version wrote them: no open-index attributes.
    for request in [&old, &ended] {
        client
            .update_item()
            .table_name(store.table())
            .key("pk", AttributeValue::S(format!("REQ#{}", request.id)))
            .key("sk", AttributeValue::S("REQ".to_owned()))
            .update_expression("REMOVE gsi4pk, gsi4sk")
            .send()
            .await
            .expect("remove");
    }
    let open = [State::Active, State::Approved, State::Pending];
    assert_eq!(
        store.list_by_requester("alice", &open).await.expect("open"),
        vec![],
        "not in the open index yet"
    );

    let pending = store.list_by_state(State::Pending).await.expect("pending");
    assert_eq!(ids(pending), vec![old.id.clone()]);
    assert_eq!(
        ids(store.list_by_requester("alice", &open).await.expect("open")),
        vec![old.id.clone()],
        "in it once its state was listed"
    );
    // A final state's listing adds nothing: an ended request stays out of the open index.
    store.list_by_state(State::Denied).await.expect("denied");
    let item = client
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("REQ#{}", ended.id)))
        .key("sk", AttributeValue::S("REQ".to_owned()))
        .send()
        .await
        .expect("get")
        .item
        .expect("item");
    assert!(!item.contains_key("gsi4pk"), "{item:?}");

    // Ended later, it leaves the index as any request does.
    store
        .transition(&deny(&old, "bob", t0 + Duration::minutes(3)))
        .await
        .expect("deny");
    assert_eq!(
        store.list_by_requester("alice", &open).await.expect("open"),
        vec![]
    );
}

#[tokio::test]
async fn list_pages_keep_the_promises_of_the_fake() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let store = store.with_list_read_budget(5);
    elevate_core::testing::check_list_pages(
        &store,
        &|| store.list_reads(),
        5,
        Utc::now() - Duration::days(1),
    )
    .await;
}

#[tokio::test]
async fn a_page_of_a_long_history_reads_that_page_and_the_cursor_goes_on() {
    let moto = Moto::start().await;
    let (store, client) = store(&moto).await;
    let t0 = Utc::now() - Duration::days(30);
    let mut history = Vec::new();
    for i in 0..25 {
        let (request, event) = new_request("alice", t0 + Duration::hours(i));
        store.create(&request, &event).await.expect("create");
        history.push(request);
    }
    history.reverse();
    let mine = ListQuery::Requester {
        requester: "alice".into(),
        state: None,
    };

    let first = store.list_page(&mine, None, 10).await.expect("first");
    assert_eq!(first.requests, history[..10], "the newest page first");
    assert_eq!(store.list_reads(), 11, "the page and one more, of 25");
    let next = first.next.expect("more");
    assert!(
        next.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {next}"
    );
    let second = store
        .list_page(&mine, Some(&next), 10)
        .await
        .expect("second");
    assert_eq!(second.requests, history[10..20]);
    let last = store
        .list_page(&mine, second.next.as_deref(), 10)
        .await
        .expect("last");
    assert_eq!(last.requests, history[20..]);
    assert_eq!(last.next, None);
    assert_eq!(store.list_reads(), 11 + 11 + 5);

    // A cursor of another listing, or altered to read another partition, is refused before
    // anything is read.
    let reads = store.list_reads();
    let bad_cursor = |result: Result<ListPage, StoreError>| match result {
        Err(StoreError::BadCursor(why)) => why,
        other => panic!("expected BadCursor, got {other:?}"),
    };
    let bobs = ListQuery::Requester {
        requester: "bob".into(),
        state: None,
    };
    let why = bad_cursor(store.list_page(&bobs, Some(&next), 10).await);
    assert!(why.contains("not of this listing"), "{why}");
    let json = |value: serde_json::Value| {
        aws_smithy_types::base64::encode(value.to_string())
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    };
    let binding = serde_json::json!({"of": "requester", "who": "alice", "state": null});
    let key = |gsi1pk: &str, sk: &str| serde_json::json!({"pk": "REQ#x", "sk": sk, "gsi1pk": gsi1pk, "gsi1sk": "2026"});
    for (tampered, what) in [
        (
            json(serde_json::json!({"query": binding, "after": key("REQUESTER#bob", "REQ")})),
            "another requester's partition",
        ),
        (
            json(
                serde_json::json!({"query": binding, "after": key("REQUESTER#alice", "EVT#0000000001")}),
            ),
            "the key of an audit event",
        ),
        (
            json(serde_json::json!({"query": binding, "after": {"pk": "REQ#x", "sk": "REQ"}})),
            "not a key of the index",
        ),
        (
            json(
                serde_json::json!({"query": binding, "after": key("REQUESTER#alice", "REQ"), "x": 1}),
            ),
            "an unknown field",
        ),
    ] {
        match store.list_page(&mine, Some(&tampered), 10).await {
            Err(StoreError::BadCursor(_)) => {}
            other => panic!("{what}: expected BadCursor, got {other:?}"),
        }
    }
    assert_eq!(
        store.list_reads(),
        reads,
        "nothing read for a refused cursor"
    );

    // The raw index agrees: what the first page read is a tenth of what her history holds.
    let all = client
        .query()
        .table_name(store.table())
        .index_name(BY_REQUESTER)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", "gsi1pk")
        .expression_attribute_values(":pk", AttributeValue::S("REQUESTER#alice".into()))
        .send()
        .await
        .expect("query")
        .scanned_count();
    assert_eq!(all, 25);
}

#[tokio::test]
async fn to_approve_reads_the_pending_requests_with_the_deciders_filter() {
    let moto = Moto::start().await;
    let (store, _) = store(&moto).await;
    let t0 = Utc::now() - Duration::hours(3);
    // Two flows of more than a filter's 100 values: filtered after the read, same answer.
    let (mine, created) = new_request("bob", t0);
    store.create(&mine, &created).await.expect("create");
    let (theirs, created) = new_request("alice", t0 + Duration::minutes(1));
    store.create(&theirs, &created).await.expect("create");
    let many: Vec<elevate_core::FlowName> = (0..150)
        .map(|i| format!("flow{i}").into())
        .chain(["infra_access".into()])
        .collect();
    for (flows, self_approval, expected) in [
        (vec!["infra_access".into()], vec![], vec![theirs.clone()]),
        (
            vec!["infra_access".into()],
            vec!["infra_access".into()],
            vec![mine.clone(), theirs.clone()],
        ),
        (many.clone(), vec![], vec![theirs.clone()]),
        (
            many.clone(),
            many.clone(),
            vec![mine.clone(), theirs.clone()],
        ),
        (vec!["other".into()], vec![], vec![]),
    ] {
        let query = ListQuery::State {
            state: State::Pending,
            decider: Some(Decider {
                person: "bob".into(),
                flows,
                self_approval,
            }),
        };
        let page = store.list_page(&query, None, 50).await.expect("page");
        assert_eq!(page.requests, expected, "{query:?}");
        assert_eq!(page.next, None);
    }
}
