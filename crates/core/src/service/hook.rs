//! Asking a flow's request hook about a request being submitted.

use crate::config::Person;
use crate::events::{HookAnswer, HookEvent};
use crate::model::{AutoDecider, Request};

use super::App;

/// What a flow's hook said of a request, once elevate has read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hooked {
    /// No hook, or the hook answered `continue` (perhaps to another channel), failed, timed
    /// out, or answered what elevate cannot act on: the request waits for people.
    Continue {
        channel: Option<String>,
    },
    Approve {
        by: AutoDecider,
        reason: String,
    },
    Deny {
        by: AutoDecider,
        reason: String,
    },
}

/// The name a hook's decisions are recorded under: the function's name in its ARN.
pub(crate) fn hook_name(function_arn: &str) -> &str {
    let name = function_arn
        .split_once(":function:")
        .map_or(function_arn, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}

/// Asks `function` about `request` by `person`, waiting at most the hook time-out
/// ([`Settings::hook_timeout`](super::Settings::hook_timeout)). A hook that fails, times out or
/// answers something elevate cannot act on means `continue`, and is logged: never a silent
/// approval.
pub(crate) async fn ask_hook(
    app: &App,
    function: &str,
    request: &Request,
    person: &Person,
) -> Hooked {
    let proceed = Hooked::Continue { channel: None };
    let event = match serde_json::to_value(HookEvent::submitted(request, person)) {
        Ok(event) => event,
        Err(err) => {
            tracing::error!(hook = function, error = %err, "could not write the hook event; the request waits for approvers");
            return proceed;
        }
    };
    let timeout = app.settings.hook_timeout;
    let answer = match tokio::time::timeout(timeout, app.hooks.invoke(function, &event)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            tracing::warn!(hook = function, error = %err, "the request hook failed; the request waits for approvers");
            return proceed;
        }
        Err(_) => {
            tracing::warn!(
                hook = function,
                timeout_ms = timeout.as_millis() as u64,
                "the request hook did not answer in time; the request waits for approvers"
            );
            return proceed;
        }
    };
    let by = AutoDecider::Hook(hook_name(function).to_owned());
    match HookAnswer::parse(answer) {
        Ok(HookAnswer::Continue { channel }) => {
            tracing::info!(
                hook = function,
                channel = channel.as_deref().unwrap_or("(the flow's)"),
                "the request hook let the request wait for approvers"
            );
            Hooked::Continue { channel }
        }
        Ok(HookAnswer::Approve { reason }) => Hooked::Approve { by, reason },
        Ok(HookAnswer::Deny { reason }) => Hooked::Deny { by, reason },
        Err(why) => {
            tracing::warn!(hook = function, error = %why, "the request hook's answer cannot be acted on; the request waits for approvers");
            proceed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hook_name;

    #[test]
    fn a_hook_is_named_by_its_function() {
        assert_eq!(
            hook_name("arn:aws:lambda:us-east-1:123456789012:function:on-call"),
            "on-call"
        );
        assert_eq!(
            hook_name("arn:aws:lambda:us-east-1:123456789012:function:on-call:live"),
            "on-call"
        );
    }
}
