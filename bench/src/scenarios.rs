//! The two proofs, at any size: `make bench` runs them big, `make test` small.
//!
//! - [`double_clicked_grants`]: many requests approved at once, every Approve clicked twice at
//!   the same moment by the two approvers: exactly one approval, escalation and expiry each,
//!   every audit chain verifies, no schedule left behind, nobody left in the group.
//! - [`grants_through_faults`]: grants whose functions reach AWS through a [`FaultProxy`]:
//!   every grant still ends with its access removed (SDK retries, the pump's retries, Lambda's
//!   async retries and destination, the sweep), none is recorded ended while its user is still
//!   in the group, and no request is lost or left without a way to finish.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use elevate_core::{Action, Request, State};
use serde::Serialize;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::checks::{
    audit_tally, ended_vs_membership, leftover_schedules, AuditTally, EndedVsMembership,
};
use crate::config::{BenchConfig, APPROVERS, GROUP};
use crate::faults::{FaultProxy, FaultStats};
use crate::harness::{BenchError, Harness, Opened};
use crate::observe::{MembershipWatcher, StateWatcher};

/// The states a request never leaves.
fn settled(state: State) -> bool {
    state.is_final()
}

/// Opens one request per requester, `parallel` at a time.
async fn open_all(
    harness: &Arc<Harness>,
    requesters: Vec<String>,
    duration: Duration,
    parallel: usize,
    resilient: bool,
) -> Result<Vec<Opened>, BenchError> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for requester in requesters {
        let harness = harness.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            if resilient {
                harness.open_resilient(&requester, duration, 20).await
            } else {
                harness.open(&requester, duration).await
            }
        });
    }
    let mut opened = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        opened.push(joined.map_err(|e| BenchError::Scenario(format!("open task: {e}")))??);
    }
    Ok(opened)
}

/// Sizes of [`double_clicked_grants`].
#[derive(Debug, Clone)]
pub struct DoubleClickOptions {
    /// Requesters `user<first>`... one request each.
    pub grants: usize,
    pub first_user: usize,
    pub duration: Duration,
    /// How long to wait for every grant to expire and its schedule to go.
    pub deadline: Duration,
}

/// What [`double_clicked_grants`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct DoubleClickReport {
    pub grants: usize,
    pub clicks: usize,
    /// Answers to the clicks, by HTTP status.
    pub click_statuses: BTreeMap<u16, usize>,
    /// Milliseconds between the first and the last click sent.
    pub click_spread_ms: f64,
    pub audit: AuditTally,
    pub ended: EndedVsMembership,
    pub leftover_schedules: Vec<String>,
    pub members_at_end: usize,
    pub elapsed_s: f64,
    pub violations: Vec<String>,
}

