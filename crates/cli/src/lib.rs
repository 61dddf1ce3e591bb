//! The `elevate` command-line tool: ask for, decide on and follow just-in-time AWS access, and
//! check the flows config and the audit trail. `main.rs` only parses and calls [`commands::run`].

pub mod api;
pub mod cli;
pub mod commands;
pub mod output;
pub mod settings;
