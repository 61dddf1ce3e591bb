//! [`Strategy`] for `iam_group` targets: access is membership of an IAM group.

use async_trait::async_trait;
use aws_sdk_iam::Client;
use chrono::{DateTime, Utc};
use elevate_core::config::{Person, Target, TargetKind};
use elevate_core::model::{Request, SessionsEnded};
use elevate_core::ports::{Membership, Strategy, StrategyError};
use tracing::instrument;

use crate::error::AwsError;

/// Adds people to and removes them from the IAM group of the target.
#[derive(Debug, Clone)]
pub struct IamGroupStrategy {
    pub(crate) client: Client,
}

impl IamGroupStrategy {
    pub fn new(client: Client) -> Self {
        IamGroupStrategy { client }
    }

    /// Why `user` is not in `group`: what `deescalate` logs when IAM answers NoSuchEntity. The
    /// membership is gone in every case, but a missing group or user means someone changed IAM
    /// behind elevate's back (or the config names the wrong group).
    pub async fn explain_absence(&self, group: &str, user: &str) -> Absence {
        match self
            .client
            .get_group()
            .group_name(group)
            .max_items(1)
            .send()
            .await
        {
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                return Absence::GroupMissing
            }
            Err(err) => {
                return Absence::Unexplained(
                    AwsError::new(format!("iam GetGroup {group}"), err).to_string(),
                )
            }
            Ok(_) => {}
        }
        match self.client.get_user().user_name(user).send().await {
            Ok(_) => Absence::NotAMember,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Absence::UserMissing
            }
            // Only explains the absence for the log; a deployment may not allow GetUser.
            Err(err) => {
                Absence::Unexplained(AwsError::new(format!("iam GetUser {user}"), err).to_string())
            }
        }
    }
}

impl IamGroupStrategy {
    /// Removes `user` from `group`; a user already absent is success, and the log says why.
    async fn remove(&self, group: &str, user: &str) -> Result<(), StrategyError> {
        let err = match self
            .client
            .remove_user_from_group()
            .group_name(group)
            .user_name(user)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!("removed from the IAM group");
                return Ok(());
            }
            Err(err) => err,
        };
        if !err
            .as_service_error()
            .is_some_and(|e| e.is_no_such_entity_exception())
        {
            return Err(StrategyError::Unavailable(AwsError::boxed(
                format!("iam RemoveUserFromGroup {user} from {group}"),
                err,
            )));
        }
        // The membership is gone, which is what was asked; say why it already was.
        match self.explain_absence(group, user).await {
            Absence::NotAMember => tracing::info!("was no longer a member of the IAM group"),
            Absence::GroupMissing => {
                tracing::warn!("the IAM group does not exist (deleted, or misnamed in the config)")
            }
            Absence::UserMissing => tracing::warn!("the IAM user does not exist (deleted?)"),
            Absence::Unexplained(why) => tracing::warn!(
                error = %why,
                "IAM answered NoSuchEntity; the user was not a member, or the user or group is missing"
            ),
        }
        Ok(())
    }
}

/// Why a user is not a member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Absence {
    /// Group and user exist; the user is just not a member (any more).
    NotAMember,
    GroupMissing,
    UserMissing,
    /// IAM could not be asked (e.g. elevate may not call GetUser): the error.
    Unexplained(String),
}

fn group_of(target: &Target) -> Result<&str, StrategyError> {
    match &target.kind {
        TargetKind::IamGroup { group, .. } => Ok(group),
        TargetKind::Lambda { .. } | TargetKind::SsoPermissionSet { .. } => {
            Err(StrategyError::WrongTarget(target.name.clone()))
        }
    }
}

