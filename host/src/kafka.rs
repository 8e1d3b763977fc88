//! Kafka plumbing every part shares: the producer and admin client
//! settings derived from the consumer's, closing the clients, creating
//! topics ([`topics`]), reading compacted ones ([`compacted`]), and the
//! group's offsets from outside it ([`offsets`]).

pub mod compacted;
pub mod offsets;
pub mod topics;

use std::time::Duration;

use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;

use crate::source::{self, Consumer};

/// Longest fcsink waits for Kafka while closing (final commit, producer flush, leaving the group).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// Commits, flushes and leaves the group on a thread of its own: librdkafka
/// blocks for as long as the broker is unreachable, and a shutdown must end.
pub(crate) async fn close(consumer: Arc<Consumer>, producer: FutureProducer) {
    let (closed, done) = tokio::sync::oneshot::channel();
    let closing = std::thread::Builder::new()
        .name("fcsink-close".into())
        .spawn(move || {
            source::commit_now(&consumer);
            let _ = rdkafka::producer::Producer::flush(&producer, CLOSE_TIMEOUT);
            drop(consumer);
            drop(producer);
            let _ = closed.send(());
        });
    match closing {
        Ok(_) => {
            if tokio::time::timeout(CLOSE_TIMEOUT, done).await.is_err() {
                tracing::warn!(
                    timeout_s = CLOSE_TIMEOUT.as_secs(),
                    "Kafka did not answer while closing; stopping without leaving the group cleanly"
                );
            }
        }
        Err(err) => tracing::warn!(%err, "Cannot start the closing thread"),
    }
}

/// The connection and security settings of `consumer_config`, for producers
/// and admin clients, with `acks=all`.
pub(crate) fn producer_config(consumer_config: &ClientConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in consumer_config.config_map() {
        // Security and connection settings carry over; consumer-only ones do not.
        if !matches!(
            key,
            "group.id"
                | "enable.auto.commit"
                | "auto.commit.interval.ms"
                | "enable.auto.offset.store"
                | "enable.partition.eof"
                | "auto.offset.reset"
        ) && !key.starts_with("fetch.")
            && !key.starts_with("session.")
            && !key.starts_with("heartbeat.")
            && !key.starts_with("max.poll")
            && !key.starts_with("queued.")
            && !key.starts_with("partition.assignment")
        {
            config.set(key, value);
        }
    }
    config.set("acks", "all");
    // Dead letters carry source records as they are; let the broker (or the
    // topic) decide what is too large instead of librdkafka's 1 MB default.
    if config.get("message.max.bytes").is_none() {
        config.set("message.max.bytes", PRODUCER_MAX_MESSAGE_BYTES);
    }
    config
}

/// librdkafka's `message.max.bytes` for fcsink's producers unless
/// `[source.kafka]` sets it: 64 MiB.
const PRODUCER_MAX_MESSAGE_BYTES: &str = "67108864";
