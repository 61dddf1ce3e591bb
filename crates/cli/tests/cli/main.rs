//! End-to-end runs of the real `elevate` binary against a recording stand-in of the API.

mod audit;
mod config;
mod report;
mod requests;
mod support;
