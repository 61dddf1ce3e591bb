//! elevate-example-target: the example custom escalation target (see the library docs).
//! `EXAMPLE_TARGET_GROUP` names the IAM group it manages.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    elevate_runtime::init_tracing();
    let group = std::env::var("EXAMPLE_TARGET_GROUP")
        .ok()
        .filter(|g| !g.trim().is_empty())
        .ok_or("environment variable EXAMPLE_TARGET_GROUP is not set")?;
    let sdk = elevate_runtime::aws_config().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let (iam, group) = (&iam, group.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(elevate_example_target::handle(iam, group, event.payload).await)
    }))
    .await
}
