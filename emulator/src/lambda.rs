//! Lambda `Invoke`: `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=…]`.
//!
//! Check the SigV4 headers → parse the function name and qualifier → read the payload
//! within the limit of its invocation type → verify the signature over it → require
//! JSON → apply the fault rules → log, record and reply. The function exists whatever
//! its name (as in moto) and echoes its event.
//!
//! | `X-Amz-Invocation-Type` | limit | reply |
//! |---|---|---|
//! | `RequestResponse` (default) | 6 MiB | 200, the result, `X-Amz-Executed-Version` |
//! | `Event` | 1 MiB | 202, empty |
//! | `DryRun` | 6 MiB | 204, empty; faults do not apply |

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{self, query_pairs};
use crate::aws_auth;
use crate::batch_items;
use crate::body::{self, BodyError};
use crate::error::{ApiError, ErrorShape};
use crate::faults::{Decision, FaultKind};
use crate::invocations::{Api, Invocation, InvocationType};
use crate::lambda_name;
use crate::log;
use crate::request_id::RequestId;
use crate::state::Shared;

/// The response header Lambda puts its request id in.
pub const AWS_REQUEST_ID_HEADER: &str = "x-amzn-requestid";
/// The response header naming the version that ran.
pub const EXECUTED_VERSION_HEADER: &str = "x-amz-executed-version";
/// The response header marking a function error: `Unhandled` or `Handled`.
pub const FUNCTION_ERROR_HEADER: &str = "x-amz-function-error";

/// `POST /2015-03-31/functions/{FunctionName}/invocations`.
pub async fn invoke(
    State(state): State<Arc<Shared>>,
    Extension(RequestId(id)): Extension<RequestId>,
    Path(function): Path<String>,
    request: Request,
) -> Response {
    let mut response = handle(&state, &id, function, request)
        .await
        .unwrap_or_else(|e| e.into_response_with_id(&id));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(AWS_REQUEST_ID_HEADER, value);
    }
    response
}

async fn handle(
    state: &Shared,
    id: &str,
    function: String,
    request: Request,
) -> Result<Response, ApiError> {
    let received_at = SystemTime::now();
    let (parts, body) = request.into_parts();
    let caller = aws_auth::check_aws_request(&parts.headers, &state.credentials, received_at)?;
    let target =
        lambda_name::parse(&function).map_err(|m| lambda_error(400, "ValidationException", m))?;
    let query = query_pairs(parts.uri.query().unwrap_or(""));
    let given = query
        .into_iter()
        .find(|(k, _)| k == "Qualifier")
        .map(|(_, v)| v);
    let qualifier = lambda_name::qualifier(&target, given)
        .map_err(|m| lambda_error(400, "InvalidParameterValueException", m))?;
    let invocation_type = invocation_type(&parts.headers)?;
    let limit = match invocation_type {
        InvocationType::Async => state.lambda_async_limit,
        _ => state.lambda_sync_limit,
    };
    let body = body::read_limited(body, limit).await.map_err(|e| match e {
        BodyError::TooLarge => lambda_error(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the Invoke operation"),
        ),
        BodyError::Unreadable(e) => lambda_error(400, "InvalidRequestContentException", e),
    })?;
    aws_auth::verify_aws_signature(&caller, &parts.method, &parts.uri, &parts.headers, &body)?;
    if !body.is_empty()
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
    {
        return Err(lambda_error(
            400,
            "InvalidRequestContentException",
            format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ),
        ));
    }

    let decision = match invocation_type {
        InvocationType::DryRun => Decision::default(),
        _ => state.faults.decide(&body),
    };
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let version = qualifier.clone().unwrap_or_else(|| "$LATEST".to_owned());
    let executed = invocation_type != InvocationType::DryRun
        && crate::faults::runs_function(decision.failure.as_ref());
    let failure = crate::faults::as_seen(decision.failure);
    let outcome = Outcome::of(failure, invocation_type, &body, version);
    if !state.quiet {
        if outcome.error.is_some() {
            log::injected_failure(id, outcome.status);
        } else {
            log::invocation(id, &body);
        }
    }
    state.recorder.record(Invocation {
        request_id: id.to_owned(),
        api: Api::Lambda,
        api_version: Api::Lambda.version(),
        service: None,
        function,
        qualifier,
        invocation_type,
        access_key_id: caller.access_key_id,
        headers: auth::header_pairs(&parts.headers),
        body: body.clone(),
        received_at,
        status: outcome.status,
        error_type: outcome.function_error.map(str::to_owned),
        failed: outcome.failed(),
        executed,
    });
    Ok(outcome.into_response(id, body))
}

