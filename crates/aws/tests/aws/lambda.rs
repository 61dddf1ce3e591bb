use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use elevate_aws::{LambdaInvoker, LambdaStrategy};
use elevate_core::config::{Target, TargetKind};
use elevate_core::ports::{InvokeError, Invoker, Membership, Strategy, StrategyError};
use serde_json::{json, Value};

use crate::{new_request, person};

const TARGET_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:example-target";

/// What the fake custom target answers.
#[derive(Clone)]
enum Answer {
    Json(Value),
    FunctionError(String),
}

/// A custom target that records what it was sent.
struct FakeTarget {
    answer: Answer,
    calls: Mutex<Vec<(String, Value)>>,
}

impl FakeTarget {
    fn new(answer: Answer) -> Arc<Self> {
        Arc::new(FakeTarget {
            answer,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Invoker for FakeTarget {
    async fn invoke_async(&self, _function: &str, _payload: &Value) -> Result<(), InvokeError> {
        panic!("a custom target is invoked synchronously")
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        self.calls
            .lock()
            .expect("lock")
            .push((function.to_owned(), payload.clone()));
        match &self.answer {
            Answer::Json(value) => Ok(value.clone()),
            Answer::FunctionError(text) => Err(InvokeError::FunctionError(text.clone())),
        }
    }
}

fn lambda_target() -> Target {
    Target {
        name: "custom-db".into(),
        kind: TargetKind::Lambda {
            function_arn: TARGET_ARN.to_owned(),
        },
    }
}

#[tokio::test]
async fn a_custom_target_that_answers_ok_grants_and_gets_the_contract_payload() {
    let fake = FakeTarget::new(Answer::Json(json!({"ok": true})));
    let strategy = LambdaStrategy::new(fake.clone());
    let alice = person("alice", "alice.iam");
    let (request, _) = new_request("alice", Utc::now());

    strategy
        .escalate(&lambda_target(), &alice, &request)
        .await
        .expect("escalate");
    strategy
        .deescalate(&lambda_target(), &alice, &request)
        .await
        .expect("deescalate");
    assert_eq!(
        strategy
            .is_member(&lambda_target(), &alice)
            .await
            .expect("read"),
        Membership::Unknown
    );

    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    let expected = |kind: &str| {
        json!({
            "type": kind,
            "request": serde_json::to_value(&request).expect("request json"),
            "person": {
                "name": "alice",
                "iam_user": "alice.iam",
                "slack_id": "UALICE",
                "email": "alice@example.com",
            },
            "target": "custom-db",
        })
    };
    assert_eq!(calls[0], (TARGET_ARN.to_owned(), expected("escalate")));
    assert_eq!(calls[1], (TARGET_ARN.to_owned(), expected("deescalate")));
}

#[tokio::test]
async fn a_custom_target_that_refuses_is_a_refusal_with_its_reason() {
    let fake = FakeTarget::new(Answer::Json(
        json!({"ok": false, "error": "alice has no database account"}),
    ));
    let strategy = LambdaStrategy::new(fake);
    let (request, _) = new_request("alice", Utc::now());
    let err = strategy
        .escalate(&lambda_target(), &person("alice", "alice"), &request)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, StrategyError::Refused(m) if m == "alice has no database account"),
        "{err}"
    );

    // Answers outside the contract are refusals too, saying what came back.
    for answer in [json!({"ok": false}), json!({"status": "done"}), json!("ok")] {
        let strategy = LambdaStrategy::new(FakeTarget::new(Answer::Json(answer)));
        let err = strategy
            .deescalate(&lambda_target(), &person("alice", "alice"), &request)
            .await
            .expect_err("not ok");
        assert!(matches!(err, StrategyError::Refused(_)), "{err}");
    }
}

#[tokio::test]
async fn a_custom_target_that_crashes_is_unavailable_with_the_error_payload() {
    let payload = r#"{"errorType":"Runtime.ExitError","errorMessage":"boom"}"#;
    let strategy = LambdaStrategy::new(FakeTarget::new(Answer::FunctionError(payload.to_owned())));
    let (request, _) = new_request("alice", Utc::now());
    let err = strategy
        .escalate(&lambda_target(), &person("alice", "alice"), &request)
        .await
        .expect_err("function error");
    let StrategyError::Unavailable(source) = &err else {
        panic!("expected Unavailable, got {err}");
    };
    assert!(
        matches!(source.downcast_ref::<InvokeError>(), Some(InvokeError::FunctionError(text)) if text == payload),
        "{source}"
    );
}

#[tokio::test]
async fn iam_group_targets_are_not_handled_by_the_lambda_strategy() {
    let strategy = LambdaStrategy::new(FakeTarget::new(Answer::Json(json!({"ok": true}))));
    let target = Target {
        name: "admins".into(),
        kind: TargetKind::IamGroup {
            group: "Admins".to_owned(),
            roles: Vec::new(),
        },
    };
    let (request, _) = new_request("alice", Utc::now());
    let alice = person("alice", "alice");
    assert!(matches!(
        strategy.escalate(&target, &alice, &request).await,
        Err(StrategyError::WrongTarget(_))
    ));
    assert!(matches!(
        strategy.is_member(&target, &alice).await,
        Err(StrategyError::WrongTarget(_))
    ));
}

/// (path, X-Amz-Invocation-Type) of each call the stand-in Invoke API received.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A stand-in for the Lambda Invoke API (moto cannot run functions without Docker): answers
/// `ok` functions with their payload echoed, `fails` functions with a function error, and
/// records the invocation type of each call.
fn invoke_api() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0;
            let mut invocation_type = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-amz-invocation-type" => invocation_type = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            record
                .lock()
                .expect("lock")
                .push((path.clone(), invocation_type.clone()));
            let (status, extra, answer) = if invocation_type == "Event" {
                ("202 Accepted", "", Vec::new())
            } else if path.contains("fails") {
                (
                    "200 OK",
                    "X-Amz-Function-Error: Unhandled\r\n",
                    br#"{"errorType":"Panic","errorMessage":"boom"}"#.to_vec(),
                )
            } else {
                ("200 OK", "", body)
            };
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    (endpoint, seen)
}

#[tokio::test]
async fn the_invoker_answers_results_function_errors_and_fires_events() {
    let (endpoint, seen) = invoke_api();
    let config = elevate_testkit::sdk_config_for(&endpoint);
    let invoker = LambdaInvoker::new(aws_sdk_lambda::Client::new(&config));
    let payload = json!({"request_id": "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d"});

    assert_eq!(
        invoker.invoke("ok", &payload).await.expect("invoke"),
        payload
    );
    let err = invoker
        .invoke("fails", &payload)
        .await
        .expect_err("function error");
    assert!(
        matches!(&err, InvokeError::FunctionError(text) if text.contains("boom")),
        "{err}"
    );
    invoker
        .invoke_async("elevate-escalate", &payload)
        .await
        .expect("invoke async");

    let seen = seen.lock().expect("lock").clone();
    let types: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, vec!["RequestResponse", "RequestResponse", "Event"]);
    assert!(seen[2]
        .0
        .contains("/functions/elevate-escalate/invocations"));
}

