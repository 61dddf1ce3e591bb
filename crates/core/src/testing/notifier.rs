//! A [`Notifier`] that records what it was asked to say.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::config::{Flow, Person};
use crate::model::{MessageRef, Request, RequestId, State};
use crate::ports::{Notifier, NotifyError};

use super::{injected, lock, take_failure};

/// One call the [`RecordingNotifier`] received (successful ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Announce {
        request: Request,
        flow: String,
        requester: String,
        message: MessageRef,
    },
    Update {
        request: Request,
        message: MessageRef,
    },
    Tell {
        person: String,
        /// The request the message is about, and its state when it was sent.
        request_id: RequestId,
        state: State,
        text: String,
    },
    TellPrivately {
        channel: String,
        person_slack_id: String,
        text: String,
    },
    Remind {
        channel: String,
        /// The `ts` of the message it was posted under.
        thread: Option<String>,
        text: String,
        ping: Vec<String>,
    },
}

#[derive(Default)]
struct NotifierInner {
    notices: Vec<Notice>,
    failures: u32,
    next_ts: u64,
}

/// [`Notifier`] that records what it was asked to say. An announcement answers a
/// [`MessageRef`] in the channel it was given, with an increasing Slack-like `ts`.
#[derive(Default)]
pub struct RecordingNotifier {
    inner: Mutex<NotifierInner>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `NotifyError::Unavailable` and record nothing.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Everything said so far, in order.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.inner).notices.clone()
    }

    /// The texts of the direct messages to the person named `person`.
    pub fn told(&self, person: &str) -> Vec<String> {
        lock(&self.inner)
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::Tell {
                    person: p, text, ..
                } if p == person => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.inner).notices.clear();
    }

    fn enter(&self) -> Result<MutexGuard<'_, NotifierInner>, NotifyError> {
        let mut inner = lock(&self.inner);
        if take_failure(&mut inner.failures) {
            return Err(NotifyError::Unavailable(injected("notifier")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn announce(
        &self,
        request: &Request,
        flow: &Flow,
        requester: &Person,
        channel: &str,
    ) -> Result<MessageRef, NotifyError> {
        let mut inner = self.enter()?;
        inner.next_ts += 1;
        let message = MessageRef {
            channel: channel.to_owned(),
            ts: format!("1700000000.{:06}", inner.next_ts),
        };
        inner.notices.push(Notice::Announce {
            request: request.clone(),
            flow: flow.name.to_string(),
            requester: requester.name.to_string(),
            message: message.clone(),
        });
        Ok(message)
    }

    async fn update(
        &self,
        request: &Request,
        _flow: &Flow,
        _requester: &Person,
        message: &MessageRef,
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::Update {
            request: request.clone(),
            message: message.clone(),
        });
        Ok(())
    }

    async fn tell(
        &self,
        person: &Person,
        request: &Request,
        text: &str,
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::Tell {
            person: person.name.to_string(),
            request_id: request.id.clone(),
            state: request.state,
            text: text.to_owned(),
        });
        Ok(())
    }

    async fn remind(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
        ping: &[String],
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::Remind {
            channel: channel.to_owned(),
            thread: thread.map(str::to_owned),
            text: text.to_owned(),
            ping: ping.to_vec(),
        });
        Ok(())
    }

    async fn tell_privately(
        &self,
        channel: &str,
        person_slack_id: &str,
        text: &str,
    ) -> Result<(), NotifyError> {
        let mut inner = self.enter()?;
        inner.notices.push(Notice::TellPrivately {
            channel: channel.to_owned(),
            person_slack_id: person_slack_id.to_owned(),
            text: text.to_owned(),
        });
        Ok(())
    }
}
