use aws_sdk_iam::Client;
use chrono::Utc;
use elevate_aws::iam::{Absence, IamGroupStrategy};
use elevate_core::config::{Target, TargetKind};
use elevate_core::ports::{Membership, Strategy, StrategyError};
use elevate_testkit::{unique_name, Moto};

use crate::{new_request, person};

fn group_target(group: &str) -> Target {
    Target {
        name: "admins".into(),
        kind: TargetKind::IamGroup {
            group: group.to_owned(),
            roles: Vec::new(),
        },
    }
}

/// The members of `group` as IAM itself reports them.
async fn members(iam: &Client, group: &str) -> Vec<String> {
    iam.get_group()
        .group_name(group)
        .send()
        .await
        .expect("GetGroup")
        .users()
        .iter()
        .map(|u| u.user_name().to_owned())
        .collect()
}

#[tokio::test]
async fn group_membership_is_granted_read_back_and_removed_idempotently() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let group = unique_name("admins");
    let user = unique_name("alice");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("create group");
    iam.create_user()
        .user_name(&user)
        .send()
        .await
        .expect("create user");
    // Someone else in the group, who must stay there.
    let bystander = unique_name("bob");
    iam.create_user()
        .user_name(&bystander)
        .send()
        .await
        .expect("create user");
    iam.add_user_to_group()
        .group_name(&group)
        .user_name(&bystander)
        .send()
        .await
        .expect("add bystander");

    let strategy = IamGroupStrategy::new(iam.clone());
    let target = group_target(&group);
    let alice = person("alice", &user);
    let (request, _) = new_request("alice", Utc::now());

    assert_eq!(
        strategy.is_member(&target, &alice).await.expect("read"),
        Membership::Absent
    );
    strategy
        .escalate(&target, &alice, &request)
        .await
        .expect("add");
    strategy
        .escalate(&target, &alice, &request)
        .await
        .expect("add again");
    assert_eq!(
        strategy.is_member(&target, &alice).await.expect("read"),
        Membership::Present
    );
    let mut listed = members(&iam, &group).await;
    listed.sort();
    let mut expected = vec![user.clone(), bystander.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    strategy
        .deescalate(&target, &alice, &request)
        .await
        .expect("remove");
    strategy
        .deescalate(&target, &alice, &request)
        .await
        .expect("remove again");
    assert_eq!(
        strategy.is_member(&target, &alice).await.expect("read"),
        Membership::Absent
    );
    assert_eq!(members(&iam, &group).await, vec![bystander.clone()]);
    assert_eq!(
        strategy
            .is_member(&target, &person("bob", &bystander))
            .await
            .expect("read"),
        Membership::Present
    );
}

#[tokio::test]
async fn missing_groups_and_users() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let strategy = IamGroupStrategy::new(iam.clone());
    let group = unique_name("admins");
    let user = unique_name("alice");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("create group");
    let (request, _) = new_request("alice", Utc::now());

    // Granting on a group or to a user that does not exist is refused: retrying cannot help.
    let missing_group = group_target(&unique_name("nogroup"));
    let nobody = person("alice", &user);
    let err = strategy
        .escalate(&missing_group, &nobody, &request)
        .await
        .expect_err("missing group");
    assert!(matches!(err, StrategyError::Refused(_)), "{err}");
    let err = strategy
        .escalate(&group_target(&group), &nobody, &request)
        .await
        .expect_err("missing user");
    assert!(matches!(err, StrategyError::Refused(_)), "{err}");

    // Removing access that cannot exist is success, and so is reading it back as absent.
    strategy
        .deescalate(&missing_group, &nobody, &request)
        .await
        .expect("remove from a missing group");
    strategy
        .deescalate(&group_target(&group), &nobody, &request)
        .await
        .expect("remove a missing user");
    assert_eq!(
        strategy
            .is_member(&missing_group, &nobody)
            .await
            .expect("read"),
        Membership::Absent
    );

    // What the log says in each case.
    let missing_group_name = unique_name("nogroup");
    assert_eq!(
        strategy.explain_absence(&missing_group_name, &user).await,
        Absence::GroupMissing
    );
    assert_eq!(
        strategy.explain_absence(&group, &user).await,
        Absence::UserMissing
    );
    iam.create_user()
        .user_name(&user)
        .send()
        .await
        .expect("create user");
    assert_eq!(
        strategy.explain_absence(&group, &user).await,
        Absence::NotAMember
    );
}

