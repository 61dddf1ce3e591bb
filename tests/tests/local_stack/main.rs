//! End-to-end tests of the real binaries: `elevate-local up` (moto, the functions, API Gateway,
//! the Scheduler pump, the Slack stand-in and its page) driven by the `elevate` CLI with the
//! profiles the stack wrote, and by a browser on the Slack page. One stack serves the tests
//! that can share it (each asks as its own person); a test that breaks the shared state (the
//! audit tampering) starts its own; the Slack tests share one with more people and flows, and the
//! archive tests one that they tamper with.

mod harness;

mod archive;
mod browser;
mod flows;
mod identity_center;
mod openapi_fuzz;
mod slack;
mod workflow;
