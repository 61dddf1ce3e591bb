//! Ending a person's role sessions against moto's IAM: each person's deny in a policy of its
//! own, written and read back; the user name matched ignoring case; two ends from the same read
//! both kept; policies that deny nothing any more deleted; the legacy shared policy honoured;
//! the fail-closed fallback when the role's policies are full.

use aws_sdk_iam::Client;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use elevate_aws::iam::IamGroupStrategy;
use elevate_aws::sessions::{
    self, person_policy_name, LEGACY_POLICY_NAME, MAX_INLINE_CHARS, POLICY_PREFIX,
};
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

/// The role's inline policies as IAM returns them: name and document, sorted by name.
async fn policies(iam: &Client, role: &str) -> Vec<(String, String)> {
    let mut policies = IamGroupStrategy::new(iam.clone())
        .read_role(role)
        .await
        .expect("read the role")
        .expect("the role")
        .policies;
    policies.sort();
    policies
}

fn names(policies: &[(String, String)]) -> Vec<&str> {
    policies.iter().map(|(name, _)| name.as_str()).collect()
}

fn statements(document: &str) -> Vec<Value> {
    let document: Value = serde_json::from_str(document).expect("json");
    document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn user_id(statement: &Value) -> Option<&str> {
    statement["Condition"]["StringEqualsIgnoreCase"]["aws:userid"].as_str()
}

/// Whose sessions a policy of elevate's denies: its one statement's `aws:userid`, `None` for
/// every session's.
fn denied(document: &str) -> Option<String> {
    let statements = statements(document);
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Effect"], "Deny");
    user_id(&statements[0]).map(str::to_owned)
}

fn issued_before(statement: &Value) -> DateTime<Utc> {
    let text = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .expect("time");
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// The name and document elevate writes for `who`'s end at `at` on a role with `role_id`.
fn person_policy(role_id: &str, who: &str, at: DateTime<Utc>) -> (String, String) {
    let plan = sessions::plan(&[], role_id, who, at, at, MAX_INLINE_CHARS).expect("plan");
    (plan.name, plan.document)
}

async fn put(iam: &Client, role: &str, (name, document): (String, String)) {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .expect("PutRolePolicy");
}

#[tokio::test]
async fn ending_sessions_writes_a_policy_per_person_and_reads_it_back() {
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
    let found = policies(&iam, &name).await;
    assert_eq!(names(&found), vec![person_policy_name("alice", end)]);
    assert_eq!(denied(&found[0].1), Some(format!("{role_id}:alice")));

    // bob's end adds his own policy; alice's second end replaces hers.
    strategy
        .end_sessions(&target, &person("bob", "bob"), end)
        .await
        .expect("end sessions");
    let later = end + Duration::minutes(5);
    strategy
        .end_sessions(&target, &person("alice", "alice"), later)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(
        names(&found),
        vec![
            person_policy_name("alice", later),
            person_policy_name("bob", end)
        ]
    );
    assert_eq!(denied(&found[0].1), Some(format!("{role_id}:alice")));
    assert!(issued_before(&statements(&found[0].1)[0]) >= later);
    assert_eq!(denied(&found[1].1), Some(format!("{role_id}:bob")));
}

/// IAM user names are not case-sensitive: elevate.toml may spell as `Alice` the user IAM holds
/// as `alice`, whose sessions the trust policy names `alice`.
#[tokio::test]
async fn a_user_name_spelled_otherwise_is_still_denied() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    let strategy = IamGroupStrategy::new(iam.clone());
    let target = target(vec![arn]);
    let end = Utc::now();

    strategy
        .end_sessions(&target, &person("alice", "Alice"), end)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(names(&found), vec![person_policy_name("alice", end)]);
    assert_eq!(denied(&found[0].1), Some(format!("{role_id}:alice")));
    assert!(sessions::denies(&found[0].1, &role_id, "alice", end));

    // The same person spelled as IAM holds it: the later end replaces the earlier one.
    let later = end + Duration::minutes(5);
    strategy
        .end_sessions(&target, &person("alice", "alice"), later)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(names(&found), vec![person_policy_name("alice", later)]);
}

/// Two people's ends on one role at the same moment: both read the role before either writes.
/// With one policy for everyone, the second write replaced the first and dropped its deny.
#[tokio::test]
async fn two_people_ending_at_once_both_stay_denied() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, _, role_id) = role(&iam).await;
    let strategy = IamGroupStrategy::new(iam.clone());
    // Someone's earlier end, so that both reads see a policy of elevate's.
    let earlier = Utc::now() - Duration::minutes(10);
    put(&iam, &name, person_policy(&role_id, "carol", earlier)).await;
    let end = Utc::now();

    let read = strategy
        .read_role(&name)
        .await
        .expect("read")
        .expect("role");
    let now = Utc::now();
    let plans = ["alice", "bob"].map(|who| {
        let plan = sessions::plan(
            &read.policies,
            &read.role_id,
            who,
            end,
            now,
            MAX_INLINE_CHARS,
        )
        .expect("plan");
        (who, plan)
    });
    for (who, plan) in &plans {
        strategy
            .apply_plan(&read, plan, who, end)
            .await
            .expect("apply");
    }

    let found = policies(&iam, &name).await;
    assert_eq!(
        names(&found),
        vec![
            person_policy_name("alice", end),
            person_policy_name("bob", end),
            person_policy_name("carol", earlier),
        ]
    );
    for (who, (_, document)) in ["alice", "bob", "carol"].iter().zip(&found) {
        assert_eq!(denied(document), Some(format!("{role_id}:{who}")));
    }
}

