//! Lambda Invoke: SigV4, function name forms, invocation types, limits, replies.

use std::time::SystemTime;

use fc_emulator::{Api, ApiVersion, AwsKey, EmulatorConfig, InvocationType};
use serde_json::json;

use crate::util::*;

const EVENT: &[u8] = br#"{"eventSource":"SelfManagedKafka","records":{}}"#;

#[tokio::test]
async fn sync_invocation_echoes_the_event_and_is_recorded() {
    let emulator = start().await;
    let response = invoke_lambda(&emulator, "hello_world", &[], EVENT).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-amz-executed-version"], "$LATEST");
    assert_eq!(headers["content-type"], "application/json");
    let request_id = headers["x-amzn-requestid"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(response.bytes().await.expect("body"), EVENT);

    let call = &emulator.invocations()[0];
    assert_eq!(call.request_id, request_id);
    assert_eq!(
        (call.api, call.api_version),
        (Api::Lambda, ApiVersion::Lambda)
    );
    assert_eq!(call.function, "hello_world");
    assert_eq!(call.qualifier, None);
    assert_eq!(call.invocation_type, InvocationType::Sync);
    assert_eq!(call.access_key_id, AWS_ID);
    assert_eq!(call.body, EVENT);
    assert!(!call.failed);
}

#[tokio::test]
async fn every_function_name_form() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let cases = [
        ("my-fn", None, "$LATEST"),
        ("my-fn:prod", None, "prod"),
        ("my-fn", Some("$LATEST"), "$LATEST"),
        ("my-fn:7", Some("7"), "7"),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
            Some("prod"),
            "prod",
        ),
        ("123456789012:function:my-fn:live", None, "live"),
    ];
    for (function, qualifier, version) in cases {
        let call = lambda_call(
            &AwsSigner::test_key(),
            &host,
            function,
            qualifier,
            &[],
            b"{}",
            SystemTime::now(),
        );
        let response = send_call(&emulator, call, b"{}".to_vec()).await;
        assert_eq!(response.status(), 200, "{function} {qualifier:?}");
        assert_eq!(response.headers()["x-amz-executed-version"], version);
    }
    let recorded = emulator.invocations();
    assert_eq!(recorded[1].function, "my-fn:prod");
    assert_eq!(recorded[1].qualifier.as_deref(), Some("prod"));
    assert_eq!(
        recorded[4].function,
        "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    );
    assert_eq!(recorded[4].qualifier.as_deref(), Some("prod"));
}

#[tokio::test]
async fn conflicting_qualifiers_and_bad_names_are_refused() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let call = lambda_call(
        &AwsSigner::test_key(),
        &host,
        "my-fn:prod",
        Some("3"),
        &[],
        b"{}",
        SystemTime::now(),
    );
    let response = send_call(&emulator, call, b"{}".to_vec()).await;
    assert_eq!(error_type(&response), "InvalidParameterValueException");
    let (status, body) = json(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["Type"], "User");

    let response = invoke_lambda(&emulator, "not a name", &[], b"{}").await;
    assert_eq!(
        (response.status().as_u16(), error_type(&response).as_str()),
        (400, "ValidationException")
    );
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn event_is_accepted_and_dry_run_answers_no_content() {
    let emulator = start().await;
    let event = invoke_lambda(
        &emulator,
        "fn",
        &[("X-Amz-Invocation-Type", "Event")],
        EVENT,
    )
    .await;
    assert_eq!(event.status(), 202);
    assert_eq!(event.text().await.expect("body"), "");
    let dry = invoke_lambda(
        &emulator,
        "fn",
        &[("X-Amz-Invocation-Type", "DryRun")],
        EVENT,
    )
    .await;
    assert_eq!(dry.status(), 204);
    let bad = invoke_lambda(
        &emulator,
        "fn",
        &[("X-Amz-Invocation-Type", "Async")],
        EVENT,
    )
    .await;
    assert_eq!(
        (bad.status().as_u16(), error_type(&bad).as_str()),
        (400, "ValidationException")
    );
    let types: Vec<_> = emulator
        .invocations()
        .iter()
        .map(|i| i.invocation_type)
        .collect();
    assert_eq!(types, [InvocationType::Async, InvocationType::DryRun]);
}

