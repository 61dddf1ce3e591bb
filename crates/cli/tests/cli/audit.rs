//! `audit export` and `audit verify` on chains built with the core's state machine, and
//! `audit verify --archive` against an archive bucket in moto.

use std::path::Path;

use elevate_core::archive::{anchor_key, Anchor, ChangeKind, TableChange};
use elevate_core::{Actor, AuditEvent, Command as Cmd};
use serde_json::Value;

use crate::support::*;

/// Two requests: one approved and active (3 events), one denied (2 events).
fn two_trails() -> Vec<(elevate_core::Request, Vec<elevate_core::AuditEvent>)> {
    let first = now() - chrono::Duration::minutes(10);
    vec![
        active(pending_at(first)),
        denied(pending_at(first + chrono::Duration::minutes(1))),
    ]
}

fn run_export(elevate: &Elevate, path: &Path) -> Run {
    elevate.run(&["audit", "export", "--output", path.to_str().expect("path")])
}

fn export_to(api: &TestApi, elevate: &Elevate, path: &Path) {
    let run = run_export(elevate, path);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("exported 5 events of 2 requests"),
        "{}",
        run.stderr
    );
    assert_eq!(api.seen().last().expect("seen").path, "/audit");
}

fn verify_file(elevate: &Elevate, path: &Path) -> Run {
    elevate.run(&["audit", "verify", "--file", path.to_str().expect("path")])
}

#[test]
fn an_exported_chain_verifies_from_the_file() {
    let answer = audit_answer(&two_trails());
    let api = TestApi::start(move |_| (200, answer.clone()));
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    export_to(&api, &elevate, &path);
    assert_signed(&api.seen()[0]);

    let lines: Vec<String> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1 + 5 + 2, "export info, events, heads");

    let run = verify_file(&elevate, &path);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.matches("OK").count(), 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("2 requests: 2 OK, 0 tampered"),
        "{}",
        run.stderr
    );
    assert_eq!(api.seen().len(), 1, "verifying a file is offline");
}

#[test]
fn an_altered_event_is_caught() {
    let answer = audit_answer(&two_trails());
    let api = TestApi::start(move |_| (200, answer.clone()));
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    export_to(&api, &elevate, &path);

    let text = std::fs::read_to_string(&path).expect("read");
    let tampered = text.replacen("\"go ahead\"", "\"approved by the CEO\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&path, tampered).expect("write");

    let run = verify_file(&elevate, &path);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(run.stdout.contains("TAMPERED"), "{}", run.stdout);
    assert!(run.stdout.contains("event 2 was altered"), "{}", run.stdout);
    assert!(run.stderr.contains("1 OK, 1 tampered"), "{}", run.stderr);
}

#[test]
fn a_deleted_last_event_is_caught_by_the_head() {
    let trails = two_trails();
    let active_id = trails[0].0.id.to_string();
    let answer = audit_answer(&trails);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    export_to(&api, &elevate, &path);

    // Drop the activation: the rest of that chain is still internally consistent.
    let text = std::fs::read_to_string(&path).expect("read");
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let value: Value = serde_json::from_str(line).expect("json");
            !(value["request_id"] == active_id.as_str() && value["seq"] == 3)
        })
        .collect();
    std::fs::write(&path, kept.join("\n")).expect("write");

    let run = verify_file(&elevate, &path);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        run.stdout
            .contains("the chain ends at event 2 but the request records 3 events"),
        "{}",
        run.stdout
    );
}

