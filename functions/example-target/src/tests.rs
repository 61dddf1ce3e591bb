//! The example target against moto's IAM, with the contract's fixtures.

use std::path::Path;

use aws_sdk_iam::Client;
use elevate_testkit::{unique_name, Moto};
use serde_json::{json, Value};

use crate::handle;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/events")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

fn event(name: &str, user: &str) -> Value {
    let mut event = fixture(name);
    event["person"]["iam_user"] = Value::from(user);
    event
}

async fn members(iam: &Client, group: &str) -> Vec<String> {
    iam.get_group()
        .group_name(group)
        .send()
        .await
        .expect("get group")
        .users()
        .iter()
        .map(|u| u.user_name().to_owned())
        .collect()
}

#[tokio::test]
async fn escalates_and_deescalates_through_iam_group_membership() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let group = unique_name("example-target");
    let user = unique_name("alice");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("group");
    iam.create_user()
        .user_name(&user)
        .send()
        .await
        .expect("user");

    let answer = handle(&iam, &group, event("target-escalate.json", &user)).await;
    assert_eq!(answer, fixture("target-answer-ok.json"));
    assert_eq!(members(&iam, &group).await, std::slice::from_ref(&user));
    // Granting twice is success.
    assert_eq!(
        handle(&iam, &group, event("target-escalate.json", &user)).await,
        json!({"ok": true})
    );

    let answer = handle(&iam, &group, event("target-deescalate.json", &user)).await;
    assert_eq!(answer, json!({"ok": true}));
    assert!(members(&iam, &group).await.is_empty());
    // Removing what is already gone is success.
    let answer = handle(&iam, &group, event("target-deescalate.json", &user)).await;
    assert_eq!(answer, json!({"ok": true}));
}

#[tokio::test]
async fn refuses_what_it_cannot_do_and_says_why() {
    let moto = Moto::start().await;
    let iam = Client::new(&moto.sdk_config().await);
    let group = unique_name("example-target");
    iam.create_group()
        .group_name(&group)
        .send()
        .await
        .expect("group");

    let mut unknown_type = event("target-escalate.json", "alice");
    unknown_type["type"] = Value::from("promote");
    let mut no_person = fixture("target-escalate.json");
    if let Some(event) = no_person.as_object_mut() {
        event.remove("person");
    }
    let cases = [
        (unknown_type, "unknown type `promote`"),
        (no_person, "missing field `person`"),
        (json!("escalate"), "not a custom target event"),
        (event("target-escalate.json", " "), "iam_user is empty"),
        (
            event("target-escalate.json", "nobody-by-that-name"),
            "AddUserToGroup",
        ),
    ];
    for (event, says) in cases {
        let answer = handle(&iam, &group, event.clone()).await;
        assert_eq!(answer["ok"], false, "{event}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{error}");
    }
    assert!(members(&iam, &group).await.is_empty());
}
