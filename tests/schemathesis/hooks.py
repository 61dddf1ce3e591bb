"""schemathesis hooks for fuzzing elevate's HTTP API (docs/openapi.yaml) on the local stack.

Every request is signed the way the real callers sign it, after schemathesis has built it, so the
signature covers the exact bytes sent:

- the routes whose security is `sigv4` with SigV4 (botocore's signer, service `execute-api`),
  as the AWS profile ELEVATE_FUZZ_PROFILE of the stack's AWS_CONFIG_FILE and
  AWS_SHARED_CREDENTIALS_FILE (stack.json's `aws_config_file` / `aws_credentials_file`), and
  approvals and denials as ELEVATE_FUZZ_APPROVER_PROFILE when set (someone who may decide the
  first profile's requests, so they get past the self-approval refusal);
- POST /slack/interactions as Slack signs it, with the stack's per-run signing secret from
  ELEVATE_FUZZ_SLACK_SECRET, so generated payloads reach the approve function's parser.

A case schemathesis generates without the security header (to see it refused) goes out unsigned.

One check of our own, `error_body_shape`: an error body is `{"error", "message"}` with a code
documented for its status; API Gateway's own 403 answers every unsigned request and never a
signed one (a fuzz that only ever met the gateway would test nothing); a method a route does not
have is API Gateway's 404.

Run by tests/tests/local_stack/openapi_fuzz.rs with SCHEMATHESIS_HOOKS pointing here.
"""

import hashlib
import hmac
import json
import os
import time
import urllib.parse

import botocore.session
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

# The codes of docs/contracts.md "HTTP API", by status.
ERROR_CODES = {
    400: {
        "bad_request",
        "unknown_flow",
        "unknown_target",
        "target_required",
        "invalid_duration",
        "duration_over_cap",
        "duration_not_allowed",
        "extension_over_cap",
        "reason_required",
        "reason_too_long",
        "reason_invalid_characters",
        "account_required",
        "unknown_account",
        "account_not_applicable",
        "unknown_directory_user",
        "break_glass_not_allowed",
        "break_glass_in_use",
    },
    401: {"bad_signature"},
    403: {
        "unknown_caller",
        "not_a_requester",
        "not_an_approver",
        "self_approval",
        "unknown_group",
        "forbidden",
    },
    404: {"not_found"},
    409: {"conflict", "ambiguous_directory_user"},
    500: {"internal"},
}

# Headers a signer sets; whatever schemathesis generated for them is replaced.
SIGNATURE_HEADERS = (
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "x-slack-signature",
    "x-slack-request-timestamp",
)


def _aws(profile):
    """The credentials and region of an AWS profile, read once."""
    session = botocore.session.Session(profile=profile)
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no credentials for AWS profile " + profile)
    return credentials.get_frozen_credentials(), session.get_config_variable("region") or "us-east-1"


CALLER = _aws(os.environ["ELEVATE_FUZZ_PROFILE"])
APPROVER = (
    _aws(os.environ["ELEVATE_FUZZ_APPROVER_PROFILE"])
    if os.environ.get("ELEVATE_FUZZ_APPROVER_PROFILE")
    else CALLER
)


def _body_bytes(prepared):
    body = prepared.body or b""
    return body.encode() if isinstance(body, str) else body


def _without_signature_headers(prepared):
    for name in list(prepared.headers):
        if name.lower() in SIGNATURE_HEADERS:
            del prepared.headers[name]


def _canonical_query_url(url):
    """The URL with its query encoded as the AWS SDKs encode it (%20, never +), so the
    gateway's decoding and botocore's signing see the same text."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(
        urllib.parse.quote(name, safe="-_.~") + "=" + urllib.parse.quote(value, safe="-_.~")
        for name, value in pairs
    )
    return urllib.parse.urlunsplit(parts._replace(query=query))


class SigV4(requests.auth.AuthBase):
    def __init__(self, signer):
        self.credentials, self.region = signer

    def __call__(self, prepared):
        _without_signature_headers(prepared)
        prepared.url = _canonical_query_url(prepared.url)
        aws = AWSRequest(
            method=prepared.method,
            url=prepared.url,
            data=_body_bytes(prepared),
            headers=dict(prepared.headers),
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                prepared.headers[name] = aws.headers[name]
        return prepared


class SlackSignature(requests.auth.AuthBase):
    def __init__(self, secret):
        self.secret = secret.encode()

    def __call__(self, prepared):
        _without_signature_headers(prepared)
        timestamp = str(int(time.time()))
        base = b"v0:" + timestamp.encode() + b":" + _body_bytes(prepared)
        digest = hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        prepared.headers["X-Slack-Request-Timestamp"] = timestamp
        prepared.headers["X-Slack-Signature"] = "v0=" + digest
        return prepared


def _schemes(case):
    security = case.operation.definition.raw.get("security", [])
    return {name for requirement in security for name in requirement}


def _has_header(case, name):
    return any(key.lower() == name for key in (case.headers or {}))


def _signed(case):
    """Whether the case carries its security header: schemathesis leaves it out of the cases
    that test refusal of a missing one, and those go out unsigned."""
    if "sigv4" in _schemes(case):
        return _has_header(case, "authorization")
    if "slackSignature" in _schemes(case):
        return _has_header(case, "x-slack-signature")
    return False


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _signed(case):
        return
    if "sigv4" in _schemes(case):
        deciding = case.operation.path.endswith(("/approve", "/deny"))
        kwargs["auth"] = SigV4(APPROVER if deciding else CALLER)
    elif os.environ.get("ELEVATE_FUZZ_SLACK_SECRET"):
        kwargs["auth"] = SlackSignature(os.environ["ELEVATE_FUZZ_SLACK_SECRET"])


def _json(response):
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


@schemathesis.check
def error_body_shape(ctx, response, case):
    """An error answer is `{"error": <a code documented for its status>, "message": <text>}`."""
    status = response.status_code
    body = _json(response)
    if case.method.upper() != case.operation.method.upper():
        # A method the route does not have (schemathesis tries TRACE, say): API Gateway's own
        # 404, as for any path it has no route for.
        if status != 404 or body != {"message": "Not Found"}:
            raise AssertionError(f"{case.method} on an unrouted method answered {status}: {response.content[:300]!r}")
        return None
    if status < 400:
        return None
    gateway_refusal = status == 403 and body == {"message": "Forbidden"}
    if "sigv4" in _schemes(case):
        if not _signed(case):
            if not gateway_refusal:
                raise AssertionError(
                    f"an unsigned request was not refused by the gateway: {status} {response.content[:300]!r}"
                )
            return None
        if gateway_refusal:
            raise AssertionError(
                "API Gateway refused the request's SigV4 signature: the hooks' signing and the "
                "gateway's verification disagree"
            )
    if not isinstance(body, dict) or set(body) != {"error", "message"}:
        raise AssertionError(f"error body is not {{\"error\", \"message\"}}: {response.content[:300]!r}")
    if body["error"] not in ERROR_CODES.get(status, set()):
        raise AssertionError(f"error code {body['error']!r} is not documented for status {status}")
    if not isinstance(body["message"], str) or not body["message"].strip():
        raise AssertionError("error message is empty")
    if status == 500 and body["message"] != "internal error":
        raise AssertionError("a 500 says more than `internal error`: the detail belongs in the log")
    return None
