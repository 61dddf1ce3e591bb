//! Workflow rules without the service: `approvals_required` and `[[flows.auto_approve]]` as
//! elevate.toml states them, the weekly windows of the rules on a local clock, and the state
//! machine's edges for several approvals, approval by a rule and extensions.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc, Weekday};
use common::*;
use elevate_core::{
    apply, open, verify_chain, Action, Actor, AutoApproval, Command, Config, ConfigError,
    PersonName, Request, State, TargetName, TransitionError, Window,
};

fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn refused(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(err) => err,
    }
}

/// The base config with `approvals_required = <n>` (and `extra` lines) on `infra_access`.
fn with_approvals(n: &str, extra: &str) -> String {
    config_with(
        "pending_timeout = \"30m\"",
        &format!("pending_timeout = \"30m\"\napprovals_required = {n}\n{extra}"),
    )
}

/// The base config with `rules` (TOML) appended to flow `infra_access`.
fn with_rules(rules: &str) -> String {
    config_with(
        "[[flows]]\nname = \"db_access\"",
        &format!("{rules}\n[[flows]]\nname = \"db_access\""),
    )
}

/// A rule named `office` approving alice on infra_access, with `lines` added.
fn office(lines: &str) -> String {
    with_rules(&format!(
        "[[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"alice\"]\n{lines}\n"
    ))
}

/// Asserts `text` is refused on the line of `line_needle` with a message containing `message`.
fn assert_refused_at(text: &str, line_needle: &str, message: &str) {
    let err = refused(text);
    assert!(
        err.message.contains(message),
        "expected a message containing `{message}`, got `{}`",
        err.message
    );
    assert_eq!(
        err.line,
        line_of(text, line_needle),
        "wrong line for `{}`",
        err.message
    );
}

// ---------------------------------------------------------------------------------------
// approvals_required
// ---------------------------------------------------------------------------------------

#[test]
fn approvals_required_defaults_to_one() {
    let config = Config::parse(CONFIG).unwrap();
    assert!(config.flows.iter().all(|f| f.approvals_required == 1));
    assert!(config.flows.iter().all(|f| f.auto_approve.is_empty()));
    let config = Config::parse(&with_approvals("1", "")).unwrap();
    assert_eq!(config.flow("infra_access").unwrap().approvals_required, 1);
}

#[test]
fn approvals_required_counts_distinct_approvers_there_are() {
    let text = with_approvals("2", "").replacen(
        "people = [\"alice\", \"bob\"]",
        "people = [\"alice\", \"bob\", \"carol\"]",
        1,
    );
    let config = Config::parse(&text).unwrap();
    let flow = config.flow("infra_access").unwrap();
    assert_eq!(flow.approvals_required, 2);
    let new = flow
        .check_request(
            config.person("alice").unwrap(),
            None,
            None,
            mins(60),
            "INC-1",
        )
        .unwrap();
    assert_eq!(new.approvals_required, 2, "the request records it");
}

#[test]
fn zero_approvals_are_refused() {
    let text = with_approvals("0", "");
    assert_refused_at(
        &text,
        "approvals_required = 0",
        "approvals_required must be at least 1",
    );
}

#[test]
fn several_approvals_do_not_go_with_self_approval() {
    let text = with_approvals("2", "allow_self_approval = true").replacen(
        "people = [\"alice\", \"bob\"]",
        "people = [\"alice\", \"bob\", \"carol\"]",
        1,
    );
    assert_refused_at(&text, "approvals_required = 2", "allow_self_approval");
}

#[test]
fn more_approvals_than_there_are_other_approvers_are_refused() {
    // alice's requests have only bob to approve them.
    let text = with_approvals("2", "");
    assert_refused_at(
        &text,
        "approvals_required = 2",
        "some requesters have only 1 other approvers",
    );
    // Three approvers: each requester has two others, not three.
    let text = with_approvals("3", "").replacen(
        "people = [\"alice\", \"bob\"]",
        "people = [\"alice\", \"bob\", \"carol\"]",
        1,
    );
    assert_refused_at(&text, "approvals_required = 3", "approvals_required = 3");
}

#[test]
fn approvals_required_must_be_a_whole_number() {
    for n in ["-1", "\"2\"", "1.5"] {
        let err = refused(&with_approvals(n, ""));
        assert_eq!(
            err.line,
            line_of(&with_approvals(n, ""), &format!("approvals_required = {n}")),
            "{n}: {}",
            err.message
        );
    }
}

// ---------------------------------------------------------------------------------------
// [[flows.auto_approve]]
// ---------------------------------------------------------------------------------------

