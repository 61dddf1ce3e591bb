//! What `elevate-local up` creates in moto before the functions start: the tutorial's
//! escalation strategy (role `SymDemoEscalated`, group `SymDemoAdmins` allowed to assume it, the
//! demo bucket only that role may use: infra/strategy.yaml), the groups the flows grant,
//! elevate's table (with its stream), schedule group (with the sweep and anchor schedules),
//! Slack secret and audit archive bucket (Object Lock, COMPLIANCE), and one IAM user with an
//! access key per person. Everything tolerates finding it already there.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_iam::error::SdkError;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_types::error::display::DisplayErrorContext;
use elevate_aws::{DynamoStore, EventBridgeScheduler};
use elevate_core::config::{Config, TargetKind};
use elevate_core::events::ScheduledAction;
use serde_json::json;

use crate::functions;
use crate::identity::{LocalUsers, MOTO_ACCOUNT_ID};

/// The tutorial's names (infra/strategy.yaml).
pub const ESCALATED_ROLE: &str = "SymDemoEscalated";
pub const ADMINS_GROUP: &str = "SymDemoAdmins";
/// The group the example custom target grants (`EXAMPLE_TARGET_GROUP`).
pub const CUSTOM_TARGET_GROUP: &str = "SymDemoCustom";
/// The role the schedules name (moto's Scheduler never assumes it).
pub const SCHEDULER_ROLE: &str = "elevate-local-scheduler";
pub const REGION: &str = "us-east-1";
/// The default retention of the local archive bucket: long enough for any local run, short
/// enough that moto's data is no burden (the template keeps years).
pub const ARCHIVE_RETENTION_DAYS: i32 = 1;
/// The anchor schedule's name and expression (template.yaml's `AnchorSchedule`, at its default
/// `AnchorIntervalMinutes`).
pub const ANCHOR_SCHEDULE: &str = "anchor";
pub const ANCHOR_EXPRESSION: &str = "rate(60 minutes)";

/// A bootstrap step failed: which one, and what moto said.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct BootstrapError {
    pub step: String,
    pub message: String,
}

impl BootstrapError {
    fn new(step: impl Into<String>, message: impl fmt::Display) -> Self {
        BootstrapError {
            step: step.into(),
            message: message.to_string(),
        }
    }
}

fn sdk_error<E, R>(step: impl Into<String>, error: SdkError<E, R>) -> BootstrapError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    BootstrapError::new(step, DisplayErrorContext(&error))
}

/// Names of elevate's own resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub table: String,
    pub schedule_group: String,
    pub slack_secret: String,
    /// The audit archive's bucket (`ELEVATE_ARCHIVE_BUCKET`).
    pub archive_bucket: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            table: "elevate-local".to_owned(),
            schedule_group: "elevate-local".to_owned(),
            slack_secret: "elevate-local/slack".to_owned(),
            archive_bucket: format!("elevate-local-archive-{MOTO_ACCOUNT_ID}"),
        }
    }
}

/// The Slack app's credentials of this run. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackCredentials {
    pub bot_token: String,
    pub signing_secret: String,
}

impl SlackCredentials {
    /// Fresh random credentials (UUID v4: 122 random bits each part).
    pub fn generate() -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        SlackCredentials {
            bot_token: format!("xoxb-local-{}", random()),
            signing_secret: format!("{}{}", random(), random()),
        }
    }
}

impl fmt::Debug for SlackCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackCredentials")
            .field("bot_token", &"<redacted>")
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}

/// What the bootstrap made.
#[derive(Debug)]
pub struct Bootstrapped {
    pub escalated_role_arn: String,
    pub admins_group: String,
    /// `None` when moto refused the bucket (the stack works without it).
    pub demo_bucket: Option<String>,
    pub scheduler_role_arn: String,
    pub slack_secret_arn: String,
    /// The audit archive's bucket, under Object Lock.
    pub archive_bucket: String,
    pub users: LocalUsers,
}

