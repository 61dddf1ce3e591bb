//! `config check`: validate an elevate.toml and summarize it, and, when it names Identity
//! Store groups, ask the directory (with the default AWS credentials) whether they exist.

use std::path::{Path, PathBuf};

use anyhow::Context;
use elevate_core::{format_duration, Config, Flow, PersonName, TargetKind};

use super::Exit;
use crate::cli::CheckArgs;
use crate::output::Out;

/// Where `config check` looks when no file is named.
const DEFAULT_PATHS: [&str; 2] = ["elevate.toml", "infra/elevate.toml"];

/// `profile` and `region` (the global flags) choose the credentials that ask the directory.
pub async fn check(
    args: CheckArgs,
    profile: Option<String>,
    region: Option<String>,
    out: Out,
) -> anyhow::Result<Exit> {
    let path = match args.file {
        Some(path) => path,
        None => DEFAULT_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "no elevate.toml here (looked for {}); name the file: `elevate config check PATH`",
                    DEFAULT_PATHS.join(" and ")
                )
            })?,
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    match Config::parse(&text) {
        Ok(config) => {
            let groups = if args.offline {
                GroupCheck::Skipped
            } else {
                check_groups(&config, profile, region).await
            };
            if let GroupCheck::Missing { store, missing } = &groups {
                let missing: Vec<String> = missing
                    .iter()
                    .map(|(flow, key, group)| format!("`{group}` ({key} of flow {flow})"))
                    .collect();
                let message = format!("Identity Store {store} has no group {}", missing.join(", "));
                if out.json {
                    out.json(&serde_json::json!({
                        "ok": false,
                        "file": path.display().to_string(),
                        "message": message,
                    }));
                }
                eprintln!("error: {}: {message}", path.display());
                return Ok(Exit::Error);
            }
            if out.json {
                out.json(&summary_json(&path, &config));
            } else {
                out.result(summary(&path, &config));
            }
            match groups {
                GroupCheck::Found { store, count } => {
                    out.progress(format!("Identity Store {store}: all {count} groups found"));
                }
                GroupCheck::Unreachable { store, why } => out.progress(format!(
                    "note: groups not checked: Identity Store {store} could not be reached ({why}); requests naming a missing group are refused"
                )),
                GroupCheck::Skipped | GroupCheck::Missing { .. } => {}
            }
            Ok(Exit::Ok)
        }
        Err(err) => {
            if out.json {
                out.json(&serde_json::json!({
                    "ok": false,
                    "file": path.display().to_string(),
                    "line": err.line,
                    "message": err.message,
                }));
            }
            eprintln!(
                "error: {} line {}: {}",
                path.display(),
                err.line,
                err.message
            );
            Ok(Exit::Error)
        }
    }
}

/// What the Identity Store said of the groups the file names.
enum GroupCheck {
    /// `--offline`, or the file names no group.
    Skipped,
    Found {
        store: String,
        count: usize,
    },
    /// (flow, key, group) of each group the directory does not have.
    Missing {
        store: String,
        missing: Vec<(String, &'static str, String)>,
    },
    Unreachable {
        store: String,
        why: String,
    },
}

/// How long the directory may take to answer all the questions.
const DIRECTORY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Asks the Identity Store of `[identity_center]`, with the default AWS credentials and
/// region, whether each group of `approvers.groups` and `requesters.groups` exists.
async fn check_groups(
    config: &Config,
    profile: Option<String>,
    region: Option<String>,
) -> GroupCheck {
    let Some(center) = &config.identity_center else {
        return GroupCheck::Skipped;
    };
    let named: Vec<(String, &'static str, String)> = config
        .flows
        .iter()
        .flat_map(|flow| {
            let requesters = flow
                .requester_groups
                .iter()
                .map(|g| (flow.name.to_string(), "requesters.groups", g.clone()));
            let approvers = flow
                .approvers
                .groups
                .iter()
                .map(|g| (flow.name.to_string(), "approvers.groups", g.clone()));
            requesters.chain(approvers).collect::<Vec<_>>()
        })
        .collect();
    if named.is_empty() {
        return GroupCheck::Skipped;
    }
    let store = center.identity_store_id.clone();
    let asked = async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err("no AWS region is set".to_owned());
        }
        let directory =
            elevate_aws::IdentityCenter::new(&sdk, &center.instance_arn, &center.identity_store_id);
        let mut missing = Vec::new();
        for (flow, key, group) in &named {
            match directory.group_id(group).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push((flow.clone(), *key, group.clone())),
                Err(err) => return Err(err.to_string()),
            }
        }
        Ok(missing)
    };
    match tokio::time::timeout(DIRECTORY_WAIT, asked).await {
        Ok(Ok(missing)) if missing.is_empty() => GroupCheck::Found {
            store,
            count: named.len(),
        },
        Ok(Ok(missing)) => GroupCheck::Missing { store, missing },
        Ok(Err(why)) => GroupCheck::Unreachable { store, why },
        Err(_) => GroupCheck::Unreachable {
            store,
            why: format!("no answer in {} s", DIRECTORY_WAIT.as_secs()),
        },
    }
}

