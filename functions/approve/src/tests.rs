//! The approve function against real-shaped Slack and API Gateway events and the fakes.

use elevate_core::service::{self, Submission};
use elevate_core::testing::Notice;
use elevate_core::testing::{infra_config, infra_config_with, FakeApp};
use elevate_core::{Action, RequestId, State};
use elevate_http::testing::{
    body_json, slack_fixture_body, ApiEvent, ALICE_ARN, BOB_ARN, DAVE_ARN, FIXTURE_ID, MALLORY_ARN,
};
use serde_json::{json, Value};

use crate::handle;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const APPROVE: &str = "slack-interaction-approve.json";
const DENY: &str = "slack-interaction-deny.json";

async fn pending(app: &FakeApp) -> RequestId {
    let alice = app.app.config.person("alice").expect("alice").clone();
    let submission = Submission {
        flow: "infra_access".into(),
        target: None,
        account: None,
        duration: std::time::Duration::from_secs(3600),
        reason: "INC-4211".into(),
    };
    service::submit(
        &app.app,
        &elevate_core::testing::caller_of(&alice),
        submission,
    )
    .await
    .expect("submit")
    .id
}

/// The views opened, shared with the test.
#[derive(Clone, Default)]
struct RecordingViews(std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>);

#[async_trait::async_trait]
impl crate::Views for RecordingViews {
    async fn open(
        &self,
        trigger_id: &str,
        view: &Value,
    ) -> Result<(), elevate_core::ports::NotifyError> {
        self.0
            .lock()
            .expect("views")
            .push((trigger_id.to_owned(), view.clone()));
        Ok(())
    }
}

/// The approve function's answer to `event`; then the follow-ups it handed over run, as
/// Lambda runs them after the answer.
async fn call(app: &FakeApp, event: &ApiEvent) -> (u16, Value) {
    call_with(app, event, &RecordingViews::default()).await
}

async fn call_with(app: &FakeApp, event: &ApiEvent, views: &RecordingViews) -> (u16, Value) {
    let slack = crate::Slack {
        signing_secret: SECRET.to_owned(),
        views: Box::new(views.clone()),
    };
    let response = handle(&app.app, &slack, event.request()).await;
    let answer = (response.status().as_u16(), body_json(&response));
    app.run_follow_ups().await;
    answer
}

fn now(app: &FakeApp) -> i64 {
    use elevate_core::ports::Clock;
    app.clock.now().timestamp()
}

fn click(app: &FakeApp, fixture: &str, id: &RequestId, slack_user: &str) -> ApiEvent {
    ApiEvent::slack_click(fixture, id.as_str(), slack_user, SECRET, now(app))
}

fn escalations(app: &FakeApp) -> usize {
    app.escalation.started().len()
}

fn private_notes(app: &FakeApp) -> Vec<String> {
    app.notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::TellPrivately { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_signed_approve_click_approves_and_starts_the_escalation() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let (status, body) = call(&app, &click(&app, APPROVE, &id, "U0BOB0001")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, Value::Null, "Slack gets an empty 200");

    let request = app.request(&id);
    assert_eq!(request.state, State::Approved);
    assert_eq!(request.decided_by.as_deref(), Some("bob"));
    assert_eq!(app.escalation.started(), vec![id.clone()]);
    assert!(app
        .scheduler
        .schedule_named(&format!("timeout-{id}"))
        .is_none());
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Update { request, .. } if request.state == State::Approved
    )));
}

#[tokio::test]
async fn the_body_is_verified_exactly_as_received_plain_or_base64() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let body = slack_fixture_body(DENY).replace(FIXTURE_ID, id.as_str());
    let signed = ApiEvent::slack_click(DENY, id.as_str(), "U0BOB0001", SECRET, now(&app));
    // The same bytes as a plain-text body (API Gateway does not always base64 a form).
    let mut plain = signed.clone().body(Some(&body));
    plain.0["headers"] = signed.0["headers"].clone();
    let (status, answer) = call(&app, &plain).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(app.request(&id).state, State::Denied);
    assert_eq!(escalations(&app), 0);
}

