//! elevate-archive: wiring only. The handler is [`elevate_archive::handle`].

use elevate_archive::Archiver;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (_env, parts) = elevate_runtime::start_archive().await?;
    let archiver = &Archiver::from_parts(parts);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        elevate_archive::handle(archiver, event.payload).await
    }))
    .await
}
