//! The write-once audit archive: where each audit event is kept outside the table (an S3
//! bucket under Object Lock), the anchors that pin every chain head at a point in time, and the
//! comparison of the table with both (docs/contracts.md, "Audit archive").
//!
//! Layout of the archive (under an optional prefix):
//! - `events/<request id>/<seq, 10 digits>.json`: one [`AuditEvent`] as JSON. The key is the
//!   event's identity, so a retried write of the same event writes nothing new.
//! - `changes/<request id>/<seq, 10 digits>/<stream event id>.json`: a [`TableChange`], an
//!   archived event's item modified or removed in the table after it was written.
//! - `anchors/<10 digits: 9999999999 − until's Unix seconds>-<until, %Y%m%dT%H%M%SZ>.json`: an
//!   [`Anchor`]. Listing `anchors/` returns the newest first.
//!
//! Nothing here talks to S3 or DynamoDB: the adapters implement [`Archive`], and the CLI feeds
//! what it read to [`compare_request`] and [`AnchorIndex`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{verify_chain, AuditEvent, ChainError, GENESIS};
use crate::ports::{AuditWindow, BoxError, RequestStore, StoreError};

/// The folder of archived events.
pub const EVENTS: &str = "events/";
/// The folder of recorded table changes.
pub const CHANGES: &str = "changes/";
/// The folder of anchors.
pub const ANCHORS: &str = "anchors/";

/// How long after its `at` an event may still be on its way to the archive (the stream, the
/// archive function, its retries) before its absence counts as a difference. Anchors also
/// leave this much time before `until`, so that an event written late is not missed.
pub const SETTLE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The key of an archived event, relative to the archive's prefix.
pub fn event_key(request_id: &str, seq: u64) -> String {
    format!("{EVENTS}{request_id}/{seq:010}.json")
}

/// The request id and seq of an event key (relative to the prefix); `None` for any other key.
pub fn parse_event_key(key: &str) -> Option<(String, u64)> {
    let rest = key.strip_prefix(EVENTS)?;
    let (request_id, file) = rest.split_once('/')?;
    let seq = file.strip_suffix(".json")?;
    if request_id.is_empty() || seq.len() != 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((request_id.to_owned(), seq.parse().ok()?))
}

/// The key of a recorded table change.
pub fn change_key(request_id: &str, seq: u64, stream_event_id: &str) -> String {
    format!("{CHANGES}{request_id}/{seq:010}/{stream_event_id}.json")
}

/// The key of the anchor that ends at `until`: newest first in a listing.
pub fn anchor_key(until: DateTime<Utc>) -> String {
    let inverted = 9_999_999_999_i64.saturating_sub(until.timestamp()).max(0);
    format!(
        "{ANCHORS}{inverted:010}-{}.json",
        until.format("%Y%m%dT%H%M%SZ")
    )
}

/// What became of one event handed to [`Archive::put_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// Written now.
    Written,
    /// Already in the archive with the same content (a retried delivery).
    AlreadyThere,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive holds another event under this identity: the one in the table is not the
    /// one that was archived. Nothing was written; the archived one stays.
    #[error("the archive holds another event {request_id}/{seq} (archived hash {archived}, this one {offered})")]
    Conflict {
        request_id: String,
        seq: u64,
        archived: String,
        offered: String,
    },
    /// Another anchor is already archived under this anchor's key (two runs in the same
    /// second that read the table at different moments). Nothing was written; the archived
    /// one stays, and the anchors still chain through it.
    #[error(
        "the archive holds another anchor {key} (archived hash {archived}, this one {offered})"
    )]
    AnchorTaken {
        key: String,
        archived: String,
        offered: String,
    },
    /// An object that is not what its key says (not JSON of the right type).
    #[error("archived object {key} is corrupt: {why}")]
    Corrupt { key: String, why: String },
    #[error("archive unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// An archived event's item changed in the table after it was written: what the stream
