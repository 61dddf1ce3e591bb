//! `report`: the access review an auditor asks for, built from the audit trail of a window.
//!
//! The trail is read page by page as `audit export` reads it, and folded as it comes into one
//! summary per request, so only the summaries are kept. A request opened before the window has
//! no creation event (and so no terms: person and target) in it; those requests alone are read
//! whole with `GET /requests/{id}`. Events at or after the end of the window are left out, so
//! the report shows every request as it stood then.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use elevate_core::model::{SessionsEnded, Terms};
use elevate_core::{Action, Actor, AuditEvent, Request, RequestId, State};

use super::audit::{csv_field, each_page};
use super::Exit;
use crate::api::{ApiError, AuditWindow, Client};
use crate::cli::{ReportArgs, ReportFormat};
use crate::output::{self, Out, PartialFile};

pub async fn report(client: &Client, args: ReportArgs, out: Out) -> anyhow::Result<Exit> {
    let now = Utc::now();
    let since = args.since.at(now);
    let until = args.until.map(|until| until.at(now));
    if until.is_some_and(|until| until <= since) {
        anyhow::bail!("--since must be before --until");
    }
    if since >= now {
        anyhow::bail!("--since must be in the past");
    }
    let format = args
        .format
        .unwrap_or_else(|| format_for(args.output.as_deref()));
    // Opened first, so an unwritable path fails before the trail is read.
    let file = args
        .output
        .as_deref()
        .map(PartialFile::create)
        .transpose()?;

    let window = AuditWindow {
        since: Some(since),
        until,
    };
    let trails = read(client, &window, out).await?;
    let review = Review {
        since,
        until: until.map_or(now, |until| until.min(now)),
        generated_at: now,
        rows: rows(trails),
    };
    let text = match format {
        ReportFormat::Csv => review.csv(),
        ReportFormat::Html => review.html(),
    };
    match (file, args.output.as_deref()) {
        (Some(mut partial), Some(path)) => {
            partial
                .writer()
                .write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            partial.finish()?;
            out.progress(format!(
                "wrote the access review of {} ({}) to {}",
                output::count(review.rows.len(), "request"),
                output::count(review.grants(), "grant"),
                path.display()
            ));
        }
        _ => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the report")?;
        }
    }
    Ok(Exit::Ok)
}

/// HTML when the file is named so, else CSV.
fn format_for(path: Option<&Path>) -> ReportFormat {
    let extension = path
        .and_then(Path::extension)
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => ReportFormat::Html,
        _ => ReportFormat::Csv,
    }
}

/// The trail of `window`, folded per request; requests opened before it are read whole.
async fn read(
    client: &Client,
    window: &AuditWindow,
    out: Out,
) -> anyhow::Result<BTreeMap<RequestId, Trail>> {
    let mut trails: BTreeMap<RequestId, Trail> = BTreeMap::new();
    let mut events = 0;
    each_page(client, window, |answer| {
        events += answer.value.events.len();
        for event in answer.value.events {
            trails
                .entry(event.request_id.clone())
                .or_default()
                .add(event);
        }
        out.progress(format!(
            "reading the trail… {}",
            output::count(events, "event")
        ));
        Ok(())
    })
    .await
    .map_err(auditors_only)?;

    let earlier: Vec<RequestId> = trails
        .iter()
        .filter(|(_, trail)| trail.terms.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    if !earlier.is_empty() {
        out.progress(format!(
            "reading {} opened before the window…",
            output::count(earlier.len(), "request")
        ));
    }
    for id in earlier {
        let detail = client.get_request(&id).await?.value;
        let mut trail = Trail::default();
        for event in detail.audit {
            if window.until.is_none_or(|until| event.at < until) {
                trail.add(event);
            }
        }
        trail.request = Some(detail.request);
        trails.insert(id, trail);
    }
    Ok(trails)
}

/// A refusal of the trail itself says what the report needs.
fn auditors_only(err: anyhow::Error) -> anyhow::Error {
    let forbidden = matches!(
        err.downcast_ref::<ApiError>(),
        Some(ApiError::Refused {
            status: 403,
            code: Some(code),
            ..
        }) if code == "forbidden"
    );
    if forbidden {
        err.context("the access review reads the whole audit trail of the window, which only auditors may read")
    } else {
        err
    }
}

/// One step of a request: when, by whom (empty for elevate's own clock: a time-out, an
/// expiry), through which principal, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Step {
    at: Option<DateTime<Utc>>,
    by: String,
    principal: String,
    reason: String,
}

