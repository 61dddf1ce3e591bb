//! An example custom escalation target: what a flow target of type `lambda` points at.
//!
//! elevate invokes it synchronously with the JSON contract of docs/contracts.md:
//!
//! ```json
//! {"type": "escalate" | "deescalate", "request": {...}, "person": {"name", "iam_user", "slack_id", "email"}, "target": "<name>"}
//! ```
//!
//! and it answers `{"ok": true}` or `{"ok": false, "error": "..."}`. This one keeps things
//! honest and self-contained: "access" is membership of the IAM group named by
//! `EXAMPLE_TARGET_GROUP`, so the result can be checked in the IAM console. A real target would
//! call its own system (a database role, a VPN profile, a vault policy) the same way.
//!
//! Every failure is an `{"ok": false}` answer saying why; elevate records it and retries.

use aws_sdk_iam::error::DisplayErrorContext;
use aws_sdk_iam::Client;
use serde::Deserialize;
use serde_json::{json, Value};

/// The part of the contract this target reads.
#[derive(Debug, Deserialize)]
struct TargetEvent {
    #[serde(rename = "type")]
    kind: String,
    request: RequestRef,
    person: PersonRef,
    target: String,
}

#[derive(Debug, Deserialize)]
struct RequestRef {
    id: String,
}

#[derive(Debug, Deserialize)]
struct PersonRef {
    name: String,
    iam_user: String,
}

/// Answers one invocation: adds the person's IAM user to `group` on `escalate`, removes it on
/// `deescalate` (a user already absent is success).
pub async fn handle(iam: &Client, group: &str, event: Value) -> Value {
    let event: TargetEvent = match serde_json::from_value(event) {
        Ok(event) => event,
        Err(err) => return refused(format!("not a custom target event: {err}")),
    };
    let user = event.person.iam_user.as_str();
    if user.trim().is_empty() {
        return refused("person.iam_user is empty".to_owned());
    }
    tracing::info!(
        kind = %event.kind,
        request_id = %event.request.id,
        person = %event.person.name,
        target = %event.target,
        group,
        "custom target invoked"
    );
    let result = match event.kind.as_str() {
        "escalate" => iam
            .add_user_to_group()
            .group_name(group)
            .user_name(user)
            .send()
            .await
            .map(drop)
            .map_err(|err| {
                format!(
                    "AddUserToGroup {user} to {group}: {}",
                    DisplayErrorContext(&err)
                )
            }),
        "deescalate" => match iam
            .remove_user_from_group()
            .group_name(group)
            .user_name(user)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                tracing::info!(user, group, "already not a member");
                Ok(())
            }
            Err(err) => Err(format!(
                "RemoveUserFromGroup {user} from {group}: {}",
                DisplayErrorContext(&err)
            )),
        },
        other => Err(format!(
            "unknown type `{other}` (expected escalate or deescalate)"
        )),
    };
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(error) => refused(error),
    }
}

fn refused(error: String) -> Value {
    tracing::warn!(%error, "custom target refused");
    json!({ "ok": false, "error": error })
}

#[cfg(test)]
mod tests;
