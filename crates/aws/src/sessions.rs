//! Ending the live sessions of a role for one person: AWS's documented way to revoke role
//! sessions (an inline deny on the role for sessions whose `aws:TokenIssueTime` is before a
//! time), narrowed with `aws:userid` = `<RoleId>:<session name>` to the person whose grant
//! ended. Sessions the person starts after a new grant are issued later, so they are not
//! denied. IAM user names are not case-sensitive, and the session name is the user's name as
//! IAM holds it, which elevate.toml may spell otherwise: the user id is compared ignoring case,
//! and a policy names the user in lower case.
//!
//! IAM has no conditional write of an inline policy, so a policy that two ends read, change and
//! write back whole loses one of the changes. elevate therefore never changes a policy it wrote:
//! each end writes one policy of one statement, named after what it denies
//! (`elevate-ended-sessions-<iam user>-<time>`, or `elevate-ended-sessions-<time>` for every
//! session), so two writes of one name are the same document and concurrent ends, of different
//! people or the same one, cannot undo each other. Clean-up only deletes: a policy of elevate's
//! is deleted once it can deny nothing any more (older than the longest session IAM allows) or
//! once another policy of elevate's that stays denies all it does. "Covers" is a strict order
//! between different names, so the policy at the top of any chain of covers is never deleted
//! while it can deny something, and a delete based on a stale read deletes nothing that is
//! still needed.
//!
//! IAM counts all of a role's inline policies against one size limit. A person's policy is
//! written only if room stays for a deny of every session and for the policies of a few ends
//! planned at the same moment; otherwise the end denies every session issued before it (fail
//! closed), and the policies that deny covers are deleted once it is in place. When not even
//! that deny has room, the oldest of those policies are deleted first: the sessions they deny
//! are not denied until the write, which beats failing every end on the role until policies
//! age out.
//!
//! The single policy `elevate-ended-sessions` of earlier versions (several people's statements,
//! `StringEquals` on the user id, rewritten whole) is still honoured: it is never written, and
//! it is deleted only once each of its statements can deny nothing any more or is covered by a
//! policy of the new kind.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use elevate_core::config::role_name;
use elevate_core::model::SessionsEnded;
use elevate_core::ports::StrategyError;
use serde_json::{json, Value};
use tracing::instrument;

use crate::error::AwsError;
use crate::iam::IamGroupStrategy;

/// How the names of elevate's session-ending policies begin.
pub const POLICY_PREFIX: &str = "elevate-ended-sessions-";

/// The one policy earlier versions kept on a role for everyone's ends.
pub const LEGACY_POLICY_NAME: &str = "elevate-ended-sessions";

/// IAM's limit on the aggregate size of a role's inline policies, whitespace not counted.
pub const MAX_INLINE_CHARS: usize = 10_240;

/// IAM's ceiling on a role session: 12 hours, the largest `MaxSessionDuration` a role may have.
/// A deny of the sessions issued before a time can deny nothing once this has passed since.
/// The role's own maximum is not used: lowering it leaves the sessions issued under the old
/// one live, and it may have been lowered just before the deny was written.
pub const SESSION_CEILING: Duration = Duration::hours(12);

/// Ends at the same moment each check the room against their own read of the role, so each
/// may take room another counted on. A person's policy leaves room for this many more people's
/// policies (of the longest user name) besides a deny of every session: that many ends planned
/// from one read, on top of the one checking, still leave room to fail closed (1.3 KB in all of
/// the 10 KB; more at once is rarer, and then the fallback deletes before it writes).
pub const CONCURRENT_ENDS: usize = 4;

/// IAM's limits on the length of a user name and of a policy name.
const MAX_USER_NAME: usize = 64;
const MAX_POLICY_NAME: usize = 128;
/// `20261201T101501Z`: a policy name allows no `:`.
const NAME_TIME: &str = "%Y%m%dT%H%M%SZ";
const NAME_TIME_LEN: usize = 16;
const _: () = assert!(POLICY_PREFIX.len() + MAX_USER_NAME + 1 + NAME_TIME_LEN <= MAX_POLICY_NAME);

const ISSUE_TIME: &str = "aws:TokenIssueTime";
const USER_ID: &str = "aws:userid";
/// How this version matches `aws:userid`: a user name is not case-sensitive, a RoleId is
/// upper case.
const IGNORE_CASE: &str = "StringEqualsIgnoreCase";
/// How earlier versions matched it.
const EXACT: &str = "StringEquals";

/// What ending one person's sessions does to a role's inline policies, in this order: delete
/// `delete_first`, write `document` as `name` and read it back, delete `delete_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// elevate's policies that can deny nothing any more, or deny nothing that another policy
    /// of elevate's does not: deleted first, to make room for the write. When a deny of every
    /// session has no room otherwise, also the oldest of those it covers, until it fits.
    pub delete_first: Vec<String>,
    /// The policy to write.
    pub name: String,
    /// Its document (compact JSON).
    pub document: String,
    /// elevate's policies the written one covers: deleted only once it is read back.
    pub delete_after: Vec<String>,
    pub outcome: SessionsEnded,
}

/// Why no policy could be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("`{0}` is not an IAM user name, so it names no role session")]
    NotAUserName(String),
    #[error("the role's inline policies leave no room ({budget} characters) even for denying every session")]
    NoRoom { budget: usize },
}

