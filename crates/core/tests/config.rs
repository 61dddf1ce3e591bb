//! `elevate.toml`: the example file parses, and every invalid file is refused with the line to
//! fix and what is wrong with it, so `elevate config check` and a refusing function say the same.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{config_with, line_of, CONFIG};
use elevate_core::config::DEFAULT_PENDING_TIMEOUT;
use elevate_core::{Config, ConfigError, Identity, TargetKind};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/elevate.toml"
));

fn refused(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(err) => err,
    }
}

/// Edits the base config, and asserts it is refused on the line of `line_needle` (in the edited
/// text) with a message containing `message`.
fn assert_refused(from: &str, to: &str, line_needle: &str, message: &str) {
    let text = config_with(from, to);
    let err = refused(&text);
    assert!(
        err.message.contains(message),
        "`{from}` -> `{to}`: expected a message containing `{message}`, got `{}`",
        err.message
    );
    assert_eq!(
        err.line,
        line_of(&text, line_needle),
        "`{from}` -> `{to}`: wrong line for `{}`",
        err.message
    );
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

#[test]
fn the_example_config_parses() {
    let config = Config::parse(EXAMPLE).unwrap();
    assert_eq!(config.people.len(), 2);
    assert_eq!(config.auditors, ["bob"]);
    assert!(config.is_auditor("bob"));
    assert!(!config.is_auditor("alice"));

    let flow = config.flow("infra_access").unwrap();
    assert_eq!(flow.max_duration, mins(240));
    assert_eq!(flow.allowed_durations, None);
    assert_eq!(flow.pending_timeout, mins(30));
    assert!(flow.reason_required);
    assert!(!flow.allow_self_approval);
    assert_eq!(flow.approvers.channel, "C0APPROVALS");
    assert_eq!(flow.approvers.people, ["alice", "bob"]);
    assert_eq!(flow.requesters, None);
    assert_eq!(flow.targets.len(), 1);
    assert_eq!(flow.targets[0].name, "admins");
    assert_eq!(
        flow.targets[0].kind,
        TargetKind::IamGroup {
            group: "SymDemoAdmins".into(),
            roles: vec!["SymDemoEscalated".into()],
        }
    );
    assert!(config.flow("nope").is_none());
}

#[test]
fn the_base_config_parses_with_its_defaults() {
    let config = Config::parse(CONFIG).unwrap();
    assert_eq!(config.people.len(), 3);
    assert_eq!(config.person("bob").unwrap().iam_user, "bob.smith");
    assert_eq!(config.person_by_iam_user("bob.smith").unwrap().name, "bob");
    assert_eq!(config.person_by_slack_id("U0CAROL").unwrap().name, "carol");
    assert_eq!(
        config
            .person_by_email("bob.smith@EXAMPLE.com")
            .unwrap()
            .name,
        "bob"
    );
    assert!(config.person("dave").is_none());
    assert_eq!(
        config.identity,
        Identity {
            accounts: None,
            iam_users: true,
            trusted_roles: vec![],
        },
        "without [identity]: the API's account, IAM users, no trusted roles"
    );

    let infra = config.flow("infra_access").unwrap();
    assert!(
        infra.standing_members.is_empty(),
        "no standing members unless listed"
    );
    assert!(
        infra.reason_required,
        "a reason is required unless turned off"
    );
    assert!(
        !infra.allow_self_approval,
        "self-approval is off unless turned on"
    );

    let db = config.flow("db_access").unwrap();
    assert_eq!(db.allowed_durations, Some(vec![mins(15), mins(60)]));
    assert_eq!(db.max_duration, mins(60), "the cap is the longest allowed");
    assert_eq!(db.pending_timeout, DEFAULT_PENDING_TIMEOUT);
    assert!(!db.reason_required);
    assert!(db.allow_self_approval);
    assert_eq!(db.requesters, Some(vec!["alice".into(), "bob".into()]));
    assert_eq!(db.description, "");
    assert_eq!(
        db.targets[1].kind,
        TargetKind::Lambda {
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:db-write".into()
        }
    );
}

#[test]
fn errors_name_the_file_and_line() {
    let err = refused(&config_with(
        "max_duration = \"4h\"",
        "max_duration = \"0s\"",
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "elevate.toml line {}: max_duration must be longer than zero",
            err.line
        )
    );
}

#[test]
fn toml_syntax_errors_point_at_the_line() {
    assert_refused(
        "max_duration = \"4h\"",
        "max_duration = \"4h",
        "max_duration = \"4h",
        "string",
    );
    assert_refused(
        "max_duration = \"4h\"",
        "max_duration \"4h\"",
        "max_duration \"4h\"",
        "`=`",
    );
    assert_refused(
        "[flows.approvers]\nchannel = \"C0DB\"",
        "[flows.approvers\nchannel = \"C0DB\"",
        "[flows.approvers\n",
        "invalid table header",
    );
}

#[test]
fn wrong_value_types_point_at_the_value() {
    assert_refused(
        "reason_required = false",
        "reason_required = \"no\"",
        "reason_required = \"no\"",
        "expected a boolean",
    );
}

#[test]
fn unknown_fields_are_refused_not_ignored() {
    assert_refused(
        "pending_timeout = \"30m\"",
        "pending_timout = \"30m\"",
        "pending_timout",
        "unknown field `pending_timout`",
    );
    assert_refused(
        "slack_id = \"U0BOB\"",
        "slack = \"U0BOB\"",
        "slack = \"U0BOB\"",
        "unknown field `slack`",
    );
    assert_refused(
        "group = \"SymDemoAdmins\"",
        "grop = \"SymDemoAdmins\"",
        "grop",
        "unknown field `grop`",
    );
    assert_refused(
        "auditors = [\"carol\"]",
        "auditor = [\"carol\"]",
        "auditor = ",
        "unknown field `auditor`",
    );
}

#[test]
fn unknown_people_are_refused_where_they_are_named() {
    assert_refused(
        "people = [\"alice\", \"bob\"]",
        "people = [\"alice\", \"dave\"]",
        "\"dave\"",
        "unknown person `dave` in approvers",
    );
    assert_refused(
        "requesters = [\"alice\", \"bob\"]",
        "requesters = [\"alice\", \"erin\"]",
        "\"erin\"",
        "unknown person `erin` in requesters",
    );
    assert_refused(
        "auditors = [\"carol\"]",
        "auditors = [\"mallory\"]",
        "\"mallory\"",
        "unknown person `mallory` in auditors",
    );
}

#[test]
fn duplicates_are_refused_on_the_second_occurrence() {
    assert_refused(
        "name = \"db_access\"",
        "name = \"infra_access\"\n# dup",
        "name = \"infra_access\"\n# dup",
        "duplicate flow `infra_access`",
    );
    assert_refused(
        "name = \"carol\"",
        "name = \"alice\"\n# dup",
        "name = \"alice\"\n# dup",
        "duplicate person `alice`",
    );
    assert_refused(
        "iam_user = \"bob.smith\"",
        "iam_user = \"alice\"\n# dup",
        "iam_user = \"alice\"\n# dup",
        "IAM user `alice` belongs to two people",
    );
    assert_refused(
        "slack_id = \"U0CAROL\"",
        "slack_id = \"U0BOB\"\n# dup",
        "slack_id = \"U0BOB\"\n# dup",
        "Slack user id `U0BOB` belongs to two people",
    );
    assert_refused(
        "name = \"write\"",
        "name = \"read\"\n# dup",
        "name = \"read\"\n# dup",
        "duplicate target `read` in flow `db_access`",
    );
}

#[test]
fn an_email_shared_by_two_people_is_refused() {
    // Assumed-role sessions are matched by email, ignoring case: a shared email would let one
    // person act as the other.
    assert_refused(
        "email = \"carol@example.com\"",
        "email = \"bob.smith@example.com\"",
        "email = \"bob.smith@example.com\"",
        "email `bob.smith@example.com` belongs to two people",
    );
}

#[test]
fn people_need_every_field_and_a_real_email() {
    assert_refused(
        "iam_user = \"carol\"",
        "iam_user = \"  \"",
        "iam_user = \"  \"",
        "person iam_user must not be empty",
    );
    assert_refused(
        "email = \"carol@example.com\"",
        "email = \"carol\"",
        "email = \"carol\"",
        "`carol` is not an email address",
    );
    assert_refused(
        "email = \"carol@example.com\"\n",
        "",
        "[[people]]\nname = \"carol\"",
        "missing field `email`",
    );
}

#[test]
fn durations_must_be_real_positive_and_within_the_cap() {
    assert_refused(
        "max_duration = \"4h\"",
        "max_duration = \"0s\"",
        "max_duration = \"0s\"",
        "max_duration must be longer than zero",
    );
    assert_refused(
        "max_duration = \"4h\"",
        "max_duration = \"forever\"",
        "max_duration = \"forever\"",
        "max_duration: `forever` is not a duration",
    );
    assert_refused(
        "pending_timeout = \"30m\"",
        "pending_timeout = \"0m\"",
        "pending_timeout = \"0m\"",
        "pending_timeout must be longer than zero",
    );
    assert_refused(
        "durations = [\"15m\", \"1h\"]",
        "durations = [\"15m\", \"1 hour-ish\"]",
        "durations = [\"15m\", \"1 hour-ish\"]",
        "durations: `1 hour-ish` is not a duration",
    );
    assert_refused(
        "durations = [\"15m\", \"1h\"]",
        "durations = [\"0s\", \"1h\"]",
        "durations = [\"0s\"",
        "durations must be longer than zero",
    );
    assert_refused(
        "durations = [\"15m\", \"1h\"]",
        "durations = []",
        "[[flows]]\nname = \"db_access\"",
        "durations must not be empty",
    );
}

#[test]
fn absurd_durations_are_refused_before_they_can_overflow_a_date() {
    assert_refused(
        "max_duration = \"4h\"",
        "max_duration = \"1000000y\"",
        "max_duration = \"1000000y\"",
        "max_duration must be at most 30d",
    );
    assert_refused(
        "pending_timeout = \"30m\"",
        "pending_timeout = \"31d\"",
        "pending_timeout = \"31d\"",
        "pending_timeout must be at most 30d",
    );
}

#[test]
fn a_listed_duration_over_the_cap_is_refused() {
    // The entry over the cap is named, wherever it is in the list and on whatever line.
    assert_refused(
        "pending_timeout = \"30m\"",
        "durations = [\"1h\",\n  \"8h\"]",
        "\"8h\"",
        "duration 8h is over max_duration 4h",
    );
    assert_refused(
        "pending_timeout = \"30m\"",
        "durations = [\"5h\", \"1h\"]",
        "durations = [\"5h\"",
        "duration 5h is over max_duration 4h",
    );
    // Equal to the cap is fine.
    let text = config_with("pending_timeout = \"30m\"", "durations = [\"1h\", \"4h\"]");
    let config = Config::parse(&text).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().allowed_durations,
        Some(vec![mins(60), mins(240)])
    );
}

