//! Vectors from botocore 1.43.11 (`scripts/sdk_vectors.py sigv4`): a real Lambda client
//! calling `Invoke`, stopped before the wire with the signing clock fixed at
//! 2024-01-02T03:04:05Z. Each test rebuilds the request from its wire form.

use super::*;

const KEY_ID: &str = "FIXEDTESTAWSKEYID001";
const SECRET: &str = "FixedTestAwsSecret/ForSdkVectors+0123456";
const TOKEN: &str = "FixedTestSessionTokenForVectors/+==";
const AMZ_DATE: &str = "20240102T030405Z";
const LOCAL_HOST: &str = "127.0.0.1:9001";
const BODY: &[u8] = br#"{"eventSource":"SelfManagedKafka","records":{"orders-0":[{"topic":"orders","partition":0,"offset":15,"value":"aGVsbG8="}]}}"#;
const BODY_SHA256: &str = "9c44c86fcb5e21dd7a7189a3e96adc0a362d6ae45bbc88a8ab5a7e5e51b65150";

fn credentials(session_token: Option<&'static str>) -> AwsCredentials<'static> {
    AwsCredentials {
        access_key_id: KEY_ID,
        secret_access_key: SECRET,
        session_token,
    }
}

/// What a Lambda client sends besides the signed headers: botocore adds these after
/// signing, and `User-Agent` is never signed.
const UNSIGNED_EXTRAS: &[(&str, &str)] = &[("User-Agent", "fcsink/0.1 (test)")];

/// Signs `POST path?query` to the local endpoint and checks the `Authorization` value.
fn check(
    function_name: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    token: Option<&'static str>,
    body_sha256: &str,
    expected_signed: &str,
    expected_signature: &str,
) {
    let path = lambda_invoke_path(function_name);
    let mut all = headers.to_vec();
    all.extend_from_slice(UNSIGNED_EXTRAS);
    let request = SigV4Request {
        method: "POST",
        path: &path,
        query,
        host: LOCAL_HOST,
        headers: &all,
        payload_sha256: body_sha256,
    };
    let signed = sigv4_sign(
        &credentials(token),
        "us-east-1",
        "lambda",
        &request,
        AMZ_DATE,
    );
    assert_eq!(
        signed.authorization,
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/20240102/us-east-1/lambda/aws4_request, \
             SignedHeaders={expected_signed}, Signature={expected_signature}"
        )
    );
    assert_eq!(signed.x_amz_date, AMZ_DATE);
    assert_eq!(signed.x_amz_security_token.as_deref(), token);
}

#[test]
fn body_hash() {
    // [sigv4] body_sha256
    assert_eq!(sha256_hex(BODY), BODY_SHA256);
}

#[test]
fn plain_name() {
    // [sigv4] plain_*
    check(
        "hello_world",
        &[],
        &[],
        None,
        BODY_SHA256,
        "host;x-amz-date",
        "b278f239573c4f0ec0d473c7a7932c1064e17fa3be7f41895a99481590d9c33d",
    );
}

#[test]
fn full_arn_is_encoded_on_the_wire_and_again_when_signed() {
    // [sigv4] arn_path and arn_canonical_request
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:my-fn";
    let path = lambda_invoke_path(arn);
    assert_eq!(
        path,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations"
    );
    assert_eq!(
        sigv4_canonical_uri(&path),
        "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Amy-fn/invocations"
    );
    check(
        arn,
        &[],
        &[],
        None,
        BODY_SHA256,
        "host;x-amz-date",
        "64314679884e007cc3b59ba8f148eba78741b8840f31fb4af614d3b82c403d36",
    );
}

#[test]
fn alias_in_the_name() {
    // [sigv4] alias_*
    assert_eq!(
        lambda_invoke_path("my-fn:prod"),
        "/2015-03-31/functions/my-fn%3Aprod/invocations"
    );
    check(
        "my-fn:prod",
        &[],
        &[],
        None,
        BODY_SHA256,
        "host;x-amz-date",
        "72fb9befc32477cbbac03093564b9fc4896cbffb219755e728e3825a65c07e08",
    );
}

#[test]
fn partial_arn() {
    // [sigv4] partial_arn_*
    check(
        "123456789012:function:my-fn",
        &[],
        &[],
        None,
        BODY_SHA256,
        "host;x-amz-date",
        "846caaeb271640b3a2dc383fc47dd6fb5bf257230a5855b2490ba7251979eea8",
    );
}

