//! The in-memory record of every accepted invocation, delivered or failed.
//!
//! Requests refused before they reach the function (bad signature, unknown key, payload
//! too large) are not recorded; requests an injected fault fails are, with `failed` set,
//! and so are requests refused as duplicate tasks, with `executed` false, so tests can
//! count both requests sent and executions.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::key_order::KeyOrder;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Which API an invocation came through; in JSON `fc2`, `fc3`, `lambda` or `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Function Compute 2.0.
    Fc2,
    /// Function Compute 3.0.
    Fc3,
    /// AWS Lambda `Invoke`.
    Lambda,
    /// The plain HTTP endpoint under `/http/`.
    Http,
}

impl Api {
    /// The API version path segment the invocation was addressed with.
    pub fn version(self) -> ApiVersion {
        match self {
            Api::Fc2 => ApiVersion::Fc2,
            Api::Fc3 => ApiVersion::Fc3,
            Api::Lambda => ApiVersion::Lambda,
            Api::Http => ApiVersion::Http,
        }
    }
}

/// The version of the API an invocation came through, as it appears in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiVersion {
    /// FC 2.0, `/2016-08-15/services/…`, signed with `FC id:sig`.
    #[serde(rename = "2016-08-15")]
    Fc2,
    /// FC 3.0, `/2023-03-30/functions/…`, signed with `ACS3-HMAC-SHA256`.
    #[serde(rename = "2023-03-30")]
    Fc3,
    /// AWS Lambda, `/2015-03-31/functions/…`, signed with `AWS4-HMAC-SHA256`.
    #[serde(rename = "2015-03-31")]
    Lambda,
    /// The plain HTTP endpoint, which has no version.
    #[serde(rename = "http")]
    Http,
}

/// How the caller asked to invoke: FC's `x-fc-invocation-type` or Lambda's
/// `X-Amz-Invocation-Type` (`RequestResponse` is `Sync`, `Event` is `Async`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InvocationType {
    /// The default: the caller waits for the function's reply (200).
    Sync,
    /// The event is queued (202, empty body).
    Async,
    /// Lambda `DryRun`: checked and answered 204 without running the function.
    DryRun,
}

/// One accepted invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The id sent back in `X-Fc-Request-Id` (and, for Lambda, `x-amzn-RequestId`) and
    /// written to the log.
    pub request_id: String,
    /// The API it came through.
    pub api: Api,
    /// The version of that API.
    pub api_version: ApiVersion,
    /// The FC 2.0 service name; `None` for the other APIs, which have no services.
    pub service: Option<String>,
    /// The function as addressed: FC's function name; for Lambda the `FunctionName` as
    /// given (a name, `name:alias`, or a full or partial ARN); for HTTP the path after
    /// `/http/`.
    pub function: String,
    /// The version or alias: FC 2.0 `service.qualifier`, FC 3.0 `?qualifier=`, Lambda
    /// `?Qualifier=` or the one in the function name.
    pub qualifier: Option<String>,
    /// Sync, async or (Lambda) dry run.
    pub invocation_type: InvocationType,
    /// The access key id the request was signed with (`STS.…` for temporary keys);
    /// empty for the unsigned HTTP endpoint.
    pub access_key_id: String,
    /// The request headers as received, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The payload; in JSON it is written as UTF-8 text.
    #[serde(serialize_with = "as_text")]
    pub body: Vec<u8>,
    /// When the request arrived; in JSON an RFC 3339 string.
    #[serde(serialize_with = "as_rfc3339")]
    pub received_at: SystemTime,
    /// The HTTP status the emulator answered with.
    pub status: u16,
    /// The function error reported for an injected fault: FC's `X-Fc-Error-Type`,
    /// Lambda's `X-Amz-Function-Error` (`Unhandled` or `Handled`).
    pub error_type: Option<String>,
    /// True when an injected fault failed the invocation (an error status, a function
    /// error, or a partial batch response naming at least one record), or it was refused
    /// as a duplicate task; false when it was delivered to the function and succeeded.
    pub failed: bool,
    /// True when the function ran (or, async, the task was queued to run): false when a
    /// status fault, a throttle or a redirect answered instead, or FC refused it as a
    /// task it already took. Sent-versus-executed is what deduplication changes.
    pub executed: bool,
}

impl Invocation {
    /// The payload as text, with invalid UTF-8 replaced.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn as_text<S: Serializer>(body: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(body))
}

fn as_rfc3339<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = OffsetDateTime::from(*at)
        .format(&Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

/// The list of recorded invocations, shared by the handlers and the control API.
#[derive(Debug, Default)]
pub struct Recorder {
    invocations: Mutex<Vec<Invocation>>,
    /// Per-key order over the delivered calls.
    key_order: KeyOrder,
}

impl Recorder {
    /// Appends one invocation.
    pub fn record(&self, invocation: Invocation) {
        if !invocation.failed {
            self.key_order.observe(&invocation.body);
        }
        self.lock().push(invocation);
    }

    /// Records of one key that reached the function out of offset order.
    pub fn key_order_violations(&self) -> Vec<String> {
        self.key_order.violations()
    }

    /// A copy of everything recorded so far, oldest first.
    pub fn all(&self) -> Vec<Invocation> {
        self.lock().clone()
    }

    /// A copy of what was recorded after the first `start` invocations, oldest first;
    /// lets a poller read only what is new.
    pub fn since(&self, start: usize) -> Vec<Invocation> {
        let all = self.lock();
        all.get(start..)
            .map_or_else(Vec::new, <[Invocation]>::to_vec)
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.lock().clear();
        self.key_order.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Invocation>> {
        // A panic while holding the lock cannot leave the Vec half-updated.
        self.invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
