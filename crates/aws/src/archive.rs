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

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::Client;
use elevate_core::archive::{
    anchor_key, change_key, event_key, parse_event_key, Anchor, Archive, ArchiveError, Archived,
    TableChange, ANCHORS, CHANGES, EVENTS,
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

    /// Every archived event as (request id, seq), in key order: by request id, then seq.
    /// Objects under `events/` whose key is not an event key are skipped (and logged).
    pub async fn list_events(&self) -> Result<Vec<(String, u64)>, ArchiveError> {
        let keys = self.list_keys(EVENTS, None).await?;
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
        let keys = self.list_keys(ANCHORS, None).await?;
        self.get_all(keys).await
    }

    /// Every recorded table change, in key order (by request id, seq, stream event id).
    pub async fn changes(&self) -> Result<Vec<TableChange>, ArchiveError> {
        let keys = self.list_keys(CHANGES, None).await?;
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

    /// The object under `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
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
        limit: Option<i32>,
    ) -> Result<Vec<String>, ArchiveError> {
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
        let key = change_key(&change.request_id, change.seq, &change.stream_event_id);
        self.put_new(&key, to_json(change)?).await.map(|_| ())
    }

    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError> {
        let newest = self.list_keys(ANCHORS, Some(1)).await?;
        match newest.first() {
            Some(key) => self.get_json(key).await,
            None => Ok(None),
        }
    }

    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError> {
        let key = anchor_key(anchor.until);
        self.put_new(&key, to_json(anchor)?).await.map(|_| ())
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
