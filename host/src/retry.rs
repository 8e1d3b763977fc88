//! Retries: bounded, with exponential backoff and full jitter, honouring the
//! service's `Retry-After`. What is worth retrying is decided by the target
//! (`invoke::Verdict`); this loop only decides when to stop. A target
//! failure (authentication, not found) is retried for a time rather than a
//! number of attempts, and does not use up the retries. What becomes of a
//! request's records, when an answer fails some of them, when they grow too
//! old or when the request keeps failing, is `records`.

mod records;

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use self::records::{
    BISECT_MAX_PARTS, Failed, ITEM_FAILURE, RECORD_TOO_OLD, Records, Requests, Settled,
    deliver_records,
};
use crate::invoke::{Failure, Response, Verdict};

/// The longest fcsink waits on a `Retry-After`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first delay's ceiling; doubled per retry.
    pub initial: Duration,
    /// The largest delay's ceiling.
    pub max: Duration,
    /// How long target failures are retried before giving up.
    pub target_failure: Duration,
    /// Split a request that keeps failing in halves, to find the records at
    /// fault (`delivery.bisect_on_error`).
    pub bisect: bool,
    /// Records older than this are not retried (`delivery.max_record_age_ms`).
    pub max_record_age: Option<Duration>,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): uniformly random
    /// between zero and `min(max, initial * 2^(retry-1))`, but never less
    /// than the service's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max);
        let jittered = ceiling.mul_f64(rand::random::<f64>());
        match retry_after {
            Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered after this many attempts.
    Delivered {
        /// The answer.
        response: Response,
        /// Attempts made (1 = no retry).
        attempts: u32,
    },
    /// Rejected, or still failing after the last retry.
    Failed {
        /// The last failure.
        failure: Failure,
        /// Attempts made.
        attempts: u32,
    },
    /// The target kept failing for `target_failure`: no record is at
    /// fault, the partition stops.
    TargetFailed {
        /// The last failure.
        failure: Failure,
        /// Attempts made.
        attempts: u32,
    },
    /// A retry was due, but `expired` said some of the records are too
    /// old to be retried.
    Expired {
        /// The last failure.
        failure: Failure,
        /// Attempts made.
        attempts: u32,
    },
    /// Shutdown began while waiting to retry; the outcome is unknown.
    Cancelled,
}

/// Calls `attempt` until it delivers, is rejected, or the retries run out.
pub async fn deliver<F, Fut>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    attempt: F,
) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Verdict>,
{
    deliver_until(policy, cancel, attempt, || false).await
}

