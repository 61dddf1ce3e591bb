//! `report`: the access review, from trails built with the core's state machine.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use elevate_core::model::{By, SessionsEnded};
use elevate_core::{apply, Actor, AuditEvent, Command as Cmd, Request, TargetKind};
use serde_json::Value;

use crate::support::*;

type Trail = (Request, Vec<AuditEvent>);

const HOSTILE: &str = "<script>alert(1)</script> \"><img src=x onerror=alert(2)>";
const FORMULA: &str = "=HYPERLINK(\"https://evil.example\",\"click\")";
const BILLING_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:billing-target";
const DAVE_IN_SLACK: &str = "slack:T0ELEVATE/U0DAVE";

/// `command` by `by` at `at` applied to the trail's request, its event added.
fn then(trail: Trail, command: Cmd, by: &By, at: DateTime<Utc>) -> Trail {
    let (request, mut events) = trail;
    let transition = apply(&request, command, by, at).expect("transition");
    events.push(transition.event);
    (transition.request, events)
}

/// The expiry of an active grant, on time, the requester's role sessions ended with it.
fn expired(trail: Trail) -> Trail {
    let (request, mut events) = trail;
    let due = request.expires_at.expect("active");
    let transition = apply(
        &request,
        Cmd::Expire,
        &by(&Actor::system("revoke")),
        due + Duration::seconds(1),
    )
    .expect("expire")
    .with_sessions_ended(SessionsEnded::Person);
    events.push(transition.event);
    (transition.request, events)
}

fn billing() -> (&'static str, TargetKind) {
    (
        "billing",
        TargetKind::Lambda {
            function_arn: BILLING_ARN.into(),
        },
    )
}

/// The trails of the report, each with its request:
/// 0. alice on admins, approved by bob, expired on time (10 days ago);
/// 1. carol on admins, revoked early by dave from Slack (5 days ago);
/// 2. erin on billing, denied by bob (3 days ago), with a hostile reason;
/// 3. alice on billing, approved by herself, still active (an hour ago);
/// 4. frank on admins, opened and activated before the window, expired in it.
fn scene(now: DateTime<Utc>) -> Vec<Trail> {
    let hours = |n: u64| StdDuration::from_secs(n * 3600);
    let alice_admins = expired(active(pending_for(
        now - Duration::days(10),
        "alice",
        ("admins", group("SymDemoAdmins")),
        "INC-1 fix the prod bucket policy",
        hours(1),
    )));
    let carol = active(pending_for(
        now - Duration::days(5),
        "carol",
        ("admins", group("SymDemoAdmins")),
        FORMULA,
        hours(4),
    ));
    let revoked_at = carol.0.activated_at.expect("active") + Duration::minutes(30);
    let carol = then(
        carol,
        Cmd::Revoke {
            reason: Some("INC-7 closed".into()),
        },
        &By::person("dave", DAVE_IN_SLACK),
        revoked_at,
    );
    let erin = denied(pending_for(
        now - Duration::days(3),
        "erin",
        billing(),
        HOSTILE,
        hours(1),
    ));
    let alice_billing = walk(
        pending_for(
            now - Duration::hours(1),
            "alice",
            billing(),
            "month-end close",
            hours(8),
        ),
        vec![
            (Cmd::Approve { reason: None }, Actor::person("alice")),
            (Cmd::Activate, Actor::system("escalate")),
        ],
    );
    let frank = expired(active(pending_for(
        now - Duration::days(90) - Duration::hours(1),
        "frank",
        ("admins", group("SymDemoAdmins")),
        "quarter-end patching",
        hours(8),
    )));
    vec![alice_admins, carol, erin, alice_billing, frank]
}

/// What `GET /audit` holds for the window starting 90 days before `now`: frank's request
/// keeps only its expiry.
fn in_window(trails: &[Trail], now: DateTime<Utc>) -> Vec<Trail> {
    let since = now - Duration::days(90) + Duration::minutes(5);
    trails
        .iter()
        .map(|(request, events)| {
            let kept = events.iter().filter(|e| e.at >= since).cloned().collect();
            (request.clone(), kept)
        })
        .collect()
}

/// A stand-in API serving the scene: `GET /audit` in two pages, `GET /requests/{id}` for
/// frank's request only.
fn serve(trails: &[Trail], now: DateTime<Utc>) -> TestApi {
    let window = in_window(trails, now);
    let mut first = audit_answer(&window[..3]);
    first["next"] = Value::from("cursor-of-page-2");
    let second = audit_answer(&window[3..]);
    let (frank, frank_events) = trails[4].clone();
    let frank_path = format!("/requests/{}", frank.id);
    TestApi::start(move |seen| match seen.path.as_str() {
        "/audit"
            if seen
                .query
                .as_deref()
                .unwrap_or("")
                .contains("cursor=cursor-of-page-2") =>
        {
            (200, second.clone())
        }
        "/audit" => (200, first.clone()),
        path if path == frank_path => (200, detail(&frank, &frank_events)),
        _ => (404, api_error("not_found", "no such request")),
    })
}