#[test]
fn a_rule_parses_into_its_conditions() {
    let text = office(
        "max_duration = \"30m\"\ntargets = [\"admins\"]\n\
         days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\nhours = \"09:00-17:00\"\n\
         time_zone = \"Europe/Berlin\"",
    );
    let config = Config::parse(&text).unwrap();
    let rules = &config.flow("infra_access").unwrap().auto_approve;
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule.name, "office");
    assert_eq!(rule.people, [PersonName::new("alice")]);
    assert!(rule.groups.is_empty());
    assert_eq!(rule.max_duration, Some(mins(30)));
    assert_eq!(rule.targets, [TargetName::from("admins")]);
    let window = rule.window.as_ref().unwrap();
    assert_eq!(
        window.days,
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri
        ]
    );
    assert_eq!((window.from_minute, window.to_minute), (9 * 60, 17 * 60));
    assert_eq!(window.time_zone, chrono_tz::Europe::Berlin);
}

#[test]
fn a_rule_without_a_window_approves_at_any_time_and_days_alone_mean_all_day() {
    let config = Config::parse(&office("")).unwrap();
    let rule = &config.flow("infra_access").unwrap().auto_approve[0];
    assert_eq!(rule.window, None);
    assert_eq!(rule.max_duration, None);
    assert!(rule.targets.is_empty());

    let config = Config::parse(&office("days = [\"sun\", \"sat\"]")).unwrap();
    let window = config.flow("infra_access").unwrap().auto_approve[0]
        .window
        .clone()
        .unwrap();
    assert_eq!(window.days, [Weekday::Sat, Weekday::Sun], "Monday first");
    assert_eq!((window.from_minute, window.to_minute), (0, 24 * 60));
    assert_eq!(window.time_zone, chrono_tz::Tz::UTC);

    let config = Config::parse(&office("hours = \"18:00-24:00\"")).unwrap();
    let window = config.flow("infra_access").unwrap().auto_approve[0]
        .window
        .clone()
        .unwrap();
    assert_eq!(window.days.len(), 7);
    assert_eq!((window.from_minute, window.to_minute), (18 * 60, 24 * 60));
}

#[test]
fn a_rule_may_name_requesters_as_a_table() {
    let text = with_rules(
        "[[flows.auto_approve]]\nname = \"office\"\nrequesters = { people = [\"alice\", \"carol\"] }\n",
    );
    let config = Config::parse(&text).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().auto_approve[0].people,
        [PersonName::new("alice"), PersonName::new("carol")]
    );
}

#[test]
fn a_rule_must_name_its_requesters() {
    for requesters in ["", "requesters = []", "requesters = { people = [] }"] {
        let text = with_rules(&format!(
            "[[flows.auto_approve]]\nname = \"office\"\n{requesters}\n"
        ));
        assert_refused_at(&text, "name = \"office\"", "must name its requesters");
    }
}

#[test]
fn a_rules_requesters_must_be_people_of_the_file() {
    let text = with_rules(
        "[[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"alice\", \"zed\"]\n",
    );
    assert_refused_at(&text, "\"zed\"", "unknown person `zed` in auto_approve");
}

#[test]
fn a_rules_groups_need_an_identity_center() {
    let text = with_rules(
        "[[flows.auto_approve]]\nname = \"office\"\nrequesters = { groups = [\"OnCall\"] }\n",
    );
    assert_refused_at(&text, "\"OnCall\"", "[identity_center]");
}

#[test]
fn a_rule_names_only_targets_of_its_flow() {
    let text = office("targets = [\"admins\", \"read\"]");
    assert_refused_at(
        &text,
        "targets = [\"admins\", \"read\"]",
        "names target `read`, which the flow does not have",
    );
}

#[test]
fn a_rules_max_duration_is_within_the_flows() {
    let text = office("max_duration = \"5h\"");
    assert_refused_at(&text, "max_duration = \"5h\"", "at most the flow's 4h");
    let text = office("max_duration = \"0s\"");
    assert_refused_at(&text, "max_duration = \"0s\"", "longer than zero");
    let text = office("max_duration = \"soon\"");
    assert_refused_at(&text, "max_duration = \"soon\"", "max_duration");
    // Exactly the flow's cap is fine.
    Config::parse(&office("max_duration = \"4h\"")).unwrap();
}

#[test]
fn a_rules_hours_are_a_window_within_one_day() {
    for hours in [
        "17:00-09:00",
        "09:00-09:00",
        "9-17",
        "09:00",
        "09:00-25:00",
        "09:60-10:00",
        "24:30-24:45",
        "",
    ] {
        let text = office(&format!("hours = \"{hours}\""));
        assert_refused_at(
            &text,
            &format!("hours = \"{hours}\""),
            "must be HH:MM-HH:MM",
        );
    }
}

#[test]
fn a_rules_days_are_day_names_each_once() {
    let text = office("days = [\"mon\", \"monday\"]");
    assert_refused_at(&text, "\"monday\"", "`monday` is not a day");
    let text = office("days = [\"mon\", \"tue\", \"Mon\"]");
    assert_refused_at(&text, "\"Mon\"", "listed twice");
    let text = office("days = []");
    assert_refused_at(&text, "name = \"office\"", "days is empty");
    // Case does not matter.
    let config = Config::parse(&office("days = [\"MON\", \"Fri\"]")).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().auto_approve[0]
            .window
            .as_ref()
            .unwrap()
            .days,
        [Weekday::Mon, Weekday::Fri]
    );
}

