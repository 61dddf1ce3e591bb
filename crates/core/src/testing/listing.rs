//! The promises of [`RequestStore::list_page`], checked the same way on any store: the
//! in-memory one here, DynamoDB in elevate-aws's moto tests.

use chrono::{DateTime, Duration, Utc};

use crate::machine::{apply, open, Command, NewRequest};
use crate::model::{By, Request, RequestId, State};
use crate::ports::{AuditWindow, Decider, ListPage, ListQuery, RequestStore, StoreError};

use super::{iam_arn, sample_terms};

/// The requests [`check_list_pages`] lists, as it stored them.
struct Seeded {
    /// alice's ten requests, newest first.
    alice: Vec<Request>,
    /// Every PENDING request, oldest first.
    pending: Vec<Request>,
}

/// Seeds `store` (empty, or with nothing of alice, bob and carol in it) with alice's history of
/// ten requests (four DENIED, one APPROVED, five PENDING), three PENDING requests of bob (one of
/// flow `custom`) and one of carol (`custom`), the first opened at `t0`, a minute apart; then
/// checks every promise of `list_page` on them: pages in the listing's order that together are
/// the listing, the limit, cursors bound to their query, and what a page reads.
///
/// `budget` is the store's read budget for a page (set by the caller; at least 5), `reads` how
/// many items the store's listings have read so far.
pub async fn check_list_pages(
    store: &dyn RequestStore,
    reads: &(dyn Fn() -> u64 + Sync),
    budget: usize,
    t0: DateTime<Utc>,
) {
    assert!(budget >= 5, "the checks need a budget of at least 5");
    let seeded = seed(store, t0).await;
    let alice_query = |state: Option<State>| ListQuery::Requester {
        requester: "alice".into(),
        state,
    };
    let of_state = |requests: &[Request], state: State| -> Vec<Request> {
        requests
            .iter()
            .filter(|r| r.state == state)
            .cloned()
            .collect()
    };

    // A requester's history: the newest page first, each full but the last, read one past the
    // page and no further.
    let before = reads();
    let first = store
        .list_page(&alice_query(None), None, 3)
        .await
        .expect("first page");
    assert_eq!(reads() - before, 4, "a page of 3 reads 4 items");
    assert_eq!(first.requests, seeded.alice[..3], "the newest first");
    let paged = pages(store, &alice_query(None), 3).await;
    assert_eq!(
        paged.iter().map(|p| p.requests.len()).collect::<Vec<_>>(),
        [3, 3, 3, 1]
    );
    assert_eq!(concat(&paged), seeded.alice);
    for limit in [1, 2, 9, 10, 11, 200] {
        assert_eq!(
            concat(&pages(store, &alice_query(None), limit).await),
            seeded.alice,
            "limit {limit}"
        );
    }

    // In a final state: from her history, filtered; a page stops at the budget.
    let denied = of_state(&seeded.alice, State::Denied);
    assert_eq!(denied.len(), 4);
    for limit in [1, 2, 4, 5] {
        let before = reads();
        let paged = pages(store, &alice_query(Some(State::Denied)), limit).await;
        assert_eq!(concat(&paged), denied, "limit {limit}");
        let read = usize::try_from(reads() - before).expect("reads");
        assert!(
            read <= paged.len() * budget.max(limit + 1),
            "at most the budget a page: {read} items for {} pages",
            paged.len()
        );
    }

    // In an open state: from all the requests in that state, not her history.
    let pending = of_state(&seeded.alice, State::Pending);
    assert_eq!(pending.len(), 5);
    for limit in [1, 2, 5, 50] {
        let before = reads();
        let paged = pages(store, &alice_query(Some(State::Pending)), limit).await;
        assert_eq!(concat(&paged), pending, "limit {limit}");
        if limit >= pending.len() {
            assert_eq!(
                reads() - before,
                seeded.pending.len() as u64,
                "the PENDING requests of everyone are read, none of her history"
            );
        }
    }
    assert_eq!(
        concat(&pages(store, &alice_query(Some(State::Approved)), 2).await),
        of_state(&seeded.alice, State::Approved)
    );
    assert!(concat(&pages(store, &alice_query(Some(State::Active)), 2).await).is_empty());

    // The requests in a state: oldest first; for a decider, those they may decide.
    let state_query = |state: State, decider: Option<Decider>| ListQuery::State { state, decider };
    for limit in [1, 4, 50] {
        assert_eq!(
            concat(&pages(store, &state_query(State::Pending, None), limit).await),
            seeded.pending,
            "limit {limit}"
        );
    }
    let bob = |flows: &[&str], self_approval: &[&str]| Decider {
        person: "bob".into(),
        flows: flows.iter().map(|f| (*f).into()).collect(),
        self_approval: self_approval.iter().map(|f| (*f).into()).collect(),
    };
    let decidable = |decider: &Decider| -> Vec<Request> {
        seeded
            .pending
            .iter()
            .filter(|r| decider.may_decide(r))
            .cloned()
            .collect()
    };
    for decider in [
        bob(&["infra_access"], &[]),
        bob(&["infra_access", "custom"], &["custom"]),
        bob(&["custom"], &[]),
    ] {
        let expected = decidable(&decider);
        assert!(!expected.is_empty(), "{decider:?}");
        let query = state_query(State::Pending, Some(decider));
        assert_eq!(
            concat(&pages(store, &query, 2).await),
            expected,
            "{query:?}"
        );
    }
    assert_eq!(
        decidable(&bob(&["infra_access", "custom"], &["custom"])).len(),
        7,
        "alice's five, bob's own of the flow that allows it, carol's"
    );
    let before = reads();
    let nothing = state_query(State::Pending, Some(bob(&[], &[])));
    assert_eq!(
        store.list_page(&nothing, None, 5).await.expect("page"),
        ListPage::default()
    );
    assert_eq!(reads(), before, "a decider of no flow reads nothing");

    // Cursors: bound to their query, refused altered.
    let next = first.next.clone().expect("more pages");
    let refused = |result: Result<ListPage, StoreError>, what: &str| match result {
        Err(StoreError::BadCursor(why)) => assert!(!why.is_empty(), "{what}"),
        other => panic!("{what}: expected BadCursor, got {other:?}"),
    };
    let others = [
        ListQuery::Requester {
            requester: "bob".into(),
            state: None,
        },
        alice_query(Some(State::Denied)),
        alice_query(Some(State::Pending)),
        state_query(State::Pending, None),
        state_query(State::Pending, Some(bob(&["infra_access"], &[]))),
    ];
    for other in &others {
        refused(
            store.list_page(other, Some(&next), 3).await,
            &format!("{other:?}"),
        );
    }
    let pending_next = store
        .list_page(&state_query(State::Pending, None), None, 2)
        .await
        .expect("page")
        .next
        .expect("more");
    refused(
        store
            .list_page(&state_query(State::Denied, None), Some(&pending_next), 2)
            .await,
        "another state",
    );
    let bobs_next = store
        .list_page(
            &state_query(State::Pending, Some(bob(&["infra_access"], &[]))),
            None,
            2,
        )
        .await
        .expect("page")
        .next
        .expect("more");
    let carol = Decider {
        person: "carol".into(),
        ..bob(&["infra_access"], &[])
    };
    refused(
        store
            .list_page(
                &state_query(State::Pending, Some(carol)),
                Some(&bobs_next),
                2,
            )
            .await,
        "another decider",
    );
    let audit_next = store
        .audit_page(&AuditWindow::default(), None, 1)
        .await
        .expect("audit page")
        .next
        .expect("more events");
    refused(
        store
            .list_page(&alice_query(None), Some(&audit_next), 3)
            .await,
        "an export's cursor",
    );
    for altered in [
        "not a cursor".to_owned(),
        format!("{next}A"),
        next[1..].to_owned(),
        next[..next.len() - 1].to_owned(),
    ] {
        refused(
            store.list_page(&alice_query(None), Some(&altered), 3).await,
            &altered,
        );
    }
    // Still good once the refused ones were tried.
    let second = store
        .list_page(&alice_query(None), Some(&next), 3)
        .await
        .expect("second page");
    assert_eq!(second.requests, seeded.alice[3..6]);
}

