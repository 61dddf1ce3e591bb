//! Where the API is and whose credentials sign: flags, then environment, then the user's
//! `~/.config/elevate/config.toml`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use url::Url;

use crate::api::Endpoint;
use crate::cli::GlobalArgs;

/// The user's `~/.config/elevate/config.toml`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub api_url: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl UserConfig {
    /// `$XDG_CONFIG_HOME/elevate/config.toml`, else `$HOME/.config/elevate/config.toml`.
    pub fn path() -> Option<PathBuf> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let base = non_empty("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".config")))?;
        Some(base.join("elevate").join("config.toml"))
    }

    /// The file's settings; none when it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<UserConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(UserConfig::default())
            }
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|err| {
            let line = err.span().map_or(1, |span| {
                text[..span.start.min(text.len())].matches('\n').count() + 1
            });
            anyhow::anyhow!("{} line {line}: {}", path.display(), err.message().trim())
        })
    }
}

/// Combines flags and environment (already merged by clap) with the config file.
pub fn endpoint(global: &GlobalArgs, file: &UserConfig) -> anyhow::Result<Endpoint> {
    let Some(raw) = global.api_url.clone().or_else(|| file.api_url.clone()) else {
        bail!(
            "no elevate API URL: pass --api-url, set ELEVATE_API_URL, or put `api_url = \"https://...\"` in {}",
            UserConfig::path().map_or_else(|| "~/.config/elevate/config.toml".into(), |p| p.display().to_string())
        );
    };
    let api_url = Url::parse(raw.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .with_context(|| {
            format!("`{raw}` is not an API URL (expected e.g. https://abc123.execute-api.us-east-1.amazonaws.com)")
        })?;
    Ok(Endpoint {
        api_url,
        profile: global.profile.clone().or_else(|| file.profile.clone()),
        region: global.region.clone().or_else(|| file.region.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(api_url: Option<&str>, profile: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            api_url: api_url.map(str::to_owned),
            profile: profile.map(str::to_owned),
            region: None,
            json: false,
            quiet: false,
        }
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let file = UserConfig {
            api_url: Some("https://file.example".into()),
            profile: Some("file-profile".into()),
            region: Some("eu-west-1".into()),
        };
        let e = endpoint(&global(Some("http://127.0.0.1:9000"), None), &file).expect("endpoint");
        assert_eq!(e.api_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(e.profile.as_deref(), Some("file-profile"));
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        let e = endpoint(&global(None, Some("flag")), &file).expect("endpoint");
        assert_eq!(e.api_url.as_str(), "https://file.example/");
        assert_eq!(e.profile.as_deref(), Some("flag"));
    }

    #[test]
    fn a_missing_or_bad_url_says_what_to_do() {
        let err = endpoint(&global(None, None), &UserConfig::default()).expect_err("no url");
        assert!(err.to_string().contains("--api-url"));
        let err = endpoint(&global(Some("not a url"), None), &UserConfig::default())
            .expect_err("bad url");
        assert!(err.to_string().contains("not an API URL"));
    }

    #[test]
    fn the_config_file_is_strict() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        assert_eq!(
            UserConfig::load(&path).expect("missing"),
            UserConfig::default()
        );
        std::fs::write(
            &path,
            "api_url = \"https://x.example\"\nregon = \"eu-west-1\"\n",
        )
        .expect("write");
        let err = UserConfig::load(&path).expect_err("typo");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
