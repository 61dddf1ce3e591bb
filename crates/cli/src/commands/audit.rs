//! `audit export` and `audit verify`.
//!
//! The jsonl export is one JSON object per line: first `{"export": {"exported_at", "since",
//! "until"}}`, then every event exactly as the API sent it, then `{"head": {"request_id",
//! "audit_seq", "audit_head"}}` per request, the stored end of its chain, which catches a
//! deleted last event. `audit verify --file` reads that back.
//!
//! The export pages through `GET /audit` and writes each page as it comes, so a trail of any
//! size goes through in bounded memory (the heads, one per request, are kept until the end). A
//! file is written under a temporary name and renamed when the last page is in: a failed
//! export leaves no file that looks complete.
//!
//! `audit verify --archive s3://…` compares the trail fetched now with the write-once archive
//! (docs/contracts.md, "Audit archive"): the comparison itself is
//! [`elevate_core::archive::compare_request`]; this reads both sides and reports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{DateTime, SecondsFormat, Utc};
use elevate_aws::{AwsError, S3Archive};
use elevate_core::archive::{
    compare_request, unanchored_requests, AnchorIndex, ArchiveError, Difference,
};
use elevate_core::{verify_chain, AuditEvent, ChainError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Exit;
use crate::api::{Answer, ApiError, AuditExport, AuditHead, AuditWindow, Client, Endpoint};
use crate::cli::{ArchiveUrl, ExportArgs, ExportFormat};
use crate::output::{self, Out, PartialFile, Table};

/// The first line of a jsonl export.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportInfo {
    exported_at: DateTime<Utc>,
    /// Events before this were left out, so chains may start past their first event.
    #[serde(default)]
    since: Option<DateTime<Utc>>,
    /// Events at or after this were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<DateTime<Utc>>,
}

pub async fn export(client: &Client, args: ExportArgs, out: Out) -> anyhow::Result<Exit> {
    let window = AuditWindow {
        since: args.since,
        until: args.until,
    };
    match &args.output {
        Some(path) => {
            let mut file = PartialFile::create(path)?;
            let (events, requests) =
                write_export(client, &window, args.format, file.writer(), out).await?;
            file.finish()?;
            out.progress(format!(
                "exported {} of {} to {}",
                output::count(events, "event"),
                output::count(requests, "request"),
                path.display()
            ));
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            write_export(client, &window, args.format, &mut stdout, out).await?;
            stdout.flush().context("cannot write the export")?;
        }
    }
    Ok(Exit::Ok)
}

/// How many times one page is asked for when it times out or the server fails: a page is a
/// plain GET of the same cursor, so asking again is safe, and an export of hours is not lost
/// to one slow page.
const PAGE_ATTEMPTS: u32 = 3;

