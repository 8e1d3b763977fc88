//! Retries: bounded, with exponential backoff and full jitter, honouring the
//! service's `Retry-After`. What is worth retrying is decided by the target
//! (`invoke::Verdict`); this loop only decides when to stop. A target
//! failure (authentication, not found) is retried for a time rather than a
//! number of attempts, and does not use up the retries. A delivered answer
//! that reports some of its records failed (a partial batch response) is a
//! policy case of its own: only those records are sent again, in rounds
//! (`deliver_records`).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

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
    /// Shutdown began while waiting to retry; the outcome is unknown.
    Cancelled,
}

/// Calls `attempt` until it delivers, is rejected, or the retries run out.
pub async fn deliver<F, Fut>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    mut attempt: F,
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
        let (failure, delay) = match attempt().await {
            Verdict::Delivered(response) => return Delivery::Delivered { response, attempts },
            Verdict::Reject(failure) => return Delivery::Failed { failure, attempts },
            Verdict::Retry { failure, after } => {
                target_failing = None;
                retries += 1;
                if retries > policy.retries {
                    return Delivery::Failed { failure, attempts };
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

/// What a delivered answer says of the records its request carried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// Those the function reports failed, to be sent again.
    pub failed: Vec<usize>,
    /// Why, for their dead letters.
    pub why: String,
}

/// The code of records the function kept reporting failed.
pub const ITEM_FAILURE: &str = "batch-item-failure";

/// How one request's records ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// Every record was delivered, some perhaps after resends.
    Delivered,
    /// These records could not be delivered: their request failed, or the
    /// function still reported them failed after the last round.
    Failed {
        /// The records.
        records: Vec<usize>,
        /// The last failure.
        failure: Failure,
        /// Attempts (or rounds, for records the function failed).
        attempts: u32,
    },
    /// The target kept failing for `target_failure`; no record is at fault.
    TargetFailed {
        /// The last failure.
        failure: Failure,
        /// Attempts made.
        attempts: u32,
    },
    /// Shutdown began while waiting; the outcome is unknown.
    Cancelled,
}

/// Delivers the request carrying `records` (`body_for` makes a body for
/// any subset of them; `send` sends one). Each delivered answer goes to
/// `settle`, which handles the records it delivered and says which failed.
/// Those alone are sent again, after a delay that grows per round, up to
/// `policy.retries` rounds; each round's request is retried like any other.
///
/// # Errors
/// The first error of `settle`, which ends the delivery.
pub async fn deliver_records<E, Send, Sent, Settle, Settling>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    mut records: Vec<usize>,
    mut body_for: impl FnMut(&[usize]) -> bytes::Bytes,
    send: Send,
    mut settle: Settle,
) -> Result<Records, E>
where
    Send: Fn(bytes::Bytes) -> Sent,
    Sent: Future<Output = Verdict>,
    Settle: FnMut(Vec<usize>, Response) -> Settling,
    Settling: Future<Output = Result<Settled, E>>,
{
    let mut round = 0;
    loop {
        let body = body_for(&records);
        let response = match deliver(policy, cancel, || send(body.clone())).await {
            Delivery::Delivered { response, .. } => response,
            Delivery::Failed { failure, attempts } => {
                return Ok(Records::Failed {
                    records,
                    failure,
                    attempts,
                });
            }
            Delivery::TargetFailed { failure, attempts } => {
                return Ok(Records::TargetFailed { failure, attempts });
            }
            Delivery::Cancelled => return Ok(Records::Cancelled),
        };
        let status = response.status;
        let settled = settle(records, response).await?;
        if settled.failed.is_empty() {
            return Ok(Records::Delivered);
        }
        round += 1;
        if round > policy.retries {
            tracing::error!(
                records = settled.failed.len(),
                "The function kept failing records"
            );
            return Ok(Records::Failed {
                records: settled.failed,
                failure: Failure {
                    code: ITEM_FAILURE.into(),
                    message: settled.why,
                    status: Some(status),
                },
                attempts: round,
            });
        }
        let delay = policy.delay(round, None);
        tracing::warn!(
            records = settled.failed.len(),
            retry_in_ms = delay.as_millis() as u64,
            "The function failed some records; retrying them"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Ok(Records::Cancelled),
        }
        records = settled.failed;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 2,
        initial: Duration::from_millis(100),
        max: Duration::from_millis(250),
        target_failure: Duration::from_secs(10),
    };

    fn failure(code: &str) -> Failure {
        Failure {
            code: code.into(),
            message: String::new(),
            status: Some(503),
        }
    }

    fn ok() -> Verdict {
        Verdict::Delivered(Response {
            status: 202,
            body: Vec::new(),
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

    /// A function that fails `failing` records every time, reporting them.
    async fn resend(failing: &[usize]) -> (Result<Records, ()>, Vec<Vec<usize>>) {
        let sent = std::sync::Mutex::new(Vec::new());
        let result = deliver_records(
            POLICY,
            &CancellationToken::new(),
            (0..5).collect(),
            |records: &[usize]| {
                sent.lock().unwrap().push(records.to_vec());
                bytes::Bytes::new()
            },
            |_body| async { ok() },
            |records: Vec<usize>, _response| async move {
                Ok(Settled {
                    failed: records
                        .iter()
                        .copied()
                        .filter(|r| failing.contains(r))
                        .collect(),
                    why: "listed".into(),
                })
            },
        )
        .await;
        (result, sent.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_records_an_answer_lists_are_sent_again() {
        let (result, sent) = resend(&[]).await;
        assert_eq!(result, Ok(Records::Delivered));
        assert_eq!(sent, [vec![0, 1, 2, 3, 4]]);

        let (result, sent) = resend(&[1, 3]).await;
        // The first request, then one round per retry with only 1 and 3.
        assert_eq!(sent, [vec![0, 1, 2, 3, 4], vec![1, 3], vec![1, 3]]);
        assert_eq!(
            result,
            Ok(Records::Failed {
                records: vec![1, 3],
                failure: Failure {
                    code: ITEM_FAILURE.into(),
                    message: "listed".into(),
                    status: Some(202),
                },
                attempts: 3,
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_resend_fails_only_its_records() {
        let calls = AtomicU32::new(0);
        let result: Result<Records, ()> = deliver_records(
            POLICY,
            &CancellationToken::new(),
            vec![0, 1, 2],
            |_: &[usize]| bytes::Bytes::new(),
            |_body| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    ok()
                } else {
                    Verdict::Reject(failure("bad"))
                }
            },
            |records: Vec<usize>, _| async move {
                Ok(Settled {
                    failed: records[1..].to_vec(),
                    why: String::new(),
                })
            },
        )
        .await;
        assert_eq!(
            result,
            Ok(Records::Failed {
                records: vec![1, 2],
                failure: failure("bad"),
                attempts: 1,
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_while_settling_ends_the_delivery() {
        let result = deliver_records(
            POLICY,
            &CancellationToken::new(),
            vec![0],
            |_: &[usize]| bytes::Bytes::new(),
            |_body| async { ok() },
            |_, _| async { Err::<Settled, _>("refused") },
        )
        .await;
        assert_eq!(result, Err("refused"));
    }
}