/// reported. Archived so that the change itself is evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange {
    pub request_id: String,
    pub seq: u64,
    /// `modify` or `remove`.
    pub change: ChangeKind,
    /// When the stream recorded it.
    pub at: DateTime<Utc>,
    /// The stream record's event id.
    pub stream_event_id: String,
    /// The item as it was before, when the stream carried it (as an event, when it reads as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The item as it is now (`modify` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Modify,
    Remove,
    /// Inserted with an `at` more than [`SETTLE`] away from when the stream recorded the
    /// write: dated into the future (to be anchored later as if on time) or back-dated. The
    /// event is archived as written; this records that its time is not when it was written.
    Misdated,
}

impl TableChange {
    /// Where it is archived: [`change_key`], and for a `misdated` insert the same with
    /// `-misdated` after the stream event id, so that a record that is also a conflict (an
    /// event written again with its old time) keeps both changes.
    pub fn key(&self) -> String {
        match self.change {
            ChangeKind::Misdated => change_key(
                &self.request_id,
                self.seq,
                &format!("{}-misdated", self.stream_event_id),
            ),
            ChangeKind::Modify | ChangeKind::Remove => {
                change_key(&self.request_id, self.seq, &self.stream_event_id)
            }
        }
    }
}

/// Where archived events, changes and anchors are written. The S3 adapter writes with Object
/// Lock retention, so nothing written can be changed or deleted before it expires.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Writes an event under [`event_key`] unless that key exists; an existing object with the
    /// same `hash` is [`Archived::AlreadyThere`], another is [`ArchiveError::Conflict`].
    async fn put_event(&self, event: &AuditEvent) -> Result<Archived, ArchiveError>;
    /// Writes a table change under [`TableChange::key`] (again: no error, nothing new).
    async fn put_change(&self, change: &TableChange) -> Result<(), ArchiveError>;
    /// The newest anchor, if any.
    async fn latest_anchor(&self) -> Result<Option<Anchor>, ArchiveError>;
    /// Writes an anchor under [`anchor_key`] of its `until`: again, no error and nothing new;
    /// another anchor already under that key is [`ArchiveError::AnchorTaken`].
    async fn put_anchor(&self, anchor: &Anchor) -> Result<(), ArchiveError>;
}

/// One chain head as an anchor pins it: the request's last event with `at` before `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchoredHead {
    pub request_id: String,
    pub seq: u64,
    pub hash: String,
}

/// The heads of every chain that moved in `[since, until)`, chained to the anchor before by
/// its hash: together the anchors pin every chain head as of each `until`. A table rewritten
/// after an anchor no longer matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The previous anchor's `until`; `None` for the first anchor (which covers everything
    /// before its `until`).
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    /// The previous anchor's `hash` ([`GENESIS`] for the first).
    pub previous: String,
    /// Sorted by request id, one per request.
    pub heads: Vec<AnchoredHead>,
    /// SHA-256 (hex) of the canonical encoding of every other field ([`Anchor::computed_hash`]).
    pub hash: String,
}

impl Anchor {
    /// The anchor after `previous` (or the first), sealed with its hash; `heads` in any order.
    pub fn seal(previous: Option<&Anchor>, until: DateTime<Utc>, heads: Vec<AnchoredHead>) -> Self {
        let mut heads = heads;
        heads.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        let mut anchor = Anchor {
            since: previous.map(|p| p.until),
            until,
            previous: previous.map_or_else(|| GENESIS.to_owned(), |p| p.hash.clone()),
            heads,
            hash: String::new(),
        };
        anchor.hash = anchor.computed_hash();
        anchor
    }

    /// Whether `archived`, found under `key` when this anchor was to be written there, is this
    /// anchor: `Ok`, or [`ArchiveError::AnchorTaken`].
    pub fn is_archived_as(&self, key: String, archived: &Anchor) -> Result<(), ArchiveError> {
        if archived.hash == self.hash {
            Ok(())
        } else {
            Err(ArchiveError::AnchorTaken {
                key,
                archived: archived.hash.clone(),
                offered: self.hash.clone(),
            })
        }
    }

