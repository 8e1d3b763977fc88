//! Asynchronous tasks: a task ID already taken answers 409 and is not run;
//! the record tells requests sent from executions.

use std::time::SystemTime;

use fc_emulator::{Emulator, Fault};

use crate::util::*;

const TASK: &str = "x-fc-stateful-async-invocation-id";

async fn submit_fc2(emulator: &Emulator, task: &str) -> (u16, serde_json::Value) {
    let extra = [("x-fc-invocation-type", "Async"), (TASK, task)];
    let headers = fc2_headers(&Signer::test_key(), FC2_PATH, &extra, SystemTime::now());
    let response = post(&emulator.url(), FC2_PATH, &headers, b"event".to_vec()).await;
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or_default())
}

async fn submit_fc3(emulator: &Emulator, task: &str) -> (u16, serde_json::Value) {
    let host = emulator.addr().to_string();
    let query = [("qualifier", "LATEST")];
    let extra = [
        ("x-fc-invocation-type", "Async"),
        ("x-fc-async-task-id", task),
    ];
    let headers = fc3_headers(
        &Signer::test_key(),
        &host,
        &query,
        &extra,
        b"event",
        SystemTime::now(),
    );
    let path = format!("{FC3_PATH}?qualifier=LATEST");
    let response = post(&emulator.url(), &path, &headers, b"event".to_vec()).await;
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or_default())
}

async fn with_async_tasks() -> Emulator {
    start_with(quiet_config().with_async_tasks()).await
}

#[tokio::test]
async fn a_repeated_task_id_is_refused_with_409_and_not_run() {
    let emulator = with_async_tasks().await;
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 202);
    let (status, body) = submit_fc2(&emulator, "task-1").await;
    assert_eq!(status, 409);
    assert_eq!(body["ErrorCode"], "StatefulAsyncInvocationAlreadyExists");
    assert_eq!(submit_fc2(&emulator, "task-2").await.0, 202);

    let sent = emulator.invocations();
    assert_eq!(sent.len(), 3, "every request is recorded");
    assert_eq!(emulator.executed().len(), 2);
    assert!(!sent[1].executed && sent[1].failed);
}

#[tokio::test]
async fn fc3_deduplicates_on_its_own_header() {
    let emulator = with_async_tasks().await;
    assert_eq!(submit_fc3(&emulator, "_task").await.0, 202);
    let (status, body) = submit_fc3(&emulator, "_task").await;
    assert_eq!(status, 409);
    assert_eq!(body["Code"], "AsyncTaskAlreadyExists");
    assert_eq!(emulator.executed().len(), 1);
}

#[tokio::test]
async fn without_async_tasks_every_copy_runs() {
    let emulator = start().await;
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 202);
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 202);
    assert_eq!(emulator.executed().len(), 2);
    emulator.set_async_tasks(true);
    assert_eq!(
        submit_fc2(&emulator, "task-1").await.0,
        202,
        "new from now on"
    );
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 409);
}

#[tokio::test]
async fn an_invalid_task_id_is_refused_with_400() {
    let emulator = with_async_tasks().await;
    for task in ["9starts-with-a-digit", "has.dot", &"a".repeat(129)] {
        let (status, body) = submit_fc2(&emulator, task).await;
        assert_eq!(status, 400, "{task}");
        assert_eq!(body["ErrorCode"], "InvalidArgument");
    }
    assert!(emulator.invocations().is_empty());
}

#[tokio::test]
async fn a_lost_answer_ran_the_task_so_its_retry_is_refused() {
    let emulator = with_async_tasks().await;
    emulator.inject(Fault::answer_lost(503).times(1));
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 503);
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 409);
    assert_eq!(emulator.executed().len(), 1);
}

#[tokio::test]
async fn a_status_answered_before_running_leaves_the_task_id_free() {
    let emulator = with_async_tasks().await;
    emulator.inject(Fault::status(503).times(1));
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 503);
    assert_eq!(submit_fc2(&emulator, "task-1").await.0, 202);
    let sent = emulator.invocations();
    assert_eq!(sent.len(), 2);
    assert!(!sent[0].executed);
    assert_eq!(emulator.executed().len(), 1);
}