/// Pages through the trail in `window`, first page to last, handing each to `page` as it comes:
/// a trail of any size goes through in bounded memory when `page` keeps only what it needs.
pub(super) async fn each_page(
    client: &Client,
    window: &AuditWindow,
    mut page: impl FnMut(Answer<AuditExport>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    loop {
        let mut attempt = 1;
        let answer = loop {
            match client.audit(window, cursor.as_deref()).await {
                Err(ApiError::Timeout { .. } | ApiError::Server { .. })
                    if attempt < PAGE_ATTEMPTS =>
                {
                    // 1 s, then 2 s.
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                    attempt += 1;
                }
                answer => break answer?,
            }
        };
        let next = answer.value.next.clone();
        page(answer)?;
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Pages through the trail in `window`, writing each page to `to` as it comes; returns how
/// many events and requests were written.
async fn write_export(
    client: &Client,
    window: &AuditWindow,
    format: ExportFormat,
    to: &mut impl Write,
    out: Out,
) -> anyhow::Result<(usize, usize)> {
    let fail = |e: std::io::Error| anyhow::Error::new(e).context("cannot write the export");
    match format {
        ExportFormat::Jsonl => {
            let info = ExportInfo {
                exported_at: Utc::now(),
                since: window.since,
                until: window.until,
            };
            writeln!(to, "{}", serde_json::json!({ "export": info })).map_err(fail)?;
        }
        ExportFormat::Csv => writeln!(to, "{CSV_HEADER}").map_err(fail)?,
    }
    let mut heads: BTreeMap<String, AuditHead> = BTreeMap::new();
    let mut events = 0;
    each_page(client, window, |answer| {
        match format {
            // Events are written as the API sent them, not as this CLI understood them.
            ExportFormat::Jsonl => {
                for event in answer
                    .json
                    .get("events")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    writeln!(to, "{event}").map_err(fail)?;
                }
            }
            ExportFormat::Csv => {
                for event in &answer.value.events {
                    writeln!(to, "{}", csv_row(event)).map_err(fail)?;
                }
            }
        }
        events += answer.value.events.len();
        for head in answer.value.heads {
            heads.insert(head.request_id.to_string(), head);
        }
        if answer.value.next.is_some() {
            out.progress(format!(
                "exported {} so far…",
                output::count(events, "event")
            ));
        }
        Ok(())
    })
    .await?;
    if format == ExportFormat::Jsonl {
        for head in heads.values() {
            writeln!(to, "{}", serde_json::json!({ "head": head })).map_err(fail)?;
        }
    }
    Ok((events, heads.len()))
}

const CSV_HEADER: &str = "request_id,seq,at,actor,action,from,to,reason,prev_hash,hash";

fn csv_row(e: &AuditEvent) -> String {
    let fields = [
        e.request_id.to_string(),
        e.seq.to_string(),
        e.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        e.actor.to_string(),
        e.action.to_string(),
        e.from.map(|s| s.to_string()).unwrap_or_default(),
        e.to.to_string(),
        e.reason.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    row.join(",")
}

/// One CSV field. A field a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or carriage return: a reason such as `=HYPERLINK(...)`) gets a leading `'`, as
/// OWASP's CSV injection guidance says, so it shows as the text it is.
pub(super) fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

/// Everything a verification looks at.
#[derive(Debug, Default)]
struct Trail {
    events: Vec<AuditEvent>,
    heads: Vec<AuditHead>,
    since: Option<DateTime<Utc>>,
    /// Lines of a file that are not events or heads: damaged or tampered with.
    bad_lines: Vec<String>,
}

pub fn verify_file(path: &Path, out: Out) -> anyhow::Result<Exit> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let trail = read_jsonl(&text).with_context(|| {
        format!(
            "{} is not a jsonl audit export (write one with `elevate audit export --format jsonl`)",
            path.display()
        )
    })?;
    Ok(report(trail, out))
}

pub async fn verify_api(client: &Client, out: Out) -> anyhow::Result<Exit> {
    let mut trail = Trail::default();
    each_page(client, &AuditWindow::default(), |answer| {
        trail.events.extend(answer.value.events);
        trail.heads.extend(answer.value.heads);
        Ok(())
    })
    .await?;
    Ok(report(trail, out))
}

/// How many requests' archived events are fetched at once (each fetch makes up to 16 GETs).
const ARCHIVE_REQUESTS_IN_FLIGHT: usize = 8;

/// `audit verify --archive`: the trail fetched now (pages of `GET /audit`), every chain checked
/// against its stored head as `audit verify` does, and compared request by request with the
/// archive and its anchors, read from S3 with the caller's own credentials.
///
/// Memory: every table event is kept, grouped by request, until its request is compared.
/// `compare_request` recomputes each event's hash, so it needs the whole event: about 0.7 KB
/// (344 bytes of `AuditEvent`, the rest its id, principal, reason and two hashes), up to 1 KB
/// on a request's first event, which carries the grant's terms; 500,000 events are about
/// 400 MB. Each request also keeps its stored head (~150 bytes). Of the archive only the
/// listing is kept whole, 8 bytes (the seq) per archived event plus the request id once per
/// request (it arrives as one list of keys, ~80 bytes each, folded into that at once); the
/// archived events themselves are fetched for [`ARCHIVE_REQUESTS_IN_FLIGHT`]
/// requests at a time and dropped once compared, as are that request's table events.
pub async fn verify_archive(
    endpoint: Endpoint,
    url: &ArchiveUrl,
    out: Out,
) -> anyhow::Result<Exit> {
    let sdk = archive_sdk_config(&endpoint).await;
    let client = Client::new(endpoint).await?;
    let archive = Arc::new(S3Archive::from_url(&sdk, url.as_str())?);
    // Everything is compared as the trail stood when its first page was read: archived events
    // and anchors written after that (the table moved on while it was read) are left out, and
    // events younger than SETTLE before it may still be on their way to the archive.
    let now = Utc::now();
    let mut progress = Progress::new(out);

    let table = read_table(&client, &mut progress).await?;
    let (table_requests, table_events) = (table.events.len(), table.count);
    let listing = list_archive(&archive, url, now, &mut progress).await?;
    let archived_events = listing.count;

    let mut comparison = Comparison {
        table: table.events,
        heads: table.heads,
        index: listing.index,
        now,
        differences: listing.differences,
        seen: HashSet::new(),
    };
    // The archived requests, several fetched at a time; each is compared as it arrives.
    let mut read = 0;
    let mut pending = listing.events.into_iter();
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.len() < ARCHIVE_REQUESTS_IN_FLIGHT {
            let Some((request_id, seqs)) = pending.next() else {
                break;
            };
            let archive = Arc::clone(&archive);
            in_flight.spawn(async move {
                let events = archive.get_events(&request_id, &seqs).await;
                (request_id, events)
            });
        }
        let Some(fetched) = in_flight.join_next().await else {
            break;
        };
        let (request_id, events) = fetched.context("reading the archive failed")?;
        let events = events.map_err(|err| {
            unreadable(
                err,
                format!("cannot read the archived events of {request_id}"),
            )
        })?;
        read += events.len();
        comparison.request(request_id, events);
        progress.update(|| {
            format!(
                "read {} of {} archived events…",
                thousands(read),
                thousands(archived_events)
            )
        });
    }
    let (index, differences) = comparison.finish();

    let summary = ArchiveSummary {
        archive: url.to_string(),
        table_requests,
        table_events,
        archived_events,
        anchors: index.len(),
        latest_anchor: index.latest(),
        differences: differences.len(),
    };
    progress.clear();
    Ok(report_archive(&summary, &differences, out))
}

/// The table side of `audit verify --archive`.
struct TableSide {
    /// Every event, by request; a request with a stored head but no event is here too.
    events: BTreeMap<String, Vec<AuditEvent>>,
    /// The stored head (seq, hash) of each request.
    heads: HashMap<String, (u64, String)>,
    count: usize,
}

/// Pages through the whole trail, keeping it by request.
async fn read_table(client: &Client, progress: &mut Progress) -> anyhow::Result<TableSide> {
    let mut table = TableSide {
        events: BTreeMap::new(),
        heads: HashMap::new(),
        count: 0,
    };
    each_page(client, &AuditWindow::default(), |answer| {
        table.count += answer.value.events.len();
        for event in answer.value.events {
            table
                .events
                .entry(event.request_id.to_string())
                .or_default()
                .push(event);
        }
        for head in answer.value.heads {
            let request_id = head.request_id.to_string();
            table.events.entry(request_id.clone()).or_default();
            table
                .heads
                .insert(request_id, (head.audit_seq, head.audit_head));
        }
        progress.update(|| format!("read {} events from the table…", thousands(table.count)));
        Ok(())
    })
    .await?;
    progress.done(format!(
        "read {} of {} from the table",
        count(table.count, "event"),
        count(table.events.len(), "request")
    ));
    Ok(table)
}

/// What the archive holds, before its events are read: their keys, the anchors checked and
/// indexed, and the differences found so far (broken anchors, recorded table changes).
struct ArchiveListing {
    /// The seqs archived for each request.
    events: BTreeMap<String, Vec<u64>>,
    count: usize,
    index: AnchorIndex,
    differences: Vec<Difference>,
}

async fn list_archive(
    archive: &S3Archive,
    url: &ArchiveUrl,
    now: DateTime<Utc>,
    progress: &mut Progress,
) -> anyhow::Result<ArchiveListing> {
    progress.status(format!("listing {url}…"));
    let mut events: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut count_events = 0;
    for (request_id, seq) in archive.list_events().await.map_err(|err| {
        unreadable(
            err,
            format!(
                "cannot list the events in {url} (reading the archive needs s3:ListBucketVersions \
                 and s3:GetObjectVersion on the bucket for your AWS credentials)"
            ),
        )
    })? {
        events.entry(request_id).or_default().push(seq);
        count_events += 1;
    }
    let anchors: Vec<_> = archive
        .anchors()
        .await
        .map_err(|err| unreadable(err, format!("cannot read the anchors in {url}")))?
        .into_iter()
        .filter(|(_, anchor)| anchor.until <= now)
        .collect();
    let (index, mut differences) = AnchorIndex::build(anchors);
    let changes = archive
        .changes()
        .await
        .map_err(|err| unreadable(err, format!("cannot read the recorded changes in {url}")))?;
    differences.extend(changes.into_iter().map(|change| Difference::Changed {
        request_id: change.request_id,
        seq: change.seq,
        change: change.change,
        at: change.at,
    }));
    // Found while listing: what was read of them is their first version.
    differences.extend(
        archive
            .rewritten()
            .into_iter()
            .map(|object| Difference::Rewritten {
                key: object.key,
                versions: object.versions,
                delete_markers: object.delete_markers,
            }),
    );
    progress.done(format!(
        "found {} of {} and {} in {url}",
        count(count_events, "archived event"),
        count(events.len(), "request"),
        count(index.len(), "anchor")
    ));
    Ok(ArchiveListing {
        events,
        count: count_events,
        index,
        differences,
    })
}

/// An archive that could not be read, in one line: `what`, the call that failed and the
/// causes' own messages. (The SDK's full chain, which the adapter keeps for its logs, ends with
/// the whole raw response.)
fn unreadable(err: ArchiveError, what: String) -> anyhow::Error {
    let ArchiveError::Unavailable(source) = &err else {
        return anyhow::Error::new(err).context(what);
    };
    let (call, mut cause) = match source.downcast_ref::<AwsError>() {
        Some(aws) => (aws.operation().to_owned(), aws.source()),
        None => (
            "archive unavailable".to_owned(),
            Some(source.as_ref() as &dyn Error),
        ),
    };
    let mut causes = Vec::new();
    while let Some(error) = cause {
        let message = error.to_string();
        // A modeled S3 error and its metadata say the same thing.
        if causes.last() != Some(&message) {
            causes.push(message);
        }
        cause = error.source();
    }
    anyhow::anyhow!("{what}: {call}: {}", causes.join(": "))
}

/// One line per difference (stdout), the summary (stderr); exit 9 when anything differs.
fn report_archive(summary: &ArchiveSummary, differences: &[Difference], out: Out) -> Exit {
    if out.json {
        out.json(&serde_json::json!({
            "ok": differences.is_empty(),
            "summary": summary,
            "differences": differences,
        }));
    } else {
        for difference in differences {
            out.result(difference.to_string());
        }
        out.progress(summary.to_string());
    }
    if differences.is_empty() {
        Exit::Ok
    } else {
        eprintln!(
            "error: the audit trail does not match the archive ({})",
            count(differences.len(), "difference")
        );
        Exit::Tampered
    }
}

/// What `audit verify --archive` holds while it compares: the table's events of the requests
/// not compared yet, and what was found.
struct Comparison {
    table: BTreeMap<String, Vec<AuditEvent>>,
    heads: HashMap<String, (u64, String)>,
    index: AnchorIndex,
    now: DateTime<Utc>,
    differences: Vec<Difference>,
    /// Every request compared.
    seen: HashSet<String>,
}

impl Comparison {
    /// Compares one request with its archived events, and lets go of its table events.
    fn request(&mut self, request_id: String, archived: Vec<AuditEvent>) {
        let events = self.table.remove(&request_id).unwrap_or_default();
        // Archived after the table was read: the table had no chance to have them.
        let archived: Vec<AuditEvent> = archived.into_iter().filter(|e| e.at < self.now).collect();
        self.differences.extend(verify_request(
            &request_id,
            &events,
            &archived,
            self.heads.get(&request_id),
            &self.index,
            self.now,
        ));
        self.seen.insert(request_id);
    }

    /// Compares the table's requests that have nothing in the archive, adds the anchors'
    /// requests that neither side has, and sorts every difference by request, then event.
    fn finish(mut self) -> (AnchorIndex, Vec<Difference>) {
        let rest: Vec<String> = self.table.keys().cloned().collect();
        for request_id in rest {
            self.request(request_id, Vec::new());
        }
        let mut differences = self.differences;
        differences.extend(unanchored_requests(&self.index, &self.seen));
        differences.sort_by(|a, b| position(a).cmp(&position(b)));
        (self.index, differences)
    }
}

/// The SDK config that reads the archive: the same profile as the API's credentials, and the
/// profile's region (else `--region` or the config file's).
async fn archive_sdk_config(endpoint: &Endpoint) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &endpoint.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    match (sdk.region(), &endpoint.region) {
        (None, Some(region)) => sdk
            .into_builder()
            .region(Region::new(region.clone()))
            .build(),
        _ => sdk,
    }
}

