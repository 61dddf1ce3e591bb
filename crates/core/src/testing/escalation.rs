//! An [`Escalation`] that records the escalations started.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{injected, lock, take_failure};
use crate::model::RequestId;
use crate::ports::{Escalation, InvokeError};

#[derive(Default)]
struct EscalationInner {
    started: Vec<RequestId>,
    failures: u32,
}

/// [`Escalation`] that records each start; the test delivers the escalation itself when it
/// wants one (`service::escalate`).
#[derive(Default)]
pub struct RecordingEscalation {
    inner: Mutex<EscalationInner>,
}

impl RecordingEscalation {
    pub fn new() -> Self {
        Self::default()
    }

    /// The requests whose escalation was started, in order (failed starts included).
    pub fn started(&self) -> Vec<RequestId> {
        lock(&self.inner).started.clone()
    }

    /// The next `n` starts fail with `InvokeError::Unavailable`; they are recorded.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }
}

#[async_trait]
impl Escalation for RecordingEscalation {
    async fn start(&self, request_id: &RequestId) -> Result<(), InvokeError> {
        let mut inner = lock(&self.inner);
        inner.started.push(request_id.clone());
        if take_failure(&mut inner.failures) {
            return Err(InvokeError::Unavailable(injected("start escalation")));
        }
        Ok(())
    }
}
