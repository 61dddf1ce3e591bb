//! A Slack Web API stand-in for tests and the local stack: it answers `chat.postMessage`,
//! `chat.update`, `chat.postEphemeral` and `views.open` like Slack (HTTP 200, `{"ok":...}`),
//! checks the bot token, and records every call, the current content of every message and every
//! opened modal.
//!
//! Blocks and views are checked against Slack's documented shapes and limits ([`limits`]): what
//! real Slack would refuse is refused here too, with Slack's error (`invalid_blocks`,
//! `invalid_arguments`) and a `response_metadata.messages` entry saying what was wrong where.
//! Trigger ids work like Slack's: [`StandinState::issue_trigger`] hands one out (as an
//! interaction payload would), good for one `views.open` within 3 seconds.
//!
//! [`router`] is composable: the local gateway merges it with its own routes and reads the same
//! [`StandinState`]. [`SlackStandin::start`] serves it alone on an ephemeral port for tests.

pub mod limits;
#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use self::limits::MAX_MESSAGE_TEXT_CHARS;
pub use self::limits::{check_message_blocks, check_view};
use crate::interaction::Action;

/// How long a trigger id stays good: Slack's "trigger_id expires 3 seconds after it's sent".
const TRIGGER_LIFETIME: TimeDelta = TimeDelta::seconds(3);

/// One Web API call as the stand-in received it (the token is never recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `chat.postMessage`, `chat.update`, `chat.postEphemeral` or `views.open`.
    pub method: String,
    /// The JSON body; the raw text as a JSON string when it was not JSON.
    pub body: Value,
    pub at: DateTime<Utc>,
    /// The Slack error it was answered with, `None` when it succeeded.
    pub error: Option<String>,
    /// For refused blocks and views: what was wrong and where, as the answer's
    /// `response_metadata.messages` said it (without the `[ERROR] ` prefix).
    pub detail: Option<String>,
}

impl Call {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A message as it stands now, every `chat.update` applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    /// The channel it was posted to (a user id for direct messages).
    pub channel: String,
    pub ts: String,
    pub text: String,
    /// The Block Kit blocks (`[]` when it had none).
    pub blocks: Value,
    /// For ephemeral messages: the only user who sees it.
    pub visible_to: Option<String>,
    /// For a reply: the `ts` of the message it answers in a thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    pub posted_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    /// How many times `chat.update` rewrote it.
    pub edits: u32,
}

impl PostedMessage {
    /// The buttons of its `actions` blocks, as [`Action`]s a click would report.
    pub fn buttons(&self) -> Vec<Action> {
        self.blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().into_iter().flatten())
            .filter(|element| element["type"] == "button")
            .filter_map(|button| {
                Some(Action {
                    action_id: button["action_id"].as_str()?.to_owned(),
                    value: button["value"].as_str().map(str::to_owned),
                })
            })
            .collect()
    }

    /// What Slack reads as markup (mentions, links, formatting): the fallback `text` and every
    /// `mrkdwn` text object of the blocks.
    pub fn markup_texts(&self) -> Vec<String> {
        let mut texts = vec![self.text.clone()];
        texts.extend(text_objects(&self.blocks, "mrkdwn"));
        texts
    }

    /// The texts of the `plain_text` objects of the blocks (button labels included): shown as
    /// they are, nothing parsed.
    pub fn plain_texts(&self) -> Vec<String> {
        text_objects(&self.blocks, "plain_text")
    }

    /// Every text in the message: the fallback and all `text` fields of its blocks.
    pub fn all_text(&self) -> String {
        fn collect(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    for (key, inner) in map {
                        match (key.as_str(), inner) {
                            ("text", Value::String(text)) => {
                                out.push('\n');
                                out.push_str(text);
                            }
                            _ => collect(inner, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
                _ => {}
            }
        }
        let mut out = self.text.clone();
        collect(&self.blocks, &mut out);
        out
    }
}

/// A modal opened by `views.open`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenedView {
    /// Slack's view id: `V` and uppercase letters and digits.
    pub id: String,
    pub trigger_id: String,
    /// The user the trigger was issued for, who sees the modal.
    pub user_id: String,
    /// The view as Slack answered it: the one sent, with `id`, `state`, `hash` and the rest.
    pub view: Value,
    pub opened_at: DateTime<Utc>,
}

