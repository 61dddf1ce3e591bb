//! The events elevate's functions send each other, one type per contract: the sender
//! serializes it and the receiver deserializes the same type (docs/contracts.md, "Events").
//!
//! - [`EscalateEvent`]: approve and the sweep start an escalation with it (asynchronous
//!   invoke of escalate);
//! - [`ScheduledAction`]: the input of every EventBridge Scheduler schedule (to revoke);
//! - [`FailedInvocation`]: what Lambda hands an `OnFailure` destination once an asynchronous
//!   invocation has failed every retry (escalate's failures, to revoke);
//! - [`FollowUp`]: the work that follows a step taken from Slack, run after Slack has been
//!   answered (asynchronous invoke of approve itself, or of revoke for "End access now").

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::RequestId;

/// Which request to escalate: `{"request_id": "<uuid>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct EscalateEvent {
    pub request_id: RequestId,
}

/// What a one-time schedule asks the revoke function to do; this is the schedule's JSON input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ScheduledAction {
    /// End an ACTIVE grant at its expiry.
    Expire { request_id: RequestId },
    /// Time a PENDING request out when nobody answered.
    Timeout { request_id: RequestId },
    /// Remind the approvers of a PENDING request nobody answered (`[flows.reminders]`).
    Remind { request_id: RequestId },
    /// Ask the backup approvers of a PENDING request nobody answered.
    AskBackup { request_id: RequestId },
    /// Periodic sweep for anything missed.
    Sweep,
}

impl ScheduledAction {
    /// The schedule name for this action: purpose and request id, so that each request has at
    /// most one schedule per purpose and re-scheduling replaces it.
    pub fn schedule_name(&self) -> String {
        match self {
            ScheduledAction::Expire { request_id } => format!("revoke-{request_id}"),
            ScheduledAction::Timeout { request_id } => format!("timeout-{request_id}"),
            // Under `timeout-`: the same functions write them, with the same permission.
            ScheduledAction::Remind { request_id } => format!("timeout-{request_id}-remind"),
            ScheduledAction::AskBackup { request_id } => format!("timeout-{request_id}-backup"),
            ScheduledAction::Sweep => "sweep".to_owned(),
        }
    }
}

/// Work that follows a step taken from Slack. Slack wants its answer within 3 seconds, so
/// the step itself (the request stored, the decision written) is taken before answering, and
/// what may be slow (Slack messages, starting the escalation, ending access) runs after it:
/// `{"follow_up": "opened"|"decided"|"refused"|"end_access", ...}`.
///
/// Each is safe to run again: a retried follow-up reads the request as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "follow_up", rename_all = "snake_case")]
pub enum FollowUp {
    /// A request opened from Slack is stored: announce it to the approvers, schedule its
    /// time-out, and confirm it to the requester.
    Opened { request_id: RequestId },
    /// A decision taken from Slack is stored: show it, tell the requester, start the
    /// escalation of an approval.
    Decided { request_id: RequestId },
    /// A Slack action elevate refused: tell `slack_user_id`, and only them, why.
    Refused {
        channel: String,
        slack_user_id: String,
        text: String,
    },
    /// "End access now", clicked by `slack_user_id` of workspace `team_id` in `channel`:
    /// the revoke function (which may remove access) ends the grant.
    EndAccess {
        request_id: RequestId,
        team_id: String,
        slack_user_id: String,
        channel: String,
    },
}

impl FollowUp {
    /// The request it is about, for logs.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            FollowUp::Opened { request_id }
            | FollowUp::Decided { request_id }
            | FollowUp::EndAccess { request_id, .. } => Some(request_id),
            FollowUp::Refused { .. } => None,
        }
    }
}

/// The record Lambda sends to an asynchronous invocation's `OnFailure` destination: the
/// event `P` that could not be handled, and why. Fields elevate does not read are kept so that
/// a sender (the local stack's Lambda) writes what Lambda writes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedInvocation<P> {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub timestamp: String,
    pub request_context: InvocationContext,
    pub request_payload: P,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_context: Option<ResponseContext>,
    /// The function's error object. Lambda writes whatever the function answered, so a
    /// payload of another shape reads as none rather than losing the record.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_payload: Option<FunctionError>,
}

/// `requestContext` of a [`FailedInvocation`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationContext {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub function_arn: String,
    /// `RetriesExhausted` or `EventAgeExceeded`.
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_invoke_count: Option<u64>,
}

/// `responseContext` of a [`FailedInvocation`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

/// The error object a Rust (or any) Lambda function answers when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub error_message: String,
}

impl FailedInvocation<EscalateEvent> {
    /// Why the escalation failed, for the FAILED request: the function's error message (or
    /// the condition when there is none) and how many attempts were made.
    pub fn failure(&self) -> String {
        let context = &self.request_context;
        let cause = match &self.response_payload {
            Some(error) if !error.error_message.is_empty() => error.error_message.clone(),
            _ if context.condition == "EventAgeExceeded" => {
                "the escalation was not run before its event expired".to_owned()
            }
            _ => format!("the escalation failed ({})", context.condition),
        };
        match context.approximate_invoke_count {
            Some(n) => format!("{cause} (after {n} attempts)"),
            None => cause,
        }
    }
}

fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_names_the_error_and_the_attempts() {
        let record: FailedInvocation<EscalateEvent> = serde_json::from_value(json!({
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {"request_id": "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05"},
            "responsePayload": {"errorType": "EscalationFailed", "errorMessage": "denied"}
        }))
        .expect("record");
        assert_eq!(record.failure(), "denied (after 3 attempts)");
    }

    #[test]
    fn a_failure_without_an_error_object_names_the_condition() {
        for (payload, expected) in [
            (
                json!(null),
                "the escalation was not run before its event expired",
            ),
            (
                json!("timeout"),
                "the escalation was not run before its event expired",
            ),
        ] {
            let record: FailedInvocation<EscalateEvent> = serde_json::from_value(json!({
                "requestContext": {"condition": "EventAgeExceeded"},
                "requestPayload": {"request_id": "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05"},
                "responsePayload": payload
            }))
            .expect("record");
            assert_eq!(record.failure(), expected);
        }
        let record: FailedInvocation<EscalateEvent> = serde_json::from_value(json!({
            "requestContext": {"condition": "RetriesExhausted"},
            "requestPayload": {"request_id": "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05"}
        }))
        .expect("record");
        assert_eq!(record.failure(), "the escalation failed (RetriesExhausted)");
    }

    #[test]
    fn schedule_inputs_are_tagged_by_action() {
        let id: RequestId = "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05".parse().expect("id");
        let action = ScheduledAction::Expire {
            request_id: id.clone(),
        };
        assert_eq!(
            serde_json::to_value(&action).expect("json"),
            json!({"action": "expire", "request_id": id})
        );
        assert_eq!(action.schedule_name(), format!("revoke-{id}"));
        assert_eq!(
            serde_json::to_value(ScheduledAction::Sweep).expect("json"),
            json!({"action": "sweep"})
        );
    }
}

/// The event a flow's request hook receives when a request is submitted, before anything is
/// stored (docs/contracts.md, "request hook"):
/// `{"type": "request_submitted", "flow", "request": {...}, "person": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEvent<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub flow: &'a str,
    /// The request as it will be stored (PENDING, with its id and terms).
    pub request: &'a crate::model::Request,
    pub person: HookPerson<'a>,
}

/// The requester, as a hook sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookPerson<'a> {
    pub name: &'a str,
    pub iam_user: &'a str,
    pub slack_id: &'a str,
    pub email: &'a str,
}

impl<'a> HookEvent<'a> {
    pub const SUBMITTED: &'static str = "request_submitted";

    pub fn submitted(
        request: &'a crate::model::Request,
        person: &'a crate::config::Person,
    ) -> Self {
        HookEvent {
            kind: Self::SUBMITTED,
            flow: &request.flow,
            request,
            person: HookPerson {
                name: &person.name,
                iam_user: &person.iam_user,
                slack_id: &person.slack_id,
                email: &person.email,
            },
        }
    }
}

/// What a request hook answers: `{"decision": "continue"}` (optionally with `"channel"`, the
/// approvers channel to post to instead of the flow's), `{"decision": "approve", "reason"}`
/// or `{"decision": "deny", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum HookAnswer {
    Continue {
        #[serde(default)]
        channel: Option<String>,
    },
    Approve {
        reason: String,
    },
    Deny {
        reason: String,
    },
}

/// Longest reason a hook may give (what Slack and the audit trail show).
pub const HOOK_REASON_MAX: usize = 500;

impl HookAnswer {
    /// Reads a hook's answer, refusing what elevate cannot act on safely: an approval or
    /// denial without a reason, a reason with control characters or over
    /// [`HOOK_REASON_MAX`] characters, a channel that is not a Slack channel id.
    pub fn parse(answer: serde_json::Value) -> Result<Self, String> {
        let parsed: HookAnswer = serde_json::from_value(answer.clone()).map_err(|e| {
            format!(
                "answered {}, expected {{\"decision\": \"continue\"|\"approve\"|\"deny\", ...}} ({e})",
                fit(&answer.to_string(), 200)
            )
        })?;
        match &parsed {
            HookAnswer::Continue { channel: Some(id) } => {
                if !is_channel_id(id) {
                    return Err(format!(
                        "answered channel {:?}, which is not a Slack channel id (C… or G…)",
                        fit(id, 100)
                    ));
                }
            }
            HookAnswer::Continue { channel: None } => {}
            HookAnswer::Approve { reason } | HookAnswer::Deny { reason } => {
                if reason.trim().is_empty() {
                    return Err("answered a decision without a reason".to_owned());
                }
                if reason.chars().any(char::is_control) {
                    return Err("answered a reason with control characters".to_owned());
                }
                if reason.chars().count() > HOOK_REASON_MAX {
                    return Err(format!(
                        "answered a reason longer than {HOOK_REASON_MAX} characters"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// A Slack channel id: `C` (public) or `G` (private) and upper-case letters and digits.
pub fn is_channel_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('C' | 'G'))
        && (2..=80).contains(&id.len())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `text` cut to `max` characters for a log line.
fn fit(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
