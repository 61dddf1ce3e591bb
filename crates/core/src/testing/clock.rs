//! A [`Clock`] the test moves.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::Clock;

use super::lock;

struct ClockInner {
    now: DateTime<Utc>,
    waits: Vec<DateTime<Utc>>,
}

/// [`Clock`] that stands still until told. `sleep_until` returns at once, having moved the time
/// forward to the wake-up instant, and records the instant it waited for.
pub struct FakeClock {
    inner: Mutex<ClockInner>,
}

impl FakeClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            inner: Mutex::new(ClockInner {
                now,
                waits: Vec::new(),
            }),
        }
    }

    /// A fixed, arbitrary instant: 2026-01-05T09:00:00Z (a Monday morning).
    pub fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_603_600, 0).unwrap_or_default()
    }

    pub fn set(&self, now: DateTime<Utc>) {
        lock(&self.inner).now = now;
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut inner = lock(&self.inner);
        inner.now += by;
    }

    /// The instants `sleep_until` was asked to wait for, in order (past ones included).
    pub fn waits(&self) -> Vec<DateTime<Utc>> {
        lock(&self.inner).waits.clone()
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new(Self::start())
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.inner).now
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut inner = lock(&self.inner);
        inner.waits.push(at);
        if at > inner.now {
            inner.now = at;
        }
    }
}
