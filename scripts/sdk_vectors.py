#!/usr/bin/env python3
"""Print the signature test vectors held by `sign/src/*.rs`, computed with the official SDKs.

Install the SDKs into a virtualenv (the repo's `.venv` is git-ignored), then run this
script with it:

    python3 -m venv .venv
    .venv/bin/pip install aliyun-fc2 alibabacloud-tea-openapi \
        alibabacloud-openapi-util alibabacloud-credentials botocore
    .venv/bin/python3 scripts/sdk_vectors.py            # every section
    .venv/bin/python3 scripts/sdk_vectors.py sigv4      # only the AWS (botocore) vectors

The vectors in the tests were produced with aliyun-fc2 2.5.2, alibabacloud-tea-openapi
0.4.6, alibabacloud-openapi-util 0.2.4, alibabacloud-credentials 1.0.12 and botocore
1.43.11 (the first lines of each section name the installed versions). Each section
imports only its own SDK, so `sigv4` runs with botocore alone.

Every input is fixed, so the output only changes when an SDK changes how it signs.
The Rust tests name the vector (the `[section] name` lines) they copy.
"""

import datetime
import hashlib
import importlib.metadata
import logging
import sys
from types import SimpleNamespace
from unittest import mock

# Made-up credentials; nothing here is a real key.
AK_ID = "LTAI5tFixedTestKeyId0001"
AK_SECRET = "FixedTestSecretForSdkVectors0123"
STS_TOKEN = "CAISfixedSecurityTokenForVectors/+=="
ACCOUNT_ID = "1234567890123456"
ACS3 = "ACS3-HMAC-SHA256"


def show(section, name, value):
    print(f"[{section}] {name} = {value!r}")


class StringToSignCapture(logging.Handler):
    """fc2's sign_request logs its string to sign at DEBUG level; keep the last one."""

    last = None

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("string to sign:"):
            StringToSignCapture.last = message[len("string to sign:"):]


def versions(*dists):
    for dist in dists:
        show("versions", dist, importlib.metadata.version(dist))


def fc2_vectors():
    """fc2.auth.Auth.sign_request: FC 2.0 InvokeFunction, headers passed with lowercase keys."""
    from fc2.auth import Auth

    versions("aliyun-fc2")
    path = "/2016-08-15/services/kafka-sink.LATEST/functions/hello_world/invocations"
    async_headers = {
        "content-type": "application/octet-stream",
        "date": "Mon, 02 Jan 2006 15:04:05 GMT",
        "x-fc-invocation-type": "Async",
        "x-fc-security-token": STS_TOKEN,
        "x-fc-account-id": ACCOUNT_ID,
        "x-fc-log-type": "None",
    }
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger().addHandler(StringToSignCapture())
    auth = Auth(AK_ID, AK_SECRET, STS_TOKEN)
    show("fc2", "async_canonical_headers", Auth._build_canonical_headers(async_headers))
    show("fc2", "async_authorization", auth.sign_request("POST", path, async_headers))
    show("fc2", "async_string_to_sign", StringToSignCapture.last)

    sync_path = "/2016-08-15/services/kafka-sink/functions/hello_world/invocations"
    sync_headers = {
        "content-md5": "CY9rzUYh03PK3k6DJie09g==",
        "content-type": "application/json",
        "date": "Tue, 02 Jan 2024 03:04:05 GMT",
    }
    show("fc2", "sync_no_fc_headers_authorization",
         Auth(AK_ID, AK_SECRET).sign_request("POST", sync_path, sync_headers))


def acs3_request(headers, query):
    return SimpleNamespace(method="POST", pathname="/2023-03-30/functions/hello_world/invocations",
                           query=query, headers=headers)


