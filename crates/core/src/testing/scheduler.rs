//! The in-memory [`Scheduler`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::events::ScheduledAction;
use crate::ports::{ScheduleInfo, Scheduler, SchedulerError};

use super::{injected, lock, take_failure};

#[derive(Default)]
struct SchedulerInner {
    schedules: BTreeMap<String, (DateTime<Utc>, ScheduledAction)>,
    failures: u32,
    calls: u32,
}

/// [`Scheduler`] in memory: one schedule per name, create-or-replace, idempotent cancel. It
/// never fires by itself; a test fires what is due with [`FakeScheduler::take_due`].
#[derive(Default)]
pub struct FakeScheduler {
    inner: Mutex<SchedulerInner>,
}

impl FakeScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method) answer `SchedulerError::Unavailable`.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Vec<ScheduleInfo> {
        lock(&self.inner)
            .schedules
            .iter()
            .map(|(name, (at, action))| ScheduleInfo {
                name: name.clone(),
                at: *at,
                action: action.clone(),
            })
            .collect()
    }

    /// The schedule of that name, without going through the port.
    pub fn schedule_named(&self, name: &str) -> Option<ScheduleInfo> {
        lock(&self.inner)
            .schedules
            .get(name)
            .map(|(at, action)| ScheduleInfo {
                name: name.to_owned(),
                at: *at,
                action: action.clone(),
            })
    }

    /// Removes and returns the schedules due at `now`, earliest first: what EventBridge would
    /// fire (one-time schedules delete themselves after completion).
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<ScheduleInfo> {
        let mut inner = lock(&self.inner);
        let due: Vec<String> = inner
            .schedules
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let mut fired: Vec<ScheduleInfo> = due
            .into_iter()
            .filter_map(|name| {
                inner
                    .schedules
                    .remove(&name)
                    .map(|(at, action)| ScheduleInfo { name, at, action })
            })
            .collect();
        fired.sort_by(|a, b| (a.at, &a.name).cmp(&(b.at, &b.name)));
        fired
    }

    /// How many port calls were made (failed ones included).
    pub fn calls(&self) -> u32 {
        lock(&self.inner).calls
    }

    fn enter(&self) -> Result<MutexGuard<'_, SchedulerInner>, SchedulerError> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if take_failure(&mut inner.failures) {
            return Err(SchedulerError::Unavailable(injected("scheduler")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Scheduler for FakeScheduler {
    async fn schedule(
        &self,
        at: DateTime<Utc>,
        action: &ScheduledAction,
    ) -> Result<(), SchedulerError> {
        let mut inner = self.enter()?;
        inner
            .schedules
            .insert(action.schedule_name(), (at, action.clone()));
        Ok(())
    }

    async fn cancel(&self, name: &str) -> Result<(), SchedulerError> {
        let mut inner = self.enter()?;
        inner.schedules.remove(name);
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<ScheduleInfo>, SchedulerError> {
        let inner = self.enter()?;
        Ok(inner.schedules.get(name).map(|(at, action)| ScheduleInfo {
            name: name.to_owned(),
            at: *at,
            action: action.clone(),
        }))
    }
}