/// One request: compared with its archived events and the anchors, then its table chain
/// checked against the head the request stores (a deleted last event), as `audit verify` does,
/// unless the comparison already found the table's chain broken or missing.
fn verify_request(
    request_id: &str,
    table: &[AuditEvent],
    archive: &[AuditEvent],
    head: Option<&(u64, String)>,
    index: &AnchorIndex,
    now: DateTime<Utc>,
) -> Vec<Difference> {
    let mut differences = if table.is_empty() && archive.is_empty() {
        Vec::new()
    } else {
        compare_request(request_id, table, archive, index, now)
    };
    let table_reported = differences.iter().any(|d| {
        matches!(
            d,
            Difference::TableChain { .. } | Difference::MissingFromTable { .. }
        )
    });
    if let (Some((seq, hash)), false) = (head, table_reported) {
        let checked = if table.is_empty() {
            Err(ChainError::Truncated {
                request_id: request_id.to_owned(),
                last: 0,
                head_seq: *seq,
            })
        } else {
            verify_chain(table, Some((*seq, hash.as_str())))
        };
        if let Err(error) = checked {
            differences.push(Difference::TableChain {
                request_id: request_id.to_owned(),
                error: error.to_string(),
            });
        }
    }
    differences
}

/// Where a difference sorts: by request, then event; the anchors' own first.
fn position(difference: &Difference) -> (&str, u64) {
    match difference {
        Difference::Altered { request_id, seq }
        | Difference::Deleted { request_id, seq }
        | Difference::Inserted { request_id, seq }
        | Difference::Reordered {
            request_id, seq, ..
        }
        | Difference::Unanchored {
            request_id, seq, ..
        }
        | Difference::Changed {
            request_id, seq, ..
        } => (request_id, *seq),
        Difference::MissingFromTable { request_id }
        | Difference::TableChain { request_id, .. }
        | Difference::ArchiveChain { request_id, .. } => (request_id, 0),
        Difference::AnchorChain { .. } | Difference::Rewritten { .. } => ("", 0),
    }
}

