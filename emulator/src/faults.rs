//! Fault injection: rules that fail, break or slow down upcoming invocations.
//!
//! The rules apply to every endpoint alike: FC 2.0, FC 3.0, Lambda and plain HTTP; each
//! endpoint answers a rule in its own API's words. Each accepted invocation walks the
//! rules in the order they were added. Every matching [`FaultKind::Latency`] rule adds
//! its delay, and the first matching reply-changing rule ([`FaultKind::Status`],
//! [`FaultKind::FunctionError`] or [`FaultKind::BatchItemFailures`]) decides the reply.
//! A rule with a `count` is used up after that many matches; one without applies until
//! the rules are cleared.
//!
//! Over HTTP (`POST /_emulator/faults`) a rule is JSON such as
//! `{"type":"status","status":503,"count":2,"retry_after_secs":1}`,
//! `{"type":"function_error","error_message":"boom","body_contains":"poison"}`,
//! `{"type":"batch_item_failures","value_contains":"poison"}`,
//! `{"type":"redirect","status":302,"location":"http://elsewhere/"}`,
//! `{"type":"rate_limit","per_second":50}`, `{"type":"answer_lost","status":503}` or
//! `{"type":"latency","ms":200}`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What happens to a matching invocation.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many matching invocations this rule affects; `None` means every one until
    /// the rules are cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Only invocations whose body contains this text match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The invocations a [`FaultKind::RateLimit`] let through in the last second.
    #[serde(skip)]
    admitted: Window,
}

/// When the invocations of the last second were admitted.
#[derive(Debug, Clone, Default)]
struct Window(VecDeque<Instant>);

/// A rule is its settings: what it has counted so far is not part of it.
impl PartialEq for Window {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Window {}

impl Window {
    /// Whether one more invocation now stays within `per_second`; if so it counts.
    fn admit(&mut self, per_second: u32) -> bool {
        let now = Instant::now();
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.0.pop_front();
        }
        if self.0.len() >= per_second as usize {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this HTTP status and an FC error body instead of invoking.
    Status {
        /// The status, e.g. 429, 500 or 503.
        status: u16,
        /// Seconds for a `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
        /// The `ErrorCode`; by default FC's code for the status (429
        /// `ResourceExhausted`, 500 `InternalServerError`, 503 `ResourceThrottled`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// The function raises: a sync call gets 200 with `X-Fc-Error-Type` and an error
    /// body; an async call is still accepted (202), as FC only runs it later.
    FunctionError {
        /// `errorMessage` in the body.
        #[serde(default = "default_error_message")]
        error_message: String,
        /// `errorType` in the body.
        #[serde(default = "default_error_type")]
        error_type: String,
        /// `HandledInvocationError` instead of `UnhandledInvocationError`.
        #[serde(default)]
        handled: bool,
    },
    /// The function reports a partial batch failure: a sync call gets 200 with
    /// `{"batchItemFailures":[{"itemIdentifier":{"partition":"<topic>-<partition>",
    /// "offset":<n>}}]}` naming every record in the payload whose value contains
    /// `value_contains` (see `batch_items`); an async call is still accepted (202).
    BatchItemFailures {
        /// The text that marks a record as failed.
        value_contains: String,
    },
    /// Answer with a redirect (301, 302, 303, 307, 308) to `location`,
    /// as a misconfigured gateway or a hostile endpoint would. A client
    /// that follows it sends the records (or a bodyless `GET`) elsewhere.
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// The service throttles: invocations beyond `per_second` in any second are
    /// answered 429 (FC `ResourceExhausted`, Lambda `TooManyRequestsException`)
    /// at once, without running the function (no latency rule applies to them);
    /// the others go through the other rules.
    RateLimit {
        /// Invocations admitted per second.
        per_second: u32,
    },
    /// The function runs (the invocation is recorded as executed and, with
    /// asynchronous tasks on, its task ID is taken), but the caller gets
    /// `status` with the API's error: an answer lost on its way back, which
    /// the caller can only retry.
    AnswerLost {
        /// The status the caller sees, e.g. 503.
        status: u16,
    },
    /// Wait this many milliseconds before answering.
    Latency {
        /// The delay.
        ms: u64,
    },
}

fn default_error_message() -> String {
    "injected function error".to_owned()
}

fn default_error_type() -> String {
    "Error".to_owned()
}

impl Fault {
    /// Every matching invocation is answered with `status` (until cleared; see
    /// [`Fault::times`]).
    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status {
            status,
            retry_after_secs: None,
            error_code: None,
        })
    }

