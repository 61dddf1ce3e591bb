//! What `/elevate` shows: the request modal (`views.open`), the field errors of a refused
//! submission (`response_action: errors`), and the ephemeral answers of `/elevate list` and
//! `/elevate help`. Block Kit JSON within Slack's documented limits: a view or message over a
//! limit is refused whole, so every text that can grow is cut or capped here.
//!
//! As in [`crate::blocks`], text a user typed (a reason, an unknown command word) is never put
//! in `mrkdwn`: it is left out or shown in `plain_text`.

use std::collections::BTreeSet;
use std::time::Duration;

use elevate_core::rules::{RuleError, MAX_REASON_LEN};
use elevate_core::service::ServiceError;
use elevate_core::{format_duration, Config, Flow, Person, Request, State, Target, TargetKind};
use serde_json::{json, Map, Value};

use crate::blocks::{escape, fit, notice, one_line, state_icon, when, Message};

/// `callback_id` of the request modal.
pub const REQUEST_CALLBACK: &str = "elevate_request";
/// `block_id` of the flow-and-target select.
pub const ACCESS_BLOCK: &str = "access";
/// `block_id` of the duration select.
pub const DURATION_BLOCK: &str = "duration";
/// `block_id` of the reason input.
pub const REASON_BLOCK: &str = "reason";
/// `action_id` of the flow-and-target select.
pub const ACCESS_ACTION: &str = "access_select";
/// `action_id` of the duration select.
pub const DURATION_ACTION: &str = "duration_select";
/// `action_id` of the reason input.
pub const REASON_ACTION: &str = "reason_input";

// Slack's limits (Block Kit reference): options of one select, an option's text and
// description, its value, a placeholder, a hint.
const MAX_OPTIONS: usize = 100;
const MAX_OPTION_TEXT: usize = 75;
const MAX_OPTION_VALUE: usize = 150;
const MAX_PLACEHOLDER: usize = 150;
const MAX_HINT: usize = 2000;

/// Requests `/elevate list` shows (the newest page of the person's requests); the CLI lists
/// them all.
pub const MAX_LISTED: usize = 20;
/// Field errors are shown under a form field: a sentence or two.
const MAX_ERROR_CHARS: usize = 300;
/// Longest flow or target name shown in a list line.
const MAX_NAME_CHARS: usize = 80;
/// Longest unknown command word repeated back.
const MAX_WORD_CHARS: usize = 100;

/// Durations offered, up to its `max_duration`, by a flow that lists no `durations`.
const LADDER: [Duration; 8] = [
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(86_400),
];

/// One choice of the access select: a target of a flow, in one AWS account when the target
/// is a permission set granted in several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub flow: String,
    pub target: String,
    pub account: Option<String>,
}

/// The value of the access option for `target` of `flow` (in `account`): `flow/target` or
/// `flow:account/target`. Flow names are letters, digits, `_` and `-`, so the first `/` ends
/// the flow's name (and account) and target names may hold anything.
pub fn access_value(flow: &str, target: &str, account: Option<&str>) -> String {
    match account {
        Some(account) => format!("{flow}:{account}/{target}"),
        None => format!("{flow}/{target}"),
    }
}

/// The choice an access option's value names; `None` when it is not one.
pub fn parse_access(value: &str) -> Option<Access> {
    let (head, target) = value.split_once('/')?;
    let (flow, account) = match head.split_once(':') {
        Some((flow, account)) => (flow, Some(account)),
        None => (head, None),
    };
    let filled = !flow.is_empty() && !target.is_empty() && account.is_none_or(|a| !a.is_empty());
    filled.then(|| Access {
        flow: flow.to_owned(),
        target: target.to_owned(),
        account: account.map(str::to_owned),
    })
}

/// The `views.open` view in which `person` requests access: the flows they may request with
/// their targets, the durations those flows allow, and a reason. `channel_id` (where the
/// command was typed) comes back as the submission's `private_metadata`. `None` when they
/// may request no flow (or none whose names fit in Slack's option values).
pub fn request_modal(config: &Config, person: &Person, channel_id: &str) -> Option<Value> {
    let flows: Vec<&Flow> = config
        .flows
        .iter()
        .filter(|flow| may_request(flow, person))
        .collect();
    let access = access_choices(&flows);
    if access.listed == 0 {
        return None;
    }
    let durations = duration_choices(&flows);

    let mut notes = Vec::new();
    if access.listed < access.fitting {
        notes.push(format!(
            "Only the first {} of your {} choices of access are listed; the elevate CLI can \
             request any of them.",
            access.listed, access.fitting
        ));
    }
    if access.too_long > 0 {
        notes.push(
            "Targets whose names are too long for Slack are left out; the elevate CLI can \
             request them."
                .to_owned(),
        );
    }
    if durations.options.len() < durations.total {
        notes.push(format!(
            "Only the shortest {} of {} durations are listed; the elevate CLI can ask for \
             the others.",
            durations.options.len(),
            durations.total
        ));
    }
    let mut blocks = vec![json!({
        "type": "section",
        "text": {
            "type": "plain_text",
            "text": "Ask for temporary AWS access. The approvers of the flow you choose are \
                     asked in Slack, and elevate messages you when they have decided.",
            "emoji": false,
        },
    })];
    if !notes.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "plain_text", "text": notes.join(" "), "emoji": false }],
        }));
    }
    blocks.push(input(
        ACCESS_BLOCK,
        "Access",
        select(
            ACCESS_ACTION,
            "Choose a flow and target",
            "option_groups",
            access.groups,
            access.only,
        ),
        None,
    ));
    let only = match durations.options.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    blocks.push(input(
        DURATION_BLOCK,
        "Duration",
        select(
            DURATION_ACTION,
            "How long you need it",
            "options",
            durations.options,
            only,
        ),
        None,
    ));
    let mut reason = input(
        REASON_BLOCK,
        "Reason",
        json!({
            "type": "plain_text_input",
            "action_id": REASON_ACTION,
            "multiline": false,
            "max_length": MAX_REASON_LEN,
            "placeholder": plain(&fit(
                "What is it for? The incident or ticket helps the approvers.",
                MAX_PLACEHOLDER,
            )),
        }),
        Some(reason_hint(&flows)),
    );
    // Optional in Slack's eyes: whether a reason is required depends on the flow chosen, and
    // a missing one is refused on this field with the same error as the API gives.
    reason["optional"] = json!(true);
    blocks.push(reason);

    Some(json!({
        "type": "modal",
        "callback_id": REQUEST_CALLBACK,
        "private_metadata": channel_id,
        "title": plain("Request access"),
        "submit": plain("Request"),
        "close": plain("Cancel"),
        "blocks": blocks,
    }))
}

