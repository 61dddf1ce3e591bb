//! The function environment of docs/contracts.md, read once at cold start.

use std::path::PathBuf;

/// Where the Slack Web API is when `SLACK_API_URL` is not set.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";

/// A variable the function needs is absent or unusable. Init fails with this, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Which of the optional groups of variables a function requires. Every function requires the
/// scheduler variables (`ELEVATE_SCHEDULE_GROUP`, `ELEVATE_SCHEDULER_ROLE_ARN`,
/// `ELEVATE_REVOKE_FUNCTION_ARN`): each one's use cases create or delete schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvSpec {
    /// `ELEVATE_ESCALATE_FUNCTION`.
    pub escalate_function: bool,
}

impl EnvSpec {
    /// Request starts the escalation of a request an auto-approval rule approved.
    pub const REQUEST: EnvSpec = EnvSpec {
        escalate_function: true,
    };
    /// Approve starts escalations and deletes the time-out schedule of a decided request.
    pub const APPROVE: EnvSpec = EnvSpec {
        escalate_function: true,
    };
    pub const ESCALATE: EnvSpec = EnvSpec {
        escalate_function: false,
    };
    /// Revoke's sweep starts the escalation again for approvals never escalated.
    pub const REVOKE: EnvSpec = EnvSpec {
        escalate_function: true,
    };
}

/// The environment of the archive function, which needs none of the others' groups (no
/// scheduler, no escalation, no Slack): `ELEVATE_TABLE`, `ELEVATE_ARCHIVE_BUCKET` and an
/// optional `ELEVATE_ARCHIVE_PREFIX`. Read with [`ArchiveEnv::from_env`]; built into the
/// function's adapters by [`crate::build_archive`].
///
/// (Not an [`EnvSpec`]: every function's [`Env`] requires the scheduler and Slack variables,
/// and an `EnvSpec` field more would break the struct literals of its users.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEnv {
    /// `ELEVATE_TABLE`: the anchors read the audit events from it.
    pub table: String,
    /// `ELEVATE_ARCHIVE_BUCKET`: the S3 bucket (with Object Lock) of the archive.
    pub bucket: String,
    /// `ELEVATE_ARCHIVE_PREFIX`: the folder of the archive in the bucket, empty for none
    /// (leading and trailing `/` removed).
    pub prefix: String,
    /// Like [`Env::function_name`].
    pub function_name: String,
}

impl ArchiveEnv {
    /// Reads the process environment. An empty variable counts as unset.
    pub fn from_env() -> Result<ArchiveEnv, EnvError> {
        ArchiveEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests and the local stack pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ArchiveEnv, EnvError> {
        let optional = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &'static str| optional(name).ok_or(EnvError::Missing(name));
        let table = required("ELEVATE_TABLE")?;
        let bucket = required("ELEVATE_ARCHIVE_BUCKET")?;
        let (bucket, _) =
            elevate_aws::archive::parse_url(&format!("s3://{bucket}")).map_err(|err| {
                EnvError::Invalid {
                    name: "ELEVATE_ARCHIVE_BUCKET",
                    message: err.why,
                }
            })?;
        let prefix = optional("ELEVATE_ARCHIVE_PREFIX").unwrap_or_default();
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.contains("//") {
            return Err(EnvError::Invalid {
                name: "ELEVATE_ARCHIVE_PREFIX",
                message: format!("`{prefix}` has an empty folder (`//`)"),
            });
        }
        Ok(ArchiveEnv {
            table,
            bucket,
            prefix,
            function_name: function_name(&lookup),
        })
    }
}

/// What the schedules are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerEnv {
    /// `ELEVATE_SCHEDULE_GROUP`
    pub group: String,
    /// `ELEVATE_SCHEDULER_ROLE_ARN`: the role the Scheduler assumes to invoke the target.
    pub role_arn: String,
    /// `ELEVATE_REVOKE_FUNCTION_ARN`: the target of the schedules.
    pub revoke_function_arn: String,
    /// `ELEVATE_SCHEDULE_DLQ_ARN`, optional.
    pub dlq_arn: Option<String>,
}

/// The function environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `ELEVATE_TABLE`
    pub table: String,
    /// Always read by [`Env::from_lookup`]; `None` only in an `Env` made by hand (see
    /// [`Env::scheduler`]).
    pub scheduler: Option<SchedulerEnv>,
    /// `ELEVATE_ESCALATE_FUNCTION`, present when the [`EnvSpec`] asked for it.
    pub escalate_function: Option<String>,
    /// `ELEVATE_SLACK_SECRET_ARN`
    pub slack_secret_arn: String,
    /// `SLACK_API_URL` without a trailing `/`, default [`DEFAULT_SLACK_API_URL`].
    pub slack_api_url: String,
    /// `ELEVATE_CONFIG_PATH`: read elevate.toml from here instead of the embedded copy.
    pub config_path: Option<PathBuf>,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else the executable's name: the principal
    /// of the audit events of elevate's own steps.
    pub function_name: String,
}

