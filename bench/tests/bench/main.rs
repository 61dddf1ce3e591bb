//! elevate-bench's tests, in one binary: the fault proxy against moto, and the short,
//! deterministic versions of the bench's concurrency and fault proofs, each against a local
//! stack of its own.

mod double_click;
mod fault_grants;
mod proxy;
