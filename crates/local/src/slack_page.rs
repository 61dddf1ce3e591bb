//! Slack, locally: a page over the stand-in where people run `/elevate`, fill its modal, and
//! click the buttons of the messages they see (Approve/Deny, End access now).
//!
//! - `GET /slack[?as=<person>]`: the page (self-contained HTML, no external assets), polling
//!   `/slack/messages` every second;
//! - `GET /slack/messages[?as=<person>]`: the messages as they stand (with `as`, ephemeral and
//!   direct messages only when they are for that person), the views opened for that person
//!   (newest first), the people, who clicks by default;
//! - `POST /slack/click` `{"as", "action": "approve"|"deny"|"approve_extension"|
//!   "deny_extension"|"review"|"end_access", "request_id",
//!   "channel", "ts"}`: the `block_actions` payload Slack would send for that person's click;
//! - `POST /slack/command` `{"as" | "slack_id", "text"}`: the `/elevate` slash command typed by
//!   that person (or by a Slack user elevate.toml does not know), with a trigger id from the
//!   stand-in; answers what the route answered and the view it opened with that trigger;
//! - `POST /slack/submit` `{"as", "view_id", "access", "duration", "reason"}`: the
//!   `view_submission` of an opened modal; answers its field errors, or that it closed;
//! - `POST /slack/close` `{"view_id"}`: the person closed the modal without submitting.
//!
//! Every payload is signed with the signing secret and posted to the public route
//! (`/slack/interactions`, `/slack/commands`) like Slack posts it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use elevate_core::config::Config;
use elevate_slack::interaction::{
    APPROVE_ACTION, APPROVE_EXTENSION_ACTION, DENY_ACTION, DENY_EXTENSION_ACTION,
    END_ACCESS_ACTION, REVIEW_ACTION,
};
use elevate_slack::standin::{OpenedView, PostedMessage, StandinState};
use elevate_slack::RequestForm;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const PAGE: &str = include_str!("slack_page.html");

/// How long a click, a command or a submission may take (the approve function answers Slack
/// within 3 s).
const CLICK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a command answered with an empty 200 may take to show its modal: Slack's trigger
/// ids are valid for 3 s.
const VIEW_WAIT: Duration = Duration::from_secs(3);

/// The workspace of the stand-in's payloads.
const TEAM_ID: &str = "T0ELEVATE";

/// The buttons the page clicks.
const ACTIONS: [&str; 6] = [
    APPROVE_ACTION,
    DENY_ACTION,
    APPROVE_EXTENSION_ACTION,
    DENY_EXTENSION_ACTION,
    REVIEW_ACTION,
    END_ACCESS_ACTION,
];

/// A person of elevate.toml as the page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PagePerson {
    pub name: String,
    pub slack_id: String,
    /// Approver of at least one flow.
    pub approver: bool,
}

/// What the page's routes share.
#[derive(Clone)]
pub struct SlackPage {
    inner: Arc<Inner>,
}

struct Inner {
    standin: StandinState,
    people: Vec<PagePerson>,
    signing_secret: String,
    /// `http://127.0.0.1:<port>/slack/interactions`
    interactions_url: String,
    /// `http://127.0.0.1:<port>/slack/commands`
    commands_url: String,
    /// Views closed on the page (submitted, or closed without submitting): Slack takes them
    /// off the screen, the stand-in still lists them.
    closed_views: Mutex<HashSet<String>>,
    http: reqwest::Client,
}

/// A refusal of one of the page's routes: its status and what to tell.
type Refusal = (StatusCode, String);

