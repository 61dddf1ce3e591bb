//! The `reconcile` phase of `make bench`: one reconciliation pass over many ACTIVE grants spread
//! over three IAM groups, in process against a fresh moto (no local stack). The grants are
//! written straight into the table (opened, approved, activated by the state machine) and
//! their users added to the groups; then some drift is made by hand (members without a grant,
//! grants whose member was removed) so the pass has work to do. The pass is timed once, and a
//! second pass (nothing left to repair: the cost of every sweep) is timed after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_iam::error::DisplayErrorContext;
use chrono::Utc;
use elevate_aws::scheduler::SchedulerTarget;
use elevate_aws::{
    DynamoStore, EventBridgeScheduler, IamGroupStrategy, LambdaStrategy, PermissionSetStrategy,
};
use elevate_core::machine::{self, Command};
use elevate_core::model::By;
use elevate_core::ports::{RequestStore, StrategyRouter, SystemClock};
use elevate_core::service::{self, App, Reconciliation, RepairKind, Settings};
use elevate_core::testing::{RecordingEscalation, RecordingFollowUps, RecordingInvoker};
use elevate_core::{Config, RequestId, State};
use elevate_slack::standin::SlackStandin;
use elevate_slack::SlackNotifier;
use elevate_testkit::Moto;
use serde::Serialize;
use tokio::task::JoinSet;

/// The IAM groups, one per flow.
pub const GROUPS: [&str; 3] = [
    "ElevateReconcileA",
    "ElevateReconcileB",
    "ElevateReconcileC",
];
/// The approvers of every flow.
pub const APPROVERS: [&str; 2] = ["appr1", "appr2"];
/// Members added by hand without a grant, and granted members removed by hand.
pub const DRIFT: usize = 5;
const ACCOUNT: &str = "123456789012";
const BOT_TOKEN: &str = "xoxb-elevate-bench";
/// Grants written at the same time while seeding.
const SEED_WORKERS: usize = 16;

/// What the phase measured.
#[derive(Debug, Serialize)]
pub struct ReconcileFigures {
    /// ACTIVE grants seeded.
    pub grants: usize,
    pub groups: usize,
    /// Seeding (users, grants, memberships, drift), seconds.
    pub seed_s: f64,
    /// The pass that repairs the drift.
    pub first_pass_ms: f64,
    pub first: Reconciliation,
    /// The pass right after it, with nothing to repair.
    pub steady_pass_ms: f64,
    pub steady: Reconciliation,
    /// One `list_by_state(ACTIVE)` (the by_state Query) after both passes; each pass makes
    /// two.
    pub list_active_ms: f64,
    /// Checks that failed.
    pub problems: Vec<String>,
}

