//! The in-memory [`Archive`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::archive::{
    anchor_key, event_key, parse_event_key, Anchor, Archive, ArchiveError, Archived, TableChange,
    ANCHORS, CHANGES,
};
use crate::audit::AuditEvent;

use super::{injected, lock, take_failure};

/// [`Archive`] in memory, with the S3 adapter's semantics: objects under the real keys with
/// JSON bodies, written once. `put_event` is conditional (an existing key is
/// [`Archived::AlreadyThere`] with the same `hash`, [`ArchiveError::Conflict`] with another);
/// a change or anchor already there is left as it is; anchors list newest first.
#[derive(Default)]
pub struct FakeArchive {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    failures: Mutex<u32>,
}

impl FakeArchive {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls (of any method of the port) answer [`ArchiveError::Unavailable`].
    pub fn fail_next(&self, n: u32) {
        *lock(&self.failures) = n;
    }

    /// Puts `body` under `key` as it is, replacing what is there: seeds a test with an object
    /// elevate did not write (a corrupt one, an anchor that breaks the chain).
    pub fn insert_raw(&self, key: impl Into<String>, body: impl Into<Vec<u8>>) {
        lock(&self.objects).insert(key.into(), body.into());
    }

    /// The body stored under `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(key).cloned()
    }

    /// Every key, in listing order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    /// Every archived event that reads as one, in key order (by request, then seq).
    pub fn events(&self) -> Vec<AuditEvent> {
        lock(&self.objects)
            .iter()
            .filter(|(key, _)| parse_event_key(key).is_some())
            .filter_map(|(_, body)| serde_json::from_slice(body).ok())
            .collect()
    }

    /// Every recorded table change that reads as one, in key order.
    pub fn changes(&self) -> Vec<TableChange> {
        lock(&self.objects)
            .range(CHANGES.to_owned()..)
            .take_while(|(key, _)| key.starts_with(CHANGES))
            .filter_map(|(_, body)| serde_json::from_slice(body).ok())
            .collect()
    }

    /// Every anchor that reads as one with its key, newest first (the listing order).
    pub fn anchors(&self) -> Vec<(String, Anchor)> {
        lock(&self.objects)
            .range(ANCHORS.to_owned()..)
            .take_while(|(key, _)| key.starts_with(ANCHORS))
            .filter_map(|(key, body)| Some((key.clone(), serde_json::from_slice(body).ok()?)))
            .collect()
    }

    fn enter(&self) -> Result<(), ArchiveError> {
        if take_failure(&mut lock(&self.failures)) {
            return Err(ArchiveError::Unavailable(injected("archive")));
        }
        Ok(())
    }

    /// The object under `key`, decoded (an absent one reads as empty, so as corrupt).
    fn read<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, ArchiveError> {
        let body = self.get(key).unwrap_or_default();
        serde_json::from_slice(&body).map_err(|e| ArchiveError::Corrupt {
            key: key.to_owned(),
            why: e.to_string(),
        })
    }

    /// Writes `body` under `key` unless the key exists; whether it wrote.
    fn put_new(&self, key: String, body: Vec<u8>) -> bool {
        let mut objects = lock(&self.objects);
        if objects.contains_key(&key) {
            return false;
        }
        objects.insert(key, body);
        true
    }
}

fn json<T: serde::Serialize>(key: &str, value: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(value).map_err(|e| ArchiveError::Corrupt {
        key: key.to_owned(),
        why: e.to_string(),
    })
}

#[async_trait]
impl Archive for FakeArchive {
    async fn put_event(&self, event: &AuditEvent) -> Result<Archived, ArchiveError> {
        self.enter()?;
        let key = event_key(event.request_id.as_str(), event.seq);
        if self.put_new(key.clone(), json(&key, event)?) {
            return Ok(Archived::Written);
        }
        let archived: AuditEvent = self.read(&key)?;
        if archived.hash == event.hash {
            Ok(Archived::AlreadyThere)
        } else {
            Err(ArchiveError::Conflict {
                request_id: event.request_id.to_string(),
                seq: event.seq,
                archived: archived.hash,
                offered: event.hash.clone(),
            })
        }
    }

    async fn put_change(&self, change: &TableChange) -> Result<(), ArchiveError> {
        self.enter()?;
        let key = change.key();
        self.put_new(key.clone(), json(&key, change)?);
        Ok(())
    }

    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError> {
        self.enter()?;
        let newest = lock(&self.objects)
            .range(ANCHORS.to_owned()..)
            .next()
            .filter(|(key, _)| key.starts_with(ANCHORS))
            .map(|(key, _)| key.clone());
        newest.map(|key| self.read(&key)).transpose()
    }

    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError> {
        self.enter()?;
        let key = anchor_key(anchor.until);
        if self.put_new(key.clone(), json(&key, anchor)?) {
            return Ok(());
        }
        let archived: Anchor = self.read(&key)?;
        anchor.is_archived_as(key, &archived)
    }
}
