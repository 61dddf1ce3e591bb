//! Reading the stack's moto directly, as the ground truth the functions' answers are checked
//! against: IAM group members, the requests and audit events in DynamoDB, the schedules left
//! in the group.

use std::collections::HashSet;

use aws_sdk_iam::error::DisplayErrorContext;
use elevate_aws::DynamoStore;
use elevate_core::ports::{RequestStore, StoreError};
use elevate_core::{AuditEvent, Request, RequestId, State};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto {operation}: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn aws<E: std::error::Error>(operation: &'static str) -> impl FnOnce(E) -> MotoError {
    move |err| MotoError::Aws {
        operation,
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// Clients of the stack's moto (dummy credentials, us-east-1).
#[derive(Clone)]
pub struct MotoReader {
    pub iam: aws_sdk_iam::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub store: std::sync::Arc<DynamoStore>,
    schedule_group: String,
}

impl std::fmt::Debug for MotoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoReader")
            .field("table", &self.store.table())
            .finish_non_exhaustive()
    }
}

impl MotoReader {
    pub fn new(endpoint: &str, table: &str, schedule_group: &str) -> MotoReader {
        let sdk = elevate_testkit::sdk_config_for(endpoint);
        MotoReader {
            iam: aws_sdk_iam::Client::new(&sdk),
            scheduler: aws_sdk_scheduler::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            store: std::sync::Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
            )),
            schedule_group: schedule_group.to_owned(),
        }
    }

    /// Creates the IAM group unless it exists.
    pub async fn ensure_group(&self, group: &str) -> Result<(), MotoError> {
        match self.iam.create_group().group_name(group).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(aws("CreateGroup")(err)),
        }
    }

    /// The user names in `group` now (GetGroup, every page).
    pub async fn group_members(&self, group: &str) -> Result<HashSet<String>, MotoError> {
        let mut pages = self
            .iam
            .get_group()
            .group_name(group)
            .max_items(1000)
            .into_paginator()
            .items()
            .send();
        let mut members = HashSet::new();
        while let Some(user) = pages.next().await {
            members.insert(user.map_err(aws("GetGroup"))?.user_name);
        }
        Ok(members)
    }

    /// Whether `user` is in `group` now (ListGroupsForUser).
    pub async fn is_member(&self, user: &str, group: &str) -> Result<bool, MotoError> {
        let answer = self
            .iam
            .list_groups_for_user()
            .user_name(user)
            .send()
            .await
            .map_err(aws("ListGroupsForUser"))?;
        Ok(answer.groups().iter().any(|g| g.group_name() == group))
    }

    /// Every request of the table, whatever its state.
    pub async fn all_requests(&self) -> Result<Vec<Request>, MotoError> {
        let mut all = Vec::new();
        for state in State::ALL {
            all.extend(self.store.list_by_state(state).await?);
        }
        Ok(all)
    }

    pub async fn request(&self, id: &RequestId) -> Result<Option<Request>, MotoError> {
        Ok(self.store.get(id).await?)
    }

    pub async fn requests_in(&self, state: State) -> Result<Vec<Request>, MotoError> {
        Ok(self.store.list_by_state(state).await?)
    }

    pub async fn audit_events(&self, id: &RequestId) -> Result<Vec<AuditEvent>, MotoError> {
        Ok(self.store.audit_events(id).await?)
    }

    /// The names of the schedules in the stack's schedule group.
    pub async fn schedules(&self) -> Result<Vec<String>, MotoError> {
        let mut pages = self
            .scheduler
            .list_schedules()
            .group_name(&self.schedule_group)
            .into_paginator()
            .items()
            .send();
        let mut names = Vec::new();
        while let Some(schedule) = pages.next().await {
            if let Some(name) = schedule.map_err(aws("ListSchedules"))?.name {
                names.push(name);
            }
        }
        Ok(names)
    }
}
