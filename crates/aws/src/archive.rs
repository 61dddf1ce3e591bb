//! [`Archive`] on an S3 bucket under Object Lock (docs/contracts.md, "Audit archive"), and the
//! readers `elevate audit verify --archive` compares the table with.
//!
//! Every object is written once: `PutObject` with `If-None-Match: *`, so S3 refuses (412) to
//! replace a key that exists, and the bucket's default Object Lock retention (COMPLIANCE in
//! template.yaml) keeps what was written from being changed or deleted until it expires. A
//! refused event is read back and compared by `hash`: the same event delivered again is
//! [`Archived::AlreadyThere`], another one under the same identity is
//! [`ArchiveError::Conflict`]. Writes carry a SHA-256 checksum, which S3 requires of uploads
//! to a bucket with Object Lock (instead of Content-MD5).
//!
//! Keys are those of [`elevate_core::archive`] under the archive's prefix. The readers return
//! keys relative to the prefix, as the core names them.
//!
//! The readers (what `audit verify --archive` compares) list object versions, not objects:
//! Object Lock keeps every version, but a new version put over an object, or a delete marker
//! hiding it, is what a plain read would see. The bucket policy refuses both; someone who
//! lifted it could still forge the current versions. So a key with more than one version is
//! reported ([`S3Archive::rewritten`]) and read at its first version, and a key hidden by a
//! delete marker is still listed. Reading so needs `s3:ListBucketVersions` and
//! `s3:GetObjectVersion`; the archive function itself reads only current versions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::Client;
use elevate_core::archive::{
    anchor_key, event_key, parse_event_key, Anchor, Archive, ArchiveError, Archived, TableChange,
    ANCHORS, CHANGES, EVENTS,
};
use elevate_core::audit::AuditEvent;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use crate::error::AwsError;

/// How many objects the readers fetch at the same time.
pub const READ_CONCURRENCY: usize = 16;

const JSON: &str = "application/json";

/// The archive in one bucket, under an optional prefix.
#[derive(Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
    /// Empty, or ending with `/`.
    prefix: String,
    /// What the readers' listings found written again, by key relative to the prefix, with
    /// the first version's id, which the readers then read.
    rewritten: Arc<Mutex<Rewritten>>,
}

/// Rewritten objects by key relative to the prefix, each with its first version's id.
type Rewritten = BTreeMap<String, (RewrittenObject, Option<String>)>;

/// An archive object written again after its first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenObject {
    /// Relative to the prefix.
    pub key: String,
    /// Versions of the object, the first included.
    pub versions: usize,
    pub delete_markers: usize,
}

/// Which objects a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// The current objects (ListObjectsV2): what the archive function needs.
    Current,
    /// Every key that has a version, hidden or not (ListObjectVersions), noting the rewritten.
    Versions,
}

/// One version or delete marker of a listing page.
struct Entry {
    key: String,
    version_id: Option<String>,
    last_modified: Option<aws_sdk_s3::primitives::DateTime>,
    delete_marker: bool,
}

impl fmt::Debug for S3Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Archive")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// An archive URL that is not `s3://bucket` or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{url}` is not an archive URL: {why} (expected s3://<bucket> or s3://<bucket>/<prefix>)")]
pub struct ArchiveUrlError {
    pub url: String,
    pub why: String,
}

