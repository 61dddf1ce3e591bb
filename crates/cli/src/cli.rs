//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use elevate_core::{parse_duration, RequestId, State};

/// Shown under `--help`: what the exit status means.
pub const EXIT_CODES: &str = "\
Exit status:
  0  success (with --wait: the access is ACTIVE)
  1  error (the API refused, network, credentials, invalid elevate.toml)
  2  usage error
  3  request --wait: the request was DENIED
  4  request --wait: the request was CANCELLED
  5  request --wait: nobody answered in time (TIMED_OUT)
  6  request --wait: granting the access FAILED
  7  request --wait: the grant already ended (EXPIRED or REVOKED)
  8  request --wait: --timeout passed while the request was still undecided
  9  audit verify: the audit trail was tampered with (with --archive: it differs from the archive)";

/// Just-in-time, peer-approved, self-expiring AWS access.
#[derive(Debug, Parser)]
#[command(name = "elevate", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Base URL of the elevate API (else `api_url` in ~/.config/elevate/config.toml)
    #[arg(long, global = true, env = "ELEVATE_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// AWS profile whose credentials sign the calls (else `profile` in the config file)
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Region to sign for when the API URL does not name one (else the config file's, else the profile's)
    #[arg(long, global = true, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// Machine output: print the API's JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress or informational messages
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for access through a flow
    #[command(after_help = EXIT_CODES)]
    Request(RequestArgs),
    /// Approve someone's pending request (or, with --extension, the more time they asked for)
    Approve(DecisionArgs),
    /// Deny someone's pending request (or, with --extension, the more time they asked for)
    Deny(DecisionArgs),
    /// Ask for more time on your active grant; it is approved like a request
    #[command(long_about = EXTEND_ABOUT)]
    Extend(ExtendArgs),
    /// Withdraw your own pending request
    Cancel(IdArg),
    /// End an active grant now
    Revoke(DecideArgs),
    /// Acknowledge a break-glass grant someone used (an approver of its flow, never its user)
    Review(DecideArgs),
    /// List requests (yours by default)
    List(ListArgs),
    /// Show a request and its audit trail
    Show(IdArg),
    /// Export or verify the audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The access review for auditors: every request in a window, as CSV or HTML
    #[command(long_about = REPORT_ABOUT)]
    Report(ReportArgs),
    /// Check the flows config file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show what reconciliation would change in the groups and permission sets elevate manages (auditors only)
    #[command(
        long_about = "Compares every IAM group elevate manages, and every permission set in \
each of its accounts, with the active grants and shows what reconciliation would change: \
members and assignments without a grant (removed), active grants \
whose access is missing (restored when elevate's own race removed it, ended when someone \
removed it outside elevate). Reconciliation itself runs in the sweep every five minutes; \
this command only looks (--dry-run is required)."
    )]
    Reconcile(ReconcileArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The flow to request access through (see `elevate config check`)
    pub flow: String,
    /// The flow target, when the flow has more than one
    #[arg(long, short)]
    pub target: Option<String>,
    /// The AWS account (12 digits), when the target is a permission set granted in several
    #[arg(long, short)]
    pub account: Option<String>,
    /// How long the access should last: 30m, 1h, 1h30m
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Duration,
    /// Why you need it (shown to the approvers and kept in the audit trail)
    #[arg(long, short)]
    pub reason: Option<String>,
    /// Wait, showing progress, until the access is active or refused
    #[arg(long, short)]
    pub wait: bool,
    /// With --wait: give up waiting after this long (the request stays open)
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Break glass: active at once, without an approver, for an emergency. Needs a reason and
    /// a flow with [flows.break_glass]; posted to its security channel, and an approver must
    /// review it afterwards or it is marked unreviewed
    #[arg(long)]
    pub break_glass: bool,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// The request id
    pub id: RequestId,
}

#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The request id
    pub id: RequestId,
    /// Why (kept in the audit trail)
    #[arg(long, short)]
    pub reason: Option<String>,
    /// Decide the extension asked for on this active grant, not the request itself
    #[arg(long)]
    pub extension: bool,
}

const EXTEND_ABOUT: &str = "Ask for more time on your active grant.

The extension is approved like a request: by as many approvers of the flow as it needs, or at \
once by an auto-approval rule that approves the whole, longer grant. The grant keeps its \
access meanwhile and ends as before unless the extension is approved before it ends. The \
whole grant stays within the flow's max_duration.

  elevate extend 0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d --by 30m --reason \"migration still running\"";

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The request id of your active grant
    pub id: RequestId,
    /// How much more time (30m, 1h)
    #[arg(long, value_parser = parse_duration)]
    pub by: Duration,
    /// Why (required when the flow requires a reason)
    #[arg(long, short)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The request id
    pub id: RequestId,
    /// Why (kept in the audit trail)
    #[arg(long, short)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Your own requests (the default)
    #[arg(long, conflicts_with = "to_approve")]
    pub mine: bool,
    /// Requests waiting for your approval
    #[arg(long)]
    pub to_approve: bool,
    /// Only requests in this state (PENDING, ACTIVE, ...)
    #[arg(long, value_parser = parse_state)]
    pub state: Option<State>,
    /// Stop after this many requests (default: all of them, fetched and printed a page at a
    /// time)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

fn parse_state(text: &str) -> Result<State, String> {
    text.parse()
        .map_err(|e: elevate_core::model::UnknownState| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export the audit trail (auditors only), page by page, any size
    Export(ExportArgs),
    /// Verify the hash chains of an export, or of the trail fetched now (and compare it with
    /// the write-once archive)
    #[command(long_about = VERIFY_ABOUT, after_help = EXIT_CODES)]
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line; `elevate audit verify --file` reads it back
    Jsonl,
    /// Spreadsheet-friendly, one row per event
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z)
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time (RFC 3339)
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write here instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A jsonl export to verify (default: fetch the trail from the API)
    #[arg(long, short, conflicts_with = "archive")]
    pub file: Option<PathBuf>,
    /// Also compare the trail with the write-once archive in this bucket (s3://bucket or
    /// s3://bucket/prefix), read with your AWS credentials
    #[arg(long, value_parser = parse_archive_url, value_name = "S3_URL")]
    pub archive: Option<ArchiveUrl>,
}

