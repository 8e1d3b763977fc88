//! One partition's worker: batches its records in order (in one lane, or
//! several with `source.ordering`, `lanes.rs`) and takes each batch through
//! transform → invoke (with retries) → dead letter → offset store.

mod aimd;
mod chain_pool;
mod in_flight;
mod lanes;
mod permits;
mod stop;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub(crate) use self::aimd::RequestLimit;
pub(crate) use self::chain_pool::ChainPool;
use self::in_flight::InFlight;
use self::lanes::{Spread, Unhandled};
pub(crate) use self::stop::{End, Stop};
use crate::batch;
use crate::breaker::Breaker;
use crate::config::{FailurePolicy, RecordOrder, SendMode};
use crate::dlq::{DeadLetters, Reason, Stage};
use crate::fleet::Live;
use crate::format::{Format, Request};
use crate::invoke::forward::{Forward, Forwarded};
use crate::invoke::idempotency::RequestId;
use crate::invoke::{Outgoing, Response, Target, Verdict};
use crate::metrics;
use crate::pipeline::budget::Held;
use crate::produce;
use crate::rate_limit::RateLimit;
use crate::results::Results;
use crate::retry::{self, Records, RetryPolicy, Settled};
use crate::source::{self, Consumer, TopicPartition};
use crate::sync::lock;
use crate::transform::{Record, TransformError};