#[tokio::test]
async fn an_escalation_is_an_asynchronous_invoke_of_escalate_with_the_request() {
    use elevate_aws::LambdaEscalation;
    use elevate_core::ports::Escalation;
    use elevate_core::testing::RecordingInvoker;

    let invoker = Arc::new(RecordingInvoker::new());
    let escalation = LambdaEscalation::new(invoker.clone(), Some("elevate-escalate".into()));
    let id: elevate_core::RequestId = "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d".parse().expect("id");
    escalation.start(&id).await.expect("started");
    let calls = invoker.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].asynchronous);
    assert_eq!(calls[0].function, "elevate-escalate");
    assert_eq!(calls[0].payload, json!({ "request_id": id }));

    let without = LambdaEscalation::new(invoker.clone(), None);
    let err = without.start(&id).await.expect_err("no function to invoke");
    assert!(
        err.to_string().contains("ELEVATE_ESCALATE_FUNCTION"),
        "{err}"
    );
    assert_eq!(invoker.calls().len(), 1, "nothing invoked");
}

/// A function's own Slack follow-ups go back to it; End access now goes to revoke, which may
/// remove access. Each is sent as the `FollowUp` JSON, asynchronously.
#[tokio::test]
async fn follow_ups_go_to_the_function_that_may_run_them() {
    use elevate_aws::LambdaFollowUps;
    use elevate_core::events::FollowUp;
    use elevate_core::ports::FollowUps;
    use elevate_core::testing::RecordingInvoker;

    let invoker = Arc::new(RecordingInvoker::new());
    let revoke = "arn:aws:lambda:us-east-1:123456789012:function:elevate-revoke";
    let follow_ups = LambdaFollowUps::new(invoker.clone(), "elevate-approve", revoke);
    let id: elevate_core::RequestId = "01a211fc-a620-7d31-9f6e-2b7c4d8e1a05".parse().expect("id");
    let decided = FollowUp::Decided {
        request_id: id.clone(),
    };
    let end = FollowUp::EndAccess {
        request_id: id.clone(),
        team_id: "T0ELEVATE".into(),
        slack_user_id: "U0ALICE01".into(),
        channel: "D0ALICE".into(),
    };
    follow_ups.defer(&decided).await.expect("decided");
    follow_ups.defer(&end).await.expect("end access");
    let calls = invoker.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].function, "elevate-approve");
    assert_eq!(calls[1].function, revoke);
    assert!(calls.iter().all(|c| c.asynchronous));
    assert_eq!(
        calls[0].payload,
        json!({"follow_up": "decided", "request_id": id.as_str()})
    );
    let sent: FollowUp = serde_json::from_value(calls[1].payload.clone()).expect("a FollowUp");
    assert_eq!(sent, end);
}
