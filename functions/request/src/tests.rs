//! The request function against real-shaped API Gateway events and the in-memory fakes.

use elevate_core::testing::Notice;
use elevate_core::{RequestId, State};
use serde_json::{json, Value};

use crate::handle;
use elevate_core::testing::{infra_config, FakeApp};
use elevate_http::testing::{body_json, ApiEvent, ALICE_ARN, BOB_ARN, MALLORY_ARN};

async fn call(app: &FakeApp, event: &ApiEvent) -> (u16, Value) {
    let response = handle(&app.app, event.request()).await;
    let status = response.status().as_u16();
    (status, body_json(&response))
}

fn create() -> ApiEvent {
    ApiEvent::fixture("apigw-create-request.json")
}

async fn created(app: &FakeApp) -> RequestId {
    let (status, body) = call(app, &create()).await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_value(body["request"]["id"].clone()).expect("request id")
}

fn assert_refused(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
    assert!(
        answer.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        answer.1
    );
}

#[tokio::test]
async fn opens_a_request_from_the_fixture() {
    let app = FakeApp::new(infra_config());
    let (status, body) = call(&app, &create()).await;
    assert_eq!(status, 201, "{body}");
    let request = &body["request"];
    assert_eq!(request["state"], "PENDING");
    assert_eq!(request["requester"], "alice");
    assert_eq!(request["flow"], "infra_access");
    assert_eq!(request["target"], "admins");
    assert_eq!(request["duration"], 3600);

    let id: RequestId = serde_json::from_value(request["id"].clone()).expect("id");
    let stored = app.request(&id);
    assert_eq!(stored.state, State::Pending);
    assert!(stored.message.is_some(), "announced and recorded");
    assert!(matches!(
        app.notifier.notices().first(),
        Some(Notice::Announce { flow, .. }) if flow == "infra_access"
    ));
    let timeout = app
        .scheduler
        .schedule_named(&format!("timeout-{id}"))
        .expect("time-out scheduled");
    assert_eq!(timeout.at, stored.pending_until);
}

