//! A Slack Web API stand-in for tests and the local stack: it answers `chat.postMessage`,
//! `chat.update` and `chat.postEphemeral` like Slack (HTTP 200, `{"ok":...}`), checks the bot
//! token, and records every call and the current content of every message.
//!
//! [`router`] is composable: the local gateway merges it with its own routes and reads the same
//! [`StandinState`]. [`SlackStandin::start`] serves it alone on an ephemeral port for tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::interaction::Action;

/// One Web API call as the stand-in received it (the token is never recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `chat.postMessage`, `chat.update` or `chat.postEphemeral`.
    pub method: String,
    /// The JSON body; the raw text as a JSON string when it was not JSON.
    pub body: Value,
    pub at: DateTime<Utc>,
    /// The Slack error it was answered with, `None` when it succeeded.
    pub error: Option<String>,
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

/// A snapshot of everything the stand-in has seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recording {
    pub calls: Vec<Call>,
    /// In the order they were posted.
    pub messages: Vec<PostedMessage>,
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

type Outcome = Result<Value, &'static str>;

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

    /// Forgets every call and message (failure and delay settings stay).
    pub fn clear(&self) {
        self.lock().recording = Recording::default();
        self.shared.changed.send_modify(|n| *n += 1);
    }

    async fn handle(
        &self,
        method: &str,
        headers: &HeaderMap,
        body: &[u8],
        act: fn(&mut Inner, &Value, DateTime<Utc>) -> Outcome,
    ) -> Json<Value> {
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let now = Utc::now();
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let outcome = {
            let mut inner = self.lock();
            let outcome = match (token, &parsed, inner.failure.clone()) {
                (None, _, _) => Err("not_authed".to_owned()),
                (Some(token), _, _) if token != self.shared.bot_token => {
                    Err("invalid_auth".to_owned())
                }
                (_, _, Some(failure)) => Err(failure),
                (_, Some(body @ Value::Object(_)), None) => {
                    act(&mut inner, body, now).map_err(str::to_owned)
                }
                (_, _, None) => Err("invalid_json".to_owned()),
            };
            inner.recording.calls.push(Call {
                method: method.to_owned(),
                body: parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(body).into())),
                at: now,
                error: outcome.as_ref().err().cloned(),
            });
            outcome
        };
        self.shared.changed.send_modify(|n| *n += 1);
        Json(match outcome {
            Ok(answer) => answer,
            Err(error) => json!({ "ok": false, "error": error }),
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

/// Slack's limit on the text of one text object (`plain_text` or `mrkdwn`).
const MAX_TEXT_OBJECT_CHARS: usize = 3000;

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body[name].as_str().filter(|s| !s.is_empty())
}

/// Slack refuses a message without text or blocks.
fn content(body: &Value) -> Result<(String, Value), &'static str> {
    let text = field(body, "text").unwrap_or_default().to_owned();
    let blocks = match &body["blocks"] {
        Value::Array(blocks) => Value::Array(blocks.clone()),
        // Slack also takes blocks as a JSON string.
        Value::String(text) => match serde_json::from_str(text) {
            Ok(blocks @ Value::Array(_)) => blocks,
            _ => return Err("invalid_blocks"),
        },
        Value::Null => Value::Array(Vec::new()),
        _ => return Err("invalid_blocks"),
    };
    if text.is_empty() && blocks.as_array().is_none_or(Vec::is_empty) {
        return Err("no_text");
    }
    // Like Slack: a text object's text is 1 to 3,000 characters, or the blocks are refused.
    let mut fits = true;
    visit_text_objects(&blocks, &mut |_, text| {
        fits &= (1..=MAX_TEXT_OBJECT_CHARS).contains(&text.chars().count());
    });
    if !fits {
        return Err("invalid_blocks");
    }
    Ok((text, blocks))
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
            return Err("cant_update_message");
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

/// The Web API routes (`/api/chat.postMessage`, `/api/chat.update`, `/api/chat.postEphemeral`)
/// over `state`, ready to be merged into a bigger router; the notifier's base URL is then
/// `<that server>/api`.
pub fn router(state: StandinState) -> Router {
    Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/chat.update", post(update))
        .route("/api/chat.postEphemeral", post(post_ephemeral))
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
