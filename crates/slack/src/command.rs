//! Slash commands: what Slack posts to `POST /slack/commands` when someone types `/elevate`
//! (an `application/x-www-form-urlencoded` body), parsed at the boundary into a typed value.
//! A body without the fields elevate needs is a typed error, never a panic.

use std::collections::HashMap;

use crate::interaction::LOCAL_APP_ID;

/// One `/elevate ...` as Slack reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    /// The workspace; empty when Slack sent none.
    pub team_id: String,
    /// Slack user id of whoever typed it.
    pub user_id: String,
    /// Their Slack handle, for messages only; identity is `user_id`.
    pub user_name: String,
    /// Where it was typed.
    pub channel_id: String,
    /// The command itself (`/elevate`).
    pub command: String,
    /// What followed the command, as typed.
    pub text: String,
    /// Opens a modal (`views.open`) within 3 seconds of the command.
    pub trigger_id: String,
    pub response_url: Option<String>,
}

/// What a slash command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Open the request modal: no text, or `request`.
    Request,
    /// List the user's own requests.
    List,
    /// Show the usage; `unknown` is the word that was not understood.
    Help { unknown: Option<String> },
}

/// Why a slash command body was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("slash command lacks {0}")]
    MissingField(&'static str),
}

impl SlashCommand {
    /// Parses the raw form body Slack posts. Of a field sent twice the first counts.
    pub fn parse(raw_body: &[u8]) -> Result<SlashCommand, CommandError> {
        let mut fields: HashMap<String, String> = HashMap::new();
        for (key, value) in form_urlencoded::parse(raw_body) {
            fields.entry(key.into_owned()).or_insert(value.into_owned());
        }
        let mut take = |key: &str| fields.remove(key).unwrap_or_default();
        let required = |value: String, name: &'static str| {
            if value.is_empty() {
                Err(CommandError::MissingField(name))
            } else {
                Ok(value)
            }
        };
        let user_id = required(take("user_id"), "user_id")?;
        let trigger_id = required(take("trigger_id"), "trigger_id")?;
        let response_url = Some(take("response_url")).filter(|url| !url.is_empty());
        Ok(SlashCommand {
            team_id: take("team_id"),
            user_id,
            user_name: take("user_name"),
            channel_id: take("channel_id"),
            command: take("command"),
            text: take("text"),
            trigger_id,
            response_url,
        })
    }

    /// What the text asks for: its first word, whatever its case; words after a known one
    /// are ignored.
    pub fn verb(&self) -> Verb {
        let Some(word) = self.text.split_whitespace().next() else {
            return Verb::Request;
        };
        match word.to_lowercase().as_str() {
            "request" => Verb::Request,
            "list" => Verb::List,
            "help" => Verb::Help { unknown: None },
            _ => Verb::Help {
                unknown: Some(word.to_owned()),
            },
        }
    }
}