/// Whether `person` may request `flow` as far as the file says: listed, or the flow admits
/// members of directory groups (asked when the form is submitted, which refuses non-members).
fn may_request(flow: &Flow, person: &Person) -> bool {
    !flow.requester_groups.is_empty()
        || flow
            .requesters
            .as_ref()
            .is_none_or(|requesters| requesters.contains(&person.name))
}

/// The access select's option groups (one per flow, its targets as options).
struct AccessChoices {
    groups: Vec<Value>,
    /// Options listed (at most [`MAX_OPTIONS`]).
    listed: usize,
    /// Options whose value fits in Slack's limit, listed or not.
    fitting: usize,
    /// Targets left out because their value would be over Slack's limit.
    too_long: usize,
    /// The option, when it is the only one: chosen from the start.
    only: Option<Value>,
}

fn access_choices(flows: &[&Flow]) -> AccessChoices {
    let mut choices = AccessChoices {
        groups: Vec::new(),
        listed: 0,
        fitting: 0,
        too_long: 0,
        only: None,
    };
    for flow in flows {
        let mut options = Vec::new();
        for (target, account) in flow.targets.iter().flat_map(choices_of) {
            let value = access_value(&flow.name, &target.name, account);
            if value.chars().count() > MAX_OPTION_VALUE {
                choices.too_long += 1;
                continue;
            }
            choices.fitting += 1;
            if choices.listed == MAX_OPTIONS {
                continue;
            }
            choices.listed += 1;
            let description = match flow.description.trim() {
                "" => grants(target),
                description => description.to_owned(),
            };
            let label = match account {
                Some(account) => format!("{} in {account}", target.name),
                None => target.name.to_string(),
            };
            options.push(option(&label, &value, Some(&description)));
        }
        if !options.is_empty() {
            choices.groups.push(json!({
                "label": plain(&fit(&flow.name, MAX_OPTION_TEXT)),
                "options": options,
            }));
        }
    }
    if choices.listed == 1 {
        choices.only = choices.groups.first().map(|g| g["options"][0].clone());
    }
    choices
}

/// The choices `target` offers: itself, or one per account for a permission set granted in
/// several accounts.
fn choices_of(target: &Target) -> Vec<(&Target, Option<&str>)> {
    match &target.kind {
        TargetKind::SsoPermissionSet { accounts, .. } if accounts.len() > 1 => accounts
            .iter()
            .map(|account| (target, Some(account.as_str())))
            .collect(),
        _ => vec![(target, None)],
    }
}

/// What `target` grants, for a flow without a description.
fn grants(target: &Target) -> String {
    match &target.kind {
        TargetKind::IamGroup { group, .. } => format!("IAM group {group}"),
        TargetKind::Lambda { function_arn } => {
            let function = function_arn.rsplit(':').next().unwrap_or(function_arn);
            format!("Granted by the Lambda function {function}")
        }
        TargetKind::SsoPermissionSet { .. } => {
            format!("Identity Center permission set {}", target.kind.resource())
        }
    }
}

struct DurationChoices {
    /// The shortest [`MAX_OPTIONS`] durations.
    options: Vec<Value>,
    total: usize,
}

/// The durations `flows` offer, shortest first; each says which flows allow it when not all
/// do (a flow without `durations` allows any up to its cap, offered or not).
fn duration_choices(flows: &[&Flow]) -> DurationChoices {
    let offered: BTreeSet<Duration> = flows.iter().flat_map(|flow| offered(flow)).collect();
    let total = offered.len();
    let options = offered
        .into_iter()
        .take(MAX_OPTIONS)
        .map(|duration| {
            let allowing: Vec<&str> = flows
                .iter()
                .filter(|flow| allows(flow, duration))
                .map(|flow| flow.name.as_str())
                .collect();
            let only =
                (allowing.len() < flows.len()).then(|| format!("Only {}", allowing.join(", ")));
            let text = format_duration(duration);
            option(&text, &text, only.as_deref())
        })
        .collect();
    DurationChoices { options, total }
}

/// Whether `flow` accepts a request for `duration` (as `Flow::check_request` decides).
fn allows(flow: &Flow, duration: Duration) -> bool {
    !duration.is_zero()
        && duration <= flow.max_duration
        && flow
            .allowed_durations
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&duration))
}

/// The durations `flow` offers: its `durations`, or the ladder up to its cap and the cap.
fn offered(flow: &Flow) -> Vec<Duration> {
    let mut durations: Vec<Duration> = match &flow.allowed_durations {
        Some(allowed) => allowed
            .iter()
            .copied()
            .filter(|d| allows(flow, *d))
            .collect(),
        None => LADDER
            .iter()
            .copied()
            .filter(|d| *d <= flow.max_duration)
            .chain([flow.max_duration])
            .collect(),
    };
    durations.sort();
    durations.dedup();
    durations
}

fn reason_hint(flows: &[&Flow]) -> String {
    let requiring: Vec<&str> = flows
        .iter()
        .filter(|f| f.reason_required)
        .map(|f| f.name.as_str())
        .collect();
    let required = if requiring.is_empty() {
        String::new()
    } else if requiring.len() == flows.len() {
        "Required. ".to_owned()
    } else {
        format!("Required for {}. ", requiring.join(", "))
    };
    fit(
        &format!(
            "{required}Shown to the approvers with your request: one line, at most \
             {MAX_REASON_LEN} characters."
        ),
        MAX_HINT,
    )
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": false })
}