/// The policies that, on top of `policies` (every inline policy of the role with `role_id` now:
/// name and decoded document), deny the sessions of `session_name` issued before `before`, and
/// the policies of elevate's that are needed no more at `now`. The role's inline policies may
/// take `limit` characters in all.
pub fn plan(
    policies: &[(String, String)],
    role_id: &str,
    session_name: &str,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Plan, PlanError> {
    if !is_user_name(session_name) {
        return Err(PlanError::NotAUserName(session_name.to_owned()));
    }
    let before = ceil_to_second(before);
    let spent = |deny: &Deny| deny.at + SESSION_CEILING <= now;

    let ours: Vec<(&str, Ours)> = policies
        .iter()
        .filter_map(|(name, document)| {
            Ours::read(name, document, role_id).map(|ours| (name.as_str(), ours))
        })
        .collect();
    // Only policies that never change may be relied on to keep denying: the legacy policy may
    // still be rewritten by an earlier version while a deploy replaces it.
    let fixed: Vec<(&str, &Deny)> = ours
        .iter()
        .filter_map(|(name, ours)| match ours {
            Ours::Fixed(deny) => Some((*name, deny)),
            Ours::Legacy(_) => None,
        })
        .collect();

    let person = Deny {
        whose: Whose::Person(person_user_id(role_id, session_name)),
        at: before,
    };
    let person_name = person_policy_name(session_name, before);
    let everyone = Deny {
        whose: Whose::Everyone,
        at: before,
    };
    let everyone_name = all_sessions_policy_name(before);

    // Never delete what this end may write: a retry within the same second writes it again.
    let mut delete_first: Vec<&str> = ours
        .iter()
        .filter(|(name, _)| *name != person_name && *name != everyone_name)
        .filter(|(name, ours)| needless(name, ours.denies(), &fixed, spent))
        .map(|(name, _)| *name)
        .collect();
    let kept_size = |written: &str, deleted: &[&str]| -> usize {
        policies
            .iter()
            .filter(|(name, _)| name != written && !deleted.contains(&name.as_str()))
            .map(|(_, document)| size(document))
            .sum()
    };
    let after = |written: (&str, &Deny), deleted: &[&str]| -> Vec<(&str, &Ours)> {
        let coverers: Vec<(&str, &Deny)> = fixed.iter().copied().chain([written]).collect();
        ours.iter()
            .filter(|(name, _)| *name != written.0 && !deleted.contains(name))
            .filter(|(name, ours)| needless(name, ours.denies(), &coverers, spent))
            .map(|(name, ours)| (*name, ours))
            .collect()
    };
    let owned = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();

    let person_document = document_of(&person);
    let everyone_document = document_of(&everyone);
    if kept_size(&person_name, &delete_first) + size(&person_document) + reserved(role_id, before)
        <= limit
    {
        let delete_after: Vec<&str> = after((&person_name, &person), &delete_first)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        return Ok(Plan {
            delete_first: owned(&delete_first),
            name: person_name,
            document: person_document,
            delete_after: owned(&delete_after),
            outcome: SessionsEnded::Person,
        });
    }

    // No room for one more person: deny every session issued before the end instead. That
    // covers each of elevate's policies up to then, so those go once it is in place.
    let mut covered = after((&everyone_name, &everyone), &delete_first);
    let needed = |deleted: &[&str]| kept_size(&everyone_name, deleted) + size(&everyone_document);
    // When more ends at once than room was kept for leave no room even for this deny, it must
    // still be written, or every later end on the role fails until policies age out and the
    // sessions of this end stay live. Room is made by deleting policies it covers, oldest first
    // (their sessions are the nearest to running out), until it fits: the sessions those deny
    // are not denied until the write is in place, a retry's write if this one fails.
    covered.sort_by_key(|(_, ours)| ours.denies().iter().map(|deny| deny.at).max());
    let mut covered = covered.into_iter().map(|(name, _)| name);
    while needed(&delete_first) > limit {
        let Some(name) = covered.next() else {
            return Err(PlanError::NoRoom {
                budget: limit.saturating_sub(kept_size(&everyone_name, &delete_first)),
            });
        };
        delete_first.push(name);
    }
    let delete_after: Vec<&str> = covered.collect();
    Ok(Plan {
        delete_first: owned(&delete_first),
        name: everyone_name,
        document: everyone_document,
        delete_after: owned(&delete_after),
        outcome: SessionsEnded::AllSessions,
    })
}

/// The room a person's policy leaves free on the role with `role_id`: a deny of every session
/// and [`CONCURRENT_ENDS`] more people's policies.
pub fn reserved(role_id: &str, at: DateTime<Utc>) -> usize {
    let everyone = Deny {
        whose: Whose::Everyone,
        at,
    };
    let longest = Deny {
        whose: Whose::Person(format!("{role_id}:{}", "a".repeat(MAX_USER_NAME))),
        at,
    };
    size(&document_of(&everyone)) + CONCURRENT_ENDS * size(&document_of(&longest))
}

/// The name of the policy that denies the sessions of `session_name` issued before `at`. The
/// user name is in lower case, so that every spelling of one user names one policy.
pub fn person_policy_name(session_name: &str, at: DateTime<Utc>) -> String {
    format!(
        "{POLICY_PREFIX}{}-{}",
        session_name.to_ascii_lowercase(),
        ceil_to_second(at).format(NAME_TIME)
    )
}

/// The name of the policy that denies every session issued before `at`. Shorter than any
/// person's (a user name has at least one character), so never the same as one.
pub fn all_sessions_policy_name(at: DateTime<Utc>) -> String {
    format!("{POLICY_PREFIX}{}", ceil_to_second(at).format(NAME_TIME))
}

/// Whether `document` (a policy as read back) denies the sessions of `session_name` issued
/// before `before`: by a statement for that person, or one for every session.
pub fn denies(document: &str, role_id: &str, session_name: &str, before: DateTime<Utc>) -> bool {
    let before = ceil_to_second(before);
    let user_id = format!("{role_id}:{session_name}");
    statements_of(document).is_some_and(|statements| {
        statements.iter().any(|s| {
            let covers = issued_before(s).is_some_and(|at| at >= before);
            covers
                && match whose_of(s) {
                    Whose::Everyone => true,
                    Whose::Person(id) => id.eq_ignore_ascii_case(&user_id),
                    Whose::Exactly(id) => id == user_id,
                }
        })
    })
}

/// The size IAM counts: characters other than whitespace.
pub fn size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// A policy document as IAM returns it (URL-encoded, RFC 3986) or as written.
pub fn decode(document: &str) -> String {
    percent_encoding::percent_decode_str(document)
        .decode_utf8_lossy()
        .into_owned()
}

/// IAM's user names: 1 to 64 of `[\w+=,.@-]`. Each is also allowed in a policy name.
fn is_user_name(name: &str) -> bool {
    (1..=MAX_USER_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// `<RoleId>:<session name>`, the user name in lower case (compared ignoring case).
fn person_user_id(role_id: &str, session_name: &str) -> String {
    format!("{role_id}:{}", session_name.to_ascii_lowercase())
}

/// Whose sessions a deny is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Whose {
    Everyone,
    /// `aws:userid` ignoring case, as this version writes.
    Person(String),
    /// `aws:userid` exactly, as earlier versions wrote: only ever read.
    Exactly(String),
}

/// A deny of elevate's: of the sessions issued before `at`, those of `whose`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Deny {
    whose: Whose,
    at: DateTime<Utc>,
}

impl Deny {
    /// Whether this denies every session `other` denies.
    fn covers(&self, other: &Deny) -> bool {
        self.at >= other.at
            && match (&self.whose, &other.whose) {
                (Whose::Everyone, _) => true,
                (Whose::Person(id), Whose::Person(other) | Whose::Exactly(other)) => {
                    id.eq_ignore_ascii_case(other)
                }
                (Whose::Exactly(id), Whose::Exactly(other)) => id == other,
                _ => false,
            }
    }

    fn statement(&self) -> Value {
        let mut condition = json!({
            "DateLessThan": {
                ISSUE_TIME: self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }
        });
        match &self.whose {
            Whose::Everyone => {}
            Whose::Person(id) => condition[IGNORE_CASE] = json!({ USER_ID: id }),
            Whose::Exactly(id) => condition[EXACT] = json!({ USER_ID: id }),
        }
        json!({
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": condition,
        })
    }

    /// The deny `statement` is, when it is exactly one of elevate's.
    fn of(statement: &Value) -> Option<Deny> {
        let deny = Deny {
            whose: whose_of(statement),
            at: issued_before(statement)?,
        };
        (deny.statement() == *statement).then_some(deny)
    }
}

/// A policy of elevate's on a role.
#[derive(Debug)]
enum Ours {
    /// Written by this version: one deny, named after it, never changed.
    Fixed(Deny),
    /// The legacy shared policy, when each of its statements is a deny of elevate's.
    Legacy(Vec<Deny>),
}

impl Ours {
    /// What the policy `name` with `document` is to elevate; `None` for any other policy,
    /// which is kept as it is.
    fn read(name: &str, document: &str, role_id: &str) -> Option<Ours> {
        if name == LEGACY_POLICY_NAME {
            return statements_of(document)?
                .iter()
                .map(Deny::of)
                .collect::<Option<Vec<_>>>()
                .map(Ours::Legacy);
        }
        if !name.starts_with(POLICY_PREFIX) {
            return None;
        }
        let statements = statements_of(document)?;
        let [statement] = statements.as_slice() else {
            return None;
        };
        let deny = Deny::of(statement)?;
        let named = match &deny.whose {
            Whose::Person(id) => {
                person_policy_name(id.strip_prefix(role_id)?.strip_prefix(':')?, deny.at)
            }
            Whose::Everyone => all_sessions_policy_name(deny.at),
            // This version's person denies ignore case; exact ones are the legacy policy's.
            Whose::Exactly(_) => return None,
        };
        let exact = serde_json::from_str::<Value>(document).ok()?
            == serde_json::from_str::<Value>(&document_of(&deny)).ok()?;
        (name == named && exact).then_some(Ours::Fixed(deny))
    }

    fn denies(&self) -> &[Deny] {
        match self {
            Ours::Fixed(deny) => std::slice::from_ref(deny),
            Ours::Legacy(denies) => denies,
        }
    }
}

/// Whether deleting the policy `name`, which denies `denies`, loses nothing: each deny can deny
/// nothing any more, or another of `coverers` denies all it does. Covering is a strict order
/// between differently named policies, so a chain of them ends in one that is never deleted
/// while it can deny something, however stale the read a delete was decided on.
fn needless(
    name: &str,
    denies: &[Deny],
    coverers: &[(&str, &Deny)],
    spent: impl Fn(&Deny) -> bool,
) -> bool {
    denies.iter().all(|deny| {
        spent(deny)
            || coverers
                .iter()
                .any(|(other, by)| *other != name && by.covers(deny))
    })
}

/// Sessions issued in the same second as the end are denied too.
pub(crate) fn ceil_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at.trunc_subsecs(0);
    if floor == at {
        at
    } else {
        floor + Duration::seconds(1)
    }
}

