//! The plain HTTP target: `POST /http/{anything}` takes any payload, unsigned, records
//! it with its headers (so tests can check configured headers arrive) and echoes it
//! with 200 and the request's `Content-Type`.
//!
//! Faults answer in plain HTTP: a `status` rule with that status, a short text body and
//! `Retry-After` when set; a `function_error` rule with 500 and
//! `{"errorMessage","errorType"}`; a `batch_item_failures` rule with 200 and the partial
//! batch response. Payloads over the FC sync limit get 413.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth;
use crate::batch_items;
use crate::body::{self, BodyError};
use crate::faults::FaultKind;
use crate::invocations::{Api, Invocation, InvocationType};
use crate::log;
use crate::request_id::RequestId;
use crate::state::Shared;

/// `POST /http/{*path}`.
pub async fn invoke(
    State(state): State<Arc<Shared>>,
    Extension(RequestId(id)): Extension<RequestId>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let received_at = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = match body::read_limited(body, state.sync_limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n").into_response();
        }
        Err(BodyError::Unreadable(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            )
                .into_response();
        }
    };

    let decision = state.faults.decide(&body);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let executed = crate::faults::runs_function(decision.failure.as_ref());
    let (response, failed) = reply(
        crate::faults::as_seen(decision.failure),
        &body,
        content_type,
    );
    let status = response.status().as_u16();
    if !state.quiet {
        if status >= 400 {
            log::injected_failure(&id, status);
        } else {
            log::invocation(&id, &body);
        }
    }
    state.recorder.record(Invocation {
        request_id: id,
        api: Api::Http,
        api_version: Api::Http.version(),
        service: None,
        function: path,
        qualifier: None,
        invocation_type: InvocationType::Sync,
        access_key_id: String::new(),
        headers: auth::header_pairs(&parts.headers),
        body,
        received_at,
        status,
        error_type: None,
        failed,
        executed,
    });
    response
}

/// The response for the fault that applies (if any), and whether it failed the call.
fn reply(failure: Option<FaultKind>, body: &[u8], content_type: HeaderValue) -> (Response, bool) {
    match failure {
        // A lost answer comes here as its status (`faults::as_seen`).
        None
        | Some(
            FaultKind::Latency { .. } | FaultKind::RateLimit { .. } | FaultKind::AnswerLost { .. },
        ) => {
            let echo = ([(header::CONTENT_TYPE, content_type)], body.to_vec());
            (echo.into_response(), false)
        }
        Some(FaultKind::Status {
            status,
            retry_after_secs,
            ..
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, format!("injected fault: {status}\n")).into_response();
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            (response, true)
        }
        Some(FaultKind::FunctionError {
            error_message,
            error_type,
            ..
        }) => {
            let body = json!({"errorMessage": error_message, "errorType": error_type});
            (
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response(),
                true,
            )
        }
        Some(kind @ FaultKind::Redirect { .. }) => (kind.raw_answer().unwrap_or_default(), true),
        Some(FaultKind::BatchItemFailures { value_contains }) => {
            let failures = batch_items::failed_items(body, &value_contains);
            let failed = !failures.is_empty();
            (
                axum::Json(batch_items::response(&failures)).into_response(),
                failed,
            )
        }
    }
}
