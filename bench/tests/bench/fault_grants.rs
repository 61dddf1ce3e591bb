//! The fault proof, small and seeded: grants whose functions reach IAM and DynamoDB through
//! a proxy failing a fifth of their calls (throttling, 500s, lost requests and lost answers).

use std::sync::Arc;
use std::time::Duration;

use elevate_bench::config::BenchConfig;
use elevate_bench::faults::FaultPlan;
use elevate_bench::harness::Harness;
use elevate_bench::scenarios::{grants_through_faults, FaultOptions};
use elevate_core::{Action, State};

#[tokio::test(flavor = "multi_thread")]
async fn every_grant_ends_with_its_access_removed_and_none_is_recorded_early() {
    let grants = 20;
    let (harness, proxy) = Harness::start_with_faults(
        BenchConfig::new(grants),
        FaultPlan::iam_and_dynamodb(0.2, 2026),
    )
    .await
    .expect("local stack behind the fault proxy");
    // Held to the end: a failed assertion keeps the stack's log.
    let harness = Arc::new(harness);
    let report = grants_through_faults(
        harness.clone(),
        &proxy,
        &FaultOptions {
            grants,
            first_user: 1,
            duration: Duration::from_secs(4),
            deadline: Duration::from_secs(40),
            sweep_every: Duration::from_secs(2),
            // The sweep retries a never-started escalation after 2 minutes: too long for a
            // test; `make bench` waits for it.
            wait_for_escalation_retry: false,
        },
    )
    .await
    .expect("scenario ran");
    proxy.stop().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );

    assert!(
        report.violations.is_empty(),
        "{:#?}\n{report:#?}",
        report.violations
    );
    assert!(
        report.faults.total_faults() >= 10,
        "the proxy failed calls: {:?}",
        report.faults
    );
    assert_eq!(report.audit.requests, grants, "none lost, none doubled");
    assert_eq!(report.audit.chains_verified, grants);
    assert_eq!(
        report.audit.in_state(State::Expired)
            + report.audit.in_state(State::Revoked)
            + report.awaiting_escalation_retry.len(),
        grants,
        "every request ended, or awaits the sweep's escalation retry: {:?}",
        report.audit.states
    );
    assert_eq!(report.audit.count(Action::Approve), grants);
    assert_eq!(report.members_at_end, 0);
    assert!(report.ended.still_members.is_empty());
    assert_eq!(report.ended.present_after_recorded, 0);
}
