//! The `history` phase of `make bench` (issue 13, "Measured"): the approval and revocation
//! latencies of a stack whose table holds years of history, beside the same figures on the
//! same stack while its table was empty, and an `audit export` of the whole trail.
//!
//! - [`History`]: 100,000 requests in final states (mostly EXPIRED, some REVOKED, DENIED,
//!   TIMED_OUT), spread over the last two years, of the bench's people and flow. Each is made by
//!   the state machine itself ([`elevate_core::open`], [`elevate_core::apply`], which seal every
//!   event with its real hash), so every chain verifies. An expired grant has four steps
//!   (request, approve, activate, expire); reconciliation repairs on some grants bring the
//!   trail to five events per request, the ratio of issue 13's 100-person company (20 requests,
//!   100 events a day), so 100,000 requests carry 500,000 events.
//! - [`seed`]: writes them into moto with BatchWriteItem (25 items per call, a few calls in
//!   flight), as the store's own item codec encodes them.
//! - [`end_active_grants`]: revokes what a measurement left ACTIVE, so the next one starts
//!   with an empty group.
//! - [`export`]: `elevate audit export` of the whole trail as a child process, its peak RSS
//!   read from `/proc/<pid>/status` (`VmHWM`, the kernel's high-water mark) while it runs.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use elevate_aws::dynamo::{event_item, request_item};
use elevate_core::machine::{apply, open, Command as Step, NewRequest};
use elevate_core::model::{By, MessageRef, Terms};
use elevate_core::{verify_chain, AuditEvent, Request, RequestId, State};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{BenchConfig, APPROVERS, CHANNEL, FLOW, GROUP, TARGET};
use crate::harness::{BenchError, Harness};
use crate::measure::{ApprovalFigures, LatenessFigures};
use crate::stack::Stack;

/// Items in one BatchWriteItem (DynamoDB's limit).
pub const BATCH_ITEMS: usize = 25;
/// The history spans this many days before now.
pub const SPAN_DAYS: i64 = 730;
/// The account of the principals recorded on the seeded events.
const ACCOUNT: &str = "123456789012";

/// How a seeded request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    Expired,
    Revoked,
    Denied,
    TimedOut,
}

impl Ending {
    /// The mix of endings: out of 100 requests, 80 expired, 8 revoked early, 7 denied and 5
    /// timed out waiting for an approver.
    fn pick(roll: u64) -> Ending {
        match roll % 100 {
            0..=79 => Ending::Expired,
            80..=87 => Ending::Revoked,
            88..=94 => Ending::Denied,
            _ => Ending::TimedOut,
        }
    }

    /// The events of a request that ended so, without repairs.
    fn steps(self) -> usize {
        match self {
            Ending::Expired | Ending::Revoked => 4,
            Ending::Denied | Ending::TimedOut => 2,
        }
    }

    fn activated(self) -> bool {
        matches!(self, Ending::Expired | Ending::Revoked)
    }

    pub fn state(self) -> State {
        match self {
            Ending::Expired => State::Expired,
            Ending::Revoked => State::Revoked,
            Ending::Denied => State::Denied,
            Ending::TimedOut => State::TimedOut,
        }
    }
}

/// SplitMix64: a small, well-mixed generator, so the history is the same on every run.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        let width = u64::try_from(high - low + 1).unwrap_or(1).max(1);
        low + i64::try_from(self.next() % width).unwrap_or(0)
    }
}

/// What to seed.
#[derive(Debug, Clone)]
pub struct HistoryPlan {
    pub requests: usize,
    /// The trail holds at least this many events: repairs on some grants make up what the
    /// requests' own steps do not.
    pub min_events: usize,
    /// The bench's requesters (`user001`...) the requests are spread over.
    pub requesters: usize,
    pub seed: u64,
}

impl HistoryPlan {
    /// `requests` requests and five events per request, over `requesters` requesters.
    pub fn new(requests: usize, requesters: usize) -> HistoryPlan {
        HistoryPlan {
            requests,
            min_events: requests * 5,
            requesters: requesters.max(1),
            seed: 0x00E1_E7A7_E5EE_D000,
        }
    }
}

