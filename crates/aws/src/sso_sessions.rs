//! Ending the role sessions a permission set issued to one person, the way AWS documents it
//! for IAM Identity Center: the roles Identity Center provisions (`AWSReservedSSO_*`) cannot be
//! edited in IAM, so the deny goes into the permission set's inline policy, keyed on the
//! person's Identity Store user (`identitystore:userId`), the account and the time
//! (`aws:TokenIssueTime`), and the permission set is provisioned again to the account.
//!
//! The inline policy is also the administrator's: their statements are kept as they are, and
//! elevate's are recognised by their `Sid` prefix. A deny of the sessions issued before a time
//! can deny nothing 12 hours later (a permission set's longest session), so elevate's older
//! statements are dropped whenever it writes.

use chrono::{DateTime, SecondsFormat, Utc};
use elevate_core::model::SessionsEnded;
use serde_json::{json, Map, Value};

use crate::sessions::{ceil_to_second, issued_before, size, statements_of, SESSION_CEILING};

/// How the `Sid`s of elevate's statements begin (a `Sid` allows letters and digits only).
pub const SID_PREFIX: &str = "ElevateEndedSessions";
/// The `Sid` of a statement that denies everyone's sessions in an account (no room left).
const ALL_SESSIONS: &str = "All";
/// The limit on a permission set's inline policy, whitespace not counted.
pub const MAX_POLICY_CHARS: usize = 10_240;

const USER_ID: &str = "identitystore:userId";
const ACCOUNT: &str = "aws:PrincipalAccount";
const ISSUE_TIME: &str = "aws:TokenIssueTime";

/// The `Sid` of elevate's statement for `user_id` in `account` (letters and digits only).
fn sid(account: &str, whom: &str) -> String {
    let whom: String = whom.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{SID_PREFIX}{account}{whom}")
}

/// The inline policy to write: `policy` (the permission set's now, `None` or empty when it has
/// none) with the sessions of `user_id` in `account` issued before `before` denied. An earlier
/// statement of elevate's for the same person and account is replaced by one of the later
/// time; elevate's statements issued more than [`SESSION_CEILING`] before `now` are dropped.
/// When the result would be over the size limit, every session in the account issued before
/// `before` is denied instead (failing closed), in place of elevate's other statements for the
/// account. `Err` when even that does not fit, or `policy` is not a policy document.
pub fn with_ended_sessions(
    policy: Option<&str>,
    user_id: &str,
    account: &str,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(String, SessionsEnded), String> {
    let mut document = match policy.map(str::trim).filter(|p| !p.is_empty()) {
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| format!("the permission set's inline policy is not JSON: {e}"))?,
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    let statements = match document.get_mut("Statement") {
        Some(Value::Array(list)) => std::mem::take(list),
        Some(single @ Value::Object(_)) => vec![single.take()],
        None => Vec::new(),
        Some(_) => return Err("the permission set's inline policy has a Statement that is neither a list nor an object".to_owned()),
    };
    let before = ceil_to_second(before);
    let mine = sid(account, user_id);
    let mut kept: Vec<Value> = statements
        .into_iter()
        .filter(|statement| match elevate_sid(statement) {
            None => true,
            Some(sid) if sid == mine => false,
            Some(_) => issued_before(statement).is_some_and(|at| at + SESSION_CEILING > now),
        })
        .collect();
    // A deny of everyone's sessions in the account at a later time covers this one.
    let covered = kept.iter().any(|s| {
        elevate_sid(s) == Some(sid(account, ALL_SESSIONS).as_str())
            && issued_before(s).is_some_and(|at| at >= before)
    });
    if covered {
        return finish(document, kept, SessionsEnded::AllSessions);
    }
    kept.push(statement(&mine, Some(user_id), account, before));
    let written = finish(document.clone(), kept.clone(), SessionsEnded::Person)?;
    if size(&written.0) <= MAX_POLICY_CHARS {
        return Ok(written);
    }
    // No room: one deny of every session in the account replaces elevate's statements there.
    let prefix = format!("{SID_PREFIX}{account}");
    kept.retain(|s| !elevate_sid(s).is_some_and(|sid| sid.starts_with(&prefix)));
    kept.push(statement(
        &sid(account, ALL_SESSIONS),
        None,
        account,
        before,
    ));
    let written = finish(document, kept, SessionsEnded::AllSessions)?;
    if size(&written.0) <= MAX_POLICY_CHARS {
        Ok(written)
    } else {
        Err(format!(
            "the permission set's inline policy leaves no room ({MAX_POLICY_CHARS} characters) even for denying every session in {account}"
        ))
    }
}

/// Whether `policy` denies the sessions of `user_id` in `account` issued before `before`:
/// a statement of elevate's for them (or for everyone in the account) of that time or later.
pub fn ends_sessions(policy: &str, user_id: &str, account: &str, before: DateTime<Utc>) -> bool {
    let Some(statements) = statements_of(policy) else {
        return false;
    };
    let before = ceil_to_second(before);
    let wanted = [sid(account, user_id), sid(account, ALL_SESSIONS)];
    statements.iter().any(|s| {
        elevate_sid(s).is_some_and(|sid| wanted.iter().any(|w| w == sid))
            && s["Effect"] == "Deny"
            && issued_before(s).is_some_and(|at| at >= before)
    })
}

fn statement(sid: &str, user_id: Option<&str>, account: &str, before: DateTime<Utc>) -> Value {
    let mut equals = Map::new();
    if let Some(user_id) = user_id {
        equals.insert(USER_ID.to_owned(), json!(user_id));
    }
    equals.insert(ACCOUNT.to_owned(), json!(account));
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": equals,
            "DateLessThan": { ISSUE_TIME: before.to_rfc3339_opts(SecondsFormat::Secs, true) },
        },
    })
}

