//! One partition's worker: batches its records in order and takes each batch
//! through transform → invoke → retry → dead letter → offset store.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::FutureExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::batch;
use crate::config::{FailurePolicy, SendMode};
use crate::control::Live;
use crate::dlq::{DeadLetters, Reason, Stage};
use crate::format::Format;
use crate::invoke::partial::{self, Report};
use crate::invoke::{Failure, Target, Verdict};
use crate::metrics;
use crate::pipeline::budget::Held;
use crate::produce::{self, Refused};
use crate::results::Results;
use crate::retry::{self, Delivery};
use crate::source::{self, Consumer, TopicPartition};
use crate::transform::{Chain, Plugin, Record, TransformError, Transformed};

/// What every worker shares.
pub(crate) struct Shared {
    pub consumer: Arc<Consumer>,
    /// Batch settings, retries, failure policy and send mode, changeable
    /// at runtime (`control`): read once per use, never held.
    pub live: watch::Receiver<Live>,
    pub chains: ChainPool,
    pub target: Box<dyn Target>,
    pub format: Format,
    pub dead_letters: DeadLetters,
    pub results: Results,
    /// Cancelled at shutdown: stop waiting to retry.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The runtime settings in force now.
    pub(crate) fn live(&self) -> Live {
        *self.live.borrow()
    }
}

/// Plugin chains, one per unit of concurrency: holding one is the permit to
/// work on a batch. Chains are made when first needed, so the pool can grow
/// when `source.concurrency` is raised at runtime.
pub(crate) struct ChainPool {
    permits: Arc<Semaphore>,
    /// Permits to retire as they come back after `resize` lowered the size
    /// below the batches in flight.
    debt: Mutex<usize>,
    size: AtomicUsize,
    plugins: Vec<Arc<Plugin>>,
    chains: Mutex<Vec<Chain>>,
}

impl ChainPool {
    pub(crate) fn new(plugins: Vec<Arc<Plugin>>, size: usize) -> Self {
        ChainPool {
            permits: Arc::new(Semaphore::new(size)),
            debt: Mutex::new(0),
            size: AtomicUsize::new(size),
            chains: Mutex::new((0..size).map(|_| Chain::new(&plugins)).collect()),
            plugins,
        }
    }

    /// Allows `size` batches at once; batches in flight beyond it finish first.
    pub(crate) fn resize(&self, size: usize) {
        let mut debt = self
            .debt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.size.swap(size, Ordering::SeqCst);
        if size > old {
            // Raising first cancels what a lowering still owes.
            let grow = size - old;
            let cancelled = grow.min(*debt);
            *debt -= cancelled;
            self.permits.add_permits(grow - cancelled);
        } else if size < old {
            let shrink = old - size;
            let retired = self.permits.forget_permits(shrink);
            *debt += shrink - retired;
        }
    }

    /// Permits in circulation: free ones plus those held, less the debt.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.permits.available_permits()
    }

    #[expect(clippy::expect_used, reason = "the pool never closes its semaphore")]
    async fn acquire(&self) -> (OwnedSemaphorePermit, Chain) {
        let permit = loop {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the pool is never closed");
            let mut debt = self
                .debt
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *debt == 0 {
                break permit;
            }
            *debt -= 1;
            permit.forget();
        };
        let chain = self
            .idle()
            .pop()
            .unwrap_or_else(|| Chain::new(&self.plugins));
        (permit, chain)
    }

    fn release(&self, chain: Chain) {
        self.idle().push(chain);
    }

    /// The idle chains; a panic elsewhere while they were held leaves them usable.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Chain>> {
        self.chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The plugins of a chain, for a failure that is no one plugin's.
fn chain_name(plugins: &[Arc<Plugin>]) -> String {
    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    names.join(",")
}

/// How a partition's worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Its input closed (shutdown) or it was revoked.
    Finished,
    /// A batch could not be handled; the partition stops, to start again
    /// at the failed batch's first offset `at`.
    Stopped {
        /// Why.
        why: Stop,
        /// The failed batch's first offset.
        at: i64,
    },
}

