//! `config check`: offline, default paths, line numbers.

use crate::support::*;

const GOOD: &str = include_str!("../../../../infra/elevate.toml");

#[test]
fn a_good_file_is_summarized() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("elevate.toml"), GOOD).expect("write");
    // No API URL and no credentials: the check is offline.
    let run = Elevate::new()
        .cwd(dir.path())
        .env("AWS_ACCESS_KEY_ID", "")
        .run(&["config", "check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("elevate.toml: OK"), "{}", run.stdout);
    assert!(
        run.stdout.contains("people (2): alice, bob"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("infra_access"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("target admins: IAM group SymDemoAdmins"));
    assert!(run.stdout.contains("max duration 4h"));
    assert!(run.stdout.contains("approvers: alice, bob in C0APPROVALS"));
}

/// A flow with every workflow rule: who gets what without a person is spelled out.
const WORKFLOWS: &str = r#"
[[flows]]
name = "on_call"
max_duration = "1h"
pending_timeout = "30m"
hook = "arn:aws:lambda:us-east-1:123456789012:function:on-call-hook"

[flows.approvers]
channel = "C0ONCALL"
people = ["alice", "bob"]

[[flows.auto_approve]]
name = "short"
requesters = ["alice"]
max_duration = "30m"

[flows.break_glass]
max_duration = "15m"
channel = "C0SECURITY"
review_within = "1h"

[flows.reminders]
remind_after = "10m"
backup_after = "20m"
backup_people = ["bob"]
backup_channel = "C0BACKUP"

[[flows.targets]]
name = "ops"
type = "iam_group"
group = "Ops"
"#;

#[test]
fn every_way_to_access_without_an_approver_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("elevate.toml");
    std::fs::write(&path, format!("{GOOD}{WORKFLOWS}")).expect("write");
    let path = path.to_str().expect("path");
    let run = Elevate::new().run(&["config", "check", path]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "without a human: nobody (every request needs an approver)",
        "without a human (auto-approved, requests and extensions):",
        "short: alice get ops for up to 30m, at any time",
        "hook: arn:aws:lambda:us-east-1:123456789012:function:on-call-hook is asked at submission",
        "break-glass: every requester at once on their own word, for up to 15m; posted in C0SECURITY, reviewed by an approver within 1h",
        "when nobody answers: the approvers are reminded after 10m; bob may decide after 20m (posted in C0BACKUP)",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    let json = Elevate::new()
        .run(&["config", "check", "--json", path])
        .json();
    let flow = &json["flows"][1];
    assert_eq!(flow["break_glass"]["max_duration"], 900);
    assert_eq!(flow["break_glass"]["channel"], "C0SECURITY");
    assert_eq!(flow["reminders"]["backup_people"][0], "bob");
    assert_eq!(flow["reminders"]["backup_after"], 1200);
    assert_eq!(json["flows"][0]["break_glass"], serde_json::Value::Null);
}

#[test]
fn infra_elevate_toml_is_the_fallback() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("infra")).expect("mkdir");
    std::fs::write(dir.path().join("infra").join("elevate.toml"), GOOD).expect("write");
    let run = Elevate::new()
        .cwd(dir.path())
        .run(&["config", "check", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let summary = run.json();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["flows"][0]["max_duration"], 14_400);
}

#[test]
fn a_bad_file_names_the_line_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = GOOD.replace("max_duration = \"4h\"", "max_duration = \"soon\"");
    let line = bad
        .lines()
        .position(|l| l.contains("\"soon\""))
        .expect("line")
        + 1;
    let path = dir.path().join("flows.toml");
    std::fs::write(&path, bad).expect("write");
    let run = Elevate::new().run(&["config", "check", path.to_str().expect("path")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("flows.toml line {line}: max_duration")),
        "{}",
        run.stderr
    );
}

#[test]
fn no_file_at_all_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("dir");
    let run = Elevate::new().cwd(dir.path()).run(&["config", "check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("infra/elevate.toml"), "{}", run.stderr);
}

#[test]
fn completions_are_generated() {
    let run = Elevate::new().run(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("elevate"), "{}", run.stdout);
}

/// `GOOD` with moto's Identity Center and a flow `oncall` requested by `requesters` and
/// approved by members of `approvers` (group names).
fn with_groups(instance: &str, store: &str, requesters: &str, approvers: &str) -> String {
    format!(
        "{GOOD}\n[identity_center]\ninstance_arn = \"{instance}\"\nidentity_store_id = \"{store}\"\n\n\
         [[flows]]\nname = \"oncall\"\nmax_duration = \"1h\"\nrequesters.groups = [\"{requesters}\"]\n\
         [flows.approvers]\nchannel = \"C0ONCALL\"\ngroups = [\"{approvers}\"]\n\
         [[flows.targets]]\nname = \"admins\"\ntype = \"iam_group\"\ngroup = \"SymDemoAdmins\"\n"
    )
}

#[tokio::test]
async fn groups_the_identity_store_lacks_fail_the_check() {
    let moto = elevate_testkit::Moto::start().await;
    let sdk = moto.sdk_config().await;
    let instance = aws_sdk_ssoadmin_instance(&sdk).await;
    let (instance_arn, store) = instance;
    let oncall = elevate_testkit::unique_name("OnCall");
    let leads = elevate_testkit::unique_name("Leads");
    for name in [&oncall, &leads] {
        aws_sdk_identitystore::Client::new(&sdk)
            .create_group()
            .identity_store_id(&store)
            .display_name(name)
            .send()
            .await
            .expect("create group");
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("elevate.toml");
    let path_text = path.to_str().expect("path").to_owned();
    let check = |text: String, offline: bool| {
        std::fs::write(&path, text).expect("write");
        let mut args = vec!["config", "check", path_text.as_str()];
        if offline {
            args.push("--offline");
        }
        Elevate::new()
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .run(&args)
    };

    let run = check(with_groups(&instance_arn, &store, &oncall, &leads), false);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("all 2 groups found"), "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("approvers: the members of {leads} in C0ONCALL")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("requesters: the members of {oncall}")),
        "{}",
        run.stdout
    );

    let run = check(with_groups(&instance_arn, &store, &oncall, "Nobody"), false);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("has no group `Nobody` (approvers.groups of flow oncall)"),
        "{}",
        run.stderr
    );
    // Offline, the file alone is checked.
    let run = check(with_groups(&instance_arn, &store, &oncall, "Nobody"), true);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn an_unreachable_identity_store_is_a_note_not_a_failure() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("elevate.toml");
    std::fs::write(
        &path,
        with_groups(
            "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6",
            "d-9067a1b2c3",
            "OnCall",
            "Leads",
        ),
    )
    .expect("write");
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let run = Elevate::new()
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_MAX_ATTEMPTS", "1")
        .run(&["config", "check", path.to_str().expect("path")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("groups not checked"), "{}", run.stderr);
}

/// moto's Identity Center instance: its ARN and Identity Store id.
async fn aws_sdk_ssoadmin_instance(sdk: &aws_config::SdkConfig) -> (String, String) {
    let instances = aws_sdk_ssoadmin::Client::new(sdk)
        .list_instances()
        .send()
        .await
        .expect("instances");
    let instance = instances.instances().first().expect("moto's instance");
    (
        instance.instance_arn().expect("arn").to_owned(),
        instance.identity_store_id().expect("store").to_owned(),
    )
}
