//! [`Notifier`] over the Slack Web API (`chat.postMessage`, `chat.update`,
//! `chat.postEphemeral`) with a bot token, and `views.open` for the request modal.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use elevate_core::ports::{Notifier, NotifyError};
use elevate_core::{Flow, MessageRef, Person, Request};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::blocks::{notice, notice_about, request_message, Message};

/// Slack's own Web API base.
pub const DEFAULT_BASE_URL: &str = "https://slack.com/api";
/// Slack gives interaction handlers 3 s to answer; a call that takes longer is not worth waiting for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Slack errors that say "try again later" rather than "no".
const TRANSIENT_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Posts and updates request messages through the Slack Web API.
#[derive(Clone)]
pub struct SlackNotifier {
    client: reqwest::Client,
    base_url: String,
    bot_token: String,
    timeout: Duration,
}

// Hand-written so the token can never reach a log through `{:?}`.
impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("base_url", &self.base_url)
            .field("bot_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The parts of a Web API answer elevate reads.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    error: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CallError(String);

impl SlackNotifier {
    /// `base_url` is the Web API root (`https://slack.com/api`, or a stand-in's `.../api`).
    pub fn new(base_url: impl Into<String>, bot_token: impl Into<String>) -> Self {
        Self::with_client(reqwest::Client::new(), base_url, bot_token)
    }

    /// Shares an existing HTTP client (connection pool) with other callers.
    pub fn with_client(
        client: reqwest::Client,
        base_url: impl Into<String>,
        bot_token: impl Into<String>,
    ) -> Self {
        Self {
            client,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            bot_token: bot_token.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Gives up on a call after `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Opens `view` (a modal, see [`crate::modal::request_modal`]) for whoever's action gave
    /// `trigger_id`; Slack accepts a trigger for 3 seconds, once.
    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), NotifyError> {
        self.call(
            "views.open",
            &json!({ "trigger_id": trigger_id, "view": view }),
        )
        .await
        .map(drop)
    }

    #[tracing::instrument(skip_all, fields(method = method), err(level = "warn", Display))]
    async fn call(&self, method: &str, body: &Value) -> Result<Answer, NotifyError> {
        let unavailable = |detail: String| NotifyError::Unavailable(Box::new(CallError(detail)));
        let response = self
            .client
            .post(format!("{}/{method}", self.base_url))
            .bearer_auth(&self.bot_token)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| NotifyError::Unavailable(Box::new(e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!(
                "Slack {method} answered HTTP {status}"
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| NotifyError::Unavailable(Box::new(e.without_url())))?;
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("Slack {method} answer is not JSON: {e}")))?;
        if answer.ok {
            return Ok(answer);
        }
        let error = answer.error.unwrap_or_else(|| "unknown_error".to_owned());
        if TRANSIENT_ERRORS.contains(&error.as_str()) {
            Err(unavailable(format!("Slack {method}: {error}")))
        } else {
            Err(NotifyError::Refused(format!("Slack {method}: {error}")))
        }
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn announce(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
        channel: &str,
    ) -> Result<MessageRef, NotifyError> {
        let message = request_message(request, flow, requester);
        let answer = self
            .call(
                "chat.postMessage",
                &json!({
                    "channel": channel,
                    "text": message.text,
                    "blocks": message.blocks,
                    "unfurl_links": false,
                    "unfurl_media": false,
                }),
            )
            .await?;
        match (answer.channel, answer.ts) {
            (Some(channel), Some(ts)) => Ok(MessageRef { channel, ts }),
            _ => Err(NotifyError::Refused(
                "Slack chat.postMessage answered ok without channel and ts".to_owned(),
            )),
        }
    }

    async fn update(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
        message: &MessageRef,
    ) -> Result<(), NotifyError> {
        let body = request_message(request, flow, requester);
        self.call(
            "chat.update",
            &json!({
                "channel": message.channel,
                "ts": message.ts,
                "text": body.text,
                "blocks": body.blocks,
            }),
        )
        .await
        .map(drop)
    }

    /// In the thread of `thread`, broadcast to the channel, or a new message without one.
    /// `text` goes as [`tell`](Notifier::tell)'s does; the mentions of `ping` are a `mrkdwn`
    /// block of their own, so that Slack notifies them.
    async fn remind(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
        ping: &[String],
    ) -> Result<(), NotifyError> {
        let mut message = notice(text);
        // A Slack user id is letters and digits; anything else is not mentioned.
        let mentions: Vec<String> = ping
            .iter()
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|id| format!("<@{id}>"))
            .collect();
        if !mentions.is_empty() {
            message.blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": mentions.join(" ")},
            }));
        }
        let mut body = plain_post(channel, &message);
        if let Some(ts) = thread {
            body["thread_ts"] = json!(ts);
            body["reply_broadcast"] = json!(true);
        }
        self.call("chat.postMessage", &body).await.map(drop)
    }

    /// `text` may quote user text (a denial's reason, an error), so it goes as a `plain_text`
    /// block on one line; the fallback `text` is escaped and sent with `mrkdwn: false` and
    /// `parse: "none"`, so Slack neither formats nor links it, and nothing unfurls. About an
    /// ACTIVE grant, the message carries the End access now button.
    async fn tell(
        &self,
        person: &Person,
        request: &Request,
        text: &str,
    ) -> Result<(), NotifyError> {
        let message = notice_about(text, request);
        // A user id as channel makes Slack deliver to the bot's DM with that user.
        self.call("chat.postMessage", &plain_post(&person.slack_id, &message))
            .await
            .map(drop)
    }

    async fn tell_privately(
        &self,
        channel: &str,
        person_slack_id: &str,
        text: &str,
    ) -> Result<(), NotifyError> {
        let message = notice(text);
        self.call(
            "chat.postEphemeral",
            &json!({
                "channel": channel,
                "user": person_slack_id,
                "text": message.text,
                "blocks": message.blocks,
                "parse": "none",
            }),
        )
        .await
        .map(drop)
    }
}

/// A `chat.postMessage` body for text elevate does not format: neither formatted nor linked
/// by Slack, and nothing unfurls.
fn plain_post(channel: &str, message: &Message) -> Value {
    json!({
        "channel": channel,
        "text": message.text,
        "blocks": message.blocks,
        "mrkdwn": false,
        "parse": "none",
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// Against the recording stand-in, which answers and checks like Slack.
#[cfg(all(test, feature = "standin"))]
mod tests {
    use elevate_core::{Config, State};

    use super::*;
    use crate::blocks::tests::{alice, every_state};
    use crate::interaction::{
        parse_payload, view_submission_body, Payload, RequestForm, END_ACCESS_ACTION,
    };
    use crate::modal::{access_value, request_modal, REQUEST_CALLBACK};
    use crate::standin::SlackStandin;

    const TOKEN: &str = "xoxb-test-token";

    use crate::TEST_CONFIG as CONFIG;

    #[tokio::test]
    async fn only_the_message_about_an_active_grant_offers_to_end_it() {
        let standin = SlackStandin::start(TOKEN).await.expect("start");
        let notifier = SlackNotifier::new(standin.base_url(), TOKEN);
        let requests = every_state();
        for request in &requests {
            notifier
                .tell(
                    &alice(),
                    request,
                    &format!("Your request is {}", request.state),
                )
                .await
                .expect("tell");
        }
        let told = standin.messages("U0ALICE01");
        assert_eq!(told.len(), State::ALL.len());
        for (message, request) in told.iter().zip(&requests) {
            let buttons = message.buttons();
            if request.state == State::Active {
                assert_eq!(buttons.len(), 1, "{}", message.text);
                assert_eq!(buttons[0].action_id, END_ACCESS_ACTION);
                assert_eq!(buttons[0].value.as_deref(), Some(request.id.as_str()));
            } else {
                assert!(buttons.is_empty(), "{}", message.text);
            }
        }
        standin.stop().await;
    }

    #[tokio::test]
    async fn open_view_opens_the_request_modal_once_per_trigger() {
        let standin = SlackStandin::start(TOKEN).await.expect("start");
        let notifier = SlackNotifier::new(standin.base_url(), TOKEN);
        let config = Config::parse(CONFIG).expect("config");
        let alice = config.person("alice").expect("alice");
        let view = request_modal(&config, alice, "C0DEV").expect("modal");

        let trigger = standin.state().issue_trigger("U0ALICE01");
        notifier.open_view(&trigger, &view).await.expect("opened");
        let opened = standin.state().views();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].trigger_id, trigger);
        assert_eq!(opened[0].view["callback_id"], REQUEST_CALLBACK);
        assert_eq!(opened[0].view["blocks"], view["blocks"]);

        // A trigger is good once; an unknown one is refused, not retried.
        for trigger in [trigger.as_str(), "1.2.unknown"] {
            let err = notifier
                .open_view(trigger, &view)
                .await
                .expect_err("refused");
            assert!(matches!(err, NotifyError::Refused(_)), "{err}");
        }

        // What the opened modal submits is read back as it was filled in.
        let form = RequestForm {
            access: Some(access_value("infra_access", "admins", None)),
            duration: Some("2h".into()),
            reason: Some("debug prod incident #42".into()),
        };
        let body = view_submission_body("U0ALICE01", "alice", &opened[0].view, &form);
        let Ok(Payload::ViewSubmission(submission)) = parse_payload(body.as_bytes()) else {
            panic!("not a submission: {body}");
        };
        assert_eq!(submission.view_id, opened[0].id);
        assert_eq!(submission.private_metadata, "C0DEV");
        assert_eq!(submission.form, form);
        standin.stop().await;
    }
}
