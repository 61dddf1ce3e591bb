//! The flows config a function runs with.

use std::path::{Path, PathBuf};

use elevate_core::{Config, ConfigError};

use crate::env::Env;

const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/elevate.toml"));
const EMBEDDED_SOURCE: &str = env!("ELEVATE_EMBEDDED_CONFIG_SOURCE");

/// The config could not be read, or is invalid. The function must refuse to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error("cannot read the flows config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `origin` is the path, or `embedded <build-time path>`; the error names the line.
    #[error("invalid flows config ({origin}): {error}")]
    Invalid {
        origin: String,
        #[source]
        error: ConfigError,
    },
}

impl ConfigLoadError {
    /// The line of the config the problem is on, when it is a validation error.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigLoadError::Invalid { error, .. } => Some(error.line),
            ConfigLoadError::Read { .. } => None,
        }
    }
}

/// The text of the `elevate.toml` embedded at build time (`ELEVATE_CONFIG_FILE`, default
/// `infra/elevate.toml`).
pub fn embedded_config() -> &'static str {
    EMBEDDED
}

/// The config of this function: the file at `ELEVATE_CONFIG_PATH` when set, else the embedded
/// copy.
pub fn load_config(env: &Env) -> Result<Config, ConfigLoadError> {
    load_config_from(env.config_path.as_deref())
}

/// The config at `path`, or the embedded copy when `None`.
pub fn load_config_from(path: Option<&Path>) -> Result<Config, ConfigLoadError> {
    let (text, origin) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigLoadError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (text, path.display().to_string())
        }
        None => (EMBEDDED.to_owned(), format!("embedded {EMBEDDED_SOURCE}")),
    };
    let config = Config::parse(&text).map_err(|error| ConfigLoadError::Invalid {
        origin: origin.clone(),
        error,
    })?;
    tracing::info!(
        config = %origin,
        flows = config.flows.len(),
        people = config.people.len(),
        "flows config loaded"
    );
    Ok(config)
}
