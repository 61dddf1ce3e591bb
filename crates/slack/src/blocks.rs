//! Block Kit messages for a request: the announcement to the approvers (with Approve/Deny
//! buttons while it is PENDING) and the same message rewritten as the request moves on.
//! The plain-text `text` is always set: Slack shows it in notifications and screen readers.
//!
//! What users type (request reasons, decision reasons) and what failed (`failure`) is shown
//! in `plain_text` objects of its own, never inside elevate's `mrkdwn`: Slack does no
//! formatting, mention, link or emoji-code parsing in `plain_text` (with `emoji: false`), so
//! such text cannot bold itself, mention or link anyone, or read as part of elevate's status
//! line. It is also kept on one line and out of the fallback `text`.

use chrono::{DateTime, Utc};
use elevate_core::model::{Approval, SessionsEnded};
use elevate_core::rules::unsafe_in_text;
use elevate_core::{format_duration, Flow, Person, Request, State};
use serde::Serialize;
use serde_json::{json, Value};

use crate::interaction::{
    APPROVE_ACTION, APPROVE_EXTENSION_ACTION, DENY_ACTION, DENY_EXTENSION_ACTION,
    END_ACCESS_ACTION, REVIEW_ACTION,
};

/// `block_id` of a break-glass grant's Review button.
pub const REVIEW_BLOCK: &str = "review";
/// `block_id` of the Approve/Deny buttons.
pub const DECISION_BLOCK: &str = "decision";
/// `block_id` of the End access now button of a requester's direct message.
pub const END_ACCESS_BLOCK: &str = "end_access";

// Slack's limits are 3000 characters for a section's text and 2000 for a field; user text
// (reasons, failures) is cut well below so the whole message is never refused.
const MAX_SECTION_CHARS: usize = 2500;
const MAX_FIELD_CHARS: usize = 1500;
// Slack's limits for a confirm dialog's texts.
const MAX_CONFIRM_TEXT_CHARS: usize = 300;

