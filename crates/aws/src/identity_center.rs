//! IAM Identity Center: a permission set assigned to an Identity Store user in an AWS account,
//! and the user found in the directory.
//!
//! An assignment is the tuple (instance, account, permission set, user); AWS gives it no id of
//! its own, creating one that exists adds nothing, and deleting it removes it for everyone who
//! shared it (overlapping grants are counted by the caller, as for IAM groups). Creating and
//! deleting are asynchronous: a 200 means only that AWS accepted the request, so each is
//! followed to its end with `DescribeAccountAssignment{Creation,Deletion}Status`, and only
//! SUCCEEDED is success. Identity Center updates one permission set's role in an account one
//! request at a time, so a create racing a delete answers ConflictException; that, throttling,
//! and a request that ends FAILED are asked again after a growing pause. A FAILED request that
//! stays FAILED is refused with AWS's own reason; conflicts or throttling that do not clear,
//! or a request still IN_PROGRESS when the wait ends, are unavailability (the caller retries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_identitystore::operation::get_group_id::GetGroupIdError;
use aws_sdk_identitystore::types::{AlternateIdentifier, MemberId, ResourceType, UniqueAttribute};
use aws_sdk_ssoadmin::types::{
    AccountAssignmentOperationStatus, PrincipalType, ProvisionTargetType, StatusValues, TargetType,
};
use aws_smithy_types::Document;
use chrono::{DateTime, Utc};
use elevate_core::config::{Person, Target, TargetKind};
use elevate_core::model::{Request, SessionsEnded};
use elevate_core::ports::{Directory, DirectoryError, Membership, Strategy, StrategyError};
use tracing::instrument;

use crate::error::AwsError;
use crate::sessions::fault;

/// One assignment: the permission set, in the account, to the Identity Store user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'a> {
    pub account: &'a str,
    pub permission_set_arn: &'a str,
    pub user_id: &'a str,
}

/// How long to keep asking: attempts of a create or delete, the pause after each failed one
/// (doubling from `first_pause` up to `longest_pause`), and how often and how long to follow a
/// request's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub attempts: u32,
    pub first_pause: Duration,
    pub longest_pause: Duration,
    pub poll_every: Duration,
    pub poll_for: Duration,
}

impl Default for Pacing {
    /// Four attempts, pausing 1, 2 and 4 s between them, each followed for up to 15 s: at most
    /// about 70 s, within the escalate function's 90 s (and, after the minute a revocation
    /// waits for its expiry, the revoke function's 150 s). What does not finish in that time is
    /// unavailable, and the function's retries and the sweep ask again.
    fn default() -> Self {
        Pacing {
            attempts: 4,
            first_pause: Duration::from_secs(1),
            longest_pause: Duration::from_secs(8),
            poll_every: Duration::from_secs(1),
            poll_for: Duration::from_secs(15),
        }
    }
}

impl Pacing {
    fn pause(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_pause
            .saturating_mul(1_u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.longest_pause)
    }
}

/// Which of the two asynchronous operations a status belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Create => "CreateAccountAssignment",
            Operation::Delete => "DeleteAccountAssignment",
        }
    }
}

/// Where one create or delete ended.
enum Ended {
    Succeeded,
    Failed(String),
}

/// Why one attempt did not succeed, when asking again may.
enum Retry {
    /// AWS answered the request FAILED, with its reason.
    Failed(String),
    /// ConflictException or ThrottlingException (after the SDK's own retries).
    Busy(String),
}

/// The Identity Center instance and its Identity Store, as elevate uses them.
pub struct IdentityCenter {
    admin: aws_sdk_ssoadmin::Client,
    directory: aws_sdk_identitystore::Client,
    instance_arn: String,
    identity_store_id: String,
    pacing: Pacing,
    /// User ids found, by the name asked for: kept for the life of the process (a cold start).
    users: Mutex<HashMap<String, String>>,
    /// Group ids found, by display name: kept likewise (memberships never are).
    groups: Mutex<HashMap<String, String>>,
}

