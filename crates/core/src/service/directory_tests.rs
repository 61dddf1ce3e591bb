//! Identity Store groups as requesters and approvers, and a permission set's person found in
//! the directory when they request: against the in-memory directory.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::config::Config;
use crate::model::State;
use crate::testing::{caller_of, FakeApp, SAMPLE_CONFIG};

use super::*;

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6";
const SET: &str = "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-0123456789abcdef";

/// The sample config with an Identity Center, a flow `oncall` that people of the group
/// `OnCall` may request and members of `Leads` (or carol) approve, and a flow `prod_readonly`
/// granting a permission set.
fn app() -> FakeApp {
    let text = format!(
        "{SAMPLE_CONFIG}\n\
         [identity_center]\ninstance_arn = \"{INSTANCE}\"\nidentity_store_id = \"d-9067a1b2c3\"\n\n\
         [[flows]]\nname = \"oncall\"\nmax_duration = \"1h\"\nrequesters.groups = [\"OnCall\"]\n\
         [flows.approvers]\nchannel = \"C0ONCALL\"\npeople = [\"carol\"]\ngroups = [\"Leads\"]\n\
         [[flows.targets]]\nname = \"admins\"\ntype = \"iam_group\"\ngroup = \"SymDemoAdmins\"\n\n\
         [[flows]]\nname = \"prod_readonly\"\nmax_duration = \"1h\"\n\
         [flows.approvers]\nchannel = \"C0PROD\"\npeople = [\"bob\", \"carol\"]\n\
         [[flows.targets]]\nname = \"readonly\"\ntype = \"sso_permission_set\"\n\
         permission_set_arn = \"{SET}\"\naccounts = [\"111111111111\", \"222222222222\"]\n"
    );
    let app = FakeApp::new(Config::parse(&text).unwrap());
    app.directory.add_to_group("OnCall", &["alice@example.com"]);
    app.directory.add_to_group("Leads", &["bob@example.com"]);
    app
}

fn ask(flow: &str, account: Option<&str>) -> Submission {
    Submission {
        flow: flow.into(),
        target: None,
        account: account.map(str::to_owned),
        duration: Duration::from_secs(1800),
        reason: "INC-1".into(),
    }
}

async fn submit_as(
    app: &FakeApp,
    who: &str,
    submission: Submission,
) -> Result<Request, ServiceError> {
    let person = app.app.config.person(who).unwrap();
    submit(&app.app, &caller_of(person), submission).await
}

async fn decide_as(
    app: &FakeApp,
    who: &str,
    request: &Request,
    decision: Decision,
) -> Result<Request, ServiceError> {
    let person = app.app.config.person(who).unwrap();
    decide(&app.app, &caller_of(person), &request.id, decision, None).await
}

