//! `fcsink status`: the live instances (from the status topic), the runtime
//! overrides (from the config topic), and per partition the group's
//! committed offset, the end offset and the lag (from the broker).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::topic_partition_list::TopicPartitionList;
use serde::Serialize;

use crate::config::{Settings, Topics};
use crate::fleet::config_topic::{Entry, Feed};
use crate::fleet::status_topic::{self, InstanceStatus};
use crate::source::METADATA_TIMEOUT;

/// What `fcsink status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The connector's name.
    pub connector: String,
    /// Its consumer group.
    pub group: String,
    /// Instances that published their state recently.
    pub instances: Vec<InstanceStatus>,
    /// Settings changed at runtime (`fcsink set`, `pause`).
    pub overrides: BTreeMap<String, String>,
    /// Every partition of the source topics.
    pub partitions: Vec<PartitionReport>,
    /// The sum of the partitions' lag.
    pub total_lag: i64,
}

/// One source partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The end offset (high watermark).
    pub end: i64,
    /// Records not yet handled: end minus committed (or minus the start of the log).
    pub lag: i64,
    /// The instance it is assigned to.
    pub instance: Option<String>,
    /// `running`, `paused`, `failed` or `unassigned`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Reads the connector's state from Kafka.
///
/// # Errors
/// When the broker does not answer or the control topics are missing.
pub async fn collect(settings: &Settings) -> anyhow::Result<Report> {
    let client = super::client_config(settings);
    let instances = status_topic::read(&client, &settings.status_topic())
        .await
        .with_context(|| format!("cannot read {}", settings.status_topic()))?;
    let (_, entries) = Feed::open(&client, &settings.config_topic())
        .await
        .with_context(|| format!("cannot read {}", settings.config_topic()))?;
    let mut overrides = BTreeMap::new();
    for entry in entries {
        if let Entry::Setting { key, value } = entry {
            match value {
                Some(value) => overrides.insert(key, value),
                None => overrides.remove(&key),
            };
        }
    }
    let topics: Vec<String> = match &settings.source.topics {
        Topics::List(list) => list.clone(),
        // Without a regex engine here, a regex connector shows the topics its instances own.
        Topics::Regex(_) => {
            let mut seen: Vec<String> = instances
                .iter()
                .flat_map(|i| i.partitions.iter().map(|p| p.topic.clone()))
                .collect();
            seen.sort();
            seen.dedup();
            seen
        }
    };
    let mut group = client.clone();
    group
        .set("group.id", settings.group_id())
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = group.create().context("cannot create a Kafka client")?;
    let offsets = tokio::task::spawn_blocking(move || offsets(&consumer, &topics)).await??;
    let mut partitions = Vec::new();
    for ((topic, partition), (low, end, committed)) in offsets {
        let owner = instances.iter().find_map(|i| {
            i.partitions
                .iter()
                .find(|p| p.topic == topic && p.partition == partition)
                .map(|p| (i.id.clone(), p.state.clone(), p.error.clone()))
        });
        let (instance, state, error) = match owner {
            Some((id, state, error)) => (Some(id), state, error),
            None => (None, "unassigned".to_string(), None),
        };
        partitions.push(PartitionReport {
            lag: (end - committed.unwrap_or(low)).max(0),
            topic,
            partition,
            committed,
            end,
            instance,
            state,
            error,
        });
    }
    Ok(Report {
        connector: settings.name.clone(),
        group: settings.group_id(),
        total_lag: partitions.iter().map(|p| p.lag).sum(),
        instances,
        overrides,
        partitions,
    })
}

/// Per partition: low watermark, end offset, committed offset.
type Offsets = BTreeMap<(String, i32), (i64, i64, Option<i64>)>;

fn offsets(consumer: &BaseConsumer, topics: &[String]) -> anyhow::Result<Offsets> {
    let mut list = TopicPartitionList::new();
    let mut found = BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), METADATA_TIMEOUT)?;
            found.insert((topic.clone(), partition.id()), (low, high, None));
            list.add_partition(topic, partition.id());
        }
    }
    for element in consumer
        .committed_offsets(list, METADATA_TIMEOUT)?
        .elements()
    {
        if let (Offset::Offset(o), Some(entry)) = (
            element.offset(),
            found.get_mut(&(element.topic().to_string(), element.partition())),
        ) {
            entry.2 = Some(o);
        }
    }
    Ok(found)
}

impl Report {
    /// Plain-text tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let now = crate::fleet::now_ms();
        let _ = writeln!(out, "Connector {} (group {})\n", self.connector, self.group);
        let _ = writeln!(out, "Instances: {}", self.instances.len());
        for i in &self.instances {
            let age = now.saturating_sub(i.updated_ms) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "  {}  {}  {} partition(s)  {} batch(es) in flight at most  consumed {} delivered {} filtered {} dead-lettered {}  (seen {age:.1}s ago)",
                i.id,
                i.state,
                i.partitions.len(),
                i.concurrency_limit,
                i.totals.consumed,
                i.totals.delivered,
                i.totals.filtered,
                i.totals.dead_lettered
            );
            if i.circuit_open {
                let _ = writeln!(
                    out,
                    "    circuit breaker open: the target is down; one probe per interval"
                );
            }
            if let Some(error) = &i.last_error {
                let _ = writeln!(out, "    last error: {error}");
            }
        }
        if !self.overrides.is_empty() {
            let _ = writeln!(out, "\nRuntime settings (fcsink set):");
            for (key, value) in &self.overrides {
                let _ = writeln!(out, "  {key} = {value}");
            }
        }
        let _ = writeln!(
            out,
            "\n{:<30} {:>9} {:>12} {:>12} {:>10}  {:<10} instance",
            "topic", "partition", "committed", "end", "lag", "state"
        );
        for p in &self.partitions {
            let committed = p.committed.map_or("-".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "{:<30} {:>9} {:>12} {:>12} {:>10}  {:<10} {}",
                p.topic,
                p.partition,
                committed,
                p.end,
                p.lag,
                p.state,
                p.instance.as_deref().unwrap_or("-")
            );
            if let Some(error) = &p.error {
                let _ = writeln!(out, "    {error}");
            }
        }
        let _ = writeln!(out, "\nTotal lag: {}", self.total_lag);
        out
    }
}