impl Step {
    fn of(event: &AuditEvent) -> Step {
        let clock = matches!(event.action, Action::TimeOut | Action::Expire);
        Step {
            at: Some(event.at),
            by: if clock {
                String::new()
            } else {
                event.actor.to_string()
            },
            principal: if clock {
                String::new()
            } else {
                event.principal.clone().unwrap_or_default()
            },
            reason: event.reason.clone().unwrap_or_default(),
        }
    }
}

/// What the report keeps of one request's events, folded as they come.
#[derive(Debug, Default)]
struct Trail {
    terms: Option<Terms>,
    requested: Option<(Actor, Step)>,
    decision: Option<(Action, Actor, Step)>,
    /// Approvals before the last one a request needed.
    approvals: Vec<Step>,
    activated: Option<DateTime<Utc>>,
    /// Expire or revoke of an active grant, or the failure of its granting.
    ending: Option<(Action, Step)>,
    /// A failed grant swept later: when its access was confirmed gone.
    gone: Option<DateTime<Utc>>,
    sessions: Option<SessionsEnded>,
    /// The state after the event with the highest sequence number.
    last: Option<(u64, State)>,
    /// The request itself, when it was read: names for a trail without terms.
    request: Option<Request>,
    /// A break-glass grant's review by an approver.
    reviewed: Option<Step>,
    /// A break-glass grant's review time passed without one.
    unreviewed: bool,
}

impl Trail {
    fn add(&mut self, event: AuditEvent) {
        let step = Step::of(&event);
        match event.action {
            Action::Request => {
                self.terms.clone_from(&event.terms);
                self.requested = Some((event.actor.clone(), step));
            }
            // One approval of several needed: its approver is named with the last one.
            Action::Approve if event.to == State::Pending => {
                self.approvals.push(step);
            }
            Action::Approve | Action::Deny | Action::Cancel | Action::TimeOut => {
                let mut step = step;
                if event.action == Action::Approve && !self.approvals.is_empty() {
                    let join = |pick: fn(&Step) -> &str| {
                        self.approvals
                            .iter()
                            .chain(std::iter::once(&step))
                            .map(pick)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let (by, principal) = (join(|s| &s.by), join(|s| &s.principal));
                    step.by = by;
                    step.principal = principal;
                }
                self.decision = Some((event.action, event.actor.clone(), step));
            }
            Action::Activate => self.activated = Some(event.at),
            Action::Expire | Action::Revoke if event.from == Some(State::Failed) => {
                self.gone = Some(event.at);
            }
            Action::Expire | Action::Revoke | Action::Fail => {
                self.ending = Some((event.action, step));
            }
            Action::Review => self.reviewed = Some(step),
            Action::ReviewOverdue => self.unreviewed = true,
            // Extensions show in the access's end; they and reminders in `elevate show`.
            Action::Repair
            | Action::AskExtension
            | Action::ApproveExtension
            | Action::Extend
            | Action::DenyExtension
            | Action::Remind
            | Action::AskBackup => {}
        }
        if event.sessions.is_some() {
            self.sessions = event.sessions;
        }
        if self.last.is_none_or(|(seq, _)| event.seq > seq) {
            self.last = Some((event.seq, event.to));
        }
    }
}

/// How a request was decided, or that it was not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
    Cancelled,
    TimedOut,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::Denied => "denied",
            Decision::Cancelled => "cancelled",
            Decision::TimedOut => "timed out",
        }
    }
}

/// How a request's access ended, or where it stands at the end of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Expired,
    Revoked,
    Failed,
    StillActive,
    NotYetActive,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Expired => "expired on time",
            Ending::Revoked => "revoked early",
            Ending::Failed => "failed",
            Ending::StillActive => "still active",
            Ending::NotYetActive => "not yet active",
        }
    }

    /// The CSS class of its bar.
    fn class(self) -> &'static str {
        match self {
            Ending::Expired => "expired",
            Ending::Revoked => "revoked",
            Ending::Failed => "failed",
            Ending::StillActive => "active",
            Ending::NotYetActive => "pending",
        }
    }
}

