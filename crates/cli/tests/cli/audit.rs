//! `audit export` and `audit verify` on chains built with the core's state machine.

use std::path::Path;

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

fn export_to(api: &TestApi, elevate: &Elevate, path: &Path) {
    let run = elevate.run(&["audit", "export", "--output", path.to_str().expect("path")]);
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
    let run = elevate.run(&["audit", "export", "--output", path.to_str().expect("path")]);
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
