//! Reconciliation: what IAM and IAM Identity Center say against what elevate recorded,
//! repaired in both directions. What elevate manages is each IAM group of its targets and each
//! permission set of its targets in each of their accounts; its holders are IAM users, or
//! Identity Store users.
//!
//! - A member of a group elevate manages whom no ACTIVE or APPROVED grant explains (and who is
//!   not a standing member of a flow with that group) is removed. A permission set's
//!   assignment is removed likewise, but only for people of elevate.toml: an assignment of
//!   anyone else is not elevate's to judge.
//! - An ACTIVE grant whose access is missing is never left ACTIVE. When elevate itself removed
//!   it (another grant of the same access ended after this one began, the race of two grants
//!   ending and starting at once), the access is restored. Otherwise someone removed it
//!   outside elevate (an incident responder, say): the grant is recorded as ended by an outside
//!   change, and the access is not added again.
//!
//! Each repair is an audit event on the grant it concerns (for a removed member: their latest
//! request of that access, when there is one) and a log line with `repair = <kind>` for alarms.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Target, TargetKind};
use crate::machine::{self, Command};
use crate::model::{Request, RequestId, State, Terms};
use crate::names::PersonName;
use crate::ports::Membership;

use super::grant::{end_grant, read_back, same_access};
use super::query::require_auditor;
use super::{App, Caller, ServiceError};

/// What reconciliation did, or would do with `dry_run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub dry_run: bool,
    /// Groups looked at.
    pub groups: usize,
    /// ACTIVE and APPROVED grants compared with them.
    pub grants: usize,
    pub repairs: Vec<Repair>,
    /// Steps that failed (logged); the next sweep tries again.
    pub errors: usize,
}

/// One difference between IAM and the grants, and what was (or would be) done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    pub kind: RepairKind,
    pub group: String,
    pub iam_user: String,
    /// The person, when the IAM user is one of elevate.toml or of a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonName>,
    /// The grant the repair concerns or is recorded on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairKind {
    /// A member without a grant: removed.
    MembershipRemoved,
    /// An ACTIVE grant whose access elevate's own race removed: added again.
    AccessRestored,
    /// An ACTIVE grant whose access was removed outside elevate: the grant ends.
    EndedByOutsideChange,
}

impl RepairKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairKind::MembershipRemoved => "membership_removed",
            RepairKind::AccessRestored => "access_restored",
            RepairKind::EndedByOutsideChange => "ended_by_outside_change",
        }
    }
}

/// What reconciliation would change right now, changing nothing. Auditors only.
pub async fn reconcile_preview(
    app: &App,
    caller: &Caller<'_>,
) -> Result<Reconciliation, ServiceError> {
    require_auditor(app, caller)?;
    reconcile(app, true).await
}