/// A snapshot of everything the stand-in has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recording {
    pub calls: Vec<Call>,
    /// In the order they were posted.
    pub messages: Vec<PostedMessage>,
    /// In the order they were opened.
    pub views: Vec<OpenedView>,
}

impl Recording {
    pub fn messages_in<'a>(&'a self, channel: &'a str) -> impl Iterator<Item = &'a PostedMessage> {
        self.messages.iter().filter(move |m| m.channel == channel)
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<&PostedMessage> {
        self.messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
    }
}

#[derive(Default)]
struct Inner {
    recording: Recording,
    /// Last ts handed out, in microseconds since the epoch.
    last_ts_micros: i64,
    failure: Option<String>,
    delay: Duration,
    /// Trigger ids handed out, by id.
    triggers: HashMap<String, Trigger>,
    /// How many trigger ids were handed out (their middle part).
    issued: u64,
}

struct Trigger {
    user_id: String,
    issued_at: DateTime<Utc>,
    used: bool,
}

struct Shared {
    bot_token: String,
    inner: Mutex<Inner>,
    /// Bumped after every call, so waiters wake up.
    changed: watch::Sender<u64>,
}

/// The stand-in's state: shared by the router and whoever inspects it. Cheap to clone.
#[derive(Clone)]
pub struct StandinState {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StandinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandinState").finish_non_exhaustive()
    }
}

/// Why a call was refused: Slack's error code and, for blocks and views, what was wrong.
#[derive(Debug)]
struct Refusal {
    error: String,
    detail: Option<String>,
}

impl Refusal {
    fn with_detail(error: &str, detail: String) -> Self {
        Self {
            error: error.to_owned(),
            detail: Some(detail),
        }
    }
}

impl From<&str> for Refusal {
    fn from(error: &str) -> Self {
        Self {
            error: error.to_owned(),
            detail: None,
        }
    }
}

type Outcome = Result<Value, Refusal>;

