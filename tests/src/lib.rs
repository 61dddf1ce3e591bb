//! The world the cross-function tests run in: a moto server (DynamoDB table, IAM groups and
//! users, schedule group, all with unique names), the Slack Web API stand-in, and the App the
//! functions' mains would build (`elevate_runtime::build_app`) pointed at them, with three parts
//! swapped so a test can drive time and see what moto cannot run:
//!
//! - the clock is a [`FakeClock`] (revoke's wait until expiry returns at once);
//! - the invoker is a [`Dispatcher`]: it records asynchronous invokes (the test delivers them
//!   to escalate itself) and runs synchronous ones of the example target in process;
//! - the IAM strategy is wrapped in [`Flaky`], so a test can make IAM fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{DateTime, SubsecRound, Utc};
use elevate_aws::scheduler::parse_at_expression;
use elevate_aws::{
    DynamoStore, EventBridgeScheduler, IamGroupStrategy, LambdaEscalation, LambdaStrategy,
    PermissionSetStrategy,
};
use elevate_core::events::ScheduledAction;
use elevate_core::ports::{
    InvokeError, Invoker, Membership, RequestStore, Strategy, StrategyError, StrategyRouter,
};
use elevate_core::service::App;
use elevate_core::testing::{FakeClock, InjectedFailure, Invocation, RecordingFollowUps};
use elevate_core::{verify_chain, AuditEvent, Config, Person, Request, RequestId, Target};
use elevate_http::testing::{body_json, ApiEvent};
use elevate_runtime::{build_app, Env, EnvSpec, SlackSecrets};
use elevate_slack::standin::SlackStandin;
use elevate_slack::SlackNotifier;
use elevate_testkit::{unique_name, Moto};
use serde_json::Value;

pub use elevate_http::testing::FIXTURE_ID;

/// The name the App invokes escalate by.
pub const ESCALATE_FUNCTION: &str = "elevate-escalate";
/// The function ARN of the example target in the flows config.
pub const EXAMPLE_TARGET_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:elevate-example-target";
pub const ACCOUNT: &str = "123456789012";
pub const APPROVALS: &str = "C0APPROVALS";
pub const CUSTOM_CHANNEL: &str = "C0CUSTOM01";
const BOT_TOKEN: &str = "xoxb-elevate-tests";
/// The trust of the escalated role, as infra/strategy.yaml (moto does not enforce it).
const ESCALATED_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:RoleSessionName":"${aws:username}"}}}]}"#;

/// The people of the tests' elevate.toml: name and Slack id. Their IAM users have unique names.
pub const PEOPLE: [(&str, &str); 3] = [
    ("alice", "U0ALICE01"),
    ("bob", "U0BOB0001"),
    ("dave", "U0DAVE001"),
];

/// The flows: `infra_access` grants the IAM group `admins`, whose members may assume the role
/// `escalated` (approvers alice and bob, no self-approval, at most 4h, reason required);
/// `custom` grants through the example target (approvers alice and bob, 15m or 1h). dave is a
/// person who approves nothing.
pub fn config_text(users: &HashMap<String, String>, admins: &str, escalated: &str) -> String {
    let mut text = String::from("auditors = [\"bob\"]\n");
    for (name, slack) in PEOPLE {
        text.push_str(&format!(
            "\n[[people]]\nname = \"{name}\"\niam_user = \"{}\"\nslack_id = \"{slack}\"\nemail = \"{name}@healthy-health.example\"\n",
            users[name]
        ));
    }
    text.push_str(&format!(
        r#"
[[flows]]
name = "infra_access"
description = "Assume SymDemoEscalated through membership of SymDemoAdmins"
max_duration = "4h"
reason_required = true
allow_self_approval = false
pending_timeout = "30m"

[flows.approvers]
channel = "{APPROVALS}"
people = ["alice", "bob"]

[[flows.targets]]
name = "admins"
type = "iam_group"
group = "{admins}"
roles = ["{escalated}"]

[[flows]]
name = "custom"
description = "A custom target behind a Lambda function"
durations = ["15m", "1h"]
reason_required = false
allow_self_approval = false

[flows.approvers]
channel = "{CUSTOM_CHANNEL}"
people = ["alice", "bob"]

[[flows.targets]]
name = "example"
type = "lambda"
function_arn = "{EXAMPLE_TARGET_ARN}"
"#
    ));
    text
}

