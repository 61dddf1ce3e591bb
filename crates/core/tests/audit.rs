//! The audit chain: a real history verifies, and every kind of tampering an auditor must catch
//! (altered, deleted, relinked, mixed-in or reordered events) is reported as such.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use elevate_core::audit::{EventDraft, GENESIS};
use elevate_core::{
    apply, verify_chain, Action, AuditEvent, ChainError, Command, Request, State, TargetKind,
};
use sha2::{Digest, Sha256};

/// A four-event history: requested, approved, activated, revoked.
fn chain() -> (Request, Vec<AuditEvent>) {
    request_in(State::Revoked)
}

fn head(request: &Request) -> Option<(u64, &str)> {
    Some((request.audit_seq, request.audit_head.as_str()))
}

fn id(request: &Request) -> String {
    request.id.to_string()
}

#[test]
fn a_real_history_verifies_with_and_without_its_head() {
    let (request, events) = chain();
    assert_eq!(events.len(), 4);
    assert_eq!(verify_chain(&events, None), Ok(()));
    assert_eq!(verify_chain(&events, head(&request)), Ok(()));
}

#[test]
fn events_verify_in_any_order() {
    let (request, mut events) = chain();
    events.reverse();
    assert_eq!(verify_chain(&events, head(&request)), Ok(()));
    events.swap(0, 2);
    assert_eq!(verify_chain(&events, head(&request)), Ok(()));
}

#[test]
fn no_events_is_not_a_valid_history() {
    assert!(matches!(
        verify_chain(&[], None),
        Err(ChainError::Empty { .. })
    ));
}

/// A named change to one event, as someone editing the audit table would make it.
type Alteration = fn(&mut AuditEvent);

#[test]
fn altering_any_field_of_any_event_is_caught() {
    let (request, events) = chain();
    let alterations: Vec<(&str, Alteration)> = vec![
        ("reason", |e| e.reason = Some("routine maintenance".into())),
        ("reason removed", |e| e.reason = None),
        ("actor", |e| e.actor = person("mallory")),
        ("actor kind", |e| {
            e.actor = elevate_core::Actor::system(e.actor.to_string())
        }),
        ("principal", |e| {
            e.principal = Some("arn:aws:iam::123456789012:user/mallory".into())
        }),
        ("principal removed", |e| e.principal = None),
        ("terms group", |e| {
            if let Some(terms) = &mut e.terms {
                terms.target.kind = TargetKind::IamGroup {
                    group: "AdministratorAccess".into(),
                    roles: Vec::new(),
                };
            }
        }),
        ("terms person", |e| {
            if let Some(terms) = &mut e.terms {
                terms.person.iam_user = "mallory".into();
            }
        }),
        ("terms removed", |e| e.terms = None),
        ("to", |e| e.to = State::Denied),
        ("from", |e| e.from = Some(State::Failed)),
        ("action", |e| e.action = Action::Deny),
        ("at", |e| e.at += chrono::Duration::seconds(1)),
        ("at by a nanosecond", |e| {
            e.at += chrono::Duration::nanoseconds(1)
        }),
        ("hash", |e| {
            let flipped = if e.hash.starts_with('0') { "1" } else { "0" };
            e.hash.replace_range(..1, flipped);
        }),
    ];
    for seq in 1..=events.len() as u64 {
        for (what, alter) in &alterations {
            let mut tampered = events.clone();
            let event = &mut tampered[seq as usize - 1];
            let original = event.clone();
            alter(event);
            if *event == original {
                continue; // e.g. no reason to remove on this event
            }
            let expected = Err(ChainError::Altered {
                request_id: id(&request),
                seq,
            });
            assert_eq!(verify_chain(&tampered, None), expected, "{what} of {seq}");
            assert_eq!(
                verify_chain(&tampered, head(&request)),
                expected,
                "{what} of {seq}"
            );
        }
    }
}

