//! Interaction payloads: what Slack posts to `POST /slack/interactions` (`payload=<urlencoded
//! JSON>`) when someone clicks a button (`block_actions`) or submits the request modal
//! (`view_submission`), parsed at the boundary into typed values. Anything unexpected is a
//! typed error, never a panic.

use std::collections::HashMap;

use elevate_core::service::Decision;
use elevate_core::RequestId;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::blocks::{DECISION_BLOCK, END_ACCESS_BLOCK};
use crate::modal::{
    ACCESS_ACTION, ACCESS_BLOCK, DURATION_ACTION, DURATION_BLOCK, REASON_ACTION, REASON_BLOCK,
};

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "deny";
/// `action_id` of the Approve extension button of an ACTIVE grant's message.
pub const APPROVE_EXTENSION_ACTION: &str = "approve_extension";
/// `action_id` of the Deny extension button.
pub const DENY_EXTENSION_ACTION: &str = "deny_extension";
/// `action_id` of the Review button of a break-glass grant's message.
pub const REVIEW_ACTION: &str = "review";
/// `action_id` of the End access now button of a requester's direct message.
pub const END_ACCESS_ACTION: &str = "end_access";

/// The workspace and app of the bodies built here for tests and the local Slack page.
pub(crate) const LOCAL_TEAM_ID: &str = "T0ELEVATE";
pub(crate) const LOCAL_APP_ID: &str = "A0ELEVATE";

/// What an interaction body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A click on a message's button.
    Actions(Interaction),
    /// The request modal, submitted.
    ViewSubmission(ViewSubmission),
}

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
        Decision::ApproveExtension => APPROVE_EXTENSION_ACTION,
        Decision::DenyExtension => DENY_EXTENSION_ACTION,
        Decision::Review => REVIEW_ACTION,
    }
}

/// An Approve or Deny click on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub decision: Decision,
    pub request_id: RequestId,
}

/// What a click asks elevate to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clicked {
    /// An approver's Approve or Deny.
    Decide(Click),
    /// The requester's End access now on their ACTIVE grant.
    EndAccess(RequestId),
}

/// The request modal as its submitter filled it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSubmission {
    /// Slack user id of whoever submitted.
    pub user_id: String,
    /// `team.id`, or the user's `team_id`; empty when Slack sent neither.
    pub team_id: String,
    /// Their Slack handle, for messages only; identity is `user_id`.
    pub user_name: String,
    pub view_id: String,
    /// Which of elevate's views it is ([`crate::modal::REQUEST_CALLBACK`]).
    pub callback_id: String,
    /// What the view was opened with: the channel of the slash command.
    pub private_metadata: String,
    pub form: RequestForm,
}

/// The fields of the request modal; `None` where nothing was chosen or typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestForm {
    /// The chosen flow and target, as [`crate::modal::access_value`] wrote them.
    pub access: Option<String>,
    /// The chosen duration, as `elevate_core::format_duration` writes it (`1h`).
    pub duration: Option<String>,
    pub reason: Option<String>,
}