impl SlackPage {
    pub fn new(
        standin: StandinState,
        config: &Config,
        signing_secret: impl Into<String>,
        interactions_url: impl Into<String>,
    ) -> Self {
        let people = config
            .people
            .iter()
            .map(|person| PagePerson {
                name: person.name.to_string(),
                slack_id: person.slack_id.clone(),
                // A member of an approvers group may be anyone: the click decides.
                approver: config.flows.iter().any(|flow| {
                    flow.approvers.people.contains(&person.name)
                        || !flow.approvers.groups.is_empty()
                }),
            })
            .collect();
        let interactions_url = interactions_url.into();
        let commands_url = sibling_url(&interactions_url, "commands");
        SlackPage {
            inner: Arc::new(Inner {
                standin,
                people,
                signing_secret: signing_secret.into(),
                interactions_url,
                commands_url,
                closed_views: Mutex::new(HashSet::new()),
                http: reqwest::Client::new(),
            }),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/slack", get(page))
            .route("/slack/messages", get(messages))
            .route("/slack/click", post(click))
            .route("/slack/command", post(command))
            .route("/slack/submit", post(submit))
            .route("/slack/close", post(close))
            .with_state(self)
    }

    fn person(&self, name: &str) -> Option<&PagePerson> {
        self.inner.people.iter().find(|p| p.name == name)
    }

    fn known_person(&self, name: &str) -> Result<&PagePerson, Refusal> {
        self.person(name).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("`{name}` is not a person of elevate.toml"),
            )
        })
    }

    fn name_of(&self, slack_id: &str) -> Option<&str> {
        self.inner
            .people
            .iter()
            .find(|p| p.slack_id == slack_id)
            .map(|p| p.name.as_str())
    }

    fn is_closed(&self, view_id: &str) -> bool {
        self.inner
            .closed_views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(view_id)
    }

    fn mark_closed(&self, view_id: &str) {
        self.inner
            .closed_views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(view_id.to_owned());
    }

    /// The messages as the page shows them; with `viewer`, ephemeral messages for others are
    /// left out, and so are the views others opened.
    pub fn view(&self, viewer: Option<&str>) -> Value {
        let viewer_id = viewer
            .and_then(|v| self.person(v))
            .map(|p| p.slack_id.clone());
        let recording = self.inner.standin.recording();
        let all = &recording.messages;
        // Like Slack: an ephemeral message, or a direct message (its channel is a person's
        // Slack id), is seen by its person only.
        let private_to = |m: &PostedMessage| {
            m.visible_to.clone().or_else(|| {
                self.name_of(&m.channel)
                    .is_some()
                    .then(|| m.channel.clone())
            })
        };
        let messages: Vec<Value> = all
            .iter()
            .filter(|m| match (private_to(m), viewer) {
                (None, _) | (Some(_), None) => true,
                (Some(to), Some(_)) => viewer_id.as_deref() == Some(to.as_str()),
            })
            .map(|m| self.message_view(m))
            .collect();
        let views: Vec<Value> = recording
            .views
            .iter()
            .rev()
            .filter(|v| viewer.is_none() || viewer_id.as_deref() == Some(v.user_id.as_str()))
            .map(|v| self.opened_view(v))
            .collect();
        json!({
            "people": self.inner.people,
            "default_as": self.default_clicker(all),
            "messages": messages,
            "views": views,
        })
    }

    fn opened_view(&self, opened: &OpenedView) -> Value {
        json!({
            "id": opened.id,
            "trigger_id": opened.trigger_id,
            "user_id": opened.user_id,
            "as": self.name_of(&opened.user_id),
            "opened_at": opened.opened_at,
            "closed": self.is_closed(&opened.id),
            "view": opened.view,
        })
    }

    fn message_view(&self, message: &PostedMessage) -> Value {
        let request_id = message
            .buttons()
            .into_iter()
            .find_map(|b| b.value)
            .or_else(|| request_id_in(&message.all_text()));
        let requester = requester_of(message).map(|id| self.name_of(&id).unwrap_or(&id).to_owned());
        json!({
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "blocks": message.blocks,
            "visible_to": message.visible_to,
            "visible_to_name": message.visible_to.as_deref().and_then(|id| self.name_of(id)),
            // A reply in the thread of the message with this `ts`.
            "thread_ts": message.thread_ts,
            // A direct message: the person it was sent to.
            "direct_to": self.name_of(&message.channel),
            "posted_at": message.posted_at,
            "updated_at": message.updated_at,
            "edits": message.edits,
            "buttons": buttons_of(&message.blocks),
            "request_id": request_id,
            "requester": requester,
        })
    }

    /// The first approver who did not ask for the newest request still awaiting a decision
    /// (or, with nothing pending, the first approver).
    fn default_clicker(&self, messages: &[PostedMessage]) -> Option<String> {
        let requester = messages
            .iter()
            .rev()
            .find(|m| {
                m.visible_to.is_none() && m.buttons().iter().any(|b| b.action_id == APPROVE_ACTION)
            })
            .and_then(requester_of);
        let approvers = || self.inner.people.iter().filter(|p| p.approver);
        approvers()
            .find(|p| Some(&p.slack_id) != requester.as_ref())
            .or_else(|| approvers().next())
            .or_else(|| self.inner.people.first())
            .map(|p| p.name.clone())
    }

    /// Signs `body` like Slack and posts it to `url`: the status and the text answered.
    async fn post_signed(&self, url: &str, body: String) -> Result<(u16, String), Refusal> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = elevate_slack::sign(&self.inner.signing_secret, timestamp, &body);
        let answer = self
            .inner
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                elevate_slack::signature::TIMESTAMP_HEADER,
                timestamp.to_string(),
            )
            .header(elevate_slack::signature::SIGNATURE_HEADER, signature)
            .timeout(CLICK_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("{url} did not answer: {e}"),
                )
            })?;
        let status = answer.status().as_u16();
        Ok((status, answer.text().await.unwrap_or_default()))
    }

    /// Sends `click` to the interactions route as Slack would, and tells what came of it.
    pub async fn click(&self, click: &Click) -> Result<Value, Refusal> {
        let person = self.known_person(&click.person)?;
        if !ACTIONS.contains(&click.action.as_str()) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "action `{}` is not one of {}",
                    click.action,
                    ACTIONS.join(", ")
                ),
            ));
        }
        let before = self.inner.standin.recording().messages.len();
        let body = elevate_slack::block_actions_body(
            &person.slack_id,
            &person.name,
            &click.channel,
            &click.ts,
            &click.action,
            &click.request_id,
        );
        let (status, text) = self.post_signed(&self.inner.interactions_url, body).await?;

        let recording = self.inner.standin.recording();
        let replies: Vec<String> = recording
            .messages
            .iter()
            .skip(before)
            .filter(|m| m.visible_to.as_deref() == Some(person.slack_id.as_str()))
            .map(|m| m.text.clone())
            .collect();
        let message = recording
            .message(&click.channel, &click.ts)
            .map(|m| self.message_view(m));
        let outcome = match (status, replies.is_empty()) {
            (200, true) => "done",
            (200, false) => "refused",
            _ => "error",
        };
        Ok(json!({
            "as": person.name,
            "action": click.action,
            "status": status,
            "body": text,
            "outcome": outcome,
            "ephemeral": replies,
            "message": message,
        }))
    }

    /// Types `/elevate <text>` as Slack would send it, and tells what the route answered and
    /// which view it opened with the command's trigger.
    pub async fn command(&self, command: &Command) -> Result<Value, Refusal> {
        let (slack_id, name) = match (&command.person, &command.slack_id) {
            (Some(name), None) => {
                let person = self.known_person(name)?;
                (person.slack_id.clone(), person.name.clone())
            }
            (None, Some(slack_id)) if !slack_id.trim().is_empty() => {
                let name = self.name_of(slack_id).unwrap_or(slack_id).to_owned();
                (slack_id.clone(), name)
            }
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "give either `as` (a person of elevate.toml) or `slack_id`".to_owned(),
                ))
            }
        };
        let trigger_id = self.inner.standin.issue_trigger(&slack_id);
        // Typed in the person's direct messages with the app (the stand-in's channel for them).
        let body = elevate_slack::slash_command_body(
            TEAM_ID,
            &slack_id,
            &name,
            &slack_id,
            &command.text,
            &trigger_id,
        );
        let (status, text) = self.post_signed(&self.inner.commands_url, body).await?;
        let opened_with = |views: &[OpenedView]| {
            views
                .iter()
                .find(|v| v.trigger_id == trigger_id)
                .map(|v| v.view.clone())
        };
        let mut view = opened_with(&self.inner.standin.views());
        // An empty 200 is how the route acknowledges a command that opens a modal.
        if view.is_none() && status == 200 && text.trim().is_empty() {
            view = self
                .inner
                .standin
                .wait_for(
                    |recording| opened_with(&recording.views).is_some(),
                    VIEW_WAIT,
                )
                .await
                .and_then(|recording| opened_with(&recording.views));
        }
        Ok(json!({
            "as": self.name_of(&slack_id),
            "slack_id": slack_id,
            "text": command.text,
            "status": status,
            "body": json_or_text(&text),
            "view": view,
        }))
    }

    /// Submits the modal `view_id` as Slack would, with the fields the person filled.
    pub async fn submit(&self, submission: &Submission) -> Result<Value, Refusal> {
        let person = self.known_person(&submission.person)?;
        let opened = self
            .inner
            .standin
            .view(&submission.view_id)
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("no view `{}` was opened", submission.view_id),
                )
            })?;
        if opened.user_id != person.slack_id {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "view `{}` was opened for {}, not for {}",
                    opened.id,
                    self.name_of(&opened.user_id).unwrap_or(&opened.user_id),
                    person.name
                ),
            ));
        }
        if self.is_closed(&opened.id) {
            return Err((
                StatusCode::CONFLICT,
                format!("view `{}` is closed", opened.id),
            ));
        }
        // Slack leaves out what was not filled in: an empty select or text field is no value.
        let filled = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let form = RequestForm {
            access: filled(&submission.access),
            duration: filled(&submission.duration),
            reason: filled(&submission.reason),
        };
        let body = elevate_slack::view_submission_body(
            &person.slack_id,
            &person.name,
            &opened.view,
            &form,
        );
        let (status, text) = self.post_signed(&self.inner.interactions_url, body).await?;
        let answer = json_or_text(&text);
        let action = answer["response_action"].as_str();
        let errors = (action == Some("errors")).then(|| answer["errors"].clone());
        // Slack keeps the modal open for errors, and for an update or a pushed view.
        let closed = status == 200 && !matches!(action, Some("errors" | "update" | "push"));
        if closed {
            self.mark_closed(&opened.id);
        }
        Ok(json!({
            "as": person.name,
            "view_id": opened.id,
            "status": status,
            "errors": errors,
            "closed": closed,
            "body": answer,
        }))
    }

    /// The person closed the modal without submitting it.
    pub fn close(&self, close: &Close) -> Result<Value, Refusal> {
        let opened = self.inner.standin.view(&close.view_id).ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no view `{}` was opened", close.view_id),
            )
        })?;
        self.mark_closed(&opened.id);
        Ok(json!({"view_id": opened.id, "closed": true}))
    }
}

