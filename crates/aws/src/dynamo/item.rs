//! The item codec: attribute names, keys, and requests and audit events to and from items.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use elevate_core::audit::{Action, AuditEvent};
use elevate_core::model::{Actor, MessageRef, Request, RequestId, SessionsEnded, State, Terms};
use elevate_core::ports::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// Attribute names.
pub(super) mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
    pub const GSI3PK: &str = "gsi3pk";
    pub const GSI3SK: &str = "gsi3sk";
    /// Set only while the request is open (not in a final state): the sparse index
    /// `open_by_requester` holds the open requests alone.
    pub const GSI4PK: &str = "gsi4pk";
    pub const GSI4SK: &str = "gsi4sk";
    /// `request` or `audit_event`, for people reading the table.
    pub const ENTITY: &str = "entity";

    pub const ID: &str = "id";
    pub const FLOW: &str = "flow";
    pub const TARGET: &str = "target";
    pub const REQUESTER: &str = "requester";
    pub const REASON: &str = "reason";
    pub const DURATION: &str = "duration";
    pub const STATE: &str = "state";
    pub const CREATED_AT: &str = "created_at";
    pub const PENDING_UNTIL: &str = "pending_until";
    pub const DECIDED_AT: &str = "decided_at";
    pub const DECIDED_BY: &str = "decided_by";
    pub const DECISION_REASON: &str = "decision_reason";
    pub const ACTIVATED_AT: &str = "activated_at";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const ENDED_AT: &str = "ended_at";
    pub const ENDED_BY: &str = "ended_by";
    pub const FAILURE: &str = "failure";
    pub const MESSAGE: &str = "message";
    pub const CHANNEL: &str = "channel";
    pub const TS: &str = "ts";
    pub const AUDIT_SEQ: &str = "audit_seq";
    pub const AUDIT_HEAD: &str = "audit_head";
    pub const TERMS: &str = "terms";
    pub const KEPT_ACCESS_FOR: &str = "kept_access_for";
    pub const PRINCIPAL: &str = "principal";
    pub const SESSIONS_ENDED: &str = "sessions_ended";
    pub const SESSIONS: &str = "sessions";
    pub const APPROVALS_REQUIRED: &str = "approvals_required";
    pub const APPROVALS: &str = "approvals";
    pub const EXTENSION: &str = "extension";
    pub const BREAK_GLASS: &str = "break_glass";
    pub const REMINDERS: &str = "reminders";
    pub const EXTENDED: &str = "extended";
    pub const EXTEND_BY: &str = "extend_by";

    pub const REQUEST_ID: &str = "request_id";
    pub const SEQ: &str = "seq";
    pub const AT: &str = "at";
    pub const ACTOR: &str = "actor";
    pub const KIND: &str = "kind";
    pub const NAME: &str = "name";
    pub const ACTION: &str = "action";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const PREV_HASH: &str = "prev_hash";
    pub const HASH: &str = "hash";
}

pub(super) const REQUEST_SK: &str = "REQ";
pub(super) const EVENT_SK_PREFIX: &str = "EVT#";

pub(super) fn request_pk(id: &RequestId) -> String {
    format!("REQ#{id}")
}

fn event_sk(seq: u64) -> String {
    format!("{EVENT_SK_PREFIX}{seq:010}")
}

pub(super) fn requester_key(requester: &str) -> String {
    format!("REQUESTER#{requester}")
}

pub(super) fn state_key(state: State) -> String {
    format!("STATE#{state}")
}

pub(super) fn day_key(day: NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn message_attribute(message: &MessageRef) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (attr::CHANNEL.to_owned(), s(&message.channel)),
        (attr::TS.to_owned(), s(&message.ts)),
    ]))
}