#[test]
fn verify_without_a_file_checks_the_trail_fetched_now() {
    let mut trails = two_trails();
    trails[1].1[1].reason = Some("edited in the table".into());
    let answer = audit_answer(&trails);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let run = Elevate::new().api(&api).run(&["audit", "verify", "--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    let report = run.json();
    assert_eq!(report["ok"], false);
    let statuses: Vec<&str> = report["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["ok", "tampered"]);
    assert_eq!(api.seen()[0].path, "/audit");
    assert_signed(&api.seen()[0]);
}

#[test]
fn export_since_and_csv() {
    let answer = audit_answer(&two_trails());
    let api = TestApi::start(move |_| (200, answer.clone()));
    let run = Elevate::new().api(&api).run(&[
        "audit",
        "export",
        "--since",
        "2026-11-01T00:00:00Z",
        "--format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("request_id,seq,at,actor,action,from,to,reason,prev_hash,hash")
    );
    assert_eq!(lines.count(), 5);
    assert!(run
        .stdout
        .contains(",bob,approve,PENDING,APPROVED,go ahead,"));
    assert_eq!(
        api.seen()[0].query.as_deref(),
        Some("since=2026-11-01T00%3A00%3A00Z")
    );
    assert_signed(&api.seen()[0]);
}

#[test]
fn verify_refuses_a_csv_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.csv");
    std::fs::write(&path, "request_id,seq\n").expect("write");
    let run = verify_file(&Elevate::new(), &path);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--format jsonl"), "{}", run.stderr);
}

/// The API's answer split in two pages: the first request's trail, then the second's.
fn two_pages() -> (Value, Value) {
    let trails = two_trails();
    let mut first = audit_answer(&trails[..1]);
    first["next"] = Value::from("cursor-of-page-2");
    (first, audit_answer(&trails[1..]))
}

#[test]
fn export_follows_the_pages_with_the_same_window_and_writes_them_all() {
    let (first, second) = two_pages();
    let api = TestApi::start(move |seen| {
        let query = seen.query.clone().unwrap_or_default();
        if query.contains("cursor=cursor-of-page-2") {
            (200, second.clone())
        } else {
            (200, first.clone())
        }
    });
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    let run = elevate.run(&[
        "audit",
        "export",
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-12-01T00:00:00Z",
        "--output",
        path.to_str().expect("path"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("exported 5 events of 2 requests"),
        "{}",
        run.stderr
    );
    let seen = api.seen();
    assert_eq!(seen.len(), 2, "two pages");
    for page in &seen {
        let query = page.query.clone().unwrap_or_default();
        assert!(
            query.contains("since=2026-11-01T00%3A00%3A00Z")
                || query.contains("since=2026-11-01T00:00:00Z"),
            "{query}"
        );
        assert!(query.contains("until="), "{query}");
    }
    assert!(!seen[0].query.clone().unwrap_or_default().contains("cursor"));
    let run = verify_file(&elevate, &path);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("2 requests: 2 OK, 0 tampered"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_page_that_fails_once_is_asked_for_again_and_the_export_completes() {
    let (first, second) = two_pages();
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let api = TestApi::start(move |seen| {
        if !seen.query.clone().unwrap_or_default().contains("cursor=") {
            (200, first.clone())
        } else if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // API Gateway's answer when the function ran out of time.
            (504, api_error("timeout", "Endpoint request timed out"))
        } else {
            (200, second.clone())
        }
    });
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    export_to(&api, &elevate, &path);
    let seen = api.seen();
    assert_eq!(seen.len(), 3, "the second page asked for twice");
    assert_eq!(seen[1].query, seen[2].query, "the same cursor again");
    assert_eq!(verify_file(&elevate, &path).code, 0);
}

#[test]
fn an_export_that_fails_midway_leaves_no_file() {
    let (first, _) = two_pages();
    let api = TestApi::start(move |seen| {
        if seen.query.clone().unwrap_or_default().contains("cursor=") {
            (500, api_error("internal", "the store is unavailable"))
        } else {
            (200, first.clone())
        }
    });
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("audit.jsonl");
    let run = run_export(&elevate, &path);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(!path.exists(), "no export that looks complete");
    assert!(
        !path.with_extension("partial").exists(),
        "and no partial file left behind"
    );
}

#[test]
fn verify_pages_through_the_trail_fetched_now() {
    let (first, second) = two_pages();
    let api = TestApi::start(move |seen| {
        if seen.query.clone().unwrap_or_default().contains("cursor=") {
            (200, second.clone())
        } else {
            (200, first.clone())
        }
    });
    let run = Elevate::new().api(&api).run(&["audit", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(api.seen().len(), 2);
    assert!(
        run.stderr.contains("2 requests: 2 OK, 0 tampered"),
        "{}",
        run.stderr
    );
}

// `audit verify --archive`: the table served by the stand-in API, the archive in moto's S3.

/// One request of the table: its id, its events and its stored head (seq, hash).
type TableTrail = (String, Vec<AuditEvent>, (u64, String));

fn table_of(trails: &[(elevate_core::Request, Vec<AuditEvent>)]) -> Vec<TableTrail> {
    trails
        .iter()
        .map(|(request, events)| {
            (
                request.id.to_string(),
                events.clone(),
                (request.audit_seq, request.audit_head.clone()),
            )
        })
        .collect()
}

fn events_of(trails: &[(elevate_core::Request, Vec<AuditEvent>)]) -> Vec<AuditEvent> {
    trails
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect()
}

/// The anchors' `until` in these tests: after every event of [`two_trails`], long enough ago.
fn anchored_until() -> chrono::DateTime<chrono::Utc> {
    now() - chrono::Duration::minutes(6)
}

/// [`two_trails`] archived in full and pinned by one anchor: what a healthy stack holds.
async fn archived_trails(
    prefix: &str,
) -> (
    Vec<(elevate_core::Request, Vec<AuditEvent>)>,
    ArchiveBucket,
    Anchor,
) {
    let trails = two_trails();
    let archive = ArchiveBucket::create(prefix).await;
    let events = events_of(&trails);
    archive.put_events(&events).await;
    let anchor = anchor_of(None, anchored_until(), &events);
    archive.put_anchor(&anchor).await;
    (trails, archive, anchor)
}

/// `audit verify --archive <archive> <extra>` with the table served from `table`.
fn verify_with(archive: &ArchiveBucket, table: &[TableTrail], extra: &[&str]) -> (Run, TestApi) {
    let answer = audit_answer_with_heads(table);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let url = archive.url();
    let mut args = vec!["audit", "verify", "--archive", url.as_str()];
    args.extend_from_slice(extra);
    let run = Elevate::new().api(&api).s3(archive).run(&args);
    (run, api)
}

/// The differences of a `--json` run: (kind, request id, seq), in the order printed.
fn differences(run: &Run) -> Vec<(String, String, Option<u64>)> {
    run.json()["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().expect("kind").to_owned(),
                d["request_id"].as_str().unwrap_or_default().to_owned(),
                d["seq"].as_u64(),
            )
        })
        .collect()
}

fn found(run: &Run, kind: &str, request_id: &str, seq: Option<u64>) -> bool {
    differences(run)
        .iter()
        .any(|(k, r, s)| k == kind && r == request_id && (seq.is_none() || *s == seq))
}

/// `audit verify --archive` of `table`, as text and as `--json`. Both exit 9; the text has a
/// line naming `request_id` (that says `word`, when given) and the error line; the JSON is not
/// ok and names a difference `kind` of `request_id` (at `seq`, when given). The JSON run, for
/// further checks.
fn verify_names(
    archive: &ArchiveBucket,
    table: &[TableTrail],
    word: Option<&str>,
    kind: &str,
    request_id: &str,
    seq: Option<u64>,
) -> Run {
    let (run, _) = verify_with(archive, table, &[]);
    assert_eq!(run.code, 9, "{run:?}");
    let line = line_of(&run, request_id).to_lowercase();
    assert!(
        word.is_none_or(|word| line.contains(word)),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: the audit trail does not match the archive"),
        "{}",
        run.stderr
    );
    let (run, _) = verify_with(archive, table, &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    assert_eq!(run.json()["ok"], false);
    assert!(
        found(&run, kind, request_id, seq),
        "{kind}: {:?}",
        differences(&run)
    );
    run
}

/// The stdout line naming `request_id`, for the text output.
fn line_of<'a>(run: &'a Run, request_id: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|line| line.contains(request_id))
        .unwrap_or_else(|| panic!("no line names {request_id}: {}", run.stdout))
}

#[tokio::test]
async fn a_clean_archive_verifies_and_says_what_it_compared() {
    let (trails, archive, anchor) = archived_trails("prod/trail").await;
    let keys = archive.keys().await;
    assert_eq!(keys.len(), 5 + 1, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("prod/trail/")),
        "{keys:?}"
    );

    let (run, api) = verify_with(&archive, &table_of(&trails), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "no difference to print");
    assert!(
        run.stderr
            .contains("read 5 events of 2 requests from the table"),
        "{}",
        run.stderr
    );
    let summary = format!(
        "table: 2 requests, 5 events; archive: 5 events, 1 anchor (the latest until {}); 0 differences",
        anchor.until.format("%Y-%m-%d %H:%M UTC")
    );
    assert!(run.stderr.contains(&summary), "{}", run.stderr);
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/audit");
    assert_signed(&seen[0]);

    let (run, _) = verify_with(&archive, &table_of(&trails), &["--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["table_requests"], 2);
    assert_eq!(report["summary"]["table_events"], 5);
    assert_eq!(report["summary"]["archived_events"], 5);
    assert_eq!(report["summary"]["anchors"], 1);
    assert_eq!(report["differences"], serde_json::json!([]));
}

#[tokio::test]
async fn an_event_rewritten_in_the_table_is_named_though_the_table_verifies_alone() {
    let (trails, archive, _) = archived_trails("").await;
    let id = trails[0].0.id.to_string();
    let mut table = table_of(&trails);
    let (events, head) = rewrite(&table[0].1, 2, |e| {
        e.reason = Some("approved by the CEO".into());
    });
    table[0].1 = events;
    table[0].2 = head;

    // On its own the rewritten table verifies: only the archive shows it.
    let answer = audit_answer_with_heads(&table);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let alone = Elevate::new().api(&api).run(&["audit", "verify"]);
    assert_eq!(alone.code, 0, "{alone:?}");

    let run = verify_names(&archive, &table, Some("altered"), "altered", &id, Some(2));
    let other = trails[1].0.id.to_string();
    assert!(
        differences(&run).iter().all(|(_, r, _)| *r != other),
        "the untouched request has no difference: {:?}",
        differences(&run)
    );
    assert!(
        !differences(&run).iter().any(|(k, _, _)| k == "table_chain"),
        "{:?}",
        differences(&run)
    );
}

#[tokio::test]
async fn an_archived_object_written_again_is_named_and_its_first_version_compared() {
    let (trails, archive, _) = archived_trails("audit").await;
    let id = trails[0].0.id.to_string();
    let other = trails[1].0.id.to_string();
    // Someone who lifted the bucket's write-once policy forges the approval in the table and
    // puts the forged events over the archived ones, so that both sides agree; and hides the
    // other request's last event behind a delete marker.
    let mut table = table_of(&trails);
    let (forged, head) = rewrite(&table[0].1, 2, |e| {
        e.reason = Some("approved by the CEO".into());
    });
    table[0].1 = forged.clone();
    table[0].2 = head;
    for event in forged.iter().filter(|e| e.seq >= 2) {
        let key = elevate_core::archive::event_key(&id, event.seq);
        archive
            .put(&key, &serde_json::to_value(event).expect("event JSON"))
            .await;
    }
    let hidden = elevate_core::archive::event_key(&other, 2);
    archive.hide(&hidden).await;

    let (run, _) = verify_with(&archive, &table, &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    let report = run.json();
    let rewritten: Vec<(String, u64, u64)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter(|d| d["kind"] == "rewritten")
        .map(|d| {
            (
                d["key"].as_str().expect("key").to_owned(),
                d["versions"].as_u64().expect("versions"),
                d["delete_markers"].as_u64().expect("delete markers"),
            )
        })
        .collect();
    let mut expected = vec![
        (elevate_core::archive::event_key(&id, 2), 2, 0),
        (elevate_core::archive::event_key(&id, 3), 2, 0),
        (hidden.clone(), 1, 1),
    ];
    expected.sort();
    assert_eq!(rewritten, expected, "{:?}", report["differences"]);
    // What was compared is what was first archived: the forged approval is an alteration,
    // and the hidden event is still there.
    assert!(
        found(&run, "altered", &id, Some(2)),
        "{:?}",
        differences(&run)
    );
    assert!(
        !found(&run, "deleted", &other, None) && !found(&run, "missing_from_table", &other, None),
        "{:?}",
        differences(&run)
    );
    assert_eq!(report["summary"]["archived_events"], 5);

    let (run, _) = verify_with(&archive, &table, &[]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        run.stdout.lines().any(|line| line.contains(&hidden)
            && line.contains("written again")
            && line.contains("delete marker")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn an_event_deleted_from_the_table_is_named() {
    let (trails, archive, _) = archived_trails("").await;
    let id = trails[0].0.id.to_string();
    let mut table = table_of(&trails);
    // The last event gone and the head moved back: the table's chain is whole without it.
    table[0].1.retain(|e| e.seq != 3);
    let second = table[0].1.iter().find(|e| e.seq == 2).expect("event 2");
    table[0].2 = (2, second.hash.clone());

    let run = verify_names(&archive, &table, Some("deleted"), "deleted", &id, Some(3));
    assert!(
        !differences(&run).iter().any(|(k, _, _)| k == "table_chain"),
        "{:?}",
        differences(&run)
    );

    // The head left as it was: the table's own chain is short of it too, as `audit verify` says.
    table[0].2 = (trails[0].0.audit_seq, trails[0].0.audit_head.clone());
    let (run, _) = verify_with(&archive, &table, &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        found(&run, "deleted", &id, Some(3)),
        "{:?}",
        differences(&run)
    );
    let report = run.json();
    let truncated = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .any(|d| {
            d["kind"] == "table_chain"
                && d["error"].as_str().is_some_and(|e| {
                    e.contains("the chain ends at event 2 but the request records 3 events")
                })
        });
    assert!(truncated, "{report:#}");
}

#[tokio::test]
async fn an_event_inserted_in_the_table_is_named_once_it_had_time_to_be_archived() {
    let first = now() - chrono::Duration::minutes(10);
    let (request, events) = walk(
        pending_at(first),
        vec![
            (
                Cmd::Approve {
                    reason: Some("go ahead".into()),
                },
                Actor::person("bob"),
            ),
            (Cmd::Activate, Actor::system("escalate")),
            (
                Cmd::Revoke {
                    reason: Some("done early".into()),
                },
                Actor::person("bob"),
            ),
        ],
    );
    let id = request.id.to_string();
    let archive = ArchiveBucket::create("").await;
    // The archive and its anchor have the first three; the fourth appears only in the table.
    let archived: Vec<AuditEvent> = events.iter().filter(|e| e.seq <= 3).cloned().collect();
    archive.put_events(&archived).await;
    archive
        .put_anchor(&anchor_of(None, anchored_until(), &archived))
        .await;
    // A request opened a minute ago, not archived yet: still settling, not a difference.
    let (fresh, fresh_event) = pending_at(now() - chrono::Duration::minutes(1));
    let table = vec![
        (
            id.clone(),
            events,
            (request.audit_seq, request.audit_head.clone()),
        ),
        (
            fresh.id.to_string(),
            vec![fresh_event],
            (fresh.audit_seq, fresh.audit_head.clone()),
        ),
    ];

    let run = verify_names(&archive, &table, Some("inserted"), "inserted", &id, Some(4));
    let fresh_id = fresh.id.to_string();
    assert!(
        differences(&run).iter().all(|(_, r, _)| *r != fresh_id),
        "{:?}",
        differences(&run)
    );
}

#[tokio::test]
async fn a_request_missing_from_the_table_is_named() {
    let (trails, archive, _) = archived_trails("").await;
    // A third request, archived, then deleted from the table with all its events.
    let (gone, gone_events) = denied(pending_at(now() - chrono::Duration::minutes(8)));
    archive.put_events(&gone_events).await;
    let gone_id = gone.id.to_string();

    let table = table_of(&trails);
    let run = verify_names(&archive, &table, None, "missing_from_table", &gone_id, None);
    assert_eq!(run.json()["summary"]["archived_events"], 7);
    assert_eq!(run.json()["summary"]["table_requests"], 2);
}

#[tokio::test]
async fn a_head_an_anchor_pins_that_neither_side_has_is_named() {
    let trails = two_trails();
    let id = trails[0].0.id.to_string();
    let archive = ArchiveBucket::create("").await;
    let events = events_of(&trails);
    archive.put_events(&events).await;
    // Table and archive agree, but the anchor pinned another event 3 (both were rewritten).
    let mut pinned = events.clone();
    for event in pinned
        .iter_mut()
        .filter(|e| e.request_id.as_str() == id && e.seq == 3)
    {
        event.hash = "f".repeat(64);
    }
    let anchor = anchor_of(None, anchored_until(), &pinned);
    archive.put_anchor(&anchor).await;

    let (run, _) = verify_with(&archive, &table_of(&trails), &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        found(&run, "unanchored", &id, Some(3)),
        "{:?}",
        differences(&run)
    );
    let other = trails[1].0.id.to_string();
    assert!(
        differences(&run).iter().all(|(_, r, _)| *r != other),
        "{:?}",
        differences(&run)
    );
}

#[tokio::test]
async fn an_altered_anchor_is_named_by_its_key() {
    let trails = two_trails();
    let archive = ArchiveBucket::create("").await;
    let events = events_of(&trails);
    archive.put_events(&events).await;
    let first = anchor_of(None, now() - chrono::Duration::minutes(30), &[]);
    archive.put_anchor(&first).await;
    let mut second = anchor_of(Some(&first), anchored_until(), &events);
    // Edited after it was sealed: one head dropped, the hash left as it was.
    second.heads.pop();
    archive.put_anchor(&second).await;

    let (run, _) = verify_with(&archive, &table_of(&trails), &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    let report = run.json();
    let key = anchor_key(second.until);
    let named = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .any(|d| d["kind"] == "anchor_chain" && d["anchor"].as_str() == Some(key.as_str()));
    assert!(named, "{report:#}");
    assert_eq!(report["summary"]["anchors"], 2);
    // The anchors' own problems come first.
    assert_eq!(differences(&run)[0].0, "anchor_chain", "{report:#}");
}

#[tokio::test]
async fn a_recorded_change_of_an_archived_event_is_named() {
    let (trails, archive, _) = archived_trails("").await;
    let id = trails[1].0.id.to_string();
    let before = serde_json::to_value(&trails[1].1[1]).expect("event");
    archive
        .put_change(&TableChange {
            request_id: id.clone(),
            seq: 2,
            change: ChangeKind::Remove,
            at: now() - chrono::Duration::minutes(2),
            stream_event_id: "c2f1f0f4b1e5a6d7".into(),
            before: Some(before),
            after: None,
        })
        .await;

    let (run, _) = verify_with(&archive, &table_of(&trails), &["--json"]);
    assert_eq!(run.code, 9, "{run:?}");
    assert!(
        found(&run, "changed", &id, Some(2)),
        "{:?}",
        differences(&run)
    );
}

#[tokio::test]
async fn an_archive_that_cannot_be_read_is_an_error_that_names_the_permissions() {
    let archive = ArchiveBucket::create("").await;
    let api = TestApi::start(|_| (200, audit_answer(&two_trails())));
    let missing = format!("s3://{}-gone", archive.bucket);
    let run =
        Elevate::new()
            .api(&api)
            .s3(&archive)
            .run(&["audit", "verify", "--archive", &missing]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("cannot list the events in {missing}"))
            && run.stderr.contains("s3:ListBucketVersions")
            && run.stderr.contains("NoSuchBucket"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("SdkBody"),
        "one line, not the raw response: {}",
        run.stderr
    );
}

#[test]
fn an_archive_url_that_is_not_s3_is_a_usage_error_before_any_call() {
    let api = TestApi::start(|_| (200, audit_answer(&[])));
    for bad in [
        "https://audit.s3.amazonaws.com",
        "s3://",
        "audit-bucket",
        "s3://Audit_Bucket/x",
    ] {
        let run = Elevate::new()
            .api(&api)
            .run(&["audit", "verify", "--archive", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
        assert!(
            run.stderr.contains("is not an archive URL") && run.stderr.contains("s3://<bucket>"),
            "{bad}: {}",
            run.stderr
        );
    }
    let run = Elevate::new().api(&api).run(&[
        "audit",
        "verify",
        "--archive",
        "s3://audit-bucket",
        "--file",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(api.seen().is_empty(), "no call was made");
}

#[test]
fn verify_help_says_what_is_compared_and_which_permissions_it_needs() {
    let run = Elevate::new().run(&["audit", "verify", "--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    for needed in [
        "--archive",
        "anchors",
        "s3:GetObjectVersion",
        "s3:ListBucketVersions",
        "written again",
        "missing",
    ] {
        assert!(run.stdout.contains(needed), "{needed}: {}", run.stdout);
    }
}
