//! Injected failures: counted error statuses, function errors, latency, body filters.

use std::time::{Duration, Instant, SystemTime};

use fc_emulator::Fault;

use crate::util::*;

async fn invoke(emulator: &fc_emulator::Emulator, body: &[u8]) -> reqwest::Response {
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    post(&emulator.url(), FC2_PATH, &headers, body.to_vec()).await
}

#[tokio::test]
async fn n_failures_then_success() {
    let emulator = start().await;
    emulator.inject(Fault::status(503).times(2).retry_after(3));
    for _ in 0..2 {
        let response = invoke(&emulator, b"batch").await;
        assert_eq!(
            response.headers().get("retry-after").expect("Retry-After"),
            "3"
        );
        assert!(response.headers().contains_key("x-fc-request-id"));
        let (status, body) = json(response).await;
        assert_eq!(
            (status, body["ErrorCode"].as_str()),
            (503, Some("ResourceThrottled"))
        );
    }
    assert_eq!(invoke(&emulator, b"batch").await.status(), 200);

    let all = emulator.invocations();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter().map(|i| (i.status, i.failed)).collect::<Vec<_>>(),
        [(503, true), (503, true), (200, false)]
    );
    assert_eq!(emulator.delivered().len(), 1);
}

#[tokio::test]
async fn throttling_without_retry_after() {
    let emulator = start().await;
    emulator.inject(Fault::status(429).times(1));
    let response = invoke(&emulator, b"x").await;
    assert!(!response.headers().contains_key("retry-after"));
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["ErrorCode"].as_str()),
        (429, Some("ResourceExhausted"))
    );
}

#[tokio::test]
async fn function_error_is_a_200_with_error_type() {
    let emulator = start().await;
    emulator.inject(Fault::function_error("something is wrong").times(1));
    let response = invoke(&emulator, b"x").await;
    assert_eq!(
        response
            .headers()
            .get("x-fc-error-type")
            .expect("error type"),
        "UnhandledInvocationError"
    );
    let (status, body) = json(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"errorMessage": "something is wrong", "errorType": "Error", "stackTrace": []})
    );
    let response = invoke(&emulator, b"x").await;
    assert!(!response.headers().contains_key("x-fc-error-type"));

    let all = emulator.invocations();
    assert_eq!(
        all[0].error_type.as_deref(),
        Some("UnhandledInvocationError")
    );
    assert!(all[0].failed);
    assert!(!all[1].failed);
}

#[tokio::test]
async fn latency_delays_the_reply() {
    let emulator = start().await;
    emulator.inject(Fault::latency(Duration::from_millis(300)).times(1));
    let started = Instant::now();
    assert_eq!(invoke(&emulator, b"x").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(invoke(&emulator, b"x").await.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn body_filter_fails_only_matching_payloads() {
    let emulator = start().await;
    emulator.inject(Fault::status(500).matching("poison"));
    assert_eq!(invoke(&emulator, b"clean").await.status(), 200);
    assert_eq!(invoke(&emulator, b"a poison pill").await.status(), 500);
    assert_eq!(invoke(&emulator, b"poison again").await.status(), 500);
    emulator.clear_faults();
    assert_eq!(invoke(&emulator, b"poison").await.status(), 200);
}

#[tokio::test]
async fn partial_batch_response_from_an_fc_function() {
    let emulator = start().await;
    emulator.inject(Fault::batch_item_failures("poison").times(1));
    let body = br#"[{"key":"k","offset":7,"partition":2,"topic":"t","value":"poison"}]"#;
    let (status, reply) = json(invoke(&emulator, body).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": {"partition": "t-2", "offset": 7}}]})
    );
}