/// Every non-key attribute of a request item; `None` for an optional field that is unset.
pub(super) fn request_attributes(r: &Request) -> Vec<(&'static str, Option<AttributeValue>)> {
    let at = |t: Option<DateTime<Utc>>| t.map(|t| s(timestamp(t)));
    let text = |t: &Option<String>| t.as_ref().map(s);
    let sort_key = format!("{}#{}", timestamp(r.created_at), r.id);
    let open = !r.state.is_final();
    vec![
        (attr::ENTITY, Some(s("request"))),
        (attr::ID, Some(s(r.id.as_str()))),
        (attr::FLOW, Some(s(&r.flow))),
        (attr::TARGET, Some(s(&r.target))),
        (attr::REQUESTER, Some(s(&r.requester))),
        (attr::TERMS, r.terms.as_ref().map(terms_attribute)),
        (attr::REASON, Some(s(&r.reason))),
        (attr::DURATION, Some(n(r.duration.as_secs()))),
        (attr::STATE, Some(s(r.state.as_str()))),
        (attr::CREATED_AT, Some(s(timestamp(r.created_at)))),
        (attr::PENDING_UNTIL, Some(s(timestamp(r.pending_until)))),
        (attr::DECIDED_AT, at(r.decided_at)),
        (attr::DECIDED_BY, text(&r.decided_by)),
        (attr::DECISION_REASON, text(&r.decision_reason)),
        (attr::ACTIVATED_AT, at(r.activated_at)),
        (attr::EXPIRES_AT, at(r.expires_at)),
        (attr::ENDED_AT, at(r.ended_at)),
        (attr::ENDED_BY, text(&r.ended_by)),
        (
            attr::KEPT_ACCESS_FOR,
            r.kept_access_for.as_ref().map(|id| s(id.as_str())),
        ),
        (
            attr::SESSIONS_ENDED,
            r.sessions_ended.map(|ended| s(ended.as_str())),
        ),
        (attr::FAILURE, text(&r.failure)),
        (attr::MESSAGE, r.message.as_ref().map(message_attribute)),
        (
            attr::APPROVALS_REQUIRED,
            (r.approvals_required != 1).then(|| n(u64::from(r.approvals_required))),
        ),
        (
            attr::APPROVALS,
            (!r.approvals.is_empty()).then(|| serde_attribute(&r.approvals)),
        ),
        (attr::CHANNEL, text(&r.channel)),
        (attr::EXTENSION, r.extension.as_ref().map(serde_attribute)),
        (
            attr::BREAK_GLASS,
            r.break_glass.as_ref().map(serde_attribute),
        ),
        (attr::REMINDERS, r.reminders.as_ref().map(serde_attribute)),
        (
            attr::EXTENDED,
            (!r.extended.is_zero()).then(|| n(r.extended.as_secs())),
        ),
        (attr::AUDIT_SEQ, Some(n(r.audit_seq))),
        (attr::AUDIT_HEAD, Some(s(&r.audit_head))),
        (attr::GSI1PK, Some(s(requester_key(&r.requester)))),
        (attr::GSI1SK, Some(s(&sort_key))),
        (attr::GSI2PK, Some(s(state_key(r.state)))),
        (attr::GSI2SK, Some(s(&sort_key))),
        (attr::GSI4PK, open.then(|| s(requester_key(&r.requester)))),
        (attr::GSI4SK, open.then(|| s(sort_key))),
    ]
}

/// The item the store writes for `r` (public for tools that write a table directly, such as
/// the bench seeding a history with BatchWriteItem).
pub fn request_item(r: &Request) -> Item {
    let mut item: Item = request_attributes(r)
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
    item.insert(attr::PK.to_owned(), s(request_pk(&r.id)));
    item.insert(attr::SK.to_owned(), s(REQUEST_SK));
    item
}