impl IdentityCenter {
    pub fn new(
        sdk: &SdkConfig,
        instance_arn: impl Into<String>,
        identity_store_id: impl Into<String>,
    ) -> Self {
        IdentityCenter {
            admin: aws_sdk_ssoadmin::Client::new(sdk),
            directory: aws_sdk_identitystore::Client::new(sdk),
            instance_arn: instance_arn.into(),
            identity_store_id: identity_store_id.into(),
            pacing: Pacing::default(),
            users: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    pub fn instance_arn(&self) -> &str {
        &self.instance_arn
    }

    pub fn identity_store_id(&self) -> &str {
        &self.identity_store_id
    }

    /// The Identity Store user id of `name`: the user whose user name it is and, when it looks
    /// like an email, the user with that email. `None` when the directory has neither; refused
    /// when they are two different users (one's user name is another's email), rather than
    /// guessing which one the person is. Found ids are kept for the life of the process (a
    /// cold start).
    #[instrument(skip(self), err)]
    pub async fn user_id(&self, name: &str) -> Result<Option<String>, StrategyError> {
        if let Some(found) = lock(&self.users).get(name) {
            return Ok(Some(found.clone()));
        }
        let by_name = self.user_id_by("userName", name).await?;
        let by_email = if name.contains('@') {
            self.user_id_by("emails.value", name).await?
        } else {
            None
        };
        let id = match (by_name, by_email) {
            (Some(a), Some(b)) if a != b => {
                return Err(StrategyError::Refused(format!(
                    "`{name}` is the user name of Identity Store user {a} and the email of another, {b}: which one is meant is ambiguous"
                )))
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Ok(None),
        };
        lock(&self.users).insert(name.to_owned(), id.clone());
        Ok(Some(id))
    }

    /// The id of the group whose display name is `name`; `None` when there is none. Found ids
    /// are kept for the life of the process.
    #[instrument(skip(self), err)]
    pub async fn group_id(&self, name: &str) -> Result<Option<String>, StrategyError> {
        if let Some(found) = lock(&self.groups).get(name) {
            return Ok(Some(found.clone()));
        }
        let attribute = UniqueAttribute::builder()
            .attribute_path("displayName")
            .attribute_value(Document::String(name.to_owned()))
            .build()
            .map_err(|e| fault("identitystore GetGroupId".to_owned(), e))?;
        let answer = self
            .directory
            .get_group_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(attribute))
            .send()
            .await;
        let id = match answer {
            Ok(found) => found.group_id().to_owned(),
            // Not found is about the group only when AWS says so: a wrong store is a fault.
            Err(err)
                if err.as_service_error().is_some_and(|e| match e {
                    GetGroupIdError::ResourceNotFoundException(missing) => missing
                        .resource_type()
                        .is_none_or(|kind| *kind == ResourceType::Group),
                    _ => false,
                }) =>
            {
                return Ok(None)
            }
            Err(err) => {
                return Err(fault(
                    format!(
                        "identitystore GetGroupId of `{name}` in {}",
                        self.identity_store_id
                    ),
                    err,
                ))
            }
        };
        lock(&self.groups).insert(name.to_owned(), id.clone());
        Ok(Some(id))
    }

    /// The ids of the groups the user is a member of, read now
    /// (`ListGroupMembershipsForMember`, every page).
    #[instrument(skip(self), err)]
    pub async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, StrategyError> {
        let mut pages = self
            .directory
            .list_group_memberships_for_member()
            .identity_store_id(&self.identity_store_id)
            .member_id(MemberId::UserId(user_id.to_owned()))
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                fault(
                    format!(
                        "identitystore ListGroupMembershipsForMember of {user_id} in {}",
                        self.identity_store_id
                    ),
                    e,
                )
            })?;
            ids.extend(
                page.group_memberships()
                    .iter()
                    .filter_map(|m| m.group_id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }

    async fn user_id_by(&self, path: &str, value: &str) -> Result<Option<String>, StrategyError> {
        let attribute = UniqueAttribute::builder()
            .attribute_path(path)
            .attribute_value(Document::String(value.to_owned()))
            .build()
            .map_err(|e| fault(format!("identitystore GetUserId by {path}"), e))?;
        let answer = self
            .directory
            .get_user_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(attribute))
            .send()
            .await;
        match answer {
            Ok(found) => Ok(Some(found.user_id().to_owned())),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(fault(
                format!(
                    "identitystore GetUserId by {path} in {}",
                    self.identity_store_id
                ),
                err,
            )),
        }
    }

    /// Assigns the permission set and waits until AWS says the assignment SUCCEEDED. An
    /// assignment that exists already is success.
    #[instrument(skip(self), err)]
    pub async fn assign(&self, assignment: &Assignment<'_>) -> Result<(), StrategyError> {
        self.until_done(Operation::Create, assignment).await
    }

    /// Removes the assignment and waits until AWS says the removal SUCCEEDED. An assignment
    /// that is not there is success.
    #[instrument(skip(self), err)]
    pub async fn unassign(&self, assignment: &Assignment<'_>) -> Result<(), StrategyError> {
        self.until_done(Operation::Delete, assignment).await
    }

    /// Whether the assignment exists, read from `ListAccountAssignments`.
    #[instrument(skip(self), err)]
    pub async fn is_assigned(&self, assignment: &Assignment<'_>) -> Result<bool, StrategyError> {
        let users = self
            .assigned_users(assignment.account, assignment.permission_set_arn)
            .await?;
        Ok(users.iter().any(|user| user == assignment.user_id))
    }

    /// The Identity Store user ids the permission set is assigned to in the account (groups
    /// it is assigned to are not listed: elevate assigns users only).
    #[instrument(skip(self), err)]
    pub async fn assigned_users(
        &self,
        account: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<String>, StrategyError> {
        let mut pages = self
            .admin
            .list_account_assignments()
            .instance_arn(&self.instance_arn)
            .account_id(account)
            .permission_set_arn(permission_set_arn)
            .into_paginator()
            .items()
            .send();
        let mut users = Vec::new();
        while let Some(found) = pages.next().await {
            let found = found.map_err(|e| {
                fault(
                    format!("sso-admin ListAccountAssignments {permission_set_arn} in {account}"),
                    e,
                )
            })?;
            if found.principal_type() == Some(&PrincipalType::User) {
                if let Some(id) = found.principal_id() {
                    if !users.iter().any(|user| user == id) {
                        users.push(id.to_owned());
                    }
                }
            }
        }
        Ok(users)
    }

    /// Ends the sessions of the assignment's user of its permission set in its account issued
    /// before `before`: a deny in the permission set's inline policy (see
    /// [`crate::sso_sessions`]), the permission set provisioned again to the account and
    /// followed to its end, and the policy read back. Conflicts and throttling are asked again
    /// like assignments are; a provisioning that stays FAILED is refused with AWS's reason.
    #[instrument(skip(self), err)]
    pub async fn end_sessions(
        &self,
        assignment: &Assignment<'_>,
        before: DateTime<Utc>,
    ) -> Result<SessionsEnded, StrategyError> {
        let what = format!(
            "ending the sessions of user {} of permission set {} in account {}",
            assignment.user_id, assignment.permission_set_arn, assignment.account
        );
        self.retrying(&what, || self.end_sessions_once(assignment, before))
            .await
    }

    async fn end_sessions_once(
        &self,
        assignment: &Assignment<'_>,
        before: DateTime<Utc>,
    ) -> Result<Result<SessionsEnded, Retry>, StrategyError> {
        let policy = match self.inline_policy(assignment.permission_set_arn).await? {
            Ok(policy) => policy,
            Err(retry) => return Ok(Err(retry)),
        };
        let (document, outcome) = crate::sso_sessions::with_ended_sessions(
            policy.as_deref(),
            assignment.user_id,
            assignment.account,
            before,
            Utc::now(),
        )
        .map_err(StrategyError::Refused)?;
        let what = format!(
            "sso-admin PutInlinePolicyToPermissionSet {}",
            assignment.permission_set_arn
        );
        let put = self
            .admin
            .put_inline_policy_to_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(assignment.permission_set_arn)
            .inline_policy(&document)
            .send()
            .await;
        if let Err(err) = put {
            let busy = err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception() || e.is_throttling_exception());
            return not_done(what, busy, err).map(Err);
        }
        if let Err(retry) = self
            .provision(assignment.permission_set_arn, assignment.account)
            .await?
        {
            return Ok(Err(retry));
        }
        // Read back: another writer of the policy (an administrator, another end) may have
        // replaced it between the read and the write.
        let now = match self.inline_policy(assignment.permission_set_arn).await? {
            Ok(policy) => policy.unwrap_or_default(),
            Err(retry) => return Ok(Err(retry)),
        };
        if !crate::sso_sessions::ends_sessions(&now, assignment.user_id, assignment.account, before)
        {
            return Ok(Err(Retry::Busy(
                "the inline policy read back does not deny the sessions (written over meanwhile)"
                    .to_owned(),
            )));
        }
        Ok(Ok(outcome))
    }

    /// The permission set's inline policy; `None` when it has none.
    async fn inline_policy(
        &self,
        permission_set_arn: &str,
    ) -> Result<Result<Option<String>, Retry>, StrategyError> {
        let what = format!("sso-admin GetInlinePolicyForPermissionSet {permission_set_arn}");
        match self
            .admin
            .get_inline_policy_for_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(permission_set_arn)
            .send()
            .await
        {
            Ok(answer) => Ok(Ok(answer
                .inline_policy()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned))),
            Err(err) => {
                let busy = err
                    .as_service_error()
                    .is_some_and(|e| e.is_throttling_exception());
                not_done(what, busy, err).map(Err)
            }
        }
    }