/// The body of `POST /slack/click`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Click {
    #[serde(rename = "as")]
    pub person: String,
    pub action: String,
    pub request_id: String,
    pub channel: String,
    pub ts: String,
}

/// The body of `POST /slack/command`: who types `/elevate`, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// A person of elevate.toml.
    #[serde(rename = "as", default)]
    pub person: Option<String>,
    /// Instead of `as`: any Slack user, elevate.toml's or not.
    #[serde(default)]
    pub slack_id: Option<String>,
    #[serde(default)]
    pub text: String,
}

/// The body of `POST /slack/submit`: the modal's fields as the person filled them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    #[serde(rename = "as")]
    pub person: String,
    pub view_id: String,
    #[serde(default)]
    pub access: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /slack/close`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Close {
    pub view_id: String,
}

/// `url` with its last path segment replaced by `segment`.
fn sibling_url(url: &str, segment: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{segment}"),
        None => segment.to_owned(),
    }
}

/// A route's answer: its JSON, its text when it is not JSON, `null` when it is empty.
fn json_or_text(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The buttons of the `actions` blocks as the page draws them: what a click reports
/// (`action_id`, `value`), the label, the style and the confirmation dialog.
fn buttons_of(blocks: &Value) -> Vec<Value> {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .filter(|element| element["type"] == "button")
        .filter_map(|button| {
            Some(json!({
                "action_id": button["action_id"].as_str()?,
                "value": button["value"],
                "text": button["text"]["text"],
                "style": button["style"],
                "confirm": button["confirm"],
            }))
        })
        .collect()
}

/// The Slack id mentioned first in the message (the requester, in elevate's messages).
fn requester_of(message: &PostedMessage) -> Option<String> {
    let text = message.all_text();
    let start = text.find("<@")? + 2;
    let rest = &text[start..];
    let end = rest.find(['>', '|'])?;
    Some(rest[..end].to_owned()).filter(|id| !id.is_empty())
}

/// A request id written as `` `<uuid>` `` in the text (messages without buttons).
fn request_id_in(text: &str) -> Option<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .find(|part| part.len() == 36 && uuid::Uuid::parse_str(part).is_ok())
        .map(str::to_owned)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(PAGE),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ViewQuery {
    #[serde(rename = "as")]
    person: Option<String>,
}

async fn messages(State(page): State<SlackPage>, Query(query): Query<ViewQuery>) -> Response {
    let viewer = query.person.filter(|p| !p.is_empty());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(page.view(viewer.as_deref())),
    )
        .into_response()
}

/// `body` as `T`, or the 400 telling why not.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

fn answer(outcome: Result<Value, Refusal>) -> Response {
    match outcome {
        Ok(answer) => Json(answer).into_response(),
        Err((status, message)) => {
            let error = match status {
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::CONFLICT => "conflict",
                StatusCode::BAD_GATEWAY => "bad_gateway",
                _ => "bad_request",
            };
            (status, Json(json!({"error": error, "message": message}))).into_response()
        }
    }
}

async fn click(State(page): State<SlackPage>, body: axum::body::Bytes) -> Response {
    answer(async { page.click(&parse(&body)?).await }.await)
}

async fn command(State(page): State<SlackPage>, body: axum::body::Bytes) -> Response {
    answer(async { page.command(&parse(&body)?).await }.await)
}

async fn submit(State(page): State<SlackPage>, body: axum::body::Bytes) -> Response {
    answer(async { page.submit(&parse(&body)?).await }.await)
}

async fn close(State(page): State<SlackPage>, body: axum::body::Bytes) -> Response {
    answer(parse(&body).and_then(|close| page.close(&close)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use elevate_slack::command::Verb;
    use elevate_slack::standin::SlackStandin;
    use elevate_slack::{Payload, SlashCommand};

    const SECRET: &str = "page-test-signing-secret";
    const TOKEN: &str = "xoxb-page-test";

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
description = "Admin access"
max_duration = "1h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"
"#;

    #[test]
    fn finds_the_requester_and_the_request_id() {
        let message = PostedMessage {
            channel: "C1".into(),
            ts: "1.000001".into(),
            text: "alice requests infra_access".into(),
            blocks: json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": ":key: *Access request* from <@U0ALICE01> (alice)"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Request `0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d`"}]},
            ]),
            visible_to: None,
            thread_ts: None,
            posted_at: chrono::Utc::now(),
            updated_at: None,
            edits: 0,
        };
        assert_eq!(requester_of(&message).as_deref(), Some("U0ALICE01"));
        assert_eq!(
            request_id_in(&message.all_text()).as_deref(),
            Some("0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d")
        );
    }

    #[test]
    fn draws_buttons_with_their_label_and_confirmation() {
        let blocks = json!([
            {"type": "section", "text": {"type": "plain_text", "text": "Your access is active."}},
            {"type": "actions", "block_id": "end_access", "elements": [{
                "type": "button", "action_id": "end_access", "value": "R1", "style": "danger",
                "text": {"type": "plain_text", "text": "End access now"},
                "confirm": {"title": {"type": "plain_text", "text": "End access now?"}},
            }]},
        ]);
        let buttons = buttons_of(&blocks);
        assert_eq!(buttons.len(), 1);
        assert_eq!(buttons[0]["action_id"], "end_access");
        assert_eq!(buttons[0]["value"], "R1");
        assert_eq!(buttons[0]["text"], "End access now");
        assert_eq!(buttons[0]["style"], "danger");
        assert_eq!(buttons[0]["confirm"]["title"]["text"], "End access now?");
    }

    #[test]
    fn commands_go_next_to_interactions_and_answers_are_json_or_text() {
        assert_eq!(
            sibling_url("http://127.0.0.1:9/slack/interactions", "commands"),
            "http://127.0.0.1:9/slack/commands"
        );
        assert_eq!(json_or_text(""), Value::Null);
        assert_eq!(json_or_text(" \n"), Value::Null);
        assert_eq!(json_or_text(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(json_or_text("Internal error"), json!("Internal error"));
    }

    fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        elevate_slack::verify(
            SECRET,
            header(elevate_slack::signature::TIMESTAMP_HEADER),
            header(elevate_slack::signature::SIGNATURE_HEADER),
            body,
            chrono::Utc::now().timestamp(),
        )
        .is_ok()
    }

    /// The routes of the approve function, as far as the page can tell: signature checked, the
    /// real modal opened through the stand-in's `views.open`, a blank reason refused.
    async fn fake_approve(config: Config, web_api: String) -> String {
        let commands = {
            let web_api = web_api.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                if !signed(&headers, &body) {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let command = SlashCommand::parse(&body).expect("a slash command");
                let Some(person) = config.person_by_slack_id(&command.user_id) else {
                    let refusal = json!({"response_type": "ephemeral", "text": "Who are you?"});
                    return (StatusCode::OK, refusal.to_string());
                };
                match command.verb() {
                    Verb::Request => {
                        let view =
                            elevate_slack::request_modal(&config, person, &command.channel_id)
                                .expect("a modal");
                        let opened: Value = reqwest::Client::new()
                            .post(format!("{web_api}/views.open"))
                            .bearer_auth(TOKEN)
                            .json(&json!({"trigger_id": command.trigger_id, "view": view}))
                            .send()
                            .await
                            .expect("views.open")
                            .json()
                            .await
                            .expect("views.open JSON");
                        assert_eq!(opened["ok"], true, "{opened}");
                        (StatusCode::OK, String::new())
                    }
                    _ => {
                        let answer = json!({"response_type": "ephemeral", "text": "usage"});
                        (StatusCode::OK, answer.to_string())
                    }
                }
            }
        };
        let interactions = |headers: HeaderMap, body: axum::body::Bytes| async move {
            if !signed(&headers, &body) {
                return (StatusCode::UNAUTHORIZED, String::new());
            }
            match elevate_slack::parse_payload(&body).expect("a payload") {
                Payload::ViewSubmission(submission)
                    if submission
                        .form
                        .reason
                        .as_deref()
                        .is_none_or(|r| r.trim().is_empty()) =>
                {
                    let errors = json!({"response_action": "errors", "errors": {"reason": "Give a reason."}});
                    (StatusCode::OK, errors.to_string())
                }
                _ => (StatusCode::OK, String::new()),
            }
        };
        let router = Router::new()
            .route("/slack/commands", post(commands))
            .route("/slack/interactions", post(interactions));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/slack/interactions")
    }

    async fn page_over_fake_approve() -> (SlackPage, SlackStandin) {
        let config = Config::parse(CONFIG).expect("config");
        let standin = SlackStandin::start(TOKEN).await.expect("stand-in");
        let interactions_url = fake_approve(config.clone(), standin.base_url()).await;
        let page = SlackPage::new(standin.state().clone(), &config, SECRET, interactions_url);
        (page, standin)
    }

    fn command(person: Option<&str>, slack_id: Option<&str>, text: &str) -> Command {
        Command {
            person: person.map(str::to_owned),
            slack_id: slack_id.map(str::to_owned),
            text: text.to_owned(),
        }
    }

    fn submission(person: &str, view_id: &str, reason: &str) -> Submission {
        Submission {
            person: person.to_owned(),
            view_id: view_id.to_owned(),
            access: Some(elevate_slack::access_value("infra_access", "admins", None)),
            duration: Some("15m".to_owned()),
            reason: Some(reason.to_owned()),
        }
    }

    #[tokio::test]
    async fn a_command_opens_the_modal_and_a_submission_closes_it() {
        let (page, _standin) = page_over_fake_approve().await;

        let answer = page
            .command(&command(Some("alice"), None, ""))
            .await
            .expect("command");
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["body"], Value::Null, "{answer}");
        let view_id = answer["view"]["id"].as_str().expect("a view").to_owned();
        let alices = page.view(Some("alice"));
        assert_eq!(alices["views"][0]["id"], view_id.as_str(), "{alices}");
        assert_eq!(alices["views"][0]["closed"], false, "{alices}");
        assert_eq!(page.view(Some("bob"))["views"], json!([]));

        let refused = page
            .submit(&submission("alice", &view_id, "  "))
            .await
            .expect("submit");
        assert_eq!(refused["errors"]["reason"], "Give a reason.", "{refused}");
        assert_eq!(refused["closed"], false, "{refused}");

        let done = page
            .submit(&submission("alice", &view_id, "deploy"))
            .await
            .expect("submit");
        assert_eq!(done["status"], 200, "{done}");
        assert_eq!(done["errors"], Value::Null, "{done}");
        assert_eq!(done["closed"], true, "{done}");
        assert_eq!(page.view(Some("alice"))["views"][0]["closed"], true);
        let again = page.submit(&submission("alice", &view_id, "deploy")).await;
        assert_eq!(again.map_err(|e| e.0), Err(StatusCode::CONFLICT));

        let listed = page
            .command(&command(Some("bob"), None, "list"))
            .await
            .expect("command");
        assert_eq!(listed["body"]["response_type"], "ephemeral", "{listed}");
        assert_eq!(listed["view"], Value::Null, "{listed}");

        let stranger = page
            .command(&command(None, Some("U0STRANGE1"), ""))
            .await
            .expect("command");
        assert_eq!(stranger["as"], Value::Null, "{stranger}");
        assert_eq!(stranger["body"]["text"], "Who are you?", "{stranger}");
        assert_eq!(stranger["view"], Value::Null, "{stranger}");
    }

    #[tokio::test]
    async fn refuses_what_slack_could_never_send() {
        let (page, _standin) = page_over_fake_approve().await;
        let status = |outcome: Result<Value, Refusal>| outcome.map(|_| ()).map_err(|e| e.0);

        for (who, slack_id) in [(None, None), (Some("alice"), Some("U0ALICE01"))] {
            let outcome = page.command(&command(who, slack_id, "")).await;
            assert_eq!(status(outcome), Err(StatusCode::BAD_REQUEST));
        }
        let outcome = page.command(&command(Some("mallory"), None, "")).await;
        assert_eq!(status(outcome), Err(StatusCode::BAD_REQUEST));

        let outcome = page.submit(&submission("alice", "V0NOSUCH", "x")).await;
        assert_eq!(status(outcome), Err(StatusCode::NOT_FOUND));
        let opened = page
            .command(&command(Some("alice"), None, ""))
            .await
            .expect("command");
        let view_id = opened["view"]["id"].as_str().expect("a view");
        let outcome = page.submit(&submission("bob", view_id, "x")).await;
        assert_eq!(status(outcome), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            page.close(&Close {
                view_id: view_id.to_owned()
            })
            .expect("close")["closed"],
            true
        );
        assert_eq!(page.view(Some("alice"))["views"][0]["closed"], true);

        let click = Click {
            person: "alice".into(),
            action: "delete_everything".into(),
            request_id: "R1".into(),
            channel: "C0APPROVALS".into(),
            ts: "1.000001".into(),
        };
        assert_eq!(
            status(page.click(&click).await),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}