/// The item the store writes for the audit event `e` (public as [`request_item`] is).
pub fn event_item(e: &AuditEvent) -> Item {
    let (kind, name) = match &e.actor {
        Actor::Person(name) => ("person", name),
        Actor::System(name) => ("system", name),
    };
    let mut item = HashMap::from([
        (attr::PK.to_owned(), s(request_pk(&e.request_id))),
        (attr::SK.to_owned(), s(event_sk(e.seq))),
        (attr::ENTITY.to_owned(), s("audit_event")),
        (attr::REQUEST_ID.to_owned(), s(e.request_id.as_str())),
        (attr::SEQ.to_owned(), n(e.seq)),
        (attr::AT.to_owned(), s(timestamp(e.at))),
        (
            attr::ACTOR.to_owned(),
            AttributeValue::M(HashMap::from([
                (attr::KIND.to_owned(), s(kind)),
                (attr::NAME.to_owned(), s(name)),
            ])),
        ),
        (attr::ACTION.to_owned(), s(e.action.as_str())),
        (attr::TO.to_owned(), s(e.to.as_str())),
        (attr::PREV_HASH.to_owned(), s(&e.prev_hash)),
        (attr::HASH.to_owned(), s(&e.hash)),
        (attr::GSI3PK.to_owned(), s(day_key(e.at.date_naive()))),
        (
            attr::GSI3SK.to_owned(),
            s(format!(
                "{}#{}#{:010}",
                timestamp(e.at),
                e.request_id,
                e.seq
            )),
        ),
    ]);
    if let Some(from) = e.from {
        item.insert(attr::FROM.to_owned(), s(from.as_str()));
    }
    if let Some(reason) = &e.reason {
        item.insert(attr::REASON.to_owned(), s(reason));
    }
    if let Some(principal) = &e.principal {
        item.insert(attr::PRINCIPAL.to_owned(), s(principal));
    }
    if let Some(terms) = &e.terms {
        item.insert(attr::TERMS.to_owned(), terms_attribute(terms));
    }
    if let Some(sessions) = e.sessions {
        item.insert(attr::SESSIONS.to_owned(), s(sessions.as_str()));
    }
    if let Some(secs) = e.extend_by {
        item.insert(attr::EXTEND_BY.to_owned(), n(secs));
    }
    item
}

/// A value as the map or list attribute of its JSON, field for field.
fn serde_attribute<T: serde::Serialize>(value: &T) -> AttributeValue {
    json_attribute(&serde_json::to_value(value).unwrap_or_default())
}

/// A grant's terms as a map attribute, field for field as in the API's JSON.
fn terms_attribute(terms: &Terms) -> AttributeValue {
    json_attribute(&serde_json::to_value(terms).unwrap_or_default())
}

fn json_attribute(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => s(text),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_attribute).collect()),
        Value::Object(fields) => AttributeValue::M(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), json_attribute(v)))
                .collect(),
        ),
    }
}

