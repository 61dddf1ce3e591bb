//! Lambda: the [`Invoker`] of other functions, the [`Escalation`] that invokes escalate, the
//! [`FollowUps`] that invoke a function again after Slack is answered, and the [`Strategy`] of custom `lambda` targets, which speaks the JSON contract of
//! docs/contracts.md ("custom target").

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::Client;
use elevate_core::config::{Person, Target, TargetKind};
use elevate_core::events::{EscalateEvent, FollowUp};
use elevate_core::model::{Request, RequestId};
use elevate_core::ports::{
    Escalation, FollowUps, InvokeError, Invoker, Membership, Strategy, StrategyError,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::instrument;

use crate::error::AwsError;

/// Invokes functions through the Lambda Invoke API.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: Client,
}

impl LambdaInvoker {
    pub fn new(client: Client) -> Self {
        LambdaInvoker { client }
    }

    async fn call(
        &self,
        function: &str,
        payload: &Value,
        kind: InvocationType,
    ) -> Result<aws_sdk_lambda::operation::invoke::InvokeOutput, InvokeError> {
        let body =
            serde_json::to_vec(payload).map_err(|e| InvokeError::Unavailable(Box::new(e)))?;
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(kind.clone())
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                InvokeError::Unavailable(AwsError::boxed(
                    format!("lambda Invoke ({}) {function}", kind.as_str()),
                    e,
                ))
            })
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    #[instrument(skip(self, payload), err)]
    async fn invoke_async(&self, function: &str, payload: &Value) -> Result<(), InvokeError> {
        self.call(function, payload, InvocationType::Event).await?;
        Ok(())
    }

    #[instrument(skip(self, payload), err)]
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let output = self
            .call(function, payload, InvocationType::RequestResponse)
            .await?;
        let body = output
            .payload()
            .map(|blob| blob.as_ref())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(body);
        if output.function_error().is_some() {
            // The payload is the function's error object (errorType, errorMessage, ...).
            return Err(InvokeError::FunctionError(text.into_owned()));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(body)
            .map_err(|e| InvokeError::FunctionError(format!("answer is not JSON ({e}): {text}")))
    }
}

/// Starts escalations by invoking the escalate function asynchronously with an
/// [`EscalateEvent`]; Lambda retries it and hands its last failure to revoke.
pub struct LambdaEscalation {
    invoker: Arc<dyn Invoker>,
    function: Option<String>,
}

impl LambdaEscalation {
    /// `function`: name or ARN of escalate; `None` in a function that never starts an
    /// escalation, where starting one is an error that says so.
    pub fn new(invoker: Arc<dyn Invoker>, function: Option<String>) -> Self {
        LambdaEscalation { invoker, function }
    }

    /// The function it invokes.
    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }
}

#[async_trait]
impl Escalation for LambdaEscalation {
    async fn start(&self, request_id: &RequestId) -> Result<(), InvokeError> {
        let function = self.function.as_deref().ok_or_else(|| {
            InvokeError::Unavailable(
                "this function is not given ELEVATE_ESCALATE_FUNCTION, so it cannot start escalations"
                    .into(),
            )
        })?;
        let event = EscalateEvent {
            request_id: request_id.clone(),
        };
        let payload =
            serde_json::to_value(&event).map_err(|e| InvokeError::Unavailable(Box::new(e)))?;
        self.invoker.invoke_async(function, &payload).await
    }
}

/// Runs [`FollowUp`]s by invoking a function asynchronously with them (Lambda queues the
/// event, retries it on failure and hands the last failure to the function's `OnFailure`
/// destination): the function that took the step runs its own follow-ups, and "End access
/// now" goes to the revoke function, which holds the rights to remove access.
pub struct LambdaFollowUps {
    invoker: Arc<dyn Invoker>,
    own: String,
    revoke: String,
}

impl LambdaFollowUps {
    /// `own`: this function's name; `revoke`: the revoke function's name or ARN.
    pub fn new(
        invoker: Arc<dyn Invoker>,
        own: impl Into<String>,
        revoke: impl Into<String>,
    ) -> Self {
        LambdaFollowUps {
            invoker,
            own: own.into(),
            revoke: revoke.into(),
        }
    }

