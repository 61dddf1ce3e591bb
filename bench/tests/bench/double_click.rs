//! The concurrency proof, small: requests approved at once, every Approve clicked by both
//! approvers at the same moment.

use std::sync::Arc;
use std::time::Duration;

use elevate_bench::config::BenchConfig;
use elevate_bench::harness::Harness;
use elevate_bench::scenarios::{double_clicked_grants, DoubleClickOptions};
use elevate_bench::stack::StackOptions;
use elevate_core::{Action, State};

#[tokio::test(flavor = "multi_thread")]
async fn requests_approved_twice_at_the_same_moment_are_granted_and_revoked_exactly_once() {
    let grants = 20;
    let harness = Harness::start(StackOptions::new(BenchConfig::new(grants)))
        .await
        .expect("local stack");
    // Held to the end: a failed assertion keeps the stack's log.
    let harness = Arc::new(harness);
    let report = double_clicked_grants(
        harness.clone(),
        &DoubleClickOptions {
            grants,
            first_user: 1,
            duration: Duration::from_secs(4),
            deadline: Duration::from_secs(40),
        },
    )
    .await
    .expect("scenario ran");

    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.clicks, 2 * grants);
    assert_eq!(
        report.click_statuses.get(&200),
        Some(&(2 * grants)),
        "every click answered 200"
    );
    assert_eq!(report.audit.requests, grants);
    assert_eq!(report.audit.chains_verified, grants);
    for action in [
        Action::Request,
        Action::Approve,
        Action::Activate,
        Action::Expire,
    ] {
        assert_eq!(report.audit.count(action), grants, "{action}");
    }
    for action in [Action::Deny, Action::Revoke, Action::Fail] {
        assert_eq!(report.audit.count(action), 0, "{action}");
    }
    assert_eq!(report.audit.in_state(State::Expired), grants);
    assert!(
        report.leftover_schedules.is_empty(),
        "{:?}",
        report.leftover_schedules
    );
    assert_eq!(report.members_at_end, 0);
    assert_eq!(report.ended.ended, grants);
    assert_eq!(report.ended.present_after_recorded, 0);
}
