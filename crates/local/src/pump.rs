//! The Scheduler's firing, which moto does not do: poll a schedule group, and when an `at(...)`
//! schedule is due (or a `rate(...)` period has passed) invoke its target with its Input.
//!
//! Like EventBridge Scheduler, a failed invocation is retried (with a backoff that starts at
//! one tick, at most `RetryPolicy.MaximumRetryAttempts` times and at most the pump's own cap)
//! and `ActionAfterCompletion: DELETE` deletes a one-time schedule once its target ran. A
//! schedule fired and then updated to a new expression fires again. Invocations run
//! concurrently: the revoke function may wait out the minute it was fired early.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_scheduler::error::SdkError;
use aws_sdk_scheduler::types::{ActionAfterCompletion, ScheduleState};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::dispatch::{function_name, Dispatcher};

#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// The schedule group to watch (`ELEVATE_SCHEDULE_GROUP`).
    pub group: String,
    /// How often moto is polled.
    pub interval: Duration,
    /// The most retries of one occurrence, whatever the schedule's RetryPolicy allows
    /// (the real default, 185, would retry for a day).
    pub max_retries: u32,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl PumpConfig {
    pub fn new(group: impl Into<String>) -> Self {
        PumpConfig {
            group: group.into(),
            interval: Duration::from_millis(250),
            max_retries: 8,
            max_backoff: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error("Scheduler {action} failed: {message}")]
    Scheduler {
        action: &'static str,
        message: String,
    },
}

fn scheduler_error<E, R>(action: &'static str, error: SdkError<E, R>) -> PumpError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    PumpError::Scheduler {
        action,
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// A schedule expression the pump can fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expression {
    /// `at(yyyy-mm-ddThh:mm:ss)`: once.
    At(DateTime<Utc>),
    /// `rate(value unit)`: every period.
    Rate(chrono::Duration),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported schedule expression {0:?}")]
pub struct ExpressionError(pub String);

impl Expression {
    /// Parses `at(...)` (read as UTC) and `rate(...)`; `cron(...)` is not supported.
    pub fn parse(expression: &str) -> Result<Self, ExpressionError> {
        let fail = || ExpressionError(expression.to_owned());
        let expression = expression.trim();
        if let Some(at) = expression
            .strip_prefix("at(")
            .and_then(|e| e.strip_suffix(')'))
        {
            let time = NaiveDateTime::parse_from_str(at.trim(), "%Y-%m-%dT%H:%M:%S")
                .map_err(|_| fail())?;
            return Ok(Expression::At(time.and_utc()));
        }
        if let Some(rate) = expression
            .strip_prefix("rate(")
            .and_then(|e| e.strip_suffix(')'))
        {
            let (value, unit) = rate.trim().split_once(' ').ok_or_else(fail)?;
            let value: i64 = value.parse().map_err(|_| fail())?;
            if value <= 0 {
                return Err(fail());
            }
            let period = match unit.trim() {
                "minute" | "minutes" => chrono::Duration::minutes(value),
                "hour" | "hours" => chrono::Duration::hours(value),
                "day" | "days" => chrono::Duration::days(value),
                _ => return Err(fail()),
            };
            return Ok(Expression::Rate(period));
        }
        Err(fail())
    }
}

/// What the pump needs of one schedule (from GetSchedule).
#[derive(Debug, Clone, PartialEq)]
struct Definition {
    expression: String,
    target_arn: String,
    input: Option<String>,
    delete_after: bool,
    enabled: bool,
    max_retries: Option<u32>,
    max_event_age: Option<chrono::Duration>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    created: Option<DateTime<Utc>>,
}

/// The pump's memory of one schedule.
#[derive(Debug)]
struct Tracked {
    definition: Definition,
    last_modified: Option<DateTime<Utc>>,
    /// The occurrence being delivered or next to deliver.
    due: Option<DateTime<Utc>>,
    attempts: u32,
    retry_at: Option<DateTime<Utc>>,
    phase: Phase,
}

/// Where a tracked schedule is in its life. Only [`Phase::Waiting`] can fire; a schedule is
/// replaced by a fresh `Waiting` one when updated to a new expression while not in flight.
///
/// Waiting on `due`, sitting out `retry_at` and being disabled are all `Waiting`: they are
/// read from the other fields each tick. The warning of an unsupported expression is a phase
/// of its own, not a flag beside the others, because it is only ever given in `Waiting` with no
/// `due`, and nothing but that replacement gives such a schedule a `due` again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not running: fires once `due` and `retry_at` are reached, if enabled (no `due`: `Warned`).
    Waiting,
    /// Its expression is unsupported (no `due`) and that was logged once: it never fires.
    Warned,
    /// Its invocation is under way; what it comes to decides the next phase.
    InFlight,
    /// Ran, but deleting it failed: delete again, never invoke meanwhile; `finished` tells
    /// whether it is [`Phase::Finished`] once deleted, else `Waiting` (updated while it ran).
    DeletePending { finished: bool },
    /// A one-time schedule that ran or was given up, or any schedule past its end: never fires.
    Finished,
}

/// What one invocation came to.
#[derive(Debug)]
struct Outcome {
    name: String,
    expression: String,
    invoked: Result<(), String>,
    deleted: Option<Result<(), String>>,
}

/// What a tick saw finish and start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Schedules whose invocation started in this tick.
    pub fired: Vec<String>,
    /// Invocations that finished well since the last tick.
    pub succeeded: Vec<String>,
    /// Invocations that failed since the last tick (and will be retried unless given up).
    pub failed: Vec<String>,
    /// Schedules the pump stopped retrying.
    pub given_up: Vec<String>,
    /// Schedules deleted after completion.
    pub deleted: Vec<String>,
}