/// Compares every group elevate manages with the ACTIVE and APPROVED grants and repairs the
/// differences (or only lists them, with `dry_run`).
pub async fn reconcile(app: &App, dry_run: bool) -> Result<Reconciliation, ServiceError> {
    let mut report = Reconciliation {
        dry_run,
        ..Reconciliation::default()
    };

    // Members first, grants second: a grant that adds a member is APPROVED before it adds,
    // so every member listed here already has its grant in the listing below.
    let groups = configured_access(app);
    let members = list_members(app, &groups, &mut report).await;

    let mut grants = app.store.list_by_state(State::Active).await?;
    grants.extend(app.store.list_by_state(State::Approved).await?);
    report.grants = grants.len();
    // IAM user and group names are unique regardless of case: compare them lower-cased.
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Each grant with its terms and the identity that holds its access (`None`: a custom
    // target, or someone the directory no longer has).
    let mut grant_terms = Vec::with_capacity(grants.len());
    for grant in &grants {
        let terms = match app.terms(grant) {
            Ok(terms) => terms.into_owned(),
            Err(err) => {
                report.errors += 1;
                tracing::error!(request_id = %grant.id, error = %err, "grant without terms; reconciliation skips it");
                continue;
            }
        };
        match holder(app, &terms).await {
            Ok(holder) => grant_terms.push((grant, terms, holder)),
            Err(err) => {
                report.errors += 1;
                tracing::error!(request_id = %grant.id, error = %err, "could not find the holder of a grant; reconciliation skips it");
            }
        }
    }
    // Access that left elevate.toml while grants on it still run: only those grants' access
    // is checked (listed after the grants, so a member there proves nothing about orphans).
    let mut retired = BTreeMap::new();
    for (_, terms, holder) in &grant_terms {
        let (Some(key), Some(holder)) = (access_key(&terms.target.kind), holder) else {
            continue;
        };
        holders
            .entry(key.clone())
            .or_default()
            .insert(holder.clone());
        if !groups.contains_key(&key) {
            retired.insert(key, terms.target.clone());
        }
    }
    let retired_members = list_members(app, &retired, &mut report).await;
    report.groups = members.len() + retired_members.len();

    // The people of elevate.toml by Identity Store user id, asked once when a permission set
    // has an assignment no grant explains.
    let mut directory_people = None;
    for (key, users) in &members {
        let target = &groups[key];
        let standing = standing_members(app, key);
        let permission_set = matches!(target.kind, TargetKind::SsoPermissionSet { .. });
        for user in users {
            let user_key = user.to_ascii_lowercase();
            let explained = holders.get(key).is_some_and(|h| h.contains(&user_key));
            if explained {
                continue;
            }
            let person = if permission_set {
                let known = directory_people.get_or_insert(people_by_user_id(app).await);
                match known.people.get(&user_key) {
                    Some(person) => Some(*person),
                    None if known.incomplete => {
                        report.errors += 1;
                        tracing::error!(access = %key, member = %user, "could not tell whose assignment this is: the directory did not answer for every person");
                        continue;
                    }
                    None => None,
                }
            } else {
                app.config
                    .people
                    .iter()
                    .find(|p| p.iam_user.eq_ignore_ascii_case(user))
            };
            let is_standing = standing.contains(&user_key)
                || (permission_set
                    && person.is_some_and(|p| {
                        standing.contains(&p.iam_user.to_ascii_lowercase())
                            || standing.contains(&p.email.to_ascii_lowercase())
                    }));
            if is_standing {
                continue;
            }
            if person.is_none() && permission_set {
                tracing::info!(access = %key, member = %user, "assigned to someone who is not a person of elevate.toml; not elevate's to remove");
                continue;
            }
            let group = target.kind.resource();
            match remove_member(app, target, &group, user, person, dry_run).await {
                Ok(Some(repair)) => report.repairs.push(repair),
                Ok(None) => {}
                Err(err) => {
                    report.errors += 1;
                    tracing::error!(access = %key, member = %user, error = %err, "could not remove a member without a grant");
                }
            }
        }
    }

    for (grant, terms, holder) in &grant_terms {
        let Some(key) = access_key(&terms.target.kind) else {
            continue;
        };
        let Some(present) = members.get(&key).or_else(|| retired_members.get(&key)) else {
            continue;
        };
        // Someone the directory no longer has holds nothing elevate can find: the end of the
        // grant reports that itself.
        let Some(user) = holder else {
            continue;
        };
        if grant.state != State::Active
            || present
                .iter()
                .any(|member| member.to_ascii_lowercase() == *user)
        {
            continue;
        }
        match missing_access(app, grant, terms, dry_run).await {
            Ok(Some(repair)) => report.repairs.push(repair),
            Ok(None) => {}
            Err(err) => {
                report.errors += 1;
                tracing::error!(request_id = %grant.id, error = %err, "could not repair a grant without its access");
            }
        }
    }

    tracing::info!(
        dry_run,
        groups = report.groups,
        grants = report.grants,
        repairs = report.repairs.len(),
        errors = report.errors,
        "reconciliation done"
    );
    Ok(report)
}

/// Every access elevate.toml's targets grant, by [`access_key`], with a target that grants
/// it: each IAM group, and each permission set in each of its accounts.
fn configured_access(app: &App) -> BTreeMap<String, Target> {
    let mut access = BTreeMap::new();
    for target in app.config.flows.iter().flat_map(|f| f.targets.iter()) {
        let narrowed: Vec<Target> = match &target.kind {
            TargetKind::SsoPermissionSet { accounts, .. } => accounts
                .iter()
                .filter_map(|account| target.in_account(Some(account)).ok())
                .collect(),
            _ => vec![target.clone()],
        };
        for one in narrowed {
            if let Some(key) = access_key(&one.kind) {
                access.entry(key).or_insert(one);
            }
        }
    }
    access
}

/// What reconciliation lists, named: an IAM group (lower-cased: IAM names ignore case), or a
/// permission set in one account. `None` for a custom target, which cannot be listed.
fn access_key(kind: &TargetKind) -> Option<String> {
    match kind {
        TargetKind::IamGroup { group, .. } => Some(group.to_ascii_lowercase()),
        TargetKind::SsoPermissionSet { .. } => kind.account().map(|_| kind.resource()),
        TargetKind::Lambda { .. } => None,
    }
}

/// The identity that holds a grant's access, as the strategy's `members` names it
/// (lower-cased): the IAM user, or the person's Identity Store user id. `None` for a custom
/// target, or someone the directory does not have.
async fn holder(app: &App, terms: &Terms) -> Result<Option<String>, ServiceError> {
    Ok(match &terms.target.kind {
        TargetKind::IamGroup { .. } => Some(terms.person.iam_user.to_ascii_lowercase()),
        TargetKind::SsoPermissionSet { .. } => app
            .directory
            .user_id(&terms.person)
            .await?
            .map(|id| id.to_ascii_lowercase()),
        TargetKind::Lambda { .. } => None,
    })
}

/// The people of elevate.toml by their Identity Store user id (lower-cased).
struct DirectoryPeople<'a> {
    people: BTreeMap<String, &'a crate::config::Person>,
    /// The directory failed for someone: an id not found may be theirs.
    incomplete: bool,
}

