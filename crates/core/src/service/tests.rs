//! The use cases against the in-memory fakes of every port.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{verify_chain, Action};
use crate::events::ScheduledAction;
use crate::model::{Request, RequestId, State};
use crate::ports::Strategy;
use crate::testing::{sample_config, FakeApp, MemoryStore, Notice};

use super::*;

/// The test App over the fakes (`FakeApp` of the sample config), with the helpers of these
/// tests; everything else of `FakeApp` shows through.
struct Harness(FakeApp);

impl std::ops::Deref for Harness {
    type Target = FakeApp;
    fn deref(&self) -> &FakeApp {
        &self.0
    }
}

fn harness() -> Harness {
    Harness(FakeApp::new(sample_config()))
}

impl Harness {
    /// No request, audit event, Slack message or schedule exists.
    fn assert_nothing_written(&self) {
        assert!(self.store.requests_all().is_empty());
        assert!(self.store.events_all().is_empty());
        assert!(self.notifier.notices().is_empty());
        assert!(self.scheduler.schedules().is_empty());
    }

    /// `name` as an authenticated caller (signing as their IAM user).
    fn person(&self, name: &str) -> Caller<'_> {
        crate::testing::caller_of(self.app.config.person(name).unwrap())
    }

    async fn submit(&self, who: &str, hours: u64) -> Request {
        let submission = Submission {
            flow: "infra_access".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(hours * 3600),
            reason: "incident 4711".into(),
        };
        submit(&self.app, &self.person(who), submission)
            .await
            .unwrap()
    }

    async fn active(&self, who: &str, hours: u64) -> Request {
        let request = self.submit(who, hours).await;
        let approver = if who == "bob" { "carol" } else { "bob" };
        decide(
            &self.app,
            &self.person(approver),
            &request.id,
            Decision::Approve,
            None,
        )
        .await
        .unwrap();
        escalate(&self.app, &request.id).await.unwrap().unwrap()
    }

    fn stored(&self, id: &RequestId) -> Request {
        self.store.request(id).unwrap()
    }

    fn assert_chain(&self, id: &RequestId) {
        let request = self.stored(id);
        let events: Vec<_> = self
            .store
            .events_all()
            .into_iter()
            .filter(|e| &e.request_id == id)
            .collect();
        verify_chain(&events, Some((request.audit_seq, &request.audit_head))).unwrap();
    }

    fn actions(&self, id: &RequestId) -> Vec<Action> {
        let mut events: Vec<_> = self
            .store
            .events_all()
            .into_iter()
            .filter(|e| &e.request_id == id)
            .collect();
        events.sort_by_key(|e| e.seq);
        events.into_iter().map(|e| e.action).collect()
    }
}

#[tokio::test]
async fn a_request_is_stored_announced_and_given_a_timeout() {
    let h = harness();
    let request = h.submit("alice", 1).await;

    let stored = h.stored(&request.id);
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.requester, "alice");
    assert_eq!(stored.target, "admins");
    assert_eq!(
        stored.message.as_ref().map(|m| m.channel.as_str()),
        Some("C0APPROVALS")
    );
    assert!(h
        .notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Announce { request: r, .. } if r.id == request.id)));
    let timeout = h
        .scheduler
        .schedule_named(&format!("timeout-{}", request.id))
        .unwrap();
    assert_eq!(timeout.at, stored.pending_until);
    assert_eq!(
        timeout.action,
        ScheduledAction::Timeout {
            request_id: request.id.clone()
        }
    );
    assert_eq!(h.actions(&request.id), vec![Action::Request]);
}

#[tokio::test]
async fn refused_requests_write_nothing() {
    let h = harness();
    let alice = h.person("alice");
    let cases = [
        ("nope", None, 3600, "why", "unknown_flow"),
        ("infra_access", None, 5 * 3600, "why", "duration_over_cap"),
        ("infra_access", None, 3600, "  ", "reason_required"),
        ("infra_access", Some("db"), 3600, "why", "unknown_target"),
        ("custom", None, 30 * 60, "", "duration_not_allowed"),
    ];
    for (flow, target, secs, reason, code) in cases {
        let submission = Submission {
            flow: flow.into(),
            target: target.map(Into::into),
            account: None,
            duration: Duration::from_secs(secs),
            reason: reason.into(),
        };
        let err = submit(&h.app, &alice, submission).await.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
    h.assert_nothing_written();
}

#[tokio::test]
async fn a_request_survives_slack_being_down_and_the_sweep_announces_it() {
    let h = harness();
    h.notifier.fail_next(1);
    let request = h.submit("alice", 1).await;
    assert_eq!(h.stored(&request.id).message, None);

    // Just opened: its own follow-up may still be announcing it.
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.announced, 0);
    h.clock.advance(h.app.settings.escalation_retry_after);
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.announced, 1);
    assert!(h.stored(&request.id).message.is_some());
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.announced, 0, "announced once");
}

#[tokio::test]
async fn approval_starts_the_escalation_and_removes_the_timeout() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    let approved = decide(
        &h.app,
        &h.person("bob"),
        &request.id,
        Decision::Approve,
        Some("ok".into()),
    )
    .await
    .unwrap();

    assert_eq!(approved.state, State::Approved);
    assert_eq!(h.stored(&request.id).decided_by.as_deref(), Some("bob"));
    assert_eq!(h.escalation.started(), vec![request.id.clone()]);
    assert!(h
        .scheduler
        .schedule_named(&format!("timeout-{}", request.id))
        .is_none());
    assert!(h
        .notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Update { request: r, .. } if r.state == State::Approved)));
}

#[tokio::test]
async fn self_approval_and_outsiders_are_refused_and_change_nothing() {
    let h = harness();
    let request = h.submit("alice", 1).await;

    let err = decide(
        &h.app,
        &h.person("alice"),
        &request.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "self_approval");
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    let custom = submit(
        &h.app,
        &h.person("bob"),
        Submission {
            flow: "custom".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(900),
            reason: String::new(),
        },
    )
    .await
    .unwrap();
    let err = decide(
        &h.app,
        &h.person("alice"),
        &custom.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "not_an_approver");

    assert_eq!(h.stored(&request.id).state, State::Pending);
    assert_eq!(h.stored(&custom.id).state, State::Pending);
    assert!(h.escalation.started().is_empty());
}

