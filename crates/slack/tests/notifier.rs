//! The Web API notifier against the recording stand-in: what Slack receives, how its answers
//! and failures come back as `NotifyError`s.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use elevate_core::model::{By, Terms};
use elevate_core::ports::{Notifier, NotifyError};
use elevate_core::{
    apply, open, Command, Config, Flow, NewRequest, Person, Request, RequestId, State,
};
use elevate_slack::standin::{SlackStandin, StandinState};
use elevate_slack::SlackNotifier;

const TOKEN: &str = "xoxb-test-token";
const CHANNEL: &str = "C0APPROVALS";
const WAIT: Duration = Duration::from_secs(5);

const CONFIG: &str = r#"
[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[flows]]
name = "infra_access"
max_duration = "4h"
[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]
[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"
"#;

struct Fixture {
    flow: Flow,
    alice: Person,
}

fn fixture() -> Fixture {
    let config = Config::parse(CONFIG).expect("config");
    Fixture {
        flow: config.flow("infra_access").expect("flow").clone(),
        alice: config.person("alice").expect("alice").clone(),
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn pending() -> Request {
    let f = fixture();
    let new = NewRequest {
        flow: "infra_access".into(),
        target: "admins".into(),
        requester: "alice".into(),
        reason: "debug prod incident #42".into(),
        duration: Duration::from_secs(3600),
        pending_timeout: Duration::from_secs(1800),
        approvals_required: 1,
        terms: Terms {
            target: f.flow.targets[0].clone(),
            person: f.alice.clone(),
        },
    };
    open(
        RequestId::generate(now()),
        new,
        &format!("arn:aws:iam::123456789012:user/{}", f.alice.iam_user),
        now(),
    )
    .0
}

async fn standin() -> (SlackStandin, SlackNotifier) {
    let standin = SlackStandin::start(TOKEN).await.expect("start stand-in");
    let notifier = SlackNotifier::new(standin.base_url(), TOKEN);
    (standin, notifier)
}

fn button_values(message: &elevate_slack::standin::PostedMessage) -> Vec<(String, String)> {
    message
        .buttons()
        .into_iter()
        .map(|b| (b.action_id, b.value.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn announce_posts_the_request_with_buttons_and_returns_where() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let request = pending();

    let message = notifier
        .announce(&request, &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect("announce");

    assert_eq!(message.channel, CHANNEL);
    let posted = standin.messages(CHANNEL);
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].ts, message.ts);
    assert!(posted[0]
        .text
        .contains("alice requests infra_access on admins for 1h"));
    assert_eq!(
        button_values(&posted[0]),
        vec![
            ("approve".to_owned(), request.id.to_string()),
            ("deny".to_owned(), request.id.to_string()),
        ]
    );
    let calls = standin.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "chat.postMessage");
    assert!(calls[0].is_ok());
    assert_eq!(calls[0].body["channel"], CHANNEL);
    assert!(
        !calls[0].body.to_string().contains(TOKEN),
        "the token travels only in the header"
    );
}

#[tokio::test]
async fn update_rewrites_the_announcement_in_place() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let request = pending();
    let message = notifier
        .announce(&request, &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect("announce");

    let approved = apply(
        &request,
        Command::Approve { reason: None },
        // bob clicks Approve in Slack.
        &By::person("bob", "slack:T0ELEVATE/U0BOB0001"),
        now(),
    )
    .expect("approve")
    .request;
    let active = apply(
        &approved,
        Command::Activate,
        &By::system("escalate", "lambda:elevate-escalate"),
        now(),
    )
    .expect("activate")
    .request;
    assert_eq!(active.state, State::Active);
    notifier
        .update(&approved, &f.flow, &f.alice, &message)
        .await
        .expect("update approved");
    notifier
        .update(&active, &f.flow, &f.alice, &message)
        .await
        .expect("update active");

    let posted = standin.messages(CHANNEL);
    assert_eq!(posted.len(), 1, "updated, not posted again");
    let current = &posted[0];
    assert_eq!(current.ts, message.ts);
    assert_eq!(current.edits, 2);
    assert!(current.buttons().is_empty(), "no buttons once decided");
    let text = current.all_text();
    assert!(text.contains("*ACTIVE* until"), "{text}");
    assert!(text.contains("approved by bob"), "{text}");
    assert!(current.text.contains("ACTIVE"));

    let methods: Vec<_> = standin.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["chat.postMessage", "chat.update", "chat.update"]);
}

#[tokio::test]
async fn tell_sends_a_direct_message_and_tell_privately_an_ephemeral_one() {
    let (standin, notifier) = standin().await;
    let f = fixture();

    notifier
        .tell(&f.alice, &pending(), "Your access to admins is ACTIVE")
        .await
        .expect("tell");
    notifier
        .tell_privately(CHANNEL, "U0BOB0001", "You cannot approve your own request")
        .await
        .expect("tell privately");

    let dm = standin.messages("U0ALICE01");
    assert_eq!(dm.len(), 1);
    assert_eq!(dm[0].text, "Your access to admins is ACTIVE");
    assert_eq!(dm[0].visible_to, None);

    let ephemeral = standin.messages(CHANNEL);
    assert_eq!(ephemeral.len(), 1);
    assert_eq!(ephemeral[0].visible_to.as_deref(), Some("U0BOB0001"));
    assert_eq!(ephemeral[0].text, "You cannot approve your own request");

    let calls = standin.calls();
    assert_eq!(calls[1].method, "chat.postEphemeral");
    assert_eq!(calls[1].body["user"], "U0BOB0001");
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let notifier = SlackNotifier::new(standin.base_url(), "xoxb-wrong");
    let f = fixture();

    let err = notifier
        .announce(&pending(), &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, NotifyError::Refused(e) if e.contains("invalid_auth")),
        "{err:?}"
    );
    let err = notifier
        .tell(&f.alice, &pending(), "hi")
        .await
        .expect_err("refused");
    assert!(matches!(err, NotifyError::Refused(_)));

    assert!(standin.messages(CHANNEL).is_empty());
    let calls = standin.calls();
    assert_eq!(calls.len(), 2, "refused calls are recorded too");
    assert_eq!(calls[0].error.as_deref(), Some("invalid_auth"));
}

#[tokio::test]
async fn slack_refusals_and_transient_errors_are_told_apart() {
    let (standin, notifier) = standin().await;
    let f = fixture();

    let missing = elevate_core::MessageRef {
        channel: CHANNEL.into(),
        ts: "1.000001".into(),
    };
    let err = notifier
        .update(&pending(), &f.flow, &f.alice, &missing)
        .await
        .expect_err("no message");
    assert!(
        matches!(&err, NotifyError::Refused(e) if e.contains("message_not_found")),
        "{err:?}"
    );

    standin.state().set_failure(Some("channel_not_found"));
    let err = notifier
        .tell(&f.alice, &pending(), "hi")
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, NotifyError::Refused(e) if e.contains("channel_not_found")),
        "{err:?}"
    );

    standin.state().set_failure(Some("ratelimited"));
    let err = notifier
        .tell(&f.alice, &pending(), "hi")
        .await
        .expect_err("rate limited");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");

    standin.state().set_failure(None);
    notifier
        .tell(&f.alice, &pending(), "hi")
        .await
        .expect("works again");
}

