//! The InvokeFunction handlers for FC 2.0 and FC 3.0: verify, read the payload within
//! its limit, apply the fault rules, log, record and reply like the `hello_world`
//! function.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::body::{Body, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{self, query_pairs};
use crate::error::{ApiError, ErrorShape};
use crate::faults::FaultKind;
use crate::invocations::{ApiVersion, Invocation, InvocationType};
use crate::log;
use crate::request_id::RequestId;
use crate::state::Shared;

/// What a sync invocation of the emulated `hello_world` function returns.
pub const HELLO_WORLD_REPLY: &str = "hello world";

/// After a payload passes its limit, read (and drop) at most this much more so the
/// client can finish sending and see the 400 instead of a reset connection.
const DRAIN_AFTER_LIMIT: usize = 64 * 1024 * 1024;

/// The function an invocation is addressed to.
struct Target {
    api: ApiVersion,
    service: Option<String>,
    function: String,
    qualifier: Option<String>,
}

/// `POST /2016-08-15/services/{service}[.{qualifier}]/functions/{function}/invocations`.
pub async fn invoke_fc2(
    State(state): State<Arc<Shared>>,
    Extension(RequestId(id)): Extension<RequestId>,
    Path((service, function)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (service, qualifier) = match service.split_once('.') {
        Some((service, qualifier)) => (service.to_owned(), Some(qualifier.to_owned())),
        None => (service, None),
    };
    let target = Target {
        api: ApiVersion::Fc2,
        service: Some(service),
        function,
        qualifier,
    };
    invoke(&state, &id, target, request)
        .await
        .unwrap_or_else(|e| e.into_response_with_id(&id))
}

/// `POST /2023-03-30/functions/{function}/invocations[?qualifier=…]`.
pub async fn invoke_fc3(
    State(state): State<Arc<Shared>>,
    Extension(RequestId(id)): Extension<RequestId>,
    Path(function): Path<String>,
    request: Request,
) -> Response {
    let qualifier = query_pairs(request.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "qualifier")
        .map(|(_, v)| v);
    let target = Target {
        api: ApiVersion::Fc3,
        service: None,
        function,
        qualifier,
    };
    invoke(&state, &id, target, request)
        .await
        .unwrap_or_else(|e| e.with_shape(ErrorShape::Fc3).into_response_with_id(&id))
}

async fn invoke(
    state: &Shared,
    id: &str,
    target: Target,
    request: Request,
) -> Result<Response, ApiError> {
    let received_at = SystemTime::now();
    let (parts, body) = request.into_parts();
    let verify = match target.api {
        ApiVersion::Fc2 => auth::verify_fc2,
        ApiVersion::Fc3 => auth::verify_fc3,
    };
    let caller = verify(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &state.credentials,
        received_at,
    )?;
    let invocation_type = invocation_type(&parts.headers)?;
    let limit = match invocation_type {
        InvocationType::Sync => state.sync_limit,
        InvocationType::Async => state.async_limit,
    };
    let body = read_limited(body, limit).await?;
    if target.api == ApiVersion::Fc3 {
        auth::verify_fc3_body(&parts.headers, &body)?;
    }

    let decision = state.faults.decide(&body);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let outcome = Outcome::of(decision.failure, invocation_type, target.api);
    if !state.quiet {
        if outcome.error.is_some() {
            log::injected_failure(id, outcome.status);
        } else {
            log::invocation(id, &body);
        }
    }
    state.recorder.record(Invocation {
        request_id: id.to_owned(),
        api_version: target.api,
        service: target.service,
        function: target.function,
        qualifier: target.qualifier,
        invocation_type,
        access_key_id: caller.access_key_id,
        headers: auth::header_pairs(&parts.headers),
        body,
        received_at,
        status: outcome.status,
        error_type: outcome.error_type.map(str::to_owned),
        failed: outcome.error.is_some() || outcome.error_type.is_some(),
    });
    Ok(outcome.into_response(id))
}

/// The reply decided for an accepted invocation.
struct Outcome {
    status: u16,
    /// An API error to answer with (an injected status fault).
    error: Option<ApiError>,
    /// `X-Fc-Error-Type` of an injected function error.
    error_type: Option<&'static str>,
    /// The body of a sync function error.
    function_error_body: Option<serde_json::Value>,
}

impl Outcome {
    fn of(failure: Option<FaultKind>, invocation_type: InvocationType, api: ApiVersion) -> Self {
        let success = match invocation_type {
            InvocationType::Sync => StatusCode::OK,
            InvocationType::Async => StatusCode::ACCEPTED,
        };
        let mut outcome = Self {
            status: success.as_u16(),
            error: None,
            error_type: None,
            function_error_body: None,
        };
        match failure {
            None | Some(FaultKind::Latency { .. }) => {}
            Some(FaultKind::Status {
                status,
                retry_after_secs,
                error_code,
            }) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (default_code, message) = fault_error(status);
                let code = error_code.as_deref().unwrap_or(default_code);
                let shape = match api {
                    ApiVersion::Fc2 => ErrorShape::Fc2,
                    ApiVersion::Fc3 => ErrorShape::Fc3,
                };
                outcome.status = status.as_u16();
                outcome.error = Some(
                    ApiError::new(status, code, message)
                        .with_shape(shape)
                        .with_retry_after(retry_after_secs),
                );
            }
            Some(FaultKind::FunctionError {
                error_message,
                error_type,
                handled,
            }) => {
                let kind = if handled {
                    "HandledInvocationError"
                } else {
                    "UnhandledInvocationError"
                };
                outcome.error_type = Some(kind);
                if invocation_type == InvocationType::Sync {
                    outcome.function_error_body = Some(json!({
                        "errorMessage": error_message,
                        "errorType": error_type,
                        "stackTrace": [],
                    }));
                }
            }
        }
        outcome
    }

    fn into_response(self, id: &str) -> Response {
        if let Some(error) = self.error {
            return error.into_response_with_id(id);
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = match (status, self.function_error_body) {
            (StatusCode::ACCEPTED, _) => status.into_response(),
            (_, Some(body)) => (status, axum::Json(body)).into_response(),
            (_, None) => (
                status,
                [(header::CONTENT_TYPE, "application/octet-stream")],
                HELLO_WORLD_REPLY,
            )
                .into_response(),
        };
        if let Some(kind) = self.error_type {
            response
                .headers_mut()
                .insert("x-fc-error-type", HeaderValue::from_static(kind));
        }
        response
    }
}

/// FC's error code and message for a status an injected fault answers with.
fn fault_error(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        429 => (
            "ResourceExhausted",
            "concurrency limit exceeded (injected fault)",
        ),
        500 => (
            "InternalServerError",
            "an internal error has occurred. Please retry.",
        ),
        503 => (
            "ResourceThrottled",
            "resource quota exceeded (injected fault)",
        ),
        _ => ("InjectedFault", "injected fault"),
    }
}

