//! Local users against a real moto server: the keys they get are the keys STS knows, and the
//! profile files work with the SDK's own loader.

use aws_config::BehaviorVersion;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use elevate_core::Config;
use elevate_local::identity::LocalUsers;
use elevate_local::sigv4::SecretLookup;
use elevate_testkit::{unique_name, Moto};

fn config_for(alice_user: &str, bob_user: &str) -> Config {
    let text = format!(
        r#"
[[people]]
name = "alice"
iam_user = "{alice_user}"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "{bob_user}"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[flows]]
name = "infra_access"
description = "test flow"
max_duration = "1h"
reason_required = true
allow_self_approval = false

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "Admins"
"#
    );
    Config::parse(&text).expect("valid config")
}

async fn caller_arn(config: &aws_config::SdkConfig) -> String {
    aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn
        .expect("an ARN")
}

#[tokio::test]
async fn provisions_users_whose_keys_moto_knows() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let (alice_user, bob_user) = (unique_name("alice"), unique_name("bob"));
    let config = config_for(&alice_user, &bob_user);

    let users = LocalUsers::provision(&iam, &config)
        .await
        .expect("provision");

    assert_eq!(users.users().len(), 2);
    let alice = users.by_person("alice").expect("alice").clone();
    let bob = users.by_person("bob").expect("bob").clone();
    assert_ne!(alice.caller.access_key, bob.caller.access_key);
    assert_eq!(
        alice.caller.user_arn,
        format!("arn:aws:iam::123456789012:user/{alice_user}")
    );
    assert_eq!(alice.caller.account_id, "123456789012");
    assert!(!alice.caller.user_id.is_empty());

    // The gateway's lookup gives the secret and the caller that signed with it.
    let (secret, caller) = users
        .secret_for(&bob.caller.access_key)
        .expect("bob's key is known");
    assert_eq!(secret, bob.secret_access_key);
    assert_eq!(caller.person, "bob");

    // moto maps the issued key to its user, as AWS would.
    for user in [&alice, &bob] {
        let credentials = aws_credential_types::Credentials::new(
            &user.caller.access_key,
            &user.secret_access_key,
            None,
            None,
            "test",
        );
        let as_user = sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .build();
        assert_eq!(caller_arn(&as_user).await, user.caller.user_arn);
    }
}

#[tokio::test]
async fn provisioning_again_keeps_the_users_and_rotates_keys() {
    let moto = Moto::start().await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    let config = config_for(&unique_name("alice"), &unique_name("bob"));

    let first = LocalUsers::provision(&iam, &config).await.expect("first");
    let mut last = first.clone();
    // IAM allows two keys per user: the third and fourth runs must make room.
    for _ in 0..3 {
        last = LocalUsers::provision(&iam, &config).await.expect("again");
    }
    let (a0, a1) = (
        first.by_person("alice").expect("alice"),
        last.by_person("alice").expect("alice"),
    );
    assert_eq!(a0.caller.user_id, a1.caller.user_id, "same user");
    assert_ne!(a0.caller.access_key, a1.caller.access_key, "new key");
    assert!(last.secret_for(&a0.caller.access_key).is_none());
}

#[tokio::test]
async fn written_profiles_load_with_the_sdk() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let config = config_for(&unique_name("alice"), &unique_name("bob"));
    let users = LocalUsers::provision(&iam, &config)
        .await
        .expect("provision");
    let dir = tempfile::tempdir().expect("tempdir");
    let aws_dir = dir.path().join("aws");

    users
        .write_profiles(&aws_dir, "us-east-1")
        .expect("write profiles");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(aws_dir.join("credentials"))
            .expect("credentials written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    for person in ["alice", "bob"] {
        let files = EnvConfigFiles::builder()
            .with_file(EnvConfigFileKind::Config, aws_dir.join("config"))
            .with_file(EnvConfigFileKind::Credentials, aws_dir.join("credentials"))
            .build();
        let loaded = aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .profile_name(person)
            .endpoint_url(moto.endpoint())
            .load()
            .await;
        assert_eq!(
            loaded.region().map(|r| r.as_ref().to_owned()),
            Some("us-east-1".to_owned())
        );
        let user = users.by_person(person).expect("person");
        assert_eq!(caller_arn(&loaded).await, user.caller.user_arn, "{person}");
    }
}