fn durations(flow: &Flow) -> String {
    match &flow.allowed_durations {
        Some(list) => list
            .iter()
            .map(|d| format_duration(*d))
            .collect::<Vec<_>>()
            .join(", "),
        None => format!("any up to {}", format_duration(flow.max_duration)),
    }
}

fn target_kind(kind: &TargetKind) -> String {
    match kind {
        TargetKind::IamGroup { group, .. } => format!("IAM group {group}"),
        TargetKind::Lambda { function_arn } => format!("Lambda {function_arn}"),
        TargetKind::SsoPermissionSet { .. } => {
            format!("Identity Center permission set {}", kind.resource())
        }
    }
}

fn summary(path: &Path, config: &Config) -> String {
    let names = |list: &[PersonName]| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.iter()
                .map(PersonName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let people: Vec<PersonName> = config.people.iter().map(|p| p.name.clone()).collect();
    let mut lines = vec![
        format!("{}: OK", path.display()),
        format!("people ({}): {}", people.len(), names(&people)),
        format!("auditors: {}", names(&config.auditors)),
        format!("flows ({}):", config.flows.len()),
    ];
    for flow in &config.flows {
        let description = if flow.description.is_empty() {
            String::new()
        } else {
            format!(" — {}", flow.description)
        };
        lines.push(format!("  {}{description}", flow.name));
        for target in &flow.targets {
            lines.push(format!(
                "    target {}: {}",
                target.name,
                target_kind(&target.kind)
            ));
        }
        lines.push(format!(
            "    max duration {} (allowed: {}); pending timeout {}",
            format_duration(flow.max_duration),
            durations(flow),
            format_duration(flow.pending_timeout)
        ));
        // People by name and the members of directory groups, as one phrase.
        let who = |people: &[PersonName], groups: &[String]| {
            let mut parts = Vec::new();
            if !people.is_empty() || groups.is_empty() {
                parts.push(names(people));
            }
            if !groups.is_empty() {
                parts.push(format!("the members of {}", groups.join(", ")));
            }
            parts.join(" and ")
        };
        let approvals = if flow.approvals_required > 1 {
            format!("{} of ", flow.approvals_required)
        } else {
            String::new()
        };
        lines.push(format!(
            "    approvers: {approvals}{} in {}; self-approval {}; reason {}",
            who(&flow.approvers.people, &flow.approvers.groups),
            flow.approvers.channel,
            if flow.allow_self_approval {
                "allowed"
            } else {
                "off"
            },
            if flow.reason_required {
                "required"
            } else {
                "optional"
            },
        ));
        lines.push(format!(
            "    requesters: {}",
            flow.requesters.as_deref().map_or_else(
                || "everyone".to_owned(),
                |people| who(people, &flow.requester_groups)
            )
        ));
        // Who gets what without a person approving: what reviewers of the file look for.
        if flow.auto_approve.is_empty() && flow.break_glass.is_none() {
            lines.push("    without a human: nobody (every request needs an approver)".to_owned());
        } else if flow.auto_approve.is_empty() {
            lines.push("    without a human: nobody by rule (break-glass below)".to_owned());
        } else {
            lines.push("    without a human (auto-approved, requests and extensions):".to_owned());
            for rule in &flow.auto_approve {
                let targets = if rule.targets.is_empty() {
                    flow.targets
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    rule.targets
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let when = rule
                    .window
                    .as_ref()
                    .map_or_else(|| "at any time".to_owned(), |w| w.describe());
                lines.push(format!(
                    "      {}: {} get {targets} for up to {}, {when}",
                    rule.name,
                    who(&rule.people, &rule.groups),
                    format_duration(rule.max_duration.unwrap_or(flow.max_duration)),
                ));
            }
        }
        // A hook is code, not config: whom it approves is in its own source.
        if let Some(hook) = &flow.hook {
            lines.push(format!(
                "    hook: {hook} is asked at submission and may approve, deny or send to another channel"
            ));
        }
        if let Some(glass) = &flow.break_glass {
            lines.push(format!(
                "    break-glass: {} at once on their own word, for up to {}; posted in {}, reviewed by an approver within {}",
                flow.requesters.as_deref().map_or_else(
                    || "every requester".to_owned(),
                    |people| format!("any requester ({})", who(people, &flow.requester_groups))
                ),
                format_duration(glass.max_duration),
                glass.channel,
                format_duration(glass.review_within),
            ));
        }
        if let Some(reminders) = &flow.reminders {
            lines.push(format!(
                "    when nobody answers: {}",
                describe_reminders(reminders)
            ));
        }
    }
    lines.join("\n")
}

fn summary_json(path: &Path, config: &Config) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "file": path.display().to_string(),
        "people": config.people.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "auditors": config.auditors,
        "flows": config.flows.iter().map(|f| serde_json::json!({
            "name": f.name,
            "targets": f.targets.iter().map(|t| serde_json::json!({
                "name": t.name,
                "kind": target_kind(&t.kind),
            })).collect::<Vec<_>>(),
            "max_duration": f.max_duration.as_secs(),
            "durations": f.allowed_durations.as_ref().map(|list| list.iter().map(|d| d.as_secs()).collect::<Vec<_>>()),
            "pending_timeout": f.pending_timeout.as_secs(),
            "approvers": f.approvers.people,
            "approver_groups": f.approvers.groups,
            "channel": f.approvers.channel,
            "allow_self_approval": f.allow_self_approval,
            "reason_required": f.reason_required,
            "requesters": f.requesters,
            "requester_groups": f.requester_groups,
            "approvals_required": f.approvals_required,
            "auto_approve": f.auto_approve.iter().map(|rule| serde_json::json!({
                "name": rule.name,
                "people": rule.people,
                "groups": rule.groups,
                "max_duration": rule.max_duration.unwrap_or(f.max_duration).as_secs(),
                "targets": if rule.targets.is_empty() {
                    f.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
                } else {
                    rule.targets.clone()
                },
                "window": rule.window.as_ref().map(|w| w.describe()),
                "describe": rule.describe(),
            })).collect::<Vec<_>>(),
            "hook": f.hook,
            "break_glass": f.break_glass.as_ref().map(|b| serde_json::json!({
                "max_duration": b.max_duration.as_secs(),
                "channel": b.channel,
                "review_within": b.review_within.as_secs(),
            })),
            "reminders": f.reminders.as_ref().map(|r| serde_json::json!({
                "remind_after": r.remind_after.map(|d| d.as_secs()),
                "backup_after": r.backup_after.map(|d| d.as_secs()),
                "backup_people": r.backup_people,
                "backup_channel": r.backup_channel,
                "describe": describe_reminders(r),
            })),
        })).collect::<Vec<_>>(),
    })
}

/// `[flows.reminders]` in a sentence: who is pinged when, and who may decide from when.
fn describe_reminders(reminders: &elevate_core::ReminderPolicy) -> String {
    let mut parts = Vec::new();
    if let Some(after) = reminders.remind_after {
        parts.push(format!(
            "the approvers are reminded after {}",
            format_duration(after)
        ));
    }
    if let Some(after) = reminders.backup_after {
        let people = reminders
            .backup_people
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let posted = reminders
            .backup_channel
            .as_ref()
            .map(|c| format!(" (posted in {c})"))
            .unwrap_or_default();
        parts.push(format!(
            "{people} may decide after {}{posted}",
            format_duration(after)
        ));
    }
    parts.join("; ")
}
