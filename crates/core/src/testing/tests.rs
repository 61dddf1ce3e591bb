//! The fakes keep the promises of the adapters they stand for.

use super::*;
use crate::audit::AuditEvent;
use crate::events::ScheduledAction;
use crate::machine::{apply, open, Command, NewRequest, Transition};
use crate::model::By;
use crate::model::{MessageRef, Request, RequestId, State};
use crate::ports::{
    Clock, InvokeError, Invoker, Membership, Notifier, RequestStore, Scheduler, StoreError,
    Strategy,
};
use std::time::Duration;

fn new_request(clock: &FakeClock, requester: &str) -> (Request, AuditEvent) {
    let now = clock.now();
    open(
        RequestId::generate(now),
        NewRequest {
            flow: "infra_access".into(),
            target: "admins".into(),
            requester: requester.into(),
            reason: "incident 42".into(),
            duration: Duration::from_secs(3600),
            pending_timeout: Duration::from_secs(1800),
            approvals_required: 1,
            terms: sample_terms(requester),
        },
        &iam_arn(&sample_terms(requester).person),
        now,
    )
}

#[tokio::test]
async fn create_twice_is_a_conflict() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    store.create(&request, &event).await.expect("create");
    let err = store
        .create(&request, &event)
        .await
        .expect_err("second create");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.events_all().len(), 1);
}

#[tokio::test]
async fn transition_checks_state_and_sequence() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    store.create(&request, &event).await.expect("create");

    let approve = apply(
        &request,
        Command::Approve { reason: None },
        &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
        clock.now(),
    )
    .expect("approve");
    // Wrong expected state: nothing written.
    let wrong = Transition {
        from: State::Approved,
        ..approve.clone()
    };
    let err = store.transition(&wrong).await.expect_err("wrong state");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.request(&request.id).expect("stored").state,
        State::Pending
    );
    assert_eq!(store.events_all().len(), 1);

    store.transition(&approve).await.expect("approve");

    // A racing deny computed from the same PENDING copy loses: the state moved on.
    let deny = apply(
        &request,
        Command::Deny { reason: None },
        &By::person("carol", "arn:aws:iam::123456789012:user/carol"),
        clock.now(),
    )
    .expect("deny");
    let err = store.transition(&deny).await.expect_err("lost race");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // The same transition delivered twice: the second one conflicts on the state.
    let err = store.transition(&approve).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let stored = store.request(&request.id).expect("stored");
    assert_eq!(stored.state, State::Approved);
    assert_eq!(stored.audit_seq, 2);
    let events = store.audit_events(&request.id).await.expect("events");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    crate::audit::verify_chain(&events, Some((stored.audit_seq, &stored.audit_head)))
        .expect("chain");
}

#[tokio::test]
async fn transition_with_a_stale_sequence_conflicts() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    store.create(&request, &event).await.expect("create");
    let approve = apply(
        &request,
        Command::Approve { reason: None },
        &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
        clock.now(),
    )
    .expect("approve");
    store.transition(&approve).await.expect("approve");

    // Same expected state, but the stored sequence is ahead of the copy's.
    let activate = apply(
        &approve.request,
        Command::Activate,
        &By::system("escalate", "lambda:elevate-escalate"),
        clock.now(),
    )
    .expect("activate");
    let mut seeded = approve.request.clone();
    seeded.audit_seq = 5;
    store.insert_unchecked(seeded, Vec::new());
    let err = store.transition(&activate).await.expect_err("stale seq");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.events_all().len(), 2);
}

#[tokio::test]
async fn transition_of_a_missing_request_is_not_found() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, _) = new_request(&clock, "alice");
    let approve = apply(
        &request,
        Command::Approve { reason: None },
        &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
        clock.now(),
    )
    .expect("approve");
    let err = store.transition(&approve).await.expect_err("missing");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.events_all().is_empty());
}

#[tokio::test]
async fn inconsistent_pairs_are_refused() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    let mut wrong = request.clone();
    wrong.audit_seq = 2;
    let err = store
        .create(&wrong, &event)
        .await
        .expect_err("inconsistent");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn injected_failures_are_unavailable_then_clear() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    store.fail_next(2);
    for _ in 0..2 {
        let err = store.create(&request, &event).await.expect_err("injected");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    store.create(&request, &event).await.expect("create");
    assert_eq!(store.calls(), 3);
}

