//! One partition's worker: batches its records in order and takes each batch
//! through transform → invoke → retry → dead letter → offset store.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::batch;
use crate::config::{BatchSettings, FailurePolicy};
use crate::dlq::{DeadLetters, Reason, Stage};
use crate::format;
use crate::invoke::Target;
use crate::metrics;
use crate::retry::{self, Delivery, RetryPolicy};
use crate::source::{self, Consumer, TopicPartition};
use crate::transform::{Chain, Record, TransformError, Transformed};

/// What every worker shares.
pub(crate) struct Shared {
    pub consumer: Arc<Consumer>,
    pub batch: BatchSettings,
    pub retry: RetryPolicy,
    pub failure_policy: FailurePolicy,
    pub chains: ChainPool,
    pub target: Target,
    pub dead_letters: DeadLetters,
    /// Cancelled at shutdown: stop waiting to retry.
    pub shutdown: CancellationToken,
}

/// Plugin chains, one per unit of concurrency: holding one is the permit to
/// work on a batch.
pub(crate) struct ChainPool {
    permits: Arc<Semaphore>,
    chains: Mutex<Vec<Chain>>,
}

impl ChainPool {
    pub(crate) fn new(chains: Vec<Chain>) -> Self {
        ChainPool {
            permits: Arc::new(Semaphore::new(chains.len())),
            chains: Mutex::new(chains),
        }
    }

    async fn acquire(&self) -> (OwnedSemaphorePermit, Chain) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the pool is never closed");
        let chain = self
            .chains
            .lock()
            .expect("pool lock")
            .pop()
            .expect("a chain per permit");
        (permit, chain)
    }

    fn release(&self, chain: Chain) {
        self.chains.lock().expect("pool lock").push(chain);
    }
}

/// Bytes of records handed to a worker and not yet taken into a batch. The
/// dispatcher adds, the worker subtracts, and the dispatcher pauses the
/// partition while it is too large.
#[derive(Clone, Default)]
pub(crate) struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// Counts `record` in; returns the new total.
    pub(crate) fn add(&self, record: &Record) -> usize {
        let bytes = footprint(record);
        self.0.fetch_add(bytes, Ordering::Relaxed) + bytes
    }

    fn remove(&self, batch: &[Record]) {
        let bytes: usize = batch.iter().map(footprint).sum();
        self.0.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The current total.
    pub(crate) fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Roughly what a record takes in memory: its bytes plus a fixed overhead.
fn footprint(record: &Record) -> usize {
    const OVERHEAD: usize = 128;
    let len = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or(0, Vec::len);
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + len(&h.value))
        .sum();
    OVERHEAD + record.topic.len() + len(&record.key) + len(&record.value) + headers
}

/// How a partition's worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Its input closed (shutdown) or it was revoked.
    Finished,
    /// A batch failed under `failure_policy = "stop"`.
    Stopped(String),
}

/// What became of one batch.
enum BatchEnd {
    /// Every record was delivered, filtered or dead-lettered.
    Handled,
    /// A failure under the stop policy; nothing after it may be committed.
    Stop(String),
    /// Shutdown interrupted it; nothing may be committed.
    Abandoned,
}

/// Runs until the input closes, the partition is revoked, or a failure stops it.
pub(crate) async fn run(
    tp: TopicPartition,
    mut input: mpsc::UnboundedReceiver<Record>,
    backlog: Backlog,
    shared: Arc<Shared>,
    revoked: CancellationToken,
) -> End {
    loop {
        let next = tokio::select! {
            biased;
            () = revoked.cancelled() => return End::Finished,
            next = batch::next_batch(&mut input, &shared.batch) => next,
        };
        let Some((batch, reason)) = next else {
            return End::Finished;
        };
        backlog.remove(&batch);
        let next_offset = batch.last().map_or(0, |r| r.offset + 1);
        // Every log line of the batch's journey carries where it came from.
        let span = tracing::info_span!("batch", topic = %tp.0, partition = tp.1, first = batch[0].offset, records = batch.len(), flush = reason.as_str());
        metrics::batch_flushed(reason.as_str(), batch.len());
        match handle_batch(batch, &shared).instrument(span).await {
            BatchEnd::Handled => source::store(&shared.consumer, &tp, next_offset),
            BatchEnd::Stop(why) => return End::Stopped(why),
            BatchEnd::Abandoned => return End::Finished,
        }
    }
}

