//! `config check`: offline, default paths, line numbers.

use crate::support::*;

const GOOD: &str = include_str!("../../../../infra/elevate.toml");

#[test]
fn a_good_file_is_summarized() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("elevate.toml"), GOOD).expect("write");
    // No API URL and no credentials: the check is offline.
    let run = Elevate::new()
        .cwd(dir.path())
        .env("AWS_ACCESS_KEY_ID", "")
        .run(&["config", "check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("elevate.toml: OK"), "{}", run.stdout);
    assert!(
        run.stdout.contains("people (2): alice, bob"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("infra_access"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("target admins: IAM group SymDemoAdmins"));
    assert!(run.stdout.contains("max duration 4h"));
    assert!(run.stdout.contains("approvers: alice, bob in C0APPROVALS"));
}

#[test]
fn infra_elevate_toml_is_the_fallback() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("infra")).expect("mkdir");
    std::fs::write(dir.path().join("infra").join("elevate.toml"), GOOD).expect("write");
    let run = Elevate::new()
        .cwd(dir.path())
        .run(&["config", "check", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let summary = run.json();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["flows"][0]["max_duration"], 14_400);
}

#[test]
fn a_bad_file_names_the_line_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = GOOD.replace("max_duration = \"4h\"", "max_duration = \"soon\"");
    let line = bad
        .lines()
        .position(|l| l.contains("\"soon\""))
        .expect("line")
        + 1;
    let path = dir.path().join("flows.toml");
    std::fs::write(&path, bad).expect("write");
    let run = Elevate::new().run(&["config", "check", path.to_str().expect("path")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("flows.toml line {line}: max_duration")),
        "{}",
        run.stderr
    );
}

#[test]
fn no_file_at_all_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("dir");
    let run = Elevate::new().cwd(dir.path()).run(&["config", "check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("infra/elevate.toml"), "{}", run.stderr);
}

#[test]
fn completions_are_generated() {
    let run = Elevate::new().run(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("elevate"), "{}", run.stdout);
}
