//! The CLI's signer against AWS's Signature Version 4 test suite (fixtures/sigv4/README.md).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";
/// 20150830T123600Z
const SUITE_TIME_SECS: u64 = 1_440_938_160;

fn fixture(case: &str, ext: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "sigv4",
        case,
        &format!("{case}.{ext}"),
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `.req` file as a request; returns it with the session token it carries, if any.
fn parse_req(text: &str) -> (http::Request<Vec<u8>>, Option<String>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let mut parts = request_line.splitn(3, ' ');
    let method = parts.next().expect("method");
    let target = parts.next().expect("target");
    let mut host = None;
    let mut token = None;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        match name.to_ascii_lowercase().as_str() {
            // The signer adds these itself, from the time and the credentials.
            "x-amz-date" => {}
            "x-amz-security-token" => token = Some(value.to_owned()),
            "host" => {
                host = Some(value.to_owned());
                headers.push((name.to_owned(), value.to_owned()));
            }
            _ => headers.push((name.to_owned(), value.to_owned())),
        }
    }
    let host = host.expect("Host header");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://{host}{target}"));
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    (
        builder.body(body.as_bytes().to_vec()).expect("request"),
        token,
    )
}

fn signed(case: &str) -> http::Request<Vec<u8>> {
    let (mut request, token) = parse_req(&fixture(case, "req"));
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, token, None, "sigv4-suite");
    let time: SystemTime = UNIX_EPOCH + Duration::from_secs(SUITE_TIME_SECS);
    elevate::api::sign(&mut request, &credentials, REGION, SERVICE, time).expect("sign");
    request
}

fn header<'a>(request: &'a http::Request<Vec<u8>>, name: &str) -> &'a str {
    request
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii header")
}

fn assert_case(case: &str) {
    let request = signed(case);
    assert_eq!(
        header(&request, "authorization"),
        fixture(case, "authz"),
        "{case}: Authorization differs from the suite's answer"
    );
    assert_eq!(header(&request, "x-amz-date"), "20150830T123600Z");
}

#[test]
fn get_vanilla() {
    assert_case("get-vanilla");
}

#[test]
fn post_vanilla() {
    assert_case("post-vanilla");
}

#[test]
fn get_vanilla_query_order_key_case() {
    assert_case("get-vanilla-query-order-key-case");
}

#[test]
fn post_x_www_form_urlencoded_signs_the_body_hash() {
    assert_case("post-x-www-form-urlencoded");
}

#[test]
fn post_x_www_form_urlencoded_parameters() {
    assert_case("post-x-www-form-urlencoded-parameters");
}

#[test]
fn post_sts_header_before_signs_the_session_token() {
    assert_case("post-sts-header-before");
    let request = signed("post-sts-header-before");
    let token = parse_req(&fixture("post-sts-header-before", "req")).1;
    assert_eq!(
        Some(header(&request, "x-amz-security-token").to_owned()),
        token
    );
}

#[test]
fn a_changed_body_changes_the_signature() {
    let (mut request, _) = parse_req(&fixture("post-x-www-form-urlencoded", "req"));
    *request.body_mut() = b"Param1=value2".to_vec();
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "sigv4-suite");
    let time = UNIX_EPOCH + Duration::from_secs(SUITE_TIME_SECS);
    elevate::api::sign(&mut request, &credentials, REGION, SERVICE, time).expect("sign");
    assert_ne!(
        header(&request, "authorization"),
        fixture("post-x-www-form-urlencoded", "authz")
    );
}
