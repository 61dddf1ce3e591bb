//! The state machine, edge by edge: every (state, command) pair, who may issue what, when a
//! timed move is due, the fields each edge sets and the audit event it writes.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration as Span;
use common::*;
use elevate_core::audit::GENESIS;
use elevate_core::machine::next_state;
use elevate_core::{
    apply, open, verify_chain, Action, Actor, AuditEvent, Command, Request, State, TransitionError,
};

/// The whole transition table as README.md ("How it works") states it. Anything not listed
/// must be refused.
const EDGES: [(State, Action, State); 10] = [
    (State::Pending, Action::Approve, State::Approved),
    (State::Pending, Action::Deny, State::Denied),
    (State::Pending, Action::Cancel, State::Cancelled),
    (State::Pending, Action::TimeOut, State::TimedOut),
    (State::Approved, Action::Activate, State::Active),
    (State::Approved, Action::Fail, State::Failed),
    (State::Active, Action::Expire, State::Expired),
    (State::Active, Action::Revoke, State::Revoked),
    (State::Failed, Action::Expire, State::Expired),
    (State::Failed, Action::Revoke, State::Revoked),
];

/// The nine commands, with an actor each that is permitted to issue it.
fn commands() -> Vec<(Command, Actor)> {
    vec![
        (approve(), person(APPROVER)),
        (
            Command::Deny {
                reason: Some("no".into()),
            },
            person(APPROVER),
        ),
        (Command::Cancel, person(REQUESTER)),
        (Command::TimeOut, system()),
        (Command::Activate, Actor::system("escalate")),
        (Command::Expire, Actor::system("revoke")),
        (
            Command::Revoke {
                reason: Some("incident over".into()),
            },
            person(APPROVER),
        ),
        (
            Command::Fail {
                error: "IAM throttled".into(),
            },
            system(),
        ),
        (repair(), Actor::system("reconcile")),
    ]
}

/// Reconciliation's note on a grant: allowed from every state, by elevate only, and not a
/// move (it is not in the table and `next_state` knows no edge for it).
fn repair() -> Command {
    Command::Repair {
        reason: "removed bob.smith from SymDemoAdmins: no grant covers them".into(),
    }
}

fn expected_edge(from: State, action: Action) -> Option<State> {
    EDGES
        .iter()
        .find(|(f, a, _)| *f == from && *a == action)
        .map(|(_, _, to)| *to)
}

/// Late enough that every timed move (time-out, expiry) is due from every state.
fn late() -> chrono::DateTime<chrono::Utc> {
    at(10 * 86_400)
}

#[test]
fn every_state_and_command_pair_is_either_its_edge_or_refused() {
    let mut accepted = 0;
    let mut repaired = 0;
    for state in State::ALL {
        let (request, _) = request_in(state);
        assert_eq!(request.state, state);
        for (command, actor) in commands() {
            let action = command.action();
            let outcome = apply(&request, command.clone(), &by(&actor), late());
            if action == Action::Repair {
                let transition =
                    outcome.unwrap_or_else(|err| panic!("{state} --{action}--> refused: {err}"));
                assert_eq!(transition.from, state);
                assert_eq!(transition.request.state, state, "a repair keeps the state");
                assert_eq!(transition.event.from, Some(state));
                assert_eq!(transition.event.to, state);
                assert_eq!(transition.event.action, action);
                assert_eq!(next_state(state, action), None, "a repair is not an edge");
                repaired += 1;
                continue;
            }
            match expected_edge(state, action) {
                Some(to) => {
                    let transition = outcome
                        .unwrap_or_else(|err| panic!("{state} --{action}--> {to} refused: {err}"));
                    assert_eq!(transition.from, state);
                    assert_eq!(transition.request.state, to, "{state} --{action}-->");
                    assert_eq!(transition.event.from, Some(state));
                    assert_eq!(transition.event.to, to);
                    assert_eq!(transition.event.action, action);
                    assert_eq!(next_state(state, action), Some(to));
                    accepted += 1;
                }
                None => {
                    assert_eq!(
                        outcome,
                        Err(TransitionError::NotAllowed { state, action }),
                        "{state} --{action}--> must be refused"
                    );
                    assert_eq!(next_state(state, action), None, "{state} --{action}-->");
                }
            }
        }
    }
    assert_eq!(accepted, EDGES.len());
    assert_eq!(repaired, State::ALL.len());
}

