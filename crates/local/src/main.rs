//! The local gateway of make dev: API Gateway, Lambda Invoke API, Scheduler firing, Slack stand-in.
//!
//! The parts live in the library (`elevate_local`); they are wired to the function handlers
//! once those exist.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "elevate-local: the gateway's parts are built (sigv4, identity, apigw, invoke_api, pump) \
         but not yet wired to the function handlers"
    );
    ExitCode::from(2)
}