#[test]
fn deleting_an_event_is_caught() {
    let (request, events) = chain();

    let mut without_middle = events.clone();
    without_middle.remove(1);
    assert_eq!(
        verify_chain(&without_middle, None),
        Err(ChainError::Gap {
            request_id: id(&request),
            expected: 2,
            found: 3
        })
    );

    let without_first = events[1..].to_vec();
    assert_eq!(
        verify_chain(&without_first, None),
        Err(ChainError::Gap {
            request_id: id(&request),
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn deleting_the_last_event_is_caught_by_the_head_on_the_request() {
    let (request, mut events) = chain();
    events.pop();
    // The remaining events are a perfect chain on their own: only the head can tell.
    assert_eq!(verify_chain(&events, None), Ok(()));
    assert_eq!(
        verify_chain(&events, head(&request)),
        Err(ChainError::Truncated {
            request_id: id(&request),
            last: 3,
            head_seq: 4
        })
    );
}

#[test]
fn a_rewritten_and_rehashed_history_is_caught_by_the_head() {
    let (request, mut events) = chain();
    // Rewrite who approved, then recompute every hash after it as a forger would.
    events[1].actor = person("mallory");
    let mut prev = events[0].hash.clone();
    for event in &mut events[1..] {
        event.prev_hash = prev;
        event.hash = event.computed_hash();
        prev = event.hash.clone();
    }
    assert_eq!(verify_chain(&events, None), Ok(()));
    assert!(matches!(
        verify_chain(&events, head(&request)),
        Err(ChainError::Truncated {
            last: 4,
            head_seq: 4,
            ..
        })
    ));
}

#[test]
fn relinking_an_event_is_caught() {
    let (request, mut events) = chain();
    // Point event 3 at event 1 instead of event 2, and reseal it so its own hash matches.
    events[2].prev_hash = events[0].hash.clone();
    events[2].hash = events[2].computed_hash();
    assert_eq!(
        verify_chain(&events, None),
        Err(ChainError::BrokenLink {
            request_id: id(&request),
            seq: 3
        })
    );

    // The first event must start from the genesis hash.
    let (request, mut events) = chain();
    events[0].prev_hash = events[3].hash.clone();
    events[0].hash = events[0].computed_hash();
    assert_eq!(
        verify_chain(&events, None),
        Err(ChainError::BrokenLink {
            request_id: id(&request),
            seq: 1
        })
    );
}

#[test]
fn an_event_whose_start_state_is_not_the_previous_end_is_caught() {
    let (request, events) = opened(1);
    // Correctly linked and sealed, but it claims the grant went from ACTIVE to REVOKED while
    // the request was still PENDING.
    let forged = EventDraft {
        request_id: request.id.clone(),
        seq: 2,
        at: at(60),
        actor: person(APPROVER),
        principal: Some(principal_of(APPROVER)),
        action: Action::Revoke,
        from: Some(State::Active),
        to: State::Revoked,
        reason: None,
        terms: None,
        prev_hash: events[0].hash.clone(),
    }
    .seal();
    let chain = [events[0].clone(), forged];
    assert_eq!(
        verify_chain(&chain, None),
        Err(ChainError::Discontinuous {
            request_id: id(&request),
            seq: 2,
            from: Some(State::Active),
            previous: State::Pending
        })
    );
}

#[test]
fn events_of_another_request_are_caught() {
    let (request, mut events) = chain();
    let (other, other_events) = request_in_chain(2, State::Approved);
    assert_ne!(request.id, other.id);

    // Another request's event in place of this one's second event.
    events[1] = other_events[1].clone();
    assert_eq!(
        verify_chain(&events, None),
        Err(ChainError::ForeignEvent {
            request_id: id(&request),
            seq: 2,
            other: id(&other)
        })
    );

    // Or added to the end of a complete chain.
    let (_, mut events) = chain();
    let mut extra = other_events[1].clone();
    extra.seq = 5;
    events.push(extra);
    assert!(matches!(
        verify_chain(&events, None),
        Err(ChainError::ForeignEvent { seq: 5, .. })
    ));
}

#[test]
fn a_duplicated_event_is_caught() {
    let (request, mut events) = chain();
    events.push(events[1].clone());
    assert_eq!(
        verify_chain(&events, None),
        Err(ChainError::Gap {
            request_id: id(&request),
            expected: 3,
            found: 2
        })
    );
}

#[test]
fn events_survive_a_json_round_trip() {
    let (active, mut events) = request_in(State::Active);
    // A sub-second timestamp: it is part of the hash, so serialization must keep it exactly.
    let when = at(700) + chrono::Duration::nanoseconds(123_456_789);
    let revoked = apply(
        &active,
        Command::Revoke {
            reason: Some("fixed, giving it back".into()),
        },
        &by(&person(APPROVER)),
        when,
    )
    .unwrap();
    events.push(revoked.event);

    let json = serde_json::to_string(&events).unwrap();
    let back: Vec<AuditEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events);
    assert_eq!(back[3].at, when);

    // The head stored on the request survives its own round trip and still closes the chain.
    let stored: Request =
        serde_json::from_str(&serde_json::to_string(&revoked.request).unwrap()).unwrap();
    assert_eq!(verify_chain(&back, head(&stored)), Ok(()));

    // Tampering with the stored JSON is caught after the round trip.
    assert!(json.contains("fixed, giving it back"));
    let tampered = json.replace("fixed, giving it back", "routine maintenance");
    let back: Vec<AuditEvent> = serde_json::from_str(&tampered).unwrap();
    assert_eq!(
        verify_chain(&back, None),
        Err(ChainError::Altered {
            request_id: id(&stored),
            seq: 4
        })
    );
}

#[test]
fn the_json_of_an_event_is_the_documented_shape() {
    let (_, events) = chain();
    let first = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["from"], serde_json::Value::Null);
    assert_eq!(first["to"], "PENDING");
    assert_eq!(first["action"], "request");
    assert_eq!(
        first["actor"],
        serde_json::json!({"kind": "person", "name": REQUESTER})
    );
    assert_eq!(first["principal"], principal_of(REQUESTER));
    assert_eq!(first["terms"], serde_json::to_value(terms()).unwrap());
    assert_eq!(first["terms"]["target"]["type"], "iam_group");
    assert_eq!(first["terms"]["target"]["group"], "SymDemoAdmins");
    assert_eq!(first["prev_hash"], GENESIS);
    assert_eq!(first["at"], "2023-11-14T22:13:20Z");

    let activation = serde_json::to_value(&events[2]).unwrap();
    assert_eq!(
        activation["actor"],
        serde_json::json!({"kind": "system", "name": "escalate"})
    );
    assert_eq!(activation["from"], "APPROVED");
    assert_eq!(activation["principal"], "lambda:elevate-escalate");
    assert!(
        activation.get("terms").is_none(),
        "only the creation event carries the terms"
    );
    assert!(
        activation.get("reason").is_none(),
        "no reason is left out, not null"
    );
    let hash = activation["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn an_event_without_principal_or_terms_hashes_as_before_those_fields() {
    // An event as written before principals and terms were recorded: its hash covers exactly
    // the documented keys, so old chains still verify.
    let (request, events) = opened(3);
    let old = EventDraft {
        request_id: request.id.clone(),
        seq: 2,
        at: at(60),
        actor: person(APPROVER),
        principal: None,
        action: Action::Approve,
        from: Some(State::Pending),
        to: State::Approved,
        reason: None,
        terms: None,
        prev_hash: events[0].hash.clone(),
    }
    .seal();
    let canonical = format!(
        concat!(
            r#"{{"action":"approve","actor":{{"kind":"person","name":"{approver}"}},"#,
            r#""at":"2023-11-14T22:14:20.000000000Z","from":"PENDING","prev_hash":"{prev}","#,
            r#""reason":null,"request_id":"{id}","seq":2,"to":"APPROVED"}}"#
        ),
        approver = APPROVER,
        prev = events[0].hash,
        id = request.id,
    );
    assert_eq!(old.hash, sha256_hex(&canonical));
    let json = serde_json::to_value(&old).unwrap();
    assert!(json.get("principal").is_none(), "no principal is left out");
    assert!(json.get("terms").is_none(), "no terms are left out");
    assert_eq!(
        verify_chain(&[events[0].clone(), old.clone()], None),
        Ok(())
    );

    // The same event with a principal hashes it too.
    let signed = EventDraft {
        request_id: old.request_id.clone(),
        seq: old.seq,
        at: old.at,
        actor: old.actor.clone(),
        principal: Some(principal_of(APPROVER)),
        action: old.action,
        from: old.from,
        to: old.to,
        reason: None,
        terms: None,
        prev_hash: old.prev_hash.clone(),
    }
    .seal();
    let with_principal = canonical.replacen(
        r#""reason""#,
        &format!(r#""principal":"{}","reason""#, principal_of(APPROVER)),
        1,
    );
    assert_eq!(signed.hash, sha256_hex(&with_principal));
    assert_ne!(signed.hash, old.hash);
}
