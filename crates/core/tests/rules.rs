//! Flow rules: what a requester may ask for, who may decide, who may look, and the error codes
//! the HTTP API and the CLI show for each refusal.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{config_with, request_in, CONFIG};
use elevate_core::rules::{check_reason, MAX_REASON_LEN};
use elevate_core::{Config, Flow, Person, Request, RuleError, State};

fn config() -> Config {
    Config::parse(CONFIG).unwrap()
}

fn flow(config: &Config, name: &str) -> Flow {
    config.flow(name).unwrap().clone()
}

fn who(config: &Config, name: &str) -> Person {
    config.person(name).unwrap().clone()
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// A request by `requester` (as the state machine would hold it).
fn request_by(requester: &str) -> Request {
    let mut request = request_in(State::Pending).0;
    request.requester = requester.into();
    request
}

const REASON: &str = "INC-42: restart the stuck ingest job";

#[test]
fn a_valid_request_becomes_what_is_opened() {
    let config = config();
    let infra = flow(&config, "infra_access");
    let new = infra
        .check_request(
            &who(&config, "carol"),
            None,
            None,
            mins(90),
            &format!("  {REASON}\n"),
        )
        .unwrap();
    assert_eq!(new.flow, "infra_access");
    assert_eq!(new.target, "admins", "the only target is the default");
    assert_eq!(new.requester, "carol");
    assert_eq!(new.reason, REASON, "surrounding whitespace is dropped");
    assert_eq!(new.duration, mins(90));
    assert_eq!(new.pending_timeout, mins(30));

    let db = flow(&config, "db_access");
    let new = db
        .check_request(&who(&config, "bob"), Some("write"), None, mins(15), "")
        .unwrap();
    assert_eq!(new.target, "write");
    assert_eq!(new.reason, "", "db_access does not require a reason");
}

#[test]
fn durations_are_checked_against_the_cap_and_the_list() {
    let config = config();
    let alice = who(&config, "alice");
    let infra = flow(&config, "infra_access");

    assert_eq!(
        infra.check_request(&alice, None, None, Duration::ZERO, REASON),
        Err(RuleError::ZeroDuration)
    );
    assert!(infra
        .check_request(&alice, None, None, mins(240), REASON)
        .is_ok());
    let over = infra
        .check_request(
            &alice,
            None,
            None,
            mins(240) + Duration::from_secs(1),
            REASON,
        )
        .unwrap_err();
    assert_eq!(
        over,
        RuleError::DurationOverCap {
            flow: "infra_access".into(),
            asked: "4h1s".into(),
            max: "4h".into()
        }
    );
    assert_eq!(over.code(), "duration_over_cap");
    assert_eq!(
        over.to_string(),
        "duration 4h1s is over the cap of 4h for flow `infra_access`"
    );

    let db = flow(&config, "db_access");
    let not_listed = db
        .check_request(&alice, Some("read"), None, mins(30), REASON)
        .unwrap_err();
    assert_eq!(
        not_listed,
        RuleError::DurationNotAllowed {
            flow: "db_access".into(),
            asked: "30m".into(),
            allowed: "15m, 1h".into()
        }
    );
    assert_eq!(not_listed.code(), "duration_not_allowed");
    // Over the longest listed duration is over the cap, whatever the list says.
    assert!(matches!(
        db.check_request(&alice, Some("read"), None, mins(120), REASON),
        Err(RuleError::DurationOverCap { .. })
    ));
    for listed in [mins(15), mins(60)] {
        assert!(db
            .check_request(&alice, Some("read"), None, listed, REASON)
            .is_ok());
    }
}

#[test]
fn a_reason_is_required_unless_the_flow_says_otherwise() {
    let config = config();
    let alice = who(&config, "alice");
    let infra = flow(&config, "infra_access");
    for empty in ["", "   ", "\n\t "] {
        let err = infra
            .check_request(&alice, None, None, mins(60), empty)
            .unwrap_err();
        assert_eq!(
            err,
            RuleError::ReasonRequired {
                flow: "infra_access".into()
            },
            "{empty:?}"
        );
        assert_eq!(err.code(), "reason_required");
    }
    let db = flow(&config, "db_access");
    assert!(db
        .check_request(&alice, Some("read"), None, mins(15), "  ")
        .is_ok());
}

#[test]
fn an_overlong_reason_is_refused_not_cut() {
    let config = config();
    let alice = who(&config, "alice");
    let infra = flow(&config, "infra_access");

    let longest = "é".repeat(MAX_REASON_LEN);
    let new = infra
        .check_request(&alice, None, None, mins(60), &format!("  {longest}  "))
        .unwrap();
    assert_eq!(new.reason, longest, "length counts characters, not bytes");

    let err = infra
        .check_request(&alice, None, None, mins(60), &format!("{longest}x"))
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::ReasonTooLong {
            len: MAX_REASON_LEN + 1
        }
    );
    assert_eq!(err.code(), "reason_too_long");
    // Also where a reason is optional.
    let db = flow(&config, "db_access");
    assert!(matches!(
        db.check_request(
            &alice,
            Some("read"),
            None,
            mins(15),
            &"x".repeat(MAX_REASON_LEN + 1)
        ),
        Err(RuleError::ReasonTooLong { .. })
    ));
}

