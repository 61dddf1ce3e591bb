//! `elevate-local up`: moto, the tutorial's resources, the functions in process behind the API
//! routes, the Lambda Invoke API, the Scheduler pump, the table's stream pump (to the archive
//! function) and the Slack stand-in with its page, all on one loopback port (docs/contracts.md,
//! "Local stack").

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use elevate_core::config::Config;
use elevate_runtime::{ArchiveEnv, Env, EnvSpec};
use elevate_slack::standin::StandinState;
use elevate_testkit::Moto;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apigw::Gateway;
use crate::bootstrap::{self, Bootstrapped, Names, SlackCredentials};
use crate::functions::{self, ExampleTarget, Functions, InProcess};
use crate::identity_center::LocalIdentityCenter;
use crate::invoke_api::{self, InvokePolicy};
use crate::pump::{Pump, PumpConfig, PumpHandle};
use crate::slack_page::SlackPage;
use crate::streams::{KeyPrefix, StreamPump, StreamPumpConfig};

/// template.yaml's `FilterCriteria` of the archive function's stream mapping: audit events only.
const ARCHIVE_FILTER: (&str, &str) = ("sk", "EVT#");

/// What `elevate-local up` is told.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// elevate.toml, for the functions and the people.
    pub config: PathBuf,
    /// Where the AWS profiles and stack.json go.
    pub state_dir: PathBuf,
    /// The gateway's port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// moto's port on 127.0.0.1 (0: a free one).
    pub moto_port: u16,
    /// Where the functions (not the bootstrap, not the pump) send their AWS calls; moto when
    /// `None`.
    pub functions_aws_endpoint: Option<String>,
    /// Pump the table's stream to the archive function (`false`: `--no-archive-pump`, for a
    /// bench that seeds a history it does not want archived into moto's S3).
    pub archive_pump: bool,
    /// Make moto's Identity Center ready and serve `config` with its `[identity_center]` and
    /// a `prod_readonly` flow appended (see [`crate::identity_center`]).
    pub identity_center: bool,
    /// Serve `config` with the flows that show the workflow rules appended (see
    /// [`crate::workflows`]).
    pub workflows: bool,
    /// Functions (by name) that take this long before they start, when invoked through the
    /// Lambda Invoke API.
    pub function_latency: HashMap<String, Duration>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            config: PathBuf::from("infra/elevate.toml"),
            state_dir: PathBuf::from(".local"),
            port: 4000,
            moto_port: 0,
            functions_aws_endpoint: None,
            archive_pump: true,
            identity_center: false,
            workflows: false,
            function_latency: HashMap::new(),
        }
    }
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Config(#[from] elevate_runtime::ConfigLoadError),
    #[error("--functions-aws-endpoint `{0}` is not an http:// URL on this machine (127.0.0.1, ::1 or localhost): the local stack never talks to AWS")]
    NotLocal(String),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("cannot start moto: {0}")]
    Moto(String),
    #[error("cannot create the local resources in moto: {0}")]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("a function cannot start: {0}")]
    Function(String),
    #[error("--identity-center appends [identity_center] to the config it serves, and {0} has one already; leave out --identity-center or the section")]
    IdentityCenterConfigured(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One person as stack.json lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPerson {
    pub name: String,
    pub slack_id: String,
    /// The AWS profile (in `aws_config_file`) signing as them.
    pub profile: String,
}

/// `<state-dir>/stack.json`: what clients of the running stack need.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackInfo {
    pub api_url: String,
    pub slack_page: String,
    pub slack_api_url: String,
    pub moto_endpoint: String,
    pub table: String,
    pub schedule_group: String,
    /// The audit archive's bucket in moto, and the same as `s3://<bucket>` for
    /// `elevate audit verify --archive`.
    pub archive_bucket: String,
    pub archive_url: String,
    pub aws_config_file: String,
    pub aws_credentials_file: String,
    pub signing_secret: String,
    pub bot_token: String,
    pub people: Vec<StackPerson>,
    /// The elevate.toml the functions serve: `--config`, or with `--identity-center` the copy
    /// in the state directory with moto's Identity Center appended.
    #[serde(default)]
    pub config_path: String,
    /// With `--identity-center`: what was made in moto's Identity Center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_center: Option<LocalIdentityCenter>,
}

