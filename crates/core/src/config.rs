//! `elevate.toml`: the people and the flows, parsed into validated types. An invalid file is
//! refused with the line and the problem.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::identity::Identity;
use crate::model::{format_duration, parse_duration};
use crate::names::{FlowName, PersonName, TargetName};

/// A person who may request or approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: PersonName,
    pub iam_user: String,
    pub slack_id: String,
    pub email: String,
}

/// What access a flow grants and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetKind {
    /// Membership of an IAM group.
    IamGroup {
        group: String,
        /// Roles the group lets its members assume (names or ARNs): ending a grant ends the
        /// person's sessions of these roles issued before the end.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
    /// A custom target: a Lambda function that speaks the escalation JSON contract.
    Lambda { function_arn: String },
    /// An IAM Identity Center permission set, assigned to the person's Identity Store user in
    /// an AWS account of the instance in `[identity_center]`.
    SsoPermissionSet {
        permission_set_arn: String,
        accounts: Vec<String>,
        /// Ending a grant ends the person's sessions of the permission set in the account
        /// issued before the end: a deny in the permission set's inline policy, provisioned
        /// again to the account. Off unless set (it edits a policy the administrator owns).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        end_sessions: bool,
    },
}

impl TargetKind {
    /// The `type` elevate.toml gives it.
    pub fn type_name(&self) -> &'static str {
        match self {
            TargetKind::IamGroup { .. } => "iam_group",
            TargetKind::Lambda { .. } => "lambda",
            TargetKind::SsoPermissionSet { .. } => "sso_permission_set",
        }
    }

    /// The AWS account a permission set target grants in, when it names exactly one (as a
    /// grant's terms do); `None` for other targets.
    pub fn account(&self) -> Option<&str> {
        match self {
            TargetKind::SsoPermissionSet { accounts, .. } if accounts.len() == 1 => {
                Some(&accounts[0])
            }
            _ => None,
        }
    }

    /// What it grants, named as AWS names it: the group, the function, or the permission set
    /// and its account(s).
    pub fn resource(&self) -> String {
        match self {
            TargetKind::IamGroup { group, .. } => group.clone(),
            TargetKind::Lambda { function_arn } => function_arn.clone(),
            TargetKind::SsoPermissionSet {
                permission_set_arn,
                accounts,
                ..
            } => format!("{permission_set_arn} in {}", accounts.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: TargetName,
    #[serde(flatten)]
    pub kind: TargetKind,
}

/// Who is asked, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvers {
    /// Slack channel id the request is posted to.
    pub channel: String,
    /// Names of the people who may approve or deny.
    pub people: Vec<PersonName>,
    /// Identity Store groups (display names) whose members, when they are people of the file,
    /// may approve or deny too; asked each time someone decides.
    pub groups: Vec<String>,
}

/// When a request is approved without a person (`[[flows.auto_approve]]`): every condition
/// it names must hold. It always names who (people or Identity Store groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproval {
    /// The rule's name; the audit trail records the approval as `elevate:rule:<name>`.
    pub name: String,
    /// Requesters it approves by name.
    pub people: Vec<PersonName>,
    /// Requesters it approves by Identity Store group, asked when the request is made.
    pub groups: Vec<String>,
    /// The longest grant it approves (with an extension: the whole grant).
    pub max_duration: Option<Duration>,
    /// The targets it approves; empty means every target of the flow.
    pub targets: Vec<TargetName>,
    /// When it approves; `None` means at any time.
    pub window: Option<Window>,
}

/// A weekly time window: the days and the hours of the day, in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The days it is open, Monday first.
    pub days: Vec<chrono::Weekday>,
    /// Opens at this minute of the day (local time).
    pub from_minute: u32,
    /// Closes at this minute of the day (local time), after `from_minute`.
    pub to_minute: u32,
    pub time_zone: chrono_tz::Tz,
}

/// One kind of access that may be requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub name: FlowName,
    pub description: String,
    pub targets: Vec<Target>,
    pub approvers: Approvers,
    /// Longest grant that may be asked for.
    pub max_duration: Duration,
    /// When set, only these durations may be asked for.
    pub allowed_durations: Option<Vec<Duration>>,
    pub reason_required: bool,
    pub allow_self_approval: bool,
    /// How long a request may wait for an answer before it times out.
    pub pending_timeout: Duration,
    /// Who may request by name; `None` (with no `requester_groups`) means every person of the
    /// file.
    pub requesters: Option<Vec<PersonName>>,
    /// Identity Store groups (display names) whose members, when they are people of the file,
    /// may request too; asked each time someone requests.
    pub requester_groups: Vec<String>,
    /// IAM users who belong to this flow's groups without a grant, or people (by IAM user
    /// or email) who hold its permission sets without one; reconciliation never removes them.
    pub standing_members: Vec<String>,
    /// How many distinct approvers (never the requester) must approve a request or an
    /// extension.
    pub approvals_required: u32,
    /// Rules under which a request (or an extension) is approved without a person.
    pub auto_approve: Vec<AutoApproval>,
    /// A Lambda function (ARN) asked when a request is submitted: it may approve, deny, or
    /// send the request to another approvers channel (docs/contracts.md, "request hook").
    pub hook: Option<String>,
    /// Whether, and how, a requester may activate at once and be reviewed afterwards.
    pub break_glass: Option<BreakGlassPolicy>,
    /// What happens to a request nobody answers, before it times out.
    pub reminders: Option<ReminderPolicy>,
}

