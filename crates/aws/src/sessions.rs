//! Ending the live sessions of a role for one person: AWS's documented way to revoke role
//! sessions (an inline deny on the role for sessions whose `aws:TokenIssueTime` is before a
//! time), narrowed with `aws:userid` = `<RoleId>:<session name>` to the person whose grant
//! ended. Sessions the person starts after a new grant are issued later, so they are not
//! denied.
//!
//! elevate keeps one inline policy per role, [`POLICY_NAME`]. Its statements are pruned once
//! every session they could deny has expired anyway (older than the role's maximum session
//! duration). When the role's inline policies would pass IAM's size limit, the policy falls
//! back to denying every session issued before the end (fail closed).

use chrono::{DateTime, Duration, SubsecRound, Utc};
use elevate_core::config::role_name;
use elevate_core::model::SessionsEnded;
use elevate_core::ports::StrategyError;
use serde_json::{json, Value};
use tracing::instrument;

use crate::error::AwsError;
use crate::iam::IamGroupStrategy;

/// The inline policy elevate writes on a role.
pub const POLICY_NAME: &str = "elevate-ended-sessions";

/// IAM's limit on the aggregate size of a role's inline policies, whitespace not counted.
pub const MAX_INLINE_CHARS: usize = 10_240;

const ISSUE_TIME: &str = "aws:TokenIssueTime";
const USER_ID: &str = "aws:userid";

/// What ending one person's sessions does to a role's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The policy document to write (compact JSON).
    pub document: String,
    pub outcome: SessionsEnded,
}

/// Why no document could be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the role's `{POLICY_NAME}` policy is not a policy document: {0}")]
    Corrupt(String),
    #[error("the role's inline policies leave no room ({budget} characters) even for denying every session")]
    NoRoom { budget: usize },
}

/// What a role's sessions are recognised and pruned by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSessions<'a> {
    /// The role's unique id (`AROA...`).
    pub role_id: &'a str,
    /// The role's maximum session duration.
    pub max_session: std::time::Duration,
}

/// The policy that, on top of `existing` (this policy as the role has it now), denies the
/// sessions of `session_name` issued before `before`, pruned of statements that can no longer
/// deny anything at `now`. `budget` is how many characters the policy may take.
pub fn plan(
    existing: Option<&str>,
    role: &RoleSessions<'_>,
    session_name: &str,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    budget: usize,
) -> Result<Plan, PlanError> {
    let before = ceil_to_second(before);
    let mut statements = match existing {
        Some(text) => statements_of(text)?,
        None => Vec::new(),
    };
    let max_session =
        Duration::from_std(role.max_session).unwrap_or_else(|_| Duration::seconds(43_200));
    statements.retain(|statement| match issued_before(statement) {
        Some(at) => at + max_session > now,
        None => true,
    });

    let user_id = format!("{}:{session_name}", role.role_id);
    match statements
        .iter()
        .position(|s| user_id_of(s) == Some(user_id.as_str()))
    {
        Some(i) => {
            let later = issued_before(&statements[i]).map_or(before, |at| at.max(before));
            statements[i] = deny_before(Some(&user_id), later);
        }
        None => statements.push(deny_before(Some(&user_id), before)),
    }
    let document = document_of(&statements);
    if size(&document) <= budget {
        return Ok(Plan {
            document,
            outcome: SessionsEnded::Person,
        });
    }

    // No room for one more person: deny every session issued before the end instead. That
    // covers each statement of elevate's up to then, so those go.
    let everyone_until = statements
        .iter()
        .filter(|s| user_id_of(s).is_none())
        .filter_map(issued_before)
        .fold(before, DateTime::max);
    statements.retain(|s| {
        issued_before(s).is_none_or(|at| at > everyone_until && user_id_of(s).is_some())
    });
    statements.insert(0, deny_before(None, everyone_until));
    let document = document_of(&statements);
    if size(&document) <= budget {
        Ok(Plan {
            document,
            outcome: SessionsEnded::AllSessions,
        })
    } else {
        Err(PlanError::NoRoom { budget })
    }
}