#[tokio::test]
async fn the_flow_may_allow_self_approval() {
    let h = harness();
    let custom = submit(
        &h.app,
        &h.person("bob"),
        Submission {
            flow: "custom".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(900),
            reason: String::new(),
        },
    )
    .await
    .unwrap();
    let approved = decide(
        &h.app,
        &h.person("bob"),
        &custom.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    assert_eq!(approved.state, State::Approved);
}

#[tokio::test]
async fn of_two_simultaneous_approvals_exactly_one_wins() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    let (bob, carol) = (h.person("bob"), h.person("carol"));
    let (a, b) = tokio::join!(
        decide(&h.app, &bob, &request.id, Decision::Approve, None),
        decide(&h.app, &carol, &request.id, Decision::Approve, None),
    );
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
    let loser = a.err().or(b.err()).unwrap();
    assert_eq!(loser.kind(), ErrorKind::Conflict, "{loser}");
    assert_eq!(h.escalation.started().len(), 1);
    assert_eq!(
        h.actions(&request.id),
        vec![Action::Request, Action::Approve]
    );
}

#[tokio::test]
async fn slack_refusals_are_told_privately_and_change_nothing() {
    let h = harness();
    let request = h.submit("alice", 1).await;

    let outcome = decide_from_slack(
        &h.app,
        "T0ELEVATE",
        "U0ALICE01",
        "C0APPROVALS",
        &request.id,
        Decision::Approve,
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, SlackOutcome::Refused(ref e) if e.code() == "self_approval"),
        "{outcome:?}"
    );
    let outcome = decide_from_slack(
        &h.app,
        "T0ELEVATE",
        "U0STRANGER",
        "C0APPROVALS",
        &request.id,
        Decision::Approve,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, SlackOutcome::Refused(_)));
    // Slack was answered; the refusals are told after.
    assert!(h
        .notifier
        .notices()
        .iter()
        .all(|n| !matches!(n, Notice::TellPrivately { .. })));
    h.run_follow_ups().await;

    let private: Vec<_> = h
        .notifier
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            Notice::TellPrivately {
                person_slack_id,
                text,
                ..
            } => Some((person_slack_id, text)),
            _ => None,
        })
        .collect();
    assert_eq!(private.len(), 2);
    assert_eq!(private[0].0, "U0ALICE01");
    assert!(private[0].1.contains("own request"), "{}", private[0].1);
    assert!(private[1].1.contains("not a person"), "{}", private[1].1);
    assert_eq!(h.stored(&request.id).state, State::Pending);

    let outcome = decide_from_slack(
        &h.app,
        "T0ELEVATE",
        "U0BOB0001",
        "C0APPROVALS",
        &request.id,
        Decision::Deny,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, SlackOutcome::Decided(ref r) if r.state == State::Denied));
    let again = decide_from_slack(
        &h.app,
        "T0ELEVATE",
        "U0CAROL01",
        "C0APPROVALS",
        &request.id,
        Decision::Approve,
    )
    .await
    .unwrap();
    assert!(
        matches!(again, SlackOutcome::Refused(ref e) if e.to_string().contains("already DENIED by bob")),
        "{again:?}"
    );
    assert!(
        h.escalation.started().is_empty(),
        "a denied request never escalates"
    );
}

#[tokio::test]
async fn escalation_grants_reads_back_and_schedules_the_revocation_early() {
    let h = harness();
    let active = h.active("alice", 1).await;

    assert_eq!(active.state, State::Active);
    assert!(h.strategy.has("admins", "alice"));
    let expires_at = active.expires_at.unwrap();
    assert_eq!(
        expires_at,
        active.activated_at.unwrap() + chrono::Duration::hours(1)
    );
    let revoke = h
        .scheduler
        .schedule_named(&format!("revoke-{}", active.id))
        .unwrap();
    assert_eq!(revoke.at, expires_at - chrono::Duration::seconds(60));
    assert!(h
        .notifier
        .told("alice")
        .iter()
        .any(|t| t.contains("active until")));

    // A second delivery is a no-op.
    assert!(escalate(&h.app, &active.id).await.unwrap().is_none());
    assert_eq!(h.strategy.escalate_calls(), 1);
    assert_eq!(
        h.actions(&active.id),
        vec![Action::Request, Action::Approve, Action::Activate]
    );
}

#[tokio::test]
async fn a_failed_escalation_is_retried_and_leaves_the_request_approved() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    decide(
        &h.app,
        &h.person("bob"),
        &request.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    h.strategy.fail_escalate(1);
    assert!(escalate(&h.app, &request.id).await.is_err());
    assert_eq!(h.stored(&request.id).state, State::Approved);
    assert!(escalate(&h.app, &request.id).await.unwrap().is_some());
    assert_eq!(h.stored(&request.id).state, State::Active);
}

#[tokio::test]
async fn retries_exhausted_mark_the_request_failed_with_the_error() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    decide(
        &h.app,
        &h.person("bob"),
        &request.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    let failed = fail(
        &h.app,
        &request.id,
        "escalate",
        "AccessDenied on AddUserToGroup",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(failed.state, State::Failed);
    assert_eq!(
        h.stored(&request.id).failure.as_deref(),
        Some("AccessDenied on AddUserToGroup")
    );
    assert!(h
        .notifier
        .told("alice")
        .iter()
        .any(|t| t.contains("AccessDenied")));
}

#[tokio::test]
async fn expiry_waits_out_the_lead_then_removes_and_verifies() {
    let h = harness();
    let active = h.active("alice", 1).await;
    let expires_at = active.expires_at.unwrap();
    h.clock.set(expires_at - chrono::Duration::seconds(60));

    let ended = end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: active.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ended.state, State::Expired);
    assert_eq!(ended.ended_at, Some(expires_at));
    assert!(h.clock.waits().contains(&expires_at));
    assert!(!h.strategy.has("admins", "alice"));
    h.assert_chain(&active.id);

    // A late or duplicate delivery does nothing.
    assert!(end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: active.id.clone()
        }
    )
    .await
    .unwrap()
    .is_none());
    assert_eq!(h.strategy.deescalate_calls(), 1);
}