pub struct Pump {
    scheduler: aws_sdk_scheduler::Client,
    dispatcher: Arc<dyn Dispatcher>,
    config: PumpConfig,
    tracked: HashMap<String, Tracked>,
    in_flight: JoinSet<Outcome>,
    /// Which schedule each invocation under way is for, to clear it should the task panic.
    running: HashMap<tokio::task::Id, String>,
}

impl Pump {
    pub fn new(
        scheduler: aws_sdk_scheduler::Client,
        dispatcher: Arc<dyn Dispatcher>,
        config: PumpConfig,
    ) -> Self {
        Pump {
            scheduler,
            dispatcher,
            config,
            tracked: HashMap::new(),
            in_flight: JoinSet::new(),
            running: HashMap::new(),
        }
    }

    /// Polls until `shutdown` completes; a failed poll is logged and tried again next tick.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = ticks.tick() => {
                    if let Err(error) = self.tick(Utc::now()).await {
                        tracing::warn!(group = %self.config.group, %error, "scheduler poll failed");
                    }
                }
            }
        }
        self.in_flight.abort_all();
    }

    /// Runs the pump in the background until the handle is stopped or dropped.
    pub fn spawn(self) -> PumpHandle {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async {
            let _ = stopped.await;
        }));
        PumpHandle {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits for every invocation under way, and takes in what they came to.
    pub async fn settle(&mut self, now: DateTime<Utc>) -> TickReport {
        let mut report = TickReport::default();
        while let Some(joined) = self.in_flight.join_next_with_id().await {
            self.take_outcome(joined, now, &mut report);
        }
        report
    }

    /// One poll at time `now`: takes in finished invocations, then starts the due ones.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, PumpError> {
        let mut report = TickReport::default();
        while let Some(joined) = self.in_flight.try_join_next_with_id() {
            self.take_outcome(joined, now, &mut report);
        }

        let listed = self.list().await?;
        let names: HashSet<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
        self.tracked
            .retain(|name, t| t.phase == Phase::InFlight || names.contains(name.as_str()));

        for (name, last_modified) in &listed {
            let known = self
                .tracked
                .get(name)
                .is_some_and(|t| last_modified.is_some() && t.last_modified == *last_modified);
            if !known {
                let definition = match self.get(name).await {
                    Ok(Some(definition)) => definition,
                    // Deleted between the list and the get.
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!(schedule = %name, %error, "cannot read schedule");
                        continue;
                    }
                };
                self.remember(name, definition, *last_modified, now);
            }
            self.consider(name, now, &mut report).await;
        }
        Ok(report)
    }

    fn remember(
        &mut self,
        name: &str,
        definition: Definition,
        last_modified: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) {
        if let Some(tracked) = self.tracked.get_mut(name) {
            tracked.last_modified = last_modified;
            if tracked.definition.expression == definition.expression {
                tracked.definition = definition;
                return;
            }
            if tracked.phase == Phase::InFlight {
                // Decide once the invocation under way is done.
                tracked.definition = definition;
                return;
            }
        }
        let due = first_due(&definition, now);
        self.tracked.insert(
            name.to_owned(),
            Tracked {
                definition,
                last_modified,
                due,
                attempts: 0,
                retry_at: None,
                phase: Phase::Waiting,
            },
        );
    }

    async fn consider(&mut self, name: &str, now: DateTime<Utc>, report: &mut TickReport) {
        let Some(tracked) = self.tracked.get_mut(name) else {
            return;
        };
        match tracked.phase {
            Phase::DeletePending { finished } => {
                match delete(&self.scheduler, &self.config.group, name).await {
                    Ok(()) => {
                        tracked.phase = if finished {
                            Phase::Finished
                        } else {
                            Phase::Waiting
                        };
                        report.deleted.push(name.to_owned());
                    }
                    Err(error) => {
                        tracing::warn!(schedule = %name, %error, "cannot delete schedule")
                    }
                }
                return;
            }
            Phase::Warned | Phase::InFlight | Phase::Finished => return,
            Phase::Waiting => {}
        }
        if !tracked.definition.enabled {
            return;
        }
        let Some(due) = tracked.due else {
            tracked.phase = Phase::Warned;
            tracing::warn!(schedule = %name, expression = %tracked.definition.expression, "unsupported schedule expression: it will not fire");
            return;
        };
        if due > now || tracked.retry_at.is_some_and(|at| at > now) {
            return;
        }
        if tracked.definition.end.is_some_and(|end| due > end) {
            tracked.phase = Phase::Finished;
            return;
        }

        let definition = tracked.definition.clone();
        let payload = match &definition.input {
            None => Value::Object(Default::default()),
            Some(input) => serde_json::from_str(input).unwrap_or(Value::String(input.clone())),
        };
        let delete_after = definition.delete_after
            && matches!(
                Expression::parse(&definition.expression),
                Ok(Expression::At(_))
            );
        tracked.phase = Phase::InFlight;
        report.fired.push(name.to_owned());
        tracing::info!(schedule = %name, target = %definition.target_arn, attempt = tracked.attempts + 1, "firing schedule");

        let dispatcher = Arc::clone(&self.dispatcher);
        let scheduler = self.scheduler.clone();
        let group = self.config.group.clone();
        let name = name.to_owned();
        let name_for_panic = name.clone();
        let handle = self.in_flight.spawn(async move {
            let function = function_name(&definition.target_arn);
            let invoked = dispatcher
                .invoke(function, payload)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            let deleted = if invoked.is_ok() && delete_after {
                Some(
                    delete(&scheduler, &group, &name)
                        .await
                        .map_err(|e| e.to_string()),
                )
            } else {
                None
            };
            Outcome {
                name,
                expression: definition.expression,
                invoked,
                deleted,
            }
        });
        self.running.insert(handle.id(), name_for_panic);
    }

    fn take_outcome(
        &mut self,
        joined: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) {
        let outcome = match joined {
            Ok((id, outcome)) => {
                self.running.remove(&id);
                outcome
            }
            Err(error) => {
                // A panicking handler counts as a failed attempt, as a crashed Lambda would.
                let Some(name) = self.running.remove(&error.id()) else {
                    return;
                };
                let Some(tracked) = self.tracked.get(&name) else {
                    return;
                };
                Outcome {
                    expression: tracked.definition.expression.clone(),
                    name,
                    invoked: Err(format!("the invocation panicked: {error}")),
                    deleted: None,
                }
            }
        };
        let Some(tracked) = self.tracked.get_mut(&outcome.name) else {
            return;
        };
        tracked.phase = Phase::Waiting;
        let name = outcome.name;
        let rate = match Expression::parse(&outcome.expression) {
            Ok(Expression::Rate(period)) => Some(period),
            _ => None,
        };
        match outcome.invoked {
            Ok(()) => {
                tracing::info!(schedule = %name, "schedule target ran");
                report.succeeded.push(name.clone());
                tracked.attempts = 0;
                tracked.retry_at = None;
                match rate {
                    Some(period) => {
                        tracked.due = tracked.due.map(|due| next_after(due, period, now))
                    }
                    None => tracked.phase = Phase::Finished,
                }
                match outcome.deleted {
                    Some(Ok(())) => report.deleted.push(name.clone()),
                    Some(Err(error)) => {
                        tracing::warn!(schedule = %name, %error, "cannot delete schedule; will retry");
                        tracked.phase = Phase::DeletePending {
                            finished: tracked.phase == Phase::Finished,
                        };
                    }
                    None => {}
                }
            }
            Err(error) => {
                tracked.attempts += 1;
                report.failed.push(name.clone());
                let allowed = tracked
                    .definition
                    .max_retries
                    .unwrap_or(u32::MAX)
                    .min(self.config.max_retries);
                let too_old = match (tracked.due, tracked.definition.max_event_age) {
                    (Some(due), Some(age)) => now - due > age,
                    _ => false,
                };
                if tracked.attempts > allowed || too_old {
                    tracing::error!(schedule = %name, attempts = tracked.attempts, %error, "schedule target failed; giving up");
                    report.given_up.push(name.clone());
                    tracked.attempts = 0;
                    tracked.retry_at = None;
                    match rate {
                        Some(period) => {
                            tracked.due = tracked.due.map(|due| next_after(due, period, now))
                        }
                        None => tracked.phase = Phase::Finished,
                    }
                } else {
                    let backoff = backoff(
                        self.config.interval,
                        self.config.max_backoff,
                        tracked.attempts,
                    );
                    tracing::warn!(schedule = %name, attempts = tracked.attempts, retry_in = ?backoff, %error, "schedule target failed; will retry");
                    tracked.retry_at = Some(now + backoff);
                }
            }
        }
        // Updated to a new expression while it ran: start over with the new one.
        if tracked.definition.expression != outcome.expression {
            tracked.due = first_due(&tracked.definition, now);
            tracked.phase = match tracked.phase {
                Phase::DeletePending { .. } => Phase::DeletePending { finished: false },
                _ => Phase::Waiting,
            };
            tracked.attempts = 0;
            tracked.retry_at = None;
        }
    }

    /// Names and last modification times of the group's schedules.
    async fn list(&self) -> Result<Vec<(String, Option<DateTime<Utc>>)>, PumpError> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .scheduler
                .list_schedules()
                .group_name(&self.config.group)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| scheduler_error("ListSchedules", e))?;
            for summary in page.schedules() {
                if let Some(name) = summary.name() {
                    listed.push((
                        name.to_owned(),
                        summary.last_modification_date().and_then(to_chrono),
                    ));
                }
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(listed)
    }

    async fn get(&self, name: &str) -> Result<Option<Definition>, PumpError> {
        let got = match self
            .scheduler
            .get_schedule()
            .group_name(&self.config.group)
            .name(name)
            .send()
            .await
        {
            Ok(got) => got,
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
                return Ok(None)
            }
            Err(e) => return Err(scheduler_error("GetSchedule", e)),
        };
        let Some(target) = got.target() else {
            return Ok(None);
        };
        let retry = target.retry_policy();
        Ok(Some(Definition {
            expression: got.schedule_expression().unwrap_or_default().to_owned(),
            target_arn: target.arn().to_owned(),
            input: target.input().map(str::to_owned),
            delete_after: got.action_after_completion() == Some(&ActionAfterCompletion::Delete),
            enabled: got.state() != Some(&ScheduleState::Disabled),
            max_retries: retry
                .and_then(|r| r.maximum_retry_attempts())
                .and_then(|n| u32::try_from(n).ok()),
            max_event_age: retry
                .and_then(|r| r.maximum_event_age_in_seconds())
                .map(|s| chrono::Duration::seconds(i64::from(s))),
            start: got.start_date().and_then(to_chrono),
            end: got.end_date().and_then(to_chrono),
            created: got.creation_date().and_then(to_chrono),
        }))
    }
}