#[tokio::test]
async fn a_stand_in_that_is_down_is_unavailable() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    notifier
        .tell(&f.alice, &pending(), "before")
        .await
        .expect("up");
    standin.stop().await;

    let err = notifier
        .tell(&f.alice, &pending(), "after")
        .await
        .expect_err("down");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");

    // Nothing listening at all.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let nowhere = SlackNotifier::new(format!("http://127.0.0.1:{port}/api"), TOKEN);
    let err = nowhere
        .announce(&pending(), &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect_err("down");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn dropping_the_stand_in_closes_its_port() {
    let (standin, notifier) = standin().await;
    let state: StandinState = standin.state().clone();
    drop(standin);
    let f = fixture();
    let deadline = Instant::now() + WAIT;
    loop {
        match notifier.tell(&f.alice, &pending(), "anyone?").await {
            Err(NotifyError::Unavailable(_)) => break,
            other => assert!(Instant::now() < deadline, "still answering: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The state outlives the server, so the local gateway can keep it across restarts.
    let _ = state.calls();
}

#[tokio::test]
async fn a_slow_slack_times_out_as_unavailable() {
    let (standin, notifier) = standin().await;
    let notifier = notifier.with_timeout(Duration::from_millis(200));
    standin.state().set_delay(Duration::from_secs(2));
    let f = fixture();

    let started = Instant::now();
    let err = notifier
        .tell(&f.alice, &pending(), "slow")
        .await
        .expect_err("timeout");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn answers_that_are_not_slack_are_unavailable() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    // Wrong base: the server answers 404 instead of a Web API answer.
    let notifier = SlackNotifier::new(format!("http://{}/not-api", standin.addr()), TOKEN);
    let err = notifier
        .tell(&fixture().alice, &pending(), "hi")
        .await
        .expect_err("404");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn the_token_never_shows_in_debug_output() {
    let notifier = SlackNotifier::new("http://127.0.0.1:9/api", TOKEN);
    let debug = format!("{notifier:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("redacted"));
}

#[tokio::test]
async fn stand_in_answers_like_slack() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let client = reqwest::Client::new();
    let call = |method: &str, token: Option<&str>, body: &str| {
        let mut builder = client
            .post(format!("{}/{method}", standin.base_url()))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        async move {
            let response = builder.send().await.expect("send");
            assert_eq!(response.status(), 200, "Slack answers errors with HTTP 200");
            response.json::<serde_json::Value>().await.expect("json")
        }
    };

    let answer = call("chat.postMessage", None, r#"{"channel":"C1","text":"x"}"#).await;
    assert_eq!(answer["error"], "not_authed");
    let answer = call("chat.postMessage", Some(TOKEN), "not json").await;
    assert_eq!(answer["error"], "invalid_json");
    let answer = call("chat.postMessage", Some(TOKEN), r#"{"channel":"C1"}"#).await;
    assert_eq!(answer["error"], "no_text");
    let answer = call("chat.postMessage", Some(TOKEN), r#"{"text":"x"}"#).await;
    assert_eq!(answer["error"], "channel_not_found");

    let mut last = String::new();
    for i in 0..20 {
        let answer = call(
            "chat.postMessage",
            Some(TOKEN),
            &format!(r#"{{"channel":"C1","text":"m{i}"}}"#),
        )
        .await;
        assert_eq!(answer["ok"], true);
        assert_eq!(answer["channel"], "C1");
        let ts = answer["ts"].as_str().expect("ts").to_owned();
        let (secs, micros) = ts.split_once('.').expect("secs.micros");
        assert!(secs.len() >= 10 && micros.len() == 6, "{ts}");
        let key = |t: &str| {
            t.split_once('.').map(|(s, m)| {
                (
                    s.parse::<i64>().expect("secs"),
                    m.parse::<i64>().expect("micros"),
                )
            })
        };
        assert!(
            last.is_empty() || key(&ts) > key(&last),
            "{ts} after {last}"
        );
        last = ts;
    }

    let answer = call(
        "chat.postEphemeral",
        Some(TOKEN),
        r#"{"channel":"C1","user":"U1","text":"psst"}"#,
    )
    .await;
    assert_eq!(answer["ok"], true);
    let ephemeral_ts = answer["message_ts"]
        .as_str()
        .expect("message_ts")
        .to_owned();
    let answer = call(
        "chat.update",
        Some(TOKEN),
        &format!(r#"{{"channel":"C1","ts":"{ephemeral_ts}","text":"y"}}"#),
    )
    .await;
    assert_eq!(answer["error"], "cant_update_message");
    let answer = call(
        "chat.update",
        Some(TOKEN),
        &format!(r#"{{"channel":"C2","ts":"{last}","text":"y"}}"#),
    )
    .await;
    assert_eq!(answer["error"], "message_not_found");
    let answer = call(
        "chat.update",
        Some(TOKEN),
        &format!(r#"{{"channel":"C1","ts":"{last}","text":"edited"}}"#),
    )
    .await;
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["ts"], last.as_str());
    assert_eq!(
        standin.state().message("C1", &last).expect("message").text,
        "edited"
    );
    assert_eq!(standin.messages("C1").len(), 21);
}

#[tokio::test]
async fn wait_for_wakes_up_on_new_calls_and_gives_up_after_its_timeout() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let state = standin.state().clone();

    let waiter = tokio::spawn(async move {
        state
            .wait_for(|r| r.messages_in("U0ALICE01").count() == 2, WAIT)
            .await
    });
    notifier
        .tell(&f.alice, &pending(), "one")
        .await
        .expect("tell");
    notifier
        .tell(&f.alice, &pending(), "two")
        .await
        .expect("tell");
    let recording = waiter.await.expect("join").expect("condition met");
    assert_eq!(recording.messages_in("U0ALICE01").count(), 2);

    let started = Instant::now();
    let never = standin
        .wait_for(|r| r.calls.len() > 100, Duration::from_millis(100))
        .await;
    assert!(never.is_none());
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn router_composes_with_other_routes() {
    use axum::routing::get;

    let state = StandinState::new(TOKEN);
    let app = axum::Router::new()
        .route("/", get(|| async { "local gateway page" }))
        .merge(elevate_slack::standin::router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let notifier = SlackNotifier::new(format!("http://{addr}/api"), TOKEN);
    let f = fixture();
    let message = notifier
        .announce(&pending(), &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect("announce");
    assert_eq!(state.messages(CHANNEL)[0].ts, message.ts);
    let page = reqwest::get(format!("http://{addr}/"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert_eq!(page, "local gateway page");
    server.abort();
}

/// A reason that, were it markup, would start a line with a bolded fake status, mention bob
/// and hide a link behind "click".
const FORGERY: &str = "ok\n*APPROVED* by <@U0BOB0001> <https://evil.example|click>";
/// The same, as it must show: as typed, on one line.
const FORGERY_SHOWN: &str = "ok *APPROVED* by <@U0BOB0001> <https://evil.example|click>";

/// What Slack parses as markup in `message` holds none of the forgery as live markup: no
/// mention, no link, no line of its own.
fn assert_no_forged_markup(message: &elevate_slack::standin::PostedMessage) {
    for text in message.markup_texts() {
        assert!(!text.contains("<@U0BOB0001"), "a mention in markup: {text}");
        assert!(!text.contains("<https://"), "a link in markup: {text}");
        assert!(!text.contains("\n*APPROVED*"), "a line in markup: {text}");
    }
}

#[tokio::test]
async fn forged_reasons_are_inert_plain_text_in_the_channel_message_and_its_updates() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let mut request = pending();
    request.reason = FORGERY.into();
    let message = notifier
        .announce(&request, &f.flow, &f.alice, &f.flow.approvers.channel)
        .await
        .expect("announce");
    let announced = &standin.messages(CHANNEL)[0];
    assert_no_forged_markup(announced);
    assert!(
        announced.plain_texts().iter().any(|t| t == FORGERY_SHOWN),
        "{:?}",
        announced.plain_texts()
    );

    let denied = apply(
        &request,
        Command::Deny {
            reason: Some(FORGERY.into()),
        },
        &By::person("bob", "slack:T0ELEVATE/U0BOB0001"),
        now(),
    )
    .expect("deny")
    .request;
    notifier
        .update(&denied, &f.flow, &f.alice, &message)
        .await
        .expect("update");
    let current = standin
        .state()
        .message(CHANNEL, &message.ts)
        .expect("message");
    assert_no_forged_markup(&current);
    for text in announced
        .markup_texts()
        .iter()
        .chain(&current.markup_texts())
    {
        assert!(
            !text.contains("evil.example"),
            "user text in markup: {text}"
        );
    }
    let shown: Vec<_> = current
        .plain_texts()
        .into_iter()
        .filter(|t| t == FORGERY_SHOWN)
        .collect();
    assert_eq!(
        shown.len(),
        2,
        "the request's reason and bob's, each on its own"
    );
    assert!(current.all_text().contains("*DENIED* by bob"));
}

#[tokio::test]
async fn direct_and_ephemeral_messages_show_quoted_user_text_as_inert_plain_text() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let text = format!("bob denied your infra_access request: {FORGERY}");
    notifier
        .tell(&f.alice, &pending(), &text)
        .await
        .expect("tell");
    notifier
        .tell_privately(CHANNEL, "U0BOB0001", &format!("Not done: {FORGERY}"))
        .await
        .expect("tell privately");

    let dm = &standin.messages("U0ALICE01")[0];
    assert_no_forged_markup(dm);
    assert_eq!(
        dm.plain_texts(),
        [format!(
            "bob denied your infra_access request: {FORGERY_SHOWN}"
        )]
    );
    assert_eq!(
        dm.text,
        "bob denied your infra_access request: ok *APPROVED* by &lt;@U0BOB0001&gt; \
         &lt;https://evil.example|click&gt;",
        "the fallback is one escaped line"
    );
    let ephemeral = &standin.messages(CHANNEL)[0];
    assert_no_forged_markup(ephemeral);
    assert_eq!(
        ephemeral.plain_texts(),
        [format!("Not done: {FORGERY_SHOWN}")]
    );

    let calls = standin.calls();
    let tell = &calls[0].body;
    assert_eq!(
        tell["mrkdwn"], false,
        "the fallback is not parsed as mrkdwn"
    );
    assert_eq!(tell["parse"], "none");
    assert_eq!(tell["unfurl_links"], false);
    assert_eq!(tell["unfurl_media"], false);
    assert_eq!(tell["blocks"][0]["text"]["emoji"], false);
    assert_eq!(calls[1].body["parse"], "none");
}

#[tokio::test]
async fn stand_in_refuses_text_objects_slack_would() {
    let standin = SlackStandin::start(TOKEN).await.expect("start");
    let client = reqwest::Client::new();
    for text in [String::new(), "x".repeat(3001)] {
        let body = serde_json::json!({
            "channel": "C1",
            "text": "fallback",
            "blocks": [{ "type": "section", "text": { "type": "plain_text", "text": text } }],
        });
        let answer: serde_json::Value = client
            .post(format!("{}/chat.postMessage", standin.base_url()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["error"], "invalid_blocks", "{} chars", text.len());
    }
    assert!(standin.messages("C1").is_empty());
}

#[tokio::test]
async fn a_reminder_replies_in_the_thread_for_the_channel_and_mentions_who_it_pings() {
    let (standin, notifier) = standin().await;
    let f = fixture();
    let request = pending();
    let message = notifier
        .announce(&request, &f.flow, &f.alice, "C0BACKUP")
        .await
        .expect("announce");
    assert_eq!(message.channel, "C0BACKUP");

    notifier
        .remind(
            "C0BACKUP",
            Some(&message.ts),
            "Request waited 20m: <!channel> *bold*",
            &["U0BOB0001".to_owned(), "U0X|<!channel>".to_owned()],
        )
        .await
        .expect("remind");
    let posted = standin.messages("C0BACKUP");
    assert_eq!(posted.len(), 2);
    let reply = &posted[1];
    assert_eq!(reply.thread_ts.as_deref(), Some(message.ts.as_str()));
    let calls = standin.calls();
    let body = &calls.last().expect("a call").body;
    assert_eq!(body["reply_broadcast"], true);
    assert_eq!(body["parse"], "none");
    // The text is plain; only the mention block is mrkdwn, and holds nothing but mentions.
    let blocks = reply.blocks.as_array().expect("blocks");
    let mrkdwn: Vec<&str> = blocks
        .iter()
        .filter(|b| b["text"]["type"] == "mrkdwn")
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    assert_eq!(mrkdwn, ["<@U0BOB0001>"]);
    assert!(reply.all_text().contains("<!channel> *bold*"));

    // Without a thread, a message of its own; a thread that is not there is Slack's refusal.
    notifier
        .remind(CHANNEL, None, "Request waited", &[])
        .await
        .expect("remind");
    assert_eq!(standin.messages(CHANNEL)[0].thread_ts, None);
    let missing = notifier
        .remind(CHANNEL, Some("1.000001"), "Request waited", &[])
        .await;
    assert!(
        matches!(&missing, Err(NotifyError::Refused(why)) if why.contains("thread_not_found")),
        "{missing:?}"
    );
    standin.stop().await;
}