#[test]
fn a_rules_time_zone_is_an_iana_zone_with_a_window() {
    let text = office("hours = \"09:00-17:00\"\ntime_zone = \"Mars/Olympus\"");
    assert_refused_at(
        &text,
        "time_zone = \"Mars/Olympus\"",
        "is not an IANA time zone",
    );
    let text = office("hours = \"09:00-17:00\"\ntime_zone = \"CEST+2\"");
    assert_refused_at(&text, "time_zone = \"CEST+2\"", "is not an IANA time zone");
    let text = office("time_zone = \"Europe/Berlin\"");
    assert_refused_at(
        &text,
        "time_zone = \"Europe/Berlin\"",
        "time_zone goes with days or hours",
    );
}

#[test]
fn rule_names_are_simple_words_once_per_flow() {
    let text = with_rules(
        "[[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"alice\"]\n\n\
         [[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"bob\"]\n",
    );
    let err = refused(&text);
    assert!(
        err.message
            .contains("two auto_approve rules are named `office`"),
        "{}",
        err.message
    );

    let text =
        with_rules("[[flows.auto_approve]]\nname = \"office hours\"\nrequesters = [\"alice\"]\n");
    assert_refused_at(&text, "name = \"office hours\"", "must be letters, digits");

    // The same name in two flows is fine.
    let text = with_rules("[[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"alice\"]\n")
        .replacen(
            "requesters = [\"alice\", \"bob\"]",
            "requesters = [\"alice\", \"bob\"]\n\n[[flows.auto_approve]]\nname = \"office\"\nrequesters = [\"alice\"]",
            1,
        );
    let config = Config::parse(&text).unwrap();
    assert_eq!(config.flow("db_access").unwrap().auto_approve.len(), 1);
    assert_eq!(config.flow("infra_access").unwrap().auto_approve.len(), 1);
}

#[test]
fn a_rule_refuses_unknown_settings() {
    let text = office("approve_everyone = true");
    let err = refused(&text);
    assert!(err.message.contains("approve_everyone"), "{}", err.message);
}

// ---------------------------------------------------------------------------------------
// Windows and rules
// ---------------------------------------------------------------------------------------

fn berlin_weekdays(hours: (u32, u32)) -> Window {
    Window {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        from_minute: hours.0 * 60,
        to_minute: hours.1 * 60,
        time_zone: chrono_tz::Europe::Berlin,
    }
}

fn assert_window(window: &Window, cases: &[(&str, bool)]) {
    for (at, inside) in cases {
        assert_eq!(
            window.contains(utc(at)),
            *inside,
            "{at} should be {} {}",
            if *inside { "inside" } else { "outside" },
            window.describe()
        );
    }
}

#[test]
fn a_window_follows_berlin_into_summer_time() {
    // Summer time starts on Sunday 2026-03-29: Berlin is UTC+1 before, UTC+2 after.
    assert_window(
        &berlin_weekdays((9, 17)),
        &[
            // Friday 2026-03-27, CET.
            ("2026-03-27T07:59:00Z", false),
            ("2026-03-27T08:00:00Z", true),
            ("2026-03-27T15:59:00Z", true),
            ("2026-03-27T16:00:00Z", false),
            // Monday 2026-03-30, CEST: the same local hours are an hour earlier in UTC.
            ("2026-03-30T06:59:00Z", false),
            ("2026-03-30T07:00:00Z", true),
            ("2026-03-30T14:59:00Z", true),
            ("2026-03-30T15:00:00Z", false),
            ("2026-03-30T15:30:00Z", false),
        ],
    );
}

#[test]
fn a_window_follows_berlin_back_to_winter_time() {
    // Summer time ends on Sunday 2026-10-25.
    assert_window(
        &berlin_weekdays((9, 17)),
        &[
            ("2026-10-23T06:59:00Z", false),
            ("2026-10-23T07:00:00Z", true),
            ("2026-10-23T15:00:00Z", false),
            ("2026-10-26T07:30:00Z", false),
            ("2026-10-26T08:00:00Z", true),
            ("2026-10-26T15:59:00Z", true),
            ("2026-10-26T16:00:00Z", false),
        ],
    );
}

