//! Slack for elevate: request signatures, interaction payloads, Block Kit messages, the Web API
//! notifier, and (feature `standin`) a recording Slack Web API stand-in for tests and the local
//! stack.

pub mod blocks;
pub mod interaction;
pub mod notifier;
pub mod signature;
#[cfg(feature = "standin")]
pub mod standin;

pub use blocks::{request_message, Message};
pub use interaction::{
    action_id, block_actions_body, Action, Click, Interaction, InteractionError,
};
pub use notifier::SlackNotifier;
pub use signature::{sign, verify, SignatureError};