impl StandinState {
    /// A stand-in that accepts calls bearing `bot_token` only.
    pub fn new(bot_token: impl Into<String>) -> Self {
        Self {
            shared: Arc::new(Shared {
                bot_token: bot_token.into(),
                inner: Mutex::new(Inner::default()),
                changed: watch::Sender::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide what was recorded from the others.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn recording(&self) -> Recording {
        self.lock().recording.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().recording.calls.clone()
    }

    /// The messages of `channel` as they stand now (ephemeral ones included, see
    /// [`PostedMessage::visible_to`]), in the order they were posted.
    pub fn messages(&self, channel: &str) -> Vec<PostedMessage> {
        self.lock()
            .recording
            .messages_in(channel)
            .cloned()
            .collect()
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<PostedMessage> {
        self.lock().recording.message(channel, ts).cloned()
    }

    /// The modals opened so far, in the order they were opened.
    pub fn views(&self) -> Vec<OpenedView> {
        self.lock().recording.views.clone()
    }

    pub fn view(&self, id: &str) -> Option<OpenedView> {
        self.lock()
            .recording
            .views
            .iter()
            .find(|v| v.id == id)
            .cloned()
    }

    /// A new trigger id for `user_id`, as Slack puts one in an interaction or slash command
    /// payload (`<seconds>.<digits>.<hex>`): good for one `views.open` within 3 seconds.
    pub fn issue_trigger(&self, user_id: &str) -> String {
        let now = Utc::now();
        let mut inner = self.lock();
        inner.issued += 1;
        let id = format!(
            "{}.{}.{:012x}",
            now.timestamp(),
            inner.issued,
            random(inner.issued) & 0xffff_ffff_ffff
        );
        inner.triggers.insert(
            id.clone(),
            Trigger {
                user_id: user_id.to_owned(),
                issued_at: now,
                used: false,
            },
        );
        id
    }

    /// Waits until `predicate` holds for the recording, and returns the recording that
    /// satisfied it; `None` after `timeout`.
    pub async fn wait_for(
        &self,
        mut predicate: impl FnMut(&Recording) -> bool,
        timeout: Duration,
    ) -> Option<Recording> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.changed.subscribe();
        loop {
            let recording = self.recording();
            if predicate(&recording) {
                return Some(recording);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// While set, every call is answered `{"ok":false,"error":<error>}` (e.g. `ratelimited`,
    /// `channel_not_found`) and still recorded.
    pub fn set_failure(&self, error: Option<&str>) {
        self.lock().failure = error.map(str::to_owned);
    }

    /// Makes every answer wait `delay` first (to exercise client timeouts).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Forgets every call, message, view and trigger id (failure and delay settings stay).
    pub fn clear(&self) {
        {
            let mut inner = self.lock();
            inner.recording = Recording::default();
            inner.triggers.clear();
        }
        self.shared.changed.send_modify(|n| *n += 1);
    }

    async fn handle(
        &self,
        method: &str,
        headers: &HeaderMap,
        body: &[u8],
        act: fn(&mut Inner, &Value, DateTime<Utc>) -> Outcome,
    ) -> Json<Value> {
        // When Slack received it: a trigger id is judged then, however slow the answer.
        let now = Utc::now();
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let outcome = {
            let mut inner = self.lock();
            let outcome = match (token, &parsed, inner.failure.clone()) {
                (None, _, _) => Err(Refusal::from("not_authed")),
                (Some(token), _, _) if token != self.shared.bot_token => {
                    Err(Refusal::from("invalid_auth"))
                }
                (_, _, Some(failure)) => Err(Refusal::from(failure.as_str())),
                (_, Some(body @ Value::Object(_)), None) => act(&mut inner, body, now),
                (_, _, None) => Err(Refusal::from("invalid_json")),
            };
            let refusal = outcome.as_ref().err();
            inner.recording.calls.push(Call {
                method: method.to_owned(),
                body: parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(body).into())),
                at: now,
                error: refusal.map(|r| r.error.clone()),
                detail: refusal.and_then(|r| r.detail.clone()),
            });
            outcome
        };
        self.shared.changed.send_modify(|n| *n += 1);
        Json(match outcome {
            Ok(answer) => answer,
            Err(Refusal {
                error,
                detail: None,
            }) => json!({ "ok": false, "error": error }),
            Err(Refusal {
                error,
                detail: Some(detail),
            }) => json!({
                "ok": false,
                "error": error,
                "response_metadata": { "messages": [format!("[ERROR] {detail}")] },
            }),
        })
    }
}

/// The texts of the text objects of `kind` (`plain_text` or `mrkdwn`) anywhere in `value`.
fn text_objects(value: &Value, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    visit_text_objects(value, &mut |object_kind, text| {
        if object_kind == kind {
            out.push(text.to_owned());
        }
    });
    out
}

/// Calls `visit` with the type and text of every text object (`{"type": "plain_text" or
/// "mrkdwn", "text": ...}`) in `value`.
fn visit_text_objects(value: &Value, visit: &mut impl FnMut(&str, &str)) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(kind)), Some(Value::String(text))) =
                (map.get("type"), map.get("text"))
            {
                if kind == "plain_text" || kind == "mrkdwn" {
                    visit(kind, text);
                }
            }
            map.values()
                .for_each(|inner| visit_text_objects(inner, visit));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| visit_text_objects(item, visit)),
        _ => {}
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body[name].as_str().filter(|s| !s.is_empty())
}

/// A message's text and blocks, refused like Slack refuses them: without either (`no_text`),
/// with too long a text (`msg_too_long`), or with blocks Slack would not take
/// (`invalid_blocks`, see [`check_message_blocks`]).
fn content(body: &Value) -> Result<(String, Value), Refusal> {
    let text = field(body, "text").unwrap_or_default().to_owned();
    let invalid = |detail: &str| Refusal::with_detail("invalid_blocks", detail.to_owned());
    let blocks = match &body["blocks"] {
        Value::Array(blocks) => Value::Array(blocks.clone()),
        // Slack also takes blocks as a JSON string.
        Value::String(text) => match serde_json::from_str(text) {
            Ok(blocks @ Value::Array(_)) => blocks,
            _ => {
                return Err(invalid(
                    "blocks must be a JSON array [json-pointer:/blocks]",
                ))
            }
        },
        Value::Null => Value::Array(Vec::new()),
        _ => return Err(invalid("blocks must be an array [json-pointer:/blocks]")),
    };
    if text.is_empty() && blocks.as_array().is_none_or(Vec::is_empty) {
        return Err("no_text".into());
    }
    if text.chars().count() > MAX_MESSAGE_TEXT_CHARS {
        return Err("msg_too_long".into());
    }
    check_message_blocks(&blocks).map_err(|detail| invalid(&detail))?;
    Ok((text, blocks))
}

/// A view as `views.open` takes it: an object, or one encoded as a JSON string.
fn view_argument(body: &Value) -> Result<Value, Refusal> {
    let invalid = |detail: &str| Refusal::with_detail("invalid_arguments", detail.to_owned());
    match &body["view"] {
        view @ Value::Object(_) => Ok(view.clone()),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(view @ Value::Object(_)) => Ok(view),
            _ => Err(invalid("view must be a JSON object [json-pointer:/view]")),
        },
        Value::Null => Err(invalid("missing required field: view [json-pointer:/view]")),
        _ => Err(invalid("view must be a JSON object [json-pointer:/view]")),
    }
}

