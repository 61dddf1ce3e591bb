//! Slack's documented shapes and limits for Block Kit messages and modal views, checked the way
//! Slack checks them, so a message or view that real Slack would refuse fails the tests that
//! send it instead of failing in production.
//!
//! The limits, from Slack's reference (docs.slack.dev/reference/block-kit and
//! /reference/views/modal-views):
//! - blocks: at most 50 in a message, 100 in a modal; `block_id` at most 255 characters and
//!   unique within the message or view.
//! - text object: `text` of 1 to 3,000 characters; some fields take `plain_text` only.
//! - section: `text` (3,000) unless `fields` is given; `fields` at most 10 text objects of at
//!   most 2,000 characters each.
//! - context: at most 10 elements (image elements and text objects).
//! - actions: at most 25 elements.
//! - header: a `plain_text` `text` of at most 150 characters.
//! - image block: `image_url` (3,000) or `slack_file`, and `alt_text` (2,000).
//! - input (modals only here): `label` `plain_text` of at most 2,000, `element` an input
//!   element, `hint` `plain_text` of at most 2,000, `optional` a boolean.
//! - button: `text` `plain_text` of at most 75 characters, `action_id` 255, `value` 2,000, `url`
//!   3,000, `style` `primary` or `danger`, `accessibility_label` 75.
//! - confirmation dialog: `title` (`plain_text`) 100, `text` 300, `confirm` and `deny`
//!   (`plain_text`) 30.
//! - select menus: `placeholder` `plain_text` of at most 150; a static select has `options` (at
//!   most 100) or `option_groups` (at most 100, each with a `plain_text` `label` of at most 75
//!   and at most 100 options), not both; an `initial_option` is one of its options.
//! - option object: `text` 75, `value` 150, `description` 75.
//! - plain-text input: `max_length` 1 to 3,000, `min_length` 0 to 3,000.
//! - modal view: `type` `modal`; `title` `plain_text` of at most 24 characters; `submit` and
//!   `close` `plain_text` of at most 24; `submit` required when an input block is in `blocks`;
//!   `private_metadata` 3,000; `callback_id` 255; `external_id` 255.
//! - `chat.postMessage`: the top-level `text` at most 40,000 characters (checked by the caller).
//!
//! An `action_id` is unique within a message (a click names its message and action only), and
//! within its block in a modal, where submitted values are keyed by block and then action.
//!
//! Each refusal names the rule and where it was broken as a JSON pointer, the way Slack's
//! `response_metadata.messages` do: `... [json-pointer:/blocks/3/fields]`.

use std::collections::HashSet;
use std::fmt::Display;

use serde_json::Value;

/// Slack's limit on the text of one text object (`plain_text` or `mrkdwn`).
pub const MAX_TEXT_OBJECT_CHARS: usize = 3000;
/// Slack's limit on a message's top-level `text`.
pub const MAX_MESSAGE_TEXT_CHARS: usize = 40_000;
pub const MAX_MESSAGE_BLOCKS: usize = 50;
pub const MAX_MODAL_BLOCKS: usize = 100;
const MAX_ID_CHARS: usize = 255;
const MAX_SECTION_FIELDS: usize = 10;
const MAX_FIELD_CHARS: usize = 2000;
const MAX_CONTEXT_ELEMENTS: usize = 10;
const MAX_ACTIONS_ELEMENTS: usize = 25;
const MAX_HEADER_CHARS: usize = 150;
const MAX_URL_CHARS: usize = 3000;
const MAX_ALT_TEXT_CHARS: usize = 2000;
const MAX_LABEL_CHARS: usize = 2000;
const MAX_BUTTON_TEXT_CHARS: usize = 75;
const MAX_BUTTON_VALUE_CHARS: usize = 2000;
const MAX_CONFIRM_TITLE_CHARS: usize = 100;
const MAX_CONFIRM_TEXT_CHARS: usize = 300;
const MAX_CONFIRM_BUTTON_CHARS: usize = 30;
const MAX_PLACEHOLDER_CHARS: usize = 150;
const MAX_OPTIONS: usize = 100;
const MAX_OPTION_GROUPS: usize = 100;
const MAX_OPTION_TEXT_CHARS: usize = 75;
const MAX_OPTION_VALUE_CHARS: usize = 150;
const MAX_GROUP_LABEL_CHARS: usize = 75;
const MAX_CHOICE_OPTIONS: usize = 10;
const MAX_OVERFLOW_OPTIONS: usize = 5;
const MAX_INPUT_LENGTH: u64 = 3000;
const MAX_VIEW_TITLE_CHARS: usize = 24;
const MAX_PRIVATE_METADATA_CHARS: usize = 3000;

type Checked = Result<(), String>;

/// Checks the `blocks` of a `chat.postMessage`, `chat.update` or `chat.postEphemeral`; the
/// error names the broken rule and where, for Slack's `invalid_blocks`.
pub fn check_message_blocks(blocks: &Value) -> Result<(), String> {
    let mut checker = Checker::new(Surface::Message);
    checker.blocks(blocks, "/blocks")?;
    text_lengths(blocks, "/blocks")
}

/// Checks the `view` of a `views.open`; the error names the broken rule and where, for Slack's
/// `invalid_arguments`.
pub fn check_view(view: &Value) -> Result<(), String> {
    const AT: &str = "/view";
    if !view.is_object() {
        return fail(AT, "view must be a JSON object");
    }
    match view.get("type").and_then(Value::as_str) {
        Some("modal") => {}
        Some(other) => {
            return fail(
                &pointer(AT, "type"),
                format!("views.open opens modals: type must be `modal`, not `{other}`"),
            )
        }
        None => return fail(&pointer(AT, "type"), "missing required field: type"),
    }
    text(
        required(view, "title", AT)?,
        &pointer(AT, "title"),
        MAX_VIEW_TITLE_CHARS,
        Kind::Plain,
    )?;
    for key in ["submit", "close"] {
        optional_text(view, key, AT, MAX_VIEW_TITLE_CHARS, Kind::Plain)?;
    }
    optional_string(view, "private_metadata", AT, MAX_PRIVATE_METADATA_CHARS)?;
    for key in ["callback_id", "external_id"] {
        optional_string(view, key, AT, MAX_ID_CHARS)?;
    }
    for key in ["clear_on_close", "notify_on_close", "submit_disabled"] {
        optional_bool(view, key, AT)?;
    }
    let blocks = required(view, "blocks", AT)?;
    let mut checker = Checker::new(Surface::Modal);
    checker.blocks(blocks, &pointer(AT, "blocks"))?;
    if checker.inputs > 0 && is_absent(view.get("submit")) {
        return fail(
            &pointer(AT, "submit"),
            "missing required field: submit (required when the view has input blocks)",
        );
    }
    text_lengths(blocks, &pointer(AT, "blocks"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Message,
    Modal,
}

/// What a text field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Any,
}

/// Where an element sits, which decides the element types Slack takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Accessory,
    Actions,
    Input,
}