    /// SHA-256 (64 lower-case hex digits) of the compact JSON, keys sorted, of
    /// `{"heads":[{"hash","request_id","seq"}...],"previous","since","until"}` with times as
    /// RFC 3339 UTC with 9 fractional digits (`since` null for the first anchor).
    pub fn computed_hash(&self) -> String {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let heads: Vec<serde_json::Value> = self
            .heads
            .iter()
            .map(|h| serde_json::json!({"request_id": h.request_id, "seq": h.seq, "hash": h.hash}))
            .collect();
        let canonical = serde_json::json!({
            "since": self.since.map(time),
            "until": time(self.until),
            "previous": self.previous,
            "heads": heads,
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Collects the heads an anchor pins from the events of its window, in any order.
#[derive(Debug, Default)]
pub struct HeadCollector {
    heads: BTreeMap<String, (u64, String)>,
}

impl HeadCollector {
    pub fn add(&mut self, event: &AuditEvent) {
        let entry = self
            .heads
            .entry(event.request_id.as_str().to_owned())
            .or_insert((0, String::new()));
        if event.seq > entry.0 {
            *entry = (event.seq, event.hash.clone());
        }
    }

    pub fn finish(self) -> Vec<AnchoredHead> {
        self.heads
            .into_iter()
            .map(|(request_id, (seq, hash))| AnchoredHead {
                request_id,
                seq,
                hash,
            })
            .collect()
    }
}

/// One way the table, the archive and the anchors disagree. Each names the request and event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The table's event differs from the archived event with the same request and seq.
    Altered { request_id: String, seq: u64 },
    /// The archive has the event; the table does not.
    Deleted { request_id: String, seq: u64 },
    /// The table has an event, older than [`SETTLE`], that the archive does not, or that an
    /// anchor covering its time does not include.
    Inserted { request_id: String, seq: u64 },
    /// The table's event `seq` is the archived event `archived_seq`.
    Reordered {
        request_id: String,
        seq: u64,
        archived_seq: u64,
    },
    /// The archive has the request; the table has none of its events.
    MissingFromTable { request_id: String },
    /// The table's chain does not verify on its own.
    TableChain { request_id: String, error: String },
    /// The archive's chain does not verify on its own (an object written outside elevate).
    ArchiveChain { request_id: String, error: String },
    /// An anchor pins `seq` with a hash the table (or archive, `in_archive`) does not have.
    Unanchored {
        request_id: String,
        seq: u64,
        anchor: String,
        in_archive: bool,
    },
    /// The anchors themselves do not chain: `anchor` (a key) was altered, or one is missing
    /// before it.
    AnchorChain { anchor: String, why: String },
    /// An archive object was written again after its first write (a new version over it, or
    /// a delete marker hiding it): only someone who lifted the bucket's write-once policy
    /// can. Object Lock keeps the first version, which is what the rest compares.
    Rewritten {
        key: String,
        versions: usize,
        delete_markers: usize,
    },
    /// The stream reported an archived event's item changed or removed in the table.
    Changed {
        request_id: String,
        seq: u64,
        change: ChangeKind,
        at: DateTime<Utc>,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Altered { request_id, seq } => write!(
                f,
                "request {request_id}: event {seq} was altered in the table (it differs from the archived event)"
            ),
            Difference::Deleted { request_id, seq } => write!(
                f,
                "request {request_id}: event {seq} is in the archive but was deleted from the table"
            ),
            Difference::Inserted { request_id, seq } => write!(
                f,
                "request {request_id}: event {seq} is in the table but not in the archive, or not in the anchor that covers its time (inserted, or never archived)"
            ),
            Difference::Reordered {
                request_id,
                seq,
                archived_seq,
            } => write!(
                f,
                "request {request_id}: event {seq} in the table is the archived event {archived_seq} (the events were reordered)"
            ),
            Difference::MissingFromTable { request_id } => write!(
                f,
                "request {request_id}: the archive has this request but the table has none of its events (deleted from the table)"
            ),
            Difference::TableChain { request_id, error } => write!(
                f,
                "request {request_id}: the table's chain does not verify on its own: {error}"
            ),
            Difference::ArchiveChain { request_id, error } => write!(
                f,
                "request {request_id}: the archive's chain does not verify on its own: {error} (an archived object that elevate did not write)"
            ),
            Difference::Unanchored {
                request_id,
                seq,
                anchor,
                in_archive: false,
            } => write!(
                f,
                "request {request_id}: event {seq}, pinned by anchor {anchor}, is not in the table as anchored (deleted or altered after the anchor)"
            ),
            Difference::Unanchored {
                request_id,
                seq,
                anchor,
                in_archive: true,
            } => write!(
                f,
                "request {request_id}: event {seq}, pinned by anchor {anchor}, is not in the archive as anchored (never archived)"
            ),
            Difference::AnchorChain { anchor, why } => write!(f, "anchor {anchor}: {why}"),
            Difference::Rewritten {
                key,
                versions,
                delete_markers,
            } => {
                let hidden = match delete_markers {
                    0 => String::new(),
                    1 => ", hidden by a delete marker".to_owned(),
                    n => format!(", hidden by {n} delete markers"),
                };
                write!(
                    f,
                    "archive object {key} was written again after it was archived ({versions} versions{hidden}); its first version is what was compared"
                )
            }
            Difference::Changed {
                request_id,
                seq,
                change,
                at,
            } => {
                let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
                let what = match change {
                    ChangeKind::Modify => "modified in",
                    ChangeKind::Remove => "removed from",
                    ChangeKind::Misdated => {
                        return write!(
                            f,
                            "request {request_id}: event {seq} was written to the table at {at} but is dated more than {} minutes away from that (misdated; recorded by the table's stream)",
                            SETTLE.num_minutes()
                        )
                    }
                };
                write!(
                    f,
                    "request {request_id}: event {seq} was {what} the table at {at} (recorded by the table's stream)"
                )
            }
        }
    }
}

/// One anchor's window, `[since, until)` (`since` `None`: from the beginning).
#[derive(Debug, Clone)]
struct Window {
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
}

impl Window {
    fn contains(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| since <= at) && at < self.until
    }
}

/// One head as an anchor pinned it, with the anchor (its window is `windows[anchor]`).
#[derive(Debug, Clone)]
struct Pin {
    /// The anchor's position in [`AnchorIndex::windows`].
    anchor: usize,
    /// The anchor's `until`: pins are sorted by it.
    until: DateTime<Utc>,
    seq: u64,
    hash: String,
    key: String,
}

/// The anchors, read and checked: their chain, and for each request the heads they pin.
#[derive(Debug, Default)]
pub struct AnchorIndex {
    /// Every anchor's window, sorted by `until` (then key).
    windows: Vec<Window>,
    /// `min_since[i]`: the earliest `since` of `windows[i..]` (`None` sorts first: from the
    /// beginning). Lets a look-up stop scanning as soon as no later window can start early
    /// enough, which is at once for anchors that chain (their `since` grows with `until`).
    min_since: Vec<Option<DateTime<Utc>>>,
    /// Per request, every head pinned, in anchor order.
    pins: BTreeMap<String, Vec<Pin>>,
}

impl AnchorIndex {
    /// Checks that `anchors` (each with its key, in any order) chain from [`GENESIS`] with
    /// contiguous windows and hashes that match, and indexes their heads. Every break is a
    /// [`Difference::AnchorChain`]; the anchors after a break are still indexed.
    ///
    /// An anchor written concurrently with another (see [`write_anchor`]) links to the same
    /// previous anchor and shares its `since`, so its window overlaps its sibling's: that is
    /// accepted, as long as it links to an anchor that was read and leaves no gap.
    pub fn build(anchors: Vec<(String, Anchor)>) -> (Self, Vec<Difference>) {
        let mut anchors = anchors;
        anchors.sort_by(|(ka, a), (kb, b)| (a.until, ka).cmp(&(b.until, kb)));

        let mut differences = Vec::new();
        let mut by_hash: HashMap<&str, usize> = HashMap::new();
        for (i, (key, anchor)) in anchors.iter().enumerate() {
            let mut broken = |why: String| {
                differences.push(Difference::AnchorChain {
                    anchor: key.clone(),
                    why,
                })
            };
            if anchor.computed_hash() != anchor.hash {
                broken("it was altered: its content no longer matches its hash".to_owned());
            }
            let expected = anchor_key(anchor.until);
            if !key.ends_with(&expected) {
                broken(format!(
                    "it is stored under a key that does not match its until (expected {expected})"
                ));
            }
            let before = i.checked_sub(1).map(|b| (&anchors[b].0, &anchors[b].1));
            if let Some(why) = link_problem(anchor, before, &by_hash, &anchors) {
                broken(why);
            }
            by_hash.entry(anchor.hash.as_str()).or_insert(i);
        }

        let mut index = AnchorIndex::default();
        for (i, (key, anchor)) in anchors.iter().enumerate() {
            index.windows.push(Window {
                since: anchor.since,
                until: anchor.until,
            });
            for head in &anchor.heads {
                index
                    .pins
                    .entry(head.request_id.clone())
                    .or_default()
                    .push(Pin {
                        anchor: i,
                        until: anchor.until,
                        seq: head.seq,
                        hash: head.hash.clone(),
                        key: key.clone(),
                    });
            }
        }
        index.min_since = vec![None; index.windows.len()];
        let mut earliest = Some(DateTime::<Utc>::MAX_UTC);
        for (i, window) in index.windows.iter().enumerate().rev() {
            earliest = earliest.min(window.since);
            index.min_since[i] = earliest;
        }
        (index, differences)
    }