/// The last line of `audit verify --archive`.
#[derive(Debug, Serialize)]
struct ArchiveSummary {
    archive: String,
    table_requests: usize,
    table_events: usize,
    archived_events: usize,
    anchors: usize,
    latest_anchor: Option<DateTime<Utc>>,
    differences: usize,
}

impl std::fmt::Display for ArchiveSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let latest = match self.latest_anchor {
            Some(at) => format!(" (the latest until {})", output::timestamp(at)),
            None => " (none yet: chain heads are not pinned)".to_owned(),
        };
        write!(
            f,
            "table: {}, {}; archive: {}, {}{latest}; {}",
            count(self.table_requests, "request"),
            count(self.table_events, "event"),
            count(self.archived_events, "event"),
            count(self.anchors, "anchor"),
            count(self.differences, "difference"),
        )
    }
}

/// `12,000 events`, `1 event`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// `12,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Progress of a long read on stderr: on a terminal, one line rewritten in place several
/// times a second; elsewhere (a log, a CI job) a plain line now and then, and the totals of
/// each step. Silenced by `-q`.
struct Progress {
    out: Out,
    live: bool,
    last: Instant,
    /// A live line is on screen and must be cleared before the next plain message.
    shown: bool,
}

impl Progress {
    fn new(out: Out) -> Progress {
        Progress {
            out,
            live: !out.quiet && std::io::stderr().is_terminal(),
            last: Instant::now(),
            shown: false,
        }
    }

