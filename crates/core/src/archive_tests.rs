//! The archive's comparison, its anchors and their chain, `write_anchor`, and the fake archive.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::audit::{Action, EventDraft};
use crate::machine::{open, NewRequest};
use crate::model::{Actor, RequestId, State};
use crate::testing::{iam_arn, sample_terms, FakeArchive, MemoryStore};

const R: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const R2: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
const R3: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d";

/// `minutes` after 2026-01-01T00:00:00Z.
fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
}

/// Long after every event of these tests: all of them settled.
fn late() -> DateTime<Utc> {
    t(100_000)
}

fn id(request: &str) -> RequestId {
    request.parse().expect("request id")
}

/// A request's chain of `n` events, the first at `t(start)`, then one a minute: its creation,
/// then notes that keep it PENDING.
fn chain(request: &str, n: u64, start: i64) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = Vec::new();
    for seq in 1..=n {
        let previous = events.last();
        events.push(
            EventDraft {
                request_id: id(request),
                seq,
                at: t(start + seq as i64 - 1),
                actor: Actor::person("alice"),
                principal: Some("arn:aws:iam::123456789012:user/alice".into()),
                action: if seq == 1 {
                    Action::Request
                } else {
                    Action::Repair
                },
                from: previous.map(|_| State::Pending),
                to: State::Pending,
                reason: Some(format!("note {seq}")),
                terms: None,
                prev_hash: previous.map_or_else(|| GENESIS.to_owned(), |p| p.hash.clone()),
            }
            .seal(),
        );
    }
    events
}

/// Re-links and re-hashes `events` (sorted by seq) as a rewriter of the table would, so that
/// the chain verifies on its own.
fn reseal(events: &mut [AuditEvent]) {
    events.sort_by_key(|e| e.seq);
    let mut prev = GENESIS.to_owned();
    for event in events.iter_mut() {
        event.prev_hash = prev;
        event.hash = event.computed_hash();
        prev = event.hash.clone();
    }
}

fn head(event: &AuditEvent) -> AnchoredHead {
    AnchoredHead {
        request_id: event.request_id.to_string(),
        seq: event.seq,
        hash: event.hash.clone(),
    }
}

fn keyed(anchors: &[&Anchor]) -> Vec<(String, Anchor)> {
    anchors
        .iter()
        .map(|a| (anchor_key(a.until), (*a).clone()))
        .collect()
}

fn index(anchors: &[&Anchor]) -> AnchorIndex {
    let (index, broken) = AnchorIndex::build(keyed(anchors));
    assert_eq!(broken, vec![], "the anchors of the test chain");
    index
}

fn no_anchors() -> AnchorIndex {
    AnchorIndex::default()
}

fn compare(table: &[AuditEvent], archive: &[AuditEvent], anchors: &AnchorIndex) -> Vec<Difference> {
    compare_request(R, table, archive, anchors, late())
}

fn altered(seq: u64) -> Difference {
    Difference::Altered {
        request_id: R.into(),
        seq,
    }
}

fn deleted(seq: u64) -> Difference {
    Difference::Deleted {
        request_id: R.into(),
        seq,
    }
}

fn inserted(seq: u64) -> Difference {
    Difference::Inserted {
        request_id: R.into(),
        seq,
    }
}

fn reordered(seq: u64, archived_seq: u64) -> Difference {
    Difference::Reordered {
        request_id: R.into(),
        seq,
        archived_seq,
    }
}

fn table_chain(error: &str) -> Difference {
    Difference::TableChain {
        request_id: R.into(),
        error: error.into(),
    }
}

// ---- compare_request ----

#[test]
fn a_clean_chain_has_no_differences() {
    let events = chain(R, 5, 0);
    assert_eq!(compare(&events, &events, &no_anchors()), vec![]);

    // In any order, and with anchors that pinned it along the way.
    let first = Anchor::seal(None, t(2), vec![head(&events[1])]);
    let second = Anchor::seal(Some(&first), t(10), vec![head(&events[4])]);
    let mut shuffled = events.clone();
    shuffled.reverse();
    assert_eq!(
        compare(&shuffled, &events, &index(&[&first, &second])),
        vec![]
    );
}

#[test]
fn an_event_rewritten_in_the_table_is_altered() {
    let archive = chain(R, 5, 0);
    let mut table = archive.clone();
    table[4].reason = Some("nothing to see".into());
    reseal(&mut table);
    assert_eq!(compare(&table, &archive, &no_anchors()), vec![altered(5)]);

    // Rewriting an event in the middle re-links every event after it: each differs.
    let mut table = archive.clone();
    table[2].reason = Some("nothing to see".into());
    reseal(&mut table);
    assert_eq!(
        compare(&table, &archive, &no_anchors()),
        vec![altered(3), altered(4), altered(5)]
    );
}

