//! The values of the model as users type and see them: durations, request ids, states, actors,
//! and a request's JSON (the HTTP API sends it exactly as serialized here).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::request_in;
use elevate_core::{format_duration, parse_duration, Actor, Request, RequestId, State};

#[test]
fn durations_read_as_people_write_them() {
    for (text, secs) in [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172_800),
        (" 45m ", 2700),
        ("1h 30m", 5400),
        ("0s", 0),
    ] {
        assert_eq!(
            parse_duration(text).unwrap(),
            Duration::from_secs(secs),
            "{text:?}"
        );
    }
}

#[test]
fn sub_second_and_nonsense_durations_are_refused_with_a_hint() {
    for text in ["1s500ms", "250ms", "1h!", "h", "10"] {
        let err = parse_duration(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{text}` is not a duration (write it like 30m, 1h, 1h30m or 2d)")
        );
    }
}

#[test]
fn durations_are_shown_in_the_largest_units() {
    for (secs, text) in [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (3601, "1h1s"),
        (86_400, "1d"),
        (90_061, "1d1h1m1s"),
        (14_400, "4h"),
    ] {
        assert_eq!(format_duration(Duration::from_secs(secs)), text);
    }
}

#[test]
fn request_ids_are_normalized_uuids() {
    let canonical = "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d";
    for written in [
        canonical,
        "0193F0C2-8D4E-7B6A-9C1D-2E3F4A5B6C7D",
        " 0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d\n",
        "0193f0c28d4e7b6a9c1d2e3f4a5b6c7d",
    ] {
        let id: RequestId = written.parse().unwrap();
        assert_eq!(id.as_str(), canonical, "{written:?}");
        assert_eq!(id.to_string(), canonical);
    }
    for junk in ["", "42", "0193f0c2-8d4e-7b6a-9c1d", "REQ#0193f0c2"] {
        let err = junk.parse::<RequestId>().unwrap_err();
        assert!(err.to_string().contains("is not a request id"), "{junk:?}");
    }
}

#[test]
fn request_ids_are_validated_when_read_from_json() {
    let id: RequestId = serde_json::from_str("\"0193F0C2-8D4E-7B6A-9C1D-2E3F4A5B6C7D\"").unwrap();
    assert_eq!(id.as_str(), "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d");
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        "\"0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d\""
    );
    assert!(serde_json::from_str::<RequestId>("\"../../etc/passwd\"").is_err());
}

#[test]
fn generated_ids_are_version_7_and_carry_their_time() {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let id = RequestId::generate(now);
    let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
    assert_eq!(secs, 1_700_000_000);
    assert_ne!(
        RequestId::generate(now),
        id,
        "two ids of the same second differ"
    );
}

#[test]
fn states_read_as_typed_on_the_command_line() {
    assert_eq!("timed-out".parse::<State>().unwrap(), State::TimedOut);
    assert_eq!(" Active ".parse::<State>().unwrap(), State::Active);
    let err = "gone".parse::<State>().unwrap_err();
    assert!(err.to_string().starts_with("unknown state `gone`"));
    for state in State::ALL {
        assert_eq!(state.to_string(), state.as_str());
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{}\"", state.as_str()));
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
    }
}

#[test]
fn final_states_are_the_ends_of_a_request() {
    let finals: Vec<State> = State::ALL.into_iter().filter(|s| s.is_final()).collect();
    assert_eq!(
        finals,
        [
            State::Expired,
            State::Revoked,
            State::Denied,
            State::Cancelled,
            State::TimedOut
        ]
    );
}

#[test]
fn actors_show_and_serialize_as_documented() {
    assert_eq!(Actor::person("alice").to_string(), "alice");
    assert_eq!(Actor::system("revoke").to_string(), "elevate:revoke");
    assert_eq!(Actor::person("alice").person_name(), Some("alice"));
    assert_eq!(Actor::system("revoke").person_name(), None);
    assert_eq!(
        serde_json::to_value(Actor::system("sweep")).unwrap(),
        serde_json::json!({"kind": "system", "name": "sweep"})
    );
}

#[test]
fn a_request_serializes_with_seconds_and_without_unset_fields() {
    let (pending, _) = request_in(State::Pending);
    let json = serde_json::to_value(&pending).unwrap();
    assert_eq!(json["duration"], 3600);
    assert_eq!(json["state"], "PENDING");
    assert_eq!(json["created_at"], "2023-11-14T22:13:20Z");
    assert_eq!(json["pending_until"], "2023-11-14T22:43:20Z");
    assert_eq!(json["audit_seq"], 1);
    for unset in [
        "decided_at",
        "decided_by",
        "activated_at",
        "expires_at",
        "ended_at",
        "failure",
        "message",
    ] {
        assert!(json.get(unset).is_none(), "{unset} should be left out");
    }

    for state in State::ALL {
        let (request, _) = request_in(state);
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
    }
    let (active, _) = request_in(State::Active);
    let json = serde_json::to_value(&active).unwrap();
    assert_eq!(json["expires_at"], "2023-11-14T23:15:20Z");
}
