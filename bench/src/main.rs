//! `make bench`: builds what it measures, runs every phase against fresh local stacks, prints
//! the table and writes `target/bench/results.json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use elevate_bench::binaries::{self, FUNCTIONS};
use elevate_bench::config::BenchConfig;
use elevate_bench::faults::FaultPlan;
use elevate_bench::harness::Harness;
use elevate_bench::history::{self, HistoryFigures, HistoryOptions};
use elevate_bench::init::{self, InitResult};
use elevate_bench::measure::{self, ApprovalFigures, LatenessFigures};
use elevate_bench::reconcile::{self, ReconcileFigures};
use elevate_bench::report::{fmt_ms, table, Machine, Row};
use elevate_bench::scenarios::{
    self, DoubleClickOptions, DoubleClickReport, FaultOptions, FaultReport,
};
use elevate_bench::stack::StackOptions;
use elevate_bench::stats::Summary;
use serde::Serialize;

/// Targets of issue 5.
const APPROVAL_P50_MS: f64 = 150.0;
const APPROVAL_P99_MS: f64 = 500.0;
const LATENESS_P99_MS: f64 = 2000.0;
const INIT_MS: f64 = 20.0;
const BINARY_BYTES: u64 = 8_000_000;
/// One reconciliation pass over 500 ACTIVE grants.
const RECONCILE_MS: f64 = 5000.0;
const RECONCILE_GRANTS: usize = 500;
/// Targets of issue 13: with 100,000 historical requests in the table, the latencies within
/// 20 % of the empty table's; an export of 500,000 events in less than 100 MiB.
const HISTORY_REQUESTS: usize = 100_000;
const HISTORY_SLOWDOWN: f64 = 1.2;
const EXPORT_EVENTS: usize = 500_000;
const EXPORT_RSS_MIB: f64 = 100.0;

#[derive(Parser, Debug)]
#[command(about = "Benchmark elevate against the local stack (make bench)")]
struct Args {
    /// Small numbers, to try the bench itself in a few minutes (figures not representative).
    #[arg(long)]
    quick: bool,
    /// Use the binaries already built instead of building them.
    #[arg(long)]
    skip_builds: bool,
    /// Where the JSON goes.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these phases, e.g. `--only lateness` (default: all, in this order).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Phase>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Approvals,
    Lateness,
    Concurrency,
    Faults,
    /// In process against moto only: needs no build.
    Reconcile,
    /// Approvals and lateness on an empty table, then with 100,000 historical requests
    /// seeded, then `audit export` of the whole trail (one stack, archive pump off).
    History,
}

struct Sizes {
    approvals: usize,
    lateness_grants: usize,
    double_clicks: usize,
    fault_grants: usize,
    init_starts: usize,
    reconcile_grants: usize,
    history_requests: usize,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            approvals: 200,
            lateness_grants: 520,
            double_clicks: 200,
            fault_grants: 100,
            init_starts: 9,
            reconcile_grants: RECONCILE_GRANTS,
            history_requests: HISTORY_REQUESTS,
        }
    }

    fn quick() -> Sizes {
        Sizes {
            approvals: 20,
            lateness_grants: 30,
            double_clicks: 20,
            fault_grants: 20,
            init_starts: 3,
            reconcile_grants: 60,
            history_requests: 5_000,
        }
    }
}

#[derive(Serialize, Default)]
struct BinarySizes {
    /// What `cargo lambda build` was asked for.
    requested: String,
    /// Why arm64 was not built, when it was not.
    fallback: Option<String>,
    binaries: Vec<BinarySize>,
}

#[derive(Serialize)]
struct BinarySize {
    name: String,
    bytes: u64,
    /// Read from the ELF header.
    arch: String,
}

