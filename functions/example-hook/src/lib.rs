//! An example request hook: what a flow's `hook` points at.
//!
//! elevate invokes it synchronously when a request of the flow is submitted, with the JSON of
//! docs/contracts.md ("request hook"):
//!
//! ```json
//! {"type": "request_submitted", "flow": "<name>", "request": {...}, "person": {"name", "iam_user", "slack_id", "email"}}
//! ```
//!
//! and it answers `{"decision": "continue"}` (optionally with `"channel"`),
//! `{"decision": "approve", "reason": "..."}` or `{"decision": "deny", "reason": "..."}`.
//! This one reads an on-call file built into it (`on-call.toml`): a person on call is
//! approved for up to the file's `max_duration`; everyone else waits for approvers in the
//! file's `channel`. It never denies. It approves whatever flow names it: give each flow
//! that should trust the on-call file its own hook (or check `flow` here).
//!
//! A hook has about three seconds: whatever it cannot decide at once is `continue`, which is
//! also what elevate does when a hook fails or is late.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// The on-call file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// elevate names of the people on call.
    pub people: Vec<String>,
    /// The longest grant approved for them.
    pub max_duration: Duration,
    /// Where everyone else's requests go; `None` keeps the flow's channel.
    pub channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOnCall {
    people: Vec<String>,
    max_duration: String,
    channel: Option<String>,
}

/// The on-call file built into the hook.
pub const BUNDLED: &str = include_str!("../on-call.toml");

impl OnCall {
    /// The on-call file built into the hook.
    pub fn bundled() -> Result<Self, String> {
        Self::parse(BUNDLED).map_err(|e| format!("on-call.toml: {e}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawOnCall = toml::from_str(text).map_err(|e| e.to_string())?;
        let max_duration = parse_duration(&raw.max_duration)?;
        if let Some(channel) = &raw.channel {
            let mut chars = channel.chars();
            let id = matches!(chars.next(), Some('C' | 'G'))
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !id || channel.len() < 2 {
                return Err(format!("channel `{channel}` is not a Slack channel id"));
            }
        }
        Ok(OnCall {
            people: raw.people,
            max_duration,
            channel: raw.channel,
        })
    }
}

/// `30m`, `1h`, `90s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("max_duration `{text}` is not a duration like 30m or 1h");
    let (number, unit) = [("s", 1), ("m", 60), ("h", 3600)]
        .into_iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, unit)))
        .ok_or_else(bad)?;
    let n: u64 = number.parse().map_err(|_| bad())?;
    match n.checked_mul(unit) {
        Some(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(bad()),
    }
}

/// The part of the event this hook reads.
#[derive(Debug, Deserialize)]
struct Submitted {
    #[serde(rename = "type")]
    kind: String,
    request: RequestRef,
    person: PersonRef,
}

#[derive(Debug, Deserialize)]
struct RequestRef {
    id: String,
    /// Seconds.
    duration: u64,
}

#[derive(Debug, Deserialize)]
struct PersonRef {
    name: String,
}

/// Answers one submission.
pub fn handle(on_call: &OnCall, event: &Value) -> Value {
    let elsewhere = || match &on_call.channel {
        Some(channel) => json!({ "decision": "continue", "channel": channel }),
        None => json!({ "decision": "continue" }),
    };
    let event = match serde_json::from_value::<Submitted>(event.clone()) {
        Ok(event) if event.kind == "request_submitted" => event,
        Ok(event) => {
            tracing::warn!(kind = %event.kind, "not a submission; letting the request wait for approvers");
            return json!({ "decision": "continue" });
        }
        Err(err) => {
            tracing::warn!(error = %err, "not a request hook event; letting the request wait for approvers");
            return json!({ "decision": "continue" });
        }
    };
    let person = event.person.name.as_str();
    let asked = Duration::from_secs(event.request.duration);
    if !on_call.people.iter().any(|p| p == person) {
        tracing::info!(request_id = %event.request.id, person, "not on call");
        return elsewhere();
    }
    if asked > on_call.max_duration {
        tracing::info!(request_id = %event.request.id, person, asked_secs = asked.as_secs(), "on call, but asks for longer than the on-call file allows");
        return elsewhere();
    }
    tracing::info!(request_id = %event.request.id, person, "on call: approved");
    json!({
        "decision": "approve",
        "reason": format!(
            "{person} is on call (on-call.toml), asking for at most {} minutes",
            on_call.max_duration.as_secs() / 60
        ),
    })
}

#[cfg(test)]
mod tests;
