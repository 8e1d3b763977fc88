//! FC 2.0 InvokeFunction: signatures, clock skew, payload limits, replies.

use std::time::SystemTime;

use fc_emulator::{ApiVersion, EmulatorConfig, InvocationType};

use crate::util::*;

#[tokio::test]
async fn sync_invocation_gets_hello_world_and_is_recorded() {
    let emulator = start().await;
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    let response = post(&emulator.url(), FC2_PATH, &headers, b"{\"n\":1}".to_vec()).await;
    assert_eq!(response.status(), 200);
    let request_id = response
        .headers()
        .get("x-fc-request-id")
        .expect("request id")
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(request_id.len(), 36);
    assert_eq!(response.text().await.expect("body"), "hello world");

    let recorded = emulator.invocations();
    assert_eq!(recorded.len(), 1);
    let call = &recorded[0];
    assert_eq!(call.request_id, request_id);
    assert_eq!(call.api_version, ApiVersion::Fc2);
    assert_eq!(call.service.as_deref(), Some("kafka-sink"));
    assert_eq!(call.qualifier.as_deref(), Some("LATEST"));
    assert_eq!(call.function, "hello_world");
    assert_eq!(call.invocation_type, InvocationType::Sync);
    assert_eq!(call.access_key_id, ID);
    assert_eq!(call.body, b"{\"n\":1}");
    assert_eq!(
        call.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(!call.failed);
}

#[tokio::test]
async fn async_invocation_is_accepted_with_an_empty_body() {
    let emulator = start().await;
    let path = "/2016-08-15/services/svc/functions/fn/invocations";
    let extra = [
        ("X-Fc-Invocation-Type", "Async"),
        ("x-fc-account-id", "123"),
    ];
    let headers = fc2_headers(&Signer::test_key(), path, &extra, SystemTime::now());
    let response = post(&emulator.url(), path, &headers, b"event".to_vec()).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().contains_key("x-fc-request-id"));
    assert_eq!(response.text().await.expect("body"), "");
    let call = &emulator.invocations()[0];
    assert_eq!(call.invocation_type, InvocationType::Async);
    assert_eq!(
        (call.service.as_deref(), call.qualifier.as_deref()),
        (Some("svc"), None)
    );
}

#[tokio::test]
async fn tampered_signed_header_is_refused() {
    let emulator = start().await;
    let mut headers = fc2_headers(
        &Signer::test_key(),
        FC2_PATH,
        &[("x-fc-invocation-type", "Async")],
        SystemTime::now(),
    );
    set(&mut headers, "x-fc-invocation-type", "Sync");
    let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, b"x".to_vec()).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        serde_json::json!({"ErrorCode": "SignatureNotMatch", "ErrorMessage": SIGNATURE_NOT_MATCH})
    );
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn signature_for_another_path_is_refused() {
    let emulator = start().await;
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    let other = "/2016-08-15/services/kafka-sink.LATEST/functions/other/invocations";
    let (status, body) = json(post(&emulator.url(), other, &headers, vec![]).await).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (403, Some("SignatureNotMatch"))
    );
}

#[tokio::test]
async fn wrong_secret_and_unknown_key_are_refused() {
    let emulator = start().await;
    let wrong_secret = Signer {
        secret: "not-the-secret".into(),
        ..Signer::test_key()
    };
    let headers = fc2_headers(&wrong_secret, FC2_PATH, &[], SystemTime::now());
    let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, vec![]).await).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (403, Some("SignatureNotMatch"))
    );

    let unknown = Signer {
        id: "LTAIunknown".into(),
        ..Signer::test_key()
    };
    let headers = fc2_headers(&unknown, FC2_PATH, &[], SystemTime::now());
    let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, vec![]).await).await;
    assert_eq!(status, 403);
    assert_eq!(body["ErrorCode"], "InvalidAccessKeyID");
    assert_eq!(body["ErrorMessage"], "invalid access key ID 'LTAIunknown'");
}

#[tokio::test]
async fn date_more_than_fifteen_minutes_off_is_refused() {
    let emulator = start().await;
    let now = SystemTime::now();
    for (date, expected) in [
        (now - minutes(14), 200),
        (now + minutes(14), 200),
        (now - minutes(16), 403),
        (now + minutes(16), 403),
    ] {
        let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], date);
        let response = post(&emulator.url(), FC2_PATH, &headers, vec![]).await;
        assert_eq!(
            response.status(),
            expected,
            "date {}",
            httpdate::fmt_http_date(date)
        );
    }
    assert_eq!(emulator.invocations().len(), 2);
}

#[tokio::test]
async fn missing_date_or_authorization_is_a_bad_request() {
    let emulator = start().await;
    let signed = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    for (missing, message) in [
        ("Date", "required HTTP header Date was not specified"),
        (
            "Authorization",
            "required HTTP header Authorization was not specified",
        ),
    ] {
        let mut headers = signed.clone();
        headers.retain(|(k, _)| k != missing);
        let (status, body) = json(post(&emulator.url(), FC2_PATH, &headers, vec![]).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["ErrorCode"], "MissingRequiredHeader");
        assert_eq!(body["ErrorMessage"], message);
    }
}

#[tokio::test]
async fn async_payload_limit_obeyed_and_violated() {
    let emulator = start().await;
    let extra = [("x-fc-invocation-type", "Async")];
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &extra, SystemTime::now());
    let at_limit = post(&emulator.url(), FC2_PATH, &headers, vec![b'a'; 128 * 1024]).await;
    assert_eq!(at_limit.status(), 202);

    let over = post(
        &emulator.url(),
        FC2_PATH,
        &headers,
        vec![b'a'; 128 * 1024 + 1],
    )
    .await;
    assert!(over.headers().contains_key("x-fc-request-id"));
    let (status, body) = json(over).await;
    assert_eq!(status, 400);
    assert_eq!(body["ErrorCode"], "EntityTooLarge");
    assert_eq!(
        body["ErrorMessage"],
        "payload size exceeds maximum allowed size (131072 bytes)"
    );
    assert_eq!(emulator.invocations().len(), 1);
}

#[tokio::test]
async fn sync_payload_limit_is_configurable() {
    let emulator = start_with(EmulatorConfig {
        sync_limit: 1000,
        quiet: true,
        ..EmulatorConfig::new(ID, SECRET)
    })
    .await;
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    let ok = post(&emulator.url(), FC2_PATH, &headers, vec![b'a'; 1000]).await;
    assert_eq!(ok.status(), 200);
    let (status, body) =
        json(post(&emulator.url(), FC2_PATH, &headers, vec![b'a'; 1001]).await).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (400, Some("EntityTooLarge"))
    );
}

#[tokio::test]
async fn unknown_paths_are_not_supported() {
    let emulator = start().await;
    let response = reqwest::get(format!("{}/2016-08-15/services", emulator.url()))
        .await
        .expect("sent");
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (400, Some("PathNotSupported"))
    );
}