#[test]
fn nothing_leaves_a_final_state_and_every_other_state_has_a_way_out() {
    for state in State::ALL {
        let exits: Vec<_> = commands()
            .into_iter()
            .filter_map(|(command, _)| next_state(state, command.action()))
            .collect();
        if state.is_final() {
            assert!(exits.is_empty(), "{state} is final but leads to {exits:?}");
        } else {
            assert!(!exits.is_empty(), "{state} is not final but is a dead end");
        }
        // Opening a request is not a transition of an existing one.
        assert_eq!(next_state(state, Action::Request), None);
    }
    // A failed grant is swept again, so it must not count as final.
    assert!(!State::Failed.is_final());
}

/// Who the design lets issue each action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum May {
    /// elevate itself only (time-outs, escalation results, expiry).
    System,
    /// A person only (decisions); the machine leaves *which* approver to the flow rules.
    AnyPerson,
    /// Only the person who asked.
    Requester,
    /// A person (early revoke) or elevate (sweep).
    Anyone,
}

fn may(action: Action) -> May {
    match action {
        Action::TimeOut | Action::Activate | Action::Expire | Action::Fail | Action::Repair => {
            May::System
        }
        // And an auto-approval rule (`elevate:rule:<name>`), which no other component is.
        Action::Approve | Action::Deny => May::AnyPerson,
        Action::ApproveExtension | Action::Extend | Action::DenyExtension => May::AnyPerson,
        Action::Cancel | Action::AskExtension => May::Requester,
        // Break-glass reviews (crates/core/tests/break_glass.rs).
        Action::Review => May::AnyPerson,
        Action::ReviewOverdue => May::System,
        // Reminders (crates/core/src/service/remind_tests.rs).
        Action::Remind | Action::AskBackup => May::System,
        Action::Revoke => May::Anyone,
        Action::Request => unreachable!("not a transition"),
    }
}

#[test]
fn every_edge_accepts_exactly_the_actors_it_should() {
    let actors = [person(REQUESTER), person(APPROVER), Actor::system("revoke")];
    for (from, action, to) in EDGES {
        let (request, _) = request_in(from);
        let command = commands()
            .into_iter()
            .map(|(c, _)| c)
            .find(|c| c.action() == action)
            .unwrap();
        for actor in &actors {
            let outcome = apply(&request, command.clone(), &by(actor), late());
            let expected = match (may(action), actor) {
                (May::System, Actor::Person(_)) => Err(TransitionError::SystemOnly { action }),
                (May::AnyPerson | May::Requester, Actor::System(_)) => {
                    Err(TransitionError::PersonOnly { action })
                }
                (May::Requester, Actor::Person(name)) if name != REQUESTER => {
                    Err(TransitionError::NotRequester { action })
                }
                _ => Ok(to),
            };
            assert_eq!(
                outcome.map(|t| t.request.state),
                expected,
                "{from} --{action}--> by {actor}"
            );
        }
    }
}

#[test]
fn a_repair_is_recorded_from_every_state_by_elevate_only_and_changes_nothing_else() {
    for state in State::ALL {
        let (before, events) = request_in(state);
        for actor in [person(REQUESTER), person(APPROVER)] {
            assert_eq!(
                apply(&before, repair(), &by(&actor), late()),
                Err(TransitionError::SystemOnly {
                    action: Action::Repair
                }),
                "{state}: repair by {actor}"
            );
        }

        let actor = Actor::system("reconcile");
        let t = apply(&before, repair(), &by(&actor), late()).unwrap();
        assert_eq!(t.from, state);
        assert_eq!(t.event.action, Action::Repair);
        assert_eq!(
            t.event.reason.as_deref(),
            Some("removed bob.smith from SymDemoAdmins: no grant covers them")
        );
        // Only the chain moves on: the request is otherwise exactly as it was.
        let mut unchanged = t.request.clone();
        unchanged.audit_seq = before.audit_seq;
        unchanged.audit_head = before.audit_head.clone();
        assert_eq!(unchanged, before, "{state}: a repair changed the request");
        assert_event_chains(&before, &t.request, &t.event, &actor);

        let mut chain = events;
        chain.push(t.event);
        verify_chain(&chain, Some((t.request.audit_seq, &t.request.audit_head)))
            .unwrap_or_else(|err| panic!("repair of {state}: {err}"));
    }
}

#[test]
fn only_the_requester_may_cancel() {
    let (request, _) = request_in(State::Pending);
    assert_eq!(
        apply(&request, Command::Cancel, &by(&person(APPROVER)), at(60)),
        Err(TransitionError::NotRequester {
            action: Action::Cancel
        })
    );
    let cancelled = apply(&request, Command::Cancel, &by(&person(REQUESTER)), at(60)).unwrap();
    assert_eq!(cancelled.request.state, State::Cancelled);
}