/// `[flows.reminders]`: a PENDING request nobody answered is brought up again in its thread,
/// pinging the approvers, `remind_after` it was made; `backup_after` it was made, the
/// `backup_people` may decide it too, and are pinged (in `backup_channel`, where the request
/// is posted again, when one is set). Both come before the flow's `pending_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderPolicy {
    pub remind_after: Option<Duration>,
    pub backup_after: Option<Duration>,
    /// Who may decide once `backup_after` has passed; never empty with `backup_after`.
    pub backup_people: Vec<PersonName>,
    pub backup_channel: Option<String>,
}

/// `[flows.break_glass]`: a request marked break-glass is active at once, on a mandatory
/// reason, for at most `max_duration`; it is posted to `channel` and must be acknowledged by an
/// approver within `review_within`, or it is marked unreviewed and the channel is told again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassPolicy {
    pub max_duration: Duration,
    /// The Slack channel (id) of the people who review break-glass grants.
    pub channel: String,
    pub review_within: Duration,
}

/// The IAM Identity Center instance that `sso_permission_set` targets assign in, and its
/// Identity Store, where people are found by their email (`[identity_center]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCenter {
    pub instance_arn: String,
    pub identity_store_id: String,
}

/// The whole validated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which callers are believed (`[identity]`).
    pub identity: Identity,
    /// `None` when the file has no `[identity_center]` (and so no `sso_permission_set` target).
    pub identity_center: Option<IdentityCenter>,
    pub people: Vec<Person>,
    pub flows: Vec<Flow>,
    /// People who may export the whole audit trail.
    pub auditors: Vec<PersonName>,
}

/// An invalid config file: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("elevate.toml line {line}: {message}")]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

pub const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(3600);

/// Longest grant or time-out a flow may configure. Just-in-time access is measured in hours;
/// the cap also keeps every computed expiry far from the end of the calendar.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(30 * 86_400);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    identity: Option<Spanned<RawIdentity>>,
    identity_center: Option<Spanned<RawIdentityCenter>>,
    #[serde(default)]
    people: Vec<Spanned<RawPerson>>,
    #[serde(default)]
    flows: Vec<Spanned<RawFlow>>,
    #[serde(default)]
    auditors: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    accounts: Option<Vec<Spanned<String>>>,
    #[serde(default = "yes")]
    iam_users: bool,
    #[serde(default)]
    trusted_roles: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentityCenter {
    instance_arn: Spanned<String>,
    identity_store_id: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    name: Spanned<String>,
    iam_user: Spanned<String>,
    slack_id: Spanned<String>,
    email: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    max_duration: Option<Spanned<String>>,
    durations: Option<Vec<Spanned<String>>>,
    #[serde(default = "yes")]
    reason_required: bool,
    #[serde(default)]
    allow_self_approval: bool,
    pending_timeout: Option<Spanned<String>>,
    requesters: Option<RawRequesters>,
    #[serde(default)]
    standing_members: Vec<Spanned<String>>,
    approvers: Spanned<RawApprovers>,
    approvals_required: Option<Spanned<u32>>,
    #[serde(default)]
    auto_approve: Vec<Spanned<RawAutoApproval>>,
    hook: Option<Spanned<String>>,
    break_glass: Option<Spanned<RawBreakGlass>>,
    reminders: Option<Spanned<RawReminders>>,
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminders {
    remind_after: Option<Spanned<String>>,
    backup_after: Option<Spanned<String>>,
    #[serde(default)]
    backup_people: Vec<Spanned<String>>,
    backup_channel: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreakGlass {
    max_duration: Spanned<String>,
    channel: Spanned<String>,
    review_within: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoApproval {
    name: Spanned<String>,
    requesters: Option<RawRequesters>,
    max_duration: Option<Spanned<String>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    days: Option<Vec<Spanned<String>>>,
    hours: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovers {
    channel: Spanned<String>,
    #[serde(default)]
    people: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

/// `requesters`: a list of people, or a table of `people` and `groups`.
struct RawRequesters {
    people: Vec<Spanned<String>>,
    groups: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawRequesters {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = RawRequesters;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of people, or a table with `people` and `groups`")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawRequesters, A::Error> {
                let mut people = Vec::new();
                while let Some(person) = seq.next_element()? {
                    people.push(person);
                }
                Ok(RawRequesters {
                    people,
                    groups: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawRequesters, A::Error> {
                let mut requesters = RawRequesters {
                    people: Vec::new(),
                    groups: Vec::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "people" => requesters.people = map.next_value()?,
                        "groups" => requesters.groups = map.next_value()?,
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                other,
                                &["people", "groups"],
                            ))
                        }
                    }
                }
                Ok(requesters)
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    group: Option<Spanned<String>>,
    function_arn: Option<Spanned<String>>,
    roles: Option<Vec<Spanned<String>>>,
    permission_set_arn: Option<Spanned<String>>,
    accounts: Option<Vec<Spanned<String>>>,
    end_sessions: Option<bool>,
}

/// Turns byte offsets into 1-based line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        self.0.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            line: self.at(spanned.span().start),
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses and validates the text of an `elevate.toml`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let lines = Lines(text);
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError {
            line: err.span().map_or(1, |span| lines.at(span.start)),
            message: match err.message().trim() {
                "" => "not valid TOML here (control characters are not allowed, even in comments)"
                    .to_owned(),
                message => message.to_owned(),
            },
        })?;
        validate(raw, &lines)
    }

    pub fn person(&self, name: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.name == name)
    }

    pub fn person_by_iam_user(&self, iam_user: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.iam_user == iam_user)
    }

    pub fn person_by_slack_id(&self, slack_id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.slack_id == slack_id)
    }

    pub fn person_by_email(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(email))
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// Whether `name` may export the whole audit trail.
    pub fn is_auditor(&self, name: &str) -> bool {
        self.auditors.iter().any(|a| a == name)
    }
}