/// A number no test can guess, different on every call.
fn random(salt: u64) -> u64 {
    RandomState::new().hash_one(salt)
}

/// Slack's view id: `V` and ten uppercase letters and digits.
fn view_id(salt: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = random(salt);
    let mut id = String::from("V");
    for _ in 0..10 {
        id.push(char::from(ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
    id
}

impl Inner {
    /// Slack's ts: seconds and microseconds, unique and increasing within a workspace.
    fn next_ts(&mut self, now: DateTime<Utc>) -> String {
        let micros = now.timestamp_micros().max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!(
            "{}.{:06}",
            micros.div_euclid(1_000_000),
            micros.rem_euclid(1_000_000)
        )
    }

    fn post_message(&mut self, body: &Value, now: DateTime<Utc>) -> Outcome {
        let channel = field(body, "channel")
            .ok_or("channel_not_found")?
            .to_owned();
        let (text, blocks) = content(body)?;
        // A reply goes under a message of the same channel, as Slack's does.
        let thread_ts = field(body, "thread_ts").map(str::to_owned);
        if let Some(parent) = &thread_ts {
            let found = self
                .recording
                .messages
                .iter()
                .any(|m| m.channel == channel && m.ts == *parent && m.visible_to.is_none());
            if !found {
                return Err("thread_not_found".into());
            }
        }
        let ts = self.next_ts(now);
        let answer = json!({
            "ok": true,
            "channel": channel,
            "ts": ts,
            "message": { "type": "message", "bot_id": "B0STANDIN", "text": text, "blocks": blocks, "ts": ts },
        });
        self.recording.messages.push(PostedMessage {
            channel,
            ts,
            text,
            blocks,
            visible_to: None,
            thread_ts,
            posted_at: now,
            updated_at: None,
            edits: 0,
        });
        Ok(answer)
    }

    fn update(&mut self, body: &Value, now: DateTime<Utc>) -> Outcome {
        let channel = field(body, "channel").ok_or("channel_not_found")?;
        let ts = field(body, "ts").ok_or("message_not_found")?;
        let (text, blocks) = content(body)?;
        let message = self
            .recording
            .messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
            .ok_or("message_not_found")?;
        if message.visible_to.is_some() {
            return Err("cant_update_message".into());
        }
        // Like Slack: fields left out keep their previous value.
        if !text.is_empty() {
            message.text = text;
        }
        if !body["blocks"].is_null() {
            message.blocks = blocks;
        }
        message.updated_at = Some(now);
        message.edits += 1;
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "text": message.text }))
    }

    /// `views.open`. The view is checked before the trigger, so a refused view leaves its
    /// trigger unused.
    fn open_view(&mut self, body: &Value, now: DateTime<Utc>) -> Outcome {
        let mut view = view_argument(body)?;
        check_view(&view).map_err(|detail| Refusal::with_detail("invalid_arguments", detail))?;
        let Some(fields) = view.as_object_mut() else {
            return Err("invalid_arguments".into());
        };
        let trigger_id = field(body, "trigger_id").ok_or_else(|| {
            Refusal::with_detail(
                "invalid_arguments",
                "missing required field: trigger_id [json-pointer:/trigger_id]".to_owned(),
            )
        })?;
        let trigger = self
            .triggers
            .get_mut(trigger_id)
            .ok_or("invalid_trigger_id")?;
        if trigger.used || now - trigger.issued_at > TRIGGER_LIFETIME {
            return Err("expired_trigger_id".into());
        }
        trigger.used = true;
        let user_id = trigger.user_id.clone();
        let salt = self.recording.views.len() as u64;
        let id = loop {
            let id = view_id(salt);
            if self.recording.views.iter().all(|v| v.id != id) {
                break id;
            }
        };
        let answered = [
            ("id", json!(id)),
            ("team_id", json!("T0STANDIN")),
            ("app_id", json!("A0STANDIN")),
            ("bot_id", json!("B0STANDIN")),
            ("root_view_id", json!(id)),
            ("previous_view_id", Value::Null),
            ("state", json!({ "values": {} })),
            (
                "hash",
                json!(format!(
                    "{}.{:08}",
                    now.timestamp(),
                    random(salt) % 100_000_000
                )),
            ),
        ];
        for (key, value) in answered {
            fields.insert(key.to_owned(), value);
        }
        let defaults = [
            ("private_metadata", json!("")),
            ("callback_id", json!("")),
            ("external_id", json!("")),
            ("clear_on_close", json!(false)),
            ("notify_on_close", json!(false)),
        ];
        for (key, value) in defaults {
            fields.entry(key).or_insert(value);
        }
        self.recording.views.push(OpenedView {
            id,
            trigger_id: trigger_id.to_owned(),
            user_id,
            view: view.clone(),
            opened_at: now,
        });
        Ok(json!({ "ok": true, "view": view }))
    }

    fn post_ephemeral(&mut self, body: &Value, now: DateTime<Utc>) -> Outcome {
        let channel = field(body, "channel")
            .ok_or("channel_not_found")?
            .to_owned();
        let user = field(body, "user").ok_or("user_not_in_channel")?.to_owned();
        let (text, blocks) = content(body)?;
        let ts = self.next_ts(now);
        self.recording.messages.push(PostedMessage {
            channel,
            ts: ts.clone(),
            text,
            blocks,
            visible_to: Some(user),
            thread_ts: None,
            posted_at: now,
            updated_at: None,
            edits: 0,
        });
        Ok(json!({ "ok": true, "message_ts": ts }))
    }
}