#[derive(Serialize)]
struct Results {
    machine: Machine,
    /// How the driver itself was built (`cargo run` with or without --release).
    driver_build: &'static str,
    /// The stack measured: target/debug/elevate-local, functions in process.
    stack: &'static str,
    build_seconds: Vec<(String, f64)>,
    approval: Option<ApprovalFigures>,
    revoke_lateness: Option<LatenessFigures>,
    cold_init: Vec<InitResult>,
    binary_sizes: BinarySizes,
    concurrency: Option<DoubleClickReport>,
    faults: Option<FaultReport>,
    reconcile: Option<ReconcileFigures>,
    history: Option<HistoryFigures>,
    rows: Vec<Row>,
    errors: Vec<String>,
}

fn build_all(results: &mut Results) {
    let bins: Vec<&str> = FUNCTIONS.iter().flat_map(|f| ["--bin", f]).collect();
    let mut step = |label: &str, args: Vec<&str>| -> Result<(), String> {
        let took = binaries::cargo(&args).map_err(|e| e.to_string())?;
        results
            .build_seconds
            .push((label.to_owned(), took.as_secs_f64()));
        Ok(())
    };
    if let Err(err) = step(
        "elevate-local (debug)",
        vec!["build", "-p", "elevate-local"],
    ) {
        results.errors.push(err);
    }
    let mut release = vec!["build", "--release"];
    release.extend(&bins);
    if let Err(err) = step("functions (release, this machine)", release) {
        results.errors.push(err);
    }
    let mut arm = vec!["lambda", "build", "--release", "--arm64"];
    arm.extend(&bins);
    results.binary_sizes.requested = "arm64".to_owned();
    if let Err(err) = step("functions (cargo lambda, arm64)", arm) {
        eprintln!("elevate-bench: arm64 build failed ({err}); falling back to x86-64");
        results.binary_sizes.fallback = Some(err);
        results.binary_sizes.requested = "x86-64".to_owned();
        let mut x86 = vec!["lambda", "build", "--release", "--x86-64"];
        x86.extend(&bins);
        if let Err(err) = step("functions (cargo lambda, x86-64)", x86) {
            results.errors.push(err);
        }
    }
}

fn measure_sizes(results: &mut Results) {
    for name in FUNCTIONS {
        let path = binaries::lambda_bootstrap(name);
        match std::fs::metadata(&path) {
            Ok(meta) => results.binary_sizes.binaries.push(BinarySize {
                name: name.to_owned(),
                bytes: meta.len(),
                arch: init::elf_machine(&path).unwrap_or("unknown").to_owned(),
            }),
            Err(err) => results.errors.push(format!(
                "no {} ({err}): did cargo lambda build run?",
                path.display()
            )),
        }
    }
}

