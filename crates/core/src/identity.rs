//! Who a caller is, decided only from what the caller cannot choose.
//!
//! API Gateway's IAM authorizer hands elevate the ARN of the principal that signed the call.
//! An IAM user's name is set by whoever administers the account; an assumed role's session
//! name is chosen by whoever calls `sts:AssumeRole`, unless AWS sets it (IAM Identity Center's
//! `AWSReservedSSO_*` roles) or the role's trust policy pins it (`sts:RoleSessionName` =
//! `${aws:username}`). So elevate trusts session names only of the roles `[identity]
//! trusted_roles` names, and principals only of the accounts `[identity] accounts` lists.

use std::fmt;

use crate::config::{Config, Person};

/// The `[identity]` section of `elevate.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// AWS account ids whose principals may call; `None` means the API's own account only.
    pub accounts: Option<Vec<String>>,
    /// Whether IAM users map to people by their user name.
    pub iam_users: bool,
    /// Role name patterns (`*` matches any run of characters) whose session names are trusted.
    pub trusted_roles: Vec<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            accounts: None,
            iam_users: true,
            trusted_roles: Vec::new(),
        }
    }
}

/// A caller elevate does not take, and the rule that refused it. Nothing is done for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the call carries no IAM principal (the route must use AWS_IAM authorization)")]
    NoPrincipal,
    #[error("`{0}` is not an IAM user or assumed-role ARN")]
    NotAPrincipal(String),
    #[error("{arn} belongs to account {account}, and [identity] accounts in elevate.toml allows only {allowed}")]
    ForeignAccount {
        arn: String,
        account: String,
        allowed: String,
    },
    #[error("{arn} is an IAM user, and [identity] iam_users = false in elevate.toml")]
    IamUsersOff { arn: String },
    #[error("IAM user `{user}` is not the iam_user of any person in elevate.toml")]
    UnknownIamUser { user: String },
    #[error("role `{role}` is not one of [identity] trusted_roles in elevate.toml: whoever assumes an ordinary role chooses its session name, so `{session}` proves nothing")]
    UntrustedRole { role: String, session: String },
    #[error("session `{session}` of trusted role `{role}` is not the name or email of any person in elevate.toml")]
    UnknownSession { role: String, session: String },
}

/// The parts of a principal ARN that identity depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal<'a> {
    /// `arn:<partition>:iam::<account>:user[/path]/<name>`
    IamUser { account: &'a str, name: &'a str },
    /// `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`
    AssumedRole {
        account: &'a str,
        role: &'a str,
        session: &'a str,
    },
}

impl<'a> Principal<'a> {
    /// Parses an IAM user or assumed-role ARN; anything else (root, federated users, roles
    /// themselves, other services) is `None`.
    pub fn parse(arn: &'a str) -> Option<Principal<'a>> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if !partition.starts_with("aws")
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let principal = match service {
            "iam" => Principal::IamUser {
                account,
                name: resource.strip_prefix("user/")?.rsplit('/').next()?,
            },
            "sts" => {
                let (role, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
                Principal::AssumedRole {
                    account,
                    role,
                    session,
                }
            }
            _ => return None,
        };
        let (name, extra) = match &principal {
            Principal::IamUser { name, .. } => (*name, ""),
            Principal::AssumedRole { role, session, .. } => (*session, *role),
        };
        (!name.is_empty() && !extra.contains('/')).then_some(principal)
    }

    pub fn account(&self) -> &'a str {
        match self {
            Principal::IamUser { account, .. } | Principal::AssumedRole { account, .. } => account,
        }
    }
}

impl fmt::Display for Principal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::IamUser { account, name } => write!(f, "IAM user {name} of {account}"),
            Principal::AssumedRole {
                account,
                role,
                session,
            } => write!(f, "session {session} of role {role} in {account}"),
        }
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl Config {
    /// The person behind the principal that API Gateway's IAM authorizer verified, or the
    /// rule that refuses it. `api_account` is the account the API runs in
    /// (`requestContext.accountId`), the only account allowed when `[identity] accounts` is
    /// not set.
    pub fn caller(
        &self,
        principal_arn: Option<&str>,
        api_account: Option<&str>,
    ) -> Result<&Person, IdentityError> {
        let arn = principal_arn
            .filter(|arn| !arn.is_empty())
            .ok_or(IdentityError::NoPrincipal)?;
        let principal =
            Principal::parse(arn).ok_or_else(|| IdentityError::NotAPrincipal(arn.to_owned()))?;
        let account = principal.account();
        let allowed: Vec<&str> = match &self.identity.accounts {
            Some(accounts) => accounts.iter().map(String::as_str).collect(),
            None => api_account.into_iter().collect(),
        };
        if !allowed.contains(&account) {
            return Err(IdentityError::ForeignAccount {
                arn: arn.to_owned(),
                account: account.to_owned(),
                allowed: match allowed.as_slice() {
                    [] => "the API's own account (unknown for this call)".to_owned(),
                    list => list.join(", "),
                },
            });
        }
        match principal {
            Principal::IamUser { name, .. } => {
                if !self.identity.iam_users {
                    return Err(IdentityError::IamUsersOff {
                        arn: arn.to_owned(),
                    });
                }
                self.person_by_iam_user(name)
                    .ok_or_else(|| IdentityError::UnknownIamUser {
                        user: name.to_owned(),
                    })
            }
            Principal::AssumedRole { role, session, .. } => {
                if !self
                    .identity
                    .trusted_roles
                    .iter()
                    .any(|pattern| glob_match(pattern, role))
                {
                    return Err(IdentityError::UntrustedRole {
                        role: role.to_owned(),
                        session: session.to_owned(),
                    });
                }
                self.person(session)
                    .or_else(|| self.person_by_email(session))
                    .ok_or_else(|| IdentityError::UnknownSession {
                        role: role.to_owned(),
                        session: session.to_owned(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        for (pattern, name, matches) in [
            ("AWSReservedSSO_*", "AWSReservedSSO_Admin_0123abcd", true),
            ("AWSReservedSSO_*", "AWSReservedSSO_", true),
            ("AWSReservedSSO_*", "NotAWSReservedSSO_Admin", false),
            ("Engineer", "Engineer", true),
            ("Engineer", "Engineers", false),
            ("*-pinned", "ops-pinned", true),
            ("*-pinned", "ops-pinned-not", false),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("*", "anything", true),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob_match(pattern, name), matches, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn principals_parse_and_everything_else_is_refused() {
        assert_eq!(
            Principal::parse("arn:aws:iam::123456789012:user/eng/alice"),
            Some(Principal::IamUser {
                account: "123456789012",
                name: "alice"
            })
        );
        assert_eq!(
            Principal::parse("arn:aws:sts::123456789012:assumed-role/R/s@x.com"),
            Some(Principal::AssumedRole {
                account: "123456789012",
                role: "R",
                session: "s@x.com"
            })
        );
        for junk in [
            "",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:role/alice",
            "arn:aws:sts::123456789012:federated-user/alice",
            "arn:aws:sts::123456789012:assumed-role/alice",
            "arn:aws:sts::123456789012:assumed-role/R/",
            "arn:aws:iam::12345:user/alice",
            "arn:aws:iam:us-east-1:123456789012:user/alice",
            "arn:aws:iam::123456789012:user/",
        ] {
            assert_eq!(Principal::parse(junk), None, "{junk:?}");
        }
    }
}
