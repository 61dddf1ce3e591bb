//! The checks of a scenario's end state, read from moto: audit chains, transitions counted,
//! schedules left behind, memberships left behind, and whether any grant was recorded ended
//! while its user was still seen in the group.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use elevate_core::{verify_chain, Action, Request, RequestId, State};
use elevate_local::bootstrap::ANCHOR_SCHEDULE;
use serde::Serialize;

use crate::moto::{MotoError, MotoReader};
use crate::observe::{Poll, Track};
use crate::stats::ms;

/// What the audit trail of every request says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditTally {
    pub requests: usize,
    /// Audit events per action, over every request.
    pub actions: BTreeMap<String, usize>,
    pub chains_verified: usize,
    /// Final states of the requests.
    pub states: BTreeMap<String, usize>,
    pub violations: Vec<String>,
}

impl AuditTally {
    pub fn count(&self, action: Action) -> usize {
        self.actions.get(action.as_str()).copied().unwrap_or(0)
    }

    pub fn in_state(&self, state: State) -> usize {
        self.states.get(state.as_str()).copied().unwrap_or(0)
    }
}

/// Verifies each request's chain against its stored head and counts its transitions; an
/// action recorded twice for one request is a violation.
pub async fn audit_tally(moto: &MotoReader, requests: &[Request]) -> Result<AuditTally, MotoError> {
    let mut tally = AuditTally {
        requests: requests.len(),
        ..AuditTally::default()
    };
    for request in requests {
        *tally
            .states
            .entry(request.state.as_str().to_owned())
            .or_default() += 1;
        let events = moto.audit_events(&request.id).await?;
        match verify_chain(&events, Some((request.audit_seq, &request.audit_head))) {
            Ok(()) => tally.chains_verified += 1,
            Err(err) => tally.violations.push(format!(
                "request {}: audit chain does not verify: {err}",
                request.id
            )),
        }
        let mut per_action: HashMap<Action, usize> = HashMap::new();
        for event in &events {
            *per_action.entry(event.action).or_default() += 1;
            *tally
                .actions
                .entry(event.action.as_str().to_owned())
                .or_default() += 1;
        }
        for (action, n) in per_action {
            if n > 1 {
                tally.violations.push(format!(
                    "request {}: {n} `{action}` events (a duplicate transition)",
                    request.id
                ));
            }
        }
    }
    Ok(tally)
}

/// Schedules of the group other than the stack's recurring ones (the sweep and the anchor).
pub fn leftover_schedules(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| !name.contains("sweep") && name.as_str() != ANCHOR_SCHEDULE)
        .cloned()
        .collect()
}

/// How recording a grant ended compares with what was seen of its user in the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EndedVsMembership {
    /// EXPIRED/REVOKED grants checked.
    pub ended: usize,
    /// Grants whose user was seen in the group by a poll sent after the grant was seen
    /// recorded as ended: "recorded ended while still in the group". Must be 0.
    pub present_after_recorded: usize,
    /// Grants whose user was seen in the group by a poll sent after the stored `ended_at`.
    pub present_after_ended_at: usize,
    /// The largest such gap: how far `ended_at` can precede the removal.
    pub max_ended_at_lead_ms: f64,
    /// Ended grants whose user is in the group at the end. Must be 0.
    pub still_members: Vec<String>,
    pub violations: Vec<String>,
}

/// Compares each EXPIRED/REVOKED request with the membership polls of its user (each user has
/// one grant in the bench's scenarios, so any presence after the grant ended is this grant's).
pub fn ended_vs_membership(
    requests: &[Request],
    tracks: &HashMap<String, Track>,
    recorded: &HashMap<(RequestId, State), Poll>,
    members_at_end: &std::collections::HashSet<String>,
) -> EndedVsMembership {
    let mut out = EndedVsMembership::default();
    for request in requests {
        if !matches!(request.state, State::Expired | State::Revoked) {
            continue;
        }
        out.ended += 1;
        let user = &request.requester;
        let last_present = tracks.get(user.as_str()).and_then(|t| t.last_present);
        if let (Some(seen), Some(record)) = (
            last_present,
            recorded.get(&(request.id.clone(), request.state)),
        ) {
            if seen.sent > record.received {
                out.present_after_recorded += 1;
                out.violations.push(format!(
                    "request {}: {user} seen in the group by a poll sent at {} after the grant was seen {} at {}",
                    request.id, seen.sent, request.state, record.received
                ));
            }
        }
        if let (Some(seen), Some(ended_at)) = (last_present, request.ended_at) {
            if seen.sent > ended_at {
                out.present_after_ended_at += 1;
                out.max_ended_at_lead_ms = out.max_ended_at_lead_ms.max(ms(seen.sent - ended_at));
            }
        }
        if members_at_end.contains(user.as_str()) {
            out.still_members.push(user.to_string());
            out.violations.push(format!(
                "request {} is {} but {user} is still in the group",
                request.id, request.state
            ));
        }
    }
    out
}

/// The latest expiry of `requests`.
pub fn last_expiry(requests: &[Request]) -> Option<DateTime<Utc>> {
    requests.iter().filter_map(|r| r.expires_at).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + second, 0).expect("time")
    }

    fn poll(second: i64) -> Poll {
        Poll {
            sent: at(second),
            received: at(second) + chrono::Duration::milliseconds(5),
        }
    }

    fn expired(user: &str, ended: i64) -> Request {
        let mut request: Request = serde_json::from_value(serde_json::json!({
            "id": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d",
            "flow": "bench", "target": "bench", "requester": user, "reason": "",
            "duration": 5, "state": "EXPIRED",
            "created_at": "2026-11-25T10:00:00Z", "pending_until": "2026-11-25T10:30:00Z",
            "audit_seq": 4, "audit_head": "x"
        }))
        .expect("request");
        request.ended_at = Some(at(ended));
        request
    }

    #[test]
    fn a_presence_after_the_record_is_a_violation_and_one_after_ended_at_is_measured() {
        let request = expired("user001", 10);
        let recorded = HashMap::from([((request.id.clone(), State::Expired), poll(12))]);
        let mut tracks = HashMap::new();
        tracks.insert(
            "user001".to_owned(),
            Track {
                last_present: Some(poll(11)),
                ..Track::default()
            },
        );
        let none = HashSet::new();
        let ok = ended_vs_membership(std::slice::from_ref(&request), &tracks, &recorded, &none);
        assert_eq!(ok.present_after_recorded, 0);
        assert_eq!(ok.present_after_ended_at, 1);
        assert_eq!(ok.max_ended_at_lead_ms, 1000.0);
        assert!(ok.violations.is_empty());

        tracks.insert(
            "user001".to_owned(),
            Track {
                last_present: Some(poll(13)),
                ..Track::default()
            },
        );
        let still = HashSet::from(["user001".to_owned()]);
        let bad = ended_vs_membership(&[request], &tracks, &recorded, &still);
        assert_eq!(bad.present_after_recorded, 1);
        assert_eq!(bad.still_members, ["user001"]);
        assert_eq!(bad.violations.len(), 2);
    }

    #[test]
    fn the_sweep_and_anchor_schedules_may_stay() {
        let names = vec![
            "sweep".to_owned(),
            "elevate-sweep".to_owned(),
            ANCHOR_SCHEDULE.to_owned(),
            "revoke-0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d".to_owned(),
        ];
        assert_eq!(
            leftover_schedules(&names),
            ["revoke-0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d"]
        );
    }
}
