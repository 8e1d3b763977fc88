//! Invocation: one request body to the function, and what the answer means.
//!
//! A target sends one body and classifies the answer into a [`Verdict`]:
//! delivered, worth retrying, rejected, or a failure of the target itself.
//! The retry loop (`retry.rs`) decides what to do with it.
//!
//! No client follows redirects, answers are read up to a limit
//! ([`capped`]) and every message built from an answer is scrubbed of
//! credentials ([`scrub`]).

pub mod aws_credentials;
mod capped;
pub mod credentials;
pub mod fc;
pub mod forward;
pub mod http;
pub mod idempotency;
mod ini;
pub mod lambda;
pub mod partial;
pub mod reload;
pub mod scrub;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::config::{SendMode, TargetSettings};

/// Why an invocation failed; carried into dead-letter headers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The service's error code (`ResourceThrottled`, `UnhandledInvocationError` …),
    /// or `http-<status>` / `network` when it gave none.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "HTTP {status} {}: {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The function accepted the event (async) or handled it (sync).
    Delivered(Response),
    /// A transient failure: try again, after at least `after` when the service said so.
    Retry {
        /// What went wrong.
        failure: Failure,
        /// The service's `Retry-After`.
        after: Option<Duration>,
    },
    /// A failure that retrying cannot fix.
    Reject(Failure),
    /// The target itself is unusable for now (authentication refused, the
    /// function not found, being updated): no record is at fault, so none
    /// is dead-lettered. Retried for `delivery.target_failure_timeout_ms`,
    /// then the partition stops.
    TargetFailure(Failure),
}

/// The code of an answer longer than `max_response_bytes`, not read.
pub const RESPONSE_TOO_LARGE: &str = "response-too-large";

/// Error codes that say the service is shedding load: FC's 429
/// `ResourceExhausted` and 503 `ResourceThrottled`, Lambda's
/// `TooManyRequestsException` and the OpenAPI gateways' `Throttling…`.
const THROTTLING_CODES: [&str; 5] = [
    "ResourceExhausted",
    "ResourceThrottled",
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
];

impl Verdict {
    /// A request that was never sent (shutdown came first): worth
    /// retrying, which a cancelled retry loop does not do.
    pub fn unsent(code: &str, message: &str) -> Verdict {
        Verdict::Retry {
            failure: Failure {
                code: code.into(),
                message: message.into(),
                status: None,
            },
            after: None,
        }
    }

    /// Whether the service said it is overloaded (429, a throttling code,
    /// or a `Retry-After`), so that fewer requests should be in flight.
    pub fn is_throttling(&self) -> bool {
        match self {
            Verdict::Retry { failure, after } => {
                after.is_some()
                    || failure.status == Some(429)
                    || THROTTLING_CODES.contains(&failure.code.as_str())
            }
            _ => false,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status (200 or 202; 409 for a refused duplicate).
    pub status: u16,
    /// The function's result (sync mode); empty for async.
    pub body: Vec<u8>,
    /// FC refused the request as a task it already took (409): the records
    /// were delivered by an earlier attempt.
    pub duplicate: bool,
}

/// One request to send: what every target needs to know of it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The body. `Bytes` so that retries resend the same buffer without
    /// copying it.
    pub body: bytes::Bytes,
    /// Synchronous or not. It comes with each request, so `fcsink set
    /// send_mode=…` changes the next batch, never one half-sent.
    pub mode: SendMode,
    /// The request's deterministic ID ([`idempotency`]): the same on every
    /// retry of this request. FC sends it as the task ID when
    /// `delivery.idempotency = "fc_task_id"`; Lambda and HTTP always send it
    /// as `Idempotency-Key`.
    pub id: Option<idempotency::RequestId>,
    /// Record headers sent as request headers (`forward_headers`), after
    /// the target's own and unsigned.
    pub forwarded: forward::Forwarded,
}

impl Outgoing {
    /// A request without an ID or forwarded headers.
    pub fn new(body: bytes::Bytes, mode: SendMode) -> Outgoing {
        Outgoing {
            body,
            mode,
            id: None,
            forwarded: forward::Forwarded::default(),
        }
    }
}

/// The header Lambda and HTTP requests carry the request's ID in, the name
/// of the IETF draft (`draft-ietf-httpapi-idempotency-key-header`) and of
/// Stripe's convention. An HTTP endpoint sees it; a function behind
/// Lambda's `Invoke` does not (Lambda passes it only the payload).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A function fcsink invokes: one module per service, each sending a body
/// and classifying the answer. Retries, dead letters and commits are the
/// pipeline's, the same for every target.
pub trait Target: Send + Sync {
    /// Sends one request, invoking the function synchronously or not as its
    /// mode says, and classifies the answer.
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict>;

