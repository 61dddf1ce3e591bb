//! The tutorial's flow and its refusals, as people live them: the `elevate` CLI signed with the
//! local profiles, approvals clicked on the Slack page, membership read from moto's IAM.

use std::time::Duration;

use serde_json::Value;

use super::harness::{members, wait_membership, LocalStack, GROUP};

const WAIT: Duration = Duration::from_secs(30);

/// The request id of the newest request `profile` made.
fn newest_request(stack: &LocalStack, profile: &str) -> String {
    let listed = stack.run(profile, &["--json", "list"]);
    assert!(listed.ok(), "elevate list: {listed:?}");
    let answer: Value = serde_json::from_str(&listed.stdout).expect("list --json");
    let mut requests = answer["requests"].as_array().cloned().unwrap_or_default();
    requests.sort_by_key(|r| r["created_at"].as_str().unwrap_or_default().to_owned());
    requests
        .last()
        .and_then(|r| r["id"].as_str())
        .expect("a request")
        .to_owned()
}

#[tokio::test]
async fn alice_gets_access_bob_approves_in_slack_and_it_ends_on_time() {
    let stack = LocalStack::shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());

    let waiting = stack.spawn(
        "alice",
        &[
            "request",
            "infra_access",
            "--duration",
            "3s",
            "--reason",
            "rotate the demo bucket's keys",
            "--wait",
        ],
    );
    let message = stack.pending_message("alice").await;
    let id = message["request_id"]
        .as_str()
        .expect("request id")
        .to_owned();
    assert!(
        message["blocks"]
            .to_string()
            .contains("rotate the demo bucket"),
        "{message}"
    );

    let click = stack.click("bob", "approve", &message).await;
    assert_eq!(click["status"], 200, "{click}");
    assert_eq!(click["outcome"], "done", "{click}");

    let waited = waiting.finish(WAIT).await;
    assert_eq!(waited.code(), Some(0), "{waited:?}");
    assert!(waited.stderr.contains("approved by bob"), "{waited:?}");
    assert!(
        members(&iam, GROUP).await.contains(&"alice".to_owned()),
        "alice is not in {GROUP} once --wait said ACTIVE"
    );

    // The revoke schedule fires a minute early; the revoke function waits out the rest.
    wait_membership(&iam, GROUP, "alice", false, Duration::from_secs(20)).await;
    stack
        .wait_for_state("alice", &id, "EXPIRED", Duration::from_secs(10))
        .await;
    // The message is updated after the grant is recorded ended: it may follow a moment later.
    let message_now = stack
        .wait_for_message(
            "request message showing EXPIRED",
            Duration::from_secs(10),
            |m| {
                m["request_id"] == id.as_str()
                    && m["visible_to"].is_null()
                    && m["blocks"].to_string().contains("EXPIRED")
            },
        )
        .await;
    assert!(
        message_now["buttons"].as_array().is_some_and(Vec::is_empty),
        "buttons left on a decided request: {message_now}"
    );

    let export = stack.run("bob", &["audit", "export"]);
    assert!(export.ok(), "audit export: {export:?}");
    let actions: Vec<String> = export
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["request_id"] == id.as_str())
        .filter_map(|event| event["action"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        actions,
        ["request", "approve", "activate", "expire"],
        "{}",
        export.stdout
    );
    let verify = stack.run("bob", &["audit", "verify"]);
    assert!(verify.ok(), "audit verify: {verify:?}");
}

