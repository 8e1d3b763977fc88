//! The compacted `connect-config-<name>` topic: one partition, a record per
//! runtime change, keyed so that compaction keeps the latest of each.
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `set:<key>` | the value, or null | override a setting; null removes the override |
//! | `resume:<topic>:<partition>` | request time (ms) | resume a partition stopped by `failure_policy = "stop"` (`*` for every topic or partition) |
//! | `created-topic:<topic>` | `true` | fcsink created the topic (`fcsink delete` removes it) |
//!
//! Every instance reads the whole topic at start, then follows it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::kafka::compacted::{read_to_end, reader};
use crate::source::METADATA_TIMEOUT;

/// One record of the config topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A runtime setting; `None` removes the override.
    Setting {
        /// One of [`crate::config::runtime::keys`].
        key: String,
        /// The new value.
        value: Option<String>,
    },
    /// Resume stopped partitions; `None` means every topic or partition.
    Resume {
        /// The source topic.
        topic: Option<String>,
        /// The partition.
        partition: Option<i32>,
    },
    /// fcsink created this topic.
    CreatedTopic(String),
}

impl Entry {
    /// The record key and value.
    pub fn encode(&self) -> (String, Option<String>) {
        match self {
            Entry::Setting { key, value } => (format!("set:{key}"), value.clone()),
            Entry::Resume { topic, partition } => {
                let topic = topic.as_deref().unwrap_or("*");
                let partition = partition.map_or("*".to_string(), |p| p.to_string());
                (
                    format!("resume:{topic}:{partition}"),
                    Some(crate::fleet::now_ms().to_string()),
                )
            }
            Entry::CreatedTopic(topic) => (format!("created-topic:{topic}"), Some("true".into())),
        }
    }

    /// Reads a record; `None` for keys this version does not know and for
    /// tombstones of events.
    pub fn decode(key: &str, value: Option<&str>) -> Option<Entry> {
        if let Some(setting) = key.strip_prefix("set:") {
            return Some(Entry::Setting {
                key: setting.to_string(),
                value: value.map(str::to_string),
            });
        }
        value?;
        if let Some(rest) = key.strip_prefix("resume:") {
            // Topic names cannot contain ':'.
            let (topic, partition) = rest.rsplit_once(':')?;
            return Some(Entry::Resume {
                topic: (topic != "*").then(|| topic.to_string()),
                partition: match partition {
                    "*" => None,
                    p => Some(p.parse().ok()?),
                },
            });
        }
        key.strip_prefix("created-topic:")
            .map(|topic| Entry::CreatedTopic(topic.to_string()))
    }
}

/// A reader of the config topic, positioned after what it has read.
pub struct Feed {
    consumer: Arc<StreamConsumer>,
}

impl Feed {
    /// Reads `topic` from the beginning up to its end offset; returns the
    /// entries, in order, and a feed positioned after them.
    ///
    /// # Errors
    /// When the broker does not answer or the topic is missing.
    pub async fn open(client: &ClientConfig, topic: &str) -> anyhow::Result<(Feed, Vec<Entry>)> {
        let (consumer, end) = reader(client, topic).await?;
        let mut entries = Vec::new();
        read_to_end(&consumer, topic, end, |message| {
            entries.extend(decode(message))
        })
        .await?;
        Ok((Feed { consumer }, entries))
    }

    /// Waits for the next entry.
    pub async fn next(&self) -> Entry {
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    if let Some(entry) = decode(&message) {
                        return entry;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "Cannot read the config topic");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn decode(message: &rdkafka::message::BorrowedMessage<'_>) -> Option<Entry> {
    let key = std::str::from_utf8(message.key()?).ok()?;
    let value = match message.payload() {
        None => None,
        Some(bytes) => Some(std::str::from_utf8(bytes).ok()?),
    };
    Entry::decode(key, value)
}

/// Writes `entries` to the config topic and waits for the broker's acknowledgement.
///
/// # Errors
/// When the broker does not acknowledge a write.
pub async fn write(
    producer: &FutureProducer,
    topic: &str,
    entries: &[Entry],
) -> anyhow::Result<()> {
    for entry in entries {
        let (key, value) = entry.encode();
        let mut record = FutureRecord::to(topic).key(&key).partition(0);
        if let Some(value) = &value {
            record = record.payload(value);
        }
        producer
            .send(record, METADATA_TIMEOUT)
            .await
            .map_err(|(err, _)| err)
            .with_context(|| format!("cannot write {key} to {topic}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_the_round_trip() {
        for entry in [
            Entry::Setting {
                key: "batch.size".into(),
                value: Some("50".into()),
            },
            Entry::Setting {
                key: "batch.size".into(),
                value: None,
            },
            Entry::Resume {
                topic: Some("orders.v1".into()),
                partition: Some(3),
            },
            Entry::Resume {
                topic: None,
                partition: None,
            },
            Entry::CreatedTopic("connect-error-x".into()),
        ] {
            let (key, value) = entry.encode();
            assert_eq!(Entry::decode(&key, value.as_deref()), Some(entry));
        }
        assert_eq!(Entry::decode("resume:t:*", None), None);
        assert_eq!(Entry::decode("future-key", Some("1")), None);
    }
}