impl Env {
    /// Reads the process environment. An empty variable counts as unset.
    pub fn from_env(spec: EnvSpec) -> Result<Env, EnvError> {
        Env::from_lookup(spec, |name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass a map).
    pub fn from_lookup(
        spec: EnvSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Env, EnvError> {
        let optional = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &'static str| optional(name).ok_or(EnvError::Missing(name));

        let table = required("ELEVATE_TABLE")?;
        let scheduler = Some(SchedulerEnv {
            group: required("ELEVATE_SCHEDULE_GROUP")?,
            role_arn: required("ELEVATE_SCHEDULER_ROLE_ARN")?,
            revoke_function_arn: required("ELEVATE_REVOKE_FUNCTION_ARN")?,
            dlq_arn: optional("ELEVATE_SCHEDULE_DLQ_ARN"),
        });
        let escalate_function = if spec.escalate_function {
            Some(required("ELEVATE_ESCALATE_FUNCTION")?)
        } else {
            None
        };
        let slack_secret_arn = required("ELEVATE_SLACK_SECRET_ARN")?;
        let slack_api_url = optional("SLACK_API_URL")
            .unwrap_or_else(|| DEFAULT_SLACK_API_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(slack_api_url.starts_with("https://") || slack_api_url.starts_with("http://")) {
            return Err(EnvError::Invalid {
                name: "SLACK_API_URL",
                message: format!("`{slack_api_url}` is not an http(s) URL"),
            });
        }
        let config_path = optional("ELEVATE_CONFIG_PATH").map(PathBuf::from);
        let function_name = function_name(&lookup);

        Ok(Env {
            table,
            scheduler,
            escalate_function,
            slack_secret_arn,
            slack_api_url,
            config_path,
            function_name,
        })
    }

    /// The scheduler variables, or the error naming the first of them (when an `Env` made by
    /// hand has none).
    pub fn scheduler(&self) -> Result<&SchedulerEnv, EnvError> {
        self.scheduler
            .as_ref()
            .ok_or(EnvError::Missing("ELEVATE_SCHEDULE_GROUP"))
    }

    /// `ELEVATE_ESCALATE_FUNCTION`, or the error naming it.
    pub fn escalate_function(&self) -> Result<&str, EnvError> {
        self.escalate_function
            .as_deref()
            .ok_or(EnvError::Missing("ELEVATE_ESCALATE_FUNCTION"))
    }
}

/// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda), else the executable's name.
fn function_name(lookup: &impl Fn(&str) -> Option<String>) -> String {
    lookup("AWS_LAMBDA_FUNCTION_NAME")
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|path| path.file_stem()?.to_str().map(str::to_owned))
                .unwrap_or_else(|| "elevate".to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("ELEVATE_TABLE", "elevate"),
            ("ELEVATE_SCHEDULE_GROUP", "elevate"),
            (
                "ELEVATE_SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/elevate-scheduler",
            ),
            (
                "ELEVATE_REVOKE_FUNCTION_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke",
            ),
            ("ELEVATE_ESCALATE_FUNCTION", "elevate-escalate"),
            (
                "ELEVATE_SLACK_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:elevate-slack",
            ),
        ])
    }

