//! Permission set assignments and directory look-ups against moto's IAM Identity Center, with
//! elevate-testkit's stand-in behaviour where moto differs from AWS (asynchronous requests
//! followed to their end, one assignment per tuple, and faults planned by a permission set's
//! name).

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_identitystore::types::{Email, MemberId, Name};
use chrono::Utc;
use elevate_aws::{Assignment, IdentityCenter, Pacing, PermissionSetStrategy};
use elevate_core::config::{Target, TargetKind};
use elevate_core::ports::{Membership, Strategy, StrategyError};
use elevate_testkit::{unique_name, Moto};

use crate::{new_request, person};

const ACCOUNT: &str = "111111111111";

/// Fast pauses: the faults are planned, and clearing them needs no real time.
fn quick(attempts: u32) -> Pacing {
    Pacing {
        attempts,
        first_pause: Duration::from_millis(10),
        longest_pause: Duration::from_millis(40),
        poll_every: Duration::from_millis(10),
        poll_for: Duration::from_secs(5),
    }
}

struct Directory {
    sdk: SdkConfig,
    instance_arn: String,
    store_id: String,
}

impl Directory {
    async fn of(moto: &Moto) -> Directory {
        let sdk = moto.sdk_config().await;
        let admin = aws_sdk_ssoadmin::Client::new(&sdk);
        let instances = admin.list_instances().send().await.expect("instances");
        let instance = instances.instances().first().expect("moto's instance");
        Directory {
            instance_arn: instance.instance_arn().expect("arn").to_owned(),
            store_id: instance.identity_store_id().expect("store").to_owned(),
            sdk,
        }
    }

    fn center(&self, pacing: Pacing) -> IdentityCenter {
        IdentityCenter::new(&self.sdk, &self.instance_arn, &self.store_id).with_pacing(pacing)
    }

    /// A user `name` with the email `<name>@example.com`; their user id.
    async fn user(&self, name: &str) -> String {
        aws_sdk_identitystore::Client::new(&self.sdk)
            .create_user()
            .identity_store_id(&self.store_id)
            .user_name(name)
            .display_name(name)
            .name(
                Name::builder()
                    .given_name(name)
                    .family_name("Example")
                    .build(),
            )
            .emails(
                Email::builder()
                    .value(format!("{name}@example.com"))
                    .primary(true)
                    .build(),
            )
            .send()
            .await
            .expect("create user")
            .user_id()
            .to_owned()
    }

    /// A group `name` holding the users `members`; its id.
    async fn group(&self, name: &str, members: &[&str]) -> String {
        let client = aws_sdk_identitystore::Client::new(&self.sdk);
        let id = client
            .create_group()
            .identity_store_id(&self.store_id)
            .display_name(name)
            .send()
            .await
            .expect("create group")
            .group_id()
            .to_owned();
        for member in members {
            client
                .create_group_membership()
                .identity_store_id(&self.store_id)
                .group_id(&id)
                .member_id(MemberId::UserId((*member).to_owned()))
                .send()
                .await
                .expect("create membership");
        }
        id
    }

    /// A permission set named `name` (which may plan faults); its ARN.
    async fn permission_set(&self, name: &str) -> String {
        aws_sdk_ssoadmin::Client::new(&self.sdk)
            .create_permission_set()
            .instance_arn(&self.instance_arn)
            .name(name)
            .session_duration("PT1H")
            .send()
            .await
            .expect("create permission set")
            .permission_set()
            .and_then(|p| p.permission_set_arn())
            .expect("arn")
            .to_owned()
    }

    /// Every assignment of the permission set in [`ACCOUNT`], as AWS lists them (duplicates
    /// included).
    async fn listed(&self, permission_set_arn: &str) -> Vec<String> {
        aws_sdk_ssoadmin::Client::new(&self.sdk)
            .list_account_assignments()
            .instance_arn(&self.instance_arn)
            .account_id(ACCOUNT)
            .permission_set_arn(permission_set_arn)
            .send()
            .await
            .expect("list")
            .account_assignments()
            .iter()
            .filter_map(|a| a.principal_id().map(str::to_owned))
            .collect()
    }
}