/// The reply decided for an accepted invocation.
struct Outcome {
    status: u16,
    invocation_type: InvocationType,
    /// The `X-Amz-Executed-Version` of a sync call.
    version: String,
    /// An API error to answer with (an injected status fault).
    error: Option<ApiError>,
    /// `X-Amz-Function-Error` of an injected function error.
    function_error: Option<&'static str>,
    /// The function's result, when not the echo of the event.
    result: Option<serde_json::Value>,
    /// A partial batch response named at least one record.
    items_failed: bool,
    /// The whole answer of a fault that replaces the API's own (a redirect).
    raw: Option<Response>,
}

impl Outcome {
    fn of(
        failure: Option<FaultKind>,
        invocation_type: InvocationType,
        body: &[u8],
        version: String,
    ) -> Self {
        let status = match invocation_type {
            InvocationType::Sync => StatusCode::OK,
            InvocationType::Async => StatusCode::ACCEPTED,
            InvocationType::DryRun => StatusCode::NO_CONTENT,
        };
        let mut outcome = Self {
            status: status.as_u16(),
            invocation_type,
            version,
            error: None,
            function_error: None,
            result: None,
            items_failed: false,
            raw: None,
        };
        match failure {
            // A lost answer comes here as its status (`faults::as_seen`).
            None
            | Some(
                FaultKind::Latency { .. }
                | FaultKind::RateLimit { .. }
                | FaultKind::AnswerLost { .. },
            ) => {}
            Some(FaultKind::Status {
                status,
                retry_after_secs,
                error_code,
            }) => {
                let (default_code, message) = fault_error(status);
                let code = error_code.as_deref().unwrap_or(default_code);
                outcome.status = status;
                outcome.error =
                    Some(lambda_error(status, code, message).with_retry_after(retry_after_secs));
            }
            Some(FaultKind::FunctionError {
                error_message,
                error_type,
                handled,
            }) => {
                outcome.function_error = Some(if handled { "Handled" } else { "Unhandled" });
                outcome.result = Some(json!({
                    "errorMessage": error_message,
                    "errorType": error_type,
                }));
            }
            Some(FaultKind::BatchItemFailures { value_contains }) => {
                let failures = batch_items::failed_items(body, &value_contains);
                outcome.items_failed = !failures.is_empty();
                outcome.result = Some(batch_items::response(&failures));
            }
            Some(kind @ FaultKind::Redirect { status, .. }) => {
                outcome.status = status;
                outcome.raw = kind.raw_answer();
            }
        }
        outcome
    }

    fn failed(&self) -> bool {
        self.error.is_some()
            || self.function_error.is_some()
            || self.items_failed
            || self.raw.is_some()
    }

    fn into_response(self, id: &str, event: Vec<u8>) -> Response {
        if let Some(raw) = self.raw {
            return raw;
        }
        if let Some(error) = self.error {
            return error.into_response_with_id(id);
        }
        match self.invocation_type {
            InvocationType::Async => return StatusCode::ACCEPTED.into_response(),
            InvocationType::DryRun => return StatusCode::NO_CONTENT.into_response(),
            InvocationType::Sync => {}
        }
        let result = self
            .result
            .map_or(event, |value| value.to_string().into_bytes());
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            result,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(version) = HeaderValue::from_str(&self.version) {
            headers.insert(EXECUTED_VERSION_HEADER, version);
        }
        if let Some(kind) = self.function_error {
            headers.insert(FUNCTION_ERROR_HEADER, HeaderValue::from_static(kind));
        }
        response
    }
}

/// Lambda's error type and message for a status an injected fault answers with.
fn fault_error(status: u16) -> (&'static str, &'static str) {
    match status {
        429 => ("TooManyRequestsException", "Rate Exceeded."),
        500..=599 => (
            "ServiceException",
            "An internal error occurred (injected fault).",
        ),
        400 => ("InvalidParameterValueException", "injected fault"),
        403 => ("AccessDeniedException", "injected fault"),
        404 => (
            "ResourceNotFoundException",
            "Function not found (injected fault)",
        ),
        413 => ("RequestTooLargeException", "injected fault"),
        415 => ("UnsupportedMediaTypeException", "injected fault"),
        _ => ("InjectedFault", "injected fault"),
    }
}

/// `X-Amz-Invocation-Type`: absent is `RequestResponse`.
fn invocation_type(headers: &HeaderMap) -> Result<InvocationType, ApiError> {
    match auth::header(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => Ok(InvocationType::Sync),
        Some("Event") => Ok(InvocationType::Async),
        Some("DryRun") => Ok(InvocationType::DryRun),
        Some(other) => Err(lambda_error(
            400,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to \
                 satisfy constraint: Member must satisfy enum value set: \
                 [Event, RequestResponse, DryRun]"
            ),
        )),
    }
}

/// A Lambda-shaped error.
fn lambda_error(status: u16, code: &str, message: impl Into<String>) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, code, message).with_shape(ErrorShape::Lambda)
}