#[test]
fn a_flow_needs_a_cap() {
    assert_refused(
        "max_duration = \"4h\"\n",
        "",
        "[[flows]]\nname = \"infra_access\"",
        "flow `infra_access` needs max_duration or durations",
    );
}

#[test]
fn a_flow_needs_targets_and_each_target_its_settings() {
    assert_refused(
        "\n[[flows.targets]]\nname = \"admins\"\ntype = \"iam_group\"\ngroup = \"SymDemoAdmins\"\n",
        "",
        "[[flows]]\nname = \"infra_access\"",
        "flow `infra_access` has no targets",
    );
    assert_refused(
        "group = \"SymDemoAdmins\"\n",
        "",
        "type = \"iam_group\"",
        "target `admins` of type iam_group needs `group`",
    );
    assert_refused(
        "group = \"SymDemoAdmins\"",
        "group = \" \"",
        "group = \" \"",
        "group must name an IAM group",
    );
    assert_refused(
        "group = \"SymDemoAdmins\"",
        "group = \"SymDemoAdmins\"\nfunction_arn = \"arn:aws:lambda:eu-west-1:1:function:x\"",
        "type = \"iam_group\"",
        "takes no function_arn",
    );
    assert_refused(
        "type = \"iam_group\"",
        "type = \"iam_role\"",
        "type = \"iam_role\"",
        "unknown target type `iam_role` (expected iam_group, lambda or sso_permission_set)",
    );
    assert_refused(
        "name = \"admins\"",
        "name = \"\"",
        "name = \"\"",
        "target name must not be empty",
    );
}

