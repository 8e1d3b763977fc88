//! Invocation: one request body to the function, and what the answer means.
//!
//! A target sends one body and classifies the answer into a [`Verdict`]:
//! delivered, worth retrying, or rejected. The retry loop (`retry.rs`)
//! decides what to do with it.

pub mod credentials;
pub mod fc;

use std::time::Duration;

use crate::config::TargetSettings;

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
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status (200 or 202).
    pub status: u16,
    /// The function's result (sync mode); empty for async.
    pub body: Vec<u8>,
}

/// The function fcsink invokes.
pub enum Target {
    /// Alibaba Cloud Function Compute.
    Fc(fc::FcTarget),
}

impl Target {
    /// Builds the target from validated settings; credentials come from the environment.
    ///
    /// # Errors
    /// Missing credentials, or an HTTP client that cannot be built.
    pub fn from_settings(settings: &TargetSettings) -> anyhow::Result<Self> {
        match settings {
            TargetSettings::Fc(fc) => Ok(Target::Fc(fc::FcTarget::new(fc.clone())?)),
        }
    }

    /// Sends one body and classifies the answer. `Bytes` so that retries
    /// resend the same buffer without copying it.
    pub async fn send(&self, body: bytes::Bytes) -> Verdict {
        match self {
            Target::Fc(fc) => fc.send(body).await,
        }
    }

    /// Names the target in logs and dead-letter headers.
    pub fn describe(&self) -> String {
        match self {
            Target::Fc(fc) => fc.describe(),
        }
    }
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
