//! The domain of elevate: requests and their state machine, flow rules, the flows config file,
//! the hash-chained audit trail, and the ports the adapters implement. No AWS or Lambda crates.

pub mod archive;
pub mod audit;
pub mod config;
pub mod events;
pub mod identity;
pub mod machine;
pub mod model;
pub mod names;
pub mod ports;
pub mod rules;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use audit::{verify_chain, Action, AuditEvent, ChainError};
pub use config::{
    Approvers, AutoApproval, Config, ConfigError, Flow, Person, ReminderPolicy, Target, TargetKind,
    Window,
};
pub use identity::{Identity, IdentityError};
pub use machine::{apply, open, Command, NewRequest, Transition, TransitionError};
pub use model::{format_duration, parse_duration, Actor, MessageRef, Request, RequestId, State};
pub use names::{FlowName, PersonName, TargetName};
pub use rules::RuleError;