    /// Names the target in logs and dead-letter headers.
    fn describe(&self) -> String;
}

/// Builds the configured target; credentials come from the environment.
///
/// # Errors
/// Missing credentials, or an HTTP client that cannot be built.
pub fn from_settings(settings: &TargetSettings) -> anyhow::Result<Box<dyn Target>> {
    Ok(match settings {
        TargetSettings::Fc(fc) => Box::new(fc::FcTarget::new(fc.clone())?),
        TargetSettings::Lambda(lambda) => Box::new(lambda::LambdaTarget::new(lambda.clone())?),
        TargetSettings::Http(http) => Box::new(http::HttpTarget::new(http.clone())?),
    })
}

/// How a service reports errors, for [`classify`].
pub(crate) struct Dialect {
    /// The setting that limits the answer's size, named in errors.
    pub max_response_setting: &'static str,
    /// The header that marks a function error on a 2xx answer.
    pub function_error: Option<&'static str>,
    /// A JSON field of a function error's body naming its type, preferred
    /// to the header's value as the error code.
    pub function_error_type: Option<&'static str>,
    /// A header carrying the error code (`x-amzn-ErrorType: Code:…`).
    pub code_header: Option<&'static str>,
    /// JSON fields that may hold the error code, tried in order.
    pub code_fields: &'static [&'static str],
    /// JSON fields that may hold the error message, tried in order.
    pub message_fields: &'static [&'static str],
}

/// What an HTTP answer means: 2xx is delivered unless the function-error
/// header says the function failed (worth retrying); 408, 429 and 5xx (but
/// 501) and network errors are worth retrying, after `Retry-After` when
/// given; 401, 403, 404 and the codes of [`is_target_failure`] are target
/// failures; a 3xx (never followed) and other 4xx are rejected, and so is
/// an answer longer than `max_response` bytes. Messages are scrubbed.
pub(crate) async fn classify(
    result: Result<reqwest::Response, reqwest::Error>,
    dialect: &Dialect,
    max_response: usize,
) -> Verdict {
    let network = |code: &str, message: String, status: Option<u16>| Verdict::Retry {
        failure: Failure {
            code: code.into(),
            message: scrub::scrub(&message),
            status,
        },
        after: None,
    };
    let response = match result {
        Ok(response) => response,
        Err(err) if err.is_timeout() => {
            return network("timeout", err.without_url().to_string(), None);
        }
        Err(err) => return network("network", err.without_url().to_string(), None),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if (300..=399).contains(&status) {
        return Verdict::Reject(redirect(status, &headers));
    }
    let body = match capped::read_capped(response, max_response).await {
        Ok(body) => body,
        Err(capped::ReadError::TooLarge) => {
            // A synchronous function's answer does not shrink on retry.
            return Verdict::Reject(Failure {
                code: RESPONSE_TOO_LARGE.into(),
                message: format!(
                    "the answer is larger than {max_response} bytes ({}); it was not read",
                    dialect.max_response_setting
                ),
                status: Some(status),
            });
        }
        Err(capped::ReadError::Network(err)) => {
            let message = format!("reading the response: {}", err.without_url());
            return network("network", message, Some(status));
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let function_error = dialect.function_error.and_then(header);
    let message =
        || scrub::scrub(&field(&body, dialect.message_fields).unwrap_or_else(|| lossy(&body)));
    match (status, function_error) {
        (200..=299, None) => Verdict::Delivered(Response {
            status,
            body,
            duplicate: false,
        }),
        (200..=299, Some(error_type)) => Verdict::Retry {
            failure: Failure {
                code: dialect
                    .function_error_type
                    .and_then(|name| field(&body, &[name]))
                    .unwrap_or_else(|| error_type.to_string()),
                message: message(),
                status: Some(status),
            },
            after: None,
        },
        _ => {
            let code = dialect
                .code_header
                .and_then(header)
                // `x-amzn-ErrorType` may carry a URL after the code.
                .map(|v| v.split(':').next().unwrap_or(v).to_string())
                .or_else(|| field(&body, dialect.code_fields))
                .or_else(|| xml_element(&body, "Code"))
                .unwrap_or_else(|| format!("http-{status}"));
            let failure = Failure {
                code: scrub::scrub(&code),
                message: scrub::scrub(
                    &field(&body, dialect.message_fields)
                        .or_else(|| xml_element(&body, "Message"))
                        .unwrap_or_else(|| lossy(&body)),
                ),
                status: Some(status),
            };
            if is_target_failure(status, &failure.code) {
                Verdict::TargetFailure(failure)
            } else if status == 408 || status == 429 || (status >= 500 && status != 501) {
                Verdict::Retry {
                    failure,
                    after: retry_after(&headers),
                }
            } else {
                Verdict::Reject(failure)
            }
        }
    }
}

/// Answers that say the target, not the records, is wrong: authentication
/// refused (401, 403, expired or invalid tokens), the function not found
/// (404), or Lambda's 409 while the function is being updated.
pub(crate) fn is_target_failure(status: u16, code: &str) -> bool {
    const CODES: &[&str] = &[
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSecurityToken",
        "InvalidSecurityToken.Expired",
        "InvalidSecurityToken.Malformed",
        "UnrecognizedClientException",
        "ResourceConflictException",
        "ResourceNotReadyException",
    ];
    matches!(status, 401 | 403 | 404) || CODES.contains(&code)
}

/// A 3xx answer, never followed: the records would go elsewhere, or as a
/// `GET` without them, and the credentials with them.
fn redirect(status: u16, headers: &reqwest::header::HeaderMap) -> Failure {
    let location = headers.get(reqwest::header::LOCATION).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(512)
            .collect::<String>()
    });
    let message = match location {
        Some(location) => format!(
            "the endpoint answered {status} redirecting to {}; fcsink does not follow redirects (set the final URL as the endpoint)",
            scrub::scrub(&location)
        ),
        None => format!(
            "the endpoint answered {status} (a redirect, without Location); fcsink does not follow redirects"
        ),
    };
    Failure {
        code: "redirect".into(),
        message,
        status: Some(status),
    }
}

/// The first of `names` that is a string field of the JSON body.
fn field(body: &[u8], names: &[&str]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    names
        .iter()
        .find_map(|name| json.get(*name).and_then(|v| v.as_str()).map(str::to_string))
}

/// `<name>text</name>` in an XML error body (AWS query-protocol errors).
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].to_string())
}