#[test]
fn a_window_on_the_nights_the_clocks_change() {
    let sunday = |from: u32, to: u32| Window {
        days: vec![Weekday::Sun],
        from_minute: from * 60,
        to_minute: to * 60,
        time_zone: chrono_tz::Europe::Berlin,
    };
    // 02:00-03:00 does not exist on 2026-03-29 in Berlin.
    assert_window(
        &sunday(2, 3),
        &[
            ("2026-03-29T00:59:00Z", false),
            ("2026-03-29T01:00:00Z", false),
            ("2026-03-29T01:30:00Z", false),
        ],
    );
    // 01:00-04:00 local is two hours of real time that night.
    assert_window(
        &sunday(1, 4),
        &[
            ("2026-03-28T23:59:00Z", false),
            ("2026-03-29T00:00:00Z", true),
            ("2026-03-29T01:59:00Z", true),
            ("2026-03-29T02:00:00Z", false),
        ],
    );
    // 02:00-03:00 local happens twice on 2026-10-25: both count.
    assert_window(
        &sunday(2, 3),
        &[
            ("2026-10-24T23:59:00Z", false),
            ("2026-10-25T00:00:00Z", true),
            ("2026-10-25T00:59:00Z", true),
            ("2026-10-25T01:00:00Z", true),
            ("2026-10-25T01:59:00Z", true),
            ("2026-10-25T02:00:00Z", false),
        ],
    );
}

#[test]
fn a_window_takes_the_day_from_the_local_clock() {
    let saturday = Window {
        days: vec![Weekday::Sat],
        from_minute: 0,
        to_minute: 24 * 60,
        time_zone: chrono_tz::Europe::Berlin,
    };
    assert_window(
        &saturday,
        &[
            // Friday 23:30 UTC is Saturday 00:30 in Berlin.
            ("2026-01-09T23:30:00Z", true),
            ("2026-01-09T22:59:00Z", false),
            // Saturday 23:30 UTC is Sunday in Berlin.
            ("2026-01-10T23:30:00Z", false),
            ("2026-01-10T22:59:00Z", true),
        ],
    );
}

fn rule(window: Option<Window>) -> AutoApproval {
    AutoApproval {
        name: "office".into(),
        people: vec![PersonName::new("alice")],
        groups: vec!["OnCall".into()],
        max_duration: Some(mins(30)),
        targets: vec![TargetName::from("admins")],
        window,
    }
}

#[test]
fn a_rule_approves_only_when_every_condition_holds() {
    let rule = rule(Some(berlin_weekdays((9, 17))));
    let monday_10 = utc("2026-01-05T09:00:00Z");
    let oncall = ["OnCall".to_owned()];
    assert!(rule.approves("alice", &[], "admins", mins(30), monday_10));
    assert!(rule.approves("bob", &oncall, "admins", mins(30), monday_10));
    assert!(!rule.approves("bob", &[], "admins", mins(30), monday_10));
    assert!(!rule.approves("bob", &["Leads".to_owned()], "admins", mins(30), monday_10));
    assert!(!rule.approves("alice", &[], "admins", mins(31), monday_10));
    assert!(!rule.approves("alice", &[], "db", mins(30), monday_10));
    assert!(!rule.approves(
        "alice",
        &[],
        "admins",
        mins(30),
        utc("2026-01-10T09:00:00Z")
    ));
}

#[test]
fn a_flow_asks_the_directory_only_for_groups_of_rules_that_do_not_name_the_person() {
    let text = with_rules(
        "[[flows.auto_approve]]\nname = \"short\"\nrequesters = [\"alice\"]\nmax_duration = \"30m\"\n\n\
         [[flows.auto_approve]]\nname = \"any\"\nrequesters = [\"carol\"]\n",
    );
    let config = Config::parse(&text).unwrap();
    let flow = config.flow("infra_access").unwrap();
    let now = utc("2026-01-05T09:00:00Z");
    assert_eq!(
        flow.auto_approval("alice", &[], "admins", mins(30), now)
            .map(|r| r.name.as_str()),
        Some("short")
    );
    assert!(flow
        .auto_approval("alice", &[], "admins", mins(60), now)
        .is_none());
    assert_eq!(
        flow.auto_approval("carol", &[], "admins", mins(240), now)
            .map(|r| r.name.as_str()),
        Some("any")
    );
    assert!(flow
        .auto_approval("bob", &[], "admins", mins(5), now)
        .is_none());
    assert!(flow.auto_approval_groups_to_ask("alice").is_empty());
}

#[test]
fn a_rule_describes_itself() {
    let office = rule(Some(berlin_weekdays((9, 17))));
    assert_eq!(
        office.describe(),
        "rule `office`: requester is alice or group OnCall, for at most 30m, target admins, \
         Mon-Fri 09:00-17:00 Europe/Berlin"
    );

    let bare = AutoApproval {
        name: "anytime".into(),
        people: vec![PersonName::new("alice"), PersonName::new("bob")],
        groups: Vec::new(),
        max_duration: None,
        targets: Vec::new(),
        window: None,
    };
    assert_eq!(bare.describe(), "rule `anytime`: requester is alice or bob");

    let weekend = Window {
        days: vec![Weekday::Sat, Weekday::Sun],
        from_minute: 0,
        to_minute: 24 * 60,
        time_zone: chrono_tz::Tz::UTC,
    };
    assert_eq!(weekend.describe(), "Sat, Sun 00:00-24:00 UTC");
    let every_day = Window {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ],
        from_minute: 9 * 60 + 30,
        to_minute: 17 * 60 + 45,
        time_zone: chrono_tz::America::New_York,
    };
    assert_eq!(
        every_day.describe(),
        "every day 09:30-17:45 America/New_York"
    );
    let scattered = Window {
        days: vec![Weekday::Mon, Weekday::Wed, Weekday::Fri],
        ..weekend
    };
    assert_eq!(scattered.describe(), "Mon, Wed, Fri 00:00-24:00 UTC");
}

