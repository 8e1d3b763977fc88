//! Fault rules as Lambda answers them: throttling, service errors, function errors,
//! partial batch responses.

use fc_emulator::Fault;
use serde_json::json;

use crate::util::*;

const EVENT: &[u8] = br#"{"eventSource":"SelfManagedKafka","records":{"orders-0":[
    {"topic":"orders","partition":0,"offset":15,"value":"b2s="},
    {"topic":"orders","partition":0,"offset":16,"value":"cG9pc29u"}]}}"#;

#[tokio::test]
async fn throttling_has_retry_after_and_reason() {
    let emulator = start().await;
    emulator.inject(Fault::status(429).times(1).retry_after(7));
    let response = invoke_lambda(&emulator, "fn", &[], EVENT).await;
    assert_eq!(error_type(&response), "TooManyRequestsException");
    assert_eq!(response.headers()["retry-after"], "7");
    let (status, body) = json(response).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"Type": "User", "message": "Rate Exceeded.",
               "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
               "retryAfterSeconds": "7"})
    );
    assert_eq!(
        invoke_lambda(&emulator, "fn", &[], EVENT).await.status(),
        200
    );
    let all = emulator.invocations();
    assert_eq!((all[0].status, all[0].failed), (429, true));
}

#[tokio::test]
async fn server_errors_are_service_exceptions() {
    let emulator = start().await;
    emulator.inject(Fault::status(503).times(1));
    let response = invoke_lambda(&emulator, "fn", &[], EVENT).await;
    assert_eq!(error_type(&response), "ServiceException");
    let (status, body) = json(response).await;
    assert_eq!((status, &body["Type"]), (503, &json!("Service")));
    assert!(body["Message"].is_string());
}

#[tokio::test]
async fn function_errors_sync_and_async() {
    let emulator = start().await;
    emulator.inject(Fault::function_error("boom").times(2));
    let response = invoke_lambda(&emulator, "fn", &[], EVENT).await;
    assert_eq!(response.headers()["x-amz-function-error"], "Unhandled");
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body),
        (200, json!({"errorMessage": "boom", "errorType": "Error"}))
    );
    let event = invoke_lambda(
        &emulator,
        "fn",
        &[("X-Amz-Invocation-Type", "Event")],
        EVENT,
    )
    .await;
    assert_eq!(event.status(), 202);
    assert!(!event.headers().contains_key("x-amz-function-error"));
    let all = emulator.invocations();
    assert_eq!(all[0].error_type.as_deref(), Some("Unhandled"));
    assert!(all[0].failed && all[1].failed);
}

#[tokio::test]
async fn handled_function_error_over_the_control_api() {
    let emulator = start().await;
    let added = reqwest::Client::new()
        .post(format!("{}/_emulator/faults", emulator.url()))
        .header("content-type", "application/json")
        .body(r#"{"type":"function_error","handled":true,"error_type":"ValueError","count":1}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(added.status(), 204);
    let response = invoke_lambda(&emulator, "fn", &[], EVENT).await;
    assert_eq!(response.headers()["x-amz-function-error"], "Handled");
    let (_, body) = json(response).await;
    assert_eq!(body["errorType"], "ValueError");
}

#[tokio::test]
async fn partial_batch_response_names_the_poisoned_records() {
    let emulator = start().await;
    emulator.inject(Fault::batch_item_failures("poison"));
    let (status, body) = json(invoke_lambda(&emulator, "fn", &[], EVENT).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 16}}]})
    );
    let clean = br#"{"records":{"orders-0":[{"topic":"orders","partition":0,"offset":17,"value":"b2s="}]}}"#;
    let (_, body) = json(invoke_lambda(&emulator, "fn", &[], clean).await).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
    let failed: Vec<bool> = emulator.invocations().iter().map(|i| i.failed).collect();
    assert_eq!(failed, [true, false]);
}