#[tokio::test]
async fn an_sso_session_named_by_email_is_its_person_and_seconds_are_a_duration() {
    let app = FakeApp::new(infra_config());
    let (status, body) = call(
        &app,
        &ApiEvent::fixture("apigw-create-request-assumed-role.json"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["request"]["requester"], "alice");
    assert_eq!(
        body["request"]["target"], "admins",
        "the flow's only target"
    );
    assert_eq!(body["request"]["duration"], 1800);
}

#[tokio::test]
async fn unknown_or_missing_callers_are_refused_and_nothing_is_written() {
    let app = FakeApp::new(infra_config());
    for event in [
        create().caller(MALLORY_ARN),
        create().no_caller(),
        create().caller("arn:aws:sts::123456789012:assumed-role/Engineer/nobody@example.com"),
        create().caller("not an arn"),
    ] {
        assert_refused(&call(&app, &event).await, 403, "unknown_caller");
    }
    assert!(app.store.requests_all().is_empty());
    assert!(app.notifier.notices().is_empty());
}

#[tokio::test]
async fn bodies_are_checked_at_the_boundary() {
    let app = FakeApp::new(infra_config());
    let cases: Vec<(Option<&str>, u16, &str, &str)> = vec![
        (
            Some("{\"flow\":"),
            400,
            "bad_request",
            "invalid request body",
        ),
        (Some("not json"), 400, "bad_request", "invalid request body"),
        (None, 400, "bad_request", "missing field `flow`"),
        (
            Some(r#"{"flow":"infra_access","duration":"1h","reason":"x","approver":"bob"}"#),
            400,
            "bad_request",
            "unknown field `approver`",
        ),
        (
            Some(r#"{"flow":"infra_access","reason":"x"}"#),
            400,
            "bad_request",
            "missing field `duration`",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":"soon","reason":"x"}"#),
            400,
            "invalid_duration",
            "not a duration",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":1.5,"reason":"x"}"#),
            400,
            "invalid_duration",
            "whole seconds",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":-60,"reason":"x"}"#),
            400,
            "invalid_duration",
            "whole seconds",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":0,"reason":"x"}"#),
            400,
            "invalid_duration",
            "longer than zero",
        ),
        (
            Some(r#"{"flow":"nope","duration":"1h","reason":"x"}"#),
            400,
            "unknown_flow",
            "nope",
        ),
        (
            Some(r#"{"flow":"infra_access","target":"root","duration":"1h","reason":"x"}"#),
            400,
            "unknown_target",
            "root",
        ),
        (
            Some(
                r#"{"flow":"infra_access","account":"111111111111","duration":"1h","reason":"x"}"#,
            ),
            400,
            "account_not_applicable",
            "leave the account out",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":"5h","reason":"x"}"#),
            400,
            "duration_over_cap",
            "4h",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":"1h"}"#),
            400,
            "reason_required",
            "reason",
        ),
        (
            Some(r#"{"flow":"infra_access","duration":"1h","reason":"   "}"#),
            400,
            "reason_required",
            "reason",
        ),
    ];
    for (body, status, code, says) in cases {
        let answer = call(&app, &create().body(body)).await;
        assert_refused(&answer, status, code);
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body:?}: {message}");
    }
    assert!(app.store.requests_all().is_empty(), "nothing written");
    assert!(app.scheduler.schedules().is_empty());
}

#[tokio::test]
async fn a_base64_body_is_read() {
    use base64::Engine;
    let app = FakeApp::new(infra_config());
    let body = json!({"flow":"infra_access","duration":"30m","reason":"INC-1"}).to_string();
    let mut event = create();
    event.0["body"] = Value::from(base64::engine::general_purpose::STANDARD.encode(body));
    event.0["isBase64Encoded"] = Value::Bool(true);
    let (status, answer) = call(&app, &event).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["request"]["duration"], 1800);
}

#[tokio::test]
async fn lists_mine_and_to_approve() {
    let app = FakeApp::new(infra_config());
    let id = created(&app).await;

    let mine = ApiEvent::fixture("apigw-list-requests.json")
        .caller(ALICE_ARN)
        .query("");
    let (status, body) = call(&app, &mine).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"][0]["id"], id.as_str());

    let (status, body) = call(&app, &ApiEvent::fixture("apigw-list-requests.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["requests"].as_array().map(Vec::len),
        Some(1),
        "bob may approve it"
    );

    let active = ApiEvent::fixture("apigw-list-requests.json").query("scope=mine&state=active");
    let (status, body) = call(&app, &active).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"], json!([]));

    for query in ["scope=everyone", "state=ACTIVATED"] {
        let event = ApiEvent::fixture("apigw-list-requests.json").query(query);
        assert_refused(&call(&app, &event).await, 400, "bad_request");
    }
}

/// Every page of `GET /requests?<query>` with `limit`, following `next`: the ids of each page.
async fn list_pages(app: &FakeApp, caller: &str, query: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut raw = format!("{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            raw.push_str(&format!("&cursor={cursor}"));
        }
        let event = ApiEvent::fixture("apigw-list-requests.json")
            .caller(caller)
            .query(&raw);
        let (status, body) = call(app, &event).await;
        assert_eq!(status, 200, "{body}");
        let requests = body["requests"].as_array().expect("requests");
        assert!(requests.len() <= limit, "{body}");
        pages.push(requests.iter().map(|r| r["id"].clone()).collect());
        assert!(pages.len() < 100, "a listing that does not end");
        match body.get("next") {
            Some(next) => cursor = Some(next.as_str().expect("next is text").to_owned()),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn mine_pages_through_the_history_newest_page_first() {
    let app = FakeApp::new(infra_config());
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(Value::from(created(&app).await.as_str()));
        app.clock.advance(std::time::Duration::from_secs(60));
    }
    ids.reverse();

    let pages = list_pages(&app, ALICE_ARN, "scope=mine", 3).await;
    assert_eq!(pages, [&ids[..3], &ids[3..6], &ids[6..]]);

    // bob approves them all: oldest first, in pages too.
    let mut oldest_first = ids.clone();
    oldest_first.reverse();
    let pages = list_pages(&app, BOB_ARN, "scope=to_approve", 2).await;
    assert_eq!(pages.len(), 4);
    assert_eq!(pages.concat(), oldest_first);
    assert_eq!(
        list_pages(&app, BOB_ARN, "scope=to_approve&state=EXPIRED", 2).await,
        [Vec::<Value>::new()]
    );
}

#[tokio::test]
async fn list_pages_hold_50_unless_asked_and_200_at_most() {
    let app = FakeApp::new(infra_config());
    for _ in 0..51 {
        created(&app).await;
    }
    let mine = |query: &str| {
        ApiEvent::fixture("apigw-list-requests.json")
            .caller(ALICE_ARN)
            .query(query)
    };
    let (status, body) = call(&app, &mine("scope=mine")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"].as_array().map(Vec::len), Some(50));
    let next = body["next"].as_str().expect("a next page").to_owned();
    assert!(
        next.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {next}"
    );
    let (status, body) = call(&app, &mine(&format!("scope=mine&cursor={next}&limit="))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"].as_array().map(Vec::len), Some(1));
    assert_eq!(body.get("next"), None, "the last page has no next: {body}");
    let (status, body) = call(&app, &mine("scope=mine&limit=200")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"].as_array().map(Vec::len), Some(51));

    for limit in ["0", "201", "-1", "1.5", "ten", "99999999999999999999999"] {
        let answer = call(&app, &mine(&format!("scope=mine&limit={limit}"))).await;
        assert_refused(&answer, 400, "bad_request");
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(message.contains("1 to 200"), "{limit}: {message}");
    }
}

#[tokio::test]
async fn a_list_cursor_of_another_query_or_altered_is_refused() {
    let app = FakeApp::new(infra_config());
    for _ in 0..3 {
        created(&app).await;
    }
    let event = |caller: &str, query: &str| {
        ApiEvent::fixture("apigw-list-requests.json")
            .caller(caller)
            .query(query)
    };
    let (status, body) = call(&app, &event(ALICE_ARN, "scope=mine&limit=1")).await;
    assert_eq!(status, 200, "{body}");
    let next = body["next"].as_str().expect("next").to_owned();
    for (caller, query) in [
        (ALICE_ARN, format!("scope=to_approve&cursor={next}")),
        (ALICE_ARN, format!("scope=mine&state=PENDING&cursor={next}")),
        (BOB_ARN, format!("scope=mine&cursor={next}")),
        (ALICE_ARN, format!("scope=mine&cursor={}", &next[1..])),
        (ALICE_ARN, "scope=mine&cursor=not-a-cursor".to_owned()),
        (ALICE_ARN, format!("scope=mine&cursor={}", "a".repeat(5000))),
    ] {
        assert_refused(
            &call(&app, &event(caller, &query)).await,
            400,
            "bad_request",
        );
    }
    let (status, body) = call(
        &app,
        &event(ALICE_ARN, &format!("scope=mine&cursor={next}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requests"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn shows_a_request_with_its_audit_trail() {
    let app = FakeApp::new(infra_config());
    let id = created(&app).await;
    let show = ApiEvent::fixture("apigw-show-request.json").id(id.as_str());
    let (status, body) = call(&app, &show).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["request"]["id"], id.as_str());
    assert_eq!(body["audit"][0]["action"], "request");

    let missing = ApiEvent::fixture("apigw-show-request.json");
    assert_refused(&call(&app, &missing).await, 404, "not_found");
    let garbage = ApiEvent::fixture("apigw-show-request.json").id("not-an-id");
    assert_refused(&call(&app, &garbage).await, 400, "bad_request");
}

#[tokio::test]
async fn cancel_removes_the_time_out_and_updates_the_message() {
    let app = FakeApp::new(infra_config());
    let id = created(&app).await;
    assert!(app
        .scheduler
        .schedule_named(&format!("timeout-{id}"))
        .is_some());

    let by_bob = ApiEvent::fixture("apigw-cancel-request.json")
        .id(id.as_str())
        .caller(BOB_ARN);
    assert_refused(&call(&app, &by_bob).await, 403, "forbidden");

    let cancel = ApiEvent::fixture("apigw-cancel-request.json").id(id.as_str());
    let (status, body) = call(&app, &cancel).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["request"]["state"], "CANCELLED");
    assert!(app
        .scheduler
        .schedule_named(&format!("timeout-{id}"))
        .is_none());
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Update { request, .. } if request.state == State::Cancelled
    )));

    assert_refused(&call(&app, &cancel).await, 409, "conflict");
}

#[tokio::test]
async fn exports_the_audit_trail_to_auditors_only() {
    let app = FakeApp::new(infra_config());
    created(&app).await;
    let export = ApiEvent::fixture("apigw-audit-export.json");
    let (status, body) = call(&app, &export).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["events"],
        json!([]),
        "the fixture asks since 2026-11-01"
    );
    let (status, body) = call(&app, &export.query("since=2026-01-01T00:00:00Z")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["heads"][0]["audit_seq"], 1);

    let alice = ApiEvent::fixture("apigw-audit-export.json").caller(ALICE_ARN);
    assert_refused(&call(&app, &alice).await, 403, "forbidden");
    let bad_since = ApiEvent::fixture("apigw-audit-export.json").query("since=yesterday");
    assert_refused(&call(&app, &bad_since).await, 400, "bad_request");
}

#[tokio::test]
async fn other_routes_are_not_found() {
    let app = FakeApp::new(infra_config());
    let mut event = create();
    event.0["requestContext"]["http"]["method"] = Value::from("DELETE");
    assert_refused(&call(&app, &event).await, 404, "not_found");
    let mut event = create();
    event.0["rawPath"] = Value::from("/elsewhere");
    assert_refused(&call(&app, &event).await, 404, "not_found");
}

#[tokio::test]
async fn a_fault_answers_500_without_detail() {
    let app = FakeApp::new(infra_config());
    app.store.fail_next(1);
    let (status, body) = call(&app, &create()).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"error": "internal", "message": "internal error"})
    );
}

#[tokio::test]
async fn the_announcement_failing_still_opens_the_request() {
    let app = FakeApp::new(infra_config());
    app.notifier.fail_next(1);
    let id = created(&app).await;
    assert_eq!(
        app.request(&id).message,
        None,
        "the sweep announces it later"
    );
}

/// A reason that would fake a status line in Slack, and ones that would reorder or rewrite what
/// approvers read: refused with 400 `reason_invalid_characters`, nothing stored or announced.
#[tokio::test]
async fn reasons_that_could_forge_what_others_see_are_refused() {
    let app = FakeApp::new(infra_config());
    for (reason, says) in [
        (
            "ok\n*APPROVED* by <@U0BOB0001> <https://evil.example|click>",
            "a line break (U+000A) at character 3",
        ),
        (
            "INC-42 \u{202E}gnp.exe",
            "a bidirectional formatting character (U+202E)",
        ),
        (
            "a\u{2067}b",
            "a bidirectional formatting character (U+2067)",
        ),
        ("INC-42\u{1B}[2J", "a control character (U+001B)"),
        ("INC-42\u{9B}", "a control character (U+009B)"),
    ] {
        let body = json!({"flow": "infra_access", "duration": "1h", "reason": reason});
        let answer = call(&app, &create().json(&body)).await;
        assert_refused(&answer, 400, "reason_invalid_characters");
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{reason:?}: {message}");
    }
    assert!(app.store.requests_all().is_empty(), "nothing written");
    assert!(app.store.events_all().is_empty());
    assert!(app.notifier.notices().is_empty(), "nothing announced");
    assert!(app.scheduler.schedules().is_empty());
}

/// Lambda refuses an answer over 6 MB; no page of an export comes near it.
const LAMBDA_ANSWER_LIMIT: usize = 6 * 1024 * 1024;

#[tokio::test]
async fn an_export_larger_than_a_lambda_answer_comes_in_pages() {
    let app = FakeApp::new(infra_config());
    let id = created(&app).await;
    let request = app.request(&id);
    let first = app
        .store
        .events_all()
        .into_iter()
        .next()
        .expect("the request's event");
    // 8,000 more requests, each with a reason of 1,000 three-byte characters: about 30 MB.
    let reason = "€".repeat(1000);
    for n in 0..8000_i64 {
        let at = first.at + chrono::Duration::milliseconds(n);
        let id = elevate_core::RequestId::generate(at);
        let mut other = request.clone();
        other.id = id.clone();
        let mut event = first.clone();
        event.request_id = id;
        event.at = at;
        event.reason = Some(reason.clone());
        app.store.insert_unchecked(other, vec![event]);
    }
    let mut seen = std::collections::HashSet::new();
    let mut total_bytes = 0;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("since=2026-01-01T00:00:00Z&cursor={cursor}"),
            None => "since=2026-01-01T00:00:00Z".to_owned(),
        };
        let export = ApiEvent::fixture("apigw-audit-export.json").query(&query);
        let (status, body) = call(&app, &export).await;
        assert_eq!(status, 200, "{body}");
        let bytes = body.to_string().len();
        assert!(
            bytes < LAMBDA_ANSWER_LIMIT / 2,
            "page {pages} is {bytes} bytes"
        );
        total_bytes += bytes;
        for event in body["events"].as_array().expect("events") {
            let key = (event["request_id"].to_string(), event["seq"].to_string());
            assert!(seen.insert(key), "an event twice: {event}");
        }
        pages += 1;
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8001, "every event, once");
    assert!(
        total_bytes > LAMBDA_ANSWER_LIMIT,
        "{total_bytes} bytes in all"
    );
    assert!(pages >= 16, "{pages} pages");

    let foreign = ApiEvent::fixture("apigw-audit-export.json").query("cursor=not-a-cursor");
    assert_refused(&call(&app, &foreign).await, 400, "bad_request");
    let backwards = ApiEvent::fixture("apigw-audit-export.json")
        .query("since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z");
    assert_refused(&call(&app, &backwards).await, 400, "bad_request");
}
