//! A fault-injecting HTTP proxy between the stack's functions and moto
//! (`elevate-local up --functions-aws-endpoint <proxy>`).
//!
//! Each request's service is read from the credential scope of its SigV4 `Authorization`
//! header. On a configurable share of IAM and DynamoDB calls it answers what AWS answers when
//! it misbehaves, in each protocol's own shape, so the SDK classifies them as it would in AWS:
//!
//! - throttling: IAM (query/XML) `400 <ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>`,
//!   DynamoDB (JSON 1.0) `400 {"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}`;
//! - server errors: IAM `500 ServiceFailure`, DynamoDB `500 InternalServerError`;
//! - timeouts: the request is held, then its connection is dropped without an answer, either
//!   before it reaches moto (lost request) or after moto applied it (lost answer: the caller
//!   cannot tell it worked, and must cope with retrying something already done).
//!
//! Everything else is forwarded unchanged. Decisions come from a seeded generator, so a run
//! makes the same sequence of decisions (which call gets which one depends on arrival order).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What the proxy does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Throttle,
    ServerError,
    /// Held, then dropped before moto saw it.
    LostRequest,
    /// Forwarded (moto applied it), then held and dropped without the answer.
    LostAnswer,
}

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::LostRequest,
        Fault::LostAnswer,
    ];
}

/// Which calls fail, how, and how long a timed-out call is held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Share of the faultable calls that fail, 0.0 to 1.0.
    pub share: f64,
    pub seed: u64,
    /// SigV4 service names whose calls may fail.
    pub services: Vec<String>,
    /// How long a timed-out call is held before its connection is dropped.
    pub hold: Duration,
    /// The kinds of fault to pick from, evenly.
    pub kinds: Vec<Fault>,
}

impl FaultPlan {
    /// `share` of the IAM and DynamoDB calls fail, a quarter of them each way.
    pub fn iam_and_dynamodb(share: f64, seed: u64) -> Self {
        FaultPlan {
            share,
            seed,
            services: vec!["iam".to_owned(), "dynamodb".to_owned()],
            hold: Duration::from_secs(1),
            kinds: Fault::ALL.to_vec(),
        }
    }
}

/// splitmix64: small, seedable, and good enough to pick faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the proxy saw and did, per service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultStats {
    /// Calls per service (all of them, failed or not).
    pub calls: BTreeMap<String, u64>,
    /// Faults injected per service and kind.
    pub faults: BTreeMap<String, BTreeMap<Fault, u64>>,
    /// Faults injected per operation (`iam:AddUserToGroup`, `dynamodb:TransactWriteItems`).
    pub faults_by_operation: BTreeMap<String, u64>,
    /// Forwarding to the upstream failed.
    pub upstream_errors: u64,
}

impl FaultStats {
    pub fn total_faults(&self) -> u64 {
        self.faults.values().flat_map(|kinds| kinds.values()).sum()
    }

    pub fn faults_of(&self, fault: Fault) -> u64 {
        self.faults
            .values()
            .filter_map(|kinds| kinds.get(&fault))
            .sum()
    }
}

struct State {
    plan: FaultPlan,
    enabled: AtomicBool,
    rng: Mutex<Rng>,
    stats: Mutex<FaultStats>,
    upstream: String,
    /// Per-service upstreams (e.g. `lambda` to the local gateway), else `upstream`.
    overrides: Mutex<HashMap<String, String>>,
    http: reqwest::Client,
}