/// The seeded history, made request by request on demand.
#[derive(Debug, Clone)]
pub struct History {
    plan: HistoryPlan,
    /// How each request ends, and how many repairs its grant got.
    shapes: Vec<(Ending, u8)>,
    config: elevate_core::Config,
    start: DateTime<Utc>,
    /// The span between two requests' slots, in milliseconds.
    slot_ms: i64,
}

impl History {
    /// The history of `plan`, ending a day before `now`.
    pub fn new(plan: HistoryPlan, now: DateTime<Utc>) -> Result<History, BenchError> {
        let config = elevate_core::Config::parse(&BenchConfig::new(plan.requesters).toml())
            .map_err(|e| BenchError::Scenario(format!("the bench's elevate.toml: {e}")))?;
        let mut endings: Vec<Ending> = (0..plan.requests)
            .map(|i| Ending::pick(Rng::new(plan.seed, i as u64).next()))
            .collect();
        // At least one grant, so repairs have somewhere to go.
        if !endings.iter().any(|e| e.activated()) {
            if let Some(first) = endings.first_mut() {
                *first = Ending::Expired;
            }
        }
        let steps: usize = endings.iter().map(|e| e.steps()).sum();
        let grants = endings.iter().filter(|e| e.activated()).count().max(1);
        let extra = plan.min_events.saturating_sub(steps);
        let (each, rest) = (extra / grants, extra % grants);
        let mut rank = 0;
        let shapes = endings
            .into_iter()
            .map(|ending| {
                if !ending.activated() {
                    return (ending, 0);
                }
                let repairs = each + usize::from(rank < rest);
                rank += 1;
                (ending, u8::try_from(repairs).unwrap_or(u8::MAX))
            })
            .collect();
        let span = chrono::Duration::days(SPAN_DAYS);
        let start = now - span - chrono::Duration::days(1);
        let slot_ms =
            (span.num_milliseconds() / i64::try_from(plan.requests.max(1)).unwrap_or(1)).max(1);
        Ok(History {
            plan,
            shapes,
            config,
            start,
            slot_ms,
        })
    }

    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// Events of the whole history.
    pub fn events(&self) -> usize {
        self.shapes
            .iter()
            .map(|(ending, repairs)| ending.steps() + usize::from(*repairs))
            .sum()
    }