#[tokio::test]
async fn forged_and_stale_clicks_are_refused_and_change_nothing() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let notices = app.notifier.notices().len();
    let body = slack_fixture_body(APPROVE).replace(FIXTURE_ID, id.as_str());
    let at = now(&app);

    let other_secret = ApiEvent::fixture(APPROVE).slack_body(body.as_bytes(), "not-the-secret", at);
    let stale = ApiEvent::fixture(APPROVE).slack_body(body.as_bytes(), SECRET, at - 301);
    let future = ApiEvent::fixture(APPROVE).slack_body(body.as_bytes(), SECRET, at + 301);
    // Signed by Slack for a deny on this request, then edited into an approve.
    let deny = slack_fixture_body(DENY).replace(FIXTURE_ID, id.as_str());
    let mut edited = ApiEvent::fixture(APPROVE).slack_body(deny.as_bytes(), SECRET, at);
    let forged = ApiEvent::fixture(APPROVE).slack_body(body.as_bytes(), SECRET, at);
    edited.0["body"] = forged.0["body"].clone();
    // The fixture's placeholder headers, unsigned.
    let placeholder = {
        let mut event = forged.clone();
        event.0["headers"] = ApiEvent::fixture(APPROVE).0["headers"].clone();
        event
    };
    let mut no_headers = forged.clone();
    if let Some(headers) = no_headers.0["headers"].as_object_mut() {
        headers.remove("x-slack-signature");
        headers.remove("x-slack-request-timestamp");
    }

    for event in [other_secret, stale, future, edited, placeholder, no_headers] {
        let (status, answer) = call(&app, &event).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"], "bad_signature");
    }
    assert_eq!(app.request(&id).state, State::Pending);
    assert_eq!(escalations(&app), 0);
    assert_eq!(
        app.notifier.notices().len(),
        notices,
        "nobody was told anything"
    );
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let (status, _) = call(&app, &click(&app, APPROVE, &id, "U0ALICE01")).await;
    assert_eq!(
        status, 200,
        "refusals are told privately, not as an HTTP error"
    );
    assert_eq!(app.request(&id).state, State::Pending);
    assert_eq!(escalations(&app), 0);
    let notes = private_notes(&app);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("own request"), "{notes:?}");
}

#[tokio::test]
async fn ineligible_and_unknown_slack_users_are_told_why() {
    let app = FakeApp::new(infra_config_with(""));
    let id = pending(&app).await;
    for user in ["U0DAVE001", "U0STRANGER"] {
        let (status, _) = call(&app, &click(&app, APPROVE, &id, user)).await;
        assert_eq!(status, 200);
    }
    assert_eq!(app.request(&id).state, State::Pending);
    let notes = private_notes(&app);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("not an approver"), "{notes:?}");
    assert!(notes[1].contains("not a person"), "{notes:?}");
}