/// Why a partition stopped. Its failed batch is not committed either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A batch failed under `failure_policy = "stop"`.
    Policy(String),
    /// Kafka refused a dead letter or a result for good.
    Refused(Refused),
    /// The target kept failing (authentication, not found) for
    /// `delivery.target_failure_timeout_ms`; no record was at fault.
    Target(Failure),
    /// The worker panicked: a bug in fcsink, not in the records.
    Panic(String),
}

impl Stop {
    /// The `cause` label of `fcsink_partitions_stopped`, and its `code`.
    pub(crate) fn labels(&self) -> (&'static str, String) {
        match self {
            Stop::Policy(_) => ("failure_policy", String::new()),
            Stop::Refused(refused) => (refused.role.as_str(), refused.code_name()),
            Stop::Target(failure) => ("target", failure.code.clone()),
            Stop::Panic(_) => ("panic", String::new()),
        }
    }

    /// Why the partition's stop makes the instance unready (`/readyz`);
    /// `None` for a stop the failure policy asked for.
    pub(crate) fn unready_because(&self) -> Option<&'static str> {
        match self {
            Stop::Policy(_) => None,
            Stop::Refused(_) => Some("Kafka refused a write"),
            Stop::Target(_) => Some("the target kept failing (authentication or not found)"),
            Stop::Panic(_) => Some("fcsink's worker panicked"),
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Policy(why) => f.write_str(why),
            Stop::Refused(refused) => refused.fmt(f),
            Stop::Target(failure) => write!(
                f,
                "the target kept failing for delivery.target_failure_timeout_ms: {failure}"
            ),
            Stop::Panic(message) => write!(f, "the partition's worker panicked: {message}"),
        }
    }
}

/// What became of one batch.
enum BatchEnd {
    /// Every record was delivered, filtered or dead-lettered.
    Handled,
    /// The partition must stop; nothing after it may be committed.
    Stop(Stop),
    /// Shutdown interrupted it; nothing may be committed.
    Abandoned,
}

impl From<produce::Error> for BatchEnd {
    fn from(err: produce::Error) -> Self {
        match err {
            produce::Error::Abandoned => BatchEnd::Abandoned,
            produce::Error::Refused(refused) => BatchEnd::Stop(Stop::Refused(refused)),
        }
    }
}