#[test]
fn lambda_targets_need_a_lambda_function_arn() {
    let write_arn = "function_arn = \"arn:aws:lambda:eu-west-1:123456789012:function:db-write\"";
    for bad in ["db-write", "arn:aws:s3:::db-write", "lambda:db-write"] {
        let to = format!("function_arn = \"{bad}\"");
        assert_refused(
            write_arn,
            &to,
            &to,
            &format!("`{bad}` is not a Lambda function ARN"),
        );
    }
    assert_refused(
        write_arn,
        "# no function_arn",
        "type = \"lambda\"\n# no function_arn",
        "target `write` of type lambda needs `function_arn`",
    );
}

#[test]
fn approvers_must_exist_and_be_able_to_approve() {
    assert_refused(
        "people = [\"alice\", \"bob\"]",
        "people = []",
        "[flows.approvers]\nchannel = \"C0APPROVALS\"",
        "flow `infra_access` has no approvers",
    );
    assert_refused(
        "channel = \"C0APPROVALS\"",
        "channel = \"\"",
        "channel = \"\"",
        "approvers.channel must name a Slack channel id",
    );
    assert_refused(
        "channel = \"C0APPROVALS\"\n",
        "",
        "[flows.approvers]\npeople = [\"alice\", \"bob\"]",
        "missing field `channel`",
    );
}

