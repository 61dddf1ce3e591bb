//! request (with and without --wait), approve/deny/cancel/revoke, list, show, errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::support::*;

#[test]
fn request_wait_follows_pending_approved_active_and_exits_0() {
    let start = pending_at(now());
    let pending = start.0.clone();
    let (approved, _) = approved(start.clone());
    let (active, _) = active(start);
    let id = pending.id.to_string();
    let expected_path = format!("/requests/{id}");
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let api = TestApi::start(
        move |seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/requests") => (201, envelope(&pending)),
            ("GET", path) if path == format!("/requests/{id}") => {
                match counter.fetch_add(1, Ordering::SeqCst) {
                    0 => (200, detail(&approved, &[])),
                    _ => (200, detail(&active, &[])),
                }
            }
            _ => (404, api_error("not_found", "no such route")),
        },
    );

    let run = Elevate::new().api(&api).run(&[
        "request",
        "infra_access",
        "--duration",
        "1h",
        "--reason",
        "fix the prod bucket policy",
        "--wait",
    ]);

    assert_eq!(run.code, 0, "{run:?}");
    let waiting = run.stderr.find("waiting for approval").expect(&run.stderr);
    let approved_at = run
        .stderr
        .find("approved by bob: go ahead")
        .expect(&run.stderr);
    let active_at = run.stderr.find("active until").expect(&run.stderr);
    assert!(
        waiting < approved_at && approved_at < active_at,
        "{}",
        run.stderr
    );

    let seen = api.seen();
    assert_eq!(seen.len(), 3, "one POST and two polls: {seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/requests");
    assert_eq!(seen[0].header("content-type"), "application/json");
    assert_eq!(
        seen[0].json(),
        json!({"flow": "infra_access", "duration": 3600, "reason": "fix the prod bucket policy"})
    );
    assert_eq!(seen[1].path, expected_path);
    for request in &seen {
        assert_signed(request);
    }
}

