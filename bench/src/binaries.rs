//! Where the workspace's binaries are, and building them when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Lambda function binaries of the workspace (what `make build` packages).
pub const FUNCTIONS: [&str; 5] = [
    "elevate-request",
    "elevate-approve",
    "elevate-escalate",
    "elevate-revoke",
    "elevate-example-target",
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
}

/// The workspace root (the bench crate sits one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// `target/debug/elevate-local`.
pub fn local_gateway() -> PathBuf {
    target_dir().join("debug").join("elevate-local")
}

/// `target/debug/elevate`: the CLI as the local stack's tests build it.
pub fn cli() -> PathBuf {
    target_dir().join("debug").join("elevate")
}

/// `target/release/<name>`: a function built for this machine.
pub fn release_function(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// `target/lambda/<name>/bootstrap`: what `cargo lambda build` packages.
pub fn lambda_bootstrap(name: &str) -> PathBuf {
    target_dir().join("lambda").join(name).join("bootstrap")
}

/// Runs `cargo <args>` in the workspace root, output passed through; returns how long it took.
pub fn cargo(args: &[&str]) -> Result<Duration, BuildError> {
    let command = format!("cargo {}", args.join(" "));
    eprintln!("elevate-bench: {command}");
    let started = Instant::now();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    // A jobserver inherited from a surrounding make or cargo may be gone by now.
    for name in ["MAKEFLAGS", "MFLAGS", "CARGO_MAKEFLAGS"] {
        cargo.env_remove(name);
    }
    let status = cargo
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|source| BuildError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !status.success() {
        return Err(BuildError::Failed {
            command,
            status: status.to_string(),
        });
    }
    Ok(started.elapsed())
}

/// The local gateway binary, brought up to date once per process with the build
/// tests/tests/local_stack/harness.rs uses: `--workspace --all-targets` is the feature set
/// `make test` compiles, so under `make test` there is nothing left to build, where
/// `-p elevate-local` alone would compile every dependency a second time (and once ran a fresh
/// machine out of disk).
pub fn ensure_local_gateway() -> Result<PathBuf, BuildError> {
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*built {
        cargo(&["build", "--quiet", "--workspace", "--all-targets"])?;
        *built = true;
    }
    Ok(local_gateway())
}
