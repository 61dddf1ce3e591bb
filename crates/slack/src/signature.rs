//! Slack request signatures (`X-Slack-Signature`): `v0=` + hex HMAC-SHA256 of
//! `v0:{timestamp}:{raw body}` under the app's signing secret, accepted only within five minutes
//! of `now` so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// Header carrying the Unix time (seconds) at which Slack signed the request.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// How far the signed timestamp may be from now, either way, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

const VERSION: &str = "v0";

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {TIMESTAMP_HEADER} header")]
    MissingTimestamp,
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    #[error("{TIMESTAMP_HEADER} `{0}` is not a Unix time")]
    BadTimestamp(String),
    #[error("request signed at {timestamp} is more than {MAX_SKEW_SECS} s from now ({now})")]
    OutsideWindow { timestamp: i64, now: i64 },
    #[error("{SIGNATURE_HEADER} is not `v0=` followed by a hex digest")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(signing_secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of any length (long keys are hashed, short ones padded), so
    // `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(signing_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(VERSION.as_bytes());
    mac.update(b":");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send for `body` signed at `timestamp`.
pub fn sign(signing_secret: &str, timestamp: i64, body: impl AsRef<[u8]>) -> String {
    let digest = mac(signing_secret, &timestamp.to_string(), body.as_ref())
        .finalize()
        .into_bytes();
    format!("{VERSION}={}", hex::encode(digest))
}

/// Checks that `raw_body` was signed by Slack with `signing_secret` within
/// [`MAX_SKEW_SECS`] of `now_unix`. The digest comparison is constant-time.
pub fn verify(
    signing_secret: &str,
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    raw_body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let timestamp_text = timestamp_header.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature_header.ok_or(SignatureError::MissingSignature)?;
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| SignatureError::BadTimestamp(timestamp_text.to_owned()))?;
    if now_unix.abs_diff(timestamp) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::OutsideWindow {
            timestamp,
            now: now_unix,
        });
    }
    let digest = signature
        .strip_prefix(VERSION)
        .and_then(|rest| rest.strip_prefix('='))
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .ok_or(SignatureError::Malformed)?;
    mac(signing_secret, timestamp_text, raw_body)
        .verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1_531_420_618;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(
        ts: Option<&str>,
        sig: Option<&str>,
        body: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(SECRET, ts, sig, body.as_bytes(), now)
    }

    #[test]
    fn signs_slacks_published_example() {
        assert_eq!(sign(SECRET, TS, BODY), EXPECTED);
    }

    #[test]
    fn accepts_slacks_published_example_within_the_window() {
        let ts = TS.to_string();
        for now in [TS, TS + 1, TS + 300, TS - 300] {
            assert_eq!(
                check(Some(&ts), Some(EXPECTED), BODY, now),
                Ok(()),
                "now = {now}"
            );
        }
    }

    #[test]
    fn refuses_a_forged_body_secret_or_signature() {
        let ts = TS.to_string();
        let forged_body = BODY.replace("roadrunner", "coyote");
        assert_eq!(
            check(Some(&ts), Some(EXPECTED), &forged_body, TS),
            Err(SignatureError::Mismatch)
        );

        let other_secret = sign("not-the-secret", TS, BODY);
        assert_eq!(
            check(Some(&ts), Some(&other_secret), BODY, TS),
            Err(SignatureError::Mismatch)
        );

        // Signed for another timestamp, replayed with a fresh one.
        let replayed = sign(SECRET, TS - 10, BODY);
        assert_eq!(
            check(Some(&ts), Some(&replayed), BODY, TS),
            Err(SignatureError::Mismatch)
        );

        let truncated = &EXPECTED[..EXPECTED.len() - 2];
        assert_eq!(
            check(Some(&ts), Some(truncated), BODY, TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_stale_and_future_timestamps() {
        let ts = TS.to_string();
        assert_eq!(
            check(Some(&ts), Some(EXPECTED), BODY, TS + 301),
            Err(SignatureError::OutsideWindow {
                timestamp: TS,
                now: TS + 301
            })
        );
        assert_eq!(
            check(Some(&ts), Some(EXPECTED), BODY, TS - 301),
            Err(SignatureError::OutsideWindow {
                timestamp: TS,
                now: TS - 301
            })
        );
        // A correctly signed request from far in the future is still refused.
        let future = TS + 3600;
        let sig = sign(SECRET, future, BODY);
        assert!(matches!(
            check(Some(&future.to_string()), Some(&sig), BODY, TS),
            Err(SignatureError::OutsideWindow { .. })
        ));
    }

    #[test]
    fn refuses_missing_and_malformed_headers() {
        let ts = TS.to_string();
        assert_eq!(
            check(None, Some(EXPECTED), BODY, TS),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            check(Some(&ts), None, BODY, TS),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            check(None, None, BODY, TS),
            Err(SignatureError::MissingTimestamp)
        );
        for bad in ["", "soon", "1531420618.5", " 1531420618"] {
            assert_eq!(
                check(Some(bad), Some(EXPECTED), BODY, TS),
                Err(SignatureError::BadTimestamp(bad.to_owned())),
                "{bad:?}"
            );
        }
        let no_version = EXPECTED.trim_start_matches("v0=");
        let bad_hex = EXPECTED.replace('a', "z");
        let other_version = EXPECTED.replace("v0=", "v1=");
        for bad in ["", "v0=", no_version, &bad_hex, &other_version] {
            let expected = if bad == "v0=" {
                SignatureError::Mismatch
            } else {
                SignatureError::Malformed
            };
            assert_eq!(
                check(Some(&ts), Some(bad), BODY, TS),
                Err(expected),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        for ts in [i64::MIN, i64::MAX] {
            assert!(matches!(
                check(Some(&ts.to_string()), Some(EXPECTED), BODY, TS),
                Err(SignatureError::OutsideWindow { .. })
            ));
        }
    }
}