#[tokio::test]
async fn a_double_approval_escalates_once() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let first = click(&app, APPROVE, &id, "U0BOB0001");
    assert_eq!(call(&app, &first).await.0, 200);
    // The same click delivered again (Slack retries), then alice (an approver too, but the
    // requester) and a deny by bob.
    assert_eq!(call(&app, &first).await.0, 200);
    assert_eq!(
        call(&app, &click(&app, DENY, &id, "U0BOB0001")).await.0,
        200
    );

    assert_eq!(app.request(&id).state, State::Approved);
    assert_eq!(escalations(&app), 1);
    let approvals = app
        .store
        .events_all()
        .iter()
        .filter(|e| e.request_id == id && e.action == Action::Approve)
        .count();
    assert_eq!(approvals, 1);
    let notes = private_notes(&app);
    assert_eq!(notes.len(), 2);
    assert!(
        notes.iter().all(|n| n.contains("already APPROVED by bob")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn clicks_on_unknown_requests_and_other_interactions() {
    let app = FakeApp::new(infra_config());
    let missing = RequestId::generate(elevate_core::testing::FakeClock::start());
    let (status, _) = call(&app, &click(&app, APPROVE, &missing, "U0BOB0001")).await;
    assert_eq!(status, 200);
    assert!(private_notes(&app)[0].contains("not found"));

    let at = now(&app);
    let shortcut = r#"{"type":"shortcut","user":{"id":"U0BOB0001"},"callback_id":"x"}"#;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", shortcut)
        .finish();
    let event = ApiEvent::fixture(APPROVE).slack_body(form.as_bytes(), SECRET, at);
    assert_eq!(call(&app, &event).await.0, 200, "ignored");

    let event = ApiEvent::fixture(APPROVE).slack_body(b"payload=%7Bnot json", SECRET, at);
    let (status, answer) = call(&app, &event).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "bad_request");
}

#[tokio::test]
async fn a_store_fault_during_a_click_is_a_500() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    app.store.fail_next(1);
    let (status, answer) = call(&app, &click(&app, APPROVE, &id, "U0BOB0001")).await;
    assert_eq!(status, 500);
    assert_eq!(
        answer,
        json!({"error": "internal", "message": "internal error"})
    );
}

#[tokio::test]
async fn approve_and_deny_from_the_cli() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let approve = ApiEvent::fixture("apigw-approve-request.json").id(id.as_str());

    for (event, status, code) in [
        (approve.clone().caller(MALLORY_ARN), 403, "unknown_caller"),
        (approve.clone().caller(ALICE_ARN), 403, "self_approval"),
        (approve.clone().caller(DAVE_ARN), 403, "not_an_approver"),
        (
            approve.clone().body(Some(r#"{"why":"x"}"#)),
            400,
            "bad_request",
        ),
        (
            ApiEvent::fixture("apigw-approve-request.json").id("nope"),
            400,
            "bad_request",
        ),
        (
            ApiEvent::fixture("apigw-approve-request.json"),
            404,
            "not_found",
        ),
    ] {
        let (got, answer) = call(&app, &event).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    assert_eq!(app.request(&id).state, State::Pending);

    let (status, answer) = call(&app, &approve.clone().caller(BOB_ARN)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["state"], "APPROVED");
    assert_eq!(answer["request"]["decision_reason"], "Matches INC-4211");
    assert_eq!(escalations(&app), 1);

    let deny = ApiEvent::fixture("apigw-deny-request.json").id(id.as_str());
    let (status, answer) = call(&app, &deny).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("conflict")),
        "{answer}"
    );

    let other = pending(&app).await;
    let deny = ApiEvent::fixture("apigw-deny-request.json")
        .id(other.as_str())
        .body(None);
    let (status, answer) = call(&app, &deny).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["state"], "DENIED");
    assert!(app
        .notifier
        .told("alice")
        .iter()
        .any(|t| t.contains("denied")));
}

/// `infra/elevate.toml` with its `[identity]` section replaced by `identity`.
fn config_with_identity(identity: &str) -> elevate_core::Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/elevate.toml");
    let text = std::fs::read_to_string(path).expect("infra/elevate.toml");
    let start = text.find("[identity]").expect("an [identity] section");
    let end = start + text[start..].find("\n\n").expect("the section's end");
    elevate_core::Config::parse(&format!("{}{identity}{}", &text[..start], &text[end..]))
        .expect("valid config")
}

