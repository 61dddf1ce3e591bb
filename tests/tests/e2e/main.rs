//! End-to-end tests of the four functions together, against moto and the Slack stand-in: one
//! test binary, one [`elevate_tests::World`] (own moto server, table, groups, users and
//! schedule group) per test.

mod approvals;
mod custom_target;
mod grants;
mod happy_path;
mod requests;
mod terms;
