//! elevate-revoke: wiring only. The handler is [`elevate_revoke::handle`].

use elevate_runtime::EnvSpec;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = elevate_runtime::start(EnvSpec::REVOKE).await?;
    let app = &started.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        elevate_revoke::handle(app, event.payload).await
    }))
    .await
}