#[tokio::test]
async fn a_policy_that_can_deny_nothing_any_more_is_deleted() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    // carol's end 13 hours ago: every session it denied has expired, however long the role's
    // sessions were.
    let spent = Utc::now() - Duration::hours(13);
    put(&iam, &name, person_policy(&role_id, "carol", spent)).await;
    // erin's end two hours ago: the role's sessions last an hour now, but it may have allowed
    // twelve when erin assumed it.
    let longer = Utc::now() - Duration::hours(2);
    put(&iam, &name, person_policy(&role_id, "erin", longer)).await;
    // dave's end a few minutes ago still denies his sessions.
    let recent = Utc::now() - Duration::minutes(5);
    put(&iam, &name, person_policy(&role_id, "dave", recent)).await;

    let end = Utc::now();
    IamGroupStrategy::new(iam.clone())
        .end_sessions(&target(vec![arn]), &person("alice", "alice"), end)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(
        names(&found),
        vec![
            person_policy_name("alice", end),
            person_policy_name("dave", recent),
            person_policy_name("erin", longer)
        ],
        "carol's spent policy is deleted, dave's and erin's kept"
    );
}

#[tokio::test]
async fn the_legacy_shared_policy_keeps_denying_until_it_can_deny_nothing() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    // The shared policy of earlier versions: carol's live deny and dave's spent one.
    let statement = |who: &str, at: DateTime<Utc>| {
        format!(
            r#"{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{}"}},"StringEquals":{{"aws:userid":"{role_id}:{who}"}}}}}}"#,
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    let carol_ended = (Utc::now() - Duration::minutes(5)).trunc_subsecs(0);
    let legacy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{},{}]}}"#,
        statement("carol", carol_ended),
        statement("dave", Utc::now() - Duration::hours(13))
    );
    put(&iam, &name, (LEGACY_POLICY_NAME.to_owned(), legacy.clone())).await;
    let strategy = IamGroupStrategy::new(iam.clone());
    let target = target(vec![arn]);

    let end = Utc::now();
    strategy
        .end_sessions(&target, &person("alice", "alice"), end)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(
        found,
        vec![
            (LEGACY_POLICY_NAME.to_owned(), legacy),
            (person_policy_name("alice", end), found[1].1.clone()),
        ],
        "carol's live deny in the shared policy stays as it was"
    );
    assert!(sessions::denies(
        &found[0].1,
        &role_id,
        "carol",
        carol_ended
    ));

    // carol's own end covers her old deny; dave's can deny nothing: the shared policy goes.
    strategy
        .end_sessions(&target, &person("carol", "carol"), end)
        .await
        .expect("end sessions");
    let found = policies(&iam, &name).await;
    assert_eq!(
        names(&found),
        vec![
            person_policy_name("alice", end),
            person_policy_name("carol", end)
        ]
    );
}

#[tokio::test]
async fn a_role_without_room_denies_every_earlier_session() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let (name, arn, role_id) = role(&iam).await;
    let now = Utc::now();
    let person_size = sessions::size(&person_policy(&role_id, "alice", now).1);
    // Another inline policy that leaves room for two people's policies and the room each keeps
    // free (a deny of every session and a few ends at once), not for a third person.
    let big = |filler: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Big","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{filler}"}}]}}"#
        )
    };
    let room = 2 * person_size + sessions::reserved(&role_id, now) + 5;
    let filler = "x".repeat(MAX_INLINE_CHARS - sessions::size(&big("")) - room);
    put(&iam, &name, ("big".to_owned(), big(&filler))).await;

    let strategy = IamGroupStrategy::new(iam.clone());
    let target = target(vec![arn]);
    for who in ["alice", "brian"] {
        let ended = strategy
            .end_sessions(&target, &person(who, who), Utc::now())
            .await
            .expect("end sessions");
        assert_eq!(ended, Some(SessionsEnded::Person));
    }
    let end = Utc::now();
    let ended = strategy
        .end_sessions(&target, &person("carol", "carol"), end)
        .await
        .expect("end sessions");
    assert_eq!(ended, Some(SessionsEnded::AllSessions));
    let found = policies(&iam, &name).await;
    assert_eq!(
        names(&found),
        vec!["big".to_owned(), sessions::all_sessions_policy_name(end)],
        "alice's and brian's policies go once every session is denied"
    );
    assert_eq!(denied(&found[1].1), None, "every session");
    for who in ["alice", "brian", "carol"] {
        assert!(sessions::denies(
            &found[1].1,
            &role_id,
            who,
            end - Duration::seconds(1)
        ));
    }
    assert!(found
        .iter()
        .all(|(name, _)| name == "big" || name.starts_with(POLICY_PREFIX)));
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