/// The attacks of callers who choose their own name: an ordinary role's session named after
/// an approver, and an IAM user of the approver's name in another account. Each is refused
/// with the rule that refused it, and nothing is written.
#[tokio::test]
async fn callers_who_choose_their_own_name_cannot_approve() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let approve = ApiEvent::fixture("apigw-approve-request.json").id(id.as_str());
    let events_before = app.store.events_all().len();

    for (arn, rule) in [
        (
            "arn:aws:sts::123456789012:assumed-role/AnyRole/bob",
            "role `AnyRole` is not one of [identity] trusted_roles",
        ),
        (
            "arn:aws:iam::999999999999:user/bob",
            "belongs to account 999999999999",
        ),
        // A function's own role session: the session name is the function's, not a person's.
        (
            "arn:aws:sts::123456789012:assumed-role/elevate-approve-role/elevate-approve",
            "role `elevate-approve-role` is not one of [identity] trusted_roles",
        ),
        (
            "arn:aws:sts::123456789012:federated-user/bob",
            "is not an IAM user or assumed-role ARN",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/mallory@evil.example",
            "is not the name or email of any person",
        ),
    ] {
        let (status, answer) = call(&app, &approve.clone().caller(arn)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("unknown_caller")),
            "{arn}: {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(rule), "{arn}: {message}");
    }
    assert_eq!(app.request(&id).state, State::Pending);
    assert_eq!(app.store.events_all().len(), events_before);
    assert_eq!(escalations(&app), 0);
}

#[tokio::test]
async fn a_trusted_identity_center_session_named_by_email_approves_as_its_person() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let arn = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/bob@healthy-health.example";
    let approve = ApiEvent::fixture("apigw-approve-request.json")
        .id(id.as_str())
        .caller(arn);
    let (status, answer) = call(&app, &approve).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["decided_by"], "bob");
    let approval = app
        .store
        .events_all()
        .into_iter()
        .find(|e| e.request_id == id && e.action == Action::Approve)
        .expect("approval event");
    assert_eq!(approval.principal.as_deref(), Some(arn));
}

#[tokio::test]
async fn principals_of_a_listed_second_account_are_accepted_and_unlisted_ones_not() {
    let config = config_with_identity(
        "[identity]\naccounts = [\"123456789012\", \"210987654321\"]\ntrusted_roles = [\"AWSReservedSSO_*\"]",
    );
    let app = FakeApp::new(config);
    let id = pending(&app).await;
    let approve = ApiEvent::fixture("apigw-approve-request.json").id(id.as_str());
    let (status, answer) = call(
        &app,
        &approve.clone().caller("arn:aws:iam::999999999999:user/bob"),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(app.request(&id).state, State::Pending);

    let (status, answer) = call(&app, &approve.caller("arn:aws:iam::210987654321:user/bob")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["request"]["state"], "APPROVED");
}

#[tokio::test]
async fn iam_users_can_be_turned_off() {
    let config = config_with_identity("[identity]\niam_users = false");
    let app = FakeApp::new(config);
    let id = pending(&app).await;
    let approve = ApiEvent::fixture("apigw-approve-request.json")
        .id(id.as_str())
        .caller(BOB_ARN);
    let (status, answer) = call(&app, &approve).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("iam_users = false")),
        "{answer}"
    );
    assert_eq!(app.request(&id).state, State::Pending);
}

#[tokio::test]
async fn a_slack_click_records_the_workspace_and_user_as_principal() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let (status, _) = call(&app, &click(&app, APPROVE, &id, "U0BOB0001")).await;
    assert_eq!(status, 200);
    let approval = app
        .store
        .events_all()
        .into_iter()
        .find(|e| e.request_id == id && e.action == Action::Approve)
        .expect("approval event");
    let principal = approval.principal.expect("principal");
    assert!(
        principal.starts_with("slack:T") && principal.ends_with("/U0BOB0001"),
        "{principal}"
    );
}

/// A reason given with an approval or a denial that would fake a line in Slack or reorder what
/// the requester reads is refused with 400 `reason_invalid_characters` and decides nothing.
#[tokio::test]
async fn decision_reasons_that_could_forge_what_others_see_are_refused() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    for fixture in ["apigw-approve-request.json", "apigw-deny-request.json"] {
        for reason in [
            "ok\n*APPROVED* by <@U0BOB0001> <https://evil.example|click>",
            "fine \u{202E}deined",
        ] {
            let event = ApiEvent::fixture(fixture)
                .id(id.as_str())
                .caller(BOB_ARN)
                .json(&json!({ "reason": reason }));
            let (status, answer) = call(&app, &event).await;
            assert_eq!(
                (status, answer["error"].as_str()),
                (400, Some("reason_invalid_characters")),
                "{fixture} {reason:?}: {answer}"
            );
        }
    }
    assert_eq!(app.request(&id).state, State::Pending);
    assert_eq!(escalations(&app), 0);
    assert!(app.notifier.told("alice").is_empty());
}