/// Asks the directory for every person's user id; a failure is logged and remembered.
async fn people_by_user_id(app: &App) -> DirectoryPeople<'_> {
    let mut found = DirectoryPeople {
        people: BTreeMap::new(),
        incomplete: false,
    };
    for person in &app.config.people {
        match app.directory.user_id(person).await {
            Ok(Some(id)) => {
                found.people.insert(id.to_ascii_lowercase(), person);
            }
            Ok(None) => {}
            Err(err) => {
                found.incomplete = true;
                tracing::error!(person = %person.name, error = %err, "could not find the person in the directory");
            }
        }
    }
    found
}

/// The members of each group; a group that cannot be listed is counted as an error and left
/// out.
async fn list_members(
    app: &App,
    groups: &BTreeMap<String, Target>,
    report: &mut Reconciliation,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut members = BTreeMap::new();
    for (group, target) in groups {
        match app.strategy.members(target).await {
            Ok(Some(list)) => {
                members.insert(group.clone(), list.into_iter().collect());
            }
            Ok(None) => {}
            Err(err) => {
                report.errors += 1;
                tracing::error!(group, error = %err, "could not list the group; reconciliation skips it");
            }
        }
    }
    members
}

/// The standing members (lower-cased) every flow granting the access `key` lists.
fn standing_members(app: &App, key: &str) -> BTreeSet<String> {
    app.config
        .flows
        .iter()
        .filter(|flow| {
            flow.targets.iter().any(|t| match &t.kind {
                TargetKind::SsoPermissionSet { accounts, .. } => accounts.iter().any(|account| {
                    t.in_account(Some(account))
                        .is_ok_and(|one| access_key(&one.kind).as_deref() == Some(key))
                }),
                kind => access_key(kind).as_deref() == Some(key),
            })
        })
        .flat_map(|flow| flow.standing_members.iter().map(|m| m.to_ascii_lowercase()))
        .collect()
}

/// Removes a member no grant explains, after a last look at the person's own grants: the
/// listings come from indexes that may lag a grant approved a moment ago, so every request
/// that is not over yet is read again from the table.
async fn remove_member(
    app: &App,
    target: &Target,
    group: &str,
    iam_user: &str,
    holder: Option<&crate::config::Person>,
    dry_run: bool,
) -> Result<Option<Repair>, ServiceError> {
    let person = holder.map(|p| p.name.clone());
    let key = access_key(&target.kind);
    let access = |terms: &Terms| {
        access_key(&terms.target.kind) == key
            && match &terms.target.kind {
                TargetKind::IamGroup { .. } => terms.person.iam_user.eq_ignore_ascii_case(iam_user),
                _ => holder.is_some_and(|p| p.name == terms.person.name),
            }
    };
    let mut history = Vec::new();
    if let Some(name) = &person {
        history = app.store.list_by_requester(name, &[]).await?;
        history.retain(|r| app.terms(r).is_ok_and(|t| access(&t)));
        for listed in &mut history {
            if matches!(
                listed.state,
                State::Pending | State::Approved | State::Active
            ) {
                if let Some(fresh) = app.store.get(&listed.id).await? {
                    *listed = fresh;
                }
            }
        }
        if history
            .iter()
            .any(|r| matches!(r.state, State::Active | State::Approved))
        {
            return Ok(None);
        }
    }
    let latest = history.into_iter().max_by_key(|r| r.created_at);
    let detail = format!("{iam_user} was in {group} without an active grant");
    let repair = Repair {
        kind: RepairKind::MembershipRemoved,
        group: group.to_owned(),
        iam_user: iam_user.to_owned(),
        person: person.clone(),
        request_id: latest.as_ref().map(|r| r.id.clone()),
        detail: detail.clone(),
    };
    if dry_run {
        return Ok(Some(repair));
    }
    app.strategy.remove_member(target, iam_user).await?;
    tracing::warn!(
        repair = RepairKind::MembershipRemoved.as_str(),
        group,
        iam_user,
        request_id = latest.as_ref().map(|r| r.id.to_string()),
        "{detail}; removed"
    );
    if let Some(latest) = latest {
        record(app, latest, format!("{detail}; removed")).await?;
    }
    Ok(Some(repair))
}

