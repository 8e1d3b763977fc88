//! The wiring: source → batch → transform → invoke → retry → dead letter → commit.
//!
//! [`run`] resolves everything that can fail before consuming anything
//! (plugins, credentials, topics), then runs the dispatcher: one consumer
//! whose records are routed to a worker per partition (`worker.rs`), so
//! records of a partition stay in order while partitions run in parallel.
//!
//! Drain order at shutdown: stop polling Kafka → close every worker's input
//! → workers finish their in-flight batch (transform, invoke, dead letter;
//! retry waits are cut short and such batches are abandoned uncommitted) →
//! store their offsets → commit synchronously → leave the group → remove the
//! instance from the status topic and stop serving `/metrics`.
//!
//! The control plane's side of the dispatcher (pause, resume, runtime
//! settings, the published state) is in `pipeline/orders.rs`.

pub(crate) mod budget;
mod orders;
mod partitions;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use rdkafka::message::Message as _;
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::breaker::Breaker;
use crate::config::Settings;
use crate::dlq::DeadLetters;
use crate::fleet::{self, Live};
use crate::invoke::{self, Target};
use crate::kafka;
use crate::metrics;
use crate::produce::{Producers, Role};
use crate::rate_limit::{RateLimit, Share};
use crate::results::Results;
use crate::source::{self, Assignment, Consumer, TopicPartition};
use crate::transform::{PluginSpec, Record, Runtime};
use crate::worker::{self, ChainPool, End, RequestLimit, Shared, Stop};
use budget::{Held, Limits, Total};
use partitions::{Partitions, Pause, State};

/// The most records routed from one poll before the workers get them.
const BURST: usize = 1024;

/// How often paused partitions are checked for room to resume.
const RESUME_CHECK: Duration = Duration::from_millis(20);