    /// The function that runs `work`.
    pub fn function_for(&self, work: &FollowUp) -> &str {
        match work {
            FollowUp::EndAccess { .. } => &self.revoke,
            FollowUp::Opened { .. } | FollowUp::Decided { .. } | FollowUp::Refused { .. } => {
                &self.own
            }
        }
    }
}

#[async_trait]
impl FollowUps for LambdaFollowUps {
    async fn defer(&self, work: &FollowUp) -> Result<(), InvokeError> {
        let payload =
            serde_json::to_value(work).map_err(|e| InvokeError::Unavailable(Box::new(e)))?;
        self.invoker
            .invoke_async(self.function_for(work), &payload)
            .await
    }
}

/// Grants and removes access through a custom target: a Lambda function invoked synchronously
/// with `{"type": "escalate"|"deescalate", "request", "person", "target"}` that answers
/// `{"ok": true}` or `{"ok": false, "error": "..."}`.
pub struct LambdaStrategy {
    invoker: Arc<dyn Invoker>,
}

impl LambdaStrategy {
    pub fn new(invoker: Arc<dyn Invoker>) -> Self {
        LambdaStrategy { invoker }
    }

    async fn ask(
        &self,
        kind: &str,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        let function = function_of(target)?;
        let payload = contract_payload(kind, target, person, request);
        let answer = self
            .invoker
            .invoke(function, &payload)
            .await
            // A crashed or unreachable target may work on the next try: not a refusal.
            .map_err(|e| StrategyError::Unavailable(Box::new(e)))?;
        match serde_json::from_value::<Answer>(answer.clone()) {
            Ok(Answer { ok: true, .. }) => Ok(()),
            Ok(Answer {
                ok: false,
                error: Some(error),
            }) if !error.trim().is_empty() => Err(StrategyError::Refused(error)),
            Ok(Answer { ok: false, .. }) => Err(StrategyError::Refused(format!(
                "{function} refused without saying why"
            ))),
            Err(_) => Err(StrategyError::Refused(format!(
                "{function} answered {answer}, expected {{\"ok\":true}} or {{\"ok\":false,\"error\":\"...\"}}"
            ))),
        }
    }
}

/// What a custom target answers.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
}

fn function_of(target: &Target) -> Result<&str, StrategyError> {
    match &target.kind {
        TargetKind::Lambda { function_arn } => Ok(function_arn),
        TargetKind::IamGroup { .. } | TargetKind::SsoPermissionSet { .. } => {
            Err(StrategyError::WrongTarget(target.name.clone()))
        }
    }
}

/// The event a custom target receives (docs/contracts.md, "custom target").
pub fn contract_payload(kind: &str, target: &Target, person: &Person, request: &Request) -> Value {
    json!({
        "type": kind,
        "request": request,
        "person": {
            "name": person.name,
            "iam_user": person.iam_user,
            "slack_id": person.slack_id,
            "email": person.email,
        },
        "target": target.name,
    })
}

#[async_trait]
impl Strategy for LambdaStrategy {
    #[instrument(skip_all, fields(request_id = %request.id, target = %target.name), err)]
    async fn escalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        self.ask("escalate", target, person, request).await
    }

    #[instrument(skip_all, fields(request_id = %request.id, target = %target.name), err)]
    async fn deescalate(
        &self,
        target: &Target,
        person: &Person,
        request: &Request,
    ) -> Result<(), StrategyError> {
        self.ask("deescalate", target, person, request).await
    }

    /// A custom target only acknowledges; it cannot be read back.
    async fn is_member(
        &self,
        target: &Target,
        _person: &Person,
    ) -> Result<Membership, StrategyError> {
        function_of(target)?;
        Ok(Membership::Unknown)
    }

    /// A custom target cannot be listed: reconciliation leaves it to the target's owner.
    async fn members(&self, target: &Target) -> Result<Option<Vec<String>>, StrategyError> {
        function_of(target)?;
        Ok(None)
    }

    async fn remove_member(&self, target: &Target, _iam_user: &str) -> Result<(), StrategyError> {
        Err(StrategyError::WrongTarget(target.name.clone()))
    }

    /// A custom target names no roles: what its access allowed is its owner's to end.
    async fn end_sessions(
        &self,
        target: &Target,
        _person: &Person,
        _before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<elevate_core::model::SessionsEnded>, StrategyError> {
        function_of(target)?;
        Ok(None)
    }
}
