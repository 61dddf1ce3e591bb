//! Ending a person's role sessions against moto's IAM: the deny written and read back, merged
//! per person, pruned, and the fail-closed fallback when the role's policies are full.

use aws_sdk_iam::Client;
use chrono::{Duration, Utc};
use elevate_aws::iam::IamGroupStrategy;
use elevate_aws::sessions::{MAX_INLINE_CHARS, POLICY_NAME};
use elevate_core::config::{Target, TargetKind};
use elevate_core::model::SessionsEnded;
use elevate_core::ports::Strategy;
use elevate_testkit::{unique_name, Moto};
use serde_json::Value;

use crate::person;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;

/// A role like SymDemoEscalated (one-hour sessions); its ARN and id.
async fn role(iam: &Client) -> (String, String, String) {
    let name = unique_name("escalated");
    let created = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(TRUST)
        .max_session_duration(3600)
        .send()
        .await
        .expect("create role");
    let role = created.role().expect("role");
    (name, role.arn().to_owned(), role.role_id().to_owned())
}

fn target(roles: Vec<String>) -> Target {
    Target {
        name: "admins".into(),
        kind: TargetKind::IamGroup {
            group: "SymDemoAdmins".into(),
            roles,
        },
    }
}

/// elevate's policy on `role`, as IAM returns it.
async fn statements(iam: &Client, role: &str) -> Vec<Value> {
    let answer = iam
        .get_role_policy()
        .role_name(role)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .expect("GetRolePolicy");
    let text = elevate_aws::sessions::decode(answer.policy_document());
    let document: Value = serde_json::from_str(&text).expect("json");
    document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn user_id(statement: &Value) -> Option<&str> {
    statement["Condition"]["StringEquals"]["aws:userid"].as_str()
}

#[tokio::test]
async fn ending_sessions_writes_a_deny_per_person_and_reads_it_back() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    let strategy = IamGroupStrategy::new(iam.clone());
    let target = target(vec![arn]);
    let end = Utc::now();

    let ended = strategy
        .end_sessions(&target, &person("alice", "alice"), end)
        .await
        .expect("end sessions");
    assert_eq!(ended, Some(SessionsEnded::Person));
    let found = statements(&iam, &name).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        user_id(&found[0]),
        Some(format!("{role_id}:alice").as_str())
    );
    assert_eq!(found[0]["Effect"], "Deny");

    // bob's end adds his statement; alice's second end moves hers, not a new one.
    strategy
        .end_sessions(&target, &person("bob", "bob"), end)
        .await
        .expect("end sessions");
    let later = end + Duration::minutes(5);
    strategy
        .end_sessions(&target, &person("alice", "alice"), later)
        .await
        .expect("end sessions");
    let found = statements(&iam, &name).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let alice = found
        .iter()
        .find(|s| user_id(s) == Some(format!("{role_id}:alice").as_str()))
        .expect("alice's statement");
    let until = alice["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .expect("time");
    assert!(
        chrono::DateTime::parse_from_rfc3339(until).expect("time") >= later,
        "{until}"
    );
}

#[tokio::test]
async fn statements_older_than_the_longest_session_are_pruned() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    // An end two hours ago: every session it denied has expired (one-hour sessions).
    let old = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{}"}},"StringEquals":{{"aws:userid":"{role_id}:carol"}}}}}}]}}"#,
        (Utc::now() - Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    iam.put_role_policy()
        .role_name(&name)
        .policy_name(POLICY_NAME)
        .policy_document(old)
        .send()
        .await
        .expect("put");

    IamGroupStrategy::new(iam.clone())
        .end_sessions(&target(vec![arn]), &person("alice", "alice"), Utc::now())
        .await
        .expect("end sessions");
    let found = statements(&iam, &name).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        user_id(&found[0]),
        Some(format!("{role_id}:alice").as_str())
    );
}

#[tokio::test]
async fn a_role_without_room_denies_every_earlier_session() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, _) = role(&iam).await;
    // Another inline policy that leaves 180 characters: room for a deny of every session
    // (about 150), not for one more person's (about 210).
    let big = |filler: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Big","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{filler}"}}]}}"#
        )
    };
    let filler = "x".repeat(MAX_INLINE_CHARS - elevate_aws::sessions::size(&big("")) - 180);
    let big = big(&filler);
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("big")
        .policy_document(big)
        .send()
        .await
        .expect("put big");

    let ended = IamGroupStrategy::new(iam.clone())
        .end_sessions(&target(vec![arn]), &person("alice", "alice"), Utc::now())
        .await
        .expect("end sessions");
    assert_eq!(ended, Some(SessionsEnded::AllSessions));
    let found = statements(&iam, &name).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(user_id(&found[0]).is_none(), "every session: {found:?}");
}

#[tokio::test]
async fn a_target_without_roles_or_a_missing_role_ends_nothing() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let strategy = IamGroupStrategy::new(iam.clone());
    assert_eq!(
        strategy
            .end_sessions(&target(Vec::new()), &person("alice", "alice"), Utc::now())
            .await
            .expect("no roles"),
        None
    );
    assert_eq!(
        strategy
            .end_sessions(
                &target(vec![unique_name("gone")]),
                &person("alice", "alice"),
                Utc::now()
            )
            .await
            .expect("missing role"),
        None
    );
}