impl State {
    fn decide(&self, service: &str) -> Option<Fault> {
        if !self.enabled.load(Ordering::Relaxed) || !self.plan.services.iter().any(|s| s == service)
        {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if rng.next_f64() >= self.plan.share {
            return None;
        }
        let kinds = &self.plan.kinds;
        if kinds.is_empty() {
            return None;
        }
        let index = (rng.next_u64() % kinds.len() as u64) as usize;
        Some(kinds[index])
    }

    fn upstream_for(&self, service: &str) -> String {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .cloned()
            .unwrap_or_else(|| self.upstream.clone())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, FaultStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("plan", &self.state.plan)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Serves on 127.0.0.1 (a free port), forwarding to `upstream` (e.g. moto's endpoint).
    pub async fn start(upstream: &str, plan: FaultPlan) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(State {
            rng: Mutex::new(Rng::new(plan.seed)),
            plan,
            enabled: AtomicBool::new(true),
            stats: Mutex::new(FaultStats::default()),
            upstream: upstream.trim_end_matches('/').to_owned(),
            overrides: Mutex::new(HashMap::new()),
            http,
        });
        let (shutdown, mut stopped) = watch::channel(false);
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            tokio::spawn(serve_connection(stream, serving.clone(), stopped.clone()));
                        }
                        Err(error) => tracing::warn!(%error, "fault proxy: accept failed"),
                    },
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(FaultProxy {
            addr,
            state,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends one service's calls elsewhere (e.g. `lambda` to the local gateway's Invoke API).
    pub fn route(&self, service: &str, upstream: &str) {
        self.state
            .overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                service.to_owned(),
                upstream.trim_end_matches('/').to_owned(),
            );
    }

    /// Turns fault injection on or off (forwarding goes on either way).
    pub fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn stats(&self) -> FaultStats {
        self.state.stats().clone()
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.state.plan
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One client connection. A call answered with a dropped connection notifies `drop_now`, and
/// the connection is closed without an answer.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    let drop_now = Arc::new(Notify::new());
    let signal = drop_now.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let state = state.clone();
        let signal = signal.clone();
        async move { Ok::<_, Infallible>(handle(&state, request, &signal).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = drop_now.notified() => {}
        _ = stopped.changed() => {}
    }
}

/// The SigV4 service of a request (`iam`, `dynamodb`, ...), or `unsigned`.
pub fn service_of(headers: &HeaderMap) -> String {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| elevate_local::sigv4::Authorization::parse(v).ok())
        .map_or_else(|| "unsigned".to_owned(), |a| a.service)
}

/// `iam:AddUserToGroup`, `dynamodb:GetItem`, or the service alone.
pub fn operation_of(service: &str, headers: &HeaderMap, body: &[u8], query: &str) -> String {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_owned);
    let action = || form_action(body).or_else(|| form_action(query.as_bytes()));
    match target.or_else(action) {
        Some(op) => format!("{service}:{op}"),
        None => service.to_owned(),
    }
}

fn form_action(form: &[u8]) -> Option<String> {
    String::from_utf8_lossy(form)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

async fn handle(
    state: &State,
    request: Request<Incoming>,
    drop_now: &Notify,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::warn!(%error, "fault proxy: cannot read the request body");
            return plain(StatusCode::BAD_REQUEST, "unreadable body");
        }
    };
    let service = service_of(&parts.headers);
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let fault = state.decide(&service);
    {
        let mut stats = state.stats();
        *stats.calls.entry(service.clone()).or_default() += 1;
        if let Some(fault) = fault {
            *stats
                .faults
                .entry(service.clone())
                .or_default()
                .entry(fault)
                .or_default() += 1;
            let operation = operation_of(&service, &parts.headers, &body, &query);
            *stats.faults_by_operation.entry(operation).or_default() += 1;
        }
    }
    match fault {
        Some(Fault::Throttle) => return throttled(&service),
        Some(Fault::ServerError) => return server_error(&service),
        Some(Fault::LostRequest) => {
            tokio::time::sleep(state.plan.hold).await;
            drop_now.notify_one();
            return std::future::pending().await;
        }
        Some(Fault::LostAnswer) | None => {}
    }

    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let url = format!("{}{path_and_query}", state.upstream_for(&service));
    let mut forward = state.http.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if name == http::header::HOST || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        forward = forward.header(name, value);
    }
    let answer = match forward.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%error, %url, "fault proxy: upstream failed");
            state.stats().upstream_errors += 1;
            return plain(StatusCode::BAD_GATEWAY, "upstream failed");
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, %url, "fault proxy: upstream body failed");
            state.stats().upstream_errors += 1;
            return plain(StatusCode::BAD_GATEWAY, "upstream failed");
        }
    };
    if fault == Some(Fault::LostAnswer) {
        tokio::time::sleep(state.plan.hold).await;
        drop_now.notify_one();
        return std::future::pending().await;
    }
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

fn request_id() -> String {
    format!(
        "elevate-bench-{:016x}",
        Rng::new(chrono::Utc::now().timestamp_micros() as u64).next_u64()
    )
}

fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// IAM speaks the query protocol: an XML `ErrorResponse`.
fn iam_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    with_body(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>{}</RequestId></ErrorResponse>",
            request_id()
        ),
    )
}

/// DynamoDB speaks JSON 1.0: `__type` names the error.
fn dynamodb_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    with_body(
        status,
        "application/x-amz-json-1.0",
        serde_json::json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
            "message": message,
        })
        .to_string(),
    )
}

/// The throttling answer of `service`.
pub fn throttled(service: &str) -> Response<Full<Bytes>> {
    match service {
        "dynamodb" => dynamodb_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        _ => iam_error(
            StatusCode::BAD_REQUEST,
            "Sender",
            "Throttling",
            "Rate exceeded",
        ),
    }
}

/// The internal-error answer of `service`.
pub fn server_error(service: &str) -> Response<Full<Bytes>> {
    match service {
        "dynamodb" => dynamodb_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal server error",
        ),
        _ => iam_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Receiver",
            "ServiceFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_fails_the_share_asked() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let draws: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(draws, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());

        let state = State {
            plan: FaultPlan::iam_and_dynamodb(0.2, 42),
            enabled: AtomicBool::new(true),
            rng: Mutex::new(Rng::new(42)),
            stats: Mutex::new(FaultStats::default()),
            upstream: String::new(),
            overrides: Mutex::new(HashMap::new()),
            http: reqwest::Client::new(),
        };
        let decisions: Vec<Option<Fault>> = (0..10_000).map(|_| state.decide("iam")).collect();
        let failed = decisions.iter().filter(|d| d.is_some()).count();
        assert!((1800..2200).contains(&failed), "{failed} of 10000");
        for fault in Fault::ALL {
            let n = decisions.iter().filter(|d| **d == Some(fault)).count();
            assert!((350..650).contains(&n), "{fault:?}: {n}");
        }
        assert_eq!(state.decide("scheduler"), None, "other services pass");
        state.enabled.store(false, Ordering::Relaxed);
        assert!((0..100).all(|_| state.decide("dynamodb").is_none()));
    }

    #[test]
    fn tells_the_service_and_operation_from_the_signature() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-target, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.TransactWriteItems"),
        );
        assert_eq!(service_of(&headers), "dynamodb");
        assert_eq!(
            operation_of("dynamodb", &headers, b"{}", ""),
            "dynamodb:TransactWriteItems"
        );
        assert_eq!(
            operation_of(
                "iam",
                &HeaderMap::new(),
                b"Action=AddUserToGroup&Version=2010-05-08",
                ""
            ),
            "iam:AddUserToGroup"
        );
        assert_eq!(service_of(&HeaderMap::new()), "unsigned");
    }
}
