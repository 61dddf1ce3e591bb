//! The latency figures of `make bench`.
//!
//! - approval → membership: a signed Approve click is answered 200, then ListGroupsForUser is
//!   polled back to back until the user is in the group; the figure is the arrival of the first
//!   answer showing them, minus the arrival of the click's answer (one request at a time, so
//!   each figure is one approval's own latency, not a queue's);
//! - request → Slack message: the stand-in's recorded post time of the request's message minus
//!   the time `POST /requests` was sent;
//! - revoke lateness: grants expiring within one minute, their revocation schedules set 60 s
//!   early and fired by the pump; GetGroup is polled all along and the figure is the arrival of
//!   the first answer without the user, minus `expires_at`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::{BenchConfig, APPROVERS, GROUP};
use crate::harness::{BenchError, Harness, Opened};
use crate::observe::MembershipWatcher;
use crate::stats::{ms, Summary};

/// How long one approval may take to show in IAM before it counts as lost.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// Approval and announcement latencies of sequential requests.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalFigures {
    pub requests: usize,
    /// Click answered → membership visible.
    pub from_click_answer: Option<Summary>,
    /// Click sent → membership visible (for context: includes the click's own round trip).
    pub from_click_sent: Option<Summary>,
    /// Click answered → first poll (the poll's own round trip: the measurement's resolution).
    pub poll_round_trip: Option<Summary>,
    /// `POST /requests` sent → the stand-in's record of the message.
    pub request_to_slack: Option<Summary>,
    /// Approvals never seen in IAM, clicks not answered 200, messages not found.
    pub problems: Vec<String>,
}

/// `requests` requests, one after another: open, click Approve, poll IAM until the user is in.
pub async fn approvals(
    harness: &Harness,
    requests: usize,
    duration: Duration,
) -> Result<ApprovalFigures, BenchError> {
    let mut from_answer = Vec::new();
    let mut from_sent = Vec::new();
    let mut round_trips = Vec::new();
    let mut opened_all: Vec<Opened> = Vec::new();
    let mut problems = Vec::new();
    for n in 1..=requests {
        let user = BenchConfig::requester(n);
        let opened = harness.open(&user, duration).await?;
        let clicked = harness.approve(APPROVERS[0], &opened).await?;
        opened_all.push(opened);
        if clicked.status != 200 {
            problems.push(format!("click for {user} answered {}", clicked.status));
            continue;
        }
        let deadline = Instant::now() + MEMBERSHIP_TIMEOUT;
        let mut first = true;
        loop {
            let sent = Utc::now();
            let member = harness.moto.is_member(&user, GROUP).await?;
            let received = Utc::now();
            if first {
                round_trips.push(ms(received - sent));
                first = false;
            }
            if member {
                from_answer.push(ms(received - clicked.answered_at));
                from_sent.push(ms(received - clicked.sent_at));
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "{user} not in {GROUP} {MEMBERSHIP_TIMEOUT:?} after approval"
                ));
                break;
            }
        }
    }

    let messages = harness.client.slack_messages().await?;
    let posted: HashMap<(String, String), DateTime<Utc>> = messages
        .into_iter()
        .filter(|m| m.visible_to.is_none())
        .map(|m| ((m.channel, m.ts), m.posted_at))
        .collect();
    let mut to_slack = Vec::new();
    for opened in &opened_all {
        let found = opened
            .request
            .message
            .as_ref()
            .and_then(|m| posted.get(&(m.channel.clone(), m.ts.clone())));
        match found {
            Some(at) => to_slack.push(ms(*at - opened.sent_at)),
            None => problems.push(format!("no Slack message found for {}", opened.id())),
        }
    }
    Ok(ApprovalFigures {
        requests,
        from_click_answer: Summary::of(&from_answer),
        from_click_sent: Summary::of(&from_sent),
        poll_round_trip: Summary::of(&round_trips),
        request_to_slack: Summary::of(&to_slack),
        problems,
    })
}

/// Revocation lateness of many grants expiring within one minute.
#[derive(Debug, Clone, Serialize)]
pub struct LatenessFigures {
    pub grants: usize,
    /// Seconds between the first and the last `expires_at`.
    pub expiry_span_s: f64,
    /// Shortest and longest grant asked for, in seconds.
    pub durations_s: (u64, u64),
    /// First GetGroup answer without the user − `expires_at`.
    pub lateness: Option<Summary>,
    /// GetGroup polls made, and their mean round trip (the measurement's resolution).
    pub polls: u64,
    pub mean_poll_ms: f64,
    pub problems: Vec<String>,
}