#[test]
fn an_event_changed_under_its_hash_is_altered_and_breaks_the_table_chain() {
    let archive = chain(R, 5, 0);
    let mut table = archive.clone();
    table[2].reason = Some("nothing to see".into());
    assert_eq!(
        compare(&table, &archive, &no_anchors()),
        vec![
            table_chain("event 3 was altered (its content no longer matches its hash)"),
            altered(3),
        ]
    );
}

#[test]
fn an_event_missing_from_the_table_is_deleted() {
    let archive = chain(R, 5, 0);
    assert_eq!(
        compare(&archive[..4], &archive, &no_anchors()),
        vec![deleted(5)]
    );

    let mut table = archive.clone();
    table.remove(2);
    assert_eq!(
        compare(&table, &archive, &no_anchors()),
        vec![
            table_chain("expected event 3, found 4 (an event was deleted or reordered)"),
            deleted(3),
        ]
    );
}

#[test]
fn an_event_only_in_the_table_is_inserted_once_settled() {
    let table = chain(R, 6, 0);
    let archive = &table[..5];
    assert_eq!(compare(&table, archive, &no_anchors()), vec![inserted(6)]);

    // Still on its way to the archive: not a difference, until SETTLE has passed.
    let at = table[5].at;
    let settling = at + SETTLE - chrono::TimeDelta::seconds(1);
    assert_eq!(
        compare_request(R, &table, archive, &no_anchors(), settling),
        vec![]
    );
    assert_eq!(
        compare_request(R, &table, archive, &no_anchors(), at + SETTLE),
        vec![inserted(6)]
    );

    // A settling event is no excuse for an alteration: the archive has its seq.
    let mut rewritten = table.clone();
    rewritten[4].reason = Some("nothing to see".into());
    reseal(&mut rewritten);
    assert_eq!(
        compare_request(R, &rewritten, archive, &no_anchors(), settling),
        vec![altered(5)]
    );
}

#[test]
fn swapped_events_are_reordered_not_altered() {
    let archive = chain(R, 4, 0);
    let mut table = archive.clone();
    table[1].seq = 3;
    table[2].seq = 2;
    let found = compare(&table, &archive, &no_anchors());
    assert_eq!(
        found,
        vec![
            table_chain("event 2 was altered (its content no longer matches its hash)"),
            reordered(2, 3),
            reordered(3, 2),
        ]
    );

    // Deleted, and the next one renumbered in its place: one moved, one deleted.
    let mut table = vec![archive[0].clone(), archive[2].clone()];
    table[1].seq = 2;
    let found = compare(&table, &archive[..3], &no_anchors());
    assert!(found.contains(&reordered(2, 3)), "{found:?}");
    assert!(found.contains(&deleted(2)), "{found:?}");
    assert!(!found.contains(&altered(2)), "{found:?}");
    assert!(!found.contains(&deleted(3)), "{found:?}");
}

#[test]
fn a_request_only_in_the_archive_is_missing_from_the_table() {
    let archive = chain(R, 3, 0);
    assert_eq!(
        compare(&[], &archive, &no_anchors()),
        vec![Difference::MissingFromTable {
            request_id: R.into()
        }]
    );
    assert_eq!(compare(&archive, &archive, &no_anchors()), vec![]);
}

#[test]
fn an_archived_object_elevate_did_not_write_breaks_the_archive_chain() {
    let table = chain(R, 4, 0);
    let mut archive = table.clone();
    archive[1].reason = Some("written by hand".into());
    assert_eq!(
        compare(&table, &archive, &no_anchors()),
        vec![Difference::ArchiveChain {
            request_id: R.into(),
            error: "event 2 was altered (its content no longer matches its hash)".into(),
        }]
    );
}

#[test]
fn a_pinned_head_missing_everywhere_is_unanchored() {
    let events = chain(R, 5, 0);
    let anchor = Anchor::seal(None, t(10), vec![head(&events[4])]);
    let anchors = index(&[&anchor]);
    // Neither kept event 5 (never archived, then deleted from the table).
    assert_eq!(
        compare(&events[..4], &events[..4], &anchors),
        vec![Difference::Unanchored {
            request_id: R.into(),
            seq: 5,
            anchor: anchor_key(t(10)),
            in_archive: false,
        }]
    );
    // Deleted from the table only: named once, as deleted.
    assert_eq!(compare(&events[..4], &events, &anchors), vec![deleted(5)]);
    assert_eq!(compare(&events, &events, &anchors), vec![]);
}

#[test]
fn a_pinned_head_the_archive_lacks_is_unanchored_in_the_archive() {
    let events = chain(R, 5, 0);
    let anchor = Anchor::seal(None, t(5), vec![head(&events[4])]);
    let anchors = index(&[&anchor]);
    // Event 5 is still settling, so its absence from the archive is only the anchor's word.
    let now = events[4].at + chrono::TimeDelta::minutes(1);
    assert_eq!(
        compare_request(R, &events, &events[..4], &anchors, now),
        vec![Difference::Unanchored {
            request_id: R.into(),
            seq: 5,
            anchor: anchor_key(t(5)),
            in_archive: true,
        }]
    );
    assert_eq!(compare_request(R, &events, &events, &anchors, now), vec![]);
}