/// A signed Slack call to `path` (`/slack/commands` or `/slack/interactions`) with `body`.
fn slack_call(app: &FakeApp, path: &str, body: &str) -> ApiEvent {
    let mut event = ApiEvent::fixture(APPROVE);
    event.0["rawPath"] = Value::from(path);
    event.0["routeKey"] = Value::from(format!("POST {path}"));
    event.0["requestContext"]["http"]["path"] = Value::from(path);
    event.0["requestContext"]["routeKey"] = Value::from(format!("POST {path}"));
    event.slack_body(body.as_bytes(), SECRET, now(app))
}

fn command(app: &FakeApp, user: &str, text: &str) -> ApiEvent {
    let body = elevate_slack::slash_command_body(
        "T0ELEVATE",
        user,
        "someone",
        "C0GENERAL",
        text,
        "1.2.trigger",
    );
    slack_call(app, "/slack/commands", &body)
}

fn form(
    access: Option<&str>,
    duration: Option<&str>,
    reason: Option<&str>,
) -> elevate_slack::RequestForm {
    elevate_slack::RequestForm {
        access: access.map(str::to_owned),
        duration: duration.map(str::to_owned),
        reason: reason.map(str::to_owned),
    }
}

/// alice submits the request form opened for her with `form`.
async fn submit_form(app: &FakeApp, user: &str, form: &elevate_slack::RequestForm) -> (u16, Value) {
    let person = app.app.config.person("alice").expect("alice");
    let mut view =
        elevate_slack::request_modal(&app.app.config, person, "C0GENERAL").expect("form");
    view["id"] = Value::from("V0FORM");
    let body = elevate_slack::view_submission_body(user, "alice", &view, form);
    call(app, &slack_call(app, "/slack/interactions", &body)).await
}

fn infra_admins() -> String {
    elevate_slack::access_value("infra_access", "admins", None)
}

#[tokio::test]
async fn the_command_opens_the_request_form_for_a_known_person() {
    let app = FakeApp::new(infra_config());
    let views = RecordingViews::default();
    let (status, body) = call_with(&app, &command(&app, "U0ALICE01", ""), &views).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, Value::Null, "an empty answer; the form is the answer");
    let opened = views.0.lock().expect("views").clone();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, "1.2.trigger");
    assert_eq!(opened[0].1["callback_id"], elevate_slack::REQUEST_CALLBACK);
    assert!(opened[0].1.to_string().contains(&infra_admins()));
    assert!(
        app.store.requests_all().is_empty(),
        "opening the form stores nothing"
    );
}

#[tokio::test]
async fn the_command_refuses_strangers_and_forgeries_and_helps_everyone_else() {
    let app = FakeApp::new(infra_config());
    let views = RecordingViews::default();
    let (status, body) = call_with(&app, &command(&app, "U0STRANGER", ""), &views).await;
    assert_eq!(status, 200);
    assert_eq!(body["response_type"], "ephemeral");
    assert!(body.to_string().contains("not a person"), "{body}");
    assert!(
        views.0.lock().expect("views").is_empty(),
        "no form for a stranger"
    );

    let mut forged = command(&app, "U0ALICE01", "");
    let other = command(&app, "U0BOB0001", "");
    forged.0["headers"]["x-slack-signature"] = other.0["headers"]["x-slack-signature"].clone();
    let (status, body) = call_with(&app, &forged, &views).await;
    assert_eq!(status, 401, "{body}");
    assert!(views.0.lock().expect("views").is_empty());

    let (status, body) = call(&app, &command(&app, "U0ALICE01", "frobnicate")).await;
    assert_eq!(status, 200);
    assert!(body.to_string().contains("frobnicate"), "{body}");
    assert!(body.to_string().contains("/elevate list"), "{body}");
}

