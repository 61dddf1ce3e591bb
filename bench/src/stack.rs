//! One local stack (`elevate-local up`) for one bench or test: started on free ports with the
//! bench's elevate.toml in a state directory of its own, read back from `stack.json`, and
//! stopped with SIGTERM (so it stops its moto too) when dropped.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::binaries;
use crate::config::BenchConfig;

/// How long provisioning may take: one IAM user and key per person through a moto that
/// answers one request at a time.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Build(#[from] binaries::BuildError),
    #[error("cannot prepare the state directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("elevate-local exited before it was ready ({status}); its log ends with:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "elevate-local was not ready after {0:?} (no usable stack.json); its log ends with:\n{1}"
    )]
    NotReady(Duration, String),
    #[error("stack.json is not what docs/contracts.md describes: {0}")]
    BadStackJson(String),
    #[error("no credentials for {0} in the stack's credentials file")]
    NoCredentials(String),
}

/// One person of `stack.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StackPerson {
    pub name: String,
    pub slack_id: String,
    pub profile: String,
}

/// `stack.json` (docs/contracts.md, "Local stack"); fields it may add are kept in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub api_url: String,
    pub slack_page: String,
    pub slack_api_url: String,
    pub moto_endpoint: String,
    pub table: String,
    pub schedule_group: String,
    pub aws_config_file: String,
    pub aws_credentials_file: String,
    pub signing_secret: String,
    pub bot_token: String,
    pub people: Vec<StackPerson>,
    #[serde(flatten)]
    pub extra: HashMap<String, serde_json::Value>,
}

impl StackInfo {
    /// A string field beyond the documented ones (e.g. the Slack secret's ARN), if present.
    pub fn extra_str(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|name| self.extra.get(*name).and_then(|v| v.as_str()))
            .map(str::to_owned)
    }
}

/// A person's access key, from the credentials file the stack wrote.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Reads `[profile]` sections of an AWS credentials file.
pub fn parse_credentials(text: &str) -> HashMap<String, Keys> {
    let mut out = HashMap::new();
    let mut section: Option<String> = None;
    let mut id: Option<String> = None;
    let mut secret: Option<String> = None;
    let mut flush =
        |section: &Option<String>, id: &mut Option<String>, secret: &mut Option<String>| {
            if let (Some(name), Some(access_key_id), Some(secret_access_key)) =
                (section, id.take(), secret.take())
            {
                out.insert(
                    name.clone(),
                    Keys {
                        access_key_id,
                        secret_access_key,
                    },
                );
            }
        };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&section, &mut id, &mut secret);
            section = Some(name.trim().to_owned());
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_owned();
            match key.trim() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                _ => {}
            }
        }
    }
    flush(&section, &mut id, &mut secret);
    out
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub config: BenchConfig,
    /// `--functions-aws-endpoint`: the functions reach AWS through this (a fault proxy).
    pub functions_aws_endpoint: Option<String>,
    /// `--moto-port`: 0 picks a free one. A fault proxy must know moto's port before the stack
    /// starts, so it picks one and passes it here.
    pub moto_port: Option<u16>,
    /// `RUST_LOG` of the gateway (its log goes to `<state dir>/stack.log`); default
    /// `ELEVATE_BENCH_STACK_LOG`, else `warn`.
    pub log_filter: String,
    /// `false`: `--no-archive-pump`, the table's stream is not pumped to the archive function
    /// (the history phase seeds hundreds of thousands of events it does not want archived).
    pub archive_pump: bool,
}

impl StackOptions {
    pub fn new(config: BenchConfig) -> Self {
        StackOptions {
            config,
            functions_aws_endpoint: None,
            moto_port: None,
            log_filter: std::env::var("ELEVATE_BENCH_STACK_LOG")
                .unwrap_or_else(|_| "warn".to_owned()),
            archive_pump: true,
        }
    }
}

/// A running stack. Dropping it stops it.
#[derive(Debug)]
pub struct Stack {
    child: Option<Child>,
    /// Held open: the stack stops when it closes (`--stop-on-stdin-eof`).
    _stdin: Option<std::process::ChildStdin>,
    dir: tempfile::TempDir,
    log: PathBuf,
    pub info: StackInfo,
    keys: HashMap<String, Keys>,
    /// How long `up` took until stack.json appeared.
    pub startup: Duration,
}

impl Stack {
    /// Starts `target/debug/elevate-local up --port 0 --state-dir <tmp> --config <tmp>/elevate.toml`
    /// (building it first when missing) and waits for its `stack.json`.
    pub async fn start(options: StackOptions) -> Result<Stack, StackError> {
        let binary = binaries::ensure_local_gateway()?;
        let dir = tempfile::Builder::new()
            .prefix("elevate-bench-")
            .tempdir()?;
        let config = dir.path().join("elevate.toml");
        std::fs::write(&config, options.config.toml())?;
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state)?;
        let log = dir.path().join("stack.log");
        let out = File::create(&log)?;
        let err = out.try_clone()?;

