//! Reading a compacted topic of one partition (the control plane's config
//! and status topics) from its start to its end, outside any group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::Offset;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::source::METADATA_TIMEOUT;

/// Hands every message of partition 0 below `end` to `each`, in order,
/// within `3 * METADATA_TIMEOUT`.
///
/// # Errors
/// When the end is not reached in time.
pub(crate) async fn read_to_end(
    consumer: &StreamConsumer,
    topic: &str,
    end: i64,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let deadline = Instant::now() + 3 * METADATA_TIMEOUT;
    let mut next = 0;
    while next < end {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = tokio::time::timeout(left, consumer.recv())
            .await
            .with_context(|| format!("timed out reading {topic} up to offset {end}"))?;
        match received {
            Ok(message) => {
                next = message.offset() + 1;
                each(&message);
            }
            // A broker of the cluster down (its address among the bootstrap
            // servers) shows up here; librdkafka reconnects and the
            // deadline bounds the wait.
            Err(err) => {
                tracing::debug!(%err, topic, "Reading a control topic; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

/// A reader of partition 0 of `topic` from the beginning, and the end offset to read up to.
pub(crate) async fn reader(
    client: &ClientConfig,
    topic: &str,
) -> anyhow::Result<(Arc<StreamConsumer>, i64)> {
    let consumer: Arc<StreamConsumer> = Arc::new(
        reader_config(client)
            .create()
            .with_context(|| format!("cannot create a reader of {topic}"))?,
    );
    let mut list = TopicPartitionList::new();
    // Offset 0 rather than `Beginning`: librdkafka resolves a logical offset
    // with a ListOffsets request whose first answer it drops, then retries
    // after 500 ms, which was half of fcsink's start-up time.
    list.add_partition_offset(topic, 0, Offset::Offset(0))?;
    consumer.assign(&list)?;
    let watermarks = {
        let (consumer, topic) = (consumer.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            // One retry after a transient error: the first request may go to
            // a broker that is down.
            consumer
                .fetch_watermarks(&topic, 0, METADATA_TIMEOUT)
                .or_else(|_| consumer.fetch_watermarks(&topic, 0, METADATA_TIMEOUT))
        })
        .await?
    };
    let (_, end) = watermarks.with_context(|| format!("cannot read the end offset of {topic}"))?;
    Ok((consumer, end))
}

/// A consumer outside any group that reads from explicit offsets and never commits.
pub(crate) fn reader_config(client: &ClientConfig) -> ClientConfig {
    let mut config = client.clone();
    config
        .remove("acks")
        .set("group.id", "fcsink-control-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        // Readers start at offset 0; a compacted topic that no longer starts
        // there is read from where it starts.
        .set("auto.offset.reset", "earliest");
    config
}