#[tokio::test]
async fn a_person_is_found_by_user_name_or_email_and_an_unknown_one_is_not() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let name = unique_name("alice");
    let id = directory.user(&name).await;
    let center = directory.center(quick(1));

    assert_eq!(
        center.user_id(&name).await.expect("by name"),
        Some(id.clone())
    );
    assert_eq!(
        center
            .user_id(&format!("{name}@example.com"))
            .await
            .expect("by email"),
        Some(id)
    );
    assert_eq!(
        center
            .user_id(&unique_name("nobody"))
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(
        center
            .user_id(&format!("{}@example.com", unique_name("nobody")))
            .await
            .expect("unknown email"),
        None
    );

    // One user's user name is another's email: which one is meant is not guessed.
    let shared = format!("{}@example.com", unique_name("shared"));
    directory.user(&shared).await;
    let other = shared.trim_end_matches("@example.com").to_owned();
    directory.user(&other).await;
    let err = center.user_id(&shared).await.expect_err("ambiguous");
    assert!(
        matches!(&err, StrategyError::Refused(why) if why.contains("ambiguous")),
        "{err}"
    );
}

#[tokio::test]
async fn a_permission_set_is_assigned_read_back_and_removed_once() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let user = directory.user(&unique_name("alice")).await;
    let other = directory.user(&unique_name("bob")).await;
    let permission_set = directory.permission_set(&unique_name("ReadOnly")).await;
    assert!(
        permission_set.contains(":permissionSet/ssoins-"),
        "AWS's shape: {permission_set}"
    );
    let center = directory.center(quick(3));
    let mine = Assignment {
        account: ACCOUNT,
        permission_set_arn: &permission_set,
        user_id: &user,
    };
    let theirs = Assignment {
        user_id: &other,
        ..mine
    };
    assert!(!center.is_assigned(&mine).await.expect("read"));

    center.assign(&mine).await.expect("assign");
    assert!(center.is_assigned(&mine).await.expect("read back"));
    assert!(!center.is_assigned(&theirs).await.expect("someone else"));
    // Again (a retried escalation): one assignment, as AWS keeps one per tuple.
    center.assign(&mine).await.expect("assign again");
    assert_eq!(directory.listed(&permission_set).await, vec![user.clone()]);
    center.assign(&theirs).await.expect("theirs");
    let mut users = center
        .assigned_users(ACCOUNT, &permission_set)
        .await
        .expect("users");
    users.sort();
    let mut both = vec![user.clone(), other.clone()];
    both.sort();
    assert_eq!(users, both);

    center.unassign(&mine).await.expect("unassign");
    assert!(!center.is_assigned(&mine).await.expect("read back gone"));
    assert!(center.is_assigned(&theirs).await.expect("theirs stays"));
    // Gone already (a retried revocation): success, nothing else touched.
    center.unassign(&mine).await.expect("unassign again");
    assert_eq!(directory.listed(&permission_set).await, vec![other]);
}

#[tokio::test]
async fn conflicts_and_throttling_are_asked_again_until_they_clear() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let user = directory.user(&unique_name("alice")).await;
    let center = directory.center(quick(4));
    for planned in ["fault-conflict-2", "fault-throttle-2"] {
        let permission_set = directory
            .permission_set(&unique_name(&format!("ops-{planned}")))
            .await;
        let assignment = Assignment {
            account: ACCOUNT,
            permission_set_arn: &permission_set,
            user_id: &user,
        };
        center.assign(&assignment).await.expect(planned);
        assert!(center.is_assigned(&assignment).await.expect("read back"));
        center.unassign(&assignment).await.expect(planned);
        assert!(!center.is_assigned(&assignment).await.expect("read back"));
    }
}

#[tokio::test]
async fn a_conflict_that_does_not_clear_is_unavailable_and_assigns_nothing() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let user = directory.user(&unique_name("alice")).await;
    let permission_set = directory
        .permission_set(&unique_name("ops-fault-conflict-9"))
        .await;
    let assignment = Assignment {
        account: ACCOUNT,
        permission_set_arn: &permission_set,
        user_id: &user,
    };
    let err = directory
        .center(quick(3))
        .assign(&assignment)
        .await
        .expect_err("never clears");
    assert!(
        matches!(&err, StrategyError::Unavailable(why) if why.to_string().contains("ConflictException")),
        "{err}"
    );
    assert!(directory.listed(&permission_set).await.is_empty());
}

