//! An [`Invoker`] that records its calls and answers as told.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{InvokeError, Invoker};

use super::{injected, lock, take_failure};

/// One call the [`RecordingInvoker`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: String,
    pub payload: serde_json::Value,
    /// `InvocationType=Event` (fire and forget) rather than a synchronous call.
    pub asynchronous: bool,
}

#[derive(Default)]
struct InvokerInner {
    calls: Vec<Invocation>,
    answers: HashMap<String, Result<serde_json::Value, String>>,
    /// What a synchronous call of a function without its own answer gets.
    default: Option<serde_json::Value>,
    /// Functions whose synchronous calls never answer.
    hanging: Vec<String>,
    failures: u32,
}

/// [`Invoker`] that records its calls. A synchronous call answers what [`Self::answer`] set for
/// that function, else what [`Self::answering`] set, else `{"ok": true}` (a custom target that
/// accepts).
#[derive(Default)]
pub struct RecordingInvoker {
    inner: Mutex<InvokerInner>,
}

impl RecordingInvoker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Synchronous calls of functions without their own answer answer `value`.
    pub fn answering(value: serde_json::Value) -> Self {
        let invoker = Self::default();
        lock(&invoker.inner).default = Some(value);
        invoker
    }

    /// Synchronous calls of `function` are recorded and never answer (a hung function).
    pub fn hang(&self, function: &str) {
        lock(&self.inner).hanging.push(function.to_owned());
    }

    /// Synchronous calls of `function` answer `value`.
    pub fn answer(&self, function: &str, value: serde_json::Value) {
        lock(&self.inner)
            .answers
            .insert(function.to_owned(), Ok(value));
    }

    /// Synchronous calls of `function` fail with `InvokeError::FunctionError(message)`.
    pub fn answer_error(&self, function: &str, message: &str) {
        lock(&self.inner)
            .answers
            .insert(function.to_owned(), Err(message.to_owned()));
    }

    /// The next `n` calls (either kind) answer `InvokeError::Unavailable`; they are recorded.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).failures = n;
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<Invocation> {
        lock(&self.inner).calls.clone()
    }

    fn record(
        &self,
        function: &str,
        payload: &serde_json::Value,
        asynchronous: bool,
    ) -> Result<MutexGuard<'_, InvokerInner>, InvokeError> {
        let mut inner = lock(&self.inner);
        inner.calls.push(Invocation {
            function: function.to_owned(),
            payload: payload.clone(),
            asynchronous,
        });
        if take_failure(&mut inner.failures) {
            return Err(InvokeError::Unavailable(injected("invoke")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Invoker for RecordingInvoker {
    async fn invoke_async(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<(), InvokeError> {
        drop(self.record(function, payload, true)?);
        Ok(())
    }

    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        let answer = {
            let inner = self.record(function, payload, false)?;
            if inner.hanging.iter().any(|f| f == function) {
                None
            } else {
                Some(match inner.answers.get(function) {
                    Some(Ok(value)) => Ok(value.clone()),
                    Some(Err(message)) => Err(InvokeError::FunctionError(message.clone())),
                    None => Ok(inner
                        .default
                        .clone()
                        .unwrap_or_else(|| serde_json::json!({"ok": true}))),
                })
            }
        };
        match answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}
