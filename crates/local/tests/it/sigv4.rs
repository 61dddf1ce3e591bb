//! The verifier against AWS's published SigV4 test suite and against the SDK's own signer.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, TimeZone, Utc};
use elevate_local::sigv4::{
    canonical_request, verify, Authorization, Expect, IncomingRequest, SigV4Error, Verified,
};
use http::{HeaderMap, HeaderName, HeaderValue};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const CASES: [&str; 7] = [
    "get-utf8",
    "get-vanilla",
    "get-vanilla-query-order-key-case",
    "post-sts-header-before",
    "post-vanilla",
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
];

fn suite_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0)
        .single()
        .expect("valid date")
}

fn lookup(access_key: &str) -> Option<(String, String)> {
    (access_key == ACCESS_KEY).then(|| (SECRET.to_owned(), "suite-user".to_owned()))
}

fn fixture(case: &str, ext: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sigv4")
        .join(case)
        .join(format!("{case}.{ext}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `.sreq` file taken apart.
#[derive(Clone, Debug)]
struct Sreq {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Sreq {
    fn parse(text: &str) -> Sreq {
        let (head, body) = match text.split_once("\n\n") {
            Some((head, body)) => (head, body.as_bytes().to_vec()),
            None => (text, Vec::new()),
        };
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let mut parts = request_line.split(' ');
        let method = parts.next().expect("method").to_owned();
        let target = parts.next().expect("target");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("header line");
                (name.to_owned(), value.trim_start().to_owned())
            })
            .collect();
        Sreq {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body,
        }
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    fn verify_at(&self, now: DateTime<Utc>) -> Result<Verified<String>, SigV4Error> {
        let headers = self.header_map();
        let request = IncomingRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        verify(&request, &lookup, &Expect::default(), now)
    }

    fn verify(&self) -> Result<Verified<String>, SigV4Error> {
        self.verify_at(suite_now())
    }

    fn header_mut(&mut self, name: &str) -> &mut String {
        &mut self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .expect("header present")
            .1
    }
}

fn flip_byte(s: &mut String, index: usize) {
    let mut bytes = std::mem::take(s).into_bytes();
    bytes[index] = if bytes[index] == b'a' { b'b' } else { b'a' };
    *s = String::from_utf8(bytes).expect("ascii change keeps utf-8");
}

#[test]
fn every_suite_case_verifies() {
    for case in CASES {
        let sreq = Sreq::parse(&fixture(case, "sreq"));
        let verified = sreq.verify().unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(verified.access_key, ACCESS_KEY, "{case}");
        assert_eq!(verified.principal, "suite-user", "{case}");
        assert_eq!(verified.region, "us-east-1", "{case}");
        assert_eq!(verified.service, "service", "{case}");
        assert_eq!(verified.request_time, suite_now(), "{case}");
    }
}

#[test]
fn canonical_requests_match_the_suite() {
    for case in CASES {
        let sreq = Sreq::parse(&fixture(case, "sreq"));
        let headers = sreq.header_map();
        let auth_value = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .expect("authorization");
        let auth = Authorization::parse(auth_value).expect("authorization parses");
        let creq = fixture(case, "creq");
        let body_hash = creq.rsplit('\n').next().expect("hash line");
        let request = IncomingRequest {
            method: &sreq.method,
            path: &sreq.path,
            query: &sreq.query,
            headers: &headers,
            body: &sreq.body,
        };
        let rebuilt =
            canonical_request(&request, &auth.signed_headers, body_hash).expect("canonical");
        assert_eq!(rebuilt, creq, "{case}");
    }
}

#[test]
fn a_one_byte_change_fails_every_case() {
    for case in CASES {
        let original = Sreq::parse(&fixture(case, "sreq"));

        let mut body = original.clone();
        if body.body.is_empty() {
            body.body.push(b'x');
        } else {
            body.body[0] ^= 1;
        }
        assert_eq!(body.verify(), Err(SigV4Error::BadSignature), "{case}: body");

        let mut path = original.clone();
        path.path.push('x');
        assert_eq!(path.verify(), Err(SigV4Error::BadSignature), "{case}: path");

        let mut method = original.clone();
        method.method = if method.method == "GET" { "PUT" } else { "GET" }.to_owned();
        assert_eq!(
            method.verify(),
            Err(SigV4Error::BadSignature),
            "{case}: method"
        );

        let mut query = original.clone();
        if query.query.is_empty() {
            query.query = "x".to_owned();
        } else {
            let last = query.query.len() - 1;
            flip_byte(&mut query.query, last);
        }
        assert_eq!(
            query.verify(),
            Err(SigV4Error::BadSignature),
            "{case}: query"
        );

        let mut host = original.clone();
        flip_byte(host.header_mut("host"), 0);
        assert_eq!(host.verify(), Err(SigV4Error::BadSignature), "{case}: host");

        let mut date = original.clone();
        // 12:36:00 → 12:36:01: still within the window, so only the signature can refuse it.
        let value = date.header_mut("x-amz-date");
        *value = value.replace("123600Z", "123601Z");
        assert_eq!(date.verify(), Err(SigV4Error::BadSignature), "{case}: date");

        let mut signature = original.clone();
        let auth = signature.header_mut("authorization");
        let last = auth.len() - 1;
        flip_byte(auth, last);
        assert_eq!(
            signature.verify(),
            Err(SigV4Error::BadSignature),
            "{case}: signature"
        );
    }
}

#[test]
fn a_change_to_a_signed_extra_header_fails() {
    let mut sreq = Sreq::parse(&fixture("post-sts-header-before", "sreq"));
    flip_byte(sreq.header_mut("x-amz-security-token"), 0);
    assert_eq!(sreq.verify(), Err(SigV4Error::BadSignature));

    let mut sreq = Sreq::parse(&fixture("post-x-www-form-urlencoded", "sreq"));
    sreq.header_mut("content-type").push('x');
    assert_eq!(sreq.verify(), Err(SigV4Error::BadSignature));
}

#[test]
fn unsigned_headers_may_change() {
    let mut sreq = Sreq::parse(&fixture("get-vanilla", "sreq"));
    sreq.headers
        .push(("User-Agent".to_owned(), "anything".to_owned()));
    assert!(sreq.verify().is_ok());
}

#[test]
fn the_request_time_must_be_within_15_minutes() {
    let sreq = Sreq::parse(&fixture("get-vanilla", "sreq"));
    let minutes = chrono::Duration::minutes;
    assert!(sreq.verify_at(suite_now() + minutes(15)).is_ok());
    assert!(sreq.verify_at(suite_now() - minutes(15)).is_ok());
    for now in [suite_now() + minutes(16), suite_now() - minutes(16)] {
        assert!(
            matches!(sreq.verify_at(now), Err(SigV4Error::Expired { .. })),
            "{now}"
        );
    }
}

#[test]
fn unknown_keys_and_missing_headers_are_typed() {
    let mut unknown = Sreq::parse(&fixture("get-vanilla", "sreq"));
    let auth = unknown.header_mut("authorization");
    *auth = auth.replace("AKIDEXAMPLE", "AKIDOTHER");
    assert_eq!(
        unknown.verify(),
        Err(SigV4Error::UnknownAccessKey("AKIDOTHER".to_owned()))
    );

    let mut missing = Sreq::parse(&fixture("get-vanilla", "sreq"));
    missing
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    assert_eq!(missing.verify(), Err(SigV4Error::MissingAuthorization));

    let mut no_date = Sreq::parse(&fixture("get-vanilla", "sreq"));
    no_date
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
    assert!(matches!(no_date.verify(), Err(SigV4Error::Malformed(_))));
}

#[test]
fn the_expected_scope_is_enforced() {
    let sreq = Sreq::parse(&fixture("get-vanilla", "sreq"));
    let headers = sreq.header_map();
    let request = IncomingRequest {
        method: &sreq.method,
        path: &sreq.path,
        query: &sreq.query,
        headers: &headers,
        body: &sreq.body,
    };
    let result = verify(
        &request,
        &lookup,
        &Expect::execute_api("us-east-1"),
        suite_now(),
    );
    assert!(
        matches!(result, Err(SigV4Error::Malformed(_))),
        "{result:?}"
    );
}

/// Signs like the CLI will (the SDK's signer, service execute-api) and returns the request parts.
fn sdk_signed(
    method: &str,
    url: &str,
    body: &[u8],
    session_token: Option<&str>,
    time: SystemTime,
) -> http::Request<Vec<u8>> {
    let identity = Credentials::new(
        ACCESS_KEY,
        SECRET,
        session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let uri: http::Uri = url.parse().expect("url");
    let host = uri.authority().expect("authority").to_string();
    let content_type = ("content-type", "application/json");
    let signable = SignableRequest::new(
        method,
        url,
        [content_type].into_iter(),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("host", host)
        .header(content_type.0, content_type.1)
        .body(body.to_vec())
        .expect("request");
    instructions.apply_to_request_http1x(&mut request);
    request
}

fn verify_http(
    request: &http::Request<Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<Verified<String>, SigV4Error> {
    let incoming = IncomingRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query().unwrap_or(""),
        headers: request.headers(),
        body: request.body(),
    };
    verify(&incoming, &lookup, &Expect::execute_api("us-east-1"), now)
}

#[test]
fn requests_signed_by_the_sdk_verify() {
    let now = SystemTime::now();
    let cases: [(&str, &str, &[u8], Option<&str>); 5] = [
        (
            "GET",
            "http://127.0.0.1:4510/requests?scope=to_approve&state=PENDING",
            b"",
            None,
        ),
        (
            "POST",
            "http://127.0.0.1:4510/requests",
            br#"{"flow":"infra_access","duration":"1h","reason":"incident #42: fix the bucket"}"#,
            None,
        ),
        (
            "POST",
            "http://127.0.0.1:4510/requests/0190b3c4-aaaa/approve?note=looks%20good&a=b+c",
            br#"{"reason":"ok"}"#,
            Some("session-token-value"),
        ),
        (
            "GET",
            "http://localhost:4510/audit?since=2026-01-01T00%3A00%3A00Z",
            b"",
            None,
        ),
        (
            "GET",
            "http://127.0.0.1:4510/requests/a%20b/../c",
            b"",
            None,
        ),
    ];
    for (method, url, body, token) in cases {
        let request = sdk_signed(method, url, body, token, now);
        let verified = verify_http(&request, Utc::now()).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(verified.service, "execute-api");
        assert_eq!(verified.principal, "suite-user");

        let mut tampered = request.clone();
        tampered.body_mut().push(b' ');
        assert_eq!(
            verify_http(&tampered, Utc::now()),
            Err(SigV4Error::BadSignature),
            "{url}: body"
        );

        let mut tampered = request.clone();
        let other = url.replace("4510", "4511");
        *tampered.uri_mut() = other.parse().expect("url");
        tampered
            .headers_mut()
            .insert("host", HeaderValue::from_static("127.0.0.1:4511"));
        assert_eq!(
            verify_http(&tampered, Utc::now()),
            Err(SigV4Error::BadSignature),
            "{url}: host"
        );
    }
}

#[test]
fn an_sdk_signature_expires_after_15_minutes() {
    let signed_at = SystemTime::now() - std::time::Duration::from_secs(16 * 60);
    let request = sdk_signed(
        "GET",
        "http://127.0.0.1:4510/requests",
        b"",
        None,
        signed_at,
    );
    assert!(matches!(
        verify_http(&request, Utc::now()),
        Err(SigV4Error::Expired { .. })
    ));
}
