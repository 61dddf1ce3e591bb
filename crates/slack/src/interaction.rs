//! Interaction payloads: what Slack posts to `POST /slack/interactions` when someone clicks a
//! button (`payload=<urlencoded JSON>` of type `block_actions`), parsed at the boundary into
//! typed values. Anything unexpected is a typed error, never a panic.

use elevate_core::service::Decision;
use elevate_core::RequestId;
use serde::Deserialize;

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "deny";

/// One click on a message's button, as Slack reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// Slack user id of whoever clicked.
    pub user_id: String,
    /// The workspace (team) id of the click: `team.id`, or the user's `team_id`; empty when
    /// Slack sent neither.
    pub team_id: String,
    /// Their Slack handle, for messages only; identity is `user_id`.
    pub user_name: String,
    pub channel_id: String,
    /// `ts` of the message whose button was clicked.
    pub message_ts: String,
    pub response_url: Option<String>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub action_id: String,
    /// The button's `value`; absent on elements that carry none.
    pub value: Option<String>,
}

/// The `action_id` of the button that means `decision`.
pub fn action_id(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => APPROVE_ACTION,
        Decision::Deny => DENY_ACTION,
    }
}

/// An Approve or Deny click on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub decision: Decision,
    pub request_id: RequestId,
}

/// Why an interaction body was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    #[error("form body has no `payload` field")]
    NoPayload,
    #[error("payload is not valid interaction JSON: {0}")]
    BadJson(String),
    #[error("interaction type `{0}` is not handled (expected block_actions)")]
    UnsupportedType(String),
    #[error("interaction payload lacks {0}")]
    MissingField(&'static str),
    #[error("interaction has no action")]
    NoAction,
    #[error("unknown action `{0}` (expected approve or deny)")]
    UnknownAction(String),
    #[error("button value is not a request id: {0}")]
    BadRequestId(String),
}

#[derive(Deserialize)]
struct RawPayload {
    #[serde(rename = "type")]
    kind: String,
    user: Option<RawUser>,
    team: Option<RawTeam>,
    channel: Option<RawChannel>,
    container: Option<RawContainer>,
    message: Option<RawMessage>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    username: Option<String>,
    name: Option<String>,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct RawTeam {
    id: String,
}

#[derive(Deserialize)]
struct RawChannel {
    id: String,
}

#[derive(Deserialize)]
struct RawContainer {
    channel_id: Option<String>,
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    ts: String,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
}

impl Interaction {
    /// Parses the raw `application/x-www-form-urlencoded` body Slack posts.
    pub fn parse(raw_body: &[u8]) -> Result<Interaction, InteractionError> {
        let payload = form_urlencoded::parse(raw_body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value)
            .ok_or(InteractionError::NoPayload)?;
        Self::from_json(&payload)
    }

    /// Parses the JSON of the `payload` field.
    pub fn from_json(payload: &str) -> Result<Interaction, InteractionError> {
        let raw: RawPayload =
            serde_json::from_str(payload).map_err(|e| InteractionError::BadJson(e.to_string()))?;
        if raw.kind != "block_actions" {
            return Err(InteractionError::UnsupportedType(raw.kind));
        }
        let user = raw.user.ok_or(InteractionError::MissingField("user"))?;
        let channel_id = raw
            .channel
            .map(|c| c.id)
            .or_else(|| raw.container.as_ref().and_then(|c| c.channel_id.clone()))
            .filter(|id| !id.is_empty())
            .ok_or(InteractionError::MissingField("channel"))?;
        let message_ts = raw
            .message
            .map(|m| m.ts)
            .or_else(|| raw.container.as_ref().and_then(|c| c.message_ts.clone()))
            .filter(|ts| !ts.is_empty())
            .ok_or(InteractionError::MissingField("message ts"))?;
        if user.id.is_empty() {
            return Err(InteractionError::MissingField("user id"));
        }
        let team_id = raw.team.map(|t| t.id).or(user.team_id).unwrap_or_default();
        Ok(Interaction {
            team_id,
            user_name: user.username.or(user.name).unwrap_or_default(),
            user_id: user.id,
            channel_id,
            message_ts,
            response_url: raw.response_url,
            actions: raw
                .actions
                .into_iter()
                .map(|a| Action {
                    action_id: a.action_id,
                    value: a.value,
                })
                .collect(),
        })
    }