fn validate(raw: RawConfig, lines: &Lines<'_>) -> Result<Config, ConfigError> {
    let identity = match &raw.identity {
        None => Identity::default(),
        Some(spanned) => validate_identity(spanned.get_ref(), lines)?,
    };
    let identity_center = raw
        .identity_center
        .as_ref()
        .map(|spanned| validate_identity_center(spanned.get_ref(), lines))
        .transpose()?;
    let mut people = Vec::with_capacity(raw.people.len());
    let mut names = HashSet::new();
    let mut iam_users = HashSet::new();
    let mut slack_ids = HashSet::new();
    let mut emails = HashSet::new();
    for spanned in &raw.people {
        let p = spanned.get_ref();
        for (field, value) in [
            ("name", &p.name),
            ("iam_user", &p.iam_user),
            ("slack_id", &p.slack_id),
            ("email", &p.email),
        ] {
            if value.get_ref().trim().is_empty() {
                return Err(lines.error(value, format!("person {field} must not be empty")));
            }
        }
        if !names.insert(p.name.get_ref().clone()) {
            return Err(lines.error(&p.name, format!("duplicate person `{}`", p.name.get_ref())));
        }
        if !iam_users.insert(p.iam_user.get_ref().clone()) {
            return Err(lines.error(
                &p.iam_user,
                format!("IAM user `{}` belongs to two people", p.iam_user.get_ref()),
            ));
        }
        if !slack_ids.insert(p.slack_id.get_ref().clone()) {
            return Err(lines.error(
                &p.slack_id,
                format!(
                    "Slack user id `{}` belongs to two people",
                    p.slack_id.get_ref()
                ),
            ));
        }
        if !p.email.get_ref().contains('@') {
            return Err(lines.error(
                &p.email,
                format!("`{}` is not an email address", p.email.get_ref()),
            ));
        }
        // Sessions are matched by email ignoring case, so a shared email would be ambiguous.
        if !emails.insert(p.email.get_ref().to_ascii_lowercase()) {
            return Err(lines.error(
                &p.email,
                format!("email `{}` belongs to two people", p.email.get_ref()),
            ));
        }
        people.push(Person {
            name: PersonName::new(p.name.get_ref()),
            iam_user: p.iam_user.get_ref().clone(),
            slack_id: p.slack_id.get_ref().clone(),
            email: p.email.get_ref().clone(),
        });
    }

    // A trusted role's session is matched by name first, then email: one person's name may
    // not be another's email, or the session would be ambiguous.
    for spanned in &raw.people {
        let name = spanned.get_ref().name.get_ref();
        if emails.contains(&name.to_ascii_lowercase())
            && !spanned.get_ref().email.get_ref().eq_ignore_ascii_case(name)
        {
            return Err(lines.error(
                &spanned.get_ref().name,
                format!("person name `{name}` is another person's email"),
            ));
        }
    }

    let known = |who: &Spanned<String>, role: &str| -> Result<PersonName, ConfigError> {
        if names.contains(who.get_ref()) {
            Ok(PersonName::new(who.get_ref()))
        } else {
            Err(lines.error(
                who,
                format!(
                    "unknown person `{}` in {role} (add them under [[people]])",
                    who.get_ref()
                ),
            ))
        }
    };

    let auditors = raw
        .auditors
        .iter()
        .map(|a| known(a, "auditors"))
        .collect::<Result<Vec<_>, _>>()?;

    if raw.flows.is_empty() {
        return Err(ConfigError {
            line: 1,
            message: "no flows defined (add at least one [[flows]])".into(),
        });
    }
    let mut flows: Vec<Flow> = Vec::with_capacity(raw.flows.len());
    for spanned in &raw.flows {
        let f = spanned.get_ref();
        let name = f.name.get_ref().trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(lines.error(
                &f.name,
                format!("flow name `{name}` must be letters, digits, `_` or `-`"),
            ));
        }
        if flows.iter().any(|other| other.name == name) {
            return Err(lines.error(&f.name, format!("duplicate flow `{name}`")));
        }

        let duration = |text: &Spanned<String>, what: &str| -> Result<Duration, ConfigError> {
            let d = parse_duration(text.get_ref())
                .map_err(|e| lines.error(text, format!("{what}: {e}")))?;
            if d.is_zero() {
                return Err(lines.error(text, format!("{what} must be longer than zero")));
            }
            if d > MAX_CONFIG_DURATION {
                return Err(lines.error(
                    text,
                    format!(
                        "{what} must be at most {}",
                        format_duration(MAX_CONFIG_DURATION)
                    ),
                ));
            }
            Ok(d)
        };
        let allowed_durations = match &f.durations {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(lines.error(spanned, format!("flow `{name}`: durations must not be empty (leave it out to allow any up to max_duration)")))
            }
            Some(list) => Some(list.iter().map(|d| duration(d, "durations")).collect::<Result<Vec<_>, _>>()?),
        };
        let max_duration = match (&f.max_duration, &allowed_durations) {
            (Some(text), allowed) => {
                let max = duration(text, "max_duration")?;
                if let Some((_, text)) = allowed
                    .iter()
                    .flatten()
                    .zip(f.durations.iter().flatten())
                    .find(|(d, _)| **d > max)
                {
                    return Err(lines.error(
                        text,
                        format!(
                            "duration {} is over max_duration {}",
                            text.get_ref(),
                            format_duration(max)
                        ),
                    ));
                }
                max
            }
            (None, Some(allowed)) => allowed.iter().copied().max().unwrap_or_default(),
            (None, None) => {
                return Err(lines.error(
                    spanned,
                    format!("flow `{name}` needs max_duration or durations"),
                ))
            }
        };
        let pending_timeout = match &f.pending_timeout {
            Some(text) => duration(text, "pending_timeout")?,
            None => DEFAULT_PENDING_TIMEOUT,
        };

        let approvers = f.approvers.get_ref();
        if approvers.channel.get_ref().trim().is_empty() {
            return Err(lines.error(
                &approvers.channel,
                "approvers.channel must name a Slack channel id",
            ));
        }
        if approvers.people.is_empty() && approvers.groups.is_empty() {
            return Err(lines.error(&f.approvers, format!("flow `{name}` has no approvers")));
        }
        let approver_names = approvers
            .people
            .iter()
            .map(|p| known(p, "approvers"))
            .collect::<Result<Vec<_>, _>>()?;
        let approver_groups = directory_groups(
            &approvers.groups,
            "approvers.groups",
            identity_center.as_ref(),
            lines,
        )?;
        let (requesters, requester_groups) = match &f.requesters {
            None => (None, Vec::new()),
            Some(raw) => {
                if raw.people.is_empty() && raw.groups.is_empty() {
                    return Err(lines.error(
                        &f.name,
                        format!("flow `{name}`: requesters is empty (leave it out to let everyone request)"),
                    ));
                }
                let people = raw
                    .people
                    .iter()
                    .map(|p| known(p, "requesters"))
                    .collect::<Result<Vec<_>, _>>()?;
                let groups = directory_groups(
                    &raw.groups,
                    "requesters.groups",
                    identity_center.as_ref(),
                    lines,
                )?;
                (Some(people), groups)
            }
        };
        // A member of an approvers group may be anyone of the file: only the directory knows.
        if !f.allow_self_approval && approver_groups.is_empty() {
            let someone_else_can_approve =
                |requester: &str| approver_names.iter().any(|a| a != requester);
            // A member of a requesters group may be anyone of the file.
            let candidates: Vec<&str> = match &requesters {
                Some(list) if requester_groups.is_empty() => {
                    list.iter().map(PersonName::as_str).collect()
                }
                _ => names.iter().map(String::as_str).collect(),
            };
            if let Some(stuck) = candidates
                .into_iter()
                .find(|r| !someone_else_can_approve(r))
            {
                return Err(lines.error(&f.approvers, format!("flow `{name}`: nobody but `{stuck}` can approve `{stuck}`'s requests and self-approval is off")));
            }
        }

        if f.targets.is_empty() {
            return Err(lines.error(
                spanned,
                format!("flow `{name}` has no targets (add [[flows.targets]])"),
            ));
        }
        let mut targets: Vec<Target> = Vec::with_capacity(f.targets.len());
        for t in &f.targets {
            let t = t.get_ref();
            let target_name = t.name.get_ref().trim();
            if target_name.is_empty() {
                return Err(lines.error(&t.name, "target name must not be empty"));
            }
            if targets.iter().any(|other| other.name == target_name) {
                return Err(lines.error(
                    &t.name,
                    format!("duplicate target `{target_name}` in flow `{name}`"),
                ));
            }
            let kind = match t.kind.get_ref().as_str() {
                "iam_group" => {
                    let group = t.group.as_ref().ok_or_else(|| {
                        lines.error(
                            &t.kind,
                            format!("target `{target_name}` of type iam_group needs `group`"),
                        )
                    })?;
                    if t.function_arn.is_some()
                        || t.permission_set_arn.is_some()
                        || t.accounts.is_some()
                        || t.end_sessions.is_some()
                    {
                        return Err(lines.error(
                            &t.kind,
                            format!(
                                "target `{target_name}` of type iam_group takes no function_arn, permission_set_arn, accounts or end_sessions (its `roles` are the sessions it ends)"
                            ),
                        ));
                    }
                    if group.get_ref().trim().is_empty() {
                        return Err(lines.error(group, "group must name an IAM group"));
                    }
                    let mut roles = Vec::new();
                    for role in t.roles.iter().flatten() {
                        if role_name(role.get_ref()).is_none() {
                            return Err(lines.error(
                                role,
                                format!(
                                    "`{}` is not an IAM role name or role ARN (arn:aws:iam::<account>:role/<name>)",
                                    role.get_ref()
                                ),
                            ));
                        }
                        roles.push(role.get_ref().clone());
                    }
                    TargetKind::IamGroup {
                        group: group.get_ref().clone(),
                        roles,
                    }
                }
                "lambda" => {
                    let arn = t.function_arn.as_ref().ok_or_else(|| {
                        lines.error(
                            &t.kind,
                            format!("target `{target_name}` of type lambda needs `function_arn`"),
                        )
                    })?;
                    if t.group.is_some()
                        || t.roles.is_some()
                        || t.permission_set_arn.is_some()
                        || t.accounts.is_some()
                        || t.end_sessions.is_some()
                    {
                        return Err(lines.error(
                            &t.kind,
                            format!(
                                "target `{target_name}` of type lambda takes no group, roles, permission_set_arn, accounts or end_sessions"
                            ),
                        ));
                    }
                    lambda_arn(arn, lines)?;
                    TargetKind::Lambda {
                        function_arn: arn.get_ref().clone(),
                    }
                }
                "sso_permission_set" => {
                    sso_permission_set(t, target_name, identity_center.as_ref(), lines)?
                }
                other => {
                    return Err(lines.error(
                        &t.kind,
                        format!("unknown target type `{other}` (expected iam_group, lambda or sso_permission_set)"),
                    ))
                }
            };
            targets.push(Target {
                name: TargetName::from(target_name),
                kind,
            });
        }

        let mut standing_members = Vec::with_capacity(f.standing_members.len());
        for member in &f.standing_members {
            let user = member.get_ref().trim();
            if user.is_empty() {
                return Err(lines.error(
                    member,
                    "standing_members must name IAM users (or, for permission sets, emails)",
                ));
            }
            if !targets.iter().any(|t| {
                matches!(
                    t.kind,
                    TargetKind::IamGroup { .. } | TargetKind::SsoPermissionSet { .. }
                )
            }) {
                return Err(lines.error(
                    member,
                    format!("flow `{name}` has no iam_group or sso_permission_set target for standing_members"),
                ));
            }
            standing_members.push(user.to_owned());
        }

        let approvals_required = match &f.approvals_required {
            None => 1,
            Some(n) if *n.get_ref() == 0 => {
                return Err(lines.error(n, "approvals_required must be at least 1"))
            }
            Some(n) => {
                let n_ref = *n.get_ref();
                if n_ref > 1 && f.allow_self_approval {
                    return Err(lines.error(n, format!("flow `{name}`: approvals_required = {n_ref} counts distinct approvers other than the requester; it cannot go with allow_self_approval")));
                }
                // Without groups the people are all the approvers there are: each requester
                // needs that many others.
                if approver_groups.is_empty() {
                    let others = |requester: &str| {
                        approver_names
                            .iter()
                            .filter(|a| a.as_str() != requester)
                            .count()
                    };
                    let fewest = match &requesters {
                        Some(list) if requester_groups.is_empty() => {
                            list.iter().map(|r| others(r)).min()
                        }
                        _ => names.iter().map(|r| others(r)).min(),
                    }
                    .unwrap_or(0);
                    if fewest < n_ref as usize {
                        return Err(lines.error(n, format!("flow `{name}`: approvals_required = {n_ref}, but some requesters have only {fewest} other approvers")));
                    }
                }
                n_ref
            }
        };
        let mut auto_approve: Vec<AutoApproval> = Vec::with_capacity(f.auto_approve.len());
        for rule in &f.auto_approve {
            let rule = auto_approval(
                rule,
                &targets,
                max_duration,
                &known,
                identity_center.as_ref(),
                lines,
            )?;
            if auto_approve.iter().any(|r| r.name == rule.name) {
                return Err(lines.error(
                    &f.name,
                    format!(
                        "flow `{name}`: two auto_approve rules are named `{}`",
                        rule.name
                    ),
                ));
            }
            auto_approve.push(rule);
        }

        let hook = match &f.hook {
            Some(arn) => Some(lambda_arn(arn, lines)?.to_owned()),
            None => None,
        };
        let break_glass = match &f.break_glass {
            None => None,
            Some(raw) => {
                let b = raw.get_ref();
                let cap = duration(&b.max_duration, "break_glass.max_duration")?;
                if cap > max_duration {
                    return Err(lines.error(
                        &b.max_duration,
                        format!(
                            "flow `{name}`: break_glass.max_duration must be at most the flow's {}",
                            format_duration(max_duration)
                        ),
                    ));
                }
                Some(BreakGlassPolicy {
                    max_duration: cap,
                    channel: channel_id(&b.channel, "break_glass.channel", lines)?,
                    review_within: duration(&b.review_within, "break_glass.review_within")?,
                })
            }
        };
        let reminders = match &f.reminders {
            None => None,
            Some(raw) => {
                let r = raw.get_ref();
                let before_time_out = |text: &Spanned<String>, what: &str| {
                    let after = duration(text, what)?;
                    if after >= pending_timeout {
                        return Err(lines.error(
                            text,
                            format!(
                                "flow `{name}`: {what} must be shorter than pending_timeout ({})",
                                format_duration(pending_timeout)
                            ),
                        ));
                    }
                    Ok(after)
                };
                let remind_after = r
                    .remind_after
                    .as_ref()
                    .map(|t| before_time_out(t, "reminders.remind_after"))
                    .transpose()?;
                let backup_after = r
                    .backup_after
                    .as_ref()
                    .map(|t| before_time_out(t, "reminders.backup_after"))
                    .transpose()?;
                let backup_people = r
                    .backup_people
                    .iter()
                    .map(|p| known(p, "reminders.backup_people"))
                    .collect::<Result<Vec<_>, _>>()?;
                let backup_channel = r
                    .backup_channel
                    .as_ref()
                    .map(|c| channel_id(c, "reminders.backup_channel", lines))
                    .transpose()?;
                if remind_after.is_none() && backup_after.is_none() {
                    return Err(lines.error(
                        raw,
                        format!("flow `{name}`: reminders needs remind_after or backup_after"),
                    ));
                }
                if let (Some(remind), Some(backup), Some(text)) =
                    (remind_after, backup_after, &r.backup_after)
                {
                    if backup <= remind {
                        return Err(lines.error(
                            text,
                            format!("flow `{name}`: reminders.backup_after must come after remind_after"),
                        ));
                    }
                }
                if backup_after.is_some() == backup_people.is_empty() {
                    return Err(lines.error(
                        raw,
                        format!("flow `{name}`: reminders.backup_after and backup_people go together (who may decide, and from when)"),
                    ));
                }
                if backup_channel.is_some() && backup_after.is_none() {
                    return Err(lines.error(
                        raw,
                        format!("flow `{name}`: reminders.backup_channel needs backup_after and backup_people"),
                    ));
                }
                Some(ReminderPolicy {
                    remind_after,
                    backup_after,
                    backup_people,
                    backup_channel,
                })
            }
        };

        flows.push(Flow {
            name: FlowName::from(name),
            description: f.description.clone(),
            targets,
            approvers: Approvers {
                channel: approvers.channel.get_ref().clone(),
                people: approver_names,
                groups: approver_groups,
            },
            max_duration,
            allowed_durations,
            reason_required: f.reason_required,
            allow_self_approval: f.allow_self_approval,
            pending_timeout,
            requesters,
            requester_groups,
            standing_members,
            approvals_required,
            auto_approve,
            hook,
            break_glass,
            reminders,
        });
    }

    Ok(Config {
        identity,
        identity_center,
        people,
        flows,
        auditors,
    })
}

