//! The local API Gateway over real HTTP: callers sign like the CLI (the SDK's SigV4 signer),
//! functions receive payload 2.0 events, their answers come back as HTTP responses.

use super::common;

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine;
use common::{FakeDispatcher, TestServer};
use elevate_local::apigw::Gateway;
use elevate_local::dispatch::DispatchError;
use elevate_local::identity::{Caller, LocalUser, LocalUsers};
use serde_json::{json, Value};

const ALICE_KEY: &str = "AKIAALICE0000000";
const ALICE_SECRET: &str = "alice-secret-key";

fn users() -> Arc<LocalUsers> {
    Arc::new(LocalUsers::new(vec![LocalUser {
        caller: Caller {
            person: "alice".to_owned(),
            access_key: ALICE_KEY.to_owned(),
            user_arn: "arn:aws:iam::123456789012:user/alice".to_owned(),
            user_id: "AIDAALICE".to_owned(),
            account_id: "123456789012".to_owned(),
        },
        secret_access_key: ALICE_SECRET.to_owned(),
    }]))
}

async fn gateway(answer: Result<Value, DispatchError>) -> (TestServer, Arc<FakeDispatcher>) {
    let (dispatcher, _calls) = FakeDispatcher::new(answer);
    let router = Gateway::new(users(), dispatcher.clone()).router();
    (TestServer::start(router).await, dispatcher)
}

struct Signer<'a> {
    access_key: &'a str,
    secret: &'a str,
    service: &'a str,
}

const ALICE: Signer<'static> = Signer {
    access_key: ALICE_KEY,
    secret: ALICE_SECRET,
    service: "execute-api",
};

/// A request signed the way the CLI signs; `sent_body` lets a test send other bytes.
fn signed(
    signer: &Signer<'_>,
    method: &str,
    url: &str,
    body: &[u8],
    sent_body: &[u8],
) -> reqwest::RequestBuilder {
    let identity = Credentials::new(signer.access_key, signer.secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(signer.service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let headers = [("content-type", "application/json")];
    let signable =
        SignableRequest::new(method, url, headers.into_iter(), SignableBody::Bytes(body))
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut builder = reqwest::Client::new()
        .request(method.parse().expect("method"), url)
        .body(sent_body.to_vec());
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        builder = builder.header(name, value);
    }
    builder
}

fn event_of(call: &common::Call) -> ApiGatewayV2httpRequest {
    serde_json::from_value(call.payload.clone()).expect("a payload 2.0 event")
}

#[tokio::test]
async fn a_signed_request_reaches_its_function_as_an_event() {
    let (server, dispatcher) = gateway(Ok(json!({
        "statusCode": 201,
        "headers": {"content-type": "application/json"},
        "body": "{\"request\":{\"id\":\"r1\"}}",
        "isBase64Encoded": false
    })))
    .await;
    let url = format!(
        "{}/requests/0190-r1/approve?note=looks%20good&a=1&a=2",
        server.url()
    );
    let body = br#"{"reason":"ok"}"#;

    let response = signed(&ALICE, "POST", &url, body, body)
        .send()
        .await
        .expect("send");

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"request":{"id":"r1"}}"#
    );

    let calls = dispatcher.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function, "elevate-approve");
    let event = event_of(&calls[0]);
    assert_eq!(event.version.as_deref(), Some("2.0"));
    assert_eq!(
        event.route_key.as_deref(),
        Some("POST /requests/{id}/approve")
    );
    assert_eq!(event.raw_path.as_deref(), Some("/requests/0190-r1/approve"));
    assert_eq!(
        event.raw_query_string.as_deref(),
        Some("note=looks%20good&a=1&a=2")
    );
    assert_eq!(event.path_parameters["id"], "0190-r1");
    assert_eq!(
        event.query_string_parameters.first("note"),
        Some("looks good")
    );
    assert_eq!(calls[0].payload["queryStringParameters"]["a"], "1,2");
    assert_eq!(event.headers["content-type"], "application/json");
    assert!(
        calls[0].payload["headers"]["x-amz-date"].is_string(),
        "lowercased names"
    );
    assert_eq!(event.body.as_deref(), Some(r#"{"reason":"ok"}"#));
    assert!(!event.is_base64_encoded);

    let context = &event.request_context;
    assert_eq!(context.account_id.as_deref(), Some("123456789012"));
    assert_eq!(context.apiid.as_deref(), Some("local"));
    assert_eq!(context.stage.as_deref(), Some("$default"));
    assert_eq!(
        context.route_key.as_deref(),
        Some("POST /requests/{id}/approve")
    );
    assert_eq!(context.domain_name.as_deref(), Some("127.0.0.1"));
    assert_eq!(context.http.method, http::Method::POST);
    assert_eq!(
        context.http.path.as_deref(),
        Some("/requests/0190-r1/approve")
    );
    assert_eq!(context.http.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(context.http.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(context
        .request_id
        .as_deref()
        .is_some_and(|id| !id.is_empty()));
    assert!(context.time_epoch > 0);
    let iam = context
        .authorizer
        .as_ref()
        .and_then(|a| a.iam.as_ref())
        .expect("authorizer.iam");
    assert_eq!(iam.access_key.as_deref(), Some(ALICE_KEY));
    assert_eq!(iam.account_id.as_deref(), Some("123456789012"));
    assert_eq!(iam.caller_id.as_deref(), Some("AIDAALICE"));
    assert_eq!(
        iam.user_arn.as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );
    assert_eq!(iam.user_id.as_deref(), Some("AIDAALICE"));
}

#[tokio::test]
async fn a_get_with_a_query_verifies_and_a_plain_json_answer_is_a_200() {
    let (server, dispatcher) = gateway(Ok(json!({"requests": []}))).await;
    let url = format!("{}/requests?scope=to_approve&state=PENDING", server.url());

    let response = signed(&ALICE, "GET", &url, b"", b"")
        .send()
        .await
        .expect("send");

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"requests": []}));
    let event = event_of(&dispatcher.calls()[0]);
    assert_eq!(event.route_key.as_deref(), Some("GET /requests"));
    assert!(event.body.is_none());
    assert!(event.path_parameters.is_empty());
}

