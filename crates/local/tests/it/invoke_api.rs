//! The Invoke API, driven by the real `aws-sdk-lambda` client.

use super::common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use common::{FakeDispatcher, TestServer};
use elevate_local::dispatch::DispatchError;
use serde_json::{json, Value};

fn lambda_client(server: &TestServer) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(server.url())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

fn payload_json(blob: Option<&Blob>) -> Value {
    serde_json::from_slice(blob.expect("payload").as_ref()).expect("json payload")
}

#[tokio::test]
async fn request_response_returns_the_functions_json() {
    let (dispatcher, _calls) = FakeDispatcher::new(Ok(json!({"ok": true, "n": 1})));
    let server = TestServer::start(elevate_local::invoke_api::router(dispatcher.clone())).await;
    let client = lambda_client(&server);

    let answer = client
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:example-target")
        .payload(Blob::new(r#"{"type":"escalate"}"#))
        .send()
        .await
        .expect("invoke");

    assert_eq!(answer.status_code(), 200);
    assert_eq!(answer.function_error(), None);
    assert_eq!(payload_json(answer.payload()), json!({"ok": true, "n": 1}));
    assert_eq!(
        dispatcher.calls(),
        vec![common::Call {
            function: "example-target".to_owned(),
            payload: json!({"type": "escalate"}),
        }]
    );
}

#[tokio::test]
async fn a_function_error_is_reported_like_lambda() {
    let (dispatcher, _calls) =
        FakeDispatcher::new(Err(DispatchError::failed("StoreError", "table not found")));
    let server = TestServer::start(elevate_local::invoke_api::router(dispatcher)).await;
    let client = lambda_client(&server);

    let answer = client
        .invoke()
        .function_name("elevate-escalate")
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(r#"{"request_id":"r1"}"#))
        .send()
        .await
        .expect("a function error is still a successful Invoke call");

    assert_eq!(answer.status_code(), 200);
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(
        payload_json(answer.payload()),
        json!({"errorMessage": "table not found", "errorType": "StoreError"})
    );
}

#[tokio::test]
async fn an_event_is_accepted_before_the_function_runs() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (dispatcher, mut calls) = FakeDispatcher::gated(Ok(json!({})), gate.clone());
    let server = TestServer::start(elevate_local::invoke_api::router(dispatcher.clone())).await;
    let client = lambda_client(&server);

    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        client
            .invoke()
            .function_name("elevate-escalate")
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(r#"{"request_id":"r2"}"#))
            .send(),
    )
    .await
    .expect("answered while the function is still held")
    .expect("invoke");
    assert_eq!(answer.status_code(), 202);

    let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .expect("dispatched in the background")
        .expect("a call");
    assert_eq!(call.function, "elevate-escalate");
    assert_eq!(call.payload, json!({"request_id": "r2"}));
    gate.add_permits(1);
}

#[tokio::test]
async fn an_unknown_function_is_resource_not_found() {
    let (dispatcher, _calls) =
        FakeDispatcher::new(Err(DispatchError::UnknownFunction("nope".to_owned())));
    let server = TestServer::start(elevate_local::invoke_api::router(dispatcher)).await;
    let client = lambda_client(&server);

    let error = client
        .invoke()
        .function_name("nope")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect_err("unknown function");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let (dispatcher, _calls) = FakeDispatcher::new(Ok(json!({})));
    let server = TestServer::start(elevate_local::invoke_api::router(dispatcher.clone())).await;
    let client = lambda_client(&server);

    let error = client
        .invoke()
        .function_name("elevate-escalate")
        .payload(Blob::new("not json"))
        .send()
        .await
        .expect_err("bad payload");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_invalid_request_content_exception()),
        "{error:?}"
    );
    assert!(dispatcher.calls().is_empty());
}

#[tokio::test]
async fn a_failing_event_is_retried_then_sent_to_its_destination() {
    let failure = DispatchError::failed("EscalationFailed", "target unavailable");
    let (dispatcher, mut calls) = FakeDispatcher::new(Ok(json!({"noop": true})));
    for _ in 0..3 {
        dispatcher.then(Err(failure.clone()));
    }
    let policy = elevate_local::invoke_api::InvokePolicy {
        retries: 2,
        first_delay: Duration::from_millis(10),
        on_failure: [("elevate-escalate".to_owned(), "elevate-revoke".to_owned())].into(),
        ..Default::default()
    };
    let server = TestServer::start(elevate_local::invoke_api::router_with(
        dispatcher.clone(),
        policy,
    ))
    .await;
    let answer = lambda_client(&server)
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:elevate-escalate")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"request_id":"r3"}"#))
        .send()
        .await
        .expect("invoke");
    assert_eq!(answer.status_code(), 202);

    let mut seen = Vec::new();
    for _ in 0..4 {
        let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
            .await
            .expect("the next attempt")
            .expect("a call");
        seen.push(call);
    }
    let functions: Vec<&str> = seen.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(
        functions,
        [
            "elevate-escalate",
            "elevate-escalate",
            "elevate-escalate",
            "elevate-revoke"
        ]
    );
    // The record revoke reads (functions/revoke/events/escalate-retries-exhausted.json).
    let record = &seen[3].payload;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"], json!({"request_id": "r3"}));
    assert_eq!(record["responsePayload"]["errorType"], "EscalationFailed");
    assert_eq!(
        record["responsePayload"]["errorMessage"],
        "target unavailable"
    );
}

#[tokio::test]
async fn a_retried_event_that_succeeds_goes_nowhere_else() {
    let (dispatcher, mut calls) = FakeDispatcher::new(Ok(json!({})));
    dispatcher.then(Err(DispatchError::failed("Boom", "once")));
    let policy = elevate_local::invoke_api::InvokePolicy {
        first_delay: Duration::from_millis(10),
        on_failure: [("elevate-escalate".to_owned(), "elevate-revoke".to_owned())].into(),
        ..Default::default()
    };
    let server = TestServer::start(elevate_local::invoke_api::router_with(
        dispatcher.clone(),
        policy,
    ))
    .await;
    lambda_client(&server)
        .invoke()
        .function_name("elevate-escalate")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"request_id":"r4"}"#))
        .send()
        .await
        .expect("invoke");
    for _ in 0..2 {
        let call = tokio::time::timeout(Duration::from_secs(5), calls.recv())
            .await
            .expect("an attempt")
            .expect("a call");
        assert_eq!(call.function, "elevate-escalate");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dispatcher.calls().len(), 2, "{:?}", dispatcher.calls());
}

#[tokio::test]
async fn a_slow_function_answers_after_its_latency() {
    let (dispatcher, _calls) = FakeDispatcher::new(Ok(json!({"decision": "continue"})));
    let policy = elevate_local::invoke_api::InvokePolicy {
        latency: [(
            "elevate-example-hook".to_owned(),
            Duration::from_millis(300),
        )]
        .into(),
        ..Default::default()
    };
    let server = TestServer::start(elevate_local::invoke_api::router_with(
        dispatcher.clone(),
        policy,
    ))
    .await;
    let started = std::time::Instant::now();
    let answer = lambda_client(&server)
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:elevate-example-hook")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status_code(), 200);
    assert_eq!(dispatcher.calls().len(), 1);
}