#[test]
fn an_event_back_dated_into_an_anchored_window_is_inserted() {
    // Anchored with 5 events; then a sixth dated inside the window reached both the table and
    // the archive (the stream archives what is inserted).
    let events = chain(R, 6, 0);
    let anchor = Anchor::seal(None, t(10), vec![head(&events[4])]);
    let anchors = index(&[&anchor]);
    assert_eq!(compare(&events, &events, &anchors), vec![inserted(6)]);

    // Dated after the window: nothing says it is not genuine.
    let mut later = events.clone();
    later[5].at = t(10);
    reseal(&mut later);
    assert_eq!(compare(&later, &later, &anchors), vec![]);

    // Pinned by the next anchor, whose window covers it: genuine.
    let next = Anchor::seal(Some(&anchor), t(20), vec![head(&later[5])]);
    assert_eq!(compare(&later, &later, &index(&[&anchor, &next])), vec![]);

    // An anchor added beside the real one, that pins the insertion, does not hide it.
    let forged = Anchor::seal(None, t(9), vec![head(&events[5])]);
    let (anchors, _) = AnchorIndex::build(keyed(&[&anchor, &forged]));
    assert_eq!(compare(&events, &events, &anchors), vec![inserted(6)]);

    // A request the covering anchor does not pin at all was not there at the time.
    let other = chain(R2, 2, 3);
    assert_eq!(
        compare_request(R2, &other, &other, &index(&[&anchor]), late()),
        vec![
            Difference::Inserted {
                request_id: R2.into(),
                seq: 1
            },
            Difference::Inserted {
                request_id: R2.into(),
                seq: 2
            },
        ]
    );
}

#[test]
fn requests_only_the_anchors_know_are_unanchored() {
    let r = chain(R, 2, 0);
    let r2 = chain(R2, 3, 0);
    let first = Anchor::seal(None, t(1), vec![head(&r[0]), head(&r2[0])]);
    let second = Anchor::seal(Some(&first), t(10), vec![head(&r[1]), head(&r2[2])]);
    let anchors = index(&[&first, &second]);
    let seen: HashSet<String> = [R.to_owned()].into();
    assert_eq!(
        unanchored_requests(&anchors, &seen),
        vec![Difference::Unanchored {
            request_id: R2.into(),
            seq: 1,
            anchor: anchor_key(t(1)),
            in_archive: false,
        }]
    );
    let seen: HashSet<String> = [R.to_owned(), R2.to_owned()].into();
    assert_eq!(unanchored_requests(&anchors, &seen), vec![]);
    assert_eq!(
        compare_request(R2, &[], &[], &anchors, late()),
        unanchored_requests(&anchors, &[R.to_owned()].into())
    );
}

#[test]
fn each_difference_reads_as_one_line_naming_request_and_event() {
    let lines = [
        (
            altered(3),
            format!("request {R}: event 3 was altered in the table (it differs from the archived event)"),
        ),
        (
            deleted(2),
            format!("request {R}: event 2 is in the archive but was deleted from the table"),
        ),
        (
            inserted(4),
            format!("request {R}: event 4 is in the table but not in the archive, or not in the anchor that covers its time (inserted, or never archived)"),
        ),
        (
            reordered(2, 3),
            format!("request {R}: event 2 in the table is the archived event 3 (the events were reordered)"),
        ),
        (
            Difference::MissingFromTable {
                request_id: R.into(),
            },
            format!("request {R}: the archive has this request but the table has none of its events (deleted from the table)"),
        ),
        (
            table_chain("event 3 was altered (its content no longer matches its hash)"),
            format!("request {R}: the table's chain does not verify on its own: event 3 was altered (its content no longer matches its hash)"),
        ),
        (
            Difference::ArchiveChain {
                request_id: R.into(),
                error: "event 2 does not link to the event before it".into(),
            },
            format!("request {R}: the archive's chain does not verify on its own: event 2 does not link to the event before it (an archived object that elevate did not write)"),
        ),
        (
            Difference::Unanchored {
                request_id: R.into(),
                seq: 5,
                anchor: "anchors/8232770799-20260101T010000Z.json".into(),
                in_archive: false,
            },
            format!("request {R}: event 5, pinned by anchor anchors/8232770799-20260101T010000Z.json, is not in the table as anchored (deleted or altered after the anchor)"),
        ),
        (
            Difference::Unanchored {
                request_id: R.into(),
                seq: 5,
                anchor: "anchors/8232770799-20260101T010000Z.json".into(),
                in_archive: true,
            },
            format!("request {R}: event 5, pinned by anchor anchors/8232770799-20260101T010000Z.json, is not in the archive as anchored (never archived)"),
        ),
        (
            Difference::AnchorChain {
                anchor: "anchors/8232770799-20260101T010000Z.json".into(),
                why: "it was altered: its content no longer matches its hash".into(),
            },
            "anchor anchors/8232770799-20260101T010000Z.json: it was altered: its content no longer matches its hash".to_owned(),
        ),
        (
            Difference::Changed {
                request_id: R.into(),
                seq: 2,
                change: ChangeKind::Remove,
                at: t(61),
            },
            format!("request {R}: event 2 was removed from the table at 2026-01-01T01:01:00Z (recorded by the table's stream)"),
        ),
        (
            Difference::Changed {
                request_id: R.into(),
                seq: 2,
                change: ChangeKind::Modify,
                at: t(61),
            },
            format!("request {R}: event 2 was modified in the table at 2026-01-01T01:01:00Z (recorded by the table's stream)"),
        ),
    ];
    for (difference, line) in lines {
        assert_eq!(difference.to_string(), line);
    }
}