/// Finds a person of the file by a name written in `role` (`approvers`, ...), or says the line.
type KnownPerson<'a> = dyn Fn(&Spanned<String>, &str) -> Result<PersonName, ConfigError> + 'a;

/// A Slack channel id: letters and digits (`C0APPROVALS`).
fn channel_id(text: &Spanned<String>, what: &str, lines: &Lines) -> Result<String, ConfigError> {
    let channel = text.get_ref();
    if channel.is_empty() || !channel.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(lines.error(text, format!("{what} must name a Slack channel id")));
    }
    Ok(channel.clone())
}

/// A Lambda function ARN (a custom target's, a flow's hook).
fn lambda_arn<'a>(arn: &'a Spanned<String>, lines: &Lines) -> Result<&'a str, ConfigError> {
    let text = arn.get_ref();
    let function = text.split(":function:").nth(1).unwrap_or_default();
    if !text.starts_with("arn:")
        || !text.contains(":lambda:")
        || function.is_empty()
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(lines.error(arn, format!("`{text}` is not a Lambda function ARN")));
    }
    Ok(text)
}

/// One `[[flows.auto_approve]]` rule of a flow whose `targets` and `max_duration` are known.
fn auto_approval(
    spanned: &Spanned<RawAutoApproval>,
    targets: &[Target],
    flow_max: Duration,
    known: &KnownPerson<'_>,
    identity_center: Option<&IdentityCenter>,
    lines: &Lines<'_>,
) -> Result<AutoApproval, ConfigError> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(lines.error(
            &raw.name,
            format!("auto_approve rule name `{name}` must be letters, digits, `_` or `-`"),
        ));
    }
    let (people, groups) = match &raw.requesters {
        Some(r) if !(r.people.is_empty() && r.groups.is_empty()) => (
            r.people
                .iter()
                .map(|p| known(p, "auto_approve.requesters"))
                .collect::<Result<Vec<_>, _>>()?,
            directory_groups(
                &r.groups,
                "auto_approve.requesters.groups",
                identity_center,
                lines,
            )?,
        ),
        _ => {
            return Err(lines.error(
                &raw.name,
                format!("auto_approve rule `{name}` must name its requesters (people or groups): a rule that approves anyone is a flow without approvers"),
            ))
        }
    };
    let max_duration = match &raw.max_duration {
        None => None,
        Some(text) => {
            let d = parse_duration(text.get_ref())
                .map_err(|e| lines.error(text, format!("max_duration: {e}")))?;
            if d.is_zero() || d > flow_max {
                return Err(lines.error(
                    text,
                    format!(
                        "auto_approve rule `{name}`: max_duration must be longer than zero and at most the flow's {}",
                        format_duration(flow_max)
                    ),
                ));
            }
            Some(d)
        }
    };
    let mut rule_targets = Vec::with_capacity(raw.targets.len());
    for target in &raw.targets {
        let wanted = target.get_ref().trim();
        if !targets.iter().any(|t| t.name == wanted) {
            return Err(lines.error(
                target,
                format!("auto_approve rule `{name}` names target `{wanted}`, which the flow does not have"),
            ));
        }
        rule_targets.push(TargetName::from(wanted));
    }
    let window = if raw.days.is_none() && raw.hours.is_none() {
        if let Some(zone) = &raw.time_zone {
            return Err(lines.error(
                zone,
                format!("auto_approve rule `{name}`: time_zone goes with days or hours"),
            ));
        }
        None
    } else {
        Some(window(raw, name, lines)?)
    };
    Ok(AutoApproval {
        name: name.to_owned(),
        people,
        groups,
        max_duration,
        targets: rule_targets,
        window,
    })
}