async fn phase_approvals(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    eprintln!(
        "elevate-bench: approvals ({} requests) and cold init",
        sizes.approvals
    );
    let harness = Harness::start(StackOptions::new(BenchConfig::new(sizes.approvals)))
        .await
        .map_err(|e| e.to_string())?;
    let figures = measure::approvals(&harness, sizes.approvals, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?;
    results.approval = Some(figures);

    let arn = init::slack_secret_arn(&harness.stack.info, &harness.moto.secrets).await?;
    for name in FUNCTIONS {
        let binary = binaries::release_function(name);
        results.cold_init.push(
            init::cold_init(name, &binary, &harness.stack.info, &arn, sizes.init_starts).await,
        );
    }
    Ok(())
}

async fn phase_lateness(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    eprintln!(
        "elevate-bench: revoke lateness ({} grants of 70-90 s expiring within a minute)",
        sizes.lateness_grants
    );
    let harness = Harness::start(StackOptions::new(BenchConfig::new(sizes.lateness_grants)))
        .await
        .map_err(|e| e.to_string())?;
    let figures = measure::revoke_lateness(
        Arc::new(harness),
        sizes.lateness_grants,
        Duration::from_secs(55),
    )
    .await
    .map_err(|e| e.to_string())?;
    results.revoke_lateness = Some(figures);
    Ok(())
}

async fn phase_concurrency(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    eprintln!(
        "elevate-bench: concurrency ({} requests approved at once, each clicked twice)",
        sizes.double_clicks
    );
    let harness = Harness::start(StackOptions::new(BenchConfig::new(sizes.double_clicks)))
        .await
        .map_err(|e| e.to_string())?;
    let report = scenarios::double_clicked_grants(
        Arc::new(harness),
        &DoubleClickOptions {
            grants: sizes.double_clicks,
            first_user: 1,
            duration: Duration::from_secs(20),
            deadline: Duration::from_secs(240),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    results.concurrency = Some(report);
    Ok(())
}

async fn phase_faults(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    eprintln!(
        "elevate-bench: faults ({} grants, 20% of IAM and DynamoDB calls failing)",
        sizes.fault_grants
    );
    let mut plan = FaultPlan::iam_and_dynamodb(0.2, 0x5EED_E1E7);
    plan.hold = Duration::from_secs(2);
    let (harness, proxy) = Harness::start_with_faults(BenchConfig::new(sizes.fault_grants), plan)
        .await
        .map_err(|e| e.to_string())?;
    let report = scenarios::grants_through_faults(
        Arc::new(harness),
        &proxy,
        &FaultOptions {
            grants: sizes.fault_grants,
            first_user: 1,
            duration: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
            sweep_every: Duration::from_secs(5),
            wait_for_escalation_retry: true,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    results.faults = Some(report);
    proxy.stop().await;
    Ok(())
}

async fn phase_reconcile(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    eprintln!(
        "elevate-bench: reconcile ({} ACTIVE grants in {} IAM groups, {} + {} repairs)",
        sizes.reconcile_grants,
        reconcile::GROUPS.len(),
        reconcile::DRIFT,
        reconcile::DRIFT
    );
    results.reconcile = Some(reconcile::run(sizes.reconcile_grants).await?);
    Ok(())
}

async fn phase_history(results: &mut Results, sizes: &Sizes) -> Result<(), String> {
    let requesters = sizes.approvals.max(sizes.lateness_grants);
    eprintln!(
        "elevate-bench: history ({} approvals and {} lateness grants on an empty table, then with {} historical requests; one stack, archive pump off)",
        sizes.approvals, sizes.lateness_grants, sizes.history_requests
    );
    let mut options = StackOptions::new(BenchConfig::new(requesters));
    options.archive_pump = false;
    let harness = Harness::start(options).await.map_err(|e| e.to_string())?;
    let figures = history::run(
        Arc::new(harness),
        &HistoryOptions {
            approvals: sizes.approvals,
            lateness_grants: sizes.lateness_grants,
            lateness_window: Duration::from_secs(55),
            requests: sizes.history_requests,
            in_flight: 4,
            cli: binaries::cli(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    results.history = Some(figures);
    Ok(())
}

/// A figure on the empty and the seeded table, and whether the seeded one is within 20 %.
fn history_row(
    metric: &str,
    empty: Option<&Summary>,
    seeded: Option<&Summary>,
    pick: fn(&Summary) -> f64,
    samples: usize,
) -> Row {
    let (e, s) = (empty.map_or(f64::NAN, pick), seeded.map_or(f64::NAN, pick));
    let counted = |x: Option<&Summary>| x.map_or(0, |x| x.count);
    let n = counted(empty).min(counted(seeded));
    let change = (s / e - 1.0) * 100.0;
    Row::new(
        format!("{metric}, empty / seeded table (n={n})"),
        format!("{} / {} ({change:+.0} %)", fmt_ms(e), fmt_ms(s)),
    )
    .target(
        format!("seeded ≤ empty + {:.0} %", (HISTORY_SLOWDOWN - 1.0) * 100.0),
        s <= e * HISTORY_SLOWDOWN && n >= samples,
    )
}

fn history_rows(h: &HistoryFigures, rows: &mut Vec<Row>) {
    let approval = |pass: &history::Pass| {
        pass.approval
            .as_ref()
            .and_then(|a| a.from_click_answer.as_ref())
            .cloned()
    };
    let lateness = |pass: &history::Pass| {
        pass.revoke_lateness
            .as_ref()
            .and_then(|l| l.lateness.as_ref())
            .cloned()
    };
    let (ea, sa) = (approval(&h.empty), approval(&h.seeded));
    let (el, sl) = (lateness(&h.empty), lateness(&h.seeded));
    rows.push(history_row(
        "history: approval → membership p50",
        ea.as_ref(),
        sa.as_ref(),
        |s| s.p50_ms,
        h.approvals,
    ));
    rows.push(history_row(
        "history: approval → membership p99",
        ea.as_ref(),
        sa.as_ref(),
        |s| s.p99_ms,
        h.approvals,
    ));
    rows.push(history_row(
        "history: revoke lateness p50",
        el.as_ref(),
        sl.as_ref(),
        |s| s.p50_ms,
        0,
    ));
    rows.push(history_row(
        "history: revoke lateness p99",
        el.as_ref(),
        sl.as_ref(),
        |s| s.p99_ms,
        h.lateness_grants,
    ));
    rows.push(Row::new(
        "  (load average before → after: empty pass / seeded pass)",
        format!(
            "{:.1} → {:.1} / {:.1} → {:.1}",
            h.empty.load_before, h.empty.load_after, h.seeded.load_before, h.seeded.load_after
        ),
    ));
    match &h.seed {
        Some(seed) => rows.push(Row::new(
            format!(
                "  (seeded: {} requests, {} events, {} to {}, {} BatchWriteItem calls)",
                seed.requests,
                seed.events,
                seed.from.format("%Y-%m-%d"),
                seed.to.format("%Y-%m-%d"),
                seed.batches
            ),
            format!(
                "{:.0} s ({:.0} items/s)",
                seed.seconds,
                (seed.requests + seed.events) as f64 / seed.seconds
            ),
        )),
        None => rows.push(Row::new("history seeding", "failed").target("", false)),
    }
    match &h.export {
        Some(x) => {
            let rss = x.peak_rss_mib();
            rows.push(
                Row::new(
                    format!(
                        "audit export of the whole trail: {} events, {} requests, {:.0} MB; time / peak RSS",
                        x.events,
                        x.heads,
                        x.bytes as f64 / 1e6
                    ),
                    format!("{:.0} s / {rss:.1} MiB", x.seconds),
                )
                .target(
                    format!("≥ {EXPORT_EVENTS} events, < {EXPORT_RSS_MIB} MiB"),
                    x.problems.is_empty() && x.events >= EXPORT_EVENTS && rss < EXPORT_RSS_MIB,
                ),
            );
            rows.push(Row::new(
                "  (audit verify --file of the export)",
                match (&x.verify_exit, x.verify_seconds) {
                    (Some(exit), Some(took)) => format!("{exit} in {took:.0} s"),
                    _ => "not run".to_owned(),
                },
            ));
        }
        None => rows.push(Row::new("audit export", "not run").target("", false)),
    }
}

fn rows(results: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    let nan = f64::NAN;
    match &results.approval {
        Some(a) => {
            let s = a.from_click_answer.as_ref();
            let p50 = s.map_or(nan, |s| s.p50_ms);
            let p95 = s.map_or(nan, |s| s.p95_ms);
            let p99 = s.map_or(nan, |s| s.p99_ms);
            let n = s.map_or(0, |s| s.count);
            rows.push(
                Row::new(format!("approval → membership p50 (n={n})"), fmt_ms(p50)).target(
                    format!("≤ {APPROVAL_P50_MS} ms"),
                    p50 <= APPROVAL_P50_MS && n >= 200,
                ),
            );
            rows.push(Row::new("approval → membership p95", fmt_ms(p95)));
            rows.push(Row::new("approval → membership p99", fmt_ms(p99)).target(
                format!("≤ {APPROVAL_P99_MS} ms"),
                p99 <= APPROVAL_P99_MS && n >= 200,
            ));
            if let Some(sent) = &a.from_click_sent {
                rows.push(Row::new(
                    "  (from click sent: p50 / p99)",
                    format!("{} / {}", fmt_ms(sent.p50_ms), fmt_ms(sent.p99_ms)),
                ));
            }
            if let Some(rt) = &a.poll_round_trip {
                rows.push(Row::new("  (IAM poll round trip p50)", fmt_ms(rt.p50_ms)));
            }
            if let Some(slack) = &a.request_to_slack {
                rows.push(Row::new(
                    format!("request → Slack message p50 / p99 (n={})", slack.count),
                    format!("{} / {}", fmt_ms(slack.p50_ms), fmt_ms(slack.p99_ms)),
                ));
            }
        }
        None => rows.push(Row::new("approval → membership", "not measured").target("", false)),
    }
    match &results.revoke_lateness {
        Some(l) => {
            let s = l.lateness.as_ref();
            let n = s.map_or(0, |s| s.count);
            let p99 = s.map_or(nan, |s| s.p99_ms);
            rows.push(Row::new(
                format!(
                    "revoke lateness p50 (n={n}, expiries span {:.0} s)",
                    l.expiry_span_s
                ),
                fmt_ms(s.map_or(nan, |s| s.p50_ms)),
            ));
            rows.push(Row::new("revoke lateness p99", fmt_ms(p99)).target(
                format!("≤ {} s", LATENESS_P99_MS / 1000.0),
                p99 <= LATENESS_P99_MS && n >= 500 && l.expiry_span_s <= 60.0,
            ));
            rows.push(Row::new(
                "  (GetGroup poll round trip, mean)",
                fmt_ms(l.mean_poll_ms),
            ));
        }
        None => rows.push(Row::new("revoke lateness", "not measured").target("", false)),
    }
    for init in &results.cold_init {
        let figure = match (init.median_ms, &init.error) {
            (Some(ms), None) => format!("{} (median of {})", fmt_ms(ms), init.samples_ms.len()),
            (_, Some(err)) => format!("failed: {}", err.chars().take(60).collect::<String>()),
            (None, None) => "n/a".to_owned(),
        };
        let pass = init.error.is_none() && init.median_ms.is_some_and(|ms| ms <= INIT_MS);
        rows.push(
            Row::new(format!("cold init {}", init.function), figure)
                .target(format!("≤ {INIT_MS} ms"), pass),
        );
    }
    for b in &results.binary_sizes.binaries {
        rows.push(
            Row::new(
                format!("binary {} ({})", b.name, b.arch),
                format!("{:.2} MB", b.bytes as f64 / 1e6),
            )
            .target("≤ 8 MB", b.bytes <= BINARY_BYTES),
        );
    }
    match &results.concurrency {
        Some(c) => rows.push(
            Row::new(
                format!("{} requests × 2 simultaneous Approve clicks", c.grants),
                format!(
                    "{} activate / {} expire, {} chains ok, {} schedules left",
                    c.audit.count(elevate_core::Action::Activate),
                    c.audit.count(elevate_core::Action::Expire),
                    c.audit.chains_verified,
                    c.leftover_schedules.len()
                ),
            )
            .target("exactly one each", c.passed()),
        ),
        None => rows.push(Row::new("concurrency", "not run").target("", false)),
    }
    match &results.faults {
        Some(f) => rows.push(
            Row::new(
                format!(
                    "{} grants through {} injected faults",
                    f.grants,
                    f.faults.total_faults()
                ),
                format!(
                    "{} expired, {} revoked, {} in group, {} sweeps",
                    f.audit.in_state(elevate_core::State::Expired),
                    f.audit.in_state(elevate_core::State::Revoked),
                    f.members_at_end,
                    f.sweeps
                ),
            )
            .target("all ended, none early", f.passed()),
        ),
        None => rows.push(Row::new("faults", "not run").target("", false)),
    }
    match &results.reconcile {
        Some(r) => {
            rows.push(
                Row::new(
                    format!(
                        "reconciliation pass, {} ACTIVE grants in {} groups ({} repairs) / steady state",
                        r.grants,
                        r.groups,
                        r.first.repairs.len()
                    ),
                    format!("{} / {}", fmt_ms(r.first_pass_ms), fmt_ms(r.steady_pass_ms)),
                )
                .target(
                    format!("< {} s", RECONCILE_MS / 1000.0),
                    r.passed()
                        && r.grants >= RECONCILE_GRANTS
                        && r.first_pass_ms < RECONCILE_MS
                        && r.steady_pass_ms < RECONCILE_MS,
                ),
            );
            rows.push(Row::new(
                "  (of which: the by_state Query of the ACTIVE grants in moto)",
                fmt_ms(r.list_active_ms),
            ));
        }
        None => rows.push(Row::new("reconciliation pass", "not run").target("", false)),
    }
    match &results.history {
        Some(h) => history_rows(h, &mut rows),
        None => rows.push(Row::new("history", "not run").target("", false)),
    }
    rows
}

/// The problems of one pass of the history phase's measurements.
fn pass_problems(p: &history::Pass) -> Vec<&String> {
    p.approval
        .iter()
        .flat_map(|a| a.problems.iter())
        .chain(p.revoke_lateness.iter().flat_map(|l| l.problems.iter()))
        .collect()
}

/// Every problem the history phase noted, its measurements' included.
fn history_problems(h: &HistoryFigures) -> impl Iterator<Item = &String> {
    let pass = pass_problems;
    h.problems
        .iter()
        .chain(h.seed.iter().flat_map(|s| s.problems.iter()))
        .chain(h.export.iter().flat_map(|x| x.problems.iter()))
        .chain(pass(&h.empty))
        .chain(pass(&h.seeded))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let started = Instant::now();
    let mut results = Results {
        machine: Machine::here(),
        driver_build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        stack: "target/debug/elevate-local (functions in process), moto one request at a time",
        build_seconds: Vec::new(),
        approval: None,
        revoke_lateness: None,
        cold_init: Vec::new(),
        binary_sizes: BinarySizes::default(),
        concurrency: None,
        faults: None,
        reconcile: None,
        history: None,
        rows: Vec::new(),
        errors: Vec::new(),
    };
    // Every phase but reconcile runs the local stack and its binaries.
    let needs_stack = args.only.is_empty() || args.only.iter().any(|p| *p != Phase::Reconcile);
    if needs_stack {
        if !args.skip_builds {
            build_all(&mut results);
        }
        measure_sizes(&mut results);
    }
    for &phase in <Phase as clap::ValueEnum>::value_variants() {
        if !args.only.is_empty() && !args.only.contains(&phase) {
            continue;
        }
        let outcome = match phase {
            Phase::Approvals => phase_approvals(&mut results, &sizes).await,
            Phase::Lateness => phase_lateness(&mut results, &sizes).await,
            Phase::Concurrency => phase_concurrency(&mut results, &sizes).await,
            Phase::Faults => phase_faults(&mut results, &sizes).await,
            Phase::Reconcile => phase_reconcile(&mut results, &sizes).await,
            Phase::History => phase_history(&mut results, &sizes).await,
        };
        let name = format!("{phase:?}").to_lowercase();
        if let Err(err) = outcome {
            eprintln!("elevate-bench: {name} failed: {err}");
            results.errors.push(format!("{name}: {err}"));
        }
    }
    results.rows = rows(&results);

    let out = args
        .out
        .unwrap_or_else(|| binaries::target_dir().join("bench").join("results.json"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;

    println!();
    println!("elevate bench — {}", results.machine.line());
    println!(
        "driver: {} build; stack: {}; binaries: {}{}",
        results.driver_build,
        results.stack,
        results.binary_sizes.requested,
        results
            .binary_sizes
            .fallback
            .as_ref()
            .map(|_| " (arm64 build failed, see results.json)")
            .unwrap_or_default()
    );
    println!();
    print!("{}", table(&results.rows));
    for problem in results
        .errors
        .iter()
        .chain(results.approval.iter().flat_map(|a| a.problems.iter()))
        .chain(
            results
                .revoke_lateness
                .iter()
                .flat_map(|l| l.problems.iter()),
        )
        .chain(results.concurrency.iter().flat_map(|c| c.violations.iter()))
        .chain(results.faults.iter().flat_map(|f| f.violations.iter()))
        .chain(results.reconcile.iter().flat_map(|r| r.problems.iter()))
        .chain(results.history.iter().flat_map(history_problems))
        .take(40)
    {
        println!("! {problem}");
    }
    println!();
    println!(
        "written {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
