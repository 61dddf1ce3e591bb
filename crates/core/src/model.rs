//! The request (a grant once approved) and the values it is made of.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Person, Target};
use crate::names::{FlowName, PersonName, TargetName};

/// Identifier of one access request: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    /// A fresh id whose time component is `now`.
    pub fn generate(now: DateTime<Utc>) -> Self {
        let secs = u64::try_from(now.timestamp()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, now.timestamp_subsec_nanos());
        Self(uuid::Uuid::new_v7(ts).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text was not a request id (a UUID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a request id (expected a UUID such as 0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d)")]
pub struct InvalidRequestId(pub String);

impl FromStr for RequestId {
    type Err = InvalidRequestId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = uuid::Uuid::parse_str(s.trim()).map_err(|_| InvalidRequestId(s.to_owned()))?;
        Ok(Self(parsed.hyphenated().to_string()))
    }
}

impl TryFrom<String> for RequestId {
    type Error = InvalidRequestId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a request is in its life; `crate::machine` has the moves between states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Pending,
    Approved,
    Active,
    Expired,
    Revoked,
    Denied,
    Cancelled,
    TimedOut,
    Failed,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Pending,
        State::Approved,
        State::Active,
        State::Expired,
        State::Revoked,
        State::Denied,
        State::Cancelled,
        State::TimedOut,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Approved => "APPROVED",
            State::Active => "ACTIVE",
            State::Expired => "EXPIRED",
            State::Revoked => "REVOKED",
            State::Denied => "DENIED",
            State::Cancelled => "CANCELLED",
            State::TimedOut => "TIMED_OUT",
            State::Failed => "FAILED",
        }
    }

    /// No further transition can leave this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Expired | State::Revoked | State::Denied | State::Cancelled | State::TimedOut
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state `{0}` (expected one of PENDING, APPROVED, ACTIVE, EXPIRED, REVOKED, DENIED, CANCELLED, TIMED_OUT, FAILED)")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == wanted)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Who caused a transition: a person of the config, or a part of elevate itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// A person of `elevate.toml`, by name.
    Person(String),
    /// A component of elevate (`escalate`, `revoke`, `sweep`, ...).
    System(String),
}

impl Actor {
    pub fn person(name: impl Into<String>) -> Self {
        Actor::Person(name.into())
    }

    pub fn system(component: impl Into<String>) -> Self {
        Actor::System(component.into())
    }

    pub fn person_name(&self) -> Option<&str> {
        match self {
            Actor::Person(name) => Some(name),
            Actor::System(_) => None,
        }
    }

    /// The rule or hook this actor is, if it is one.
    pub fn auto_decider(&self) -> Option<AutoDecider> {
        match self {
            Actor::Person(_) => None,
            Actor::System(component) => AutoDecider::from_component(component),
        }
    }
}

/// Something other than a person that decides a request on its own. It acts as a system
/// actor whose component names it, so the audit trail says which one decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoDecider {
    /// An auto-approval rule of the flow, by name (`elevate:rule:<name>`).
    Rule(String),
    /// The flow's request hook, by function (`elevate:hook:<function>`).
    Hook(String),
    /// A break-glass request, active at once and reviewed afterwards (`elevate:break_glass`).
    BreakGlass,
}

impl AutoDecider {
    /// Its component name, as recorded after `elevate:`.
    pub fn component(&self) -> String {
        match self {
            AutoDecider::Rule(name) => format!("rule:{name}"),
            AutoDecider::Hook(function) => format!("hook:{function}"),
            AutoDecider::BreakGlass => "break_glass".to_owned(),
        }
    }

    /// The decider a system component names, if it is one.
    pub fn from_component(component: &str) -> Option<Self> {
        if component == "break_glass" {
            return Some(AutoDecider::BreakGlass);
        }
        if let Some(name) = component.strip_prefix("rule:") {
            return Some(AutoDecider::Rule(name.to_owned()));
        }
        component
            .strip_prefix("hook:")
            .map(|function| AutoDecider::Hook(function.to_owned()))
    }

    /// The decider a recorded actor (`elevate:<component>`) names, if it is one.
    pub fn from_recorded(actor: &str) -> Option<Self> {
        actor
            .strip_prefix("elevate:")
            .and_then(AutoDecider::from_component)
    }
}