    /// Provisions the permission set to the account (its role there gets the inline policy)
    /// and follows the request until it is no longer IN_PROGRESS.
    async fn provision(
        &self,
        permission_set_arn: &str,
        account: &str,
    ) -> Result<Result<(), Retry>, StrategyError> {
        let what = format!("sso-admin ProvisionPermissionSet {permission_set_arn} to {account}");
        let sent = self
            .admin
            .provision_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(permission_set_arn)
            .target_type(ProvisionTargetType::AwsAccount)
            .target_id(account)
            .send()
            .await;
        let mut status = match sent {
            Ok(answer) => answer.permission_set_provisioning_status().cloned(),
            Err(err) => {
                let busy = err
                    .as_service_error()
                    .is_some_and(|e| e.is_conflict_exception() || e.is_throttling_exception());
                return not_done(what, busy, err).map(Err);
            }
        }
        .ok_or_else(|| StrategyError::Unavailable(format!("{what} answered no status").into()))?;
        let request_id = status.request_id().unwrap_or_default().to_owned();
        let started = tokio::time::Instant::now();
        loop {
            match status.status() {
                Some(StatusValues::Succeeded) => return Ok(Ok(())),
                Some(StatusValues::Failed) => {
                    return Ok(Err(Retry::Failed(
                        status
                            .failure_reason()
                            .unwrap_or("no reason given")
                            .to_owned(),
                    )))
                }
                _ if started.elapsed() >= self.pacing.poll_for => {
                    return Err(StrategyError::Unavailable(
                        format!(
                            "{what}: request {request_id} still in progress after {} s",
                            self.pacing.poll_for.as_secs()
                        )
                        .into(),
                    ))
                }
                _ => tokio::time::sleep(self.pacing.poll_every).await,
            }
            status = self
                .admin
                .describe_permission_set_provisioning_status()
                .instance_arn(&self.instance_arn)
                .provision_permission_set_request_id(&request_id)
                .send()
                .await
                .map_err(|e| {
                    fault(
                        format!("sso-admin DescribePermissionSetProvisioningStatus {request_id}"),
                        e,
                    )
                })?
                .permission_set_provisioning_status()
                .cloned()
                .ok_or_else(|| {
                    StrategyError::Unavailable(
                        format!("the status of {what} request {request_id} is empty").into(),
                    )
                })?;
        }
    }

