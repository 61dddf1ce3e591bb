//! How things look: progress on stderr, tables and times for people, JSON for machines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Local, Utc};
use elevate_core::model::SessionsEnded;
use elevate_core::{format_duration, AuditEvent, Request};
use serde_json::Value;

/// Where messages go, given `--json` and `-q`.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    /// A progress or informational message for people (stderr; silenced by `-q`).
    pub fn progress(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// How a wait ended when it is not a success (stderr, even with `-q`).
    pub fn outcome(&self, message: impl AsRef<str>) {
        eprintln!("{}", message.as_ref());
    }

    /// A warning that is not fatal (stderr, even with `-q`).
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("warning: {}", message.as_ref());
    }

    /// The command's result (stdout).
    pub fn result(&self, text: impl AsRef<str>) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`elevate list | head`) is not an error worth reporting.
        let _ = writeln!(stdout, "{}", text.as_ref());
    }

    /// The API's JSON, for `--json` (stdout).
    pub fn json(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
        self.result(text);
    }
}

/// A file written under a temporary name (`<name>.partial`) and renamed when complete, so a
/// run that fails midway leaves no file that looks complete, and no partial one either.
pub struct PartialFile {
    path: PathBuf,
    partial: PathBuf,
    writer: BufWriter<File>,
    renamed: bool,
}

impl PartialFile {
    pub fn create(path: &Path) -> anyhow::Result<PartialFile> {
        let partial = path.with_extension("partial");
        let file = File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        Ok(PartialFile {
            path: path.to_owned(),
            partial,
            writer: BufWriter::new(file),
            renamed: false,
        })
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// Flushes to disk and gives the file its name.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.writer
            .flush()
            .and_then(|()| self.writer.get_ref().sync_all())
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        std::fs::rename(&self.partial, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Unfinished, or the rename failed: the partial file must not stay behind.
        if !self.renamed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// `1 request`, `2 requests`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `2026-11-25 14:05 UTC`
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `14:05 UTC (15:05 local)`, or `14:05 UTC` where local time is UTC; the date is added when it
/// is not today.
pub fn clock(at: DateTime<Utc>) -> String {
    clock_in(at, Utc::now(), &Local)
}

fn clock_in<Tz: chrono::TimeZone>(at: DateTime<Utc>, now: DateTime<Utc>, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let local = at.with_timezone(zone);
    let same_day = at.date_naive() == now.date_naive();
    let utc = if same_day {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    };
    if local.naive_local() == at.naive_utc() {
        utc
    } else {
        format!("{utc} ({} local)", local.format("%H:%M"))
    }
}

/// A plain text table with columns sized to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        self.render_in(&self.widths())
    }

    /// How wide each column's widest cell is.
    fn widths(&self) -> Vec<usize> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The rows with columns `widths` wide (each at least as wide as its widest cell).
    fn render_in(&self, widths: &[usize]) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c].saturating_sub(cell.chars().count());
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.pop();
        out
    }
}

const REQUEST_COLUMNS: [&str; 8] = [
    "ID",
    "FLOW",
    "TARGET",
    "REQUESTER",
    "STATE",
    "DURATION",
    "CREATED",
    "EXPIRES",
];

fn requests_rows(requests: &[Request]) -> Table {
    let mut table = Table::new(&REQUEST_COLUMNS);
    for r in requests {
        table.row(vec![
            r.id.to_string(),
            r.flow.to_string(),
            r.target_label(),
            r.requester.to_string(),
            r.state.to_string(),
            format_duration(r.duration),
            timestamp(r.created_at),
            r.expires_at.map_or_else(|| "-".to_owned(), timestamp),
        ]);
    }
    table
}

/// The `list` table.
pub fn requests_table(requests: &[Request]) -> String {
    requests_rows(requests).render()
}

/// The `list` table a page at a time, for a listing of any length: the header comes with the
/// first rows, and the columns are as wide as the rows so far need (a later page with a longer
/// cell widens them from there on). One page alone is [`requests_table`].
#[derive(Debug, Default)]
pub struct RequestsTable {
    /// Empty until rows were printed.
    widths: Vec<usize>,
}