/// Runs until the input closes, the partition is revoked, or a failure stops it.
pub(crate) async fn run(
    tp: TopicPartition,
    mut input: mpsc::UnboundedReceiver<Record>,
    held: Held,
    shared: Arc<Shared>,
    revoked: CancellationToken,
) -> End {
    loop {
        let batch_settings = shared.live().batch;
        // At shutdown or revoke no new batch starts: what is queued stays
        // uncommitted, for the next owner.
        let next = tokio::select! {
            biased;
            () = revoked.cancelled() => return End::Finished,
            () = shared.shutdown.cancelled() => return End::Finished,
            next = batch::next_batch(&mut input, &batch_settings) => next,
        };
        let Some((batch, reason)) = next else {
            return End::Finished;
        };
        // The batch's bytes count against `source.buffer_mb` until it is
        // handled, however it ends.
        let _release = held.batch(&batch);
        let first_offset = batch.first().map_or(0, |r| r.offset);
        let next_offset = batch.last().map_or(0, |r| r.offset + 1);
        // Every log line of the batch's journey carries where it came from.
        let span = tracing::info_span!("batch", topic = %tp.0, partition = tp.1, first = first_offset, records = batch.len(), flush = reason.as_str());
        metrics::batch_flushed(reason.as_str(), batch.len());
        // One snapshot of the runtime settings for the whole batch: a
        // `fcsink set` meanwhile applies from the next batch on, never to
        // half of this one's requests or retries.
        let live = shared.live();
        // A panic while handling the batch (a bug in fcsink or in a target)
        // stops this partition with the panic as its reason; the process
        // and the other partitions go on.
        let handled = std::panic::AssertUnwindSafe(handle_batch(batch, &live, &shared))
            .catch_unwind()
            .instrument(span)
            .await
            .unwrap_or_else(|panic| {
                let message = panic_message(panic.as_ref());
                tracing::error!(topic = %tp.0, partition = tp.1, panic = %message, "A batch's worker panicked");
                BatchEnd::Stop(Stop::Panic(message))
            });
        match handled {
            BatchEnd::Handled => source::store(&shared.consumer, &tp, next_offset),
            BatchEnd::Stop(why) => {
                return End::Stopped {
                    why,
                    at: first_offset,
                };
            }
            BatchEnd::Abandoned => return End::Finished,
        }
    }
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// transform → invoke (with retries) → dead letters.
async fn handle_batch(batch: Vec<Record>, live: &Live, shared: &Shared) -> BatchEnd {
    let (permit, chain) = tokio::select! {
        biased;
        // A batch still waiting for its turn is not in flight yet.
        () = shared.shutdown.cancelled() => return BatchEnd::Abandoned,
        acquired = shared.chains.acquire() => acquired,
    };
    let source = batch.clone();
    let started = Instant::now();
    let plugin_names = chain_name(&shared.chains.plugins);
    let transformed = match tokio::task::spawn_blocking(move || {
        let mut chain = chain;
        let result = chain.run(batch);
        (chain, result)
    })
    .await
    {
        Ok((chain, transformed)) => {
            shared.chains.release(chain);
            transformed
        }
        // A bug in the host's side of the transform, not the plugin's: the
        // chain is lost (the pool makes a new one) and the batch fails.
        Err(panic) => Err(TransformError {
            plugin: plugin_names,
            failure: crate::transform::PluginFailure::Trapped(format!(
                "the transform task failed: {panic}"
            )),
        }),
    };
    let outcome = transformed
        .as_ref()
        .map_or_else(|err| err.failure.code(), |_| "ok");
    metrics::transform_finished(started.elapsed(), outcome);

    let transformed = match transformed {
        Ok(transformed) => transformed,
        Err(err) => {
            drop(permit);
            return transform_failed(&source, err, live, shared).await;
        }
    };
    metrics::records_filtered(transformed.dropped);
    if !transformed.failed.is_empty() {
        let entries: Vec<_> = transformed
            .failed
            .iter()
            .map(|failure| {
                tracing::warn!(plugin = %failure.plugin, offset = source[failure.origin].offset, reason = %failure.reason, "Plugin failed a record");
                let reason = Reason {
                    stage: Stage::Transform,
                    code: "plugin-failed-record".into(),
                    message: failure.reason.clone(),
                    component: failure.plugin.clone(),
                    attempts: 0,
                    status: None,
                };
                (&source[failure.origin], reason)
            })
            .collect();
        if let end @ (BatchEnd::Stop(_) | BatchEnd::Abandoned) = dead_letter(&entries, shared).await
        {
            return end;
        }
    }
    let end = invoke(&source, transformed, live, shared).await;
    drop(permit);
    end
}

async fn transform_failed(
    source: &[Record],
    err: TransformError,
    live: &Live,
    shared: &Shared,
) -> BatchEnd {
    tracing::error!(error = %err, "Plugin failed the batch");
    metrics::plugin_called(&err.plugin, err.failure.code());
    let reason = Reason {
        stage: Stage::Transform,
        code: err.failure.code().into(),
        message: err.failure.to_string(),
        component: err.plugin.clone(),
        attempts: 0,
        status: None,
    };
    fail(source.iter().collect(), reason, live, shared).await
}

/// Sends every request of the batch in order; records that cannot be
/// delivered are dead-lettered or stop the partition.
async fn invoke(
    source: &[Record],
    transformed: Transformed,
    live: &Live,
    shared: &Shared,
) -> BatchEnd {
    let (max_records, max_bytes) = (live.batch.max_records, live.batch.max_bytes);
    let encoded = shared
        .format
        .encode(&transformed.records, max_records, max_bytes);
    if !encoded.too_large.is_empty() {
        let reason = Reason {
            stage: Stage::Invoke,
            code: "record-too-large".into(),
            message: format!(
                "the record does not fit in a request of {max_bytes} bytes in format {} \
                 (batch.max_request_bytes)",
                shared.format.name()
            ),
            component: shared.target.describe(),
            attempts: 0,
            status: None,
        };
        let records = sources(&transformed, &encoded.too_large, source);
        if let end @ (BatchEnd::Stop(_) | BatchEnd::Abandoned) =
            fail(records, reason, live, shared).await
        {
            return end;
        }
    }
    for request in encoded.requests {
        let records: Vec<usize> = request.records.collect();
        let end = deliver(
            request.body.into(),
            records,
            source,
            &transformed,
            live,
            shared,
        )
        .await;
        if let BatchEnd::Stop(_) | BatchEnd::Abandoned = end {
            return end;
        }
    }
    BatchEnd::Handled
}

/// Delivers one request carrying the transformed records `pending`. When a
/// synchronous function reports some of them failed, only those are sent
/// again, up to `delivery.retries` times, and then dead-lettered.
async fn deliver(
    mut body: bytes::Bytes,
    mut pending: Vec<usize>,
    source: &[Record],
    transformed: &Transformed,
    live: &Live,
    shared: &Shared,
) -> BatchEnd {
    let mut rounds = 0;
    loop {
        let delivery = retry::deliver(live.retry, &shared.shutdown, || async {
            let started = Instant::now();
            let verdict = shared.target.send(body.clone(), live.send_mode).await;
            metrics::invoke_attempt(status_class(&verdict), started.elapsed());
            verdict
        })
        .await;
        let response = match delivery {
            Delivery::Delivered { response, .. } => response,
            Delivery::Cancelled => return BatchEnd::Abandoned,
            Delivery::TargetFailed { failure, attempts } => {
                tracing::error!(error = %failure, attempts, "The target kept failing; stopping the partition");
                return BatchEnd::Stop(Stop::Target(failure));
            }
            Delivery::Failed { failure, attempts } => {
                tracing::error!(error = %failure, attempts, "Invocation failed");
                let reason = Reason {
                    stage: Stage::Invoke,
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                    component: shared.target.describe(),
                    attempts,
                    status: failure.status,
                };
                return fail(sources(transformed, &pending, source), reason, live, shared).await;
            }
        };
        let (failed, why) = match live.send_mode {
            SendMode::Async => (Vec::new(), String::new()),
            SendMode::Sync => failed_items(&response.body, &pending, transformed),
        };
        let delivered: Vec<&Record> = pending
            .iter()
            .filter(|i| !failed.contains(i))
            .map(|&i| &source[transformed.origins[i]])
            .collect();
        metrics::records_delivered(delivered.len());
        if live.send_mode == SendMode::Sync
            && !delivered.is_empty()
            && let Err(err) = shared
                .results
                .success(&delivered, &response.body, &shared.shutdown)
                .await
        {
            return err.into();
        }
        if failed.is_empty() {
            return BatchEnd::Handled;
        }
        rounds += 1;
        if rounds > live.retry.retries {
            tracing::error!(records = failed.len(), "The function kept failing records");
            let reason = Reason {
                stage: Stage::Invoke,
                code: "batch-item-failure".into(),
                message: why,
                component: shared.target.describe(),
                attempts: rounds,
                status: Some(response.status),
            };
            return fail(sources(transformed, &failed, source), reason, live, shared).await;
        }
        let delay = live.retry.delay(rounds, None);
        tracing::warn!(
            records = failed.len(),
            retry_in_ms = delay.as_millis() as u64,
            "The function failed some records; retrying them"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.shutdown.cancelled() => return BatchEnd::Abandoned,
        }
        // A subset of a request fits in one request.
        let subset: Vec<Record> = failed
            .iter()
            .map(|&i| transformed.records[i].clone())
            .collect();
        let encoded = shared
            .format
            .encode(&subset, live.batch.max_records, live.batch.max_bytes);
        debug_assert_eq!(encoded.requests.len(), 1);
        body = encoded
            .requests
            .into_iter()
            .next()
            .map(|r| r.body.into())
            .unwrap_or_default();
        pending = failed;
    }
}

/// Which of `pending` a synchronous answer reports as failed, and why.
fn failed_items(body: &[u8], pending: &[usize], transformed: &Transformed) -> (Vec<usize>, String) {
    match partial::report(body) {
        Report::All => (Vec::new(), String::new()),
        Report::Failed(ids) => {
            let failed = pending
                .iter()
                .copied()
                .filter(|&i| {
                    let r = &transformed.records[i];
                    ids.iter().any(|id| {
                        id.offset == r.offset && id.partition == r.partition && id.topic == r.topic
                    })
                })
                .collect();
            (
                failed,
                "the function listed the record in batchItemFailures".into(),
            )
        }
        Report::Invalid(why) => (pending.to_vec(), why),
    }
}

/// The source records behind transformed records `indices`, each once.
fn sources<'a>(
    transformed: &Transformed,
    indices: &[usize],
    source: &'a [Record],
) -> Vec<&'a Record> {
    let origins: BTreeSet<usize> = indices.iter().map(|&i| transformed.origins[i]).collect();
    origins.into_iter().map(|i| &source[i]).collect()
}