#[tokio::test]
async fn members_are_listed_and_removed_one_by_one() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let strategy = IamGroupStrategy::new(iam.clone());
    let group = unique_name("admins");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("create group");
    let users: Vec<String> = ["alice", "bob", "carol"]
        .into_iter()
        .map(unique_name)
        .collect();
    for user in &users {
        iam.create_user()
            .user_name(user)
            .send()
            .await
            .expect("create user");
    }
    // Only the first two are in the group; the third exists but is not a member.
    for user in &users[..2] {
        iam.add_user_to_group()
            .group_name(&group)
            .user_name(user)
            .send()
            .await
            .expect("add to group");
    }
    let target = group_target(&group);

    let mut listed = strategy
        .members(&target)
        .await
        .expect("members")
        .expect("an IAM group can be listed");
    listed.sort();
    let mut expected = users[..2].to_vec();
    expected.sort();
    assert_eq!(listed, expected);

    // A group that does not exist has nobody in it.
    assert_eq!(
        strategy
            .members(&group_target(&unique_name("nogroup")))
            .await
            .expect("members of a missing group"),
        Some(Vec::new())
    );

    strategy
        .remove_member(&target, &users[0])
        .await
        .expect("remove");
    assert_eq!(
        strategy
            .is_member(&target, &person("alice", &users[0]))
            .await
            .expect("read"),
        Membership::Absent
    );
    assert_eq!(
        strategy
            .is_member(&target, &person("bob", &users[1]))
            .await
            .expect("read"),
        Membership::Present,
        "the other member stays"
    );
    assert_eq!(members(&iam, &group).await, vec![users[1].clone()]);
    assert_eq!(
        strategy.members(&target).await.expect("members"),
        Some(vec![users[1].clone()])
    );

    // Removing what is absent is success: a member already removed, a user never in the
    // group, a user that does not exist, a group that does not exist.
    strategy
        .remove_member(&target, &users[0])
        .await
        .expect("remove again");
    strategy
        .remove_member(&target, &users[2])
        .await
        .expect("remove a non-member");
    strategy
        .remove_member(&target, &unique_name("ghost"))
        .await
        .expect("remove a missing user");
    strategy
        .remove_member(&group_target(&unique_name("nogroup")), &users[1])
        .await
        .expect("remove from a missing group");
    assert_eq!(members(&iam, &group).await, vec![users[1].clone()]);
}

#[tokio::test]
async fn lambda_targets_are_not_handled_by_the_group_strategy() {
    let moto = Moto::start().await;
    let strategy = IamGroupStrategy::new(Client::new(&moto.sdk_config().await));
    let target = Target {
        name: "custom".into(),
        kind: TargetKind::Lambda {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:target".to_owned(),
        },
    };
    let alice = person("alice", "alice");
    let (request, _) = new_request("alice", Utc::now());
    let err = strategy
        .escalate(&target, &alice, &request)
        .await
        .expect_err("wrong target");
    assert!(matches!(err, StrategyError::WrongTarget(name) if name == "custom"));
    let err = strategy
        .deescalate(&target, &alice, &request)
        .await
        .expect_err("wrong target");
    assert!(matches!(err, StrategyError::WrongTarget(_)));
    let err = strategy
        .is_member(&target, &alice)
        .await
        .expect_err("wrong target");
    assert!(matches!(err, StrategyError::WrongTarget(_)));
    let err = strategy.members(&target).await.expect_err("wrong target");
    assert!(matches!(err, StrategyError::WrongTarget(_)));
    let err = strategy
        .remove_member(&target, "alice")
        .await
        .expect_err("wrong target");
    assert!(matches!(err, StrategyError::WrongTarget(_)));
}