fn attribute_json(value: &AttributeValue) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(number) => serde_json::from_str(number).ok()?,
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(attribute_json).collect::<Option<_>>()?)
        }
        AttributeValue::M(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Some((k.clone(), attribute_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Reads typed attributes out of an item, naming the item and attribute when one is wrong.
struct Fields<'a> {
    item: &'a Item,
    what: &'static str,
}

impl Fields<'_> {
    fn corrupt(&self, name: &str, problem: impl std::fmt::Display) -> StoreError {
        let key = self
            .item
            .get(attr::PK)
            .and_then(|v| v.as_s().ok())
            .map_or("?", String::as_str);
        StoreError::Corrupt(format!("{} {key}: attribute `{name}` {problem}", self.what))
    }

    fn opt_s(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.corrupt(name, "is not a string")),
        }
    }

    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    fn u64(&self, name: &str) -> Result<u64, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(value)) => value
                .parse()
                .map_err(|_| self.corrupt(name, format!("`{value}` is not a whole number"))),
            None => Err(self.corrupt(name, "is missing")),
            Some(_) => Err(self.corrupt(name, "is not a number")),
        }
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_s(name)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        self.corrupt(name, format!("`{text}` is not an RFC 3339 time: {e}"))
                    })
            })
            .transpose()
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    fn state(&self, name: &str) -> Result<State, StoreError> {
        let text = self.s(name)?;
        text.parse().map_err(|e| self.corrupt(name, e))
    }

    fn opt_state(&self, name: &str) -> Result<Option<State>, StoreError> {
        self.opt_s(name)?
            .map(|text| text.parse().map_err(|e| self.corrupt(name, e)))
            .transpose()
    }

    fn sessions_ended(&self, name: &str) -> Result<Option<SessionsEnded>, StoreError> {
        let Some(text) = self.opt_s(name)? else {
            return Ok(None);
        };
        match text.as_str() {
            "person" => Ok(Some(SessionsEnded::Person)),
            "all_sessions" => Ok(Some(SessionsEnded::AllSessions)),
            other => Err(self.corrupt(
                name,
                format!("is `{other}` (expected person or all_sessions)"),
            )),
        }
    }

    fn request_id(&self, name: &str) -> Result<RequestId, StoreError> {
        let text = self.s(name)?;
        text.parse().map_err(|e| self.corrupt(name, e))
    }

    fn terms(&self, name: &str) -> Result<Option<Terms>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(value) => attribute_json(value)
                .and_then(|json| serde_json::from_value(json).ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(name, "is not a grant's terms")),
        }
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.u64(name).map(Some),
        }
    }

    /// A value written by [`serde_attribute`].
    fn serde<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(value) => attribute_json(value)
                .and_then(|json| serde_json::from_value(json).ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(name, "is not what elevate writes there")),
        }
    }

    fn map(&self, name: &str) -> Result<Option<Fields<'_>>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::M(map)) => Ok(Some(Fields {
                item: map,
                what: self.what,
            })),
            Some(_) => Err(self.corrupt(name, "is not a map")),
        }
    }
}

pub(super) fn request_from_item(item: &Item) -> Result<Request, StoreError> {
    let f = Fields {
        item,
        what: "request",
    };
    let message = match f.map(attr::MESSAGE)? {
        None => None,
        Some(m) => Some(MessageRef {
            channel: m.s(attr::CHANNEL)?,
            ts: m.s(attr::TS)?,
        }),
    };
    Ok(Request {
        id: f.request_id(attr::ID)?,
        flow: f.s(attr::FLOW)?.into(),
        target: f.s(attr::TARGET)?.into(),
        requester: f.s(attr::REQUESTER)?.into(),
        terms: f.terms(attr::TERMS)?,
        reason: f.s(attr::REASON)?,
        duration: Duration::from_secs(f.u64(attr::DURATION)?),
        state: f.state(attr::STATE)?,
        created_at: f.time(attr::CREATED_AT)?,
        pending_until: f.time(attr::PENDING_UNTIL)?,
        decided_at: f.opt_time(attr::DECIDED_AT)?,
        decided_by: f.opt_s(attr::DECIDED_BY)?,
        decision_reason: f.opt_s(attr::DECISION_REASON)?,
        activated_at: f.opt_time(attr::ACTIVATED_AT)?,
        expires_at: f.opt_time(attr::EXPIRES_AT)?,
        ended_at: f.opt_time(attr::ENDED_AT)?,
        ended_by: f.opt_s(attr::ENDED_BY)?,
        kept_access_for: f
            .opt_s(attr::KEPT_ACCESS_FOR)?
            .map(|text| {
                text.parse()
                    .map_err(|e| f.corrupt(attr::KEPT_ACCESS_FOR, e))
            })
            .transpose()?,
        sessions_ended: f.sessions_ended(attr::SESSIONS_ENDED)?,
        failure: f.opt_s(attr::FAILURE)?,
        message,
        approvals_required: match f.opt_u64(attr::APPROVALS_REQUIRED)? {
            None => 1,
            Some(n) => {
                u32::try_from(n).map_err(|_| f.corrupt(attr::APPROVALS_REQUIRED, "is too large"))?
            }
        },
        approvals: f.serde(attr::APPROVALS)?.unwrap_or_default(),
        channel: f.opt_s(attr::CHANNEL)?,
        extension: f.serde(attr::EXTENSION)?,
        break_glass: f.serde(attr::BREAK_GLASS)?,
        reminders: f.serde(attr::REMINDERS)?,
        extended: Duration::from_secs(f.opt_u64(attr::EXTENDED)?.unwrap_or(0)),
        audit_seq: f.u64(attr::AUDIT_SEQ)?,
        audit_head: f.s(attr::AUDIT_HEAD)?,
    })
}

