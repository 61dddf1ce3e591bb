//! elevate-example-hook: the example request hook (see the library docs). It answers from the
//! on-call file built into it, or from the file `ON_CALL_FILE` names.

use elevate_example_hook::OnCall;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    elevate_runtime::init_tracing();
    let on_call = match std::env::var("ON_CALL_FILE") {
        Ok(path) if !path.trim().is_empty() => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read ON_CALL_FILE {path}: {e}"))?;
            OnCall::parse(&text).map_err(|e| format!("{path}: {e}"))?
        }
        _ => OnCall::bundled()?,
    };
    let on_call = &on_call;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(elevate_example_hook::handle(on_call, &event.payload))
    }))
    .await
}