#[tokio::test]
async fn tampered_body_is_refused() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let call = lambda_call(
        &AwsSigner::test_key(),
        &host,
        "fn",
        None,
        &[],
        b"{\"n\":1}",
        SystemTime::now(),
    );
    let response = send_call(&emulator, call, b"{\"n\":2}".to_vec()).await;
    assert_eq!(error_type(&response), "InvalidSignatureException");
    let (status, body) = json(response).await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The request signature we calculated"))
    );
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn tampered_signed_header_is_refused() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let mut call = lambda_call(
        &AwsSigner::test_key(),
        &host,
        "fn",
        None,
        &[("X-Amz-Invocation-Type", "Event")],
        b"{}",
        SystemTime::now(),
    );
    set(
        &mut call.headers,
        "X-Amz-Invocation-Type",
        "RequestResponse",
    );
    let response = send_call(&emulator, call, b"{}".to_vec()).await;
    assert_eq!(
        (response.status().as_u16(), error_type(&response).as_str()),
        (403, "InvalidSignatureException")
    );
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_missing_signature() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let send = |signer: AwsSigner| {
        let call = lambda_call(&signer, &host, "fn", None, &[], b"{}", SystemTime::now());
        send_call(&emulator, call, b"{}".to_vec())
    };
    let wrong_secret = AwsSigner {
        secret: "nope".into(),
        ..AwsSigner::test_key()
    };
    assert_eq!(
        error_type(&send(wrong_secret).await),
        "InvalidSignatureException"
    );
    let unknown = AwsSigner {
        id: "AKIDUNKNOWN".into(),
        ..AwsSigner::test_key()
    };
    let response = send(unknown).await;
    assert_eq!(error_type(&response), "UnrecognizedClientException");
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"message": "The security token included in the request is invalid."})
        )
    );

    // An FC key does not sign Lambda requests.
    let fc_key = AwsSigner {
        id: ID.into(),
        secret: SECRET.into(),
        token: None,
    };
    assert_eq!(
        error_type(&send(fc_key).await),
        "UnrecognizedClientException"
    );

    let unsigned = post(
        &emulator.url(),
        "/2015-03-31/functions/fn/invocations",
        &Vec::new(),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (unsigned.status().as_u16(), error_type(&unsigned).as_str()),
        (403, "MissingAuthenticationTokenException")
    );
}

#[tokio::test]
async fn stale_signature_is_refused() {
    let emulator = start().await;
    let host = emulator.addr().to_string();
    let call = lambda_call(
        &AwsSigner::test_key(),
        &host,
        "fn",
        None,
        &[],
        b"{}",
        SystemTime::now() - minutes(6),
    );
    let response = send_call(&emulator, call, b"{}".to_vec()).await;
    assert_eq!(error_type(&response), "InvalidSignatureException");
    let (_, body) = json(response).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Signature expired"))
    );
}

#[tokio::test]
async fn session_token_must_match() {
    let emulator = start_with(EmulatorConfig {
        quiet: true,
        ..EmulatorConfig::default()
            .with_aws_key(AwsKey::new("ASIATEMP", "temp-secret").with_session_token("tok-1"))
    })
    .await;
    let host = emulator.addr().to_string();
    let send = |token: Option<&str>| {
        let signer = AwsSigner {
            id: "ASIATEMP".into(),
            secret: "temp-secret".into(),
            token: token.map(str::to_owned),
        };
        let call = lambda_call(&signer, &host, "fn", None, &[], b"{}", SystemTime::now());
        send_call(&emulator, call, b"{}".to_vec())
    };
    assert_eq!(send(Some("tok-1")).await.status(), 200);
    assert_eq!(error_type(&send(None).await), "UnrecognizedClientException");
    assert_eq!(
        error_type(&send(Some("tok-2")).await),
        "UnrecognizedClientException"
    );
    assert_eq!(
        emulator.invocations()[0].header("x-amz-security-token"),
        Some("tok-1")
    );
}

#[tokio::test]
async fn payload_limits_per_invocation_type() {
    let emulator = start_with(EmulatorConfig {
        lambda_sync_limit: 64,
        lambda_async_limit: 32,
        ..quiet_config()
    })
    .await;
    let body = |n: usize| format!("\"{}\"", "x".repeat(n - 2)).into_bytes();
    assert_eq!(
        invoke_lambda(&emulator, "fn", &[], &body(64))
            .await
            .status(),
        200
    );
    let too_big = invoke_lambda(&emulator, "fn", &[], &body(65)).await;
    assert_eq!(error_type(&too_big), "RequestTooLargeException");
    let (status, message) = json(too_big).await;
    assert_eq!(status, 413);
    assert_eq!(
        message["message"],
        "Request must be smaller than 64 bytes for the Invoke operation"
    );
    let event = [("X-Amz-Invocation-Type", "Event")];
    assert_eq!(
        invoke_lambda(&emulator, "fn", &event, &body(32))
            .await
            .status(),
        202
    );
    assert_eq!(
        invoke_lambda(&emulator, "fn", &event, &body(33))
            .await
            .status(),
        413
    );
}

#[tokio::test]
async fn default_limits_are_lambdas() {
    let config = EmulatorConfig::default();
    assert_eq!(
        (config.lambda_sync_limit, config.lambda_async_limit),
        (6_291_456, 1_048_576)
    );
}

#[tokio::test]
async fn payload_must_be_json() {
    let emulator = start().await;
    let response = invoke_lambda(&emulator, "fn", &[], b"not json").await;
    assert_eq!(error_type(&response), "InvalidRequestContentException");
    let (status, body) = json(response).await;
    assert_eq!((status, &body["Type"]), (400, &json!("User")));
    let empty = invoke_lambda(&emulator, "fn", &[], b"").await;
    assert_eq!(empty.status(), 200);
}
