//! Flow rules: who may request what for how long, and who may decide.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::config::{AutoApproval, Flow, Person, Target, TargetKind, Window};
use crate::machine::NewRequest;
use crate::model::{format_duration, Request, State, Terms};
use crate::names::{FlowName, PersonName, TargetName};

/// A request or decision the flow does not allow. Nothing is written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("flow `{flow}` has no target `{target}` (choose one of: {choices})")]
    UnknownTarget {
        flow: FlowName,
        target: TargetName,
        choices: String,
    },
    #[error("flow `{flow}` has several targets; choose one of: {choices}")]
    TargetRequired { flow: FlowName, choices: String },
    #[error("target `{target}` may be granted in several AWS accounts; name the account (one of: {choices})")]
    AccountRequired { target: TargetName, choices: String },
    #[error("target `{target}` is not granted in account `{account}` (choose one of: {choices})")]
    UnknownAccount {
        target: TargetName,
        account: String,
        choices: String,
    },
    #[error("target `{target}` ({kind}) is not granted per AWS account; leave the account out")]
    AccountNotApplicable {
        target: TargetName,
        kind: &'static str,
    },
    #[error("duration must be longer than zero")]
    ZeroDuration,
    #[error("duration {asked} is over the cap of {max} for flow `{flow}`")]
    DurationOverCap {
        flow: FlowName,
        asked: String,
        max: String,
    },
    #[error("duration {asked} is not allowed for flow `{flow}` (choose one of: {allowed})")]
    DurationNotAllowed {
        flow: FlowName,
        asked: String,
        allowed: String,
    },
    #[error("flow `{flow}` requires a reason")]
    ReasonRequired { flow: FlowName },
    #[error("reason is {len} characters long; keep it under {MAX_REASON_LEN}")]
    ReasonTooLong { len: usize },
    #[error(
        "reason contains {what} ({code_point}) at character {position}; write it as one line \
         without control characters or bidirectional formatting characters"
    )]
    ReasonInvalidCharacters {
        /// "a line break", "a control character" or "a bidirectional formatting character".
        what: &'static str,
        /// `U+XXXX`.
        code_point: String,
        /// 1-based, in characters.
        position: usize,
    },
    #[error("{person} may not request flow `{flow}`")]
    NotARequester { person: PersonName, flow: FlowName },
    #[error("{person} is not an approver of flow `{flow}`")]
    NotAnApprover { person: PersonName, flow: FlowName },
    #[error("{person} may not approve or deny their own request")]
    SelfApproval { person: PersonName },
    #[error("{email} ({person}) is not a user of the Identity Store, so target `{target}` cannot be granted to them (looked up by user name and by email)")]
    NotInDirectory {
        person: PersonName,
        email: String,
        target: TargetName,
    },
    #[error(
        "extending by {by} makes the grant {total} long, over the cap of {max} for flow `{flow}`"
    )]
    ExtensionOverCap {
        flow: FlowName,
        by: String,
        total: String,
        max: String,
    },
    #[error("flow `{flow}` has no break-glass (it needs [flows.break_glass] in elevate.toml); request it normally")]
    BreakGlassNotAllowed { flow: FlowName },
    #[error("a break-glass grant of flow `{flow}` lasts at most {max}; {asked} was asked for")]
    BreakGlassOverCap {
        flow: FlowName,
        asked: String,
        max: String,
    },
    #[error("a break-glass request of flow `{flow}` needs a reason")]
    BreakGlassReasonRequired { flow: FlowName },
    #[error("your break-glass grant {request} of flow `{flow}` is still open; it ends (or an approver reviews it) before you break the glass again")]
    BreakGlassInUse { flow: FlowName, request: String },
    #[error("{person} is not listed, and flow `{flow}` names Identity Store groups that do not exist: {groups} (fix approvers.groups or requesters.groups in elevate.toml)")]
    UnknownGroup {
        person: PersonName,
        flow: FlowName,
        groups: String,
    },
}