const DAY_NAMES: [(&str, chrono::Weekday); 7] = [
    ("mon", chrono::Weekday::Mon),
    ("tue", chrono::Weekday::Tue),
    ("wed", chrono::Weekday::Wed),
    ("thu", chrono::Weekday::Thu),
    ("fri", chrono::Weekday::Fri),
    ("sat", chrono::Weekday::Sat),
    ("sun", chrono::Weekday::Sun),
];

/// The `days`, `hours` and `time_zone` of an auto-approval rule.
fn window(raw: &RawAutoApproval, name: &str, lines: &Lines<'_>) -> Result<Window, ConfigError> {
    let mut days = Vec::new();
    match &raw.days {
        None => days.extend(DAY_NAMES.iter().map(|(_, d)| *d)),
        Some(list) => {
            for day in list {
                let text = day.get_ref().trim().to_ascii_lowercase();
                let Some((_, weekday)) = DAY_NAMES.iter().find(|(n, _)| *n == text) else {
                    return Err(lines.error(
                        day,
                        format!(
                            "`{}` is not a day (write mon, tue, wed, thu, fri, sat or sun)",
                            day.get_ref()
                        ),
                    ));
                };
                if days.contains(weekday) {
                    return Err(lines.error(day, format!("day `{text}` is listed twice")));
                }
                days.push(*weekday);
            }
            if days.is_empty() {
                return Err(lines.error(
                    &raw.name,
                    format!(
                        "auto_approve rule `{name}`: days is empty (leave it out for every day)"
                    ),
                ));
            }
            days.sort_by_key(chrono::Weekday::num_days_from_monday);
        }
    }
    let (from_minute, to_minute) = match &raw.hours {
        None => (0, 24 * 60),
        Some(text) => {
            let bad = || {
                lines.error(
                    text,
                    format!("hours `{}` must be HH:MM-HH:MM, the start before the end (24:00 ends the day; split a window that crosses midnight into two rules)", text.get_ref()),
                )
            };
            let (start, end) = text.get_ref().split_once('-').ok_or_else(bad)?;
            let minute = |t: &str| -> Option<u32> {
                let (h, m) = t.trim().split_once(':')?;
                let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
                (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
            };
            let (from, to) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
            if from >= to {
                return Err(bad());
            }
            (from, to)
        }
    };
    let time_zone = match &raw.time_zone {
        None => chrono_tz::Tz::UTC,
        Some(zone) => zone.get_ref().trim().parse().map_err(|_| {
            lines.error(
                zone,
                format!(
                    "`{}` is not an IANA time zone (such as Europe/Berlin or America/New_York)",
                    zone.get_ref()
                ),
            )
        })?,
    };
    Ok(Window {
        days,
        from_minute,
        to_minute,
        time_zone,
    })
}

/// Identity Store group names (`approvers.groups`, `requesters.groups`): not empty, each once,
/// and only with an `[identity_center]` whose directory holds them.
fn directory_groups(
    raw: &[Spanned<String>],
    key: &str,
    identity_center: Option<&IdentityCenter>,
    lines: &Lines<'_>,
) -> Result<Vec<String>, ConfigError> {
    let mut groups: Vec<String> = Vec::with_capacity(raw.len());
    for group in raw {
        if identity_center.is_none() {
            return Err(lines.error(
                group,
                format!("{key} names Identity Store groups, which needs [identity_center] with instance_arn and identity_store_id"),
            ));
        }
        let name = group.get_ref().trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(lines.error(group, format!("{key}: `{name}` is not a group name")));
        }
        if groups.iter().any(|g| g == name) {
            return Err(lines.error(group, format!("{key}: group `{name}` is listed twice")));
        }
        groups.push(name.to_owned());
    }
    Ok(groups)
}

