//! Page cursors: where the next page of an audit export (`audit_page`) or of a request listing
//! (`list_page`) starts, bound to what it pages through.
//!
//! A cursor is the base64url (no padding, so it travels in a query string as it is) of a small
//! JSON object.
//!
//! An export's is
//! `{"since": <RFC 3339 or null>, "until": <RFC 3339 or null>, "day": <yyyy-mm-dd or null>,
//! "after": <key or null>}`.
//! `since` and `until` repeat the window, so a cursor handed back with another window is
//! refused rather than silently continuing a different export. `day` is set while an export
//! walks the `by_day` index day by day, and is the day the next page starts in; it is null for
//! an export that scans the index. `after` is DynamoDB's `LastEvaluatedKey` of the read before
//! (the index's key attributes and the table's, all strings), null at the start of a day.
//!
//! A listing's is `{"query": {"of": "requester"|"state", "who": <name or null>, "state":
//! <STATE or null>}, "after": <key>}`: `query` is the listing's
//! [`ListBinding`](elevate_core::ports::ListBinding) (a cursor handed back with another query
//! is refused), `after` the key of the last request the page read, in the index the listing
//! reads (its key attributes and the table's, all strings; its partition must be the one the
//! listing reads). The two kinds do not read as each other.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use elevate_core::ports::{AuditWindow, ListBinding, ListQuery, StoreError};
use serde::{Deserialize, Serialize};

use super::item::{attr, day_key, timestamp, Item, REQUEST_SK};

/// Where the next page of an export starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Position {
    /// Day by day through the `by_day` index: in `day`, after `after` (from its start when
    /// `None`).
    Day { day: NaiveDate, after: Option<Item> },
    /// Scanning the `by_day` index, after `after` (from the start when `None`).
    Scan { after: Option<Item> },
}

/// The key attributes of a `by_day` read's `LastEvaluatedKey`.
const KEY_ATTRIBUTES: [&str; 4] = [attr::PK, attr::SK, attr::GSI3PK, attr::GSI3SK];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    since: Option<String>,
    until: Option<String>,
    day: Option<NaiveDate>,
    after: Option<BTreeMap<String, String>>,
}

/// The cursor of the page that starts at `position` of the export of `window`.
pub(super) fn encode(window: &AuditWindow, position: &Position) -> String {
    let (day, after) = match position {
        Position::Day { day, after } => (Some(*day), after.as_ref()),
        Position::Scan { after } => (None, after.as_ref()),
    };
    let cursor = Cursor {
        since: window.since.map(timestamp),
        until: window.until.map(timestamp),
        day,
        after: after.map(key_strings),
    };
    // A struct of strings and a date always serializes.
    to_base64url(&serde_json::to_vec(&cursor).unwrap_or_default())
}

/// Where the page of `text` starts; `BadCursor` unless this store handed `text` out for an
/// export of this same `window`.
pub(super) fn decode(window: &AuditWindow, text: &str) -> Result<Position, StoreError> {
    let bad = |why: &str| StoreError::BadCursor(format!("{why}: `{}`", shorten(text)));
    let json = from_base64url(text).ok_or_else(|| bad("not base64url"))?;
    let cursor: Cursor =
        serde_json::from_slice(&json).map_err(|_| bad("not a cursor of an audit export"))?;
    if cursor.since != window.since.map(timestamp) || cursor.until != window.until.map(timestamp) {
        return Err(bad(&format!(
            "a cursor of the export since {} until {}, not of this one (since {}, until {})",
            cursor.since.as_deref().unwrap_or("the start"),
            cursor.until.as_deref().unwrap_or("now"),
            window.since.map_or("the start".to_owned(), timestamp),
            window.until.map_or("now".to_owned(), timestamp),
        )));
    }
    let after = match cursor.after {
        None => None,
        Some(key) => Some(
            key_from_strings(key, KEY_ATTRIBUTES)
                .ok_or_else(|| bad("its key is not a key of the audit index"))?,
        ),
    };
    match cursor.day {
        None => Ok(Position::Scan { after }),
        Some(day) => {
            // Only an export with a start walks day by day, and never before its first day.
            if window.since.is_none_or(|since| day < since.date_naive()) {
                return Err(bad("its day is outside the export"));
            }
            let in_day = after.as_ref().is_none_or(|key| {
                key.get(attr::GSI3PK).and_then(|v| v.as_s().ok()) == Some(&day_key(day))
            });
            if !in_day {
                return Err(bad("its key is not of its day"));
            }
            Ok(Position::Day { day, after })
        }
    }
}

/// The index a listing reads: its name, the attributes of its key, and the partition read.
#[derive(Debug, Clone, Copy)]
pub(super) struct ListIndex<'a> {
    pub name: &'a str,
    pub pk_attr: &'a str,
    pub sk_attr: &'a str,
    pub partition: &'a str,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCursor {
    query: ListBinding,
    after: BTreeMap<String, String>,
}

/// The cursor of the page of `query` that starts after the item of key `after` (its
/// `LastEvaluatedKey`, or the key attributes of the last request given).
pub(super) fn encode_list(query: &ListQuery, after: &Item) -> String {
    let cursor = ListCursor {
        query: query.binding(),
        after: key_strings(after),
    };
    // Strings and a state always serialize.
    to_base64url(&serde_json::to_vec(&cursor).unwrap_or_default())
}

