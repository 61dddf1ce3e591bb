//! Fuzzing the Slack signature check, the only thing between the public `/slack/interactions`
//! route and an approval: whatever headers, body and clock it is handed it answers without
//! panicking; a body Slack signed verifies within five minutes and never outside them; and no
//! single changed byte of the body, the signature or the timestamp gets through.
#![allow(clippy::unwrap_used)]

use elevate_slack::signature::MAX_SKEW_SECS;
use elevate_slack::{sign, verify, SignatureError};
use proptest::prelude::*;
use proptest::sample::Index;

/// Enough to shake out panics while keeping `make test` fast; no regression files are written
/// into the checkout (a failure prints its minimal input, which belongs in a named test).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Unix times around today and at the ends of `i64`, where window arithmetic could overflow.
fn unix_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1_500_000_000i64..2_500_000_000,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

/// What might arrive in `X-Slack-Request-Timestamp`: numbers in every spelling, and junk.
fn timestamp_header() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            unix_time().prop_map(|t| t.to_string()),
            unix_time().prop_map(|t| format!("+{t}")),
            unix_time().prop_map(|t| format!("0{t}")),
            unix_time().prop_map(|t| format!(" {t} ")),
            "-?[0-9]{0,30}",
            any::<String>(),
        ],
    )
}

/// What might arrive in `X-Slack-Signature`: well-formed, nearly well-formed, and junk.
fn signature_header() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            "v0=[0-9a-f]{64}",
            "v[0-9]=[0-9a-fA-F]{0,130}",
            "v0=[0-9a-fA-F]{63}",
            "v0=.{0,70}",
            any::<String>(),
        ],
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn anything_is_answered_without_a_panic(
        secret in any::<String>(),
        timestamp in timestamp_header(),
        signature in signature_header(),
        body in body(),
        now in unix_time(),
    ) {
        let _ = verify(&secret, timestamp.as_deref(), signature.as_deref(), &body, now);
    }

    #[test]
    fn a_forged_signature_is_never_accepted(
        secret in ".{0,40}",
        signature in signature_header(),
        body in body(),
        now in unix_time(),
    ) {
        let timestamp = now.to_string();
        let genuine = sign(&secret, now, &body);
        prop_assume!(signature.as_deref().map(str::to_ascii_lowercase) != Some(genuine));
        prop_assert!(verify(&secret, Some(&timestamp), signature.as_deref(), &body, now).is_err());
    }

    #[test]
    fn a_signed_body_verifies_within_the_window(
        secret in ".{0,40}",
        body in body(),
        signed_at in unix_time(),
        skew in -MAX_SKEW_SECS..=MAX_SKEW_SECS,
    ) {
        let now = signed_at.checked_add(skew);
        prop_assume!(now.is_some());
        let signature = sign(&secret, signed_at, &body);
        prop_assert!(signature.starts_with("v0="));
        prop_assert_eq!(signature.len(), 3 + 64);
        prop_assert_eq!(
            verify(&secret, Some(&signed_at.to_string()), Some(&signature), &body, now.unwrap()),
            Ok(())
        );
    }

    #[test]
    fn a_signed_body_is_refused_outside_the_window(
        secret in ".{0,40}",
        body in body(),
        signed_at in unix_time(),
        late in any::<bool>(),
        by in prop_oneof![MAX_SKEW_SECS + 1..MAX_SKEW_SECS + 3600, MAX_SKEW_SECS + 1..i64::MAX],
    ) {
        let now = if late { signed_at.checked_add(by) } else { signed_at.checked_sub(by) };
        prop_assume!(now.is_some());
        let now = now.unwrap();
        let signature = sign(&secret, signed_at, &body);
        prop_assert_eq!(
            verify(&secret, Some(&signed_at.to_string()), Some(&signature), &body, now),
            Err(SignatureError::OutsideWindow { timestamp: signed_at, now })
        );
    }

    #[test]
    fn a_changed_body_byte_is_refused(
        secret in ".{0,40}",
        body in prop::collection::vec(any::<u8>(), 1..512),
        at in any::<Index>(),
        xor in 1u8..=255,
        now in unix_time(),
    ) {
        let signature = sign(&secret, now, &body);
        let mut forged = body.clone();
        forged[at.index(body.len())] ^= xor;
        prop_assert_eq!(
            verify(&secret, Some(&now.to_string()), Some(&signature), &forged, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_added_or_removed_body_byte_is_refused(
        secret in ".{0,40}",
        body in prop::collection::vec(any::<u8>(), 1..512),
        at in any::<Index>(),
        byte in any::<u8>(),
        remove in any::<bool>(),
        now in unix_time(),
    ) {
        let signature = sign(&secret, now, &body);
        let mut forged = body.clone();
        if remove {
            forged.remove(at.index(body.len()));
        } else {
            forged.insert(at.index(body.len() + 1), byte);
        }
        prop_assert_eq!(
            verify(&secret, Some(&now.to_string()), Some(&signature), &forged, now),
            Err(SignatureError::Mismatch)
        );
    }

    /// Hex is read either case, so swapping the case of a digest letter is the same digest; every
    /// other change to one byte of the header is refused.
    #[test]
    fn a_changed_signature_byte_is_refused(
        secret in ".{0,40}",
        body in body(),
        at in any::<Index>(),
        byte in any::<u8>(),
        now in unix_time(),
    ) {
        let signature = sign(&secret, now, &body);
        let mut forged = signature.clone().into_bytes();
        let i = at.index(forged.len());
        prop_assume!(!forged[i].eq_ignore_ascii_case(&byte));
        forged[i] = byte;
        let forged = String::from_utf8_lossy(&forged).into_owned();
        let answer = verify(&secret, Some(&now.to_string()), Some(&forged), &body, now);
        prop_assert!(
            matches!(answer, Err(SignatureError::Mismatch | SignatureError::Malformed)),
            "{forged}: {answer:?}"
        );
    }

    #[test]
    fn a_truncated_or_extended_signature_is_refused(
        secret in ".{0,40}",
        body in body(),
        keep in 0usize..67,
        extra in "[0-9a-f]{1,4}",
        now in unix_time(),
    ) {
        let signature = sign(&secret, now, &body);
        for forged in [signature[..keep].to_owned(), format!("{signature}{extra}")] {
            prop_assert!(verify(&secret, Some(&now.to_string()), Some(&forged), &body, now).is_err());
        }
    }

    /// A captured request replayed with a fresh timestamp header (still inside the window) no
    /// longer matches its signature.
    #[test]
    fn a_replayed_signature_with_another_timestamp_is_refused(
        secret in ".{0,40}",
        body in body(),
        signed_at in 1_500_000_000i64..2_500_000_000,
        shift in prop_oneof![-MAX_SKEW_SECS..0, 1..=MAX_SKEW_SECS],
    ) {
        let signature = sign(&secret, signed_at, &body);
        let claimed = signed_at + shift;
        prop_assert_eq!(
            verify(&secret, Some(&claimed.to_string()), Some(&signature), &body, claimed),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_is_refused(
        secret in ".{0,40}",
        other in ".{0,40}",
        body in body(),
        now in unix_time(),
    ) {
        // HMAC pads short keys with zero bytes, so `k` and `k\0` are the same key.
        prop_assume!(secret.trim_end_matches('\0') != other.trim_end_matches('\0'));
        let signature = sign(&other, now, &body);
        prop_assert_eq!(
            verify(&secret, Some(&now.to_string()), Some(&signature), &body, now),
            Err(SignatureError::Mismatch)
        );
    }
}