#[test]
fn a_requester_nobody_else_can_approve_is_refused_when_self_approval_is_off() {
    // Everyone may request infra_access; with alice the only approver, alice would be stuck.
    assert_refused(
        "people = [\"alice\", \"bob\"]",
        "people = [\"alice\"]\n# only alice",
        "[flows.approvers]\nchannel = \"C0APPROVALS\"",
        "flow `infra_access`: nobody but `alice` can approve `alice`'s requests and self-approval is off",
    );
    // Same flow, but alice may not request it: bob's and carol's requests go to alice.
    let text = config_with(
        "pending_timeout = \"30m\"",
        "pending_timeout = \"30m\"\nrequesters = [\"bob\", \"carol\"]",
    )
    .replacen("people = [\"alice\", \"bob\"]", "people = [\"alice\"]", 1);
    let config = Config::parse(&text).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().approvers.people,
        ["alice"]
    );

    // db_access has a single approver who is also a requester: fine only with self-approval on.
    assert_refused(
        "allow_self_approval = true",
        "allow_self_approval = false",
        "[flows.approvers]\nchannel = \"C0DB\"",
        "nobody but `alice` can approve `alice`'s requests",
    );
}

#[test]
fn flow_names_must_be_simple_words() {
    assert_refused(
        "name = \"db_access\"",
        "name = \"db access\"",
        "name = \"db access\"",
        "flow name `db access` must be letters, digits, `_` or `-`",
    );
}

#[test]
fn a_file_without_flows_is_refused() {
    let people_only = &CONFIG[..CONFIG.find("[[flows]]").unwrap()];
    let err = refused(people_only);
    assert_eq!(err.line, 1);
    assert!(err.message.contains("no flows defined"), "{}", err.message);
    let err = refused("");
    assert!(err.message.contains("no flows defined"), "{}", err.message);
}

/// [`CONFIG`] with an `[identity]` section made of `section`.
fn with_identity(section: &str) -> String {
    config_with(
        "auditors = [\"carol\"]\n",
        &format!("auditors = [\"carol\"]\n\n[identity]\n{section}\n"),
    )
}

#[test]
fn an_identity_section_parses() {
    let config = Config::parse(&with_identity(
        r#"accounts = ["123456789012", "210987654321"]
iam_users = false
trusted_roles = ["AWSReservedSSO_*", "Engineer"]"#,
    ))
    .unwrap();
    assert_eq!(
        config.identity,
        Identity {
            accounts: Some(vec!["123456789012".into(), "210987654321".into()]),
            iam_users: false,
            trusted_roles: vec!["AWSReservedSSO_*".into(), "Engineer".into()],
        }
    );
}

#[test]
fn identity_accounts_must_be_account_ids() {
    assert_refused(
        "auditors = [\"carol\"]\n",
        "auditors = [\"carol\"]\n\n[identity]\naccounts = [\"123456789012\", \"12345\"]\n",
        "\"12345\"",
        "`12345` is not an AWS account id",
    );
}

#[test]
fn trusting_every_role_is_refused() {
    assert_refused(
        "auditors = [\"carol\"]\n",
        "auditors = [\"carol\"]\n\n[identity]\ntrusted_roles = [\"Engineer\", \"*\"]\n",
        "\"*\"",
        "trusted_roles entry `*`",
    );
    for every in [r#"trusted_roles = ["*"]"#, r#"trusted_roles = ["**"]"#] {
        let err = refused(&with_identity(every));
        assert!(err.message.contains("trusts every role"), "{}", err.message);
    }
    assert_refused(
        "auditors = [\"carol\"]\n",
        "auditors = [\"carol\"]\n\n[identity]\ntrusted_roles = [\"arn:aws:iam::123456789012:role/Engineer\"]\n",
        "\"arn:aws:iam",
        "must be a role name",
    );
}