fn option(text: &str, value: &str, description: Option<&str>) -> Value {
    let mut option = json!({
        "text": plain(&fit(&one_line(text), MAX_OPTION_TEXT)),
        "value": value,
    });
    if let Some(description) = description.map(one_line).filter(|d| !d.is_empty()) {
        option["description"] = plain(&fit(&description, MAX_OPTION_TEXT));
    }
    option
}

/// A `static_select` of `choices` under `key` (`options` or `option_groups`).
fn select(
    action_id: &str,
    placeholder: &str,
    key: &str,
    choices: Vec<Value>,
    initial: Option<Value>,
) -> Value {
    let mut select = json!({
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(&fit(placeholder, MAX_PLACEHOLDER)),
    });
    select[key] = Value::Array(choices);
    if let Some(initial) = initial {
        select["initial_option"] = initial;
    }
    select
}

fn input(block_id: &str, label: &str, element: Value, hint: Option<String>) -> Value {
    let mut block = json!({
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "element": element,
    });
    if let Some(hint) = hint {
        block["hint"] = plain(&hint);
    }
    block
}

/// The answer to a refused submission: Slack shows each message under the field of its
/// block and keeps the modal open. The first message of a block wins.
pub fn errors_answer(errors: &[(&str, String)]) -> Value {
    let mut shown = Map::new();
    for (block_id, message) in errors {
        shown
            .entry(*block_id)
            .or_insert_with(|| json!(fit(&one_line(message), MAX_ERROR_CHARS)));
    }
    json!({ "response_action": "errors", "errors": shown })
}

/// The field of the request modal under which a refusal of the submission is shown.
pub fn error_block(err: &ServiceError) -> &'static str {
    match err {
        ServiceError::Rule(rule) => match rule {
            RuleError::ZeroDuration
            | RuleError::DurationOverCap { .. }
            | RuleError::DurationNotAllowed { .. }
            | RuleError::ExtensionOverCap { .. }
            | RuleError::BreakGlassOverCap { .. } => DURATION_BLOCK,
            RuleError::ReasonRequired { .. }
            | RuleError::BreakGlassReasonRequired { .. }
            | RuleError::ReasonTooLong { .. }
            | RuleError::ReasonInvalidCharacters { .. } => REASON_BLOCK,
            RuleError::UnknownTarget { .. }
            | RuleError::TargetRequired { .. }
            | RuleError::AccountRequired { .. }
            | RuleError::UnknownAccount { .. }
            | RuleError::AccountNotApplicable { .. }
            | RuleError::NotARequester { .. }
            | RuleError::NotAnApprover { .. }
            | RuleError::SelfApproval { .. }
            | RuleError::NotInDirectory { .. }
            | RuleError::UnknownGroup { .. }
            | RuleError::BreakGlassNotAllowed { .. }
            | RuleError::BreakGlassInUse { .. } => ACCESS_BLOCK,
        },
        // Who asks for which access: the first field answers for it.
        ServiceError::UnknownCaller(_)
        | ServiceError::UnknownFlow(_)
        | ServiceError::BadRequest(_)
        | ServiceError::Forbidden(_)
        | ServiceError::NotFound(_)
        | ServiceError::Transition(_)
        | ServiceError::Conflict(_)
        | ServiceError::Orphaned(_)
        | ServiceError::Store(_)
        | ServiceError::Strategy(_)
        | ServiceError::Scheduler(_)
        | ServiceError::Directory(_)
        | ServiceError::Notify(_)
        | ServiceError::Invoke(_)
        | ServiceError::Unverified(_) => ACCESS_BLOCK,
    }
}

/// An answer to a slash command that only its user sees: `text` (which may quote user text)
/// as one plain-text line.
pub fn ephemeral_answer(text: &str) -> Value {
    ephemeral(notice(text))
}

fn ephemeral(message: Message) -> Value {
    json!({ "response_type": "ephemeral", "text": message.text, "blocks": message.blocks })
}

/// The answer to `/elevate list`: the user's requests, newest first, one line each (no
/// reasons: they are the user's text). At most 20; the CLI lists them all. `older` says that
/// the user has older requests than those given (which are then not all of them).
pub fn requests_answer(requests: &[Request], older: bool) -> Value {
    if requests.is_empty() && !older {
        return ephemeral_answer("You have no requests.");
    }
    let mut newest: Vec<&Request> = requests.iter().collect();
    newest.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.as_str().cmp(a.id.as_str()))
    });
    let count = |n: usize| format!("{n} request{}", if n == 1 { "" } else { "s" });
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": "*Your requests*, newest first" },
    })];
    blocks.extend(newest.iter().take(MAX_LISTED).map(|request| {
        json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": request_line(request) },
        })
    }));
    let more = newest.len().saturating_sub(MAX_LISTED);
    let (more, total) = match (more, older) {
        (0, false) => (None, format!("You have {}.", count(newest.len()))),
        (more, false) => (
            Some(format!(
                "{more} older {}",
                if more == 1 { "one" } else { "ones" }
            )),
            format!("You have {}.", count(newest.len())),
        ),
        (_, true) => (
            Some("older ones".to_owned()),
            format!(
                "You have more than {}.",
                count(newest.len().min(MAX_LISTED))
            ),
        ),
    };
    if let Some(more) = more {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": format!("…and {more}: `elevate list` shows them all."),
            }],
        }));
    }
    json!({
        "response_type": "ephemeral",
        "text": total,
        "blocks": blocks,
    })
}