/// Why an interaction body was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    #[error("form body has no `payload` field")]
    NoPayload,
    #[error("payload is not valid interaction JSON: {0}")]
    BadJson(String),
    #[error("interaction type `{0}` is not handled (expected block_actions or view_submission)")]
    UnsupportedType(String),
    #[error("interaction payload lacks {0}")]
    MissingField(&'static str),
    #[error("interaction has no action")]
    NoAction,
    #[error("unknown action `{0}` (expected approve, deny or end_access)")]
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
    /// Read as a [`RawView`] for submissions only: a click inside some other app's view
    /// must not fail on it.
    view: Option<Value>,
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

#[derive(Deserialize)]
struct RawView {
    id: Option<String>,
    callback_id: Option<String>,
    private_metadata: Option<String>,
    state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    /// `values[block_id][action_id]`: the state of each input element.
    #[serde(default)]
    values: HashMap<String, HashMap<String, RawInput>>,
}

/// A `static_select` (`selected_option`) or a `plain_text_input` (`value`); both are null
/// while empty.
#[derive(Deserialize)]
struct RawInput {
    selected_option: Option<RawOption>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct RawOption {
    value: String,
}

/// Parses the raw `application/x-www-form-urlencoded` body Slack posts to the interactions
/// URL.
pub fn parse_payload(raw_body: &[u8]) -> Result<Payload, InteractionError> {
    let payload = form_urlencoded::parse(raw_body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value)
        .ok_or(InteractionError::NoPayload)?;
    let raw: RawPayload =
        serde_json::from_str(&payload).map_err(|e| InteractionError::BadJson(e.to_string()))?;
    match raw.kind.as_str() {
        "block_actions" => Interaction::from_raw(raw).map(Payload::Actions),
        "view_submission" => ViewSubmission::from_raw(raw).map(Payload::ViewSubmission),
        _ => Err(InteractionError::UnsupportedType(raw.kind)),
    }
}

/// Who sent a payload: their id (required), team and handle.
fn sender(
    user: Option<RawUser>,
    team: Option<RawTeam>,
) -> Result<(String, String, String), InteractionError> {
    let user = user.ok_or(InteractionError::MissingField("user"))?;
    if user.id.is_empty() {
        return Err(InteractionError::MissingField("user id"));
    }
    let team_id = team.map(|t| t.id).or(user.team_id).unwrap_or_default();
    let user_name = user.username.or(user.name).unwrap_or_default();
    Ok((user.id, team_id, user_name))
}

impl Interaction {
    /// Parses a body that must be a click (`block_actions`); a submission is
    /// [`InteractionError::UnsupportedType`]. [`parse_payload`] reads both.
    pub fn parse(raw_body: &[u8]) -> Result<Interaction, InteractionError> {
        match parse_payload(raw_body)? {
            Payload::Actions(interaction) => Ok(interaction),
            Payload::ViewSubmission(_) => Err(InteractionError::UnsupportedType(
                "view_submission".to_owned(),
            )),
        }
    }

    fn from_raw(raw: RawPayload) -> Result<Interaction, InteractionError> {
        let container = raw.container;
        let user = raw.user.ok_or(InteractionError::MissingField("user"))?;
        let channel_id = raw
            .channel
            .map(|c| c.id)
            .or_else(|| container.as_ref().and_then(|c| c.channel_id.clone()))
            .filter(|id| !id.is_empty())
            .ok_or(InteractionError::MissingField("channel"))?;
        let message_ts = raw
            .message
            .map(|m| m.ts)
            .or_else(|| container.as_ref().and_then(|c| c.message_ts.clone()))
            .filter(|ts| !ts.is_empty())
            .ok_or(InteractionError::MissingField("message ts"))?;
        let (user_id, team_id, user_name) = sender(Some(user), raw.team)?;
        Ok(Interaction {
            user_id,
            team_id,
            user_name,
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

    /// What the (first) clicked button asks for.
    pub fn clicked(&self) -> Result<Clicked, InteractionError> {
        let action = self.actions.first().ok_or(InteractionError::NoAction)?;
        let decision = match action.action_id.as_str() {
            APPROVE_ACTION => Some(Decision::Approve),
            DENY_ACTION => Some(Decision::Deny),
            APPROVE_EXTENSION_ACTION => Some(Decision::ApproveExtension),
            DENY_EXTENSION_ACTION => Some(Decision::DenyExtension),
            REVIEW_ACTION => Some(Decision::Review),
            END_ACCESS_ACTION => None,
            other => return Err(InteractionError::UnknownAction(other.to_owned())),
        };
        let value = action.value.as_deref().unwrap_or_default();
        let request_id: RequestId = value
            .parse()
            .map_err(|_| InteractionError::BadRequestId(value.to_owned()))?;
        Ok(match decision {
            Some(decision) => Clicked::Decide(Click {
                decision,
                request_id,
            }),
            None => Clicked::EndAccess(request_id),
        })
    }
}

impl ViewSubmission {
    fn from_raw(raw: RawPayload) -> Result<ViewSubmission, InteractionError> {
        let (user_id, team_id, user_name) = sender(raw.user, raw.team)?;
        let view = raw.view.ok_or(InteractionError::MissingField("view"))?;
        let view: RawView =
            serde_json::from_value(view).map_err(|e| InteractionError::BadJson(e.to_string()))?;
        let view_id = view
            .id
            .filter(|id| !id.is_empty())
            .ok_or(InteractionError::MissingField("view id"))?;
        let mut values = view.state.map(|s| s.values).unwrap_or_default();
        let mut input =
            |block: &str, action: &str| values.get_mut(block).and_then(|b| b.remove(action));
        let form = RequestForm {
            access: input(ACCESS_BLOCK, ACCESS_ACTION)
                .and_then(|i| i.selected_option)
                .map(|o| o.value),
            duration: input(DURATION_BLOCK, DURATION_ACTION)
                .and_then(|i| i.selected_option)
                .map(|o| o.value),
            reason: input(REASON_BLOCK, REASON_ACTION).and_then(|i| i.value),
        };
        Ok(ViewSubmission {
            user_id,
            team_id,
            user_name,
            view_id,
            callback_id: view.callback_id.unwrap_or_default(),
            private_metadata: view.private_metadata.unwrap_or_default(),
            form,
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
    let (label, style, block_id) = match action_id {
        DENY_ACTION => ("Deny", "danger", DECISION_BLOCK),
        APPROVE_EXTENSION_ACTION => ("Approve extension", "primary", DECISION_BLOCK),
        DENY_EXTENSION_ACTION => ("Deny extension", "danger", DECISION_BLOCK),
        END_ACCESS_ACTION => ("End access now", "danger", END_ACCESS_BLOCK),
        _ => ("Approve", "primary", DECISION_BLOCK),
    };
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user_id, "username": user_name, "name": user_name, "team_id": LOCAL_TEAM_ID },
        "api_app_id": LOCAL_APP_ID,
        "token": "standin-verification-token",
        "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
        "trigger_id": "1.2.standin",
        "team": { "id": LOCAL_TEAM_ID, "domain": "elevate-local" },
        "channel": { "id": channel, "name": channel },
        "message": { "type": "message", "ts": ts, "bot_id": "B0STANDIN" },
        "response_url": format!("https://hooks.slack.com/actions/{LOCAL_TEAM_ID}/{ts}/standin"),
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "text": { "type": "plain_text", "text": label, "emoji": true },
            "value": request_id,
            "style": style,
            "action_ts": ts,
        }],
    });
    payload_body(&payload)
}

/// A form body as Slack posts it when `user_id` submits `view` (the view as `views.open`
/// received it, with the `id` Slack gave it) filled in with `form`. For tests and the local
/// stand-in page, which sign it with [`crate::signature::sign`].
pub fn view_submission_body(
    user_id: &str,
    user_name: &str,
    view: &Value,
    form: &RequestForm,
) -> String {
    let selected = |block: &str, value: &Option<String>| match value {
        Some(value) => json!({
            "type": "static_select",
            "selected_option": option_of(view, block, value).unwrap_or_else(|| json!({
                "text": { "type": "plain_text", "text": value, "emoji": true },
                "value": value,
            })),
        }),
        None => json!({ "type": "static_select", "selected_option": null }),
    };
    let values = json!({
        ACCESS_BLOCK: { ACCESS_ACTION: selected(ACCESS_BLOCK, &form.access) },
        DURATION_BLOCK: { DURATION_ACTION: selected(DURATION_BLOCK, &form.duration) },
        REASON_BLOCK: { REASON_ACTION: { "type": "plain_text_input", "value": form.reason } },
    });
    let mut submitted = match view {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    for (key, default) in [
        ("id", json!("V0ELEVATE")),
        ("type", json!("modal")),
        ("hash", json!("1700000000.standin")),
        ("private_metadata", json!("")),
        ("callback_id", json!("")),
    ] {
        submitted.entry(key).or_insert(default);
    }
    submitted.insert("team_id".into(), json!(LOCAL_TEAM_ID));
    submitted.insert("app_id".into(), json!(LOCAL_APP_ID));
    submitted.insert("state".into(), json!({ "values": values }));
    let payload = json!({
        "type": "view_submission",
        "team": { "id": LOCAL_TEAM_ID, "domain": "elevate-local" },
        "user": { "id": user_id, "username": user_name, "name": user_name, "team_id": LOCAL_TEAM_ID },
        "api_app_id": LOCAL_APP_ID,
        "token": "standin-verification-token",
        "trigger_id": "1.3.standin",
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null,
    });
    payload_body(&payload)
}

/// The option of `view`'s select in block `block_id` whose value is `value`, as Slack echoes
/// it back in `selected_option`.
fn option_of(view: &Value, block_id: &str, value: &str) -> Option<Value> {
    let element = &view["blocks"]
        .as_array()?
        .iter()
        .find(|block| block["block_id"] == block_id)?["element"];
    let grouped = element["option_groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["options"].as_array().into_iter().flatten());
    element["options"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(grouped)
        .find(|option| option["value"] == value)
        .cloned()
}

fn payload_body(payload: &Value) -> String {
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

    fn decide(clicked: Clicked) -> Click {
        match clicked {
            Clicked::Decide(click) => click,
            other => panic!("not a decision: {other:?}"),
        }
    }

    fn submission(body: &str) -> ViewSubmission {
        match parse_payload(body.as_bytes()).expect("parse") {
            Payload::ViewSubmission(submission) => submission,
            other => panic!("not a submission: {other:?}"),
        }
    }

    #[test]
    fn parses_an_approve_click() {
        let interaction = Interaction::parse(body("approve", ID).as_bytes()).expect("parse");
        assert_eq!(interaction.user_id, "U0BOB0001");
        assert_eq!(interaction.user_name, "bob");
        assert_eq!(interaction.team_id, "T0ELEVATE");
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
        let click = decide(interaction.clicked().expect("click"));
        assert_eq!(click.decision, Decision::Approve);
        assert_eq!(click.request_id.as_str(), ID);
        assert_eq!(
            parse_payload(body("approve", ID).as_bytes()),
            Ok(Payload::Actions(interaction))
        );
    }

    #[test]
    fn parses_a_deny_click() {
        let click = Interaction::parse(body("deny", ID).as_bytes())
            .and_then(|i| i.clicked())
            .map(decide)
            .expect("click");
        assert_eq!(click.decision, Decision::Deny);
        assert_eq!(click.request_id.as_str(), ID);
    }

    #[test]
    fn parses_an_end_access_click() {
        let body = block_actions_body(
            "U0ALICE01",
            "alice",
            "D0ALICEDM",
            "1700000000.000200",
            END_ACCESS_ACTION,
            ID,
        );
        let interaction = Interaction::parse(body.as_bytes()).expect("parse");
        assert_eq!(interaction.channel_id, "D0ALICEDM");
        assert_eq!(
            interaction.clicked(),
            Ok(Clicked::EndAccess(ID.parse().expect("id")))
        );
        // The body carries the button as the direct message shows it.
        let (_, payload) = form_urlencoded::parse(body.as_bytes())
            .find(|(key, _)| key == "payload")
            .expect("payload");
        let payload: Value = serde_json::from_str(&payload).expect("json");
        let action = &payload["actions"][0];
        assert_eq!(action["text"]["text"], "End access now");
        assert_eq!(action["style"], "danger");
        assert_eq!(action["block_id"], END_ACCESS_BLOCK);
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
        assert_eq!(interaction.team_id, "T1");
        assert_eq!(interaction.channel_id, "CBR2V3XEX");
        assert_eq!(interaction.message_ts, "1548261231.000200");
        let click = decide(interaction.clicked().expect("click"));
        assert_eq!(click.decision, Decision::Deny);
        assert_eq!(click.request_id.as_str(), ID, "request ids are normalised");
    }

    /// Trimmed from a real view_submission payload: `team` null (an org-wide install), the
    /// user's `team_id`, a view echoing its blocks, and the state of its inputs.
    const SUBMISSION: &str = r#"{
        "type": "view_submission",
        "team": null,
        "user": {"id": "U0ALICE01", "username": "alice", "name": "alice", "team_id": "T0A1"},
        "api_app_id": "A0ELEVATE",
        "token": "verification-token",
        "trigger_id": "12345.98765.abcd2358fdea",
        "view": {
            "id": "V0REQUEST1",
            "team_id": "T0A1",
            "type": "modal",
            "blocks": [{"type": "input", "block_id": "access", "label": {"type": "plain_text", "text": "Access"}}],
            "private_metadata": "C0DEVOPS",
            "callback_id": "elevate_request",
            "state": {"values": {
                "access": {"access_select": {"type": "static_select", "selected_option": {
                    "text": {"type": "plain_text", "text": "admins", "emoji": false},
                    "value": "infra_access/admins"}}},
                "duration": {"duration_select": {"type": "static_select", "selected_option": {
                    "text": {"type": "plain_text", "text": "1h", "emoji": false},
                    "value": "1h"}}},
                "reason": {"reason_input": {"type": "plain_text_input", "value": "debug prod incident #42"}},
                "other": {"picked": {"type": "datepicker", "selected_date": "2024-01-01"}}
            }},
            "hash": "156772938.1827394",
            "title": {"type": "plain_text", "text": "Request access"},
            "previous_view_id": null,
            "root_view_id": "V0REQUEST1",
            "app_id": "A0ELEVATE",
            "bot_id": "B0ELEVATE"
        },
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null
    }"#;

    #[test]
    fn parses_a_real_slack_shaped_view_submission() {
        let got = submission(&form(SUBMISSION));
        assert_eq!(
            got,
            ViewSubmission {
                user_id: "U0ALICE01".into(),
                team_id: "T0A1".into(),
                user_name: "alice".into(),
                view_id: "V0REQUEST1".into(),
                callback_id: "elevate_request".into(),
                private_metadata: "C0DEVOPS".into(),
                form: RequestForm {
                    access: Some("infra_access/admins".into()),
                    duration: Some("1h".into()),
                    reason: Some("debug prod incident #42".into()),
                },
            }
        );
        // A click is not a submission.
        assert_eq!(
            Interaction::parse(form(SUBMISSION).as_bytes()),
            Err(InteractionError::UnsupportedType("view_submission".into()))
        );
    }

    #[test]
    fn fields_left_empty_are_none() {
        let mut payload: Value = serde_json::from_str(SUBMISSION).expect("json");
        let values = &mut payload["view"]["state"]["values"];
        values["access"]["access_select"]["selected_option"] = Value::Null;
        values["reason"]["reason_input"]["value"] = Value::Null;
        values.as_object_mut().expect("values").remove("duration");
        payload["team"] = json!({ "id": "T0TEAM" });
        let got = submission(&form(&payload.to_string()));
        assert_eq!(got.form, RequestForm::default());
        assert_eq!(got.team_id, "T0TEAM", "team.id comes first");
        // No state at all: nothing was filled in.
        payload["view"]
            .as_object_mut()
            .expect("view")
            .remove("state");
        assert_eq!(
            submission(&form(&payload.to_string())).form,
            RequestForm::default()
        );
    }

    #[test]
    fn refuses_malformed_submissions() {
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut payload: Value = serde_json::from_str(SUBMISSION).expect("json");
            edit(&mut payload);
            parse_payload(form(&payload.to_string()).as_bytes())
        };
        let remove = |field: &'static str| {
            move |p: &mut Value| {
                p.as_object_mut().expect("payload").remove(field);
            }
        };
        assert_eq!(
            with(&remove("user")),
            Err(InteractionError::MissingField("user"))
        );
        assert_eq!(
            with(&|p| p["user"]["id"] = json!("")),
            Err(InteractionError::MissingField("user id"))
        );
        assert_eq!(
            with(&remove("view")),
            Err(InteractionError::MissingField("view"))
        );
        assert_eq!(
            with(&|p| {
                p["view"].as_object_mut().expect("view").remove("id");
            }),
            Err(InteractionError::MissingField("view id"))
        );
        for broken in [
            json!("a string"),
            json!({ "values": { "access": { "access_select": { "selected_option": 7 } } } }),
            json!({ "values": { "reason": { "reason_input": { "value": ["x"] } } } }),
            json!({ "values": { "access": { "access_select": { "selected_option": {} } } } }),
        ] {
            let got = with(&|p| p["view"]["state"] = broken.clone());
            assert!(
                matches!(got, Err(InteractionError::BadJson(_))),
                "{broken}: {got:?}"
            );
        }
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
                form(r#"{"type":"view_closed","user":{"id":"U1"}}"#),
                InteractionError::UnsupportedType("view_closed".into()),
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
            (
                form(r#"{"type":"view_submission","view":{"id":"V1"}}"#),
                InteractionError::MissingField("user"),
            ),
        ];
        for (body, expected) in cases {
            let got = parse_payload(body.as_bytes()).expect_err(&body);
            match (&got, &expected) {
                (InteractionError::BadJson(_), InteractionError::BadJson(_)) => {}
                _ => assert_eq!(got, expected, "{body}"),
            }
        }
        // Bytes that are not even UTF-8 are an error, not a panic.
        assert!(parse_payload(b"payload=%FF%FE\xff").is_err());
    }

    #[test]
    fn a_click_inside_another_apps_view_is_still_a_click() {
        let mut payload: Value = serde_json::from_str(
            &form_urlencoded::parse(body("approve", ID).as_bytes())
                .find(|(key, _)| key == "payload")
                .expect("payload")
                .1,
        )
        .expect("json");
        payload["view"] = json!({ "id": 5, "state": "unexpected" });
        let interaction = Interaction::parse(form(&payload.to_string()).as_bytes());
        assert!(matches!(
            interaction.and_then(|i| i.clicked()),
            Ok(Clicked::Decide(_))
        ));
    }

    #[test]
    fn refuses_unknown_clicks() {
        let clicked = |body: String| {
            Interaction::parse(body.as_bytes())
                .expect("parse")
                .clicked()
        };
        assert_eq!(
            clicked(body("escalate", ID)),
            Err(InteractionError::UnknownAction("escalate".into()))
        );
        for action in [APPROVE_ACTION, END_ACCESS_ACTION] {
            assert_eq!(
                clicked(body(action, "not-an-id")),
                Err(InteractionError::BadRequestId("not-an-id".into()))
            );
            assert_eq!(
                clicked(body(action, "")),
                Err(InteractionError::BadRequestId(String::new()))
            );
        }
        let no_actions = form(
            r#"{"type":"block_actions","user":{"id":"U1"},"channel":{"id":"C1"},"message":{"ts":"1.2"},"actions":[]}"#,
        );
        assert_eq!(clicked(no_actions), Err(InteractionError::NoAction));
        let no_value = form(
            r#"{"type":"block_actions","user":{"id":"U1"},"channel":{"id":"C1"},"message":{"ts":"1.2"},"actions":[{"action_id":"end_access"}]}"#,
        );
        assert_eq!(
            clicked(no_value),
            Err(InteractionError::BadRequestId(String::new()))
        );
    }

    #[test]
    fn helper_body_round_trips_awkward_text() {
        let body = block_actions_body("U1", "o'brien & <co>", "C1", "1.000001", "approve", ID);
        let interaction = Interaction::parse(body.as_bytes()).expect("parse");
        assert_eq!(interaction.user_name, "o'brien & <co>");
    }

    #[test]
    fn submission_body_round_trips_the_form() {
        let view = json!({
            "id": "V0OPENED",
            "type": "modal",
            "callback_id": "elevate_request",
            "private_metadata": "C0DEV & <ops>",
            "blocks": [],
        });
        let forms = [
            RequestForm::default(),
            RequestForm {
                access: Some("infra_access/admins & <co>/x".into()),
                duration: Some("1h30m".into()),
                reason: Some("100% = *urgent* <!channel> & ünïcode\nnext line".into()),
            },
            RequestForm {
                access: None,
                duration: Some("15m".into()),
                reason: Some(String::new()),
            },
        ];
        for form in forms {
            let body = view_submission_body("U0ALICE01", "o'brien", &view, &form);
            let got = submission(&body);
            assert_eq!(got.form, form);
            assert_eq!(got.user_id, "U0ALICE01");
            assert_eq!(got.user_name, "o'brien");
            assert_eq!(got.team_id, LOCAL_TEAM_ID);
            assert_eq!(got.view_id, "V0OPENED");
            assert_eq!(got.callback_id, "elevate_request");
            assert_eq!(got.private_metadata, "C0DEV & <ops>");
        }
        // A view as built, before Slack gave it an id, still submits with one.
        let got = submission(&view_submission_body(
            "U1",
            "u",
            &json!({ "type": "modal" }),
            &RequestForm::default(),
        ));
        assert!(!got.view_id.is_empty());
    }
}
