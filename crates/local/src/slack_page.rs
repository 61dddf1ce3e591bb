//! The approver's side of Slack, locally: a page showing the stand-in's messages with working
//! Approve/Deny buttons.
//!
//! - `GET /slack`: the page (self-contained HTML, no external assets), polling
//!   `/slack/messages` every second;
//! - `GET /slack/messages[?as=<person>]`: the messages as they stand (with `as`, ephemeral and
//!   direct messages only when they are for that person), the people, who clicks by default;
//! - `POST /slack/click` `{"as", "action": "approve"|"deny", "request_id", "channel", "ts"}`:
//!   the `block_actions` payload Slack would send for that person's click, signed with the
//!   signing secret and posted to the public `/slack/interactions` route like Slack posts it.
//!   The answer says what the route answered and which ephemeral replies the click got.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use elevate_core::config::Config;
use elevate_slack::standin::{PostedMessage, StandinState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const PAGE: &str = include_str!("slack_page.html");

/// How long a click may take (the approve function answers Slack within 3 s).
const CLICK_TIMEOUT: Duration = Duration::from_secs(10);

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
    http: reqwest::Client,
}

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
                approver: config
                    .flows
                    .iter()
                    .any(|flow| flow.approvers.people.contains(&person.name)),
            })
            .collect();
        SlackPage {
            inner: Arc::new(Inner {
                standin,
                people,
                signing_secret: signing_secret.into(),
                interactions_url: interactions_url.into(),
                http: reqwest::Client::new(),
            }),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/slack", get(page))
            .route("/slack/messages", get(messages))
            .route("/slack/click", post(click))
            .with_state(self)
    }

    fn person(&self, name: &str) -> Option<&PagePerson> {
        self.inner.people.iter().find(|p| p.name == name)
    }

    fn name_of(&self, slack_id: &str) -> Option<&str> {
        self.inner
            .people
            .iter()
            .find(|p| p.slack_id == slack_id)
            .map(|p| p.name.as_str())
    }

    /// The messages as the page shows them; with `viewer`, ephemeral messages for others are
    /// left out.
    pub fn view(&self, viewer: Option<&str>) -> Value {
        let viewer_id = viewer
            .and_then(|v| self.person(v))
            .map(|p| p.slack_id.clone());
        let all = self.inner.standin.recording().messages;
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
        json!({
            "people": self.inner.people,
            "default_as": self.default_clicker(&all),
            "messages": messages,
        })
    }

    fn message_view(&self, message: &PostedMessage) -> Value {
        let buttons: Vec<Value> = message
            .buttons()
            .into_iter()
            .map(|b| json!({"action_id": b.action_id, "value": b.value}))
            .collect();
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
            // A direct message: the person it was sent to.
            "direct_to": self.name_of(&message.channel),
            "posted_at": message.posted_at,
            "updated_at": message.updated_at,
            "edits": message.edits,
            "buttons": buttons,
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
            .find(|m| m.visible_to.is_none() && !m.buttons().is_empty())
            .and_then(requester_of);
        let approvers = || self.inner.people.iter().filter(|p| p.approver);
        approvers()
            .find(|p| Some(&p.slack_id) != requester.as_ref())
            .or_else(|| approvers().next())
            .or_else(|| self.inner.people.first())
            .map(|p| p.name.clone())
    }

    /// Sends `click` to the interactions route as Slack would, and tells what came of it.
    pub async fn click(&self, click: &Click) -> Result<Value, (StatusCode, String)> {
        let person = self.person(&click.person).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("`{}` is not a person of elevate.toml", click.person),
            )
        })?;
        if click.action != "approve" && click.action != "deny" {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("action `{}` is not approve or deny", click.action),
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
        let timestamp = chrono::Utc::now().timestamp();
        let signature = elevate_slack::sign(&self.inner.signing_secret, timestamp, &body);
        let answer = self
            .inner
            .http
            .post(&self.inner.interactions_url)
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
                    format!("the interactions route did not answer: {e}"),
                )
            })?;
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();

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

async fn click(State(page): State<SlackPage>, body: axum::body::Bytes) -> Response {
    let click: Click = match serde_json::from_slice(&body) {
        Ok(click) => click,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "bad_request", "message": e.to_string()})),
            )
                .into_response()
        }
    };
    match page.click(&click).await {
        Ok(answer) => Json(answer).into_response(),
        Err((status, message)) => (
            status,
            Json(json!({"error": "bad_request", "message": message})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