/// Everything one test runs against. Dropping it stops moto (when it started one).
pub struct World {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub schedules: aws_sdk_scheduler::Client,
    pub store: DynamoStore,
    pub slack: SlackStandin,
    pub app: App,
    pub clock: Arc<FakeClock>,
    pub invoker: Arc<Dispatcher>,
    /// What Slack steps hand over to run after Slack is answered; [`World::approve_fn`] runs
    /// them after answering, like Lambda.
    pub follow_ups: Arc<RecordingFollowUps>,
    pub iam_strategy: Arc<Flaky>,
    pub signing_secret: String,
    pub table: String,
    pub schedule_group: String,
    /// The role `admins` lets its members assume: ending a grant ends its sessions.
    pub escalated: String,
    /// The IAM group of `infra_access`.
    pub admins: String,
    /// The IAM group the example target grants.
    pub example_group: String,
    /// IAM user name of each person.
    pub users: HashMap<String, String>,
}

impl World {
    /// A fresh world; the clock starts at the current second.
    ///
    /// # Panics
    /// When moto or the stand-in cannot be set up.
    pub async fn new() -> World {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let schedules = aws_sdk_scheduler::Client::new(&sdk);

        let table = unique_name("elevate");
        let schedule_group = unique_name("elevate");
        let admins = unique_name("admins");
        let example_group = unique_name("example");
        let escalated = unique_name("escalated");
        let users: HashMap<String, String> = PEOPLE
            .iter()
            .map(|(name, _)| ((*name).to_owned(), unique_name(name)))
            .collect();
        for group in [&admins, &example_group] {
            iam.create_group()
                .group_name(group)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create group {group}: {e:?}"));
        }
        iam.create_role()
            .role_name(&escalated)
            .assume_role_policy_document(ESCALATED_TRUST)
            .max_session_duration(3600)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create role {escalated}: {e:?}"));
        for user in users.values() {
            iam.create_user()
                .user_name(user)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create user {user}: {e:?}"));
        }
        DynamoStore::create_table(&dynamodb, &table)
            .await
            .unwrap_or_else(|e| panic!("create table: {e}"));
        EventBridgeScheduler::create_group(&schedules, &schedule_group)
            .await
            .unwrap_or_else(|e| panic!("create schedule group: {e}"));

        let slack = SlackStandin::start(BOT_TOKEN)
            .await
            .unwrap_or_else(|e| panic!("Slack stand-in: {e}"));
        let signing_secret = unique_name("signing");
        let config = Config::parse(&config_text(&users, &admins, &escalated))
            .unwrap_or_else(|e| panic!("tests' elevate.toml: {e}"));

        let vars: HashMap<&str, String> = HashMap::from([
            ("ELEVATE_TABLE", table.clone()),
            ("ELEVATE_SCHEDULE_GROUP", schedule_group.clone()),
            (
                "ELEVATE_SCHEDULER_ROLE_ARN",
                format!("arn:aws:iam::{ACCOUNT}:role/elevate-scheduler"),
            ),
            (
                "ELEVATE_REVOKE_FUNCTION_ARN",
                format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:elevate-revoke"),
            ),
            ("ELEVATE_ESCALATE_FUNCTION", ESCALATE_FUNCTION.to_owned()),
            (
                "ELEVATE_SLACK_SECRET_ARN",
                format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:elevate-slack"),
            ),
            ("SLACK_API_URL", slack.base_url()),
        ]);
        let spec = EnvSpec {
            escalate_function: true,
        };
        let env = Env::from_lookup(spec, |name| vars.get(name).cloned())
            .unwrap_or_else(|e| panic!("env: {e}"));
        let secrets = SlackSecrets {
            bot_token: BOT_TOKEN.to_owned(),
            signing_secret: signing_secret.clone(),
        };
        let mut app =
            build_app(&env, config, &sdk, &secrets).unwrap_or_else(|e| panic!("build_app: {e}"));

        let clock = Arc::new(FakeClock::new(Utc::now().trunc_subsecs(0)));
        let invoker = Arc::new(Dispatcher::new(iam.clone(), example_group.clone()));
        let iam_strategy = Arc::new(Flaky::new(Arc::new(IamGroupStrategy::new(iam.clone()))));
        app.clock = clock.clone();
        app.escalation = Arc::new(LambdaEscalation::new(
            invoker.clone(),
            Some(ESCALATE_FUNCTION.to_owned()),
        ));
        app.strategy = Arc::new(StrategyRouter {
            iam_group: iam_strategy.clone(),
            lambda: Arc::new(LambdaStrategy::new(invoker.clone())),
            sso_permission_set: Arc::new(PermissionSetStrategy::new(None)),
        });
        let follow_ups = Arc::new(RecordingFollowUps::new());
        app.follow_ups = follow_ups.clone();

        World {
            store: DynamoStore::new(dynamodb, table.clone()),
            moto,
            sdk,
            iam,
            schedules,
            slack,
            app,
            clock,
            invoker,
            follow_ups,
            iam_strategy,
            signing_secret,
            table,
            schedule_group,
            escalated,
            admins,
            example_group,
            users,
        }
    }

