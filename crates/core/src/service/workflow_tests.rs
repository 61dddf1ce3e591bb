//! Workflow rules: several approvers, auto-approval rules and extensions, against the fakes.
#![allow(clippy::unwrap_used)]