/// A form body as Slack posts it when `user_id` types `/elevate <text>` in `channel_id`. For
/// tests and the local stand-in page, which sign it with [`crate::signature::sign`].
pub fn slash_command_body(
    team_id: &str,
    user_id: &str,
    user_name: &str,
    channel_id: &str,
    text: &str,
    trigger_id: &str,
) -> String {
    let response_url = format!("https://hooks.slack.com/commands/{team_id}/1700000000/standin");
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "standin-verification-token")
        .append_pair("team_id", team_id)
        .append_pair("team_domain", "elevate-local")
        .append_pair("channel_id", channel_id)
        .append_pair("channel_name", channel_id)
        .append_pair("user_id", user_id)
        .append_pair("user_name", user_name)
        .append_pair("command", "/elevate")
        .append_pair("text", text)
        .append_pair("api_app_id", LOCAL_APP_ID)
        .append_pair("is_enterprise_install", "false")
        .append_pair("response_url", &response_url)
        .append_pair("trigger_id", trigger_id)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> SlashCommand {
        let body = slash_command_body("T0ELEVATE", "U0ALICE01", "alice", "C0DEV", text, "1.2.3");
        SlashCommand::parse(body.as_bytes()).expect("parse")
    }

    #[test]
    fn parses_a_real_slack_shaped_command() {
        // The fields Slack documents, in the order it sends them.
        let body = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example\
                    &enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc\
                    &channel_id=C2147483705&channel_name=test&user_id=U2147483697\
                    &user_name=Steve&command=%2Felevate&text=list\
                    &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678\
                    &trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456";
        let command = SlashCommand::parse(body.as_bytes()).expect("parse");
        assert_eq!(
            command,
            SlashCommand {
                team_id: "T0001".into(),
                user_id: "U2147483697".into(),
                user_name: "Steve".into(),
                channel_id: "C2147483705".into(),
                command: "/elevate".into(),
                text: "list".into(),
                trigger_id: "13345224609.738474920.8088930838d88f008e0".into(),
                response_url: Some("https://hooks.slack.com/commands/1234/5678".into()),
            }
        );
        assert_eq!(command.verb(), Verb::List);
    }

    #[test]
    fn refuses_bodies_without_user_or_trigger() {
        let cases = [
            ("", "user_id"),
            ("text=list&trigger_id=1.2", "user_id"),
            ("user_id=&trigger_id=1.2", "user_id"),
            ("user_id=U1", "trigger_id"),
            ("user_id=U1&trigger_id=", "trigger_id"),
        ];
        for (body, field) in cases {
            assert_eq!(
                SlashCommand::parse(body.as_bytes()),
                Err(CommandError::MissingField(field)),
                "{body}"
            );
        }
        // Bytes that are not UTF-8 are read, not a panic.
        let command = SlashCommand::parse(b"user_id=U1&trigger_id=t&text=%FF\xfe").expect("parse");
        assert!(matches!(command.verb(), Verb::Help { unknown: Some(_) }));
        // Without a response_url there is nothing to answer later, but the command stands.
        let command = SlashCommand::parse(b"user_id=U1&trigger_id=t").expect("parse");
        assert_eq!(command.response_url, None);
        assert_eq!(command.verb(), Verb::Request);
    }

    #[test]
    fn the_first_word_is_the_verb_whatever_its_case() {
        let help = |unknown: Option<&str>| Verb::Help {
            unknown: unknown.map(str::to_owned),
        };
        for (text, verb) in [
            ("", Verb::Request),
            ("   ", Verb::Request),
            ("request", Verb::Request),
            (" Request ", Verb::Request),
            ("request infra_access", Verb::Request),
            ("list", Verb::List),
            ("LIST", Verb::List),
            ("\tlist\n", Verb::List),
            ("help", help(None)),
            ("Help me", help(None)),
            ("approve 0193f0c2", help(Some("approve"))),
            ("<!channel>", help(Some("<!channel>"))),
            ("Lïst", help(Some("Lïst"))),
        ] {
            assert_eq!(parsed(text).verb(), verb, "{text:?}");
        }
    }

    #[test]
    fn helper_body_round_trips_awkward_text() {
        let text = "request & <co> = 100% *now*\nplease";
        let body = slash_command_body("T1", "U1", "o'brien & co", "D0DM", text, "9.8.7");
        let command = SlashCommand::parse(body.as_bytes()).expect("parse");
        assert_eq!(command.team_id, "T1");
        assert_eq!(command.user_id, "U1");
        assert_eq!(command.user_name, "o'brien & co");
        assert_eq!(command.channel_id, "D0DM");
        assert_eq!(command.command, "/elevate");
        assert_eq!(command.text, text);
        assert_eq!(command.trigger_id, "9.8.7");
        assert!(command
            .response_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://hooks.slack.com/commands/T1/")));
        assert_eq!(command.verb(), Verb::Request);
    }

    #[test]
    fn the_first_of_a_repeated_field_counts() {
        let body = "user_id=U1&user_id=U2&trigger_id=t&text=list&text=help";
        let command = SlashCommand::parse(body.as_bytes()).expect("parse");
        assert_eq!(command.user_id, "U1");
        assert_eq!(command.verb(), Verb::List);
    }
}