pub(super) fn event_from_item(item: &Item) -> Result<AuditEvent, StoreError> {
    let f = Fields {
        item,
        what: "audit event",
    };
    let actor = f
        .map(attr::ACTOR)?
        .ok_or_else(|| f.corrupt(attr::ACTOR, "is missing"))?;
    let actor = match actor.s(attr::KIND)?.as_str() {
        "person" => Actor::Person(actor.s(attr::NAME)?),
        "system" => Actor::System(actor.s(attr::NAME)?),
        other => {
            return Err(f.corrupt(
                attr::ACTOR,
                format!("has kind `{other}` (expected person or system)"),
            ))
        }
    };
    let action_text = f.s(attr::ACTION)?;
    let action: Action = serde_json::from_value(serde_json::Value::String(action_text.clone()))
        .map_err(|_| f.corrupt(attr::ACTION, format!("`{action_text}` is not an action")))?;
    Ok(AuditEvent {
        request_id: f.request_id(attr::REQUEST_ID)?,
        seq: f.u64(attr::SEQ)?,
        at: f.time(attr::AT)?,
        actor,
        principal: f.opt_s(attr::PRINCIPAL)?,
        action,
        from: f.opt_state(attr::FROM)?,
        to: f.state(attr::TO)?,
        reason: f.opt_s(attr::REASON)?,
        terms: f.terms(attr::TERMS)?,
        sessions: f.sessions_ended(attr::SESSIONS)?,
        extend_by: f.opt_u64(attr::EXTEND_BY)?,
        prev_hash: f.s(attr::PREV_HASH)?,
        hash: f.s(attr::HASH)?,
    })
}

/// The audit event of a DynamoDB stream image (a stream record's `NewImage` or `OldImage` as
/// Lambda delivers it), read by the same codec as the table's items ([`event_from_item`]).
pub fn event_from_stream_image(image: &serde_dynamo::Item) -> Result<AuditEvent, StoreError> {
    let item: Item = image.clone().into();
    event_from_item(&item)
}

