//! The in-memory record of every accepted invocation, delivered or failed.
//!
//! Requests refused before they reach the function (bad signature, unknown key, payload
//! too large) are not recorded; requests an injected fault fails are, with `failed` set,
//! so tests can count both attempts and deliveries.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Which FC API an invocation came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiVersion {
    /// FC 2.0, `/2016-08-15/services/…`, signed with `FC id:sig`.
    #[serde(rename = "2016-08-15")]
    Fc2,
    /// FC 3.0, `/2023-03-30/functions/…`, signed with `ACS3-HMAC-SHA256`.
    #[serde(rename = "2023-03-30")]
    Fc3,
}

/// The `x-fc-invocation-type` of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InvocationType {
    /// The default: the caller waits for the function's reply (200).
    Sync,
    /// The event is queued (202, empty body).
    Async,
}

/// One accepted invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The id sent back in `X-Fc-Request-Id` and written to the log.
    pub request_id: String,
    /// The API it came through.
    pub api_version: ApiVersion,
    /// The FC 2.0 service name; `None` for FC 3.0, which has no services.
    pub service: Option<String>,
    /// The function name.
    pub function: String,
    /// The version or alias: FC 2.0 `service.qualifier`, FC 3.0 `?qualifier=`.
    pub qualifier: Option<String>,
    /// Sync or async.
    pub invocation_type: InvocationType,
    /// The access key id the request was signed with (`STS.…` for temporary keys).
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
    /// `X-Fc-Error-Type` when a (injected) function error was reported.
    pub error_type: Option<String>,
    /// True when an injected fault failed the invocation (an error status or a function
    /// error); false when it was delivered to the function and succeeded.
    pub failed: bool,
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
}

impl Recorder {
    /// Appends one invocation.
    pub fn record(&self, invocation: Invocation) {
        self.lock().push(invocation);
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
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Invocation>> {
        // A panic while holding the lock cannot leave the Vec half-updated.
        self.invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
