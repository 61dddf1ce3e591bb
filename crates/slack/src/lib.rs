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
    request_modal, requests_answer, Access, ACCESS_BLOCK, DURATION_BLOCK, MAX_LISTED, REASON_BLOCK,
    REQUEST_CALLBACK,
};
pub use notifier::SlackNotifier;
pub use signature::{sign, verify, SignatureError};

/// The small elevate.toml the crate's unit tests render messages and forms for: alice and bob,
/// flow `infra_access` (target `admins`, IAM group `SymDemoAdmins`, up to 4h) approved in
/// `C0APPROVALS`.
#[cfg(test)]
pub(crate) const TEST_CONFIG: &str = r#"
[[people]]
name = "alice"
iam_user = "alice"
slack_id = "U0ALICE01"
email = "alice@example.com"

[[people]]
name = "bob"
iam_user = "bob"
slack_id = "U0BOB0001"
email = "bob@example.com"

[[flows]]
name = "infra_access"
description = "Assume the escalated role"
max_duration = "4h"
[flows.approvers]
channel = "C0APPROVALS"
people = ["alice", "bob"]
[[flows.targets]]
name = "admins"
type = "iam_group"
group = "SymDemoAdmins"
"#;
