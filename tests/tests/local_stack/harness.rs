//! The real binaries against a real local stack: `elevate-local up` started as a child process
//! (on free ports, in a temporary state dir, stopped when the harness lets go of it), and the
//! `elevate` CLI run as its users do, with the profiles the stack wrote.
//!
//! The binaries are built once per test binary with `cargo build --workspace --all-targets`
//! (through `$CARGO`, the cargo running the tests, into the same target directory), so
//! `cargo test -p elevate-tests` alone tests the current code of both. It is the feature set
//! `make test` builds with, so after `cargo test --workspace --all-targets` it has nothing to
//! compile; a narrower build (`-p elevate-local`) would compile every dependency a second time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The build that brings the binaries up to date; bench/src/binaries.rs builds the same way.
const BUILD: &[&str] = &["build", "--quiet", "--workspace", "--all-targets"];

/// How long the stack may take to start (moto, the bootstrap, the first build of the functions'
/// clients) on a small, busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The flows and people of these tests: infra_access grants the tutorial's SymDemoAdmins for at
/// most an hour (seconds are fine); every test asks as its own person, so tests running at the
/// same time never share a membership. alice, bob and carol approve; bob is the auditor.
pub const CONFIG: &str = r#"
auditors = ["bob"]

[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@healthy-health.example"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@healthy-health.example"

[[people]]
name = "carol"
iam_user = "carol"
slack_id = "U0CAROL01"
email = "carol@healthy-health.example"

[[people]]
name = "dave"
iam_user = "dave"
slack_id = "U0DAVE001"
email = "dave@healthy-health.example"

[[people]]
name = "erin"
iam_user = "erin"
slack_id = "U0ERIN001"
email = "erin@healthy-health.example"

[[people]]
name = "frank"
iam_user = "frank"
slack_id = "U0FRANK01"
email = "frank@healthy-health.example"

[[people]]
name = "grace"
iam_user = "grace"
slack_id = "U0GRACE01"
email = "grace@healthy-health.example"

[[flows]]
name = "infra_access"
description = "Assume SymDemoEscalated through membership of SymDemoAdmins"
max_duration = "1h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob", "carol"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"
roles = ["SymDemoEscalated"]
"#;

pub const GROUP: &str = "SymDemoAdmins";

/// What the Slack tests add to [`CONFIG`] on a stack of their own: people no other test asks
/// as, and `billing_access`, which only heidi may request.
pub const SLACK_CONFIG_EXTRA: &str = r#"
[[people]]
name = "heidi"
iam_user = "heidi"
slack_id = "U0HEIDI01"
email = "heidi@healthy-health.example"

[[people]]
name = "ivan"
iam_user = "ivan"
slack_id = "U0IVAN001"
email = "ivan@healthy-health.example"

[[people]]
name = "judy"
iam_user = "judy"
slack_id = "U0JUDY001"
email = "judy@healthy-health.example"

[[people]]
name = "ken"
iam_user = "ken"
slack_id = "U0KEN0001"
email = "ken@healthy-health.example"

[[flows]]
name = "billing_access"
description = "Read the billing console through membership of SymDemoBilling"
max_duration = "1h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"
requesters = ["heidi"]

[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]

[[flows.targets]]
name = "billing"
type = "iam_group"
group = "SymDemoBilling"
"#;

/// The approvers' channel of both flows.
pub const APPROVALS_CHANNEL: &str = "C0APPROVALS";

/// `target/<profile>`, where the binaries are.
fn bin_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests package is in the workspace");
        // This test runs from target/<profile>/deps/.
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .to_path_buf();
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        // A jobserver inherited from a surrounding make or cargo may be gone by now.
        for name in ["MAKEFLAGS", "MFLAGS", "CARGO_MAKEFLAGS"] {
            build.env_remove(name);
        }
        build
            .args(BUILD)
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"));
        if profile != "debug" {
            build.args(["--profile", profile]);
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo {} failed", BUILD.join(" "));
        for bin in ["elevate", "elevate-local"] {
            assert!(
                dir.join(bin).is_file(),
                "{} was not built",
                dir.join(bin).display()
            );
        }
        dir
    })
}

pub fn elevate_bin() -> PathBuf {
    bin_dir().join("elevate")
}

fn elevate_local_bin() -> PathBuf {
    bin_dir().join("elevate-local")
}

/// stack.json, as docs/contracts.md defines it.
#[derive(Debug, Clone)]
pub struct StackJson(pub Value);

impl StackJson {
    pub fn str(&self, field: &str) -> &str {
        self.0[field]
            .as_str()
            .unwrap_or_else(|| panic!("stack.json has no {field}"))
    }
}