#[test]
fn a_persons_name_may_not_be_anothers_email() {
    // Sessions of trusted roles match a name first, then an email: carol named like bob's
    // email would make bob's session hers.
    assert_refused(
        "name = \"carol\"",
        "name = \"bob.smith@example.com\"",
        "name = \"bob.smith@example.com\"",
        "person name `bob.smith@example.com` is another person's email",
    );
}

#[test]
fn standing_members_belong_to_flows_with_an_iam_group() {
    let config = Config::parse(&config_with(
        "pending_timeout = \"30m\"\n",
        "pending_timeout = \"30m\"\nstanding_members = [\"breakglass\"]\n",
    ))
    .unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().standing_members,
        ["breakglass"]
    );
    assert!(config
        .flow("db_access")
        .unwrap()
        .standing_members
        .is_empty());

    // db_access grants through Lambda targets only: there is no group to be a member of.
    assert_refused(
        "requesters = [\"alice\", \"bob\"]\n",
        "requesters = [\"alice\", \"bob\"]\nstanding_members = [\"breakglass\"]\n",
        "\"breakglass\"",
        "flow `db_access` has no iam_group or sso_permission_set target for standing_members",
    );
}

mod principals {
    use super::*;
    use elevate_core::IdentityError;

    /// The account the API runs in.
    const API_ACCOUNT: &str = "123456789012";

    /// [`CONFIG`] trusting the session names of IAM Identity Center roles and of `Engineer`.
    fn trusting() -> Config {
        Config::parse(&with_identity(
            r#"trusted_roles = ["AWSReservedSSO_*", "Engineer"]"#,
        ))
        .unwrap()
    }

    fn caller_in(config: &Config, arn: &str) -> Result<String, IdentityError> {
        config
            .caller(Some(arn), Some(API_ACCOUNT))
            .map(|p| p.name.to_string())
    }

    fn name_of(arn: &str) -> Result<String, IdentityError> {
        caller_in(&trusting(), arn)
    }

    fn ok(name: &str) -> Result<String, IdentityError> {
        Ok(name.to_owned())
    }

    #[test]
    fn iam_users_are_found_by_their_iam_user_name() {
        assert_eq!(name_of("arn:aws:iam::123456789012:user/alice"), ok("alice"));
        assert_eq!(
            name_of("arn:aws:iam::123456789012:user/engineering/oncall/bob.smith"),
            ok("bob")
        );
        assert_eq!(
            name_of("arn:aws-us-gov:iam::123456789012:user/carol"),
            ok("carol")
        );
        // The IAM user name is what counts, not the person's name.
        assert_eq!(
            name_of("arn:aws:iam::123456789012:user/bob"),
            Err(IdentityError::UnknownIamUser { user: "bob".into() })
        );
        // IAM users need no [identity] section.
        assert_eq!(
            caller_in(
                &Config::parse(CONFIG).unwrap(),
                "arn:aws:iam::123456789012:user/alice"
            ),
            ok("alice")
        );
    }

    #[test]
    fn sessions_of_trusted_roles_are_found_by_session_name_or_email() {
        assert_eq!(
            name_of("arn:aws:sts::123456789012:assumed-role/Engineer/alice"),
            ok("alice")
        );
        assert_eq!(
            name_of("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/bob.smith@example.com"),
            ok("bob")
        );
        assert_eq!(
            name_of("arn:aws:sts::123456789012:assumed-role/Engineer/carol@example.com"),
            ok("carol")
        );
        assert_eq!(
            name_of("arn:aws:sts::123456789012:assumed-role/Engineer/dave"),
            Err(IdentityError::UnknownSession {
                role: "Engineer".into(),
                session: "dave".into()
            })
        );
    }

    #[test]
    fn sessions_of_other_roles_are_refused() {
        // Whoever assumes an ordinary role picks its session name: `alice` proves nothing.
        for (arn, role) in [
            (
                "arn:aws:sts::123456789012:assumed-role/Developer/alice",
                "Developer",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/Engineers/alice",
                "Engineers",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/NotAWSReservedSSO_Admin/alice",
                "NotAWSReservedSSO_Admin",
            ),
        ] {
            assert_eq!(
                name_of(arn),
                Err(IdentityError::UntrustedRole {
                    role: role.into(),
                    session: "alice".into()
                }),
                "{arn}"
            );
        }
        // Without [identity], no role is trusted.
        assert_eq!(
            caller_in(
                &Config::parse(CONFIG).unwrap(),
                "arn:aws:sts::123456789012:assumed-role/Engineer/alice"
            ),
            Err(IdentityError::UntrustedRole {
                role: "Engineer".into(),
                session: "alice".into()
            })
        );
    }