    /// Every matching invocation reports an unhandled function error with `message`.
    pub fn function_error(message: impl Into<String>) -> Self {
        Self::new(FaultKind::FunctionError {
            error_message: message.into(),
            error_type: default_error_type(),
            handled: false,
        })
    }

    /// Every matching sync invocation answers with a partial batch response naming the
    /// records whose value contains `value_contains`.
    pub fn batch_item_failures(value_contains: impl Into<String>) -> Self {
        Self::new(FaultKind::BatchItemFailures {
            value_contains: value_contains.into(),
        })
    }

    /// Every matching invocation is answered `status` with `Location: location`.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Self::new(FaultKind::Redirect {
            status,
            location: location.into(),
        })
    }

    /// Every matching invocation is delayed by `delay`.
    pub fn latency(delay: Duration) -> Self {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self::new(FaultKind::Latency { ms })
    }

    /// Every matching invocation runs the function, then answers `status` (the answer
    /// was lost).
    pub fn answer_lost(status: u16) -> Self {
        Self::new(FaultKind::AnswerLost { status })
    }

    /// Invocations beyond `per_second` in any second are throttled (429).
    pub fn rate_limit(per_second: u32) -> Self {
        Self::new(FaultKind::RateLimit { per_second })
    }

    fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            count: None,
            body_contains: None,
            admitted: Window::default(),
        }
    }

    /// Applies to the next `n` matching invocations only.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Adds `Retry-After: secs` to a [`FaultKind::Status`] fault (no effect on others).
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultKind::Status {
            retry_after_secs, ..
        } = &mut self.kind
        {
            *retry_after_secs = Some(secs);
        }
        self
    }

    /// Matches only invocations whose body contains `text`.
    pub fn matching(mut self, text: impl Into<String>) -> Self {
        self.body_contains = Some(text.into());
        self
    }

    /// Checks what cannot be expressed in the types: a status must be 100..=599.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            FaultKind::Status { status, .. } | FaultKind::AnswerLost { status }
                if !(100..=599).contains(&status) =>
            {
                Err(format!("status {status} is not an HTTP status"))
            }
            FaultKind::Redirect { status, .. } if !(300..=399).contains(&status) => {
                Err(format!("status {status} is not a redirect"))
            }
            FaultKind::RateLimit { per_second: 0 } => Err("per_second must be at least 1".into()),
            _ => Ok(()),
        }
    }

    fn matches(&self, body: &[u8]) -> bool {
        self.body_contains.as_deref().is_none_or(|needle| {
            needle.is_empty() || body.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    }

    fn fails(&self) -> bool {
        !matches!(self.kind, FaultKind::Latency { .. })
    }
}

/// Whether the function runs under `failure`: not when a status, a
/// redirect or a throttle answers instead of it.
pub fn runs_function(failure: Option<&FaultKind>) -> bool {
    !matches!(
        failure,
        Some(FaultKind::Status { .. } | FaultKind::Redirect { .. } | FaultKind::RateLimit { .. })
    )
}

/// `failure` as the reply a caller sees: a lost answer is the status it
/// was replaced with.
pub fn as_seen(failure: Option<FaultKind>) -> Option<FaultKind> {
    match failure {
        Some(FaultKind::AnswerLost { status }) => Some(FaultKind::Status {
            status,
            retry_after_secs: None,
            error_code: None,
        }),
        other => other,
    }
}

/// What the rules decided for one invocation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The total delay of the matching latency rules.
    pub delay: Duration,
    /// The reply-changing rule that applies, if any.
    pub failure: Option<FaultKind>,
}

/// The active rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
}

impl FaultKind {
    /// The whole answer of a fault that replaces the API's own (a redirect),
    /// the same from every endpoint.
    pub fn raw_answer(&self) -> Option<axum::response::Response> {
        use axum::response::IntoResponse as _;
        match self {
            FaultKind::Redirect { status, location } => {
                let status = axum::http::StatusCode::from_u16(*status)
                    .unwrap_or(axum::http::StatusCode::FOUND);
                Some((status, [(axum::http::header::LOCATION, location.clone())]).into_response())
            }
            _ => None,
        }
    }
}

impl Faults {
    /// Adds a rule after the existing ones.
    pub fn add(&self, fault: Fault) {
        self.lock().push(fault);
    }

