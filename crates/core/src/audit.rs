//! The tamper-evident audit trail: every transition of a request is one event that carries the
//! SHA-256 of the request's previous event, so a changed, deleted or reordered event breaks the
//! chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Actor, RequestId, SessionsEnded, State, Terms};

/// `prev_hash` of the first event of every request.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Request,
    Approve,
    Deny,
    Cancel,
    TimeOut,
    Activate,
    Expire,
    Revoke,
    Fail,
    /// Reconciliation repaired the access of a grant without changing its state.
    Repair,
    /// The requester asked for more time on an ACTIVE grant.
    AskExtension,
    /// One approval of an extension that needs more.
    ApproveExtension,
    /// The extension was approved (its last approval): the grant's expiry moved.
    Extend,
    DenyExtension,
    /// An approver acknowledged a break-glass grant after the fact.
    Review,
    /// A break-glass grant was not acknowledged in time: it is marked unreviewed.
    ReviewOverdue,
    /// Nobody answered a PENDING request for a while: its approvers were reminded.
    Remind,
    /// Nobody answered a PENDING request for longer: the flow's backup approvers were asked,
    /// and may decide it from now on.
    AskBackup,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Request => "request",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Cancel => "cancel",
            Action::TimeOut => "time_out",
            Action::Activate => "activate",
            Action::Expire => "expire",
            Action::Revoke => "revoke",
            Action::Fail => "fail",
            Action::Repair => "repair",
            Action::AskExtension => "ask_extension",
            Action::ApproveExtension => "approve_extension",
            Action::Extend => "extend",
            Action::DenyExtension => "deny_extension",
            Action::Review => "review",
            Action::ReviewOverdue => "review_overdue",
            Action::Remind => "remind",
            Action::AskBackup => "ask_backup",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of one request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub request_id: RequestId,
    /// 1 for the request's creation, then +1 per transition.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// The authenticated principal behind `actor` (see [`crate::model::By`]); `None` only on
    /// events written before principals were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub action: Action,
    /// `None` only for the creation event.
    pub from: Option<State>,
    pub to: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the grant gives, on the creation event: hashed, so the terms cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<Terms>,
    /// On the event that ended a grant whose target names roles: how their live sessions were
    /// ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsEnded>,
    /// On the events of an extension (asked, approved, extended, denied): the time it adds,
    /// in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_by: Option<u64>,
    /// Hash of the previous event of the same request ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) over every other field of this event.
    pub hash: String,
}

/// The fields of an event before it is sealed with its hash.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub request_id: RequestId,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub principal: Option<String>,
    pub action: Action,
    pub from: Option<State>,
    pub to: State,
    pub reason: Option<String>,
    pub terms: Option<Terms>,
    pub prev_hash: String,
}

impl EventDraft {
    pub fn seal(self) -> AuditEvent {
        let mut event = AuditEvent {
            request_id: self.request_id,
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            principal: self.principal,
            action: self.action,
            from: self.from,
            to: self.to,
            reason: self.reason,
            terms: self.terms,
            sessions: None,
            extend_by: None,
            prev_hash: self.prev_hash,
            hash: String::new(),
        };
        event.hash = event.computed_hash();
        event
    }
}

impl AuditEvent {
    /// The hash this event's content should have; differs from `hash` once anything was changed.
    /// docs/contracts.md describes the encoding.
    pub fn computed_hash(&self) -> String {
        // serde_json::Value keeps object keys sorted, which makes this encoding canonical.
        let mut canonical = serde_json::json!({
            "request_id": self.request_id.as_str(),
            "seq": self.seq,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "actor": self.actor,
            "action": self.action.as_str(),
            "from": self.from.map(State::as_str),
            "to": self.to.as_str(),
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        });
        // Keys added later are hashed only when set, so events written before them verify.
        if let Some(fields) = canonical.as_object_mut() {
            if let Some(principal) = &self.principal {
                fields.insert("principal".into(), principal.as_str().into());
            }
            if let Some(terms) = &self.terms {
                fields.insert(
                    "terms".into(),
                    serde_json::to_value(terms).unwrap_or_default(),
                );
            }
            if let Some(sessions) = self.sessions {
                fields.insert("sessions".into(), sessions.as_str().into());
            }
            if let Some(secs) = self.extend_by {
                fields.insert("extend_by".into(), secs.into());
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("request {request_id} has no audit events")]
    Empty { request_id: String },
    #[error("request {request_id}: event {seq} belongs to request {other}")]
    ForeignEvent {
        request_id: String,
        seq: u64,
        other: String,
    },
    #[error("request {request_id}: expected event {expected}, found {found} (an event was deleted or reordered)")]
    Gap {
        request_id: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "request {request_id}: event {seq} was altered (its content no longer matches its hash)"
    )]
    Altered { request_id: String, seq: u64 },
    #[error("request {request_id}: event {seq} does not link to the event before it")]
    BrokenLink { request_id: String, seq: u64 },
    #[error("request {request_id}: event {seq} starts in {from:?} but the previous event ended in {previous}")]
    Discontinuous {
        request_id: String,
        seq: u64,
        from: Option<State>,
        previous: State,
    },
    #[error("request {request_id}: the chain ends at event {last} but the request records {head_seq} events (events were deleted or the head altered)")]
    Truncated {
        request_id: String,
        last: u64,
        head_seq: u64,
    },
}

/// Verifies the events of one request, in any order. When `head` (the `audit_seq` and
/// `audit_head` stored on the request) is given, a deleted last event is caught too.
pub fn verify_chain(events: &[AuditEvent], head: Option<(u64, &str)>) -> Result<(), ChainError> {
    let Some(first) = events.first() else {
        return Err(ChainError::Empty {
            request_id: String::new(),
        });
    };
    let request_id = first.request_id.to_string();
    let mut sorted: Vec<&AuditEvent> = events.iter().collect();
    sorted.sort_by_key(|event| event.seq);

    let mut prev_hash = GENESIS;
    let mut prev_state: Option<State> = None;
    for (index, event) in sorted.iter().enumerate() {
        let expected = index as u64 + 1;
        if event.request_id.as_str() != request_id {
            return Err(ChainError::ForeignEvent {
                request_id,
                seq: event.seq,
                other: event.request_id.to_string(),
            });
        }
        if event.seq != expected {
            return Err(ChainError::Gap {
                request_id,
                expected,
                found: event.seq,
            });
        }
        if event.computed_hash() != event.hash {
            return Err(ChainError::Altered {
                request_id,
                seq: event.seq,
            });
        }
        if event.prev_hash != prev_hash {
            return Err(ChainError::BrokenLink {
                request_id,
                seq: event.seq,
            });
        }
        if event.from != prev_state {
            return Err(ChainError::Discontinuous {
                request_id,
                seq: event.seq,
                from: event.from,
                previous: prev_state.unwrap_or(event.to),
            });
        }
        prev_hash = &event.hash;
        prev_state = Some(event.to);
    }

    if let Some((head_seq, head_hash)) = head {
        let last = sorted.len() as u64;
        if last != head_seq || prev_hash != head_hash {
            return Err(ChainError::Truncated {
                request_id,
                last,
                head_seq,
            });
        }
    }
    Ok(())
}