impl Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Place::Accessory => "a section accessory",
            Place::Actions => "an actions block",
            Place::Input => "an input block",
        })
    }
}

const SELECTS: [&str; 5] = [
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
];
const MULTI_SELECTS: [&str; 5] = [
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
];
const INPUT_ONLY: [&str; 6] = [
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
];

/// The checks over one message or view, with the ids it has seen.
struct Checker {
    surface: Surface,
    block_ids: HashSet<String>,
    action_ids: HashSet<String>,
    inputs: usize,
}

impl Checker {
    fn new(surface: Surface) -> Self {
        Self {
            surface,
            block_ids: HashSet::new(),
            action_ids: HashSet::new(),
            inputs: 0,
        }
    }

    fn blocks(&mut self, blocks: &Value, at: &str) -> Checked {
        let Some(blocks) = blocks.as_array() else {
            return fail(at, "blocks must be an array");
        };
        let (max, surface) = match self.surface {
            Surface::Message => (MAX_MESSAGE_BLOCKS, "message"),
            Surface::Modal => (MAX_MODAL_BLOCKS, "modal"),
        };
        if blocks.len() > max {
            return fail(
                at,
                format!("{} blocks, at most {max} in a {surface}", blocks.len()),
            );
        }
        blocks
            .iter()
            .enumerate()
            .try_for_each(|(i, block)| self.block(block, &pointer(at, i)))
    }

    fn block(&mut self, block: &Value, at: &str) -> Checked {
        if !block.is_object() {
            return fail(at, "a block must be an object");
        }
        if let Some(id) = optional_string(block, "block_id", at, MAX_ID_CHARS)? {
            let at = pointer(at, "block_id");
            if id.is_empty() {
                return fail(&at, "block_id must not be empty");
            }
            if !self.block_ids.insert(id.to_owned()) {
                return fail(&at, format!("block_id `{id}` is used twice"));
            }
        }
        if self.surface == Surface::Modal {
            self.action_ids.clear();
        }
        let kind = block.get("type").and_then(Value::as_str);
        match kind {
            Some("section") => self.section(block, at),
            Some("context") => context(block, at),
            Some("actions") => self.actions(block, at),
            Some("divider") => Ok(()),
            Some("header") => text(
                required(block, "text", at)?,
                &pointer(at, "text"),
                MAX_HEADER_CHARS,
                Kind::Plain,
            ),
            Some("image") => image(block, at),
            Some("rich_text") => match block.get("elements") {
                Some(Value::Array(_)) => Ok(()),
                _ => fail(&pointer(at, "elements"), "elements must be an array"),
            },
            Some("input") if self.surface == Surface::Modal => self.input(block, at),
            Some("input") => fail(
                &pointer(at, "type"),
                "input blocks are for modals, not messages",
            ),
            Some(other) => fail(
                &pointer(at, "type"),
                format!("unknown block type `{other}`"),
            ),
            None => fail(&pointer(at, "type"), "missing required field: type"),
        }
    }

    fn section(&mut self, block: &Value, at: &str) -> Checked {
        let fields = block.get("fields").filter(|v| !v.is_null());
        if is_absent(block.get("text")) && fields.is_none() {
            return fail(at, "a section needs text or fields");
        }
        optional_text(block, "text", at, MAX_TEXT_OBJECT_CHARS, Kind::Any)?;
        if let Some(fields) = fields {
            let at = pointer(at, "fields");
            let fields = items(fields, &at, 1, MAX_SECTION_FIELDS)?;
            for (i, field) in fields.iter().enumerate() {
                text(field, &pointer(&at, i), MAX_FIELD_CHARS, Kind::Any)?;
            }
        }
        match block.get("accessory").filter(|v| !v.is_null()) {
            Some(accessory) => self.element(accessory, &pointer(at, "accessory"), Place::Accessory),
            None => Ok(()),
        }
    }

    fn actions(&mut self, block: &Value, at: &str) -> Checked {
        let at = pointer(at, "elements");
        let elements = items(
            required(block, "elements", &parent(&at))?,
            &at,
            1,
            MAX_ACTIONS_ELEMENTS,
        )?;
        elements
            .iter()
            .enumerate()
            .try_for_each(|(i, element)| self.element(element, &pointer(&at, i), Place::Actions))
    }

    fn input(&mut self, block: &Value, at: &str) -> Checked {
        self.inputs += 1;
        text(
            required(block, "label", at)?,
            &pointer(at, "label"),
            MAX_LABEL_CHARS,
            Kind::Plain,
        )?;
        optional_text(block, "hint", at, MAX_LABEL_CHARS, Kind::Plain)?;
        optional_bool(block, "optional", at)?;
        optional_bool(block, "dispatch_action", at)?;
        self.element(
            required(block, "element", at)?,
            &pointer(at, "element"),
            Place::Input,
        )
    }