/// An audit event item's identity from its keys (a stream record's `Keys`: `pk = REQ#<id>`,
/// `sk = EVT#<seq>`): `None` for an item that is no audit event (no `EVT#` sort key), and an
/// error for one under an event's sort key whose keys elevate never writes (a request id that
/// is not a request id as elevate writes it, a seq that is not a number). Such an identity must
/// never name an archive object: anyone who can write the table chooses it.
pub fn stream_event_key(keys: &serde_dynamo::Item) -> Option<Result<(String, u64), String>> {
    let text = |name: &str| match keys.inner().get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value.as_str()),
        _ => None,
    };
    let seq = text(attr::SK)?.strip_prefix(EVENT_SK_PREFIX)?;
    let pk = text(attr::PK).unwrap_or_default();
    let bad = |why: &str| {
        let shown: String = pk.chars().take(80).collect();
        Err(format!("{why} (pk {shown:?}, sk EVT#{seq:.20})"))
    };
    let Some(request_id) = pk.strip_prefix("REQ#") else {
        return Some(bad("not a request's partition"));
    };
    let canonical = request_id.parse::<RequestId>().ok();
    if canonical.is_none_or(|id| id.as_str() != request_id) {
        return Some(bad("not a request id"));
    }
    match seq.parse::<u64>() {
        Ok(n) if seq.bytes().all(|b| b.is_ascii_digit()) => Some(Ok((request_id.to_owned(), n))),
        _ => Some(bad("not an event number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_core::config::{Person, Target, TargetKind};
    use elevate_core::machine::{apply, open, Command, NewRequest};
    use elevate_core::model::{BreakGlass, By, Reminders};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn full_request() -> (Request, AuditEvent) {
        let now = at("2026-11-25T10:00:00.123456789Z");
        let (request, _) = open(
            RequestId::generate(now),
            NewRequest {
                flow: "infra_access".into(),
                target: "admins".into(),
                requester: "alice".into(),
                reason: "incident 42".into(),
                duration: Duration::from_secs(3600),
                pending_timeout: Duration::from_secs(600),
                approvals_required: 1,
                terms: Terms {
                    target: Target {
                        name: "admins".into(),
                        kind: TargetKind::IamGroup {
                            group: "SymDemoAdmins".into(),
                            roles: Vec::new(),
                        },
                    },
                    person: Person {
                        name: "alice".into(),
                        iam_user: "alice.iam".into(),
                        slack_id: "U0ALICE01".into(),
                        email: "alice@example.com".into(),
                    },
                },
            },
            "arn:aws:iam::123456789012:user/alice.iam",
            now,
        );
        let approved = apply(
            &request,
            Command::Approve {
                reason: Some("ok".into()),
            },
            &By::person("bob", "slack:T1/U0BOB0001"),
            at("2026-11-25T10:01:00.000000001Z"),
        )
        .expect("approve");
        let mut full = approved.request;
        full.activated_at = Some(at("2026-11-25T10:01:02Z"));
        full.expires_at = Some(at("2026-11-25T11:01:02Z"));
        full.ended_at = Some(at("2026-11-25T10:30:00.5Z"));
        full.ended_by = Some("elevate:revoke".into());
        full.kept_access_for = Some(request.id.clone());
        full.sessions_ended = Some(SessionsEnded::AllSessions);
        full.failure = Some("IAM said no".into());
        full.channel = Some("C0ONCALL".into());
        full.break_glass = Some(BreakGlass {
            review_by: at("2026-11-25T11:01:02Z"),
            reviewed_by: Some("carol".into()),
            reviewed_at: Some(at("2026-11-25T10:45:00.25Z")),
            unreviewed: true,
        });
        full.message = Some(MessageRef {
            channel: "C123".into(),
            ts: "1700000000.000100".into(),
        });
        full.reminders = Some(Reminders {
            reminded_at: Some(at("2026-11-25T10:20:00.125Z")),
            backup_asked_at: Some(at("2026-11-25T10:40:00Z")),
            backup_message: Some(MessageRef {
                channel: "C0BACKUP".into(),
                ts: "1700000000.000200".into(),
            }),
        });
        (full, approved.event)
    }

    #[test]
    fn request_items_round_trip_with_every_field() {
        let (request, _) = full_request();
        let item = request_item(&request);
        assert_eq!(request_from_item(&item).expect("parse"), request);
        assert_eq!(
            item.get("gsi2pk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("STATE#APPROVED")
        );
        assert_eq!(
            item.get("created_at")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("2026-11-25T10:00:00.123456789Z")
        );
        assert!(matches!(item.get("duration"), Some(AttributeValue::N(secs)) if secs == "3600"));
    }

    #[test]
    fn event_items_round_trip() {
        let (_, event) = full_request();
        let item = event_item(&event);
        assert_eq!(event_from_item(&item).expect("parse"), event);
        let mut ended = event.clone();
        ended.sessions = Some(SessionsEnded::Person);
        ended.hash = ended.computed_hash();
        assert_eq!(
            event_from_item(&event_item(&ended)).expect("parse"),
            ended,
            "how sessions were ended survives the table"
        );
        assert_eq!(
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("EVT#0000000002")
        );
        assert_eq!(
            item.get("gsi3pk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some("AUDIT#2026-11-25")
        );
    }

    /// A stream image as Lambda delivers it (DynamoDB JSON, typed values), as the stream
    /// carries the item the store wrote.
    fn stream_image(item: &Item) -> serde_dynamo::Item {
        fn typed(value: &AttributeValue) -> serde_json::Value {
            match value {
                AttributeValue::S(text) => serde_json::json!({ "S": text }),
                AttributeValue::N(number) => serde_json::json!({ "N": number }),
                AttributeValue::Bool(b) => serde_json::json!({ "BOOL": b }),
                AttributeValue::Null(_) => serde_json::json!({ "NULL": true }),
                AttributeValue::L(items) => {
                    serde_json::json!({ "L": items.iter().map(typed).collect::<Vec<_>>() })
                }
                AttributeValue::M(fields) => serde_json::json!({ "M": fields
                    .iter()
                    .map(|(k, v)| (k.clone(), typed(v)))
                    .collect::<serde_json::Map<_, _>>() }),
                other => panic!("not in an event item: {other:?}"),
            }
        }
        let json: serde_json::Map<String, serde_json::Value> =
            item.iter().map(|(k, v)| (k.clone(), typed(v))).collect();
        serde_json::from_value(serde_json::Value::Object(json)).expect("a stream image")
    }

    #[test]
    fn stream_images_decode_to_the_event_the_store_wrote() {
        let (request, mut event) = full_request();
        // Every optional field set.
        event.terms = request.terms.clone();
        event.sessions = Some(SessionsEnded::AllSessions);
        event.hash = event.computed_hash();
        assert!(event.terms.is_some() && event.principal.is_some() && event.reason.is_some());
        assert!(event.from.is_some());
        let image = stream_image(&event_item(&event));
        assert_eq!(event_from_stream_image(&image).expect("decode"), event);
        assert_eq!(
            stream_event_key(&image),
            Some(Ok((event.request_id.as_str().to_owned(), event.seq)))
        );

        let mut broken = event_item(&event);
        broken.remove(attr::HASH);
        let err = event_from_stream_image(&stream_image(&broken)).expect_err("no hash");
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("`hash`")),
            "{err}"
        );
    }

    #[test]
    fn only_audit_event_keys_name_an_event() {
        let (request, _) = full_request();
        let keys = |pk: &str, sk: &str| {
            stream_image(&HashMap::from([
                (attr::PK.to_owned(), s(pk)),
                (attr::SK.to_owned(), s(sk)),
            ]))
        };
        let pk = request_pk(&request.id);
        assert_eq!(
            stream_event_key(&keys(&pk, "EVT#0000000012")),
            Some(Ok((request.id.as_str().to_owned(), 12)))
        );
        assert_eq!(stream_event_key(&keys(&pk, REQUEST_SK)), None);
        assert_eq!(stream_event_key(&serde_dynamo::Item::default()), None);
        // Under an event's sort key, but not keys elevate writes: never an archive key.
        let long = format!("REQ#{}", "a".repeat(1100));
        let upper = format!("REQ#{}", request.id.as_str().to_uppercase());
        for (pk, sk) in [
            (pk.as_str(), "EVT#"),
            (pk.as_str(), "EVT#12x"),
            (pk.as_str(), "EVT#99999999999999999999999"),
            ("USER#x", "EVT#0000000001"),
            (long.as_str(), "EVT#0000000001"),
            (upper.as_str(), "EVT#0000000001"),
            ("REQ#../../anchors/x", "EVT#0000000001"),
        ] {
            let found = stream_event_key(&keys(pk, sk));
            assert!(matches!(found, Some(Err(_))), "{pk} {sk}: {found:?}");
        }
        let Some(Err(why)) = stream_event_key(&keys(&long, "EVT#1")) else {
            unreachable!()
        };
        assert!(why.len() < 200, "the error stays short: {why}");
    }

    #[test]
    fn a_corrupt_item_names_the_attribute() {
        let (request, _) = full_request();
        let mut item = request_item(&request);
        item.insert("state".into(), s("ACTIVATED"));
        let err = request_from_item(&item).expect_err("corrupt");
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("`state`")),
            "{err}"
        );
        item.remove("audit_seq");
        let err = request_from_item(&item).expect_err("corrupt");
        assert!(matches!(&err, StoreError::Corrupt(_)), "{err}");
    }
}