#[async_trait]
impl Strategy for IamGroupStrategy {
    #[instrument(skip_all, fields(request_id = %request.id, group, user = %person.iam_user), err)]
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        let group = group_of(target)?;
        tracing::Span::current().record("group", group);
        // Adding a member twice is accepted by IAM, so a retried escalation is harmless.
        match self
            .client
            .add_user_to_group()
            .group_name(group)
            .user_name(&person.iam_user)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!("added to the IAM group");
                Ok(())
            }
            // Retrying will not create the group or the user: refuse with IAM's own words.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Err(StrategyError::Refused(
                    AwsError::new(
                        format!("iam AddUserToGroup {} to {group}", person.iam_user),
                        err,
                    )
                    .to_string(),
                ))
            }
            Err(err) => Err(StrategyError::Unavailable(AwsError::boxed(
                format!("iam AddUserToGroup {} to {group}", person.iam_user),
                err,
            ))),
        }
    }

    #[instrument(skip_all, fields(request_id = %request.id, group, user = %person.iam_user), err)]
    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        let group = group_of(target)?;
        tracing::Span::current().record("group", group);
        self.remove(group, &person.iam_user).await
    }

    #[instrument(skip_all, fields(group, user = %person.iam_user), err)]
    async fn is_member(
        &self,
        target: &Target,
        person: &Person,
    ) -> Result<Membership, StrategyError> {
        let group = group_of(target)?;
        tracing::Span::current().record("group", group);
        // The user's groups, not the group's members: one small answer however large the group
        // (GetGroup pages through every member, a hundred at a time).
        let mut groups = self
            .client
            .list_groups_for_user()
            .user_name(&person.iam_user)
            .into_paginator()
            .items()
            .send();
        loop {
            match groups.next().await {
                None => return Ok(Membership::Absent),
                // IAM group names are unique regardless of case.
                Some(Ok(found)) if found.group_name().eq_ignore_ascii_case(group) => {
                    return Ok(Membership::Present)
                }
                Some(Ok(_)) => {}
                Some(Err(err))
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_no_such_entity_exception()) =>
                {
                    tracing::warn!("the IAM user does not exist, so it is in no group");
                    return Ok(Membership::Absent);
                }
                Some(Err(err)) => {
                    return Err(StrategyError::Unavailable(AwsError::boxed(
                        format!("iam ListGroupsForUser {}", person.iam_user),
                        err,
                    )))
                }
            }
        }
    }

    #[instrument(skip_all, fields(group), err)]
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        let group = group_of(target)?;
        tracing::Span::current().record("group", group);
        let mut users = Vec::new();
        let mut pages = self
            .client
            .get_group()
            .group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => users.extend(page.users().iter().map(|u| u.user_name().to_owned())),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_no_such_entity_exception()) =>
                {
                    tracing::warn!("the IAM group does not exist, so it has no members");
                    return Ok(Some(Vec::new()));
                }
                Err(err) => {
                    return Err(StrategyError::Unavailable(AwsError::boxed(
                        format!("iam GetGroup {group}"),
                        err,
                    )))
                }
            }
        }
        Ok(Some(users))
    }

    #[instrument(skip_all, fields(group, user = %iam_user), err)]
    async fn remove_member(&self, target: &Target, iam_user: &str) -> Result<(), StrategyError> {
        let group = group_of(target)?;
        tracing::Span::current().record("group", group);
        self.remove(group, iam_user).await
    }

    /// The session name is the IAM user name: the roles' trust policies pin
    /// `sts:RoleSessionName` to `${aws:username}` (infra/strategy.yaml).
    #[instrument(skip_all, fields(user = %person.iam_user), err)]
    async fn end_sessions(
        &self,
        target: &Target,
        person: &Person,
        before: DateTime<Utc>,
    ) -> Result<Option<SessionsEnded>, StrategyError> {
        let TargetKind::IamGroup { roles, .. } = &target.kind else {
            return Err(StrategyError::WrongTarget(target.name.clone()));
        };
        let mut outcome = None;
        for role in roles {
            let ended = self
                .end_role_sessions(role, &person.iam_user, before)
                .await?;
            // The widest ending of any role is what the grant's end did.
            outcome = outcome.max(ended);
        }
        Ok(outcome)
    }
}
