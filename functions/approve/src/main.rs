//! elevate-approve: wiring only. The handler is [`elevate_approve::handle`].

use elevate_runtime::EnvSpec;
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Besides the escalate function, approve needs the schedule group: a decision deletes the
    // request's time-out schedule.
    let spec = EnvSpec {
        scheduler: true,
        ..EnvSpec::APPROVE
    };
    let started = elevate_runtime::start(spec).await?;
    let (app, signing_secret) = (&started.app, started.slack.signing_secret.as_str());
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(elevate_approve::handle(app, signing_secret, request).await)
    }))
    .await
}