/// Loads the plugins of `settings` (the built-in `passthrough` when none).
///
/// # Errors
/// The first plugin that cannot be loaded or refuses its configuration.
pub fn load_plugins(
    settings: &Settings,
) -> anyhow::Result<(Runtime, Vec<Arc<crate::transform::Plugin>>)> {
    let runtime = Runtime::new(settings.sandbox.limits, settings.sandbox.cache_dir.clone())?;
    let specs = if settings.transforms.is_empty() {
        vec![PluginSpec::resolve("passthrough", Vec::new())]
    } else {
        settings.transforms.clone()
    };
    let plugins = specs
        .iter()
        .map(|spec| runtime.load(spec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((runtime, plugins))
}

/// Runs the connector until `shutdown` resolves, then drains and commits.
///
/// # Errors
/// Anything that prevents starting: a plugin, credentials, the broker.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let target = invoke::from_settings(&settings.target).context("cannot set up the target")?;
    run_with_target(settings, target, shutdown).await
}

/// [`run`] with a target built by the caller (tests use their own credentials).
///
/// # Errors
/// Anything that prevents starting: a plugin, the broker.
pub async fn run_with_target(
    settings: Settings,
    target: Box<dyn Target>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (_runtime, plugins) = load_plugins(&settings)?;

    let kafka_config = source::client_config(&settings);
    kafka::reach::reach(&kafka::producer_config(&kafka_config)).await?;
    let mut created = Vec::new();
    if settings.delivery.create_topics {
        let topics = settings.delivery.output_topics();
        created = kafka::topics::ensure(&kafka::producer_config(&kafka_config), &topics)
            .await
            .context("cannot prepare the dead-letter and result topics")?;
    }
    let producer: FutureProducer = kafka::producer_config(&kafka_config)
        .create()
        .context("cannot create the Kafka producer")?;
    // Ends the control plane's tasks and the endpoints after the drain.
    let operations = CancellationToken::new();
    let (control, handles) = fleet::start(
        &settings,
        &kafka::producer_config(&kafka_config),
        &producer,
        created,
        operations.clone(),
    )
    .await?;
    let endpoint = match settings.operations.listen {
        Some(addr) => {
            let (bound, task) =
                metrics::http::serve(addr, handles.readiness.clone(), operations.clone()).await?;
            tracing::info!(%bound, "Serving /metrics, /healthz and /readyz");
            Some(task)
        }
        None => None,
    };
    kafka::offsets::start(&settings).await?;
    let share = Arc::new(Share::default());
    let (consumer, assignments) =
        source::subscribe(&settings, share.clone()).context("cannot subscribe")?;
    let consumer = Arc::new(consumer);
    let live: Live = *handles.live.borrow();
    let producers = Producers::new(
        producer.clone(),
        kafka::producer_config(&kafka_config),
        settings.delivery.create_topics,
    );

    let shared = Arc::new(Shared {
        consumer: consumer.clone(),
        live: handles.live.clone(),
        chains: ChainPool::new(plugins.clone(), live.concurrency),
        requests: RequestLimit::new(live.concurrency, settings.delivery.adaptive_concurrency),
        order: settings.source.ordering,
        target,
        breaker: Breaker::new(settings.delivery.breaker, Some(handles.readiness.clone())),
        rate: RateLimit::new(settings.delivery.max_requests_per_second, share),
        format: settings.format.clone(),
        forward: crate::invoke::forward::Forward::new(&settings.forward_headers),
        dead_letters: DeadLetters::new(
            producers.writer(
                settings.delivery.dead_letter_topic.clone(),
                Role::DeadLetter,
            ),
            settings.name.clone(),
        ),
        results: Results::new(
            &producers,
            settings.delivery.success_topic.clone(),
            settings.delivery.error_topic.clone(),
        ),
        shutdown: CancellationToken::new(),
    });
    tracing::info!(
        connector = %settings.name,
        group = %settings.group_id(),
        target = %shared.target.describe(),
        format = shared.format.name(),
        forward_headers = ?settings.forward_headers,
        plugins = ?plugins.iter().map(|p| p.name().to_string()).collect::<Vec<_>>(),
        "Started"
    );

    // `--until-end` stops the run like a signal once the replay is done.
    let replayed = CancellationToken::new();
    if settings.operations.until_end {
        tokio::spawn(crate::progress::until_end(
            consumer.clone(),
            settings.clone(),
            replayed.clone(),
        ));
    }
    let shutdown = async {
        tokio::select! {
            () = shutdown => {}
            () = replayed.cancelled() => tracing::info!("Reached the end offsets present at start; stopping"),
        }
    };

    let readiness = handles.readiness.clone();
    // The rest of `source.buffer_mb` is librdkafka's prefetch (see `source`).
    let budget = settings.source.buffer_bytes / 4 * 3;
    let mut dispatcher = Dispatcher::new(
        shared.clone(),
        Limits {
            budget,
            share: budget,
            min_records: 2 * settings.batch.max_records,
            min_bytes: 2 * settings.batch.max_bytes,
        },
        handles,
    );
    dispatcher.run(&consumer, assignments, shutdown).await;

    // Drain: no new batch starts and retry waits are cut short; the batches
    // in flight finish within the grace.
    readiness.set(false);
    dispatcher
        .board
        .update(|status| status.state = "stopping".into());
    shared.shutdown.cancel();
    let grace = settings.operations.shutdown_grace;
    if tokio::time::timeout(grace, dispatcher.close())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "Batches still in flight after operations.shutdown_grace_ms; leaving them uncommitted for the next owner"
        );
    }
    drop(shared);
    kafka::close(consumer, producer).await;
    operations.cancel();
    control.stopped().await;
    if let Some(endpoint) = endpoint {
        let _ = endpoint.await;
    }
    tracing::info!("Stopped");
    Ok(())
}

/// A partition's worker as the dispatcher sees it.
struct Worker {
    /// Tells this worker's end from that of an earlier worker of the same
    /// partition (revoked, then assigned back).
    id: u64,
    input: mpsc::UnboundedSender<Vec<Record>>,
    /// Records routed to it and not yet handed over (`Dispatcher::hand_over`).
    pending: Vec<Record>,
    /// What the partition holds (queued, batched, in flight); bounded by
    /// pausing the partition.
    held: Held,
    revoked: CancellationToken,
    handle: JoinHandle<()>,
}

