//! A grant carries its own terms: elevate.toml changing under a running grant (a person
//! offboarded, a flow renamed, an IAM user or group changed) never strands it. Every case ends
//! on time with the old membership gone, read back from IAM. And reconciliation against IAM.

use std::sync::Arc;

use elevate_core::events::ScheduledAction;
use elevate_core::service::{self, RepairKind};
use elevate_core::{Config, RequestId, State};
use elevate_testkit::unique_name;
use elevate_tests::{config_text, World};
use serde_json::json;

async fn active(world: &World) -> RequestId {
    let id = world
        .open(
            "alice",
            &json!({"flow": "infra_access", "duration": "1h", "reason": "INC-4211"}),
        )
        .await;
    world.approve_and_escalate(&id).await;
    assert_eq!(world.stored(&id).await.state, State::Active);
    assert!(world.is_member(&world.admins, "alice").await);
    id
}

/// The tests' elevate.toml, changed by `change`, now in force.
fn reconfigure(world: &mut World, change: impl FnOnce(String) -> String) {
    let text = change(config_text(&world.users, &world.admins, &world.escalated));
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("changed elevate.toml: {e}"));
    world.app.config = Arc::new(config);
}

async fn expire(world: &World, id: &RequestId) {
    world
        .clock
        .set(world.stored(id).await.expires_at.expect("expiry"));
    let input = world
        .fire(&ScheduledAction::Expire {
            request_id: id.clone(),
        })
        .await;
    let answer = world.revoke_fn(input).await.expect("expiry");
    assert_eq!(answer["state"], "EXPIRED", "{answer}");
}

#[tokio::test]
async fn an_offboarded_person_loses_the_access_on_time() {
    let mut world = World::new().await;
    let id = active(&world).await;
    let alice_block = format!(
        "\n[[people]]\nname = \"alice\"\niam_user = \"{}\"\nslack_id = \"U0ALICE01\"\nemail = \"alice@healthy-health.example\"\n",
        world.users["alice"]
    );
    reconfigure(&mut world, |text| {
        text.replace(&alice_block, "").replace(
            "people = [\"alice\", \"bob\"]",
            "people = [\"bob\", \"dave\"]",
        )
    });
    assert!(world.app.config.person("alice").is_none());
    expire(&world, &id).await;
    assert!(!world.is_member(&world.admins, "alice").await);
    world.verified_audit(&id).await;
}

#[tokio::test]
async fn a_renamed_flow_still_ends_its_grants() {
    let mut world = World::new().await;
    let id = active(&world).await;
    reconfigure(&mut world, |text| {
        text.replace("name = \"infra_access\"", "name = \"admin_access\"")
    });
    assert!(world.app.config.flow("infra_access").is_none());
    expire(&world, &id).await;
    assert!(!world.is_member(&world.admins, "alice").await);
}

#[tokio::test]
async fn a_changed_iam_user_ends_the_old_users_membership() {
    let mut world = World::new().await;
    let id = active(&world).await;
    let old_user = world.users["alice"].clone();
    let new_user = unique_name("alice2");
    world
        .iam
        .create_user()
        .user_name(&new_user)
        .send()
        .await
        .expect("create user");
    reconfigure(&mut world, |text| {
        text.replace(
            &format!("iam_user = \"{old_user}\""),
            &format!("iam_user = \"{new_user}\""),
        )
    });
    expire(&world, &id).await;
    let members = world.members(&world.admins).await;
    assert!(!members.contains(&old_user), "{members:?}");
    assert!(!members.contains(&new_user), "{members:?}");
}

#[tokio::test]
async fn a_changed_group_ends_the_membership_of_the_old_group() {
    let mut world = World::new().await;
    let id = active(&world).await;
    let other = unique_name("other-admins");
    world
        .iam
        .create_group()
        .group_name(&other)
        .send()
        .await
        .expect("create group");
    let old_group = world.admins.clone();
    reconfigure(&mut world, |text| {
        text.replace(
            &format!("group = \"{old_group}\""),
            &format!("group = \"{other}\""),
        )
    });
    expire(&world, &id).await;
    assert!(!world.is_member(&old_group, "alice").await);
    assert!(!world.is_member(&other, "alice").await);
}

#[tokio::test]
async fn reconciliation_removes_a_member_without_a_grant_and_ends_a_grant_whose_access_was_removed()
{
    let world = World::new().await;
    let id = active(&world).await;
    // Someone adds bob by hand, and an incident responder removes alice by hand.
    for (change, user) in [
        ("add", &world.users["bob"]),
        ("remove", &world.users["alice"]),
    ] {
        if change == "add" {
            world
                .iam
                .add_user_to_group()
                .group_name(&world.admins)
                .user_name(user)
                .send()
                .await
                .expect("add by hand");
        } else {
            world
                .iam
                .remove_user_from_group()
                .group_name(&world.admins)
                .user_name(user)
                .send()
                .await
                .expect("remove by hand");
        }
    }

    let preview = service::reconcile(&world.app, true).await.expect("dry run");
    assert_eq!(preview.repairs.len(), 2, "{preview:?}");
    assert!(
        world.is_member(&world.admins, "bob").await,
        "a dry run changes nothing"
    );
    assert_eq!(world.stored(&id).await.state, State::Active);

    let done = service::reconcile(&world.app, false)
        .await
        .expect("reconcile");
    let kinds: Vec<_> = done.repairs.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RepairKind::MembershipRemoved,
            RepairKind::EndedByOutsideChange
        ]
    );
    assert!(world.members(&world.admins).await.is_empty());
    let ended = world.stored(&id).await;
    assert_eq!(ended.state, State::Revoked);
    assert_eq!(ended.ended_by.as_deref(), Some("elevate:reconcile"));
    world.verified_audit(&id).await;
}
