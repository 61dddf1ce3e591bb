//! The Slack credentials, kept in Secrets Manager.

use std::fmt;

use aws_config::SdkConfig;
use serde::Deserialize;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The bot token and the signing secret. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct SlackSecrets {
    /// `xoxb-...`: authorizes Web API calls.
    pub bot_token: String,
    /// Verifies that interaction payloads come from Slack.
    pub signing_secret: String,
}

impl fmt::Debug for SlackSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSecrets")
            .field("bot_token", &"<redacted>")
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}

/// The secret could not be read or is not what elevate expects. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secret {arn}: {message}")]
    Read {
        arn: String,
        message: String,
        #[source]
        source: BoxError,
    },
    #[error("secret {arn} is malformed: {reason} (expected JSON {{\"bot_token\":\"xoxb-...\",\"signing_secret\":\"...\"}})")]
    Malformed { arn: String, reason: String },
}

/// Reads the Slack secret `arn` (JSON `{"bot_token": ..., "signing_secret": ...}`).
pub async fn slack_secrets(config: &SdkConfig, arn: &str) -> Result<SlackSecrets, SecretsError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| SecretsError::Read {
            arn: arn.to_owned(),
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        })?;
    let malformed = |reason: &str| SecretsError::Malformed {
        arn: arn.to_owned(),
        reason: reason.to_owned(),
    };
    let text = answer
        .secret_string()
        .ok_or_else(|| malformed("it is binary, not a JSON string"))?;
    let secrets: SlackSecrets = serde_json::from_str(text).map_err(|err| {
        // serde_json quotes offending values, which here would be secrets: keep field names only.
        let message = err.to_string();
        if message.starts_with("missing field") {
            malformed(message.split(" at line").next().unwrap_or("missing field"))
        } else {
            malformed("not a JSON object of strings")
        }
    })?;
    if secrets.bot_token.trim().is_empty() {
        return Err(malformed("bot_token is empty"));
    }
    if secrets.signing_secret.trim().is_empty() {
        return Err(malformed("signing_secret is empty"));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_both_secrets() {
        let secrets = SlackSecrets {
            bot_token: "xoxb-very-secret".into(),
            signing_secret: "shhh".into(),
        };
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("xoxb-very-secret") && !shown.contains("shhh"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }
}
