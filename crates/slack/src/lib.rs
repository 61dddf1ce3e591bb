//! Slack for elevate: request signatures, slash commands, interaction payloads (clicks and
//! modal submissions), Block Kit messages and the request modal, the Web API notifier, and
//! (feature `standin`) a recording Slack Web API stand-in for tests and the local stack.

pub mod blocks;
pub mod command;
pub mod interaction;
pub mod modal;
pub mod notifier;
pub mod signature;
#[cfg(feature = "standin")]
pub mod standin;

pub use blocks::{notice_about, request_message, Message};
pub use command::{slash_command_body, CommandError, SlashCommand, Verb};
pub use interaction::{
    action_id, block_actions_body, parse_payload, view_submission_body, Action, Click, Clicked,
    Interaction, InteractionError, Payload, RequestForm, ViewSubmission, END_ACCESS_ACTION,
};
pub use modal::{
    access_value, ephemeral_answer, error_block, errors_answer, help_answer, parse_access,
    request_modal, requests_answer, ACCESS_BLOCK, DURATION_BLOCK, REASON_BLOCK, REQUEST_CALLBACK,
};
pub use notifier::SlackNotifier;
pub use signature::{sign, verify, SignatureError};