impl DoubleClickReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// `grants` requests, approved at once: each Approve is clicked by both approvers at the same
/// moment (every click of every request waits on one barrier).
pub async fn double_clicked_grants(
    harness: Arc<Harness>,
    options: &DoubleClickOptions,
) -> Result<DoubleClickReport, BenchError> {
    let started = Instant::now();
    let requesters: Vec<String> = (options.first_user..options.first_user + options.grants)
        .map(BenchConfig::requester)
        .collect();
    let membership =
        MembershipWatcher::start(harness.moto.clone(), GROUP, Duration::from_millis(20));
    let states = StateWatcher::start(
        harness.moto.clone(),
        vec![State::Expired, State::Revoked],
        Duration::from_millis(50),
    );
    let opened = open_all(&harness, requesters, options.duration, 8, false).await?;

    let clicks = opened.len() * APPROVERS.len();
    let barrier = Arc::new(Barrier::new(clicks));
    let mut tasks = JoinSet::new();
    for request in &opened {
        for approver in APPROVERS {
            let harness = harness.clone();
            let barrier = barrier.clone();
            let request = request.clone();
            tasks.spawn(async move {
                barrier.wait().await;
                harness.approve(approver, &request).await
            });
        }
    }
    let mut click_statuses = BTreeMap::new();
    let mut sent = Vec::new();
    let mut violations = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(clicked)) => {
                *click_statuses.entry(clicked.status).or_default() += 1;
                sent.push(clicked.sent_at);
                if clicked.status != 200 {
                    violations.push(format!("a click was answered {}", clicked.status));
                }
            }
            Ok(Err(err)) => violations.push(format!("a click failed: {err}")),
            Err(err) => violations.push(format!("a click task failed: {err}")),
        }
    }
    let click_spread_ms = match (sent.iter().min(), sent.iter().max()) {
        (Some(first), Some(last)) => crate::stats::ms(*last - *first),
        _ => 0.0,
    };

    let until = Instant::now() + options.deadline;
    let requests = loop {
        let requests = harness.moto.all_requests().await?;
        let done = requests.len() >= opened.len()
            && requests.iter().all(|r| settled(r.state))
            && leftover_schedules(&harness.moto.schedules().await?).is_empty();
        if done || Instant::now() > until {
            break requests;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // One more poll of each, so the last removals and records are seen.
    membership.next_poll().await;
    let tracks = membership.stop().await;
    let recorded = states.stop().await;
    let members_at_end = harness.moto.group_members(GROUP).await?;
    let audit = audit_tally(&harness.moto, &requests).await?;
    let ended = ended_vs_membership(&requests, &tracks, &recorded, &members_at_end);
    let leftover = leftover_schedules(&harness.moto.schedules().await?);

    let n = opened.len();
    violations.extend(audit.violations.iter().cloned());
    violations.extend(ended.violations.iter().cloned());
    if requests.len() != n {
        violations.push(format!(
            "{} requests in the table, {n} opened",
            requests.len()
        ));
    }
    for (action, expected) in [
        (Action::Request, n),
        (Action::Approve, n),
        (Action::Activate, n),
        (Action::Expire, n),
        (Action::Deny, 0),
        (Action::Revoke, 0),
        (Action::Fail, 0),
    ] {
        let found = audit.count(action);
        if found != expected {
            violations.push(format!(
                "{found} `{action}` events, expected exactly {expected}"
            ));
        }
    }
    if audit.in_state(State::Expired) != n {
        violations.push(format!(
            "{} of {n} requests EXPIRED (states: {:?})",
            audit.in_state(State::Expired),
            audit.states
        ));
    }
    for name in &leftover {
        violations.push(format!("schedule {name} left behind"));
    }
    if !members_at_end.is_empty() {
        violations.push(format!("{} users still in {GROUP}", members_at_end.len()));
    }
    Ok(DoubleClickReport {
        grants: n,
        clicks,
        click_statuses,
        click_spread_ms,
        audit,
        ended,
        leftover_schedules: leftover,
        members_at_end: members_at_end.len(),
        elapsed_s: started.elapsed().as_secs_f64(),
        violations,
    })
}

/// Sizes of [`grants_through_faults`].
#[derive(Debug, Clone)]
pub struct FaultOptions {
    pub grants: usize,
    pub first_user: usize,
    pub duration: Duration,
    /// How long to wait for every request to end.
    pub deadline: Duration,
    /// How often the sweep is invoked once the grants are due, as its rate schedule would.
    pub sweep_every: Duration,
    /// Wait for approvals whose escalation never started to be escalated by the sweep (which
    /// retries them only after `Settings::escalation_retry_after`, 2 minutes). When false such
    /// requests are reported as awaiting that retry, which is their path to completion.
    pub wait_for_escalation_retry: bool,
}

/// What [`grants_through_faults`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub grants: usize,
    /// Requests whose `POST /requests` answer was an error (found in moto, or sent again).
    pub open_errors: usize,
    /// Approve clicks it took, in all.
    pub clicks: usize,
    pub sweeps: usize,
    pub sweeps_failed: usize,
    pub faults: FaultStats,
    /// APPROVED requests whose escalation never started, awaiting the sweep's retry (their
    /// approval's answer was lost, so approve took it for someone else's decision).
    pub awaiting_escalation_retry: Vec<String>,
    pub audit: AuditTally,
    pub ended: EndedVsMembership,
    pub members_at_end: usize,
    pub elapsed_s: f64,
    pub violations: Vec<String>,
}