    async fn until_done(
        &self,
        operation: Operation,
        assignment: &Assignment<'_>,
    ) -> Result<(), StrategyError> {
        let what = format!(
            "{} of permission set {} in account {} for user {}",
            operation.name(),
            assignment.permission_set_arn,
            assignment.account,
            assignment.user_id
        );
        self.retrying(&what, || async {
            Ok(match self.attempt(operation, assignment).await? {
                None => Ok(()),
                Some(retry) => Err(retry),
            })
        })
        .await
    }

    /// Runs `attempt` until it succeeds or the attempts run out, pausing as [`Pacing`] says.
    /// An attempt answers `Err(Retry)` when asking again may help; a fault is returned at once.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, StrategyError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Result<T, Retry>, StrategyError>>,
    {
        let attempts = self.pacing.attempts.max(1);
        let mut last = Retry::Busy(String::new());
        for round in 1..=attempts {
            match attempt().await? {
                Ok(done) => return Ok(done),
                Err(retry) => {
                    let why = match &retry {
                        Retry::Failed(reason) => format!("ended FAILED: {reason}"),
                        Retry::Busy(why) => why.clone(),
                    };
                    tracing::warn!(
                        what,
                        attempt = round,
                        attempts,
                        why,
                        "Identity Center did not do it; asking again"
                    );
                    last = retry;
                }
            }
            if round < attempts {
                tokio::time::sleep(self.pacing.pause(round)).await;
            }
        }
        Err(match last {
            Retry::Failed(reason) => StrategyError::Refused(format!(
                "{what} ended FAILED {attempts} times; AWS says: {reason}"
            )),
            Retry::Busy(why) => StrategyError::Unavailable(
                format!("{what} was still refused after {attempts} attempts: {why}").into(),
            ),
        })
    }

