//! The gateway's tests, in one binary (one link of the SDKs instead of five).

mod common;

mod apigw;
mod identity;
mod invoke_api;
mod manifest;
mod openapi;
mod pump;
mod sigv4;
mod template;