#[test]
fn reasons_with_line_breaks_controls_or_bidi_characters_are_refused() {
    let config = config();
    let alice = who(&config, "alice");
    let infra = flow(&config, "infra_access");
    let refused = [
        // A line that would read like elevate's own status line.
        ("ok\n*APPROVED* by bob", '\n', "a line break", 3),
        ("ok\r\nAPPROVED", '\r', "a line break", 3),
        ("ok\u{2028}APPROVED", '\u{2028}', "a line break", 3),
        ("ok\u{2029}APPROVED", '\u{2029}', "a line break", 3),
        ("ok\u{85}APPROVED", '\u{85}', "a line break", 3),
        ("col\tumn", '\t', "a control character", 4),
        ("nul\0", '\0', "a control character", 4),
        ("\u{1B}[2Jclear", '\u{1B}', "a control character", 1),
        ("del\u{7F}", '\u{7F}', "a control character", 4),
        ("c1\u{9B}31m", '\u{9B}', "a control character", 3),
        // "INC-42 exe.gnp" shows as "INC-42 png.exe".
        (
            "INC-42 \u{202E}gnp.exe",
            '\u{202E}',
            "a bidirectional formatting character",
            8,
        ),
        (
            "a\u{202A}b",
            '\u{202A}',
            "a bidirectional formatting character",
            2,
        ),
        (
            "a\u{2066}b\u{2069}",
            '\u{2066}',
            "a bidirectional formatting character",
            2,
        ),
        (
            "a\u{2069}",
            '\u{2069}',
            "a bidirectional formatting character",
            2,
        ),
        (
            "a\u{200E}",
            '\u{200E}',
            "a bidirectional formatting character",
            2,
        ),
        (
            "a\u{200F}",
            '\u{200F}',
            "a bidirectional formatting character",
            2,
        ),
        (
            "a\u{061C}",
            '\u{061C}',
            "a bidirectional formatting character",
            2,
        ),
    ];
    for (reason, bad, what, position) in refused {
        let err = infra
            .check_request(&alice, None, None, mins(60), reason)
            .unwrap_err();
        assert_eq!(
            err,
            RuleError::ReasonInvalidCharacters {
                what,
                code_point: format!("U+{:04X}", u32::from(bad)),
                position,
            },
            "{reason:?}"
        );
        assert_eq!(err.code(), "reason_invalid_characters");
        assert!(err.to_string().contains(what), "{err}");
        assert_eq!(
            check_reason(reason),
            Err(err),
            "the same check for decisions"
        );
    }
    // Surrounding white space (a trailing newline of a pasted line) is trimmed first.
    assert_eq!(
        infra
            .check_request(&alice, None, None, mins(60), "INC-42\n")
            .unwrap()
            .reason,
        "INC-42"
    );
    // Letters of any script, emoji and punctuation stay welcome.
    for fine in ["Ünïcödé – 修复 – إصلاح 🚒", "<@U0BOB0001> *bold* `code`", ""] {
        assert_eq!(check_reason(fine), Ok(()), "{fine:?}");
    }
    assert_eq!(
        check_reason(&"x".repeat(MAX_REASON_LEN + 1)),
        Err(RuleError::ReasonTooLong {
            len: MAX_REASON_LEN + 1
        })
    );
}

#[test]
fn targets_must_exist_and_be_chosen_when_there_are_several() {
    let config = config();
    let alice = who(&config, "alice");
    let db = flow(&config, "db_access");

    let err = db
        .check_request(&alice, None, None, mins(15), REASON)
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::TargetRequired {
            flow: "db_access".into(),
            choices: "read, write".into()
        }
    );
    assert_eq!(err.code(), "target_required");

    let err = db
        .check_request(&alice, Some("admin"), None, mins(15), REASON)
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::UnknownTarget {
            flow: "db_access".into(),
            target: "admin".into(),
            choices: "read, write".into()
        }
    );
    assert_eq!(err.code(), "unknown_target");

    // A single-target flow takes its target by name too, and still refuses a wrong one.
    let infra = flow(&config, "infra_access");
    assert_eq!(infra.target(Some("admins")).unwrap().name, "admins");
    assert_eq!(infra.target(None).unwrap().name, "admins");
    assert!(matches!(
        infra.target(Some("Admins")),
        Err(RuleError::UnknownTarget { .. })
    ));
}