/// Stops a spawned pump.
pub struct PumpHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PumpHandle {
    /// The handle of a pump spawned as `task`, which ends once `stop` fires.
    pub(crate) fn from_parts(
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        PumpHandle {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops polling and waits for the pump to end (invocations under way are abandoned).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PumpHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn delete(
    scheduler: &aws_sdk_scheduler::Client,
    group: &str,
    name: &str,
) -> Result<(), PumpError> {
    match scheduler
        .delete_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Someone (the revoke function, cleaning up) got there first.
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(()),
        Err(e) => Err(scheduler_error("DeleteSchedule", e)),
    }
}

/// The first occurrence: the `at` time, or one period after the start (or creation) of a rate.
fn first_due(definition: &Definition, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match Expression::parse(&definition.expression).ok()? {
        Expression::At(at) => Some(at),
        Expression::Rate(period) => {
            let anchor = definition.start.or(definition.created).unwrap_or(now);
            Some(anchor + period)
        }
    }
}

/// The next occurrence of a rate after `now`, skipping the ones missed.
fn next_after(due: DateTime<Utc>, period: chrono::Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let mut next = due + period;
    while next <= now {
        next += period;
    }
    next
}

fn backoff(interval: Duration, max: Duration, attempts: u32) -> chrono::Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    let wait = interval.saturating_mul(factor).min(max);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(30))
}

