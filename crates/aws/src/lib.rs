//! AWS adapters of elevate's ports: one module per port, and the audit archive on S3
//! ([`S3Archive`]). Each adapter is given its SDK client and resource names; none reads the
//! environment (endpoints and credentials come from the `SdkConfig` the caller built). SDK
//! errors become port errors with the SDK error kept as the source ([`AwsError`]).

pub mod archive;
pub mod dynamo;
pub mod error;
pub mod iam;
pub mod identity_center;
pub mod lambda;
pub mod scheduler;
pub mod sessions;
pub mod sso_sessions;

pub use archive::{ArchiveUrlError, RewrittenObject, S3Archive};
pub use dynamo::DynamoStore;
pub use error::AwsError;
pub use iam::IamGroupStrategy;
pub use identity_center::{Assignment, IdentityCenter, Pacing, PermissionSetStrategy};
pub use lambda::{LambdaEscalation, LambdaFollowUps, LambdaInvoker, LambdaStrategy};
pub use scheduler::{EventBridgeScheduler, SchedulerTarget};