#[test]
fn only_listed_requesters_may_request_a_restricted_flow() {
    let config = config();
    let db = flow(&config, "db_access");
    let err = db
        .check_request(&who(&config, "carol"), Some("read"), None, mins(15), REASON)
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::NotARequester {
            person: "carol".into(),
            flow: "db_access".into()
        }
    );
    assert_eq!(err.code(), "not_a_requester");

    // Refused as a requester before anything else about the request is looked at.
    assert!(matches!(
        db.check_request(
            &who(&config, "carol"),
            Some("nope"),
            None,
            Duration::ZERO,
            ""
        ),
        Err(RuleError::NotARequester { .. })
    ));
    // A flow without a list is open to everyone in the file.
    let infra = flow(&config, "infra_access");
    for name in ["alice", "bob", "carol"] {
        assert!(infra
            .check_request(&who(&config, name), None, None, mins(60), REASON)
            .is_ok());
    }
}

#[test]
fn approvers_may_decide_others_requests_but_not_their_own() {
    let config = config();
    let infra = flow(&config, "infra_access");

    assert_eq!(
        infra.check_decider("bob", &[], &request_by("alice")),
        Ok(())
    );
    assert_eq!(
        infra.check_decider("alice", &[], &request_by("carol")),
        Ok(())
    );

    let err = infra
        .check_decider("alice", &[], &request_by("alice"))
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::SelfApproval {
            person: "alice".into()
        }
    );
    assert_eq!(err.code(), "self_approval");

    let err = infra
        .check_decider("carol", &[], &request_by("alice"))
        .unwrap_err();
    assert_eq!(
        err,
        RuleError::NotAnApprover {
            person: "carol".into(),
            flow: "infra_access".into()
        }
    );
    assert_eq!(err.code(), "not_an_approver");
    // Not even their own request makes a non-approver one.
    assert!(matches!(
        infra.check_decider("carol", &[], &request_by("carol")),
        Err(RuleError::NotAnApprover { .. })
    ));
}

#[test]
fn self_approval_is_allowed_only_where_the_flow_turns_it_on() {
    let config = config();
    let db = flow(&config, "db_access");
    assert!(db.allow_self_approval);
    assert_eq!(db.check_decider("alice", &[], &request_by("alice")), Ok(()));
    // It does not make a requester an approver.
    assert!(matches!(
        db.check_decider("bob", &[], &request_by("bob")),
        Err(RuleError::NotAnApprover { .. })
    ));

    // The same flow with self-approval off (and bob as a second approver so the file is valid).
    let text = config_with("allow_self_approval = true", "allow_self_approval = false").replacen(
        "people = [\"alice\"]",
        "people = [\"alice\", \"bob\"]",
        1,
    );
    let strict = Config::parse(&text).unwrap();
    let db = flow(&strict, "db_access");
    assert!(matches!(
        db.check_decider("alice", &[], &request_by("alice")),
        Err(RuleError::SelfApproval { .. })
    ));
    assert_eq!(db.check_decider("bob", &[], &request_by("alice")), Ok(()));
}

#[test]
fn requests_are_visible_to_their_requester_and_the_approvers_only() {
    let config = config();
    let infra = flow(&config, "infra_access");
    let by_carol = request_by("carol");
    assert!(infra.may_view("carol", &[], &by_carol), "the requester");
    assert!(infra.may_view("alice", &[], &by_carol), "an approver");
    assert!(infra.may_view("bob", &[], &by_carol), "an approver");
    let by_alice = request_by("alice");
    assert!(!infra.may_view("carol", &[], &by_alice), "someone else");
    assert!(!infra.may_view("", &[], &by_alice));
}

#[test]
fn every_error_code_is_one_the_contract_documents() {
    let contracts = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/contracts.md"
    ));
    let all = [
        RuleError::UnknownTarget {
            flow: "f".into(),
            target: "t".into(),
            choices: "c".into(),
        },
        RuleError::TargetRequired {
            flow: "f".into(),
            choices: "c".into(),
        },
        RuleError::ZeroDuration,
        RuleError::DurationOverCap {
            flow: "f".into(),
            asked: "a".into(),
            max: "m".into(),
        },
        RuleError::DurationNotAllowed {
            flow: "f".into(),
            asked: "a".into(),
            allowed: "l".into(),
        },
        RuleError::ReasonRequired { flow: "f".into() },
        RuleError::ReasonTooLong { len: 1001 },
        RuleError::ReasonInvalidCharacters {
            what: "a line break",
            code_point: "U+000A".into(),
            position: 1,
        },
        RuleError::NotARequester {
            person: "p".into(),
            flow: "f".into(),
        },
        RuleError::NotAnApprover {
            person: "p".into(),
            flow: "f".into(),
        },
        RuleError::SelfApproval { person: "p".into() },
        RuleError::AccountRequired {
            target: "t".into(),
            choices: "c".into(),
        },
        RuleError::UnknownAccount {
            target: "t".into(),
            account: "a".into(),
            choices: "c".into(),
        },
        RuleError::AccountNotApplicable {
            target: "t".into(),
            kind: "iam_group",
        },
        RuleError::NotInDirectory {
            person: "p".into(),
            email: "e".into(),
            target: "t".into(),
        },
        RuleError::UnknownGroup {
            person: "p".into(),
            flow: "f".into(),
            groups: "g".into(),
        },
    ];
    let codes: Vec<&str> = all.iter().map(RuleError::code).collect();
    assert_eq!(
        codes,
        [
            "unknown_target",
            "target_required",
            "invalid_duration",
            "duration_over_cap",
            "duration_not_allowed",
            "reason_required",
            "reason_too_long",
            "reason_invalid_characters",
            "not_a_requester",
            "not_an_approver",
            "self_approval",
            "account_required",
            "unknown_account",
            "account_not_applicable",
            "unknown_directory_user",
            "unknown_group",
        ]
    );
    for code in codes {
        assert!(
            contracts.contains(&format!("`{code}`")),
            "`{code}` is not documented in docs/contracts.md"
        );
    }
}