#[test]
fn a_parsed_rule_describes_what_it_was_written_as() {
    let text = office(
        "max_duration = \"30m\"\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\n\
         hours = \"09:00-17:00\"\ntime_zone = \"Europe/Berlin\"",
    );
    let config = Config::parse(&text).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().auto_approve[0].describe(),
        "rule `office`: requester is alice, for at most 30m, Mon-Fri 09:00-17:00 Europe/Berlin"
    );
}

// ---------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------

/// A PENDING request (number `n`) that needs `required` approvals.
fn needing(n: u8, required: u32) -> (Request, Vec<elevate_core::AuditEvent>) {
    let mut new = new_request();
    new.approvals_required = required;
    let (request, event) = open(request_id(n), new, &principal_of(REQUESTER), at(0));
    (request, vec![event])
}

fn approvers(request: &Request) -> Vec<&str> {
    request.approvals.iter().map(|a| a.by.as_str()).collect()
}

#[test]
fn a_request_opened_with_no_approvals_required_needs_one() {
    let (request, _) = needing(1, 0);
    assert_eq!(request.approvals_required, 1);
    let approved = step((request, Vec::new()), approve(), &person(APPROVER), 60).0;
    assert_eq!(approved.state, State::Approved);
}

#[test]
fn an_approval_short_of_the_required_keeps_the_request_pending() {
    let (request, events) = step(needing(1, 2), approve(), &person("bob"), 60);
    assert_eq!(request.state, State::Pending);
    assert_eq!(approvers(&request), ["bob"]);
    assert_eq!(request.approvals[0].at, at(60));
    assert_eq!(request.decided_by, None);
    assert_eq!(request.decided_at, None);
    let event = events.last().unwrap();
    assert_eq!(event.action, Action::Approve);
    assert_eq!(
        (event.from, event.to),
        (Some(State::Pending), State::Pending)
    );
    assert_eq!(event.actor, person("bob"));
    assert_eq!(event.reason.as_deref(), Some("looks right"));

    // The same approver again is refused.
    let err = apply(&request, approve(), &by(&person("bob")), at(90)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::AlreadyApproved {
            person: "bob".into(),
            required: 2
        }
    );

    // Another approver makes it APPROVED.
    let (request, events) = step((request, events), approve(), &person("carol"), 120);
    assert_eq!(request.state, State::Approved);
    assert_eq!(approvers(&request), ["bob", "carol"]);
    assert_eq!(request.decided_by.as_deref(), Some("carol"));
    assert_eq!(request.decided_at, Some(at(120)));
    let event = events.last().unwrap();
    assert_eq!(
        (event.from, event.to),
        (Some(State::Pending), State::Approved)
    );
    verify_chain(&events, Some((request.audit_seq, &request.audit_head))).unwrap();
}

#[test]
fn three_approvals_take_three_people() {
    let mut trail = needing(1, 3);
    for (i, who) in ["bob", "carol"].into_iter().enumerate() {
        trail = step(trail, approve(), &person(who), 60 + i as i64);
        assert_eq!(trail.0.state, State::Pending);
    }
    let trail = step(trail, approve(), &person("dave"), 90);
    assert_eq!(trail.0.state, State::Approved);
    assert_eq!(approvers(&trail.0), ["bob", "carol", "dave"]);
}

#[test]
fn a_denial_after_a_partial_approval_denies() {
    let trail = step(needing(1, 2), approve(), &person("bob"), 60);
    let (request, _) = step(
        trail,
        Command::Deny {
            reason: Some("not during the freeze".into()),
        },
        &person("carol"),
        90,
    );
    assert_eq!(request.state, State::Denied);
    assert_eq!(request.decided_by.as_deref(), Some("carol"));
    assert!(!request.approved_automatically());
}

