//! infra/slack-app-manifest.yaml, which `make slack-manifest` fills in with a stack's outputs,
//! asks Slack for what elevate serves and nothing more: its URLs are outputs of template.yaml
//! naming the routes the approve function serves unsigned for Slack (and every such route), and
//! its bot holds exactly the scopes of the Slack methods elevate calls.

use std::collections::BTreeSet;

use serde_norway::Value;

use super::apigw::template_routes;

fn read(path: &str) -> Value {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn manifest() -> Value {
    read("infra/slack-app-manifest.yaml")
}

fn template() -> Value {
    read("template.yaml")
}

/// Every string of a document (comments are not part of it).
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Mapping(entries) => entries
            .iter()
            .flat_map(|(key, value)| strings(key).into_iter().chain(strings(value)))
            .collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        Value::Null | Value::Bool(_) | Value::Number(_) => Vec::new(),
    }
}

/// The output a whole value `${Name}` stands for.
fn placeholder(text: &str) -> &str {
    text.strip_prefix("${")
        .and_then(|text| text.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a placeholder: {text:?}"))
}

/// The text of an output's `!Sub` value.
fn output_sub<'t>(template: &'t Value, name: &str) -> &'t str {
    match &template["Outputs"][name]["Value"] {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str().expect("!Sub text"),
        other => panic!("template.yaml output {name} is not a !Sub URL: {other:?}"),
    }
}

/// The path of the API that an output's URL names (after the `ApiUrl` output).
fn output_path<'t>(template: &'t Value, name: &str) -> &'t str {
    let base = output_sub(template, "ApiUrl");
    output_sub(template, name)
        .strip_prefix(base)
        .unwrap_or_else(|| panic!("output {name} is not a URL of the API ({base})"))
}

#[test]
fn its_placeholders_are_whole_values_named_after_outputs_of_template_yaml() {
    let manifest = manifest();
    let template = template();
    let mut names = BTreeSet::new();
    for text in strings(&manifest) {
        if text.contains('$') {
            // `make slack-manifest` replaces whole values; a URL with a path added by hand
            // would name a route the test below does not see.
            let name = placeholder(text);
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{text}");
            assert!(
                !template["Outputs"][name].is_null(),
                "${{{name}}} is no output of template.yaml"
            );
            names.insert(name.to_owned());
        }
    }
    assert_eq!(
        names,
        BTreeSet::from([
            "SlackCommandsUrl".to_owned(),
            "SlackInteractionsUrl".to_owned()
        ])
    );
}

#[test]
fn its_urls_are_exactly_the_unsigned_routes_the_approve_function_serves_for_slack() {
    let manifest = manifest();
    let template = template();
    let commands = &manifest["features"]["slash_commands"];
    let interactivity = &manifest["settings"]["interactivity"];
    let told: BTreeSet<(String, String)> = [
        ("/slack/commands", &commands[0]["url"]),
        ("/slack/interactions", &interactivity["request_url"]),
    ]
    .into_iter()
    .map(|(expected, url)| {
        let path = output_path(&template, placeholder(url.as_str().expect("a URL")));
        assert_eq!(path, expected, "{url:?}");
        ("POST".to_owned(), path.to_owned())
    })
    .collect();

    let unsigned: BTreeSet<(String, String)> = template_routes()
        .into_iter()
        .filter(|(_, _, _, iam)| !iam)
        .map(|(method, path, function, _)| {
            assert_eq!(function, "elevate-approve", "{method} {path}");
            (method, path)
        })
        .collect();
    assert_eq!(told, unsigned);
}

#[test]
fn the_bot_asks_for_exactly_the_scopes_elevate_uses() {
    let manifest = manifest();
    let scopes = &manifest["oauth_config"]["scopes"];
    // chat:write for chat.postMessage (announcements, direct messages to a user id),
    // chat.update and chat.postEphemeral; commands for /elevate. views.open needs none.
    let bot: Vec<&str> = scopes["bot"]
        .as_sequence()
        .expect("bot scopes")
        .iter()
        .map(|scope| scope.as_str().expect("scope"))
        .collect();
    assert_eq!(bot, ["chat:write", "commands"]);
    assert!(scopes["user"].is_null(), "no user token: {scopes:?}");
}

#[test]
fn one_slash_command_and_interactivity_over_https_with_one_long_lived_bot_token() {
    let manifest = manifest();
    assert_eq!(manifest["display_information"]["name"], "elevate");
    let bot = &manifest["features"]["bot_user"];
    assert_eq!(bot["display_name"], "elevate");
    assert_eq!(bot["always_online"], Value::Bool(false));

    let commands = manifest["features"]["slash_commands"]
        .as_sequence()
        .expect("slash_commands");
    assert_eq!(commands.len(), 1);
    let command = &commands[0];
    assert_eq!(command["command"], "/elevate");
    assert_eq!(command["usage_hint"], "[list | help]");
    assert_eq!(command["should_escape"], Value::Bool(false));
    assert!(command["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));

    let settings = &manifest["settings"];
    assert_eq!(settings["interactivity"]["is_enabled"], Value::Bool(true));
    // Slack calls the request URLs; the secret holds one bot token nothing refreshes.
    for off in [
        "socket_mode_enabled",
        "token_rotation_enabled",
        "org_deploy_enabled",
    ] {
        assert_eq!(settings[off], Value::Bool(false), "{off}");
    }
    // No events are subscribed: elevate reads no messages.
    assert!(settings["event_subscriptions"].is_null());
}
