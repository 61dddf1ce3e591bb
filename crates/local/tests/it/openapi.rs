//! docs/openapi.yaml describes the API template.yaml deploys: the same routes, each behind the
//! same gate (API Gateway's IAM authorizer, or none for Slack's slash command and interactivity
//! callbacks, which the approve function checks itself), and every error answer in the documented `{"error","message"}` body.
//! The local stack's fuzz (tests/tests/local_stack/openapi_fuzz.rs) holds the answers to it.

use std::collections::BTreeSet;

use serde_norway::{Mapping, Value};

use super::apigw::template_routes;

/// The operations of a path item; its other keys (`parameters`, `summary`, ...) are not.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    serde_norway::from_str(&text).expect("docs/openapi.yaml is YAML")
}

fn mapping<'v>(value: &'v Value, what: &str) -> &'v Mapping {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {value:?}"))
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// Each operation as (METHOD, path, its definition).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in mapping(&doc["paths"], "paths") {
        for (method, operation) in mapping(item, "a path item") {
            let method = text(method);
            if METHODS.contains(&method) {
                found.push((method.to_uppercase(), text(path).to_owned(), operation));
            }
        }
    }
    found
}

/// The names of the security schemes an operation requires (its own `security`, else the
/// document's).
fn schemes(doc: &Value, operation: &Value) -> BTreeSet<String> {
    let security = operation
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    security
        .iter()
        .flat_map(|requirement| mapping(requirement, "a security requirement").keys())
        .map(|name| text(name).to_owned())
        .collect()
}

/// Follows `$ref`s within the document.
fn resolve<'v>(doc: &'v Value, value: &'v Value) -> &'v Value {
    let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
        return value;
    };
    let pointer = reference
        .strip_prefix("#/")
        .unwrap_or_else(|| panic!("only local references: {reference}"));
    let target = pointer
        .split('/')
        .fold(doc, |node, key| node.get(key).unwrap_or(&Value::Null));
    assert!(!target.is_null(), "{reference} points at nothing");
    resolve(doc, target)
}

/// `{"error": one of `codes`, "message": text}`, and nothing else.
fn error_codes(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let schema = resolve(doc, schema);
    let properties = mapping(schema.get("properties")?, "properties");
    let names: BTreeSet<&str> = properties.keys().map(text).collect();
    let required: BTreeSet<&str> = schema
        .get("required")?
        .as_sequence()?
        .iter()
        .map(text)
        .collect();
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    if names != BTreeSet::from(["error", "message"]) || required != names || !closed {
        return None;
    }
    let codes = resolve(doc, &properties["error"])
        .get("enum")?
        .as_sequence()?;
    Some(codes.iter().map(|code| text(code).to_owned()).collect())
}

#[test]
fn the_document_has_exactly_the_routes_of_template_yaml_each_with_its_auth() {
    let doc = openapi();
    let documented: BTreeSet<(String, String, bool)> = operations(&doc)
        .into_iter()
        .map(|(method, path, operation)| {
            let iam = schemes(&doc, operation).contains("sigv4");
            (method, path, iam)
        })
        .collect();
    let deployed: BTreeSet<(String, String, bool)> = template_routes()
        .into_iter()
        .map(|(method, path, _function, iam)| (method, path, iam))
        .collect();
    assert!(deployed.len() >= 9, "template routes read: {deployed:#?}");
    assert_eq!(
        documented, deployed,
        "docs/openapi.yaml (left) and template.yaml (right) disagree on the routes or their auth"
    );

    let sigv4 = &doc["components"]["securitySchemes"]["sigv4"];
    assert_eq!(
        sigv4["x-amazon-apigateway-authtype"], "awsSigv4",
        "{sigv4:?}"
    );
    for (method, path, operation) in operations(&doc) {
        let schemes = schemes(&doc, operation);
        assert_eq!(
            schemes.len(),
            1,
            "{method} {path}: one way in, SigV4 or Slack's signature: {schemes:?}"
        );
        if !schemes.contains("sigv4") {
            assert!(
                ["/slack/commands", "/slack/interactions"].contains(&path.as_str()),
                "{method} {path}: only Slack's callbacks are unsigned"
            );
            assert!(schemes.contains("slackSignature"), "{schemes:?}");
        }
    }
}

#[test]
fn every_operation_documents_its_path_parameters_and_its_refusals_in_the_error_body() {
    let doc = openapi();
    for (method, path, operation) in operations(&doc) {
        let route = format!("{method} {path}");
        let parameters: BTreeSet<String> = operation
            .get("parameters")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| text(&parameter["name"]).to_owned())
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        assert_eq!(parameters, in_path, "{route}: path parameters");

        let responses = mapping(&operation["responses"], "responses");
        let statuses: BTreeSet<&str> = responses.keys().map(text).collect();
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{route}: no success answer"
        );
        let signed = schemes(&doc, operation).contains("sigv4");
        let must = if signed {
            ["403", "500"].as_slice()
        } else {
            ["400", "401", "500"].as_slice()
        };
        for status in must {
            assert!(statuses.contains(status), "{route}: {status} undocumented");
        }

        for (status, response) in responses {
            let status = text(status);
            if status.starts_with('2') || status == "429" {
                continue;
            }
            let schema = &resolve(&doc, response)["content"]["application/json"]["schema"];
            // A function's body, or also API Gateway's `{"message"}` where it answers itself.
            let alternatives: Vec<&Value> = match schema.get("oneOf").and_then(Value::as_sequence) {
                Some(options) => options.iter().collect(),
                None => vec![schema],
            };
            let codes: Vec<BTreeSet<String>> = alternatives
                .iter()
                .filter_map(|option| error_codes(&doc, option))
                .collect();
            assert_eq!(
                codes.len(),
                1,
                "{route} {status}: not the {{\"error\",\"message\"}} body: {schema:?}"
            );
            let expected: &[&str] = match status {
                "400" => &["bad_request"],
                "401" => &["bad_signature"],
                "403" => &["unknown_caller", "forbidden"],
                "404" => &["not_found"],
                "409" => &["conflict"],
                "500" => &["internal"],
                other => panic!("{route}: status {other} is not one of docs/contracts.md"),
            };
            for code in expected {
                assert!(
                    codes[0].contains(*code),
                    "{route} {status}: code {code} missing from {:?}",
                    codes[0]
                );
            }
        }
    }
}

#[test]
fn the_slack_routes_take_slack_s_signed_form_posts() {
    let doc = openapi();
    let slack: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, _, operation)| schemes(&doc, operation).contains("slackSignature"))
        .collect();
    let paths: BTreeSet<&str> = slack.iter().map(|(_, path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/slack/commands", "/slack/interactions"])
    );
    // The timestamp is part of the signature (as X-Amz-Date is of SigV4's), so the scheme
    // describes it: a case without it is refused as unsigned, not as a bad parameter.
    let scheme = &doc["components"]["securitySchemes"]["slackSignature"];
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-Slack-Signature");
    assert!(text(&scheme["description"]).contains("X-Slack-Request-Timestamp"));
    for (method, path, operation) in slack {
        let route = format!("{method} {path}");
        let body = &resolve(&doc, &operation["requestBody"])["content"];
        let form = &body["application/x-www-form-urlencoded"]["schema"];
        assert!(
            form["properties"].as_mapping().is_some(),
            "{route}: not a form body: {body:?}"
        );
    }
}
