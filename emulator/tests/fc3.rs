//! FC 3.0 InvokeFunction: ACS3 signatures over method, path, query, headers and body.

use std::time::SystemTime;

use fc_emulator::{ApiVersion, InvocationType};
use fcsink_sign::{
    Acs3Request, acs3_canonical_request, acs3_signature, acs3_string_to_sign, sha256_hex,
};

use crate::util::*;

const BODY: &[u8] = br#"[{"topic":"orders","value":"hello"}]"#;

fn host(emulator: &fc_emulator::Emulator) -> String {
    emulator.addr().to_string()
}

fn path_and_query() -> String {
    format!("{FC3_PATH}?qualifier=LATEST")
}

#[tokio::test]
async fn signed_sync_and_async_invocations_succeed() {
    let emulator = start().await;
    let query = [("qualifier", "LATEST")];
    let headers = fc3_headers(
        &Signer::test_key(),
        &host(&emulator),
        &query,
        &[],
        BODY,
        SystemTime::now(),
    );
    let response = post(&emulator.url(), &path_and_query(), &headers, BODY.to_vec()).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-fc-request-id"));
    assert_eq!(response.text().await.expect("body"), "hello world");

    let extra = [("x-fc-invocation-type", "Async")];
    let headers = fc3_headers(
        &Signer::test_key(),
        &host(&emulator),
        &query,
        &extra,
        BODY,
        SystemTime::now(),
    );
    let response = post(&emulator.url(), &path_and_query(), &headers, BODY.to_vec()).await;
    assert_eq!(response.status(), 202);

    let recorded = emulator.invocations();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].api_version, ApiVersion::Fc3);
    assert_eq!(recorded[0].service, None);
    assert_eq!(recorded[0].qualifier.as_deref(), Some("LATEST"));
    assert_eq!(recorded[0].function, "hello_world");
    assert_eq!(recorded[1].invocation_type, InvocationType::Async);
    assert_eq!(recorded[1].body, BODY);
}

#[tokio::test]
async fn tampered_body_is_refused() {
    let emulator = start().await;
    let query = [("qualifier", "LATEST")];
    let headers = fc3_headers(
        &Signer::test_key(),
        &host(&emulator),
        &query,
        &[],
        BODY,
        SystemTime::now(),
    );
    let tampered = br#"[{"topic":"orders","value":"HELLO"}]"#.to_vec();
    let (status, body) =
        json(post(&emulator.url(), &path_and_query(), &headers, tampered).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["Code"], "SignatureNotMatch");
    assert_eq!(body["Message"], SIGNATURE_NOT_MATCH);
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn tampered_header_query_or_unsigned_acs_header_is_refused() {
    let emulator = start().await;
    let query = [("qualifier", "LATEST")];
    let signed = fc3_headers(
        &Signer::test_key(),
        &host(&emulator),
        &query,
        &[],
        BODY,
        SystemTime::now(),
    );

    let mut nonce = signed.clone();
    set(&mut nonce, "x-acs-signature-nonce", "another-nonce");
    let mut unsigned = signed.clone();
    unsigned.push(("x-acs-extra".into(), "sneaked in".into()));
    for (headers, pq) in [
        (nonce, path_and_query()),
        (unsigned, path_and_query()),
        (signed.clone(), format!("{FC3_PATH}?qualifier=prod")),
        (signed, FC3_PATH.to_owned()),
    ] {
        let (status, body) = json(post(&emulator.url(), &pq, &headers, BODY.to_vec()).await).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (403, Some("SignatureNotMatch")),
            "{pq}"
        );
    }
}

#[tokio::test]
async fn skewed_date_and_unknown_key_are_refused() {
    let emulator = start().await;
    let query = [("qualifier", "LATEST")];
    let old = SystemTime::now() - minutes(20);
    let headers = fc3_headers(
        &Signer::test_key(),
        &host(&emulator),
        &query,
        &[],
        BODY,
        old,
    );
    let response = post(&emulator.url(), &path_and_query(), &headers, BODY.to_vec()).await;
    assert_eq!(response.status(), 403);

    let unknown = Signer {
        id: "LTAIunknown".into(),
        ..Signer::test_key()
    };
    let headers = fc3_headers(
        &unknown,
        &host(&emulator),
        &query,
        &[],
        BODY,
        SystemTime::now(),
    );
    let (status, body) =
        json(post(&emulator.url(), &path_and_query(), &headers, BODY.to_vec()).await).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("InvalidAccessKeyID"))
    );
}

/// The Python SDK signs every header it sends; the emulator uses the request's own
/// SignedHeaders list, so that works too.
#[tokio::test]
async fn python_style_signed_headers_are_accepted() {
    let emulator = start().await;
    let host = host(&emulator);
    let date = acs_date(SystemTime::now());
    let payload = sha256_hex(BODY);
    let headers = [
        ("accept", "application/json"),
        ("content-type", "application/octet-stream"),
        ("host", host.as_str()),
        ("x-acs-action", "InvokeFunction"),
        ("x-acs-content-sha256", payload.as_str()),
        ("x-acs-date", date.as_str()),
        ("x-acs-signature-nonce", "0b7c4e0e-python-style"),
        ("x-acs-version", "2023-03-30"),
        ("x-fc-invocation-type", "Async"),
    ];
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let request = Acs3Request {
        method: "POST",
        path: FC3_PATH,
        query: &[("qualifier", "LATEST")],
        headers: &headers,
        payload_sha256: &payload,
    };
    let signature = acs3_signature(
        SECRET,
        &acs3_string_to_sign(&acs3_canonical_request(&request, &signed)),
    );
    let mut sent: Headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sent.push((
        "Authorization".into(),
        format!(
            "ACS3-HMAC-SHA256 Credential={ID},SignedHeaders={},Signature={signature}",
            signed.join(";")
        ),
    ));
    let response = post(&emulator.url(), &path_and_query(), &sent, BODY.to_vec()).await;
    assert_eq!(response.status(), 202);

    set(&mut sent, "x-fc-invocation-type", "Sync");
    let response = post(&emulator.url(), &path_and_query(), &sent, BODY.to_vec()).await;
    assert_eq!(response.status(), 403);
}