impl RuleError {
    /// Stable machine-readable code, used as the `error` field of HTTP answers.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::UnknownTarget { .. } => "unknown_target",
            RuleError::TargetRequired { .. } => "target_required",
            RuleError::AccountRequired { .. } => "account_required",
            RuleError::UnknownAccount { .. } => "unknown_account",
            RuleError::AccountNotApplicable { .. } => "account_not_applicable",
            RuleError::ZeroDuration => "invalid_duration",
            RuleError::DurationOverCap { .. } => "duration_over_cap",
            RuleError::DurationNotAllowed { .. } => "duration_not_allowed",
            RuleError::ReasonRequired { .. } => "reason_required",
            RuleError::ReasonTooLong { .. } => "reason_too_long",
            RuleError::ReasonInvalidCharacters { .. } => "reason_invalid_characters",
            RuleError::NotARequester { .. } => "not_a_requester",
            RuleError::NotAnApprover { .. } => "not_an_approver",
            RuleError::SelfApproval { .. } => "self_approval",
            RuleError::NotInDirectory { .. } => "unknown_directory_user",
            RuleError::UnknownGroup { .. } => "unknown_group",
            RuleError::ExtensionOverCap { .. } => "extension_over_cap",
            RuleError::BreakGlassNotAllowed { .. } => "break_glass_not_allowed",
            RuleError::BreakGlassOverCap { .. } => "duration_over_cap",
            RuleError::BreakGlassReasonRequired { .. } => "reason_required",
            RuleError::BreakGlassInUse { .. } => "break_glass_in_use",
        }
    }
}

/// Longest reason accepted; longer reasons are refused rather than cut.
pub const MAX_REASON_LEN: usize = 1000;

/// Checks a reason (of a request, an approval, a denial or a revocation) as others will see it:
/// at most [`MAX_REASON_LEN`] characters, one line, nothing invisible that reorders the text.
///
/// Reasons are shown on one line in Slack, in the CLI's tables and in direct messages, so a
/// line break (`\n` included) is refused: it is the one character that would let a reason
/// start a line of its own that reads like elevate's ("APPROVED by bob"). Other C0/C1
/// control characters and DEL have no place in a sentence and can rewrite a terminal. The
/// Unicode bidirectional overrides, isolates and marks make text display in another order
/// than it is stored, so what an approver reads would not be what the audit trail holds.
pub fn check_reason(reason: &str) -> Result<(), RuleError> {
    let len = reason.chars().count();
    if len > MAX_REASON_LEN {
        return Err(RuleError::ReasonTooLong { len });
    }
    match reason
        .chars()
        .enumerate()
        .find_map(|(i, c)| unsafe_in_text(c).map(|what| (i, c, what)))
    {
        Some((i, c, what)) => Err(RuleError::ReasonInvalidCharacters {
            what,
            code_point: format!("U+{:04X}", u32::from(c)),
            position: i + 1,
        }),
        None => Ok(()),
    }
}

/// What `c` is when it may not be part of text that people read on one line (a line break, a
/// control character, a bidirectional formatting character), `None` when it may. Renderers
/// use it too, for text stored before reasons were checked and for error texts.
pub fn unsafe_in_text(c: char) -> Option<&'static str> {
    match c {
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
            Some("a line break")
        }
        c if c.is_control() => Some("a control character"),
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}' => Some("a bidirectional formatting character"),
        _ => None,
    }
}