#[tokio::test]
async fn listings_are_ordered() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let mut ids = Vec::new();
    for requester in ["alice", "alice", "bob"] {
        let (request, event) = new_request(&clock, requester);
        store.create(&request, &event).await.expect("create");
        ids.push(request.id.clone());
        clock.advance(Duration::from_secs(60));
    }
    let mine = store.list_by_requester("alice", &[]).await.expect("mine");
    assert_eq!(
        mine.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [ids[1].clone(), ids[0].clone()]
    );
    let none = store
        .list_by_requester("alice", &[State::Active])
        .await
        .expect("none");
    assert!(none.is_empty());
    let pending = store.list_by_state(State::Pending).await.expect("pending");
    assert_eq!(
        pending.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids
    );

    let since = FakeClock::start() + chrono::Duration::seconds(60);
    let events = store.audit_since(Some(since)).await.expect("since");
    assert_eq!(
        events
            .iter()
            .map(|e| e.request_id.clone())
            .collect::<Vec<_>>(),
        [ids[1].clone(), ids[2].clone()]
    );
    assert_eq!(store.audit_since(None).await.expect("all").len(), 3);
}

#[tokio::test]
async fn set_message_survives_a_transition_from_an_older_copy() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let (request, event) = new_request(&clock, "alice");
    store.create(&request, &event).await.expect("create");
    let message = MessageRef {
        channel: "C0APPROVALS".into(),
        ts: "1.1".into(),
    };
    store.set_message(&request.id, &message).await.expect("set");
    let approve = apply(
        &request,
        Command::Approve { reason: None },
        &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
        clock.now(),
    )
    .expect("approve");
    store.transition(&approve).await.expect("approve");
    let stored = store.get(&request.id).await.expect("get").expect("some");
    assert_eq!(stored.message, Some(message));
}

#[tokio::test]
async fn strategy_and_scheduler_fakes_behave_like_their_adapters() {
    let config = sample_config();
    let flow = config.flow("infra_access").expect("flow");
    let target = &flow.targets[0];
    let alice = config.person("alice").expect("alice");
    let clock = FakeClock::default();
    let (request, _) = new_request(&clock, "alice");

    let strategy = FakeStrategy::new();
    strategy
        .escalate(target, alice, &request)
        .await
        .expect("escalate");
    strategy
        .escalate(target, alice, &request)
        .await
        .expect("twice");
    assert_eq!(
        strategy.is_member(target, alice).await.expect("read"),
        Membership::Present
    );
    strategy
        .deescalate(target, alice, &request)
        .await
        .expect("remove");
    strategy
        .deescalate(target, alice, &request)
        .await
        .expect("absent is fine");
    assert_eq!(
        strategy.is_member(target, alice).await.expect("read"),
        Membership::Absent
    );
    strategy.fail_escalate(1);
    assert!(strategy.escalate(target, alice, &request).await.is_err());
    assert!(!strategy.has("admins", "alice"));
    assert_eq!(strategy.escalate_calls(), 3);

    let scheduler = FakeScheduler::new();
    let action = ScheduledAction::Expire {
        request_id: request.id.clone(),
    };
    let at = clock.now() + chrono::Duration::hours(1);
    scheduler
        .schedule(clock.now(), &action)
        .await
        .expect("create");
    scheduler.schedule(at, &action).await.expect("replace");
    assert_eq!(scheduler.schedules().len(), 1);
    assert_eq!(
        scheduler
            .get(&action.schedule_name())
            .await
            .expect("get")
            .map(|s| s.at),
        Some(at)
    );
    assert!(scheduler.take_due(clock.now()).is_empty());
    clock.sleep_until(at).await;
    assert_eq!(clock.now(), at);
    assert_eq!(scheduler.take_due(clock.now()).len(), 1);
    scheduler
        .cancel(&action.schedule_name())
        .await
        .expect("idempotent");
}

