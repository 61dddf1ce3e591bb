//! `config check`: validate an elevate.toml and summarize it. Offline.

use std::path::{Path, PathBuf};

use anyhow::Context;
use elevate_core::{format_duration, Config, Flow, PersonName, TargetKind};

use super::Exit;
use crate::cli::CheckArgs;
use crate::output::Out;

/// Where `config check` looks when no file is named.
const DEFAULT_PATHS: [&str; 2] = ["elevate.toml", "infra/elevate.toml"];

pub fn check(args: CheckArgs, out: Out) -> anyhow::Result<Exit> {
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
            if out.json {
                out.json(&summary_json(&path, &config));
            } else {
                out.result(summary(&path, &config));
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
        lines.push(format!(
            "    approvers: {} in {}; self-approval {}; reason {}",
            names(&flow.approvers.people),
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
            flow.requesters
                .as_deref()
                .map_or_else(|| "everyone".to_owned(), names)
        ));
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
            "channel": f.approvers.channel,
            "allow_self_approval": f.allow_self_approval,
            "reason_required": f.reason_required,
            "requesters": f.requesters,
        })).collect::<Vec<_>>(),
    })
}
