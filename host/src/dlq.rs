//! The dead-letter topic: records that cannot be delivered, each with
//! headers that say why. The source record's key, value and headers are kept
//! as they were consumed, so it can be replayed.
//!
//! Header names follow Kafka Connect's (`__connect.errors.*`) so existing
//! tooling reads them, plus `fcsink.*` for what Connect has no name for.

use std::time::Duration;

use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::transform::Record;

/// Where in the pipeline a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A plugin failed the record or the batch.
    Transform,
    /// The function could not be invoked.
    Invoke,
}

/// Why records are dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Where it failed.
    pub stage: Stage,
    /// A short code: `plugin-trapped`, `http-503`, `UnhandledInvocationError` …
    pub code: String,
    /// The explanation.
    pub message: String,
    /// The plugin (transform stage) or the target (invoke stage).
    pub component: String,
    /// Invocation attempts made (0 for the transform stage).
    pub attempts: u32,
    /// The HTTP status of the last answer, if any.
    pub status: Option<u16>,
}

/// The headers a dead-lettered record carries: its own, then the reason.
pub fn headers(
    record: &Record,
    reason: &Reason,
    connector: &str,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = record
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    let mut add =
        |key: &str, value: String| headers.push((key.to_string(), Some(value.into_bytes())));
    add("__connect.errors.topic", record.topic.clone());
    add("__connect.errors.partition", record.partition.to_string());
    add("__connect.errors.offset", record.offset.to_string());
    add("__connect.errors.connector.name", connector.to_string());
    add(
        "__connect.errors.stage",
        match reason.stage {
            Stage::Transform => "TRANSFORMATION".into(),
            Stage::Invoke => "TASK_PUT".into(),
        },
    );
    add("__connect.errors.exception.message", reason.message.clone());
    add("fcsink.error.code", reason.code.clone());
    add(
        match reason.stage {
            Stage::Transform => "fcsink.error.plugin",
            Stage::Invoke => "fcsink.error.target",
        },
        reason.component.clone(),
    );
    add("fcsink.error.attempts", reason.attempts.to_string());
    if let Some(status) = reason.status {
        add("fcsink.error.status", status.to_string());
    }
    add("fcsink.source.timestamp", record.timestamp.to_string());
    headers
}

/// Writes to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    connector: String,
}

/// Shutdown began before the dead-letter write was acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter write abandoned at shutdown")]
pub struct Abandoned;

impl DeadLetters {
    /// Writes to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: String, connector: String) -> Self {
        DeadLetters {
            producer,
            topic,
            connector,
        }
    }

    /// Writes each record with its reason and waits until Kafka has
    /// acknowledged every one; failed writes are retried until they succeed
    /// or shutdown begins.
    ///
    /// # Errors
    /// [`Abandoned`] at shutdown: the records' offsets must not be committed.
    pub async fn write(
        &self,
        entries: &[(&Record, Reason)],
        cancel: &CancellationToken,
    ) -> Result<(), Abandoned> {
        tracing::debug!(topic = %self.topic, records = entries.len(), "Writing dead letters");
        let mut pending: Vec<&(&Record, Reason)> = entries.iter().collect();
        let mut delay = Duration::from_millis(100);
        while !pending.is_empty() {
            let sends = pending
                .iter()
                .map(|(record, reason)| self.send(record, reason));
            let results = futures::future::join_all(sends).await;
            let failed: Vec<_> = pending
                .into_iter()
                .zip(results)
                .filter_map(|(entry, ok)| (!ok).then_some(entry))
                .collect();
            if failed.is_empty() {
                break;
            }
            tracing::warn!(topic = %self.topic, failed = failed.len(), "Dead-letter write failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return Err(Abandoned),
            }
            delay = (delay * 2).min(Duration::from_secs(10));
            pending = failed;
        }
        for (_, reason) in entries {
            crate::metrics::dead_lettered(&reason.code, 1);
        }
        Ok(())
    }

    async fn send(&self, record: &Record, reason: &Reason) -> bool {
        let mut kafka_headers = OwnedHeaders::new();
        for (key, value) in headers(record, reason, &self.connector) {
            kafka_headers = kafka_headers.insert(KafkaHeader {
                key: &key,
                value: value.as_deref(),
            });
        }
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(kafka_headers);
        if let Some(key) = &record.key {
            message = message.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            message = message.payload(value.as_slice());
        }
        if record.timestamp >= 0 {
            message = message.timestamp(record.timestamp);
        }
        match self.producer.send(message, Duration::from_secs(30)).await {
            Ok(_) => true,
            Err((err, _)) => {
                tracing::warn!(topic = %self.topic, %err, "Dead-letter record not acknowledged");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Header;

    #[test]
    fn headers_keep_the_record_own_and_say_why() {
        let record = Record {
            topic: "orders".into(),
            partition: 3,
            offset: 42,
            timestamp: 1700000000000,
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![Header {
                key: "trace".into(),
                value: Some(b"abc".to_vec()),
            }],
        };
        let reason = Reason {
            stage: Stage::Invoke,
            code: "ResourceThrottled".into(),
            message: "too busy".into(),
            component: "fc:svc/fn:LATEST".into(),
            attempts: 3,
            status: Some(503),
        };
        let headers = headers(&record, &reason, "kafka-fc-sink");
        let get = |k: &str| {
            headers
                .iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.clone())
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(headers[0].0, "trace");
        assert_eq!(get("__connect.errors.topic").as_deref(), Some("orders"));
        assert_eq!(get("__connect.errors.partition").as_deref(), Some("3"));
        assert_eq!(get("__connect.errors.offset").as_deref(), Some("42"));
        assert_eq!(get("__connect.errors.stage").as_deref(), Some("TASK_PUT"));
        assert_eq!(
            get("fcsink.error.code").as_deref(),
            Some("ResourceThrottled")
        );
        assert_eq!(
            get("fcsink.error.target").as_deref(),
            Some("fc:svc/fn:LATEST")
        );
        assert_eq!(get("fcsink.error.attempts").as_deref(), Some("3"));
        assert_eq!(get("fcsink.error.status").as_deref(), Some("503"));
        assert_eq!(get("fcsink.error.plugin"), None);
    }
}
