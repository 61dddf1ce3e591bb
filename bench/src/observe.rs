//! Watching moto from the outside while a scenario runs: who is in the group (GetGroup in a
//! loop) and when each request was first seen recorded in a state. Every observation keeps the
//! time its poll was sent and the time its answer arrived, so a check can say "after" only
//! when it is certain.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::{RequestId, State};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::moto::MotoReader;

/// One poll: sent at `sent`, answered at `received`; what it saw holds at some moment between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub sent: DateTime<Utc>,
    pub received: DateTime<Utc>,
}

/// What the polls saw of one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// The first poll that saw the user in the group.
    pub first_present: Option<Poll>,
    /// The last poll that saw the user in the group.
    pub last_present: Option<Poll>,
    /// The first poll, after one that saw the user in the group, that saw them gone.
    pub first_gone: Option<Poll>,
    /// How many times the user appeared (absent, then present).
    pub appearances: u32,
}

#[derive(Debug, Default)]
struct Membership {
    tracks: HashMap<String, Track>,
    present: HashSet<String>,
    polls: u64,
    errors: u64,
    poll_time: Duration,
}

/// Polls GetGroup on moto until stopped.
pub struct MembershipWatcher {
    seen: Arc<Mutex<Membership>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MembershipWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembershipWatcher").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MembershipWatcher {
    /// Starts polling `group`, waiting `gap` between a poll's answer and the next poll.
    pub fn start(moto: MotoReader, group: &str, gap: Duration) -> MembershipWatcher {
        let seen = Arc::new(Mutex::new(Membership::default()));
        let (stop, mut stopped) = watch::channel(false);
        let group = group.to_owned();
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let sent = Utc::now();
                let answer = moto.group_members(&group).await;
                let received = Utc::now();
                {
                    let mut seen = lock(&shared);
                    seen.polls += 1;
                    seen.poll_time += (received - sent).to_std().unwrap_or_default();
                    match answer {
                        Ok(members) => record(&mut seen, members, Poll { sent, received }),
                        Err(error) => {
                            seen.errors += 1;
                            tracing::warn!(%error, "membership poll failed");
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(gap) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        MembershipWatcher {
            seen,
            stop,
            task: Some(task),
        }
    }

    /// What was seen of `user` so far.
    pub fn track(&self, user: &str) -> Track {
        lock(&self.seen)
            .tracks
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    pub fn tracks(&self) -> HashMap<String, Track> {
        lock(&self.seen).tracks.clone()
    }

    /// Polls answered and failed so far, and their mean round trip.
    pub fn poll_stats(&self) -> (u64, u64, Duration) {
        let seen = lock(&self.seen);
        let mean = if seen.polls == 0 {
            Duration::ZERO
        } else {
            seen.poll_time / u32::try_from(seen.polls).unwrap_or(u32::MAX)
        };
        (seen.polls, seen.errors, mean)
    }

    /// Waits for one more complete poll than had been answered when called.
    pub async fn next_poll(&self) {
        let start = lock(&self.seen).polls;
        while lock(&self.seen).polls <= start + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn stop(mut self) -> HashMap<String, Track> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.tracks()
    }
}

impl Drop for MembershipWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn record(seen: &mut Membership, members: HashSet<String>, poll: Poll) {
    for user in &members {
        let track = seen.tracks.entry(user.clone()).or_default();
        if track.first_present.is_none() {
            track.first_present = Some(poll);
        }
        track.last_present = Some(poll);
        if !seen.present.contains(user) {
            track.appearances += 1;
        }
    }
    for user in seen.present.difference(&members) {
        let track = seen.tracks.entry(user.clone()).or_default();
        if track.first_gone.is_none() {
            track.first_gone = Some(poll);
        }
    }
    seen.present = members;
}

/// When each request was first seen recorded in each watched state.
pub struct StateWatcher {
    seen: Arc<Mutex<HashMap<(RequestId, State), Poll>>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for StateWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWatcher").finish_non_exhaustive()
    }
}

impl StateWatcher {
    /// Polls the `by_state` index for `states` every `gap`.
    pub fn start(moto: MotoReader, states: Vec<State>, gap: Duration) -> StateWatcher {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (stop, mut stopped) = watch::channel(false);
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                for state in &states {
                    let sent = Utc::now();
                    if let Ok(requests) = moto.requests_in(*state).await {
                        let received = Utc::now();
                        let mut seen = lock(&shared);
                        for request in requests {
                            seen.entry((request.id, *state))
                                .or_insert(Poll { sent, received });
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(gap) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        StateWatcher {
            seen,
            stop,
            task: Some(task),
        }
    }

    /// The first poll that saw `id` in `state`.
    pub fn first_seen(&self, id: &RequestId, state: State) -> Option<Poll> {
        lock(&self.seen).get(&(id.clone(), state)).copied()
    }

    pub async fn stop(mut self) -> HashMap<(RequestId, State), Poll> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        lock(&self.seen).clone()
    }
}

impl Drop for StateWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(second: i64) -> Poll {
        let at = DateTime::from_timestamp(1_800_000_000 + second, 0).expect("time");
        Poll {
            sent: at,
            received: at + chrono::Duration::milliseconds(10),
        }
    }

    fn set(users: &[&str]) -> HashSet<String> {
        users.iter().map(|u| (*u).to_owned()).collect()
    }

    #[test]
    fn records_appearances_and_the_first_poll_that_saw_a_user_gone() {
        let mut seen = Membership::default();
        record(&mut seen, set(&[]), poll(0));
        record(&mut seen, set(&["a"]), poll(1));
        record(&mut seen, set(&["a", "b"]), poll(2));
        record(&mut seen, set(&["b"]), poll(3));
        record(&mut seen, set(&[]), poll(4));
        record(&mut seen, set(&[]), poll(5));
        let a = &seen.tracks["a"];
        assert_eq!(a.first_present, Some(poll(1)));
        assert_eq!(a.last_present, Some(poll(2)));
        assert_eq!(a.first_gone, Some(poll(3)));
        assert_eq!(a.appearances, 1);
        let b = &seen.tracks["b"];
        assert_eq!(b.first_gone, Some(poll(4)));

        // Back again: a second appearance, the first departure kept.
        record(&mut seen, set(&["a"]), poll(6));
        let a = &seen.tracks["a"];
        assert_eq!(a.appearances, 2);
        assert_eq!(a.last_present, Some(poll(6)));
        assert_eq!(a.first_gone, Some(poll(3)));
    }
}