/// Creates everything in moto (`sdk` talks to it; `moto_endpoint` is its URL, for S3) and
/// writes the people's AWS profiles to `aws_dir`.
pub async fn bootstrap(
    sdk: &SdkConfig,
    moto_endpoint: &str,
    config: &Config,
    names: &Names,
    slack: &SlackCredentials,
    aws_dir: &Path,
) -> Result<Bootstrapped, BootstrapError> {
    let iam = aws_sdk_iam::Client::new(sdk);

    let (escalated_role_arn, escalated_role_id) = ensure_role(
        &iam,
        ESCALATED_ROLE,
        "Escalated access to the demo bucket; assumable by members of SymDemoAdmins",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:root")},
                "Action": "sts:AssumeRole",
                // As infra/strategy.yaml: IAM users only, their user name as session name.
                "Condition": {
                    "ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:user/*")},
                    "StringEquals": {"sts:RoleSessionName": "${aws:username}"},
                },
            }],
        }),
    )
    .await?;
    ensure_group(&iam, ADMINS_GROUP).await?;
    put_group_policy(
        &iam,
        ADMINS_GROUP,
        "assume-symdemo-escalated",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": escalated_role_arn,
            }],
        }),
    )
    .await?;

    // Every group a flow grants, so that the config may name others than the tutorial's.
    for flow in &config.flows {
        for target in &flow.targets {
            if let TargetKind::IamGroup { group, .. } = &target.kind {
                ensure_group(&iam, group).await?;
            }
        }
    }
    ensure_group(&iam, CUSTOM_TARGET_GROUP).await?;

    let bucket = format!("symdemo-{MOTO_ACCOUNT_ID}");
    let demo_bucket = match demo_bucket(sdk, moto_endpoint, &bucket, &escalated_role_id).await {
        Ok(()) => {
            put_role_policy(
                &iam,
                ESCALATED_ROLE,
                "demo-bucket",
                &json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                    }],
                }),
            )
            .await?;
            Some(bucket)
        }
        Err(error) => {
            tracing::warn!(%error, "the demo bucket was not created; everything else works without it");
            None
        }
    };

    let (scheduler_role_arn, _) = ensure_role(
        &iam,
        SCHEDULER_ROLE,
        "The role elevate's schedules name",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        }),
    )
    .await?;
    put_role_policy(
        &iam,
        SCHEDULER_ROLE,
        "invoke-revoke",
        &json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [
                    functions::function_arn(functions::REVOKE),
                    functions::function_arn(functions::ESCALATE),
                    functions::function_arn(functions::ARCHIVE),
                ],
            }],
        }),
    )
    .await?;

    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table)
        .await
        .map_err(|e| BootstrapError::new(format!("DynamoDB table {}", names.table), e))?;
    EventBridgeScheduler::create_group(&aws_sdk_scheduler::Client::new(sdk), &names.schedule_group)
        .await
        .map_err(|e| BootstrapError::new(format!("schedule group {}", names.schedule_group), e))?;
    sweep_schedule(sdk, &names.schedule_group, &scheduler_role_arn).await?;
    anchor_schedule(sdk, &names.schedule_group, &scheduler_role_arn).await?;
    archive_bucket(sdk, &names.archive_bucket).await?;
    let slack_secret_arn = slack_secret(sdk, &names.slack_secret, slack).await?;

    let users = LocalUsers::provision(&iam, config)
        .await
        .map_err(|e| BootstrapError::new("local users", e))?;
    // The profiles' `endpoint_url` is moto, so that what people run with them (the CLI's
    // archive reads, the AWS CLI) reaches the local AWS, never the real one.
    users
        .write_profiles_with_endpoint(aws_dir, REGION, Some(moto_endpoint))
        .map_err(|e| BootstrapError::new("AWS profiles", e))?;

    Ok(Bootstrapped {
        escalated_role_arn,
        admins_group: ADMINS_GROUP.to_owned(),
        demo_bucket,
        scheduler_role_arn,
        slack_secret_arn,
        archive_bucket: names.archive_bucket.clone(),
        users,
    })
}

/// template.yaml's `SweepSchedule`: the revoke function's sweep every five minutes, which the
/// pump fires like any other schedule.
async fn sweep_schedule(
    sdk: &SdkConfig,
    group: &str,
    role_arn: &str,
) -> Result<(), BootstrapError> {
    let sweep = ScheduledAction::Sweep;
    let input = serde_json::to_string(&sweep)
        .map_err(|e| BootstrapError::new(format!("sweep schedule in {group}"), e))?;
    ensure_schedule(
        sdk,
        group,
        &sweep.schedule_name(),
        "rate(5 minutes)",
        &functions::function_arn(functions::REVOKE),
        role_arn,
        input,
    )
    .await
}

/// template.yaml's `AnchorSchedule`: the archive function's anchor of every chain head, which
/// the pump fires like any other schedule.
async fn anchor_schedule(
    sdk: &SdkConfig,
    group: &str,
    role_arn: &str,
) -> Result<(), BootstrapError> {
    ensure_schedule(
        sdk,
        group,
        ANCHOR_SCHEDULE,
        ANCHOR_EXPRESSION,
        &functions::function_arn(functions::ARCHIVE),
        role_arn,
        elevate_archive::ANCHOR_INPUT.to_owned(),
    )
    .await
}

/// A recurring schedule invoking `target_arn` with `input`, unless one of that name exists.
async fn ensure_schedule(
    sdk: &SdkConfig,
    group: &str,
    name: &str,
    expression: &str,
    target_arn: &str,
    role_arn: &str,
    input: String,
) -> Result<(), BootstrapError> {
    use aws_sdk_scheduler::types::{
        FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target,
    };
    let step = || format!("{name} schedule in {group}");
    let target = Target::builder()
        .arn(target_arn)
        .role_arn(role_arn)
        .input(input)
        .build()
        .map_err(|e| BootstrapError::new(step(), e))?;
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| BootstrapError::new(step(), e))?;
    let created = aws_sdk_scheduler::Client::new(sdk)
        .create_schedule()
        .name(name)
        .group_name(group)
        .schedule_expression(expression)
        .flexible_time_window(window)
        .target(target)
        .state(ScheduleState::Enabled)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(sdk_error(step(), err)),
    }
}

