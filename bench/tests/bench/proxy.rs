//! The fault proxy in front of a real moto: each fault reaches the AWS SDK in the shape it
//! reads from AWS (so it is classified and retried as it would be), and a lost answer is a
//! call moto applied although the caller never heard back.

use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use elevate_bench::faults::{Fault, FaultPlan, FaultProxy};
use elevate_testkit::{sdk_config_for, unique_name, Moto};

fn always(kind: Fault) -> FaultPlan {
    FaultPlan {
        share: 1.0,
        kinds: vec![kind],
        hold: Duration::from_millis(100),
        ..FaultPlan::iam_and_dynamodb(1.0, 1)
    }
}

#[tokio::test]
async fn throttling_and_server_errors_come_in_each_protocols_shape_and_are_retried() {
    let moto = Moto::start_own().await;
    for (kind, iam_code, dynamodb_code) in [
        (Fault::Throttle, "Throttling", "ThrottlingException"),
        (Fault::ServerError, "ServiceFailure", "InternalServerError"),
    ] {
        let proxy = FaultProxy::start(moto.endpoint(), always(kind))
            .await
            .expect("proxy");
        let sdk = sdk_config_for(&proxy.url());

        let iam = aws_sdk_iam::Client::new(&sdk);
        let err = iam.list_users().send().await.expect_err("always failing");
        assert_eq!(err.code(), Some(iam_code), "{kind:?}: {err:?}");
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let err = dynamodb
            .list_tables()
            .send()
            .await
            .expect_err("always failing");
        assert_eq!(err.code(), Some(dynamodb_code), "{kind:?}: {err:?}");

        // The SDK's standard retry mode tried each call three times: it read them as transient.
        let stats = proxy.stats();
        assert_eq!(stats.calls.get("iam"), Some(&3), "{stats:?}");
        assert_eq!(stats.calls.get("dynamodb"), Some(&3), "{stats:?}");
        assert_eq!(stats.faults_of(kind), 6);
        assert_eq!(stats.faults_by_operation.get("iam:ListUsers"), Some(&3));
        assert_eq!(
            stats.faults_by_operation.get("dynamodb:ListTables"),
            Some(&3)
        );
        proxy.stop().await;
    }
}

#[tokio::test]
async fn a_lost_answer_was_applied_and_a_lost_request_was_not() {
    let moto = Moto::start_own().await;
    let direct = aws_sdk_iam::Client::new(&moto.sdk_config().await);

    for (kind, applied) in [(Fault::LostAnswer, true), (Fault::LostRequest, false)] {
        let proxy = FaultProxy::start(moto.endpoint(), always(kind))
            .await
            .expect("proxy");
        let iam = aws_sdk_iam::Client::new(&sdk_config_for(&proxy.url()));
        let group = unique_name("lost");
        let err = iam
            .create_group()
            .group_name(&group)
            .send()
            .await
            .expect_err("never answered");
        assert!(
            matches!(
                err,
                SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
            ),
            "{kind:?}: a dropped connection, not an answer: {err:?}"
        );
        assert_eq!(proxy.stats().calls.get("iam"), Some(&3), "retried");
        let exists = direct.get_group().group_name(&group).send().await.is_ok();
        assert_eq!(exists, applied, "{kind:?}");
        proxy.stop().await;
    }
}

#[tokio::test]
async fn other_services_and_unfailed_calls_pass_through_unchanged() {
    let moto = Moto::start_own().await;
    let proxy = FaultProxy::start(moto.endpoint(), FaultPlan::iam_and_dynamodb(0.0, 1))
        .await
        .expect("proxy");
    let sdk = sdk_config_for(&proxy.url());
    let iam = aws_sdk_iam::Client::new(&sdk);
    let group = unique_name("through");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("created through the proxy");
    let found = iam
        .get_group()
        .group_name(&group)
        .send()
        .await
        .expect("read back");
    assert_eq!(found.group().map(|g| g.group_name()), Some(group.as_str()));

    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    scheduler
        .list_schedule_groups()
        .send()
        .await
        .expect("scheduler passes");
    let stats = proxy.stats();
    assert_eq!(stats.total_faults(), 0);
    assert_eq!(stats.calls.get("iam"), Some(&2));
    assert_eq!(stats.calls.get("scheduler"), Some(&1));
    proxy.stop().await;
}