    /// How many anchors were read.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest anchor's `until`.
    pub fn latest(&self) -> Option<DateTime<Utc>> {
        self.windows.last().map(|w| w.until)
    }

    /// Every request some anchor pins, sorted.
    pub fn requests(&self) -> impl Iterator<Item = &str> {
        self.pins.keys().map(String::as_str)
    }

    fn pins(&self, request_id: &str) -> &[Pin] {
        self.pins.get(request_id).map_or(&[], Vec::as_slice)
    }

    /// Whether an anchor whose window contains `at` does not pin `request_id` at `seq` or
    /// later. Every covering anchor is checked, not only the first: an anchor added next to
    /// the real ones cannot hide what the real ones say.
    fn uncovered(&self, request_id: &str, seq: u64, at: DateTime<Utc>) -> bool {
        let pins = self.pins(request_id);
        let first = self.windows.partition_point(|w| w.until <= at);
        for (i, window) in self.windows.iter().enumerate().skip(first) {
            if self.min_since[i].is_some_and(|since| since > at) {
                break;
            }
            if !window.contains(at) {
                continue;
            }
            let from = pins.partition_point(|p| p.until < window.until);
            let to = pins.partition_point(|p| p.until <= window.until);
            let pinned = pins[from..to].iter().any(|p| p.anchor == i && p.seq >= seq);
            if !pinned {
                return true;
            }
        }
        false
    }
}

/// Why `anchor` does not follow `before` (the anchor before it by `until`), if it does not.
fn link_problem(
    anchor: &Anchor,
    before: Option<(&String, &Anchor)>,
    by_hash: &HashMap<&str, usize>,
    anchors: &[(String, Anchor)],
) -> Option<String> {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    if let Some(since) = anchor.since {
        if since >= anchor.until {
            return Some(format!(
                "its window is empty: it starts at {} and ends at {}",
                time(since),
                time(anchor.until)
            ));
        }
    }
    let Some((before_key, before)) = before else {
        return match anchor.since {
            Some(since) => Some(format!(
                "it is the first anchor but starts at {}: the anchors before it are missing",
                time(since)
            )),
            None if anchor.previous != GENESIS => Some(format!(
                "it is the first anchor but links to a previous one ({}) that is missing",
                anchor.previous
            )),
            None => None,
        };
    };
    if anchor.since == Some(before.until) && anchor.previous == before.hash {
        return None;
    }
    // A sibling written at the same time as `before`: it links to an anchor read before
    // (or is a first anchor too), starts where that one ends, and leaves no gap.
    let linked = if anchor.previous == GENESIS {
        anchor.since.is_none()
    } else {
        by_hash
            .get(anchor.previous.as_str())
            .is_some_and(|&p| Some(anchors[p].1.until) == anchor.since)
    };
    let no_gap = anchor.since.is_none_or(|since| since <= before.until);
    if linked && no_gap {
        return None;
    }
    match anchor.since {
        Some(since) if since > before.until => Some(format!(
            "a gap before it: it starts at {}, but the anchor before it ({before_key}) ends at {} (an anchor is missing)",
            time(since),
            time(before.until)
        )),
        None => Some(format!(
            "it claims to be the first anchor, but {before_key} comes before it"
        )),
        Some(since) => match by_hash.get(anchor.previous.as_str()) {
            Some(&p) => Some(format!(
                "it starts at {} but links to {}, which ends at {}",
                time(since),
                anchors[p].0,
                time(anchors[p].1.until)
            )),
            None => Some(format!(
                "it does not link to the anchor before it ({before_key}): its previous {} is the hash of no anchor read (that anchor was altered, or one is missing)",
                anchor.previous
            )),
        },
    }
}

/// One request's events by seq (the first of a seq given twice), and each seq by its `hash`.
fn by_seq(events: &[AuditEvent]) -> BTreeMap<u64, &AuditEvent> {
    let mut map = BTreeMap::new();
    for event in events {
        map.entry(event.seq).or_insert(event);
    }
    map
}

fn by_hash<'a>(events: &BTreeMap<u64, &'a AuditEvent>) -> HashMap<&'a str, u64> {
    let mut map = HashMap::new();
    for (&seq, event) in events {
        map.entry(event.hash.as_str()).or_insert(seq);
    }
    map
}