/// One request as a line of mrkdwn: elevate's own words, and names from elevate.toml escaped
/// inside code spans (where Slack formats nothing), any backtick of theirs made a quote so
/// they cannot leave it.
fn request_line(request: &Request) -> String {
    let name = |text: &str| escape(&fit(&one_line(text), MAX_NAME_CHARS)).replace('`', "'");
    let at = match (request.state, request.expires_at) {
        (State::Active, Some(expires_at)) => format!("until {}", when(expires_at)),
        _ => format!("asked {}", when(request.created_at)),
    };
    format!(
        "{} *{}* `{}` on `{}` for {}, {} · `{}`",
        state_icon(request.state),
        request.state,
        name(&request.flow),
        name(&request.target),
        format_duration(request.duration),
        at,
        request.id,
    )
}

/// How to use `/elevate`; `unknown` is the word that was not understood, repeated back as
/// plain text.
pub fn help_answer(unknown: Option<&str>) -> Value {
    let usage = "*/elevate* or */elevate request*: opens the form to request access\n\
                 */elevate list*: lists your requests\n\
                 */elevate help*: shows this";
    let mut message = match unknown {
        Some(word) => notice(&format!(
            "elevate does not know \"{}\".",
            fit(&one_line(word), MAX_WORD_CHARS)
        )),
        None => Message {
            text: String::new(),
            blocks: Vec::new(),
        },
    };
    message.blocks.push(json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": usage },
    }));
    let summary = "Use /elevate to request access, /elevate list to list your requests.";
    message.text = match message.text.as_str() {
        "" => summary.to_owned(),
        said => format!("{said} {summary}"),
    };
    ephemeral(message)
}

#[cfg(test)]
mod tests {
    use elevate_core::{parse_duration, RequestId};

    use super::*;
    use crate::blocks::tests::{at, every_state, pending};
    use crate::interaction::{parse_payload, view_submission_body, Payload, RequestForm};

