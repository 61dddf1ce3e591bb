//! The local users: one IAM user and access key per person of elevate.toml, created in moto,
//! so that the CLI signs with real-looking credentials and the gateway knows who signed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aws_sdk_iam::error::SdkError;
use elevate_core::config::Config;
use serde_json::{json, Value};

use crate::sigv4::SecretLookup;

/// The account moto puts everything in unless told otherwise.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// IAM allows two access keys per user.
const MAX_KEYS_PER_USER: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("IAM {action} for user {user} failed: {message}")]
    Iam {
        action: &'static str,
        user: String,
        message: String,
    },
    #[error("IAM {action} for user {user} answered without {missing}")]
    Incomplete {
        action: &'static str,
        user: String,
        missing: &'static str,
    },
    #[error("cannot write the AWS profiles to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Who signed a request, as API Gateway's IAM authorizer describes an IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The person of elevate.toml.
    pub person: String,
    pub access_key: String,
    pub user_arn: String,
    pub user_id: String,
    pub account_id: String,
}

impl Caller {
    /// `requestContext.authorizer.iam` of an API Gateway HTTP API event.
    pub fn iam_context(&self) -> Value {
        json!({
            "accessKey": self.access_key,
            "accountId": self.account_id,
            // For an IAM user, API Gateway gives the user id as the caller id.
            "callerId": self.user_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": self.user_arn,
            "userId": self.user_id,
        })
    }
}

/// A person's IAM user and the one access key the gateway issued for it.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub caller: Caller,
    pub secret_access_key: String,
}

impl fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUser")
            .field("caller", &self.caller)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// The local users by access key.
#[derive(Debug, Clone, Default)]
pub struct LocalUsers {
    /// In the order of elevate.toml, so the profile files read like it.
    users: Vec<LocalUser>,
    by_key: HashMap<String, usize>,
}

impl LocalUsers {
    pub fn new(users: Vec<LocalUser>) -> Self {
        let by_key = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.caller.access_key.clone(), i))
            .collect();
        LocalUsers { users, by_key }
    }

    /// Creates each person's IAM user unless it exists, and a fresh access key for it. Keys
    /// issued by an earlier run are deleted, oldest first, when the user has no room left.
    pub async fn provision(
        iam: &aws_sdk_iam::Client,
        config: &Config,
    ) -> Result<LocalUsers, IdentityError> {
        let mut users = Vec::with_capacity(config.people.len());
        for person in &config.people {
            let user_name = person.iam_user.as_str();
            let (user_arn, user_id) = ensure_user(iam, user_name).await?;
            make_room_for_a_key(iam, user_name).await?;
            let created = iam
                .create_access_key()
                .user_name(user_name)
                .send()
                .await
                .map_err(|e| iam_error("CreateAccessKey", user_name, e))?;
            let key = created.access_key().ok_or(IdentityError::Incomplete {
                action: "CreateAccessKey",
                user: user_name.to_owned(),
                missing: "AccessKey",
            })?;
            let account_id = account_of(&user_arn).unwrap_or(MOTO_ACCOUNT_ID).to_owned();
            tracing::info!(person = %person.name, %user_arn, access_key = key.access_key_id(), "local user ready");
            users.push(LocalUser {
                caller: Caller {
                    person: person.name.to_string(),
                    access_key: key.access_key_id().to_owned(),
                    user_arn,
                    user_id,
                    account_id,
                },
                secret_access_key: key.secret_access_key().to_owned(),
            });
        }
        Ok(LocalUsers::new(users))
    }

    pub fn users(&self) -> &[LocalUser] {
        &self.users
    }

    pub fn by_access_key(&self, access_key: &str) -> Option<&LocalUser> {
        self.by_key.get(access_key).map(|&i| &self.users[i])
    }

    pub fn by_person(&self, person: &str) -> Option<&LocalUser> {
        self.users.iter().find(|u| u.caller.person == person)
    }

    /// Writes `<dir>/config` (`[profile <person>]` with the region) and `<dir>/credentials`
    /// (`[<person>]` with the key), for `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`.
    /// Both files are replaced; the credentials file is readable by its owner only.
    pub fn write_profiles(&self, dir: &Path, region: &str) -> Result<(), IdentityError> {
        self.write_profiles_with_endpoint(dir, region, None)
    }

    /// [`LocalUsers::write_profiles`], each profile also with the SDKs' standard `endpoint_url`
    /// when one is given: every AWS call made with the profile goes there.
    pub fn write_profiles_with_endpoint(
        &self,
        dir: &Path,
        region: &str,
        endpoint_url: Option<&str>,
    ) -> Result<(), IdentityError> {
        let write_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| IdentityError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;

        let mut config =
            String::from("# Written by elevate-local: one profile per person of elevate.toml.\n");
        let mut credentials =
            String::from("# Written by elevate-local: local (moto) keys, not real AWS keys.\n");
        for user in &self.users {
            let person = &user.caller.person;
            config.push_str(&format!("\n[profile {person}]\nregion = {region}\n"));
            if let Some(endpoint) = endpoint_url {
                config.push_str(&format!("endpoint_url = {endpoint}\n"));
            }
            credentials.push_str(&format!(
                "\n[{person}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                user.caller.access_key, user.secret_access_key
            ));
        }

        let config_path = dir.join("config");
        std::fs::write(&config_path, config).map_err(write_error(&config_path))?;
        let credentials_path = dir.join("credentials");
        write_private(&credentials_path, &credentials).map_err(write_error(&credentials_path))?;
        Ok(())
    }
}