/// The statements of a policy document; `None` when it is not one.
pub(crate) fn statements_of(text: &str) -> Option<Vec<Value>> {
    let document: Value = serde_json::from_str(text).ok()?;
    match document.get("Statement") {
        Some(Value::Array(statements)) => Some(statements.clone()),
        Some(statement @ Value::Object(_)) => Some(vec![statement.clone()]),
        None => Some(Vec::new()),
        Some(_) => None,
    }
}

fn document_of(deny: &Deny) -> String {
    json!({ "Version": "2012-10-17", "Statement": [deny.statement()] }).to_string()
}

/// The issue time a deny statement denies sessions before.
pub(crate) fn issued_before(statement: &Value) -> Option<DateTime<Utc>> {
    if statement.get("Effect")? != "Deny" {
        return None;
    }
    let text = statement
        .get("Condition")?
        .get("DateLessThan")?
        .get(ISSUE_TIME)?
        .as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Whose sessions a statement's `aws:userid` condition names; every session's without one.
fn whose_of(statement: &Value) -> Whose {
    let user_id = |operator: &str| {
        statement
            .get("Condition")?
            .get(operator)?
            .get(USER_ID)?
            .as_str()
            .map(str::to_owned)
    };
    match (user_id(IGNORE_CASE), user_id(EXACT)) {
        (Some(id), _) => Whose::Person(id),
        (None, Some(id)) => Whose::Exactly(id),
        (None, None) => Whose::Everyone,
    }
}

/// A role as read before its sessions are ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    /// The role's name.
    pub name: String,
    /// The role's unique id (`AROA...`).
    pub role_id: String,
    /// Every inline policy of the role: its name and its document, decoded.
    pub policies: Vec<(String, String)>,
}