impl fmt::Display for AutoDecider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoDecider::Rule(name) => write!(f, "rule {name}"),
            AutoDecider::Hook(function) => write!(f, "hook {function}"),
            AutoDecider::BreakGlass => f.write_str("break-glass"),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(name) => f.write_str(name),
            Actor::System(component) => write!(f, "elevate:{component}"),
        }
    }
}

/// What a grant gives and to whom, fixed when the request is opened. Escalation, revocation,
/// read-back and reconciliation act on these terms only, never on the current `elevate.toml`,
/// so a person offboarded, a flow renamed or a group changed mid-grant still ends cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// The target as configured when the request was opened: its name and what it grants.
    pub target: Target,
    /// The requester as configured then: their IAM user, Slack id and email.
    pub person: Person,
}

/// How the live role sessions of an ended grant were ended (iam_group targets that name the
/// roles their group may assume). Ordered by how far the ending reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionsEnded {
    /// Each role denies the person's sessions issued before the end.
    Person,
    /// A role's policy had no room left for one more person, so it denies every session
    /// issued before the end, the person's included (fail closed).
    AllSessions,
}

impl SessionsEnded {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionsEnded::Person => "person",
            SessionsEnded::AllSessions => "all_sessions",
        }
    }
}

/// Who did something, and the authenticated principal behind them: the caller's ARN for API
/// calls, `slack:<team>/<user>` for clicks, the function for elevate's own steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct By {
    pub actor: Actor,
    pub principal: String,
}

impl By {
    pub fn person(name: impl Into<String>, principal: impl Into<String>) -> Self {
        By {
            actor: Actor::Person(name.into()),
            principal: principal.into(),
        }
    }

    pub fn system(component: impl Into<String>, principal: impl Into<String>) -> Self {
        By {
            actor: Actor::System(component.into()),
            principal: principal.into(),
        }
    }
}

/// The message that announced a request to its approvers, so it can be updated later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel: String,
    pub ts: String,
}

/// One approval of a request or of an extension: who gave it and when. `by` is a person's
/// name, or `elevate:<component>` for a rule, hook or break-glass (`elevate:rule:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// More time asked for on an ACTIVE grant, waiting for its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// How much longer the grant would last.
    #[serde(with = "duration_secs")]
    pub by: Duration,
    pub reason: String,
    pub asked_at: DateTime<Utc>,
    /// The approvals given so far (distinct people).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// A break-glass grant's review: active at once, it must be acknowledged by an approver
/// within the flow's `review_within`, or it is marked unreviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// When an approver must have acknowledged it.
    pub review_by: DateTime<Utc>,
    /// The approver who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<DateTime<Utc>>,
    /// `review_by` passed without an acknowledgement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreviewed: bool,
}

impl Request {
    /// Whether the flow's backup approvers were asked (they may decide it while PENDING).
    pub fn backups_asked(&self) -> bool {
        self.reminders
            .as_ref()
            .is_some_and(|r| r.backup_asked_at.is_some())
    }
}

impl BreakGlass {
    /// Whether it still waits for an acknowledgement (reviewed late is still reviewed).
    pub fn awaits_review(&self) -> bool {
        self.reviewed_by.is_none()
    }
}

/// How a PENDING request nobody answered was brought up again (`[flows.reminders]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminders {
    /// When the approvers were reminded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_at: Option<DateTime<Utc>>,
    /// When the flow's backup approvers were asked; from then on they may decide it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_asked_at: Option<DateTime<Utc>>,
    /// The request as posted again in the backup channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_message: Option<MessageRef>,
}