impl SecretLookup for LocalUsers {
    type Principal = Caller;

    fn secret_for(&self, access_key: &str) -> Option<(String, Caller)> {
        self.by_access_key(access_key)
            .map(|u| (u.secret_access_key.clone(), u.caller.clone()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through `open`: tighten it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The user's ARN and id, creating the user when it does not exist.
async fn ensure_user(
    iam: &aws_sdk_iam::Client,
    user_name: &str,
) -> Result<(String, String), IdentityError> {
    let user = match iam.get_user().user_name(user_name).send().await {
        Ok(found) => found.user,
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => {
            let created = iam
                .create_user()
                .user_name(user_name)
                .send()
                .await
                .map_err(|e| iam_error("CreateUser", user_name, e))?;
            tracing::info!(user = user_name, "created IAM user");
            created.user
        }
        Err(e) => return Err(iam_error("GetUser", user_name, e)),
    };
    let user = user.ok_or(IdentityError::Incomplete {
        action: "GetUser",
        user: user_name.to_owned(),
        missing: "User",
    })?;
    Ok((user.arn, user.user_id))
}

async fn make_room_for_a_key(
    iam: &aws_sdk_iam::Client,
    user_name: &str,
) -> Result<(), IdentityError> {
    let listed = iam
        .list_access_keys()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| iam_error("ListAccessKeys", user_name, e))?;
    let mut keys: Vec<_> = listed.access_key_metadata.into_iter().collect();
    if keys.len() < MAX_KEYS_PER_USER {
        return Ok(());
    }
    keys.sort_by_key(|k| k.create_date.map(|d| (d.secs(), d.subsec_nanos())));
    let surplus = keys.len() + 1 - MAX_KEYS_PER_USER;
    for key in keys.into_iter().take(surplus) {
        let Some(id) = key.access_key_id else {
            continue;
        };
        iam.delete_access_key()
            .user_name(user_name)
            .access_key_id(&id)
            .send()
            .await
            .map_err(|e| iam_error("DeleteAccessKey", user_name, e))?;
        tracing::info!(user = user_name, access_key = %id, "deleted an old local access key");
    }
    Ok(())
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

fn iam_error<E, R>(action: &'static str, user: &str, error: SdkError<E, R>) -> IdentityError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    IdentityError::Iam {
        action,
        user: user.to_owned(),
        message: aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> LocalUser {
        LocalUser {
            caller: Caller {
                person: "alice".to_owned(),
                access_key: "AKIAALICE".to_owned(),
                user_arn: "arn:aws:iam::123456789012:user/alice".to_owned(),
                user_id: "AIDAALICE".to_owned(),
                account_id: MOTO_ACCOUNT_ID.to_owned(),
            },
            secret_access_key: "alice-secret".to_owned(),
        }
    }

    #[test]
    fn the_iam_context_has_api_gateways_field_names() {
        let context = alice().caller.iam_context();
        assert_eq!(context["accessKey"], "AKIAALICE");
        assert_eq!(context["accountId"], "123456789012");
        assert_eq!(context["callerId"], "AIDAALICE");
        assert_eq!(context["userArn"], "arn:aws:iam::123456789012:user/alice");
        assert_eq!(context["userId"], "AIDAALICE");
    }

    #[test]
    fn looks_up_secrets_by_access_key() {
        let users = LocalUsers::new(vec![alice()]);
        let (secret, caller) = users.secret_for("AKIAALICE").expect("known key");
        assert_eq!(secret, "alice-secret");
        assert_eq!(caller.person, "alice");
        assert!(users.secret_for("AKIAOTHER").is_none());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?}", LocalUsers::new(vec![alice()]));
        assert!(!shown.contains("alice-secret"), "{shown}");
    }

    #[test]
    fn reads_the_account_from_an_arn() {
        assert_eq!(
            account_of("arn:aws:iam::123456789012:user/alice"),
            Some("123456789012")
        );
        assert_eq!(account_of("nonsense"), None);
    }
}