impl Target {
    /// The target as one grant gets it: a permission set target narrowed to the account asked
    /// for (or to its only account), any other target as it is. An account that the target
    /// does not list, or one named for a target that is not granted per account, is refused.
    pub fn in_account(&self, account: Option<&str>) -> Result<Target, RuleError> {
        let account = account.map(str::trim).filter(|a| !a.is_empty());
        let TargetKind::SsoPermissionSet {
            permission_set_arn,
            accounts,
            end_sessions,
        } = &self.kind
        else {
            return match account {
                None => Ok(self.clone()),
                Some(_) => Err(RuleError::AccountNotApplicable {
                    target: self.name.clone(),
                    kind: self.kind.type_name(),
                }),
            };
        };
        let chosen =
            match (account, accounts.as_slice()) {
                (None, [only]) => only,
                (None, _) => {
                    return Err(RuleError::AccountRequired {
                        target: self.name.clone(),
                        choices: accounts.join(", "),
                    })
                }
                (Some(asked), _) => accounts.iter().find(|a| *a == asked).ok_or_else(|| {
                    RuleError::UnknownAccount {
                        target: self.name.clone(),
                        account: asked.to_owned(),
                        choices: accounts.join(", "),
                    }
                })?,
            };
        Ok(Target {
            name: self.name.clone(),
            kind: TargetKind::SsoPermissionSet {
                permission_set_arn: permission_set_arn.clone(),
                accounts: vec![chosen.clone()],
                end_sessions: *end_sessions,
            },
        })
    }

    /// Whether a grant's `terms` target is still what this configured target gives: the same
    /// target, or the same permission set in one of the accounts it still lists.
    pub fn still_gives(&self, granted: &Target) -> bool {
        self.in_account(granted.kind.account())
            .is_ok_and(|narrowed| narrowed == *granted)
    }
}

