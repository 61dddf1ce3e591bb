//! A whole [`App`](crate::service::App) over the fakes, each kept for inspection.

use std::sync::Arc;

use crate::config::Config;
use crate::model::RequestId;

use super::{
    FakeClock, FakeDirectory, FakeScheduler, FakeStrategy, MemoryStore, RecordingEscalation,
    RecordingFollowUps, RecordingInvoker, RecordingNotifier,
};

/// The flows config the fixtures are written for (`infra/elevate.toml`).
///
/// # Panics
/// When the file is missing or invalid.
pub fn infra_config() -> Config {
    infra_config_with("")
}

/// `infra/elevate.toml` with `extra` TOML appended, plus dave (IAM user `dave`, Slack
/// `U0DAVE001`), a person who approves nothing.
///
/// # Panics
/// When the file is missing or the result invalid.
pub fn infra_config_with(extra: &str) -> Config {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/elevate.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text = format!("{text}\n{DAVE}\n{extra}");
    Config::parse(&text).unwrap_or_else(|e| panic!("infra/elevate.toml (+ extra) is invalid: {e}"))
}

const DAVE: &str = r#"
[[people]]
name = "dave"
iam_user = "dave"
slack_id = "U0DAVE001"
email = "dave@healthy-health.example"
"#;

/// An [`App`] over the in-memory fakes, each kept for inspection.
pub struct FakeApp {
    pub app: crate::service::App,
    pub store: Arc<MemoryStore>,
    pub strategy: Arc<FakeStrategy>,
    /// Knows every person of the config as a user, in no group.
    pub directory: Arc<FakeDirectory>,
    pub scheduler: Arc<FakeScheduler>,
    pub notifier: Arc<RecordingNotifier>,
    pub escalation: Arc<RecordingEscalation>,
    pub follow_ups: Arc<RecordingFollowUps>,
    /// Answers `{"decision": "continue"}` unless told otherwise.
    pub hooks: Arc<RecordingInvoker>,
    pub clock: Arc<FakeClock>,
}

impl FakeApp {
    pub fn new(config: Config) -> Self {
        Self::at(config, FakeClock::start())
    }

    /// The fakes with the clock at `now`.
    pub fn at(config: Config, now: chrono::DateTime<chrono::Utc>) -> Self {
        let store = Arc::new(MemoryStore::new());
        let strategy = Arc::new(FakeStrategy::new());
        let directory = Arc::new(FakeDirectory::new());
        for person in &config.people {
            directory.add_user(&person.email);
        }
        let scheduler = Arc::new(FakeScheduler::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let escalation = Arc::new(RecordingEscalation::new());
        let follow_ups = Arc::new(RecordingFollowUps::new());
        let hooks = Arc::new(RecordingInvoker::answering(
            serde_json::json!({"decision": "continue"}),
        ));
        let clock = Arc::new(FakeClock::new(now));
        let app = crate::service::App {
            config: Arc::new(config),
            store: store.clone(),
            strategy: strategy.clone(),
            directory: directory.clone(),
            scheduler: scheduler.clone(),
            notifier: notifier.clone(),
            escalation: escalation.clone(),
            follow_ups: follow_ups.clone(),
            hooks: hooks.clone(),
            clock: clock.clone(),
            settings: crate::service::Settings::default(),
        };
        FakeApp {
            app,
            store,
            strategy,
            directory,
            scheduler,
            notifier,
            escalation,
            follow_ups,
            hooks,
            clock,
        }
    }

    /// A PENDING request of `requester` for the first target of `flow`.
    ///
    /// # Panics
    /// When the service refuses it.
    pub async fn submit(
        &self,
        requester: &str,
        flow: &str,
        duration: std::time::Duration,
    ) -> RequestId {
        let person = self.person(requester);
        let submission = crate::service::Submission {
            flow: flow.into(),
            target: None,
            account: None,
            duration,
            reason: "INC-4211: restore the claims export".to_owned(),
        };
        match crate::service::submit(&self.app, &crate::testing::caller_of(&person), submission)
            .await
        {
            Ok(request) => request.id,
            Err(err) => panic!("submit refused: {err}"),
        }
    }

    /// `approver` approves request `id`.
    ///
    /// # Panics
    /// When the service refuses it.
    pub async fn approve(&self, id: &RequestId, approver: &str) {
        let person = self.person(approver);
        let decision = crate::service::Decision::Approve;
        if let Err(err) = crate::service::decide(
            &self.app,
            &crate::testing::caller_of(&person),
            id,
            decision,
            None,
        )
        .await
        {
            panic!("approval refused: {err}");
        }
    }

    /// An APPROVED (not yet escalated) one-hour request of alice on infra_access, approved by bob.
    pub async fn approved(&self) -> RequestId {
        let id = self
            .submit(
                "alice",
                "infra_access",
                std::time::Duration::from_secs(3600),
            )
            .await;
        self.approve(&id, "bob").await;
        id
    }

    /// The person named `name`.
    ///
    /// # Panics
    /// When there is none.
    pub fn person(&self, name: &str) -> crate::config::Person {
        self.app
            .config
            .person(name)
            .unwrap_or_else(|| panic!("no person {name}"))
            .clone()
    }

    /// Runs the follow-ups deferred so far (and any they defer), like Lambda after the answer.
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
                if let Err(err) = crate::service::follow_up(&self.app, &work).await {
                    panic!("follow-up {work:?} failed: {err}");
                }
            }
        }
    }

    /// The stored request.
    ///
    /// # Panics
    /// When there is none.
    pub fn request(&self, id: &RequestId) -> crate::model::Request {
        self.store
            .request(id)
            .unwrap_or_else(|| panic!("request {id} is not stored"))
    }

    /// The actions of the request's audit trail, in order.
    pub fn actions(&self, id: &RequestId) -> Vec<crate::audit::Action> {
        let mut events: Vec<_> = self
            .store
            .events_all()
            .into_iter()
            .filter(|e| e.request_id == *id)
            .collect();
        events.sort_by_key(|e| e.seq);
        events.into_iter().map(|e| e.action).collect()
    }
}
