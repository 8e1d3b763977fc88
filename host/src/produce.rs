//! Writing records fcsink produces (dead letters, results) and waiting
//! until Kafka has acknowledged every one.

use std::borrow::Cow;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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

/// Header added when a record's value was dropped to fit: the value's size in bytes.
pub const VALUE_DROPPED: &str = "fcsink.value.dropped";
/// Header added when a record's key was dropped too: the key's size in bytes.
pub const KEY_DROPPED: &str = "fcsink.key.dropped";

/// Writes `records` to `topic`; failed writes are retried, with backoff,
/// until they succeed or shutdown begins.
///
/// A record Kafka refuses as too large (`message.max.bytes` of the producer,
/// or of the broker or topic) is written without its value, then without
/// its key, with [`VALUE_DROPPED`] / [`KEY_DROPPED`] saying what was left
/// out: it still names its source record, which can be read again there,
/// and a record that can never be written would stall its partition.
///
/// # Errors
/// [`Abandoned`] at shutdown: the source offsets must not be committed.
pub async fn all(
    producer: &FutureProducer,
    topic: &str,
    records: &[Outgoing],
    cancel: &CancellationToken,
) -> Result<(), Abandoned> {
    let mut pending: Vec<Cow<'_, Outgoing>> = records.iter().map(Cow::Borrowed).collect();
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let sends = pending.iter().map(|record| one(producer, topic, record));
        let results = futures::future::join_all(sends).await;
        let mut failed = 0;
        let mut retry = Vec::new();
        for (record, sent) in pending.into_iter().zip(results) {
            match sent {
                Sent::Acknowledged => {}
                Sent::TooLarge => match smaller(&record) {
                    Some(smaller) => retry.push(Cow::Owned(smaller)),
                    None => {
                        failed += 1;
                        retry.push(record);
                    }
                },
                Sent::Failed => {
                    failed += 1;
                    retry.push(record);
                }
            }
        }
        pending = retry;
        if failed == 0 {
            continue;
        }
        tracing::warn!(topic, failed, "Write to Kafka failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Err(Abandoned),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    Ok(())
}

/// `record` without its value, or without its key once the value is gone;
/// `None` when there is nothing left to drop.
fn smaller(record: &Outgoing) -> Option<Outgoing> {
    let mut smaller = record.clone();
    let (field, header) = if smaller.value.is_some() {
        (&mut smaller.value, VALUE_DROPPED)
    } else if smaller.key.is_some() {
        (&mut smaller.key, KEY_DROPPED)
    } else {
        return None;
    };
    let size = field.take().map_or(0, |bytes| bytes.len());
    tracing::warn!(
        dropped = header,
        bytes = size,
        "Record too large for Kafka; writing it without that field"
    );
    smaller
        .headers
        .push((header.to_owned(), Some(size.to_string().into_bytes())));
    Some(smaller)
}

/// How one write ended.
enum Sent {
    Acknowledged,
    /// Refused for its size: writing it again as it is cannot succeed.
    TooLarge,
    Failed,
}

async fn one(producer: &FutureProducer, topic: &str, record: &Outgoing) -> Sent {
    let headers = crate::header_name::kafka_headers(
        record
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref())),
    );
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
        Ok(_) => Sent::Acknowledged,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
            Sent::TooLarge
        }
        Err((err, _)) => {
            tracing::warn!(topic, %err, "Record not acknowledged");
            Sent::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_too_large_loses_its_value_then_its_key_and_says_so() {
        let record = Outgoing {
            key: Some(b"key".to_vec()),
            value: Some(vec![b'v'; 10]),
            headers: vec![("h".into(), None)],
            timestamp: Some(1),
        };
        let without_value = smaller(&record).unwrap();
        assert_eq!(without_value.value, None);
        assert_eq!(without_value.key, record.key);
        assert_eq!(
            without_value.headers,
            vec![
                ("h".into(), None),
                (VALUE_DROPPED.into(), Some(b"10".to_vec()))
            ]
        );
        let without_key = smaller(&without_value).unwrap();
        assert_eq!(without_key.key, None);
        assert_eq!(
            without_key.headers.last(),
            Some(&(KEY_DROPPED.into(), Some(b"3".to_vec())))
        );
        assert_eq!(smaller(&without_key), None);
    }
}
