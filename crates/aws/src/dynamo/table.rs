//! Table setup: the key schema, the GSIs and waiting for them to be ACTIVE.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus,
};
use aws_sdk_dynamodb::Client;
use elevate_core::ports::StoreError;

use super::item::attr;
use super::DynamoStore;
use crate::error::AwsError;

/// GSI of requests by requester, newest first.
pub const BY_REQUESTER: &str = "by_requester";
/// GSI of requests by state, oldest first.
pub const BY_STATE: &str = "by_state";
/// Sparse GSI of audit events by UTC day, in time order.
pub const BY_DAY: &str = "by_day";
/// Sparse GSI of the open requests (not in a final state) by requester, newest first.
pub const OPEN_BY_REQUESTER: &str = "open_by_requester";

impl DynamoStore {
    /// Creates the table with its key schema and GSIs (on-demand billing) and its stream
    /// (`NEW_AND_OLD_IMAGES`, which the archive function reads), and waits until the table and
    /// its indexes are ACTIVE. A table that already exists is only waited for. For tests and
    /// `make dev`; deployed tables come from template.yaml.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let build = |e| StoreError::Unavailable(AwsError::boxed(format!("table {table}"), e));
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build)
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(attr::PK, KeyType::Hash)?)
            .key_schema(key(attr::SK, KeyType::Range)?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(build)?,
            );
        for name in [
            attr::PK,
            attr::SK,
            attr::GSI1PK,
            attr::GSI1SK,
            attr::GSI2PK,
            attr::GSI2SK,
            attr::GSI3PK,
            attr::GSI3SK,
            attr::GSI4PK,
            attr::GSI4SK,
        ] {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            );
        }
        for (index, pk, sk) in [
            (BY_REQUESTER, attr::GSI1PK, attr::GSI1SK),
            (BY_STATE, attr::GSI2PK, attr::GSI2SK),
            (BY_DAY, attr::GSI3PK, attr::GSI3SK),
            (OPEN_BY_REQUESTER, attr::GSI4PK, attr::GSI4SK),
        ] {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build)?,
            );
        }
        match request.send().await {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => {
                return Err(StoreError::Unavailable(AwsError::boxed(
                    format!("dynamodb CreateTable {table}"),
                    err,
                )))
            }
        }
        Self::wait_active(client, table).await
    }

    async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(AwsError::boxed(
                        format!("dynamodb DescribeTable {table}"),
                        e,
                    ))
                })?;
            let ready = described.table().is_some_and(|t| {
                t.table_status() == Some(&TableStatus::Active)
                    && t.global_secondary_indexes()
                        .iter()
                        .all(|i| i.index_status() == Some(&IndexStatus::Active))
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Unavailable(
                    format!("table {table} is not ACTIVE after 10 minutes").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