fn validate_identity_center(
    raw: &RawIdentityCenter,
    lines: &Lines<'_>,
) -> Result<IdentityCenter, ConfigError> {
    let instance_arn = raw.instance_arn.get_ref().trim();
    if sso_instance_id(instance_arn).is_none() {
        return Err(lines.error(
            &raw.instance_arn,
            format!("`{instance_arn}` is not an IAM Identity Center instance ARN (arn:aws:sso:::instance/ssoins-<id>)"),
        ));
    }
    let store = raw.identity_store_id.get_ref().trim();
    let valid_store = store.len() <= 36
        && store.split_once('-').is_some_and(|(prefix, id)| {
            !prefix.is_empty()
                && !id.is_empty()
                && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !valid_store {
        return Err(lines.error(
            &raw.identity_store_id,
            format!("`{store}` is not an Identity Store id (d-<id>)"),
        ));
    }
    Ok(IdentityCenter {
        instance_arn: instance_arn.to_owned(),
        identity_store_id: store.to_owned(),
    })
}

/// The instance id (`ssoins-…`) of an Identity Center instance ARN
/// (`arn:<partition>:sso:::instance/ssoins-<id>`).
fn sso_instance_id(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let id = rest.strip_prefix("sso:::instance/")?;
    sso_id(id, "ssoins-").then_some(id)
}

fn sso_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// An `sso_permission_set` target: a permission set of the `[identity_center]` instance
/// (`arn:<partition>:sso:::permissionSet/ssoins-<id>/ps-<id>`) and one AWS account.
fn sso_permission_set(
    t: &RawTarget,
    target_name: &str,
    identity_center: Option<&IdentityCenter>,
    lines: &Lines<'_>,
) -> Result<TargetKind, ConfigError> {
    let Some(center) = identity_center else {
        return Err(lines.error(
            &t.kind,
            format!("target `{target_name}` of type sso_permission_set needs [identity_center] with instance_arn and identity_store_id"),
        ));
    };
    if t.group.is_some() || t.roles.is_some() || t.function_arn.is_some() {
        return Err(lines.error(
            &t.kind,
            format!("target `{target_name}` of type sso_permission_set takes no group, roles or function_arn"),
        ));
    }
    let arn = t.permission_set_arn.as_ref().ok_or_else(|| {
        lines.error(
            &t.kind,
            format!("target `{target_name}` of type sso_permission_set needs `permission_set_arn`"),
        )
    })?;
    let text = arn.get_ref().trim();
    let instance = sso_instance_id(&center.instance_arn).unwrap_or_default();
    let of_instance = text
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(_, rest)| rest.strip_prefix("sso:::permissionSet/"))
        .and_then(|rest| rest.split_once('/'))
        .filter(|(ins, ps)| sso_id(ins, "ssoins-") && sso_id(ps, "ps-"));
    match of_instance {
        None => {
            return Err(lines.error(
                arn,
                format!("`{text}` is not a permission set ARN (arn:aws:sso:::permissionSet/ssoins-<id>/ps-<id>)"),
            ))
        }
        Some((ins, _)) if ins != instance => {
            return Err(lines.error(
                arn,
                format!("permission set `{text}` is not of the [identity_center] instance {}", center.instance_arn),
            ))
        }
        Some(_) => {}
    }
    let accounts = t.accounts.as_ref().ok_or_else(|| {
        lines.error(
            &t.kind,
            format!("target `{target_name}` of type sso_permission_set needs `accounts` (the AWS account ids it may be granted in)"),
        )
    })?;
    let mut ids: Vec<String> = Vec::with_capacity(accounts.len());
    for account in accounts {
        let id = account_id(account, lines)?;
        if ids.contains(&id) {
            return Err(lines.error(account, format!("account `{id}` is listed twice")));
        }
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(lines.error(
            &t.kind,
            format!("target `{target_name}` lists no account; name at least one"),
        ));
    }
    Ok(TargetKind::SsoPermissionSet {
        permission_set_arn: text.to_owned(),
        accounts: ids,
        end_sessions: t.end_sessions.unwrap_or(false),
    })
}

/// An AWS account id: 12 digits (surrounding blanks ignored).
fn account_id(account: &Spanned<String>, lines: &Lines<'_>) -> Result<String, ConfigError> {
    let id = account.get_ref().trim();
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(lines.error(
            account,
            format!("`{id}` is not an AWS account id (12 digits)"),
        ));
    }
    Ok(id.to_owned())
}

