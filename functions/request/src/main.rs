//! elevate-request: wiring only. The handler is [`elevate_request::handle`].

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = elevate_runtime::start(elevate_runtime::EnvSpec::REQUEST).await?;
    let app = &started.app;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(elevate_request::handle(app, request).await)
    }))
    .await
}
