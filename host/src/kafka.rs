//! Kafka plumbing every part shares: the producer and admin client
//! settings derived from the consumer's, closing the clients, creating
//! topics ([`topics`]), reading compacted ones ([`compacted`]), the
//! group's offsets from outside it ([`offsets`]), and the first contact
//! that says why the brokers cannot be used ([`reach`]).

pub mod compacted;
pub mod offsets;
pub mod reach;
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
    // `config_map` hides the secrets' values (rdkafka's sanitised view):
    // it gives the keys, `get` the values as set.
    for key in consumer_config.config_map().into_keys() {
        let Some(value) = consumer_config.get(key) else {
            continue;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_get_the_secrets_as_set_not_rdkafkas_sanitised_view() {
        let mut consumer = ClientConfig::new();
        consumer
            .set("bootstrap.servers", "b:9092")
            .set("group.id", "connect-x")
            .set("security.protocol", "SASL_SSL")
            .set("sasl.password", "the-password")
            .set("ssl.key.password", "the-key-password")
            .set("session.timeout.ms", "45000");
        let producer = producer_config(&consumer);
        assert_eq!(producer.get("sasl.password"), Some("the-password"));
        assert_eq!(producer.get("ssl.key.password"), Some("the-key-password"));
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(producer.get("group.id"), None);
        assert_eq!(producer.get("session.timeout.ms"), None);
    }
}