impl std::fmt::Debug for StackInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackInfo")
            .field("api_url", &self.api_url)
            .field("moto_endpoint", &self.moto_endpoint)
            .field("signing_secret", &"<redacted>")
            .field("bot_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Writes `<state_dir>/elevate.toml`: the file at `config` with `section` appended; its path.
fn serve_with(config: &Path, state_dir: &Path, section: &str) -> Result<PathBuf, UpError> {
    let served = state_dir.join("elevate.toml");
    let text = std::fs::read_to_string(config).map_err(|source| UpError::Write {
        path: config.to_path_buf(),
        source,
    })?;
    std::fs::write(&served, format!("{text}\n{section}")).map_err(|source| UpError::Write {
        path: served.clone(),
        source,
    })?;
    Ok(absolute(&served))
}

/// A running stack. [`Stack::stop`] (or dropping it) stops the gateway, the pumps and moto.
pub struct Stack {
    info: StackInfo,
    addr: SocketAddr,
    config: Config,
    bootstrapped: Bootstrapped,
    standin: StandinState,
    stack_json: PathBuf,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    pump: Option<PumpHandle>,
    stream_pump: Option<PumpHandle>,
    /// Killed on drop, after everything that talks to it.
    moto: Option<Moto>,
}

impl Stack {
    /// Starts everything and writes stack.json once the stack answers.
    pub async fn up(options: UpOptions) -> Result<Stack, UpError> {
        let mut config_path = absolute(&options.config);
        let mut config = elevate_runtime::load_config_from(Some(&config_path))?;
        if options.identity_center && config.identity_center.is_some() {
            return Err(UpError::IdentityCenterConfigured(config_path));
        }
        if let Some(endpoint) = &options.functions_aws_endpoint {
            if !is_loopback_url(endpoint) {
                return Err(UpError::NotLocal(endpoint.clone()));
            }
        }
        std::fs::create_dir_all(&options.state_dir).map_err(|source| UpError::Write {
            path: options.state_dir.clone(),
            source,
        })?;
        // Appended first: the people and groups they add are made in moto like the file's.
        if options.workflows {
            config_path = serve_with(
                &config_path,
                &options.state_dir,
                &crate::workflows::config_section(),
            )?;
            config = elevate_runtime::load_config_from(Some(&config_path))?;
        }
        let stack_json = options.state_dir.join("stack.json");
        // A stale file would say a stack runs that does not.
        let _ = std::fs::remove_file(&stack_json);

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|source| UpError::Listen {
                port: options.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| UpError::Listen {
            port: options.port,
            source,
        })?;
        let base_url = format!("http://{addr}");

        let moto = Moto::start_on(options.moto_port)
            .await
            .map_err(UpError::Moto)?;
        let moto_endpoint = moto.endpoint().to_owned();
        tracing::info!(endpoint = %moto_endpoint, "moto started");
        let aws = sdk_config(&moto_endpoint, None);

        let names = Names::default();
        let slack = SlackCredentials::generate();
        let aws_dir = options.state_dir.join("aws");
        let bootstrapped =
            bootstrap::bootstrap(&aws, &moto_endpoint, &config, &names, &slack, &aws_dir).await?;
        tracing::info!("local resources created in moto");
        let identity_center = if options.identity_center {
            let center = crate::identity_center::provision(&aws, &config).await?;
            config_path = serve_with(&config_path, &options.state_dir, &center.config_section())?;
            config = elevate_runtime::load_config_from(Some(&config_path))?;
            tracing::info!(config = %config_path.display(), permission_set = %center.permission_set_arn, "Identity Center ready in moto");
            Some(center)
        } else {
            None
        };

        // The functions reach AWS like in Lambda, except that Lambda is this gateway.
        let functions_endpoint = options
            .functions_aws_endpoint
            .clone()
            .unwrap_or_else(|| moto_endpoint.clone());
        let functions_sdk = sdk_config(&functions_endpoint, Some(&base_url));
        let env = FunctionEnv {
            vars: function_variables(&names, &bootstrapped, &base_url, &config_path),
        };
        let functions = start_functions(&env, &functions_sdk).await?;
        let signing_secret = functions.slack.signing_secret.clone();
        let dispatcher = Arc::new(InProcess::new(functions));

        let standin = StandinState::new(slack.bot_token.clone());
        let page = SlackPage::new(
            standin.clone(),
            &config,
            signing_secret,
            format!("{base_url}/slack/interactions"),
        );
        let gateway = Gateway::new(Arc::new(bootstrapped.users.clone()), dispatcher.clone());
        let policy = InvokePolicy {
            on_failure: HashMap::from([(
                functions::ESCALATE.to_owned(),
                functions::REVOKE.to_owned(),
            )]),
            latency: options.function_latency.clone(),
            ..InvokePolicy::default()
        };
        let router = invoke_api::router_with(dispatcher.clone(), policy)
            .merge(elevate_slack::standin::router(standin.clone()))
            .merge(page.router())
            .merge(gateway.router());
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = served {
                tracing::error!(%error, "the gateway stopped");
            }
        });

        let pump = Pump::new(
            aws_sdk_scheduler::Client::new(&aws),
            dispatcher.clone(),
            PumpConfig::new(names.schedule_group.clone()),
        )
        .spawn();
        let (attribute, prefix) = ARCHIVE_FILTER;
        let stream_pump = options.archive_pump.then(|| {
            StreamPump::new(
                aws_sdk_dynamodb::Client::new(&aws),
                aws_sdk_dynamodbstreams::Client::new(&aws),
                dispatcher,
                StreamPumpConfig::new(names.table.clone(), functions::ARCHIVE)
                    .with_filter(KeyPrefix::new(attribute, prefix)),
            )
            .spawn()
        });

        let aws_config_file = aws_dir.join("config");
        let aws_credentials_file = aws_dir.join("credentials");
        let info = StackInfo {
            api_url: base_url.clone(),
            slack_page: format!("{base_url}/slack"),
            slack_api_url: format!("{base_url}/api"),
            moto_endpoint,
            table: names.table.clone(),
            schedule_group: names.schedule_group.clone(),
            archive_bucket: names.archive_bucket.clone(),
            archive_url: format!("s3://{}", names.archive_bucket),
            aws_config_file: aws_config_file.display().to_string(),
            aws_credentials_file: aws_credentials_file.display().to_string(),
            signing_secret: slack.signing_secret.clone(),
            bot_token: slack.bot_token.clone(),
            people: config
                .people
                .iter()
                .map(|p| StackPerson {
                    name: p.name.to_string(),
                    slack_id: p.slack_id.clone(),
                    profile: p.name.to_string(),
                })
                .collect(),
            config_path: config_path.display().to_string(),
            identity_center,
        };
        let stack = Stack {
            info,
            addr,
            config,
            bootstrapped,
            standin,
            stack_json,
            stop_server: Some(stop_server),
            server: Some(server),
            pump: Some(pump),
            stream_pump,
            moto: Some(moto),
        };
        stack.write_stack_json()?;
        Ok(stack)
    }

    fn write_stack_json(&self) -> Result<(), UpError> {
        let path = &self.stack_json;
        let fail = |source| UpError::Write {
            path: path.clone(),
            source,
        };
        let text =
            serde_json::to_string_pretty(&self.info).map_err(|e| fail(std::io::Error::other(e)))?;
        // Written aside and renamed, so a reader never sees half a file.
        let partial = path.with_extension("json.partial");
        write_private(&partial, &text).map_err(fail)?;
        std::fs::rename(&partial, path).map_err(fail)
    }

    pub fn info(&self) -> &StackInfo {
        &self.info
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn bootstrapped(&self) -> &Bootstrapped {
        &self.bootstrapped
    }

    pub fn standin(&self) -> &StandinState {
        &self.standin
    }

    pub fn stack_json(&self) -> &Path {
        &self.stack_json
    }

    /// Stops the pumps and the gateway (letting open requests finish), then moto, and removes
    /// stack.json.
    pub async fn stop(mut self) {
        if let Some(pump) = self.pump.take() {
            pump.stop().await;
        }
        if let Some(pump) = self.stream_pump.take() {
            pump.stop().await;
        }
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(5), server)
                .await
                .is_err()
            {
                tracing::warn!("open connections did not finish within 5 s; stopping anyway");
            }
        }
        self.moto.take();
        let _ = std::fs::remove_file(&self.stack_json);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.pump.take();
        self.stream_pump.take();
        self.moto.take();
        if self.stack_json.exists() {
            let _ = std::fs::remove_file(&self.stack_json);
        }
    }
}