    /// Requests per final state.
    pub fn by_state(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (ending, _) in &self.shapes {
            *counts.entry(ending.state().to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// The earliest instant of the history.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Request `i` in its final state, and its events in order.
    pub fn request(&self, i: usize) -> Result<(Request, Vec<AuditEvent>), BenchError> {
        let (ending, repairs) = self.shapes[i];
        let mut rng = Rng::new(self.plan.seed ^ 0x5EED, i as u64);
        let ms = chrono::Duration::milliseconds;
        let offset =
            self.slot_ms * i64::try_from(i).unwrap_or(0) + rng.between(0, self.slot_ms - 1);
        let created = self.start + ms(offset);
        let n = usize::try_from(rng.between(1, i64::try_from(self.plan.requesters).unwrap_or(1)))
            .unwrap_or(1);
        let requester = BenchConfig::requester(n);
        let approver = APPROVERS[usize::from(rng.next() % 2 == 1)];
        let minutes = rng.between(5, 15);
        let fail = |what: &str| BenchError::Scenario(format!("history request {i}: {what}"));
        let flow = self
            .config
            .flow(FLOW)
            .ok_or_else(|| fail("no bench flow"))?;
        let target = flow
            .targets
            .iter()
            .find(|t| t.name.as_str() == TARGET)
            .ok_or_else(|| fail("no bench target"))?;
        let person = self
            .config
            .person(&requester)
            .ok_or_else(|| fail("requester not in the config"))?;
        let new = NewRequest {
            flow: FLOW.into(),
            target: TARGET.into(),
            requester: requester.as_str().into(),
            reason: format!("elevate-bench history #{i}: on-call change"),
            duration: Duration::from_secs(u64::try_from(minutes).unwrap_or(15) * 60),
            pending_timeout: flow.pending_timeout,
            approvals_required: 1,
            terms: Terms {
                target: target.clone(),
                person: person.clone(),
            },
        };
        let (mut request, first) = open(
            request_id(created, &mut rng)?,
            new,
            &format!("arn:aws:iam::{ACCOUNT}:user/{requester}"),
            created,
        );
        request.message = Some(MessageRef {
            channel: CHANNEL.to_owned(),
            ts: format!(
                "{}.{:06}",
                created.timestamp(),
                created.timestamp_subsec_micros()
            ),
        });
        let mut events = vec![first];
        let mut step = |request: &mut Request, command: Step, by: &By, at: DateTime<Utc>| {
            let transition = apply(request, command, by, at)
                .map_err(|e| fail(&format!("the state machine refused a step: {e}")))?;
            *request = transition.request;
            events.push(transition.event);
            Ok::<_, BenchError>(())
        };
        let clicker = By::person(
            approver,
            format!("slack:T0BENCH/{}", BenchConfig::slack_id(approver)),
        );
        let system = |component: &str| By::system(component, format!("lambda:elevate-{component}"));
        match ending {
            Ending::Denied => {
                let at = created + ms(rng.between(60_000, 25 * 60_000));
                let reason = Some("not during the freeze".to_owned());
                step(&mut request, Step::Deny { reason }, &clicker, at)?;
            }
            Ending::TimedOut => {
                let at = request.pending_until + ms(rng.between(200, 3_000));
                step(&mut request, Step::TimeOut, &system("revoke"), at)?;
            }
            Ending::Expired | Ending::Revoked => {
                let approved = created + ms(rng.between(20_000, 25 * 60_000));
                step(
                    &mut request,
                    Step::Approve { reason: None },
                    &clicker,
                    approved,
                )?;
                let activated = approved + ms(rng.between(300, 2_000));
                step(&mut request, Step::Activate, &system("escalate"), activated)?;
                let lasts = minutes * 60_000;
                // A revoked grant ends between a fifth and four fifths of its duration.
                let ends = match ending {
                    Ending::Revoked => activated + ms(lasts * rng.between(20, 80) / 100),
                    _ => activated + ms(lasts) + ms(rng.between(200, 1_500)),
                };
                let repairs = i64::from(repairs);
                for k in 1..=repairs {
                    let at = activated
                        + (ends - activated) * i32::try_from(k).unwrap_or(1)
                            / i32::try_from(repairs + 1).unwrap_or(2);
                    let reason = format!(
                        "{requester} was missing from {GROUP}: removed outside elevate; restored"
                    );
                    step(
                        &mut request,
                        Step::Repair { reason },
                        &system("reconcile"),
                        at,
                    )?;
                }
                if ending == Ending::Revoked {
                    let by = By::person(
                        requester.as_str(),
                        format!("arn:aws:iam::{ACCOUNT}:user/{requester}"),
                    );
                    let reason = Some("done early".to_owned());
                    step(&mut request, Step::Revoke { reason }, &by, ends)?;
                } else {
                    step(&mut request, Step::Expire, &system("revoke"), ends)?;
                }
            }
        }
        Ok((request, events))
    }
}

/// What seeding took.
#[derive(Debug, Clone, Serialize)]
pub struct SeedFigures {
    pub requests: usize,
    pub events: usize,
    pub by_state: BTreeMap<String, usize>,
    /// The first and last day of the history.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// BatchWriteItem calls made, and at most how many at once.
    pub batches: usize,
    pub in_flight: usize,
    pub seconds: f64,
    /// Requests whose chain, read back from moto, were compared and verified.
    pub read_back: usize,
    pub problems: Vec<String>,
}

/// Writes `history` into the stack's table: every request item and event item, 25 to a
/// BatchWriteItem, `in_flight` calls at a time, printing progress. Every chain is verified as
/// it is made; a sample is read back through the store and verified again.
pub async fn seed(
    harness: &Harness,
    history: &History,
    in_flight: usize,
) -> Result<SeedFigures, BenchError> {
    let sdk = elevate_testkit::sdk_config_for(&harness.stack.info.moto_endpoint);
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table: Arc<str> = Arc::from(harness.stack.info.table.as_str());
    let started = Instant::now();
    let total_items = history.len() + history.events();
    eprintln!(
        "elevate-bench: seeding {} requests and {} events ({total_items} items, {in_flight} BatchWriteItem calls in flight)",
        history.len(),
        history.events(),
    );
    let mut problems = Vec::new();
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(BATCH_ITEMS);
    let mut tasks: JoinSet<Result<usize, String>> = JoinSet::new();
    let (mut written, mut batches, mut events, mut last_print) = (0, 0, 0, Instant::now());
    let mut last = None;
    for i in 0..history.len() {
        let (request, chain) = history.request(i)?;
        if let Err(err) = verify_chain(&chain, Some((request.audit_seq, &request.audit_head))) {
            problems.push(format!(
                "seeded chain of {} does not verify: {err}",
                request.id
            ));
        }
        events += chain.len();
        last = chain.last().map(|e| e.at);
        let items = std::iter::once(request_item(&request)).chain(chain.iter().map(event_item));
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| BenchError::Scenario(format!("BatchWriteItem item: {e}")))?;
            batch.push(WriteRequest::builder().put_request(put).build());
            if batch.len() == BATCH_ITEMS {
                while tasks.len() >= in_flight.max(1) {
                    written += joined(tasks.join_next().await)?;
                }
                let items = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ITEMS));
                tasks.spawn(write_batch(client.clone(), table.clone(), items));
                batches += 1;
            }
        }
        if last_print.elapsed() > Duration::from_secs(15) {
            last_print = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "elevate-bench: seeded {written} of {total_items} items in {seconds:.0} s ({:.0} items/s)",
                written as f64 / seconds
            );
        }
    }
    if !batch.is_empty() {
        tasks.spawn(write_batch(client.clone(), table.clone(), batch));
        batches += 1;
    }
    while let Some(done) = tasks.join_next().await {
        written += joined(Some(done))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "elevate-bench: seeded {written} items in {seconds:.0} s ({:.0} items/s)",
        written as f64 / seconds
    );
    if written != total_items {
        problems.push(format!("wrote {written} items of {total_items}"));
    }
    let read_back = read_back(harness, history, 24, &mut problems).await?;
    Ok(SeedFigures {
        requests: history.len(),
        events,
        by_state: history.by_state(),
        from: history.start(),
        to: last.unwrap_or_else(Utc::now),
        batches,
        in_flight,
        seconds,
        read_back,
        problems,
    })
}

