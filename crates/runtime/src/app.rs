//! Building the [`App`] of a function from its environment: the AWS adapters of elevate-aws over
//! SDK clients of one `SdkConfig`, and the Slack Web API notifier.

use std::sync::Arc;

use aws_config::SdkConfig;
use elevate_aws::{
    DynamoStore, EventBridgeScheduler, IamGroupStrategy, IdentityCenter, LambdaEscalation,
    LambdaFollowUps, LambdaInvoker, LambdaStrategy, PermissionSetStrategy, S3Archive,
    SchedulerTarget,
};
use elevate_core::archive::Archive;
use elevate_core::ports::{
    Directory, Invoker, NoDirectory, RequestStore, StrategyRouter, SystemClock,
};
use elevate_core::service::{App, Settings};
use elevate_core::Config;
use elevate_slack::SlackNotifier;

use crate::config::ConfigLoadError;
use crate::env::{ArchiveEnv, Env, EnvError, EnvSpec};
use crate::secrets::{SecretsError, SlackSecrets};

/// The App of a function with the adapters of the real world: DynamoDB, IAM (and custom target
/// functions), EventBridge Scheduler, Lambda, Slack, the system clock.
///
/// The scheduler variables are required (every function's use cases create or delete
/// schedules). `ELEVATE_ESCALATE_FUNCTION` is optional: functions that never start an
/// escalation (request, escalate) are built without it.
pub fn build_app(
    env: &Env,
    config: Config,
    sdk: &SdkConfig,
    slack: &SlackSecrets,
) -> Result<App, EnvError> {
    let schedules = env.scheduler()?;
    let invoker: Arc<dyn Invoker> = Arc::new(LambdaInvoker::new(aws_sdk_lambda::Client::new(sdk)));
    let center = config.identity_center.as_ref().map(|center| {
        Arc::new(IdentityCenter::new(
            sdk,
            &center.instance_arn,
            &center.identity_store_id,
        ))
    });
    let directory: Arc<dyn Directory> = match &center {
        Some(center) => center.clone(),
        None => Arc::new(NoDirectory),
    };
    let strategy = StrategyRouter {
        iam_group: Arc::new(IamGroupStrategy::new(aws_sdk_iam::Client::new(sdk))),
        lambda: Arc::new(LambdaStrategy::new(invoker.clone())),
        sso_permission_set: Arc::new(PermissionSetStrategy::new(center)),
    };
    let scheduler = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(sdk),
        SchedulerTarget {
            group: schedules.group.clone(),
            target_arn: schedules.revoke_function_arn.clone(),
            role_arn: schedules.role_arn.clone(),
            dead_letter_arn: schedules.dlq_arn.clone(),
        },
    );
    Ok(App {
        config: Arc::new(config),
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            env.table.clone(),
        )),
        strategy: Arc::new(strategy),
        directory,
        scheduler: Arc::new(scheduler),
        notifier: Arc::new(SlackNotifier::new(
            env.slack_api_url.clone(),
            slack.bot_token.clone(),
        )),
        escalation: Arc::new(escalation(env, invoker.clone())),
        hooks: invoker.clone(),
        // A function's follow-ups run in the function itself, "End access now" in revoke.
        follow_ups: Arc::new(LambdaFollowUps::new(
            invoker,
            env.function_name.clone(),
            schedules.revoke_function_arn.clone(),
        )),
        clock: Arc::new(SystemClock),
        settings: Settings {
            principal: format!("lambda:{}", env.function_name),
            ..Settings::default()
        },
    })
}

/// Escalations start by invoking `ELEVATE_ESCALATE_FUNCTION` (when this function has it).
fn escalation(env: &Env, invoker: Arc<dyn Invoker>) -> LambdaEscalation {
    LambdaEscalation::new(invoker, env.escalate_function.clone())
}

/// Why a function could not start. Init fails with it, and the message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Config(#[from] ConfigLoadError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// A started function: its App, and the Slack secrets (approve verifies signatures with them).
pub struct Started {
    pub app: App,
    pub slack: SlackSecrets,
    /// The environment it was started with.
    pub env: Env,
}

/// The cold start every function shares: JSON logs, the environment of `spec`, the flows
/// config, the SDK config, the Slack secrets, and the App built from them.
pub async fn start(spec: EnvSpec) -> Result<Started, StartError> {
    crate::init_tracing();
    let result = async {
        let env = Env::from_env(spec)?;
        let config = crate::load_config(&env)?;
        let sdk = crate::aws_config().await;
        let slack = crate::slack_secrets(&sdk, &env.slack_secret_arn).await?;
        let app = build_app(&env, config, &sdk, &slack)?;
        Ok::<_, StartError>(Started { app, slack, env })
    }
    .await;
    if let Err(err) = &result {
        tracing::error!(error = %err, "cannot start");
    }
    result
}