    /// The Approve/Deny click of the (first) clicked button.
    pub fn click(&self) -> Result<Click, InteractionError> {
        let action = self.actions.first().ok_or(InteractionError::NoAction)?;
        let decision = match action.action_id.as_str() {
            APPROVE_ACTION => Decision::Approve,
            DENY_ACTION => Decision::Deny,
            other => return Err(InteractionError::UnknownAction(other.to_owned())),
        };
        let value = action.value.as_deref().unwrap_or_default();
        let request_id = value
            .parse()
            .map_err(|_| InteractionError::BadRequestId(value.to_owned()))?;
        Ok(Click {
            decision,
            request_id,
        })
    }
}

/// A form body as Slack posts it when `user_id` clicks the button `action_id` carrying
/// `request_id` on message `ts` in `channel`. For tests and the local stand-in page, which
/// sign it with [`crate::signature::sign`].
pub fn block_actions_body(
    user_id: &str,
    user_name: &str,
    channel: &str,
    ts: &str,
    action_id: &str,
    request_id: &str,
) -> String {
    let (label, style) = match action_id {
        DENY_ACTION => ("Deny", "danger"),
        _ => ("Approve", "primary"),
    };
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": user_id, "username": user_name, "name": user_name, "team_id": "T0ELEVATE" },
        "api_app_id": "A0ELEVATE",
        "token": "standin-verification-token",
        "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
        "trigger_id": "1.2.standin",
        "team": { "id": "T0ELEVATE", "domain": "elevate-local" },
        "channel": { "id": channel, "name": channel },
        "message": { "type": "message", "ts": ts, "bot_id": "B0STANDIN" },
        "response_url": format!("https://hooks.slack.com/actions/T0ELEVATE/{ts}/standin"),
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": "decision",
            "text": { "type": "plain_text", "text": label, "emoji": true },
            "value": request_id,
            "style": style,
            "action_ts": ts,
        }],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d";

    fn body(action_id: &str, value: &str) -> String {
        block_actions_body(
            "U0BOB0001",
            "bob",
            "C0APPROVALS",
            "1700000000.000100",
            action_id,
            value,
        )
    }

    fn form(payload: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", payload)
            .finish()
    }

    #[test]
    fn parses_an_approve_click() {
        let interaction = Interaction::parse(body("approve", ID).as_bytes()).expect("parse");
        assert_eq!(interaction.user_id, "U0BOB0001");
        assert_eq!(interaction.user_name, "bob");
        assert_eq!(interaction.channel_id, "C0APPROVALS");
        assert_eq!(interaction.message_ts, "1700000000.000100");
        assert!(interaction
            .response_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")));
        assert_eq!(
            interaction.actions,
            vec![Action {
                action_id: "approve".into(),
                value: Some(ID.into())
            }]
        );
        let click = interaction.click().expect("click");
        assert_eq!(click.decision, Decision::Approve);
        assert_eq!(click.request_id.as_str(), ID);
    }

    #[test]
    fn parses_a_deny_click() {
        let click = Interaction::parse(body("deny", ID).as_bytes())
            .and_then(|i| i.click())
            .expect("click");
        assert_eq!(click.decision, Decision::Deny);
        assert_eq!(click.request_id.as_str(), ID);
    }

    #[test]
    fn parses_a_real_slack_shaped_payload() {
        // Trimmed from a real block_actions payload: container-only channel, legacy `name`.
        let payload = r#"{"type":"block_actions","user":{"id":"U0ALICE01","name":"alice","team_id":"T1"},
            "container":{"type":"message","message_ts":"1548261231.000200","channel_id":"CBR2V3XEX","is_ephemeral":false},
            "response_url":"https://hooks.slack.com/actions/T1/2/x",
            "actions":[{"action_id":"deny","block_id":"decision","value":"0193F0C2-8D4E-7B6A-9C1D-2E3F4A5B6C7D","type":"button","action_ts":"1548426417.840180"}]}"#;
        let interaction = Interaction::parse(form(payload).as_bytes()).expect("parse");
        assert_eq!(interaction.user_name, "alice");
        assert_eq!(interaction.channel_id, "CBR2V3XEX");
        assert_eq!(interaction.message_ts, "1548261231.000200");
        let click = interaction.click().expect("click");
        assert_eq!(click.decision, Decision::Deny);
        assert_eq!(click.request_id.as_str(), ID, "request ids are normalised");
    }

    #[test]
    fn refuses_malformed_bodies() {
        let cases: Vec<(String, InteractionError)> = vec![
            (String::new(), InteractionError::NoPayload),
            ("token=abc&text=hi".into(), InteractionError::NoPayload),
            (form("not json"), InteractionError::BadJson(String::new())),
            (form("[]"), InteractionError::BadJson(String::new())),
            (
                form(r#"{"user":{"id":"U1"}}"#),
                InteractionError::BadJson(String::new()),
            ),
            (
                form(r#"{"type":"view_submission"}"#),
                InteractionError::UnsupportedType("view_submission".into()),
            ),
            (
                form(r#"{"type":"block_actions","channel":{"id":"C1"},"message":{"ts":"1.2"}}"#),
                InteractionError::MissingField("user"),
            ),
            (
                form(r#"{"type":"block_actions","user":{"id":"U1"},"message":{"ts":"1.2"}}"#),
                InteractionError::MissingField("channel"),
            ),
            (
                form(r#"{"type":"block_actions","user":{"id":"U1"},"channel":{"id":"C1"}}"#),
                InteractionError::MissingField("message ts"),
            ),
            (
                form(
                    r#"{"type":"block_actions","user":{"id":""},"channel":{"id":"C1"},"message":{"ts":"1.2"}}"#,
                ),
                InteractionError::MissingField("user id"),
            ),
        ];
        for (body, expected) in cases {
            let got = Interaction::parse(body.as_bytes()).expect_err(&body);
            match (&got, &expected) {
                (InteractionError::BadJson(_), InteractionError::BadJson(_)) => {}
                _ => assert_eq!(got, expected, "{body}"),
            }
        }
        // Bytes that are not even UTF-8 are an error, not a panic.
        assert!(Interaction::parse(b"payload=%FF%FE\xff").is_err());
    }

    #[test]
    fn refuses_unknown_decisions() {
        let decide = |body: String| Interaction::parse(body.as_bytes()).expect("parse").click();
        assert_eq!(
            decide(body("escalate", ID)),
            Err(InteractionError::UnknownAction("escalate".into()))
        );
        assert_eq!(
            decide(body("approve", "not-an-id")),
            Err(InteractionError::BadRequestId("not-an-id".into()))
        );
        assert_eq!(
            decide(body("approve", "")),
            Err(InteractionError::BadRequestId(String::new()))
        );
        let no_actions = form(
            r#"{"type":"block_actions","user":{"id":"U1"},"channel":{"id":"C1"},"message":{"ts":"1.2"},"actions":[]}"#,
        );
        assert_eq!(decide(no_actions), Err(InteractionError::NoAction));
        let no_value = form(
            r#"{"type":"block_actions","user":{"id":"U1"},"channel":{"id":"C1"},"message":{"ts":"1.2"},"actions":[{"action_id":"deny"}]}"#,
        );
        assert_eq!(
            decide(no_value),
            Err(InteractionError::BadRequestId(String::new()))
        );
    }

    #[test]
    fn helper_body_round_trips_awkward_text() {
        let body = block_actions_body("U1", "o'brien & <co>", "C1", "1.000001", "approve", ID);
        let interaction = Interaction::parse(body.as_bytes()).expect("parse");
        assert_eq!(interaction.user_name, "o'brien & <co>");
    }
}
