//! The local gateway of `make dev`: the parts of AWS that moto cannot play.
//!
//! - [`sigv4`]: verifies SigV4-signed requests, as API Gateway's AWS_IAM authorizer does.
//! - [`identity`]: one moto IAM user and access key per person of elevate.toml, their AWS
//!   profiles, and the `authorizer.iam` context of a verified caller.
//! - [`apigw`]: the HTTP API of docs/contracts.md: routes, caller check, payload 2.0 events.
//! - [`invoke_api`]: the Lambda Invoke API (Event and RequestResponse).
//! - [`pump`]: fires moto's schedules, which moto never does.
//! - [`streams`]: delivers the table's stream to the archive function, as Lambda's event source
//!   mapping does.
//! - [`slack_page`]: Slack, locally: the stand-in's messages with working buttons, `/elevate`
//!   and its modal, signed like Slack's.
//! - [`bootstrap`]: the tutorial's resources and elevate's own, created in moto.
//! - [`identity_center`]: `--identity-center`: moto's Identity Center made ready for a
//!   permission set flow, appended to the config the stack serves.
//! - [`workflows`]: `--workflows`: flows that show the workflow rules, appended to the config
//!   the stack serves.
//! - [`stack`]: `elevate-local up`, everything above on one port.
//!
//! Every function runs through one [`dispatch::Dispatcher`]; [`functions::InProcess`] runs the
//! handlers in process.

pub mod apigw;
pub mod bootstrap;
pub mod dispatch;
pub mod functions;
pub mod identity;
pub mod identity_center;
pub mod invoke_api;
pub mod pump;
pub mod sigv4;
pub mod slack_page;
pub mod stack;
pub mod streams;
pub mod workflows;
