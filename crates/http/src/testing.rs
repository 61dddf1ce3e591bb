//! Test support (feature `testing`): the API Gateway and Slack event fixtures of
//! `infra/events/`, adjusted per test, and reading answers back.

use std::path::PathBuf;

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