/// `elevate audit verify --help`.
const VERIFY_ABOUT: &str = "\
Verifies the hash chain of every request: of a jsonl export (--file, offline), or of the trail \
fetched now from the API (GET /audit, auditors only), each chain against the head its request \
stores.

With --archive s3://bucket[/prefix], the trail fetched now is also compared with the write-once \
archive that the stack keeps in an S3 bucket under Object Lock: every archived event, the \
anchors (every chain head pinned periodically, hourly by default, each anchor chained to the \
previous by its hash) and the recorded \
changes of archived events in the table. Each difference is one line naming the request and \
event: an event altered, deleted or inserted in the table, events reordered, a request missing \
from the table, a chain that does not verify on either side, a head an anchor pins that the \
table or the archive lacks, an anchor altered or missing, an event changed in the table after \
it was archived, an archived object written again (a new version over it, or a delete \
marker hiding it: its first version, which Object Lock keeps, is what is compared). Events \
younger than five minutes may still be on their way to the archive \
and are not counted as inserted. A summary follows: requests and events in the table, events \
in the archive, anchors and the latest one's time.

The archive is read with your own AWS credentials (--profile, environment, SSO), not through \
the API: they need s3:ListBucketVersions and s3:GetObjectVersion on the bucket (every \
version is read, not only the current ones). The S3 endpoint is the SDK's \
usual one (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points it elsewhere, e.g. at the local \
stack).";

/// Where the write-once archive is: `s3://bucket` or `s3://bucket/prefix`, checked before any
/// call is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUrl(String);

impl ArchiveUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_archive_url(text: &str) -> Result<ArchiveUrl, String> {
    elevate_aws::archive::parse_url(text).map_err(|err| err.to_string())?;
    Ok(ArchiveUrl(text.trim().to_owned()))
}

/// `elevate report --help`.
const REPORT_ABOUT: &str = "\
The access review an auditor asks for each quarter (SOC 2 user access review, HIPAA access \
authorization): every request whose trail has an event in the window, one row each, sorted by \
person, target and time. A row says who asked for what (the target and the IAM group or Lambda \
target behind it), when and why; how it was decided (approved, denied, cancelled, timed out, \
or still pending), by whom and when, and whether the requester approved their own request; \
when the access started and how it ended (expired on time, revoked early and by whom, failed, \
still active at the end of the window) and whether live role sessions were ended with it; and \
the principal (IAM ARN or slack:<team>/<user>) behind each step.

The report reads the audit trail of the window (GET /audit, auditors only) and, for a request \
opened before the window, that request (GET /requests/{id}), so every row names its person \
and target. CSV opens in any spreadsheet, fields that would run as formulas neutralised; HTML \
is one self-contained page (summary, a timeline with one lane per person and target, the \
table) to read, print or attach to the evidence.";

/// The first or last moment of a report: a time, or a duration back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    At(chrono::DateTime<chrono::Utc>),
    Ago(Duration),
}

impl When {
    pub fn at(self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self {
            When::At(at) => at,
            When::Ago(ago) => {
                now - chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}

fn parse_when(text: &str) -> Result<When, String> {
    if let Ok(at) = text.trim().parse::<chrono::DateTime<chrono::Utc>>() {
        return Ok(When::At(at));
    }
    parse_duration(text).map(When::Ago).map_err(|_| {
        format!("`{text}` is neither a duration back from now (90d, 12h) nor an RFC 3339 time (2026-11-01T00:00:00Z)")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One row per request, for spreadsheets
    Csv,
    /// One self-contained page: summary, timeline, table
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start of the window: a duration back from now (90d, 12h) or an RFC 3339 time
    #[arg(long, default_value = "90d", value_parser = parse_when, value_name = "WHEN")]
    pub since: When,
    /// End of the window (default: now); the report shows the requests as they stood then
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub until: Option<When>,
    /// csv, or html (default: html when --output ends in .html or .htm, else csv)
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write here instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate elevate.toml and summarize it (works offline)
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file (default: elevate.toml, then infra/elevate.toml)
    pub file: Option<PathBuf>,
    /// Do not ask the Identity Store whether the groups the file names exist
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Only show what would change (the sweep makes the changes)
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn report_windows_take_a_duration_back_or_a_time() {
        let now: chrono::DateTime<chrono::Utc> = "2026-12-01T12:00:00Z".parse().expect("now");
        let at = |text: &str| parse_when(text).map(|when| when.at(now).to_rfc3339());
        assert_eq!(at("90d").as_deref(), Ok("2026-09-02T12:00:00+00:00"));
        assert_eq!(at("12h").as_deref(), Ok("2026-12-01T00:00:00+00:00"));
        assert_eq!(
            at("2026-11-01T00:00:00Z").as_deref(),
            Ok("2026-11-01T00:00:00+00:00")
        );
        assert!(parse_when("last quarter").is_err());
    }

    #[test]
    fn archive_urls_are_checked_before_anything_runs() {
        let url = parse_archive_url(" s3://elevate-audit/prod ").expect("url");
        assert_eq!(url.as_str(), "s3://elevate-audit/prod");
        let err = parse_archive_url("https://elevate-audit.s3.amazonaws.com").expect_err("https");
        assert!(err.contains("s3://<bucket>"), "{err}");
    }
}