#[test]
fn revoke_may_come_from_a_person_or_from_elevate() {
    for state in [State::Active, State::Failed] {
        let (request, _) = request_in(state);
        let revoke = || Command::Revoke { reason: None };

        let by_person = apply(&request, revoke(), &by(&person(APPROVER)), at(600)).unwrap();
        assert_eq!(by_person.request.state, State::Revoked);
        assert_eq!(by_person.request.ended_by.as_deref(), Some(APPROVER));

        let by_sweep = apply(&request, revoke(), &by(&Actor::system("sweep")), at(600)).unwrap();
        assert_eq!(by_sweep.request.state, State::Revoked);
        assert_eq!(by_sweep.request.ended_by.as_deref(), Some("elevate:sweep"));
    }
}

#[test]
fn a_pending_request_times_out_only_once_its_wait_is_over() {
    let (request, _) = request_in(State::Pending);
    let due = at(0) + Span::from_std(PENDING_TIMEOUT).unwrap();
    assert_eq!(request.pending_until, due);

    assert_eq!(
        apply(
            &request,
            Command::TimeOut,
            &by(&system()),
            due - Span::seconds(1)
        ),
        Err(TransitionError::NotYetDue {
            action: Action::TimeOut,
            due
        })
    );
    let timed_out = apply(&request, Command::TimeOut, &by(&system()), due).unwrap();
    assert_eq!(timed_out.request.state, State::TimedOut);
    assert_eq!(timed_out.request.decided_at, Some(due));
    assert_eq!(timed_out.request.decided_by, None);
}

#[test]
fn an_active_grant_expires_only_at_its_expiry() {
    let (request, _) = request_in(State::Active);
    let due = request.expires_at.unwrap();

    assert_eq!(
        apply(
            &request,
            Command::Expire,
            &by(&system()),
            due - Span::seconds(1)
        ),
        Err(TransitionError::NotYetDue {
            action: Action::Expire,
            due
        })
    );
    let expired = apply(&request, Command::Expire, &by(&system()), due).unwrap();
    assert_eq!(expired.request.state, State::Expired);
    assert_eq!(expired.request.ended_at, Some(due));
    assert_eq!(
        expired.request.ended_by, None,
        "an expiry is nobody's doing"
    );
}

#[test]
fn an_active_grant_cannot_fail_and_a_failed_one_can_end_at_once() {
    // A failure is recorded only before activation: once ACTIVE, the grant runs until it
    // expires or is revoked, and Fail is refused without changing anything.
    let (active, _) = request_in(State::Active);
    assert_eq!(
        apply(
            &active,
            Command::Fail {
                error: "read-back failed".into(),
            },
            &by(&Actor::system("escalate")),
            at(300),
        ),
        Err(TransitionError::NotAllowed {
            state: State::Active,
            action: Action::Fail
        })
    );
    assert_eq!(next_state(State::Active, Action::Fail), None);
    assert!(active.covers(at(300)), "the grant still runs to its expiry");

    // Failed before activation (the only way to fail): there is no expiry to wait for.
    let (failed_approved, _) = request_in(State::Failed);
    assert_eq!(failed_approved.expires_at, None);
    assert_eq!(
        apply(&failed_approved, Command::Expire, &by(&system()), at(121))
            .unwrap()
            .request
            .state,
        State::Expired
    );
}

#[test]
fn open_creates_a_pending_request_with_the_first_audit_event() {
    let (request, event) = open(
        request_id(7),
        new_request(),
        &principal_of(REQUESTER),
        at(0),
    );
    let new = new_request();

    assert_eq!(request.id, request_id(7));
    assert_eq!(request.state, State::Pending);
    assert_eq!(request.flow, new.flow);
    assert_eq!(request.target, new.target);
    assert_eq!(request.requester, REQUESTER);
    assert_eq!(request.reason, new.reason);
    assert_eq!(request.terms, Some(new.terms.clone()));
    assert_eq!(request.duration, DURATION);
    assert_eq!(request.created_at, at(0));
    assert_eq!(request.pending_until, at(1800));
    for unset in [
        request.decided_at,
        request.activated_at,
        request.expires_at,
        request.ended_at,
    ] {
        assert_eq!(unset, None);
    }
    assert_eq!(request.decided_by, None);
    assert_eq!(request.ended_by, None);
    assert_eq!(request.failure, None);

    assert_eq!(event.request_id, request.id);
    assert_eq!(event.seq, 1);
    assert_eq!(event.at, at(0));
    assert_eq!(event.actor, person(REQUESTER));
    assert_eq!(
        event.principal.as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );
    assert_eq!(event.terms, Some(terms()));
    assert_eq!(event.action, Action::Request);
    assert_eq!(event.from, None);
    assert_eq!(event.to, State::Pending);
    assert_eq!(event.reason.as_deref(), Some(new.reason.as_str()));
    assert_eq!(event.prev_hash, GENESIS);
    assert_eq!(event.hash, event.computed_hash());
    assert_eq!(request.audit_seq, 1);
    assert_eq!(request.audit_head, event.hash);
}