#[test]
fn event_keys_read_back() {
    assert_eq!(event_key(R, 7), format!("events/{R}/0000000007.json"));
    assert_eq!(parse_event_key(&event_key(R, 7)), Some((R.to_owned(), 7)));
    assert_eq!(parse_event_key(&format!("events/{R}/7.json")), None);
    assert_eq!(parse_event_key(&anchor_key(t(0))), None);
    assert_eq!(
        anchor_key(t(60)),
        "anchors/8232770799-20260101T010000Z.json"
    );
    // Newer sorts first.
    assert!(anchor_key(t(61)) < anchor_key(t(60)));
}

// ---- anchors ----

fn fixed_anchor() -> Anchor {
    Anchor {
        since: Some(t(0)),
        until: t(60),
        previous: "ab".repeat(32),
        heads: vec![
            AnchoredHead {
                request_id: R.into(),
                seq: 3,
                hash: "cd".repeat(32),
            },
            AnchoredHead {
                request_id: R2.into(),
                seq: 1,
                hash: "ef".repeat(32),
            },
        ],
        hash: String::new(),
    }
}

#[test]
fn the_anchor_hash_is_its_documented_encoding() {
    // Pinned: docs/contracts.md ("Audit archive") gives the same from Python.
    assert_eq!(
        fixed_anchor().computed_hash(),
        "b3f69cb4eaa95ba3b5a1b3d81800161d5d16762ef1572bc7ac0a4e353e126389"
    );
    let first = Anchor {
        since: None,
        previous: GENESIS.into(),
        ..fixed_anchor()
    };
    assert_eq!(
        first.computed_hash(),
        "e8ab91ffe5d8c94f7a8a5123e8909a8c628fc08e7dbc8b2be67b17d978d87191"
    );
}

/// A named change to an anchor.
type Change = (&'static str, fn(&mut Anchor));

#[test]
fn the_anchor_hash_changes_with_every_field() {
    let base = fixed_anchor().computed_hash();
    let changes: Vec<Change> = vec![
        ("since", |a: &mut Anchor| a.since = Some(t(1))),
        ("since none", |a: &mut Anchor| a.since = None),
        ("until", |a: &mut Anchor| {
            a.until += chrono::TimeDelta::nanoseconds(1)
        }),
        ("previous", |a: &mut Anchor| a.previous = GENESIS.into()),
        ("head request", |a: &mut Anchor| {
            a.heads[0].request_id = R3.into()
        }),
        ("head seq", |a: &mut Anchor| a.heads[0].seq = 4),
        ("head hash", |a: &mut Anchor| {
            a.heads[1].hash = "ee".repeat(32)
        }),
        ("head removed", |a: &mut Anchor| {
            a.heads.pop();
        }),
        ("heads reordered", |a: &mut Anchor| a.heads.reverse()),
    ];
    for (what, change) in changes {
        let mut anchor = fixed_anchor();
        change(&mut anchor);
        assert_ne!(anchor.computed_hash(), base, "{what}");
    }
    // The stored hash itself is not hashed.
    let mut anchor = fixed_anchor();
    anchor.hash = "00".repeat(32);
    assert_eq!(anchor.computed_hash(), base);
}

#[test]
fn seal_links_sorts_and_hashes() {
    let mut heads = fixed_anchor().heads;
    heads.reverse();
    let first = Anchor::seal(None, t(60), heads);
    assert_eq!(first.since, None);
    assert_eq!(first.previous, GENESIS);
    assert_eq!(first.heads, fixed_anchor().heads);
    assert_eq!(first.hash, first.computed_hash());
    let next = Anchor::seal(Some(&first), t(120), vec![]);
    assert_eq!(next.since, Some(t(60)));
    assert_eq!(next.previous, first.hash);

    // The JSON object: every field, `since` null on the first.
    let json = serde_json::to_value(&first).expect("json");
    assert_eq!(json["since"], serde_json::Value::Null);
    assert_eq!(json["until"], "2026-01-01T01:00:00Z");
    assert_eq!(json["heads"][0]["seq"], 3);
    let back: Anchor = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, first);
}