    /// A running count, shown when enough time has passed since the last one.
    fn update(&mut self, message: impl FnOnce() -> String) {
        let every = if self.live {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(10)
        };
        if self.out.quiet || self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        if self.live {
            eprint!("\r\x1b[2K{}", message());
            self.shown = true;
        } else {
            eprintln!("{}", message());
        }
    }

    /// What is happening now, on a terminal only (a step with no running count).
    fn status(&mut self, message: String) {
        if self.live {
            self.last = Instant::now();
            eprint!("\r\x1b[2K{message}");
            self.shown = true;
        }
    }

    /// The total of a step, always shown (unless `-q`).
    fn done(&mut self, message: String) {
        self.clear();
        self.out.progress(message);
    }

    /// Takes the live line off the screen, before the results.
    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }
}

fn read_jsonl(text: &str) -> anyhow::Result<Trail> {
    let mut trail = Trail::default();
    let mut saw_json = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(value @ Value::Object(_)) => value,
            _ if !saw_json => anyhow::bail!("line {number} is not a JSON object"),
            _ => {
                trail
                    .bad_lines
                    .push(format!("line {number}: not a JSON object"));
                continue;
            }
        };
        saw_json = true;
        let parsed = if let Some(info) = value.get("export") {
            serde_json::from_value::<ExportInfo>(info.clone()).map(|info| trail.since = info.since)
        } else if let Some(head) = value.get("head") {
            serde_json::from_value::<AuditHead>(head.clone()).map(|head| trail.heads.push(head))
        } else {
            serde_json::from_value::<AuditEvent>(value).map(|event| trail.events.push(event))
        };
        if let Err(err) = parsed {
            trail.bad_lines.push(format!("line {number}: {err}"));
        }
    }
    Ok(trail)
}