    fn read(spec: EnvSpec, vars: &HashMap<&'static str, &'static str>) -> Result<Env, EnvError> {
        Env::from_lookup(spec, |name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_absent() {
        let env = read(EnvSpec::ESCALATE, &full()).expect("env");
        assert_eq!(env.table, "elevate");
        assert_eq!(env.slack_api_url, DEFAULT_SLACK_API_URL);
        assert_eq!(env.config_path, None);
        let scheduler = env.scheduler().expect("scheduler");
        assert_eq!(scheduler.group, "elevate");
        assert_eq!(scheduler.dlq_arn, None);
        assert_eq!(env.escalate_function, None);
        assert_eq!(
            env.escalate_function(),
            Err(EnvError::Missing("ELEVATE_ESCALATE_FUNCTION"))
        );
    }

    #[test]
    fn optional_variables_are_read() {
        let mut vars = full();
        vars.insert("SLACK_API_URL", "http://127.0.0.1:9001/api/");
        vars.insert("ELEVATE_SCHEDULE_DLQ_ARN", "arn:aws:sqs:us-east-1:1:dlq");
        vars.insert("ELEVATE_CONFIG_PATH", "/etc/elevate.toml");
        let env = read(EnvSpec::REVOKE, &vars).expect("env");
        assert_eq!(env.slack_api_url, "http://127.0.0.1:9001/api");
        assert_eq!(
            env.scheduler().expect("scheduler").dlq_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:1:dlq")
        );
        assert_eq!(env.config_path, Some(PathBuf::from("/etc/elevate.toml")));
    }

    #[test]
    fn a_missing_variable_is_named() {
        for (spec, name) in [
            (EnvSpec::REQUEST, "ELEVATE_TABLE"),
            (EnvSpec::REQUEST, "ELEVATE_SCHEDULE_GROUP"),
            (EnvSpec::ESCALATE, "ELEVATE_SCHEDULER_ROLE_ARN"),
            (EnvSpec::REVOKE, "ELEVATE_REVOKE_FUNCTION_ARN"),
            (EnvSpec::APPROVE, "ELEVATE_ESCALATE_FUNCTION"),
            (EnvSpec::APPROVE, "ELEVATE_SCHEDULE_GROUP"),
            (EnvSpec::REVOKE, "ELEVATE_ESCALATE_FUNCTION"),
            (EnvSpec::APPROVE, "ELEVATE_SLACK_SECRET_ARN"),
        ] {
            let mut vars = full();
            vars.remove(name);
            let err = read(spec, &vars).expect_err(name);
            assert_eq!(err, EnvError::Missing(name));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        let mut vars = full();
        vars.insert("ELEVATE_TABLE", "  ");
        vars.insert("ELEVATE_SCHEDULE_DLQ_ARN", "");
        assert_eq!(
            read(EnvSpec::REQUEST, &vars),
            Err(EnvError::Missing("ELEVATE_TABLE"))
        );
    }

    #[test]
    fn escalate_needs_no_escalate_function_and_request_does() {
        let mut vars = full();
        vars.remove("ELEVATE_ESCALATE_FUNCTION");
        let env = read(EnvSpec::ESCALATE, &vars).expect("env");
        assert!(env.escalate_function().is_err());
        assert!(env.scheduler().is_ok());
        // An auto-approved request is escalated by the request function.
        assert_eq!(
            read(EnvSpec::REQUEST, &vars),
            Err(EnvError::Missing("ELEVATE_ESCALATE_FUNCTION"))
        );
    }

    #[test]
    fn every_function_requires_the_scheduler_variables() {
        for name in [
            "ELEVATE_SCHEDULE_GROUP",
            "ELEVATE_SCHEDULER_ROLE_ARN",
            "ELEVATE_REVOKE_FUNCTION_ARN",
        ] {
            let mut vars = full();
            vars.remove(name);
            for spec in [
                EnvSpec::REQUEST,
                EnvSpec::APPROVE,
                EnvSpec::ESCALATE,
                EnvSpec::REVOKE,
            ] {
                assert_eq!(read(spec, &vars), Err(EnvError::Missing(name)), "{spec:?}");
            }
        }
    }

    #[test]
    fn the_archive_needs_its_bucket_and_the_table_only() {
        let vars = HashMap::from([
            ("ELEVATE_TABLE", "elevate"),
            ("ELEVATE_ARCHIVE_BUCKET", "elevate-archive-123"),
            ("AWS_LAMBDA_FUNCTION_NAME", "elevate-archive"),
        ]);
        let read = |vars: &HashMap<&str, &str>| {
            ArchiveEnv::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
        };
        let env = read(&vars).expect("env");
        assert_eq!(
            env,
            ArchiveEnv {
                table: "elevate".into(),
                bucket: "elevate-archive-123".into(),
                prefix: String::new(),
                function_name: "elevate-archive".into(),
            }
        );

        let mut with_prefix = vars.clone();
        with_prefix.insert("ELEVATE_ARCHIVE_PREFIX", "/prod/audit/");
        assert_eq!(read(&with_prefix).expect("env").prefix, "prod/audit");

        for name in ["ELEVATE_TABLE", "ELEVATE_ARCHIVE_BUCKET"] {
            let mut without = vars.clone();
            without.insert(name, " ");
            assert_eq!(read(&without), Err(EnvError::Missing(name)));
        }
        for (name, bad) in [
            ("ELEVATE_ARCHIVE_BUCKET", "s3://elevate-archive"),
            ("ELEVATE_ARCHIVE_PREFIX", "prod//audit"),
        ] {
            let mut vars = vars.clone();
            vars.insert(name, bad);
            let err = read(&vars).expect_err(bad);
            assert!(
                matches!(&err, EnvError::Invalid { name: named, .. } if *named == name),
                "{err}"
            );
        }
    }

    #[test]
    fn a_slack_url_that_is_not_a_url_is_refused() {
        let mut vars = full();
        vars.insert("SLACK_API_URL", "slack.com/api");
        let err = read(EnvSpec::REQUEST, &vars).expect_err("invalid");
        assert!(matches!(
            err,
            EnvError::Invalid {
                name: "SLACK_API_URL",
                ..
            }
        ));
    }
}
