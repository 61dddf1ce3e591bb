//! elevate-escalate: wiring only. The handler is [`elevate_escalate::handle`].

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = elevate_runtime::start(elevate_runtime::EnvSpec::ESCALATE).await?;
    let app = &started.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        elevate_escalate::handle(app, event.payload).await
    }))
    .await
}
