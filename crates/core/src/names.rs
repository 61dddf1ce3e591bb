//! Names of the things of elevate.toml, each its own type where it crosses a boundary (a
//! stored request, an API body, the grant's terms), so a flow name cannot be passed where a
//! person's name is meant. Each reads as a `&str` and serializes as a plain string.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self(name.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                Self(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl From<&$name> for String {
            fn from(name: &$name) -> String {
                name.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

name!(
    /// The `name` of a person of elevate.toml.
    PersonName
);
name!(
    /// The `name` of a flow of elevate.toml.
    FlowName
);
name!(
    /// The `name` of one of a flow's targets.
    TargetName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_plain_string_on_the_wire_and_compares_with_text() {
        let flow = FlowName::from("infra_access");
        assert_eq!(serde_json::to_value(&flow).expect("json"), "infra_access");
        assert_eq!(
            serde_json::from_value::<FlowName>("infra_access".into()).expect("name"),
            flow
        );
        assert_eq!(flow, "infra_access");
        assert_eq!(flow.len(), 12);
        assert_eq!(format!("flow `{flow}`"), "flow `infra_access`");
    }
}