    fn element(&mut self, element: &Value, at: &str, place: Place) -> Checked {
        if !element.is_object() {
            return fail(at, "an element must be an object");
        }
        let Some(kind) = element.get("type").and_then(Value::as_str) else {
            return fail(&pointer(at, "type"), "missing required field: type");
        };
        let fits = match kind {
            "button" | "overflow" => place != Place::Input,
            "image" => place == Place::Accessory,
            "checkboxes" | "radio_buttons" | "datepicker" | "timepicker" => true,
            "datetimepicker" => place != Place::Accessory,
            _ if SELECTS.contains(&kind) => true,
            _ if MULTI_SELECTS.contains(&kind) => place != Place::Actions,
            _ if INPUT_ONLY.contains(&kind) => place == Place::Input,
            _ => {
                return fail(
                    &pointer(at, "type"),
                    format!("unknown element type `{kind}`"),
                )
            }
        };
        if !fits {
            return fail(
                &pointer(at, "type"),
                format!("a {kind} element cannot be used in {place}"),
            );
        }
        if kind == "image" {
            return image(element, at);
        }
        self.action_id(element, at)?;
        optional_text(
            element,
            "placeholder",
            at,
            MAX_PLACEHOLDER_CHARS,
            Kind::Plain,
        )?;
        if let Some(dialog) = element.get("confirm").filter(|v| !v.is_null()) {
            confirm(dialog, &pointer(at, "confirm"))?;
        }
        match kind {
            "button" => button(element, at),
            "static_select" | "multi_static_select" => static_select(element, at),
            "overflow" => {
                let at = pointer(at, "options");
                let options = items(
                    required(element, "options", &parent(&at))?,
                    &at,
                    1,
                    MAX_OVERFLOW_OPTIONS,
                )?;
                options
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, o)| option(o, &pointer(&at, i), Kind::Plain))
            }
            "checkboxes" | "radio_buttons" => {
                let at = pointer(at, "options");
                let options = items(
                    required(element, "options", &parent(&at))?,
                    &at,
                    1,
                    MAX_CHOICE_OPTIONS,
                )?;
                options
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, o)| option(o, &pointer(&at, i), Kind::Any))
            }
            "plain_text_input" => plain_text_input(element, at),
            _ => Ok(()),
        }
    }

    fn action_id(&mut self, element: &Value, at: &str) -> Checked {
        let Some(id) = optional_string(element, "action_id", at, MAX_ID_CHARS)? else {
            return Ok(());
        };
        let at = pointer(at, "action_id");
        if id.is_empty() {
            return fail(&at, "action_id must not be empty");
        }
        if !self.action_ids.insert(id.to_owned()) {
            let scope = match self.surface {
                Surface::Message => "message",
                Surface::Modal => "block",
            };
            return fail(
                &at,
                format!("action_id `{id}` is used twice in the {scope}"),
            );
        }
        Ok(())
    }
}

fn context(block: &Value, at: &str) -> Checked {
    let at = pointer(at, "elements");
    let elements = items(
        required(block, "elements", &parent(&at))?,
        &at,
        1,
        MAX_CONTEXT_ELEMENTS,
    )?;
    for (i, element) in elements.iter().enumerate() {
        let at = pointer(&at, i);
        match element.get("type").and_then(Value::as_str) {
            Some("image") => image(element, &at)?,
            _ => text(element, &at, MAX_TEXT_OBJECT_CHARS, Kind::Any)?,
        }
    }
    Ok(())
}

/// An image block or image element: an `image_url` or a `slack_file`, and its `alt_text`.
fn image(image: &Value, at: &str) -> Checked {
    let url = optional_string(image, "image_url", at, MAX_URL_CHARS)?;
    if url.is_none() && is_absent(image.get("slack_file")) {
        return fail(
            &pointer(at, "image_url"),
            "missing required field: image_url (or slack_file)",
        );
    }
    if optional_string(image, "alt_text", at, MAX_ALT_TEXT_CHARS)?.is_none() {
        return fail(&pointer(at, "alt_text"), "missing required field: alt_text");
    }
    optional_text(image, "title", at, MAX_ALT_TEXT_CHARS, Kind::Plain)
}

fn button(button: &Value, at: &str) -> Checked {
    text(
        required(button, "text", at)?,
        &pointer(at, "text"),
        MAX_BUTTON_TEXT_CHARS,
        Kind::Plain,
    )?;
    optional_string(button, "value", at, MAX_BUTTON_VALUE_CHARS)?;
    optional_string(button, "url", at, MAX_URL_CHARS)?;
    optional_string(button, "accessibility_label", at, MAX_BUTTON_TEXT_CHARS)?;
    style(button, at)
}

/// `style`, of buttons and confirmation dialogs: `primary` or `danger` when given.
fn style(object: &Value, at: &str) -> Checked {
    match optional_string(object, "style", at, MAX_ID_CHARS)? {
        None | Some("primary" | "danger") => Ok(()),
        Some(other) => fail(
            &pointer(at, "style"),
            format!("style must be `primary` or `danger`, not `{other}`"),
        ),
    }
}

fn confirm(dialog: &Value, at: &str) -> Checked {
    if !dialog.is_object() {
        return fail(at, "confirm must be a confirmation dialog object");
    }
    let fields = [
        ("title", MAX_CONFIRM_TITLE_CHARS, Kind::Plain),
        ("text", MAX_CONFIRM_TEXT_CHARS, Kind::Any),
        ("confirm", MAX_CONFIRM_BUTTON_CHARS, Kind::Plain),
        ("deny", MAX_CONFIRM_BUTTON_CHARS, Kind::Plain),
    ];
    for (key, max, kind) in fields {
        text(required(dialog, key, at)?, &pointer(at, key), max, kind)?;
    }
    style(dialog, at)
}

fn static_select(select: &Value, at: &str) -> Checked {
    let options = select.get("options").filter(|v| !v.is_null());
    let groups = select.get("option_groups").filter(|v| !v.is_null());
    let all: Vec<&Value> = match (options, groups) {
        (Some(_), Some(_)) => {
            return fail(
                &pointer(at, "option_groups"),
                "give options or option_groups, not both",
            )
        }
        (None, None) => {
            return fail(
                &pointer(at, "options"),
                "missing required field: options (or option_groups)",
            )
        }
        (Some(options), None) => {
            let at = pointer(at, "options");
            let options = items(options, &at, 1, MAX_OPTIONS)?;
            for (i, o) in options.iter().enumerate() {
                option(o, &pointer(&at, i), Kind::Plain)?;
            }
            options.iter().collect()
        }
        (None, Some(groups)) => {
            let at = pointer(at, "option_groups");
            let mut all = Vec::new();
            for (i, group) in items(groups, &at, 1, MAX_OPTION_GROUPS)?.iter().enumerate() {
                let at = pointer(&at, i);
                text(
                    required(group, "label", &at)?,
                    &pointer(&at, "label"),
                    MAX_GROUP_LABEL_CHARS,
                    Kind::Plain,
                )?;
                let at = pointer(&at, "options");
                let options = items(
                    required(group, "options", &parent(&at))?,
                    &at,
                    1,
                    MAX_OPTIONS,
                )?;
                for (j, o) in options.iter().enumerate() {
                    option(o, &pointer(&at, j), Kind::Plain)?;
                }
                all.extend(options);
            }
            all
        }
    };
    // Like Slack: what starts selected must be one of the options.
    let same =
        |a: &Value, b: &Value| a["value"] == b["value"] && a["text"]["text"] == b["text"]["text"];
    let initial: Vec<(String, &Value)> = match (
        select.get("initial_option").filter(|v| !v.is_null()),
        select.get("initial_options").filter(|v| !v.is_null()),
    ) {
        (Some(one), _) => vec![(pointer(at, "initial_option"), one)],
        (None, Some(Value::Array(many))) => many
            .iter()
            .enumerate()
            .map(|(i, o)| (pointer(&pointer(at, "initial_options"), i), o))
            .collect(),
        (None, Some(_)) => {
            return fail(
                &pointer(at, "initial_options"),
                "initial_options must be an array",
            )
        }
        (None, None) => Vec::new(),
    };
    for (at, chosen) in initial {
        option(chosen, &at, Kind::Plain)?;
        if !all.iter().any(|o| same(o, chosen)) {
            return fail(&at, "the initial option must be one of the options");
        }
    }
    Ok(())
}