#[tokio::test]
async fn a_request_that_ends_failed_is_asked_again_and_refused_with_the_aws_reason() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let user = directory.user(&unique_name("alice")).await;

    // Once: the second attempt succeeds.
    let once = directory
        .permission_set(&unique_name("ops-fault-failed-1"))
        .await;
    let assignment = Assignment {
        account: ACCOUNT,
        permission_set_arn: &once,
        user_id: &user,
    };
    let center = directory.center(quick(3));
    center.assign(&assignment).await.expect("second attempt");
    assert!(center.is_assigned(&assignment).await.expect("read back"));

    // Every time: refused with what AWS said, never a success, nothing assigned.
    let always = directory
        .permission_set(&unique_name("ops-fault-failed-9"))
        .await;
    let assignment = Assignment {
        permission_set_arn: &always,
        ..assignment
    };
    let err = center.assign(&assignment).await.expect_err("refused");
    match &err {
        StrategyError::Refused(why) => {
            assert!(why.contains("ended FAILED 3 times"), "{why}");
            assert!(why.contains("Not supported policy"), "{why}");
        }
        other => panic!("expected refused, got {other}"),
    }
    assert!(!center.is_assigned(&assignment).await.expect("read back"));
}

/// A `sso_permission_set` target of `permission_set` in [`ACCOUNT`].
fn target(permission_set: &str) -> Target {
    Target {
        name: "readonly".into(),
        kind: TargetKind::SsoPermissionSet {
            permission_set_arn: permission_set.to_owned(),
            accounts: vec![ACCOUNT.to_owned()],
            end_sessions: false,
        },
    }
}

/// [`target`] with `end_sessions = true`.
fn ending(permission_set: &str) -> Target {
    let mut target = target(permission_set);
    if let TargetKind::SsoPermissionSet { end_sessions, .. } = &mut target.kind {
        *end_sessions = true;
    }
    target
}

#[tokio::test]
async fn the_strategy_grants_reads_back_and_removes_a_permission_set_for_a_person() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let name = unique_name("alice");
    let user = directory.user(&name).await;
    let permission_set = directory.permission_set(&unique_name("ReadOnly")).await;
    let strategy = PermissionSetStrategy::new(Some(Arc::new(directory.center(quick(3)))));
    let target = target(&permission_set);
    // elevate.toml knows them by their email, which is also their Identity Store email.
    let alice = person(&name, &name);
    let (request, _) = new_request(&name, Utc::now());

    assert_eq!(
        strategy.is_member(&target, &alice).await.expect("read"),
        Membership::Absent
    );
    strategy
        .escalate(&target, &alice, &request)
        .await
        .expect("escalate");
    assert_eq!(
        strategy
            .is_member(&target, &alice)
            .await
            .expect("read back"),
        Membership::Present
    );
    assert_eq!(directory.listed(&permission_set).await, vec![user.clone()]);
    assert_eq!(
        strategy.members(&target).await.expect("members"),
        Some(vec![user])
    );
    assert_eq!(
        strategy
            .end_sessions(&target, &alice, Utc::now())
            .await
            .expect("sessions"),
        None
    );

    strategy
        .deescalate(&target, &alice, &request)
        .await
        .expect("deescalate");
    assert_eq!(
        strategy
            .is_member(&target, &alice)
            .await
            .expect("read back"),
        Membership::Absent
    );
    assert!(directory.listed(&permission_set).await.is_empty());
}

