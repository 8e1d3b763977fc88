//! The emulator's own HTTP API under `/_emulator`, for scripts and process-level tests.
//!
//! | method and path | effect |
//! |---|---|
//! | `GET /_emulator/invocations` | the record as a JSON array (bodies as UTF-8 text) |
//! | `DELETE /_emulator/invocations` | clears the record |
//! | `GET /_emulator/faults` | the active fault rules |
//! | `POST /_emulator/faults` | adds one rule or an array of rules (see `faults`) |
//! | `DELETE /_emulator/faults` | removes every rule |
//! | `GET /_emulator/stats` | `{"invocations","delivered","failed","executed","assume_role_calls"}` |
//! | `GET /_emulator/async_tasks` | `{"enabled":bool}`: whether repeated task IDs are refused |
//! | `PUT /_emulator/async_tasks` | `{"enabled":bool}` turns asynchronous tasks on or off |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::faults::Fault;
use crate::invocations::Invocation;
use crate::state::Shared;

/// `GET /_emulator/invocations`.
pub async fn invocations(State(state): State<Arc<Shared>>) -> Json<Vec<Invocation>> {
    Json(state.recorder.all())
}

/// `DELETE /_emulator/invocations`.
pub async fn clear_invocations(State(state): State<Arc<Shared>>) -> StatusCode {
    state.recorder.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_emulator/faults`.
pub async fn faults(State(state): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(state.faults.list())
}

/// One rule or several.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum FaultsBody {
    /// A single rule.
    One(Fault),
    /// Several rules, added in order.
    Many(Vec<Fault>),
}

/// `POST /_emulator/faults`: 204 when added, 400 when a rule is invalid (none added).
pub async fn add_faults(
    State(state): State<Arc<Shared>>,
    Json(body): Json<FaultsBody>,
) -> Response {
    let faults = match body {
        FaultsBody::One(fault) => vec![fault],
        FaultsBody::Many(faults) => faults,
    };
    if let Some(problem) = faults.iter().find_map(|f| f.validate().err()) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": problem}))).into_response();
    }
    for fault in faults {
        state.faults.add(fault);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /_emulator/faults`.
pub async fn clear_faults(State(state): State<Arc<Shared>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_emulator/stats`.
pub async fn stats(State(state): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let all = state.recorder.all();
    let failed = all.iter().filter(|i| i.failed).count();
    Json(json!({
        "invocations": all.len(),
        "delivered": all.len() - failed,
        "failed": failed,
        "executed": all.iter().filter(|i| i.executed).count(),
        "assume_role_calls": state.assume_role_calls.load(Ordering::SeqCst),
    }))
}

/// Whether asynchronous tasks are on.
#[derive(Deserialize)]
pub struct AsyncTasks {
    /// On: a repeated task ID answers 409 and is not run.
    pub enabled: bool,
}

/// `GET /_emulator/async_tasks`.
pub async fn async_tasks(State(state): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({"enabled": state.async_tasks.load(Ordering::SeqCst)}))
}

/// `PUT /_emulator/async_tasks`: 204.
pub async fn set_async_tasks(
    State(state): State<Arc<Shared>>,
    Json(body): Json<AsyncTasks>,
) -> StatusCode {
    state.async_tasks.store(body.enabled, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}