    /// The IAM user ARN API Gateway's authorizer reports for `person`.
    pub fn arn(&self, person: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:user/{}", self.users[person])
    }

    pub fn person(&self, name: &str) -> Person {
        self.app
            .config
            .person(name)
            .unwrap_or_else(|| panic!("no person {name}"))
            .clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        use elevate_core::ports::Clock;
        self.clock.now()
    }

    /// The fixture `infra/events/<name>`, signed by `person`, about request `id` (when the
    /// route has one).
    pub fn api_event(&self, name: &str, person: &str, id: Option<&RequestId>) -> ApiEvent {
        let event = ApiEvent::fixture(name).caller(&self.arn(person));
        match id {
            Some(id) => event.id(id.as_str()),
            None => event,
        }
    }

    /// The request function's answer.
    pub async fn request_fn(&self, event: &ApiEvent) -> (u16, Value) {
        let response = elevate_request::handle(&self.app, event.request()).await;
        (response.status().as_u16(), body_json(&response))
    }

    /// The approve function's answer; then the follow-ups it handed over run, as Lambda
    /// runs them after the answer.
    pub async fn approve_fn(&self, event: &ApiEvent) -> (u16, Value) {
        let slack = elevate_approve::Slack {
            signing_secret: self.signing_secret.clone(),
            views: Box::new(SlackNotifier::new(self.slack.base_url(), BOT_TOKEN)),
        };
        let response = elevate_approve::handle(&self.app, &slack, event.request()).await;
        let answer = (response.status().as_u16(), body_json(&response));
        self.run_follow_ups().await;
        answer
    }

    /// Runs the follow-ups handed over so far (and any they hand over).
    ///
    /// # Panics
    /// When one fails.
    pub async fn run_follow_ups(&self) {
        loop {
            let work = self.follow_ups.take();
            if work.is_empty() {
                return;
            }
            for work in work {
                if let Err(err) = elevate_core::service::follow_up(&self.app, &work).await {
                    panic!("follow-up {work:?} failed: {err}");
                }
            }
        }
    }

