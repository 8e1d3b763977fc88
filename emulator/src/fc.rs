//! The InvokeFunction handlers for FC 2.0 and FC 3.0: verify, read the payload within
//! its limit, apply the fault rules, log, record and reply like the `hello_world`
//! function.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{self, query_pairs};
use crate::batch_items;
use crate::body::{self, BodyError};
use crate::error::{ApiError, ErrorShape};
use crate::faults::{self, Decision, FaultKind};
use crate::invocations::{Api, Invocation, InvocationType};
use crate::log;
use crate::request_id::RequestId;
use crate::state::Shared;

/// What a sync invocation of the emulated `hello_world` function returns.
pub const HELLO_WORLD_REPLY: &str = "hello world";

/// The function an invocation is addressed to.
struct Target {
    api: Api,
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
        api: Api::Fc2,
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
        api: Api::Fc3,
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
        Api::Fc3 => auth::verify_fc3,
        _ => auth::verify_fc2,
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
        InvocationType::Async => state.async_limit,
        _ => state.sync_limit,
    };
    let body = read_limited(body, limit).await?;
    if target.api == Api::Fc3 {
        auth::verify_fc3_body(&parts.headers, &body)?;
    }

    let task = task_id(&parts.headers, target.api)?;

    state
        .fc_started
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // Taken before the function runs, so that a concurrent copy is refused.
    let taken = match &task {
        Some(task) if invocation_type == InvocationType::Async => take_task(state, &target, task),
        _ => None,
    };
    let (decision, refused) = match &taken {
        Some(TaskSlot::Refused) => (Decision::default(), true),
        _ => (state.faults.decide(&body), false),
    };
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let executed = !refused && faults::runs_function(decision.failure.as_ref());
    if let Some(TaskSlot::Taken(key)) = taken
        && !executed
    {
        // FC did not take the task (a status answered for it): it may come again.
        release_task(state, &key);
    }
    let mut outcome = Outcome::of(
        faults::as_seen(decision.failure),
        invocation_type,
        target.api,
        &body,
    );
    if refused {
        outcome = Outcome::duplicate(target.api, task.as_deref().unwrap_or_default());
    }
    if !state.quiet {
        if outcome.error.is_some() {
            log::injected_failure(id, outcome.status);
        } else {
            log::invocation(id, &body);
        }
    }
    state.recorder.record(Invocation {
        request_id: id.to_owned(),
        api: target.api,
        api_version: target.api.version(),
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
        failed: outcome.error.is_some()
            || outcome.error_type.is_some()
            || outcome.items_failed
            || outcome.raw.is_some(),
        executed,
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
    /// The JSON the function answers a sync call with instead of `hello world`: a
    /// function error or a partial batch response.
    json_body: Option<serde_json::Value>,
    /// A partial batch response named at least one record.
    items_failed: bool,
    /// The whole answer of a fault that replaces the API's own (a redirect).
    raw: Option<Response>,
}

impl Outcome {
    fn of(
        failure: Option<FaultKind>,
        invocation_type: InvocationType,
        api: Api,
        body: &[u8],
    ) -> Self {
        let sync = invocation_type != InvocationType::Async;
        let success = if sync {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        let mut outcome = Self {
            status: success.as_u16(),
            error: None,
            error_type: None,
            json_body: None,
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
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (default_code, message) = fault_error(status);
                let code = error_code.as_deref().unwrap_or(default_code);
                let shape = match api {
                    Api::Fc3 => ErrorShape::Fc3,
                    _ => ErrorShape::Fc2,
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
                if sync {
                    outcome.json_body = Some(json!({
                        "errorMessage": error_message,
                        "errorType": error_type,
                        "stackTrace": [],
                    }));
                }
            }
            Some(FaultKind::BatchItemFailures { value_contains }) => {
                let failures = batch_items::failed_items(body, &value_contains);
                outcome.items_failed = !failures.is_empty();
                if sync {
                    outcome.json_body = Some(batch_items::response(&failures));
                }
            }
            Some(kind @ FaultKind::Redirect { status, .. }) => {
                outcome.status = status;
                outcome.raw = kind.raw_answer();
            }
        }
        outcome
    }

    /// 409: the task ID was taken before, so the request is not run.
    fn duplicate(api: Api, task: &str) -> Self {
        let (code, shape) = match api {
            Api::Fc3 => (DUPLICATE_TASK_CODES[1], ErrorShape::Fc3),
            _ => (DUPLICATE_TASK_CODES[0], ErrorShape::Fc2),
        };
        Self {
            status: StatusCode::CONFLICT.as_u16(),
            error: Some(
                ApiError::new(
                    StatusCode::CONFLICT,
                    code,
                    format!("the asynchronous task '{task}' already exists"),
                )
                .with_shape(shape),
            ),
            error_type: None,
            json_body: None,
            items_failed: false,
            raw: None,
        }
    }

    fn into_response(self, id: &str) -> Response {
        if let Some(raw) = self.raw {
            return raw;
        }
        if let Some(error) = self.error {
            return error.into_response_with_id(id);
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = match (status, self.json_body) {
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

/// Whether an async request's task ID is new.
enum TaskSlot {
    /// Taken now, under this key.
    Taken((String, String, String)),
    /// Taken before: FC refuses the request.
    Refused,
}

/// With asynchronous tasks on, takes `task` for the function, or says it was
/// taken before; `None` with them off.
fn take_task(state: &Shared, target: &Target, task: &str) -> Option<TaskSlot> {
    if !state.async_tasks.load(std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    let key = (
        target.service.clone().unwrap_or_default(),
        target.function.clone(),
        task.to_owned(),
    );
    let mut taken = lock(&state.task_ids);
    Some(if taken.insert(key.clone()) {
        TaskSlot::Taken(key)
    } else {
        TaskSlot::Refused
    })
}

fn release_task(state: &Shared, key: &(String, String, String)) {
    lock(&state.task_ids).remove(key);
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// FC 2.0's task-ID header.
pub const FC2_TASK_ID: &str = "x-fc-stateful-async-invocation-id";
/// FC 3.0's task-ID header.
pub const FC3_TASK_ID: &str = "x-fc-async-task-id";

/// The task ID of the request, in the header of its API; 400
/// `InvalidArgument` when it breaks FC's rule (a letter or `_`, then
/// letters, digits, `_` and `-`, at most 128 characters).
fn task_id(headers: &HeaderMap, api: Api) -> Result<Option<String>, ApiError> {
    let name = match api {
        Api::Fc3 => FC3_TASK_ID,
        _ => FC2_TASK_ID,
    };
    let Some(id) = auth::header(headers, name) else {
        return Ok(None);
    };
    let mut bytes = id.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && id.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(Some(id.to_owned()))
    } else {
        Err(ApiError::invalid_argument(format!(
            "{name} '{id}' is invalid: it must start with a letter or '_', contain only letters, digits, '_' and '-', and be at most 128 characters"
        )))
    }
}

/// FC 2.0's code for a task ID already taken (seen in public programs
/// that call FC; FC 3.0's is not documented, so the emulator uses the same
/// naming for it).
pub const DUPLICATE_TASK_CODES: [&str; 2] = [
    "StatefulAsyncInvocationAlreadyExists",
    "AsyncTaskAlreadyExists",
];

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
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    body::read_limited(body, limit).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            format!("payload size exceeds maximum allowed size ({limit} bytes)"),
        ),
        BodyError::Unreadable(e) => {
            ApiError::invalid_argument(format!("failed to read the body: {e}"))
        }
    })
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