async fn assert_forbidden(response: reqwest::Response) {
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"message": "Forbidden"}));
}

#[tokio::test]
async fn unsigned_or_badly_signed_requests_are_forbidden() {
    let (server, dispatcher) = gateway(Ok(json!({}))).await;
    let url = format!("{}/requests", server.url());
    let body = br#"{"flow":"infra_access","duration":"1h","reason":"x"}"#;

    let unsigned = reqwest::Client::new()
        .post(&url)
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_forbidden(unsigned).await;

    let unknown_key = Signer {
        access_key: "AKIAUNKNOWN",
        ..ALICE
    };
    let wrong_secret = Signer {
        secret: "not-alice-secret",
        ..ALICE
    };
    let wrong_service = Signer {
        service: "lambda",
        ..ALICE
    };
    for signer in [&unknown_key, &wrong_secret, &wrong_service] {
        let response = signed(signer, "POST", &url, body, body)
            .send()
            .await
            .expect("send");
        assert_forbidden(response).await;
    }

    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    let response = signed(&ALICE, "POST", &url, body, &tampered)
        .send()
        .await
        .expect("send");
    assert_forbidden(response).await;

    // Signed for another path.
    let other = format!("{}/requests/r1/cancel", server.url());
    let response = signed(&ALICE, "POST", &other, body, body)
        .header("x-test", "1")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200, "the control request passes");
    let response = {
        let builder = signed(&ALICE, "POST", &other, body, body);
        let mut request = builder.build().expect("request");
        *request.url_mut() = url.parse().expect("url");
        reqwest::Client::new().execute(request).await.expect("send")
    };
    assert_forbidden(response).await;

    assert_eq!(dispatcher.calls().len(), 1, "only the control request ran");
}

#[tokio::test]
async fn an_unknown_route_is_not_found() {
    let (server, dispatcher) = gateway(Ok(json!({}))).await;
    for (method, path) in [
        ("GET", "/nope"),
        ("DELETE", "/requests"),
        ("GET", "/slack/interactions"),
    ] {
        let url = format!("{}{path}", server.url());
        let response = signed(&ALICE, method, &url, b"", b"")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"message": "Not Found"}));
    }
    assert!(dispatcher.calls().is_empty());
}