/// transform → invoke (with retries) → dead letters.
async fn handle_batch(batch: Vec<Record>, shared: &Shared) -> BatchEnd {
    let (permit, chain) = shared.chains.acquire().await;
    let source = batch.clone();
    let (chain, transformed) = tokio::task::spawn_blocking(move || {
        let mut chain = chain;
        let result = chain.run(batch);
        (chain, result)
    })
    .await
    .expect("the transform task does not panic");
    shared.chains.release(chain);

    let transformed = match transformed {
        Ok(transformed) => transformed,
        Err(err) => {
            drop(permit);
            return transform_failed(&source, err, shared).await;
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
        if shared
            .dead_letters
            .write(&entries, &shared.shutdown)
            .await
            .is_err()
        {
            return BatchEnd::Abandoned;
        }
    }
    let end = invoke(&source, transformed, shared).await;
    drop(permit);
    end
}

async fn transform_failed(source: &[Record], err: TransformError, shared: &Shared) -> BatchEnd {
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
    fail(source.iter().collect(), reason, shared).await
}

/// Sends every request of the batch in order; a request that cannot be
/// delivered is dead-lettered or stops the partition.
async fn invoke(source: &[Record], transformed: Transformed, shared: &Shared) -> BatchEnd {
    let requests = format::fc::requests(
        &transformed.records,
        shared.batch.max_records,
        shared.batch.max_bytes,
    );
    for request in requests {
        let body = bytes::Bytes::from(request.body);
        let delivery = retry::deliver(shared.retry, &shared.shutdown, || async {
            let verdict = shared.target.send(body.clone()).await;
            metrics::invoke_attempt(status_class(&verdict));
            verdict
        })
        .await;
        match delivery {
            Delivery::Delivered { .. } => metrics::records_delivered(request.records.len()),
            Delivery::Cancelled => return BatchEnd::Abandoned,
            Delivery::Failed { failure, attempts } => {
                tracing::error!(error = %failure, attempts, "Invocation failed");
                // The source records behind this request, each once.
                let origins: BTreeSet<usize> = transformed.origins[request.records.clone()]
                    .iter()
                    .copied()
                    .collect();
                let records = origins.into_iter().map(|i| &source[i]).collect();
                let reason = Reason {
                    stage: Stage::Invoke,
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                    component: shared.target.describe(),
                    attempts,
                    status: failure.status,
                };
                match fail(records, reason, shared).await {
                    BatchEnd::Handled => {}
                    other => return other,
                }
            }
        }
    }
    BatchEnd::Handled
}

/// Applies the failure policy to records that cannot go on.
async fn fail(records: Vec<&Record>, reason: Reason, shared: &Shared) -> BatchEnd {
    match shared.failure_policy {
        FailurePolicy::Stop => BatchEnd::Stop(format!("{}: {}", reason.code, reason.message)),
        FailurePolicy::Continue => {
            let entries: Vec<_> = records
                .into_iter()
                .map(|record| (record, reason.clone()))
                .collect();
            match shared.dead_letters.write(&entries, &shared.shutdown).await {
                Ok(()) => BatchEnd::Handled,
                Err(_) => BatchEnd::Abandoned,
            }
        }
    }
}

fn status_class(verdict: &crate::invoke::Verdict) -> &'static str {
    use crate::invoke::Verdict;
    let status = match verdict {
        Verdict::Delivered(response) => Some(response.status),
        Verdict::Retry { failure, .. } | Verdict::Reject(failure) => failure.status,
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

    fn record(value: Option<&[u8]>) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: Some(b"key".to_vec()),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    #[test]
    fn backlog_counts_records_until_they_are_batched() {
        let backlog = Backlog::default();
        let batch = [record(Some(&[0; 1000])), record(None)];
        let after_first = backlog.add(&batch[0]);
        assert!(after_first > 1000, "{after_first}");
        assert!(backlog.add(&batch[1]) > after_first);
        backlog.remove(&batch);
        assert_eq!(backlog.bytes(), 0);
    }
}