/// Applies the failure policy to records that cannot go on.
async fn fail(records: Vec<&Record>, reason: Reason, live: &Live, shared: &Shared) -> BatchEnd {
    match live.failure_policy {
        FailurePolicy::Stop => {
            BatchEnd::Stop(Stop::Policy(format!("{}: {}", reason.code, reason.message)))
        }
        FailurePolicy::Continue => {
            let entries: Vec<_> = records
                .into_iter()
                .map(|record| (record, reason.clone()))
                .collect();
            dead_letter(&entries, shared).await
        }
    }
}

/// Reports records to the error topic (when `behavior_on_error = "log"`),
/// then writes them to the dead-letter topic. A write Kafka refuses for good
/// stops the partition: its records are neither dead-lettered nor committed.
async fn dead_letter(entries: &[(&Record, Reason)], shared: &Shared) -> BatchEnd {
    let cancel = &shared.shutdown;
    let written = match shared.results.errors(entries, cancel).await {
        Ok(()) => shared.dead_letters.write(entries, cancel).await,
        Err(err) => Err(err),
    };
    match written {
        Ok(()) => BatchEnd::Handled,
        Err(err) => err.into(),
    }
}

fn status_class(verdict: &Verdict) -> &'static str {
    let status = match verdict {
        Verdict::Delivered(response) => Some(response.status),
        Verdict::Retry { failure, .. }
        | Verdict::Reject(failure)
        | Verdict::TargetFailure(failure) => failure.status,
    };
    match status {
        Some(200..=299) if matches!(verdict, Verdict::Delivered(_)) => "2xx",
        Some(200..=299) => "function-error",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lowering_then_raising_concurrency_keeps_every_permit() {
        let pool = ChainPool::new(Vec::new(), 6);
        // Four batches in flight, then concurrency 2, then 6 again.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await);
        }
        pool.resize(2);
        assert_eq!(
            pool.available(),
            0,
            "the two free permits are retired at once"
        );
        pool.resize(6);
        drop(held);
        assert_eq!(pool.available(), 6);
        // Lowering while all are free retires them at once.
        pool.resize(1);
        assert_eq!(pool.available(), 1);
        pool.resize(3);
        assert_eq!(pool.available(), 3);
    }

    #[tokio::test]
    async fn a_lowered_pool_admits_no_more_than_its_new_size() {
        let pool = ChainPool::new(Vec::new(), 3);
        let first = pool.acquire().await;
        let second = pool.acquire().await;
        pool.resize(1);
        drop(first);
        drop(second);
        let _only = pool.acquire().await;
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), pool.acquire());
        assert!(next.await.is_err(), "a second batch must wait");
    }
}
