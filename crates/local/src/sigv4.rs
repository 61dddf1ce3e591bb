//! Verification of SigV4-signed requests, as API Gateway's AWS_IAM authorizer does it.
//!
//! The canonical request is rebuilt from what arrived on the wire, in the way the AWS SDKs
//! (`aws-sigv4`) build it for every service but S3: the path as received is URI-encoded once
//! more (the SDK double-encodes), dot segments are removed, the query is decoded, re-encoded
//! and sorted, and header values are trimmed with inner runs of spaces collapsed.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only algorithm API Gateway accepts from an IAM caller.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far the request time may be from now, either way (API Gateway's limit).
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(15);

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Every byte but RFC 3986's unreserved characters is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a request was refused. API Gateway answers all of them with a 403; the kind goes to the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigV4Error {
    #[error("no Authorization header")]
    MissingAuthorization,
    #[error("malformed signed request: {0}")]
    Malformed(String),
    #[error("unknown access key {0}")]
    UnknownAccessKey(String),
    #[error("request time {request_time} is more than 15 minutes from now ({now})")]
    Expired {
        request_time: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("signature does not match")]
    BadSignature,
}

fn malformed(message: impl Into<String>) -> SigV4Error {
    SigV4Error::Malformed(message.into())
}

/// Finds the secret of an access key and the principal it belongs to.
pub trait SecretLookup {
    type Principal;
    fn secret_for(&self, access_key: &str) -> Option<(String, Self::Principal)>;
}

impl<F, P> SecretLookup for F
where
    F: Fn(&str) -> Option<(String, P)>,
{
    type Principal = P;
    fn secret_for(&self, access_key: &str) -> Option<(String, P)> {
        self(access_key)
    }
}

/// A request as it arrived: `path` and `query` exactly as on the wire (still percent-encoded).
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What the verifier expects of the credential scope; `None` accepts any value.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub region: Option<String>,
    pub service: Option<String>,
}

impl Expect {
    /// What a local API Gateway in us-east-1 expects.
    pub fn execute_api(region: &str) -> Self {
        Expect {
            region: Some(region.to_owned()),
            service: Some("execute-api".to_owned()),
        }
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<P> {
    pub access_key: String,
    pub principal: P,
    pub region: String,
    pub service: String,
    pub request_time: DateTime<Utc>,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Self, SigV4Error> {
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| malformed(format!("algorithm is not {ALGORITHM}")))?;
        if !rest.starts_with(' ') {
            return Err(malformed(format!("algorithm is not {ALGORITHM}")));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, val) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| malformed(format!("authorization component {part:?}")))?;
            let slot = match key {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                other => return Err(malformed(format!("unknown component {other}"))),
            };
            if slot.replace(val.to_owned()).is_some() {
                return Err(malformed(format!("{key} given twice")));
            }
        }
        let credential = credential.ok_or_else(|| malformed("no Credential"))?;
        let signed_headers = signed_headers.ok_or_else(|| malformed("no SignedHeaders"))?;
        let signature = signature.ok_or_else(|| malformed("no Signature"))?;

        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, terminator] = scope[..] else {
            return Err(malformed(
                "Credential is not AKID/date/region/service/aws4_request",
            ));
        };
        if terminator != "aws4_request" || access_key.is_empty() || date.len() != 8 {
            return Err(malformed(
                "Credential is not AKID/date/region/service/aws4_request",
            ));
        }
        let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
        if signed_headers
            .iter()
            .any(|h| h.is_empty() || *h != h.to_lowercase())
        {
            return Err(malformed("SignedHeaders must be lowercase names"));
        }
        if !signed_headers.windows(2).all(|w| w[0] < w[1]) {
            return Err(malformed("SignedHeaders must be sorted"));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("Signature is not 64 hex digits"));
        }
        Ok(Authorization {
            access_key: access_key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }

    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Checks the signature of `request` at time `now`.
pub fn verify<L: SecretLookup + ?Sized>(
    request: &IncomingRequest<'_>,
    lookup: &L,
    expect: &Expect,
    now: DateTime<Utc>,
) -> Result<Verified<L::Principal>, SigV4Error> {
    let header = request
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigV4Error::MissingAuthorization)?
        .to_str()
        .map_err(|_| malformed("Authorization is not ASCII"))?;
    let auth = Authorization::parse(header)?;

    if let Some(region) = &expect.region {
        if *region != auth.region {
            return Err(malformed(format!("region {} is not {region}", auth.region)));
        }
    }
    if let Some(service) = &expect.service {
        if *service != auth.service {
            return Err(malformed(format!(
                "service {} is not {service}",
                auth.service
            )));
        }
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("the host header must be signed"));
    }

    let amz_date = header_str(request.headers, "x-amz-date")?
        .ok_or_else(|| malformed("no X-Amz-Date header"))?;
    let request_time = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    if !amz_date.starts_with(&auth.date) {
        return Err(malformed("credential date differs from X-Amz-Date"));
    }

    let body_hash = payload_hash(request)?;
    let canonical = canonical_request(request, &auth.signed_headers, &body_hash)?;
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        auth.scope(),
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );

    let (secret, principal) = lookup
        .secret_for(&auth.access_key)
        .ok_or_else(|| SigV4Error::UnknownAccessKey(auth.access_key.clone()))?;
    let key = signing_key(&secret, &auth.date, &auth.region, &auth.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(SigV4Error::BadSignature);
    }

    // Checked after the signature so that a forged date never reads as "expired".
    if (now - request_time).abs() > MAX_SKEW {
        return Err(SigV4Error::Expired { request_time, now });
    }

    Ok(Verified {
        access_key: auth.access_key,
        principal,
        region: auth.region,
        service: auth.service,
        request_time,
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, SigV4Error> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| malformed(format!("{name} is not ASCII")))
        })
        .transpose()
}