    /// One create or delete, followed to its end. `Ok(None)` when it succeeded.
    async fn attempt(
        &self,
        operation: Operation,
        assignment: &Assignment<'_>,
    ) -> Result<Option<Retry>, StrategyError> {
        let what = format!(
            "sso-admin {} {} in {}",
            operation.name(),
            assignment.permission_set_arn,
            assignment.account
        );
        let status = match operation {
            Operation::Create => {
                let sent = self
                    .admin
                    .create_account_assignment()
                    .instance_arn(&self.instance_arn)
                    .target_id(assignment.account)
                    .target_type(TargetType::AwsAccount)
                    .permission_set_arn(assignment.permission_set_arn)
                    .principal_type(PrincipalType::User)
                    .principal_id(assignment.user_id)
                    .send()
                    .await;
                match sent {
                    Ok(answer) => answer.account_assignment_creation_status().cloned(),
                    Err(err) => {
                        let busy = err.as_service_error().is_some_and(|e| {
                            e.is_conflict_exception() || e.is_throttling_exception()
                        });
                        return not_done(what, busy, err).map(Some);
                    }
                }
            }
            Operation::Delete => {
                let sent = self
                    .admin
                    .delete_account_assignment()
                    .instance_arn(&self.instance_arn)
                    .target_id(assignment.account)
                    .target_type(TargetType::AwsAccount)
                    .permission_set_arn(assignment.permission_set_arn)
                    .principal_type(PrincipalType::User)
                    .principal_id(assignment.user_id)
                    .send()
                    .await;
                match sent {
                    Ok(answer) => answer.account_assignment_deletion_status().cloned(),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_not_found_exception()) =>
                    {
                        tracing::info!("the assignment was not there; nothing to remove");
                        return Ok(None);
                    }
                    Err(err) => {
                        let busy = err.as_service_error().is_some_and(|e| {
                            e.is_conflict_exception() || e.is_throttling_exception()
                        });
                        return not_done(what, busy, err).map(Some);
                    }
                }
            }
        };
        let status = status.ok_or_else(|| {
            StrategyError::Unavailable(format!("{what} answered no request status").into())
        })?;
        match self.follow(operation, status).await? {
            Ended::Succeeded => Ok(None),
            Ended::Failed(reason) => Ok(Some(Retry::Failed(reason))),
        }
    }

    /// Follows a request until it is no longer IN_PROGRESS, or the wait ends (unavailable).
    async fn follow(
        &self,
        operation: Operation,
        mut status: AccountAssignmentOperationStatus,
    ) -> Result<Ended, StrategyError> {
        let request_id = status.request_id().unwrap_or_default().to_owned();
        let started = tokio::time::Instant::now();
        loop {
            match status.status() {
                Some(StatusValues::Succeeded) => return Ok(Ended::Succeeded),
                Some(StatusValues::Failed) => {
                    return Ok(Ended::Failed(
                        status
                            .failure_reason()
                            .unwrap_or("no reason given")
                            .to_owned(),
                    ))
                }
                // IN_PROGRESS, or a status this SDK does not know yet: not done.
                _ => {}
            }
            if request_id.is_empty() {
                return Err(StrategyError::Unavailable(
                    format!("{} answered no request id to follow", operation.name()).into(),
                ));
            }
            if started.elapsed() >= self.pacing.poll_for {
                return Err(StrategyError::Unavailable(
                    format!(
                        "{} request {request_id} was still in progress after {} s",
                        operation.name(),
                        self.pacing.poll_for.as_secs()
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(self.pacing.poll_every).await;
            status = self.describe(operation, &request_id).await?;
        }
    }

    async fn describe(
        &self,
        operation: Operation,
        request_id: &str,
    ) -> Result<AccountAssignmentOperationStatus, StrategyError> {
        let answer = match operation {
            Operation::Create => self
                .admin
                .describe_account_assignment_creation_status()
                .instance_arn(&self.instance_arn)
                .account_assignment_creation_request_id(request_id)
                .send()
                .await
                .map(|a| a.account_assignment_creation_status().cloned())
                .map_err(|e| {
                    fault(
                        format!("sso-admin DescribeAccountAssignmentCreationStatus {request_id}"),
                        e,
                    )
                })?,
            Operation::Delete => self
                .admin
                .describe_account_assignment_deletion_status()
                .instance_arn(&self.instance_arn)
                .account_assignment_deletion_request_id(request_id)
                .send()
                .await
                .map(|a| a.account_assignment_deletion_status().cloned())
                .map_err(|e| {
                    fault(
                        format!("sso-admin DescribeAccountAssignmentDeletionStatus {request_id}"),
                        e,
                    )
                })?,
        };
        answer.ok_or_else(|| {
            StrategyError::Unavailable(
                format!(
                    "the status of {} request {request_id} is empty",
                    operation.name()
                )
                .into(),
            )
        })
    }
}

/// [`Strategy`] for `sso_permission_set` targets: the person's Identity Store user (found by
/// their email) assigned the permission set in the target's account.
///
/// Reconciliation lists the users the permission set is assigned to in the account
/// (`members`, by Identity Store user id). Ending a grant ends the person's live sessions only
/// on targets with `end_sessions = true`.
pub struct PermissionSetStrategy {
    center: Option<Arc<IdentityCenter>>,
}

impl PermissionSetStrategy {
    /// `None` when elevate.toml has no `[identity_center]`: then no target is of this kind.
    pub fn new(center: Option<Arc<IdentityCenter>>) -> Self {
        PermissionSetStrategy { center }
    }

    /// The instance, and the one account and the permission set of `target`.
    fn parts<'a>(
        &'a self,
        target: &'a Target,
    ) -> Result<(&'a IdentityCenter, &'a str, &'a str), StrategyError> {
        let TargetKind::SsoPermissionSet {
            permission_set_arn,
            accounts,
            ..
        } = &target.kind
        else {
            return Err(StrategyError::WrongTarget(target.name.clone()));
        };
        let center = self.center.as_ref().ok_or_else(|| {
            StrategyError::Refused(format!(
                "target `{}` is a permission set, but elevate.toml has no [identity_center]",
                target.name
            ))
        })?;
        let [account] = accounts.as_slice() else {
            return Err(StrategyError::Refused(format!(
                "target `{}` names {} accounts; exactly one is supported",
                target.name,
                accounts.len()
            )));
        };
        Ok((center, account, permission_set_arn))
    }

    async fn user(
        &self,
        center: &IdentityCenter,
        person: &Person,
    ) -> Result<Option<String>, StrategyError> {
        center.user_id(&person.email).await
    }
}

#[async_trait]
impl Strategy for PermissionSetStrategy {
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        _request: &Request,
    ) -> Result<(), StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        let user_id = self.user(center, person).await?.ok_or_else(|| {
            StrategyError::Refused(format!(
                "{} is not a user of Identity Store {} (looked up by user name and by email)",
                person.email,
                center.identity_store_id()
            ))
        })?;
        center
            .assign(&Assignment {
                account,
                permission_set_arn,
                user_id: &user_id,
            })
            .await
    }

    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        let Some(user_id) = self.user(center, person).await? else {
            // A grant that never became active assigned nothing to someone the directory does
            // not know. One that did may have assigned to a user whose email has changed
            // since: never recorded as ended while that may still be there.
            if request.activated_at.is_none() {
                tracing::warn!(email = %person.email, "not in the Identity Store, and the grant never became active: nothing to remove");
                return Ok(());
            }
            return Err(StrategyError::Unavailable(
                format!(
                    "{} is no longer a user of Identity Store {}: their assignment of {permission_set_arn} in {account} cannot be found to remove it (remove it by hand, then end the grant again)",
                    person.email,
                    center.identity_store_id()
                )
                .into(),
            ));
        };
        center
            .unassign(&Assignment {
                account,
                permission_set_arn,
                user_id: &user_id,
            })
            .await
    }

    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        let Some(user_id) = self.user(center, person).await? else {
            return Ok(Membership::Absent);
        };
        let assigned = center
            .is_assigned(&Assignment {
                account,
                permission_set_arn,
                user_id: &user_id,
            })
            .await?;
        Ok(if assigned {
            Membership::Present
        } else {
            Membership::Absent
        })
    }

    /// The Identity Store user ids the permission set is assigned to in the target's account.
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        center
            .assigned_users(account, permission_set_arn)
            .await
            .map(Some)
    }

    /// Removes the assignment of the Identity Store user `user_id` (as `members` names them).
    async fn remove_member(&self, target: &Target, user_id: &str) -> Result<(), StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        center
            .unassign(&Assignment {
                account,
                permission_set_arn,
                user_id,
            })
            .await
    }

    /// With `end_sessions = true` on the target: the person's sessions of the permission set
    /// in the account issued before `before` are denied (see [`IdentityCenter::end_sessions`]).
    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError> {
        let (center, account, permission_set_arn) = self.parts(target)?;
        if !matches!(
            target.kind,
            TargetKind::SsoPermissionSet {
                end_sessions: true,
                ..
            }
        ) {
            return Ok(None);
        }
        let Some(user_id) = self.user(center, person).await? else {
            tracing::warn!(email = %person.email, "not in the Identity Store: no sessions of theirs to end");
            return Ok(None);
        };
        center
            .end_sessions(
                &Assignment {
                    account,
                    permission_set_arn,
                    user_id: &user_id,
                },
                before,
            )
            .await
            .map(Some)
    }
}