/// Checks the event of a transition from `before` to `after` and its link into the chain.
fn assert_event_chains(before: &Request, after: &Request, event: &AuditEvent, actor: &Actor) {
    assert_eq!(event.request_id, before.id);
    assert_eq!(event.seq, before.audit_seq + 1);
    assert_eq!(event.from, Some(before.state));
    assert_eq!(event.to, after.state);
    assert_eq!(&event.actor, actor);
    assert_eq!(event.principal, Some(by(actor).principal));
    assert_eq!(
        event.terms, None,
        "only the creation event carries the terms"
    );
    assert_eq!(after.terms, before.terms, "the terms never change");
    assert_eq!(event.prev_hash, before.audit_head);
    assert_eq!(event.hash, event.computed_hash());
    assert_ne!(event.hash, before.audit_head);
    assert_eq!(after.audit_seq, event.seq);
    assert_eq!(after.audit_head, event.hash);
}

#[test]
fn approve_and_deny_record_the_decision() {
    for (command, to) in [
        (approve(), State::Approved),
        (
            Command::Deny {
                reason: Some("use the read-only flow".into()),
            },
            State::Denied,
        ),
    ] {
        let (before, _) = request_in(State::Pending);
        let actor = person(APPROVER);
        let t = apply(&before, command.clone(), &by(&actor), at(60)).unwrap();
        let after = &t.request;
        assert_eq!(after.state, to);
        assert_eq!(after.decided_at, Some(at(60)));
        assert_eq!(after.decided_by.as_deref(), Some(APPROVER));
        let why = match command {
            Command::Approve { reason } | Command::Deny { reason } => reason,
            _ => unreachable!(),
        };
        assert_eq!(after.decision_reason, why);
        assert_eq!(t.event.reason, why);
        assert_eq!(t.event.at, at(60));
        assert_eq!(after.activated_at, None);
        assert_event_chains(&before, after, &t.event, &actor);

        // A decision without a reason is fine and records none.
        let bare = match to {
            State::Approved => Command::Approve { reason: None },
            _ => Command::Deny { reason: None },
        };
        let t = apply(&before, bare, &by(&actor), at(60)).unwrap();
        assert_eq!(t.request.decision_reason, None);
        assert_eq!(t.event.reason, None);
    }
}

#[test]
fn cancel_records_the_requester_as_decider() {
    let (before, _) = request_in(State::Pending);
    let actor = person(REQUESTER);
    let t = apply(&before, Command::Cancel, &by(&actor), at(90)).unwrap();
    assert_eq!(t.request.state, State::Cancelled);
    assert_eq!(t.request.decided_at, Some(at(90)));
    assert_eq!(t.request.decided_by.as_deref(), Some(REQUESTER));
    assert_eq!(t.request.decision_reason, None);
    assert_event_chains(&before, &t.request, &t.event, &actor);
}

#[test]
fn time_out_records_when_but_nobody() {
    let (before, _) = request_in(State::Pending);
    let actor = system();
    let t = apply(&before, Command::TimeOut, &by(&actor), at(2000)).unwrap();
    assert_eq!(t.request.decided_at, Some(at(2000)));
    assert_eq!(t.request.decided_by, None);
    assert_event_chains(&before, &t.request, &t.event, &actor);
}

#[test]
fn activation_starts_the_clock_for_exactly_the_requested_duration() {
    let (before, _) = request_in(State::Approved);
    let actor = Actor::system("escalate");
    let now = at(125);
    let t = apply(&before, Command::Activate, &by(&actor), now).unwrap();
    assert_eq!(t.request.state, State::Active);
    assert_eq!(t.request.activated_at, Some(now));
    assert_eq!(t.request.expires_at, Some(now + Span::seconds(3600)));
    // The decision is kept as it was.
    assert_eq!(t.request.decided_at, before.decided_at);
    assert_eq!(t.request.decided_by, before.decided_by);
    assert_event_chains(&before, &t.request, &t.event, &actor);

    assert!(t.request.covers(now));
    assert!(t.request.covers(now + Span::seconds(3599)));
    assert!(!t.request.covers(now + Span::seconds(3600)));
    assert!(
        !before.covers(now),
        "an approved request grants nothing yet"
    );
}

