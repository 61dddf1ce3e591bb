//! What every elevate function's `main` shares: the environment read once into [`Env`], the
//! flows config (embedded at build time, or read from `ELEVATE_CONFIG_PATH`), JSON logs, the
//! AWS SDK config and the Slack secrets, and the [`App`](elevate_core::service::App) built from
//! them ([`start`], [`build_app`]). The archive function needs less: its own [`ArchiveEnv`] and
//! the table and archive adapters ([`start_archive`], [`build_archive`]).
//!
//! ```no_run
//! # async fn main_body() -> Result<(), Box<dyn std::error::Error>> {
//! use elevate_runtime::{Env, EnvSpec};
//! elevate_runtime::init_tracing();
//! let env = Env::from_env(EnvSpec::REQUEST)?;
//! let config = elevate_runtime::load_config(&env)?;
//! let sdk = elevate_runtime::aws_config().await;
//! let slack = elevate_runtime::slack_secrets(&sdk, &env.slack_secret_arn).await?;
//! # let _ = (config, slack); Ok(()) }
//! ```

mod app;
mod config;
mod env;
mod secrets;

pub use app::{build_app, build_archive, start, start_archive, ArchiveParts, StartError, Started};
pub use aws_config::SdkConfig;
pub use config::{embedded_config, load_config, load_config_from, ConfigLoadError};
pub use env::{ArchiveEnv, Env, EnvError, EnvSpec, SchedulerEnv, DEFAULT_SLACK_API_URL};
pub use secrets::{slack_secrets, SecretsError, SlackSecrets};

use tracing_subscriber::EnvFilter;

/// Installs JSON logs on stdout (what CloudWatch expects from a Lambda function), filtered by
/// `RUST_LOG`, else by the Lambda's `AWS_LAMBDA_LOG_LEVEL`, else at `info`. Calling it twice
/// keeps the first subscriber.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .and_then(|level| EnvFilter::try_new(lambda_log_level(&level)).ok())
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _already_installed = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}

/// Lambda's log levels are upper case and include FATAL, which tracing calls `error`.
fn lambda_log_level(level: &str) -> String {
    match level.trim().to_ascii_lowercase().as_str() {
        "fatal" => "error".to_owned(),
        other => other.to_owned(),
    }
}

/// The AWS SDK config from the standard chain: credentials, region, and endpoints only from the
/// SDK's own `AWS_ENDPOINT_URL*` variables (that is how the local stack points at moto).
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_levels_map_to_tracing_levels() {
        assert_eq!(lambda_log_level("FATAL"), "error");
        assert_eq!(lambda_log_level("DEBUG"), "debug");
        assert!(EnvFilter::try_new(lambda_log_level("WARN")).is_ok());
    }
}
