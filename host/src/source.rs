//! The Kafka source: a consumer in group `connect-<name>` that stores
//! offsets only when told to (after delivery) and reports partition
//! assignments to the pipeline.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::config::{Settings, StartFrom, Topics};
use crate::rate_limit::Share;
use crate::transform::{Header, Record};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// The consumer fcsink uses.
pub type Consumer = StreamConsumer<SourceContext>;

/// A change of the partitions this process owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// These partitions were assigned.
    Assigned(Vec<TopicPartition>),
    /// These partitions are being taken away.
    Revoked(Vec<TopicPartition>),
}

/// Forwards rebalance events to the pipeline and logs commits.
pub struct SourceContext {
    events: mpsc::UnboundedSender<Assignment>,
    /// This instance's share of the partitions, for the request budget.
    share: Arc<Share>,
}

impl ClientContext for SourceContext {
    /// librdkafka's statistics carry each partition's lag (`/metrics`) and
    /// how many partitions the subscribed topics have.
    fn stats(&self, statistics: rdkafka::Statistics) {
        crate::metrics::consumer_stats(&statistics);
        let total = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values())
            .filter(|p| p.partition >= 0)
            .count();
        self.share
            .set_total(u32::try_from(total).unwrap_or(u32::MAX));
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let _ = self.events.send(Assignment::Revoked(partitions(list)));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let _ = self.events.send(Assignment::Assigned(partitions(list)));
            }
            Rebalance::Error(err) => tracing::warn!(%err, "Rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "Offsets committed"),
            Err(err) => tracing::warn!(%err, "Offset commit failed"),
        }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// The consumer's librdkafka configuration.
pub fn client_config(settings: &Settings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.source.bootstrap_servers)
        .set("group.id", settings.group_id())
        .set("client.id", format!("fcsink-{}", settings.name))
        // Commit in the background, but only offsets fcsink stored after
        // every record below them was delivered, filtered or dead-lettered.
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "auto.offset.reset",
            match settings.source.start_from {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
                // `kafka::offsets::start` committed the time's offsets for
                // every partition without one; a partition created later
                // has only records newer than the time.
                StartFrom::Timestamp(_) => "earliest",
            },
        );
    if let Some(instance_id) = &settings.source.instance_id {
        // Static membership: a restart within session.timeout.ms keeps the
        // partitions without a rebalance.
        config.set("group.instance.id", instance_id);
    }
    // librdkafka prefetches up to 64 MiB on its own; make that a quarter of
    // `source.buffer_mb` (the workers' queues get the rest), so that one
    // setting bounds the records in memory.
    config.set(
        "queued.max.messages.kbytes",
        prefetch_kbytes(settings.source.buffer_bytes).to_string(),
    );
    for (key, value) in settings.source.kafka.iter() {
        config.set(key, value);
    }
    config
}

/// librdkafka's `queued.max.messages.kbytes` for a buffer of `buffer_bytes`:
/// a quarter of it (`[source.kafka]` may still set it). The workers' queues
/// get the larger part: a partition paused because its queue is full loses
/// what librdkafka prefetched for it, while records in its queue are kept.
fn prefetch_kbytes(buffer_bytes: usize) -> usize {
    (buffer_bytes / 4 / 1024).max(1)
}

/// Creates the consumer and subscribes it to the configured topics.
///
/// # Errors
/// When librdkafka refuses the configuration or the subscription.
pub fn subscribe(
    settings: &Settings,
    share: Arc<Share>,
) -> KafkaResult<(Consumer, mpsc::UnboundedReceiver<Assignment>)> {
    let (events, assignments) = mpsc::unbounded_channel();
    let mut config = client_config(settings);
    if config.get("statistics.interval.ms").is_none() {
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    let consumer: Consumer = config.create_with_context(SourceContext { events, share })?;
    let topics: Vec<&str> = match &settings.source.topics {
        Topics::List(list) => list.iter().map(String::as_str).collect(),
        Topics::Regex(regex) => vec![regex.as_str()],
    };
    consumer.subscribe(&topics)?;
    Ok((consumer, assignments))
}

/// Copies a consumed message into a [`Record`]. Any bytes are fine: header
/// names that are not UTF-8 are kept losslessly ([`crate::header_name`]).
pub fn to_record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers: raw_headers(message),
    }
}