impl Flow {
    /// The target a request names, or the flow's only target when it names none.
    pub fn target(&self, name: Option<&str>) -> Result<&Target, RuleError> {
        let choices = || {
            self.targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(name) => self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
                RuleError::UnknownTarget {
                    flow: self.name.clone(),
                    target: name.into(),
                    choices: choices(),
                }
            }),
            None if self.targets.len() == 1 => Ok(&self.targets[0]),
            None => Err(RuleError::TargetRequired {
                flow: self.name.clone(),
                choices: choices(),
            }),
        }
    }

    /// Checks a new request against the flow and returns what to open. `account` is the AWS
    /// account asked for, which a permission set target granted in several accounts needs;
    /// the grant's terms name only that account. Who may request is decided by name only:
    /// a member of `requesters.groups` is refused here, so the use cases ask the directory and
    /// call [`Flow::check_requester`] and [`Flow::check_terms`] instead.
    pub fn check_request(
        &self,
        requester: &Person,
        target: Option<&str>,
        account: Option<&str>,
        duration: Duration,
        reason: &str,
    ) -> Result<NewRequest, RuleError> {
        self.check_requester(requester, &[])?;
        self.check_terms(requester, target, account, duration, reason)
    }

    /// [`Flow::check_request`] but for who may request, which [`Flow::check_requester`]
    /// checks (with the person's directory groups).
    pub fn check_terms(
        &self,
        requester: &Person,
        target: Option<&str>,
        account: Option<&str>,
        duration: Duration,
        reason: &str,
    ) -> Result<NewRequest, RuleError> {
        let target = self.target(target)?.in_account(account)?;
        if duration.is_zero() {
            return Err(RuleError::ZeroDuration);
        }
        if duration > self.max_duration {
            return Err(RuleError::DurationOverCap {
                flow: self.name.clone(),
                asked: format_duration(duration),
                max: format_duration(self.max_duration),
            });
        }
        if let Some(allowed) = &self.allowed_durations {
            if !allowed.contains(&duration) {
                return Err(RuleError::DurationNotAllowed {
                    flow: self.name.clone(),
                    asked: format_duration(duration),
                    allowed: allowed
                        .iter()
                        .map(|d| format_duration(*d))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let reason = reason.trim();
        if self.reason_required && reason.is_empty() {
            return Err(RuleError::ReasonRequired {
                flow: self.name.clone(),
            });
        }
        check_reason(reason)?;
        Ok(NewRequest {
            flow: self.name.clone(),
            target: target.name.clone(),
            requester: requester.name.clone(),
            reason: reason.to_owned(),
            duration,
            pending_timeout: self.pending_timeout,
            approvals_required: self.approvals_required,
            terms: Terms {
                target,
                person: requester.clone(),
            },
        })
    }

    /// Whether `person` may request this flow: everyone when it names no requesters, else
    /// the people it lists and the members of its `requesters.groups`. `groups` are the
    /// Identity Store groups the person is in (of those the flow names), asked just now.
    pub fn check_requester(&self, person: &Person, groups: &[String]) -> Result<(), RuleError> {
        let admitted = match &self.requesters {
            None => true,
            Some(people) => {
                people.contains(&person.name)
                    || self.requester_groups.iter().any(|g| groups.contains(g))
            }
        };
        if admitted {
            Ok(())
        } else {
            Err(RuleError::NotARequester {
                person: person.name.clone(),
                flow: self.name.clone(),
            })
        }
    }

    /// The groups the directory must be asked about to know whether `person` may request:
    /// none when their name decides it.
    pub fn requester_groups_to_ask(&self, person: &str) -> &[String] {
        match &self.requesters {
            Some(people) if !people.iter().any(|p| p == person) => &self.requester_groups,
            _ => &[],
        }
    }

    /// Whether `person` is an approver: listed in `approvers.people`, or a member of one of
    /// `approvers.groups` (`groups`: theirs, of those the flow names, asked just now).
    pub fn is_approver(&self, person: &str, groups: &[String]) -> bool {
        self.approvers.people.iter().any(|p| p == person)
            || self.approvers.groups.iter().any(|g| groups.contains(g))
    }

    /// The groups the directory must be asked about to know whether `person` is an approver:
    /// none when their name decides it.
    pub fn approver_groups_to_ask(&self, person: &str) -> &[String] {
        if self.approvers.people.iter().any(|p| p == person) {
            &[]
        } else {
            &self.approvers.groups
        }
    }

    /// Whether `person` is one of the flow's backup approvers and `request` is PENDING with
    /// its backups asked (`[flows.reminders]`): then they may decide it too.
    pub fn is_backup_for(&self, person: &str, request: &Request) -> bool {
        request.state == State::Pending && request.backups_asked() && self.is_backup(person)
    }

    /// Whether `person` is among the flow's backup approvers, whatever the request.
    pub fn is_backup(&self, person: &str) -> bool {
        self.reminders
            .as_ref()
            .is_some_and(|r| r.backup_people.iter().any(|p| p == person))
    }

    /// Whether `person` (in the directory `groups`) may approve or deny `request`.
    pub fn check_decider(
        &self,
        person: &str,
        groups: &[String],
        request: &Request,
    ) -> Result<(), RuleError> {
        let approver = self.is_approver(person, groups);
        if !approver && !self.is_backup_for(person, request) {
            return Err(RuleError::NotAnApprover {
                person: person.into(),
                flow: self.name.clone(),
            });
        }
        // Several approvals are several people other than the requester, whatever the flow
        // says of self-approval now.
        // Nor is a break-glass grant reviewed by the one who used it.
        // Nor is a backup ever their own.
        if person == request.requester
            && (!self.allow_self_approval
                || !approver
                || request.approvals_required > 1
                || request.break_glass.is_some())
        {
            return Err(RuleError::SelfApproval {
                person: person.into(),
            });
        }
        Ok(())
    }

    /// Whether `person` (in the directory `groups`) may see a request of this flow: its
    /// requester or an approver.
    pub fn may_view(&self, person: &str, groups: &[String], request: &Request) -> bool {
        request.requester == person
            || self.is_approver(person, groups)
            || (self.is_backup(person) && request.backups_asked())
    }
}

impl Flow {
    /// The channel `request` is posted to: the one a hook or break-glass chose, else the
    /// approvers'.
    pub fn channel_for<'a>(&'a self, request: &'a Request) -> &'a str {
        request
            .channel
            .as_deref()
            .unwrap_or(&self.approvers.channel)
    }
}

/// What is due on a PENDING request nobody answered (`[flows.reminders]`, then its time-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nudge {
    /// Remind the approvers.
    Remind,
    /// Ask the backup approvers.
    AskBackup,
    /// Time the request out.
    TimeOut,
}

impl Flow {
    /// When `nudge` comes on `request`: its time-out, or `[flows.reminders]`'s time after it
    /// was made; `None` for a step the flow does not have, or that would come at or after the
    /// time-out.
    pub fn nudge_at(&self, request: &Request, nudge: Nudge) -> Option<DateTime<Utc>> {
        let after = |d: Option<Duration>| {
            d.map(|d| {
                request.created_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
            })
        };
        match nudge {
            Nudge::TimeOut => Some(request.pending_until),
            Nudge::Remind => after(self.reminders.as_ref()?.remind_after),
            Nudge::AskBackup => after(self.reminders.as_ref()?.backup_after),
        }
        .filter(|at| nudge == Nudge::TimeOut || *at < request.pending_until)
    }

    /// The steps of `[flows.reminders]` still to come on PENDING `request`, earliest first:
    /// each one the flow has before the time-out and not yet taken (a reminder is moot once
    /// the backups are asked).
    pub fn nudges_ahead(&self, request: &Request) -> Vec<(Nudge, DateTime<Utc>)> {
        let asked = request.backups_asked();
        let reminded = request
            .reminders
            .as_ref()
            .is_some_and(|r| r.reminded_at.is_some());
        let mut ahead: Vec<_> = [
            (Nudge::Remind, asked || reminded),
            (Nudge::AskBackup, asked),
        ]
        .into_iter()
        .filter(|(_, taken)| !taken)
        .filter_map(|(nudge, _)| Some((nudge, self.nudge_at(request, nudge)?)))
        .collect();
        ahead.sort_by_key(|(_, at)| *at);
        ahead
    }

    /// The next step due on PENDING `request` if nobody answers, and when: a reminder or the
    /// backups' turn not taken yet, else its time-out.
    pub fn next_nudge(&self, request: &Request) -> (Nudge, DateTime<Utc>) {
        self.nudges_ahead(request)
            .first()
            .copied()
            .unwrap_or((Nudge::TimeOut, request.pending_until))
    }

    /// The step due on PENDING `request` at `now`, if any: the latest one whose time has come
    /// (backups asked rather than a reminder first, when both are late).
    pub fn nudge_due(&self, request: &Request, now: DateTime<Utc>) -> Option<Nudge> {
        if now >= request.pending_until {
            return Some(Nudge::TimeOut);
        }
        self.nudges_ahead(request)
            .into_iter()
            .rev()
            .find(|(_, at)| *at <= now)
            .map(|(nudge, _)| nudge)
    }
}

impl Flow {
    /// Checks a break-glass request of this flow (its terms are checked as any request's):
    /// the flow allows break-glass, the duration is within its break-glass cap, and a reason
    /// is given whatever `reason_required` says.
    pub fn check_break_glass(
        &self,
        duration: Duration,
        reason: &str,
    ) -> Result<&crate::config::BreakGlassPolicy, RuleError> {
        let policy = self
            .break_glass
            .as_ref()
            .ok_or_else(|| RuleError::BreakGlassNotAllowed {
                flow: self.name.clone(),
            })?;
        if duration > policy.max_duration {
            return Err(RuleError::BreakGlassOverCap {
                flow: self.name.clone(),
                asked: format_duration(duration),
                max: format_duration(policy.max_duration),
            });
        }
        if reason.trim().is_empty() {
            return Err(RuleError::BreakGlassReasonRequired {
                flow: self.name.clone(),
            });
        }
        Ok(policy)
    }

    /// Checks more time asked for on `request`, a grant of this flow: longer than zero, and
    /// the whole grant within the flow's cap (a break-glass grant's: its break-glass cap, or
    /// none at all once the flow no longer allows break-glass).
    pub fn check_extension(&self, request: &Request, by: Duration) -> Result<(), RuleError> {
        if by.is_zero() {
            return Err(RuleError::ZeroDuration);
        }
        let max = match (&request.break_glass, &self.break_glass) {
            (None, _) => self.max_duration,
            (Some(_), Some(policy)) => policy.max_duration,
            (Some(_), None) => Duration::ZERO,
        };
        let total = request.duration.checked_add(by).unwrap_or(Duration::MAX);
        if total > max {
            return Err(RuleError::ExtensionOverCap {
                flow: self.name.clone(),
                by: format_duration(by),
                total: format_duration(total),
                max: format_duration(max),
            });
        }
        Ok(())
    }

    /// The groups the directory must be asked about to know which auto-approval rules admit
    /// `person`: those of rules that do not name them.
    pub fn auto_approval_groups_to_ask(&self, person: &str) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for rule in &self.auto_approve {
            if !rule.people.iter().any(|p| p == person) {
                for group in &rule.groups {
                    if !groups.contains(group) {
                        groups.push(group.clone());
                    }
                }
            }
        }
        groups
    }

    /// The first auto-approval rule that approves `requester` (in the directory `groups`)
    /// getting `target` for `duration` (the whole grant) at `now`.
    pub fn auto_approval(
        &self,
        requester: &str,
        groups: &[String],
        target: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Option<&AutoApproval> {
        self.auto_approve
            .iter()
            .find(|rule| rule.approves(requester, groups, target, duration, now))
    }
}

impl AutoApproval {
    /// Whether this rule approves `requester` (in the directory `groups`) getting `target`
    /// for `duration` at `now`: every condition it names holds.
    pub fn approves(
        &self,
        requester: &str,
        groups: &[String],
        target: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        let who = self.people.iter().any(|p| p == requester)
            || self.groups.iter().any(|g| groups.contains(g));
        who && self.max_duration.is_none_or(|max| duration <= max)
            && (self.targets.is_empty() || self.targets.iter().any(|t| t == target))
            && self.window.as_ref().is_none_or(|w| w.contains(now))
    }

    /// The rule in words, for the Slack message, the audit trail and `config check`.
    pub fn describe(&self) -> String {
        let mut who: Vec<String> = self.people.iter().map(|p| p.to_string()).collect();
        who.extend(self.groups.iter().map(|g| format!("group {g}")));
        let mut parts = vec![format!("requester is {}", who.join(" or "))];
        if let Some(max) = self.max_duration {
            parts.push(format!("for at most {}", format_duration(max)));
        }
        if !self.targets.is_empty() {
            let targets: Vec<&str> = self.targets.iter().map(|t| t.as_str()).collect();
            parts.push(format!("target {}", targets.join(" or ")));
        }
        if let Some(window) = &self.window {
            parts.push(window.describe());
        }
        format!("rule `{}`: {}", self.name, parts.join(", "))
    }
}

impl Window {
    /// Whether `at` falls in the window, on the local clock of its time zone.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.time_zone);
        let minute = local.hour() * 60 + local.minute();
        self.days.contains(&local.weekday())
            && self.from_minute <= minute
            && minute < self.to_minute
    }

    /// `Mon-Fri 09:00-17:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        let name = |d: &chrono::Weekday| d.to_string();
        let all = self.days.len() == 7;
        let consecutive = self.days.windows(2).all(|w| w[0].succ() == w[1]);
        let days = if all {
            "every day".to_owned()
        } else if consecutive && self.days.len() > 2 {
            format!(
                "{}-{}",
                name(&self.days[0]),
                name(&self.days[self.days.len() - 1])
            )
        } else {
            self.days.iter().map(name).collect::<Vec<_>>().join(", ")
        };
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{days} {}-{} {}",
            hm(self.from_minute),
            hm(self.to_minute),
            self.time_zone.name()
        )
    }
}