fn joined(
    done: Option<Result<Result<usize, String>, tokio::task::JoinError>>,
) -> Result<usize, BenchError> {
    match done {
        None => Ok(0),
        Some(Ok(Ok(n))) => Ok(n),
        Some(Ok(Err(err))) => Err(BenchError::Scenario(err)),
        Some(Err(err)) => Err(BenchError::Scenario(format!("seeding task: {err}"))),
    }
}

/// One BatchWriteItem, its unprocessed items written again until none is left.
async fn write_batch(
    client: aws_sdk_dynamodb::Client,
    table: Arc<str>,
    items: Vec<WriteRequest>,
) -> Result<usize, String> {
    let count = items.len();
    let mut pending = items;
    for attempt in 0..20u32 {
        let answer = client
            .batch_write_item()
            .request_items(table.as_ref(), pending)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "BatchWriteItem: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let left = answer
            .unprocessed_items
            .and_then(|mut map| map.remove(table.as_ref()))
            .unwrap_or_default();
        if left.is_empty() {
            return Ok(count);
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
    }
    Err(format!(
        "BatchWriteItem: items still unprocessed after 20 attempts ({count} in the batch)"
    ))
}

/// Reads `samples` seeded requests back through the store (GetItem and the Query of their
/// events), compares them with what was written and verifies their chains against their heads.
async fn read_back(
    harness: &Harness,
    history: &History,
    samples: usize,
    problems: &mut Vec<String>,
) -> Result<usize, BenchError> {
    let mut checked = 0;
    let step = (history.len() / samples.max(1)).max(1);
    for i in (0..history.len()).step_by(step) {
        let (expected, chain) = history.request(i)?;
        checked += 1;
        let Some(stored) = harness.moto.request(&expected.id).await? else {
            problems.push(format!(
                "seeded request {} is not in the table",
                expected.id
            ));
            continue;
        };
        let events = harness.moto.audit_events(&stored.id).await?;
        if let Err(err) = verify_chain(&events, Some((stored.audit_seq, &stored.audit_head))) {
            problems.push(format!(
                "seeded request {} read back does not verify: {err}",
                stored.id
            ));
        }
        if stored != expected || events != chain {
            problems.push(format!(
                "seeded request {} read back differs from what was written",
                stored.id
            ));
        }
    }
    Ok(checked)
}

/// A UUIDv7 (the form of elevate's request ids) of `at` whose random bits come from `rng`, so
/// that a request of the history is the same each time it is made.
fn request_id(at: DateTime<Utc>, rng: &mut Rng) -> Result<RequestId, BenchError> {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let high = (millis << 16) | 0x7000 | (rng.next() & 0x0FFF);
    let low = 0x8000_0000_0000_0000 | (rng.next() & 0x3FFF_FFFF_FFFF_FFFF);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
    .parse()
    .map_err(|e| BenchError::Scenario(format!("history request id: {e}")))
}

/// Revokes (as their requesters, through the API) the grants still ACTIVE, and waits until
/// the bench's group is empty: the next measurement starts as a fresh stack would. Returns
/// how many were revoked.
pub async fn end_active_grants(
    harness: &Harness,
    timeout: Duration,
    problems: &mut Vec<String>,
) -> Result<usize, BenchError> {
    let active = harness.moto.requests_in(State::Active).await?;
    let mut revoked = 0;
    for request in &active {
        let path = format!("/requests/{}/revoke", request.id);
        let body = serde_json::json!({ "reason": "elevate-bench: the next measurement starts" });
        match harness
            .client
            .call(&request.requester, "POST", &path, Some(body))
            .await
        {
            Ok(_) => revoked += 1,
            // Ended meanwhile (expired): nothing to do.
            Err(err) if err.status() == Some(409) => {}
            Err(err) => problems.push(format!("revoking {}: {err}", request.id)),
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let members = harness.moto.group_members(GROUP).await?;
        if members.is_empty() {
            return Ok(revoked);
        }
        if Instant::now() > deadline {
            problems.push(format!(
                "{} still in {GROUP} {timeout:?} after the grants were revoked",
                members.len()
            ));
            return Ok(revoked);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `elevate audit export` of the whole trail, run as a child process.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFigures {
    pub command: String,
    /// The CLI measured: `target/debug/elevate` (the build the local stack's tests use).
    pub binary: String,
    pub exit: String,
    pub seconds: f64,
    /// The kernel's high-water mark of the child's resident set (`VmHWM`), read every 10 ms
    /// while it ran: growth in its last 10 ms could be missed.
    pub peak_rss_bytes: u64,
    pub rss_samples: usize,
    /// What the file holds: events, chain heads (one per request), bytes.
    pub events: usize,
    pub heads: usize,
    pub bytes: u64,
    /// `elevate audit verify --file` of the export: exit status and time.
    pub verify_exit: Option<String>,
    pub verify_seconds: Option<f64>,
    pub verify_output: String,
    pub problems: Vec<String>,
}

impl ExportFigures {
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_bytes as f64 / 1024.0 / 1024.0
    }
}

/// What `elevate` needs to talk to a stack as one of its people (as after `make dev`'s exports).
#[derive(Debug, Clone)]
pub struct CliEnv {
    pub binary: PathBuf,
    pub api_url: String,
    pub aws_config_file: PathBuf,
    pub aws_credentials_file: PathBuf,
    /// An empty configuration home, so no user file of this machine applies.
    pub home: PathBuf,
}

impl CliEnv {
    pub fn of(stack: &Stack, binary: PathBuf) -> CliEnv {
        CliEnv {
            binary,
            api_url: stack.info.api_url.clone(),
            aws_config_file: stack.resolve(&stack.info.aws_config_file),
            aws_credentials_file: stack.resolve(&stack.info.aws_credentials_file),
            home: stack.state_dir().join("cli-home"),
        }
    }

    /// `elevate --profile <profile> <args>`.
    pub fn command(&self, profile: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str() {
                if name.starts_with("AWS_") || name.starts_with("ELEVATE_") {
                    command.env_remove(name);
                }
            }
        }
        command
            .env("AWS_CONFIG_FILE", &self.aws_config_file)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.aws_credentials_file)
            .env("ELEVATE_API_URL", &self.api_url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("XDG_CONFIG_HOME", &self.home)
            .arg("--profile")
            .arg(profile)
            .args(args)
            .stdin(Stdio::null());
        command
    }
}

/// The `VmHWM` of a `/proc/<pid>/status` text, in bytes.
pub fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Runs `command` to its end with stdout and stderr to `log`, reading the child's peak RSS
/// every 10 ms. Returns its exit status, how long it ran, the peak and how many reads found it.
pub fn run_measured(
    mut command: Command,
    log: &Path,
) -> std::io::Result<(std::process::ExitStatus, Duration, u64, usize)> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let started = Instant::now();
    let mut child = command.stdout(out).stderr(err).spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let (mut peak, mut samples) = (0, 0);
    loop {
        // Read before asking whether it exited: the last read is of the child still running.
        if let Some(hwm) = std::fs::read_to_string(&status_path)
            .ok()
            .as_deref()
            .and_then(vm_hwm_bytes)
        {
            peak = peak.max(hwm);
            samples += 1;
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, started.elapsed(), peak, samples));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Counts the events and heads of a jsonl export.
fn count_export(path: &Path) -> std::io::Result<(usize, usize)> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let (mut events, mut heads) = (0, 0);
    for line in file.lines() {
        let line = line?;
        if line.starts_with("{\"head\"") {
            heads += 1;
        } else if !line.starts_with("{\"export\"") && !line.trim().is_empty() {
            events += 1;
        }
    }
    Ok((events, heads))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `elevate --profile <auditor> audit export --since <since> -o <dir>/export.jsonl`, measured,
/// then `elevate audit verify --file` of what it wrote.
pub fn export(cli: &CliEnv, auditor: &str, since: DateTime<Utc>, dir: &Path) -> ExportFigures {
    let file = dir.join("export.jsonl");
    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let file_text = file.display().to_string();
    let args = ["audit", "export", "--since", &since_text, "-o", &file_text];
    let mut figures = ExportFigures {
        command: format!("elevate --profile {auditor} {}", args.join(" ")),
        binary: cli.binary.display().to_string(),
        exit: String::new(),
        seconds: 0.0,
        peak_rss_bytes: 0,
        rss_samples: 0,
        events: 0,
        heads: 0,
        bytes: 0,
        verify_exit: None,
        verify_seconds: None,
        verify_output: String::new(),
        problems: Vec::new(),
    };
    let _ = std::fs::create_dir_all(&cli.home);
    let log = dir.join("export.log");
    match run_measured(cli.command(auditor, &args), &log) {
        Ok((status, took, peak, samples)) => {
            figures.exit = status.to_string();
            figures.seconds = took.as_secs_f64();
            figures.peak_rss_bytes = peak;
            figures.rss_samples = samples;
            if !status.success() {
                figures.problems.push(format!(
                    "audit export failed ({status}):\n{}",
                    tail(&log, 10)
                ));
                return figures;
            }
        }
        Err(err) => {
            figures
                .problems
                .push(format!("cannot run {}: {err}", cli.binary.display()));
            return figures;
        }
    }
    figures.bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    match count_export(&file) {
        Ok((events, heads)) => (figures.events, figures.heads) = (events, heads),
        Err(err) => figures
            .problems
            .push(format!("cannot read {}: {err}", file.display())),
    }
    let verify_log = dir.join("verify.log");
    let verify = cli.command(auditor, &["audit", "verify", "--file", &file_text]);
    match run_measured(verify, &verify_log) {
        Ok((status, took, _, _)) => {
            figures.verify_exit = Some(status.to_string());
            figures.verify_seconds = Some(took.as_secs_f64());
            figures.verify_output = tail(&verify_log, 3);
            if !status.success() {
                figures.problems.push(format!(
                    "audit verify of the export failed ({status}):\n{}",
                    figures.verify_output
                ));
            }
        }
        Err(err) => figures
            .problems
            .push(format!("cannot run audit verify: {err}")),
    }
    figures
}

/// One pass of the latency measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pass {
    pub approval: Option<ApprovalFigures>,
    pub revoke_lateness: Option<LatenessFigures>,
    /// Approval grants revoked before the lateness measurement, so it starts with an empty
    /// group as on a fresh stack.
    pub revoked_between: usize,
    /// The machine's load average (1 minute) before and after: other work on the machine
    /// during one pass and not the other shows here.
    pub load_before: f64,
    pub load_after: f64,
    pub seconds: f64,
}

/// The 1-minute load average of the machine (`/proc/loadavg`), NaN when unknown.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The figures of the phase.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryFigures {
    pub requesters: usize,
    pub approvals: usize,
    pub lateness_grants: usize,
    /// The stack ran with `--no-archive-pump`.
    pub archive_pump: bool,
    /// On the empty table, then on the seeded one: the same stack, the same people.
    pub empty: Pass,
    pub seed: Option<SeedFigures>,
    pub seeded: Pass,
    pub export: Option<ExportFigures>,
    pub seconds: f64,
    pub problems: Vec<String>,
}

/// What the phase runs.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub approvals: usize,
    pub lateness_grants: usize,
    pub lateness_window: Duration,
    pub requests: usize,
    pub in_flight: usize,
    /// The `elevate` binary whose export is measured.
    pub cli: PathBuf,
}