impl RequestsTable {
    /// The lines of `requests`, after those of the pages before; `None` for no requests.
    pub fn page(&mut self, requests: &[Request]) -> Option<String> {
        if requests.is_empty() {
            return None;
        }
        let table = requests_rows(requests);
        let first = self.widths.is_empty();
        let page = table.widths();
        self.widths = page
            .iter()
            .enumerate()
            .map(|(c, width)| (*width).max(self.widths.get(c).copied().unwrap_or(0)))
            .collect();
        let text = table.render_in(&self.widths);
        if first {
            Some(text)
        } else {
            text.split_once('\n').map(|(_header, rows)| rows.to_owned())
        }
    }
}

/// `{"requests": [...]}` written a request at a time, as `serde_json::to_string_pretty` writes
/// the whole object: one request is held back until the next shows whether a comma follows.
#[derive(Debug, Default)]
pub struct JsonRequests {
    held: Option<String>,
}

impl JsonRequests {
    pub fn push(&mut self, out: &Out, request: &Value) {
        let text = serde_json::to_string_pretty(request).unwrap_or_else(|_| request.to_string());
        let indented = text
            .lines()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n");
        match self.held.replace(indented) {
            Some(before) => out.result(format!("{before},")),
            None => out.result("{\n  \"requests\": ["),
        }
    }

    /// Closes the object; `next` (when the listing was cut short) is the cursor of the rest.
    pub fn finish(self, out: &Out, next: Option<&str>) {
        let comma = if next.is_some() { "," } else { "" };
        match self.held {
            Some(last) => {
                out.result(last);
                out.result(format!("  ]{comma}"));
            }
            None => out.result(format!("{{\n  \"requests\": []{comma}")),
        }
        if let Some(next) = next {
            out.result(format!("  \"next\": {}", Value::from(next)));
        }
        out.result("}");
    }
}