#[tokio::test]
async fn overlapping_grants_keep_the_access_until_the_last_ends() {
    let h = harness();
    let first = h.active("alice", 1).await;
    h.clock.advance(Duration::from_secs(600));
    let second = h.active("alice", 2).await;

    h.clock.set(first.expires_at.unwrap());
    end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: first.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(h.stored(&first.id).state, State::Expired);
    assert!(
        h.strategy.has("admins", "alice"),
        "the second grant still covers alice"
    );

    h.clock.set(second.expires_at.unwrap());
    end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: second.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!h.strategy.has("admins", "alice"));
}

type Meanwhile = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The store of `h`, with one thing happening just before the first transition written
/// through it: what a concurrent function does between this one's reads and its write.
struct RacingStore {
    inner: Arc<MemoryStore>,
    before_first_write: std::sync::Mutex<Option<Meanwhile>>,
}

impl RacingStore {
    async fn meanwhile(&self) {
        let meanwhile = self.before_first_write.lock().unwrap().take();
        if let Some(meanwhile) = meanwhile {
            meanwhile.await;
        }
    }
}

#[async_trait::async_trait]
impl crate::ports::RequestStore for RacingStore {
    async fn create(
        &self,
        request: &Request,
        event: &crate::audit::AuditEvent,
    ) -> Result<(), crate::ports::StoreError> {
        self.inner.create(request, event).await
    }
    async fn get(&self, id: &RequestId) -> Result<Option<Request>, crate::ports::StoreError> {
        self.inner.get(id).await
    }
    async fn transition(
        &self,
        step: &crate::machine::Transition,
    ) -> Result<(), crate::ports::StoreError> {
        self.meanwhile().await;
        self.inner.transition(step).await
    }
    async fn transition_while(
        &self,
        step: &crate::machine::Transition,
        unchanged: &Request,
    ) -> Result<(), crate::ports::StoreError> {
        self.meanwhile().await;
        self.inner.transition_while(step, unchanged).await
    }
    async fn set_message(
        &self,
        id: &RequestId,
        message: &crate::model::MessageRef,
    ) -> Result<(), crate::ports::StoreError> {
        self.inner.set_message(id, message).await
    }
    async fn list_by_requester(
        &self,
        requester: &str,
        states: &[State],
    ) -> Result<Vec<Request>, crate::ports::StoreError> {
        self.inner.list_by_requester(requester, states).await
    }
    async fn list_by_state(&self, state: State) -> Result<Vec<Request>, crate::ports::StoreError> {
        self.inner.list_by_state(state).await
    }
    async fn list_page(
        &self,
        query: &crate::ports::ListQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::ports::ListPage, crate::ports::StoreError> {
        self.inner.list_page(query, after, limit).await
    }
    async fn audit_events(
        &self,
        id: &RequestId,
    ) -> Result<Vec<crate::audit::AuditEvent>, crate::ports::StoreError> {
        self.inner.audit_events(id).await
    }
    async fn audit_since(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::audit::AuditEvent>, crate::ports::StoreError> {
        self.inner.audit_since(since).await
    }
    async fn audit_page(
        &self,
        window: &crate::ports::AuditWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::ports::AuditPage, crate::ports::StoreError> {
        self.inner.audit_page(window, after, limit).await
    }
}

#[tokio::test]
async fn overlapping_grants_ending_at_the_same_moment_do_not_leave_the_access_behind() {
    let h = harness();
    let first = h.active("alice", 1).await;
    let second = h.active("alice", 2).await;
    h.clock.set(first.expires_at.unwrap());

    // Alice revokes the second grant a second before the first expires, so it keeps the access
    // for the first; its write lands after the first grant's expiry read the second as ACTIVE
    // and decided to keep the access for it. Each alone is right; together they leave alice in
    // the group unless one of them notices the other.
    let concurrent = h.app.clone();
    let clock = h.clock.clone();
    let alice = h.app.config.person("alice").unwrap().clone();
    let second_id = second.id.clone();
    let expiry = first.expires_at.unwrap();
    let racing = Arc::new(RacingStore {
        inner: h.store.clone(),
        before_first_write: std::sync::Mutex::new(Some(Box::pin(async move {
            clock.set(expiry - chrono::Duration::seconds(1));
            let caller = crate::testing::caller_of(&alice);
            let revoked = revoke(&concurrent, &caller, &second_id, None)
                .await
                .unwrap();
            assert_eq!(revoked.state, State::Revoked);
            clock.set(expiry);
        }))),
    });
    let app = App {
        store: racing,
        ..h.app.clone()
    };
    let expired = end_by_schedule(
        &app,
        &ScheduledAction::Expire {
            request_id: first.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();

    assert_eq!(expired.state, State::Expired);
    assert_eq!(h.stored(&second.id).state, State::Revoked);
    assert!(
        !h.strategy.has("admins", "alice"),
        "both grants ended: the access must be gone"
    );
    h.assert_chain(&first.id);
    h.assert_chain(&second.id);
    assert_eq!(
        h.actions(&first.id).last(),
        Some(&Action::Expire),
        "one expiry recorded"
    );
}

#[tokio::test]
async fn a_person_removed_by_hand_still_expires_cleanly() {
    let h = harness();
    let active = h.active("alice", 1).await;
    h.strategy.remove_by_hand("admins", "alice");
    h.clock.set(active.expires_at.unwrap());
    let ended = end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: active.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ended.state, State::Expired);
}

#[tokio::test]
async fn a_failed_removal_leaves_the_grant_active_and_is_an_error() {
    let h = harness();
    let active = h.active("alice", 1).await;
    h.clock.set(active.expires_at.unwrap());
    h.strategy.fail_deescalate(1);
    let expire = ScheduledAction::Expire {
        request_id: active.id.clone(),
    };
    assert!(end_by_schedule(&h.app, &expire).await.is_err());
    assert_eq!(h.stored(&active.id).state, State::Active);
    assert!(h.strategy.has("admins", "alice"));

    // A removal the target ignores is caught by the read-back.
    h.strategy.ignore_deescalate(1);
    let err = end_by_schedule(&h.app, &expire).await.unwrap_err();
    assert!(err.to_string().contains("still on admins"), "{err}");
    assert_eq!(h.stored(&active.id).state, State::Active);

    assert_eq!(
        end_by_schedule(&h.app, &expire)
            .await
            .unwrap()
            .unwrap()
            .state,
        State::Expired
    );
    assert!(!h.strategy.has("admins", "alice"));
}

#[tokio::test]
async fn early_revoke_by_an_approver_ends_the_grant_and_its_schedule() {
    let h = harness();
    let active = h.active("alice", 1).await;
    let revoked = revoke(
        &h.app,
        &h.person("bob"),
        &active.id,
        Some("done early".into()),
    )
    .await
    .unwrap();
    assert_eq!(revoked.state, State::Revoked);
    assert_eq!(revoked.ended_by.as_deref(), Some("bob"));
    assert!(!h.strategy.has("admins", "alice"));
    assert!(h
        .scheduler
        .schedule_named(&format!("revoke-{}", active.id))
        .is_none());

    let again = revoke(&h.app, &h.person("bob"), &active.id, None)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn outsiders_may_not_revoke() {
    let h = harness();
    let custom = submit(
        &h.app,
        &h.person("bob"),
        Submission {
            flow: "custom".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(900),
            reason: String::new(),
        },
    )
    .await
    .unwrap();
    decide(
        &h.app,
        &h.person("carol"),
        &custom.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    escalate(&h.app, &custom.id).await.unwrap().unwrap();
    let err = revoke(&h.app, &h.person("alice"), &custom.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(h.stored(&custom.id).state, State::Active);
}

#[tokio::test]
async fn cancel_is_for_the_requester_and_removes_the_timeout() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    let err = cancel(&h.app, &h.person("bob"), &request.id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let cancelled = cancel(&h.app, &h.person("alice"), &request.id)
        .await
        .unwrap();
    assert_eq!(cancelled.state, State::Cancelled);
    assert!(h
        .scheduler
        .schedule_named(&format!("timeout-{}", request.id))
        .is_none());
    assert_eq!(
        cancel(&h.app, &h.person("alice"), &request.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
}

#[tokio::test]
async fn unanswered_requests_time_out() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    let timeout = ScheduledAction::Timeout {
        request_id: request.id.clone(),
    };
    let ended = end_by_schedule(&h.app, &timeout).await.unwrap().unwrap();
    assert_eq!(ended.state, State::TimedOut);
    assert!(h.clock.waits().contains(&request.pending_until));
    assert!(end_by_schedule(&h.app, &timeout).await.unwrap().is_none());
}

#[tokio::test]
async fn the_sweep_catches_what_events_missed() {
    let h = harness();
    let expired = h.active("alice", 1).await;

    let stuck = h.submit("bob", 1).await;
    decide(
        &h.app,
        &h.person("carol"),
        &stuck.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    let abandoned = h.submit("carol", 1).await;
    decide(
        &h.app,
        &h.person("bob"),
        &abandoned.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    // carol's escalation added her and then failed every retry: FAILED with the access in place.
    let failed = h.submit("carol", 4).await;
    decide(
        &h.app,
        &h.person("bob"),
        &failed.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    h.strategy.add_by_hand("admins", "carol");
    fail(&h.app, &failed.id, "escalate", "throttled")
        .await
        .unwrap();
    let _pending = h.submit("alice", 1).await;

    // Two hours on: alice's grant expired, carol's FAILED grant holds access, every PENDING
    // request is past its time-out, and the APPROVED ones never escalated.
    h.clock.advance(Duration::from_secs(2 * 3600));
    let calls_before = h.escalation.started().len();
    let report = sweep(&h.app).await.unwrap();

    assert_eq!(h.stored(&expired.id).state, State::Expired);
    assert!(!h.strategy.has("admins", "alice"));
    assert_eq!(h.stored(&failed.id).state, State::Revoked);
    assert_eq!(report.expired, 1);
    assert_eq!(report.revoked_failed, 1);
    assert_eq!(report.escalations_failed, 2, "{report:?}");
    assert_eq!(report.timed_out, 1);
    assert_eq!(report.errors, 0);
    assert_eq!(h.stored(&stuck.id).state, State::Failed);
    assert_eq!(h.escalation.started().len(), calls_before);
    for id in [&expired.id, &stuck.id, &abandoned.id, &failed.id] {
        h.assert_chain(id);
    }

    // carol's FAILED grant was still covered by her APPROVED request when it ended; that one
    // failed too in the same sweep, so no grant holds her membership any more and
    // reconciliation removed it.
    assert!(!h.strategy.has("admins", "carol"));
    assert_eq!(report.repairs, 1, "{report:?}");
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.revoked_failed, 2, "{report:?}");
    assert_eq!(report.repairs, 0, "{report:?}");
    assert!(!h.strategy.has("admins", "carol"));
}

#[tokio::test]
async fn the_sweep_escalates_approved_requests_again_before_the_deadline() {
    let h = harness();
    let stuck = h.submit("alice", 1).await;
    decide(&h.app, &h.person("bob"), &stuck.id, Decision::Approve, None)
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(5 * 60));
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.escalations_retried, 1);
    assert_eq!(h.escalation.started().len(), 2);
    assert_eq!(h.stored(&stuck.id).state, State::Approved);
}

#[tokio::test]
async fn an_approval_stands_when_its_escalation_cannot_be_started() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    h.escalation.fail_next(1);
    let approved = decide(
        &h.app,
        &h.person("bob"),
        &request.id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    assert_eq!(approved.state, State::Approved);
    assert_eq!(h.stored(&request.id).state, State::Approved);

    h.clock.advance(Duration::from_secs(5 * 60));
    let report = sweep(&h.app).await.unwrap();
    assert_eq!(report.escalations_retried, 1, "{report:?}");
    assert_eq!(h.escalation.started(), [request.id.clone(), request.id]);
}

#[tokio::test]
async fn list_pages_through_a_history_newest_first() {
    let h = harness();
    let mut mine = Vec::new();
    for _ in 0..7 {
        mine.push(h.submit("alice", 1).await.id);
        h.clock.advance(Duration::from_secs(60));
    }
    h.submit("bob", 1).await;
    mine.reverse();

    let alice = h.person("alice");
    let first = list(&h.app, &alice, Scope::Mine, None, None, 3)
        .await
        .unwrap();
    let ids = |page: &crate::ports::ListPage| -> Vec<RequestId> {
        page.requests.iter().map(|r| r.id.clone()).collect()
    };
    assert_eq!(ids(&first), mine[..3], "the newest page first");
    let second = list(&h.app, &alice, Scope::Mine, None, first.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(ids(&second), mine[3..6]);
    let last = list(&h.app, &alice, Scope::Mine, None, second.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(ids(&last), mine[6..]);
    assert_eq!(last.next, None);

    // bob approves infra_access: alice's seven, not his own.
    let bob = h.person("bob");
    let to_approve = list(&h.app, &bob, Scope::ToApprove, None, None, 200)
        .await
        .unwrap();
    let mut oldest_first = mine.clone();
    oldest_first.reverse();
    assert_eq!(ids(&to_approve), oldest_first);

    for limit in [0, 201] {
        let err = list(&h.app, &alice, Scope::Mine, None, None, limit)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    }
    // A cursor of alice's history is not one of bob's, nor of her requests to approve.
    let next = first.next.as_deref();
    for (caller, scope) in [(&bob, Scope::Mine), (&alice, Scope::ToApprove)] {
        let err = list(&h.app, caller, scope, None, next, 3)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    }
}

#[tokio::test]
async fn queries_respect_who_is_asking() {
    let h = harness();
    let mine = h.submit("alice", 1).await;
    let custom = submit(
        &h.app,
        &h.person("bob"),
        Submission {
            flow: "custom".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(900),
            reason: String::new(),
        },
    )
    .await
    .unwrap();

    let listed = list(&h.app, &h.person("alice"), Scope::Mine, None, None, 50)
        .await
        .unwrap()
        .requests;
    assert_eq!(
        listed.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&mine.id]
    );
    let to_approve = list(&h.app, &h.person("alice"), Scope::ToApprove, None, None, 50)
        .await
        .unwrap()
        .requests;
    assert!(
        to_approve.is_empty(),
        "alice may not approve her own nor the custom flow"
    );
    let to_approve = list(&h.app, &h.person("carol"), Scope::ToApprove, None, None, 50)
        .await
        .unwrap()
        .requests;
    assert_eq!(to_approve.len(), 2);

    assert_eq!(
        show(&h.app, &h.person("alice"), &custom.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let (request, audit) = show(&h.app, &h.person("bob"), &mine.id).await.unwrap();
    assert_eq!(request.id, mine.id);
    assert_eq!(audit.len(), 1);

    assert_eq!(
        audit_export(&h.app, &h.person("alice"), Default::default(), None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    let export = audit_export(&h.app, &h.person("carol"), Default::default(), None)
        .await
        .unwrap();
    assert_eq!(export.events.len(), 2);
    assert_eq!(export.heads.len(), 2);
    assert_eq!(export.next, None, "one page");
}

/// The strategy of `h`, with one thing happening just before the first escalation (or the
/// first removal) reaches it: what other functions do while this one's call is on its way to
/// IAM.
struct RacingStrategy {
    inner: Arc<dyn Strategy>,
    before_first_escalate: std::sync::Mutex<Option<Meanwhile>>,
    before_first_deescalate: std::sync::Mutex<Option<Meanwhile>>,
}

impl RacingStrategy {
    async fn meanwhile(slot: &std::sync::Mutex<Option<Meanwhile>>) {
        let meanwhile = slot.lock().unwrap().take();
        if let Some(meanwhile) = meanwhile {
            meanwhile.await;
        }
    }
}

#[async_trait::async_trait]
impl Strategy for RacingStrategy {
    async fn escalate(
        &self,
        target: &crate::config::Target,
        person: &crate::config::Person,
        request: &Request,
    ) -> Result<(), crate::ports::StrategyError> {
        Self::meanwhile(&self.before_first_escalate).await;
        self.inner.escalate(target, person, request).await
    }
    async fn deescalate(
        &self,
        target: &crate::config::Target,
        person: &crate::config::Person,
        request: &Request,
    ) -> Result<(), crate::ports::StrategyError> {
        Self::meanwhile(&self.before_first_deescalate).await;
        self.inner.deescalate(target, person, request).await
    }
    async fn is_member(
        &self,
        target: &crate::config::Target,
        person: &crate::config::Person,
    ) -> Result<crate::ports::Membership, crate::ports::StrategyError> {
        self.inner.is_member(target, person).await
    }
    async fn members(
        &self,
        target: &crate::config::Target,
    ) -> Result<Option<Vec<String>>, crate::ports::StrategyError> {
        self.inner.members(target).await
    }
    async fn remove_member(
        &self,
        target: &crate::config::Target,
        iam_user: &str,
    ) -> Result<(), crate::ports::StrategyError> {
        self.inner.remove_member(target, iam_user).await
    }
    async fn end_sessions(
        &self,
        target: &crate::config::Target,
        person: &crate::config::Person,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<crate::model::SessionsEnded>, crate::ports::StrategyError> {
        self.inner.end_sessions(target, person, before).await
    }
}

impl Harness {
    /// `h.app` whose first escalation waits for `meanwhile` before it reaches the strategy.
    fn racing_escalation(&self, meanwhile: Meanwhile) -> App {
        self.racing(Some(meanwhile), None)
    }

    /// `h.app` whose first removal waits for `meanwhile` before it reaches the strategy.
    fn racing_removal(&self, meanwhile: Meanwhile) -> App {
        self.racing(None, Some(meanwhile))
    }

    fn racing(&self, escalate: Option<Meanwhile>, deescalate: Option<Meanwhile>) -> App {
        App {
            strategy: Arc::new(RacingStrategy {
                inner: self.app.strategy.clone(),
                before_first_escalate: std::sync::Mutex::new(escalate),
                before_first_deescalate: std::sync::Mutex::new(deescalate),
            }),
            ..self.app.clone()
        }
    }

    async fn approved(&self, who: &str, hours: u64) -> Request {
        let request = self.submit(who, hours).await;
        let approver = if who == "bob" { "carol" } else { "bob" };
        decide(
            &self.app,
            &self.person(approver),
            &request.id,
            Decision::Approve,
            None,
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_late_escalation_after_the_grant_failed_and_was_swept_leaves_no_access() {
    let h = harness();
    let request = h.approved("alice", 1).await;
    // While this delivery is on its way to IAM, the escalation is declared failed (its retries
    // ran out) and the sweep ends the failed grant, finding nothing to remove yet.
    let (app, id) = (h.app.clone(), request.id.clone());
    let late = h.racing_escalation(Box::pin(async move {
        fail(&app, &id, "escalate", "timed out").await.unwrap();
        sweep(&app).await.unwrap();
    }));
    assert_eq!(escalate(&late, &request.id).await.unwrap(), None);

    assert_eq!(h.stored(&request.id).state, State::Revoked);
    assert!(
        !h.strategy.has("admins", "alice"),
        "the late escalation left alice in the group without a grant"
    );
    assert!(h
        .scheduler
        .schedule_named(&format!("revoke-{}", request.id))
        .is_none());
    h.assert_chain(&request.id);
}

#[tokio::test]
async fn a_late_duplicate_escalation_after_a_revocation_leaves_no_access() {
    let h = harness();
    let request = h.approved("alice", 1).await;
    // A second delivery of the same event escalates first, and alice ends the grant early;
    // only then does the first delivery's AddUserToGroup arrive.
    let (app, id) = (h.app.clone(), request.id.clone());
    let alice = h.app.config.person("alice").unwrap().clone();
    let late = h.racing_escalation(Box::pin(async move {
        escalate(&app, &id).await.unwrap().unwrap();
        let caller = crate::testing::caller_of(&alice);
        revoke(&app, &caller, &id, None).await.unwrap();
    }));
    assert_eq!(escalate(&late, &request.id).await.unwrap(), None);

    assert_eq!(h.stored(&request.id).state, State::Revoked);
    assert!(!h.strategy.has("admins", "alice"));
    h.assert_chain(&request.id);
}

#[tokio::test]
async fn a_late_escalation_keeps_access_another_grant_covers() {
    let h = harness();
    let covering = h.active("alice", 2).await;
    let request = h.approved("alice", 1).await;
    let (app, id) = (h.app.clone(), request.id.clone());
    let late = h.racing_escalation(Box::pin(async move {
        fail(&app, &id, "escalate", "timed out").await.unwrap();
    }));
    assert_eq!(escalate(&late, &request.id).await.unwrap(), None);
    assert_eq!(h.stored(&request.id).state, State::Failed);
    assert_eq!(h.stored(&covering.id).state, State::Active);
    assert!(h.strategy.has("admins", "alice"));
}

#[tokio::test]
async fn a_stale_failure_record_leaves_an_active_grant_active() {
    let h = harness();
    let active = h.active("alice", 1).await;
    assert_eq!(
        fail(&h.app, &active.id, "escalate", "an old retry gave up")
            .await
            .unwrap(),
        None
    );
    assert_eq!(h.stored(&active.id).state, State::Active);
    assert!(h.strategy.has("admins", "alice"));
    assert_eq!(h.actions(&active.id).last(), Some(&Action::Activate));
}

#[tokio::test]
async fn a_grant_ends_on_its_own_terms_after_its_person_and_flow_left_the_config() {
    let h = harness();
    let grant = h.active("alice", 1).await;
    // alice is offboarded and infra_access renamed while her grant runs.
    let changed = crate::config::Config::parse(
        &crate::testing::SAMPLE_CONFIG
            .replace("name = \"infra_access\"", "name = \"admin_access\"")
            .replace(
                "[[people]]\nname = \"alice\"\niam_user = \"alice\"\nslack_id = \"U0ALICE01\"\nemail = \"alice@example.com\"\n",
                "",
            )
            .replace("people = [\"bob\", \"carol\", \"alice\"]", "people = [\"bob\", \"carol\"]"),
    )
    .unwrap();
    assert!(changed.person("alice").is_none() && changed.flow("infra_access").is_none());
    let app = App {
        config: Arc::new(changed),
        ..h.app.clone()
    };
    h.clock.set(grant.expires_at.unwrap());
    let ended = end_by_schedule(
        &app,
        &ScheduledAction::Expire {
            request_id: grant.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ended.state, State::Expired);
    assert!(!h.strategy.has("admins", "alice"));
    // Her direct message still reaches her: the terms carry her Slack id.
    assert!(h
        .notifier
        .told("alice")
        .iter()
        .any(|text| text.contains("has ended")));
}

#[tokio::test]
async fn approval_is_refused_when_the_config_no_longer_gives_the_terms() {
    let h = harness();
    let request = h.submit("alice", 1).await;
    let changed = crate::config::Config::parse(
        &crate::testing::SAMPLE_CONFIG
            .replace("group = \"SymDemoAdmins\"", "group = \"OtherAdmins\""),
    )
    .unwrap();
    let app = App {
        config: Arc::new(changed),
        ..h.app.clone()
    };
    let err = decide(&app, &h.person("bob"), &request.id, Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("grants something else"), "{err}");
    assert_eq!(h.stored(&request.id).state, State::Pending);
    // Denying it is still possible.
    decide(&app, &h.person("bob"), &request.id, Decision::Deny, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_event_records_the_principal_and_the_first_the_terms() {
    let h = harness();
    let grant = h.active("alice", 1).await;
    let mut events: Vec<_> = h
        .store
        .events_all()
        .into_iter()
        .filter(|e| e.request_id == grant.id)
        .collect();
    events.sort_by_key(|e| e.seq);
    let principals: Vec<_> = events.iter().map(|e| e.principal.as_deref()).collect();
    assert_eq!(
        principals,
        vec![
            Some("arn:aws:iam::123456789012:user/alice"),
            Some("arn:aws:iam::123456789012:user/bob"),
            Some("elevate"),
        ]
    );
    assert_eq!(events[0].terms, Some(crate::testing::sample_terms("alice")));
    assert_eq!(grant.terms, Some(crate::testing::sample_terms("alice")));
    // Both are hashed: changing either breaks the chain.
    let mut forged = events[0].clone();
    forged.terms.as_mut().unwrap().target.kind = crate::config::TargetKind::IamGroup {
        group: "Everything".into(),
        roles: Vec::new(),
    };
    assert_ne!(forged.computed_hash(), forged.hash);
    let mut forged = events[1].clone();
    forged.principal = Some("arn:aws:sts::123456789012:assumed-role/AnyRole/bob".into());
    assert_ne!(forged.computed_hash(), forged.hash);
}

#[tokio::test]
async fn reconciliation_removes_members_without_a_grant_but_not_standing_members() {
    let h = harness();
    let config = crate::config::Config::parse(&crate::testing::SAMPLE_CONFIG.replace(
        "pending_timeout = \"30m\"",
        "pending_timeout = \"30m\"\nstanding_members = [\"breakglass\"]",
    ))
    .unwrap();
    let app = App {
        config: Arc::new(config),
        ..h.app.clone()
    };
    let grant = h.active("bob", 1).await;
    h.strategy.add_by_hand("admins", "carol");
    h.strategy.add_by_hand("admins", "breakglass");
    h.strategy.add_by_hand("admins", "mallory");

    let preview = reconcile(&app, true).await.unwrap();
    assert_eq!(preview.repairs.len(), 2, "{preview:?}");
    assert!(
        h.strategy.has("admins", "carol"),
        "a dry run changes nothing"
    );

    let done = reconcile(&app, false).await.unwrap();
    let removed: Vec<_> = done.repairs.iter().map(|r| r.iam_user.as_str()).collect();
    assert_eq!(removed, vec!["carol", "mallory"]);
    assert!(done
        .repairs
        .iter()
        .all(|r| r.kind == RepairKind::MembershipRemoved));
    assert!(!h.strategy.has("admins", "carol"));
    assert!(!h.strategy.has("admins", "mallory"));
    assert!(h.strategy.has("admins", "breakglass"));
    assert!(h.strategy.has("admins", "bob"));
    assert_eq!(h.stored(&grant.id).state, State::Active);
    assert!(reconcile(&app, false).await.unwrap().repairs.is_empty());
}

#[tokio::test]
async fn reconciliation_records_a_removed_members_repair_on_their_last_grant() {
    let h = harness();
    let grant = h.active("carol", 1).await;
    h.clock.set(grant.expires_at.unwrap());
    end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: grant.id.clone(),
        },
    )
    .await
    .unwrap();
    // Someone adds carol back by hand after her grant ended.
    h.strategy.add_by_hand("admins", "carol");
    let done = reconcile(&h.app, false).await.unwrap();
    assert_eq!(done.repairs[0].request_id.as_ref(), Some(&grant.id));
    assert!(!h.strategy.has("admins", "carol"));
    assert_eq!(h.actions(&grant.id).last(), Some(&Action::Repair));
    assert_eq!(h.stored(&grant.id).state, State::Expired);
    h.assert_chain(&grant.id);
}

#[tokio::test]
async fn an_active_grant_whose_access_was_removed_outside_elevate_ends() {
    let h = harness();
    let grant = h.active("alice", 1).await;
    h.strategy.remove_by_hand("admins", "alice");
    let done = reconcile(&h.app, false).await.unwrap();
    assert_eq!(done.repairs.len(), 1);
    assert_eq!(done.repairs[0].kind, RepairKind::EndedByOutsideChange);
    let stored = h.stored(&grant.id);
    assert_eq!(stored.state, State::Revoked);
    assert_eq!(stored.ended_by.as_deref(), Some("elevate:reconcile"));
    assert!(!h.strategy.has("admins", "alice"), "not added again");
    h.assert_chain(&grant.id);
}

#[tokio::test]
async fn an_active_grant_whose_access_elevate_removed_gets_it_back() {
    let h = harness();
    let first = h.active("alice", 1).await;
    let second = h.active("alice", 2).await;
    // The race of a grant ending while another started: the first grant's end removed the
    // access the second had just been given (written here as its outcome).
    h.clock.set(first.expires_at.unwrap());
    let mut ended = h.stored(&first.id);
    let t = crate::machine::apply(
        &ended,
        crate::machine::Command::Expire,
        &h.app.system("revoke"),
        h.clock.now(),
    )
    .unwrap();
    h.store.transition(&t).await.unwrap();
    ended = t.request;
    assert_eq!(ended.state, State::Expired);
    h.strategy.remove_by_hand("admins", "alice");

    let done = reconcile(&h.app, false).await.unwrap();
    assert_eq!(done.repairs.len(), 1, "{done:?}");
    assert_eq!(done.repairs[0].kind, RepairKind::AccessRestored);
    assert!(h.strategy.has("admins", "alice"));
    assert_eq!(h.stored(&second.id).state, State::Active);
    assert_eq!(h.actions(&second.id).last(), Some(&Action::Repair));
    h.assert_chain(&second.id);
}

#[tokio::test]
async fn a_grant_approved_while_another_ends_keeps_the_access_added_for_it() {
    let h = harness();
    let first = h.active("alice", 1).await;
    let second = h.submit("alice", 2).await;
    h.clock.set(first.expires_at.unwrap());
    // The first grant's end looks for covering grants and finds none (the second is still
    // PENDING); before it removes the access, the second is approved and escalated.
    let (app, id) = (h.app.clone(), second.id.clone());
    let bob = h.app.config.person("bob").unwrap().clone();
    let app = h.racing_removal(Box::pin(async move {
        let caller = crate::testing::caller_of(&bob);
        decide(&app, &caller, &id, Decision::Approve, None)
            .await
            .unwrap();
        escalate(&app, &id).await.unwrap().unwrap();
    }));
    end_by_schedule(
        &app,
        &ScheduledAction::Expire {
            request_id: first.id.clone(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(h.stored(&first.id).state, State::Expired);
    assert_eq!(h.stored(&second.id).state, State::Active);
    assert!(
        h.strategy.has("admins", "alice"),
        "the ACTIVE second grant lost its access to the first one's removal"
    );
}

#[tokio::test]
async fn access_removed_by_hand_after_an_overlapping_grant_kept_it_is_not_put_back() {
    let h = harness();
    let first = h.active("alice", 1).await;
    let second = h.active("alice", 2).await;
    // The first grant expires and keeps the access for the second: it removed nothing.
    h.clock.set(first.expires_at.unwrap());
    end_by_schedule(
        &h.app,
        &ScheduledAction::Expire {
            request_id: first.id.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        h.stored(&first.id).kept_access_for.as_ref(),
        Some(&second.id)
    );
    // Then an incident responder removes alice by hand.
    h.strategy.remove_by_hand("admins", "alice");
    let done = reconcile(&h.app, false).await.unwrap();
    assert_eq!(done.repairs.len(), 1, "{done:?}");
    assert_eq!(done.repairs[0].kind, RepairKind::EndedByOutsideChange);
    assert!(
        !h.strategy.has("admins", "alice"),
        "the responder's removal stands"
    );
    assert_eq!(h.stored(&second.id).state, State::Revoked);
}

#[tokio::test]
async fn two_grants_whose_access_was_removed_by_hand_both_end() {
    let h = harness();
    let first = h.active("alice", 1).await;
    let second = h.active("alice", 2).await;
    h.strategy.remove_by_hand("admins", "alice");
    let done = reconcile(&h.app, false).await.unwrap();
    assert!(
        done.repairs
            .iter()
            .all(|r| r.kind == RepairKind::EndedByOutsideChange),
        "{done:?}"
    );
    assert!(!h.strategy.has("admins", "alice"));
    assert_eq!(h.stored(&first.id).state, State::Revoked);
    assert_eq!(h.stored(&second.id).state, State::Revoked);
}

#[tokio::test]
async fn a_retried_escalation_of_an_ended_grant_takes_back_what_a_failed_undo_left() {
    let h = harness();
    let grant = h.active("alice", 1).await;
    let alice = h.app.config.person("alice").unwrap().clone();
    revoke(&h.app, &crate::testing::caller_of(&alice), &grant.id, None)
        .await
        .unwrap();
    // What an escalation that lost its write and could not undo left behind.
    h.strategy.add_by_hand("admins", "alice");
    assert_eq!(escalate(&h.app, &grant.id).await.unwrap(), None);
    assert!(!h.strategy.has("admins", "alice"));
    assert_eq!(h.stored(&grant.id).state, State::Revoked);
}

#[tokio::test]
async fn reconciliation_compares_iam_names_regardless_of_case() {
    let h = harness();
    let config = crate::config::Config::parse(&crate::testing::SAMPLE_CONFIG.replace(
        "pending_timeout = \"30m\"",
        "pending_timeout = \"30m\"\nstanding_members = [\"BreakGlass\"]",
    ))
    .unwrap();
    let app = App {
        config: Arc::new(config),
        ..h.app.clone()
    };
    // IAM spells the user its own way; IAM user names are unique regardless of case.
    h.strategy.add_by_hand("admins", "breakglass");
    let done = reconcile(&app, false).await.unwrap();
    assert!(done.repairs.is_empty(), "{done:?}");
    assert!(h.strategy.has("admins", "breakglass"));
}

/// Reasons that could forge a line, rewrite a terminal or reorder what others read.
const FORGING_REASONS: [&str; 4] = [
    "ok\n*APPROVED* by <@U0BOB0001>",
    "INC-42 \u{202E}gnp.exe",
    "esc \u{1B}[2J",
    "isolate \u{2066}x\u{2069}",
];

#[tokio::test]
async fn requests_with_forging_reasons_are_refused_and_write_nothing() {
    let h = harness();
    for reason in FORGING_REASONS {
        let submission = Submission {
            flow: "infra_access".into(),
            target: None,
            account: None,
            duration: Duration::from_secs(3600),
            reason: reason.into(),
        };
        let err = submit(&h.app, &h.person("alice"), submission)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "reason_invalid_characters", "{reason:?}: {err}");
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
    h.assert_nothing_written();
}

#[tokio::test]
async fn approvals_denials_and_revocations_with_forging_reasons_change_nothing() {
    let h = harness();
    let pending = h.submit("alice", 1).await;
    let active = h.active("alice", 1).await;
    let notices = h.notifier.notices().len();
    let events = h.store.events_all().len();
    for reason in FORGING_REASONS {
        for decision in [Decision::Approve, Decision::Deny] {
            let err = decide(
                &h.app,
                &h.person("bob"),
                &pending.id,
                decision,
                Some(reason.into()),
            )
            .await
            .unwrap_err();
            assert_eq!(err.code(), "reason_invalid_characters", "{reason:?}: {err}");
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
        let err = revoke(&h.app, &h.person("bob"), &active.id, Some(reason.into()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "reason_invalid_characters", "{reason:?}: {err}");
    }
    // The same length cap as a request's reason.
    let overlong = Some("x".repeat(crate::rules::MAX_REASON_LEN + 1));
    let err = decide(
        &h.app,
        &h.person("bob"),
        &pending.id,
        Decision::Deny,
        overlong.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "reason_too_long");
    let err = revoke(&h.app, &h.person("bob"), &active.id, overlong)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reason_too_long");
    assert_eq!(h.stored(&pending.id).state, State::Pending);
    assert_eq!(h.stored(&active.id).state, State::Active);
    assert!(h.strategy.has("admins", "alice"), "the access is untouched");
    assert_eq!(h.store.events_all().len(), events, "no audit event");
    assert_eq!(h.notifier.notices().len(), notices, "nobody told");
    assert!(h
        .scheduler
        .schedule_named(&format!("timeout-{}", pending.id))
        .is_some());
    // A plain reason still decides.
    let denied = decide(
        &h.app,
        &h.person("bob"),
        &pending.id,
        Decision::Deny,
        Some("not during the freeze".into()),
    )
    .await
    .unwrap();
    assert_eq!(denied.state, State::Denied);
}