    #[test]
    fn principals_of_other_accounts_are_refused() {
        for arn in [
            "arn:aws:iam::999999999999:user/alice",
            "arn:aws:sts::999999999999:assumed-role/Engineer/alice",
        ] {
            assert_eq!(
                name_of(arn),
                Err(IdentityError::ForeignAccount {
                    arn: arn.into(),
                    account: "999999999999".into(),
                    allowed: API_ACCOUNT.into()
                }),
                "{arn}"
            );
        }
        // Not knowing the API's account, nothing is of it.
        assert!(matches!(
            trusting().caller(Some("arn:aws:iam::123456789012:user/alice"), None),
            Err(IdentityError::ForeignAccount { .. })
        ));
    }

    #[test]
    fn principals_of_every_listed_account_are_accepted() {
        let config = Config::parse(&with_identity(
            r#"accounts = ["123456789012", "210987654321"]"#,
        ))
        .unwrap();
        assert_eq!(
            caller_in(&config, "arn:aws:iam::210987654321:user/alice"),
            ok("alice")
        );
        assert_eq!(
            caller_in(&config, "arn:aws:iam::123456789012:user/bob.smith"),
            ok("bob")
        );
        assert_eq!(
            caller_in(&config, "arn:aws:iam::999999999999:user/alice"),
            Err(IdentityError::ForeignAccount {
                arn: "arn:aws:iam::999999999999:user/alice".into(),
                account: "999999999999".into(),
                allowed: "123456789012, 210987654321".into()
            })
        );
    }

    #[test]
    fn iam_users_can_be_turned_off() {
        let config = Config::parse(&with_identity(
            "iam_users = false\ntrusted_roles = [\"AWSReservedSSO_*\"]",
        ))
        .unwrap();
        assert_eq!(
            caller_in(&config, "arn:aws:iam::123456789012:user/alice"),
            Err(IdentityError::IamUsersOff {
                arn: "arn:aws:iam::123456789012:user/alice".into()
            })
        );
        assert_eq!(
            caller_in(
                &config,
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com"
            ),
            ok("alice")
        );
    }

    #[test]
    fn anything_else_is_nobody() {
        for junk in [
            "alice",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:role/alice",
            "arn:aws:iam::123456789012:group/alice",
            "arn:aws:sts::123456789012:federated-user/alice",
            "arn:aws:sts::123456789012:assumed-role/alice",
            "arn:aws:s3:::alice",
            "arn:aws:iam::123456789012",
            "urn:aws:iam::123456789012:user/alice",
        ] {
            assert_eq!(
                name_of(junk),
                Err(IdentityError::NotAPrincipal(junk.into())),
                "{junk:?}"
            );
        }
        let config = trusting();
        assert_eq!(
            config.caller(None, Some(API_ACCOUNT)),
            Err(IdentityError::NoPrincipal)
        );
        assert_eq!(
            config.caller(Some(""), Some(API_ACCOUNT)),
            Err(IdentityError::NoPrincipal)
        );
    }
}

