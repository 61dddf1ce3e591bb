//! Talking to a running stack the way its users do: SigV4-signed API calls per person (their
//! keys from the stack's credentials file, signed like the CLI signs), Slack clicks signed with
//! the stack's signing secret, the Slack stand-in's messages, and the Lambda Invoke API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use elevate::api::{NewRequestBody, RequestDetail, RequestEnvelope};
use elevate_core::{Request, RequestId};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{BenchConfig, FLOW};
use crate::stack::{Stack, StackError};

/// The region the stack signs for.
pub const REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {path} answered {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("{method} {path}: {source}")]
    Http {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: answer is not the expected JSON: {message}")]
    Json { path: String, message: String },
    #[error(transparent)]
    Sign(#[from] elevate::api::SignError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("cannot build the request: {0}")]
    Build(String),
}

impl ClientError {
    /// The HTTP status the stack answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A message of the Slack stand-in (`GET /slack/messages`), the fields the bench reads.
#[derive(Debug, Clone, Deserialize)]
pub struct SlackMessage {
    pub channel: String,
    pub ts: String,
    pub posted_at: DateTime<Utc>,
    #[serde(default)]
    pub visible_to: Option<String>,
    #[serde(default)]
    pub blocks: Value,
}

impl SlackMessage {
    /// The request id its buttons carry, when it has elevate's buttons.
    pub fn request_id(&self) -> Option<String> {
        self.blocks
            .as_array()?
            .iter()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().into_iter().flatten())
            .find_map(|element| element["value"].as_str().map(str::to_owned))
    }
}

/// What a click was answered, and when the answer arrived.
#[derive(Debug, Clone, Copy)]
pub struct Clicked {
    pub status: u16,
    pub sent_at: DateTime<Utc>,
    pub answered_at: DateTime<Utc>,
}

/// Everything that talks to one stack. Cheap to clone.
#[derive(Clone)]
pub struct StackClient {
    http: reqwest::Client,
    api_url: String,
    slack_page: String,
    signing_secret: Arc<str>,
    keys: Arc<HashMap<String, Credentials>>,
    slack_ids: Arc<HashMap<String, String>>,
}

impl std::fmt::Debug for StackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackClient")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl StackClient {
    /// A client of `stack` able to act as each of `people`.
    pub fn new(stack: &Stack, people: &[String]) -> Result<StackClient, ClientError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        let mut keys = HashMap::new();
        for person in people {
            let k = stack.keys(person)?;
            keys.insert(
                person.clone(),
                Credentials::new(
                    &k.access_key_id,
                    &k.secret_access_key,
                    None,
                    None,
                    "elevate-local",
                ),
            );
        }
        let slack_ids = stack
            .info
            .people
            .iter()
            .map(|p| (p.name.clone(), p.slack_id.clone()))
            .collect();
        Ok(StackClient {
            http,
            api_url: stack.info.api_url.trim_end_matches('/').to_owned(),
            slack_page: stack.info.slack_page.trim_end_matches('/').to_owned(),
            signing_secret: Arc::from(stack.info.signing_secret.as_str()),
            keys: Arc::new(keys),
            slack_ids: Arc::new(slack_ids),
        })
    }

    /// A SigV4-signed call as `person` (service execute-api), answering the JSON of a 2xx.
    pub async fn call(
        &self,
        person: &str,
        method: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let credentials = self
            .keys
            .get(person)
            .ok_or_else(|| StackError::NoCredentials(person.to_owned()))?;
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api_url));
        if !bytes.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        let mut request = builder
            .body(bytes)
            .map_err(|e| ClientError::Build(e.to_string()))?;
        elevate::api::sign(
            &mut request,
            credentials,
            REGION,
            elevate::api::SERVICE,
            SystemTime::now(),
        )?;
        let request = reqwest::Request::try_from(request).map_err(|source| ClientError::Http {
            method,
            path: path.to_owned(),
            source,
        })?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|source| ClientError::Http {
                method,
                path: path.to_owned(),
                source,
            })?;
        read_json(method, path, response).await
    }

    /// `POST /requests` as `requester` on the bench flow: the request as created.
    pub async fn create_request(
        &self,
        requester: &str,
        duration: Duration,
        reason: &str,
    ) -> Result<Request, ClientError> {
        let body = NewRequestBody {
            flow: FLOW.to_owned(),
            target: None,
            account: None,
            duration: duration.as_secs(),
            reason: reason.to_owned(),
            break_glass: false,
        };
        let body = serde_json::to_value(&body).map_err(|e| ClientError::Build(e.to_string()))?;
        let answer = self
            .call(requester, "POST", "/requests", Some(body))
            .await?;
        from_json::<RequestEnvelope>("/requests", answer).map(|e| e.request)
    }

    /// `GET /requests/{id}` as `person`: the request and its audit events.
    pub async fn get_request(
        &self,
        person: &str,
        id: &RequestId,
    ) -> Result<RequestDetail, ClientError> {
        let path = format!("/requests/{id}");
        let answer = self.call(person, "GET", &path, None).await?;
        from_json(&path, answer)
    }

    /// Clicks Approve (or Deny) on the message `channel`/`ts` as Slack would report it for
    /// `approver`: the block_actions body, signed now with the stack's signing secret, posted
    /// to the public `POST /slack/interactions`.
    pub async fn click(
        &self,
        approver: &str,
        action_id: &str,
        request_id: &RequestId,
        channel: &str,
        ts: &str,
    ) -> Result<Clicked, ClientError> {
        let slack_id = self
            .slack_ids
            .get(approver)
            .cloned()
            .unwrap_or_else(|| BenchConfig::slack_id(approver));
        let body = elevate_slack::block_actions_body(
            &slack_id,
            approver,
            channel,
            ts,
            action_id,
            request_id.as_str(),
        );
        let path = "/slack/interactions";
        let sent_at = Utc::now();
        let timestamp = sent_at.timestamp();
        let signature = elevate_slack::sign(&self.signing_secret, timestamp, &body);
        let response = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(elevate_slack::signature::TIMESTAMP_HEADER, timestamp)
            .header(elevate_slack::signature::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                method: "POST",
                path: path.to_owned(),
                source,
            })?;
        let answered_at = Utc::now();
        Ok(Clicked {
            status: response.status().as_u16(),
            sent_at,
            answered_at,
        })
    }

    /// The Slack stand-in's messages as they stand now.
    pub async fn slack_messages(&self) -> Result<Vec<SlackMessage>, ClientError> {
        let path = format!("{}/messages", self.slack_page);
        let response = self
            .http
            .get(&path)
            .send()
            .await
            .map_err(|source| ClientError::Http {
                method: "GET",
                path: path.clone(),
                source,
            })?;
        let value = read_json("GET", &path, response).await?;
        // A bare list, or an object holding it.
        let list = match value {
            Value::Array(_) => value,
            Value::Object(mut map) => map.remove("messages").unwrap_or(Value::Array(Vec::new())),
            _ => Value::Array(Vec::new()),
        };
        from_json(&path, list)
    }

    /// Invokes a function through the stack's Lambda Invoke API (unsigned, as the stack's own
    /// functions do locally). `event`: InvocationType=Event (answered 202 at once).
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        event: bool,
    ) -> Result<(u16, Value), ClientError> {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let response = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header(
                "x-amz-invocation-type",
                if event { "Event" } else { "RequestResponse" },
            )
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .map_err(|source| ClientError::Http {
                method: "POST",
                path: path.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let text = response.text().await.map_err(|source| ClientError::Http {
            method: "POST",
            path: path.clone(),
            source,
        })?;
        if function_error {
            return Err(ClientError::Status {
                method: "POST",
                path,
                status,
                body: text,
            });
        }
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }
}

async fn read_json(
    method: &'static str,
    path: &str,
    response: reqwest::Response,
) -> Result<Value, ClientError> {
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|source| ClientError::Http {
        method,
        path: path.to_owned(),
        source,
    })?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Status {
            method,
            path: path.to_owned(),
            status,
            body: text,
        });
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| ClientError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(path: &str, value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_request_id_of_a_messages_buttons() {
        let message: SlackMessage = serde_json::from_value(serde_json::json!({
            "channel": "C0BENCH01",
            "ts": "1700000000.000100",
            "text": "user001 asks",
            "posted_at": "2026-11-25T10:00:00Z",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
                {"type": "actions", "elements": [
                    {"type": "button", "action_id": "approve", "value": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d"},
                    {"type": "button", "action_id": "deny", "value": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d"}
                ]}
            ]
        }))
        .expect("message");
        assert_eq!(
            message.request_id().as_deref(),
            Some("0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d")
        );
    }
}