#[test]
fn qualifier_query() {
    // [sigv4] qualifier_*: the wire query is `Qualifier=%24LATEST`.
    let query = [("Qualifier", "$LATEST")];
    assert_eq!(sigv4_canonical_query(&query), "Qualifier=%24LATEST");
    check(
        "my-fn",
        &query,
        &[],
        None,
        BODY_SHA256,
        "host;x-amz-date",
        "f91f7ac6a8511df801248ef88a311d3c0e24dba64f0cd91b2913887828384e25",
    );
}

#[test]
fn session_token_and_event_invocation() {
    // [sigv4] token_event_*
    check(
        "my-fn",
        &[],
        &[("X-Amz-Invocation-Type", "Event")],
        Some(TOKEN),
        BODY_SHA256,
        "host;x-amz-date;x-amz-invocation-type;x-amz-security-token",
        "5337daab9445cea8b1eaeb7d1479cefc4458c4274e1399a9ad229b98cdc6bfe4",
    );
}

#[test]
fn empty_body() {
    // [sigv4] empty_body_*
    check(
        "my-fn",
        &[],
        &[],
        None,
        &sha256_hex(b""),
        "host;x-amz-date",
        "6fb760bacbf73f56600a03d28e6ecbf104cb4669f88c3d8e75cc7e4beb1c04bb",
    );
}

#[test]
fn https_default_port_and_extra_lambda_headers() {
    // [sigv4] dry_run_https_*: region eu-west-1, Host without the default port.
    let path = lambda_invoke_path("my-fn:prod");
    let headers = [
        ("X-Amz-Invocation-Type", "DryRun"),
        ("X-Amz-Log-Type", "Tail"),
        ("X-Amz-Client-Context", "eyJjdXN0b20iOnt9fQ=="),
        ("User-Agent", "anything"),
    ];
    let request = SigV4Request {
        method: "POST",
        path: &path,
        query: &[],
        host: "lambda.eu-west-1.amazonaws.com",
        headers: &headers,
        payload_sha256: BODY_SHA256,
    };
    let signed = sigv4_sign(
        &credentials(None),
        "eu-west-1",
        "lambda",
        &request,
        AMZ_DATE,
    );
    assert_eq!(
        signed.authorization,
        "AWS4-HMAC-SHA256 Credential=FIXEDTESTAWSKEYID001/20240102/eu-west-1/lambda/aws4_request, \
         SignedHeaders=host;x-amz-client-context;x-amz-date;x-amz-invocation-type;x-amz-log-type, \
         Signature=9a9ac3aa27daa35949d6163837fa27191ad5e18c35fda0715aa74216ac878b14"
    );
}

type Pairs = Vec<(&'static str, &'static str)>;

