//! The plain HTTP target under /http/: echo, recorded headers, faults.

use fc_emulator::{Api, Fault};
use reqwest::Client;
use serde_json::json;

use crate::util::*;

async fn send(emulator: &fc_emulator::Emulator, path: &str, body: &str) -> reqwest::Response {
    Client::new()
        .post(format!("{}{path}", emulator.url()))
        .header("content-type", "application/json")
        .header("x-api-key", "secret-123")
        .header("authorization", "Bearer abc")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn echoes_and_records_headers() {
    let emulator = start().await;
    let response = send(&emulator, "/http/orders/sink", r#"[{"n":1}]"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.expect("body"), r#"[{"n":1}]"#);

    let call = &emulator.invocations()[0];
    assert_eq!(call.api, Api::Http);
    assert_eq!(call.function, "orders/sink");
    assert_eq!(call.header("x-api-key"), Some("secret-123"));
    assert_eq!(call.header("authorization"), Some("Bearer abc"));
    assert!(!call.failed);

    let (_, recorded) = json(
        Client::new()
            .get(format!("{}/_emulator/invocations", emulator.url()))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(recorded[0]["api"], "http");
    assert_eq!(recorded[0]["api_version"], "http");
    assert!(
        recorded[0]["headers"]
            .as_array()
            .expect("headers")
            .contains(&json!(["x-api-key", "secret-123"]))
    );
}

#[tokio::test]
async fn status_fault_with_retry_after() {
    let emulator = start().await;
    emulator.inject(Fault::status(503).times(1).retry_after(2));
    let response = send(&emulator, "/http/x", "{}").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(response.text().await.expect("body").contains("503"));
    assert_eq!(send(&emulator, "/http/x", "{}").await.status(), 200);
    let failed: Vec<bool> = emulator.invocations().iter().map(|i| i.failed).collect();
    assert_eq!(failed, [true, false]);
}

#[tokio::test]
async fn function_error_is_a_500() {
    let emulator = start().await;
    emulator.inject(Fault::function_error("boom").times(1));
    let (status, body) = json(send(&emulator, "/http/x", "{}").await).await;
    assert_eq!((status, body["errorMessage"].as_str()), (500, Some("boom")));
}

#[tokio::test]
async fn partial_batch_response_in_confluent_format() {
    let emulator = start().await;
    emulator.inject(Fault::batch_item_failures("poison"));
    let body = r#"[{"payload":{"topic":"t","partition":1,"offset":4,"value":"poison pill"}},
                   {"payload":{"topic":"t","partition":1,"offset":5,"value":"fine"}}]"#;
    let (status, reply) = json(send(&emulator, "/http/x", body).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": {"partition": "t-1", "offset": 4}}]})
    );
}