impl ReconcileFigures {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

fn user(i: usize) -> String {
    format!("rc-user-{i:04}")
}

fn person(i: usize) -> String {
    format!("p{i}")
}

fn flow(i: usize) -> String {
    format!("flow{}", i % GROUPS.len())
}

/// elevate.toml: `n` people, the approvers, one flow per group.
pub fn config_text(n: usize) -> String {
    let mut text = String::from("# Written by elevate-bench (reconcile).\n");
    let people = (0..n)
        .map(|i| (person(i), user(i), format!("U0P{i:05}")))
        .chain(APPROVERS.iter().map(|a| {
            (
                (*a).to_owned(),
                format!("rc-{a}"),
                format!("U0{}", a.to_uppercase()),
            )
        }));
    for (name, iam_user, slack) in people {
        text.push_str(&format!(
            "\n[[people]]\nname = \"{name}\"\niam_user = \"{iam_user}\"\nslack_id = \"{slack}\"\nemail = \"{name}@bench.example\"\n"
        ));
    }
    let approvers = APPROVERS
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for (k, group) in GROUPS.iter().enumerate() {
        text.push_str(&format!(
            "\n[[flows]]\nname = \"flow{k}\"\ndescription = \"Membership of {group}\"\n\
             max_duration = \"4h\"\nreason_required = false\nallow_self_approval = false\n\
             pending_timeout = \"30m\"\n\n[flows.approvers]\nchannel = \"C0RECON0{k}\"\n\
             people = [{approvers}]\n\n[[flows.targets]]\nname = \"group{k}\"\n\
             type = \"iam_group\"\ngroup = \"{group}\"\n"
        ));
    }
    text
}

fn aws_err<E: std::error::Error>(what: String) -> impl FnOnce(E) -> String {
    move |err| format!("{what}: {}", DisplayErrorContext(&err))
}

/// Creates the IAM user of person `i`, writes its ACTIVE grant on flow `i % 3` and adds the
/// user to that flow's group.
async fn seed_one(
    i: usize,
    config: &Config,
    store: &DynamoStore,
    iam: &aws_sdk_iam::Client,
) -> Result<(), String> {
    let name = person(i);
    let iam_user = user(i);
    iam.create_user()
        .user_name(&iam_user)
        .send()
        .await
        .map_err(aws_err(format!("CreateUser {iam_user}")))?;
    let who = config.person(&name).ok_or(format!("no person {name}"))?;
    let flow = config
        .flow(&flow(i))
        .ok_or(format!("no flow {}", flow(i)))?;
    let new = flow
        .check_request(who, None, None, Duration::from_secs(3600), "bench")
        .map_err(|e| format!("request of {name}: {e}"))?;
    let now = Utc::now();
    let principal = format!("arn:aws:iam::{ACCOUNT}:user/{iam_user}");
    let (request, event) = machine::open(RequestId::generate(now), new, &principal, now);
    store
        .create(&request, &event)
        .await
        .map_err(|e| format!("create {}: {e}", request.id))?;
    let mut current = request;
    for (command, by) in [
        (
            Command::Approve { reason: None },
            By::person(
                APPROVERS[0],
                format!("slack:T0BENCH/U0{}", APPROVERS[0].to_uppercase()),
            ),
        ),
        (Command::Activate, By::system("escalate", "lambda:bench")),
    ] {
        let t = machine::apply(&current, command, &by, Utc::now())
            .map_err(|e| format!("{}: {e}", current.id))?;
        store
            .transition(&t)
            .await
            .map_err(|e| format!("transition {}: {e}", current.id))?;
        current = t.request;
    }
    let group = GROUPS[i % GROUPS.len()];
    iam.add_user_to_group()
        .group_name(group)
        .user_name(&iam_user)
        .send()
        .await
        .map_err(aws_err(format!("AddUserToGroup {iam_user} {group}")))?;
    Ok(())
}

/// Runs the phase with `n` grants.
pub async fn run(n: usize) -> Result<ReconcileFigures, String> {
    let moto = Moto::start_on(0).await?;
    let sdk = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let schedules = aws_sdk_scheduler::Client::new(&sdk);
    let table = "elevate-bench-reconcile";
    let schedule_group = "elevate-bench-reconcile";
    DynamoStore::create_table(&dynamodb, table)
        .await
        .map_err(|e| format!("create table: {e}"))?;
    EventBridgeScheduler::create_group(&schedules, schedule_group)
        .await
        .map_err(|e| format!("create schedule group: {e}"))?;
    for group in GROUPS {
        iam.create_group()
            .group_name(group)
            .send()
            .await
            .map_err(aws_err(format!("CreateGroup {group}")))?;
    }
    let config =
        Arc::new(Config::parse(&config_text(n)).map_err(|e| format!("elevate.toml: {e}"))?);
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), table));
    let slack = SlackStandin::start(BOT_TOKEN)
        .await
        .map_err(|e| format!("Slack stand-in: {e}"))?;

    let seeding = Instant::now();
    let mut workers = JoinSet::new();
    for w in 0..SEED_WORKERS {
        let (config, store, iam) = (config.clone(), store.clone(), iam.clone());
        workers.spawn(async move {
            for i in (w..n).step_by(SEED_WORKERS) {
                seed_one(i, &config, &store, &iam).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| format!("seeding task: {e}"))??;
    }
    // Drift: members without a grant, and granted members removed outside elevate.
    for k in 0..DRIFT {
        let extra = format!("rc-extra-{k}");
        let group = GROUPS[k % GROUPS.len()];
        iam.create_user()
            .user_name(&extra)
            .send()
            .await
            .map_err(aws_err(format!("CreateUser {extra}")))?;
        iam.add_user_to_group()
            .group_name(group)
            .user_name(&extra)
            .send()
            .await
            .map_err(aws_err(format!("AddUserToGroup {extra}")))?;
        let granted = user(k);
        iam.remove_user_from_group()
            .group_name(GROUPS[k % GROUPS.len()])
            .user_name(&granted)
            .send()
            .await
            .map_err(aws_err(format!("RemoveUserFromGroup {granted}")))?;
    }
    let seed_s = seeding.elapsed().as_secs_f64();

    let invoker = Arc::new(RecordingInvoker::new());
    let app = App {
        config: config.clone(),
        store: store.clone(),
        strategy: Arc::new(StrategyRouter {
            iam_group: Arc::new(IamGroupStrategy::new(iam.clone())),
            lambda: Arc::new(LambdaStrategy::new(invoker)),
            sso_permission_set: Arc::new(PermissionSetStrategy::new(None)),
        }),
        directory: Arc::new(elevate_core::ports::NoDirectory),
        scheduler: Arc::new(EventBridgeScheduler::new(
            schedules.clone(),
            SchedulerTarget {
                group: schedule_group.to_owned(),
                target_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:elevate-revoke"),
                role_arn: format!("arn:aws:iam::{ACCOUNT}:role/elevate-scheduler"),
                dead_letter_arn: None,
            },
        )),
        notifier: Arc::new(SlackNotifier::new(slack.base_url(), BOT_TOKEN)),
        escalation: Arc::new(RecordingEscalation::new()),
        follow_ups: Arc::new(RecordingFollowUps::new()),
        hooks: Arc::new(elevate_core::testing::RecordingInvoker::new()),
        clock: Arc::new(SystemClock),
        settings: Settings {
            principal: "lambda:elevate-sweep".to_owned(),
            ..Settings::default()
        },
    };

    let started = Instant::now();
    let first = service::reconcile(&app, false)
        .await
        .map_err(|e| format!("first reconciliation: {e}"))?;
    let first_pass_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let steady = service::reconcile(&app, false)
        .await
        .map_err(|e| format!("second reconciliation: {e}"))?;
    let steady_pass_ms = started.elapsed().as_secs_f64() * 1000.0;
    // What dominates a pass against moto: listing the ACTIVE grants (one Query), which moto
    // answers slowly.
    let started = Instant::now();
    store
        .list_by_state(State::Active)
        .await
        .map_err(|e| format!("list ACTIVE grants: {e}"))?;
    let list_active_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut problems = Vec::new();
    let count = |kind| first.repairs.iter().filter(|r| r.kind == kind).count();
    let removed = count(RepairKind::MembershipRemoved);
    let ended = count(RepairKind::EndedByOutsideChange);
    if first.repairs.len() != 2 * DRIFT || removed != DRIFT || ended != DRIFT {
        problems.push(format!(
            "reconcile: {} repairs ({removed} members removed, {ended} grants ended), expected {DRIFT} + {DRIFT}",
            first.repairs.len()
        ));
    }
    if first.errors != 0 || steady.errors != 0 {
        problems.push(format!(
            "reconcile: {} then {} errors",
            first.errors, steady.errors
        ));
    }
    if first.grants != n || first.groups != GROUPS.len() {
        problems.push(format!(
            "reconcile: saw {} grants in {} groups, expected {n} in {}",
            first.grants,
            first.groups,
            GROUPS.len()
        ));
    }
    if !steady.repairs.is_empty() {
        problems.push(format!(
            "reconcile: the second pass still repaired {}",
            steady.repairs.len()
        ));
    }
    drop(moto);
    Ok(ReconcileFigures {
        grants: n,
        groups: GROUPS.len(),
        seed_s,
        first_pass_ms,
        first,
        steady_pass_ms,
        steady,
        list_active_ms,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_is_a_valid_config() {
        let config = Config::parse(&config_text(30)).expect("valid");
        assert_eq!(config.people.len(), 30 + APPROVERS.len());
        assert_eq!(config.flows.len(), GROUPS.len());
        let flow = config.flow("flow1").expect("flow1");
        assert_eq!(flow.approvers.people, APPROVERS);
    }
}