/// The key the page of `text` starts after; `BadCursor` unless this store handed `text` out
/// for this same listing, read from `index`.
pub(super) fn decode_list(
    query: &ListQuery,
    index: ListIndex<'_>,
    text: &str,
) -> Result<Item, StoreError> {
    let bad = |why: &str| StoreError::BadCursor(format!("{why}: `{}`", shorten(text)));
    let json = from_base64url(text).ok_or_else(|| bad("not base64url"))?;
    let cursor: ListCursor =
        serde_json::from_slice(&json).map_err(|_| bad("not a cursor of a request listing"))?;
    if cursor.query != query.binding() {
        return Err(bad(&format!(
            "a cursor of {}, not of this listing ({query})",
            cursor.query
        )));
    }
    let key = key_from_strings(
        cursor.after,
        [attr::PK, attr::SK, index.pk_attr, index.sk_attr],
    )
    .ok_or_else(|| bad(&format!("its key is not a key of the {} index", index.name)))?;
    let text_of = |name: &str| key.get(name).and_then(|v| v.as_s().ok());
    let of_a_request = text_of(attr::PK).is_some_and(|pk| pk.starts_with("REQ#"))
        && text_of(attr::SK).map(String::as_str) == Some(REQUEST_SK);
    if !of_a_request || text_of(index.pk_attr).map(String::as_str) != Some(index.partition) {
        return Err(bad("its key is not of this listing's requests"));
    }
    Ok(key)
}

/// A key's attributes as strings (every key attribute of the table and its indexes is one).
fn key_strings(key: &Item) -> BTreeMap<String, String> {
    key.iter()
        .filter_map(|(name, value)| Some((name.clone(), value.as_s().ok()?.clone())))
        .collect()
}

/// The key of `strings`, when they are exactly the attributes `expected`.
fn key_from_strings<const N: usize>(
    strings: BTreeMap<String, String>,
    mut expected: [&str; N],
) -> Option<Item> {
    let names: Vec<&str> = strings.keys().map(String::as_str).collect();
    expected.sort_unstable();
    if names != expected {
        return None;
    }
    Some(
        strings
            .into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect::<HashMap<_, _>>(),
    )
}

fn to_base64url(json: &[u8]) -> String {
    aws_smithy_types::base64::encode(json)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn from_base64url(text: &str) -> Option<Vec<u8>> {
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let mut standard = text.replace('-', "+").replace('_', "/");
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    aws_smithy_types::base64::decode(standard).ok()
}

/// A refused cursor in an error message: enough to recognise it, not a page of text.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> AuditWindow {
        AuditWindow {
            since: "2026-11-20T00:00:00Z".parse().ok(),
            until: "2026-11-25T12:00:00.5Z".parse().ok(),
        }
    }

    fn key(day: &str) -> Item {
        HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S("REQ#r1".into())),
            (
                attr::SK.to_owned(),
                AttributeValue::S("EVT#0000000001".into()),
            ),
            (
                attr::GSI3PK.to_owned(),
                AttributeValue::S(format!("AUDIT#{day}")),
            ),
            (
                attr::GSI3SK.to_owned(),
                AttributeValue::S(format!("{day}T10:00:00.000000000Z#r1#0000000001")),
            ),
        ])
    }

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).expect("day");
        for position in [
            Position::Day { day, after: None },
            Position::Day {
                day,
                after: Some(key("2026-11-21")),
            },
            Position::Scan {
                after: Some(key("2026-11-24")),
            },
        ] {
            let text = encode(&window(), &position);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(decode(&window(), &text).expect("decode"), position);
        }
    }

    #[test]
    fn foreign_and_tampered_cursors_are_refused() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).expect("day");
        let text = encode(&window(), &Position::Day { day, after: None });
        let other = AuditWindow {
            until: None,
            ..window()
        };
        let refused = |window: &AuditWindow, text: &str| {
            matches!(decode(window, text), Err(StoreError::BadCursor(_)))
        };
        assert!(refused(&other, &text), "another window");
        assert!(refused(&window(), "not a cursor!"), "not base64url");
        assert!(refused(&window(), &format!("{text}A")), "cut or lengthened");
        let json = |value: serde_json::Value| {
            aws_smithy_types::base64::encode(value.to_string())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")
        };
        let since = window().since.map(timestamp);
        let until = window().until.map(timestamp);
        assert!(
            refused(
                &window(),
                &json(
                    serde_json::json!({"since": since, "until": until, "day": null,
                    "after": {"pk": "REQ#r1"}})
                )
            ),
            "a key that is not the index's"
        );
        assert!(
            refused(
                &window(),
                &json(
                    serde_json::json!({"since": since, "until": until, "day": "1970-01-01",
                    "after": null})
                )
            ),
            "a day before the window"
        );
        assert!(
            refused(
                &window(),
                &json(
                    serde_json::json!({"since": since, "until": until, "day": "2026-11-22",
                    "after": {"pk": "a", "sk": "b", "gsi3pk": "AUDIT#2026-11-21",
                        "gsi3sk": "c"}})
                )
            ),
            "a key of another day"
        );
    }
}