/// The start of a body as text, for messages.
fn lossy(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(512).collect()
}

/// A header map from name/value pairs; pairs that are not valid HTTP are skipped.
pub(crate) fn header_map(headers: &[(String, String)]) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.insert(name, value);
        }
    }
    map
}

/// Warns at start when `url` is plain `http://`: signatures protect the
/// request from change, not from being read.
pub(crate) fn warn_if_clear(what: &str, url: &reqwest::Url) {
    if url.scheme() == "http" {
        tracing::warn!(target = what, endpoint = %url.origin().ascii_serialization(), "The endpoint is plain http://: records, answers, signatures and security tokens go over the network in clear; use https:// outside a trusted network");
    }
}

/// An HTTP client for one target (and its STS). It never follows a
/// redirect: a 3xx is an answer ([`classify`]), so no body, signature or
/// token goes to a host fcsink was not configured with.
pub(crate) fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        // Services close idle connections after 60-90 s; close ours first.
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("fcsink/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Reads `Retry-After` (seconds) or `x-acs-retry-after` (milliseconds).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(secs) = text("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if let Some(date) = text("retry-after").and_then(|v| httpdate::parse_http_date(v).ok()) {
        return Some(
            date.duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        );
    }
    text("x-acs-retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(status: Option<u16>, code: &str, after: Option<Duration>) -> Verdict {
        Verdict::Retry {
            failure: Failure {
                code: code.into(),
                message: String::new(),
                status,
            },
            after,
        }
    }

    #[test]
    fn throttling_is_429_a_throttling_code_or_a_retry_after() {
        assert!(retry(Some(429), "http-429", None).is_throttling());
        assert!(retry(Some(503), "ResourceThrottled", None).is_throttling());
        assert!(retry(Some(429), "TooManyRequestsException", None).is_throttling());
        assert!(retry(Some(503), "http-503", Some(Duration::from_secs(1))).is_throttling());
        assert!(!retry(Some(500), "InternalServerError", None).is_throttling());
        assert!(!retry(Some(200), "UnhandledInvocationError", None).is_throttling());
        assert!(!retry(None, "timeout", None).is_throttling());
        let failure = Failure {
            code: "ResourceExhausted".into(),
            message: String::new(),
            status: Some(429),
        };
        assert!(!Verdict::Reject(failure).is_throttling(), "only a retry");
    }
}