/// The message's headers through librdkafka's own accessors, which give
/// names as bytes. rdkafka's `Headers::iter` unwraps `str::from_utf8` on
/// every name, so one producer writing a name that is not UTF-8 would
/// panic every consumer of the partition.
fn raw_headers(message: &BorrowedMessage<'_>) -> Vec<Header> {
    use rdkafka::bindings as rd;
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a live message for the borrow's lifetime;
    // librdkafka returns headers owned by the message (not to be freed).
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is valid while the message is, which outlives this call.
    unsafe { headers_of(headers) }
}

/// Reads every header of a librdkafka header list, names as bytes.
///
/// librdkafka hands a name out NUL-terminated without its length, so a name
/// holding a NUL byte arrives cut at it (the one loss no consumer on
/// librdkafka can avoid); values are read whole.
///
/// # Safety
///
/// `headers` must be a valid, non-null librdkafka header list that stays
/// alive and unchanged for the duration of the call.
pub(crate) unsafe fn headers_of(
    headers: *const rdkafka::bindings::rd_kafka_headers_t,
) -> Vec<Header> {
    use rdkafka::bindings as rd;
    // SAFETY: the caller guarantees `headers` is valid.
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `index < count`; the out-pointers are valid locals.
        let err = unsafe {
            rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka keeps names NUL-terminated and values `size`
        // bytes long, both owned by the list.
        let (name, value) = unsafe {
            (
                std::ffi::CStr::from_ptr(name).to_bytes(),
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            )
        };
        out.push(header(name, value));
    }
    out
}

/// A consumed header as fcsink carries it: any name bytes (kept losslessly,
/// [`crate::header_name`]), any value.
pub fn header(name: &[u8], value: Option<&[u8]>) -> Header {
    Header {
        key: crate::header_name::from_bytes(name),
        value: value.map(<[u8]>::to_vec),
    }
}

/// Stores `next_offset` (the first offset not yet handled) for the next commit.
pub fn store(consumer: &Consumer, (topic, partition): &TopicPartition, next_offset: i64) {
    let mut list = TopicPartitionList::new();
    if let Err(err) = list.add_partition_offset(topic, *partition, Offset::Offset(next_offset)) {
        tracing::warn!(%err, topic, partition, "Cannot store offset");
        return;
    }
    // Fails only when the partition was revoked meanwhile; its new owner
    // re-reads from the last commit, so nothing is lost.
    if let Err(err) = consumer.store_offsets(&list) {
        tracing::debug!(%err, topic, partition, next_offset, "Offset not stored");
    }
}

/// Stops or restarts fetching one partition.
pub fn set_paused(consumer: &Consumer, (topic, partition): &TopicPartition, paused: bool) {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, *partition);
    let result = if paused {
        consumer.pause(&list)
    } else {
        consumer.resume(&list)
    };
    if let Err(err) = result {
        tracing::debug!(%err, topic, partition, paused, "Cannot change fetch state");
    }
}

/// Commits stored offsets and waits for the broker's answer (at shutdown).
pub fn commit_now(consumer: &Consumer) {
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) => tracing::info!("Final offsets committed"),
        // "No offset stored" is not a failure: nothing new was handled.
        Err(err) => tracing::debug!(%err, "Final commit"),
    }
}

/// How often librdkafka reports statistics (the lag in `/metrics`).
const STATISTICS_INTERVAL_MS: &str = "2000";

/// How long the pipeline waits for the broker during start-up checks.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(source_extra: &str) -> Settings {
        Settings::from_toml(&format!(
            "name = \"n\"\n[source]\nbootstrap_servers = \"b:9092\"\ntopics = [\"t\"]\n\
             {source_extra}\n[target.fc]\nendpoint = \"http://127.0.0.1:1\"\nservice = \"s\"\n\
             function = \"f\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn librdkafka_prefetches_a_quarter_of_the_buffer_unless_told_otherwise() {
        let prefetch = |extra: &str| {
            client_config(&settings(extra))
                .get("queued.max.messages.kbytes")
                .map(str::to_owned)
        };
        assert_eq!(prefetch("").as_deref(), Some("16384"));
        assert_eq!(prefetch("buffer_mb = 16").as_deref(), Some("4096"));
        assert_eq!(prefetch("buffer_mb = 1").as_deref(), Some("256"));
        assert_eq!(
            prefetch("[source.kafka]\n\"queued.max.messages.kbytes\" = 1000").as_deref(),
            Some("1000")
        );
    }
}