#[tokio::test]
async fn slack_interactions_need_no_signature_and_arrive_base64() {
    let (server, dispatcher) = gateway(Ok(json!({"statusCode": 200, "body": ""}))).await;
    let form = "payload=%7B%22type%22%3A%22block_actions%22%7D";

    let response = reqwest::Client::new()
        .post(format!("{}/slack/interactions", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-signature", "v0=abc")
        .header("x-slack-request-timestamp", "1700000000")
        .body(form)
        .send()
        .await
        .expect("send");

    assert_eq!(response.status(), 200);
    let calls = dispatcher.calls();
    assert_eq!(calls[0].function, "elevate-approve");
    let event = event_of(&calls[0]);
    assert_eq!(event.route_key.as_deref(), Some("POST /slack/interactions"));
    assert!(event.is_base64_encoded);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(event.body.expect("body"))
        .expect("base64");
    assert_eq!(decoded, form.as_bytes());
    assert_eq!(event.headers["x-slack-signature"], "v0=abc");
    assert!(
        event.request_context.authorizer.is_none(),
        "no IAM caller on the public route"
    );
}

#[tokio::test]
async fn a_failing_function_is_an_internal_server_error() {
    let (server, _dispatcher) =
        gateway(Err(DispatchError::failed("Panic", "handler panicked"))).await;
    let url = format!("{}/audit", server.url());
    let response = signed(&ALICE, "GET", &url, b"", b"")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"message": "Internal Server Error"}));
}

#[tokio::test]
async fn a_base64_answer_is_decoded() {
    let (server, _dispatcher) = gateway(Ok(json!({
        "statusCode": 200,
        "headers": {"content-type": "text/csv"},
        "body": base64::engine::general_purpose::STANDARD.encode("a,b\n1,2\n"),
        "isBase64Encoded": true
    })))
    .await;
    let url = format!("{}/audit?since=2026-01-01T00%3A00%3A00Z", server.url());
    let response = signed(&ALICE, "GET", &url, b"", b"")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "a,b\n1,2\n");
}

/// The routes of template.yaml's HttpApi events as (method, path, function, IAM auth), read
/// line by line: the template's CloudFormation tags keep plain YAML parsers out.
pub(crate) fn template_routes() -> std::collections::BTreeSet<(String, String, String, bool)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    let value_after = |line: &str, key: &str| -> Option<String> {
        let rest = line[line.find(key)? + key.len()..].trim_start();
        let value = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next()?,
            None => rest.split([',', '}']).next()?.trim(),
        };
        Some(value.to_owned())
    };
    let mut routes = std::collections::BTreeSet::new();
    let mut function = String::new();
    // (method, path, iam auth) of the HttpApi event being read.
    let mut event: Option<(String, String, bool)> = None;
    let mut finish = |event: &mut Option<(String, String, bool)>, function: &str| {
        if let Some((method, path, iam)) = event.take() {
            routes.insert((method, path, function.to_owned(), iam));
        }
    };
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 2 && line.trim_end().ends_with(':') && !line.trim_start().starts_with('#') {
            finish(&mut event, &function);
            let resource = line.trim().trim_end_matches(':');
            function = match resource.strip_suffix("Function") {
                Some(name) => format!("elevate-{}", name.to_lowercase()),
                None => String::new(),
            };
            continue;
        }
        if line.contains("Type: ") {
            finish(&mut event, &function);
            if line.contains("Type: HttpApi") {
                event = Some((String::new(), String::new(), true));
            }
        }
        if let Some((method, path, iam)) = event.as_mut() {
            if let Some(m) = value_after(line, "Method:") {
                *method = m;
            }
            if let Some(p) = value_after(line, "Path:") {
                *path = p;
            }
            if line.contains("Authorizer: NONE") {
                *iam = false;
            }
        }
    }
    finish(&mut event, &function);
    routes
}

#[test]
fn the_gateway_serves_exactly_the_routes_of_template_yaml() {
    let served: std::collections::BTreeSet<_> = elevate_local::apigw::ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
                r.iam_auth,
            )
        })
        .collect();
    let deployed = template_routes();
    assert!(deployed.len() >= 9, "template routes read: {deployed:#?}");
    assert_eq!(served, deployed);
}