/// How one request's chain fared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok {
        events: usize,
        with_head: bool,
    },
    /// The export starts after this request's first event; only each event's own hash is checked.
    Partial {
        first: u64,
        events: usize,
    },
    Tampered(String),
}

/// Verifies each request's chain against its head.
fn verify_trail(trail: &Trail) -> BTreeMap<String, Outcome> {
    let mut by_request: BTreeMap<String, Vec<AuditEvent>> = BTreeMap::new();
    for event in &trail.events {
        by_request
            .entry(event.request_id.to_string())
            .or_default()
            .push(event.clone());
    }
    let heads: HashMap<String, &AuditHead> = trail
        .heads
        .iter()
        .map(|h| (h.request_id.to_string(), h))
        .collect();
    for id in heads.keys() {
        by_request.entry(id.clone()).or_default();
    }

    by_request
        .into_iter()
        .map(|(id, events)| {
            let head = heads.get(&id);
            let first = events.iter().map(|e| e.seq).min().unwrap_or(0);
            let outcome = if events.is_empty() {
                let head_seq = head.map_or(0, |h| h.audit_seq);
                Outcome::Tampered(
                    ChainError::Truncated {
                        request_id: id.clone(),
                        last: 0,
                        head_seq,
                    }
                    .to_string(),
                )
            } else if trail.since.is_some() && first > 1 {
                match events.iter().find(|e| e.computed_hash() != e.hash) {
                    Some(e) => Outcome::Tampered(
                        ChainError::Altered {
                            request_id: id.clone(),
                            seq: e.seq,
                        }
                        .to_string(),
                    ),
                    None => Outcome::Partial {
                        first,
                        events: events.len(),
                    },
                }
            } else {
                match verify_chain(&events, head.map(|h| (h.audit_seq, h.audit_head.as_str()))) {
                    Ok(()) => Outcome::Ok {
                        events: events.len(),
                        with_head: head.is_some(),
                    },
                    Err(err) => Outcome::Tampered(err.to_string()),
                }
            };
            (id, outcome)
        })
        .collect()
}

