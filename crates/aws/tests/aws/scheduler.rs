use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use aws_sdk_scheduler::Client;
use chrono::{Duration, DurationRound, Utc};
use elevate_aws::{EventBridgeScheduler, SchedulerTarget};
use elevate_core::events::ScheduledAction;
use elevate_core::model::RequestId;
use elevate_core::ports::Scheduler;
use elevate_testkit::{unique_name, Moto};

const REVOKE_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/elevate-scheduler";
const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:elevate-schedules-dlq";

#[tokio::test]
async fn a_schedule_is_created_read_back_replaced_and_deleted_idempotently() {
    let moto = Moto::start().await;
    let client = Client::new(&moto.sdk_config().await);
    let group = unique_name("elevate");
    // moto answers 500 for a missing group: it must exist first. Creating it twice is fine.
    EventBridgeScheduler::create_group(&client, &group)
        .await
        .expect("create group");
    EventBridgeScheduler::create_group(&client, &group)
        .await
        .expect("create group again");
    let scheduler = EventBridgeScheduler::new(
        client.clone(),
        SchedulerTarget {
            group: group.clone(),
            target_arn: REVOKE_ARN.to_owned(),
            role_arn: ROLE_ARN.to_owned(),
            dead_letter_arn: Some(DLQ_ARN.to_owned()),
        },
    );

    let id = RequestId::generate(Utc::now());
    let action = ScheduledAction::Expire {
        request_id: id.clone(),
    };
    let name = action.schedule_name();
    assert_eq!(name, format!("revoke-{id}"));
    let first = Utc::now() + Duration::hours(1);
    let whole_second = |t: chrono::DateTime<Utc>| {
        t.duration_trunc(Duration::seconds(1))
            .expect("truncate to the second")
    };

    assert_eq!(scheduler.get(&name).await.expect("get before"), None);
    scheduler.schedule(first, &action).await.expect("create");
    let read = scheduler.get(&name).await.expect("get").expect("exists");
    assert_eq!(read.name, name);
    assert_eq!(read.at, whole_second(first));
    assert_eq!(read.action, action);

    // What the Scheduler itself holds.
    let raw = client
        .get_schedule()
        .group_name(&group)
        .name(&name)
        .send()
        .await
        .expect("GetSchedule");
    assert_eq!(
        raw.schedule_expression(),
        Some(format!("at({})", first.format("%Y-%m-%dT%H:%M:%S")).as_str())
    );
    assert_eq!(raw.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        raw.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(
        raw.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    let target = raw.target().expect("target");
    assert_eq!(target.arn(), REVOKE_ARN);
    assert_eq!(target.role_arn(), ROLE_ARN);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(target.input().expect("input"))
            .expect("json input"),
        serde_json::json!({"action": "expire", "request_id": id.to_string()})
    );
    assert!(target
        .retry_policy()
        .and_then(|p| p.maximum_retry_attempts())
        .is_some());
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some(DLQ_ARN)
    );

    // Scheduling the same action again replaces the time.
    let later = first + Duration::minutes(30);
    scheduler.schedule(later, &action).await.expect("replace");
    let read = scheduler.get(&name).await.expect("get").expect("exists");
    assert_eq!(read.at, whole_second(later));
    assert_eq!(read.action, action);

    // Another purpose of the same request is another schedule.
    let timeout = ScheduledAction::Timeout {
        request_id: id.clone(),
    };
    scheduler.schedule(first, &timeout).await.expect("timeout");
    assert_eq!(
        scheduler
            .get(&timeout.schedule_name())
            .await
            .expect("get")
            .map(|s| s.action),
        Some(timeout.clone())
    );

    scheduler.cancel(&name).await.expect("delete");
    assert_eq!(scheduler.get(&name).await.expect("get after"), None);
    scheduler.cancel(&name).await.expect("delete again");
    assert!(scheduler
        .get(&timeout.schedule_name())
        .await
        .expect("get")
        .is_some());
}

#[tokio::test]
async fn a_schedule_without_a_dead_letter_queue() {
    let moto = Moto::start().await;
    let client = Client::new(&moto.sdk_config().await);
    let group = unique_name("elevate");
    EventBridgeScheduler::create_group(&client, &group)
        .await
        .expect("create group");
    let scheduler = EventBridgeScheduler::new(
        client.clone(),
        SchedulerTarget {
            group: group.clone(),
            target_arn: REVOKE_ARN.to_owned(),
            role_arn: ROLE_ARN.to_owned(),
            dead_letter_arn: None,
        },
    );
    let at = Utc::now() + Duration::minutes(5);
    scheduler
        .schedule(at, &ScheduledAction::Sweep)
        .await
        .expect("create");
    let read = scheduler.get("sweep").await.expect("get").expect("exists");
    assert_eq!(read.action, ScheduledAction::Sweep);
    let raw = client
        .get_schedule()
        .group_name(&group)
        .name("sweep")
        .send()
        .await
        .expect("GetSchedule");
    assert!(raw
        .target()
        .and_then(|t| t.dead_letter_config())
        .and_then(|d| d.arn())
        .is_none());
}