#[tokio::test]
async fn approving_your_own_request_is_refused_and_changes_nothing() {
    let stack = LocalStack::shared();
    let requested = stack.run(
        "carol",
        &[
            "request",
            "infra_access",
            "--duration",
            "10m",
            "--reason",
            "self-approval attempt",
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    let id = newest_request(stack, "carol");

    let approved = stack.run("carol", &["approve", &id]);
    assert!(
        !approved.ok(),
        "carol approved her own request: {approved:?}"
    );
    assert!(
        approved.stderr.contains("own request"),
        "the refusal does not say why: {approved:?}"
    );

    // The same refusal from the Slack page: an ephemeral "Not done" to carol only. It is a
    // follow-up, so on a loaded machine it may come after the click's answer.
    let message = stack.pending_message("carol").await;
    stack.click("carol", "approve", &message).await;
    stack
        .wait_for_message("carol's refusal", Duration::from_secs(30), |m| {
            let text = m["text"].to_string();
            m["visible_to_name"] == "carol"
                && text.contains("Not done")
                && text.contains("own request")
        })
        .await;
    assert_eq!(stack.state("carol", &id), "PENDING");

    let cancelled = stack.run("carol", &["cancel", &id]);
    assert!(cancelled.ok(), "{cancelled:?}");
}

#[tokio::test]
async fn a_denied_request_never_escalates() {
    let stack = LocalStack::shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let waiting = stack.spawn(
        "dave",
        &[
            "request",
            "infra_access",
            "--duration",
            "5m",
            "--reason",
            "just curious",
            "--wait",
        ],
    );
    let message = stack.pending_message("dave").await;
    let click = stack.click("bob", "deny", &message).await;
    assert_eq!(click["outcome"], "done", "{click}");

    let waited = waiting.finish(WAIT).await;
    assert_eq!(
        waited.code(),
        Some(3),
        "--wait of a denied request: {waited:?}"
    );
    let id = message["request_id"].as_str().expect("id");
    assert_eq!(stack.state("dave", id), "DENIED");
    // Give a stray escalation every chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !members(&iam, GROUP).await.contains(&"dave".to_owned()),
        "a denied request escalated"
    );
}

#[tokio::test]
async fn a_cancelled_request_ends_the_wait_and_cannot_be_approved() {
    let stack = LocalStack::shared();
    let waiting = stack.spawn(
        "erin",
        &[
            "request",
            "infra_access",
            "--duration",
            "15m",
            "--reason",
            "changed my mind",
            "--wait",
        ],
    );
    let message = stack.pending_message("erin").await;
    let id = message["request_id"].as_str().expect("id").to_owned();
    let cancelled = stack.run("erin", &["cancel", &id]);
    assert!(cancelled.ok(), "{cancelled:?}");

    let waited = waiting.finish(WAIT).await;
    assert_eq!(
        waited.code(),
        Some(4),
        "--wait of a cancelled request: {waited:?}"
    );
    let late = stack.run("bob", &["approve", &id]);
    assert!(!late.ok(), "a cancelled request was approved: {late:?}");
    assert_eq!(stack.state("erin", &id), "CANCELLED");
}

#[tokio::test]
async fn an_early_revoke_removes_the_access_at_once() {
    let stack = LocalStack::shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let requested = stack.run(
        "frank",
        &[
            "request",
            "infra_access",
            "--duration",
            "1h",
            "--reason",
            "incident 42",
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    let id = newest_request(stack, "frank");
    let approved = stack.run("bob", &["approve", &id, "--reason", "on call"]);
    assert!(approved.ok(), "{approved:?}");
    stack
        .wait_for_state("frank", &id, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(members(&iam, GROUP).await.contains(&"frank".to_owned()));

    let revoked = stack.run("frank", &["revoke", &id, "--reason", "done early"]);
    assert!(revoked.ok(), "{revoked:?}");
    // Revoke reads the membership back before it answers: gone when the CLI returns.
    assert!(
        !members(&iam, GROUP).await.contains(&"frank".to_owned()),
        "frank is still in {GROUP} after elevate revoke"
    );
    assert_eq!(stack.state("frank", &id), "REVOKED");

    // ... and so are frank's sessions of the role the group allowed, read back from IAM.
    let role = elevate_aws::iam::IamGroupStrategy::new(iam.clone())
        .read_role("SymDemoEscalated")
        .await
        .expect("read the role")
        .expect("the role");
    let frank = format!("{}frank-", elevate_aws::sessions::POLICY_PREFIX);
    let (_, document) = role
        .policies
        .iter()
        .find(|(name, _)| name.starts_with(&frank))
        .expect("elevate's policy for frank on the role");
    assert!(
        document.contains(&format!("\"{}:frank\"", role.role_id)),
        "frank's sessions are not denied: {document}"
    );
    let shown = stack.run("frank", &["show", &id]);
    assert!(
        shown.stdout.contains("sessions") && shown.stdout.contains("ended: the roles deny"),
        "{shown:?}"
    );
}

#[tokio::test]
async fn a_bad_signature_is_refused_by_the_gateway() {
    let stack = LocalStack::shared();
    let credentials = stack.dir.path().join("forged-credentials");
    let real = std::fs::read_to_string(stack.info.str("aws_credentials_file")).expect("read");
    let key = real
        .lines()
        .skip_while(|line| line.trim() != "[alice]")
        .find_map(|line| line.strip_prefix("aws_access_key_id = "))
        .expect("alice's key");
    std::fs::write(
        &credentials,
        format!("[alice]\naws_access_key_id = {key}\naws_secret_access_key = not-alices-secret\n"),
    )
    .expect("write");
    let refused = stack
        .elevate("alice", &["list"])
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .output()
        .expect("run elevate");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("403"), "{stderr}");
}

#[tokio::test]
async fn a_tampered_audit_event_fails_verification() {
    // Its own stack: the tampering would fail every other test's `audit verify`.
    let stack = LocalStack::start();
    let requested = stack.run(
        "alice",
        &[
            "request",
            "infra_access",
            "--duration",
            "30m",
            "--reason",
            "tamper test",
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    let id = newest_request(&stack, "alice");
    let approved = stack.run("bob", &["approve", &id]);
    assert!(approved.ok(), "{approved:?}");
    let verified = stack.run("bob", &["audit", "verify"]);
    assert!(verified.ok(), "{verified:?}");

    // Someone with DynamoDB access rewrites who approved.
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.moto());
    dynamo
        .update_item()
        .table_name(stack.info.str("table"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("REQ#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("EVT#0000000002".to_owned()),
        )
        .update_expression("SET #reason = :reason")
        .expression_attribute_names("#reason", "reason")
        .expression_attribute_values(
            ":reason",
            aws_sdk_dynamodb::types::AttributeValue::S("approved by the CISO".to_owned()),
        )
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .expect("tamper with the approve event");

    let tampered = stack.run("bob", &["audit", "verify"]);
    assert_eq!(tampered.code(), Some(9), "{tampered:?}");
}

#[tokio::test]
async fn the_stack_sweeps_every_five_minutes_like_the_template() {
    let stack = LocalStack::shared();
    let scheduler = aws_sdk_scheduler::Client::new(&stack.moto());
    let sweep = scheduler
        .get_schedule()
        .group_name(stack.info.str("schedule_group"))
        .name("sweep")
        .send()
        .await
        .expect("the sweep schedule exists");
    assert_eq!(sweep.schedule_expression(), Some("rate(5 minutes)"));
    let target = sweep.target().expect("a target");
    assert!(
        target.arn().ends_with(":function:elevate-revoke"),
        "{}",
        target.arn()
    );
    let input: Value = serde_json::from_str(target.input().unwrap_or("{}")).expect("JSON input");
    assert_eq!(input, serde_json::json!({"action": "sweep"}));
}