/// An option object of a select menu, overflow menu, checkbox or radio button group.
fn option(option: &Value, at: &str, kind: Kind) -> Checked {
    if !option.is_object() {
        return fail(at, "an option must be an object");
    }
    text(
        required(option, "text", at)?,
        &pointer(at, "text"),
        MAX_OPTION_TEXT_CHARS,
        kind,
    )?;
    if optional_string(option, "value", at, MAX_OPTION_VALUE_CHARS)?.is_none() {
        return fail(&pointer(at, "value"), "missing required field: value");
    }
    optional_text(
        option,
        "description",
        at,
        MAX_OPTION_TEXT_CHARS,
        Kind::Plain,
    )?;
    optional_string(option, "url", at, MAX_URL_CHARS)?;
    Ok(())
}

fn plain_text_input(input: &Value, at: &str) -> Checked {
    let length = |key: &str, min: u64| -> Result<Option<u64>, String> {
        match input.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => match n.as_u64() {
                Some(n) if (min..=MAX_INPUT_LENGTH).contains(&n) => Ok(Some(n)),
                _ => Err(refusal(
                    &pointer(at, key),
                    format!("{key} must be a whole number from {min} to {MAX_INPUT_LENGTH}"),
                )),
            },
        }
    };
    let min = length("min_length", 0)?;
    let max = length("max_length", 1)?;
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return fail(
                &pointer(at, "min_length"),
                format!("min_length {min} is above max_length {max}"),
            );
        }
    }
    optional_string(input, "initial_value", at, usize::MAX)?;
    optional_bool(input, "multiline", at)
}

/// A text object of at most `max` characters (and never more than 3,000), `plain_text` only
/// when `kind` says so.
fn text(value: &Value, at: &str, max: usize, kind: Kind) -> Checked {
    if !value.is_object() {
        return fail(at, "must be a text object");
    }
    match (value.get("type").and_then(Value::as_str), kind) {
        (Some("plain_text"), _) | (Some("mrkdwn"), Kind::Any) => {}
        (Some("mrkdwn"), Kind::Plain) => {
            return fail(at, "must be a plain_text text object, not mrkdwn")
        }
        _ => return fail(&pointer(at, "type"), "type must be plain_text or mrkdwn"),
    }
    let Some(text) = value.get("text").and_then(Value::as_str) else {
        return fail(&pointer(at, "text"), "missing required field: text");
    };
    length(
        text,
        &pointer(at, "text"),
        1,
        max.min(MAX_TEXT_OBJECT_CHARS),
    )?;
    optional_bool(value, "emoji", at)?;
    optional_bool(value, "verbatim", at)
}

fn optional_text(parent: &Value, key: &str, at: &str, max: usize, kind: Kind) -> Checked {
    match parent.get(key).filter(|v| !v.is_null()) {
        Some(value) => text(value, &pointer(at, key), max, kind),
        None => Ok(()),
    }
}

/// Every text object anywhere in `value` (rich text and fields not checked above included)
/// holds 1 to 3,000 characters.
fn text_lengths(value: &Value, at: &str) -> Checked {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(kind)), Some(Value::String(text))) =
                (map.get("type"), map.get("text"))
            {
                if kind == "plain_text" || kind == "mrkdwn" {
                    length(text, &pointer(at, "text"), 1, MAX_TEXT_OBJECT_CHARS)?;
                }
            }
            map.iter()
                .try_for_each(|(key, inner)| text_lengths(inner, &pointer(at, key)))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, inner)| text_lengths(inner, &pointer(at, i))),
        _ => Ok(()),
    }
}

fn length(text: &str, at: &str, min: usize, max: usize) -> Checked {
    let chars = text.chars().count();
    if chars < min {
        return fail(at, format!("must be at least {min} character(s)"));
    }
    if chars > max {
        return fail(at, format!("must be at most {max} characters, got {chars}"));
    }
    Ok(())
}

/// The array at `at`, of `min` to `max` items.
fn items<'a>(value: &'a Value, at: &str, min: usize, max: usize) -> Result<&'a Vec<Value>, String> {
    let Some(items) = value.as_array() else {
        return Err(refusal(at, "must be an array"));
    };
    if !(min..=max).contains(&items.len()) {
        return Err(refusal(
            at,
            format!("{} items, {min} to {max} allowed", items.len()),
        ));
    }
    Ok(items)
}

fn required<'a>(parent: &'a Value, key: &str, at: &str) -> Result<&'a Value, String> {
    match parent.get(key).filter(|v| !v.is_null()) {
        Some(value) => Ok(value),
        None => Err(refusal(
            &pointer(at, key),
            format!("missing required field: {key}"),
        )),
    }
}

fn optional_string<'a>(
    parent: &'a Value,
    key: &str,
    at: &str,
    max: usize,
) -> Result<Option<&'a str>, String> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            length(s, &pointer(at, key), 0, max)?;
            Ok(Some(s))
        }
        Some(_) => Err(refusal(
            &pointer(at, key),
            format!("{key} must be a string"),
        )),
    }
}

