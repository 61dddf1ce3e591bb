//! A [`FollowUps`] that records the work deferred.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{injected, lock, take_failure};
use crate::events::FollowUp;
use crate::ports::{FollowUps, InvokeError};

#[derive(Default)]
struct FollowUpsInner {
    deferred: Vec<FollowUp>,
    failures: u32,
}

/// [`FollowUps`] that records each deferral; the test runs the work itself when it wants it
/// (`service::follow_up`), as Lambda would after answering.
#[derive(Default)]
pub struct RecordingFollowUps {
    inner: Mutex<FollowUpsInner>,
}

impl RecordingFollowUps {
    pub fn new() -> Self {
        Self::default()
    }

    /// The work deferred so far, in order (failed deferrals left out).
    pub fn deferred(&self) -> Vec<FollowUp> {
        lock(&self.inner).deferred.clone()
    }

    /// Takes the work deferred so far, leaving none.
    pub fn take(&self) -> Vec<FollowUp> {
        std::mem::take(&mut lock(&self.inner).deferred)
    }

    /// The next `n` deferrals fail with `InvokeError::Unavailable`; they are not recorded.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }
}

#[async_trait]
impl FollowUps for RecordingFollowUps {
    async fn defer(&self, work: &FollowUp) -> Result<(), InvokeError> {
        let mut inner = lock(&self.inner);
        if take_failure(&mut inner.failures) {
            return Err(InvokeError::Unavailable(injected("defer follow-up")));
        }
        inner.deferred.push(work.clone());
        Ok(())
    }
}