/// What every worker shares.
pub(crate) struct Shared {
    pub consumer: Arc<Consumer>,
    /// Batch settings, retries, failure policy and send mode, changeable
    /// at runtime (`fleet`): read once per batch, never held.
    pub live: watch::Receiver<Live>,
    pub chains: ChainPool,
    /// Bounds the requests in flight, fewer while the target throttles.
    pub requests: RequestLimit,
    /// `source.ordering`: how many batches of a partition may be in flight.
    pub order: RecordOrder,
    pub target: Box<dyn Target>,
    /// Holds requests while the target is down.
    pub breaker: Breaker,
    /// Spaces requests by `delivery.max_requests_per_second`.
    pub rate: RateLimit,
    pub format: Format,
    /// `forward_headers`: which record headers requests carry.
    pub forward: Forward,
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

/// Goes on to the next stage while a stage handled its records.
macro_rules! then {
    ($stage:expr) => {
        match $stage {
            BatchEnd::Handled => {}
            end => return end,
        }
    };
}

/// Runs until the input closes, the partition is revoked, or a failure stops it.
pub(crate) async fn run(
    tp: TopicPartition,
    mut chunks: mpsc::UnboundedReceiver<Vec<Record>>,
    held: Held,
    shared: Arc<Shared>,
    revoked: CancellationToken,
) -> End {
    let live = shared.live();
    let mut spread = Spread::new(shared.order, live.concurrency, live.batch.max_records);
    let unhandled = Mutex::new(Unhandled::new(spread.lanes()));
    // The partition is revoked, or one of its lanes stopped it.
    let ending = revoked.child_token();
    let (senders, inputs): (Vec<_>, Vec<_>) = (0..spread.lanes())
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let give_out = async {
        loop {
            let chunk = tokio::select! {
                biased;
                () = ending.cancelled() => break,
                () = shared.shutdown.cancelled() => break,
                chunk = chunks.recv() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut unhandled = lock(&unhandled);
            if let [sender] = senders.as_slice() {
                for record in &chunk {
                    unhandled.given(0, record.offset);
                }
                drop(unhandled);
                // Fails only once the lane has ended.
                let _ = sender.send(chunk);
                continue;
            }
            let mut parts: Vec<Vec<Record>> = vec![Vec::new(); senders.len()];
            for record in chunk {
                let lane = spread.lane(&record);
                unhandled.given(lane, record.offset);
                parts[lane].push(record);
            }
            drop(unhandled);
            for (sender, part) in senders.iter().zip(parts) {
                if !part.is_empty() {
                    let _ = sender.send(part);
                }
            }
        }
        // The lanes finish what they were given.
        drop(senders);
    };
    let lanes = inputs.into_iter().enumerate().map(|(index, input)| {
        let lane = Lane {
            index,
            tp: &tp,
            held: &held,
            shared: &shared,
            ending: &ending,
            unhandled: &unhandled,
        };
        lane.run(batch::Input::new(input))
    });
    let ((), stops) = tokio::join!(give_out, futures::future::join_all(lanes));
    match stops.into_iter().flatten().next() {
        // A new owner, or a resume, starts at the lowest offset not handled
        // in any lane: the failed batch's first, or before it.
        Some((why, first)) => End::Stopped {
            why,
            at: lock(&unhandled).position().unwrap_or(first),
        },
        None => End::Finished,
    }
}

/// One lane of a partition (`lanes.rs`): its batches, one at a time.
struct Lane<'a> {
    index: usize,
    tp: &'a TopicPartition,
    held: &'a Held,
    shared: &'a Shared,
    ending: &'a CancellationToken,
    unhandled: &'a Mutex<Unhandled>,
}

impl Lane<'_> {
    /// Runs until the input closes, the partition ends, or a batch stops it
    /// (then with the reason and the failed batch's first offset).
    async fn run(self, mut input: batch::Input) -> Option<(Stop, i64)> {
        let (tp, shared) = (self.tp, self.shared);
        loop {
            let batch_settings = shared.live().batch;
            // At shutdown or revoke no new batch starts: what is queued stays
            // uncommitted, for the next owner.
            let next = tokio::select! {
                biased;
                () = self.ending.cancelled() => return None,
                () = shared.shutdown.cancelled() => return None,
                next = batch::next_batch(&mut input, &batch_settings) => next,
            };
            let (batch, reason) = next?;
            // The batch's bytes count against `source.buffer_mb` until it is
            // handled, however it ends.
            let _release = self.held.batch(&batch);
            let first_offset = batch.first().map_or(0, |r| r.offset);
            let count = batch.len();
            // Every log line of the batch's journey carries where it came from.
            let span = tracing::info_span!("batch", topic = %tp.0, partition = tp.1, first = first_offset, records = count, flush = reason.as_str());
            metrics::batch_flushed(reason.as_str(), count);
            // One snapshot of the runtime settings for the whole batch: a
            // `fcsink set` meanwhile applies from the next batch on, never to
            // half of this one's requests or retries.
            let live = shared.live();
            // A panic while handling the batch (a bug in fcsink or in a target)
            // stops this partition with the panic as its reason; the process
            // and the other partitions go on.
            let handled = std::panic::AssertUnwindSafe(handle_batch(batch, &live, shared))
                .catch_unwind()
                .instrument(span)
                .await
                .unwrap_or_else(|panic| {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(topic = %tp.0, partition = tp.1, panic = %message, "A batch's worker panicked");
                    BatchEnd::Stop(Stop::Panic(message))
                });
            match handled {
                BatchEnd::Handled => {
                    let position = lock(self.unhandled).handled(self.index, count);
                    if let Some(position) = position {
                        source::store(&shared.consumer, tp, position);
                    }
                }
                BatchEnd::Stop(why) => {
                    // The other lanes start no new batch.
                    self.ending.cancel();
                    return Some((why, first_offset));
                }
                BatchEnd::Abandoned => return None,
            }
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

/// transform → dead letters of failed records → invoke, holding a permit.
async fn handle_batch(batch: Vec<Record>, live: &Live, shared: &Shared) -> BatchEnd {
    let (permit, chain) = tokio::select! {
        biased;
        // A batch still waiting for its turn is not in flight yet.
        () = shared.shutdown.cancelled() => return BatchEnd::Abandoned,
        acquired = shared.chains.acquire() => acquired,
    };
    let started = Instant::now();
    let ran = tokio::task::spawn_blocking(move || {
        let mut chain = chain;
        let ran = chain.run_keeping(batch);
        (chain, ran)
    })
    .await;
    let transformed = match ran {
        Ok((chain, ran)) => {
            shared.chains.release(chain);
            ran
        }
        // A bug in the host's side of the transform, not in the plugin or
        // the records: the chain is lost (the pool makes a new one) and the
        // partition stops, its batch uncommitted.
        Err(panic) => {
            let message = format!("the transform of {} failed: {panic}", shared.chains.names());
            return BatchEnd::Stop(Stop::Panic(message));
        }
    };
    let outcome = transformed
        .as_ref()
        .map_or_else(|(err, _)| err.failure.code(), |_| "ok");
    metrics::transform_finished(started.elapsed(), outcome);
    let batch = match transformed {
        Ok(transformed) => InFlight::new(transformed),
        Err((err, batch)) => {
            drop(permit);
            return transform_failed(&batch, err, live, shared).await;
        }
    };
    metrics::records_filtered(batch.dropped());
    then!(dead_letter(&batch.plugin_failures(), shared).await);
    let end = invoke(&batch, live, shared).await;
    drop(permit);
    end
}

async fn transform_failed(
    batch: &[Record],
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
    fail(batch.iter().collect(), reason, live, shared).await
}

/// Sends every request of the batch in order; records that cannot be
/// delivered are dead-lettered or stop the partition.
async fn invoke(batch: &InFlight, live: &Live, shared: &Shared) -> BatchEnd {
    let max_bytes = live.batch.max_bytes;
    let (requests, too_large) = encode(batch, live, shared);
    if !too_large.is_empty() {
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
        then!(fail(batch.sources(&too_large), reason, live, shared).await);
    }
    let origin = batch.origin(shared.dead_letters.connector());
    for (index, (request, forwarded)) in requests.into_iter().enumerate() {
        let records = request.records.collect();
        let id = origin.as_ref().map(|origin| RequestId::new(origin, index));
        let sent = Sent { id, forwarded };
        then!(deliver(request.body.into(), sent, records, batch, live, shared).await);
    }
    BatchEnd::Handled
}

/// The batch's requests, each with the headers it forwards, and the outputs
/// too large to send. Records forwarding different headers never share a
/// request ([`Forward::runs`]); without `forward_headers` the batch is one run.
fn encode(
    batch: &InFlight,
    live: &Live,
    shared: &Shared,
) -> (Vec<(Request, Forwarded)>, Vec<usize>) {
    let (max_records, max_bytes) = (live.batch.max_records, live.batch.max_bytes);
    let outputs = batch.outputs();
    let (mut requests, mut too_large) = (Vec::new(), Vec::new());
    for (run, forwarded) in shared.forward.runs(outputs) {
        let start = run.start;
        let encoded = shared.format.encode(&outputs[run], max_records, max_bytes);
        too_large.extend(encoded.too_large.iter().map(|i| i + start));
        requests.extend(encoded.requests.into_iter().map(|request| {
            let records = request.records.start + start..request.records.end + start;
            (Request { records, ..request }, forwarded.clone())
        }));
    }
    (requests, too_large)
}

/// What every attempt of one encoded request carries besides its body.
struct Sent {
    /// The request's ID.
    id: Option<RequestId>,
    /// The record headers it forwards.
    forwarded: Forwarded,
}

/// Delivers one request carrying outputs `records` (`retry::deliver_records`):
/// records a synchronous function reports failed are sent again, a request
/// that keeps failing is split to find the records at fault, and what
/// still fails is dead-lettered or stops the partition. Every attempt of
/// the request carries `id`; a request re-encoded from some of its records
/// carries an ID of its own ([`RequestId::subset`]).
async fn deliver(
    body: bytes::Bytes,
    Sent { id, forwarded }: Sent,
    records: Vec<usize>,
    batch: &InFlight,
    live: &Live,
    shared: &Shared,
) -> BatchEnd {
    // Only an answer that ran the function can blame records, and only
    // dead letters let the records at fault go.
    let policy = RetryPolicy {
        bisect: live.retry.bisect
            && live.send_mode == SendMode::Sync
            && live.failure_policy == FailurePolicy::Continue,
        ..live.retry
    };
    let mut requests = Requests {
        first: Some(body),
        sending: id.clone(),
        root: id,
        forwarded,
        bodies: 0,
        batch,
        live,
        shared,
    };
    let delivered = retry::deliver_records(policy, &shared.shutdown, records, &mut requests).await;
    match delivered {
        Ok(Records::Settled { failed }) => {
            for failed in failed {
                tracing::error!(error = %failed.failure, attempts = failed.attempts, records = failed.records.len(), "Invocation failed");
                let reason = Reason {
                    stage: Stage::Invoke,
                    code: failed.failure.code,
                    message: failed.failure.message,
                    component: shared.target.describe(),
                    attempts: failed.attempts,
                    status: failed.failure.status,
                };
                then!(fail(batch.sources(&failed.records), reason, live, shared).await);
            }
            BatchEnd::Handled
        }
        Ok(Records::Cancelled) => BatchEnd::Abandoned,
        Ok(Records::TargetFailed { failure, attempts }) => {
            tracing::error!(error = %failure, attempts, "The target kept failing; stopping the partition");
            BatchEnd::Stop(Stop::Target(failure))
        }
        Err(err) => err.into(),
    }
}

/// The requests of one of a batch's encoded requests, for any subset of
/// its outputs.
struct Requests<'a> {
    /// The request as encoded, until it is first sent.
    first: Option<bytes::Bytes>,
    /// The encoded request's ID.
    root: Option<RequestId>,
    /// The ID of the body being sent (and retried).
    sending: Option<RequestId>,
    /// The headers every body of the request forwards (its records share them).
    forwarded: Forwarded,
    /// Bodies re-encoded from some of the records so far.
    bodies: u32,
    batch: &'a InFlight,
    live: &'a Live,
    shared: &'a Shared,
}

impl retry::Requests for Requests<'_> {
    type Error = produce::Error;

    fn body(&mut self, records: &[usize]) -> bytes::Bytes {
        // A part of the request, or a resend of the records an answer
        // failed, fits in one request.
        if let Some(first) = self.first.take() {
            return first;
        }
        // A new request, not a retry: a function deduplicating on the
        // root's ID would drop it.
        self.bodies = self.bodies.saturating_add(1);
        self.sending = self
            .root
            .as_ref()
            .map(|root| root.subset(self.bodies, records));
        {
            let subset = self.batch.subset(records);
            let (max_records, max_bytes) = (self.live.batch.max_records, self.live.batch.max_bytes);
            let encoded = self.shared.format.encode(&subset, max_records, max_bytes);
            debug_assert_eq!(encoded.requests.len(), 1);
            encoded
                .requests
                .into_iter()
                .next()
                .map(|r| r.body.into())
                .unwrap_or_default()
        }
    }

    async fn send(&self, body: bytes::Bytes) -> Verdict {
        let shared = self.shared;
        let attempt = || async {
            // A place among the requests in flight, then the budget's turn.
            let turn = async {
                let place = shared.requests.acquire().await;
                shared.rate.acquire().await;
                place
            };
            let _place = tokio::select! {
                place = turn => place,
                () = shared.shutdown.cancelled() => {
                    return Verdict::unsent("shutdown", "shutdown began before the request's turn");
                }
            };
            let started = Instant::now();
            let request = Outgoing {
                body: body.clone(),
                mode: self.live.send_mode,
                id: self.sending.clone(),
                forwarded: self.forwarded.clone(),
            };
            let verdict = shared.target.send(request).await;
            metrics::invoke_attempt(&verdict, started.elapsed());
            shared.requests.answered(verdict.is_throttling());
            verdict
        };
        shared.breaker.send(&shared.shutdown, attempt).await
    }

    async fn settle(
        &mut self,
        records: Vec<usize>,
        response: Response,
    ) -> Result<Settled, produce::Error> {
        let sync = self.live.send_mode == SendMode::Sync;
        let settled = if sync {
            self.batch.settle(&response.body, &records)
        } else {
            Settled::default()
        };
        let delivered = self.batch.delivered(&records, &settled.failed);
        metrics::records_delivered(delivered.len());
        if sync && !delivered.is_empty() {
            let shared = self.shared;
            shared
                .results
                .success(&delivered, &response.body, &shared.shutdown)
                .await?;
        }
        Ok(settled)
    }

    fn age(&self, record: usize) -> Option<Duration> {
        let timestamp = self.batch.source_of(record).timestamp;
        let timestamp = UNIX_EPOCH + Duration::from_millis(u64::try_from(timestamp).ok()?);
        SystemTime::now().duration_since(timestamp).ok()
    }
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
    if entries.is_empty() {
        return BatchEnd::Handled;
    }
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