/// The approval and lateness measurements, with the approval grants ended in between.
async fn measure_pass(
    harness: &Arc<Harness>,
    options: &HistoryOptions,
    label: &str,
    problems: &mut Vec<String>,
) -> Pass {
    let started = Instant::now();
    let mut pass = Pass {
        load_before: load_average(),
        ..Pass::default()
    };
    eprintln!(
        "elevate-bench: history, {label} table: approvals ({} requests)",
        options.approvals
    );
    match crate::measure::approvals(harness, options.approvals, Duration::from_secs(600)).await {
        Ok(figures) => pass.approval = Some(figures),
        Err(err) => problems.push(format!("{label} approvals: {err}")),
    }
    match end_active_grants(harness, Duration::from_secs(120), problems).await {
        Ok(n) => pass.revoked_between = n,
        Err(err) => problems.push(format!("{label}: ending the approval grants: {err}")),
    }
    eprintln!(
        "elevate-bench: history, {label} table: revoke lateness ({} grants)",
        options.lateness_grants
    );
    match crate::measure::revoke_lateness(
        harness.clone(),
        options.lateness_grants,
        options.lateness_window,
    )
    .await
    {
        Ok(figures) => pass.revoke_lateness = Some(figures),
        Err(err) => problems.push(format!("{label} revoke lateness: {err}")),
    }
    pass.load_after = load_average();
    pass.seconds = started.elapsed().as_secs_f64();
    pass
}