fn optional_bool(parent: &Value, key: &str, at: &str) -> Checked {
    match parent.get(key) {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => fail(&pointer(at, key), format!("{key} must be a boolean")),
    }
}

fn is_absent(value: Option<&Value>) -> bool {
    value.is_none_or(Value::is_null)
}

/// `at` extended by one step.
fn pointer(at: &str, step: impl Display) -> String {
    format!("{at}/{step}")
}

/// `at` without its last step.
fn parent(at: &str) -> String {
    at.rsplit_once('/')
        .map(|(head, _)| head.to_owned())
        .unwrap_or_default()
}

fn refusal(at: &str, problem: impl Display) -> String {
    format!("{problem} [json-pointer:{at}]")
}

fn fail(at: &str, problem: impl Display) -> Checked {
    Err(refusal(at, problem))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plain(text: &str) -> Value {
        json!({ "type": "plain_text", "text": text })
    }

    fn mrkdwn(text: &str) -> Value {
        json!({ "type": "mrkdwn", "text": text })
    }

    fn long(chars: usize) -> String {
        "é".repeat(chars)
    }

    fn button(action_id: &str) -> Value {
        json!({
            "type": "button",
            "text": plain("Approve"),
            "action_id": action_id,
            "value": "req-1",
            "style": "primary",
        })
    }

    fn section(text: &str) -> Value {
        json!({ "type": "section", "text": mrkdwn(text) })
    }

    /// A message using every block type the checks know, each at its limits.
    fn valid_message() -> Value {
        json!([
            { "type": "header", "text": plain(&long(150)) },
            {
                "type": "section",
                "block_id": long(255),
                "text": mrkdwn(&long(3000)),
                "fields": (0..10).map(|_| mrkdwn(&long(2000))).collect::<Vec<_>>(),
                "accessory": button("accessory"),
            },
            { "type": "section", "fields": [plain("only fields")] },
            { "type": "divider" },
            {
                "type": "context",
                "elements": (0..9).map(|i| mrkdwn(&format!("c{i}")))
                    .chain([json!({ "type": "image", "image_url": "https://example.com/a.png", "alt_text": "a" })])
                    .collect::<Vec<_>>(),
            },
            {
                "type": "actions",
                "block_id": "decision",
                "elements": (0..24).map(|i| button(&format!("b{i}")))
                    .chain([{
                        let mut b = button("confirmed");
                        b["text"] = plain(&long(75));
                        b["value"] = json!(long(2000));
                        b["style"] = json!("danger");
                        b["confirm"] = json!({
                            "title": plain(&long(100)),
                            "text": mrkdwn(&long(300)),
                            "confirm": plain(&long(30)),
                            "deny": plain(&long(30)),
                            "style": "danger",
                        });
                        b
                    }])
                    .collect::<Vec<_>>(),
            },
            { "type": "image", "image_url": "https://example.com/b.png", "alt_text": "b" },
            { "type": "rich_text", "elements": [] },
        ])
    }

    fn select(options: Value) -> Value {
        json!({
            "type": "static_select",
            "action_id": "value",
            "placeholder": plain(&long(150)),
            "options": options,
        })
    }

    fn option(text: &str, value: &str) -> Value {
        json!({ "text": plain(text), "value": value })
    }

    fn input(block_id: &str, element: Value) -> Value {
        json!({ "type": "input", "block_id": block_id, "label": plain("Label"), "element": element })
    }

    /// A modal at its limits, with the input elements elevate's forms use.
    fn valid_view() -> Value {
        let mut blocks = vec![
            section("Ask for access"),
            input(
                "access",
                select(json!((0..100)
                    .map(|i| json!({
                        "text": plain(&long(75)),
                        "value": format!("{i:0>150}"),
                        "description": plain(&long(75)),
                    }))
                    .collect::<Vec<_>>())),
            ),
            input(
                "duration",
                json!({
                    "type": "static_select",
                    "action_id": "value",
                    "option_groups": (0..3).map(|g| json!({
                        "label": plain(&long(75)),
                        "options": [option(&format!("{g}h"), &format!("{g}h"))],
                    })).collect::<Vec<_>>(),
                    "initial_option": option("1h", "1h"),
                }),
            ),
            {
                let mut reason = input(
                    "reason",
                    json!({ "type": "plain_text_input", "action_id": "value", "multiline": true, "min_length": 0, "max_length": 3000 }),
                );
                reason["label"] = plain(&long(2000));
                reason["hint"] = plain(&long(2000));
                reason["optional"] = json!(true);
                reason
            },
            json!({ "type": "actions", "elements": [button("a"), button("b")] }),
        ];
        blocks.extend((blocks.len()..100).map(|i| section(&format!("s{i}"))));
        json!({
            "type": "modal",
            "callback_id": long(255),
            "private_metadata": long(3000),
            "title": plain(&long(24)),
            "submit": plain(&long(24)),
            "close": plain(&long(24)),
            "blocks": blocks,
        })
    }

    /// Checks that `checked` is refused, naming `pointer`, and that the refusal says `says`.
    fn assert_refused(checked: Result<(), String>, pointer: &str, says: &str) {
        let error = checked.expect_err("refused");
        assert!(
            error.ends_with(&format!("[json-pointer:{pointer}]")),
            "{error} should point at {pointer}"
        );
        assert!(error.contains(says), "{error} should say {says}");
    }

    fn message_with(block: Value) -> Value {
        json!([block])
    }

    #[test]
    fn a_message_at_every_limit_is_taken() {
        check_message_blocks(&valid_message()).expect("valid");
        check_message_blocks(&json!([])).expect("no blocks");
    }

    #[test]
    fn a_message_takes_at_most_50_blocks() {
        let blocks = |n| Value::Array((0..n).map(|_| json!({ "type": "divider" })).collect());
        check_message_blocks(&blocks(50)).expect("50 blocks");
        assert_refused(
            check_message_blocks(&blocks(51)),
            "/blocks",
            "51 blocks, at most 50",
        );
        assert_refused(
            check_message_blocks(&json!({ "type": "divider" })),
            "/blocks",
            "must be an array",
        );
    }

    #[test]
    fn blocks_have_a_known_type() {
        assert_refused(
            check_message_blocks(&message_with(json!({ "type": "carousel" }))),
            "/blocks/0/type",
            "unknown block type `carousel`",
        );
        assert_refused(
            check_message_blocks(&message_with(json!({ "text": mrkdwn("x") }))),
            "/blocks/0/type",
            "missing required field: type",
        );
        assert_refused(
            check_message_blocks(&json!(["divider"])),
            "/blocks/0",
            "must be an object",
        );
    }

    #[test]
    fn messages_have_no_input_blocks() {
        let block = input(
            "reason",
            json!({ "type": "plain_text_input", "action_id": "value" }),
        );
        assert_refused(
            check_message_blocks(&message_with(block)),
            "/blocks/0/type",
            "input blocks are for modals",
        );
    }

    #[test]
    fn block_ids_are_at_most_255_characters_and_unique() {
        let mut block = section("x");
        block["block_id"] = json!(long(256));
        assert_refused(
            check_message_blocks(&message_with(block)),
            "/blocks/0/block_id",
            "at most 255 characters, got 256",
        );
        let twice = json!([
            { "type": "divider", "block_id": "same" },
            { "type": "divider", "block_id": "same" },
        ]);
        assert_refused(
            check_message_blocks(&twice),
            "/blocks/1/block_id",
            "block_id `same` is used twice",
        );
        assert_refused(
            check_message_blocks(&message_with(json!({ "type": "divider", "block_id": "" }))),
            "/blocks/0/block_id",
            "must not be empty",
        );
    }

    #[test]
    fn a_section_has_text_or_fields() {
        assert_refused(
            check_message_blocks(&message_with(json!({ "type": "section" }))),
            "/blocks/0",
            "a section needs text or fields",
        );
    }

    #[test]
    fn section_text_is_a_text_object_of_at_most_3000_characters() {
        assert_refused(
            check_message_blocks(&message_with(section(&long(3001)))),
            "/blocks/0/text/text",
            "at most 3000 characters, got 3001",
        );
        assert_refused(
            check_message_blocks(&message_with(section(""))),
            "/blocks/0/text/text",
            "at least 1 character",
        );
        assert_refused(
            check_message_blocks(&message_with(
                json!({ "type": "section", "text": "bare string" }),
            )),
            "/blocks/0/text",
            "must be a text object",
        );
        assert_refused(
            check_message_blocks(&message_with(
                json!({ "type": "section", "text": { "type": "markdown", "text": "x" } }),
            )),
            "/blocks/0/text/type",
            "plain_text or mrkdwn",
        );
    }

    #[test]
    fn section_fields_are_at_most_10_of_at_most_2000_characters() {
        let fields = |n: usize, chars: usize| json!({ "type": "section", "fields": (0..n).map(|_| mrkdwn(&long(chars))).collect::<Vec<_>>() });
        assert_refused(
            check_message_blocks(&message_with(fields(11, 1))),
            "/blocks/0/fields",
            "11 items, 1 to 10 allowed",
        );
        assert_refused(
            check_message_blocks(&message_with(fields(1, 2001))),
            "/blocks/0/fields/0/text",
            "at most 2000 characters, got 2001",
        );
    }

    #[test]
    fn an_actions_block_has_at_most_25_elements() {
        let actions = json!({
            "type": "actions",
            "elements": (0..26).map(|i| button(&format!("b{i}"))).collect::<Vec<_>>(),
        });
        assert_refused(
            check_message_blocks(&message_with(actions)),
            "/blocks/0/elements",
            "26 items, 1 to 25 allowed",
        );
        assert_refused(
            check_message_blocks(&message_with(json!({ "type": "actions" }))),
            "/blocks/0/elements",
            "missing required field: elements",
        );
    }

    #[test]
    fn a_context_block_has_at_most_10_elements() {
        let context = json!({
            "type": "context",
            "elements": (0..11).map(|i| mrkdwn(&format!("c{i}"))).collect::<Vec<_>>(),
        });
        assert_refused(
            check_message_blocks(&message_with(context)),
            "/blocks/0/elements",
            "11 items, 1 to 10 allowed",
        );
    }

    #[test]
    fn a_header_is_plain_text_of_at_most_150_characters() {
        assert_refused(
            check_message_blocks(&message_with(
                json!({ "type": "header", "text": plain(&long(151)) }),
            )),
            "/blocks/0/text/text",
            "at most 150 characters, got 151",
        );
        assert_refused(
            check_message_blocks(&message_with(
                json!({ "type": "header", "text": mrkdwn("*bold*") }),
            )),
            "/blocks/0/text",
            "must be a plain_text text object, not mrkdwn",
        );
    }

    #[test]
    fn an_image_has_a_url_and_alt_text() {
        assert_refused(
            check_message_blocks(&message_with(json!({ "type": "image", "alt_text": "a" }))),
            "/blocks/0/image_url",
            "missing required field: image_url",
        );
        assert_refused(
            check_message_blocks(&message_with(
                json!({ "type": "image", "image_url": "https://example.com/a.png" }),
            )),
            "/blocks/0/alt_text",
            "missing required field: alt_text",
        );
    }

    fn actions_with(button: Value) -> Value {
        message_with(json!({ "type": "actions", "elements": [button] }))
    }

    #[test]
    fn button_text_is_plain_text_of_at_most_75_characters() {
        let mut b = button("approve");
        b["text"] = plain(&long(76));
        assert_refused(
            check_message_blocks(&actions_with(b.clone())),
            "/blocks/0/elements/0/text/text",
            "at most 75 characters, got 76",
        );
        b["text"] = mrkdwn("*Approve*");
        assert_refused(
            check_message_blocks(&actions_with(b.clone())),
            "/blocks/0/elements/0/text",
            "must be a plain_text text object, not mrkdwn",
        );
        b.as_object_mut().expect("object").remove("text");
        assert_refused(
            check_message_blocks(&actions_with(b)),
            "/blocks/0/elements/0/text",
            "missing required field: text",
        );
    }

    #[test]
    fn action_ids_are_at_most_255_characters_and_unique_in_a_message() {
        assert_refused(
            check_message_blocks(&actions_with(button(&long(256)))),
            "/blocks/0/elements/0/action_id",
            "at most 255 characters, got 256",
        );
        let twice = json!([
            { "type": "actions", "elements": [button("approve")] },
            { "type": "actions", "elements": [button("approve")] },
        ]);
        assert_refused(
            check_message_blocks(&twice),
            "/blocks/1/elements/0/action_id",
            "action_id `approve` is used twice in the message",
        );
    }

    #[test]
    fn button_values_are_at_most_2000_characters() {
        let mut b = button("approve");
        b["value"] = json!(long(2001));
        assert_refused(
            check_message_blocks(&actions_with(b)),
            "/blocks/0/elements/0/value",
            "at most 2000 characters, got 2001",
        );
    }

    #[test]
    fn button_styles_are_primary_or_danger() {
        let mut b = button("approve");
        b["style"] = json!("secondary");
        assert_refused(
            check_message_blocks(&actions_with(b)),
            "/blocks/0/elements/0/style",
            "style must be `primary` or `danger`, not `secondary`",
        );
    }

    #[test]
    fn a_confirmation_dialog_keeps_to_its_limits() {
        let dialog = json!({
            "title": plain("Sure?"),
            "text": mrkdwn("It cannot be undone."),
            "confirm": plain("Yes"),
            "deny": plain("No"),
        });
        let with = |key: &str, value: Value| {
            let mut dialog = dialog.clone();
            dialog[key] = value;
            let mut b = button("end");
            b["confirm"] = dialog;
            actions_with(b)
        };
        check_message_blocks(&with("style", json!("danger"))).expect("valid dialog");
        let cases = [
            ("title", plain(&long(101)), "/title/text", "at most 100"),
            ("title", mrkdwn("Sure?"), "/title", "not mrkdwn"),
            ("text", mrkdwn(&long(301)), "/text/text", "at most 300"),
            ("confirm", plain(&long(31)), "/confirm/text", "at most 30"),
            ("deny", plain(&long(31)), "/deny/text", "at most 30"),
            ("deny", Value::Null, "/deny", "missing required field: deny"),
            ("style", json!("green"), "/style", "`primary` or `danger`"),
        ];
        for (key, value, at, says) in cases {
            assert_refused(
                check_message_blocks(&with(key, value)),
                &format!("/blocks/0/elements/0/confirm{at}"),
                says,
            );
        }
    }

    #[test]
    fn elements_have_a_known_type_that_fits_where_they_are() {
        assert_refused(
            check_message_blocks(&actions_with(json!({ "type": "slider", "action_id": "x" }))),
            "/blocks/0/elements/0/type",
            "unknown element type `slider`",
        );
        assert_refused(
            check_message_blocks(&actions_with(
                json!({ "type": "plain_text_input", "action_id": "x" }),
            )),
            "/blocks/0/elements/0/type",
            "cannot be used in an actions block",
        );
    }

    #[test]
    fn text_objects_anywhere_hold_1_to_3000_characters() {
        let rich = json!({
            "type": "rich_text",
            "elements": [{ "type": "section", "extra": plain("") }],
        });
        assert_refused(
            check_message_blocks(&message_with(rich)),
            "/blocks/0/elements/0/extra/text",
            "at least 1 character",
        );
    }

    #[test]
    fn a_modal_at_every_limit_is_taken() {
        check_view(&valid_view()).expect("valid");
        let minimal = json!({ "type": "modal", "title": plain("Hi"), "blocks": [] });
        check_view(&minimal).expect("minimal");
    }

    fn view_with(key: &str, value: Value) -> Value {
        let mut view = valid_view();
        view[key] = value;
        view
    }

    #[test]
    fn views_open_opens_modals_only() {
        assert_refused(
            check_view(&view_with("type", json!("home"))),
            "/view/type",
            "type must be `modal`, not `home`",
        );
        assert_refused(
            check_view(&json!("modal")),
            "/view",
            "must be a JSON object",
        );
    }

    #[test]
    fn a_modal_title_is_plain_text_of_at_most_24_characters() {
        assert_refused(
            check_view(&view_with("title", plain(&long(25)))),
            "/view/title/text",
            "at most 24 characters, got 25",
        );
        assert_refused(
            check_view(&view_with("title", mrkdwn("Request"))),
            "/view/title",
            "not mrkdwn",
        );
        assert_refused(
            check_view(&view_with("title", Value::Null)),
            "/view/title",
            "missing required field: title",
        );
    }

    #[test]
    fn submit_and_close_are_plain_text_of_at_most_24_characters() {
        assert_refused(
            check_view(&view_with("submit", plain(&long(25)))),
            "/view/submit/text",
            "at most 24 characters",
        );
        assert_refused(
            check_view(&view_with("close", mrkdwn("Cancel"))),
            "/view/close",
            "not mrkdwn",
        );
    }

    #[test]
    fn a_modal_with_inputs_has_a_submit_button() {
        let mut view = valid_view();
        view.as_object_mut().expect("object").remove("submit");
        assert_refused(
            check_view(&view),
            "/view/submit",
            "missing required field: submit",
        );
    }

    #[test]
    fn a_modal_takes_at_most_100_blocks() {
        let mut view = valid_view();
        view["blocks"]
            .as_array_mut()
            .expect("blocks")
            .push(section("one too many"));
        assert_refused(check_view(&view), "/view/blocks", "101 blocks, at most 100");
        assert_refused(
            check_view(&view_with("blocks", Value::Null)),
            "/view/blocks",
            "missing required field: blocks",
        );
    }

    #[test]
    fn callback_id_and_private_metadata_keep_to_their_limits() {
        assert_refused(
            check_view(&view_with("callback_id", json!(long(256)))),
            "/view/callback_id",
            "at most 255 characters",
        );
        assert_refused(
            check_view(&view_with("private_metadata", json!(long(3001)))),
            "/view/private_metadata",
            "at most 3000 characters",
        );
        assert_refused(
            check_view(&view_with("private_metadata", json!({ "flow": "x" }))),
            "/view/private_metadata",
            "must be a string",
        );
    }

    fn view_of(block: Value) -> Value {
        view_with("blocks", json!([block]))
    }

    fn text_input() -> Value {
        json!({ "type": "plain_text_input", "action_id": "value" })
    }

    #[test]
    fn an_input_block_has_a_plain_text_label_of_at_most_2000_characters() {
        let mut block = input("reason", text_input());
        block["label"] = plain(&long(2001));
        assert_refused(
            check_view(&view_of(block.clone())),
            "/view/blocks/0/label/text",
            "at most 2000 characters",
        );
        block["label"] = mrkdwn("Reason");
        assert_refused(
            check_view(&view_of(block.clone())),
            "/view/blocks/0/label",
            "not mrkdwn",
        );
        block["label"] = Value::Null;
        assert_refused(
            check_view(&view_of(block)),
            "/view/blocks/0/label",
            "missing required field: label",
        );
    }

    #[test]
    fn an_input_hint_is_plain_text_of_at_most_2000_characters_and_optional_a_boolean() {
        let mut block = input("reason", text_input());
        block["hint"] = plain(&long(2001));
        assert_refused(
            check_view(&view_of(block)),
            "/view/blocks/0/hint/text",
            "at most 2000 characters",
        );
        let mut block = input("reason", text_input());
        block["optional"] = json!("yes");
        assert_refused(
            check_view(&view_of(block)),
            "/view/blocks/0/optional",
            "must be a boolean",
        );
    }

    #[test]
    fn an_input_element_is_an_input_type() {
        assert_refused(
            check_view(&view_of(input("x", button("go")))),
            "/view/blocks/0/element/type",
            "a button element cannot be used in an input block",
        );
        assert_refused(
            check_view(&view_of(input("x", json!({ "type": "textarea" })))),
            "/view/blocks/0/element/type",
            "unknown element type `textarea`",
        );
        let mut block = input("x", text_input());
        block["element"] = Value::Null;
        assert_refused(
            check_view(&view_of(block)),
            "/view/blocks/0/element",
            "missing required field: element",
        );
    }

    #[test]
    fn a_select_placeholder_is_plain_text_of_at_most_150_characters() {
        let mut element = select(json!([option("a", "a")]));
        element["placeholder"] = plain(&long(151));
        assert_refused(
            check_view(&view_of(input("x", element.clone()))),
            "/view/blocks/0/element/placeholder/text",
            "at most 150 characters",
        );
        element["placeholder"] = mrkdwn("Pick");
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/placeholder",
            "not mrkdwn",
        );
    }

    #[test]
    fn a_static_select_has_options_or_option_groups() {
        let mut element = select(json!([option("a", "a")]));
        element.as_object_mut().expect("object").remove("options");
        assert_refused(
            check_view(&view_of(input("x", element.clone()))),
            "/view/blocks/0/element/options",
            "missing required field: options",
        );
        element["options"] = json!([option("a", "a")]);
        element["option_groups"] = json!([{ "label": plain("g"), "options": [option("a", "a")] }]);
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/option_groups",
            "not both",
        );
    }

    #[test]
    fn a_static_select_has_at_most_100_options_or_groups() {
        let options = |n: usize| {
            json!((0..n)
                .map(|i| option(&i.to_string(), &i.to_string()))
                .collect::<Vec<_>>())
        };
        assert_refused(
            check_view(&view_of(input("x", select(options(101))))),
            "/view/blocks/0/element/options",
            "101 items, 1 to 100 allowed",
        );
        assert_refused(
            check_view(&view_of(input("x", select(options(0))))),
            "/view/blocks/0/element/options",
            "0 items, 1 to 100 allowed",
        );
        let mut element = select(Value::Null);
        element["option_groups"] = json!((0..101)
            .map(|_| json!({ "label": plain("g"), "options": [option("a", "a")] }))
            .collect::<Vec<_>>());
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/option_groups",
            "101 items, 1 to 100 allowed",
        );
    }

    #[test]
    fn an_option_group_label_is_plain_text_of_at_most_75_characters() {
        let mut element = select(Value::Null);
        element["option_groups"] =
            json!([{ "label": plain(&long(76)), "options": [option("a", "a")] }]);
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/option_groups/0/label/text",
            "at most 75 characters",
        );
    }

    #[test]
    fn an_option_keeps_to_its_limits() {
        let cases = [
            (
                json!({ "text": plain(&long(76)), "value": "v" }),
                "/text/text",
                "at most 75",
            ),
            (
                json!({ "text": mrkdwn("a"), "value": "v" }),
                "/text",
                "not mrkdwn",
            ),
            (
                json!({ "text": plain("a"), "value": long(151) }),
                "/value",
                "at most 150",
            ),
            (
                json!({ "text": plain("a") }),
                "/value",
                "missing required field: value",
            ),
            (
                json!({ "text": plain("a"), "value": "v", "description": plain(&long(76)) }),
                "/description/text",
                "at most 75",
            ),
        ];
        for (bad, at, says) in cases {
            assert_refused(
                check_view(&view_of(input("x", select(json!([bad]))))),
                &format!("/view/blocks/0/element/options/0{at}"),
                says,
            );
        }
    }

    #[test]
    fn an_initial_option_is_one_of_the_options() {
        let mut element = select(json!([option("a", "a"), option("b", "b")]));
        element["initial_option"] = option("b", "b");
        check_view(&view_of(input("x", element.clone()))).expect("b is an option");
        element["initial_option"] = option("c", "c");
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/initial_option",
            "must be one of the options",
        );
    }

    #[test]
    fn a_plain_text_input_takes_at_most_3000_characters() {
        let mut element = text_input();
        element["max_length"] = json!(3001);
        assert_refused(
            check_view(&view_of(input("x", element.clone()))),
            "/view/blocks/0/element/max_length",
            "from 1 to 3000",
        );
        element["max_length"] = json!(10);
        element["min_length"] = json!(20);
        assert_refused(
            check_view(&view_of(input("x", element))),
            "/view/blocks/0/element/min_length",
            "min_length 20 is above max_length 10",
        );
    }

    #[test]
    fn block_ids_are_unique_in_a_view_and_action_ids_in_a_block() {
        let twice = view_with(
            "blocks",
            json!([input("same", text_input()), input("same", text_input())]),
        );
        assert_refused(
            check_view(&twice),
            "/view/blocks/1/block_id",
            "block_id `same` is used twice",
        );
        // Submitted values are keyed by block, then action: one action_id in many blocks is
        // how forms are usually written.
        let across = view_with(
            "blocks",
            json!([input("reason", text_input()), input("ticket", text_input())]),
        );
        check_view(&across).expect("the same action_id in two blocks");
        let within = view_with(
            "blocks",
            json!([{ "type": "actions", "elements": [button("go"), button("go")] }]),
        );
        assert_refused(
            check_view(&within),
            "/view/blocks/0/elements/1/action_id",
            "action_id `go` is used twice in the block",
        );
    }
}