#[tokio::test]
async fn the_list_command_answers_with_the_persons_own_requests() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let (status, body) = call(&app, &command(&app, "U0ALICE01", "list")).await;
    assert_eq!(status, 200);
    assert_eq!(body["response_type"], "ephemeral");
    assert!(body.to_string().contains(id.as_str()), "{body}");
    let (_, body) = call(&app, &command(&app, "U0BOB0001", "list")).await;
    assert!(
        !body.to_string().contains(id.as_str()),
        "bob sees only his: {body}"
    );
}

#[tokio::test]
async fn the_list_command_reads_the_newest_page_only() {
    let app = FakeApp::new(infra_config());
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(pending(&app).await);
        app.clock.advance(std::time::Duration::from_secs(60));
    }
    let reads = app.store.list_reads();
    let (status, body) = call(&app, &command(&app, "U0ALICE01", "list")).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.store.list_reads() - reads,
        21,
        "the newest 20 and one to know there are more"
    );
    let text = body.to_string();
    assert!(text.contains(ids[24].as_str()), "the newest: {body}");
    assert!(
        !text.contains(ids[4].as_str()),
        "not the 21st newest: {body}"
    );
    assert!(text.contains("older ones"), "{body}");
    assert_eq!(body["text"], "You have more than 20 requests.");
}

#[tokio::test]
async fn a_submitted_form_opens_the_request_and_announces_it_after_the_answer() {
    let app = FakeApp::new(infra_config());
    let (status, body) = submit_form(
        &app,
        "U0ALICE01",
        &form(
            Some(&infra_admins()),
            Some("1h"),
            Some("INC-4211: restore the export"),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, Value::Null, "an empty answer closes the form");
    let requests = app.store.requests_all();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.requester, "alice");
    assert_eq!(request.state, State::Pending);
    assert_eq!(request.target, "admins");
    assert_eq!(request.duration, std::time::Duration::from_secs(3600));
    assert_eq!(request.reason, "INC-4211: restore the export");
    assert!(request.message.is_some(), "announced by the follow-up");
    assert!(app
        .scheduler
        .schedule_named(&format!("timeout-{}", request.id))
        .is_some());
}

#[tokio::test]
async fn a_refused_form_shows_the_error_on_its_field_and_stores_nothing() {
    let app = FakeApp::new(infra_config());
    let admins = infra_admins();
    let cases = [
        (
            form(Some(&admins), Some("8h"), Some("INC-1")),
            "duration",
            "4h",
        ),
        (
            form(Some(&admins), Some("1h"), Some("   ")),
            "reason",
            "reason",
        ),
        (
            form(Some(&admins), Some("1h"), Some("a\u{1b}[31mred")),
            "reason",
            "character",
        ),
        (form(Some(&admins), Some("1h"), None), "reason", "reason"),
        (form(None, Some("1h"), Some("INC-1")), "access", "Choose"),
        (
            form(Some(&admins), None, Some("INC-1")),
            "duration",
            "Choose",
        ),
        (
            form(
                Some(&elevate_slack::access_value("prod_root", "admins", None)),
                Some("1h"),
                Some("INC-1"),
            ),
            "access",
            "prod_root",
        ),
    ];
    for (form, block, says) in cases {
        let (status, body) = submit_form(&app, "U0ALICE01", &form).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["response_action"], "errors", "{form:?}: {body}");
        let error = body["errors"][block].as_str().unwrap_or_default();
        assert!(error.contains(says), "{form:?}: `{block}` says {body}");
    }
    let (_, body) = submit_form(
        &app,
        "U0STRANGER",
        &form(Some(&admins), Some("1h"), Some("INC-1")),
    )
    .await;
    assert_eq!(body["response_action"], "errors", "{body}");
    assert!(body.to_string().contains("not a person"), "{body}");
    assert!(app.store.requests_all().is_empty());
    assert!(app.notifier.notices().is_empty());
}

