//! elevate-runtime against real files and a moto server.

use std::io::Write;

use elevate_runtime::{
    embedded_config, load_config, load_config_from, slack_secrets, ConfigLoadError, Env, EnvSpec,
    SecretsError,
};

const VALID: &str = r#"
[[people]]
name = "dana"
iam_user = "dana"
slack_id = "U0DANA001"
email = "dana@example.com"

[[people]]
name = "erin"
iam_user = "erin"
slack_id = "U0ERIN001"
email = "erin@example.com"

[[flows]]
name = "from_a_file"
max_duration = "1h"

[flows.approvers]
channel = "C0FILE001"
people = ["dana", "erin"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "Admins"
"#;

fn temp_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn env_with_config_path(path: Option<&str>) -> Env {
    let spec = EnvSpec {
        escalate_function: true,
    };
    Env::from_lookup(spec, |name| match name {
        "ELEVATE_TABLE" => Some("elevate".into()),
        "ELEVATE_SCHEDULE_GROUP" => Some("elevate".into()),
        "ELEVATE_SCHEDULER_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/scheduler".into()),
        "ELEVATE_REVOKE_FUNCTION_ARN" => {
            Some("arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke".into())
        }
        "ELEVATE_ESCALATE_FUNCTION" => Some("elevate-escalate".into()),
        "ELEVATE_SLACK_SECRET_ARN" => Some("slack".into()),
        "ELEVATE_CONFIG_PATH" => path.map(str::to_owned),
        _ => None,
    })
    .expect("env")
}

#[test]
fn the_embedded_config_is_the_valid_example() {
    assert!(embedded_config().contains("[[flows]]"));
    let config = load_config(&env_with_config_path(None)).expect("embedded config");
    assert!(config.flow("infra_access").is_some());
}

#[test]
fn config_path_wins_over_the_embedded_copy() {
    let file = temp_config(VALID);
    let path = file.path().to_str().expect("utf-8 path");
    let config = load_config(&env_with_config_path(Some(path))).expect("config");
    assert!(config.flow("from_a_file").is_some());
    assert!(config.flow("infra_access").is_none());
}

#[test]
fn an_invalid_config_names_the_line() {
    let broken = VALID.replace(
        "people = [\"dana\", \"erin\"]",
        "people = [\"dana\", \"zed\"]",
    );
    let file = temp_config(&broken);
    let err = load_config_from(Some(file.path())).expect_err("invalid");
    let line = broken
        .lines()
        .position(|l| l.contains("zed"))
        .expect("line")
        + 1;
    assert_eq!(err.line(), Some(line));
    let message = err.to_string();
    assert!(message.contains(&format!("line {line}")), "{message}");
    assert!(message.contains("zed"), "{message}");
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let err = load_config_from(Some(std::path::Path::new("/nonexistent/elevate.toml")))
        .expect_err("missing");
    assert!(matches!(err, ConfigLoadError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/elevate.toml"));
}

#[tokio::test]
async fn slack_secrets_are_read_from_secrets_manager() {
    let moto = elevate_testkit::Moto::start().await;
    let sdk = moto.sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let create = |name: &str, value: &str| {
        client
            .create_secret()
            .name(elevate_testkit::unique_name(name))
            .secret_string(value)
            .send()
    };
    let good = create(
        "elevate-slack",
        r#"{"bot_token":"xoxb-123","signing_secret":"s3cr3t","extra":"ignored"}"#,
    )
    .await
    .expect("create");
    let arn = good.arn().expect("arn");

    let secrets = slack_secrets(&sdk, arn).await.expect("secrets");
    assert_eq!(secrets.bot_token, "xoxb-123");
    assert_eq!(secrets.signing_secret, "s3cr3t");
    assert!(!format!("{secrets:?}").contains("s3cr3t"));

    let half = create("elevate-half", r#"{"bot_token":"xoxb-123"}"#)
        .await
        .expect("create");
    let err = slack_secrets(&sdk, half.arn().expect("arn"))
        .await
        .expect_err("malformed");
    assert!(matches!(err, SecretsError::Malformed { .. }));
    assert!(err.to_string().contains("signing_secret"), "{err}");

    let wrong = create(
        "elevate-wrong",
        r#"{"bot_token":987654321987,"signing_secret":"s3cr3t"}"#,
    )
    .await
    .expect("create");
    let err = slack_secrets(&sdk, wrong.arn().expect("arn"))
        .await
        .expect_err("malformed");
    // The secret's value never shows (a short number could appear by chance in the ARN).
    assert!(!err.to_string().contains("987654321987"), "{err}");

    let err = slack_secrets(&sdk, "no-such-secret")
        .await
        .expect_err("missing");
    assert!(matches!(err, SecretsError::Read { .. }));
    assert!(err.to_string().contains("no-such-secret"), "{err}");
}