/// The phase: one fresh stack (archive pump off), the measurements on its empty table, the
/// history seeded, the measurements again, then the export of the whole trail.
pub async fn run(
    harness: Arc<Harness>,
    options: &HistoryOptions,
) -> Result<HistoryFigures, BenchError> {
    let started = Instant::now();
    let mut problems = Vec::new();
    let requesters = harness.config.requesters;
    let empty = measure_pass(&harness, options, "empty", &mut problems).await;

    let history = History::new(HistoryPlan::new(options.requests, requesters), Utc::now())?;
    let seed = match self::seed(&harness, &history, options.in_flight).await {
        Ok(figures) => Some(figures),
        Err(err) => {
            problems.push(format!("seeding: {err}"));
            None
        }
    };
    let seeded = if seed.is_some() {
        measure_pass(&harness, options, "seeded", &mut problems).await
    } else {
        Pass::default()
    };

    let export = if seed.is_some() {
        eprintln!("elevate-bench: history: audit export of the whole trail");
        let cli = CliEnv::of(&harness.stack, options.cli.clone());
        let dir = harness.stack.state_dir().join("export");
        let since = history.start() - chrono::Duration::days(1);
        let _ = std::fs::create_dir_all(&dir);
        let auditor = crate::config::AUDITOR;
        let figures = tokio::task::spawn_blocking(move || {
            let figures = export(&cli, auditor, since, &dir);
            // The export is hundreds of MB: not kept past the measurement.
            let _ = std::fs::remove_file(dir.join("export.jsonl"));
            figures
        })
        .await
        .map_err(|e| BenchError::Scenario(format!("export task: {e}")))?;
        Some(figures)
    } else {
        None
    };
    Ok(HistoryFigures {
        requesters,
        approvals: options.approvals,
        lateness_grants: options.lateness_grants,
        archive_pump: false,
        empty,
        seed,
        seeded,
        export,
        seconds: started.elapsed().as_secs_f64(),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(requests: usize) -> History {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        History::new(HistoryPlan::new(requests, 40), now).expect("history")
    }

    #[test]
    fn the_history_is_the_same_every_time_and_every_chain_verifies() {
        let history = history(400);
        let again = history.clone();
        let mut events = 0;
        for i in 0..history.len() {
            let (request, chain) = history.request(i).expect("request");
            assert_eq!(
                (request.clone(), chain.clone()),
                again.request(i).expect("again")
            );
            verify_chain(&chain, Some((request.audit_seq, &request.audit_head)))
                .expect("the chain verifies");
            assert!(request.state.is_final(), "{}", request.state);
            assert_eq!(chain.last().map(|e| e.to), Some(request.state));
            assert!(request.created_at >= history.start());
            assert!(request.created_at < history.start() + chrono::Duration::days(SPAN_DAYS));
            assert!(chain.first().is_some_and(|e| e.terms.is_some()));
            events += chain.len();
        }
        assert_eq!(events, history.events());
        assert_eq!(events, 400 * 5, "five events a request");
        let states = history.by_state();
        assert!(states["EXPIRED"] > 250, "{states:?}");
        for state in ["REVOKED", "DENIED", "TIMED_OUT"] {
            assert!(states.get(state).is_some_and(|n| *n > 0), "{states:?}");
        }
    }

    #[test]
    fn requests_are_spread_over_the_span_in_time_order_with_distinct_ids() {
        let history = history(1000);
        let requests: Vec<Request> = (0..history.len())
            .map(|i| history.request(i).expect("request").0)
            .collect();
        assert!(requests
            .windows(2)
            .all(|w| w[0].created_at < w[1].created_at));
        let span = requests[requests.len() - 1].created_at - requests[0].created_at;
        assert!(span > chrono::Duration::days(SPAN_DAYS - 2), "{span}");
        let mut ids: Vec<&str> = requests.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), requests.len());
        let requesters: std::collections::HashSet<&str> =
            requests.iter().map(|r| r.requester.as_str()).collect();
        assert_eq!(requesters.len(), 40, "every requester has a history");
    }

    #[test]
    fn items_are_the_stores_own_and_fit_a_batch() {
        let history = history(10);
        let (request, chain) = history.request(3).expect("request");
        let item = request_item(&request);
        assert_eq!(
            item.get("pk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some(format!("REQ#{}", request.id).as_str())
        );
        let event = event_item(&chain[0]);
        assert!(event
            .get("gsi3pk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|day| day.starts_with("AUDIT#")));
    }

    #[test]
    fn reads_the_peak_rss_of_a_status_file() {
        let status =
            "Name:\televate\nVmPeak:\t  300000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(51234 * 1024));
        assert_eq!(vm_hwm_bytes("Name:\tzombie\n"), None);
    }

    #[test]
    fn the_peak_rss_of_a_child_is_measured() {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut sleep = Command::new("sh");
        sleep.args(["-c", "sleep 0.2"]);
        let (status, _, peak, samples) = run_measured(sleep, log.path()).expect("sh runs");
        assert!(status.success());
        assert!(samples > 0 && peak > 0, "{samples} {peak}");
    }
}