/// Whether `document` (this policy as read back) denies the sessions of `session_name` issued
/// before `before`: by a statement for that person, or one for every session.
pub fn denies(document: &str, role_id: &str, session_name: &str, before: DateTime<Utc>) -> bool {
    let before = ceil_to_second(before);
    let user_id = format!("{role_id}:{session_name}");
    statements_of(document).is_ok_and(|statements| {
        statements.iter().any(|s| {
            let covers = issued_before(s).is_some_and(|at| at >= before);
            covers && user_id_of(s).is_none_or(|id| id == user_id)
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

fn ceil_to_second(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at.trunc_subsecs(0);
    if floor == at {
        at
    } else {
        floor + Duration::seconds(1)
    }
}

fn statements_of(text: &str) -> Result<Vec<Value>, PlanError> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| PlanError::Corrupt(e.to_string()))?;
    match document.get("Statement") {
        Some(Value::Array(statements)) => Ok(statements.clone()),
        Some(statement @ Value::Object(_)) => Ok(vec![statement.clone()]),
        None => Ok(Vec::new()),
        Some(other) => Err(PlanError::Corrupt(format!(
            "Statement is neither a list nor an object: {other}"
        ))),
    }
}

fn document_of(statements: &[Value]) -> String {
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// A deny of every action for sessions issued before `at`: those of `user_id` only, or all.
fn deny_before(user_id: Option<&str>, at: DateTime<Utc>) -> Value {
    let mut condition = json!({
        "DateLessThan": { ISSUE_TIME: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }
    });
    if let Some(user_id) = user_id {
        condition["StringEquals"] = json!({ USER_ID: user_id });
    }
    json!({
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": condition,
    })
}

/// The issue time a statement of elevate's denies sessions before; `None` for a statement
/// that is not one of elevate's (left as it is).
fn issued_before(statement: &Value) -> Option<DateTime<Utc>> {
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

fn user_id_of(statement: &Value) -> Option<&str> {
    statement
        .get("Condition")?
        .get("StringEquals")?
        .get(USER_ID)?
        .as_str()
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
        let max_session = role_info
            .max_session_duration()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(3600);
        let sessions = RoleSessions {
            role_id: role_info.role_id(),
            max_session: std::time::Duration::from_secs(max_session),
        };

        let mut others = 0;
        let mut existing = None;
        let mut names = iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send();
        while let Some(policy) = names.next().await {
            let policy = policy.map_err(|e| fault(format!("iam ListRolePolicies {name}"), e))?;
            let document = self.role_policy(name, &policy).await?;
            if policy == POLICY_NAME {
                existing = Some(document);
            } else {
                others += size(&document);
            }
        }
        let budget = MAX_INLINE_CHARS.saturating_sub(others);
        let plan = plan(
            existing.as_deref(),
            &sessions,
            session_name,
            before,
            Utc::now(),
            budget,
        )
        .map_err(|e| StrategyError::Refused(format!("role {name}: {e}")))?;
        iam.put_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .policy_document(&plan.document)
            .send()
            .await
            .map_err(|e| fault(format!("iam PutRolePolicy {name} {POLICY_NAME}"), e))?;

        let written = self.role_policy(name, POLICY_NAME).await?;
        if !denies(&written, sessions.role_id, session_name, before) {
            return Err(StrategyError::Unavailable(
                format!(
                    "role {name}: the {POLICY_NAME} policy read back does not deny the sessions"
                )
                .into(),
            ));
        }
        match plan.outcome {
            SessionsEnded::Person => tracing::info!(role = name, "sessions ended"),
            SessionsEnded::AllSessions => tracing::warn!(
                role = name,
                "the role's policy had no room for one more person: every session issued before now is denied"
            ),
        }
        Ok(Some(plan.outcome))
    }

    /// An inline policy of a role, decoded.
    async fn role_policy(&self, role: &str, policy: &str) -> Result<String, StrategyError> {
        let answer = self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| fault(format!("iam GetRolePolicy {role} {policy}"), e))?;
        Ok(decode(answer.policy_document()))
    }
}

fn fault<E>(operation: String, err: E) -> StrategyError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StrategyError::Unavailable(AwsError::boxed(operation, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: RoleSessions<'static> = RoleSessions {
        role_id: "AROAEXAMPLEROLE00001",
        max_session: std::time::Duration::from_secs(3600),
    };

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn statements(plan: &Plan) -> Vec<Value> {
        statements_of(&plan.document).expect("document")
    }

    #[test]
    fn a_first_end_denies_that_persons_earlier_sessions() {
        let end = at("2026-12-01T10:15:00.250Z");
        let plan = plan(None, &ROLE, "alice", end, end, MAX_INLINE_CHARS).expect("plan");
        assert_eq!(plan.outcome, SessionsEnded::Person);
        let statements = statements(&plan);
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0]["Condition"]["StringEquals"]["aws:userid"],
            "AROAEXAMPLEROLE00001:alice"
        );
        assert_eq!(
            statements[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-12-01T10:15:01Z",
            "a session issued in the same second as the end is denied too"
        );
        assert!(denies(&plan.document, ROLE.role_id, "alice", end));
        assert!(!denies(&plan.document, ROLE.role_id, "bob", end));
        assert!(
            !denies(
                &plan.document,
                ROLE.role_id,
                "alice",
                end + Duration::hours(1)
            ),
            "a later end is not covered"
        );
    }

    #[test]
    fn a_second_end_moves_that_persons_time_and_keeps_the_others() {
        let first = at("2026-12-01T10:00:00Z");
        let one = plan(None, &ROLE, "alice", first, first, MAX_INLINE_CHARS).expect("plan");
        let two = plan(
            Some(&one.document),
            &ROLE,
            "bob",
            first,
            first,
            MAX_INLINE_CHARS,
        )
        .expect("plan");
        let later = first + Duration::minutes(20);
        let three = plan(
            Some(&two.document),
            &ROLE,
            "alice",
            later,
            later,
            MAX_INLINE_CHARS,
        )
        .expect("plan");
        let statements = statements(&three);
        assert_eq!(statements.len(), 2, "one statement per person");
        assert!(denies(&three.document, ROLE.role_id, "alice", later));
        assert!(denies(&three.document, ROLE.role_id, "bob", first));
    }

    #[test]
    fn statements_that_can_deny_nothing_any_more_are_pruned() {
        let first = at("2026-12-01T10:00:00Z");
        let one = plan(None, &ROLE, "alice", first, first, MAX_INLINE_CHARS).expect("plan");
        // An hour (the role's maximum session) after alice's end, her old sessions are gone.
        let later = first + Duration::minutes(61);
        let two = plan(
            Some(&one.document),
            &ROLE,
            "bob",
            later,
            later,
            MAX_INLINE_CHARS,
        )
        .expect("plan");
        let statements = statements(&two);
        assert_eq!(statements.len(), 1, "{statements:?}");
        assert!(!denies(&two.document, ROLE.role_id, "alice", first));
        assert!(denies(&two.document, ROLE.role_id, "bob", later));
    }

    #[test]
    fn statements_that_are_not_elevates_are_kept() {
        let foreign = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let end = at("2026-12-01T10:00:00Z");
        let plan = plan(Some(foreign), &ROLE, "alice", end, end, MAX_INLINE_CHARS).expect("plan");
        let statements = statements(&plan);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Action"], "s3:GetObject");
    }

    #[test]
    fn without_room_for_one_more_person_every_earlier_session_is_denied() {
        let end = at("2026-12-01T10:00:00Z");
        let mut document: Option<String> = None;
        let mut names: Vec<String> = Vec::new();
        // Fill the policy up to a small budget.
        let budget = 600;
        for n in 0.. {
            let name = format!("person{n:03}");
            let next = plan(document.as_deref(), &ROLE, &name, end, end, budget).expect("plan");
            if next.outcome == SessionsEnded::AllSessions {
                let statements = statements(&next);
                assert_eq!(statements.len(), 1, "{statements:?}");
                assert!(statements[0]["Condition"].get("StringEquals").is_none());
                assert!(size(&next.document) <= budget);
                for earlier in &names {
                    assert!(denies(&next.document, ROLE.role_id, earlier, end));
                }
                assert!(denies(&next.document, ROLE.role_id, &name, end));
                assert!(denies(&next.document, ROLE.role_id, "anyone", end));
                return;
            }
            names.push(name);
            document = Some(next.document);
            assert!(n < 100, "never fell back");
        }
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
            plan(None, &ROLE, "alice", end, end, 10),
            Err(PlanError::NoRoom { budget: 10 })
        );
    }

    #[test]
    fn a_corrupt_policy_is_an_error() {
        let end = at("2026-12-01T10:00:00Z");
        assert!(matches!(
            plan(Some("not json"), &ROLE, "alice", end, end, MAX_INLINE_CHARS),
            Err(PlanError::Corrupt(_))
        ));
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
