//! Slack for elevate: request signatures, interaction payloads, Block Kit messages, the Web API notifier.