#[tokio::test]
async fn notifier_and_invoker_record() {
    let config = sample_config();
    let flow = config.flow("infra_access").expect("flow");
    let alice = config.person("alice").expect("alice");
    let clock = FakeClock::default();
    let (request, _) = new_request(&clock, "alice");

    let notifier = RecordingNotifier::new();
    let first = notifier
        .announce(&request, flow, alice, &flow.approvers.channel)
        .await
        .expect("announce");
    let second = notifier
        .announce(&request, flow, alice, &flow.approvers.channel)
        .await
        .expect("announce");
    assert_eq!(first.channel, "C0APPROVALS");
    assert!(second.ts > first.ts);
    notifier
        .tell(alice, &request, "you are in")
        .await
        .expect("tell");
    assert_eq!(notifier.told("alice"), ["you are in"]);
    notifier.fail_next(1);
    assert!(notifier.tell(alice, &request, "lost").await.is_err());
    assert_eq!(notifier.notices().len(), 3);

    let invoker = RecordingInvoker::new();
    let payload = serde_json::json!({"request_id": request.id});
    invoker
        .invoke_async("escalate", &payload)
        .await
        .expect("async");
    assert_eq!(
        invoker.invoke("target", &payload).await.expect("sync"),
        serde_json::json!({"ok": true})
    );
    invoker.answer_error("target", "boom");
    assert!(matches!(
        invoker.invoke("target", &payload).await,
        Err(InvokeError::FunctionError(_))
    ));
    let calls = invoker.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls[0].asynchronous && !calls[1].asynchronous);
}

#[test]
fn sample_config_has_what_the_docs_say() {
    let config = sample_config();
    assert_eq!(config.people.len(), 3);
    let infra = config.flow("infra_access").expect("infra");
    assert_eq!(infra.approvers.people, ["bob", "carol", "alice"]);
    assert!(!infra.allow_self_approval);
    assert_eq!(infra.max_duration, Duration::from_secs(4 * 3600));
    assert!(config.flow("custom").is_some());
}

/// Five events over three days: two requests on the first, two opened at the same instant on
/// the second, an approval on the third. In time order (ties by request id).
async fn seed_trail(store: &MemoryStore) -> Vec<AuditEvent> {
    let clock = FakeClock::default();
    let day = chrono::Duration::days(1);
    let start = FakeClock::start();
    let mut opened = Vec::new();
    for at in [
        start,
        start + chrono::Duration::hours(6),
        start + day,
        start + day,
    ] {
        clock.set(at);
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");
        opened.push(request);
    }
    let approved = apply(
        &opened[0],
        Command::Approve { reason: None },
        &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
        start + day * 2,
    )
    .expect("approve");
    store.transition(&approved).await.expect("approve");
    let trail = store.audit_since(None).await.expect("trail");
    assert_eq!(trail.len(), 5);
    trail
}

/// Every page of the export of `window`, checking that only the last may be empty.
async fn pages(
    store: &MemoryStore,
    window: &crate::ports::AuditWindow,
    limit: usize,
) -> Vec<Vec<AuditEvent>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .audit_page(window, after.as_deref(), limit)
            .await
            .expect("page");
        assert!(
            page.events.len() <= limit.max(1),
            "at most {limit} events a page"
        );
        let last = page.next.is_none();
        assert!(last || !page.events.is_empty(), "an empty page is the last");
        pages.push(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn audit_pages_give_every_event_of_the_trail_once_in_time_order() {
    let store = MemoryStore::new();
    let trail = seed_trail(&store).await;
    let whole = crate::ports::AuditWindow::default();
    let paged = pages(&store, &whole, 2).await;
    assert_eq!(
        paged.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1],
        "limit 2 over 5 events, across days and within one"
    );
    assert_eq!(paged.concat(), trail);
    for limit in [1, 3, 5, 6, 100] {
        assert_eq!(
            pages(&store, &whole, limit).await.concat(),
            trail,
            "{limit}"
        );
    }
    assert_eq!(
        pages(&store, &whole, 5).await.len(),
        1,
        "an exact fit is one page"
    );
    assert_eq!(
        pages(&store, &whole, 0).await.len(),
        5,
        "a limit of 0 reads as 1"
    );
}