fn to_chrono(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
    }

    #[test]
    fn parses_at_and_rate() {
        assert_eq!(
            Expression::parse("at(2026-11-25T10:00:05)"),
            Ok(Expression::At(utc(2026, 11, 25, 10, 0, 5)))
        );
        assert_eq!(
            Expression::parse("rate(1 minute)"),
            Ok(Expression::Rate(chrono::Duration::minutes(1)))
        );
        assert_eq!(
            Expression::parse("rate(5 minutes)"),
            Ok(Expression::Rate(chrono::Duration::minutes(5)))
        );
        assert_eq!(
            Expression::parse("rate(2 hours)"),
            Ok(Expression::Rate(chrono::Duration::hours(2)))
        );
        for bad in [
            "cron(0 * * * ? *)",
            "rate(0 minutes)",
            "rate(5 fortnights)",
            "at(tomorrow)",
            "at(2026-11-25 10:00:05)",
            "",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backs_off_from_one_tick_to_the_cap() {
        let tick = Duration::from_millis(250);
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(tick, cap, 1), chrono::Duration::milliseconds(250));
        assert_eq!(backoff(tick, cap, 2), chrono::Duration::milliseconds(500));
        assert_eq!(backoff(tick, cap, 4), chrono::Duration::seconds(2));
        assert_eq!(backoff(tick, cap, 40), chrono::Duration::seconds(30));
    }

    #[test]
    fn a_rate_skips_missed_periods() {
        let start = utc(2026, 1, 1, 0, 0, 0);
        let minute = chrono::Duration::minutes(1);
        assert_eq!(next_after(start, minute, start), start + minute);
        assert_eq!(
            next_after(start, minute, start + chrono::Duration::seconds(150)),
            start + chrono::Duration::minutes(3)
        );
    }
}