impl FaultReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Grants through a fault-injecting proxy (the harness's stack must use `proxy` as its
/// functions' AWS endpoint). Faults stay on to the end: the sweep has to finish the job
/// through them too.
pub async fn grants_through_faults(
    harness: Arc<Harness>,
    proxy: &FaultProxy,
    options: &FaultOptions,
) -> Result<FaultReport, BenchError> {
    let started = Instant::now();
    let requesters: Vec<String> = (options.first_user..options.first_user + options.grants)
        .map(BenchConfig::requester)
        .collect();
    let membership =
        MembershipWatcher::start(harness.moto.clone(), GROUP, Duration::from_millis(20));
    let states = StateWatcher::start(
        harness.moto.clone(),
        vec![State::Expired, State::Revoked],
        Duration::from_millis(50),
    );
    let opened = open_all(&harness, requesters.clone(), options.duration, 5, true).await?;
    let open_errors = opened.iter().filter(|o| o.answered_at.is_none()).count();

    let mut tasks = JoinSet::new();
    for request in opened.clone() {
        let harness = harness.clone();
        tasks.spawn(async move {
            harness
                .approve_until_decided(APPROVERS[0], &request, 30)
                .await
        });
    }
    let mut clicks = 0;
    let mut violations = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(n)) => clicks += n,
            Ok(Err(err)) => violations.push(err.to_string()),
            Err(err) => violations.push(format!("an approve task failed: {err}")),
        }
    }

    // Wait for every request to end; once the grants are due, sweep now and then as the rate
    // schedule would.
    let mut sweeps = 0;
    let mut sweeps_failed = 0;
    let mut last_sweep: Option<Instant> = None;
    let until = Instant::now() + options.deadline;
    let sweep = serde_json::json!({"action": "sweep"});
    let retry_after = elevate_core::service::Settings::default().escalation_retry_after;
    let awaiting_retry = |r: &Request| {
        r.state == State::Approved
            && r.activated_at.is_none()
            && r.decided_at.is_some_and(|at| {
                (Utc::now() - at).to_std().unwrap_or_default()
                    < retry_after + options.sweep_every * 2
            })
    };
    let requests = loop {
        let requests = harness.moto.all_requests().await?;
        let done = requests.len() >= opened.len()
            && requests.iter().all(|r| {
                settled(r.state) || (!options.wait_for_escalation_retry && awaiting_retry(r))
            });
        if done || Instant::now() > until {
            break requests;
        }
        let due = requests
            .iter()
            .filter_map(|r| r.expires_at)
            .max()
            .is_some_and(|last| last <= Utc::now());
        if due && last_sweep.is_none_or(|at| at.elapsed() >= options.sweep_every) {
            last_sweep = Some(Instant::now());
            sweeps += 1;
            if harness
                .client
                .invoke("elevate-revoke", &sweep, false)
                .await
                .is_err()
            {
                sweeps_failed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    membership.next_poll().await;
    let tracks = membership.stop().await;
    let recorded = states.stop().await;
    let members_at_end = harness.moto.group_members(GROUP).await?;
    let audit = audit_tally(&harness.moto, &requests).await?;
    let ended = ended_vs_membership(&requests, &tracks, &recorded, &members_at_end);
    violations.extend(audit.violations.iter().cloned());
    violations.extend(ended.violations.iter().cloned());

    // Lost or duplicated requests: every requester has exactly one.
    let mut per_requester: BTreeMap<&str, usize> = BTreeMap::new();
    for request in &requests {
        *per_requester.entry(request.requester.as_str()).or_default() += 1;
    }
    for requester in &requesters {
        match per_requester.get(requester.as_str()) {
            Some(1) => {}
            Some(n) => violations.push(format!("{requester} has {n} requests")),
            None => violations.push(format!("the request of {requester} is lost")),
        }
    }
    let mut awaiting_escalation_retry = Vec::new();
    for request in &requests {
        if awaiting_retry(request) && !options.wait_for_escalation_retry {
            awaiting_escalation_retry.push(request.id.to_string());
        } else if !matches!(request.state, State::Expired | State::Revoked) {
            violations.push(format!(
                "request {} of {} is stuck in {}",
                request.id, request.requester, request.state
            ));
        }
    }
    let ended_users: HashSet<&str> = requests.iter().map(|r| r.requester.as_str()).collect();
    for user in &members_at_end {
        if ended_users.contains(user.as_str()) {
            // Already reported per request by ended_vs_membership when its grant ended.
            continue;
        }
        violations.push(format!("{user} is in {GROUP} with no request"));
    }
    let started_or_failed = requests.len() - awaiting_escalation_retry.len();
    if audit.count(Action::Activate) + audit.count(Action::Fail) < started_or_failed {
        violations.push(format!(
            "{} activations and {} failures for {started_or_failed} escalated requests",
            audit.count(Action::Activate),
            audit.count(Action::Fail),
        ));
    }
    Ok(FaultReport {
        grants: opened.len(),
        open_errors,
        clicks,
        sweeps,
        sweeps_failed,
        faults: proxy.stats(),
        awaiting_escalation_retry,
        audit,
        ended,
        members_at_end: members_at_end.len(),
        elapsed_s: started.elapsed().as_secs_f64(),
        violations,
    })
}
