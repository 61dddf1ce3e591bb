//! The local gateway of `make dev`: the parts of AWS that moto cannot play.
pub mod sigv4;