        let mut command = Command::new(&binary);
        command
            .arg("up")
            .arg("--port")
            .arg("0")
            .arg("--moto-port")
            .arg(options.moto_port.unwrap_or(0).to_string())
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            // Whatever way the bench exits, the closed pipe stops the stack and its moto.
            .arg("--stop-on-stdin-eof");
        if let Some(endpoint) = &options.functions_aws_endpoint {
            command.arg("--functions-aws-endpoint").arg(endpoint);
        }
        if !options.archive_pump {
            command.arg("--no-archive-pump");
        }
        command
            .env("RUST_LOG", &options.log_filter)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        let started = Instant::now();
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let mut stack = Stack {
            child: Some(child),
            _stdin: stdin,
            dir,
            log,
            info: placeholder_info(),
            keys: HashMap::new(),
            startup: Duration::ZERO,
        };
        let stack_json = state.join("stack.json");
        loop {
            if let Some(status) = stack.exited() {
                return Err(StackError::Exited {
                    status,
                    log: stack.log_tail(),
                });
            }
            if let Ok(text) = std::fs::read_to_string(&stack_json) {
                if let Ok(info) = serde_json::from_str::<StackInfo>(&text) {
                    stack.info = info;
                    break;
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(StackError::NotReady(READY_TIMEOUT, stack.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack.startup = started.elapsed();
        let credentials_path = stack.resolve(&stack.info.aws_credentials_file);
        let text = std::fs::read_to_string(&credentials_path)?;
        stack.keys = parse_credentials(&text);
        Ok(stack)
    }

    /// A path of stack.json, relative ones taken from the state directory's parent.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() || path.exists() {
            path.to_path_buf()
        } else {
            self.dir.path().join("state").join(path)
        }
    }

    /// The access key the stack issued to `person`.
    pub fn keys(&self, person: &str) -> Result<&Keys, StackError> {
        let profile = self
            .info
            .people
            .iter()
            .find(|p| p.name == person)
            .map_or(person, |p| p.profile.as_str());
        self.keys
            .get(profile)
            .ok_or_else(|| StackError::NoCredentials(person.to_owned()))
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    /// SIGTERM, so the gateway stops its moto too; SIGKILL if it does not exit in time.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        eprintln!("elevate-bench: elevate-local did not stop on SIGTERM; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
        // A failing test keeps the stack's log and state for whoever investigates.
        if std::thread::panicking() {
            let kept = self.dir.path().to_path_buf();
            if let Ok(dir) = tempfile::TempDir::new() {
                let dir = std::mem::replace(&mut self.dir, dir);
                let _ = dir.keep();
                eprintln!(
                    "elevate-bench: the stack's log and state are kept in {}",
                    kept.display()
                );
            }
        }
    }
}

/// A port free on 127.0.0.1 right now (for a server started by someone else).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn placeholder_info() -> StackInfo {
    StackInfo {
        api_url: String::new(),
        slack_page: String::new(),
        slack_api_url: String::new(),
        moto_endpoint: String::new(),
        table: String::new(),
        schedule_group: String::new(),
        aws_config_file: String::new(),
        aws_credentials_file: String::new(),
        signing_secret: String::new(),
        bot_token: String::new(),
        people: Vec::new(),
        extra: HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credentials_file_the_stack_writes() {
        let text = "# Written by elevate-local: local (moto) keys, not real AWS keys.\n\n\
                    [alice]\naws_access_key_id = AKIAALICE\naws_secret_access_key = s3cr3t\n\n\
                    [bob]\naws_access_key_id = AKIABOB\naws_secret_access_key = other\n";
        let keys = parse_credentials(text);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["alice"].access_key_id, "AKIAALICE");
        assert_eq!(keys["alice"].secret_access_key, "s3cr3t");
        assert_eq!(keys["bob"].access_key_id, "AKIABOB");
        assert!(!format!("{:?}", keys["bob"]).contains("other"));
    }

    #[test]
    fn reads_the_documented_stack_json() {
        let text = r#"{
          "api_url": "http://127.0.0.1:4000",
          "slack_page": "http://127.0.0.1:4000/slack",
          "slack_api_url": "http://127.0.0.1:4000/api",
          "moto_endpoint": "http://127.0.0.1:5000",
          "table": "elevate-local",
          "schedule_group": "elevate-local",
          "aws_config_file": ".local/aws/config",
          "aws_credentials_file": ".local/aws/credentials",
          "signing_secret": "s",
          "bot_token": "b",
          "people": [{"name": "alice", "slack_id": "U0ALICE01", "profile": "alice"}],
          "slack_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
        }"#;
        let info: StackInfo = serde_json::from_str(text).expect("stack.json");
        assert_eq!(info.people[0].profile, "alice");
        assert_eq!(
            info.extra_str(&["slack_secret_arn"]).as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
        );
    }
}