/// A running `elevate-local up`. Dropping it closes the stack's standard input, which stops it
/// (and its moto) cleanly; it is killed if it has not stopped within seconds.
pub struct LocalStack {
    child: Child,
    stdin: Option<ChildStdin>,
    pub dir: tempfile::TempDir,
    pub info: StackJson,
    pub api_url: String,
    http: reqwest::Client,
}

impl LocalStack {
    /// Starts a stack of its own with [`CONFIG`].
    pub fn start() -> LocalStack {
        LocalStack::start_with(CONFIG)
    }

    /// Starts a stack of its own with `config` as its elevate.toml.
    pub fn start_with(config_text: &str) -> LocalStack {
        LocalStack::start_with_args(config_text, &[])
    }

    /// Starts a stack of its own with [`CONFIG`] and moto's Identity Center made ready
    /// (`--identity-center`: the flow `prod_readonly` appended).
    pub fn start_identity_center() -> LocalStack {
        LocalStack::start_with_args(CONFIG, &["--identity-center"])
    }

    /// Starts a stack of its own with `config` as its elevate.toml and `extra` arguments.
    pub fn start_with_args(config_text: &str, extra: &[&str]) -> LocalStack {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("elevate.toml");
        std::fs::write(&config, config_text).expect("write elevate.toml");
        let state = dir.path().join("state");
        let log = std::fs::File::create(dir.path().join("stack.log")).expect("log file");
        let mut child = Command::new(elevate_local_bin())
            .args([
                "up",
                "--port",
                "0",
                "--moto-port",
                "0",
                "--stop-on-stdin-eof",
            ])
            .args(extra)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .env("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start elevate-local");
        let stdin = child.stdin.take();
        let stack_json = state.join("stack.json");
        let deadline = Instant::now() + START_TIMEOUT;
        let info = loop {
            if let Ok(text) = std::fs::read_to_string(&stack_json) {
                break serde_json::from_str::<Value>(&text).expect("stack.json is JSON");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "elevate-local exited ({status}) before it was ready:\n{}",
                    tail(&dir.path().join("stack.log"))
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "elevate-local was not ready within {START_TIMEOUT:?}:\n{}",
                    tail(&dir.path().join("stack.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let info = StackJson(info);
        let api_url = info.str("api_url").to_owned();
        assert!(api_url.starts_with("http://127.0.0.1:"), "{api_url}");
        LocalStack {
            child,
            stdin,
            dir,
            info,
            api_url,
            // The shared stack outlives the runtime of the test that started it: a pooled
            // connection would belong to a runtime that is gone ("dispatch task dropped"), so
            // every call opens its own.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("HTTP client"),
        }
    }

    /// The stack most tests share, started by the first that asks. It lives as long as the
    /// test process: when the process ends, the pipe to its standard input closes and it stops.
    pub fn shared() -> &'static LocalStack {
        static SHARED: OnceLock<LocalStack> = OnceLock::new();
        SHARED.get_or_init(LocalStack::start)
    }

    /// The stack the Slack tests share: [`CONFIG`] and [`SLACK_CONFIG_EXTRA`], so that their
    /// people and the flow only some may request touch no other test.
    pub fn slack_shared() -> &'static LocalStack {
        static SLACK: OnceLock<LocalStack> = OnceLock::new();
        SLACK.get_or_init(|| LocalStack::start_with(&format!("{CONFIG}{SLACK_CONFIG_EXTRA}")))
    }

    /// The stack the archive tests share: they rewrite and delete audit events of their own
    /// requests, which would fail every other test's `audit verify --archive`.
    pub fn archive_shared() -> &'static LocalStack {
        static ARCHIVE: OnceLock<LocalStack> = OnceLock::new();
        ARCHIVE.get_or_init(LocalStack::start)
    }

    pub fn log(&self) -> String {
        tail(&self.dir.path().join("stack.log"))
    }

    /// Whether the stack's whole log holds `text`.
    pub fn logged(&self, text: &str) -> bool {
        std::fs::read_to_string(self.dir.path().join("stack.log"))
            .is_ok_and(|log| log.contains(text))
    }

    /// `elevate --profile <profile> <args>` as a user runs it after `make dev`'s exports.
    pub fn elevate(&self, profile: &str, args: &[&str]) -> Command {
        let mut command = Command::new(elevate_bin());
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str() {
                if name.starts_with("AWS_") || name.starts_with("ELEVATE_") {
                    command.env_remove(name);
                }
            }
        }
        command
            .env("AWS_CONFIG_FILE", self.info.str("aws_config_file"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.info.str("aws_credentials_file"),
            )
            .env("ELEVATE_API_URL", &self.api_url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // No user config file of the machine's user.
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .arg("--profile")
            .arg(profile)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `elevate` to its end.
    pub fn run(&self, profile: &str, args: &[&str]) -> Outcome {
        let output = self.elevate(profile, args).output().expect("run elevate");
        Outcome::from(output)
    }

    /// Starts `elevate` in the background (e.g. `request --wait`).
    pub fn spawn(&self, profile: &str, args: &[&str]) -> Background {
        let child = self
            .elevate(profile, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start elevate");
        Background { child: Some(child) }
    }

    /// The SDK config of the stack's moto, to look at IAM and DynamoDB as they are.
    pub fn moto(&self) -> aws_config::SdkConfig {
        elevate_testkit::sdk_config_for(self.info.str("moto_endpoint"))
    }

    /// Invokes `function` through the stack's Lambda Invoke API (RequestResponse), as the
    /// Scheduler or another function would: its answer. A function error fails the test.
    pub async fn invoke(&self, function: &str, payload: Value) -> Value {
        let answer = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.api_url
            ))
            .json(&payload)
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke {function}: {e}"));
        let status = answer.status();
        let failed = answer.headers().contains_key("x-amz-function-error");
        let text = answer.text().await.unwrap_or_default();
        assert!(
            status.is_success() && !failed,
            "invoke {function} {payload}: {status} {text}\n{}",
            self.log()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("invoke {function}: {e}: {text}"))
    }

    /// Runs the archive function's anchor task now, as its hourly schedule does: the key of
    /// the anchor written (`None` when the last anchor already ends where this one would).
    pub async fn anchor(&self) -> Option<String> {
        let answer = self
            .invoke("elevate-archive", json!({"task": "anchor"}))
            .await;
        answer["anchor"].as_str().map(str::to_owned)
    }

    /// The stack's audit archive bucket in moto.
    pub fn archive_bucket(&self) -> &str {
        self.info.str("archive_bucket")
    }

    /// The keys of the archive bucket under `prefix`, read from moto's S3, in key order.
    pub async fn archive_keys(&self, prefix: &str) -> Vec<String> {
        let s3 = aws_sdk_s3::Client::new(&self.moto());
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(self.archive_bucket())
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .expect("ListObjectsV2 of the archive bucket");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        keys
    }

    /// The archived object at `key`, as JSON.
    pub async fn archive_object(&self, key: &str) -> Value {
        let s3 = aws_sdk_s3::Client::new(&self.moto());
        let object = s3
            .get_object()
            .bucket(self.archive_bucket())
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
        let bytes = object
            .body
            .collect()
            .await
            .expect("object body")
            .into_bytes();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
    }

    /// Waits until the archive holds at least `count` objects under `prefix`, at most
    /// `within`: their keys.
    pub async fn wait_for_archived(
        &self,
        prefix: &str,
        count: usize,
        within: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let keys = self.archive_keys(prefix).await;
            if keys.len() >= count {
                return keys;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} objects under {prefix} in the archive after {within:?}: {keys:?}\n{}",
                keys.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The audit events of request `id`, from `elevate audit export` as the auditor bob, in seq
    /// order.
    pub fn audit_events(&self, id: &str) -> Vec<elevate_core::audit::AuditEvent> {
        let export = self.run("bob", &["audit", "export"]);
        assert!(export.ok(), "audit export: {export:?}");
        let mut events: Vec<elevate_core::audit::AuditEvent> = export
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .filter(|event: &elevate_core::audit::AuditEvent| event.request_id.as_str() == id)
            .collect();
        events.sort_by_key(|event| event.seq);
        events
    }

    /// `GET /slack/messages` (every message, ephemeral ones included).
    pub async fn messages(&self) -> Vec<Value> {
        let view: Value = self
            .http
            .get(format!("{}/slack/messages", self.api_url))
            .send()
            .await
            .expect("GET /slack/messages")
            .json()
            .await
            .expect("messages JSON");
        view["messages"].as_array().cloned().unwrap_or_default()
    }

    /// `GET /slack/messages?as=<person>`: what the page shows that person (their direct and
    /// ephemeral messages, the views opened for them).
    pub async fn slack_view_as(&self, person: &str) -> Value {
        self.http
            .get(format!("{}/slack/messages", self.api_url))
            .query(&[("as", person)])
            .send()
            .await
            .expect("GET /slack/messages?as=")
            .json()
            .await
            .expect("messages JSON")
    }

    /// Every view the stand-in opened, for anyone, newest first.
    pub async fn slack_views(&self) -> Vec<Value> {
        let view: Value = self
            .http
            .get(format!("{}/slack/messages", self.api_url))
            .send()
            .await
            .expect("GET /slack/messages")
            .json()
            .await
            .expect("messages JSON");
        view["views"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /slack/<route>` of the Slack page (`command`, `submit`, `click`, `close`) with
    /// `body`: its answer, once the page accepted the call.
    pub async fn slack_page(&self, route: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(format!("{}/slack/{route}", self.api_url))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /slack/{route}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "POST /slack/{route} {body}: {status} {text}\n{}",
            self.log()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST /slack/{route}: {e}: {text}"))
    }

    /// Waits until a message of the Slack stand-in satisfies `found`, at most `within`.
    pub async fn wait_for_message(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(message) = self.messages().await.into_iter().rev().find(|m| found(m)) {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the Slack stand-in after {within:?}:\n{:#?}\n{}",
                self.messages().await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `elevate list --json` as `profile`: that person's requests, oldest first.
    pub fn requests_of(&self, profile: &str) -> Vec<Value> {
        let listed = self.run(profile, &["--json", "list"]);
        assert!(listed.ok(), "elevate list: {listed:?}");
        let answer: Value = serde_json::from_str(&listed.stdout).expect("list --json");
        let mut requests = answer["requests"].as_array().cloned().unwrap_or_default();
        requests.sort_by_key(|r| r["created_at"].as_str().unwrap_or_default().to_owned());
        requests
    }

    /// The message announcing `requester`'s newest request still awaiting a decision, once it
    /// appears.
    pub async fn pending_message(&self, requester: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.messages().await.into_iter().rev().find(|m| {
                m["requester"] == requester
                    && m["visible_to"].is_null()
                    && m["buttons"].as_array().is_some_and(|b| !b.is_empty())
            });
            if let Some(message) = found {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no pending message from {requester} in the Slack stand-in:\n{:#?}\n{}",
                self.messages().await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /slack/click` as `person` on `message`.
    pub async fn click(&self, person: &str, action: &str, message: &Value) -> Value {
        let answer = self
            .http
            .post(format!("{}/slack/click", self.api_url))
            .json(&json!({
                "as": person,
                "action": action,
                "request_id": message["request_id"],
                "channel": message["channel"],
                "ts": message["ts"],
            }))
            .send()
            .await
            .expect("POST /slack/click");
        assert!(answer.status().is_success(), "click: {}", answer.status());
        answer.json().await.expect("click JSON")
    }

    /// `elevate show <id> --json` as `profile`: the request.
    pub fn request(&self, profile: &str, id: &str) -> Value {
        let shown = self.run(profile, &["--json", "show", id]);
        assert!(shown.ok(), "elevate show {id}: {shown:?}");
        let answer: Value = serde_json::from_str(&shown.stdout).expect("show --json");
        answer["request"].clone()
    }

    pub fn state(&self, profile: &str, id: &str) -> String {
        self.request(profile, id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `profile` sees request `id` in `state`.
    pub async fn wait_for_state(&self, profile: &str, id: &str, state: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.state(profile, id);
            if now == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} is {now}, not {state}, after {within:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an `elevate` run came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl From<Output> for Outcome {
    fn from(output: Output) -> Self {
        Outcome {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// An `elevate` child running in the background; killed if dropped before it ended.
pub struct Background {
    child: Option<Child>,
}

impl Background {
    /// Waits for the child to end, at most `within`.
    pub async fn finish(mut self, within: Duration) -> Outcome {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for elevate") {
                let mut stdout = String::new();
                let mut stderr = String::new();
                if let Some(mut out) = child.stdout.take() {
                    let _ = out.read_to_string(&mut stdout);
                }
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                return Outcome {
                    status,
                    stdout,
                    stderr,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!(
                    "elevate did not finish within {within:?}:\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The IAM users in `group`, read from moto.
pub async fn members(iam: &aws_sdk_iam::Client, group: &str) -> Vec<String> {
    iam.get_group()
        .group_name(group)
        .send()
        .await
        .expect("GetGroup")
        .users()
        .iter()
        .map(|u| u.user_name().to_owned())
        .collect()
}

/// Waits until `user`'s membership of `group` is `expected`, at most `within`.
pub async fn wait_membership(
    iam: &aws_sdk_iam::Client,
    group: &str,
    user: &str,
    expected: bool,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let now = members(iam, group).await.iter().any(|m| m == user);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} is{} a member of {group} after {within:?}",
            if now { "" } else { " not" }
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
