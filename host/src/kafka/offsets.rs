//! The group's offsets from outside the group: read the committed offset
//! and the watermarks of every source partition, find the offset of a
//! point in time (offsets-for-times, AWS's `AT_TIMESTAMP`), and commit new
//! offsets for a group with no active member. Used once at start for
//! `source.start_from = <time>` ([`start`]) and by `fcsink reset-offsets`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{Settings, StartFrom, Topics};
use crate::source::{METADATA_TIMEOUT, TopicPartition};

/// One partition of the source topics as the group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The first offset still in the log (low watermark).
    pub low: i64,
    /// The end offset (high watermark): the next record's offset.
    pub high: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
}

/// A client in the connector's group that never joins it: it reads and
/// commits offsets as an administrator would.
///
/// # Errors
/// When librdkafka refuses the configuration.
pub fn outsider(settings: &Settings) -> anyhow::Result<BaseConsumer> {
    let mut config = crate::ops::client_config(settings);
    config
        .set("group.id", settings.group_id())
        .set("enable.auto.commit", "false");
    config.create().context("cannot create a Kafka client")
}

/// The partitions of the source topics (a regex matched against the
/// cluster's topics) with their watermarks and committed offsets.
/// Blocking.
///
/// # Errors
/// When the broker does not answer.
pub fn positions(
    consumer: &BaseConsumer,
    topics: &Topics,
) -> anyhow::Result<BTreeMap<TopicPartition, Position>> {
    let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
    let regex = match topics {
        Topics::List(_) => None,
        Topics::Regex(pattern) => Some(
            regex_automata::meta::Regex::new(pattern)
                .with_context(|| format!("source.topic_regex {pattern:?}"))?,
        ),
    };
    // librdkafka uses POSIX extended syntax; the patterns people write
    // (`^orders-.*`, `^(a|b)$`) mean the same in both.
    let wanted = |name: &str| match (topics, &regex) {
        (Topics::List(list), _) => list.iter().any(|t| t == name),
        (Topics::Regex(_), Some(regex)) => regex.is_match(name),
        (Topics::Regex(_), None) => false,
    };
    let mut found = BTreeMap::new();
    for topic in metadata.topics().iter().filter(|t| wanted(t.name())) {
        for partition in topic.partitions() {
            let (low, high) =
                consumer.fetch_watermarks(topic.name(), partition.id(), METADATA_TIMEOUT)?;
            let position = Position {
                low,
                high,
                committed: None,
            };
            found.insert((topic.name().to_string(), partition.id()), position);
        }
    }
    let mut list = TopicPartitionList::new();
    for (topic, partition) in found.keys() {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, METADATA_TIMEOUT)?;
    for element in committed.elements() {
        if let (Offset::Offset(offset), Some(position)) = (
            element.offset(),
            found.get_mut(&(element.topic().to_string(), element.partition())),
        ) {
            position.committed = Some(offset);
        }
    }
    Ok(found)
}

/// Per partition, the first offset whose timestamp is at or after `ms`
/// (milliseconds since the epoch); the end offset when there is none.
/// Blocking.
///
/// # Errors
/// When the broker does not answer or does not support the lookup.
pub fn at_time(
    consumer: &BaseConsumer,
    partitions: &BTreeMap<TopicPartition, Position>,
    ms: i64,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions.keys() {
        list.add_partition_offset(topic, *partition, Offset::Offset(ms))?;
    }
    let found = consumer
        .offsets_for_times(list, METADATA_TIMEOUT)
        .context("cannot look up offsets by time")?;
    let mut offsets = BTreeMap::new();
    for element in found.elements() {
        let tp = (element.topic().to_string(), element.partition());
        if let Err(err) = element.error() {
            anyhow::bail!("cannot look up {} [{}] by time: {err}", tp.0, tp.1);
        }
        let Some(position) = partitions.get(&tp) else {
            continue;
        };
        let offset = match element.offset() {
            Offset::Offset(offset) => offset.clamp(position.low, position.high),
            // No record at or after the time.
            _ => position.high,
        };
        offsets.insert(tp, offset);
    }
    Ok(offsets)
}

/// Commits `offsets` for the group. Kafka accepts a commit from outside
/// the group only while the group has no member; otherwise the error says
/// to stop the connector. Blocking.
///
/// # Errors
/// When the group has members or the broker refuses.
pub fn commit(
    consumer: &BaseConsumer,
    settings: &Settings,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<()> {
    match try_commit(consumer, offsets) {
        Ok(()) => Ok(()),
        Err(err) if is_active_group(&err) => Err(running(settings, None)),
        Err(err) => Err(err).context("cannot commit the offsets"),
    }
}

fn try_commit(
    consumer: &BaseConsumer,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), KafkaError> {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&list, CommitMode::Sync)
}

/// Fails when the group has active members (a running connector).
/// Blocking.
///
/// # Errors
/// Active members, or a broker that does not answer.
pub fn ensure_stopped(consumer: &BaseConsumer, settings: &Settings) -> anyhow::Result<()> {
    let group = settings.group_id();
    let groups = consumer
        .fetch_group_list(Some(&group), METADATA_TIMEOUT)
        .context("cannot describe the group")?;
    match groups.groups().iter().find(|g| g.name() == group) {
        Some(info) if !info.members().is_empty() => {
            Err(running(settings, Some(info.members().len())))
        }
        _ => Ok(()),
    }
}

/// What the broker answers to a commit from outside a group with members.
fn is_active_group(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::StaleMemberEpoch
        )
    )
}

fn running(settings: &Settings, members: Option<usize>) -> anyhow::Error {
    let members = members.map_or_else(String::new, |n| format!(" ({n} member(s))"));
    anyhow::anyhow!(
        "group {} is active{members}: connector {} is running; stop every instance first \
         (SIGTERM; `fcsink pause` keeps them in the group), then reset",
        settings.group_id(),
        settings.name,
    )
}

/// `source.start_from = <time>`: before the consumer subscribes, commit the
/// time's offset for every source partition the group has never committed
/// (partitions with a committed offset keep it). Does nothing for
/// `earliest` and `latest`, and when another instance is already running
/// (it did this at its start).
///
/// # Errors
/// When the broker does not answer or cannot look offsets up by time.
pub async fn start(settings: &Settings) -> anyhow::Result<()> {
    let StartFrom::Timestamp(ms) = settings.source.start_from else {
        return Ok(());
    };
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = outsider(&settings)?;
        let positions = positions(&consumer, &settings.source.topics)?;
        let fresh: BTreeMap<_, _> = positions
            .into_iter()
            .filter(|(_, p)| p.committed.is_none())
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let offsets = at_time(&consumer, &fresh, ms)?;
        match try_commit(&consumer, &offsets) {
            Ok(()) => {
                tracing::info!(
                    partitions = offsets.len(),
                    timestamp_ms = ms,
                    "Starting partitions without a committed offset at source.start_from"
                );
                Ok(())
            }
            // The running instances resolved the time at their start.
            Err(err) if is_active_group(&err) => {
                tracing::info!("Group already active; keeping its start offsets");
                Ok(())
            }
            Err(err) => Err(err).context("cannot commit the start offsets"),
        }
    })
    .await?
    .context("cannot start at source.start_from")
}