/// CONFIG with a flow `prod` whose target `readonly` is a permission set granted in two
/// accounts, and `single` one granted in one.
fn with_accounts() -> Config {
    let instance = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6";
    let set = "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-0123456789abcdef";
    Config::parse(&config_with(
        "auditors = [\"carol\"]\n",
        &format!(
            "auditors = [\"carol\"]\n\n[identity_center]\ninstance_arn = \"{instance}\"\nidentity_store_id = \"d-9067a1b2c3\"\n\n\
             [[flows]]\nname = \"prod\"\nmax_duration = \"1h\"\napprovers = {{ channel = \"C0PROD\", people = [\"bob\", \"carol\"] }}\n\n\
             [[flows.targets]]\nname = \"readonly\"\ntype = \"sso_permission_set\"\npermission_set_arn = \"{set}\"\naccounts = [\"111111111111\", \"222222222222\"]\n\n\
             [[flows.targets]]\nname = \"single\"\ntype = \"sso_permission_set\"\npermission_set_arn = \"{set}\"\naccounts = [\"333333333333\"]\n"
        ),
    ))
    .unwrap()
}

#[test]
fn a_permission_set_in_several_accounts_is_granted_in_the_one_asked_for() {
    let config = with_accounts();
    let prod = flow(&config, "prod");
    let alice = who(&config, "alice");
    let ask = |target: &str, account: Option<&str>| {
        prod.check_request(&alice, Some(target), account, mins(30), REASON)
    };

    let new = ask("readonly", Some(" 222222222222 ")).unwrap();
    assert_eq!(
        new.terms.target.kind.account(),
        Some("222222222222"),
        "the terms name only the account asked for"
    );
    assert!(new
        .terms
        .target
        .kind
        .resource()
        .ends_with(" in 222222222222"));
    let only = ask("single", None).unwrap();
    assert_eq!(only.terms.target.kind.account(), Some("333333333333"));
    assert!(ask("single", Some("333333333333")).is_ok());

    let err = ask("readonly", None).unwrap_err();
    assert_eq!(err.code(), "account_required");
    assert!(
        err.to_string().contains("111111111111, 222222222222"),
        "{err}"
    );
    let err = ask("readonly", Some("999999999999")).unwrap_err();
    assert_eq!(err.code(), "unknown_account");
    assert!(err.to_string().contains("`999999999999`"), "{err}");
    assert_eq!(
        ask("single", Some("111111111111")).unwrap_err().code(),
        "unknown_account"
    );
    let err = flow(&config, "infra_access")
        .check_request(&alice, None, Some("111111111111"), mins(30), REASON)
        .unwrap_err();
    assert_eq!(err.code(), "account_not_applicable");
    assert!(err.to_string().contains("iam_group"), "{err}");
}

#[test]
fn a_grant_in_one_account_is_still_given_while_the_target_lists_it() {
    let config = with_accounts();
    let prod = flow(&config, "prod");
    let alice = who(&config, "alice");
    let granted = prod
        .check_request(
            &alice,
            Some("readonly"),
            Some("111111111111"),
            mins(30),
            REASON,
        )
        .unwrap()
        .terms
        .target;
    let readonly = prod.target(Some("readonly")).unwrap();
    assert!(readonly.still_gives(&granted));
    // The account dropped from the target: no longer given.
    let mut narrowed = readonly.clone();
    narrowed.kind = readonly.in_account(Some("222222222222")).unwrap().kind;
    assert!(!narrowed.still_gives(&granted));
    // Another target entirely.
    let single = prod.target(Some("single")).unwrap();
    assert!(!single.still_gives(&granted));
}