/// A message body for `chat.postMessage` / `chat.update`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// How a request nobody answered was brought up again: the backups asked (and who they
/// are), or the approvers reminded.
fn reminded_line(request: &Request, flow: &Flow) -> Option<String> {
    let reminders = request.reminders.as_ref()?;
    if let Some(at) = reminders.backup_asked_at {
        let people = flow
            .reminders
            .as_ref()
            .map(|r| {
                r.backup_people
                    .iter()
                    .map(|p| escape(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return Some(format!(
            ":bell: No answer by {}: backup approvers asked ({people})",
            when(at)
        ));
    }
    reminders
        .reminded_at
        .map(|at| format!(":bell: Approvers reminded at {}", when(at)))
}

/// The message showing `request` in its current state. Buttons only while it is PENDING,
/// each carrying the request id as its `value`.
pub fn request_message(request: &Request, flow: &Flow, requester: &Person) -> Message {
    let mut blocks = vec![
        section(format!(
            ":key: *Access request* from <@{}> ({})",
            escape(&requester.slack_id),
            escape(&requester.name)
        )),
        json!({
            "type": "section",
            "fields": fields(request, flow, requester),
        }),
        section("*Reason*".to_owned()),
        plain_section(non_empty(&request.reason), MAX_SECTION_CHARS),
        section(state_line(request)),
    ];
    if let Some((label, text)) = said(request) {
        blocks.push(json!({
            "type": "context",
            "elements": [
                { "type": "mrkdwn", "text": label },
                plain_text(&text, MAX_FIELD_CHARS),
            ],
        }));
    }
    if let Some(line) = reminded_line(request, flow) {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": line }],
        }));
    }
    if request.state == State::Pending {
        blocks.push(json!({
            "type": "actions",
            "block_id": DECISION_BLOCK,
            "elements": [
                button("Approve", APPROVE_ACTION, "primary", request),
                button("Deny", DENY_ACTION, "danger", request),
            ],
        }));
    }
    if let (State::Active, Some(extension)) = (request.state, &request.extension) {
        blocks.push(section(format!(
            ":hourglass_flowing_sand: *Extension asked*: {} more{}",
            format_duration(extension.by),
            escape(&progress(request.approvals_required, &extension.approvals))
        )));
        blocks.push(json!({
            "type": "context",
            "elements": [
                { "type": "mrkdwn", "text": "Why:" },
                plain_text(non_empty(&extension.reason), MAX_FIELD_CHARS),
            ],
        }));
        blocks.push(json!({
            "type": "actions",
            "block_id": DECISION_BLOCK,
            "elements": [
                button("Approve extension", APPROVE_EXTENSION_ACTION, "primary", request),
                button("Deny extension", DENY_EXTENSION_ACTION, "danger", request),
            ],
        }));
    }
    if let Some(review) = &request.break_glass {
        let by = |name: &str| escape(name);
        let banner = match (&review.reviewed_by, review.unreviewed) {
            (Some(name), false) => format!(
                ":white_check_mark: *Break-glass*, reviewed by {}{}",
                by(name),
                review.reviewed_at.map(|t| format!(" at {}", when(t))).unwrap_or_default()
            ),
            (Some(name), true) => format!(
                ":warning: *Break-glass*, UNREVIEWED by {}, reviewed late by {}",
                when(review.review_by),
                by(name)
            ),
            (None, true) => format!(
                ":rotating_light: *Break-glass*, UNREVIEWED: nobody reviewed it by {}",
                when(review.review_by)
            ),
            (None, false) => format!(
                ":rotating_light: *Break-glass*: active without an approver; an approver reviews it by {}",
                when(review.review_by)
            ),
        };
        blocks.insert(0, section(banner));
        // Once the access is granted (a review while it is being granted would hold that up).
        let granted = matches!(
            request.state,
            State::Active | State::Expired | State::Revoked | State::Failed
        );
        if review.awaits_review() && granted {
            blocks.push(json!({
                "type": "actions",
                "block_id": REVIEW_BLOCK,
                "elements": [button("Review", REVIEW_ACTION, "primary", request)],
            }));
        }
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": format!("Request `{}`", request.id) }],
    }));
    Message {
        text: fallback_text(request, requester),
        blocks,
    }
}

/// A direct or ephemeral message of `text`, which elevate composes and which may quote user
/// text (a denial's reason, an error): one `plain_text` section, and the same line as the
/// fallback `text` with Slack's control characters escaped (send it with `mrkdwn: false`).
pub fn notice(text: &str) -> Message {
    Message {
        text: escape(&truncate(&one_line(text), MAX_SECTION_CHARS)),
        blocks: vec![plain_section(text, MAX_SECTION_CHARS)],
    }
}

/// [`notice`] of `text` about `request`, sent to its requester. While the request is ACTIVE
/// it carries an End access now button (with a confirmation, as ending cannot be undone), so
/// whoever no longer needs the access can give it back from the message that told them.
pub fn notice_about(text: &str, request: &Request) -> Message {
    let mut message = notice(text);
    if request.state == State::Active {
        let mut end = button("End access now", END_ACCESS_ACTION, "danger", request);
        end["confirm"] = json!({
            "title": { "type": "plain_text", "text": "End access now?" },
            "text": {
                "type": "plain_text",
                "text": fit(
                    &format!(
                        "Your {} access on {} ends at once, before its expiry. To use it \
                         again, request it again.",
                        request.flow,
                        request.target_label()
                    ),
                    MAX_CONFIRM_TEXT_CHARS,
                ),
                "emoji": false,
            },
            "confirm": { "type": "plain_text", "text": "End access" },
            "deny": { "type": "plain_text", "text": "Keep it" },
            "style": "danger",
        });
        message.blocks.push(json!({
            "type": "actions",
            "block_id": END_ACCESS_BLOCK,
            "elements": [end],
        }));
    }
    message
}

