//! Fuzzing the parser of Slack's button clicks (`payload=<JSON>` form bodies): whatever form,
//! JSON or damaged copy of a real click arrives, the answer is a typed [`InteractionError`]
//! (a 400 at the approve function), never a panic; what is accepted names a user, a channel and
//! a message; and every click Slack can send is read back exactly.
#![allow(clippy::unwrap_used)]

use elevate_core::service::Decision;
use elevate_core::RequestId;
use elevate_slack::interaction::{APPROVE_ACTION, DENY_ACTION};
use elevate_slack::{
    action_id, block_actions_body, Clicked, Interaction, InteractionError, END_ACCESS_ACTION,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

/// Enough to shake out panics while keeping `make test` fast; no regression files are written
/// into the checkout (a failure prints its minimal input, which belongs in a named test).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const ID: &str = "0193f0c2-8d4e-7b6a-9c1d-2e3f4a5b6c7d";

/// The keys of a `block_actions` payload, so generated objects hit the parser's fields.
const KEYS: &[&str] = &[
    "type",
    "user",
    "id",
    "username",
    "name",
    "channel",
    "container",
    "channel_id",
    "message_ts",
    "message",
    "ts",
    "response_url",
    "actions",
    "action_id",
    "value",
];

fn form(payload: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", payload)
        .finish()
}

/// A real-shaped click on request [`ID`].
fn valid_payload(action_id: &str) -> Value {
    let body = block_actions_body(
        "U0BOB0001",
        "bob",
        "C0APPROVALS",
        "1700000000.000100",
        action_id,
        ID,
    );
    let (_, payload) = form_urlencoded::parse(body.as_bytes())
        .find(|(key, _)| key == "payload")
        .unwrap();
    serde_json::from_str(&payload).unwrap()
}

/// Any JSON value, with object keys mostly from [`KEYS`] and `block_actions` among the strings.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from("block_actions")),
        Just(Value::from(APPROVE_ACTION)),
        Just(Value::from(ID)),
        Just(Value::from("")),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every place in `value`, as JSON pointers (the root is `""`).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[derive(Debug, Clone)]
enum Edit {
    Remove,
    Replace(Value),
    Wrap,
}

/// One structural edit at one place in `value`: a field removed, retyped, or put in an array.
fn edit(value: &mut Value, at: &Index, how: &Edit) {
    let mut places = Vec::new();
    pointers(value, String::new(), &mut places);
    let place = at.get(&places).clone();
    match how {
        Edit::Remove => {
            if let Some((parent, last)) = place.rsplit_once('/') {
                let last = last.replace("~1", "/").replace("~0", "~");
                match value.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Edit::Replace(new) => *value.pointer_mut(&place).unwrap() = new.clone(),
        Edit::Wrap => {
            let slot = value.pointer_mut(&place).unwrap();
            *slot = Value::Array(vec![slot.take()]);
        }
    }
}

fn structural_edit() -> impl Strategy<Value = (Index, Edit)> {
    let how = prop_oneof![
        2 => Just(Edit::Remove),
        2 => json().prop_map(Edit::Replace),
        1 => Just(Edit::Replace(Value::from(""))),
        1 => Just(Edit::Replace(Value::Null)),
        1 => Just(Edit::Wrap),
    ];
    (any::<Index>(), how)
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(Index, u8),
    Delete(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, xor)| ByteEdit::Flip(at, xor)),
        any::<Index>().prop_map(ByteEdit::Delete),
        (
            any::<Index>(),
            prop::sample::select(b"%&=+{}[]\",:\\0".to_vec())
        )
            .prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, e: &ByteEdit) {
    let len = bytes.len();
    match e {
        ByteEdit::Flip(at, xor) if len > 0 => bytes[at.index(len)] ^= xor,
        ByteEdit::Delete(at) if len > 0 => {
            bytes.remove(at.index(len));
        }
        ByteEdit::Insert(at, b) => bytes.insert(at.index(len + 1), *b),
        ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
        _ => {}
    }
}

/// Parses `body`; whatever it accepts names who clicked where, and its decision (if any) is a
/// real request id with the verdict of the button.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(interaction) = Interaction::parse(body) else {
        return Ok(());
    };
    prop_assert!(!interaction.user_id.is_empty());
    prop_assert!(!interaction.channel_id.is_empty());
    prop_assert!(!interaction.message_ts.is_empty());
    match interaction.clicked() {
        Ok(Clicked::Decide(click)) => {
            let action = &interaction.actions[0];
            prop_assert_eq!(action_id(click.decision), action.action_id.as_str());
            let value = action.value.as_deref().unwrap_or_default();
            prop_assert_eq!(Ok(click.request_id), value.parse::<RequestId>());
        }
        Ok(Clicked::EndAccess(id)) => {
            let action = &interaction.actions[0];
            prop_assert_eq!(END_ACCESS_ACTION, action.action_id.as_str());
            let value = action.value.as_deref().unwrap_or_default();
            prop_assert_eq!(Ok(id), value.parse::<RequestId>());
        }
        Err(InteractionError::NoAction) => prop_assert!(interaction.actions.is_empty()),
        Err(InteractionError::UnknownAction(_) | InteractionError::BadRequestId(_)) => {}
        Err(other) => prop_assert!(false, "decision failed with a parse error: {other:?}"),
    }
    Ok(())
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    for depth in [200, 10_000] {
        let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(matches!(
            Interaction::parse(form(&payload).as_bytes()),
            Err(InteractionError::BadJson(_))
        ));
        let payload = format!(
            "{{\"type\":\"block_actions\",\"user\":{}1{}}}",
            "{\"id\":".repeat(depth),
            "}".repeat(depth)
        );
        assert!(Interaction::parse(form(&payload).as_bytes()).is_err());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_a_typed_error_or_a_click(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&body)?;
    }

    #[test]
    fn arbitrary_form_bodies_are_a_typed_error_or_a_click(
        pairs in prop::collection::vec(
            (prop_oneof![Just("payload".to_owned()), Just("token".to_owned()), any::<String>()], any::<String>()),
            0..5,
        ),
        raw_suffix in "[%&=+a-zA-Z0-9]{0,12}",
    ) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &pairs {
            body.append_pair(key, value);
        }
        let body = format!("{}{raw_suffix}", body.finish());
        check(body.as_bytes())?;
    }

    #[test]
    fn arbitrary_payload_json_is_a_typed_error_or_a_click(payload in json()) {
        check(form(&payload.to_string()).as_bytes())?;
        // The same JSON under a block_actions type, to get past the first check.
        if let Value::Object(mut map) = payload {
            map.insert("type".to_owned(), Value::from("block_actions"));
            check(form(&Value::Object(map).to_string()).as_bytes())?;
        }
    }

    #[test]
    fn arbitrary_payload_text_is_a_typed_error_or_a_click(payload in any::<String>()) {
        check(form(&payload).as_bytes())?;
    }

    #[test]
    fn a_structurally_damaged_click_is_a_typed_error_or_a_click(
        approve in any::<bool>(),
        edits in prop::collection::vec(structural_edit(), 1..4),
    ) {
        let mut payload = valid_payload(if approve { APPROVE_ACTION } else { DENY_ACTION });
        for (at, how) in &edits {
            edit(&mut payload, at, how);
        }
        check(form(&payload.to_string()).as_bytes())?;
    }

    #[test]
    fn a_byte_damaged_click_is_a_typed_error_or_a_click(
        approve in any::<bool>(),
        encoded in any::<bool>(),
        edits in prop::collection::vec(byte_edit(), 1..6),
    ) {
        let payload = valid_payload(if approve { APPROVE_ACTION } else { DENY_ACTION });
        // Damage the form body as sent, or the JSON before it is form-encoded.
        let mut bytes = if encoded { form(&payload.to_string()).into_bytes() } else { payload.to_string().into_bytes() };
        for e in &edits {
            apply_bytes(&mut bytes, e);
        }
        if encoded {
            check(&bytes)?;
        } else {
            check(form(&String::from_utf8_lossy(&bytes)).as_bytes())?;
        }
    }

    #[test]
    fn every_click_slack_can_send_is_read_back(
        user_id in ".{1,20}",
        user_name in ".{0,20}",
        channel in ".{1,20}",
        ts in "[0-9]{10}\\.[0-9]{6}",
        approve in any::<bool>(),
        bits in any::<u128>(),
    ) {
        let id = RequestId::try_from(format!("{:032x}", bits)).unwrap();
        let action_id = if approve { APPROVE_ACTION } else { DENY_ACTION };
        let body = block_actions_body(&user_id, &user_name, &channel, &ts, action_id, id.as_str());
        let interaction = Interaction::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(&interaction.user_id, &user_id);
        prop_assert_eq!(&interaction.user_name, &user_name);
        prop_assert_eq!(&interaction.channel_id, &channel);
        prop_assert_eq!(&interaction.message_ts, &ts);
        let Ok(Clicked::Decide(click)) = interaction.clicked() else {
            panic!("an approve or deny click");
        };
        prop_assert_eq!(click.decision, if approve { Decision::Approve } else { Decision::Deny });
        prop_assert_eq!(click.request_id, id);
    }
}