/// Every page of `query`, checking that each holds at most `limit` requests.
async fn pages(store: &dyn RequestStore, query: &ListQuery, limit: usize) -> Vec<ListPage> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_page(query, after.as_deref(), limit)
            .await
            .expect("page");
        assert!(page.requests.len() <= limit, "at most {limit} a page");
        assert!(pages.len() < 100, "a listing that does not end");
        let next = page.next.clone();
        pages.push(page);
        match next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

fn concat(pages: &[ListPage]) -> Vec<Request> {
    pages.iter().flat_map(|p| p.requests.clone()).collect()
}

async fn seed(store: &dyn RequestStore, t0: DateTime<Utc>) -> Seeded {
    let mut alice = Vec::new();
    let mut pending = Vec::new();
    let mut plan: Vec<(&str, &str, DateTime<Utc>)> = (0..10)
        .map(|i| ("alice", "infra_access", t0 + Duration::minutes(i)))
        .collect();
    plan.push(("bob", "infra_access", t0 + Duration::seconds(30)));
    plan.push(("bob", "infra_access", t0 + Duration::seconds(5 * 60 + 30)));
    plan.push(("bob", "custom", t0 + Duration::seconds(7 * 60 + 30)));
    plan.push(("carol", "custom", t0 + Duration::seconds(8 * 60 + 30)));
    for (requester, flow, at) in plan {
        let (request, event) = open(
            RequestId::generate(at),
            NewRequest {
                flow: flow.into(),
                target: "admins".into(),
                requester: requester.into(),
                reason: "incident 42".into(),
                duration: std::time::Duration::from_secs(3600),
                pending_timeout: std::time::Duration::from_secs(1800),
                approvals_required: 1,
                terms: sample_terms(requester),
            },
            &iam_arn(&sample_terms(requester).person),
            at,
        );
        store.create(&request, &event).await.expect("create");
        let minute = (at - t0).num_minutes();
        let decided = match (requester, minute % 3, minute) {
            ("alice", 0, _) => Some(Command::Deny { reason: None }),
            ("alice", _, 4) => Some(Command::Approve { reason: None }),
            _ => None,
        };
        let request = match decided {
            Some(command) => {
                let by = By::person("bob", "arn:aws:iam::123456789012:user/bob");
                let step = apply(&request, command, &by, at).expect("decide");
                store.transition(&step).await.expect("decide");
                step.request
            }
            None => request,
        };
        if requester == "alice" {
            alice.push(request.clone());
        }
        if request.state == State::Pending {
            pending.push(request);
        }
    }
    alice.reverse();
    pending.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Seeded { alice, pending }
}
