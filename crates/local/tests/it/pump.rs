//! The scheduler pump against a real moto server.

use super::common;

use std::time::{Duration, Instant};

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use chrono::{DateTime, SubsecRound, Utc};
use common::FakeDispatcher;
use elevate_local::dispatch::DispatchError;
use elevate_local::pump::{Pump, PumpConfig};
use elevate_testkit::{unique_name, Moto};
use serde_json::json;

const REVOKE_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/elevate-scheduler";

struct Setup {
    _moto: Moto,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
}

async fn setup() -> Setup {
    let moto = Moto::start().await;
    let scheduler = aws_sdk_scheduler::Client::new(&moto.sdk_config().await);
    let group = unique_name("pump");
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create group");
    Setup {
        _moto: moto,
        scheduler,
        group,
    }
}

struct NewSchedule<'a> {
    name: &'a str,
    expression: String,
    input: serde_json::Value,
    delete_after: bool,
    max_retries: Option<i32>,
    enabled: bool,
}

impl<'a> NewSchedule<'a> {
    fn at(name: &'a str, time: DateTime<Utc>) -> Self {
        NewSchedule {
            name,
            expression: format!("at({})", time.format("%Y-%m-%dT%H:%M:%S")),
            input: json!({"action": "expire", "request_id": name}),
            delete_after: true,
            max_retries: None,
            enabled: true,
        }
    }
}

impl Setup {
    async fn create(&self, schedule: NewSchedule<'_>) {
        let mut target = Target::builder()
            .arn(REVOKE_ARN)
            .role_arn(ROLE_ARN)
            .input(schedule.input.to_string());
        if let Some(n) = schedule.max_retries {
            target = target.retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(n)
                    .maximum_event_age_in_seconds(3600)
                    .build(),
            );
        }
        let mut request = self
            .scheduler
            .create_schedule()
            .name(schedule.name)
            .group_name(&self.group)
            .schedule_expression(schedule.expression)
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .expect("window"),
            )
            .target(target.build().expect("target"))
            .state(if schedule.enabled {
                ScheduleState::Enabled
            } else {
                ScheduleState::Disabled
            });
        if schedule.delete_after {
            request = request.action_after_completion(ActionAfterCompletion::Delete);
        }
        request.send().await.expect("create schedule");
    }

    async fn exists(&self, name: &str) -> bool {
        match self
            .scheduler
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => panic!("GetSchedule: {e:?}"),
        }
    }

    fn config(&self) -> PumpConfig {
        PumpConfig::new(&self.group)
    }
}

/// Waits (bounded) until `check` holds.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test]
async fn a_due_schedule_fires_once_and_is_deleted() {
    let setup = setup().await;
    let (dispatcher, mut calls) = FakeDispatcher::new(Ok(json!({})));
    // `at()` has whole seconds: this one is due within the next second.
    let due = (Utc::now() + chrono::Duration::seconds(1)).trunc_subsecs(0);
    setup.create(NewSchedule::at("revoke-r1", due)).await;
    setup
        .create(NewSchedule::at(
            "revoke-later",
            Utc::now() + chrono::Duration::hours(1),
        ))
        .await;

    let pump = Pump::new(setup.scheduler.clone(), dispatcher.clone(), setup.config()).spawn();

    let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .expect("fired")
        .expect("a call");
    let fired_at = Utc::now();
    assert!(fired_at >= due, "not before its time: {fired_at} < {due}");
    assert!(
        fired_at - due <= chrono::Duration::milliseconds(1500),
        "within 1.5 s of its time: due {due}, fired {fired_at}"
    );
    assert_eq!(call.function, "elevate-revoke");
    assert_eq!(
        call.payload,
        json!({"action": "expire", "request_id": "revoke-r1"})
    );

    let deleted = {
        let mut gone = false;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) && !gone {
            gone = !setup.exists("revoke-r1").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gone
    };
    assert!(deleted, "ActionAfterCompletion DELETE honoured");

    tokio::time::sleep(Duration::from_secs(1)).await;
    pump.stop().await;
    assert_eq!(
        dispatcher.calls().len(),
        1,
        "fired once; the future one did not fire"
    );
    assert!(setup.exists("revoke-later").await);
}