    /// A Slack click (`slack-interaction-approve.json` or `-deny`) by the Slack user
    /// `slack_user` on request `id`, signed now with the app's signing secret.
    pub fn click(&self, fixture: &str, id: &RequestId, slack_user: &str) -> ApiEvent {
        ApiEvent::slack_click(
            fixture,
            id.as_str(),
            slack_user,
            &self.signing_secret,
            self.now().timestamp(),
        )
    }

    /// The escalate function, given `payload`.
    pub async fn escalate_fn(
        &self,
        payload: Value,
    ) -> Result<elevate_escalate::Escalated, elevate_escalate::EscalateError> {
        elevate_escalate::handle(&self.app, payload).await
    }

    /// The revoke function, given `event`.
    pub async fn revoke_fn(&self, event: Value) -> Result<Value, elevate_revoke::RevokeError> {
        elevate_revoke::handle(&self.app, event).await
    }

    /// Opens a request through the request function: `body` as alice (or `person`).
    ///
    /// # Panics
    /// When it is not created.
    pub async fn open(&self, person: &str, body: &Value) -> RequestId {
        let event = self
            .api_event("apigw-create-request.json", person, None)
            .json(body);
        let (status, answer) = self.request_fn(&event).await;
        assert_eq!(status, 201, "{answer}");
        answer["request"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no request id in {answer}"))
    }

    /// Approves `id` as bob from Slack and delivers the escalation the approval started.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn approve_and_escalate(&self, id: &RequestId) {
        let before = self.invoker.escalations().len();
        let (status, answer) = self
            .approve_fn(&self.click("slack-interaction-approve.json", id, "U0BOB0001"))
            .await;
        assert_eq!(status, 200, "{answer}");
        let escalations = self.invoker.escalations();
        assert_eq!(escalations.len(), before + 1, "one escalation started");
        let payload = escalations[before].payload.clone();
        let done = self.escalate_fn(payload).await.expect("escalate");
        assert!(done.escalated);
    }

    /// The stored request (read from DynamoDB).
    pub async fn stored(&self, id: &RequestId) -> Request {
        self.store
            .get(id)
            .await
            .unwrap_or_else(|e| panic!("get {id}: {e}"))
            .unwrap_or_else(|| panic!("request {id} is not in the table"))
    }

    /// The audit events of `id`, after checking that their chain verifies up to the head
    /// stored on the request.
    pub async fn verified_audit(&self, id: &RequestId) -> Vec<AuditEvent> {
        let request = self.stored(id).await;
        let events = self
            .store
            .audit_events(id)
            .await
            .unwrap_or_else(|e| panic!("audit of {id}: {e}"));
        verify_chain(&events, Some((request.audit_seq, &request.audit_head)))
            .unwrap_or_else(|e| panic!("audit chain of {id}: {e}"));
        events
    }

    /// The IAM user names in `group`, read from moto.
    pub async fn members(&self, group: &str) -> Vec<String> {
        self.iam
            .get_group()
            .group_name(group)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get group {group}: {e:?}"))
            .users()
            .iter()
            .map(|u| u.user_name().to_owned())
            .collect()
    }

    /// Whether `person`'s IAM user is in `group`.
    pub async fn is_member(&self, group: &str, person: &str) -> bool {
        self.members(group).await.contains(&self.users[person])
    }