#[test]
fn request_wait_exits_3_when_denied() {
    let start = pending_at(now());
    let pending = start.0.clone();
    let (denied, _) = denied(start);
    let api = TestApi::start(move |seen| match seen.method.as_str() {
        "POST" => (201, envelope(&pending)),
        _ => (200, detail(&denied, &[])),
    });
    let run = Elevate::new().api(&api).run(&[
        "request",
        "infra_access",
        "--target",
        "admins",
        "-d",
        "30m",
        "-r",
        "why not",
        "--wait",
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("denied by bob: not today"),
        "{}",
        run.stderr
    );
    assert_eq!(api.seen()[0].json()["target"], "admins");
    assert_eq!(api.seen()[0].json()["duration"], 1800);
}

#[test]
fn request_sends_the_account_asked_for() {
    let pending = pending_at(now()).0;
    let api = TestApi::start(move |_| (201, envelope(&pending)));
    let run = Elevate::new().api(&api).run(&[
        "request",
        "prod_readonly",
        "--account",
        "111111111111",
        "-d",
        "1h",
        "-r",
        "INC-7",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        api.seen()[0].json(),
        json!({"flow": "prod_readonly", "account": "111111111111", "duration": 3600, "reason": "INC-7"})
    );
}

#[test]
fn request_wait_prints_the_failure_and_exits_6() {
    let start = pending_at(now());
    let pending = start.0.clone();
    let (failed, _) = walk(
        start,
        vec![
            (
                elevate_core::Command::Approve { reason: None },
                elevate_core::Actor::person("bob"),
            ),
            (
                elevate_core::Command::Fail {
                    error: "AddUserToGroup: AccessDenied".into(),
                },
                elevate_core::Actor::system("escalate"),
            ),
        ],
    );
    let api = TestApi::start(move |seen| match seen.method.as_str() {
        "POST" => (201, envelope(&pending)),
        _ => (200, detail(&failed, &[])),
    });
    let run = Elevate::new().api(&api).run(&[
        "-q",
        "request",
        "infra_access",
        "-d",
        "1h",
        "-r",
        "x",
        "--wait",
    ]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stderr
            .contains("granting access failed: AddUserToGroup: AccessDenied"),
        "{}",
        run.stderr
    );
}

#[test]
fn request_wait_gives_up_after_timeout_with_8() {
    let pending = pending_at(now()).0;
    let api = TestApi::start(move |seen| match seen.method.as_str() {
        "POST" => (201, envelope(&pending)),
        _ => (200, detail(&pending, &[])),
    });
    let run = Elevate::new().api(&api).run(&[
        "request",
        "infra_access",
        "-d",
        "1h",
        "-r",
        "x",
        "--wait",
        "--timeout",
        "2s",
    ]);
    assert_eq!(run.code, 8, "{run:?}");
    assert!(
        run.stderr.contains("still PENDING after 2s"),
        "{}",
        run.stderr
    );
}

#[test]
fn request_without_wait_prints_the_id_or_the_api_json() {
    let pending = pending_at(now()).0;
    let answer = envelope(&pending);
    let canned = answer.clone();
    let api = TestApi::start(move |_| (201, canned.clone()));

    let run = Elevate::new()
        .api(&api)
        .run(&["request", "infra_access", "-d", "1h", "-r", "x"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(pending.id.as_str()), "{}", run.stdout);

    let run =
        Elevate::new()
            .api(&api)
            .run(&["--json", "request", "infra_access", "-d", "1h", "-r", "x"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json(), answer);
}

#[test]
fn decisions_post_to_their_routes_with_the_reason() {
    let (approved, _) = approved(pending_at(now()));
    let id = approved.id.to_string();
    let answer = envelope(&approved);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let elevate = Elevate::new().api(&api);

    let run = elevate.run(&["approve", &id, "--reason", "looks right"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!("approved {id}")),
        "{}",
        run.stdout
    );
    assert_eq!(elevate.run(&["deny", &id]).code, 0);
    assert_eq!(elevate.run(&["cancel", &id]).code, 0);
    assert_eq!(elevate.run(&["revoke", &id, "-r", "done early"]).code, 0);

    let seen = api.seen();
    let routes: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    assert_eq!(
        routes,
        ["approve", "deny", "cancel", "revoke"]
            .iter()
            .map(|r| ("POST".to_owned(), format!("/requests/{id}/{r}")))
            .collect::<Vec<_>>()
    );
    assert_eq!(seen[0].json(), json!({"reason": "looks right"}));
    assert_eq!(seen[1].json(), json!({}));
    assert!(seen[2].body.is_empty(), "cancel sends no body");
    assert_eq!(seen[3].json(), json!({"reason": "done early"}));
    for request in &seen {
        assert_signed(request);
    }
}

#[test]
fn list_prints_a_table_and_passes_scope_and_state() {
    let (active, _) = active(pending_at(now()));
    let pending = pending_at(now()).0;
    let answer = json!({ "requests": [active, pending] });
    let canned = answer.clone();
    let api = TestApi::start(move |_| (200, canned.clone()));

    let run = Elevate::new().api(&api).run(&["list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut lines = run.stdout.lines();
    let header = lines.next().expect("header");
    for column in [
        "ID",
        "FLOW",
        "REQUESTER",
        "STATE",
        "DURATION",
        "CREATED",
        "EXPIRES",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].contains(active.id.as_str()) && rows[0].contains("ACTIVE"));
    assert!(
        rows[0].contains("infra_access") && rows[0].contains("alice") && rows[0].contains("1h")
    );
    assert!(rows[1].contains("PENDING"));
    assert_eq!(api.seen()[0].query.as_deref(), Some("scope=mine&limit=200"));

    let run =
        Elevate::new()
            .api(&api)
            .run(&["list", "--to-approve", "--state", "pending", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json(), answer);
    assert_eq!(
        api.seen()[1].query.as_deref(),
        Some("scope=to_approve&state=PENDING&limit=200")
    );
    assert_signed(&api.seen()[1]);
}

/// A stand-in of `GET /requests` that answers `pages` in turn: the first without a cursor,
/// each next one for the cursor `p<index>` the page before handed out.
fn paged_api(pages: Vec<Vec<elevate_core::Request>>) -> TestApi {
    TestApi::start(move |seen| {
        let query = seen.query.clone().unwrap_or_default();
        let index = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("cursor=p"))
            .map_or(0, |n| n.parse::<usize>().expect("a cursor handed out"));
        let mut answer = json!({ "requests": pages[index] });
        if index + 1 < pages.len() {
            answer["next"] = json!(format!("p{}", index + 1));
        }
        (200, answer)
    })
}

#[test]
fn list_follows_next_and_prints_every_page_under_one_header() {
    let requests: Vec<elevate_core::Request> = (0..5)
        .map(|i| pending_at(now() - chrono::Duration::minutes(i)).0)
        .collect();
    // An empty page with a next is not the end.
    let pages = vec![
        requests[..2].to_vec(),
        requests[2..3].to_vec(),
        Vec::new(),
        requests[3..].to_vec(),
    ];
    let api = paged_api(pages);

    let run = Elevate::new().api(&api).run(&["list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert!(lines[0].starts_with("ID"), "{}", run.stdout);
    for (line, request) in lines[1..].iter().zip(&requests) {
        assert!(line.starts_with(request.id.as_str()), "{}", run.stdout);
    }
    assert_eq!(
        lines[0].find("FLOW"),
        lines[5].find("infra_access"),
        "the columns of a later page line up with the first: {}",
        run.stdout
    );
    let queries = api.queries();
    assert_eq!(
        queries,
        [
            "scope=mine&limit=200",
            "scope=mine&limit=200&cursor=p1",
            "scope=mine&limit=200&cursor=p2",
            "scope=mine&limit=200&cursor=p3",
        ]
    );

    // --json: one object of every request, as one page of them all would print.
    let run = Elevate::new().api(&api).run(&["--json", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    let all = json!({ "requests": requests });
    assert_eq!(run.json(), all);
    assert_eq!(
        run.stdout,
        format!("{}\n", serde_json::to_string_pretty(&all).expect("json"))
    );
}

#[test]
fn list_limit_stops_after_that_many_and_asks_no_more() {
    let requests: Vec<elevate_core::Request> = (0..5)
        .map(|i| pending_at(now() - chrono::Duration::minutes(i)).0)
        .collect();
    let api = paged_api(vec![requests[..2].to_vec(), requests[2..].to_vec()]);
    // The stand-in gives a whole page whatever the limit: the CLI still asks for what is left
    // and prints no more than --limit.
    let run = Elevate::new().api(&api).run(&["list", "--limit", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1 + 3, "{}", run.stdout);
    assert!(!run.stdout.contains(requests[3].id.as_str()));
    let queries = api.queries();
    assert_eq!(
        queries,
        ["scope=mine&limit=3", "scope=mine&limit=1&cursor=p1"]
    );

    let run = Elevate::new()
        .api(&api)
        .run(&["--json", "list", "--limit", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json(),
        json!({ "requests": requests[..2], "next": "p1" }),
        "what was left out is where `next` points"
    );

    let run = Elevate::new().api(&api).run(&["list", "--limit", "9"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1 + 5, "{}", run.stdout);

    let seen = api.seen().len();
    for bad in ["0", "-1", "many"] {
        let run = Elevate::new().api(&api).run(&["list", "--limit", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
    }
    assert_eq!(api.seen().len(), seen, "nothing asked with a bad --limit");
}

#[test]
fn list_of_nothing_says_so() {
    let api = paged_api(vec![Vec::new()]);
    let run = Elevate::new().api(&api).run(&["list", "--to-approve"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("nothing waits for your approval"),
        "{}",
        run.stderr
    );
    let run = Elevate::new().api(&api).run(&["--json", "list"]);
    assert_eq!(run.stdout, "{\n  \"requests\": []\n}\n");
}

#[test]
fn show_prints_the_request_and_one_line_per_event() {
    let (active, events) = active(pending_at(now()));
    let answer = detail(&active, &events);
    let api = TestApi::start(move |_| (200, answer.clone()));
    let run = Elevate::new().api(&api).run(&["show", active.id.as_str()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("fix the prod bucket policy"));
    assert!(run.stdout.contains("by bob: go ahead"), "{}", run.stdout);
    let event_lines: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("SEQ"))
        .skip(1)
        .collect();
    assert_eq!(event_lines.len(), 3, "{}", run.stdout);
    assert!(event_lines[0].contains("alice") && event_lines[0].contains("→ PENDING"));
    assert!(event_lines[1].contains("bob") && event_lines[1].contains("PENDING → APPROVED"));
    assert!(
        event_lines[2].contains("elevate:escalate") && event_lines[2].contains("APPROVED → ACTIVE")
    );
    assert!(
        run.stderr.contains("audit chain verified"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_403_unknown_caller_says_the_identity_is_not_in_elevate_toml() {
    let api = TestApi::start(|_| {
        (
            403,
            api_error(
                "unknown_caller",
                "arn:aws:iam::123456789012:user/mallory is not a person of elevate.toml",
            ),
        )
    });
    let run = Elevate::new().api(&api).run(&["list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: arn:aws:iam::123456789012:user/mallory is not a person of elevate.toml"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: your AWS identity is not accepted as a person of elevate.toml"),
        "{}",
        run.stderr
    );
    assert_no_debug(&run.stderr);
}

#[test]
fn a_409_conflict_prints_the_message_and_points_at_show() {
    let id = pending_at(now()).0.id.to_string();
    let api = TestApi::start(|_| {
        (
            409,
            api_error("conflict", "the request is already APPROVED"),
        )
    });
    let run = Elevate::new().api(&api).run(&["approve", &id]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("the request is already APPROVED"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("elevate show {id}")),
        "{}",
        run.stderr
    );
    assert_no_debug(&run.stderr);
}

#[test]
fn an_unreachable_api_hints_at_make_dev() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let run = Elevate::new()
        .env("ELEVATE_API_URL", &format!("http://127.0.0.1:{port}"))
        .run(&["list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(run.stderr.contains("make dev"), "{}", run.stderr);
}

#[test]
fn missing_credentials_hint_at_sso_login() {
    let api = TestApi::start(|_| (200, json!({"requests": []})));
    let run = Elevate::new()
        .api(&api)
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", "")
        .run(&["list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no AWS credentials found"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("aws sso login"), "{}", run.stderr);
    assert!(api.seen().is_empty(), "nothing unsigned was sent");
}

#[test]
fn the_api_url_can_come_from_the_user_config_file() {
    let api = TestApi::start(|_| (200, json!({"requests": []})));
    let elevate = Elevate::new();
    let dir = elevate.home().join(".config").join("elevate");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        format!("api_url = \"{}\"\nregion = \"us-east-1\"\n", api.url),
    )
    .expect("write");
    let run = elevate.run(&["list"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(api.seen().len(), 1);
}

fn assert_no_debug(stderr: &str) {
    for marker in ["Refused {", "Some(", "status:", "{ "] {
        assert!(!stderr.contains(marker), "debug output leaked: {stderr}");
    }
}