/// CSV as a spreadsheet reads it: quoted fields, doubled quotes, commas and newlines inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// Each row as column name → value.
fn records(text: &str) -> Vec<HashMap<String, String>> {
    let mut rows = parse_csv(text).into_iter();
    let header = rows.next().expect("header");
    rows.map(|row| {
        assert_eq!(row.len(), header.len(), "{row:?}");
        header.iter().cloned().zip(row).collect()
    })
    .collect()
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[test]
fn the_csv_has_one_row_per_request_with_its_decision_access_and_ending() {
    let now = now();
    let trails = scene(now);
    let api = serve(&trails, now);
    let run = Elevate::new().api(&api).run(&["report"]);
    assert_eq!(run.code, 0, "{run:?}");

    assert_eq!(
        run.stdout.lines().next(),
        Some(
            "person,person_email,target,target_kind,target_resource,request_id,requested_at,\
requested_by_principal,reason,decision,decided_by,decided_by_principal,decided_at,\
decision_reason,self_approved,access_start,access_end,ended,ended_by,ended_by_principal,\
end_reason,sessions_ended,break_glass,reviewed_by,reviewed_at"
        )
    );
    // A reason a spreadsheet would run is text.
    assert!(
        run.stdout
            .contains("\"'=HYPERLINK(\"\"https://evil.example"),
        "{}",
        run.stdout
    );
    let rows = records(&run.stdout);
    let lanes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["person"].as_str(), r["target"].as_str()))
        .collect();
    assert_eq!(
        lanes,
        [
            ("alice", "admins"),
            ("alice", "billing"),
            ("carol", "admins"),
            ("erin", "billing"),
            ("frank", "admins"),
        ]
    );

    let (request, _) = &trails[0];
    let expired = &rows[0];
    assert_eq!(expired["request_id"], request.id.to_string());
    assert_eq!(expired["person_email"], "alice@example.com");
    assert_eq!(expired["target_kind"], "iam_group");
    assert_eq!(expired["target_resource"], "SymDemoAdmins");
    assert_eq!(expired["requested_at"], time(Some(request.created_at)));
    assert_eq!(expired["requested_by_principal"], principal_of("alice"));
    assert_eq!(expired["reason"], "INC-1 fix the prod bucket policy");
    assert_eq!(expired["decision"], "approved");
    assert_eq!(expired["decided_by"], "bob");
    assert_eq!(expired["decided_by_principal"], principal_of("bob"));
    assert_eq!(expired["decided_at"], time(request.decided_at));
    assert_eq!(expired["decision_reason"], "go ahead");
    assert_eq!(expired["self_approved"], "no");
    assert_eq!(expired["access_start"], time(request.activated_at));
    assert_eq!(expired["access_end"], time(request.ended_at));
    assert_eq!(expired["ended"], "expired on time");
    assert_eq!(expired["ended_by"], "");
    assert_eq!(expired["sessions_ended"], "person");

    let own = &rows[1];
    assert_eq!(own["target_kind"], "lambda");
    assert_eq!(own["target_resource"], BILLING_ARN);
    assert_eq!(own["decided_by"], "alice");
    assert_eq!(own["self_approved"], "yes");
    assert_eq!(own["access_start"], time(trails[3].0.activated_at));
    assert_eq!(own["access_end"], "");
    assert_eq!(own["ended"], "still active");

    let revoked = &rows[2];
    assert_eq!(revoked["reason"], format!("'{FORMULA}"));
    assert_eq!(revoked["ended"], "revoked early");
    assert_eq!(revoked["ended_by"], "dave");
    assert_eq!(revoked["ended_by_principal"], DAVE_IN_SLACK);
    assert_eq!(revoked["end_reason"], "INC-7 closed");
    assert_eq!(revoked["access_end"], time(trails[1].0.ended_at));

    let refused = &rows[3];
    assert_eq!(refused["reason"], HOSTILE);
    assert_eq!(refused["decision"], "denied");
    assert_eq!(refused["decided_by"], "bob");
    assert_eq!(refused["decision_reason"], "not today");
    assert_eq!(refused["self_approved"], "");
    assert_eq!(refused["access_start"], "");
    assert_eq!(refused["ended"], "");

    // Opened before the window: its person, target and first steps come from the request.
    let (frank, _) = &trails[4];
    let earlier = &rows[4];
    assert_eq!(earlier["requested_at"], time(Some(frank.created_at)));
    assert_eq!(earlier["reason"], "quarter-end patching");
    assert_eq!(earlier["target_resource"], "SymDemoAdmins");
    assert_eq!(earlier["decided_by"], "bob");
    assert_eq!(earlier["access_start"], time(frank.activated_at));
    assert_eq!(earlier["ended"], "expired on time");

    let seen = api.seen();
    let requests: Vec<&str> = seen
        .iter()
        .filter(|s| s.path.starts_with("/requests"))
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(
        requests,
        [format!("/requests/{}", frank.id)],
        "only the request opened before the window is read"
    );
    let pages: Vec<&Seen> = seen.iter().filter(|s| s.path == "/audit").collect();
    assert_eq!(pages.len(), 2, "both pages are read");
    assert!(pages[1]
        .query
        .as_deref()
        .unwrap_or("")
        .contains("cursor=cursor-of-page-2"));
    for page in &pages {
        assert!(page.query.as_deref().unwrap_or("").contains("since="));
        assert_signed(page);
    }
    assert!(
        run.stderr.contains("reading the trail… 14 events"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("reading 1 request opened before the window"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_html_is_one_page_with_a_bar_per_grant_and_the_trail_as_text() {
    let now = now();
    let api = serve(&scene(now), now);
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("review.html");
    let run = elevate.run(&["report", "-o", path.to_str().expect("path")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("wrote the access review of 5 requests (4 grants) to"),
        "{}",
        run.stderr
    );
    assert!(!path.with_extension("partial").exists());
    let html = std::fs::read_to_string(&path).expect("report");

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 1);
    assert_eq!(
        html.matches("class=\"bar ").count(),
        4,
        "one bar per grant that had access"
    );
    assert_eq!(html.matches("class=\"bar expired\"").count(), 2);
    assert_eq!(html.matches("class=\"bar revoked\"").count(), 1);
    assert_eq!(html.matches("class=\"bar active\"").count(), 1);
    assert_eq!(html.matches("class=\"tick denied\"").count(), 1);

    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    let lower = html.to_lowercase();
    for raw in ["<script", "<img", "<link", "url(", "@import", "<iframe"] {
        assert!(!lower.contains(raw), "{raw} in the report");
    }

    for stat in [
        "<b>5</b>requests",
        "<b>4</b>grants",
        "<b>4</b>people",
        "<b>2</b>targets",
        "<b>1</b>ended early",
        "<b>1</b>still active",
        "<b>1</b>denied",
        "<b>1</b>self-approved",
    ] {
        assert!(html.contains(stat), "{stat}");
    }
    assert!(html.contains("self-approved</span>"));
    assert!(html.contains(DAVE_IN_SLACK));
    assert!(html.contains("revoked early by dave: INC-7 closed"));
    assert!(html.contains("Lambda target arn:aws:lambda"));
}

#[test]
fn a_caller_who_is_not_an_auditor_is_told_and_gets_no_file() {
    let api = TestApi::start(|_| {
        (
            403,
            api_error(
                "forbidden",
                "erin is not an auditor (add them to `auditors` in elevate.toml)",
            ),
        )
    });
    let elevate = Elevate::new().api(&api);
    let path = elevate.home().join("review.csv");
    let run = elevate.run(&["report", "--output", path.to_str().expect("path")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("only auditors may read")
            && run.stderr.contains("erin is not an auditor"),
        "{}",
        run.stderr
    );
    assert!(!path.exists(), "no report");
    assert!(!path.with_extension("partial").exists(), "no partial file");
    assert_eq!(api.seen().len(), 1);
}

/// `since=` or `until=` of a query, as a time.
fn query_time(query: &str, name: &str) -> DateTime<Utc> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {query}"));
    value.replace("%3A", ":").parse().expect("time")
}

#[test]
fn the_window_is_a_duration_back_from_now_or_a_time() {
    let api = TestApi::start(|_| (200, serde_json::json!({ "events": [], "heads": [] })));
    let elevate = Elevate::new().api(&api);
    let near = |at: DateTime<Utc>, wanted: DateTime<Utc>| (at - wanted).num_seconds().abs() < 60;

    let run = elevate.run(&["report", "--since", "90d"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "the header only");
    let query = api.seen()[0].query.clone().unwrap_or_default();
    assert!(
        near(query_time(&query, "since"), now() - Duration::days(90)),
        "{query}"
    );
    assert!(!query.contains("until="), "{query}");

    let run = elevate.run(&[
        "report",
        "--since",
        "2026-10-01T00:00:00Z",
        "--until",
        "12h",
        "--format",
        "html",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("No requests in the window."));
    let query = api.seen()[1].query.clone().unwrap_or_default();
    assert_eq!(
        query_time(&query, "since"),
        "2026-10-01T00:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time")
    );
    assert!(
        near(query_time(&query, "until"), now() - Duration::hours(12)),
        "{query}"
    );

    let run = elevate.run(&["report", "--since", "last quarter"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("90d"), "{}", run.stderr);
    assert_eq!(api.seen().len(), 2);
}