    const CONFIG: &str = r#"
[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[people]]
name = "carol"
iam_user = "carol"
slack_id = "U0CAROL01"
email = "carol@example.com"

[[flows]]
name = "infra_access"
description = "Assume SymDemoEscalated"
max_duration = "4h"
[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]
[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"
[[flows.targets]]
name = "readers"
type = "iam_group"
group = "SymDemoReaders"

[[flows]]
name = "db_access"
durations = ["30m", "1h", "2h"]
requesters = ["alice", "carol"]
[flows.approvers]
channel = "C0DBA"
people = ["bob"]
[[flows.targets]]
name = "prod-db"
type = "iam_group"
group = "DbWriters"

[[flows]]
name = "tools"
max_duration = "90m"
reason_required = false
[flows.approvers]
channel = "C0TOOLS"
people = ["alice", "bob"]
[[flows.targets]]
name = "deployer"
type = "lambda"
function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:grant-deployer"

[[flows]]
name = "break_glass"
max_duration = "1h"
requesters = ["bob"]
[flows.approvers]
channel = "C0SEC"
people = ["alice"]
[[flows.targets]]
name = "root"
type = "iam_group"
group = "Root"
"#;

    fn config() -> Config {
        Config::parse(CONFIG).expect("config")
    }

    fn modal_of(config: &Config, name: &str) -> Value {
        let person = config.person(name).expect("person");
        request_modal(config, person, "C0DEV").expect("a modal")
    }

    fn block<'a>(view: &'a Value, block_id: &str) -> &'a Value {
        view["blocks"]
            .as_array()
            .and_then(|blocks| blocks.iter().find(|b| b["block_id"] == block_id))
            .unwrap_or_else(|| panic!("no block {block_id}"))
    }

    /// The option groups of the access select: (flow label, [(target text, value)]).
    fn access_options(view: &Value) -> Vec<(String, Vec<(String, String)>)> {
        block(view, ACCESS_BLOCK)["element"]["option_groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|group| {
                let options = group["options"]
                    .as_array()
                    .expect("options")
                    .iter()
                    .map(|o| (text(&o["text"]["text"]), text(&o["value"])))
                    .collect();
                (text(&group["label"]["text"]), options)
            })
            .collect()
    }

    /// The duration options: (value, description).
    fn duration_options(view: &Value) -> Vec<(String, Option<String>)> {
        block(view, DURATION_BLOCK)["element"]["options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|o| {
                assert_eq!(o["text"]["text"], o["value"]);
                (
                    text(&o["value"]),
                    o.get("description").map(|d| text(&d["text"])),
                )
            })
            .collect()
    }

    fn text(value: &Value) -> String {
        value.as_str().unwrap_or_default().to_owned()
    }

    fn chars(value: &Value) -> usize {
        value.as_str().map_or(0, |s| s.chars().count())
    }

    /// Checks `view` against Slack's documented limits for modals and Block Kit.
    fn assert_within_slack_limits(view: &Value) {
        for (field, max) in [("title", 24), ("submit", 24), ("close", 24)] {
            assert!((1..=max).contains(&chars(&view[field]["text"])), "{field}");
        }
        assert!(chars(&view["private_metadata"]) <= 3000);
        assert!((1..=255).contains(&chars(&view["callback_id"])));
        let blocks = view["blocks"].as_array().expect("blocks");
        assert!((1..=100).contains(&blocks.len()));
        for block in blocks {
            if let Some(id) = block.get("block_id") {
                assert!((1..=255).contains(&chars(id)));
            }
            if block["type"] == "input" {
                assert!((1..=2000).contains(&chars(&block["label"]["text"])));
                if let Some(hint) = block.get("hint") {
                    assert!((1..=2000).contains(&chars(&hint["text"])));
                }
                let element = &block["element"];
                assert!((1..=255).contains(&chars(&element["action_id"])));
                assert!((1..=150).contains(&chars(&element["placeholder"]["text"])));
                let groups = element["option_groups"].as_array();
                let options: Vec<&Value> = element["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(
                        groups
                            .into_iter()
                            .flatten()
                            .flat_map(|g| g["options"].as_array().into_iter().flatten()),
                    )
                    .collect();
                if element["type"] == "static_select" {
                    assert!(
                        (1..=100).contains(&options.len()),
                        "{} options",
                        options.len()
                    );
                }
                for group in groups.into_iter().flatten() {
                    assert!((1..=75).contains(&chars(&group["label"]["text"])));
                    assert!(!group["options"].as_array().expect("options").is_empty());
                }
                for option in options {
                    assert_eq!(option["text"]["type"], "plain_text");
                    assert!(
                        (1..=75).contains(&chars(&option["text"]["text"])),
                        "{option}"
                    );
                    assert!((1..=150).contains(&chars(&option["value"])), "{option}");
                    if let Some(description) = option.get("description") {
                        assert!((1..=75).contains(&chars(&description["text"])), "{option}");
                    }
                }
            }
        }
        for object in text_objects(view) {
            assert!((1..=3000).contains(&chars(&object["text"])), "{object}");
        }
    }

    /// Every text object (`plain_text` or `mrkdwn`) anywhere in `value`.
    fn text_objects(value: &Value) -> Vec<&Value> {
        let mut found = Vec::new();
        fn walk<'a>(value: &'a Value, found: &mut Vec<&'a Value>) {
            match value {
                Value::Object(map) => {
                    if matches!(
                        map.get("type").and_then(Value::as_str),
                        Some("plain_text" | "mrkdwn")
                    ) && map.get("text").is_some_and(Value::is_string)
                    {
                        found.push(value);
                    }
                    map.values().for_each(|inner| walk(inner, found));
                }
                Value::Array(items) => items.iter().for_each(|inner| walk(inner, found)),
                _ => {}
            }
        }
        walk(value, &mut found);
        found
    }

    #[test]
    fn the_modal_lists_only_the_flows_the_person_may_request() {
        let config = config();
        let alice = modal_of(&config, "alice");
        assert_eq!(
            access_options(&alice),
            vec![
                (
                    "infra_access".to_owned(),
                    vec![
                        ("admins".to_owned(), "infra_access/admins".to_owned()),
                        ("readers".to_owned(), "infra_access/readers".to_owned()),
                    ]
                ),
                (
                    "db_access".to_owned(),
                    vec![("prod-db".to_owned(), "db_access/prod-db".to_owned())]
                ),
                (
                    "tools".to_owned(),
                    vec![("deployer".to_owned(), "tools/deployer".to_owned())]
                ),
            ]
        );
        let bob: Vec<String> = access_options(&modal_of(&config, "bob"))
            .into_iter()
            .map(|(flow, _)| flow)
            .collect();
        assert_eq!(bob, ["infra_access", "tools", "break_glass"]);
        // Each value names a flow and target the API accepts.
        for (_, options) in access_options(&alice) {
            for (_, value) in options {
                let access = parse_access(&value).expect("access value");
                let flow = config.flow(&access.flow).expect("flow");
                assert!(flow.target(Some(&access.target)).is_ok(), "{value}");
            }
        }
        // Options say what they grant: the flow's description, else the target.
        let options = &block(&alice, ACCESS_BLOCK)["element"]["option_groups"];
        assert_eq!(
            options[0]["options"][0]["description"]["text"],
            "Assume SymDemoEscalated"
        );
        assert_eq!(
            options[1]["options"][0]["description"]["text"],
            "IAM group DbWriters"
        );
        assert_eq!(
            options[2]["options"][0]["description"]["text"],
            "Granted by the Lambda function grant-deployer"
        );
    }

    #[test]
    fn nobody_who_may_request_nothing_gets_a_modal() {
        let only_bob = CONFIG
            .replace(
                "name = \"infra_access\"",
                "name = \"infra_access\"\nrequesters = [\"bob\"]",
            )
            .replace(
                "name = \"tools\"",
                "name = \"tools\"\nrequesters = [\"bob\"]",
            );
        let config = Config::parse(&only_bob).expect("config");
        let carol = config.person("carol").expect("carol");
        assert!(
            request_modal(&config, carol, "C0DEV").is_some(),
            "db_access"
        );
        let config = Config::parse(&only_bob.replace(
            "requesters = [\"alice\", \"carol\"]",
            "requesters = [\"alice\"]",
        ))
        .expect("config");
        let carol = config.person("carol").expect("carol");
        assert_eq!(request_modal(&config, carol, "C0DEV"), None);
    }

    #[test]
    fn durations_are_those_the_flows_allow_within_their_caps() {
        let config = config();
        let alice = modal_of(&config, "alice");
        let only = |flows: &str| Some(format!("Only {flows}"));
        assert_eq!(
            duration_options(&alice),
            vec![
                ("15m".to_owned(), only("infra_access, tools")),
                ("30m".to_owned(), None),
                ("1h".to_owned(), None),
                ("1h30m".to_owned(), only("infra_access, tools")),
                ("2h".to_owned(), only("infra_access, db_access")),
                ("4h".to_owned(), only("infra_access")),
            ]
        );
        // Whatever is offered for a flow, the API accepts for it.
        let person = config.person("alice").expect("alice");
        for (value, description) in duration_options(&alice) {
            let duration = parse_duration(&value).expect("duration");
            let accepting: Vec<&str> = config
                .flows
                .iter()
                .filter(|f| f.name != "break_glass")
                .filter(|f| {
                    f.check_request(person, None, None, duration, "a reason")
                        .is_ok()
                        || f.targets.len() > 1
                            && f.check_request(person, Some("admins"), None, duration, "a reason")
                                .is_ok()
                })
                .map(|f| f.name.as_str())
                .collect();
            assert_eq!(
                description,
                (accepting.len() < 3).then(|| format!("Only {}", accepting.join(", "))),
                "{value}"
            );
        }
        // A lone flow and duration are chosen from the start.
        let config = Config::parse(&CONFIG.replace(
            "name = \"break_glass\"\nmax_duration = \"1h\"",
            "name = \"break_glass\"\ndurations = [\"1h\"]",
        ))
        .expect("config");
        let bob = config.person("bob").expect("bob");
        let only_bob: Vec<&Flow> = config
            .flows
            .iter()
            .filter(|f| f.name == "break_glass")
            .collect();
        assert_eq!(offered(only_bob[0]), [Duration::from_secs(3600)]);
        let view = request_modal(&config, bob, "C0DEV").expect("modal");
        assert!(block(&view, DURATION_BLOCK)["element"]
            .get("initial_option")
            .is_none());
        let lone = Config {
            flows: config
                .flows
                .iter()
                .filter(|f| f.name == "break_glass")
                .cloned()
                .collect(),
            ..config.clone()
        };
        let view = request_modal(&lone, bob, "C0DEV").expect("modal");
        assert_eq!(
            block(&view, ACCESS_BLOCK)["element"]["initial_option"]["value"],
            "break_glass/root"
        );
        assert_eq!(
            block(&view, DURATION_BLOCK)["element"]["initial_option"]["value"],
            "1h"
        );
    }

    #[test]
    fn the_modal_is_the_request_form() {
        let view = modal_of(&config(), "alice");
        assert_eq!(view["type"], "modal");
        assert_eq!(view["callback_id"], REQUEST_CALLBACK);
        assert_eq!(view["private_metadata"], "C0DEV");
        assert_eq!(view["title"]["text"], "Request access");
        assert_eq!(view["submit"]["text"], "Request");
        assert_eq!(view["close"]["text"], "Cancel");
        for (block_id, action_id, kind) in [
            (ACCESS_BLOCK, ACCESS_ACTION, "static_select"),
            (DURATION_BLOCK, DURATION_ACTION, "static_select"),
            (REASON_BLOCK, REASON_ACTION, "plain_text_input"),
        ] {
            let block = block(&view, block_id);
            assert_eq!(block["type"], "input");
            assert_eq!(block["element"]["action_id"], action_id);
            assert_eq!(block["element"]["type"], kind);
        }
        let reason = block(&view, REASON_BLOCK);
        assert_eq!(reason["optional"], true);
        assert_eq!(reason["element"]["multiline"], false);
        assert_eq!(reason["element"]["max_length"], MAX_REASON_LEN);
        assert!(text(&reason["hint"]["text"]).starts_with("Required for infra_access, db_access."));
        assert!(block(&view, ACCESS_BLOCK).get("optional").is_none());
        assert_within_slack_limits(&view);
    }

    /// 30 flows of 10 targets and 40 durations each, with long names and descriptions; one
    /// target's name too long for an option value.
    fn large_config() -> Config {
        let mut toml = String::from(
            "[[people]]\nname = \"alice\"\niam_user = \"alice\"\nslack_id = \"U1\"\nemail = \"a@x\"\n\
             [[people]]\nname = \"bob\"\niam_user = \"bob\"\nslack_id = \"U2\"\nemail = \"b@x\"\n",
        );
        let long = "x".repeat(300);
        for f in 0..30 {
            let durations: Vec<String> = (1..=40).map(|m| format!("\"{}m\"", f * 40 + m)).collect();
            toml.push_str(&format!(
                "[[flows]]\nname = \"flow_{f}_{}\"\ndescription = \"{long} <!channel>\"\n\
                 durations = [{}]\n[flows.approvers]\nchannel = \"C{f}\"\npeople = [\"alice\", \"bob\"]\n",
                "f".repeat(80),
                durations.join(", "),
            ));
            for t in 0..10 {
                toml.push_str(&format!(
                    "[[flows.targets]]\nname = \"target {t} {}\"\ntype = \"iam_group\"\ngroup = \"G{t}\"\n",
                    "é".repeat(if f == 0 && t == 0 { 200 } else { 20 })
                ));
            }
        }
        Config::parse(&toml).expect("config")
    }

    #[test]
    fn a_large_config_is_capped_to_slack_limits_and_says_so() {
        let config = large_config();
        let view = modal_of(&config, "alice");
        assert_within_slack_limits(&view);
        let listed: usize = access_options(&view).iter().map(|(_, o)| o.len()).sum();
        assert_eq!(listed, 100);
        assert_eq!(duration_options(&view).len(), 100);
        assert_eq!(duration_options(&view)[0].0, "1m", "the shortest are kept");
        let notes = text(&view["blocks"][1]["elements"][0]["text"]);
        assert!(notes.contains("first 100 of your 299"), "{notes}");
        assert!(notes.contains("too long for Slack"), "{notes}");
        assert!(notes.contains("shortest 100 of 1200 durations"), "{notes}");
        // A target whose value would be over 150 characters is left out, not cut.
        for (_, options) in access_options(&view) {
            for (_, value) in options {
                assert!(parse_access(&value).is_some_and(|access| config
                    .flow(&access.flow)
                    .is_some_and(|f| f.target(Some(&access.target)).is_ok())));
            }
        }
    }

    #[test]
    fn a_submission_of_the_modal_round_trips() {
        let config = config();
        let mut view = modal_of(&config, "alice");
        view["id"] = json!("V0OPENED");
        let form = RequestForm {
            access: Some(access_value("infra_access", "readers", None)),
            duration: Some("2h".into()),
            reason: Some("debug prod <!channel> & *incident* #42".into()),
        };
        let body = view_submission_body("U0ALICE01", "alice", &view, &form);
        let Ok(Payload::ViewSubmission(submission)) = parse_payload(body.as_bytes()) else {
            panic!("not a submission: {body}");
        };
        assert_eq!(submission.form, form);
        assert_eq!(submission.callback_id, REQUEST_CALLBACK);
        assert_eq!(submission.private_metadata, "C0DEV");
        assert_eq!(submission.view_id, "V0OPENED");
        // The selected option echoes the modal's own option, as Slack does.
        let (_, payload) = form_urlencoded::parse(body.as_bytes())
            .find(|(key, _)| key == "payload")
            .expect("payload");
        let payload: Value = serde_json::from_str(&payload).expect("json");
        let selected =
            &payload["view"]["state"]["values"][ACCESS_BLOCK][ACCESS_ACTION]["selected_option"];
        assert_eq!(selected["text"]["text"], "readers");
        assert_eq!(selected["description"]["text"], "Assume SymDemoEscalated");
    }

    #[test]
    fn a_permission_set_in_several_accounts_is_one_choice_per_account() {
        let set = "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-0123456789abcdef";
        let text = format!(
            "[identity_center]\ninstance_arn = \"arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6\"\n\
             identity_store_id = \"d-9067a1b2c3\"\n{CONFIG}\n[[flows]]\nname = \"prod_readonly\"\n\
             max_duration = \"1h\"\n[flows.approvers]\nchannel = \"C0PROD\"\npeople = [\"bob\", \"carol\"]\n\
             [[flows.targets]]\nname = \"readonly\"\ntype = \"sso_permission_set\"\n\
             permission_set_arn = \"{set}\"\naccounts = [\"111111111111\", \"222222222222\"]\n"
        );
        let config = Config::parse(&text).expect("config");
        let alice = config.person("alice").expect("alice");
        let options = access_options(&modal_of(&config, "alice"));
        let (_, prod) = options
            .iter()
            .find(|(flow, _)| flow == "prod_readonly")
            .expect("prod_readonly offered");
        let labels: Vec<&str> = prod.iter().map(|(label, _)| label.as_str()).collect();
        assert_eq!(
            labels,
            ["readonly in 111111111111", "readonly in 222222222222"]
        );
        // Each value is a request the flow accepts, in that account.
        for (label, value) in prod {
            let access = parse_access(value).expect("access value");
            let account = access.account.as_deref().expect("an account");
            assert!(label.ends_with(account), "{label} {value}");
            let new = config
                .flow(&access.flow)
                .expect("flow")
                .check_request(
                    alice,
                    Some(&access.target),
                    Some(account),
                    Duration::from_secs(1800),
                    "x",
                )
                .expect("accepted");
            assert_eq!(new.terms.target.kind.account(), Some(account));
        }
    }

    #[test]
    fn access_values_round_trip() {
        for (flow, target, account) in [
            ("infra_access", "admins", None),
            ("db-1", "a/b c/d", None),
            ("f", "é <x> & y", None),
            ("prod_readonly", "readonly", Some("111111111111")),
            ("f", "a:b/c", Some("222222222222")),
        ] {
            assert_eq!(
                parse_access(&access_value(flow, target, account)),
                Some(Access {
                    flow: flow.to_owned(),
                    target: target.to_owned(),
                    account: account.map(str::to_owned),
                })
            );
        }
        for bad in [
            "",
            "infra_access",
            "/admins",
            "infra_access/",
            "f:/t",
            ":1/t",
        ] {
            assert_eq!(parse_access(bad), None, "{bad}");
        }
    }

    #[test]
    fn refusals_are_shown_on_the_field_they_concern() {
        let config = config();
        let alice = config.person("alice").expect("alice");
        let infra = config.flow("infra_access").expect("flow");
        let db = config.flow("db_access").expect("flow");
        let hour = Duration::from_secs(3600);
        let refused = |flow: &Flow, target: Option<&str>, duration: Duration, reason: &str| {
            let err = flow
                .check_request(alice, target, None, duration, reason)
                .expect_err("refused");
            error_block(&ServiceError::Rule(err))
        };
        assert_eq!(
            refused(infra, Some("admins"), hour * 5, "x"),
            DURATION_BLOCK
        );
        assert_eq!(
            refused(infra, Some("admins"), Duration::ZERO, "x"),
            DURATION_BLOCK
        );
        assert_eq!(refused(db, None, hour * 3 / 2, "x"), DURATION_BLOCK);
        assert_eq!(refused(infra, Some("admins"), hour, "  "), REASON_BLOCK);
        assert_eq!(refused(infra, Some("admins"), hour, "a\nb"), REASON_BLOCK);
        assert_eq!(
            refused(infra, Some("admins"), hour, &"x".repeat(1001)),
            REASON_BLOCK
        );
        assert_eq!(refused(infra, Some("nope"), hour, "x"), ACCESS_BLOCK);
        assert_eq!(refused(infra, None, hour, "x"), ACCESS_BLOCK);
        let bob = config.person("bob").expect("bob");
        let not_a_requester = db
            .check_request(bob, None, None, hour, "x")
            .expect_err("not a requester");
        assert_eq!(
            error_block(&ServiceError::Rule(not_a_requester)),
            ACCESS_BLOCK
        );
        assert_eq!(
            error_block(&ServiceError::UnknownFlow("gone".into())),
            ACCESS_BLOCK
        );
        assert_eq!(
            error_block(&ServiceError::Conflict("busy".into())),
            ACCESS_BLOCK
        );
    }

    #[test]
    fn errors_answer_names_each_field_once_on_one_line() {
        let answer = errors_answer(&[
            (DURATION_BLOCK, "duration 5h is over\nthe cap".to_owned()),
            (REASON_BLOCK, "é".repeat(5000)),
            (DURATION_BLOCK, "second message".to_owned()),
        ]);
        assert_eq!(answer["response_action"], "errors");
        let errors = answer["errors"].as_object().expect("errors");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[DURATION_BLOCK], "duration 5h is over the cap");
        assert_eq!(chars(&errors[REASON_BLOCK]), MAX_ERROR_CHARS);
    }

    /// User text that, were it markup, would mention everyone, bold itself and hide a link.
    const FORGERY: &str = "<!channel> *bold* <https://x|y>";

    /// Checks that nothing of [`FORGERY`] reaches Slack's markup: no mrkdwn text object and
    /// not the fallback text.
    fn assert_no_markup_of_forgery(answer: &Value) {
        for object in text_objects(answer) {
            if object["type"] == "mrkdwn" {
                let text = text(&object["text"]);
                for part in ["<!channel>", "*bold*", "<https://x|y>", "https://x"] {
                    assert!(!text.contains(part), "in markup: {text}");
                }
            }
        }
        let fallback = text(&answer["text"]);
        assert!(!fallback.contains('<'), "{fallback}");
    }

    #[test]
    fn ephemeral_answers_show_user_text_as_plain_text() {
        let answer = ephemeral_answer(&format!("Refused: {FORGERY}"));
        assert_eq!(answer["response_type"], "ephemeral");
        assert_no_markup_of_forgery(&answer);
        let blocks = answer["blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["text"], format!("Refused: {FORGERY}"));
    }

    fn listed(count: usize) -> Vec<Request> {
        (0..count)
            .map(|i| {
                let mut request = pending(FORGERY);
                let created = at(i64::try_from(i).unwrap_or_default() * 60);
                request.id = RequestId::generate(created);
                request.created_at = created;
                request.decision_reason = Some(FORGERY.to_owned());
                request
            })
            .collect()
    }

    #[test]
    fn requests_answer_lists_the_newest_twenty_without_reasons() {
        assert_eq!(
            requests_answer(&[], false),
            ephemeral_answer("You have no requests.")
        );
        assert_eq!(
            requests_answer(&[], false)["blocks"][0]["text"]["text"],
            "You have no requests."
        );

        let mut newest = listed(25);
        newest.reverse();
        let mut requests = newest.clone();
        requests.swap(3, 17);
        requests.swap(0, 24);
        let answer = requests_answer(&requests, false);
        assert_eq!(answer["response_type"], "ephemeral");
        assert_eq!(answer["text"], "You have 25 requests.");
        assert_no_markup_of_forgery(&answer);
        assert!(!answer.to_string().contains("bold"), "reasons are left out");
        let blocks = answer["blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), 1 + 20 + 1);
        for (block, request) in blocks[1..21].iter().zip(&newest) {
            let line = text(&block["text"]["text"]);
            assert!(line.contains(&format!("`{}`", request.id)), "{line}");
            assert!(line.contains("*PENDING*"), "{line}");
            assert!(
                line.contains("`infra_access` on `admins` for 1h30m"),
                "{line}"
            );
            assert!(
                line.contains(&format!("asked {}", when(request.created_at))),
                "{line}"
            );
        }
        assert!(
            text(&blocks[21]["elements"][0]["text"]).contains("…and 5 older ones: `elevate list`")
        );
        for object in text_objects(&answer) {
            assert!((1..=3000).contains(&chars(&object["text"])));
        }
        assert!(blocks.len() <= 50, "a message holds at most 50 blocks");

        // Every state has its line; an ACTIVE grant says until when.
        let answer = requests_answer(&every_state(), false);
        let lines = answer.to_string();
        for state in State::ALL {
            assert!(lines.contains(&format!("*{state}*")), "{state}");
        }
        assert!(lines.contains("until 2023-11-14 23:44 UTC"), "{lines}");
        assert_eq!(answer["blocks"].as_array().map(Vec::len), Some(10));
    }

    #[test]
    fn requests_answer_keeps_names_inside_code_spans() {
        let mut request = pending("ok");
        request.target = "`<!channel> *bold* <https://x|y>`".into();
        let answer = requests_answer(&[request], false);
        assert_eq!(answer["text"], "You have 1 request.");
        let line = text(&answer["blocks"][1]["text"]["text"]);
        assert!(
            line.contains(" on `'&lt;!channel&gt; *bold* &lt;https://x|y&gt;'` for "),
            "{line}"
        );
    }

    #[test]
    fn help_answers_say_how_to_use_the_command() {
        let help = help_answer(None);
        assert_eq!(help["response_type"], "ephemeral");
        let usage = help.to_string();
        for command in [
            "/elevate*",
            "/elevate request",
            "/elevate list",
            "/elevate help",
        ] {
            assert!(usage.contains(command), "{command}: {usage}");
        }
        assert_eq!(help["blocks"].as_array().map(Vec::len), Some(1));

        let word = format!("{FORGERY}\nmore");
        let help = help_answer(Some(&word));
        assert_no_markup_of_forgery(&help);
        assert_eq!(help["blocks"][0]["text"]["type"], "plain_text");
        assert_eq!(
            help["blocks"][0]["text"]["text"],
            format!("elevate does not know \"{FORGERY} more\".")
        );
        assert!(text(&help["text"]).contains("&lt;!channel&gt;"));
        let long = help_answer(Some(&"w".repeat(10_000)));
        assert!(chars(&long["blocks"][0]["text"]["text"]) < 200);
    }

    #[test]
    fn one_more_request_than_listed_is_said_so() {
        let answer = requests_answer(&listed(21), false);
        assert_eq!(answer["blocks"].as_array().map(Vec::len), Some(22));
        assert!(answer.to_string().contains("…and 1 older one:"));
        assert_eq!(
            requests_answer(&listed(20), false)["blocks"]
                .as_array()
                .map(Vec::len),
            Some(21)
        );
        // The newest page of a longer history: how many older ones is not known.
        let answer = requests_answer(&listed(20), true);
        assert_eq!(answer["blocks"].as_array().map(Vec::len), Some(22));
        assert_eq!(answer["text"], "You have more than 20 requests.");
        assert!(answer
            .to_string()
            .contains("…and older ones: `elevate list`"));
    }

    /// The stand-in's independent reading of Slack's limits takes what is built here.
    #[cfg(feature = "standin")]
    #[test]
    fn slack_takes_the_modal_and_the_answers() {
        use crate::standin::limits::{check_message_blocks, check_view};

        for config in [config(), large_config()] {
            for person in &config.people {
                if let Some(view) = request_modal(&config, person, "C0DEV") {
                    assert_eq!(check_view(&view), Ok(()), "{}", person.name);
                }
            }
        }
        for answer in [
            requests_answer(&[], false),
            requests_answer(&listed(25), false),
            requests_answer(&listed(20), true),
            requests_answer(&every_state(), false),
            ephemeral_answer(&FORGERY.repeat(1000)),
            help_answer(None),
            help_answer(Some(&FORGERY.repeat(1000))),
        ] {
            assert_eq!(check_message_blocks(&answer["blocks"]), Ok(()), "{answer}");
        }
    }
}