/// Three anchors that chain, each pinning R's head at its `until`.
fn three() -> (Anchor, Anchor, Anchor) {
    let events = chain(R, 6, 0);
    let a1 = Anchor::seal(None, t(2), vec![head(&events[1])]);
    let a2 = Anchor::seal(Some(&a1), t(4), vec![head(&events[3])]);
    let a3 = Anchor::seal(Some(&a2), t(10), vec![head(&events[5])]);
    (a1, a2, a3)
}

fn why(differences: &[Difference]) -> Vec<(String, String)> {
    differences
        .iter()
        .map(|d| match d {
            Difference::AnchorChain { anchor, why } => (anchor.clone(), why.clone()),
            other => panic!("not an anchor difference: {other:?}"),
        })
        .collect()
}

#[test]
fn anchors_that_chain_build_clean_in_any_order() {
    let (a1, a2, a3) = three();
    let (index, broken) = AnchorIndex::build(keyed(&[&a3, &a1, &a2]));
    assert_eq!(broken, vec![]);
    assert_eq!(index.len(), 3);
    assert_eq!(index.latest(), Some(t(10)));
    assert_eq!(index.requests().collect::<Vec<_>>(), vec![R]);
    let (empty, broken) = AnchorIndex::build(vec![]);
    assert!(empty.is_empty() && broken.is_empty());
    assert_eq!(empty.latest(), None);
}

#[test]
fn an_altered_anchor_is_named() {
    let (a1, mut a2, a3) = three();
    a2.heads[0].seq = 3;
    let (_, broken) = AnchorIndex::build(keyed(&[&a1, &a2, &a3]));
    assert_eq!(
        why(&broken),
        vec![(
            anchor_key(t(4)),
            "it was altered: its content no longer matches its hash".to_owned()
        )]
    );

    // Re-sealed after the change: its own hash matches, the next anchor no longer links to it.
    a2.hash = a2.computed_hash();
    let (_, broken) = AnchorIndex::build(keyed(&[&a1, &a2, &a3]));
    let found = why(&broken);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, anchor_key(t(10)));
    assert!(
        found[0].1.contains("does not link to the anchor before it"),
        "{found:?}"
    );
}

#[test]
fn a_broken_link_is_named() {
    let (a1, a2, mut a3) = three();
    a3.previous = "ab".repeat(32);
    a3.hash = a3.computed_hash();
    let (_, broken) = AnchorIndex::build(keyed(&[&a1, &a2, &a3]));
    assert_eq!(
        why(&broken),
        vec![(
            anchor_key(t(10)),
            format!(
                "it does not link to the anchor before it ({}): its previous {} is the hash of no anchor read (that anchor was altered, or one is missing)",
                anchor_key(t(4)),
                "ab".repeat(32)
            )
        )]
    );
}

#[test]
fn a_gap_between_windows_is_named_and_the_anchors_after_it_still_count() {
    let (a1, _, a3) = three();
    let (index, broken) = AnchorIndex::build(keyed(&[&a1, &a3]));
    assert_eq!(
        why(&broken),
        vec![(
            anchor_key(t(10)),
            format!(
                "a gap before it: it starts at 2026-01-01T00:04:00Z, but the anchor before it ({}) ends at 2026-01-01T00:02:00Z (an anchor is missing)",
                anchor_key(t(2))
            )
        )]
    );
    // a3 still pins event 6, which the table lost.
    let events = chain(R, 6, 0);
    assert_eq!(
        compare(&events[..5], &events[..5], &index),
        vec![Difference::Unanchored {
            request_id: R.into(),
            seq: 6,
            anchor: anchor_key(t(10)),
            in_archive: false,
        }]
    );

    // The first ones missing.
    let (_, a2, a3) = three();
    let (_, broken) = AnchorIndex::build(keyed(&[&a2, &a3]));
    assert_eq!(
        why(&broken),
        vec![(
            anchor_key(t(4)),
            "it is the first anchor but starts at 2026-01-01T00:02:00Z: the anchors before it are missing".to_owned()
        )]
    );
}

#[test]
fn an_anchor_under_another_key_is_named() {
    let (a1, a2, _) = three();
    let mut anchors = keyed(&[&a1, &a2]);
    anchors[1].0 = anchor_key(t(5));
    let (_, broken) = AnchorIndex::build(anchors);
    assert_eq!(
        why(&broken),
        vec![(
            anchor_key(t(5)),
            format!(
                "it is stored under a key that does not match its until (expected {})",
                anchor_key(t(4))
            )
        )]
    );
    // The archive's prefix in front of the key is fine.
    let prefixed = vec![(format!("audit/{}", anchor_key(t(2))), a1)];
    assert_eq!(AnchorIndex::build(prefixed).1, vec![]);
}