/// Routes records to per-partition workers, with backpressure by pausing.
struct Dispatcher {
    shared: Arc<Shared>,
    /// The bytes every partition holds together, bounded by
    /// `limits.budget` (three quarters of `source.buffer_mb`).
    total: Arc<Total>,
    /// The budget and the floors of every partition's limits (two batches,
    /// two requests); the share is the budget over the partitions. A
    /// partition is paused when it is full and resumed once it has drained
    /// (see [`Limits`]). Pausing makes librdkafka drop what it prefetched
    /// for the partition and fetch it again, a fetch that can wait behind
    /// one the broker holds for `fetch.wait.max.ms`; holding less than two
    /// batches would pause on almost every fetch and leave the worker idle
    /// meanwhile.
    floors: Limits,
    /// The partition count last warned about as too many for the budget.
    warned_for: usize,
    /// The assigned partitions' states: fetching, behind, stopped.
    states: Partitions,
    /// The workers of assigned partitions that have had records.
    workers: HashMap<TopicPartition, Worker>,
    /// Partitions with records routed and not yet handed over.
    routed: Vec<TopicPartition>,
    /// The last worker id given.
    last_worker: u64,
    /// Workers of revoked partitions that are finishing their batch.
    finishing: HashMap<TopicPartition, JoinHandle<()>>,
    ends: mpsc::UnboundedSender<(TopicPartition, u64, End)>,
    ended: mpsc::UnboundedReceiver<(TopicPartition, u64, End)>,
    /// The runtime settings last applied.
    current: Live,
    live: tokio::sync::watch::Receiver<Live>,
    resumes: mpsc::UnboundedReceiver<fleet::ResumeRequest>,
    board: Arc<fleet::Board>,
    readiness: Arc<metrics::http::Readiness>,
    /// This connector's number among those of the process, for its metrics.
    metrics_id: u64,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>, floors: Limits, handles: fleet::Handles) -> Self {
        let (ends, ended) = mpsc::unbounded_channel();
        let current = *handles.live.borrow();
        handles
            .board
            .update(|status| status.settings = current.describe());
        let mut states = Partitions::default();
        states.set_fleet_paused(current.paused);
        Dispatcher {
            states,
            current,
            live: handles.live,
            resumes: handles.resumes,
            board: handles.board,
            readiness: handles.readiness,
            metrics_id: metrics::connector_started(),
            shared,
            total: Arc::new(Total::default()),
            floors,
            warned_for: 0,
            workers: HashMap::new(),
            routed: Vec::new(),
            last_worker: 0,
            finishing: HashMap::new(),
            ends,
            ended,
        }
    }

    async fn run(
        &mut self,
        consumer: &Consumer,
        mut assignments: mpsc::UnboundedReceiver<Assignment>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut resume_check = tokio::time::interval(RESUME_CHECK);
        resume_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                Some(event) = assignments.recv() => self.on_assignment(consumer, event),
                Some((tp, id, end)) = self.ended.recv() => self.on_end(consumer, tp, id, end),
                Ok(()) = self.live.changed() => self.on_live(consumer),
                Some(request) = self.resumes.recv() => self.on_resume(consumer, &request),
                message = consumer.recv() => match message {
                    Ok(message) => {
                        self.on_message(consumer, &mut assignments, &message);
                        drop(message);
                        // What librdkafka already holds goes with it, so each
                        // worker wakes once per poll, not once per record.
                        let mut routed = 1;
                        while routed < BURST {
                            match consumer.recv().now_or_never() {
                                Some(Ok(message)) => {
                                    self.on_message(consumer, &mut assignments, &message);
                                    routed += 1;
                                }
                                Some(Err(err)) => {
                                    tracing::warn!(%err, "Kafka consumer error");
                                    break;
                                }
                                None => break,
                            }
                        }
                        metrics::records_consumed(routed);
                        self.hand_over();
                    }
                    Err(err) => {
                        tracing::warn!(%err, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = resume_check.tick() => self.resume_drained(consumer),
            }
        }
    }

    /// Routes one consumed record, after the rebalance events that came
    /// before it (rebalance callbacks run inside `recv`).
    fn on_message(
        &mut self,
        consumer: &Consumer,
        assignments: &mut mpsc::UnboundedReceiver<Assignment>,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) {
        while let Ok(event) = assignments.try_recv() {
            self.on_assignment(consumer, event);
        }
        let record = source::to_record(message);
        let tp = (message.topic().to_string(), message.partition());
        self.route(consumer, tp, record);
    }

    /// Gives every worker the records routed to it since the last call.
    fn hand_over(&mut self) {
        for tp in self.routed.drain(..) {
            if let Some(worker) = self.workers.get_mut(&tp)
                && !worker.pending.is_empty()
            {
                // Fails only when the worker has ended (stopped); the records are not stored.
                let _ = worker.input.send(std::mem::take(&mut worker.pending));
            }
        }
    }

    fn route(&mut self, consumer: &Consumer, tp: TopicPartition, record: Record) {
        match self.states.state(&tp) {
            Some(State::Fetching | State::Behind) => {}
            // Not stored: it is consumed again once the partition is resumed.
            Some(State::Stopped { .. }) => return,
            // librdkafka hands out records of assigned partitions only, so
            // the assignment event is late: never drop what it fetched.
            None => {
                tracing::debug!(topic = %tp.0, partition = tp.1, "A record before its assignment event");
                let pauses = self.states.assign(std::slice::from_ref(&tp));
                apply(consumer, pauses);
            }
        }
        let limits = self.limits();
        let worker = match self.workers.get_mut(&tp) {
            Some(worker) => worker,
            None => {
                let worker = self.spawn(tp.clone());
                self.workers.entry(tp.clone()).or_insert(worker)
            }
        };
        let size = worker.held.add(&record);
        if worker.pending.is_empty() {
            self.routed.push(tp.clone());
        }
        worker.pending.push(record);
        let total = self.total.bytes();
        if total > limits.budget {
            // Over the budget: every partition waits, not only this one.
            let pauses: Vec<Pause> = self
                .states
                .fetching_ones()
                .iter()
                .filter_map(|tp| self.states.behind(tp))
                .collect();
            if !pauses.is_empty() {
                tracing::debug!(
                    total,
                    budget = limits.budget,
                    "Over source.buffer_mb; pausing every partition"
                );
                apply(consumer, pauses);
            }
        } else if limits.full(size, total)
            && let Some(pause) = self.states.behind(&tp)
        {
            tracing::debug!(topic = %tp.0, partition = tp.1, bytes = size.bytes, records = size.records, "Worker behind; pausing the partition");
            apply(consumer, [pause]);
        }
    }

    fn spawn(&mut self, tp: TopicPartition) -> Worker {
        let (input, receiver) = mpsc::unbounded_channel();
        let held = Held::new(self.total.clone());
        let worker_held = held.clone();
        let revoked = CancellationToken::new();
        let previous = self.finishing.remove(&tp);
        let shared = self.shared.clone();
        let ends = self.ends.clone();
        let worker_revoked = revoked.clone();
        self.last_worker += 1;
        let id = self.last_worker;
        let handle = tokio::spawn(async move {
            // A re-assigned partition waits for its previous worker, so
            // batches of one partition never overlap.
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let end = worker::run(tp.clone(), receiver, worker_held, shared, worker_revoked).await;
            let _ = ends.send((tp, id, end));
        });
        Worker {
            id,
            input,
            pending: Vec::new(),
            held,
            revoked,
            handle,
        }
    }

    /// When a partition is full, now that the budget is shared by this
    /// many partitions.
    fn limits(&self) -> Limits {
        Limits {
            share: self.floors.budget / self.workers.len().max(1),
            ..self.floors
        }
    }

    /// Resumes paused partitions whose backlog has drained.
    fn resume_drained(&mut self, consumer: &Consumer) {
        let limits = self.limits();
        let total = self.total.bytes();
        for tp in self.states.behind_ones() {
            let drained = self
                .workers
                .get(&tp)
                .is_none_or(|worker| limits.drained(worker.held.size(), total));
            if drained && let Some(pause) = self.states.caught_up(&tp) {
                tracing::debug!(topic = %tp.0, partition = tp.1, "Worker caught up; resuming the partition");
                apply(consumer, [pause]);
            }
        }
    }

    /// Says once per partition count when `source.buffer_mb` cannot give
    /// every assigned partition two requests' worth: they then take turns.
    fn warn_if_budget_too_small(&mut self) {
        let partitions = self.states.iter().count();
        if partitions > self.warned_for && !self.floors.fits(partitions) {
            self.warned_for = partitions;
            let needed_mb = (partitions.saturating_mul(self.floors.min_bytes) / 3 * 4) >> 20;
            tracing::warn!(
                partitions,
                needed_mb = needed_mb + 1,
                "source.buffer_mb is too small to give each assigned partition two requests' worth (2 x batch.max_request_bytes); partitions will take turns. Raise source.buffer_mb or lower batch.max_request_bytes"
            );
        }
    }

    fn on_assignment(&mut self, consumer: &Consumer, event: Assignment) {
        match event {
            Assignment::Assigned(list) => {
                tracing::info!(partitions = ?list, "Partitions assigned");
                let pauses = self.states.assign(&list);
                apply(consumer, pauses);
                self.warn_if_budget_too_small();
                self.readiness.set(true);
                self.publish_partitions();
            }
            Assignment::Revoked(list) => {
                tracing::info!(partitions = ?list, "Partitions revoked");
                self.states.revoke(&list);
                self.publish_partitions();
                for tp in list {
                    if let Some(worker) = self.workers.remove(&tp) {
                        worker.revoked.cancel();
                        self.finishing.insert(tp, worker.handle);
                    }
                }
            }
        }
    }

    fn on_end(&mut self, consumer: &Consumer, tp: TopicPartition, id: u64, end: End) {
        let End::Stopped { why, at } = end else {
            return;
        };
        // A worker of an earlier assignment: its partition was revoked, and
        // whoever owns it now decides about it.
        if self.workers.get(&tp).is_none_or(|worker| worker.id != id) {
            tracing::info!(topic = %tp.0, partition = tp.1, reason = %why, "A revoked partition's last batch failed; its next owner retries it");
            return;
        }
        self.workers.remove(&tp);
        match &why {
            Stop::Policy(_) => {
                tracing::error!(topic = %tp.0, partition = tp.1, reason = %why, "Partition stopped by failure_policy = \"stop\"; the others go on")
            }
            Stop::Refused(_) => {
                tracing::error!(topic = %tp.0, partition = tp.1, reason = %why, "Partition stopped: Kafka refused a write for good; its batch is not committed, the others go on")
            }
            Stop::Target(_) => {
                tracing::error!(topic = %tp.0, partition = tp.1, reason = %why, "Partition stopped: the target kept failing; its batch is not committed or dead-lettered")
            }
            Stop::Panic(_) => {
                tracing::error!(topic = %tp.0, partition = tp.1, reason = %why, "Partition stopped: its worker panicked; its batch is not committed, the others go on")
            }
        }
        if let Some(pause) = self.states.stop(&tp, why, at) {
            apply(consumer, [pause]);
        }
        self.publish_partitions();
    }

    /// Closes every worker's input and waits for all of them.
    async fn close(self) {
        metrics::connector_stopped(self.metrics_id);
        let mut handles: Vec<JoinHandle<()>> = self.finishing.into_values().collect();
        for (_, worker) in self.workers {
            drop(worker.input);
            handles.push(worker.handle);
        }
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// Sets librdkafka's pause flags to what the partitions' states say.
fn apply(consumer: &Consumer, pauses: impl IntoIterator<Item = Pause>) {
    for (tp, paused) in pauses {
        source::set_paused(consumer, &tp, paused);
    }
}
