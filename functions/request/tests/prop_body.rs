//! Fuzzing the body of `POST /requests`, the one free-form input of the request function: any
//! bytes, any JSON and any damaged copy of a real body is answered with a 400 and a code of the
//! contract (or opens the request), never a panic or a 500, and a refusal writes nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::Engine;
use elevate_core::service::{App, Settings};
use elevate_core::testing::{
    FakeClock, FakeScheduler, FakeStrategy, MemoryStore, RecordingEscalation, RecordingFollowUps,
    RecordingNotifier,
};
use elevate_core::Config;
use elevate_http::{json_body, ApiError};
use elevate_request::{handle, NewRequestBody};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

/// Enough to shake out panics while keeping `make test` fast; no regression files are written
/// into the checkout (a failure prints its minimal input, which belongs in a named test).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The 400 codes docs/contracts.md lists for `POST /requests`.
const CODES_400: &[&str] = &[
    "bad_request",
    "unknown_flow",
    "unknown_target",
    "target_required",
    "invalid_duration",
    "duration_over_cap",
    "duration_not_allowed",
    "reason_required",
    "reason_too_long",
    "reason_invalid_characters",
];

const FIELDS: &[&str] = &["flow", "target", "duration", "reason"];

fn valid_body() -> Value {
    json!({"flow": "infra_access", "target": "admins", "duration": "1h", "reason": "INC-4211"})
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/events/apigw-create-request.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `POST /requests` by alice, the body sent as text or, as API Gateway does for binary, base64.
fn event(body: &[u8], base64: bool) -> lambda_http::Request {
    let mut event = fixture();
    if base64 {
        event["body"] = Value::from(base64::engine::general_purpose::STANDARD.encode(body));
        event["isBase64Encoded"] = Value::Bool(true);
    } else {
        event["body"] = Value::from(String::from_utf8_lossy(body).into_owned());
        event["isBase64Encoded"] = Value::Bool(false);
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

struct Fakes {
    app: App,
    store: Arc<MemoryStore>,
    scheduler: Arc<FakeScheduler>,
}

/// Fresh in-memory ports per case, so one accepted body cannot change the next answer.
fn fakes(config: &Arc<Config>) -> Fakes {
    let store = Arc::new(MemoryStore::new());
    let scheduler = Arc::new(FakeScheduler::new());
    let app = App {
        config: config.clone(),
        store: store.clone(),
        strategy: Arc::new(FakeStrategy::new()),
        directory: Arc::new(elevate_core::ports::NoDirectory),
        scheduler: scheduler.clone(),
        notifier: Arc::new(RecordingNotifier::new()),
        escalation: Arc::new(RecordingEscalation::new()),
        follow_ups: Arc::new(RecordingFollowUps::new()),
        hooks: Arc::new(elevate_core::testing::RecordingInvoker::new()),
        clock: Arc::new(FakeClock::new(FakeClock::start())),
        settings: Settings::default(),
    };
    Fakes {
        app,
        store,
        scheduler,
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    config: Arc<Config>,
}

impl Harness {
    fn new() -> Self {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/elevate.toml"
        ));
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            config: Arc::new(Config::parse(text).unwrap()),
        }
    }

    /// The body parser alone: a typed 400 or a submission, never a fault.
    fn parse(&self, body: &[u8], base64: bool) -> Result<(), TestCaseError> {
        let request = event(body, base64);
        let parsed = json_body::<NewRequestBody>(&request).and_then(|b| b.into_submission());
        match parsed {
            Ok(_) => {}
            Err(ApiError::Refused {
                status,
                code,
                message,
            }) => {
                prop_assert_eq!(status, 400);
                prop_assert!(
                    code == "bad_request" || code == "invalid_duration",
                    "{code}"
                );
                prop_assert!(!message.is_empty());
            }
            Err(ApiError::Fault(detail)) => prop_assert!(false, "parsing faulted: {detail}"),
        }
        Ok(())
    }

    /// The whole handler: 201, or 400 with a contract code and nothing written.
    fn call(&self, body: &[u8], base64: bool) -> Result<(), TestCaseError> {
        self.parse(body, base64)?;
        let fakes = fakes(&self.config);
        let response = self
            .runtime
            .block_on(handle(&fakes.app, event(body, base64)));
        let status = response.status().as_u16();
        let answer: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        match status {
            201 => {
                prop_assert_eq!(&answer["request"]["state"], "PENDING");
                prop_assert_eq!(fakes.store.requests_all().len(), 1);
            }
            400 => {
                let code = answer["error"].as_str().unwrap_or_default();
                prop_assert!(CODES_400.contains(&code), "{answer}");
                prop_assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
                prop_assert!(fakes.store.requests_all().is_empty(), "a refusal wrote");
                prop_assert!(
                    fakes.scheduler.schedules().is_empty(),
                    "a refusal scheduled"
                );
            }
            other => prop_assert!(false, "answered {other}: {answer}"),
        }
        Ok(())
    }
}

/// Any JSON value, with object keys mostly the body's own.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from("infra_access")),
        Just(Value::from("admins")),
        duration_text().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(FIELDS).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Durations as people, scripts and attackers write them, including ones past any date.
fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,25} ?(ns|ms|s|m|h|d|w|M|y)",
        "([0-9]{1,6}(d|h|m|s)){1,4}",
        Just("18446744073709551615s".to_owned()),
        Just("584942417355y".to_owned()),
        Just("-1h".to_owned()),
        ".{0,12}",
    ]
}