/// The variables a Lambda of template.yaml would get, by name.
struct FunctionEnv {
    vars: HashMap<&'static str, String>,
}

impl FunctionEnv {
    fn read(&self, spec: EnvSpec) -> Result<Env, UpError> {
        Env::from_lookup(spec, |name| self.vars.get(name).cloned())
            .map_err(|e| UpError::Function(e.to_string()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

fn function_variables(
    names: &Names,
    bootstrapped: &Bootstrapped,
    base_url: &str,
    config_path: &Path,
) -> HashMap<&'static str, String> {
    HashMap::from([
        ("ELEVATE_TABLE", names.table.clone()),
        ("ELEVATE_SCHEDULE_GROUP", names.schedule_group.clone()),
        (
            "ELEVATE_SCHEDULER_ROLE_ARN",
            bootstrapped.scheduler_role_arn.clone(),
        ),
        (
            "ELEVATE_REVOKE_FUNCTION_ARN",
            functions::function_arn(functions::REVOKE),
        ),
        (
            "ELEVATE_ESCALATE_FUNCTION",
            functions::function_arn(functions::ESCALATE),
        ),
        (
            "ELEVATE_SLACK_SECRET_ARN",
            bootstrapped.slack_secret_arn.clone(),
        ),
        ("SLACK_API_URL", format!("{base_url}/api")),
        ("ELEVATE_CONFIG_PATH", config_path.display().to_string()),
        ("ELEVATE_ARCHIVE_BUCKET", names.archive_bucket.clone()),
        (
            "EXAMPLE_TARGET_GROUP",
            bootstrap::CUSTOM_TARGET_GROUP.to_owned(),
        ),
    ])
}

/// Each function's cold start, as `elevate_runtime::start` does it, but from `env` instead of
/// the process environment.
async fn start_functions(env: &FunctionEnv, sdk: &SdkConfig) -> Result<Functions, UpError> {
    let fail =
        |function: &str, e: &dyn std::fmt::Display| UpError::Function(format!("{function}: {e}"));
    let app = |function: &'static str, spec: EnvSpec| async move {
        let mut env = env.read(spec)?;
        // As AWS_LAMBDA_FUNCTION_NAME would tell each function on Lambda.
        env.function_name = function.to_owned();
        let config = elevate_runtime::load_config(&env).map_err(|e| fail(function, &e))?;
        let slack = elevate_runtime::slack_secrets(sdk, &env.slack_secret_arn)
            .await
            .map_err(|e| fail(function, &e))?;
        let app = elevate_runtime::build_app(&env, config, sdk, &slack)
            .map_err(|e| fail(function, &e))?;
        Ok::<_, UpError>((app, slack, env.slack_api_url))
    };
    let (request, ..) = app(functions::REQUEST, EnvSpec::REQUEST).await?;
    let (approve, slack, slack_api_url) = app(functions::APPROVE, EnvSpec::APPROVE).await?;
    let (escalate, ..) = app(functions::ESCALATE, EnvSpec::ESCALATE).await?;
    let (revoke, ..) = app(functions::REVOKE, EnvSpec::REVOKE).await?;
    let group = env.get("EXAMPLE_TARGET_GROUP").ok_or_else(|| {
        fail(
            functions::EXAMPLE_TARGET,
            &"EXAMPLE_TARGET_GROUP is not set",
        )
    })?;
    Ok(Functions {
        request,
        approve,
        slack: elevate_approve::Slack {
            signing_secret: slack.signing_secret,
            views: Box::new(
                elevate_slack::SlackNotifier::new(slack_api_url, slack.bot_token)
                    .with_timeout(elevate_approve::VIEWS_TIMEOUT),
            ),
        },
        escalate,
        revoke,
        example_target: ExampleTarget {
            iam: aws_sdk_iam::Client::new(sdk),
            group: group.to_owned(),
        },
        example_hook: elevate_example_hook::OnCall::bundled()
            .map_err(|e| fail(functions::EXAMPLE_HOOK, &e))?,
        archive: archiver(env, sdk)?,
    })
}

/// The archive function's cold start, as `elevate_runtime::start_archive` does it: its own
/// environment (the table and the bucket; no flows, no Slack).
fn archiver(env: &FunctionEnv, sdk: &SdkConfig) -> Result<elevate_archive::Archiver, UpError> {
    let mut archive_env = ArchiveEnv::from_lookup(|name| env.get(name).map(str::to_owned))
        .map_err(|e| UpError::Function(format!("{}: {e}", functions::ARCHIVE)))?;
    archive_env.function_name = functions::ARCHIVE.to_owned();
    let parts = elevate_runtime::build_archive(&archive_env, sdk);
    Ok(elevate_archive::Archiver::from_parts(parts))
}

/// Points Lambda clients at the gateway, the way `AWS_ENDPOINT_URL_LAMBDA` does.
#[derive(Debug)]
struct LambdaEndpoint(String);

impl LoadServiceConfig for LambdaEndpoint {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        (key.service_id() == "Lambda" && key.env() == "AWS_ENDPOINT_URL").then(|| self.0.clone())
    }
}

/// An SDK config talking to `endpoint` (Lambda to `lambda_endpoint` when given) with dummy
/// credentials in us-east-1. Nothing is read from the environment or the user's profiles, so
/// no call can leave this machine.
pub fn sdk_config(endpoint: &str, lambda_endpoint: Option<&str>) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "elevate-local");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(bootstrap::REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint);
    if let Some(lambda) = lambda_endpoint {
        builder = builder.service_config(LambdaEndpoint(lambda.to_owned()));
    }
    builder.build()
}