#[tokio::test]
async fn someone_the_directory_does_not_know_is_refused_and_nothing_is_assigned() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let permission_set = directory.permission_set(&unique_name("ReadOnly")).await;
    let strategy = PermissionSetStrategy::new(Some(Arc::new(directory.center(quick(1)))));
    let target = target(&permission_set);
    let stranger = person(&unique_name("mallory"), "mallory");
    let (request, _) = new_request("mallory", Utc::now());

    let err = strategy
        .escalate(&target, &stranger, &request)
        .await
        .expect_err("unknown");
    assert!(
        matches!(&err, StrategyError::Refused(why) if why.contains("is not a user of Identity Store")),
        "{err}"
    );
    assert!(directory.listed(&permission_set).await.is_empty());
    assert_eq!(
        strategy.is_member(&target, &stranger).await.expect("read"),
        Membership::Absent
    );
    // Removing what someone unknown never had (the grant never became active) is success.
    strategy
        .deescalate(&target, &stranger, &request)
        .await
        .expect("nothing to remove");
    // A grant that was active may have assigned to a user whose email changed since: never
    // "removed" without finding them.
    let mut active = request.clone();
    active.activated_at = Some(Utc::now());
    let err = strategy
        .deescalate(&target, &stranger, &active)
        .await
        .expect_err("cannot be found to remove");
    assert!(
        matches!(&err, StrategyError::Unavailable(why) if why.to_string().contains("cannot be found to remove it")),
        "{err}"
    );

    // A target of another kind is a wiring mistake, not a grant.
    let group = Target {
        name: "admins".into(),
        kind: TargetKind::IamGroup {
            group: "SymDemoAdmins".into(),
            roles: Vec::new(),
        },
    };
    assert!(matches!(
        strategy.is_member(&group, &stranger).await,
        Err(StrategyError::WrongTarget(_))
    ));
    // Without [identity_center], a permission set target is refused, never granted.
    let unconfigured = PermissionSetStrategy::new(None);
    assert!(matches!(
        unconfigured.escalate(&target, &stranger, &request).await,
        Err(StrategyError::Refused(why)) if why.contains("no [identity_center]")
    ));
}

#[tokio::test]
async fn groups_are_found_by_name_and_a_persons_memberships_are_read_each_time() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let alice = unique_name("alice");
    let bob = unique_name("bob");
    let alice_id = directory.user(&alice).await;
    let bob_id = directory.user(&bob).await;
    let oncall = unique_name("OnCall");
    let leads = unique_name("Leads");
    let oncall_id = directory.group(&oncall, &[&alice_id]).await;
    let leads_id = directory.group(&leads, &[&alice_id, &bob_id]).await;
    let center = directory.center(quick(1));

    assert_eq!(
        center.group_id(&oncall).await.expect("directory"),
        Some(oncall_id.clone())
    );
    assert_eq!(
        center
            .group_id(&unique_name("Nobody"))
            .await
            .expect("directory"),
        None
    );
    let mut of_alice = center.group_ids_of(&alice_id).await.expect("directory");
    of_alice.sort();
    let mut expected = vec![oncall_id.clone(), leads_id.clone()];
    expected.sort();
    assert_eq!(of_alice, expected);
    assert_eq!(
        center.group_ids_of(&bob_id).await.expect("directory"),
        std::slice::from_ref(&leads_id)
    );

    // Through the port, as the use cases ask: the person by their email.
    let as_person = person(&alice, &alice);
    assert_eq!(
        elevate_core::ports::Directory::user_id(&center, &as_person)
            .await
            .expect("directory"),
        Some(alice_id.clone())
    );

    // Leaving a group shows at the next question: memberships are not kept.
    let client = aws_sdk_identitystore::Client::new(&directory.sdk);
    let membership = client
        .get_group_membership_id()
        .identity_store_id(&directory.store_id)
        .group_id(&oncall_id)
        .member_id(MemberId::UserId(alice_id.clone()))
        .send()
        .await;
    let membership_id = match membership {
        Ok(found) => found.membership_id().to_owned(),
        Err(_) => {
            // moto has no GetGroupMembershipId: find it in the group's list.
            client
                .list_group_memberships()
                .identity_store_id(&directory.store_id)
                .group_id(&oncall_id)
                .send()
                .await
                .expect("memberships")
                .group_memberships()
                .iter()
                .find(|m| matches!(m.member_id(), Some(MemberId::UserId(id)) if *id == alice_id))
                .map(|m| m.membership_id())
                .expect("alice's membership")
                .to_owned()
        }
    };
    client
        .delete_group_membership()
        .identity_store_id(&directory.store_id)
        .membership_id(membership_id)
        .send()
        .await
        .expect("delete membership");
    assert_eq!(
        center.group_ids_of(&alice_id).await.expect("directory"),
        [leads_id]
    );
}