impl IamGroupStrategy {
    /// Ends the sessions of `session_name` of `role` (name or ARN) issued before `before`, and
    /// reads the policy back.
    #[instrument(skip(self), err)]
    pub(crate) async fn end_role_sessions(
        &self,
        role: &str,
        session_name: &str,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError> {
        let Some(state) = self.read_role(role).await? else {
            return Ok(None);
        };
        let plan = plan(
            &state.policies,
            &state.role_id,
            session_name,
            before,
            Utc::now(),
            MAX_INLINE_CHARS,
        )
        .map_err(|e| StrategyError::Refused(format!("role {}: {e}", state.name)))?;
        self.apply_plan(&state, &plan, session_name, before).await?;
        match plan.outcome {
            SessionsEnded::Person => tracing::info!(role = state.name, "sessions ended"),
            SessionsEnded::AllSessions => tracing::warn!(
                role = state.name,
                "the role's policies had no room for one more person: every session issued before now is denied"
            ),
        }
        Ok(Some(plan.outcome))
    }

    /// `role` (name or ARN) and its inline policies; `None` when the role does not exist.
    pub async fn read_role(&self, role: &str) -> Result<Option<RoleState>, StrategyError> {
        let name = role_name(role).ok_or_else(|| {
            StrategyError::Refused(format!("`{role}` is not an IAM role name or ARN"))
        })?;
        let iam = &self.client;
        let found = match iam.get_role().role_name(name).send().await {
            Ok(found) => found,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                tracing::warn!(
                    role = name,
                    "the role does not exist, so it has no sessions to end"
                );
                return Ok(None);
            }
            Err(err) => return Err(fault(format!("iam GetRole {name}"), err)),
        };
        let role_info = found.role().ok_or_else(|| {
            StrategyError::Unavailable(format!("iam GetRole {name} answered no role").into())
        })?;

        let mut policies = Vec::new();
        let mut names = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send();
        while let Some(policy) = names.next().await {
            let policy = policy.map_err(|e| fault(format!("iam ListRolePolicies {name}"), e))?;
            // Another end may delete a policy between the listing and the read.
            if let Some(document) = self.role_policy(name, &policy).await? {
                policies.push((policy, document));
            }
        }
        Ok(Some(RoleState {
            name: name.to_owned(),
            role_id: role_info.role_id().to_owned(),
            policies,
        }))
    }

    /// Carries out `plan` on `role`: the write is read back and must deny the sessions of
    /// `session_name` issued before `before`. A failed delete is only logged: what it would
    /// delete denies nothing that another policy does not, and a later end tries again; when it
    /// was to make room, IAM refuses the write, and the end fails and is retried.
    pub async fn apply_plan(
        &self,
        role: &RoleState,
        plan: &Plan,
        session_name: &str,
        before: DateTime<Utc>,
    ) -> Result<(), StrategyError> {
        let name = role.name.as_str();
        for policy in &plan.delete_first {
            self.delete_role_policy(name, policy).await;
        }
        self.client
            .put_role_policy()
            .role_name(name)
            .policy_name(&plan.name)
            .policy_document(&plan.document)
            .send()
            .await
            .map_err(|e| fault(format!("iam PutRolePolicy {name} {}", plan.name), e))?;

        // Gone already when a deny of every session written meanwhile covers it: the retry
        // plans again.
        let written = self.role_policy(name, &plan.name).await?;
        if !written.is_some_and(|w| denies(&w, &role.role_id, session_name, before)) {
            return Err(StrategyError::Unavailable(
                format!(
                    "role {name}: the {} policy read back does not deny the sessions",
                    plan.name
                )
                .into(),
            ));
        }
        for policy in &plan.delete_after {
            self.delete_role_policy(name, policy).await;
        }
        Ok(())
    }

    /// An inline policy of a role, decoded; `None` when the role has no such policy.
    async fn role_policy(&self, role: &str, policy: &str) -> Result<Option<String>, StrategyError> {
        match self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(answer) => Ok(Some(decode(answer.policy_document()))),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(fault(format!("iam GetRolePolicy {role} {policy}"), err)),
        }
    }

    /// Deletes a policy of elevate's that is needed no more; one already gone is success.
    async fn delete_role_policy(&self, role: &str, policy: &str) {
        match self
            .client
            .delete_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(_) => tracing::info!(
                role,
                policy,
                "deleted a session-ending policy needed no more"
            ),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) => {}
            Err(err) => tracing::warn!(
                role,
                policy,
                error = %AwsError::new(format!("iam DeleteRolePolicy {role} {policy}"), err),
                "could not delete a session-ending policy needed no more; a later end tries again"
            ),
        }
    }
}

