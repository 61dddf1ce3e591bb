//! Test support for the functions (feature `testing`): the event fixtures of `infra/events/`
//! adjusted per test, and an [`App`] over the in-memory fakes of `elevate_core::testing`.

use std::path::PathBuf;
use std::sync::Arc;

use elevate_core::service::{App, Settings};
use elevate_core::testing::{
    FakeClock, FakeScheduler, FakeStrategy, MemoryStore, RecordingInvoker, RecordingNotifier,
};
use elevate_core::{Config, RequestId};
use serde_json::Value;

/// The request id every fixture of `infra/events/` names.
pub const FIXTURE_ID: &str = "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05";
/// The IAM users of the fixtures' story (infra/events/README.md).
pub const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/alice";
pub const BOB_ARN: &str = "arn:aws:iam::123456789012:user/bob";
/// Someone AWS knows and elevate.toml does not.
pub const MALLORY_ARN: &str = "arn:aws:iam::123456789012:user/mallory";

/// `infra/events/<name>` as JSON.
///
/// # Panics
/// When the fixture is missing or not JSON: the test cannot run without it.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/events")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

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
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/elevate.toml");
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

/// dave's IAM user: a person of elevate.toml who approves nothing.
pub const DAVE_ARN: &str = "arn:aws:iam::123456789012:user/dave";

/// An API Gateway HTTP API (payload 2.0) event, built from a fixture.
#[derive(Debug, Clone)]
pub struct ApiEvent(pub Value);

impl ApiEvent {
    /// The fixture `infra/events/<name>`.
    pub fn fixture(name: &str) -> Self {
        ApiEvent(fixture(name))
    }

    /// The IAM principal the authorizer reports.
    pub fn caller(mut self, arn: &str) -> Self {
        self.0["requestContext"]["authorizer"]["iam"]["userArn"] = Value::from(arn);
        self
    }

    /// No authorizer context at all (a route without IAM auth).
    pub fn no_caller(mut self) -> Self {
        if let Some(context) = self.0["requestContext"].as_object_mut() {
            context.remove("authorizer");
        }
        self
    }

    /// Replaces the fixture's request id in the paths and path parameters.
    pub fn id(mut self, id: &str) -> Self {
        for pointer in [
            "/rawPath",
            "/requestContext/http/path",
            "/pathParameters/id",
        ] {
            if let Some(value) = self.0.pointer_mut(pointer) {
                if let Some(text) = value.as_str() {
                    *value = Value::from(text.replace(FIXTURE_ID, id));
                }
            }
        }
        self
    }

    /// A plain-text body (`None` removes it).
    pub fn body(mut self, body: Option<&str>) -> Self {
        self.0["isBase64Encoded"] = Value::Bool(false);
        match body {
            Some(text) => self.0["body"] = Value::from(text),
            None => {
                if let Some(event) = self.0.as_object_mut() {
                    event.remove("body");
                }
            }
        }
        self
    }

    /// The JSON body `value`.
    pub fn json(self, value: &Value) -> Self {
        let text = value.to_string();
        self.body(Some(&text))
    }

    /// The query string (`a=1&b=2`), raw and parsed as API Gateway sends both.
    pub fn query(mut self, raw: &str) -> Self {
        self.0["rawQueryString"] = Value::from(raw);
        let params: serde_json::Map<String, Value> = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key.to_owned(), Value::from(value))
            })
            .collect();
        if params.is_empty() {
            if let Some(event) = self.0.as_object_mut() {
                event.remove("queryStringParameters");
            }
        } else {
            self.0["queryStringParameters"] = Value::Object(params);
        }
        self
    }

    /// Sets one header (lower case, as API Gateway delivers them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0["headers"][name.to_ascii_lowercase()] = Value::from(value);
        self
    }

    /// The event as lambda_http hands it to a handler.
    ///
    /// # Panics
    /// When lambda_http cannot read it.
    pub fn request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.0.to_string())
            .unwrap_or_else(|e| panic!("lambda_http cannot read the event: {e}"))
    }
}

