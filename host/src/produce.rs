//! Writing records fcsink produces (dead letters, results) and waiting
//! until Kafka has acknowledged every one.

use std::time::Duration;

use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The timestamp (ms), when it should be kept.
    pub timestamp: Option<i64>,
}

/// Shutdown began before every write was acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("write to Kafka abandoned at shutdown")]
pub struct Abandoned;

/// Writes `records` to `topic`; failed writes are retried, with backoff,
/// until they succeed or shutdown begins.
///
/// # Errors
/// [`Abandoned`] at shutdown: the source offsets must not be committed.
pub async fn all(
    producer: &FutureProducer,
    topic: &str,
    records: &[Outgoing],
    cancel: &CancellationToken,
) -> Result<(), Abandoned> {
    let mut pending: Vec<&Outgoing> = records.iter().collect();
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let sends = pending.iter().map(|record| one(producer, topic, record));
        let results = futures::future::join_all(sends).await;
        let failed: Vec<_> = pending
            .into_iter()
            .zip(results)
            .filter_map(|(record, ok)| (!ok).then_some(record))
            .collect();
        if failed.is_empty() {
            break;
        }
        tracing::warn!(
            topic,
            failed = failed.len(),
            "Write to Kafka failed; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Err(Abandoned),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
        pending = failed;
    }
    Ok(())
}

async fn one(producer: &FutureProducer, topic: &str, record: &Outgoing) -> bool {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &record.headers {
        headers = headers.insert(KafkaHeader {
            key,
            value: value.as_deref(),
        });
    }
    let mut message = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
    if let Some(key) = &record.key {
        message = message.key(key.as_slice());
    }
    if let Some(value) = &record.value {
        message = message.payload(value.as_slice());
    }
    if let Some(timestamp) = record.timestamp.filter(|t| *t >= 0) {
        message = message.timestamp(timestamp);
    }
    match producer.send(message, Duration::from_secs(30)).await {
        Ok(_) => true,
        Err((err, _)) => {
            tracing::warn!(topic, %err, "Record not acknowledged");
            false
        }
    }
}
