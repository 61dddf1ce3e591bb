//! In-memory fakes of every port, for tests (feature `testing`).
//!
//! Each fake keeps the semantics its AWS adapter promises (conditional writes, idempotent
//! removals, create-or-replace schedules), so a service test that passes here means something.
//! Every fake can be told to fail its next calls, and records what it was asked to do.
//!
//! The fakes are cheap to share: build them in an `Arc`, hand a clone to the service as
//! `Arc<dyn Port>`, keep the other to inspect.

mod app;
mod archive;
mod clock;
mod config;
mod directory;
mod escalation;
mod follow_ups;
mod invoker;
mod listing;
mod notifier;
mod scheduler;
mod store;
mod strategy;
#[cfg(test)]
mod tests;

pub use app::*;
pub use archive::*;
pub use clock::*;
pub use config::*;
pub use directory::*;
pub use escalation::*;
pub use follow_ups::*;
pub use invoker::*;
pub use listing::*;
pub use notifier::*;
pub use scheduler::*;
pub use store::*;
pub use strategy::*;

use std::sync::{Mutex, MutexGuard};

use crate::ports::BoxError;

/// A poisoned lock only means another test thread panicked; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error an injected failure carries.
#[derive(Debug, thiserror::Error)]
#[error("injected failure: {0}")]
pub struct InjectedFailure(pub String);

pub(crate) fn injected(what: &str) -> BoxError {
    Box::new(InjectedFailure(what.to_owned()))
}

/// Consumes one pending injected failure, if any.
pub(crate) fn take_failure(pending: &mut u32) -> bool {
    if *pending > 0 {
        *pending -= 1;
        true
    } else {
        false
    }
}