/// `grants` grants (users `user001`...) lasting 70 to 90 s, whose expiries are spread evenly
/// over `window`. All requests are opened first; each is then approved at the moment that
/// makes it expire at its place in the window, so the approvals are over before the first
/// expiry and the revocations run on their own. Each revocation schedule (60 s early) is
/// still ahead when its grant is activated, so every one goes through the pump.
pub async fn revoke_lateness(
    harness: Arc<Harness>,
    grants: usize,
    window: Duration,
) -> Result<LatenessFigures, BenchError> {
    // moto answers one request at a time, and a GetGroup of hundreds of members takes it a
    // good part of a second: back-to-back polls would starve the revocations being measured.
    // A quarter-second gap keeps the figure's resolution well under the 2 s target.
    let watcher = MembershipWatcher::start(harness.moto.clone(), GROUP, Duration::from_millis(250));
    let n = grants.max(1);
    // 70 s + a spread over 20 s, shuffled against the order of the expiries.
    let durations: Vec<Duration> = (0..n)
        .map(|i| Duration::from_secs(70 + ((i * 7919) % n * 21 / n) as u64))
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = JoinSet::new();
    for (i, duration) in durations.iter().copied().enumerate() {
        let harness = harness.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let opened = harness
                .open(&BenchConfig::requester(i + 1), duration)
                .await?;
            Ok::<_, BenchError>((i, opened))
        });
    }
    let mut opened: Vec<Option<Opened>> = vec![None; n];
    while let Some(joined) = tasks.join_next().await {
        let (i, o) = joined.map_err(|e| BenchError::Scenario(format!("open task: {e}")))??;
        opened[i] = Some(o);
    }
    let opened: Vec<Opened> = opened.into_iter().flatten().collect();

    // Approve each so that it expires at first_expiry + window * i / n.
    let longest = durations.iter().max().copied().unwrap_or_default();
    let first_expiry = Utc::now()
        + chrono::Duration::from_std(longest + Duration::from_secs(5)).unwrap_or_default();
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let mut plan: Vec<(DateTime<Utc>, usize)> = opened
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let offset = window_ms * i64::try_from(i).unwrap_or(0) / i64::try_from(n).unwrap_or(1);
            let target = first_expiry + chrono::Duration::milliseconds(offset);
            (
                target - chrono::Duration::from_std(o.request.duration).unwrap_or_default(),
                i,
            )
        })
        .collect();
    plan.sort();
    let mut clicks = JoinSet::new();
    for (at, i) in plan {
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let harness = harness.clone();
        let o = opened[i].clone();
        clicks.spawn(async move {
            let clicked = harness.approve(APPROVERS[0], &o).await;
            (o.request.requester.clone(), clicked.map(|c| c.status))
        });
    }
    let mut problems = Vec::new();
    while let Some(joined) = clicks.join_next().await {
        match joined {
            Ok((_, Ok(200))) => {}
            Ok((user, Ok(status))) => problems.push(format!("click for {user} answered {status}")),
            Ok((user, Err(err))) => problems.push(format!("click for {user} failed: {err}")),
            Err(err) => problems.push(format!("click task failed: {err}")),
        }
    }
    let durations: Vec<u64> = durations.iter().map(Duration::as_secs).collect();

    // Wait until every user left the group (or two minutes past the last expiry).
    let mut requests = Vec::new();
    let deadline = Instant::now() + longest + window + Duration::from_secs(120);
    loop {
        let tracks = watcher.tracks();
        let gone = opened
            .iter()
            .filter(|o| {
                tracks
                    .get(o.request.requester.as_str())
                    .is_some_and(|t| t.first_gone.is_some())
            })
            .count();
        if gone == opened.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (polls, _errors, mean_poll) = watcher.poll_stats();
    let tracks = watcher.stop().await;
    for o in &opened {
        match harness.moto.request(o.id()).await? {
            Some(request) => requests.push(request),
            None => problems.push(format!("request {} not in the table", o.id())),
        }
    }
    let mut lateness = Vec::new();
    for request in &requests {
        let track = tracks.get(request.requester.as_str());
        match (
            request.expires_at,
            track.and_then(|t| t.first_present),
            track.and_then(|t| t.first_gone),
        ) {
            (Some(expires_at), Some(_), Some(gone)) => {
                lateness.push(ms(gone.received - expires_at))
            }
            (None, _, _) => problems.push(format!(
                "request {} never activated ({})",
                request.id, request.state
            )),
            (_, None, _) => problems.push(format!("{} never seen in {GROUP}", request.requester)),
            (_, _, None) => {
                problems.push(format!("{} never seen leaving {GROUP}", request.requester))
            }
        }
    }
    let expiries: Vec<DateTime<Utc>> = requests.iter().filter_map(|r| r.expires_at).collect();
    let expiry_span_s = match (expiries.iter().min(), expiries.iter().max()) {
        (Some(first), Some(last)) => ms(*last - *first) / 1000.0,
        _ => 0.0,
    };
    Ok(LatenessFigures {
        grants: opened.len(),
        expiry_span_s,
        durations_s: (
            durations.iter().copied().min().unwrap_or(0),
            durations.iter().copied().max().unwrap_or(0),
        ),
        lateness: Summary::of(&lateness),
        polls,
        mean_poll_ms: mean_poll.as_secs_f64() * 1000.0,
        problems,
    })
}