#[test]
fn anchors_written_at_the_same_time_are_valid_siblings() {
    let events = chain(R, 6, 0);
    let a1 = Anchor::seal(None, t(2), vec![head(&events[1])]);
    // Both read a1 as the newest; the second finished later, with a later until.
    let early = Anchor::seal(Some(&a1), t(4), vec![head(&events[3])]);
    let late_sibling = Anchor::seal(Some(&a1), t(5), vec![head(&events[4])]);
    let next = Anchor::seal(Some(&late_sibling), t(10), vec![head(&events[5])]);
    let (index, broken) = AnchorIndex::build(keyed(&[&a1, &early, &late_sibling, &next]));
    assert_eq!(broken, vec![]);
    assert_eq!(compare(&events, &events, &index), vec![]);

    // Two first anchors, too.
    let other_first = Anchor::seal(None, t(3), vec![head(&events[2])]);
    let (_, broken) = AnchorIndex::build(keyed(&[&a1, &other_first]));
    assert_eq!(broken, vec![]);
}

// ---- write_anchor ----

fn stored(store: &MemoryStore, events: Vec<AuditEvent>) {
    let first = &events[0];
    let (request, _) = open(
        first.request_id.clone(),
        NewRequest {
            flow: "infra_access".into(),
            target: "admins".into(),
            requester: "alice".into(),
            reason: "incident 42".into(),
            duration: Duration::from_secs(3600),
            pending_timeout: Duration::from_secs(1800),
            approvals_required: 1,
            terms: sample_terms("alice"),
        },
        &iam_arn(&sample_terms("alice").person),
        first.at,
    );
    store.insert_unchecked(request, events);
}

#[tokio::test]
async fn the_first_anchor_pins_every_head_before_now_less_settle() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    stored(&store, chain(R, 5, 0));
    stored(&store, chain(R2, 2, 1));
    // After the anchor's until: not in it.
    stored(&store, chain(R3, 1, 56));

    let now = t(60) + chrono::TimeDelta::milliseconds(700);
    let anchor = write_anchor(&store, &archive, now)
        .await
        .expect("write")
        .expect("an anchor");
    assert_eq!(anchor.since, None);
    assert_eq!(anchor.until, t(55));
    assert_eq!(anchor.previous, GENESIS);
    let r = chain(R, 5, 0);
    let r2 = chain(R2, 2, 1);
    assert_eq!(anchor.heads, vec![head(&r[4]), head(&r2[1])]);
    assert_eq!(anchor.hash, anchor.computed_hash());

    assert_eq!(archive.anchors(), vec![(anchor_key(t(55)), anchor.clone())]);
    assert_eq!(archive.latest_anchor().await.expect("latest"), Some(anchor));
}

#[tokio::test]
async fn the_next_anchor_pins_what_moved_since_and_chains() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    let r = chain(R, 6, 0);
    stored(&store, r[..5].to_vec());
    stored(&store, chain(R2, 2, 1));
    let first = write_anchor(&store, &archive, t(60))
        .await
        .expect("first")
        .expect("an anchor");

    let mut moved = r.clone();
    moved[5].at = t(70);
    reseal(&mut moved);
    stored(&store, moved.clone());
    let r3 = chain(R3, 1, 56);
    stored(&store, r3.clone());

    let second = write_anchor(&store, &archive, t(120))
        .await
        .expect("second")
        .expect("an anchor");
    assert_eq!(second.since, Some(t(55)));
    assert_eq!(second.until, t(115));
    assert_eq!(second.previous, first.hash);
    assert_eq!(second.heads, vec![head(&moved[5]), head(&r3[0])]);

    let (_, broken) = AnchorIndex::build(archive.anchors());
    assert_eq!(broken, vec![]);
    assert_eq!(archive.anchors()[0].1, second);
}

#[tokio::test]
async fn an_anchor_is_written_only_when_time_moved_and_chains_when_nothing_did() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    stored(&store, chain(R, 2, 0));
    let first = write_anchor(&store, &archive, t(60))
        .await
        .expect("first")
        .expect("an anchor");

    // The same second again (a second firing of the schedule): nothing to do.
    let again = t(60) + chrono::TimeDelta::milliseconds(900);
    assert_eq!(
        write_anchor(&store, &archive, again).await.expect("again"),
        None
    );
    assert_eq!(
        write_anchor(&store, &archive, t(59)).await.expect("older"),
        None
    );
    assert_eq!(archive.anchors().len(), 1);

    // Later, nothing moved: an empty anchor that keeps the windows contiguous.
    let empty = write_anchor(&store, &archive, t(120))
        .await
        .expect("empty")
        .expect("an anchor");
    assert_eq!(empty.heads, vec![]);
    assert_eq!(empty.since, Some(first.until));
    assert_eq!(empty.previous, first.hash);
    assert_eq!(archive.anchors().len(), 2);
    assert_eq!(AnchorIndex::build(archive.anchors()).1, vec![]);
}