#[tokio::test]
async fn a_failing_dispatch_is_retried_then_the_schedule_deleted() {
    let setup = setup().await;
    let (dispatcher, _calls) = FakeDispatcher::new(Ok(json!({})));
    dispatcher.then(Err(DispatchError::failed("Throttled", "try again")));
    dispatcher.then(Err(DispatchError::failed("Throttled", "try again")));
    setup
        .create(NewSchedule::at(
            "revoke-r2",
            Utc::now() - chrono::Duration::seconds(1),
        ))
        .await;

    let pump = Pump::new(setup.scheduler.clone(), dispatcher.clone(), setup.config()).spawn();
    let retried = eventually(Duration::from_secs(5), || dispatcher.calls().len() >= 3).await;
    assert!(retried, "calls: {:?}", dispatcher.calls());

    let start = Instant::now();
    while setup.exists("revoke-r2").await && start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !setup.exists("revoke-r2").await,
        "deleted after the successful retry"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    pump.stop().await;
    assert_eq!(
        dispatcher.calls().len(),
        3,
        "two failures, one success, no more"
    );
}

#[tokio::test]
async fn retries_are_bounded_and_a_failed_schedule_is_kept() {
    let setup = setup().await;
    let (dispatcher, _calls) = FakeDispatcher::new(Err(DispatchError::failed("Boom", "always")));
    let past = Utc::now() - chrono::Duration::seconds(1);
    // The schedule's own RetryPolicy allows one retry.
    setup
        .create(NewSchedule {
            max_retries: Some(1),
            ..NewSchedule::at("revoke-policy", past)
        })
        .await;
    // moto's default policy (185 retries) is capped by the pump's own limit.
    setup.create(NewSchedule::at("revoke-capped", past)).await;

    let config = PumpConfig {
        max_retries: 2,
        ..setup.config()
    };
    let pump = Pump::new(setup.scheduler.clone(), dispatcher.clone(), config).spawn();
    // Backoff 250 ms then 500 ms: everything is over well within 3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pump.stop().await;

    let count = |name: &str| {
        dispatcher
            .calls()
            .iter()
            .filter(|c| c.payload["request_id"] == name)
            .count()
    };
    assert_eq!(count("revoke-policy"), 2, "one try and one retry");
    assert_eq!(count("revoke-capped"), 3, "one try and two retries");
    assert!(
        setup.exists("revoke-policy").await,
        "not deleted after a failure"
    );
    assert!(setup.exists("revoke-capped").await);
}

#[tokio::test]
async fn a_rate_schedule_fires_every_period() {
    let setup = setup().await;
    let (dispatcher, _calls) = FakeDispatcher::new(Ok(json!({"swept": 0})));
    setup
        .create(NewSchedule {
            expression: "rate(1 minute)".to_owned(),
            input: json!({"action": "sweep"}),
            delete_after: false,
            ..NewSchedule::at("sweep", Utc::now())
        })
        .await;
    setup
        .create(NewSchedule {
            enabled: false,
            ..NewSchedule::at("revoke-disabled", Utc::now() - chrono::Duration::seconds(5))
        })
        .await;
    let created = Utc::now();
    let mut pump = Pump::new(setup.scheduler.clone(), dispatcher.clone(), setup.config());
    let at = |seconds: i64| created + chrono::Duration::seconds(seconds);

    let report = pump.tick(at(0)).await.expect("tick");
    assert!(report.fired.is_empty(), "{report:?}");

    let report = pump.tick(at(61)).await.expect("tick");
    assert_eq!(report.fired, vec!["sweep".to_owned()]);
    let settled = pump.settle(at(61)).await;
    assert_eq!(settled.succeeded, vec!["sweep".to_owned()]);

    let report = pump.tick(at(90)).await.expect("tick");
    assert!(
        report.fired.is_empty(),
        "not again within the period: {report:?}"
    );

    let report = pump.tick(at(121)).await.expect("tick");
    assert_eq!(report.fired, vec!["sweep".to_owned()]);
    pump.settle(at(121)).await;

    // Missed periods are skipped, not fired in a burst.
    let report = pump.tick(at(600)).await.expect("tick");
    assert_eq!(report.fired, vec!["sweep".to_owned()]);
    pump.settle(at(600)).await;
    let report = pump.tick(at(601)).await.expect("tick");
    assert!(report.fired.is_empty(), "{report:?}");

    let calls = dispatcher.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls
        .iter()
        .all(|c| c.function == "elevate-revoke" && c.payload == json!({"action": "sweep"})));
    assert!(setup.exists("sweep").await, "a rate schedule stays");
    assert!(
        setup.exists("revoke-disabled").await,
        "a disabled schedule never fires"
    );
}
