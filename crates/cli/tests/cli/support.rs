//! The test harness: a recording stand-in of the elevate API on 127.0.0.1:0, the real `elevate`
//! binary run against it with fixed test credentials, and requests built with the core's state
//! machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime};

use aws_credential_types::Credentials;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use elevate_core::model::{By, Terms};
use elevate_core::{
    apply, open, Actor, AuditEvent, Command as Cmd, NewRequest, Person, Request, RequestId, Target,
    TargetKind,
};
use serde_json::Value;

pub const ACCESS_KEY: &str = "AKIDELEVATETEST";
pub const SECRET_KEY: &str = "elevate-test-secret-key";
pub const REGION: &str = "us-east-1";

/// One request as the stand-in API received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

type Handler = dyn Fn(&Seen) -> (u16, Value) + Send + Sync;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    handler: Arc<Handler>,
}

/// The stand-in API: records every request and answers with `handler`.
pub struct TestApi {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestApi {
    pub fn start(handler: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> TestApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Shared {
            seen: Arc::default(),
            handler: Arc::new(handler),
        };
        let seen = shared.seen.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = Router::new().fallback(record).with_state(shared);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        TestApi { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The query string of each call seen, in order (empty for none).
    pub fn queries(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .map(|s| s.query.unwrap_or_default())
            .collect()
    }
}

async fn record(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let (status, answer) = (shared.handler)(&seen);
    shared.seen.lock().expect("lock").push(seen);
    let status = StatusCode::from_u16(status).expect("status");
    (status, axum::Json(answer)).into_response()
}

/// An API error body as the functions send it.
pub fn api_error(code: &str, message: &str) -> Value {
    serde_json::json!({ "error": code, "message": message })
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).expect("stdout is JSON")
    }
}

/// How to run the binary: a clean environment with fixed credentials and no AWS config files.
pub struct Elevate {
    home: tempfile::TempDir,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Elevate {
    pub fn new() -> Elevate {
        let home = tempfile::tempdir().expect("home");
        std::fs::write(home.path().join("aws-config"), "").expect("aws config");
        std::fs::write(home.path().join("aws-credentials"), "").expect("aws credentials");
        Elevate {
            home,
            cwd: None,
            env: Vec::new(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn api(mut self, api: &TestApi) -> Elevate {
        self.env.push(("ELEVATE_API_URL".into(), api.url.clone()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Elevate {
        self.cwd = Some(dir.to_owned());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Elevate {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let home = self.home.path();
        let mut command = Command::new(env!("CARGO_BIN_EXE_elevate"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("TZ", "UTC")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", REGION)
            .env("AWS_CONFIG_FILE", home.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let output = command.output().expect("run elevate");
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Asserts that `seen` carries a SigV4 signature by the test credentials for `execute-api`, and
/// that it verifies: signing the same method, URL, signed headers and body again at the same
/// time gives the same Authorization.
pub fn assert_signed(seen: &Seen) {
    let authorization = seen.header("authorization");
    let date = seen.header("x-amz-date");
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}/{REGION}/execute-api/aws4_request, SignedHeaders=",
            &date[..8]
        )),
        "unexpected Authorization: {authorization}"
    );
    let signed_headers = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("SignedHeaders");
    assert!(signed_headers.contains("host") && signed_headers.contains("x-amz-date"));
    let path_and_query = match &seen.query {
        Some(query) => format!("{}?{query}", seen.path),
        None => seen.path.clone(),
    };
    let mut builder = http::Request::builder()
        .method(seen.method.as_str())
        .uri(format!("http://{}{path_and_query}", seen.header("host")));
    for name in signed_headers.split(';') {
        if name != "x-amz-date" {
            builder = builder.header(name, seen.header(name));
        }
    }
    let mut request = builder.body(seen.body.clone()).expect("request");
    let at = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").expect("x-amz-date");
    let time = SystemTime::UNIX_EPOCH
        + StdDuration::from_secs(u64::try_from(at.and_utc().timestamp()).expect("time"));
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    elevate::api::sign(&mut request, &credentials, REGION, "execute-api", time).expect("sign");
    assert_eq!(
        request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(authorization),
        "the signature does not verify for {} {}",
        seen.method,
        seen.path
    );
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The IAM principal `name` signs API calls with.
pub fn principal_of(name: &str) -> String {
    format!("arn:aws:iam::123456789012:user/{name}")
}

/// `actor` with the principal behind it: a person's IAM user, or the function of a component.
pub fn by(actor: &Actor) -> By {
    match actor {
        Actor::Person(name) => By::person(name, principal_of(name)),
        Actor::System(component) => By::system(component, format!("lambda:elevate-{component}")),
    }
}

/// A PENDING request by alice through `infra_access`, created at `at`, and its first event.
pub fn pending_at(at: DateTime<Utc>) -> (Request, AuditEvent) {
    pending_for(
        at,
        "alice",
        ("admins", group("SymDemoAdmins")),
        "fix the prod bucket policy",
        StdDuration::from_secs(3600),
    )
}

/// The kind of an `iam_group` target.
pub fn group(name: &str) -> TargetKind {
    TargetKind::IamGroup {
        group: name.into(),
        roles: Vec::new(),
    }
}

/// A PENDING request by `person` through `infra_access` on `target` (its name and kind), for
/// `duration`, created at `at`, and its first event.
pub fn pending_for(
    at: DateTime<Utc>,
    person: &str,
    target: (&str, TargetKind),
    reason: &str,
    duration: StdDuration,
) -> (Request, AuditEvent) {
    let (target, kind) = target;
    open(
        RequestId::generate(at),
        NewRequest {
            flow: "infra_access".into(),
            target: target.into(),
            requester: person.into(),
            reason: reason.into(),
            duration,
            pending_timeout: StdDuration::from_secs(1800),
            approvals_required: 1,
            terms: Terms {
                target: Target {
                    name: target.into(),
                    kind,
                },
                person: Person {
                    name: person.into(),
                    iam_user: person.into(),
                    slack_id: format!("U0{}", person.to_uppercase()),
                    email: format!("{person}@example.com"),
                },
            },
        },
        &principal_of(person),
        at,
    )
}

/// Applies `commands` in turn, each a second after the previous; returns the last request and
/// every event.
pub fn walk(
    start: (Request, AuditEvent),
    commands: Vec<(Cmd, Actor)>,
) -> (Request, Vec<AuditEvent>) {
    let (mut request, first) = start;
    let mut events = vec![first];
    let mut at = request.created_at;
    for (command, actor) in commands {
        at += Duration::seconds(1);
        let transition = apply(&request, command, &by(&actor), at).expect("transition");
        request = transition.request;
        events.push(transition.event);
    }
    (request, events)
}

pub fn approved(start: (Request, AuditEvent)) -> (Request, Vec<AuditEvent>) {
    walk(
        start,
        vec![(
            Cmd::Approve {
                reason: Some("go ahead".into()),
            },
            Actor::person("bob"),
        )],
    )
}

pub fn active(start: (Request, AuditEvent)) -> (Request, Vec<AuditEvent>) {
    walk(
        start,
        vec![
            (
                Cmd::Approve {
                    reason: Some("go ahead".into()),
                },
                Actor::person("bob"),
            ),
            (Cmd::Activate, Actor::system("escalate")),
        ],
    )
}

pub fn denied(start: (Request, AuditEvent)) -> (Request, Vec<AuditEvent>) {
    walk(
        start,
        vec![(
            Cmd::Deny {
                reason: Some("not today".into()),
            },
            Actor::person("bob"),
        )],
    )
}

pub fn envelope(request: &Request) -> Value {
    serde_json::json!({ "request": request })
}

pub fn detail(request: &Request, audit: &[AuditEvent]) -> Value {
    serde_json::json!({ "request": request, "audit": audit })
}

/// The `GET /audit` answer for these requests and their events.
pub fn audit_answer(trails: &[(Request, Vec<AuditEvent>)]) -> Value {
    let events: Vec<&AuditEvent> = trails.iter().flat_map(|(_, events)| events).collect();
    let heads: Vec<Value> = trails
        .iter()
        .map(|(r, _)| {
            serde_json::json!({
                "request_id": r.id, "audit_seq": r.audit_seq, "audit_head": r.audit_head,
            })
        })
        .collect();
    serde_json::json!({ "events": events, "heads": heads })
}

/// An archive bucket in moto, created as the stack creates it (Object Lock, COMPLIANCE
/// retention), written with the layout of `elevate_core::archive` under `prefix`.
pub struct ArchiveBucket {
    pub moto: elevate_testkit::Moto,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// Empty, or `some/prefix` (no slash at either end).
    pub prefix: String,
}

impl ArchiveBucket {
    pub async fn create(prefix: &str) -> ArchiveBucket {
        let moto = elevate_testkit::Moto::start().await;
        let config = aws_sdk_s3::config::Builder::from(&moto.sdk_config().await)
            .force_path_style(true)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(config);
        let bucket = elevate_testkit::unique_name("audit");
        elevate_aws::S3Archive::create_bucket(&s3, &bucket, 1)
            .await
            .expect("a bucket with Object Lock");
        ArchiveBucket {
            moto,
            s3,
            bucket,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// `s3://bucket[/prefix]`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Writes `body` as JSON under `key` (relative to the prefix), with a checksum as S3
    /// requires for a bucket under Object Lock.
    pub async fn put(&self, key: &str, body: &Value) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(body.to_string().into_bytes().into())
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key}: {err:?}"));
    }

    /// Hides `key` (relative to the prefix) behind a delete marker, as a DeleteObject without
    /// a version id does in a versioned bucket; Object Lock keeps the version itself.
    pub async fn hide(&self, key: &str) {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send()
            .await
            .unwrap_or_else(|err| panic!("delete {key}: {err:?}"));
    }

    pub async fn put_events(&self, events: &[AuditEvent]) {
        for event in events {
            let key = elevate_core::archive::event_key(event.request_id.as_str(), event.seq);
            self.put(&key, &serde_json::to_value(event).expect("event JSON"))
                .await;
        }
    }

    pub async fn put_anchor(&self, anchor: &elevate_core::archive::Anchor) {
        let key = elevate_core::archive::anchor_key(anchor.until);
        self.put(&key, &serde_json::to_value(anchor).expect("anchor JSON"))
            .await;
    }

    pub async fn put_change(&self, change: &elevate_core::archive::TableChange) {
        let key = elevate_core::archive::change_key(
            &change.request_id,
            change.seq,
            &change.stream_event_id,
        );
        self.put(&key, &serde_json::to_value(change).expect("change JSON"))
            .await;
    }

    /// Every key in the bucket, read back from moto.
    pub async fn keys(&self) -> Vec<String> {
        let listing = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list");
        listing
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect()
    }
}

impl Elevate {
    /// Reads S3 from `archive`'s moto, through the SDK's standard endpoint variable.
    pub fn s3(self, archive: &ArchiveBucket) -> Elevate {
        self.env("AWS_ENDPOINT_URL_S3", archive.moto.endpoint())
    }
}

/// The anchor after `previous` that pins the last of `events` of each request.
pub fn anchor_of(
    previous: Option<&elevate_core::archive::Anchor>,
    until: DateTime<Utc>,
    events: &[AuditEvent],
) -> elevate_core::archive::Anchor {
    let mut heads = elevate_core::archive::HeadCollector::default();
    for event in events {
        heads.add(event);
    }
    elevate_core::archive::Anchor::seal(previous, until, heads.finish())
}

/// `events` with `edit` applied to the one numbered `seq`, then every hash from it on
/// recomputed and linked again: a rewrite that verifies on its own. Returns the new events
/// and the new head (seq, hash).
pub fn rewrite(
    events: &[AuditEvent],
    seq: u64,
    edit: impl FnOnce(&mut AuditEvent),
) -> (Vec<AuditEvent>, (u64, String)) {
    let mut events = events.to_vec();
    events.sort_by_key(|e| e.seq);
    let mut edit = Some(edit);
    let mut prev: Option<String> = None;
    for event in &mut events {
        if event.seq == seq {
            if let Some(edit) = edit.take() {
                edit(event);
            }
        }
        if event.seq >= seq {
            if let Some(prev) = &prev {
                event.prev_hash = prev.clone();
            }
            event.hash = event.computed_hash();
        }
        prev = Some(event.hash.clone());
    }
    let last = events.last().expect("events");
    let head = (last.seq, last.hash.clone());
    (events, head)
}

/// The `GET /audit` answer for these requests and events, with these heads (seq, hash).
pub fn audit_answer_with_heads(trails: &[(String, Vec<AuditEvent>, (u64, String))]) -> Value {
    let events: Vec<&AuditEvent> = trails.iter().flat_map(|(_, events, _)| events).collect();
    let heads: Vec<Value> = trails
        .iter()
        .map(|(id, _, (seq, hash))| {
            serde_json::json!({ "request_id": id, "audit_seq": seq, "audit_head": hash })
        })
        .collect();
    serde_json::json!({ "events": events, "heads": heads })
}