/// Whether `url` is `http://` to a loopback address.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        for local in [
            "http://127.0.0.1:5000",
            "http://127.0.0.1:5000/",
            "http://localhost:1",
            "http://[::1]:8080",
            "http://127.1.2.3:9",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "https://127.0.0.1:5000",
            "http://10.0.0.1:5000",
            "http://example.com",
            "http://127.0.0.1@example.com",
            "127.0.0.1:5000",
            "http://dynamodb.us-east-1.amazonaws.com",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }

    #[test]
    fn debug_hides_the_secrets() {
        let info = StackInfo {
            api_url: "http://127.0.0.1:4000".into(),
            slack_page: String::new(),
            slack_api_url: String::new(),
            moto_endpoint: String::new(),
            table: String::new(),
            schedule_group: String::new(),
            archive_bucket: String::new(),
            archive_url: String::new(),
            aws_config_file: String::new(),
            aws_credentials_file: String::new(),
            signing_secret: "very-secret".into(),
            bot_token: "xoxb-secret".into(),
            people: Vec::new(),
            config_path: String::new(),
            identity_center: None,
        };
        let shown = format!("{info:?}");
        assert!(!shown.contains("secret\""), "{shown}");
        assert!(!shown.contains("very-secret") && !shown.contains("xoxb-secret"));
    }
}
