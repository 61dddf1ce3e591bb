//! Cold init of the real function binaries: each is started with the environment a Lambda
//! gives it (docs/contracts.md's variables pointing at the stack's moto, the `AWS_LAMBDA_*`
//! ones, `AWS_LAMBDA_RUNTIME_API` at a tiny Runtime API stand-in served here), and timed from
//! process start to its first `GET /2018-06-01/runtime/invocation/next`: the moment it is ready
//! for its first event. That includes reading the Slack secret from (moto's) Secrets Manager,
//! as a real cold start does.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::client::REGION;
use crate::config::GROUP;
use crate::stack::StackInfo;
use crate::stats::percentile;

/// How long one start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stand-in heard from the function being started.
#[derive(Debug)]
enum Heard {
    Next(Instant),
    InitError(String),
}

/// A Lambda Runtime API that only listens: it notes the first `next` and holds it open.
struct RuntimeApi {
    addr: std::net::SocketAddr,
    heard: mpsc::UnboundedReceiver<Heard>,
    stop: watch::Sender<bool>,
}

impl RuntimeApi {
    async fn start() -> std::io::Result<RuntimeApi> {
        let (tx, heard) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let tx = Arc::new(tx);
        let app = Router::new()
            .route(
                "/2018-06-01/runtime/invocation/next",
                get(
                    |State((tx, mut stopped)): State<(
                        Arc<mpsc::UnboundedSender<Heard>>,
                        watch::Receiver<bool>,
                    )>| async move {
                        let _ = tx.send(Heard::Next(Instant::now()));
                        // Never answered: the function stays ready until it is stopped.
                        let _ = stopped.changed().await;
                        ""
                    },
                ),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(
                    |State((tx, _)): State<(
                        Arc<mpsc::UnboundedSender<Heard>>,
                        watch::Receiver<bool>,
                    )>,
                     body: Bytes| async move {
                        let _ = tx.send(Heard::InitError(
                            String::from_utf8_lossy(&body).into_owned(),
                        ));
                        axum::Json(serde_json::json!({"status": "OK"}))
                    },
                ),
            )
            .with_state((tx, stopped.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut shutdown = stopped;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.changed().await;
                })
                .await;
        });
        Ok(RuntimeApi { addr, heard, stop })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The environment of one function, as Lambda and template.yaml would set it.
pub fn lambda_env(
    function: &str,
    info: &StackInfo,
    slack_secret_arn: &str,
    runtime_api: &str,
) -> BTreeMap<String, String> {
    let account = elevate_local::identity::MOTO_ACCOUNT_ID;
    let vars = [
        ("ELEVATE_TABLE", info.table.clone()),
        ("ELEVATE_SCHEDULE_GROUP", info.schedule_group.clone()),
        (
            "ELEVATE_SCHEDULER_ROLE_ARN",
            format!("arn:aws:iam::{account}:role/elevate-scheduler"),
        ),
        (
            "ELEVATE_REVOKE_FUNCTION_ARN",
            format!("arn:aws:lambda:{REGION}:{account}:function:elevate-revoke"),
        ),
        ("ELEVATE_ESCALATE_FUNCTION", "elevate-escalate".to_owned()),
        ("ELEVATE_SLACK_SECRET_ARN", slack_secret_arn.to_owned()),
        ("SLACK_API_URL", info.slack_api_url.clone()),
        ("EXAMPLE_TARGET_GROUP", GROUP.to_owned()),
        ("AWS_ENDPOINT_URL", info.moto_endpoint.clone()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/25/[$LATEST]0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The cold starts of one function.
#[derive(Debug, Clone, Serialize)]
pub struct InitResult {
    pub function: String,
    pub samples_ms: Vec<f64>,
    pub median_ms: Option<f64>,
    /// Why a start failed (init error, exit, timeout), if one did.
    pub error: Option<String>,
}

/// Starts `binary` `starts` times (after one start not counted, which brings it into the page
/// cache) and times each until it asks for its first event.
pub async fn cold_init(
    function: &str,
    binary: &Path,
    info: &StackInfo,
    slack_secret_arn: &str,
    starts: usize,
) -> InitResult {
    let mut result = InitResult {
        function: function.to_owned(),
        samples_ms: Vec::new(),
        median_ms: None,
        error: None,
    };
    let mut api = match RuntimeApi::start().await {
        Ok(api) => api,
        Err(err) => {
            result.error = Some(format!("cannot serve the Runtime API: {err}"));
            return result;
        }
    };
    let env = lambda_env(function, info, slack_secret_arn, &api.addr.to_string());
    for round in 0..=starts {
        match start_once(binary, &env, &mut api.heard).await {
            Ok(elapsed) if round > 0 => result.samples_ms.push(elapsed.as_secs_f64() * 1000.0),
            Ok(_) => {}
            Err(err) => {
                result.error = Some(err);
                break;
            }
        }
    }
    if !result.samples_ms.is_empty() {
        let mut sorted = result.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        result.median_ms = Some(percentile(&sorted, 50.0));
    }
    result
}

async fn start_once(
    binary: &Path,
    env: &BTreeMap<String, String>,
    heard: &mut mpsc::UnboundedReceiver<Heard>,
) -> Result<Duration, String> {
    while heard.try_recv().is_ok() {}
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let outcome = tokio::time::timeout(START_TIMEOUT, heard.recv()).await;
    let _ = child.kill();
    let _ = child.wait();
    match outcome {
        Ok(Some(Heard::Next(at))) => Ok(at.saturating_duration_since(started)),
        Ok(Some(Heard::InitError(body))) => Err(format!("init error: {body}")),
        Ok(None) => Err("the Runtime API stand-in stopped".to_owned()),
        Err(_) => Err(format!(
            "{} did not ask for an event within {START_TIMEOUT:?}",
            binary.display()
        )),
    }
}

/// The Slack secret the functions read at init: the stack's (from stack.json, or the one in
/// moto named like it), else one made here with the stack's token and signing secret.
pub async fn slack_secret_arn(
    info: &StackInfo,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<String, String> {
    if let Some(arn) = info.extra_str(&["slack_secret_arn", "slack_secret", "secret_arn"]) {
        return Ok(arn);
    }
    if let Ok(listed) = secrets.list_secrets().send().await {
        if let Some(arn) = listed
            .secret_list()
            .iter()
            .filter(|s| {
                s.name()
                    .is_some_and(|n| n.to_ascii_lowercase().contains("slack"))
            })
            .find_map(|s| s.arn())
        {
            return Ok(arn.to_owned());
        }
    }
    let secret = serde_json::json!({
        "bot_token": info.bot_token,
        "signing_secret": info.signing_secret,
    });
    let created = secrets
        .create_secret()
        .name("elevate-bench/slack")
        .secret_string(secret.to_string())
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
    created
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| "CreateSecret answered without an ARN".to_owned())
}

/// The machine architecture an ELF binary is for (`aarch64`, `x86-64`), from its header.
pub fn elf_machine(path: &Path) -> Option<&'static str> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine, little-endian on both targets.
    match u16::from_le_bytes([bytes[18], bytes[19]]) {
        0xB7 => Some("aarch64"),
        0x3E => Some("x86-64"),
        _ => Some("other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_architecture_of_an_elf_binary() {
        let me = std::env::current_exe().expect("test binary");
        let expected = if cfg!(target_arch = "x86_64") {
            "x86-64"
        } else if cfg!(target_arch = "aarch64") {
            "aarch64"
        } else {
            "other"
        };
        assert_eq!(elf_machine(&me), Some(expected));
        assert_eq!(elf_machine(Path::new("/nonexistent")), None);
    }
}