/// `[sigv4] handmade_*`: SigV4Auth on a request with awkward headers, dot segments and
/// an encoded query.
fn handmade() -> (Pairs, Pairs) {
    let headers = vec![
        ("Content-Type", "application/json"),
        ("X-Custom", "  a   b\tc  "),
        ("X-Multi", "one"),
        ("x-multi", " two "),
        ("User-Agent", "fcsink/0.1"),
        ("Connection", "keep-alive"),
        (
            "X-Amzn-Trace-Id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ),
    ];
    let query = vec![
        ("b", "a b"),
        ("Qualifier", "$LATEST"),
        ("a", "x/y"),
        ("a", "w"),
    ];
    (headers, query)
}

const HANDMADE_PATH: &str = "/2015-03-31/functions/./x//my-fn%3Aprod/../my-fn%3Aprod/invocations";

#[test]
fn handmade_canonical_request() {
    let (headers, query) = handmade();
    let mut all = headers.clone();
    all.push(("X-Amz-Date", AMZ_DATE));
    let request = SigV4Request {
        method: "post",
        path: HANDMADE_PATH,
        query: &query,
        host: LOCAL_HOST,
        headers: &all,
        payload_sha256: &sha256_hex(b""),
    };
    let signed = sigv4_signed_headers(&all);
    assert_eq!(
        signed,
        ["content-type", "host", "x-amz-date", "x-custom", "x-multi"]
    );
    assert_eq!(
        sigv4_canonical_request(&request, &signed),
        "POST\n/2015-03-31/functions/x/my-fn%253Aprod/invocations\n\
         Qualifier=%24LATEST&a=w&a=x%2Fy&b=a%20b\n\
         content-type:application/json\nhost:127.0.0.1:9001\nx-amz-date:20240102T030405Z\n\
         x-custom:a b c\nx-multi:one,two\n\n\
         content-type;host;x-amz-date;x-custom;x-multi\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn handmade_authorization_and_server_side_check() {
    let (headers, query) = handmade();
    let empty = sha256_hex(b"");
    let request = SigV4Request {
        method: "POST",
        path: HANDMADE_PATH,
        query: &query,
        host: LOCAL_HOST,
        headers: &headers,
        payload_sha256: &empty,
    };
    let signed = sigv4_sign(
        &credentials(None),
        "us-east-1",
        "lambda",
        &request,
        AMZ_DATE,
    );
    let expected = "AWS4-HMAC-SHA256 Credential=FIXEDTESTAWSKEYID001/20240102/us-east-1/lambda/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-custom;x-multi, \
         Signature=e7dfb7d6c699163c524ce4b7360ac3b03af48add5eb7b499b6729012f7fd4b1e";
    assert_eq!(signed.authorization, expected);

    // The server sees every header, including the ones signing added.
    let mut received = headers.clone();
    received.extend(signed.pairs());
    received.push(("host", LOCAL_HOST));
    let auth = SigV4Authorization::parse(expected).expect("well-formed");
    let as_received = SigV4Request {
        headers: &received,
        ..request
    };
    assert!(sigv4_verify(SECRET, &auth, &as_received, AMZ_DATE));
    assert!(!sigv4_verify("wrong", &auth, &as_received, AMZ_DATE));
    let other_body = sha256_hex(b"{}");
    let tampered = SigV4Request {
        payload_sha256: &other_body,
        ..as_received
    };
    assert!(!sigv4_verify(SECRET, &auth, &tampered, AMZ_DATE));
    // An unsigned header may change freely.
    let mut other_agent = received.clone();
    other_agent.retain(|(k, _)| *k != "User-Agent");
    other_agent.push(("user-agent", "another/1.0"));
    let new_agent = SigV4Request {
        headers: &other_agent,
        ..as_received
    };
    assert!(sigv4_verify(SECRET, &auth, &new_agent, AMZ_DATE));
}

#[test]
fn caller_copies_of_signing_headers_are_replaced() {
    let stale = [
        ("Authorization", "AWS4-HMAC-SHA256 old"),
        ("X-Amz-Date", "20000101T000000Z"),
        ("x-amz-security-token", "old-token"),
    ];
    let path = lambda_invoke_path("hello_world");
    let request = |headers| SigV4Request {
        method: "POST",
        path: &path,
        query: &[],
        host: LOCAL_HOST,
        headers,
        payload_sha256: BODY_SHA256,
    };
    assert_eq!(
        sigv4_sign(
            &credentials(None),
            "us-east-1",
            "lambda",
            &request(&stale),
            AMZ_DATE
        ),
        sigv4_sign(
            &credentials(None),
            "us-east-1",
            "lambda",
            &request(&[]),
            AMZ_DATE
        ),
    );
}

#[test]
fn parse_authorization() {
    let parsed = SigV4Authorization::parse(
        "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/lambda/aws4_request,SignedHeaders=host;x-amz-date,Signature=ab",
    )
    .expect("well-formed");
    assert_eq!(
        parsed,
        SigV4Authorization {
            access_key_id: "AK",
            date: "20240102",
            region: "us-east-1",
            service: "lambda",
            signed_headers: vec!["host", "x-amz-date"],
            signature: "ab",
        }
    );
    for bad in [
        "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/lambda/aws4_request, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/lambda, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=/20240102/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab",
        "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host,Signature=ab",
        "AWS4-HMAC-SHA256",
    ] {
        assert_eq!(SigV4Authorization::parse(bad), None, "{bad}");
    }
}

#[test]
fn amz_date_from_unix_seconds() {
    // The vectors' clock, a leap day, and a century that is not a leap year.
    assert_eq!(sigv4_amz_date(1_704_164_645), AMZ_DATE);
    assert_eq!(sigv4_amz_date(1_709_251_199), "20240229T235959Z");
    assert_eq!(sigv4_amz_date(4_107_542_400), "21000301T000000Z");
    assert_eq!(sigv4_amz_date(0), "19700101T000000Z");
}

#[test]
fn canonical_uri_edges() {
    assert_eq!(sigv4_canonical_uri(""), "/");
    assert_eq!(sigv4_canonical_uri("/"), "/");
    assert_eq!(sigv4_canonical_uri("/a/b/"), "/a/b/");
    assert_eq!(sigv4_canonical_uri("/a/../.."), "/");
    assert_eq!(sigv4_canonical_uri("/a b/%41"), "/a%20b/%2541");
}

#[test]
fn constant_time_eq_compares() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}