/// The form body of a Slack interaction fixture, as Slack sent it (API Gateway's base64 undone).
///
/// # Panics
/// When the fixture's body is not base64 of UTF-8.
pub fn slack_fixture_body(name: &str) -> String {
    use base64::Engine;
    let event = fixture(name);
    let encoded = event["body"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("fixture {name} body is not base64: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("fixture {name} body is not UTF-8: {e}"))
}

impl ApiEvent {
    /// The Slack interaction fixture `name` (`slack-interaction-approve.json` or `-deny`),
    /// clicked by `slack_user` on request `id`, signed with `secret` at the Unix time
    /// `signed_at`, and base64-encoded as API Gateway delivers a form post.
    pub fn slack_click(
        name: &str,
        id: &str,
        slack_user: &str,
        secret: &str,
        signed_at: i64,
    ) -> Self {
        let body = slack_fixture_body(name)
            .replace(FIXTURE_ID, id)
            .replace("U0BOB0001", slack_user);
        ApiEvent::fixture(name).slack_body(body.as_bytes(), secret, signed_at)
    }

    /// `body` as the event's base64-encoded body, with the Slack signature headers of `secret`
    /// at `signed_at`.
    pub fn slack_body(mut self, body: &[u8], secret: &str, signed_at: i64) -> Self {
        use base64::Engine;
        self.0["body"] = Value::from(base64::engine::general_purpose::STANDARD.encode(body));
        self.0["isBase64Encoded"] = Value::Bool(true);
        let signature = elevate_slack::sign(secret, signed_at, body);
        self.header("content-length", &body.len().to_string())
            .header("x-slack-request-timestamp", &signed_at.to_string())
            .header("x-slack-signature", &signature)
    }
}

/// The JSON body of an answer.
///
/// # Panics
/// When the body is not JSON.
pub fn body_json(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    let bytes: &[u8] = response.body().as_ref();
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// An [`App`] over the in-memory fakes, each kept for inspection.
pub struct FakeApp {
    pub app: App,
    pub store: Arc<MemoryStore>,
    pub strategy: Arc<FakeStrategy>,
    pub scheduler: Arc<FakeScheduler>,
    pub notifier: Arc<RecordingNotifier>,
    pub invoker: Arc<RecordingInvoker>,
    pub clock: Arc<FakeClock>,
}

/// The name the fakes' app invokes escalate by.
pub const ESCALATE_FUNCTION: &str = "elevate-escalate";

impl FakeApp {
    pub fn new(config: Config) -> Self {
        Self::at(config, FakeClock::start())
    }

    /// The fakes with the clock at `now`.
    pub fn at(config: Config, now: chrono::DateTime<chrono::Utc>) -> Self {
        let store = Arc::new(MemoryStore::new());
        let strategy = Arc::new(FakeStrategy::new());
        let scheduler = Arc::new(FakeScheduler::new());
        let notifier = Arc::new(RecordingNotifier::new());
        let invoker = Arc::new(RecordingInvoker::new());
        let clock = Arc::new(FakeClock::new(now));
        let app = App {
            config: Arc::new(config),
            store: store.clone(),
            strategy: strategy.clone(),
            scheduler: scheduler.clone(),
            notifier: notifier.clone(),
            invoker: invoker.clone(),
            clock: clock.clone(),
            settings: Settings::new(ESCALATE_FUNCTION),
        };
        FakeApp {
            app,
            store,
            strategy,
            scheduler,
            notifier,
            invoker,
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
        let submission = elevate_core::service::Submission {
            flow: flow.to_owned(),
            target: None,
            duration,
            reason: "INC-4211: restore the claims export".to_owned(),
        };
        match elevate_core::service::submit(
            &self.app,
            &elevate_core::testing::caller_of(&person),
            submission,
        )
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
        let decision = elevate_core::service::Decision::Approve;
        if let Err(err) = elevate_core::service::decide(
            &self.app,
            &elevate_core::testing::caller_of(&person),
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
    pub fn person(&self, name: &str) -> elevate_core::Person {
        self.app
            .config
            .person(name)
            .unwrap_or_else(|| panic!("no person {name}"))
            .clone()
    }

    /// The stored request.
    ///
    /// # Panics
    /// When there is none.
    pub fn request(&self, id: &RequestId) -> elevate_core::Request {
        self.store
            .request(id)
            .unwrap_or_else(|| panic!("request {id} is not stored"))
    }
}
