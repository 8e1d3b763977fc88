//! The dead-letter topic: records that cannot be delivered, each with
//! headers that say why. The source record's key, value and headers are kept
//! as they were consumed, so it can be replayed.
//!
//! Header names follow Kafka Connect's (`__connect.errors.*`) so existing
//! tooling reads them, plus `fcsink.*` for what Connect has no name for.

use tokio_util::sync::CancellationToken;

use crate::produce::{self, Outgoing, Writer};
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
    writer: Writer,
    connector: String,
}

impl DeadLetters {
    /// Writes through `writer` (to the dead-letter topic) for connector `connector`.
    pub fn new(writer: Writer, connector: String) -> Self {
        DeadLetters { writer, connector }
    }

    /// The connector's name, which also names its requests
    /// (`invoke::idempotency`).
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// Writes each record with its reason and waits until Kafka has
    /// acknowledged every one.
    ///
    /// # Errors
    /// [`produce::Error`] at shutdown or when Kafka refuses a dead letter for
    /// good: the records' offsets must not be committed.
    pub async fn write(
        &self,
        entries: &[(&Record, Reason)],
        cancel: &CancellationToken,
    ) -> Result<(), produce::Error> {
        tracing::debug!(topic = %self.writer.topic(), records = entries.len(), "Writing dead letters");
        let records: Vec<Outgoing> = entries
            .iter()
            .map(|(record, reason)| Outgoing {
                key: record.key.clone(),
                value: record.value.clone(),
                headers: headers(record, reason, &self.connector),
                timestamp: Some(record.timestamp),
            })
            .collect();
        self.writer.write(&records, cancel).await?;
        for (_, reason) in entries {
            crate::metrics::dead_lettered(&reason.code, 1);
        }
        Ok(())
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
