//! The `/_emulator` HTTP API, as a script would use it.

use std::time::SystemTime;

use reqwest::Client;

use crate::util::*;

#[tokio::test]
async fn faults_record_and_stats_over_http() {
    let emulator = start().await;
    let client = Client::new();
    let faults_url = format!("{}/_emulator/faults", emulator.url());
    let rules = r#"[{"type":"status","status":429,"count":1,"retry_after_secs":2},
                    {"type":"function_error","error_message":"bad record","body_contains":"bad"}]"#;
    let added = client
        .post(&faults_url)
        .header("content-type", "application/json")
        .body(rules)
        .send()
        .await
        .expect("sent");
    assert_eq!(added.status(), 204);
    let (_, listed) = json(client.get(&faults_url).send().await.expect("sent")).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &[], SystemTime::now());
    let first = post(&emulator.url(), FC2_PATH, &headers, "ok".into()).await;
    assert_eq!(first.status(), 429);
    assert_eq!(
        first.headers().get("retry-after").expect("Retry-After"),
        "2"
    );
    let second = post(&emulator.url(), FC2_PATH, &headers, "a bad one".into()).await;
    assert_eq!(
        second.headers().get("x-fc-error-type").expect("error type"),
        "UnhandledInvocationError"
    );
    assert_eq!(
        post(&emulator.url(), FC2_PATH, &headers, "ok".into())
            .await
            .status(),
        200
    );

    let invocations_url = format!("{}/_emulator/invocations", emulator.url());
    let (status, recorded) = json(client.get(&invocations_url).send().await.expect("sent")).await;
    assert_eq!(status, 200);
    let recorded = recorded.as_array().expect("array").clone();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[1]["body"], "a bad one");
    assert_eq!(recorded[1]["failed"], true);
    assert_eq!(recorded[2]["api_version"], "2016-08-15");
    assert_eq!(recorded[2]["invocation_type"], "Sync");
    assert!(
        recorded[2]["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let (_, stats) = json(
        client
            .get(format!("{}/_emulator/stats", emulator.url()))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        stats,
        serde_json::json!({
            "invocations": 3, "delivered": 1, "failed": 2, "executed": 2, "assume_role_calls": 0
        })
    );

    assert_eq!(
        client
            .delete(&invocations_url)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    assert!(emulator.invocations().is_empty());
    assert_eq!(
        client
            .delete(&faults_url)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    let (_, listed) = json(client.get(&faults_url).send().await.expect("sent")).await;
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn invalid_fault_is_rejected() {
    let emulator = start().await;
    let response = Client::new()
        .post(format!("{}/_emulator/faults", emulator.url()))
        .header("content-type", "application/json")
        .body(r#"{"type":"status","status":42}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    let response = Client::new()
        .post(format!("{}/_emulator/faults", emulator.url()))
        .header("content-type", "application/json")
        .body(r#"{"type":"explode"}"#)
        .send()
        .await
        .expect("sent");
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let emulator = start().await;
    let url = emulator.url();
    emulator.shutdown().await.expect("clean shutdown");
    assert!(
        reqwest::get(format!("{url}/_emulator/stats"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn async_tasks_are_switched_over_http() {
    let emulator = start().await;
    let client = Client::new();
    let url = format!("{}/_emulator/async_tasks", emulator.url());
    let (_, state) = json(client.get(&url).send().await.expect("sent")).await;
    assert_eq!(state, serde_json::json!({"enabled": false}));
    let set = client
        .put(&url)
        .header("content-type", "application/json")
        .body(r#"{"enabled":true}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(set.status(), 204);
    let (_, state) = json(client.get(&url).send().await.expect("sent")).await;
    assert_eq!(state, serde_json::json!({"enabled": true}));
}