/// The one-line plain-text summary of `request` (the message's fallback `text`).
pub fn fallback_text(request: &Request, requester: &Person) -> String {
    let summary = format!(
        "{} requests {} on {} for {}: {}",
        requester.name,
        request.flow,
        request.target_label(),
        format_duration(request.duration),
        state_summary(request),
    );
    escape(&summary)
}

fn fields(request: &Request, flow: &Flow, requester: &Person) -> Vec<Value> {
    let text = |raw: &str| escape(&truncate(raw, MAX_FIELD_CHARS));
    let flow_text = match flow.description.trim() {
        "" => format!("`{}`", text(&flow.name)),
        description => format!("`{}` ({})", text(&flow.name), text(description)),
    };
    let mut fields = vec![
        (
            "Requester",
            format!(
                "<@{}> ({})",
                escape(&requester.slack_id),
                text(&requester.name)
            ),
        ),
        ("Flow", flow_text),
        ("Target", format!("`{}`", text(&request.target))),
    ];
    if let Some(account) = request.account() {
        fields.push(("Account", format!("`{}`", text(account))));
    }
    let duration = if request.extended.is_zero() {
        format_duration(request.duration)
    } else {
        format!(
            "{} (extended by {})",
            format_duration(request.duration),
            format_duration(request.extended)
        )
    };
    fields.push(("Duration", duration));
    if let (State::Active, Some(expires_at)) = (request.state, request.expires_at) {
        fields.push(("Expires", when(expires_at)));
    }
    fields
        .into_iter()
        .map(|(label, value)| json!({ "type": "mrkdwn", "text": format!("*{label}*\n{value}") }))
        .collect()
}

fn button(label: &str, action_id: &str, style: &str, request: &Request) -> Value {
    json!({
        "type": "button",
        "text": { "type": "plain_text", "text": label, "emoji": true },
        "action_id": action_id,
        "style": style,
        "value": request.id.as_str(),
    })
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

/// A section showing `text` (user text) as inert plain text.
fn plain_section(text: &str, max_chars: usize) -> Value {
    json!({ "type": "section", "text": plain_text(text, max_chars) })
}

/// A `plain_text` object of `text` on one line, cut to `max_chars`, with emoji codes such as
/// `:white_check_mark:` left as typed. Slack refuses an empty text, so one is never made.
fn plain_text(text: &str, max_chars: usize) -> Value {
    let line = one_line(text);
    let line = if line.is_empty() {
        "-".to_owned()
    } else {
        line
    };
    json!({ "type": "plain_text", "text": truncate(&line, max_chars), "emoji": false })
}

/// The user text that goes with the request's state, with its label: the approver's reason
/// of an approval or denial, the error of a failure.
fn said(request: &Request) -> Option<(&'static str, String)> {
    let given = || {
        request
            .decision_reason
            .as_deref()
            .map(one_line)
            .filter(|why| !why.is_empty())
    };
    match request.state {
        State::Approved | State::Denied => given().map(|why| ("Reason given:", why)),
        State::Failed => Some((
            "Error:",
            request
                .failure
                .as_deref()
                .map(one_line)
                .filter(|error| !error.is_empty())
                .unwrap_or_else(|| "unknown error".to_owned()),
        )),
        _ => None,
    }
}

/// The state in words, with who and when, for the state line and the fallback text: elevate's
/// own words and names from elevate.toml only, never user text (see [`said`]).
fn state_summary(request: &Request) -> String {
    let by = |who: &Option<String>| match who {
        Some(name) => format!(" by {name}"),
        None => String::new(),
    };
    let at = |t: Option<DateTime<Utc>>| t.map(|t| format!(" at {}", when(t))).unwrap_or_default();
    // Said only when they were ended (the target names roles and no other grant keeps them).
    let sessions = |request: &Request| match request.sessions_ended {
        Some(SessionsEnded::Person) => ", sessions ended",
        Some(SessionsEnded::AllSessions) => {
            ", sessions ended (every session of the role before now)"
        }
        None => "",
    };
    let approved_by = || {
        if let Some(decider) = request.decided_automatically() {
            format!(" automatically by {decider}")
        } else if request.approvals.len() > 1 {
            let names: Vec<&str> = request.approvals.iter().map(|a| a.by.as_str()).collect();
            format!(" by {}", names.join(" and "))
        } else {
            by(&request.decided_by)
        }
    };
    let approval = || format!("approved{}{}", approved_by(), at(request.decided_at));
    let state = request.state;
    match state {
        State::Pending if request.approvals_required > 1 => format!(
            "{state}{}, waiting for approvers until {}",
            progress(request.approvals_required, &request.approvals),
            when(request.pending_until)
        ),
        State::Pending => format!(
            "{state}, waiting for an approver until {}",
            when(request.pending_until)
        ),
        State::Approved => format!(
            "{state}{}{}, granting access",
            approved_by(),
            at(request.decided_at)
        ),
        State::Active => match request.expires_at {
            Some(expires_at) => format!("{state} until {} ({})", when(expires_at), approval()),
            None => format!("{state} ({})", approval()),
        },
        State::Expired => format!(
            "{state}{}, access removed{}",
            at(request.ended_at),
            sessions(request)
        ),
        State::Revoked => format!(
            "{state}{}{}, access removed{}",
            by(&request.ended_by),
            at(request.ended_at),
            sessions(request)
        ),
        State::Denied => format!(
            "{state}{}{}",
            by(&request.decided_by),
            at(request.decided_at)
        ),
        State::Cancelled => format!(
            "{state}{}{}",
            by(&request.decided_by),
            at(request.decided_at)
        ),
        State::TimedOut => format!("{state}{}, nobody answered", at(request.decided_at)),
        State::Failed => state.to_string(),
    }
}

/// `, 1 of 2 approved (bob)`: how far the approvals of a request or extension are.
fn progress(required: u32, approvals: &[Approval]) -> String {
    let names: Vec<&str> = approvals.iter().map(|a| a.by.as_str()).collect();
    let who = if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    };
    format!(", {} of {} approved{who}", approvals.len(), required.max(1))
}

