//! `elevate-local up --identity-center`: moto's IAM Identity Center instance made ready for a
//! permission set flow, and the elevate.toml the stack serves with it.
//!
//! moto gives its instance, store and permission sets random ids at every start, so they
//! cannot be written in a reviewed file: the stack creates them, then serves the given file
//! with an `[identity_center]` of those ids and a flow `prod_readonly` appended.

use aws_config::SdkConfig;
use aws_sdk_identitystore::types::{AlternateIdentifier, Email, MemberId, Name, UniqueAttribute};
use aws_smithy_types::Document;
use elevate_core::config::Config;
use serde::{Deserialize, Serialize};

use crate::bootstrap::BootstrapError;

/// The permission set `prod_readonly` grants.
pub const PERMISSION_SET: &str = "ProdReadOnly";
/// The Identity Store group whose members approve `prod_readonly`: every person of the file.
pub const APPROVERS_GROUP: &str = "ProdApprovers";
/// The accounts `prod_readonly` may be granted in (a request names one with `--account`).
pub const ACCOUNTS: [&str; 2] = ["111111111111", "222222222222"];
/// The flow appended.
pub const FLOW: &str = "prod_readonly";

/// What was made in moto's Identity Center (stack.json's `identity_center`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalIdentityCenter {
    pub instance_arn: String,
    pub identity_store_id: String,
    pub permission_set_arn: String,
    pub approvers_group: String,
    pub accounts: Vec<String>,
}

impl LocalIdentityCenter {
    /// The TOML appended to the file: the instance, and the flow that grants the permission
    /// set, approved by the members of the group.
    pub fn config_section(&self) -> String {
        let accounts = self
            .accounts
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "\n# Added by elevate-local --identity-center: moto's instance, whose ids change at every start.\n\
             [identity_center]\n\
             instance_arn = \"{instance}\"\n\
             identity_store_id = \"{store}\"\n\n\
             [[flows]]\n\
             name = \"{FLOW}\"\n\
             description = \"Read-only access to production through IAM Identity Center\"\n\
             max_duration = \"1h\"\n\
             reason_required = true\n\
             pending_timeout = \"30m\"\n\n\
             [flows.approvers]\n\
             channel = \"C0APPROVALS\"\n\
             groups = [\"{group}\"]\n\n\
             [[flows.targets]]\n\
             name = \"readonly\"\n\
             type = \"sso_permission_set\"\n\
             permission_set_arn = \"{set}\"\n\
             accounts = [{accounts}]\n\
             end_sessions = true\n",
            instance = self.instance_arn,
            store = self.identity_store_id,
            group = self.approvers_group,
            set = self.permission_set_arn,
        )
    }
}

fn failed(step: &str, error: impl std::fmt::Display) -> BootstrapError {
    BootstrapError {
        step: step.to_owned(),
        message: error.to_string(),
    }
}

/// Makes moto's instance ready: a user per person of `config` (user name = their name, email
/// = their email), the group [`APPROVERS_GROUP`] holding them all, and the permission set
/// [`PERMISSION_SET`]. moto starts empty each time; a user already there is used as it is.
pub async fn provision(
    sdk: &SdkConfig,
    config: &Config,
) -> Result<LocalIdentityCenter, BootstrapError> {
    let admin = aws_sdk_ssoadmin::Client::new(sdk);
    let directory = aws_sdk_identitystore::Client::new(sdk);
    let instances = admin
        .list_instances()
        .send()
        .await
        .map_err(|e| failed("Identity Center instance", e))?;
    let instance = instances
        .instances()
        .first()
        .ok_or_else(|| failed("Identity Center instance", "moto lists none"))?;
    let instance_arn = instance
        .instance_arn()
        .ok_or_else(|| failed("Identity Center instance", "no ARN"))?
        .to_owned();
    let store = instance
        .identity_store_id()
        .ok_or_else(|| failed("Identity Center instance", "no Identity Store"))?
        .to_owned();

    let mut user_ids = Vec::with_capacity(config.people.len());
    for person in &config.people {
        let found = directory
            .get_user_id()
            .identity_store_id(&store)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(
                UniqueAttribute::builder()
                    .attribute_path("userName")
                    .attribute_value(Document::String(person.name.to_string()))
                    .build()
                    .map_err(|e| failed("Identity Store user", e))?,
            ))
            .send()
            .await;
        let id = match found {
            Ok(found) => found.user_id().to_owned(),
            Err(_) => directory
                .create_user()
                .identity_store_id(&store)
                .user_name(person.name.as_str())
                .display_name(person.name.as_str())
                .name(
                    Name::builder()
                        .given_name(person.name.as_str())
                        .family_name("Example")
                        .build(),
                )
                .emails(Email::builder().value(&person.email).primary(true).build())
                .send()
                .await
                .map_err(|e| failed(&format!("Identity Store user {}", person.name), e))?
                .user_id()
                .to_owned(),
        };
        user_ids.push(id);
    }

    let group_id = directory
        .create_group()
        .identity_store_id(&store)
        .display_name(APPROVERS_GROUP)
        .send()
        .await
        .map_err(|e| failed("Identity Store group", e))?
        .group_id()
        .to_owned();
    for id in &user_ids {
        directory
            .create_group_membership()
            .identity_store_id(&store)
            .group_id(&group_id)
            .member_id(MemberId::UserId(id.clone()))
            .send()
            .await
            .map_err(|e| failed("Identity Store group membership", e))?;
    }

    let permission_set_arn = admin
        .create_permission_set()
        .instance_arn(&instance_arn)
        .name(PERMISSION_SET)
        .description("Read-only access to production (elevate-local)")
        .session_duration("PT1H")
        .send()
        .await
        .map_err(|e| failed("permission set", e))?
        .permission_set()
        .and_then(|p| p.permission_set_arn())
        .ok_or_else(|| failed("permission set", "no ARN"))?
        .to_owned();

    Ok(LocalIdentityCenter {
        instance_arn,
        identity_store_id: store,
        permission_set_arn,
        approvers_group: APPROVERS_GROUP.to_owned(),
        accounts: ACCOUNTS.iter().map(|a| (*a).to_owned()).collect(),
    })
}