fn report(trail: Trail, out: Out) -> Exit {
    let outcomes = verify_trail(&trail);
    let count = |wanted: fn(&Outcome) -> bool| outcomes.values().filter(|o| wanted(o)).count();
    let ok = count(|o| matches!(o, Outcome::Ok { .. }));
    let partial = count(|o| matches!(o, Outcome::Partial { .. }));
    let tampered = count(|o| matches!(o, Outcome::Tampered(_))) + trail.bad_lines.len();
    if out.json {
        let requests: Vec<Value> = outcomes
            .iter()
            .map(|(id, outcome)| match outcome {
                Outcome::Ok { events, with_head } => serde_json::json!({
                    "request_id": id, "status": "ok", "events": events, "head_checked": with_head,
                }),
                Outcome::Partial { first, events } => serde_json::json!({
                    "request_id": id, "status": "partial", "first_seq": first, "events": events,
                }),
                Outcome::Tampered(error) => serde_json::json!({
                    "request_id": id, "status": "tampered", "error": error,
                }),
            })
            .collect();
        out.json(&serde_json::json!({
            "ok": tampered == 0,
            "requests": requests,
            "bad_lines": trail.bad_lines,
        }));
    } else {
        let mut table = Table::new(&["RESULT", "REQUEST", "DETAIL"]);
        for (id, outcome) in &outcomes {
            let (result, detail) = match outcome {
                Outcome::Ok { events, with_head } => (
                    "OK",
                    format!(
                        "{events} events{}",
                        if *with_head {
                            ""
                        } else {
                            " (no stored head: a deleted last event would not show)"
                        }
                    ),
                ),
                Outcome::Partial { first, events } => (
                    "PARTIAL",
                    format!(
                        "{events} events from #{first}: the export starts later; export without --since to verify the chain"
                    ),
                ),
                Outcome::Tampered(error) => ("TAMPERED", error.clone()),
            };
            table.row(vec![result.to_owned(), id.clone(), detail]);
        }
        if !outcomes.is_empty() {
            out.result(table.render());
        }
        for line in &trail.bad_lines {
            out.result(format!("TAMPERED  {line}"));
        }
        out.progress(format!(
            "{}: {ok} OK, {tampered} tampered{}",
            output::count(outcomes.len(), "request"),
            if partial > 0 {
                format!(", {partial} partial")
            } else {
                String::new()
            }
        ));
    }
    if tampered > 0 {
        eprintln!("error: the audit trail does not verify ({tampered} problems)");
        Exit::Tampered
    } else {
        Exit::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }

    #[test]
    fn csv_fields_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"https://evil.example\",\"click\")"),
            "\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"click\"\")\""
        );
        // Only a leading character counts; elevate's own fields are untouched.
        assert_eq!(csv_field("INC-42 = 1+1"), "INC-42 = 1+1");
        assert_eq!(csv_field("2026-11-25T10:00:00Z"), "2026-11-25T10:00:00Z");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_000), "12,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "event"), "1 event");
        assert_eq!(count(3000, "event"), "3,000 events");
    }

    #[test]
    fn a_file_that_is_not_jsonl_is_refused() {
        assert!(read_jsonl("request_id,seq\n").is_err());
        let trail = read_jsonl("{\"export\":{\"exported_at\":\"2026-11-25T10:00:00Z\"}}\nnope\n")
            .expect("jsonl");
        assert_eq!(
            trail.bad_lines,
            vec!["line 2: not a JSON object".to_owned()]
        );
    }
}