/// One row of the review: one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    id: RequestId,
    person: String,
    email: String,
    target: String,
    /// `iam_group` or `lambda`; empty for a request stored before terms were recorded.
    kind: &'static str,
    /// The IAM group or the Lambda function ARN.
    resource: String,
    requested: Step,
    decision: Decision,
    decided: Step,
    /// Set on approvals: whether the requester approved their own request.
    self_approved: Option<bool>,
    access_start: Option<DateTime<Utc>>,
    access_end: Option<DateTime<Utc>>,
    ending: Option<Ending>,
    ended: Step,
    sessions: Option<SessionsEnded>,
    /// Set on break-glass grants: `reviewed`, `reviewed_late`, `unreviewed` or
    /// `awaiting_review` (within its review time when the trail was read).
    break_glass: Option<&'static str>,
    reviewed: Step,
}

impl Row {
    fn from_trail(id: RequestId, trail: Trail) -> Row {
        let terms = trail
            .terms
            .or_else(|| trail.request.as_ref().and_then(|r| r.terms.clone()));
        let (person, email, target, kind, resource) = match &terms {
            Some(terms) => {
                let (kind, resource) =
                    (terms.target.kind.type_name(), terms.target.kind.resource());
                (
                    terms.person.name.to_string(),
                    terms.person.email.clone(),
                    terms.target.name.to_string(),
                    kind,
                    resource,
                )
            }
            None => (
                trail
                    .request
                    .as_ref()
                    .map(|r| r.requester.to_string())
                    .or_else(|| trail.requested.as_ref().map(|(actor, _)| actor.to_string()))
                    .unwrap_or_default(),
                String::new(),
                trail
                    .request
                    .as_ref()
                    .map(|r| r.target.to_string())
                    .unwrap_or_default(),
                "",
                String::new(),
            ),
        };
        let break_glass = matches!(
            &trail.decision,
            Some((Action::Approve, actor, _)) if *actor == elevate_core::Actor::system("break_glass")
        )
        .then_some(match (&trail.reviewed, trail.unreviewed) {
            (Some(_), false) => "reviewed",
            (Some(_), true) => "reviewed_late",
            (None, true) => "unreviewed",
            (None, false) => "awaiting_review",
        });
        let (decision, decided, self_approved) = match trail.decision {
            Some((action, actor, step)) => {
                let decision = match action {
                    Action::Approve => Decision::Approved,
                    Action::Deny => Decision::Denied,
                    Action::Cancel => Decision::Cancelled,
                    _ => Decision::TimedOut,
                };
                let own = (action == Action::Approve)
                    .then(|| actor.person_name() == Some(person.as_str()));
                (decision, step, own)
            }
            None => (Decision::Pending, Step::default(), None),
        };
        let last = trail.last.map(|(_, state)| state);
        let (ending, ended) = match trail.ending {
            Some((Action::Expire, step)) => (Some(Ending::Expired), step),
            Some((Action::Revoke, step)) => (Some(Ending::Revoked), step),
            Some((_, step)) => (Some(Ending::Failed), step),
            None => match last {
                Some(State::Active) => (Some(Ending::StillActive), Step::default()),
                Some(State::Approved) => (Some(Ending::NotYetActive), Step::default()),
                _ => (None, Step::default()),
            },
        };
        Row {
            id,
            person,
            email,
            target,
            kind,
            resource,
            requested: trail.requested.map(|(_, step)| step).unwrap_or_default(),
            decision,
            decided,
            self_approved,
            access_start: trail.activated,
            access_end: trail.gone.or(ended.at),
            ending,
            ended,
            sessions: trail.sessions,
            break_glass,
            reviewed: trail.reviewed.unwrap_or_default(),
        }
    }

    /// The lane of the timeline this row is drawn in.
    fn lane(&self) -> (&str, &str) {
        (&self.person, &self.target)
    }
}

/// The rows, sorted by person, target and time of the request.
fn rows(trails: BTreeMap<RequestId, Trail>) -> Vec<Row> {
    let mut rows: Vec<Row> = trails
        .into_iter()
        .map(|(id, trail)| Row::from_trail(id, trail))
        .collect();
    rows.sort_by(|a, b| {
        (&a.person, &a.target, a.requested.at, &a.id).cmp(&(
            &b.person,
            &b.target,
            b.requested.at,
            &b.id,
        ))
    });
    rows
}