/// What the archive function works with: the table (the anchors read its audit events) and
/// the archive in S3. Neither Slack nor the scheduler.
#[derive(Clone)]
pub struct ArchiveParts {
    pub store: Arc<dyn RequestStore>,
    pub archive: Arc<dyn Archive>,
}

/// The archive function's adapters over SDK clients of `sdk`: [`DynamoStore`] on
/// `ELEVATE_TABLE`, [`S3Archive`] on `ELEVATE_ARCHIVE_BUCKET` under `ELEVATE_ARCHIVE_PREFIX`.
pub fn build_archive(env: &ArchiveEnv, sdk: &SdkConfig) -> ArchiveParts {
    ArchiveParts {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            env.table.clone(),
        )),
        archive: Arc::new(S3Archive::new(
            aws_sdk_s3::Client::new(sdk),
            env.bucket.clone(),
            &env.prefix,
        )),
    }
}

/// The archive function's cold start: JSON logs, its environment ([`ArchiveEnv`]), the SDK
/// config, and its adapters. No flows config and no Slack secret: it reads neither.
pub async fn start_archive() -> Result<(ArchiveEnv, ArchiveParts), StartError> {
    crate::init_tracing();
    let env = ArchiveEnv::from_env().inspect_err(|err| {
        tracing::error!(error = %err, "cannot start");
    })?;
    let sdk = crate::aws_config().await;
    let parts = build_archive(&env, &sdk);
    tracing::info!(table = %env.table, bucket = %env.bucket, prefix = %env.prefix, "archive started");
    Ok((env, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Env, EnvError> {
        let spec = EnvSpec {
            escalate_function: true,
        };
        Env::from_lookup(spec, |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    const VARS: &[(&str, &str)] = &[
        ("ELEVATE_TABLE", "elevate"),
        ("ELEVATE_SCHEDULE_GROUP", "elevate"),
        (
            "ELEVATE_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/scheduler",
        ),
        (
            "ELEVATE_REVOKE_FUNCTION_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke",
        ),
        ("ELEVATE_ESCALATE_FUNCTION", "elevate-escalate"),
        (
            "ELEVATE_SLACK_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack",
        ),
    ];

    fn secrets() -> SlackSecrets {
        SlackSecrets {
            bot_token: "xoxb-test".into(),
            signing_secret: "secret".into(),
        }
    }

    #[test]
    fn builds_the_app_of_a_function() {
        let env = env(VARS).expect("env");
        let config = crate::load_config_from(None).expect("embedded config");
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let invoker = Arc::new(LambdaInvoker::new(aws_sdk_lambda::Client::new(&sdk)));
        assert_eq!(
            escalation(&env, invoker).function(),
            Some("elevate-escalate")
        );
        let app = build_app(&env, config, &sdk, &secrets()).expect("app");
        assert!(app.config.flow("infra_access").is_some());
    }

    /// Without a region or credentials, as at a cold start before the first call resolves them.
    #[test]
    fn builds_the_archive_parts() {
        let env = ArchiveEnv::from_lookup(|name| match name {
            "ELEVATE_TABLE" => Some("elevate".into()),
            "ELEVATE_ARCHIVE_BUCKET" => Some("elevate-archive".into()),
            _ => None,
        })
        .expect("env");
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let ArchiveParts { store, archive } = build_archive(&env, &sdk);
        drop((store, archive));
    }

    #[test]
    fn the_scheduler_variables_are_required() {
        let without: Vec<(&str, &str)> = VARS
            .iter()
            .copied()
            .filter(|(name, _)| *name != "ELEVATE_SCHEDULE_GROUP")
            .collect();
        assert_eq!(
            env(&without).expect_err("missing"),
            EnvError::Missing("ELEVATE_SCHEDULE_GROUP")
        );
        let mut approve_style = env(VARS).expect("env");
        approve_style.scheduler = None;
        let config = crate::load_config_from(None).expect("config");
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let built = build_app(&approve_style, config, &sdk, &secrets());
        assert!(
            matches!(built, Err(EnvError::Missing("ELEVATE_SCHEDULE_GROUP"))),
            "the scheduler variables are required"
        );
    }
}