#[test]
fn an_auto_approval_rule_approves_at_once() {
    let rule = Actor::system("rule:office");
    let (request, events) = step(needing(1, 3), approve(), &rule, 0);
    assert_eq!(request.state, State::Approved);
    assert_eq!(request.decided_by.as_deref(), Some("elevate:rule:office"));
    assert!(request.approved_automatically());
    assert_eq!(approvers(&request), ["elevate:rule:office"]);
    let event = events.last().unwrap();
    assert_eq!(event.actor, rule);
    assert_eq!(
        (event.from, event.to),
        (Some(State::Pending), State::Approved)
    );

    // After a person's partial approval too.
    let trail = step(needing(2, 2), approve(), &person("bob"), 60);
    let (request, _) = step(trail, approve(), &rule, 61);
    assert_eq!(request.state, State::Approved);
    assert_eq!(approvers(&request), ["bob", "elevate:rule:office"]);
}

#[test]
fn other_parts_of_elevate_cannot_approve() {
    let (request, _) = needing(1, 1);
    for component in ["sweep", "escalate", "rules", "rulebook:x", "x:rule:office"] {
        let err = apply(&request, approve(), &by(&Actor::system(component)), at(60)).unwrap_err();
        assert_eq!(
            err,
            TransitionError::PersonOnly {
                action: Action::Approve
            },
            "{component}"
        );
    }
    // Nor may a rule deny or cancel.
    let rule = by(&Actor::system("rule:office"));
    let deny = Command::Deny { reason: None };
    assert!(matches!(
        apply(&request, deny, &rule, at(60)),
        Err(TransitionError::PersonOnly { .. })
    ));
    assert!(matches!(
        apply(&request, Command::Cancel, &rule, at(60)),
        Err(TransitionError::PersonOnly { .. })
    ));
}

#[test]
fn approvals_required_is_kept_when_stored_and_one_when_absent() {
    let (request, _) = needing(1, 2);
    let json = serde_json::to_value(&request).unwrap();
    assert_eq!(json["approvals_required"], 2);
    let back: Request = serde_json::from_value(json).unwrap();
    assert_eq!(back, request);

    let (request, _) = needing(2, 1);
    let mut json = serde_json::to_value(&request).unwrap();
    assert!(json.get("approvals_required").is_none(), "{json}");
    json.as_object_mut().unwrap().remove("approvals");
    let back: Request = serde_json::from_value(json).unwrap();
    assert_eq!(back.approvals_required, 1);
    assert!(back.approvals.is_empty());
}

/// An ACTIVE grant activated at `at(120)` for an hour: it expires at `at(3720)`.
fn active() -> (Request, Vec<elevate_core::AuditEvent>) {
    request_in(State::Active)
}

const EXPIRY: i64 = 120 + 3600;

fn ask_more(minutes: u64) -> Command {
    Command::AskExtension {
        by: mins(minutes),
        reason: "INC-42: still migrating".into(),
    }
}

#[test]
fn an_extension_is_asked_approved_and_moves_the_expiry() {
    let trail = step(active(), ask_more(30), &person(REQUESTER), 600);
    let asked = &trail.0;
    assert_eq!(asked.state, State::Active);
    let extension = asked.extension.as_ref().unwrap();
    assert_eq!(extension.by, mins(30));
    assert_eq!(extension.asked_at, at(600));
    assert_eq!(asked.expires_at, Some(at(EXPIRY)));
    let event = trail.1.last().unwrap();
    assert_eq!(event.action, Action::AskExtension);
    assert_eq!(event.extend_by, Some(1800));
    assert_eq!((event.from, event.to), (Some(State::Active), State::Active));

    let approve_more = Command::ApproveExtension { reason: None };
    let (request, events) = step(trail, approve_more, &person(APPROVER), 700);
    assert_eq!(request.state, State::Active);
    assert!(request.extension.is_none());
    assert_eq!(request.expires_at, Some(at(EXPIRY + 1800)));
    assert_eq!(request.duration, DURATION + mins(30));
    assert_eq!(request.extended, mins(30));
    let event = events.last().unwrap();
    assert_eq!(event.action, Action::Extend);
    assert_eq!(event.extend_by, Some(1800));
    verify_chain(&events, Some((request.audit_seq, &request.audit_head))).unwrap();

    // Expiry is due at the new time, not the old one.
    let err = apply(
        &request,
        Command::Expire,
        &by(&Actor::system("revoke")),
        at(EXPIRY),
    )
    .unwrap_err();
    assert_eq!(
        err,
        TransitionError::NotYetDue {
            action: Action::Expire,
            due: at(EXPIRY + 1800)
        }
    );
}

