//! [`Scheduler`] on EventBridge Scheduler: one-time `at()` schedules that invoke the revoke
//! function with a [`ScheduledAction`] as input, and delete themselves once they have fired.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};
use aws_sdk_scheduler::Client;
use chrono::{DateTime, NaiveDateTime, Utc};
use elevate_core::events::ScheduledAction;
use elevate_core::ports::{ScheduleInfo, Scheduler, SchedulerError};
use tracing::instrument;

use crate::error::AwsError;

/// The time zone of every schedule expression.
const TIME_ZONE: &str = "UTC";
/// The `at()` format (the Scheduler knows no fractions of a second).
const AT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// A revoke must happen however late it comes (a duplicate or late delivery is a no-op for
/// the revoke function), so the Scheduler keeps retrying for as long as it allows.
const MAX_RETRY_ATTEMPTS: i32 = 185;
const MAX_EVENT_AGE_SECONDS: i32 = 86_400;

/// Where the schedules live and what they call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerTarget {
    /// The schedule group (`ELEVATE_SCHEDULE_GROUP`).
    pub group: String,
    /// ARN of the function the schedules invoke (the revoke function).
    pub target_arn: String,
    /// Role the Scheduler assumes to invoke it.
    pub role_arn: String,
    /// SQS queue for deliveries that failed every retry.
    pub dead_letter_arn: Option<String>,
}

/// One-time schedules in one schedule group.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    target: SchedulerTarget,
}

impl EventBridgeScheduler {
    pub fn new(client: Client, target: SchedulerTarget) -> Self {
        EventBridgeScheduler { client, target }
    }

    /// Creates a schedule group; one that already exists is success. For tests and
    /// `make dev` (deployed groups come from template.yaml).
    pub async fn create_group(client: &Client, name: &str) -> Result<(), SchedulerError> {
        match client.create_schedule_group().name(name).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(SchedulerError::Unavailable(AwsError::boxed(
                format!("scheduler CreateScheduleGroup {name}"),
                err,
            ))),
        }
    }

    fn unavailable(
        &self,
        operation: &str,
        name: &str,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> SchedulerError {
        SchedulerError::Unavailable(AwsError::boxed(
            format!("scheduler {operation} {}/{name}", self.target.group),
            err,
        ))
    }

    fn schedule_target(&self, input: String) -> Result<Target, SchedulerError> {
        let dead_letter = self
            .target
            .dead_letter_arn
            .as_ref()
            .map(|arn| DeadLetterConfig::builder().arn(arn).build());
        Target::builder()
            .arn(&self.target.target_arn)
            .role_arn(&self.target.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
                    .build(),
            )
            .set_dead_letter_config(dead_letter)
            .build()
            .map_err(|e| SchedulerError::Unavailable(Box::new(e)))
    }
}

/// The `at()` expression of `at` in UTC, to the second (a fraction is dropped: the schedule
/// fires at most a second early, and its handler waits out the rest).
pub fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", at.format(AT_FORMAT))
}

/// The time of an `at(yyyy-mm-ddThh:mm:ss)` expression read as UTC.
pub fn parse_at_expression(expression: &str) -> Option<DateTime<Utc>> {
    let inner = expression.trim().strip_prefix("at(")?.strip_suffix(')')?;
    NaiveDateTime::parse_from_str(inner.trim(), AT_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

fn flexible_time_window_off() -> Result<FlexibleTimeWindow, SchedulerError> {
    FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| SchedulerError::Unavailable(Box::new(e)))
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    #[instrument(skip_all, fields(schedule = %action.schedule_name(), %at), err)]
    async fn schedule(
        &self,
        at: DateTime<Utc>,
        action: &ScheduledAction,
    ) -> Result<(), SchedulerError> {
        let name = action.schedule_name();
        let input =
            serde_json::to_string(action).map_err(|e| SchedulerError::Unavailable(Box::new(e)))?;
        let expression = at_expression(at);

        // Create, or replace when it exists; a replace that finds the schedule gone (it fired
        // or was cancelled meanwhile) creates it again.
        for _ in 0..3 {
            let created = self
                .client
                .create_schedule()
                .name(&name)
                .group_name(&self.target.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone(TIME_ZONE)
                .flexible_time_window(flexible_time_window_off()?)
                .action_after_completion(ActionAfterCompletion::Delete)
                .target(self.schedule_target(input.clone())?)
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conflict_exception()) => {}
                Err(err) => return Err(self.unavailable("CreateSchedule", &name, err)),
            }
            let updated = self
                .client
                .update_schedule()
                .name(&name)
                .group_name(&self.target.group)
                .schedule_expression(&expression)
                .schedule_expression_timezone(TIME_ZONE)
                .flexible_time_window(flexible_time_window_off()?)
                .action_after_completion(ActionAfterCompletion::Delete)
                .target(self.schedule_target(input.clone())?)
                .send()
                .await;
            match updated {
                Ok(_) => return Ok(()),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(err) => return Err(self.unavailable("UpdateSchedule", &name, err)),
            }
        }
        Err(SchedulerError::Unavailable(
            format!(
                "schedule {}/{name} kept appearing and disappearing while it was written",
                self.target.group
            )
            .into(),
        ))
    }

    #[instrument(skip(self), err)]
    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.unavailable("DeleteSchedule", name, err)),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<ScheduleInfo>, SchedulerError> {
        let found = match self
            .client
            .get_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await
        {
            Ok(found) => found,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(err) => return Err(self.unavailable("GetSchedule", name, err)),
        };
        let corrupt = |problem: String| {
            SchedulerError::Corrupt(format!("schedule {}/{name}: {problem}", self.target.group))
        };
        if let Some(zone) = found
            .schedule_expression_timezone()
            .filter(|zone| *zone != TIME_ZONE)
        {
            return Err(corrupt(format!("time zone `{zone}`, expected {TIME_ZONE}")));
        }
        let expression = found.schedule_expression().unwrap_or_default();
        let at = parse_at_expression(expression).ok_or_else(|| {
            corrupt(format!(
                "expression `{expression}` is not at(yyyy-mm-ddThh:mm:ss)"
            ))
        })?;
        let input = found
            .target()
            .and_then(|target| target.input())
            .ok_or_else(|| corrupt("no input".to_owned()))?;
        let action: ScheduledAction = serde_json::from_str(input)
            .map_err(|e| corrupt(format!("input `{input}` is not a scheduled action: {e}")))?;
        Ok(Some(ScheduleInfo {
            name: found.name().unwrap_or(name).to_owned(),
            at,
            action,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_round_trip_to_the_second() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T13:04:05.750Z")
            .expect("time")
            .with_timezone(&Utc);
        let expression = at_expression(at);
        assert_eq!(expression, "at(2026-11-25T13:04:05)");
        assert_eq!(
            parse_at_expression(&expression),
            Some(at - chrono::Duration::milliseconds(750))
        );
        assert_eq!(parse_at_expression("rate(5 minutes)"), None);
        assert_eq!(parse_at_expression("at(tomorrow)"), None);
    }
}
