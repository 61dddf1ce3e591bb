//! Embeds the flows config (`elevate.toml`) into every function binary, so a deployed function
//! carries the reviewed file it was built from. `ELEVATE_CONFIG_FILE` picks another file at
//! build time (a relative path is taken from the workspace root); the default is
//! `infra/elevate.toml`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=ELEVATE_CONFIG_FILE");
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("crates/runtime sits two levels below the workspace root")
        .to_path_buf();
    let source = match std::env::var_os("ELEVATE_CONFIG_FILE") {
        Some(path) if !path.is_empty() => workspace.join(path),
        _ => workspace.join("infra").join("elevate.toml"),
    };
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).unwrap_or_else(|err| {
        panic!(
            "cannot read the flows config {} (set ELEVATE_CONFIG_FILE to embed another file): {err}",
            source.display()
        )
    });
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("elevate.toml"), text).expect("write the embedded config");
    println!(
        "cargo:rustc-env=ELEVATE_EMBEDDED_CONFIG_SOURCE={}",
        source.display()
    );
}