def acs3_vectors():
    """alibabacloud_tea_openapi.utils: OpenAPI V3 (ACS3-HMAC-SHA256) for FC 3.0 InvokeFunction."""
    from alibabacloud_tea_openapi import utils as tea_utils
    from alibabacloud_tea_openapi.utils import Utils as TeaUtils
    from alibabacloud_openapi_util.client import Client as OpenApiUtil

    versions("alibabacloud-tea-openapi", "alibabacloud-openapi-util")
    body = b'[{"topic":"orders","value":"hello"}]'
    payload = hashlib.sha256(body).hexdigest()
    show("acs3", "body", body.decode())
    show("acs3", "payload_sha256", payload)
    show("acs3", "empty_sha256", TeaUtils.hash(b"", ACS3).hex())
    # Only host, content-type and x-acs-*: the set the Go/Java/TS SDKs sign, and the one
    # fcsink-sign signs by default.
    headers = {
        "host": f"{ACCOUNT_ID}.cn-hangzhou.fc.aliyuncs.com",
        "content-type": "application/octet-stream",
        "x-acs-version": "2023-03-30",
        "x-acs-action": "InvokeFunction",
        "x-acs-date": "2024-01-02T03:04:05Z",
        "x-acs-signature-nonce": "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "x-acs-content-sha256": payload,
        "x-acs-accesskey-id": AK_ID,
        "x-acs-security-token": STS_TOKEN,
    }
    query = {"qualifier": "LATEST"}
    canonical_headers, signed = tea_utils.get_canonicalized_headers(headers)
    show("acs3", "canonical_headers", canonical_headers)
    show("acs3", "signed_headers", signed)
    auth = TeaUtils.get_authorization(acs3_request(headers, query), ACS3, payload, AK_ID, AK_SECRET)
    show("acs3", "authorization", auth)
    show("acs3", "authorization_openapi_util",
         OpenApiUtil.get_authorization(acs3_request(headers, query), ACS3, payload, AK_ID, AK_SECRET))

    # The Python SDK itself signs every header it sends; a server must accept that too.
    python_style = dict(headers)
    python_style.update({
        "accept": "application/json",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.6 TeaDSL/2",
        "x-fc-invocation-type": "Async",
    })
    show("acs3", "python_style_authorization",
         TeaUtils.get_authorization(acs3_request(python_style, query), ACS3, payload, AK_ID,
                                    AK_SECRET))

    show("acs3", "canonical_query_encoded", tea_utils.get_canonical_query_string(
        {"qualifier": "LATEST", "b": "a b/c~d*e+f\u00e9", "a": ""}))
    multi = {"X-Acs-Multi": "b", "x-acs-multi": "  a  ", "Host": " example.com "}
    show("acs3", "canonical_headers_multi", tea_utils.get_canonicalized_headers(multi))


def rpc_params():
    return {
        "Action": "AssumeRole",
        "Format": "JSON",
        "Version": "2015-04-01",
        "DurationSeconds": "3600",
        "RoleArn": f"acs:ram::{ACCOUNT_ID}:role/AliyunKafkaConnectorRole",
        "RoleSessionName": "fcsink-session",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": "2024-01-02T03:04:05Z",
        "SignatureNonce": "8d3b6a3e-1c2f-4e5d-9a7b-112233445566",
        "AccessKeyId": AK_ID,
    }


def rpc_vectors():
    """RPC V2 (HMAC-SHA1) for STS AssumeRole."""
    from alibabacloud_credentials.utils import parameter_helper
    from alibabacloud_tea_openapi.utils import Utils as TeaUtils

    versions("alibabacloud-credentials")
    params = rpc_params()
    sts = parameter_helper.compose_string_to_sign("GET", params)
    show("rpc", "assume_role_string_to_sign", sts)
    show("rpc", "assume_role_get_credentials",
         parameter_helper.sign_string(sts, AK_SECRET + "&"))
    show("rpc", "assume_role_get_tea", TeaUtils.get_rpcsignature(params, "GET", AK_SECRET))
    show("rpc", "assume_role_post_tea", TeaUtils.get_rpcsignature(params, "POST", AK_SECRET))
    # Values with a space, '*' and '~': RFC 3986 (tea-openapi); alibabacloud-credentials'
    # quote_plus would turn the space into '+'.
    with_policy = dict(params)
    with_policy["Policy"] = '{"Statement": [{"Action": ["fc:*"], "Effect": "Allow"}], "Version": "1~"}'
    show("rpc", "assume_role_policy_get_tea",
         TeaUtils.get_rpcsignature(with_policy, "GET", AK_SECRET))


# Made-up AWS credentials for the sigv4 section; nothing here is a real key.
AWS_KEY_ID = "FIXEDTESTAWSKEYID001"
AWS_SECRET = "FixedTestAwsSecret/ForSdkVectors+0123456"
AWS_TOKEN = "FixedTestSessionTokenForVectors/+=="
AWS_NOW = datetime.datetime(2024, 1, 2, 3, 4, 5)
KAFKA_EVENT = (b'{"eventSource":"SelfManagedKafka","records":{"orders-0":[{"topic":"orders",'
               b'"partition":0,"offset":15,"value":"aGVsbG8="}]}}')


class CanonicalRequestCapture(logging.Handler):
    """SigV4Auth.add_auth logs its canonical request at DEBUG level; keep the last one."""

    last = None

    def emit(self, record):
        if record.msg == "CanonicalRequest:\n%s":
            CanonicalRequestCapture.last = record.args[0]