fn duration_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        (0u64..100_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        duration_text().prop_map(Value::from),
        json_value(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Remove(Index),
    Set(Index, Value),
    Add(String, Value),
    Duration(Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::Remove),
        (any::<Index>(), json_value()).prop_map(|(at, v)| Edit::Set(at, v)),
        duration_value().prop_map(Edit::Duration),
        (".{0,8}", json_value()).prop_map(|(k, v)| Edit::Add(k, v)),
    ]
}

fn apply(body: &mut Map<String, Value>, e: &Edit) {
    match e {
        Edit::Remove(at) => {
            body.remove(*at.get(FIELDS));
        }
        Edit::Set(at, value) => {
            body.insert((*at.get(FIELDS)).to_owned(), value.clone());
        }
        Edit::Add(key, value) => {
            body.insert(key.clone(), value.clone());
        }
        Edit::Duration(value) => {
            body.insert("duration".to_owned(), value.clone());
        }
    }
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(Index, u8),
    Delete(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| ByteEdit::Flip(at, xor)),
        any::<Index>().prop_map(ByteEdit::Delete),
        (
            any::<Index>(),
            prop::sample::select(b"{}[]\",:\\0-9e.u ".to_vec())
        )
            .prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

#[test]
fn the_valid_body_opens_a_request() {
    let harness = Harness::new();
    let fakes = fakes(&harness.config);
    let body = valid_body().to_string();
    let response = harness
        .runtime
        .block_on(handle(&fakes.app, event(body.as_bytes(), false)));
    assert_eq!(response.status().as_u16(), 201);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_a_400(body in prop::collection::vec(any::<u8>(), 0..512)) {
        Harness::new().call(&body, true)?;
    }

    #[test]
    fn arbitrary_text_is_a_400(body in any::<String>()) {
        Harness::new().call(body.as_bytes(), false)?;
    }

    #[test]
    fn arbitrary_json_is_a_400_or_a_request(body in json_value(), base64 in any::<bool>()) {
        Harness::new().call(body.to_string().as_bytes(), base64)?;
    }

    #[test]
    fn any_duration_is_a_400_or_a_request(duration in duration_value()) {
        let mut body = valid_body();
        body["duration"] = duration;
        Harness::new().call(body.to_string().as_bytes(), false)?;
    }

    #[test]
    fn an_edited_valid_body_is_a_400_or_a_request(edits in prop::collection::vec(edit(), 1..4)) {
        let Value::Object(mut body) = valid_body() else { unreachable!() };
        for e in &edits {
            apply(&mut body, e);
        }
        Harness::new().call(Value::Object(body).to_string().as_bytes(), false)?;
    }

    #[test]
    fn a_byte_damaged_valid_body_is_a_400_or_a_request(
        edits in prop::collection::vec(byte_edit(), 1..6),
        base64 in any::<bool>(),
    ) {
        let mut body = valid_body().to_string().into_bytes();
        for e in &edits {
            let len = body.len();
            match e {
                ByteEdit::Flip(at, xor) if len > 0 => body[at.index(len)] ^= xor,
                ByteEdit::Delete(at) if len > 0 => {
                    body.remove(at.index(len));
                }
                ByteEdit::Insert(at, b) => body.insert(at.index(len + 1), *b),
                ByteEdit::Truncate(at) => body.truncate(at.index(len + 1)),
                _ => {}
            }
        }
        Harness::new().call(&body, base64)?;
    }
}