/// `x-fc-invocation-type`: absent or `Sync` is sync, `Async` is async (any case).
fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match auth::header(headers, "x-fc-invocation-type") {
        None => Ok(InvocationType::Sync),
        Some(v) if v.eq_ignore_ascii_case("sync") => Ok(InvocationType::Sync),
        Some(v) if v.eq_ignore_ascii_case("async") => Ok(InvocationType::Async),
        Some(v) => Err(ApiError::invalid_argument(format!(
            "InvocationType is set to an invalid value (allowed: Sync | Async, actual: '{v}')"
        ))),
    }
}

/// Reads the whole body, or answers 400 `EntityTooLarge` once it passes `limit` bytes.
async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut data = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|e| ApiError::invalid_argument(format!("failed to read the body: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(chunk.len());
        if total <= limit {
            data.extend_from_slice(&chunk);
        } else if total > limit.saturating_add(DRAIN_AFTER_LIMIT) {
            break;
        } else {
            data = Vec::new();
        }
    }
    if total > limit {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            format!("payload size exceeds maximum allowed size ({limit} bytes)"),
        ));
    }
    Ok(data)
}

/// Any other path or method: 400 `PathNotSupported`, as FC answers.
pub async fn not_supported(
    Extension(RequestId(id)): Extension<RequestId>,
    request: Request,
) -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "PathNotSupported",
        format!(
            "'{}' against '{}' is not supported",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response_with_id(&id)
}