def invoke_as_boto(endpoint, region, token=None, **params):
    """Call Lambda Invoke through a real botocore client and return the request it would
    send, stopped just before the wire, with the signing clock fixed at AWS_NOW."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    sent = {}

    def capture(request, **_):
        sent["request"] = request

        class Empty:
            def stream(self, *args, **kwargs):
                yield b"{}"

        return AWSResponse(request.url, 200, {}, Empty())

    session = botocore.session.get_session()
    session.set_credentials(AWS_KEY_ID, AWS_SECRET, token)
    client = session.create_client("lambda", region_name=region, endpoint_url=endpoint)
    client.meta.events.register("before-send", capture)
    with mock.patch("botocore.auth.get_current_datetime", return_value=AWS_NOW):
        client.invoke(**params)
    return sent["request"]


def show_invoke(name, request):
    """The wire form of one Invoke: path, query, every header, the canonical request."""
    from urllib.parse import urlsplit

    url = urlsplit(request.url)
    show("sigv4", f"{name}_path", url.path)
    show("sigv4", f"{name}_query", url.query)
    for header, value in request.headers.items():
        if header.lower() in ("user-agent", "amz-sdk-invocation-id"):
            value = "<varies>"
        value = value.decode() if isinstance(value, bytes) else value
        show("sigv4", f"{name}_header {header}", value)
    show("sigv4", f"{name}_canonical_request", CanonicalRequestCapture.last)


def sigv4_vectors():
    """botocore's SigV4Auth as a real Lambda client uses it for Invoke."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    versions("botocore")
    logging.getLogger("botocore.auth").setLevel(logging.DEBUG)
    logging.getLogger("botocore.auth").addHandler(CanonicalRequestCapture())
    local = "http://127.0.0.1:9001"
    show("sigv4", "body", KAFKA_EVENT.decode())
    show("sigv4", "body_sha256", hashlib.sha256(KAFKA_EVENT).hexdigest())

    cases = {
        "plain": dict(endpoint=local, region="us-east-1",
                      FunctionName="hello_world", Payload=KAFKA_EVENT),
        "arn": dict(endpoint=local, region="us-east-1",
                    FunctionName="arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                    Payload=KAFKA_EVENT),
        "alias": dict(endpoint=local, region="us-east-1",
                      FunctionName="my-fn:prod", Payload=KAFKA_EVENT),
        "partial_arn": dict(endpoint=local, region="us-east-1",
                            FunctionName="123456789012:function:my-fn", Payload=KAFKA_EVENT),
        "qualifier": dict(endpoint=local, region="us-east-1",
                          FunctionName="my-fn", Qualifier="$LATEST", Payload=KAFKA_EVENT),
        "token_event": dict(endpoint=local, region="us-east-1", token=AWS_TOKEN,
                            FunctionName="my-fn", InvocationType="Event", Payload=KAFKA_EVENT),
        "empty_body": dict(endpoint=local, region="us-east-1",
                           FunctionName="my-fn", Payload=b""),
        "dry_run_https": dict(endpoint="https://lambda.eu-west-1.amazonaws.com",
                              region="eu-west-1", FunctionName="my-fn:prod",
                              InvocationType="DryRun", LogType="Tail",
                              ClientContext="eyJjdXN0b20iOnt9fQ==", Payload=KAFKA_EVENT),
    }
    for name, case in cases.items():
        endpoint, region = case.pop("endpoint"), case.pop("region")
        show_invoke(name, invoke_as_boto(endpoint, region, **case))

    # SigV4Auth on a hand-made request: header trimming, repeated headers, the excluded
    # names, dot segments and an already-encoded query.
    request = AWSRequest(
        method="POST",
        url=f"{local}/2015-03-31/functions/./x//my-fn%3Aprod/../my-fn%3Aprod/invocations"
            "?b=a%20b&Qualifier=%24LATEST&a=x%2Fy&a=w",
        data=b"",
    )
    request.headers["Content-Type"] = "application/json"
    request.headers["X-Custom"] = "  a   b\tc  "
    request.headers["X-Multi"] = "one"
    request.headers["x-multi"] = " two "
    request.headers["User-Agent"] = "fcsink/0.1"
    request.headers["Connection"] = "keep-alive"
    request.headers["X-Amzn-Trace-Id"] = "Root=1-5759e988-bd862e3fe1be46a994272793"
    credentials = Credentials(AWS_KEY_ID, AWS_SECRET)
    with mock.patch("botocore.auth.get_current_datetime", return_value=AWS_NOW):
        botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
    show("sigv4", "handmade_canonical_request", CanonicalRequestCapture.last)
    show("sigv4", "handmade_authorization", request.headers["Authorization"])


SECTIONS = {"fc2": fc2_vectors, "acs3": acs3_vectors, "rpc": rpc_vectors, "sigv4": sigv4_vectors}

if __name__ == "__main__":
    for section in sys.argv[1:] or SECTIONS:
        SECTIONS[section]()
