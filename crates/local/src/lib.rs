//! The local gateway of `make dev`: the parts of AWS that moto cannot play.
pub mod apigw;
pub mod dispatch;
pub mod identity;
pub mod invoke_api;
pub mod pump;
pub mod sigv4;