fn finish(
    mut document: Value,
    statements: Vec<Value>,
    outcome: SessionsEnded,
) -> Result<(String, SessionsEnded), String> {
    document["Statement"] = Value::Array(statements);
    let text = serde_json::to_string(&document).map_err(|e| e.to_string())?;
    Ok((text, outcome))
}

fn elevate_sid(statement: &Value) -> Option<&str> {
    statement["Sid"]
        .as_str()
        .filter(|sid| sid.starts_with(SID_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    const ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#;

    #[test]
    fn a_persons_sessions_are_denied_and_the_administrators_statements_kept() {
        let now = at("2026-12-02T10:00:00.250Z");
        let (text, outcome) =
            with_ended_sessions(Some(ADMIN), "906754f7e8-aaaa", "111111111111", now, now)
                .expect("written");
        assert_eq!(outcome, SessionsEnded::Person);
        let document: Value = serde_json::from_str(&text).expect("json");
        let statements = document["Statement"].as_array().expect("list");
        assert_eq!(
            statements[0]["Sid"], "ReadOnly",
            "the administrator's statement stays first"
        );
        let deny = &statements[1];
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(
            deny["Condition"]["StringEquals"][USER_ID],
            "906754f7e8-aaaa"
        );
        assert_eq!(deny["Condition"]["StringEquals"][ACCOUNT], "111111111111");
        assert_eq!(
            deny["Condition"]["DateLessThan"][ISSUE_TIME], "2026-12-02T10:00:01Z",
            "a session issued in the same second is denied too"
        );
        assert!(ends_sessions(&text, "906754f7e8-aaaa", "111111111111", now));
        assert!(!ends_sessions(
            &text,
            "906754f7e8-aaaa",
            "222222222222",
            now
        ));
        assert!(!ends_sessions(&text, "someone-else", "111111111111", now));
        assert!(!ends_sessions(
            ADMIN,
            "906754f7e8-aaaa",
            "111111111111",
            now
        ));
    }

    #[test]
    fn a_later_end_replaces_the_earlier_and_old_ends_are_dropped() {
        let first = at("2026-12-02T01:00:00Z");
        let (text, _) =
            with_ended_sessions(None, "u-1", "111111111111", first, first).expect("first");
        let (text, _) =
            with_ended_sessions(Some(&text), "u-2", "111111111111", first, first).expect("second");
        let later = at("2026-12-02T05:00:00Z");
        let (text, _) =
            with_ended_sessions(Some(&text), "u-1", "111111111111", later, later).expect("again");
        let statements: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(statements["Statement"].as_array().map(Vec::len), Some(2));
        assert!(ends_sessions(&text, "u-1", "111111111111", later));
        // 12 hours after u-2's end, no session it denies is alive: it goes at the next write.
        let next_day = at("2026-12-02T13:00:01Z");
        let (text, _) = with_ended_sessions(Some(&text), "u-3", "111111111111", next_day, next_day)
            .expect("later");
        assert!(!text.contains("u2"), "{text}");
        assert!(ends_sessions(&text, "u-1", "111111111111", later));
        assert!(ends_sessions(&text, "u-3", "111111111111", next_day));
    }

    #[test]
    fn with_no_room_every_session_in_the_account_is_denied() {
        let now = at("2026-12-02T10:00:00Z");
        let mut text: Option<String> = None;
        let mut outcome = SessionsEnded::Person;
        for i in 0..60 {
            let (next, ended) = with_ended_sessions(
                text.as_deref(),
                &format!("906754f7e8-{i:032}"),
                "111111111111",
                now,
                now,
            )
            .expect("always written");
            text = Some(next);
            outcome = ended;
        }
        let text = text.expect("a policy");
        assert_eq!(outcome, SessionsEnded::AllSessions);
        assert!(size(&text) <= MAX_POLICY_CHARS);
        assert!(ends_sessions(
            &text,
            "906754f7e8-anyone",
            "111111111111",
            now
        ));
    }

    #[test]
    fn a_policy_that_is_not_json_is_refused() {
        let now = at("2026-12-02T10:00:00Z");
        assert!(with_ended_sessions(Some("{not json"), "u", "111111111111", now, now).is_err());
    }
}