#[test]
fn an_extension_is_asked_by_the_requester_while_the_grant_runs_and_once_at_a_time() {
    let (request, _) = active();
    let err = apply(&request, ask_more(30), &by(&person(APPROVER)), at(600)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::NotRequester {
            action: Action::AskExtension
        }
    );
    let err = apply(&request, ask_more(30), &by(&system()), at(600)).unwrap_err();
    assert!(matches!(err, TransitionError::PersonOnly { .. }), "{err:?}");

    // At its expiry (the revocation not yet recorded) the grant is over.
    let err = apply(&request, ask_more(30), &by(&person(REQUESTER)), at(EXPIRY)).unwrap_err();
    assert_eq!(err, TransitionError::GrantOver { at: at(EXPIRY) });
    apply(
        &request,
        ask_more(30),
        &by(&person(REQUESTER)),
        at(EXPIRY - 1),
    )
    .unwrap();

    let trail = step(active(), ask_more(30), &person(REQUESTER), 600);
    let err = apply(&trail.0, ask_more(15), &by(&person(REQUESTER)), at(700)).unwrap_err();
    assert_eq!(err, TransitionError::ExtensionPending);

    // Only an ACTIVE grant.
    let (pending, _) = request_in(State::Pending);
    let err = apply(&pending, ask_more(30), &by(&person(REQUESTER)), at(60)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::NotAllowed {
            state: State::Pending,
            action: Action::AskExtension
        }
    );
}

#[test]
fn an_extension_is_not_approved_after_the_grant_ended() {
    let trail = step(active(), ask_more(30), &person(REQUESTER), 600);
    let err = apply(
        &trail.0,
        Command::ApproveExtension { reason: None },
        &by(&person(APPROVER)),
        at(EXPIRY),
    )
    .unwrap_err();
    assert_eq!(err, TransitionError::GrantOver { at: at(EXPIRY) });
}

#[test]
fn nothing_to_approve_or_deny_without_an_extension_asked() {
    let (request, _) = active();
    for command in [
        Command::ApproveExtension { reason: None },
        Command::DenyExtension { reason: None },
    ] {
        let err = apply(&request, command, &by(&person(APPROVER)), at(600)).unwrap_err();
        assert_eq!(err, TransitionError::NoExtension);
    }
}

#[test]
fn a_denied_extension_is_cleared_and_the_expiry_stays() {
    let trail = step(active(), ask_more(30), &person(REQUESTER), 600);
    let deny = Command::DenyExtension {
        reason: Some("finish tomorrow".into()),
    };
    let (request, events) = step(trail, deny, &person(APPROVER), 700);
    assert_eq!(request.state, State::Active);
    assert!(request.extension.is_none());
    assert_eq!(request.expires_at, Some(at(EXPIRY)));
    assert_eq!(request.duration, DURATION);
    assert_eq!(request.extended, Duration::ZERO);
    let event = events.last().unwrap();
    assert_eq!(event.action, Action::DenyExtension);
    assert_eq!(event.extend_by, Some(1800));
    assert_eq!(event.reason.as_deref(), Some("finish tomorrow"));

    // Another may be asked then.
    let (request, _) = step((request, events), ask_more(15), &person(REQUESTER), 800);
    assert_eq!(request.extension.unwrap().by, mins(15));
}

#[test]
fn an_extension_needs_the_required_approvals_of_different_people() {
    let (request, events) = needing(1, 2);
    let trail = step((request, events), approve(), &person("bob"), 30);
    let trail = step(trail, approve(), &person("carol"), 40);
    let trail = step(trail, Command::Activate, &Actor::system("escalate"), 120);
    let trail = step(trail, ask_more(30), &person(REQUESTER), 600);

    let approve_more = || Command::ApproveExtension { reason: None };
    let trail = step(trail, approve_more(), &person("bob"), 700);
    let extension = trail.0.extension.as_ref().unwrap();
    assert_eq!(extension.approvals.len(), 1);
    assert_eq!(trail.0.expires_at, Some(at(EXPIRY)));
    assert_eq!(
        trail.1.last().unwrap().action,
        Action::ApproveExtension,
        "a partial approval of the extension"
    );
    // bob approved the request too; that is no approval of the extension by someone else.
    let err = apply(&trail.0, approve_more(), &by(&person("bob")), at(710)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::AlreadyApproved {
            person: "bob".into(),
            required: 2
        }
    );
    let (request, events) = step(trail, approve_more(), &person("carol"), 720);
    assert!(request.extension.is_none());
    assert_eq!(request.expires_at, Some(at(EXPIRY + 1800)));
    assert_eq!(events.last().unwrap().action, Action::Extend);
}

#[test]
fn a_rule_approves_an_extension_at_once_and_nothing_else_of_elevate_does() {
    let trail = step(
        {
            let (request, events) = needing(1, 2);
            let trail = step((request, events), approve(), &person("bob"), 30);
            let trail = step(trail, approve(), &person("carol"), 40);
            step(trail, Command::Activate, &Actor::system("escalate"), 120)
        },
        ask_more(30),
        &person(REQUESTER),
        600,
    );
    let err = apply(
        &trail.0,
        Command::ApproveExtension { reason: None },
        &by(&Actor::system("sweep")),
        at(700),
    )
    .unwrap_err();
    assert!(matches!(err, TransitionError::PersonOnly { .. }), "{err:?}");
    let (request, events) = step(
        trail,
        Command::ApproveExtension { reason: None },
        &Actor::system("rule:short"),
        700,
    );
    assert!(request.extension.is_none());
    assert_eq!(request.expires_at, Some(at(EXPIRY + 1800)));
    let event = events.last().unwrap();
    assert_eq!(event.action, Action::Extend);
    assert_eq!(event.actor, Actor::system("rule:short"));
}

