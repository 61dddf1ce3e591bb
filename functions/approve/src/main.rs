//! elevate-approve: wiring only. The handler is [`elevate_approve::handle`].

use elevate_runtime::EnvSpec;
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = elevate_runtime::start(EnvSpec::APPROVE).await?;
    let (app, signing_secret) = (&started.app, started.slack.signing_secret.as_str());
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(elevate_approve::handle(app, signing_secret, request).await)
    }))
    .await
}