/// An ACTIVE grant whose member is not in its group: restored when elevate's own race removed
/// it, ended when someone outside elevate did.
async fn missing_access(
    app: &App,
    grant: &Request,
    terms: &Terms,
    dry_run: bool,
) -> Result<Option<Repair>, ServiceError> {
    let now = app.clock.now();
    // The listing may be a moment old: act only on what a fresh read confirms.
    let Some(fresh) = app.store.get(&grant.id).await? else {
        return Ok(None);
    };
    if !fresh.covers(now)
        || app.strategy.is_member(&terms.target, &terms.person).await? != Membership::Absent
    {
        return Ok(None);
    }
    let group = terms.target.kind.resource();
    let repair = |kind, detail: String| Repair {
        kind,
        group: group.clone(),
        iam_user: terms.person.iam_user.clone(),
        person: Some(terms.person.name.clone()),
        request_id: Some(fresh.id.clone()),
        detail,
    };
    if let Some(ended) = ended_by_elevate(app, &fresh, terms).await? {
        let detail = format!(
            "{} was missing from {group}: removed when grant {ended} ended",
            terms.person.iam_user
        );
        if dry_run {
            return Ok(Some(repair(RepairKind::AccessRestored, detail)));
        }
        app.strategy
            .escalate(&terms.target, &terms.person, &fresh)
            .await?;
        read_back(app, terms, Membership::Absent, "restoring").await?;
        tracing::warn!(repair = RepairKind::AccessRestored.as_str(), request_id = %fresh.id, group, "{detail}; restored");
        record(app, fresh.clone(), format!("{detail}; restored")).await?;
        return Ok(Some(repair(RepairKind::AccessRestored, detail)));
    }

    let detail = format!(
        "{} was removed from {group} outside elevate",
        terms.person.iam_user
    );
    if dry_run {
        return Ok(Some(repair(RepairKind::EndedByOutsideChange, detail)));
    }
    let command = Command::Revoke {
        reason: Some(format!(
            "{detail}; the grant ends and the access is not added again"
        )),
    };
    end_grant(app, fresh.clone(), command, &app.system("reconcile")).await?;
    tracing::warn!(repair = RepairKind::EndedByOutsideChange.as_str(), request_id = %fresh.id, group, "{detail}; grant ended");
    Ok(Some(repair(RepairKind::EndedByOutsideChange, detail)))
}

/// Another grant of the same access whose end removed the access (it kept it for no other
/// grant, and it was not reconciliation ending a grant whose access was already gone) after
/// `grant`'s access was confirmed: that removal is what took `grant`'s access away.
async fn ended_by_elevate(
    app: &App,
    grant: &Request,
    terms: &Terms,
) -> Result<Option<RequestId>, ServiceError> {
    let began: DateTime<Utc> = grant.activated_at.unwrap_or(grant.created_at);
    let ended = app
        .store
        .list_by_requester(&grant.requester, &[State::Expired, State::Revoked])
        .await?;
    Ok(ended
        .into_iter()
        .filter(|other| {
            other.id != grant.id
                && other.kept_access_for.is_none()
                && other.ended_by.as_deref() != Some("elevate:reconcile")
                && other.ended_at.is_some_and(|at| at >= began)
        })
        .find(|other| app.terms(other).is_ok_and(|t| same_access(terms, &t)))
        .map(|other| other.id))
}

/// Writes a repair event on `request`'s chain, its state unchanged. A lost race (the request
/// moved meanwhile) is tried again on the fresh copy.
async fn record(app: &App, mut request: Request, reason: String) -> Result<(), ServiceError> {
    for _ in 0..3 {
        let transition = machine::apply(
            &request,
            Command::Repair {
                reason: reason.clone(),
            },
            &app.system("reconcile"),
            app.clock.now(),
        )?;
        match app.write(&transition).await? {
            Some(_) => return Ok(()),
            None => request = app.load(&request.id).await?,
        }
    }
    Err(ServiceError::Conflict(format!(
        "request {} kept changing; its repair event was not written",
        request.id
    )))
}