/// The permission set's inline policy, as Identity Center holds it.
async fn inline_policy(directory: &Directory, permission_set_arn: &str) -> serde_json::Value {
    let text = aws_sdk_ssoadmin::Client::new(&directory.sdk)
        .get_inline_policy_for_permission_set()
        .instance_arn(&directory.instance_arn)
        .permission_set_arn(permission_set_arn)
        .send()
        .await
        .expect("inline policy")
        .inline_policy()
        .unwrap_or_default()
        .to_owned();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn ending_a_grant_denies_the_persons_earlier_sessions_in_the_permission_set() {
    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let name = unique_name("alice");
    let user = directory.user(&name).await;
    // Conflicts with another provisioning are asked again.
    let permission_set = directory
        .permission_set(&unique_name("ReadOnly-fault-conflict-1"))
        .await;
    let admin_statement = serde_json::json!({
        "Sid": "AdminReadOnly", "Effect": "Allow", "Action": "s3:Get*", "Resource": "*"
    });
    aws_sdk_ssoadmin::Client::new(&directory.sdk)
        .put_inline_policy_to_permission_set()
        .instance_arn(&directory.instance_arn)
        .permission_set_arn(&permission_set)
        .inline_policy(
            serde_json::json!({"Version": "2012-10-17", "Statement": [admin_statement.clone()]})
                .to_string(),
        )
        .send()
        .await
        .expect("the administrator's policy");
    let strategy = PermissionSetStrategy::new(Some(Arc::new(directory.center(quick(3)))));
    let alice = person(&name, &name);
    let before = Utc::now();

    // Off unless the target asks for it.
    assert_eq!(
        strategy
            .end_sessions(&target(&permission_set), &alice, before)
            .await
            .expect("nothing to do"),
        None
    );
    let ended = strategy
        .end_sessions(&ending(&permission_set), &alice, before)
        .await
        .expect("sessions ended");
    assert_eq!(ended, Some(elevate_core::model::SessionsEnded::Person));

    let policy = inline_policy(&directory, &permission_set).await;
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(
        statements[0], admin_statement,
        "the administrator's statement is kept"
    );
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("elevate's deny");
    assert_eq!(
        deny["Condition"]["StringEquals"]["identitystore:userId"],
        user.as_str()
    );
    assert_eq!(
        deny["Condition"]["StringEquals"]["aws:PrincipalAccount"],
        ACCOUNT
    );
    assert!(deny["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string());

    // Someone the directory does not know has no sessions to end.
    let stranger = person(&unique_name("mallory"), "mallory");
    assert_eq!(
        strategy
            .end_sessions(&ending(&permission_set), &stranger, before)
            .await
            .expect("nothing"),
        None
    );
}

/// A user `name` (email `<name>@example.com`) as a person of elevate.toml.
fn config_person(name: &str) -> String {
    format!(
        "[[people]]\nname = \"{name}\"\niam_user = \"{name}\"\nslack_id = \"U{}\"\nemail = \"{name}@example.com\"\n",
        name.to_uppercase().replace('-', "")
    )
}

#[tokio::test]
async fn reconciliation_removes_assignments_no_grant_explains_and_ends_grants_whose_assignment_went(
) {
    use elevate_core::service::{self, Decision, RepairKind, Submission};
    use elevate_core::testing::{caller_of, FakeApp, FakeStrategy};

    let moto = Moto::start().await;
    let directory = Directory::of(&moto).await;
    let [alice, bob, carol, outsider] = ["alice", "bob", "carol", "outsider"].map(unique_name);
    let alice_id = directory.user(&alice).await;
    let bob_id = directory.user(&bob).await;
    directory.user(&carol).await;
    let outsider_id = directory.user(&outsider).await;
    let permission_set = directory.permission_set(&unique_name("ReadOnly")).await;
    let text = format!(
        "{}{}{}\n[identity_center]\ninstance_arn = \"{}\"\nidentity_store_id = \"{}\"\n\n\
         [[flows]]\nname = \"prod\"\nmax_duration = \"1h\"\nreason_required = false\n\
         approvers = {{ channel = \"C0PROD\", people = [\"{bob}\", \"{carol}\"] }}\n\n\
         [[flows.targets]]\nname = \"readonly\"\ntype = \"sso_permission_set\"\n\
         permission_set_arn = \"{permission_set}\"\naccounts = [\"{ACCOUNT}\"]\n",
        config_person(&alice),
        config_person(&bob),
        config_person(&carol),
        directory.instance_arn,
        directory.store_id,
    );
    let config = elevate_core::Config::parse(&text).expect("config");
    let mut fake = FakeApp::new(config);
    let center = Arc::new(directory.center(quick(3)));
    fake.app.strategy = Arc::new(elevate_core::ports::StrategyRouter {
        iam_group: Arc::new(FakeStrategy::new()),
        lambda: Arc::new(FakeStrategy::new()),
        sso_permission_set: Arc::new(PermissionSetStrategy::new(Some(center.clone()))),
    });
    fake.app.directory = center;
    let app = &fake.app;
    let config = app.config.clone();
    let who = |name: &str| caller_of(config.person(name).expect("person"));

    // alice's grant, active: her assignment is explained.
    let request = service::submit(
        app,
        &who(&alice),
        Submission {
            flow: "prod".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(1800),
            reason: String::new(),
        },
    )
    .await
    .expect("submitted");
    service::decide(app, &who(&bob), &request.id, Decision::Approve, None)
        .await
        .expect("approved");
    service::escalate(app, &request.id)
        .await
        .expect("escalated");
    assert_eq!(
        directory.listed(&permission_set).await,
        std::slice::from_ref(&alice_id)
    );

    // Assigned outside elevate: bob (a person of elevate.toml) and someone who is not.
    let admin = aws_sdk_ssoadmin::Client::new(&directory.sdk);
    for user in [&bob_id, &outsider_id] {
        admin
            .create_account_assignment()
            .instance_arn(&directory.instance_arn)
            .target_id(ACCOUNT)
            .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
            .permission_set_arn(&permission_set)
            .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
            .principal_id(user)
            .send()
            .await
            .expect("assigned by hand");
    }

    let preview = service::reconcile(app, true).await.expect("dry run");
    assert_eq!(preview.repairs.len(), 1, "{preview:?}");
    assert_eq!(preview.repairs[0].kind, RepairKind::MembershipRemoved);
    let mut listed = directory.listed(&permission_set).await;
    listed.sort();
    assert_eq!(listed.len(), 3, "a dry run changes nothing");

    let done = service::reconcile(app, false).await.expect("reconciled");
    assert_eq!(done.errors, 0, "{done:?}");
    assert_eq!(done.repairs.len(), 1, "{done:?}");
    let mut listed = directory.listed(&permission_set).await;
    listed.sort();
    let mut expected = vec![alice_id.clone(), outsider_id.clone()];
    expected.sort();
    assert_eq!(
        listed, expected,
        "bob's unexplained assignment is removed, the outsider's left"
    );

    // alice's assignment removed outside elevate: her grant ends, and is not assigned again.
    center_unassign(&directory, &permission_set, &alice_id).await;
    let done = service::reconcile(app, false).await.expect("reconciled");
    assert!(
        done.repairs
            .iter()
            .any(|r| r.kind == RepairKind::EndedByOutsideChange),
        "{done:?}"
    );
    let ended = fake.store.request(&request.id).expect("stored");
    assert_eq!(ended.state, elevate_core::State::Revoked);
    assert_eq!(directory.listed(&permission_set).await, [outsider_id]);
}

async fn center_unassign(directory: &Directory, permission_set: &str, user_id: &str) {
    directory
        .center(quick(3))
        .unassign(&Assignment {
            account: ACCOUNT,
            permission_set_arn: permission_set,
            user_id,
        })
        .await
        .expect("removed by hand");
}