#[test]
fn an_extension_is_checked_against_the_flows_cap() {
    let config = Config::parse(CONFIG).unwrap();
    let flow = config.flow("infra_access").unwrap();
    let (grant, _) = active();
    // 1h granted of a 4h cap.
    flow.check_extension(&grant, mins(180)).unwrap();
    for more in [mins(181), Duration::MAX] {
        let err = flow.check_extension(&grant, more).unwrap_err();
        assert_eq!(err.code(), "extension_over_cap", "{more:?}: {err}");
    }
    let err = flow.check_extension(&grant, Duration::ZERO).unwrap_err();
    assert_eq!(err.code(), "invalid_duration");
}

/// The base config with `hook = "<arn>"` on `infra_access`.
fn with_hook(arn: &str) -> String {
    config_with(
        "pending_timeout = \"30m\"",
        &format!("pending_timeout = \"30m\"\nhook = \"{arn}\""),
    )
}

#[test]
fn a_flow_names_its_hook_by_lambda_arn() {
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:on-call-hook";
    let config = Config::parse(&with_hook(arn)).unwrap();
    assert_eq!(
        config.flow("infra_access").unwrap().hook.as_deref(),
        Some(arn)
    );
    assert_eq!(config.flow("db_access").unwrap().hook, None);
    for bad in [
        "on-call-hook",
        "arn:aws:lambda:us-east-1:123456789012:function:",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:us-east-1:123456789012:function:on call",
    ] {
        assert_refused_at(&with_hook(bad), "hook =", "is not a Lambda function ARN");
    }
}

#[test]
fn a_hook_approves_and_denies_at_once_and_a_rule_never_denies() {
    let hook = Actor::system("hook:on-call-hook");
    let (request, events) = step(needing(1, 2), approve(), &hook, 0);
    assert_eq!(request.state, State::Approved);
    assert_eq!(
        request.decided_by.as_deref(),
        Some("elevate:hook:on-call-hook")
    );
    assert!(request.approved_automatically());
    assert_eq!(events.last().unwrap().actor, hook);

    let deny = || Command::Deny {
        reason: Some("change freeze".into()),
    };
    let (request, _) = step(needing(1, 2), deny(), &hook, 0);
    assert_eq!(request.state, State::Denied);
    assert!(!request.approved_automatically());

    let (pending, _) = needing(1, 1);
    for component in ["rule:office", "sweep", "hooks:x"] {
        let err = apply(&pending, deny(), &by(&Actor::system(component)), at(60)).unwrap_err();
        assert!(
            matches!(err, TransitionError::PersonOnly { .. }),
            "{component}: {err:?}"
        );
    }
}

/// The base config with `[flows.break_glass]` (`lines`) on `infra_access` (max 4h).
fn with_break_glass(lines: &str) -> String {
    config_with(
        "[[flows]]\nname = \"db_access\"",
        &format!("[flows.break_glass]\n{lines}\n\n[[flows]]\nname = \"db_access\""),
    )
}

#[test]
fn break_glass_is_a_flow_option_with_a_shorter_cap_a_channel_and_a_review_time() {
    let config = Config::parse(&with_break_glass(
        "max_duration = \"30m\"\nchannel = \"C0SECURITY\"\nreview_within = \"1h\"",
    ))
    .unwrap();
    let policy = config
        .flow("infra_access")
        .unwrap()
        .break_glass
        .clone()
        .unwrap();
    assert_eq!(policy.max_duration, mins(30));
    assert_eq!(policy.channel, "C0SECURITY");
    assert_eq!(policy.review_within, mins(60));
    assert_eq!(config.flow("db_access").unwrap().break_glass, None);

    for (lines, needle, message) in [
        (
            "max_duration = \"5h\"\nchannel = \"C0SECURITY\"\nreview_within = \"1h\"",
            "max_duration = \"5h\"",
            "must be at most the flow's 4h",
        ),
        (
            "max_duration = \"30m\"\nchannel = \"#security\"\nreview_within = \"1h\"",
            "channel = \"#security\"",
            "must name a Slack channel id",
        ),
        (
            "max_duration = \"30m\"\nchannel = \"C0SECURITY\"\nreview_within = \"0m\"",
            "review_within",
            "review_within",
        ),
        (
            "max_duration = \"30m\"\nchannel = \"C0SECURITY\"",
            "[flows.break_glass]",
            "review_within",
        ),
        (
            "max_duration = \"30m\"\nchannel = \"C0SECURITY\"\nreview_within = \"1h\"\nauto = true",
            "auto = true",
            "unknown field",
        ),
    ] {
        assert_refused_at(&with_break_glass(lines), needle, message);
    }
}