#[tokio::test]
async fn end_access_now_revokes_as_the_requester() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    service::escalate(&app.app, &id)
        .await
        .expect("escalate")
        .expect("active");
    let body = elevate_slack::block_actions_body(
        "U0ALICE01",
        "alice",
        "D0ALICE",
        "1700000000.000200",
        elevate_slack::END_ACCESS_ACTION,
        id.as_str(),
    );
    let (status, answer) = call(&app, &slack_call(&app, "/slack/interactions", &body)).await;
    assert_eq!(status, 200, "{answer}");
    let request = app.request(&id);
    assert_eq!(request.state, State::Revoked);
    let events = app.store.events_all();
    let last = events
        .iter()
        .filter(|e| e.request_id == id)
        .max_by_key(|e| e.seq)
        .expect("events");
    assert_eq!(last.action, Action::Revoke);
    assert_eq!(last.principal.as_deref(), Some("slack:T0ELEVATE/U0ALICE01"));
}

#[tokio::test]
async fn follow_ups_and_odd_events_reach_the_function_as_events() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    let slack = crate::Slack {
        signing_secret: SECRET.to_owned(),
        views: Box::new(RecordingViews::default()),
    };
    let err = crate::handle_event(&app.app, &slack, json!({"hello": "world"}))
        .await
        .expect_err("not an event of approve's");
    assert!(err.to_string().contains("follow-up"), "{err}");
    let decided = json!({"follow_up": "decided", "request_id": id});
    crate::handle_event(&app.app, &slack, decided)
        .await
        .expect("a follow-up of a PENDING request only shows it");
    let missing =
        json!({"follow_up": "decided", "request_id": "01a211fc-a620-7d31-9f6e-2b7c4d8e1a06"});
    assert!(
        crate::handle_event(&app.app, &slack, missing)
            .await
            .is_err(),
        "a follow-up that fails is an error, so Lambda retries it"
    );
}

#[tokio::test]
async fn slack_is_answered_before_anything_slow_and_nothing_is_lost_after() {
    let app = FakeApp::new(infra_config());
    let id = pending(&app).await;
    app.notifier.clear();
    let slack = crate::Slack {
        signing_secret: SECRET.to_owned(),
        views: Box::new(RecordingViews::default()),
    };
    // The answer, before Lambda runs the follow-up.
    let response = handle(
        &app.app,
        &slack,
        click(&app, APPROVE, &id, "U0BOB0001").request(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.request(&id).state,
        State::Approved,
        "the decision is stored first"
    );
    assert!(
        app.notifier.notices().is_empty(),
        "no Slack call before the answer"
    );
    assert!(
        app.escalation.started().is_empty(),
        "no escalation before the answer"
    );
    assert_eq!(
        app.follow_ups.deferred(),
        [elevate_core::events::FollowUp::Decided {
            request_id: id.clone()
        }]
    );
    // The follow-up, as Lambda delivers it: the event approve receives.
    for work in app.follow_ups.take() {
        let event = serde_json::to_value(&work).expect("json");
        crate::handle_event(&app.app, &slack, event)
            .await
            .expect("follow-up");
    }
    assert_eq!(app.escalation.started(), std::slice::from_ref(&id));
    assert!(app.notifier.notices().iter().any(|n| matches!(
        n,
        Notice::Update { request, .. } if request.state == State::Approved
    )));
}

#[tokio::test]
async fn end_access_now_is_not_approves_to_run() {
    let app = FakeApp::new(infra_config());
    let id = app.approved().await;
    let slack = crate::Slack {
        signing_secret: SECRET.to_owned(),
        views: Box::new(RecordingViews::default()),
    };
    let event = json!({"follow_up": "end_access", "request_id": id, "team_id": "T0ELEVATE",
        "slack_user_id": "U0ALICE01", "channel": "D0ALICE"});
    let err = crate::handle_event(&app.app, &slack, event)
        .await
        .expect_err("revoke's");
    assert!(matches!(err, crate::ApproveError::NotMine), "{err}");
    assert_eq!(app.request(&id).state, State::Approved);
}