/// The Identity Store as elevate's [`Directory`]: people by email, groups by display name.
#[async_trait]
impl Directory for IdentityCenter {
    async fn user_id(&self, person: &Person) -> Result<Option<String>, DirectoryError> {
        IdentityCenter::user_id(self, &person.email)
            .await
            .map_err(directory_error)
    }

    async fn group_id(&self, name: &str) -> Result<Option<String>, DirectoryError> {
        IdentityCenter::group_id(self, name)
            .await
            .map_err(directory_error)
    }

    async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, DirectoryError> {
        IdentityCenter::group_ids_of(self, user_id)
            .await
            .map_err(directory_error)
    }
}

fn directory_error(err: StrategyError) -> DirectoryError {
    match err {
        StrategyError::Refused(why) => DirectoryError::Ambiguous(why),
        StrategyError::Unavailable(source) => DirectoryError::Unavailable(source),
        other => DirectoryError::Unavailable(Box::new(other)),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A call to Identity Center it did not accept: asked again when it was `busy` (a conflict or
/// throttling), else unavailable.
fn not_done<E>(what: String, busy: bool, err: E) -> Result<Retry, StrategyError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    if busy {
        Ok(Retry::Busy(AwsError::new(what, err).to_string()))
    } else {
        Err(fault(what, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_longest() {
        let pacing = Pacing::default();
        let pauses: Vec<u64> = (1..=7).map(|n| pacing.pause(n).as_secs()).collect();
        assert_eq!(pauses, vec![1, 2, 4, 8, 8, 8, 8]);
    }
}