struct Review {
    since: DateTime<Utc>,
    /// The end of the window: `--until`, or the time of the report.
    until: DateTime<Utc>,
    generated_at: DateTime<Utc>,
    rows: Vec<Row>,
}

const CSV_HEADER: &str = "person,person_email,target,target_kind,target_resource,\
request_id,requested_at,requested_by_principal,reason,decision,decided_by,decided_by_principal,\
decided_at,decision_reason,self_approved,access_start,access_end,ended,ended_by,\
ended_by_principal,end_reason,sessions_ended,break_glass,reviewed_by,reviewed_at";

fn rfc3339(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Review {
    fn grants(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.decision == Decision::Approved)
            .count()
    }

    fn csv(&self) -> String {
        let mut text = format!("{CSV_HEADER}\n");
        for row in &self.rows {
            let fields = [
                row.person.clone(),
                row.email.clone(),
                row.target.clone(),
                row.kind.to_owned(),
                row.resource.clone(),
                row.id.to_string(),
                rfc3339(row.requested.at),
                row.requested.principal.clone(),
                row.requested.reason.clone(),
                row.decision.as_str().to_owned(),
                row.decided.by.clone(),
                row.decided.principal.clone(),
                rfc3339(row.decided.at),
                row.decided.reason.clone(),
                match row.self_approved {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "no".to_owned(),
                    None => String::new(),
                },
                rfc3339(row.access_start),
                rfc3339(row.access_end),
                row.ending
                    .map(Ending::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                row.ended.by.clone(),
                row.ended.principal.clone(),
                row.ended.reason.clone(),
                row.sessions
                    .map(SessionsEnded::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                row.break_glass.unwrap_or_default().to_owned(),
                row.reviewed.by.clone(),
                rfc3339(row.reviewed.at),
            ];
            let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        text
    }

    fn html(&self) -> String {
        let window = format!(
            "{} to {}",
            output::timestamp(self.since),
            output::timestamp(self.until)
        );
        let generated = format!(
            "Generated {} by elevate {} from the audit trail; requests as they stood at the end of the window.",
            output::timestamp(self.generated_at),
            env!("CARGO_PKG_VERSION")
        );
        fill(
            include_str!("../report.html"),
            &[
                ("title", &escape(&format!("Access review, {window}"))),
                ("window", &escape(&window)),
                ("generated", &escape(&generated)),
                ("summary", &self.summary()),
                ("legend", LEGEND),
                ("timeline", &self.timeline()),
                ("table", &self.table()),
            ],
        )
    }

    fn summary(&self) -> String {
        let people: BTreeSet<&str> = self.rows.iter().map(|r| r.person.as_str()).collect();
        let targets: BTreeSet<&str> = self.rows.iter().map(|r| r.target.as_str()).collect();
        let ending = |wanted: Ending| {
            self.rows
                .iter()
                .filter(|r| r.ending == Some(wanted))
                .count()
        };
        let stats = [
            (self.rows.len(), "requests"),
            (self.grants(), "grants"),
            (people.len(), "people"),
            (targets.len(), "targets"),
            (ending(Ending::Revoked), "ended early"),
            (ending(Ending::StillActive), "still active"),
            (
                self.rows
                    .iter()
                    .filter(|r| r.decision == Decision::Denied)
                    .count(),
                "denied",
            ),
            (
                self.rows
                    .iter()
                    .filter(|r| r.self_approved == Some(true))
                    .count(),
                "self-approved",
            ),
            (ending(Ending::Failed), "failed"),
        ];
        stats
            .iter()
            .map(|(n, what)| format!("<div class=\"stat\"><b>{n}</b>{what}</div>"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An inline SVG: one lane per person and target, a bar per grant that had access, a tick
    /// per denied request, dates along the bottom.
    fn timeline(&self) -> String {
        if self.rows.is_empty() {
            return "<p class=\"empty\">No requests in the window.</p>".to_owned();
        }
        const WIDTH: f64 = 1000.0;
        const LEFT: f64 = 240.0;
        const RIGHT: f64 = 30.0;
        const TOP: f64 = 8.0;
        const LANE: f64 = 24.0;
        const AXIS: f64 = 34.0;
        let plot = WIDTH - LEFT - RIGHT;
        let span = (self.until - self.since).num_seconds().max(1) as f64;
        let x = |at: DateTime<Utc>| {
            let at = at.clamp(self.since, self.until);
            LEFT + (at - self.since).num_seconds() as f64 / span * plot
        };

        // The rows are sorted by person and target: each lane is a run of them.
        let lanes: Vec<&[Row]> = self.rows.chunk_by(|a, b| a.lane() == b.lane()).collect();
        let height = TOP + LANE * lanes.len() as f64 + AXIS;
        let bottom = TOP + LANE * lanes.len() as f64;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"Timeline of the access granted in the window\">"
        );
        // Stripes first, the date grid over them, then each lane's label and marks.
        for index in (0..lanes.len()).step_by(2) {
            let y = TOP + LANE * index as f64;
            let _ = writeln!(
                svg,
                "<rect class=\"lane\" x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{LANE}\"/>"
            );
        }
        for at in axis_ticks(self.since, self.until) {
            let tx = x(at);
            let label = if self.until - self.since <= Duration::days(3) {
                at.format("%m-%d %H:%M")
            } else {
                at.format("%Y-%m-%d")
            };
            let _ = writeln!(
                svg,
                "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{bottom}\"/>\
<text class=\"date\" x=\"{tx:.1}\" y=\"{:.1}\">{label}</text>",
                bottom + 18.0
            );
        }
        for (index, lane) in lanes.iter().enumerate() {
            let y = TOP + LANE * index as f64;
            let (person, target) = lane[0].lane();
            let name = format!("{person} · {target}");
            let _ = writeln!(
                svg,
                "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\"><title>{}</title>{}</text>",
                LEFT - 8.0,
                y + 16.0,
                escape(&name),
                escape(&shortened(&name, 36))
            );
            for row in *lane {
                if let (Some(start), Some(ending)) = (row.access_start, row.ending) {
                    let end = row.access_end.unwrap_or(self.until);
                    let (x1, x2) = (x(start), x(end));
                    let _ = writeln!(
                        svg,
                        "<rect class=\"bar {}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\"><title>{}</title></rect>",
                        ending.class(),
                        y + 5.0,
                        (x2 - x1).max(2.0),
                        LANE - 10.0,
                        escape(&format!(
                            "{} on {}: from {}{}, {}",
                            row.person,
                            row.target,
                            output::timestamp(start),
                            row.access_end
                                .map(|end| format!(" to {}", output::timestamp(end)))
                                .unwrap_or_default(),
                            ending_text(row)
                        ))
                    );
                }
                if let (Decision::Denied, Some(at)) = (row.decision, row.decided.at) {
                    let tx = x(at);
                    let _ = writeln!(
                        svg,
                        "<line class=\"tick denied\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\"><title>{}</title></line>",
                        y + 3.0,
                        y + LANE - 3.0,
                        escape(&format!(
                            "{} on {}: denied by {} at {}",
                            row.person,
                            row.target,
                            row.decided.by,
                            output::timestamp(at)
                        ))
                    );
                }
            }
        }
        let _ = writeln!(
            svg,
            "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"/>",
            WIDTH - RIGHT
        );
        svg.push_str("</svg>");
        svg
    }

    fn table(&self) -> String {
        if self.rows.is_empty() {
            return "<p class=\"empty\">No requests in the window.</p>".to_owned();
        }
        let mut html = String::from(
            "<table>\n<thead><tr><th>Person</th><th>Target</th><th>Requested</th><th>Reason</th>\
<th>Decision</th><th>Access</th><th>Ended</th><th>Principals</th></tr></thead>\n<tbody>\n",
        );
        let time = |at: Option<DateTime<Utc>>| at.map(output::timestamp).unwrap_or_default();
        for row in &self.rows {
            let target_kind = match row.kind {
                "iam_group" => format!("IAM group {}", row.resource),
                "lambda" => format!("Lambda target {}", row.resource),
                "sso_permission_set" => format!("permission set {}", row.resource),
                _ => String::new(),
            };
            let mut decision = escape(row.decision.as_str());
            if !row.decided.by.is_empty() {
                let _ = write!(decision, " by {}", escape(&row.decided.by));
            }
            if row.self_approved == Some(true) {
                decision.push_str(" <span class=\"badge\">self-approved</span>");
            }
            let _ = write!(decision, "<br><small>{}</small>", time(row.decided.at));
            if !row.decided.reason.is_empty() {
                let _ = write!(decision, "<br>“{}”", escape(&row.decided.reason));
            }
            let access = match row.access_start {
                Some(start) => format!(
                    "{}<br>to {}",
                    output::timestamp(start),
                    row.access_end
                        .map_or_else(|| "—".to_owned(), output::timestamp)
                ),
                None => String::new(),
            };
            let principals = [
                ("requested", &row.requested.principal),
                ("decided", &row.decided.principal),
                ("ended", &row.ended.principal),
            ]
            .iter()
            .filter(|(_, principal)| !principal.is_empty())
            .map(|(step, principal)| format!("{step}: {}", escape(principal)))
            .collect::<Vec<_>>()
            .join("<br>");
            let _ = writeln!(
                html,
                "<tr><td>{}<br><small>{}</small></td><td>{}<br><small>{}</small></td>\
<td>{}<br><span class=\"mono\">{}</span></td><td class=\"reason\">{}</td><td>{decision}</td>\
<td>{access}</td><td>{}</td><td class=\"mono\">{principals}</td></tr>",
                escape(&row.person),
                escape(&row.email),
                escape(&row.target),
                escape(&target_kind),
                time(row.requested.at),
                escape(row.id.as_str()),
                escape(&row.requested.reason),
                escape(&ending_text(row)),
            );
        }
        html.push_str("</tbody>\n</table>");
        html
    }
}

const LEGEND: &str = "<ul class=\"legend\">\
<li><span class=\"swatch expired\"></span>expired on time</li>\
<li><span class=\"swatch revoked\"></span>revoked early</li>\
<li><span class=\"swatch failed\"></span>failed</li>\
<li><span class=\"swatch active\"></span>still active</li>\
<li><span class=\"swatch tick denied\"></span>denied</li></ul>";

/// How the access ended, in words: `revoked early by dave: INC-7 closed; the requester's role
/// sessions were ended`.
fn ending_text(row: &Row) -> String {
    let Some(ending) = row.ending else {
        return String::new();
    };
    let mut text = ending.as_str().to_owned();
    if !row.ended.by.is_empty() {
        let _ = write!(text, " by {}", row.ended.by);
    }
    if !row.ended.reason.is_empty() {
        let _ = write!(text, ": {}", row.ended.reason);
    }
    match row.sessions {
        Some(SessionsEnded::Person) => text.push_str("; the requester's role sessions were ended"),
        Some(SessionsEnded::AllSessions) => text.push_str(
            "; every session of a role was ended (its policy had no room for one more person)",
        ),
        None => {}
    }
    text
}

/// `text`, cut to `most` characters with an ellipsis when longer.
fn shortened(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(most - 1).collect();
        cut.push('…');
        cut
    }
}

/// Dates for the axis: whole hours or days, at most eight.
fn axis_ticks(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let span = (until - since).num_seconds().max(1);
    let steps = [
        1,
        3,
        6,
        12,
        24,
        48,
        24 * 7,
        24 * 14,
        24 * 30,
        24 * 91,
        24 * 365,
    ];
    let step = steps
        .iter()
        .map(|hours| hours * 3600)
        .find(|step| span / step <= 8)
        .unwrap_or(24 * 365 * 3600);
    let first = (since.timestamp() + step - 1).div_euclid(step) * step;
    (0..)
        .map(|n| first + n * step)
        .take_while(|at| *at <= until.timestamp())
        .filter_map(|at| DateTime::from_timestamp(at, 0))
        .collect()
}

/// Text as HTML: every character that could open a tag, an entity or leave an attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The template with each `{{name}}` replaced, in one pass: what is put in is never read again,
/// so a reason that reads `{{table}}` stays text.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            values
                .iter()
                .find(|(name, _)| *name == &after[..close])
                .map(|(_, value)| (close, *value))
        });
        match value {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_core::model::By;
    use elevate_core::{apply, open, Command, NewRequest, Person, Target, TargetKind};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn opened(requester: &str) -> (Request, AuditEvent) {
        open(
            RequestId::generate(at("2026-11-25T10:00:00Z")),
            NewRequest {
                flow: "infra_access".into(),
                target: "admins".into(),
                requester: requester.into(),
                reason: "INC-1".into(),
                duration: std::time::Duration::from_secs(3600),
                pending_timeout: std::time::Duration::from_secs(1800),
                approvals_required: 1,
                terms: Terms {
                    target: Target {
                        name: "admins".into(),
                        kind: TargetKind::IamGroup {
                            group: "Admins".into(),
                            roles: Vec::new(),
                        },
                    },
                    person: Person {
                        name: requester.into(),
                        iam_user: requester.into(),
                        slack_id: "U1".into(),
                        email: format!("{requester}@example.com"),
                    },
                },
            },
            "arn:aws:iam::123456789012:user/alice",
            at("2026-11-25T10:00:00Z"),
        )
    }

    fn row_of(start: (Request, AuditEvent), steps: &[(Command, By)]) -> Row {
        let (mut request, first) = start;
        let mut trail = Trail::default();
        trail.add(first);
        for (n, (command, by)) in steps.iter().enumerate() {
            // Past the 30-minute pending timeout, so a time-out is due.
            let when = at("2026-11-25T10:00:00Z") + Duration::minutes(31 * (n as i64 + 1));
            let transition = apply(&request, command.clone(), by, when).expect("transition");
            request = transition.request;
            trail.add(transition.event);
        }
        Row::from_trail(request.id, trail)
    }

    #[test]
    fn an_approval_by_the_requester_is_marked() {
        let own = row_of(
            opened("alice"),
            &[(
                Command::Approve { reason: None },
                By::person("alice", "slack:T1/U1"),
            )],
        );
        assert_eq!(own.decision, Decision::Approved);
        assert_eq!(own.self_approved, Some(true));
        assert_eq!(own.decided.principal, "slack:T1/U1");
        assert_eq!(own.ending, Some(Ending::NotYetActive));
        let peer = row_of(
            opened("alice"),
            &[(
                Command::Approve { reason: None },
                By::person("bob", "arn:aws:iam::123456789012:user/bob"),
            )],
        );
        assert_eq!(peer.self_approved, Some(false));
    }

    #[test]
    fn a_failed_grant_ends_failed_when_its_access_is_confirmed_gone() {
        let row = row_of(
            opened("alice"),
            &[
                (
                    Command::Approve { reason: None },
                    By::person("bob", "arn:bob"),
                ),
                (
                    Command::Fail {
                        error: "AccessDenied on AddUserToGroup".into(),
                    },
                    By::system("escalate", "lambda:elevate-escalate"),
                ),
                (Command::Expire, By::system("sweep", "lambda:elevate-sweep")),
            ],
        );
        assert_eq!(row.ending, Some(Ending::Failed));
        assert_eq!(row.access_start, None);
        assert_eq!(row.ended.by, "elevate:escalate");
        assert_eq!(row.ended.reason, "AccessDenied on AddUserToGroup");
        assert_eq!(row.access_end, Some(at("2026-11-25T11:33:00Z")));
    }

    #[test]
    fn a_time_out_names_nobody() {
        let row = row_of(
            opened("alice"),
            &[(
                Command::TimeOut,
                By::system("sweep", "lambda:elevate-sweep"),
            )],
        );
        assert_eq!(row.decision, Decision::TimedOut);
        assert_eq!(row.decided.by, "");
        assert_eq!(row.decided.principal, "");
        assert_eq!(row.ending, None);
    }

    #[test]
    fn html_escapes_everything_that_could_open_markup() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror='x'>&"),
            "&quot;&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&amp;"
        );
    }

    #[test]
    fn the_template_is_filled_in_one_pass() {
        assert_eq!(
            fill(
                "<p>{{a}}</p>{{b}} {{unknown}}",
                &[("a", "{{b}}"), ("b", "x")]
            ),
            "<p>{{b}}</p>x {{unknown}}"
        );
    }

    #[test]
    fn the_axis_has_at_most_eight_round_dates() {
        let ticks = axis_ticks(at("2026-09-02T12:34:00Z"), at("2026-12-01T12:34:00Z"));
        assert!((4..=8).contains(&ticks.len()), "{ticks:?}");
        assert!(ticks.iter().all(|t| t.timestamp() % 86_400 == 0));
        let hours = axis_ticks(at("2026-12-01T00:30:00Z"), at("2026-12-01T12:30:00Z"));
        assert!((4..=8).contains(&hours.len()), "{hours:?}");
    }
}
