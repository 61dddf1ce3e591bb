//! schemathesis fuzzes the API of docs/openapi.yaml on a stack of its own (its requests open,
//! decide and revoke requests at random): no answer is a 5xx, every answer has a documented
//! status, content type and body, every error body is `{"error","message"}` with a code of its
//! status, and input the document forbids is refused. tests/schemathesis/hooks.py signs each
//! request like the real callers (SigV4 as a person of the stack's profiles, Slack's signature
//! with the stack's signing secret) and adds the error-body check.
//!
//! ELEVATE_FUZZ_EXAMPLES (examples per operation and phase) and ELEVATE_FUZZ_SEED widen or
//! replay a run; a failure prints schemathesis' report, whose last lines name the seed.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::harness::LocalStack;

/// Enough for the coverage phase's boundary cases and, through the links it infers, a few
/// requests that get approved and revoked; few enough for `make test` (about 10 s of fuzzing on
/// an idle 2-core machine, 35 s on a busy one).
const EXAMPLES: &str = "5";

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,negative_data_rejection,error_body_shape";

#[test]
fn schemathesis_meets_only_documented_answers_and_no_server_error() {
    match Command::new("schemathesis").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`schemathesis --version` failed ({}): run `make setup`, which installs \
             .ci/requirements.txt\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "schemathesis is not installed: run `make setup`, which installs .ci/requirements.txt"
        ),
        Err(err) => panic!("cannot run schemathesis: {err}"),
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is in the workspace");
    let stack = LocalStack::start();

    let mut fuzz = Command::new("schemathesis");
    // The stack's profiles only: nothing of the machine's AWS setup.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if name.starts_with("AWS_") || name.starts_with("ELEVATE_") {
                fuzz.env_remove(name);
            }
        }
    }
    let examples = std::env::var("ELEVATE_FUZZ_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_owned());
    fuzz.arg("run")
        .arg(workspace.join("docs/openapi.yaml"))
        .args(["--url", &stack.api_url])
        .args(["--max-examples", &examples])
        .args(["--checks", CHECKS])
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace.join("tests/schemathesis/hooks.py"),
        )
        .env("AWS_CONFIG_FILE", stack.info.str("aws_config_file"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            stack.info.str("aws_credentials_file"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // bob requests and audits; alice approves and denies his requests.
        .env("ELEVATE_FUZZ_PROFILE", "bob")
        .env("ELEVATE_FUZZ_APPROVER_PROFILE", "alice")
        .env(
            "ELEVATE_FUZZ_SLACK_SECRET",
            stack.info.str("signing_secret"),
        )
        // Reports and caches, if any, stay in the stack's temporary directory.
        .current_dir(stack.dir.path());
    if let Ok(seed) = std::env::var("ELEVATE_FUZZ_SEED") {
        fuzz.args(["--seed", &seed]);
    }

    let started = Instant::now();
    let output = fuzz.output().expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers docs/openapi.yaml does not allow ({}, after {:?}):\n{report}\n{}\n\
         the stack's log:\n{}",
        output.status,
        started.elapsed(),
        String::from_utf8_lossy(&output.stderr),
        stack.log()
    );
    eprintln!(
        "schemathesis: {} in {:?}",
        report
            .lines()
            .rev()
            .find(|line| line.contains("generated"))
            .unwrap_or("no summary")
            .trim(),
        started.elapsed()
    );
}