/// [`deliver`], asking `expired` before each retry of a failure worth
/// retrying whether the request's records are still young enough for it.
pub(crate) async fn deliver_until<F, Fut>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    mut attempt: F,
    expired: impl Fn() -> bool,
) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Verdict>,
{
    let mut attempts = 0;
    let mut retries = 0;
    // Since when the target has been failing, and how many times in a row.
    let mut target_failing: Option<(tokio::time::Instant, u32)> = None;
    loop {
        attempts += 1;
        let verdict = attempt().await;
        // A failure at shutdown is not worth a dead letter: its records stay
        // uncommitted, for the next owner.
        if cancel.is_cancelled()
            && matches!(verdict, Verdict::Retry { .. } | Verdict::TargetFailure(_))
        {
            return Delivery::Cancelled;
        }
        let (failure, delay) = match verdict {
            Verdict::Delivered(response) => return Delivery::Delivered { response, attempts },
            Verdict::Reject(failure) => return Delivery::Failed { failure, attempts },
            Verdict::Retry { failure, after } => {
                target_failing = None;
                retries += 1;
                if retries > policy.retries {
                    return Delivery::Failed { failure, attempts };
                }
                if expired() {
                    return Delivery::Expired { failure, attempts };
                }
                (failure, policy.delay(retries, after))
            }
            Verdict::TargetFailure(failure) => {
                let (since, count) = target_failing.get_or_insert((tokio::time::Instant::now(), 0));
                *count += 1;
                if since.elapsed() >= policy.target_failure {
                    return Delivery::TargetFailed { failure, attempts };
                }
                // Never wait past the deadline, so the stop comes on time.
                let left = policy.target_failure.saturating_sub(since.elapsed());
                (failure, policy.delay(*count, None).min(left))
            }
        };
        tracing::warn!(attempt = attempts, retry_in_ms = delay.as_millis() as u64, error = %failure, "Invocation failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Delivery::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    pub(super) const POLICY: RetryPolicy = RetryPolicy {
        retries: 2,
        initial: Duration::from_millis(100),
        max: Duration::from_millis(250),
        target_failure: Duration::from_secs(10),
        bisect: false,
        max_record_age: None,
    };

    pub(super) fn failure(code: &str) -> Failure {
        Failure {
            code: code.into(),
            message: String::new(),
            status: Some(503),
        }
    }

    pub(super) fn ok() -> Verdict {
        Verdict::Delivered(Response {
            status: 202,
            body: Vec::new(),
            duplicate: false,
        })
    }

    #[test]
    fn delays_grow_to_the_cap_with_full_jitter() {
        for _ in 0..200 {
            assert!(POLICY.delay(1, None) <= Duration::from_millis(100));
            assert!(POLICY.delay(2, None) <= Duration::from_millis(200));
            assert!(POLICY.delay(9, None) <= Duration::from_millis(250));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| POLICY.delay(3, None)).collect();
        assert!(spread.len() > 10, "jitter should spread delays");
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert!(POLICY.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(
            POLICY.delay(1, Some(Duration::from_secs(100_000))),
            MAX_RETRY_AFTER
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_then_delivers() {
        let calls = AtomicU32::new(0);
        let result = deliver(POLICY, &CancellationToken::new(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Verdict::Retry {
                    failure: failure("x"),
                    after: None,
                }
            } else {
                ok()
            }
        })
        .await;
        assert!(
            matches!(result, Delivery::Delivered { attempts: 3, .. }),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_last_retry() {
        let calls = AtomicU32::new(0);
        let result = deliver(POLICY, &CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Verdict::Retry {
                failure: failure("busy"),
                after: None,
            }
        })
        .await;
        assert_eq!(
            result,
            Delivery::Failed {
                failure: failure("busy"),
                attempts: 3
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result = deliver(POLICY, &CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Verdict::Reject(failure("bad"))
        })
        .await;
        assert_eq!(
            result,
            Delivery::Failed {
                failure: failure("bad"),
                attempts: 1
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn target_failures_are_retried_for_a_time_then_stop() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = deliver(POLICY, &CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Verdict::TargetFailure(failure("auth"))
        })
        .await;
        assert!(
            matches!(result, Delivery::TargetFailed { ref failure, .. } if failure.code == "auth"),
            "{result:?}"
        );
        // Far more than `retries`, yet paced: the timeout, not the count, ends it.
        assert!(started.elapsed() >= POLICY.target_failure);
        assert!(started.elapsed() < POLICY.target_failure + Duration::from_millis(300));
        let calls = calls.load(Ordering::SeqCst);
        assert!(calls > 3 && calls < 1000, "{calls} calls");
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_recovers_within_the_timeout_delivers() {
        let calls = AtomicU32::new(0);
        let result = deliver(POLICY, &CancellationToken::new(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 20 {
                Verdict::TargetFailure(failure("auth"))
            } else {
                ok()
            }
        })
        .await;
        assert!(
            matches!(result, Delivery::Delivered { attempts: 21, .. }),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_the_wait() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let result = deliver(POLICY, &cancel, || async {
            Verdict::Retry {
                failure: failure("x"),
                after: None,
            }
        })
        .await;
        assert_eq!(result, Delivery::Cancelled);
    }
}