impl S3Archive {
    /// The archive in `bucket` under `prefix` (empty for none; leading and trailing `/` are
    /// ignored).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl AsRef<str>) -> Self {
        S3Archive {
            client,
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix.as_ref()),
            rewritten: Arc::default(),
        }
    }

    /// Creates `bucket` as template.yaml's `ArchiveBucket` is made: Object Lock enabled at
    /// creation (it cannot be turned on later, and it turns versioning on) and a default
    /// retention of `retention_days` in COMPLIANCE mode, so that no archived object can be
    /// changed or deleted, by anyone, until it expires. A bucket this account already owns is
    /// given the retention again. For the local stack and tests; CloudFormation makes the real
    /// one.
    pub async fn create_bucket(
        client: &Client,
        bucket: &str,
        retention_days: i32,
    ) -> Result<(), AwsError> {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
            ObjectLockRule,
        };
        let created = client
            .create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
            Err(err) => return Err(AwsError::new(format!("s3 CreateBucket {bucket}"), err)),
        }
        let retention = DefaultRetention::builder()
            .mode(ObjectLockRetentionMode::Compliance)
            .days(retention_days)
            .build();
        let rule = ObjectLockRule::builder()
            .default_retention(retention)
            .build();
        client
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(rule)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| AwsError::new(format!("s3 PutObjectLockConfiguration {bucket}"), err))?;
        Ok(())
    }

    /// The archive at `s3://bucket[/prefix]`, with an S3 client of `sdk`.
    pub fn from_url(sdk: &SdkConfig, url: &str) -> Result<Self, ArchiveUrlError> {
        let (bucket, prefix) = parse_url(url)?;
        Ok(S3Archive::new(Client::new(sdk), bucket, prefix))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Empty, or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://bucket/prefix/` (or `s3://bucket/`).
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The objects the readers' listings so far found written again after their first write,
    /// in key order. The readers read those at their first version.
    pub fn rewritten(&self) -> Vec<RewrittenObject> {
        self.rewritten_objects()
            .values()
            .map(|(object, _)| object.clone())
            .collect()
    }

    fn rewritten_objects(&self) -> std::sync::MutexGuard<'_, Rewritten> {
        self.rewritten.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every archived event as (request id, seq), in key order: by request id, then seq.
    /// Objects under `events/` whose key is not an event key are skipped (and logged).
    pub async fn list_events(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        let keys = self.list_keys(EVENTS, Listing::Versions, None).await?;
        let mut events = Vec::with_capacity(keys.len());
        for key in keys {
            match parse_event_key(&key) {
                Some(event) => events.push(event),
                None => tracing::warn!(key = %self.full(&key), "not an event key, skipped"),
            }
        }
        Ok(events)
    }

    /// The archived events `seqs` of `request_id`, in seq order ([`READ_CONCURRENCY`] reads at a
    /// time). An object that is missing, is not an event, or is not the event its key names is
    /// [`ArchiveError::Corrupt`].
    pub async fn get_events(
        &self,
        request_id: &str,
        seqs: &[u64],
    ) -> Result<Vec<AuditEvent>, ArchiveError> {
        let keys: Vec<String> = seqs.iter().map(|seq| event_key(request_id, *seq)).collect();
        let mut events = Vec::with_capacity(keys.len());
        for (key, event) in self.get_all::<AuditEvent>(keys).await? {
            let named = parse_event_key(&key);
            if named.as_ref() != Some(&(event.request_id.as_str().to_owned(), event.seq)) {
                return Err(ArchiveError::Corrupt {
                    key: self.location(&key),
                    why: format!(
                        "it holds event {}/{}, not the one its key names",
                        event.request_id, event.seq
                    ),
                });
            }
            events.push(event);
        }
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// Every anchor with its key (relative to the prefix), newest first.
    pub async fn anchors(&self) -> Result<Vec<(String, Anchor)>, ArchiveError> {
        let keys = self.list_keys(ANCHORS, Listing::Versions, None).await?;
        self.get_all(keys).await
    }

    /// Every recorded table change, in key order (by request id, seq, stream event id).
    pub async fn changes(&self) -> Result<Vec<TableChange>, ArchiveError> {
        let keys = self.list_keys(CHANGES, Listing::Versions, None).await?;
        Ok(self
            .get_all(keys)
            .await?
            .into_iter()
            .map(|(_, change)| change)
            .collect())
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `s3://bucket/<full key>`, for messages.
    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full(key))
    }

    fn unavailable<E>(&self, operation: &str, key: &str, err: E) -> ArchiveError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ArchiveError::Unavailable(AwsError::boxed(
            format!("s3 {operation} {}", self.location(key)),
            err,
        ))
    }

    /// Writes `body` under `key` unless the key exists: `true` when written, `false` when S3
    /// refused because an object is already there.
    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError> {
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .if_none_match("*")
            .content_type(JSON)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) if precondition_failed(&err) => Ok(false),
            Err(err) => Err(self.unavailable("PutObject", key, err)),
        }
    }

    /// The object under `key` (its first version when a listing found it rewritten), `None`
    /// when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let first = self
            .rewritten_objects()
            .get(key)
            .and_then(|(_, version)| version.clone());
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .set_version_id(first)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(err) => return Err(self.unavailable("GetObject", key, err)),
        };
        let body = object
            .body
            .collect()
            .await
            .map_err(|err| self.unavailable("GetObject (body)", key, err))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    fn parse<T: DeserializeOwned>(&self, key: &str, body: &[u8]) -> Result<T, ArchiveError> {
        serde_json::from_slice(body).map_err(|err| ArchiveError::Corrupt {
            key: self.location(key),
            why: format!("not the JSON of {}: {err}", std::any::type_name::<T>()),
        })
    }

    /// The object under `key` read as JSON, `None` when there is none.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ArchiveError> {
        match self.get(key).await? {
            Some(body) => self.parse(key, &body).map(Some),
            None => Ok(None),
        }
    }

    /// The keys under `folder`, relative to the prefix, in key order (at most `limit`).
    async fn list_keys(
        &self,
        folder: &str,
        listing: Listing,
        limit: Option<i32>,
    ) -> Result<Vec<String>, ArchiveError> {
        if listing == Listing::Versions {
            return self.list_versions(folder).await;
        }
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full(folder));
        if let Some(limit) = limit {
            request = request.max_keys(limit);
        }
        let mut keys = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.unavailable("ListObjectsV2", folder, err))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_owned());
                }
            }
            if limit.is_some_and(|limit| keys.len() >= limit as usize) {
                keys.truncate(limit.unwrap_or_default() as usize);
                break;
            }
        }
        Ok(keys)
    }

    /// Every key under `folder` that has a version (current, or hidden by a delete marker), in
    /// key order; each key with more than one version or a delete marker is noted with its
    /// first version. S3 lists a key's versions and delete markers newest first, in two lists
    /// per page, and a key's entries may go on in the next page.
    async fn list_versions(&self, folder: &str) -> Result<Vec<String>, ArchiveError> {
        let mut keys = Vec::new();
        let mut current: Vec<Entry> = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(self.full(folder))
                .set_key_marker(markers.0.take())
                .set_version_id_marker(markers.1.take())
                .send()
                .await
                .map_err(|err| self.unavailable("ListObjectVersions", folder, err))?;
            let mut entries: Vec<Entry> = page
                .versions()
                .iter()
                .map(|v| Entry {
                    key: v.key().unwrap_or_default().to_owned(),
                    version_id: v.version_id().map(str::to_owned),
                    last_modified: v.last_modified().copied(),
                    delete_marker: false,
                })
                .chain(page.delete_markers().iter().map(|m| Entry {
                    key: m.key().unwrap_or_default().to_owned(),
                    version_id: m.version_id().map(str::to_owned),
                    last_modified: m.last_modified().copied(),
                    delete_marker: true,
                }))
                .collect();
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            for entry in entries {
                if current.first().is_some_and(|first| first.key != entry.key) {
                    self.settle_key(std::mem::take(&mut current), &mut keys);
                }
                current.push(entry);
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            markers = (
                page.next_key_marker().map(str::to_owned),
                page.next_version_id_marker().map(str::to_owned),
            );
            if markers.0.is_none() {
                break;
            }
        }
        self.settle_key(current, &mut keys);
        Ok(keys)
    }

    /// One key's versions and delete markers: the key, unless it has no version left (its
    /// retention ran out and it was deleted); noted when written more than once or hidden.
    fn settle_key(&self, entries: Vec<Entry>, keys: &mut Vec<String>) {
        let Some(key) = entries
            .first()
            .and_then(|e| e.key.strip_prefix(&self.prefix))
            .map(str::to_owned)
        else {
            return;
        };
        let versions: Vec<&Entry> = entries.iter().filter(|e| !e.delete_marker).collect();
        let delete_markers = entries.len() - versions.len();
        if versions.len() > 1 || delete_markers > 0 {
            // The first written: the oldest, and of equal times the last listed (S3 lists
            // newest first).
            let first = versions
                .iter()
                .enumerate()
                .min_by(|(i, a), (j, b)| {
                    let time = |e: &Entry| e.last_modified.map(|t| (t.secs(), t.subsec_nanos()));
                    time(a).cmp(&time(b)).then(j.cmp(i))
                })
                .and_then(|(_, e)| e.version_id.clone());
            let object = RewrittenObject {
                key: key.clone(),
                versions: versions.len(),
                delete_markers,
            };
            tracing::warn!(
                ?object,
                "archive object written again after it was archived"
            );
            self.rewritten_objects()
                .insert(key.clone(), (object, first));
        }
        if !versions.is_empty() {
            keys.push(key);
        }
    }

    /// Reads every key as JSON, [`READ_CONCURRENCY`] at a time, in the order of `keys`. A key
    /// that cannot be read any more (listed, then gone) is [`ArchiveError::Corrupt`].
    async fn get_all<T>(&self, keys: Vec<String>) -> Result<Vec<(String, T)>, ArchiveError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let mut read: BTreeMap<usize, (String, T)> = BTreeMap::new();
        let mut running = JoinSet::new();
        let mut pending = keys.into_iter().enumerate();
        loop {
            while running.len() < READ_CONCURRENCY {
                let Some((index, key)) = pending.next() else {
                    break;
                };
                let archive = self.clone();
                running.spawn(async move {
                    let value = archive.get_json::<T>(&key).await;
                    (index, key, value)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (index, key, value) =
                joined.map_err(|err| ArchiveError::Unavailable(Box::new(err)))?;
            match value? {
                Some(value) => {
                    read.insert(index, (key, value));
                }
                None => {
                    return Err(ArchiveError::Corrupt {
                        key: self.location(&key),
                        why: "it was listed but is gone (deleted, or hidden by a delete marker)"
                            .to_owned(),
                    })
                }
            }
        }
        Ok(read.into_values().collect())
    }
}

#[async_trait]
impl Archive for S3Archive {
    #[tracing::instrument(skip_all, fields(request_id = %event.request_id, seq = event.seq))]
    async fn put_event(&self, event: &AuditEvent) -> Result<Archived, ArchiveError> {
        let key = event_key(event.request_id.as_str(), event.seq);
        if self.put_new(&key, to_json(event)?).await? {
            return Ok(Archived::Written);
        }
        let archived: AuditEvent = self.get_json(&key).await?.ok_or_else(|| {
            // 412 said it exists; a read that finds nothing is a delete marker written since,
            // or S3 not yet consistent: the caller retries.
            ArchiveError::Unavailable(
                format!(
                    "{} exists (PutObject answered 412) but cannot be read",
                    self.location(&key)
                )
                .into(),
            )
        })?;
        if archived.hash == event.hash {
            Ok(Archived::AlreadyThere)
        } else {
            Err(ArchiveError::Conflict {
                request_id: event.request_id.as_str().to_owned(),
                seq: event.seq,
                archived: archived.hash,
                offered: event.hash.clone(),
            })
        }
    }

    async fn put_change(&self, change: &TableChange) -> Result<(), ArchiveError> {
        let key = change.key();
        self.put_new(&key, to_json(change)?).await.map(|_| ())
    }

    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError> {
        let newest = self.list_keys(ANCHORS, Listing::Current, Some(1)).await?;
        match newest.first() {
            Some(key) => self.get_json(key).await,
            None => Ok(None),
        }
    }

    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError> {
        let key = anchor_key(anchor.until);
        if self.put_new(&key, to_json(anchor)?).await? {
            return Ok(());
        }
        let archived: Anchor = self.get_json(&key).await?.ok_or_else(|| {
            ArchiveError::Unavailable(
                format!("{key} exists (PutObject answered 412) but reads as missing").into(),
            )
        })?;
        anchor.is_archived_as(key, &archived)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(value).map_err(|err| ArchiveError::Unavailable(Box::new(err)))
}

/// S3's answer to a conditional write whose condition failed: 412 Precondition Failed, by
/// status or by error code.
fn precondition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 412
                || service.err().code() == Some("PreconditionFailed")
        }
        _ => false,
    }
}

fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// The bucket and prefix of `s3://bucket[/prefix]` (the prefix normalized: empty, or ending
/// with `/`).
pub fn parse_url(url: &str) -> Result<(String, String), ArchiveUrlError> {
    let fail = |why: &str| ArchiveUrlError {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let rest = url
        .trim()
        .strip_prefix("s3://")
        .ok_or_else(|| fail("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(fail("it names no bucket"));
    }
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .zip(bucket.bytes().last())
            .is_some_and(|(first, last)| {
                first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()
            });
    if !valid {
        return Err(fail(&format!(
            "`{bucket}` is not a bucket name (3 to 63 lower-case letters, digits, `.` and `-`)"
        )));
    }
    if prefix.starts_with('/') || prefix.contains("//") {
        return Err(fail("its prefix has an empty folder (`//`)"));
    }
    Ok((bucket.to_owned(), normalize_prefix(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(
            parse_url("s3://elevate-archive").expect("url"),
            ("elevate-archive".to_owned(), String::new())
        );
        assert_eq!(
            parse_url("s3://elevate-archive/").expect("url"),
            ("elevate-archive".to_owned(), String::new())
        );
        assert_eq!(
            parse_url("s3://elevate.archive-1/prod/audit/").expect("url"),
            ("elevate.archive-1".to_owned(), "prod/audit/".to_owned())
        );
        assert_eq!(
            parse_url(" s3://abc/prod ").expect("url"),
            ("abc".to_owned(), "prod/".to_owned())
        );
        for (bad, says) in [
            ("elevate-archive", "s3://"),
            ("https://elevate-archive.s3.amazonaws.com", "s3://"),
            ("s3://", "no bucket"),
            ("s3:///prefix", "no bucket"),
            ("s3://Elevate", "bucket name"),
            ("s3://ab", "bucket name"),
            ("s3://-abc", "bucket name"),
            ("s3://abc//x", "empty folder"),
        ] {
            let err = parse_url(bad).expect_err(bad);
            let message = err.to_string();
            assert!(message.contains(says), "{bad}: {message}");
            assert!(message.contains("s3://<bucket>"), "{bad}: {message}");
        }
    }

    #[test]
    fn prefixes_are_folders() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("a"), "a/");
        assert_eq!(normalize_prefix("/a/b/"), "a/b/");
    }
}