/// The text of a chain error without the request it names (the difference names it).
fn chain_text(request_id: &str, error: &ChainError) -> String {
    let text = error.to_string();
    match text.strip_prefix(&format!("request {request_id}: ")) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Sorts differences for reading: chains first, then by event, then what the anchors say.
fn reading_order(difference: &Difference) -> (u8, u64) {
    match difference {
        Difference::TableChain { .. } | Difference::ArchiveChain { .. } => (0, 0),
        Difference::MissingFromTable { .. } => (1, 0),
        Difference::Altered { seq, .. }
        | Difference::Deleted { seq, .. }
        | Difference::Inserted { seq, .. }
        | Difference::Reordered { seq, .. }
        | Difference::Changed { seq, .. } => (2, *seq),
        Difference::Unanchored { seq, .. } => (3, *seq),
        Difference::AnchorChain { .. } | Difference::Rewritten { .. } => (4, 0),
    }
}

/// Compares one request's events in the table with its archived events and the anchors.
/// `table` and `archive` in any order; either may be empty (but not both). `now` decides which
/// events are still settling ([`SETTLE`]).
///
/// Each event is named at most once, by the most specific difference: an event found in the
/// archive under another seq is `Reordered` (not two alterations), a seq whose archived event
/// is elsewhere in the table is not `Altered`, and an anchor's pin is `Unanchored` only when
/// nothing else already names that seq. The chains' own verification is reported besides.
pub fn compare_request(
    request_id: &str,
    table: &[AuditEvent],
    archive: &[AuditEvent],
    anchors: &AnchorIndex,
    now: DateTime<Utc>,
) -> Vec<Difference> {
    let pins = anchors.pins(request_id);
    let mut out = Vec::new();
    if table.is_empty() && archive.is_empty() {
        out.extend(pins.first().map(|pin| Difference::Unanchored {
            request_id: request_id.to_owned(),
            seq: pin.seq,
            anchor: pin.key.clone(),
            in_archive: false,
        }));
        return out;
    }
    if !table.is_empty() {
        if let Err(error) = verify_chain(table, None) {
            out.push(Difference::TableChain {
                request_id: request_id.to_owned(),
                error: chain_text(request_id, &error),
            });
        }
    }
    if !archive.is_empty() {
        if let Err(error) = verify_chain(archive, None) {
            out.push(Difference::ArchiveChain {
                request_id: request_id.to_owned(),
                error: chain_text(request_id, &error),
            });
        }
    }

    let table_seq = by_seq(table);
    let archive_seq = by_seq(archive);
    let table_hash = by_hash(&table_seq);
    let archive_hash = by_hash(&archive_seq);
    let altered = |seq| Difference::Altered {
        request_id: request_id.to_owned(),
        seq,
    };
    let inserted = |seq| Difference::Inserted {
        request_id: request_id.to_owned(),
        seq,
    };
    // Every seq some difference names, so that nothing names it twice.
    let mut named: BTreeSet<u64> = BTreeSet::new();

    if table.is_empty() {
        out.push(Difference::MissingFromTable {
            request_id: request_id.to_owned(),
        });
    }

    let settled = now - SETTLE;
    for (&seq, event) in &table_seq {
        let found = match archive_hash.get(event.hash.as_str()) {
            Some(&archived) if archived == seq => {
                // Same hash: the same event unless its content was changed under the hash.
                (event.computed_hash() != event.hash).then(|| altered(seq))
            }
            Some(&archived_seq) => Some(Difference::Reordered {
                request_id: request_id.to_owned(),
                seq,
                archived_seq,
            }),
            None => {
                // The archived event of this seq is still in the table under another seq: this
                // one is new, not an alteration of it.
                let moved = archive_seq
                    .get(&seq)
                    .is_none_or(|archived| table_hash.contains_key(archived.hash.as_str()));
                if !moved {
                    Some(altered(seq))
                } else if event.at <= settled {
                    Some(inserted(seq))
                } else {
                    None
                }
            }
        };
        if let Some(found) = found {
            named.insert(seq);
            out.push(found);
        }
    }
    for (&seq, archived) in &archive_seq {
        if table.is_empty() || table_hash.contains_key(archived.hash.as_str()) {
            continue;
        }
        // The table's event of this seq is new too: the two are one alteration, named above.
        let altered_here = table_seq
            .get(&seq)
            .is_some_and(|event| !archive_hash.contains_key(event.hash.as_str()));
        if altered_here {
            continue;
        }
        named.insert(seq);
        out.push(Difference::Deleted {
            request_id: request_id.to_owned(),
            seq,
        });
    }

    // A table event (in the archive or not) that an anchor covering its time did not pin:
    // written after that anchor with a time before it.
    for (&seq, event) in &table_seq {
        if named.contains(&seq) {
            continue;
        }
        if anchors.uncovered(request_id, seq, event.at) {
            named.insert(seq);
            out.push(inserted(seq));
        }
    }

    for pin in pins {
        if named.contains(&pin.seq) {
            continue;
        }
        let holds = |events: &BTreeMap<u64, &AuditEvent>| {
            events.get(&pin.seq).is_some_and(|e| e.hash == pin.hash)
        };
        let in_archive = if !table.is_empty() && !holds(&table_seq) {
            false
        } else if !holds(&archive_seq) {
            true
        } else {
            continue;
        };
        named.insert(pin.seq);
        out.push(Difference::Unanchored {
            request_id: request_id.to_owned(),
            seq: pin.seq,
            anchor: pin.key.clone(),
            in_archive,
        });
    }

    out.sort_by_key(reading_order);
    out
}

/// The anchors' requests that neither the table nor the archive has: each a
/// [`Difference::Unanchored`] (its first event pinned). `seen` is every request id compared.
pub fn unanchored_requests(
    anchors: &AnchorIndex,
    seen: &std::collections::HashSet<String>,
) -> Vec<Difference> {
    anchors
        .pins
        .iter()
        .filter(|(request_id, _)| !seen.contains(*request_id))
        .filter_map(|(request_id, pins)| {
            let pin = pins.first()?;
            Some(Difference::Unanchored {
                request_id: request_id.clone(),
                seq: pin.seq,
                anchor: pin.key.clone(),
                in_archive: false,
            })
        })
        .collect()
}

/// How many events [`write_anchor`] asks the table for at a time.
const ANCHOR_PAGE: usize = 500;

/// Why [`write_anchor`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("reading the audit trail: {0}")]
    Store(#[source] StoreError),
    #[error("{0}")]
    Archive(#[source] ArchiveError),
}

impl From<StoreError> for AnchorError {
    fn from(error: StoreError) -> Self {
        AnchorError::Store(error)
    }
}

impl From<ArchiveError> for AnchorError {
    fn from(error: ArchiveError) -> Self {
        AnchorError::Archive(error)
    }
}

/// Writes the anchor after the newest one: the heads of every chain that moved from its
/// `until` to `now − SETTLE` (whole seconds, so that an anchor's key names its `until`
/// exactly), read from the table. `Ok(None)` when the newest anchor already reaches that far.
/// An anchor is written even when no chain moved: the anchors must stay contiguous.
///
/// Two runs at once (the schedule fired twice, or a retry) are harmless. Within the same
/// second they write under the same key: the second [`Archive::put_anchor`] writes nothing,
/// and when its anchor differs from the archived one (it read the table at another moment)
/// that is logged and `Ok(None)` returned. In different seconds both read the same newest anchor, so the later one
/// links to that one too (its `previous` is stale) and its window overlaps the other's from
/// the same `since`. It is still valid evidence: it pins every head as of its own `until`,
/// [`AnchorIndex::build`] accepts such a sibling, and the next anchor chains from the newer.
pub async fn write_anchor(
    store: &dyn RequestStore,
    archive: &dyn Archive,
    now: DateTime<Utc>,
) -> Result<Option<Anchor>, AnchorError> {
    let latest = archive.latest_anchor().await?;
    let settled = now - SETTLE;
    let until = DateTime::from_timestamp(settled.timestamp(), 0).unwrap_or(settled);
    if latest.as_ref().is_some_and(|latest| latest.until >= until) {
        return Ok(None);
    }
    let window = AuditWindow {
        since: latest.as_ref().map(|latest| latest.until),
        until: Some(until),
    };
    let mut heads = HeadCollector::default();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .audit_page(&window, cursor.as_deref(), ANCHOR_PAGE)
            .await?;
        for event in &page.events {
            heads.add(event);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let anchor = Anchor::seal(latest.as_ref(), until, heads.finish());
    match archive.put_anchor(&anchor).await {
        Ok(()) => Ok(Some(anchor)),
        // The other run's anchor has the same window and pins every head as of the same
        // `until`: the anchors stay contiguous through it.
        Err(ArchiveError::AnchorTaken {
            key,
            archived,
            offered,
        }) => {
            tracing::warn!(
                key,
                archived,
                offered,
                "another run archived a different anchor for the same time first; it stays"
            );
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