    /// A schedule of the group as moto stores it: when it fires and its input.
    pub async fn schedule(&self, name: &str) -> Option<(DateTime<Utc>, Value)> {
        let found = self
            .schedules
            .get_schedule()
            .group_name(&self.schedule_group)
            .name(name)
            .send()
            .await;
        match found {
            Ok(schedule) => {
                let at = schedule
                    .schedule_expression()
                    .and_then(parse_at_expression)
                    .unwrap_or_else(|| panic!("schedule {name} has no at() expression"));
                let input = schedule
                    .target()
                    .map(|t| t.input().unwrap_or_default())
                    .unwrap_or_default();
                let input = serde_json::from_str(input)
                    .unwrap_or_else(|e| panic!("schedule {name} input is not JSON: {e}"));
                Some((at, input))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(err) => panic!("get schedule {name}: {err:?}"),
        }
    }

    /// What the Scheduler would deliver to revoke for `action`: the input of its schedule in
    /// moto, at the time it fires (the clock is moved there).
    ///
    /// # Panics
    /// When the schedule does not exist.
    pub async fn fire(&self, action: &ScheduledAction) -> Value {
        let name = action.schedule_name();
        let (at, input) = self
            .schedule(&name)
            .await
            .unwrap_or_else(|| panic!("no schedule {name}"));
        if at > self.now() {
            self.clock.set(at);
        }
        input
    }
}

/// The [`Invoker`] of the tests. Asynchronous invokes are recorded for the test to deliver;
/// synchronous invokes of [`EXAMPLE_TARGET_ARN`] run the example target's handler against
/// moto's IAM, as Lambda would.
pub struct Dispatcher {
    calls: Mutex<Vec<Invocation>>,
    iam: aws_sdk_iam::Client,
    example_group: String,
}

impl Dispatcher {
    pub fn new(iam: aws_sdk_iam::Client, example_group: String) -> Self {
        Dispatcher {
            calls: Mutex::new(Vec::new()),
            iam,
            example_group,
        }
    }

    pub fn calls(&self) -> Vec<Invocation> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The asynchronous invokes of escalate, in order.
    pub fn escalations(&self) -> Vec<Invocation> {
        self.calls()
            .into_iter()
            .filter(|c| c.asynchronous && c.function == ESCALATE_FUNCTION)
            .collect()
    }

    fn record(&self, function: &str, payload: &Value, asynchronous: bool) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Invocation {
                function: function.to_owned(),
                payload: payload.clone(),
                asynchronous,
            });
    }
}

#[async_trait]
impl Invoker for Dispatcher {
    async fn invoke_async(&self, function: &str, payload: &Value) -> Result<(), InvokeError> {
        self.record(function, payload, true);
        Ok(())
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        self.record(function, payload, false);
        if function == EXAMPLE_TARGET_ARN {
            Ok(
                elevate_example_target::handle(&self.iam, &self.example_group, payload.clone())
                    .await,
            )
        } else {
            Err(InvokeError::FunctionError(format!(
                "ResourceNotFoundException: Function not found: {function}"
            )))
        }
    }
}

/// A [`Strategy`] that passes through to a real one, except for the next calls it was told to
/// fail (as IAM throttling or an outage would).
pub struct Flaky {
    inner: Arc<dyn Strategy>,
    deescalate_failures: Mutex<u32>,
}

impl Flaky {
    pub fn new(inner: Arc<dyn Strategy>) -> Self {
        Flaky {
            inner,
            deescalate_failures: Mutex::new(0),
        }
    }

    /// The next `n` removals fail without reaching IAM.
    pub fn fail_deescalate(&self, n: u32) {
        *self
            .deescalate_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = n;
    }

    fn take_failure(&self) -> bool {
        let mut pending = self
            .deescalate_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *pending > 0 {
            *pending -= 1;
            true
        } else {
            false
        }
    }
}

#[async_trait]
impl Strategy for Flaky {
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        self.inner.escalate(target, person, request).await
    }

    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        if self.take_failure() {
            return Err(StrategyError::Unavailable(Box::new(InjectedFailure(
                "iam RemoveUserFromGroup: Throttling: Rate exceeded".to_owned(),
            ))));
        }
        self.inner.deescalate(target, person, request).await
    }

    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        self.inner.is_member(target, person).await
    }

    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        self.inner.members(target).await
    }

    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError> {
        self.inner.remove_member(target, iam_user).await
    }

    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: chrono::DateTime<Utc>,
    ) -> Result<Option<elevate_core::model::SessionsEnded>, StrategyError> {
        self.inner.end_sessions(target, person, before).await
    }
}