/// One access request and, once approved, the grant it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub flow: FlowName,
    /// Name of the flow target the access is granted on.
    pub target: TargetName,
    /// Name of the requesting person.
    pub requester: PersonName,
    /// What the grant gives; `None` only on requests stored before terms were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<Terms>,
    pub reason: String,
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    pub state: State,
    pub created_at: DateTime<Utc>,
    /// When a PENDING request times out unanswered.
    pub pending_until: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The approver who approved or denied, or the requester who cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// How many distinct approvers the flow asked for when the request was opened.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub approvals_required: u32,
    /// The approvals given so far (or, once APPROVED, all of them), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// The approvers channel a request hook sent the request to, instead of the flow's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// More time asked for on the ACTIVE grant, while it waits for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
    /// Set on a break-glass request: its review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
    /// Set once a request nobody answered was brought up again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Reminders>,
    /// How much time approved extensions added to the grant (already in `duration`).
    #[serde(
        default,
        with = "duration_secs",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub extended: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Who ended an active grant early, when it was not its expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// When the grant ended while another grant of the same access still needed it: that
    /// grant. The access stayed; without it, ending this grant removed the access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_access_for: Option<RequestId>,
    /// How the role sessions the grant allowed were ended, when its target names roles (or,
    /// for a permission set, sets `end_sessions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_ended: Option<SessionsEnded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageRef>,
    /// Sequence number of the last audit event of this request.
    pub audit_seq: u64,
    /// SHA-256 (hex) of the last audit event of this request: the head of its chain.
    pub audit_head: String,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Request {
    /// The rule or hook (not a person) that decided the request, if one did.
    pub fn decided_automatically(&self) -> Option<AutoDecider> {
        self.decided_by
            .as_deref()
            .and_then(AutoDecider::from_recorded)
    }

    /// Whether a rule or hook (not a person) approved the request.
    pub fn approved_automatically(&self) -> bool {
        self.state != State::Denied && self.decided_automatically().is_some()
    }

    /// Whether `who` has approved the request (or, while one is asked, its extension).
    pub fn approved_by(&self, who: &str) -> bool {
        let approvals = match (&self.extension, self.state) {
            (Some(extension), State::Active) => &extension.approvals,
            _ => &self.approvals,
        };
        approvals.iter().any(|a| a.by == who)
    }

    /// Whether the grant still covers `now` (ACTIVE and not yet expired).
    pub fn covers(&self, now: DateTime<Utc>) -> bool {
        self.state == State::Active && self.expires_at.is_some_and(|at| at > now)
    }

    /// The AWS account the grant is in, for a permission set target.
    pub fn account(&self) -> Option<&str> {
        self.terms.as_ref()?.target.kind.account()
    }

    /// The target as people read it: its name, and the account for a permission set.
    pub fn target_label(&self) -> String {
        match self.account() {
            Some(account) => format!("{} in account {account}", self.target),
            None => self.target.to_string(),
        }
    }
}

/// Durations are stored and sent as whole seconds.
pub mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Parses durations as people write them: `90s`, `15m`, `1h`, `1h30m`, `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError(text.to_owned()));
    }
    let parsed = humantime::parse_duration(trimmed).map_err(|_| DurationError(text.to_owned()))?;
    if parsed.subsec_nanos() != 0 {
        return Err(DurationError(text.to_owned()));
    }
    Ok(parsed)
}

/// Formats whole-second durations the way [`parse_duration`] reads them (`1h30m`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (write it like 30m, 1h, 1h30m or 2d)")]
pub struct DurationError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for text in ["90s", "15m", "1h", "1h30m", "2d", "1d2h3m4s"] {
            let d = parse_duration(text).expect(text);
            assert_eq!(parse_duration(&format_duration(d)).expect("reparse"), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(parse_duration("1h").expect("1h"), Duration::from_secs(3600));
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in ["", "  ", "soon", "1 fortnight", "-1h", "1.5ms"] {
            assert!(parse_duration(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn states_parse_in_any_case() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>().expect("parse"), state);
            assert_eq!(
                state
                    .as_str()
                    .to_lowercase()
                    .parse::<State>()
                    .expect("parse"),
                state
            );
        }
        assert!("ACTIVATED".parse::<State>().is_err());
        let json = serde_json::to_string(&State::TimedOut).expect("json");
        assert_eq!(json, "\"TIMED_OUT\"");
    }

    #[test]
    fn request_ids_are_uuids_ordered_by_time() {
        let early = RequestId::generate(DateTime::from_timestamp(1_700_000_000, 0).expect("ts"));
        let late = RequestId::generate(DateTime::from_timestamp(1_700_000_001, 0).expect("ts"));
        assert!(early < late);
        assert_eq!(early.as_str().parse::<RequestId>().expect("parse"), early);
        assert!("not-an-id".parse::<RequestId>().is_err());
    }
}
