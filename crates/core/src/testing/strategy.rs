//! The in-memory [`Strategy`].

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::config::{Person, Target, TargetKind};
use crate::model::{Request, SessionsEnded};
use crate::ports::{Membership, Strategy, StrategyError};

use super::{injected, lock, take_failure};

#[derive(Default)]
struct StrategyInner {
    /// (target name, person name)
    members: HashSet<(String, String)>,
    fail_escalate: u32,
    fail_deescalate: u32,
    fail_is_member: u32,
    refuse_escalate: Option<String>,
    ineffective_deescalate: u32,
    unknown_membership: bool,
    escalate_calls: u32,
    deescalate_calls: u32,
    is_member_calls: u32,
    /// (target name, person name, issued before) of each end of sessions.
    sessions_ended: Vec<(String, String, DateTime<Utc>)>,
    fail_end_sessions: u32,
    sessions_fall_back: bool,
}

/// [`Strategy`] in memory: a set of (target name, person name) memberships. Granting twice and
/// removing what is absent are both success, as with the IAM adapter.
#[derive(Default)]
pub struct FakeStrategy {
    inner: Mutex<StrategyInner>,
}

impl FakeStrategy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `person` is a member of `target` right now (no call counted).
    pub fn has(&self, target: &str, person: &str) -> bool {
        lock(&self.inner)
            .members
            .contains(&(target.to_owned(), person.to_owned()))
    }

    /// Every (target name, person name) membership, sorted.
    pub fn members(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.inner).members.iter().cloned().collect();
        all.sort();
        all
    }

    /// Someone added the membership outside elevate (drift).
    pub fn add_by_hand(&self, target: &str, person: &str) {
        lock(&self.inner)
            .members
            .insert((target.to_owned(), person.to_owned()));
    }

    /// Someone removed the membership outside elevate.
    pub fn remove_by_hand(&self, target: &str, person: &str) {
        lock(&self.inner)
            .members
            .remove(&(target.to_owned(), person.to_owned()));
    }

    /// The next `n` escalate calls answer `Unavailable` and change nothing.
    pub fn fail_escalate(&self, n: u32) {
        lock(&self.inner).fail_escalate = n;
    }

    /// The next `n` deescalate calls answer `Unavailable` and change nothing.
    pub fn fail_deescalate(&self, n: u32) {
        lock(&self.inner).fail_deescalate = n;
    }

    /// The next `n` is_member calls answer `Unavailable`.
    pub fn fail_is_member(&self, n: u32) {
        lock(&self.inner).fail_is_member = n;
    }

    /// Every escalate call answers `Refused(message)` (a custom target saying no) until
    /// cleared with `None`.
    pub fn refuse_escalate(&self, message: Option<&str>) {
        lock(&self.inner).refuse_escalate = message.map(str::to_owned);
    }

    /// The next `n` deescalate calls answer success but leave the membership in place, so only
    /// a read-back notices.
    pub fn ignore_deescalate(&self, n: u32) {
        lock(&self.inner).ineffective_deescalate = n;
    }

    /// The next `n` end_sessions calls answer `Unavailable` and end nothing.
    pub fn fail_end_sessions(&self, n: u32) {
        lock(&self.inner).fail_end_sessions = n;
    }

    /// end_sessions answers that the role had no room left, so every session was denied.
    pub fn sessions_fall_back(&self, fall_back: bool) {
        lock(&self.inner).sessions_fall_back = fall_back;
    }

    /// (target name, person name, issued before) of each end of sessions, in order.
    pub fn sessions_ended(&self) -> Vec<(String, String, DateTime<Utc>)> {
        lock(&self.inner).sessions_ended.clone()
    }

    /// is_member answers `Unknown` (a custom target that cannot be read back).
    pub fn answer_unknown(&self, unknown: bool) {
        lock(&self.inner).unknown_membership = unknown;
    }

    pub fn escalate_calls(&self) -> u32 {
        lock(&self.inner).escalate_calls
    }

    pub fn deescalate_calls(&self) -> u32 {
        lock(&self.inner).deescalate_calls
    }

    pub fn is_member_calls(&self) -> u32 {
        lock(&self.inner).is_member_calls
    }
}

#[async_trait]
impl Strategy for FakeStrategy {
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        _request: &Request,
    ) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.escalate_calls += 1;
        if take_failure(&mut inner.fail_escalate) {
            return Err(StrategyError::Unavailable(injected("escalate")));
        }
        if let Some(message) = &inner.refuse_escalate {
            return Err(StrategyError::Refused(message.clone()));
        }
        inner
            .members
            .insert((target.name.to_string(), person.name.to_string()));
        Ok(())
    }

    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        _request: &Request,
    ) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.deescalate_calls += 1;
        if take_failure(&mut inner.fail_deescalate) {
            return Err(StrategyError::Unavailable(injected("deescalate")));
        }
        if take_failure(&mut inner.ineffective_deescalate) {
            return Ok(());
        }
        inner
            .members
            .remove(&(target.name.to_string(), person.name.to_string()));
        Ok(())
    }

    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        let mut inner = lock(&self.inner);
        inner.is_member_calls += 1;
        if take_failure(&mut inner.fail_is_member) {
            return Err(StrategyError::Unavailable(injected("is_member")));
        }
        if inner.unknown_membership {
            return Ok(Membership::Unknown);
        }
        let key = (target.name.to_string(), person.name.to_string());
        Ok(if inner.members.contains(&key) {
            Membership::Present
        } else {
            Membership::Absent
        })
    }

    /// The people on `target` (in the sample config a person's name is their IAM user).
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        let inner = lock(&self.inner);
        if inner.unknown_membership {
            return Ok(None);
        }
        let mut found: Vec<String> = inner
            .members
            .iter()
            .filter(|(t, _)| *t == target.name)
            .map(|(_, p)| p.clone())
            .collect();
        found.sort();
        Ok(Some(found))
    }

    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError> {
        let mut inner = lock(&self.inner);
        inner.deescalate_calls += 1;
        if take_failure(&mut inner.fail_deescalate) {
            return Err(StrategyError::Unavailable(injected("remove_member")));
        }
        inner
            .members
            .remove(&(target.name.to_string(), iam_user.to_owned()));
        Ok(())
    }

    /// Ends sessions when the target names roles, as the IAM adapter does.
    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError> {
        let mut inner = lock(&self.inner);
        if take_failure(&mut inner.fail_end_sessions) {
            return Err(StrategyError::Unavailable(injected("end_sessions")));
        }
        let names_roles =
            matches!(&target.kind, TargetKind::IamGroup { roles, .. } if !roles.is_empty());
        if !names_roles {
            return Ok(None);
        }
        inner
            .sessions_ended
            .push((target.name.to_string(), person.name.to_string(), before));
        Ok(Some(if inner.sessions_fall_back {
            SessionsEnded::AllSessions
        } else {
            SessionsEnded::Person
        }))
    }
}