async fn post_message(
    State(state): State<StandinState>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    state
        .handle("chat.postMessage", &headers, &body, Inner::post_message)
        .await
}

async fn update(State(state): State<StandinState>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    state
        .handle("chat.update", &headers, &body, Inner::update)
        .await
}

async fn post_ephemeral(
    State(state): State<StandinState>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    state
        .handle("chat.postEphemeral", &headers, &body, Inner::post_ephemeral)
        .await
}

async fn open_view(
    State(state): State<StandinState>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    state
        .handle("views.open", &headers, &body, Inner::open_view)
        .await
}

/// The Web API routes (`/api/chat.postMessage`, `/api/chat.update`, `/api/chat.postEphemeral`,
/// `/api/views.open`) over `state`, ready to be merged into a bigger router; the notifier's base
/// URL is then `<that server>/api`.
pub fn router(state: StandinState) -> Router {
    Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/chat.update", post(update))
        .route("/api/chat.postEphemeral", post(post_ephemeral))
        .route("/api/views.open", post(open_view))
        .with_state(state)
}

/// The stand-in served alone on `127.0.0.1:<ephemeral port>`; stops when dropped.
pub struct SlackStandin {
    state: StandinState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SlackStandin {
    /// Starts a stand-in accepting `bot_token`.
    pub async fn start(bot_token: impl Into<String>) -> std::io::Result<Self> {
        Self::serve(StandinState::new(bot_token)).await
    }

    /// Serves an existing state (e.g. one a test keeps after restarting the server).
    pub async fn serve(state: StandinState) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender means the same as a sent signal.
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "Slack stand-in stopped");
            }
        });
        Ok(Self {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The Web API base for [`crate::SlackNotifier::new`]: `http://127.0.0.1:<port>/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &StandinState {
        &self.state
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls()
    }

    pub fn messages(&self, channel: &str) -> Vec<PostedMessage> {
        self.state.messages(channel)
    }

    pub async fn wait_for(
        &self,
        predicate: impl FnMut(&Recording) -> bool,
        timeout: Duration,
    ) -> Option<Recording> {
        self.state.wait_for(predicate, timeout).await
    }

    /// Stops serving and waits until the port is closed and open connections are done.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SlackStandin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