#[test]
fn iam_group_targets_name_the_roles_whose_sessions_end_with_a_grant() {
    let with = |roles: &str| {
        Config::parse(&config_with(
            "group = \"SymDemoAdmins\"\n",
            &format!("group = \"SymDemoAdmins\"\nroles = {roles}\n"),
        ))
    };
    let config = with(r#"["SymDemoEscalated", "arn:aws:iam::123456789012:role/ops/Breakglass"]"#)
        .expect("valid roles");
    let TargetKind::IamGroup { roles, .. } = &config.flows[0].targets[0].kind else {
        panic!("iam_group");
    };
    assert_eq!(
        roles,
        &[
            "SymDemoEscalated",
            "arn:aws:iam::123456789012:role/ops/Breakglass"
        ]
    );
    for bad in [
        r#"["arn:aws:iam::123456789012:user/alice"]"#,
        r#"["arn:aws:s3:::bucket"]"#,
        r#"["has space"]"#,
        r#"["arn:aws:iam::12345:role/Short"]"#,
    ] {
        let err = with(bad).expect_err(bad);
        assert!(
            err.to_string().contains("not an IAM role name or role ARN"),
            "{bad}: {err}"
        );
    }
}

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6";
const PERMISSION_SET: &str =
    "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-a1b2c3d4e5f60718";

/// The base config with `[identity_center]` (unless `center` is empty) and a second flow
/// whose target is `target` (TOML lines of `[[flows.targets]]`).
fn with_permission_set(center: &str, target: &str) -> String {
    let section = if center.is_empty() {
        String::new()
    } else {
        format!("\n[identity_center]\n{center}\n")
    };
    config_with(
        "auditors = [\"carol\"]\n",
        &format!(
            "auditors = [\"carol\"]\n{section}\n[[flows]]\nname = \"prod_readonly\"\nmax_duration = \"1h\"\napprovers = {{ channel = \"C0PROD\", people = [\"bob\", \"carol\"] }}\n\n[[flows.targets]]\nname = \"readonly\"\n{target}\n"
        ),
    )
}

fn center() -> String {
    format!("instance_arn = \"{INSTANCE}\"\nidentity_store_id = \"d-9067a1b2c3\"")
}

fn permission_set_target(accounts: &str) -> String {
    format!("type = \"sso_permission_set\"\npermission_set_arn = \"{PERMISSION_SET}\"\naccounts = {accounts}")
}

#[test]
fn a_permission_set_target_parses_with_its_identity_center() {
    let text = with_permission_set(&center(), &permission_set_target("[\"111111111111\"]"));
    let config = Config::parse(&text).unwrap();
    let center = config.identity_center.clone().unwrap();
    assert_eq!(center.instance_arn, INSTANCE);
    assert_eq!(center.identity_store_id, "d-9067a1b2c3");
    let target = &config.flow("prod_readonly").unwrap().targets[0];
    assert_eq!(
        target.kind,
        TargetKind::SsoPermissionSet {
            permission_set_arn: PERMISSION_SET.into(),
            accounts: vec!["111111111111".into()],
            end_sessions: false,
        }
    );
    assert_eq!(target.kind.type_name(), "sso_permission_set");
    assert_eq!(
        target.kind.resource(),
        format!("{PERMISSION_SET} in 111111111111")
    );
    // Without any such target, the section may still be there (and is optional).
    assert_eq!(Config::parse(EXAMPLE).unwrap().identity_center, None);
}

#[test]
fn a_permission_set_target_is_refused_with_what_to_fix() {
    let target = permission_set_target("[\"111111111111\"]");
    let cases: Vec<(String, String, &str, String)> = vec![
        (
            String::new(),
            target.clone(),
            "type = \"sso_permission_set\"",
            "needs [identity_center] with instance_arn and identity_store_id".into(),
        ),
        (
            center().replace(INSTANCE, "arn:aws:sso:::instance/not-an-instance"),
            target.clone(),
            "instance_arn",
            "is not an IAM Identity Center instance ARN".into(),
        ),
        (
            center().replace("d-9067a1b2c3", "not a store"),
            target.clone(),
            "identity_store_id",
            "is not an Identity Store id".into(),
        ),
        (
            center(),
            target.replace(PERMISSION_SET, "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            "permission_set_arn",
            "is not a permission set ARN".into(),
        ),
        (
            center(),
            target.replace("ssoins-7223a1b2c3d4e5f6/", "ssoins-0000000000000000/"),
            "permission_set_arn",
            format!("is not of the [identity_center] instance {INSTANCE}"),
        ),
        (
            center(),
            permission_set_target("[\"1111\"]"),
            "accounts",
            "`1111` is not an AWS account id (12 digits)".into(),
        ),
        (
            center(),
            permission_set_target("[]"),
            "type = \"sso_permission_set\"",
            "lists no account; name at least one".into(),
        ),
        (
            center(),
            permission_set_target("[\"111111111111\", \"111111111111\"]"),
            "accounts",
            "account `111111111111` is listed twice".into(),
        ),
        (
            center(),
            "type = \"sso_permission_set\"\naccounts = [\"111111111111\"]".to_owned(),
            "type = \"sso_permission_set\"",
            "needs `permission_set_arn`".into(),
        ),
        (
            center(),
            format!("type = \"sso_permission_set\"\npermission_set_arn = \"{PERMISSION_SET}\""),
            "type = \"sso_permission_set\"",
            "needs `accounts`".into(),
        ),
        (
            center(),
            format!("{target}\ngroup = \"Admins\""),
            "type = \"sso_permission_set\"",
            "takes no group, roles or function_arn".into(),
        ),
        (
            center(),
            "type = \"iam_group\"\ngroup = \"Admins\"\naccounts = [\"111111111111\"]".into(),
            "type = \"iam_group\"\ngroup = \"Admins\"\naccounts",
            "takes no function_arn, permission_set_arn, accounts or end_sessions".into(),
        ),
    ];
    for (center, target, line_needle, message) in cases {
        let text = with_permission_set(&center, &target);
        let err = refused(&text);
        assert!(
            err.message.contains(&message),
            "expected `{message}`, got `{}`\n{text}",
            err.message
        );
        assert_eq!(
            err.line,
            line_of(&text, line_needle),
            "{}\n{text}",
            err.message
        );
    }
}

/// A flow `oncall` with `rules` (its requesters and approvers lines), after an
/// `[identity_center]` when `center` is set.
fn with_groups(with_center: bool, rules: &str) -> String {
    let section = if with_center {
        format!("\n[identity_center]\n{}\n", center())
    } else {
        String::new()
    };
    config_with(
        "auditors = [\"carol\"]\n",
        &format!(
            "auditors = [\"carol\"]\n{section}\n[[flows]]\nname = \"oncall\"\nmax_duration = \"1h\"\n{rules}\n\n[[flows.targets]]\nname = \"admins\"\ntype = \"iam_group\"\ngroup = \"SymDemoAdmins\"\n"
        ),
    )
}

#[test]
fn directory_groups_may_request_and_approve() {
    let approvers = "approvers = { channel = \"C0ONCALL\", groups = [\"Leads\"] }";
    for requesters in [
        "requesters.groups = [\"OnCall\", \"SRE\"]\nrequesters.people = [\"alice\"]",
        "requesters = { people = [\"alice\"], groups = [\"OnCall\", \"SRE\"] }",
    ] {
        let text = with_groups(true, &format!("{requesters}\n{approvers}"));
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let flow = config.flow("oncall").unwrap();
        assert_eq!(flow.requesters, Some(vec!["alice".into()]));
        assert_eq!(flow.requester_groups, ["OnCall", "SRE"]);
        assert!(flow.approvers.people.is_empty());
        assert_eq!(flow.approvers.groups, ["Leads"]);
    }
    // The list form is people only, as before.
    let text = with_groups(
        true,
        "requesters = [\"alice\"]\napprovers = { channel = \"C0ONCALL\", people = [\"bob\"] }",
    );
    let config = Config::parse(&text).unwrap();
    assert!(config.flow("oncall").unwrap().requester_groups.is_empty());
}

#[test]
fn directory_groups_are_refused_with_what_to_fix() {
    let approvers = "approvers = { channel = \"C0ONCALL\", people = [\"bob\"] }";
    let cases = [
        (
            with_groups(
                false,
                &format!("requesters.groups = [\"OnCall\"]\n{approvers}"),
            ),
            "requesters.groups = [\"OnCall\"]",
            "requesters.groups names Identity Store groups, which needs [identity_center]",
        ),
        (
            with_groups(
                false,
                "approvers = { channel = \"C0ONCALL\", groups = [\"Leads\"] }",
            ),
            "approvers = { channel = \"C0ONCALL\", groups",
            "approvers.groups names Identity Store groups, which needs [identity_center]",
        ),
        (
            with_groups(
                true,
                &format!("requesters.groups = [\"OnCall\", \"OnCall\"]\n{approvers}"),
            ),
            "requesters.groups",
            "group `OnCall` is listed twice",
        ),
        (
            with_groups(true, &format!("requesters.groups = [\" \"]\n{approvers}")),
            "requesters.groups",
            "is not a group name",
        ),
        (
            with_groups(true, &format!("requesters = {{}}\n{approvers}")),
            "name = \"oncall\"",
            "requesters is empty",
        ),
        (
            with_groups(true, &format!("requesters.teams = [\"x\"]\n{approvers}")),
            "requesters.teams",
            "unknown field `teams`",
        ),
        (
            with_groups(true, "approvers = { channel = \"C0ONCALL\" }"),
            "approvers = { channel",
            "has no approvers",
        ),
    ];
    for (text, line_needle, message) in cases {
        let err = refused(&text);
        assert!(
            err.message.contains(message),
            "expected `{message}`, got `{}`\n{text}",
            err.message
        );
        assert_eq!(err.line, line_of(&text, line_needle), "{text}");
    }
}

#[test]
fn a_requesters_group_member_nobody_else_may_approve_is_refused() {
    // Anyone of the file may be in OnCall: alice too, whom only alice approves.
    let text = with_groups(
        true,
        "requesters.groups = [\"OnCall\"]\napprovers = { channel = \"C0ONCALL\", people = [\"alice\"] }",
    );
    let err = refused(&text);
    assert!(
        err.message.contains("nobody but `alice` can approve"),
        "{}",
        err.message
    );
}