#[tokio::test]
async fn a_member_of_a_requesters_group_may_request_and_others_may_not() {
    let app = app();
    let request = submit_as(&app, "alice", ask("oncall", None)).await.unwrap();
    assert_eq!(request.state, State::Pending);

    let err = submit_as(&app, "carol", ask("oncall", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_a_requester", "{err}");
    assert_eq!(
        app.store.requests_all().len(),
        1,
        "the refusal wrote nothing"
    );
}

#[tokio::test]
async fn a_member_of_an_approvers_group_may_decide_until_they_leave_it() {
    let app = app();
    let first = submit_as(&app, "alice", ask("oncall", None)).await.unwrap();
    // bob is not listed; he approves as a member of Leads.
    let approved = decide_as(&app, "bob", &first, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(approved.state, State::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("bob"));

    let second = submit_as(&app, "alice", ask("oncall", None)).await.unwrap();
    app.directory.remove_from_group("Leads", "bob@example.com");
    let err = decide_as(&app, "bob", &second, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_an_approver", "{err}");
    assert_eq!(app.store.request(&second.id).unwrap().state, State::Pending);
}

#[tokio::test]
async fn a_member_of_an_approvers_group_may_not_approve_their_own_request() {
    let app = app();
    app.directory.add_to_group("OnCall", &["bob@example.com"]);
    let own = submit_as(&app, "bob", ask("oncall", None)).await.unwrap();
    let err = decide_as(&app, "bob", &own, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "self_approval", "{err}");
    // Even when another group of the flow is missing, the refusal says what it is.
    let missing = FakeApp::new((*app.app.config).clone());
    missing
        .directory
        .add_to_group("OnCall", &["bob@example.com"]);
    missing
        .directory
        .add_to_group("Leads", &["bob@example.com"]);
    let own = submit_as(&missing, "bob", ask("oncall", None))
        .await
        .unwrap();
    let err = decide_as(&missing, "bob", &own, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "self_approval", "{err}");
    assert_eq!(
        missing.store.request(&own.id).map(|r| r.state),
        Some(State::Pending)
    );
}

#[tokio::test]
async fn a_resubmitted_slack_form_for_a_permission_set_returns_the_first_request() {
    let app = app();
    let alice = app.app.config.person("alice").unwrap().clone();
    let first = submit_from_slack(
        &app.app,
        "T0ELEVATE",
        &alice.slack_id,
        ask("prod_readonly", Some("111111111111")),
    )
    .await
    .unwrap();
    let again = submit_from_slack(
        &app.app,
        "T0ELEVATE",
        &alice.slack_id,
        ask("prod_readonly", Some("111111111111")),
    )
    .await
    .unwrap();
    assert_eq!(again.id, first.id);
    let other = submit_from_slack(
        &app.app,
        "T0ELEVATE",
        &alice.slack_id,
        ask("prod_readonly", Some("222222222222")),
    )
    .await
    .unwrap();
    assert_ne!(other.id, first.id, "another account is another request");
}

#[tokio::test]
async fn a_requester_who_left_the_group_is_not_approved() {
    let app = app();
    let request = submit_as(&app, "alice", ask("oncall", None)).await.unwrap();
    app.directory
        .remove_from_group("OnCall", "alice@example.com");
    let err = decide_as(&app, "carol", &request, Decision::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(err.to_string().contains("may no longer request"), "{err}");
    assert_eq!(
        app.store.request(&request.id).unwrap().state,
        State::Pending
    );
    // Denying it is still possible.
    let denied = decide_as(&app, "carol", &request, Decision::Deny)
        .await
        .unwrap();
    assert_eq!(denied.state, State::Denied);
}

/// The first page of what `person` may decide.
async fn to_approve(app: &FakeApp, person: &crate::config::Person) -> crate::ports::ListPage {
    list(
        &app.app,
        &caller_of(person),
        Scope::ToApprove,
        None,
        None,
        LIST_PAGE_DEFAULT,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_group_approver_lists_and_sees_what_they_may_decide() {
    let app = app();
    let request = submit_as(&app, "alice", ask("oncall", None)).await.unwrap();
    let bob = app.app.config.person("bob").unwrap();
    let page = to_approve(&app, bob).await;
    assert!(page.requests.iter().any(|r| r.id == request.id), "{page:?}");
    assert!(show(&app.app, &caller_of(bob), &request.id).await.is_ok());

    app.directory.remove_from_group("Leads", "bob@example.com");
    let page = to_approve(&app, bob).await;
    assert!(page.requests.iter().all(|r| r.id != request.id), "{page:?}");
    assert_eq!(
        show(&app.app, &caller_of(bob), &request.id)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn a_group_that_does_not_exist_is_a_clear_refusal() {
    let app = app();
    // Nobody created OnCall in this directory.
    let empty = FakeApp::new((*app.app.config).clone());
    let err = submit_as(&empty, "alice", ask("oncall", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_group", "{err}");
    assert!(err.to_string().contains("OnCall"), "{err}");
    assert!(empty.store.requests_all().is_empty());
}

#[tokio::test]
async fn the_directory_unavailable_is_a_fault_and_writes_nothing() {
    let app = app();
    app.directory.fail_next(1);
    let err = submit_as(&app, "alice", ask("oncall", None))
        .await
        .unwrap_err();
    assert!(!err.is_refusal(), "{err}");
    assert!(app.store.requests_all().is_empty());
}

#[tokio::test]
async fn people_listed_by_name_never_wait_for_the_directory() {
    let app = app();
    let request = submit_as(&app, "alice", ask("infra_access", None))
        .await
        .unwrap();
    app.directory.fail_next(u32::MAX);
    decide_as(&app, "bob", &request, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(app.directory.calls(), 0);
}

#[tokio::test]
async fn a_permission_set_is_refused_at_once_to_someone_not_in_the_directory() {
    let app = app();
    app.directory.remove_user("carol@example.com");
    let err = submit_as(&app, "carol", ask("prod_readonly", Some("111111111111")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_directory_user", "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("carol@example.com"), "{err}");
    assert!(app.store.requests_all().is_empty(), "nothing written");

    let request = submit_as(&app, "alice", ask("prod_readonly", Some("222222222222")))
        .await
        .unwrap();
    assert_eq!(request.account(), Some("222222222222"));
    assert_eq!(request.target_label(), "readonly in account 222222222222");
}

/// An ACTIVE grant of `prod_readonly` in `account` for `who`, approved by carol.
async fn active_in(app: &FakeApp, who: &str, account: &str) -> Request {
    let request = submit_as(app, who, ask("prod_readonly", Some(account)))
        .await
        .unwrap();
    decide_as(app, "carol", &request, Decision::Approve)
        .await
        .unwrap();
    let active = escalate(&app.app, &request.id).await.unwrap().unwrap();
    assert_eq!(active.state, State::Active);
    active
}

#[tokio::test]
async fn overlapping_grants_of_a_permission_set_keep_the_assignment_only_in_the_same_account() {
    let app = app();
    let first = active_in(&app, "alice", "111111111111").await;
    let second = active_in(&app, "alice", "111111111111").await;
    let elsewhere = active_in(&app, "alice", "222222222222").await;
    let alice = app.app.config.person("alice").unwrap();

    let ended = revoke(&app.app, &caller_of(alice), &first.id, None)
        .await
        .unwrap();
    assert_eq!(ended.state, State::Revoked);
    assert_eq!(
        ended.kept_access_for.as_ref(),
        Some(&second.id),
        "the grant in the same account keeps the assignment"
    );
    assert!(app.strategy.has("readonly", "alice"));

    let ended = revoke(&app.app, &caller_of(alice), &second.id, None)
        .await
        .unwrap();
    assert_eq!(
        ended.kept_access_for, None,
        "a grant in another account is another assignment: it keeps nothing here"
    );
    assert_ne!(ended.kept_access_for.as_ref(), Some(&elsewhere.id));
}
