//! What becomes of one request's records. A delivered answer that reports
//! some of them failed (a partial batch response) has only those sent
//! again, in rounds. A retry that would resend records older than
//! `max_record_age` leaves them out: they fail as too old. A request that
//! still fails after its retries is split in halves, each sent on its own,
//! recursively (AWS's `BisectBatchOnFunctionError`), so that only the
//! records at fault fail.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Delivery, RetryPolicy, deliver_until};
use crate::invoke::{Failure, RESPONSE_TOO_LARGE, Response, Verdict};

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

/// The code of records too old to be retried.
pub const RECORD_TOO_OLD: &str = "record-too-old";

/// The most parts one failed request is split into before what still fails
/// fails whole: with 500 records, enough to find 7 records at fault.
pub const BISECT_MAX_PARTS: u32 = 128;

/// The retries of each part of a split request: its records already failed
/// the whole policy once.
const PART_RETRIES: u32 = 1;

/// How one request's records ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// Every record was delivered or is in one of `failed`.
    Settled {
        /// Records that could not be delivered, in groups that failed alike.
        failed: Vec<Failed>,
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

/// Records that could not be delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The records.
    pub records: Vec<usize>,
    /// The last failure.
    pub failure: Failure,
    /// Attempts (or rounds, for records the function failed).
    pub attempts: u32,
}

/// The requests of a delivery, for any subset of its records.
pub trait Requests {
    /// What ends a delivery early.
    type Error;
    /// A request body carrying `records`.
    fn body(&mut self, records: &[usize]) -> bytes::Bytes;
    /// Sends one request.
    fn send(&self, body: bytes::Bytes) -> impl Future<Output = Verdict>;
    /// Handles the records a delivered answer delivered and says which
    /// failed.
    fn settle(
        &mut self,
        records: Vec<usize>,
        response: Response,
    ) -> impl Future<Output = Result<Settled, Self::Error>>;
    /// How old `record` is, if known.
    fn age(&self, record: usize) -> Option<Duration>;
}

/// How one part of a request ended.
enum Part {
    Delivered,
    Failed(Failed),
    TargetFailed { failure: Failure, attempts: u32 },
    Cancelled,
}

/// Delivers the request carrying `records`; see the module's text. Parts
/// are sent in order, so a partition's records still arrive in order.
///
/// # Errors
/// The first error of [`Requests::settle`], which ends the delivery.
pub async fn deliver_records<R: Requests>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    records: Vec<usize>,
    requests: &mut R,
) -> Result<Records, R::Error> {
    let mut failed = Vec::new();
    // Parts still to send, the next one last.
    let mut parts = vec![(records, policy)];
    let mut split = 0;
    while let Some((records, part_policy)) = parts.pop() {
        let failure =
            match deliver_part(part_policy, cancel, records, requests, &mut failed).await? {
                Part::Delivered => continue,
                Part::Failed(failure) => failure,
                Part::TargetFailed { failure, attempts } => {
                    return Ok(Records::TargetFailed { failure, attempts });
                }
                Part::Cancelled => return Ok(Records::Cancelled),
            };
        if policy.bisect
            && failure.records.len() > 1
            && split + 2 <= BISECT_MAX_PARTS
            && may_bisect(&failure.failure)
        {
            split += 2;
            let mut first = failure.records;
            let second = first.split_off(first.len() / 2);
            tracing::warn!(records = first.len() + second.len(), error = %failure.failure, "A request kept failing; sending its halves apart");
            let halves = RetryPolicy {
                retries: policy.retries.min(PART_RETRIES),
                ..policy
            };
            parts.push((second, halves));
            parts.push((first, halves));
        } else {
            failed.push(failure);
        }
    }
    Ok(Records::Settled { failed })
}

/// Whether the records may be at fault, so that fewer of them might fare
/// better: a function error (an answer of 2xx that says the function
/// failed) or a 4xx refusal of the request's content (400, 413, 422 …). Not
/// the target being down or busy (5xx, 408, 429, no answer), a redirect,
/// an answer too large to read, or records the function already named or
/// that were too old.
fn may_bisect(failure: &Failure) -> bool {
    let content = match failure.status {
        Some(200..=299) => true,
        Some(408 | 429) => false,
        Some(400..=499) => true,
        _ => false,
    };
    content && ![ITEM_FAILURE, RECORD_TOO_OLD, RESPONSE_TOO_LARGE].contains(&failure.code.as_str())
}

