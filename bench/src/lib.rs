//! elevate-bench: measures elevate against the local stack (`make bench`) and proves what the
//! README promises under concurrency and faults (short versions run in `make test`).
//!
//! - [`stack`]: starts `elevate-local up` on free ports with a generated [`config`], reads
//!   `stack.json` and the people's keys, and stops it.
//! - [`client`]: SigV4-signed API calls per person, signed Slack clicks, the Slack stand-in's
//!   messages, the Lambda Invoke API.
//! - [`moto`]: reads IAM, DynamoDB and the Scheduler directly; [`observe`] watches them.
//! - [`faults`]: a fault-injecting proxy between the functions and moto.
//! - [`scenarios`]: the double-click and fault proofs, checked by [`checks`].
//! - [`measure`], [`init`], [`report`]: the figures of `make bench`.
//! - [`reconcile`]: one reconciliation pass over many ACTIVE grants, in process against moto.
//! - [`history`]: the same latencies with 100,000 historical requests in the table, and an
//!   `audit export` of their 500,000 events.

pub mod binaries;
pub mod checks;
pub mod client;
pub mod config;
pub mod faults;
pub mod harness;
pub mod history;
pub mod init;
pub mod measure;
pub mod moto;
pub mod observe;
pub mod reconcile;
pub mod report;
pub mod scenarios;
pub mod stack;
pub mod stats;
