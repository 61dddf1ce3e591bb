//! The example hook against the contract's fixture.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{handle, OnCall};

fn submitted(person: &str, duration_secs: u64) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/events/hook-submitted.json");
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut event: Value = serde_json::from_str(&text).expect("json");
    event["person"]["name"] = Value::from(person);
    event["request"]["requester"] = Value::from(person);
    event["request"]["duration"] = Value::from(duration_secs);
    event
}

fn on_call() -> OnCall {
    OnCall {
        people: vec!["mia".to_owned()],
        max_duration: Duration::from_secs(3600),
        channel: Some("C0ONCALL".to_owned()),
    }
}

#[test]
fn the_person_on_call_is_approved_with_a_reason() {
    let answer = handle(&on_call(), &submitted("mia", 1800));
    assert_eq!(answer["decision"], "approve");
    let reason = answer["reason"].as_str().expect("reason");
    assert!(reason.contains("mia is on call"), "{reason}");
}

#[test]
fn everyone_else_waits_for_approvers_in_the_on_call_channel() {
    assert_eq!(
        handle(&on_call(), &submitted("noah", 1800)),
        json!({"decision": "continue", "channel": "C0ONCALL"})
    );
    let mut keep_channel = on_call();
    keep_channel.channel = None;
    assert_eq!(
        handle(&keep_channel, &submitted("noah", 1800)),
        json!({"decision": "continue"})
    );
}

#[test]
fn the_person_on_call_asking_for_longer_than_the_file_allows_waits_too() {
    assert_eq!(
        handle(&on_call(), &submitted("mia", 7200)),
        json!({"decision": "continue", "channel": "C0ONCALL"})
    );
}

#[test]
fn what_is_not_a_submission_is_never_approved() {
    let mut other = submitted("mia", 1800);
    other["type"] = Value::from("escalate");
    assert_eq!(handle(&on_call(), &other), json!({"decision": "continue"}));
    assert_eq!(
        handle(&on_call(), &json!({"person": {"name": "mia"}})),
        json!({"decision": "continue"})
    );
}

#[test]
fn the_bundled_on_call_file_is_valid_and_bad_files_say_why() {
    let bundled = OnCall::bundled().expect("on-call.toml");
    assert!(!bundled.people.is_empty());
    for (text, says) in [
        ("people = []\nmax_duration = \"soon\"", "not a duration"),
        ("people = []\nmax_duration = \"0m\"", "not a duration"),
        ("people = []\nmax_duration = \"1é\"", "not a duration"),
        (
            "people = []\nmax_duration = \"99999999999999999999h\"",
            "not a duration",
        ),
        (
            "people = []\nmax_duration = \"9999999999999999h\"",
            "not a duration",
        ),
        (
            "people = []\nmax_duration = \"1h\"\nchannel = \"#ops\"",
            "not a Slack channel id",
        ),
        (
            "people = []\nmax_duration = \"1h\"\nwho = 1",
            "unknown field",
        ),
    ] {
        let error = OnCall::parse(text).expect_err(text);
        assert!(error.contains(says), "{text}: {error}");
    }
}