#[test]
fn expire_and_revoke_record_the_end() {
    let (active, _) = request_in(State::Active);
    let expires = active.expires_at.unwrap();

    let actor = Actor::system("revoke");
    let t = apply(&active, Command::Expire, &by(&actor), expires).unwrap();
    assert_eq!(t.request.ended_at, Some(expires));
    assert_eq!(t.request.ended_by, None);
    assert_eq!(t.request.expires_at, Some(expires));
    assert!(!t.request.covers(expires - Span::seconds(1)));
    assert_event_chains(&active, &t.request, &t.event, &actor);

    let actor = person(REQUESTER);
    let t = apply(
        &active,
        Command::Revoke {
            reason: Some("fixed, giving it back".into()),
        },
        &by(&actor),
        at(700),
    )
    .unwrap();
    assert_eq!(t.request.state, State::Revoked);
    assert_eq!(t.request.ended_at, Some(at(700)));
    assert_eq!(t.request.ended_by.as_deref(), Some(REQUESTER));
    assert_eq!(t.event.reason.as_deref(), Some("fixed, giving it back"));
    assert!(!t.request.covers(at(700)));
    assert_event_chains(&active, &t.request, &t.event, &actor);
}

#[test]
fn fail_records_the_error_in_the_request_and_the_audit() {
    let (before, _) = request_in(State::Approved);
    let actor = Actor::system("escalate");
    let error = "AddUserToGroup: AccessDenied";
    let t = apply(
        &before,
        Command::Fail {
            error: error.into(),
        },
        &by(&actor),
        at(130),
    )
    .unwrap();
    assert_eq!(t.request.state, State::Failed);
    assert_eq!(t.request.failure.as_deref(), Some(error));
    assert_eq!(t.event.reason.as_deref(), Some(error));
    assert_eq!(t.request.activated_at, before.activated_at);
    assert_eq!(t.request.expires_at, before.expires_at);
    assert_event_chains(&before, &t.request, &t.event, &actor);

    // An ACTIVE grant is past the point where escalation can fail.
    let (active, _) = request_in(State::Active);
    assert_eq!(
        apply(
            &active,
            Command::Fail {
                error: "AddUserToGroup: AccessDenied".into(),
            },
            &by(&Actor::system("escalate")),
            at(130),
        ),
        Err(TransitionError::NotAllowed {
            state: State::Active,
            action: Action::Fail
        })
    );
}

#[test]
fn a_refused_transition_changes_nothing_and_uses_no_sequence_number() {
    let (request, events) = request_in(State::Active);
    let snapshot = request.clone();
    let refusals = [
        (approve(), person(APPROVER), late()),
        (Command::Cancel, person(REQUESTER), late()),
        (Command::Expire, system(), at(130)),
        (Command::Expire, person(APPROVER), late()),
        (
            Command::Fail {
                error: "IAM throttled".into(),
            },
            system(),
            late(),
        ),
    ];
    for (command, actor, when) in refusals {
        assert!(apply(&request, command, &by(&actor), when).is_err());
        assert_eq!(request, snapshot);
    }
    // The next accepted move follows straight on from the last recorded event.
    let t = apply(&request, Command::Expire, &by(&system()), late()).unwrap();
    assert_eq!(t.event.seq, events.last().unwrap().seq + 1);
    assert_eq!(t.event.prev_hash, events.last().unwrap().hash);
}

#[test]
fn every_path_through_the_machine_leaves_a_verifiable_chain() {
    for state in State::ALL {
        let (request, events) = request_in(state);
        assert_eq!(request.audit_seq, events.len() as u64);
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
        assert_eq!(events.last().unwrap().to, state);
        verify_chain(&events, Some((request.audit_seq, &request.audit_head)))
            .unwrap_or_else(|err| panic!("chain to {state}: {err}"));
    }
}

#[test]
fn refusals_explain_themselves() {
    let (request, _) = request_in(State::Denied);
    let err = apply(&request, approve(), &by(&person(APPROVER)), at(90)).unwrap_err();
    assert_eq!(err.to_string(), "cannot approve a request that is DENIED");

    let (pending, _) = request_in(State::Pending);
    let err = apply(&pending, Command::TimeOut, &by(&system()), at(10)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "too early to time_out: due at 2023-11-14 22:43:20 UTC"
    );
}