fn validate_identity(raw: &RawIdentity, lines: &Lines<'_>) -> Result<Identity, ConfigError> {
    let accounts = match &raw.accounts {
        None => None,
        Some(list) => {
            let mut accounts = Vec::with_capacity(list.len());
            for account in list {
                accounts.push(account_id(account, lines)?);
            }
            Some(accounts)
        }
    };
    let mut trusted_roles = Vec::with_capacity(raw.trusted_roles.len());
    for role in &raw.trusted_roles {
        let pattern = role.get_ref().trim();
        let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-*".contains(c);
        if pattern.chars().all(|c| c == '*') || !pattern.chars().all(valid) {
            return Err(lines.error(
                role,
                format!("trusted_roles entry `{pattern}` must be a role name, `*` standing for any characters (and not `*` alone: that trusts every role)"),
            ));
        }
        trusted_roles.push(pattern.to_owned());
    }
    Ok(Identity {
        accounts,
        iam_users: raw.iam_users,
        trusted_roles,
    })
}

/// The role name of a role name or role ARN (`arn:<partition>:iam::<account>:role/<path>name`),
/// or `None` when it is neither. IAM role names are 1 to 64 of `A-Za-z0-9+=,.@_-`.
pub fn role_name(role: &str) -> Option<&str> {
    let name = match role.strip_prefix("arn:") {
        Some(rest) => {
            let mut parts = rest.splitn(5, ':');
            let (_partition, service, region, account, resource) = (
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
                parts.next()?,
            );
            let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
            if service != "iam" || !region.is_empty() || !valid_account {
                return None;
            }
            resource.strip_prefix("role/")?.rsplit('/').next()?
        }
        None => role,
    };
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    valid.then_some(name)
}