/// The `show` view of one request.
pub fn request_detail(r: &Request) -> String {
    let mut lines = vec![
        ("request", r.id.to_string()),
        ("flow", format!("{} (target {})", r.flow, r.target_label())),
        ("requester", r.requester.to_string()),
        ("reason", r.reason.clone()),
        ("duration", format_duration(r.duration)),
        ("state", r.state.to_string()),
        ("created", timestamp(r.created_at)),
    ];
    if r.state == elevate_core::State::Pending {
        lines.push(("times out", timestamp(r.pending_until)));
    }
    if let Some(reminders) = &r.reminders {
        if let Some(at) = reminders.reminded_at {
            lines.push(("reminded", format!("approvers at {}", timestamp(at))));
        }
        if let Some(at) = reminders.backup_asked_at {
            let posted = reminders
                .backup_message
                .as_ref()
                .map(|m| format!(", posted in {}", m.channel))
                .unwrap_or_default();
            lines.push(("backups", format!("asked at {}{posted}", timestamp(at))));
        }
    }
    let approvals = |list: &[elevate_core::model::Approval]| {
        list.iter()
            .map(|a| format!("{} at {}", a.by, timestamp(a.at)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if r.approvals_required > 1 {
        lines.push((
            "approvals",
            format!(
                "{} of {}{}",
                r.approvals.len(),
                r.approvals_required,
                if r.approvals.is_empty() {
                    String::new()
                } else {
                    format!(": {}", approvals(&r.approvals))
                }
            ),
        ));
    }
    if let Some(extension) = &r.extension {
        lines.push((
            "extension",
            format!(
                "{} more asked at {}: {}; {} of {} approved{}",
                format_duration(extension.by),
                timestamp(extension.asked_at),
                extension.reason,
                extension.approvals.len(),
                r.approvals_required,
                if extension.approvals.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", approvals(&extension.approvals))
                }
            ),
        ));
    }
    if !r.extended.is_zero() {
        lines.push(("extended", format!("by {}", format_duration(r.extended))));
    }
    if let (Some(at), Some(by)) = (r.decided_at, &r.decided_by) {
        let why = r
            .decision_reason
            .as_deref()
            .map(|why| format!(": {why}"))
            .unwrap_or_default();
        lines.push(("decided", format!("{} by {by}{why}", timestamp(at))));
    }
    if let Some(at) = r.activated_at {
        lines.push(("active from", timestamp(at)));
    }
    if let Some(at) = r.expires_at {
        lines.push(("expires", timestamp(at)));
    }
    if let Some(at) = r.ended_at {
        let by = r
            .ended_by
            .as_deref()
            .map(|by| format!(" by {by}"))
            .unwrap_or_default();
        lines.push(("ended", format!("{}{by}", timestamp(at))));
        let permission_set = r.account().is_some();
        let sessions = match (r.sessions_ended, &r.kept_access_for) {
            (Some(SessionsEnded::Person), _) if permission_set => "ended: the permission set denies the requester's sessions in the account issued before the end".to_owned(),
            (Some(SessionsEnded::Person), _) => {
                "ended: the roles deny the requester's sessions issued before the end".to_owned()
            }
            (Some(SessionsEnded::AllSessions), _) if permission_set => "ended: the permission set's policy had no room for one more person, so it denies every session in the account issued before the end".to_owned(),
            (Some(SessionsEnded::AllSessions), _) => "ended: a role had no room for one more person, so it denies every session issued before the end".to_owned(),
            (None, Some(other)) => format!("kept: grant {other} still allows them"),
            (None, None) if permission_set => "not ended by elevate (the target does not set end_sessions): they last until their session duration ends".to_owned(),
            (None, None) => {
                "not ended by elevate (the target names no roles): they last until they expire"
                    .to_owned()
            }
        };
        lines.push(("sessions", sessions));
    }
    if let Some(failure) = &r.failure {
        lines.push(("failure", failure.clone()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per audit event: `  2  2026-11-25 13:05:10 UTC  bob  approve  PENDING → APPROVED  "reason"`.
pub fn audit_lines(events: &[AuditEvent]) -> String {
    let mut sorted: Vec<&AuditEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.seq);
    let mut table = Table::new(&["SEQ", "AT", "ACTOR", "ACTION", "STATES", "REASON"]);
    for e in sorted {
        let states = match e.from {
            Some(from) => format!("{from} → {}", e.to),
            None => format!("→ {}", e.to),
        };
        table.row(vec![
            e.seq.to_string(),
            e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            e.actor.to_string(),
            match e.extend_by {
                Some(secs) => format!(
                    "{} ({})",
                    e.action,
                    format_duration(std::time::Duration::from_secs(secs))
                ),
                None => e.action.to_string(),
            },
            states,
            e.reason.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn clock_shows_local_time_only_when_it_differs() {
        let now = at("2026-11-25T13:00:00Z");
        assert_eq!(clock_in(at("2026-11-25T14:05:00Z"), now, &Utc), "14:05 UTC");
        let paris = FixedOffset::east_opt(3600).expect("offset");
        assert_eq!(
            clock_in(at("2026-11-25T14:05:00Z"), now, &paris),
            "14:05 UTC (15:05 local)"
        );
        assert_eq!(
            clock_in(at("2026-11-26T01:00:00Z"), now, &Utc),
            "2026-11-26 01:00 UTC"
        );
    }

    #[test]
    fn show_says_sessions_ended_only_when_they_were() {
        let ended = |extra: serde_json::Value| {
            let mut request = serde_json::json!({
                "id": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d",
                "flow": "infra_access", "target": "admins", "requester": "alice",
                "reason": "INC-1", "duration": 3600, "state": "EXPIRED",
                "created_at": "2026-11-25T13:00:00Z", "pending_until": "2026-11-25T13:30:00Z",
                "ended_at": "2026-11-25T14:00:00Z", "audit_seq": 4, "audit_head": "x"
            });
            if let (Some(fields), Some(more)) = (request.as_object_mut(), extra.as_object()) {
                fields.extend(more.clone());
            }
            let request: Request = serde_json::from_value(request).expect("request");
            request_detail(&request)
        };
        let sessions = |text: String| {
            text.lines()
                .find(|l| l.starts_with("sessions"))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert!(
            sessions(ended(serde_json::json!({"sessions_ended": "person"})))
                .contains("ended: the roles deny the requester's sessions")
        );
        assert!(
            sessions(ended(serde_json::json!({"sessions_ended": "all_sessions"})))
                .contains("denies every session")
        );
        let not = sessions(ended(serde_json::json!({})));
        assert!(not.contains("not ended by elevate"), "{not}");
        let kept = sessions(ended(
            serde_json::json!({"kept_access_for": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7e"}),
        ));
        assert!(kept.contains("kept: grant 0193f0c2"), "{kept}");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(), "A          LONGER\nwide cell  x");
    }
}