/// A failed AWS call of a strategy: unavailable, with the call and the SDK error kept.
pub(crate) fn fault<E>(operation: String, err: E) -> StrategyError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StrategyError::Unavailable(AwsError::boxed(operation, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "AROAEXAMPLEROLE00001";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn statements(document: &str) -> Vec<Value> {
        statements_of(document).expect("document")
    }

    /// What IAM holds after `plan` is carried out; IAM refuses a write that passes `limit`.
    fn apply(policies: &mut Vec<(String, String)>, plan: &Plan, limit: usize) {
        policies.retain(|(name, _)| !plan.delete_first.contains(name) && *name != plan.name);
        policies.push((plan.name.clone(), plan.document.clone()));
        let total = taken(policies);
        assert!(
            total <= limit,
            "IAM refuses {}: {total} > {limit}",
            plan.name
        );
        policies.retain(|(name, _)| !plan.delete_after.contains(name));
    }

    fn taken(policies: &[(String, String)]) -> usize {
        policies.iter().map(|(_, document)| size(document)).sum()
    }

    /// Whether one of `policies` denies the sessions of `who` issued before `before`.
    fn denied(policies: &[(String, String)], who: &str, before: DateTime<Utc>) -> bool {
        policies
            .iter()
            .any(|(_, document)| denies(document, ROLE, who, before))
    }

    fn names(policies: &[(String, String)]) -> Vec<&str> {
        policies.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn ended(
        policies: &mut Vec<(String, String)>,
        who: &str,
        end: DateTime<Utc>,
        limit: usize,
    ) -> Plan {
        let plan = plan(policies, ROLE, who, end, end, limit).expect("plan");
        apply(policies, &plan, limit);
        plan
    }

    #[test]
    fn a_first_end_writes_that_persons_own_policy() {
        let end = at("2026-12-01T10:15:00.250Z");
        let plan = plan(&[], ROLE, "alice", end, end, MAX_INLINE_CHARS).expect("plan");
        assert_eq!(plan.outcome, SessionsEnded::Person);
        assert_eq!(
            plan.name, "elevate-ended-sessions-alice-20261201T101501Z",
            "named after the person and the time, in whole seconds"
        );
        assert!(plan.delete_first.is_empty() && plan.delete_after.is_empty());
        let statements = statements(&plan.document);
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0]["Condition"],
            json!({
                "DateLessThan": {"aws:TokenIssueTime": "2026-12-01T10:15:01Z"},
                "StringEqualsIgnoreCase": {"aws:userid": "AROAEXAMPLEROLE00001:alice"}
            }),
            "IAM user names are not case-sensitive"
        );
        assert_eq!(
            statements[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-12-01T10:15:01Z",
            "a session issued in the same second as the end is denied too"
        );
        assert!(denies(&plan.document, ROLE, "alice", end));
        assert!(!denies(&plan.document, ROLE, "bob", end));
        assert!(
            !denies(&plan.document, ROLE, "alice", end + Duration::hours(1)),
            "a later end is not covered"
        );
    }

    #[test]
    fn every_iam_user_name_makes_a_policy_name_and_nothing_else_does() {
        let end = at("2026-12-01T10:00:00Z");
        let longest = format!("{}+=,.@_-", "a".repeat(MAX_USER_NAME - 7));
        assert_eq!(longest.len(), MAX_USER_NAME);
        let plan = plan(&[], ROLE, &longest, end, end, MAX_INLINE_CHARS).expect("plan");
        assert!(plan.name.len() <= MAX_POLICY_NAME, "{}", plan.name);
        assert!(plan
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)));
        for bad in [
            "",
            &"a".repeat(MAX_USER_NAME + 1),
            "alice:admin",
            "al ice",
            "élise",
        ] {
            assert_eq!(
                super::plan(&[], ROLE, bad, end, end, MAX_INLINE_CHARS),
                Err(PlanError::NotAUserName(bad.to_owned()))
            );
        }
    }

    #[test]
    fn a_deny_of_every_session_is_never_named_like_a_persons() {
        let end = at("2026-12-01T10:00:00Z");
        let everyone = all_sessions_policy_name(end);
        assert_eq!(everyone, "elevate-ended-sessions-20261201T100000Z");
        // A user named like a time still gets a longer name.
        assert_ne!(person_policy_name("20261201T100000Z", end), everyone);
        assert_ne!(
            person_policy_name("20261201T100000Z", end),
            LEGACY_POLICY_NAME
        );
    }

    #[test]
    fn two_people_ending_from_the_same_read_write_two_policies() {
        let end = at("2026-12-01T10:00:00Z");
        let read = Vec::new();
        let alice = plan(&read, ROLE, "alice", end, end, MAX_INLINE_CHARS).expect("plan");
        let bob = plan(&read, ROLE, "bob", end, end, MAX_INLINE_CHARS).expect("plan");
        assert_ne!(alice.name, bob.name);
        let mut policies = read;
        apply(&mut policies, &alice, MAX_INLINE_CHARS);
        apply(&mut policies, &bob, MAX_INLINE_CHARS);
        assert_eq!(policies.len(), 2);
        let all = policies.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>();
        assert!(all.iter().any(|d| denies(d, ROLE, "alice", end)));
        assert!(all.iter().any(|d| denies(d, ROLE, "bob", end)));
        // A third end keeps both.
        let carol = ended(&mut policies, "carol", end, MAX_INLINE_CHARS);
        assert!(carol.delete_first.is_empty() && carol.delete_after.is_empty());
        assert_eq!(policies.len(), 3);
    }

    #[test]
    fn a_persons_later_end_replaces_the_earlier_policy_once_written() {
        let first = at("2026-12-01T10:00:00Z");
        let mut policies = Vec::new();
        let one = ended(&mut policies, "alice", first, MAX_INLINE_CHARS);
        ended(&mut policies, "bob", first, MAX_INLINE_CHARS);
        let later = first + Duration::minutes(20);
        let three = plan(&policies, ROLE, "alice", later, later, MAX_INLINE_CHARS).expect("plan");
        assert!(three.delete_first.is_empty(), "{three:?}");
        assert_eq!(
            three.delete_after,
            vec![one.name],
            "the earlier one goes only after the later one is in place"
        );
        apply(&mut policies, &three, MAX_INLINE_CHARS);
        assert_eq!(policies.len(), 2, "one policy per person");
    }

    #[test]
    fn a_policy_that_can_deny_nothing_any_more_is_deleted_not_rewritten() {
        let first = at("2026-12-01T10:00:00Z");
        let mut policies = Vec::new();
        let alice = ended(&mut policies, "alice", first, MAX_INLINE_CHARS);
        // 12 hours (the longest session IAM allows) after alice's end, her old sessions are gone.
        let later = first + SESSION_CEILING + Duration::seconds(1);
        let bob = ended(&mut policies, "bob", later, MAX_INLINE_CHARS);
        assert_eq!(bob.delete_first, vec![alice.name]);
        assert_eq!(names(&policies), vec![bob.name.as_str()]);
    }

    #[test]
    fn a_policy_outlives_any_maximum_session_the_role_had() {
        // The role allowed 12-hour sessions when alice's grant ended; its maximum is 1 hour now,
        // but a session alice assumed just before the end still has 11 hours to run.
        let first = at("2026-12-01T10:00:00Z");
        let mut policies = Vec::new();
        let alice = ended(&mut policies, "alice", first, MAX_INLINE_CHARS);
        for later in [
            Duration::minutes(61),
            SESSION_CEILING - Duration::seconds(1),
        ] {
            let bob = plan(
                &policies,
                ROLE,
                "bob",
                first + later,
                first + later,
                MAX_INLINE_CHARS,
            )
            .expect("plan");
            assert!(bob.delete_first.is_empty(), "{later}: {bob:?}");
            assert!(bob.delete_after.is_empty(), "{later}: {bob:?}");
        }
        assert!(denied(&policies, "alice", first));
        assert_eq!(names(&policies), vec![alice.name.as_str()]);
    }

    #[test]
    fn a_persons_policy_covered_by_a_deny_of_every_session_goes_first() {
        let first = at("2026-12-01T10:00:00Z");
        let everyone = Deny {
            whose: Whose::Everyone,
            at: first + Duration::minutes(1),
        };
        let mut policies = vec![(
            all_sessions_policy_name(everyone.at),
            document_of(&everyone),
        )];
        let alice = ended(&mut policies, "alice", first, MAX_INLINE_CHARS);
        let bob = ended(&mut policies, "bob", first, MAX_INLINE_CHARS);
        assert_eq!(bob.delete_first, vec![alice.name]);
        assert_eq!(
            names(&policies),
            vec![
                all_sessions_policy_name(everyone.at).as_str(),
                bob.name.as_str()
            ],
            "the deny of every session can still deny something"
        );
    }

    #[test]
    fn policies_that_are_not_elevates_are_kept_and_counted() {
        let end_at = at("2026-12-01T10:00:00Z");
        let spent = end_at - SESSION_CEILING - Duration::hours(1);
        let foreign = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        // Named like elevate's but edited by hand: elevate does not own it any more.
        let edited = format!(
            r#"{{"Version":"2012-10-17","Statement":[{},{{"Effect":"Allow","Action":"s3:*","Resource":"*"}}]}}"#,
            Deny {
                whose: Whose::Person(format!("{ROLE}:carol")),
                at: spent
            }
            .statement()
        );
        // elevate's name and document, but for another role's id.
        let other_role = Deny {
            whose: Whose::Person("AROAOTHERROLE0000001:dave".to_owned()),
            at: spent,
        };
        let mut policies = vec![
            ("foreign".to_owned(), foreign.to_owned()),
            ("not json".to_owned(), "{".to_owned()),
            (person_policy_name("carol", spent), edited),
            (person_policy_name("dave", spent), document_of(&other_role)),
        ];
        let before = policies.clone();
        let plan = ended(&mut policies, "alice", end_at, MAX_INLINE_CHARS);
        assert!(
            plan.delete_first.is_empty() && plan.delete_after.is_empty(),
            "{plan:?}"
        );
        assert_eq!(&policies[..4], &before[..]);

        let budget = taken(&before) + size(&plan.document) + reserved(ROLE, end_at);
        let just = super::plan(&before, ROLE, "alice", end_at, end_at, budget).expect("plan");
        assert_eq!(just.outcome, SessionsEnded::Person);
        let tight = super::plan(&before, ROLE, "alice", end_at, end_at, budget - 1).expect("plan");
        assert_eq!(
            tight.outcome,
            SessionsEnded::AllSessions,
            "they count against the limit"
        );
    }

    #[test]
    fn the_legacy_shared_policy_is_honoured_until_it_can_deny_nothing() {
        let now = at("2026-12-01T10:00:00Z");
        let person = |who: &str, at| Deny {
            whose: Whose::Exactly(format!("{ROLE}:{who}")),
            at,
        };
        let legacy = |denies: &[Deny]| {
            json!({
                "Version": "2012-10-17",
                "Statement": denies.iter().map(Deny::statement).collect::<Vec<_>>()
            })
            .to_string()
        };
        let carol = person("carol", now - Duration::minutes(5));
        let dave = person("dave", now - SESSION_CEILING - Duration::minutes(1));
        let shared = legacy(&[carol.clone(), dave]);
        let mut policies = vec![(LEGACY_POLICY_NAME.to_owned(), shared.clone())];

        // alice's end leaves carol's live statement where it is.
        let alice = ended(&mut policies, "alice", now, MAX_INLINE_CHARS);
        assert!(alice.delete_first.is_empty() && alice.delete_after.is_empty());
        assert_eq!(policies[0], (LEGACY_POLICY_NAME.to_owned(), shared.clone()));
        assert!(denies(&shared, ROLE, "carol", carol.at));

        // carol's own end covers her statement; dave's can deny nothing: the legacy policy goes,
        // once carol's own policy is in place.
        let carol_end = ended(&mut policies, "carol", now, MAX_INLINE_CHARS);
        assert_eq!(carol_end.delete_after, vec![LEGACY_POLICY_NAME.to_owned()]);
        assert_eq!(
            names(&policies),
            vec![alice.name.as_str(), carol_end.name.as_str()]
        );

        // Entirely spent, it goes first; with a statement not of elevate's, it stays.
        let spent = vec![(
            LEGACY_POLICY_NAME.to_owned(),
            legacy(&[person("erin", now - SESSION_CEILING - Duration::minutes(1))]),
        )];
        let plan = super::plan(&spent, ROLE, "alice", now, now, MAX_INLINE_CHARS).expect("plan");
        assert_eq!(plan.delete_first, vec![LEGACY_POLICY_NAME.to_owned()]);
        let mixed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let kept = vec![(LEGACY_POLICY_NAME.to_owned(), mixed.to_owned())];
        let plan = super::plan(&kept, ROLE, "alice", now, now, MAX_INLINE_CHARS).expect("plan");
        assert!(plan.delete_first.is_empty() && plan.delete_after.is_empty());
    }

    #[test]
    fn a_legacy_deny_of_every_session_is_no_cover_for_deleting() {
        // An earlier version may still rewrite the legacy policy during a deploy.
        let now = at("2026-12-01T10:00:00Z");
        let mut policies = vec![(
            LEGACY_POLICY_NAME.to_owned(),
            json!({"Version": "2012-10-17", "Statement": [Deny { whose: Whose::Everyone, at: now }.statement()]})
                .to_string(),
        )];
        let alice = ended(
            &mut policies,
            "alice",
            now - Duration::minutes(1),
            MAX_INLINE_CHARS,
        );
        let bob = ended(&mut policies, "bob", now, MAX_INLINE_CHARS);
        assert!(bob.delete_first.is_empty(), "{bob:?}");
        assert!(names(&policies).contains(&alice.name.as_str()));
    }

    #[test]
    fn the_budget_counts_every_persons_policy_and_falls_back_to_every_session() {
        let end_at = at("2026-12-01T10:00:00Z");
        let limit = reserved(ROLE, end_at) + 1_200;
        let mut policies = Vec::new();
        let mut people = Vec::new();
        for n in 0.. {
            let who = format!("person{n:03}");
            let plan = ended(&mut policies, &who, end_at, limit);
            let total: usize = policies.iter().map(|(_, d)| size(d)).sum();
            assert!(total <= limit, "{total} > {limit}");
            people.push(who);
            if plan.outcome == SessionsEnded::AllSessions {
                assert!(n >= 3, "fell back with room for more: {n}");
                assert_eq!(plan.name, all_sessions_policy_name(end_at));
                assert_eq!(
                    plan.delete_after.len(),
                    n,
                    "every person's policy goes once every session is denied"
                );
                assert_eq!(names(&policies), vec![plan.name.as_str()]);
                for who in &people {
                    assert!(denies(&plan.document, ROLE, who, end_at));
                }
                assert!(denies(&plan.document, ROLE, "anyone", end_at));
                // The room is back for the next person.
                let next = ended(&mut policies, "next", end_at + Duration::seconds(1), limit);
                assert_eq!(next.outcome, SessionsEnded::Person);
                return;
            }
            // A person's policy always leaves room to fail closed, and for ends at once.
            assert!(total + reserved(ROLE, end_at) <= limit);
            assert!(n < 100, "never fell back");
        }
    }

    /// A policy that is not elevate's, of `size` characters.
    fn filler(size: usize) -> (String, String) {
        let document = |resource: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{resource}"}}]}}"#
            )
        };
        let pad = "x".repeat(size - super::size(&document("")));
        ("filler".to_owned(), document(&pad))
    }

    fn person_size(who: &str, end: DateTime<Utc>) -> usize {
        size(&document_of(&Deny {
            whose: Whose::Person(person_user_id(ROLE, who)),
            at: end,
        }))
    }

    #[test]
    fn two_ends_planned_from_one_near_full_read_leave_room_for_a_third() {
        // Room for two people's policies: each end's own read leaves room for one more person
        // and a deny of every session, but both writes together leave less than that deny.
        let end = at("2026-12-01T10:00:00Z");
        let read = vec![filler(MAX_INLINE_CHARS - 2 * person_size("alice", end))];
        let plans = ["alice", "bobby"]
            .map(|who| plan(&read, ROLE, who, end, end, MAX_INLINE_CHARS).expect("plan"));
        let mut policies = read;
        for plan in &plans {
            apply(&mut policies, plan, MAX_INLINE_CHARS);
        }
        let later = end + Duration::minutes(1);
        let carol = ended(&mut policies, "carol", later, MAX_INLINE_CHARS);
        assert!(
            carol.delete_first.is_empty(),
            "room was kept: no deny is deleted before the write {carol:?}"
        );
        assert!(denied(&policies, "alice", end) && denied(&policies, "bobby", end));
        assert!(denied(&policies, "carol", later));
    }

    #[test]
    fn as_many_ends_at_once_as_room_is_kept_for_still_leave_room_to_fail_closed() {
        let end = at("2026-12-01T10:00:00Z");
        let people: Vec<String> = (0..=CONCURRENT_ENDS)
            .map(|n| format!("{n}{}", "a".repeat(MAX_USER_NAME - 1)))
            .collect();
        let size = person_size(&people[0], end);
        let read = vec![filler(MAX_INLINE_CHARS - size - reserved(ROLE, end))];
        let mut policies = read.clone();
        for who in &people {
            let plan = plan(&read, ROLE, who, end, end, MAX_INLINE_CHARS).expect("plan");
            assert_eq!(plan.outcome, SessionsEnded::Person, "{who}");
            apply(&mut policies, &plan, MAX_INLINE_CHARS);
        }
        let later = end + Duration::minutes(1);
        let next = ended(&mut policies, "next", later, MAX_INLINE_CHARS);
        assert_eq!(next.outcome, SessionsEnded::AllSessions);
        assert!(
            next.delete_first.is_empty(),
            "the deny is written before anything is deleted: {next:?}"
        );
        assert!(people.iter().all(|who| denied(&policies, who, end)));
    }

    #[test]
    fn with_no_room_even_for_a_deny_of_every_session_the_oldest_covered_policies_go_first() {
        // More ends at once than room was kept for have left less than a deny of every session.
        let end = at("2026-12-01T10:00:00Z");
        let people: Vec<(String, DateTime<Utc>)> = (0..8)
            .map(|n| (format!("person{n}"), end - Duration::minutes(8 - n)))
            .collect();
        let mut policies: Vec<(String, String)> = people
            .iter()
            .rev()
            .map(|(who, at)| {
                let plan = plan(&[], ROLE, who, *at, *at, MAX_INLINE_CHARS).expect("plan");
                (plan.name, plan.document)
            })
            .collect();
        let everyone = size(&document_of(&Deny {
            whose: Whose::Everyone,
            at: end,
        }));
        let free = everyone - 1;
        policies.insert(0, filler(MAX_INLINE_CHARS - free - taken(&policies)));

        let dave = plan(&policies, ROLE, "dave", end, end, MAX_INLINE_CHARS).expect("room made");
        assert_eq!(dave.outcome, SessionsEnded::AllSessions);
        assert_eq!(
            dave.delete_first,
            vec![person_policy_name("person0", people[0].1)],
            "as few as will do, the oldest first"
        );
        let mut after = dave.delete_after.clone();
        after.sort();
        let rest: Vec<String> = people[1..]
            .iter()
            .map(|(who, at)| person_policy_name(who, *at))
            .collect();
        assert_eq!(after, rest, "the rest go once the deny is in place");
        apply(&mut policies, &dave, MAX_INLINE_CHARS);
        assert_eq!(names(&policies), vec!["filler", &dave.name]);
        assert!(people.iter().all(|(who, at)| denied(&policies, who, *at)));
        assert!(denied(&policies, "dave", end));

        // With none of elevate's policies to delete there is no room to make.
        let full = vec![filler(MAX_INLINE_CHARS - free)];
        assert_eq!(
            plan(&full, ROLE, "dave", end, end, MAX_INLINE_CHARS),
            Err(PlanError::NoRoom { budget: free })
        );
    }

    #[test]
    fn a_user_name_is_matched_ignoring_case() {
        // IAM holds the user as `alice`; elevate.toml spelled it `Alice` for a while.
        let first = at("2026-12-01T10:00:00Z");
        let mut policies = Vec::new();
        let upper = ended(&mut policies, "Alice", first, MAX_INLINE_CHARS);
        assert_eq!(
            upper,
            plan(&[], ROLE, "alice", first, first, MAX_INLINE_CHARS).expect("plan"),
            "one user, one name and one document, however it is spelled"
        );
        for who in ["alice", "Alice", "ALICE"] {
            assert!(denies(&upper.document, ROLE, who, first), "{who}");
        }
        let later = first + Duration::minutes(5);
        let lower = ended(&mut policies, "alice", later, MAX_INLINE_CHARS);
        assert_eq!(lower.delete_after, vec![upper.name]);
        let again = ended(
            &mut policies,
            "ALICE",
            later + Duration::minutes(5),
            MAX_INLINE_CHARS,
        );
        assert_eq!(again.delete_after, vec![lower.name.clone()]);
        assert_eq!(names(&policies), vec![again.name.as_str()]);

        // Earlier versions matched exactly: read as such, and covered by a later end.
        let exact = Deny {
            whose: Whose::Exactly(format!("{ROLE}:Alice")),
            at: first,
        };
        let legacy = json!({"Version": "2012-10-17", "Statement": [exact.statement()]}).to_string();
        assert!(legacy.contains(r#""StringEquals":{"aws:userid":"AROAEXAMPLEROLE00001:Alice"}"#));
        assert!(denies(&legacy, ROLE, "Alice", first));
        assert!(!denies(&legacy, ROLE, "alice", first), "as IAM compares it");
        let policies = vec![(LEGACY_POLICY_NAME.to_owned(), legacy)];
        let plan = plan(&policies, ROLE, "alice", later, later, MAX_INLINE_CHARS).expect("plan");
        assert_eq!(plan.delete_after, vec![LEGACY_POLICY_NAME.to_owned()]);
    }

    #[test]
    fn the_widest_ending_of_several_roles_is_the_grants() {
        let ends = [
            None,
            Some(SessionsEnded::AllSessions),
            Some(SessionsEnded::Person),
        ];
        assert_eq!(
            ends.into_iter().fold(None, Option::max),
            Some(SessionsEnded::AllSessions)
        );
        assert_eq!(
            [None, Some(SessionsEnded::Person)]
                .into_iter()
                .fold(None, Option::max),
            Some(SessionsEnded::Person)
        );
    }

    #[test]
    fn no_room_at_all_is_an_error_not_a_silent_success() {
        let end = at("2026-12-01T10:00:00Z");
        assert_eq!(
            plan(&[], ROLE, "alice", end, end, 10),
            Err(PlanError::NoRoom { budget: 10 })
        );
    }

    #[test]
    fn a_retry_in_the_same_second_rewrites_the_same_policy() {
        let end_at = at("2026-12-01T10:00:00Z");
        let mut policies = Vec::new();
        let first = ended(&mut policies, "alice", end_at, MAX_INLINE_CHARS);
        let again = ended(&mut policies, "alice", end_at, MAX_INLINE_CHARS);
        assert_eq!(first, again, "the same name, the same document");
        assert_eq!(policies.len(), 1);
    }

    #[test]
    fn documents_read_back_from_iam_are_url_decoded() {
        assert_eq!(
            decode("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(decode(r#"{"a":"b"}"#), r#"{"a":"b"}"#);
    }
}