#[tokio::test]
async fn audit_pages_keep_to_the_window() {
    let store = MemoryStore::new();
    let trail = seed_trail(&store).await;
    let window = |since: Option<usize>, until: Option<usize>| crate::ports::AuditWindow {
        since: since.map(|i| trail[i].at),
        until: until.map(|i| trail[i].at),
    };
    // `since` is inclusive, `until` exclusive.
    assert_eq!(
        pages(&store, &window(Some(1), Some(4)), 2).await.concat(),
        trail[1..4]
    );
    assert_eq!(
        pages(&store, &window(Some(2), None), 1).await.concat(),
        trail[2..]
    );
    assert_eq!(
        pages(&store, &window(None, Some(2)), 1).await.concat(),
        trail[..2]
    );
    let just_after = crate::ports::AuditWindow {
        since: Some(trail[1].at + chrono::Duration::nanoseconds(1)),
        until: Some(trail[4].at + chrono::Duration::nanoseconds(1)),
    };
    assert_eq!(pages(&store, &just_after, 2).await.concat(), trail[2..]);

    // An empty window, or one with nothing in it, is one empty last page.
    for empty in [
        window(Some(2), Some(2)),
        window(Some(3), Some(1)),
        crate::ports::AuditWindow {
            since: Some(trail[4].at + chrono::Duration::seconds(1)),
            until: None,
        },
    ] {
        let page = store.audit_page(&empty, None, 2).await.expect("page");
        assert_eq!(page, crate::ports::AuditPage::default(), "{empty:?}");
    }
}

#[tokio::test]
async fn audit_page_cursors_of_another_window_or_tampered_are_refused() {
    let store = MemoryStore::new();
    let trail = seed_trail(&store).await;
    let window = crate::ports::AuditWindow {
        since: Some(trail[0].at),
        until: None,
    };
    let first = store.audit_page(&window, None, 2).await.expect("page");
    let next = first.next.expect("more");
    let other = crate::ports::AuditWindow {
        since: Some(trail[1].at),
        until: None,
    };
    let refused = |result: Result<crate::ports::AuditPage, StoreError>| {
        matches!(result, Err(StoreError::BadCursor(_)))
    };
    assert!(refused(store.audit_page(&other, Some(&next), 2).await));
    assert!(refused(
        store
            .audit_page(&crate::ports::AuditWindow::default(), Some(&next), 2)
            .await
    ));
    assert!(refused(
        store.audit_page(&window, Some("not a cursor"), 2).await
    ));
    assert!(refused(
        store.audit_page(&window, Some(&next[2..]), 2).await
    ));
    assert!(refused(
        store
            .audit_page(&window, Some(&hex::encode(b"{\"at\": 1}")), 2)
            .await
    ));
    let second = store
        .audit_page(&window, Some(&next), 2)
        .await
        .expect("page");
    assert_eq!(second.events, trail[2..4]);
}

#[tokio::test]
async fn listing_open_states_matches_the_whole_history_filtered() {
    let store = MemoryStore::new();
    let trail = seed_trail(&store).await;
    let open = [State::Active, State::Approved, State::Pending];
    let listed = store.list_by_requester("alice", &open).await.expect("open");
    let all = store.list_by_requester("alice", &[]).await.expect("all");
    let expected: Vec<Request> = all
        .into_iter()
        .filter(|r| open.contains(&r.state))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[3].id, trail[0].request_id, "newest first");
}

#[tokio::test]
async fn list_pages_keep_the_promises_of_the_adapter() {
    let store = MemoryStore::new();
    store.set_list_read_budget(5);
    check_list_pages(&store, &|| store.list_reads(), 5, FakeClock::start()).await;
}

#[tokio::test]
async fn a_list_page_stops_at_the_read_budget_and_goes_on_from_there() {
    let store = MemoryStore::new();
    let clock = FakeClock::default();
    let mut denied = Vec::new();
    for i in 0..12 {
        let (request, event) = new_request(&clock, "alice");
        store.create(&request, &event).await.expect("create");
        if i % 4 == 0 {
            let step = apply(
                &request,
                Command::Deny { reason: None },
                &By::person("bob", "arn:aws:iam::123456789012:user/bob"),
                clock.now(),
            )
            .expect("deny");
            store.transition(&step).await.expect("deny");
            denied.push(step.request);
        }
        clock.advance(Duration::from_secs(60));
    }
    denied.reverse();
    store.set_list_read_budget(3);
    let query = crate::ports::ListQuery::Requester {
        requester: "alice".into(),
        state: Some(State::Denied),
    };
    // Newest first: 11 10 9 | [8] 7 6 | 5 [4] 3 | 2 1 [0]: a page of 2 reads 3 items at most.
    let mut sizes = Vec::new();
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let before = store.list_reads();
        let page = store
            .list_page(&query, after.as_deref(), 2)
            .await
            .expect("page");
        assert!(store.list_reads() - before <= 3);
        sizes.push(page.requests.len());
        found.extend(page.requests);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(found, denied);
    assert_eq!(
        sizes,
        [0, 1, 1, 1],
        "short pages, even an empty one, with a next"
    );
}
