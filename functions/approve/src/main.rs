//! elevate-approve: wiring only. The handler is [`elevate_approve::handle_event`].

use elevate_approve::Slack;
use elevate_runtime::EnvSpec;
use elevate_slack::SlackNotifier;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = elevate_runtime::start(EnvSpec::APPROVE).await?;
    let app = &started.app;
    let slack = &Slack {
        signing_secret: started.slack.signing_secret.clone(),
        // The form must open within Slack's 3 s for the whole answer.
        views: Box::new(
            SlackNotifier::new(
                started.env.slack_api_url.clone(),
                started.slack.bot_token.clone(),
            )
            .with_timeout(elevate_approve::VIEWS_TIMEOUT),
        ),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        elevate_approve::handle_event(app, slack, event.payload).await
    }))
    .await
}