/// An archive where another run's anchor lands under the same key between this run's read of
/// the newest anchor and its write.
struct Racing {
    inner: FakeArchive,
    other: Anchor,
}

#[async_trait]
impl Archive for Racing {
    async fn put_event(&self, event: &AuditEvent) -> Result<Archived, ArchiveError> {
        self.inner.put_event(event).await
    }
    async fn put_change(&self, change: &TableChange) -> Result<(), ArchiveError> {
        self.inner.put_change(change).await
    }
    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError> {
        self.inner.latest_anchor().await
    }
    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError> {
        self.inner.put_anchor(&self.other).await?;
        self.inner.put_anchor(anchor).await
    }
}

#[tokio::test]
async fn an_anchor_of_the_same_time_written_first_by_another_run_stays() {
    let store = MemoryStore::new();
    let r = chain(R, 2, 0);
    stored(&store, r.clone());
    // The other run read the table before the second event was written.
    let other = Anchor::seal(None, t(55), vec![head(&r[0])]);
    let archive = Racing {
        inner: FakeArchive::new(),
        other: other.clone(),
    };

    let written = write_anchor(&store, &archive, t(60))
        .await
        .expect("no error");
    assert_eq!(written, None, "this run's anchor was not written");
    assert_eq!(
        archive.inner.anchors(),
        vec![(anchor_key(t(55)), other.clone())]
    );

    // The port itself: the same anchor again is no error, another one is named.
    archive
        .inner
        .put_anchor(&other)
        .await
        .expect("the same anchor again");
    let mine = Anchor::seal(None, t(55), vec![head(&r[1])]);
    assert!(matches!(
        archive.inner.put_anchor(&mine).await,
        Err(ArchiveError::AnchorTaken { key, archived, offered })
            if key == anchor_key(t(55)) && archived == other.hash && offered == mine.hash
    ));
}

#[tokio::test]
async fn write_anchor_reads_every_page() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    let mut expected = Vec::new();
    for n in 0..130u128 {
        let request =
            uuid::Uuid::from_u128(0x0190_a1b2_c3d4_7e5f_8a9b_0000_0000_0000 + n).to_string();
        let events = chain(&request, 5, (n % 40) as i64);
        expected.push(head(&events[4]));
        stored(&store, events);
    }
    expected.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    let anchor = write_anchor(&store, &archive, t(120))
        .await
        .expect("write")
        .expect("an anchor");
    assert_eq!(anchor.heads, expected);
}

#[tokio::test]
async fn an_insertion_after_the_anchor_dated_inside_it_is_found() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    let events = chain(R, 5, 0);
    stored(&store, events.clone());
    for event in &events {
        archive.put_event(event).await.expect("archive");
    }
    write_anchor(&store, &archive, t(60)).await.expect("anchor");
    let (anchors, broken) = AnchorIndex::build(archive.anchors());
    assert_eq!(broken, vec![]);
    let table = store.audit_events(&id(R)).await.expect("table");
    assert_eq!(
        compare_request(R, &table, &archive.events(), &anchors, t(60)),
        vec![]
    );

    // Written afterwards, dated before the anchor's until, and archived like any insert.
    let forged = chain(R, 6, 0);
    stored(&store, forged.clone());
    archive.put_event(&forged[5]).await.expect("archive");
    let table = store.audit_events(&id(R)).await.expect("table");
    assert_eq!(
        compare_request(R, &table, &archive.events(), &anchors, t(61)),
        vec![inserted(6)]
    );
}

#[tokio::test]
async fn anchors_written_concurrently_still_verify() {
    let store = MemoryStore::new();
    stored(&store, chain(R, 5, 0));
    let archive = FakeArchive::new();
    write_anchor(&store, &archive, t(60)).await.expect("first");
    // A second run that read the same newest anchor (its own view of the archive).
    let first = archive.anchors();
    let racing = || {
        let view = FakeArchive::new();
        for (key, anchor) in &first {
            view.insert_raw(key.clone(), serde_json::to_vec(anchor).expect("json"));
        }
        view
    };
    stored(&store, chain(R2, 1, 80));

    // In the same second: the same anchor, under the same key, written once.
    let now = t(120) + chrono::TimeDelta::milliseconds(100);
    let one = write_anchor(&store, &archive, now).await.expect("one");
    let other = write_anchor(
        &store,
        &racing(),
        now + chrono::TimeDelta::milliseconds(800),
    )
    .await
    .expect("other");
    assert_eq!(one, other);
    archive
        .put_anchor(&other.expect("an anchor"))
        .await
        .expect("put again");
    assert_eq!(archive.anchors().len(), 2);

    // A second later: a sibling with a stale previous, accepted; the next chains from it.
    let sibling = write_anchor(&store, &racing(), t(121))
        .await
        .expect("sibling")
        .expect("an anchor");
    assert_eq!(sibling.previous, first[0].1.hash);
    assert_eq!(sibling.since, Some(t(55)));
    archive.put_anchor(&sibling).await.expect("put sibling");
    let next = write_anchor(&store, &archive, t(180))
        .await
        .expect("next")
        .expect("an anchor");
    assert_eq!(next.previous, sibling.hash);
    assert_eq!(archive.anchors().len(), 4);
    let (anchors, broken) = AnchorIndex::build(archive.anchors());
    assert_eq!(broken, vec![]);
    let table = store.audit_events(&id(R)).await.expect("table");
    assert_eq!(compare_request(R, &table, &table, &anchors, t(180)), vec![]);
}