/// The body's hash; a signed `x-amz-content-sha256` must agree with the body itself.
fn payload_hash(request: &IncomingRequest<'_>) -> Result<String, SigV4Error> {
    let actual = hex::encode(Sha256::digest(request.body));
    match header_str(request.headers, "x-amz-content-sha256")? {
        None => Ok(actual),
        Some(UNSIGNED_PAYLOAD) => Err(malformed("the body must be signed")),
        Some(declared) if declared.eq_ignore_ascii_case(&actual) => Ok(actual),
        Some(_) => Err(SigV4Error::BadSignature),
    }
}

/// The canonical request of SigV4 (step 1 of the signing process).
pub fn canonical_request(
    request: &IncomingRequest<'_>,
    signed_headers: &[String],
    body_hash: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::new();
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_path(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed_headers {
        let mut values = Vec::new();
        for value in request.headers.get_all(name.as_str()) {
            let value = value
                .to_str()
                .map_err(|_| malformed(format!("header {name} is not ASCII")))?;
            values.push(trim_all(value));
        }
        if values.is_empty() {
            return Err(malformed(format!("signed header {name} is missing")));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(body_hash);
    Ok(out)
}

/// The path with dot segments removed, each segment URI-encoded (a `%` becomes `%25`).
pub fn canonical_path(path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let normalized = if path.contains("/.") || path.contains("//") {
        let mut segments: Vec<&str> = Vec::new();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                other => segments.push(other),
            }
        }
        let mut joined = format!("/{}", segments.join("/"));
        let ends_with_slash = ["/", "/.", "/.."].iter().any(|s| path.ends_with(s));
        if ends_with_slash && !joined.ends_with('/') {
            joined.push('/');
        }
        joined
    } else {
        path.to_owned()
    };
    normalized
        .split('/')
        .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The query decoded, re-encoded and sorted by name then value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, UNRESERVED).to_string(),
                utf8_percent_encode(&v, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn trim_all(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signing key of a secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_suite_signing_key() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            hex::encode(key),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75"
        );
    }

    #[test]
    fn encodes_paths_like_the_sdk() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/ሴ"), "/%E1%88%B4");
        assert_eq!(canonical_path("/a%20b"), "/a%2520b");
        assert_eq!(canonical_path("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(
            canonical_path("/requests/0190-ab/approve"),
            "/requests/0190-ab/approve"
        );
    }

    #[test]
    fn sorts_and_reencodes_the_query() {
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query("b=x%2Fy&a=1+2&a=0"), "a=0&a=1%202&b=x%2Fy");
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn trims_header_values() {
        assert_eq!(trim_all("  a   b  c "), "a b c");
    }

    #[test]
    fn parses_the_authorization_header() {
        let auth = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .expect("parses");
        assert_eq!(auth.access_key, "AKIDEXAMPLE");
        assert_eq!(auth.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(auth.scope(), "20150830/us-east-1/service/aws4_request");
    }

    #[test]
    fn refuses_malformed_authorization_headers() {
        let good_sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        for bad in [
            "Basic dXNlcjpwYXNz".to_owned(),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service, SignedHeaders=host, Signature={good_sig}"),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, Signature={good_sig}"),
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=zz".to_owned(),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date;host, Signature={good_sig}"),
            format!("AWS4-HMAC-SHA256Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature={good_sig}"),
        ] {
            assert!(
                matches!(Authorization::parse(&bad), Err(SigV4Error::Malformed(_))),
                "{bad}"
            );
        }
    }
}