/// The emoji that goes with `state` wherever elevate shows it.
pub(crate) fn state_icon(state: State) -> &'static str {
    match state {
        State::Pending => ":hourglass_flowing_sand:",
        State::Approved => ":white_check_mark:",
        State::Active => ":unlock:",
        State::Expired | State::Revoked => ":lock:",
        State::Denied => ":no_entry:",
        State::Cancelled => ":heavy_multiplication_x:",
        State::TimedOut => ":alarm_clock:",
        State::Failed => ":warning:",
    }
}

fn state_line(request: &Request) -> String {
    let icon = state_icon(request.state);
    let summary = escape(&state_summary(request));
    // Bold the state name, which always leads the summary.
    let name = request.state.as_str();
    let rest = summary.strip_prefix(name).unwrap_or(&summary);
    format!("{icon} *{name}*{rest}")
}

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn non_empty(text: &str) -> &str {
    if text.trim().is_empty() {
        "(none given)"
    } else {
        text
    }
}

/// `text` on one line: line breaks, other control characters and bidirectional formatting
/// characters separate words like spaces do, and every run of them and of white space shows as
/// one space, so text shown inside a line cannot start a line of its own or reorder what
/// follows it. Reasons with them are refused since `rules::check_reason`; older reasons and
/// error texts may still hold them.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || unsafe_in_text(c).is_some())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `text` in at most `max_chars` characters (a Slack field limit), a cut marked with `…`.
pub(crate) fn fit(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        truncate(text, max_chars.saturating_sub(1))
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters; user text must not inject
/// mentions or links.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use elevate_core::model::{By, Terms};
    use elevate_core::{
        apply, open, Actor, Approvers, Command, NewRequest, RequestId, Target, TargetKind,
    };

    use super::*;

    pub(crate) fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    pub(crate) fn alice() -> Person {
        Person {
            name: "alice".into(),
            iam_user: "alice".into(),
            slack_id: "U0ALICE01".into(),
            email: "alice@example.com".into(),
        }
    }

    pub(crate) fn flow() -> Flow {
        Flow {
            name: "infra_access".into(),
            description: "Assume SymDemoEscalated".into(),
            targets: vec![],
            approvers: Approvers {
                channel: "C0APPROVALS".into(),
                people: vec!["bob".into()],
                groups: vec![],
            },
            max_duration: Duration::from_secs(4 * 3600),
            allowed_durations: None,
            reason_required: true,
            allow_self_approval: false,
            pending_timeout: Duration::from_secs(1800),
            requesters: None,
            requester_groups: vec![],
            standing_members: vec![],
            approvals_required: 1,
            auto_approve: vec![],
            hook: None,
            break_glass: None,
            reminders: None,
        }
    }

    pub(crate) fn pending(reason: &str) -> Request {
        let new = NewRequest {
            flow: "infra_access".into(),
            target: "admins".into(),
            requester: "alice".into(),
            reason: reason.into(),
            duration: Duration::from_secs(5400),
            pending_timeout: Duration::from_secs(1800),
            approvals_required: 1,
            terms: Terms {
                target: Target {
                    name: "admins".into(),
                    kind: TargetKind::IamGroup {
                        group: "SymDemoAdmins".into(),
                        roles: Vec::new(),
                    },
                },
                person: alice(),
            },
        };
        open(
            RequestId::generate(at(0)),
            new,
            "arn:aws:iam::123456789012:user/alice",
            at(0),
        )
        .0
    }

    /// `actor` with the principal behind it: people click in Slack (their Slack user id is
    /// `U0<NAME>01`, as alice's), elevate's components run as their functions.
    fn by(actor: &Actor) -> By {
        match actor {
            Actor::Person(name) => {
                By::person(name, format!("slack:T0ELEVATE/U0{}01", name.to_uppercase()))
            }
            Actor::System(component) => {
                By::system(component, format!("lambda:elevate-{component}"))
            }
        }
    }

    fn step(request: &Request, command: Command, actor: Actor, secs: i64) -> Request {
        apply(request, command, &by(&actor), at(secs))
            .expect("transition")
            .request
    }

    fn bob() -> Actor {
        Actor::person("bob")
    }

    fn sys() -> Actor {
        Actor::system("test")
    }

    /// The request in every state, reached through the real state machine.
    pub(crate) fn every_state() -> Vec<Request> {
        let p = pending("debug prod incident #42");
        let approved = step(
            &p,
            Command::Approve {
                reason: Some("ok, go".into()),
            },
            bob(),
            60,
        );
        let active = step(&approved, Command::Activate, sys(), 61);
        vec![
            p.clone(),
            approved.clone(),
            active.clone(),
            step(&active, Command::Expire, sys(), 61 + 5400),
            step(&active, Command::Revoke { reason: None }, bob(), 600),
            step(
                &p,
                Command::Deny {
                    reason: Some("not during the freeze".into()),
                },
                bob(),
                60,
            ),
            step(&p, Command::Cancel, Actor::person("alice"), 30),
            step(&p, Command::TimeOut, sys(), 1800),
            step(
                &approved,
                Command::Fail {
                    error: "AccessDenied: iam:AddUserToGroup".into(),
                },
                sys(),
                90,
            ),
        ]
    }

    fn buttons(message: &Message) -> Vec<&Value> {
        message
            .blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().into_iter().flatten())
            .collect()
    }

    fn all_text(message: &Message) -> String {
        serde_json::to_string(&message.blocks).expect("json")
    }

    #[test]
    fn pending_request_has_approve_and_deny_buttons_carrying_its_id() {
        let request = pending("debug prod incident #42");
        let message = request_message(&request, &flow(), &alice());
        let buttons = buttons(&message);
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["action_id"], "approve");
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[0]["text"]["text"], "Approve");
        assert_eq!(buttons[1]["action_id"], "deny");
        assert_eq!(buttons[1]["style"], "danger");
        assert_eq!(buttons[1]["text"]["text"], "Deny");
        for button in buttons {
            assert_eq!(button["value"], request.id.as_str());
            assert_eq!(button["type"], "button");
        }
        let text = all_text(&message);
        for expected in [
            "<@U0ALICE01> (alice)",
            "infra_access",
            "admins",
            "1h30m",
            "debug prod incident #42",
            "*PENDING*",
            "2023-11-14 22:43 UTC",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert!(message
            .text
            .contains("alice requests infra_access on admins for 1h30m"));
        assert!(message.text.contains("PENDING"));
    }

    #[test]
    fn an_ended_grant_says_sessions_ended_only_when_they_were() {
        let expired = every_state()
            .into_iter()
            .find(|r| r.state == State::Expired)
            .expect("expired");
        let text = |request: &Request| all_text(&request_message(request, &flow(), &alice()));
        assert!(!text(&expired).contains("sessions"), "{}", text(&expired));
        let mut ended = expired.clone();
        ended.sessions_ended = Some(SessionsEnded::Person);
        assert!(text(&ended).contains("access removed, sessions ended"));
        ended.sessions_ended = Some(SessionsEnded::AllSessions);
        assert!(text(&ended).contains("every session of the role"));
    }

    #[test]
    fn decided_requests_have_no_buttons_and_say_what_happened() {
        let expectations: [(&str, &[&str]); 9] = [
            ("PENDING", &["waiting for an approver"]),
            (
                "APPROVED",
                &[
                    "by bob",
                    "2023-11-14 22:14 UTC",
                    "ok, go",
                    "granting access",
                ],
            ),
            (
                "ACTIVE",
                &["until 2023-11-14 23:44 UTC", "approved by bob", "*Expires*"],
            ),
            ("EXPIRED", &["2023-11-14 23:44 UTC", "access removed"]),
            (
                "REVOKED",
                &["by bob", "2023-11-14 22:23 UTC", "access removed"],
            ),
            ("DENIED", &["by bob", "not during the freeze"]),
            ("CANCELLED", &["by alice", "2023-11-14 22:13 UTC"]),
            ("TIMED_OUT", &["nobody answered", "2023-11-14 22:43 UTC"]),
            ("FAILED", &["AccessDenied: iam:AddUserToGroup"]),
        ];
        for (request, (state, phrases)) in every_state().iter().zip(expectations) {
            assert_eq!(request.state.as_str(), state);
            let message = request_message(request, &flow(), &alice());
            let text = all_text(&message);
            assert_eq!(
                buttons(&message).is_empty(),
                state != "PENDING",
                "buttons only while PENDING ({state})"
            );
            assert!(text.contains(&format!("*{state}*")), "{state}: {text}");
            assert!(!message.text.is_empty());
            assert!(message.text.contains(state), "{state}: {}", message.text);
            for phrase in phrases {
                assert!(
                    text.contains(phrase),
                    "{state}: `{phrase}` missing from {text}"
                );
            }
            // Only an active grant shows an expiry field.
            assert_eq!(text.contains("*Expires*"), state == "ACTIVE", "{state}");
            assert!(text.contains(request.id.as_str()));
        }
    }

    /// A reason that, were it markup, would bold a fake status, mention bob and hide a link.
    const FORGERY: &str = "ok\n*APPROVED* by <@U0BOB0001> <https://evil.example|click>";

    /// Every text object of the message (section texts and fields, context elements).
    fn text_objects(message: &Message) -> Vec<&Value> {
        let mut objects = Vec::new();
        for block in &message.blocks {
            objects.extend(block.get("text"));
            for list in ["fields", "elements"] {
                for item in block[list].as_array().into_iter().flatten() {
                    if item["type"] == "plain_text" || item["type"] == "mrkdwn" {
                        objects.push(item);
                    }
                }
            }
        }
        objects
    }

    /// Checks that `message` shows `typed` (already on one line) only as inert plain text, in a
    /// text object of its own, and nowhere as markup or in the fallback text.
    fn assert_inert(message: &Message, typed: &str) {
        let objects = text_objects(message);
        let holding: Vec<_> = objects
            .iter()
            .filter(|o| {
                o["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("evil.example"))
            })
            .collect();
        assert_eq!(holding.len(), 1, "shown once: {objects:#?}");
        assert_eq!(holding[0]["type"], "plain_text");
        assert_eq!(holding[0]["emoji"], false);
        assert_eq!(holding[0]["text"], typed, "its own element, as typed");
        for object in objects.iter().filter(|o| o["type"] == "mrkdwn") {
            let text = object["text"].as_str().unwrap_or_default();
            assert!(!text.contains("evil.example"), "in markup: {text}");
            assert!(!text.contains("U0BOB0001"), "in markup: {text}");
        }
        assert!(!message.text.contains("evil.example"), "{}", message.text);
        assert!(!message.text.contains("U0BOB0001"), "{}", message.text);
    }

    #[test]
    fn a_forged_request_reason_is_inert_plain_text_on_one_line() {
        let request = pending(FORGERY);
        let message = request_message(&request, &flow(), &alice());
        assert_inert(
            &message,
            "ok *APPROVED* by <@U0BOB0001> <https://evil.example|click>",
        );
        // The state line is elevate's alone, and the requester mention is real markup.
        let state = state_line(&request);
        assert!(
            state.starts_with(":hourglass_flowing_sand: *PENDING*"),
            "{state}"
        );
        assert!(all_text(&message).contains("<@U0ALICE01>"));
    }

    #[test]
    fn forged_decision_reasons_and_failures_are_inert_plain_text_beside_the_state() {
        let p = pending("debug prod incident #42");
        let forged = || Some(FORGERY.to_owned());
        let approved = step(&p, Command::Approve { reason: forged() }, bob(), 60);
        let denied = step(&p, Command::Deny { reason: forged() }, bob(), 60);
        let failed = step(
            &approved,
            Command::Fail {
                error: FORGERY.to_owned(),
            },
            sys(),
            90,
        );
        for request in [approved, denied, failed] {
            let message = request_message(&request, &flow(), &alice());
            assert_inert(
                &message,
                "ok *APPROVED* by <@U0BOB0001> <https://evil.example|click>",
            );
            let state = state_line(&request);
            assert!(!state.contains("evil.example"), "{state}");
            // The text sits in a context block of its own, after elevate's label.
            let context = message
                .blocks
                .iter()
                .find(|b| b["type"] == "context" && b["elements"][1]["type"] == "plain_text")
                .expect("context with the user text");
            assert_eq!(context["elements"][0]["type"], "mrkdwn");
            assert!(matches!(
                context["elements"][0]["text"].as_str(),
                Some("Reason given:" | "Error:")
            ));
        }
    }

    #[test]
    fn notices_are_one_plain_text_line_with_an_escaped_fallback() {
        let message = notice(&format!("bob denied your infra_access request: {FORGERY}"));
        let line = "bob denied your infra_access request: ok *APPROVED* by <@U0BOB0001> \
                    <https://evil.example|click>";
        assert_eq!(message.blocks.len(), 1);
        assert_eq!(message.blocks[0]["text"]["type"], "plain_text");
        assert_eq!(message.blocks[0]["text"]["emoji"], false);
        assert_eq!(message.blocks[0]["text"]["text"], line);
        assert_eq!(
            message.text,
            "bob denied your infra_access request: ok *APPROVED* by &lt;@U0BOB0001&gt; \
             &lt;https://evil.example|click&gt;"
        );
        assert!(!message.text.contains('\n'));
    }

    #[test]
    fn one_line_collapses_breaks_controls_and_bidi_characters() {
        assert_eq!(one_line("a\nb"), "a b");
        assert_eq!(one_line("a\r\n\r\nb"), "a b");
        assert_eq!(one_line("a \u{2028} b\u{2029}c\u{85}d"), "a b c d");
        assert_eq!(one_line("x\u{202E}gnp.exe\u{202C}y"), "x gnp.exe y");
        assert_eq!(
            one_line("\u{200F}\u{061C}\u{2066}\ttab\u{7F}\u{1B}[31m"),
            "tab [31m"
        );
        assert_eq!(one_line("\n\n"), "");
        assert_eq!(one_line("plain text, kept"), "plain text, kept");
    }

    #[test]
    fn user_text_in_mrkdwn_is_still_escaped() {
        assert_eq!(
            escape("<!channel> & <x>"),
            "&lt;!channel&gt; &amp; &lt;x&gt;"
        );
    }

    #[test]
    fn long_reasons_are_cut_below_slack_limits() {
        let long = "é".repeat(10_000);
        let mut request = pending(&long);
        request.state = State::Failed;
        request.failure = Some(long.clone());
        let message = request_message(&request, &flow(), &alice());
        for object in text_objects(&message) {
            let chars = object["text"].as_str().unwrap_or_default().chars().count();
            assert!((1..=3000).contains(&chars), "text of {chars} chars");
        }
        assert!(all_text(&message).contains('…'));
        let told = notice(&long);
        assert!(told.text.chars().count() <= 3000);
        let chars = text_objects(&told)[0]["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .count();
        assert!((1..=3000).contains(&chars), "text of {chars} chars");
    }

    #[test]
    fn the_end_access_button_is_only_on_active_requests() {
        let text = "Your access to admins is ACTIVE until 2023-11-14 23:44 UTC";
        for request in every_state() {
            let message = notice_about(text, &request);
            assert_eq!(message.text, notice(text).text);
            assert_eq!(message.blocks[0], notice(text).blocks[0]);
            let buttons = buttons(&message);
            if request.state != State::Active {
                assert!(buttons.is_empty(), "{}", request.state);
                assert_eq!(message.blocks.len(), 1);
                continue;
            }
            assert_eq!(buttons.len(), 1);
            let button = buttons[0];
            assert_eq!(button["action_id"], END_ACCESS_ACTION);
            assert_eq!(button["value"], request.id.as_str());
            assert_eq!(button["style"], "danger");
            assert_eq!(button["text"]["text"], "End access now");
            assert_eq!(message.blocks[1]["block_id"], END_ACCESS_BLOCK);
            let confirm = &button["confirm"];
            assert_eq!(confirm["title"]["text"], "End access now?");
            assert_eq!(confirm["confirm"]["text"], "End access");
            assert_eq!(confirm["deny"]["text"], "Keep it");
            let says = confirm["text"]["text"].as_str().unwrap_or_default();
            assert!(says.contains("ends at once"), "{says}");
            assert!(
                says.contains("infra_access") && says.contains("admins"),
                "{says}"
            );
            // Slack's limits of a confirm dialog.
            for (field, max) in [("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)] {
                let chars = confirm[field]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .count();
                assert!((1..=max).contains(&chars), "{field}: {chars} chars");
                assert_eq!(confirm[field]["type"], "plain_text");
            }

            // Clicking it asks to end that request's access.
            let click = crate::interaction::block_actions_body(
                "U0ALICE01",
                "alice",
                "D0ALICEDM",
                "1700000000.000300",
                button["action_id"].as_str().unwrap_or_default(),
                button["value"].as_str().unwrap_or_default(),
            );
            let clicked = crate::Interaction::parse(click.as_bytes())
                .and_then(|i| i.clicked())
                .expect("click");
            assert_eq!(clicked, crate::Clicked::EndAccess(request.id.clone()));
        }
    }

    #[test]
    fn the_end_access_confirmation_stays_within_slack_limits() {
        let mut active = every_state()
            .into_iter()
            .find(|r| r.state == State::Active)
            .expect("active");
        active.target = "t".repeat(1000).into();
        let message = notice_about("ACTIVE", &active);
        let text = buttons(&message)[0]["confirm"]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .count();
        assert_eq!(text, 300);
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
    }
}