/// template.yaml's `ArchiveBucket`, locally: Object Lock with a default COMPLIANCE retention.
async fn archive_bucket(sdk: &SdkConfig, bucket: &str) -> Result<(), BootstrapError> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    elevate_aws::S3Archive::create_bucket(&s3, bucket, ARCHIVE_RETENTION_DAYS)
        .await
        .map_err(|e| BootstrapError::new(format!("archive bucket {bucket}"), e))
}

/// The role's ARN and id, created with an hour's maximum session unless it exists.
async fn ensure_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    description: &str,
    trust: &serde_json::Value,
) -> Result<(String, String), BootstrapError> {
    let step = || format!("IAM role {name}");
    let role = match iam
        .create_role()
        .role_name(name)
        .description(description)
        .max_session_duration(3600)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
    {
        Ok(created) => created.role,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_entity_already_exists_exception()) =>
        {
            iam.get_role()
                .role_name(name)
                .send()
                .await
                .map_err(|e| sdk_error(step(), e))?
                .role
        }
        Err(e) => return Err(sdk_error(step(), e)),
    };
    let role = role.ok_or_else(|| BootstrapError::new(step(), "answered without the role"))?;
    Ok((role.arn, role.role_id))
}

async fn ensure_group(iam: &aws_sdk_iam::Client, name: &str) -> Result<(), BootstrapError> {
    match iam.create_group().group_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_entity_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error(format!("IAM group {name}"), e)),
    }
}

async fn put_group_policy(
    iam: &aws_sdk_iam::Client,
    group: &str,
    policy: &str,
    document: &serde_json::Value,
) -> Result<(), BootstrapError> {
    iam.put_group_policy()
        .group_name(group)
        .policy_name(policy)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(|e| sdk_error(format!("policy {policy} of group {group}"), e))?;
    Ok(())
}

async fn put_role_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    policy: &str,
    document: &serde_json::Value,
) -> Result<(), BootstrapError> {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(|e| sdk_error(format!("policy {policy} of role {role}"), e))?;
    Ok(())
}

/// Creates (or updates) the Slack secret and answers its ARN.
async fn slack_secret(
    sdk: &SdkConfig,
    name: &str,
    slack: &SlackCredentials,
) -> Result<String, BootstrapError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let value =
        json!({"bot_token": slack.bot_token, "signing_secret": slack.signing_secret}).to_string();
    let step = || format!("Secrets Manager secret {name}");
    let arn = match client
        .create_secret()
        .name(name)
        .description("The local Slack stand-in's bot token and signing secret")
        .secret_string(&value)
        .send()
        .await
    {
        Ok(created) => created.arn,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(&value)
                .send()
                .await
                .map_err(|e| sdk_error(step(), e))?
                .arn
        }
        Err(e) => return Err(sdk_error(step(), e)),
    };
    arn.ok_or_else(|| BootstrapError::new(step(), "answered without an ARN"))
}

/// The demo bucket and the tutorial's policy: everyone but sessions of the escalated role is
/// denied everything. Plain signed S3 REST calls, so no S3 SDK is needed for two requests.
async fn demo_bucket(
    sdk: &SdkConfig,
    moto_endpoint: &str,
    bucket: &str,
    escalated_role_id: &str,
) -> Result<(), BootstrapError> {
    let step = || format!("S3 bucket {bucket}");
    let base = moto_endpoint.trim_end_matches('/');
    let http = reqwest::Client::new();
    s3_call(sdk, &http, "PUT", &format!("{base}/{bucket}"), Vec::new())
        .await
        .map_err(|e| BootstrapError::new(step(), e))?;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyUnlessSymDemoEscalated",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"StringNotLike": {"aws:userId": [format!("{escalated_role_id}:*")]}},
        }],
    });
    s3_call(
        sdk,
        &http,
        "PUT",
        &format!("{base}/{bucket}?policy"),
        policy.to_string().into_bytes(),
    )
    .await
    .map_err(|e| BootstrapError::new(format!("policy of {}", step()), e))?;
    Ok(())
}

/// One SigV4-signed S3 request (path style); a non-2xx answer is an error with its body.
async fn s3_call(
    sdk: &SdkConfig,
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let credentials = match sdk.credentials_provider() {
        Some(provider) => provider
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?,
        None => return Err("no credentials".to_owned()),
    };
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .map_err(|e| e.to_string())?;
    let signable = SignableRequest::new(
        method,
        url,
        std::iter::empty(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);

    let (parts, body) = request.into_parts();
    let answer = http
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    Err(format!("{status}: {}", text.trim()))
}