/// Delivers one request: answers that fail some records have those sent
/// again, up to `policy.retries` rounds; records too old to retry are
/// pushed to `failed` and the rest go on.
async fn deliver_part<R: Requests>(
    policy: RetryPolicy,
    cancel: &CancellationToken,
    mut records: Vec<usize>,
    requests: &mut R,
    failed: &mut Vec<Failed>,
) -> Result<Part, R::Error> {
    let too_old = |requests: &R, record: usize| {
        policy
            .max_record_age
            .is_some_and(|max| requests.age(record).is_some_and(|age| age > max))
    };
    let mut round = 0;
    loop {
        let body = requests.body(&records);
        let delivery = {
            let requests = &*requests;
            let expired = || records.iter().any(|&r| too_old(requests, r));
            deliver_until(policy, cancel, || requests.send(body.clone()), expired).await
        };
        let response = match delivery {
            Delivery::Delivered { response, .. } => response,
            Delivery::Failed { failure, attempts } => {
                return Ok(Part::Failed(Failed {
                    records,
                    failure,
                    attempts,
                }));
            }
            Delivery::Expired { failure, attempts } => {
                let (old, young): (Vec<usize>, Vec<usize>) =
                    records.into_iter().partition(|&r| too_old(requests, r));
                let max = policy.max_record_age.unwrap_or_default();
                failed.push(Failed {
                    records: old,
                    failure: Failure {
                        code: RECORD_TOO_OLD.into(),
                        message: format!(
                            "older than delivery.max_record_age_ms ({} ms), not retried; \
                             the last attempt failed with {}: {}",
                            max.as_millis(),
                            failure.code,
                            failure.message
                        ),
                        status: failure.status,
                    },
                    attempts,
                });
                if young.is_empty() {
                    return Ok(Part::Delivered);
                }
                records = young;
                continue;
            }
            Delivery::TargetFailed { failure, attempts } => {
                return Ok(Part::TargetFailed { failure, attempts });
            }
            Delivery::Cancelled => return Ok(Part::Cancelled),
        };
        let status = response.status;
        let settled = requests.settle(records, response).await?;
        if settled.failed.is_empty() {
            return Ok(Part::Delivered);
        }
        round += 1;
        if round > policy.retries {
            tracing::error!(
                records = settled.failed.len(),
                "The function kept failing records"
            );
            failed.push(Failed {
                records: settled.failed,
                failure: Failure {
                    code: ITEM_FAILURE.into(),
                    message: settled.why,
                    status: Some(status),
                },
                attempts: round,
            });
            return Ok(Part::Delivered);
        }
        let delay = policy.delay(round, None);
        tracing::warn!(
            records = settled.failed.len(),
            retry_in_ms = delay.as_millis() as u64,
            "The function failed some records; retrying them"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Ok(Part::Cancelled),
        }
        records = settled.failed;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::tests::{POLICY, failure, ok};
    use super::*;

    /// What FC's answer to a function that raised comes to.
    fn function_error() -> Failure {
        Failure {
            code: "UnhandledInvocationError".into(),
            message: String::new(),
            status: Some(200),
        }
    }

    /// A function that answers by the records a request carries: it
    /// errors on any request that carries one of `poison`, reports `listed`
    /// as failed items, and logs the records of every request.
    #[derive(Default)]
    struct Function {
        poison: Vec<usize>,
        listed: Vec<usize>,
        /// Reject every request after the first.
        reject_resends: bool,
        /// Records and their ages, in seconds, growing by one per request.
        ages: Vec<u64>,
        sent: Mutex<Vec<Vec<usize>>>,
        carried: Vec<usize>,
        delivered: Vec<usize>,
    }

    impl Requests for Function {
        type Error = &'static str;

        fn body(&mut self, records: &[usize]) -> bytes::Bytes {
            self.carried = records.to_vec();
            bytes::Bytes::new()
        }

        fn send(&self, _body: bytes::Bytes) -> impl Future<Output = Verdict> {
            let mut sent = self.sent.lock().unwrap();
            let verdict = if self.reject_resends && !sent.is_empty() {
                Verdict::Reject(failure("bad"))
            } else if self.carried.iter().any(|r| self.poison.contains(r)) {
                Verdict::Retry {
                    failure: function_error(),
                    after: None,
                }
            } else {
                ok()
            };
            sent.push(self.carried.clone());
            std::future::ready(verdict)
        }

        fn settle(
            &mut self,
            records: Vec<usize>,
            _response: Response,
        ) -> impl Future<Output = Result<Settled, Self::Error>> {
            let (failed, delivered): (Vec<usize>, Vec<usize>) =
                records.into_iter().partition(|r| self.listed.contains(r));
            self.delivered.extend(delivered);
            std::future::ready(Ok(Settled {
                failed,
                why: "listed".into(),
            }))
        }

        fn age(&self, record: usize) -> Option<Duration> {
            let requests = self.sent.lock().unwrap().len() as u64;
            self.ages
                .get(record)
                .map(|age| Duration::from_secs(age + requests))
        }
    }

    async fn run(policy: RetryPolicy, records: usize, function: &mut Function) -> Records {
        deliver_records(
            policy,
            &CancellationToken::new(),
            (0..records).collect(),
            function,
        )
        .await
        .unwrap()
    }

    fn failed(records: Vec<usize>, code: &str, attempts: u32) -> Failed {
        Failed {
            records,
            failure: failure(code),
            attempts,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_records_an_answer_lists_are_sent_again() {
        let mut function = Function::default();
        assert_eq!(
            run(POLICY, 5, &mut function).await,
            Records::Settled { failed: vec![] }
        );
        assert_eq!(*function.sent.lock().unwrap(), [vec![0, 1, 2, 3, 4]]);

        let mut function = Function {
            listed: vec![1, 3],
            ..Function::default()
        };
        let result = run(POLICY, 5, &mut function).await;
        // The first request, then one round per retry with only 1 and 3.
        assert_eq!(
            *function.sent.lock().unwrap(),
            [vec![0, 1, 2, 3, 4], vec![1, 3], vec![1, 3]]
        );
        assert_eq!(
            result,
            Records::Settled {
                failed: vec![Failed {
                    records: vec![1, 3],
                    failure: Failure {
                        code: ITEM_FAILURE.into(),
                        message: "listed".into(),
                        status: Some(202),
                    },
                    attempts: 3,
                }]
            }
        );
        assert_eq!(function.delivered, [0, 2, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_resend_fails_only_its_records() {
        // 1 and 2 are listed, and any request after the first is rejected.
        let mut function = Function {
            listed: vec![1, 2],
            reject_resends: true,
            ..Function::default()
        };
        assert_eq!(
            run(POLICY, 3, &mut function).await,
            Records::Settled {
                failed: vec![failed(vec![1, 2], "bad", 1)]
            }
        );
        assert_eq!(function.delivered, [0]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_while_settling_ends_the_delivery() {
        struct Refusing;
        impl Requests for Refusing {
            type Error = &'static str;
            fn body(&mut self, _: &[usize]) -> bytes::Bytes {
                bytes::Bytes::new()
            }
            fn send(&self, _: bytes::Bytes) -> impl Future<Output = Verdict> {
                std::future::ready(ok())
            }
            fn settle(
                &mut self,
                _: Vec<usize>,
                _: Response,
            ) -> impl Future<Output = Result<Settled, Self::Error>> {
                std::future::ready(Err("refused"))
            }
            fn age(&self, _: usize) -> Option<Duration> {
                None
            }
        }
        let result =
            deliver_records(POLICY, &CancellationToken::new(), vec![0], &mut Refusing).await;
        assert_eq!(result, Err("refused"));
    }

    #[tokio::test(start_paused = true)]
    async fn bisection_fails_only_the_poison_records() {
        let mut function = Function {
            poison: vec![3, 17, 18],
            ..Function::default()
        };
        let policy = RetryPolicy {
            bisect: true,
            ..POLICY
        };
        let Records::Settled { failed } = run(policy, 40, &mut function).await else {
            panic!("not settled");
        };
        let mut at_fault: Vec<usize> = failed.iter().flat_map(|f| f.records.clone()).collect();
        at_fault.sort_unstable();
        assert_eq!(at_fault, [3, 17, 18]);
        assert!(
            failed
                .iter()
                .all(|f| f.failure.code == "UnhandledInvocationError")
        );
        // Every other record was delivered once, in order.
        let expected: Vec<usize> = (0..40).filter(|r| ![3, 17, 18].contains(r)).collect();
        assert_eq!(function.delivered, expected);
        let sent = function.sent.lock().unwrap();
        // The whole request with its retries, then parts with one retry each.
        assert_eq!(&sent[..3], vec![(0..40).collect::<Vec<_>>(); 3]);
        assert!(
            sent.len() < 3 + 2 * BISECT_MAX_PARTS as usize,
            "{} requests",
            sent.len()
        );
        assert!(sent[3..].iter().all(|part| part.len() < 40));
    }

    #[tokio::test(start_paused = true)]
    async fn bisection_stops_at_its_bound() {
        // Every record is at fault: the parts run out, and what is left fails
        // whole rather than record by record.
        let mut function = Function {
            poison: (0..1000).collect(),
            ..Function::default()
        };
        let policy = RetryPolicy {
            bisect: true,
            ..POLICY
        };
        let Records::Settled { failed } = run(policy, 1000, &mut function).await else {
            panic!("not settled");
        };
        let parts = function.sent.lock().unwrap().len() - 3;
        assert_eq!(parts, 2 * BISECT_MAX_PARTS as usize, "each part sent twice");
        let mut all: Vec<usize> = failed.iter().flat_map(|f| f.records.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>(), "every record fails");
        assert!(function.delivered.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn without_bisection_the_request_fails_whole() {
        let mut function = Function {
            poison: vec![3],
            ..Function::default()
        };
        assert_eq!(
            run(POLICY, 8, &mut function).await,
            Records::Settled {
                failed: vec![Failed {
                    records: (0..8).collect(),
                    failure: function_error(),
                    attempts: 3,
                }]
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_the_function_listed_are_not_bisected() {
        let mut function = Function {
            listed: vec![2, 5],
            ..Function::default()
        };
        let policy = RetryPolicy {
            bisect: true,
            ..POLICY
        };
        let Records::Settled { failed } = run(policy, 8, &mut function).await else {
            panic!("not settled");
        };
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].records, [2, 5]);
        assert_eq!(failed[0].failure.code, ITEM_FAILURE);
    }

    #[tokio::test(start_paused = true)]
    async fn records_too_old_are_not_retried() {
        // Records 0 and 1 are 100 s old, the others 1 s; every request
        // fails, and each makes them a second older.
        let mut function = Function {
            poison: (0..4).collect(),
            ages: vec![100, 100, 1, 1],
            ..Function::default()
        };
        let policy = RetryPolicy {
            max_record_age: Some(Duration::from_secs(60)),
            ..POLICY
        };
        let Records::Settled { failed } = run(policy, 4, &mut function).await else {
            panic!("not settled");
        };
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert_eq!(failed[0].records, [0, 1]);
        assert_eq!(failed[0].failure.code, RECORD_TOO_OLD);
        assert_eq!(failed[0].attempts, 1, "never retried");
        assert!(
            failed[0]
                .failure
                .message
                .contains("UnhandledInvocationError")
        );
        // The young ones are retried without them, as far as the policy goes.
        assert_eq!(failed[1], failed_young());
        let sent = function.sent.lock().unwrap();
        assert_eq!(
            *sent,
            [vec![0, 1, 2, 3], vec![2, 3], vec![2, 3], vec![2, 3]]
        );
    }

    fn failed_young() -> Failed {
        Failed {
            records: vec![2, 3],
            failure: function_error(),
            attempts: 3,
        }
    }

    #[test]
    fn only_failures_the_records_may_cause_are_bisected() {
        let with = |code: &str, status| Failure {
            code: code.into(),
            message: String::new(),
            status,
        };
        assert!(may_bisect(&function_error()));
        assert!(may_bisect(&with("EntityTooLarge", Some(400))));
        assert!(may_bisect(&with("http-422", Some(422))));
        for (code, status) in [
            ("InternalServerError", Some(500)),
            ("ResourceExhausted", Some(429)),
            ("http-408", Some(408)),
            ("network", None),
            ("redirect", Some(302)),
            (RESPONSE_TOO_LARGE, Some(200)),
            (ITEM_FAILURE, Some(200)),
            (RECORD_TOO_OLD, Some(200)),
        ] {
            assert!(!may_bisect(&with(code, status)), "{code}");
        }
    }
}