    /// The rules still active.
    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Decides the fate of an invocation with `body`, using up counted rules.
    pub fn decide(&self, body: &[u8]) -> Decision {
        let mut rules = self.lock();
        let mut decision = Decision::default();
        // A throttled invocation is refused before the function runs, so it
        // takes none of the function's latency.
        let mut throttled = false;
        for rule in rules.iter_mut() {
            if !rule.matches(body) || (rule.fails() && decision.failure.is_some()) {
                continue;
            }
            match &rule.kind {
                FaultKind::Latency { ms } => decision.delay += Duration::from_millis(*ms),
                FaultKind::RateLimit { per_second } => {
                    if rule.admitted.admit(*per_second) {
                        continue;
                    }
                    throttled = true;
                    decision.failure = Some(FaultKind::Status {
                        status: 429,
                        retry_after_secs: None,
                        error_code: None,
                    });
                }
                kind => decision.failure = Some(kind.clone()),
            }
            if let Some(count) = &mut rule.count {
                *count = count.saturating_sub(1);
            }
        }
        rules.retain(|rule| rule.count != Some(0));
        if throttled {
            decision.delay = Duration::ZERO;
        }
        decision
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_failures_run_out() {
        let faults = Faults::default();
        faults.add(Fault::status(503).times(2));
        assert!(faults.decide(b"x").failure.is_some());
        assert!(faults.decide(b"x").failure.is_some());
        assert_eq!(faults.decide(b"x"), Decision::default());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn first_failing_rule_wins_and_latencies_add_up() {
        let faults = Faults::default();
        faults.add(Fault::latency(Duration::from_millis(5)));
        faults.add(Fault::status(429).times(1));
        faults.add(Fault::status(500).times(1));
        faults.add(Fault::latency(Duration::from_millis(7)));
        let first = faults.decide(b"x");
        assert_eq!(first.delay, Duration::from_millis(12));
        assert!(matches!(
            first.failure,
            Some(FaultKind::Status { status: 429, .. })
        ));
        let second = faults.decide(b"x");
        assert!(matches!(
            second.failure,
            Some(FaultKind::Status { status: 500, .. })
        ));
        assert_eq!(faults.decide(b"x").failure, None);
    }

    #[test]
    fn a_rate_limit_throttles_what_exceeds_it_in_a_second() {
        let faults = Faults::default();
        faults.add(Fault::rate_limit(3));
        let throttled = (0..5)
            .filter(|_| faults.decide(b"x").failure.is_some())
            .count();
        assert_eq!(throttled, 2);
        std::thread::sleep(Duration::from_millis(1_050));
        assert_eq!(
            faults.decide(b"x").failure,
            None,
            "a new second admits again"
        );
        let fault: Fault = serde_json::from_str(r#"{"type":"rate_limit","per_second":3}"#).unwrap();
        assert_eq!(fault, Fault::rate_limit(3));
    }

    #[test]
    fn a_throttled_invocation_is_answered_without_the_functions_latency() {
        let faults = Faults::default();
        faults.add(Fault::rate_limit(1));
        faults.add(Fault::latency(Duration::from_millis(200)));
        let admitted = faults.decide(b"x");
        assert_eq!(
            (admitted.failure, admitted.delay),
            (None, Duration::from_millis(200))
        );
        let throttled = faults.decide(b"x");
        assert!(throttled.failure.is_some());
        assert_eq!(throttled.delay, Duration::ZERO);
    }

    #[test]
    fn body_filter() {
        let faults = Faults::default();
        faults.add(Fault::function_error("boom").matching("poison").times(1));
        assert_eq!(faults.decide(b"clean").failure, None);
        assert!(faults.decide(b"a poison pill").failure.is_some());
        assert_eq!(faults.decide(b"a poison pill").failure, None);
    }

    #[test]
    fn json_form() {
        let fault: Fault = serde_json::from_str(
            r#"{"type":"status","status":503,"count":2,"retry_after_secs":1}"#,
        )
        .expect("valid fault");
        assert_eq!(fault, Fault::status(503).times(2).retry_after(1));
        let fault: Fault = serde_json::from_str(r#"{"type":"function_error"}"#).expect("valid");
        assert_eq!(fault, Fault::function_error("injected function error"));
        let fault: Fault =
            serde_json::from_str(r#"{"type":"batch_item_failures","value_contains":"poison"}"#)
                .expect("valid");
        assert_eq!(fault, Fault::batch_item_failures("poison"));
        assert!(Fault::status(42).validate().is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"type":"explode"}"#).is_err());
    }
}
