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

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use elevate_core::{verify_chain, AuditEvent, ChainError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Exit;
use crate::api::{Answer, AuditExport, AuditHead, AuditWindow, Client};
use crate::cli::{ExportArgs, ExportFormat};
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

/// Pages through the trail in `window`, first page to last, handing each to `page` as it comes:
/// a trail of any size goes through in bounded memory when `page` keeps only what it needs.
pub(super) async fn each_page(
    client: &Client,
    window: &AuditWindow,
    mut page: impl FnMut(Answer<AuditExport>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    loop {
        let answer = client.audit(window, cursor.as_deref()).await?;
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
