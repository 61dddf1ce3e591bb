//! The local gateway of make dev: API Gateway, Lambda Invoke API, Scheduler firing, Slack stand-in.

fn main() {}
