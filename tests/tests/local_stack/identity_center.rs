//! The tutorial with IAM Identity Center (`make dev`'s `--identity-center`): a permission set
//! in the account asked for, approved in Slack by a member of an Identity Store group,
//! assigned in moto's Identity Center and removed when revoked, each read back from moto.

use std::time::Duration;

use serde_json::Value;

use super::harness::LocalStack;

const WAIT: Duration = Duration::from_secs(60);

/// The Identity Store user ids the permission set is assigned to in `account`.
async fn assigned(stack: &LocalStack, center: &Value, account: &str) -> Vec<String> {
    aws_sdk_ssoadmin::Client::new(&stack.moto())
        .list_account_assignments()
        .instance_arn(center["instance_arn"].as_str().expect("instance"))
        .account_id(account)
        .permission_set_arn(
            center["permission_set_arn"]
                .as_str()
                .expect("permission set"),
        )
        .send()
        .await
        .expect("list account assignments")
        .account_assignments()
        .iter()
        .filter_map(|a| a.principal_id().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn alice_gets_a_permission_set_in_one_account_and_loses_it_when_revoked() {
    let stack = LocalStack::start_identity_center();
    let center = stack.info.0["identity_center"].clone();
    assert!(center.is_object(), "stack.json: {:?}", stack.info);
    let alice_id = aws_sdk_identitystore::Client::new(&stack.moto())
        .get_user_id()
        .identity_store_id(center["identity_store_id"].as_str().expect("store"))
        .alternate_identifier(
            aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(
                aws_sdk_identitystore::types::UniqueAttribute::builder()
                    .attribute_path("userName")
                    .attribute_value(aws_smithy_types::Document::String("alice".into()))
                    .build()
                    .expect("attribute"),
            ),
        )
        .send()
        .await
        .expect("alice in the Identity Store")
        .user_id()
        .to_owned();

    // The target is granted in two accounts: the request must name one.
    let refused = stack.run(
        "alice",
        &[
            "request",
            "prod_readonly",
            "--duration",
            "10m",
            "--reason",
            "read prod",
        ],
    );
    assert!(!refused.ok(), "{refused:?}");
    assert!(refused.stderr.contains("account_required"), "{refused:?}");
    assert!(
        refused.stderr.contains("111111111111, 222222222222"),
        "{refused:?}"
    );

    let requested = stack.run(
        "alice",
        &[
            "--json",
            "request",
            "prod_readonly",
            "--account",
            "222222222222",
            "--duration",
            "10m",
            "--reason",
            "read the prod ledger",
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    let answer: Value = serde_json::from_str(&requested.stdout).expect("request --json");
    let id = answer["request"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        answer["request"]["terms"]["target"]["accounts"],
        serde_json::json!(["222222222222"]),
        "the grant's terms name only the account asked for"
    );

    // bob is no listed approver of prod_readonly: he approves as a member of ProdApprovers.
    // alice is a member too, and still may not approve her own request.
    let message = stack.pending_message("alice").await;
    assert_eq!(message["request_id"], id.as_str(), "{message}");
    let own = stack.run("alice", &["approve", &id]);
    assert!(!own.ok(), "{own:?}");
    assert!(own.stderr.contains("self_approval"), "{own:?}");
    assert!(
        message["blocks"].to_string().contains("222222222222"),
        "{message}"
    );
    let click = stack.click("bob", "approve", &message).await;
    assert_eq!(click["status"], 200, "{click}");
    stack.wait_for_state("alice", &id, "ACTIVE", WAIT).await;
    assert_eq!(
        assigned(&stack, &center, "222222222222").await,
        std::slice::from_ref(&alice_id)
    );
    assert!(
        assigned(&stack, &center, "111111111111").await.is_empty(),
        "nothing in the account not asked for"
    );

    let revoked = stack.run("alice", &["revoke", &id, "--reason", "done"]);
    assert!(revoked.ok(), "{revoked:?}");
    stack.wait_for_state("alice", &id, "REVOKED", WAIT).await;
    assert!(
        assigned(&stack, &center, "222222222222").await.is_empty(),
        "the assignment is gone once revoked"
    );
    // end_sessions = true: her sessions of the permission set in that account, issued before
    // the end, are denied in its inline policy (provisioned again to the account).
    let policy = aws_sdk_ssoadmin::Client::new(&stack.moto())
        .get_inline_policy_for_permission_set()
        .instance_arn(center["instance_arn"].as_str().expect("instance"))
        .permission_set_arn(
            center["permission_set_arn"]
                .as_str()
                .expect("permission set"),
        )
        .send()
        .await
        .expect("inline policy")
        .inline_policy()
        .unwrap_or_default()
        .to_owned();
    let policy: Value = serde_json::from_str(&policy).expect("a policy document");
    let denies = policy["Statement"].as_array().cloned().unwrap_or_default();
    assert!(
        denies.iter().any(|s| s["Effect"] == "Deny"
            && s["Condition"]["StringEquals"]["identitystore:userId"] == alice_id.as_str()
            && s["Condition"]["StringEquals"]["aws:PrincipalAccount"] == "222222222222"),
        "{policy}"
    );
    assert_eq!(
        stack.request("alice", &id)["sessions_ended"],
        "person",
        "the end records that her sessions were ended"
    );
    let verified = stack.run("bob", &["audit", "verify"]);
    assert!(verified.ok(), "{verified:?}");
}
