//! The compacted `connect-status-<name>` topic: each instance's state as
//! JSON, keyed by instance id, published on change and every
//! `operations.status_interval_ms`. A clean shutdown writes a tombstone; a
//! killed instance stops publishing and readers drop it once it has been
//! silent for [`STALE_INTERVALS`] of its own intervals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;

use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Totals};
use crate::source::{METADATA_TIMEOUT, TopicPartition};

/// Missed intervals after which an instance counts as gone.
pub const STALE_INTERVALS: u64 = 3;

/// One instance as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// `<host>-<pid>-<random>`, unique per process.
    pub id: String,
    /// The machine.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// fcsink's version.
    pub version: String,
    /// When the process started (ms since the epoch).
    pub started_ms: u64,
    /// When this state was published.
    pub updated_ms: u64,
    /// How often the instance publishes.
    pub interval_ms: u64,
    /// `running`, `paused` or `stopping`.
    pub state: String,
    /// The partitions assigned to the instance.
    pub partitions: Vec<PartitionStatus>,
    /// The runtime settings in force.
    pub settings: BTreeMap<String, String>,
    /// The last error that stopped a partition.
    pub last_error: Option<String>,
    /// Record counters since the process started.
    pub totals: Totals,
    /// Requests allowed in flight now: `source.concurrency`, or fewer
    /// while the target throttles.
    #[serde(default)]
    pub concurrency_limit: u64,
    /// The circuit breaker holds requests: the target is down.
    #[serde(default)]
    pub circuit_open: bool,
}

impl InstanceStatus {
    /// Whether the instance has been silent for too long at `now_ms`.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.updated_ms)
            > self.interval_ms.max(1).saturating_mul(STALE_INTERVALS)
    }
}

/// One assigned partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// The source topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// `running`, `paused` (the connector is paused) or `failed` (stopped by the
    /// failure policy, or because Kafka refused a dead letter or result for good).
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// The instance's state, kept current by the dispatcher and published by [`publish`].
pub struct Board {
    status: Mutex<InstanceStatus>,
    changed: Notify,
}

impl Board {
    /// A board for this process.
    pub fn new(interval: Duration) -> Arc<Board> {
        let host = hostname();
        let pid = std::process::id();
        let now = super::now_ms();
        Arc::new(Board {
            status: Mutex::new(InstanceStatus {
                id: format!("{host}-{pid}-{:04x}", rand::random::<u16>()),
                host,
                pid,
                version: env!("CARGO_PKG_VERSION").into(),
                started_ms: now,
                updated_ms: now,
                interval_ms: interval.as_millis() as u64,
                state: "running".into(),
                partitions: Vec::new(),
                settings: BTreeMap::new(),
                last_error: None,
                totals: Totals::default(),
                concurrency_limit: 0,
                circuit_open: false,
            }),
            changed: Notify::new(),
        })
    }

    /// The state; a panic elsewhere while it was held leaves it usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, InstanceStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The instance id.
    pub fn id(&self) -> String {
        self.lock().id.clone()
    }

    /// Changes the state and asks for it to be published.
    pub fn update(&self, change: impl FnOnce(&mut InstanceStatus)) {
        change(&mut self.lock());
        self.changed.notify_one();
    }

    /// Replaces the partition list: assigned partitions with their state.
    pub fn set_partitions(
        &self,
        partitions: impl IntoIterator<Item = (TopicPartition, &'static str, Option<String>)>,
    ) {
        let mut list: Vec<PartitionStatus> = partitions
            .into_iter()
            .map(|((topic, partition), state, error)| PartitionStatus {
                topic,
                partition,
                state: state.into(),
                error,
            })
            .collect();
        list.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        self.update(|status| status.partitions = list);
    }

    fn snapshot(&self) -> InstanceStatus {
        let mut status = self.lock().clone();
        status.updated_ms = super::now_ms();
        status.totals = metrics::totals();
        status.concurrency_limit = metrics::current_concurrency_limit();
        status.circuit_open = metrics::current_circuit_open();
        status
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Publishes the board on change (at most every 200 ms) and every interval
/// until `shutdown`, then writes a tombstone so the instance leaves the list at once.
pub async fn publish(
    board: Arc<Board>,
    producer: FutureProducer,
    topic: String,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let id = board.id();
    let mut last = Instant::now() - interval;
    loop {
        let status = board.snapshot();
        match serde_json::to_string(&status) {
            Ok(json) => {
                let record = FutureRecord::to(&topic)
                    .key(&id)
                    .partition(0)
                    .payload(&json);
                if let Err((err, _)) = producer.send(record, METADATA_TIMEOUT).await {
                    tracing::warn!(%err, topic, "Cannot publish the instance status");
                }
            }
            Err(err) => tracing::warn!(%err, "Cannot encode the instance status"),
        }
        last = last.max(Instant::now());
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = board.changed.notified() => {
                // Coalesce bursts of changes (a rebalance touches every partition).
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            () = tokio::time::sleep_until((last + interval).into()) => {}
        }
        last = Instant::now();
    }
    let record: FutureRecord<'_, String, [u8]> = FutureRecord::to(&topic).key(&id).partition(0);
    if let Err((err, _)) = producer.send(record, METADATA_TIMEOUT).await {
        tracing::debug!(%err, "Cannot remove the instance status");
    }
}

/// Every instance in the status topic that is not stale, by id.
///
/// # Errors
/// When the topic cannot be read.
pub async fn read(client: &ClientConfig, topic: &str) -> anyhow::Result<Vec<InstanceStatus>> {
    let (consumer, end) = crate::kafka::compacted::reader(client, topic).await?;
    let mut latest: BTreeMap<String, Option<InstanceStatus>> = BTreeMap::new();
    crate::kafka::compacted::read_to_end(&consumer, topic, end, |message| {
        let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return;
        };
        let status = message
            .payload()
            .and_then(|v| serde_json::from_slice::<InstanceStatus>(v).ok());
        latest.insert(key.to_string(), status);
    })
    .await?;
    let now = super::now_ms();
    Ok(latest
        .into_values()
        .flatten()
        .filter(|s| !s.is_stale(now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing the status topic: any instance may publish any
    /// interval, and three times a huge one overflowed (a panic in debug
    /// builds, a wrong answer in release ones).
    #[test]
    fn a_huge_interval_never_overflows_and_is_never_stale() {
        let json = r#"{"id":"a","host":"h","pid":1,"version":"v","started_ms":0,"updated_ms":0,
            "interval_ms":18446744073709551615,"state":"running","partitions":[],"settings":{},
            "last_error":null,"totals":{"consumed":0,"filtered":0,"delivered":0,"dead_lettered":0}}"#;
        let status: InstanceStatus = serde_json::from_str(json).unwrap();
        assert!(!status.is_stale(u64::MAX));
        assert!(!status.is_stale(0));
    }
}