#[tokio::test]
async fn write_anchor_reports_what_failed_and_writes_nothing() {
    let store = MemoryStore::new();
    let archive = FakeArchive::new();
    stored(&store, chain(R, 2, 0));
    archive.fail_next(1);
    let err = write_anchor(&store, &archive, t(60))
        .await
        .expect_err("archive down");
    assert!(
        matches!(err, AnchorError::Archive(ArchiveError::Unavailable(_))),
        "{err:?}"
    );
    store.fail_next(1);
    let err = write_anchor(&store, &archive, t(60))
        .await
        .expect_err("table down");
    assert!(
        matches!(err, AnchorError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(archive.anchors(), vec![]);
    assert!(write_anchor(&store, &archive, t(60))
        .await
        .expect("retry")
        .is_some());
}

// ---- FakeArchive ----

#[tokio::test]
async fn the_fake_archive_writes_an_event_once() {
    let archive = FakeArchive::new();
    let events = chain(R, 2, 0);
    assert_eq!(
        archive.put_event(&events[0]).await.expect("put"),
        Archived::Written
    );
    assert_eq!(
        archive.put_event(&events[0]).await.expect("again"),
        Archived::AlreadyThere
    );
    let body = archive.get(&event_key(R, 1)).expect("stored under its key");
    let read: AuditEvent = serde_json::from_slice(&body).expect("JSON of the event");
    assert_eq!(read, events[0]);

    // Another event under the same identity: refused, the archived one stays.
    let mut other = events[0].clone();
    other.reason = Some("rewritten".into());
    other.hash = other.computed_hash();
    match archive.put_event(&other).await {
        Err(ArchiveError::Conflict {
            request_id,
            seq,
            archived,
            offered,
        }) => {
            assert_eq!((request_id.as_str(), seq), (R, 1));
            assert_eq!(archived, events[0].hash);
            assert_eq!(offered, other.hash);
        }
        found => panic!("expected a conflict, got {found:?}"),
    }
    assert_eq!(archive.events(), vec![events[0].clone()]);

    // What is there and not an event: corrupt.
    archive.insert_raw(event_key(R, 2), "not json");
    let err = archive.put_event(&events[1]).await.expect_err("corrupt");
    assert!(
        matches!(err, ArchiveError::Corrupt { ref key, .. } if *key == event_key(R, 2)),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_fake_archive_keeps_the_first_anchor_and_change_and_lists_newest_first() {
    let archive = FakeArchive::new();
    assert_eq!(archive.latest_anchor().await.expect("none"), None);
    let first = Anchor::seal(None, t(60), vec![]);
    let second = Anchor::seal(Some(&first), t(120), vec![]);
    archive.put_anchor(&first).await.expect("first");
    archive.put_anchor(&second).await.expect("second");
    let mut changed = second.clone();
    changed.heads.push(head(&chain(R, 1, 0)[0]));
    archive.put_anchor(&changed).await.expect("same key again");
    assert_eq!(
        archive.anchors(),
        vec![
            (anchor_key(t(120)), second.clone()),
            (anchor_key(t(60)), first)
        ]
    );
    assert_eq!(archive.latest_anchor().await.expect("latest"), Some(second));

    let change = TableChange {
        request_id: R.into(),
        seq: 1,
        change: ChangeKind::Remove,
        at: t(61),
        stream_event_id: "e1".into(),
        before: None,
        after: None,
    };
    archive.put_change(&change).await.expect("change");
    let again = TableChange {
        at: t(62),
        ..change.clone()
    };
    archive.put_change(&again).await.expect("again");
    assert_eq!(archive.changes(), vec![change]);
    assert!(archive.get(&change_key(R, 1, "e1")).is_some());
}

#[tokio::test]
async fn the_fake_archive_fails_when_told() {
    let archive = FakeArchive::new();
    let event = &chain(R, 1, 0)[0];
    archive.fail_next(2);
    assert!(matches!(
        archive.put_event(event).await,
        Err(ArchiveError::Unavailable(_))
    ));
    assert!(matches!(
        archive.latest_anchor().await,
        Err(ArchiveError::Unavailable(_))
    ));
    assert_eq!(archive.events(), vec![]);
    assert_eq!(
        archive.put_event(event).await.expect("put"),
        Archived::Written
    );
}
