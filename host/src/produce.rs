//! Writing records fcsink produces (dead letters, results) and waiting
//! until Kafka has acknowledged every one.
//!
//! A failed write is retried with backoff while the error is transient
//! ([`classify`]); a permanent one ends the write with [`Error::Refused`],
//! which stops the source partition without committing it. A record refused
//! as too large is first sent again alone, since the broker refuses a whole
//! produce batch for one record too large, and only a record refused alone
//! is written without its value, then its key ([`VALUE_DROPPED`],
//! [`KEY_DROPPED`]).

mod classify;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

pub use classify::{Class, classify};
use classify::{too_large, unknown_topic};

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

/// Header added when a record's value was dropped to fit: the value's size in bytes.
pub const VALUE_DROPPED: &str = "fcsink.value.dropped";
/// Header added when a record's key was dropped too: the key's size in bytes.
pub const KEY_DROPPED: &str = "fcsink.key.dropped";

/// The first wait after a transient failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Which of fcsink's topics a write goes to; named in errors and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `delivery.dead_letter_topic`.
    DeadLetter,
    /// `delivery.success_topic`.
    Success,
    /// `delivery.error_topic`.
    Error,
}

impl Role {
    /// `dead-letter`, `success` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeadLetter => "dead-letter",
            Role::Success => "success",
            Role::Error => "error",
        }
    }
}

/// Why records were not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Shutdown began before every write was acknowledged: the source
    /// offsets must not be committed, the records come again.
    #[error("write to Kafka abandoned at shutdown")]
    Abandoned,
    /// Kafka refused a record for good: the source partition must stop.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// A write Kafka refused with a permanent error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The topic's role.
    pub role: Role,
    /// The topic.
    pub topic: String,
    /// librdkafka's error code.
    pub code: RDKafkaErrorCode,
    /// What fcsink knows beyond the code, if anything.
    pub detail: Option<String>,
}

impl Refused {
    /// The error code's name, for metrics: `UnknownTopicOrPartition` …
    pub fn code_name(&self) -> String {
        format!("{:?}", self.code)
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Kafka refused the write to the {} topic {}: {:?} ({})",
            self.role.as_str(),
            self.topic,
            self.code,
            self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        Ok(())
    }
}

/// fcsink's producers for the topics it writes: one that batches, for
/// every write, and one made when first needed that sends each record in a
/// produce batch of its own, for records refused as too large in a batch.
#[derive(Clone)]
pub struct Producers(Arc<Inner>);

struct Inner {
    batched: FutureProducer,
    /// The configuration of `batched`, for `alone` and for creating topics.
    config: ClientConfig,
    alone: Mutex<Option<FutureProducer>>,
    /// `delivery.create_topics`: a topic found missing is created again.
    create_topics: bool,
}

impl Producers {
    /// Writes through `batched`, made from `config`.
    pub fn new(batched: FutureProducer, config: ClientConfig, create_topics: bool) -> Self {
        Producers(Arc::new(Inner {
            batched,
            config,
            alone: Mutex::new(None),
            create_topics,
        }))
    }

    /// A writer to `topic`.
    pub fn writer(&self, topic: String, role: Role) -> Writer {
        Writer {
            producers: self.clone(),
            topic,
            role,
        }
    }

    /// The producer whose produce batches hold one record each.
    fn alone(&self) -> Result<FutureProducer, KafkaError> {
        let mut alone = self
            .0
            .alone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(producer) = &*alone {
            return Ok(producer.clone());
        }
        let producer: FutureProducer = self
            .0
            .config
            .clone()
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()?;
        *alone = Some(producer.clone());
        Ok(producer)
    }
}

/// Writes to one of fcsink's topics.
#[derive(Clone)]
pub struct Writer {
    producers: Producers,
    topic: String,
    role: Role,
}

impl Writer {
    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `records` and waits until Kafka has acknowledged every one.
    ///
    /// Transient failures are retried with backoff (100 ms doubling up to
    /// 10 s) until they succeed or shutdown begins. A record refused as too
    /// large is sent again alone, and only when it is refused alone it is
    /// written without its value, then without its key, with
    /// [`VALUE_DROPPED`] / [`KEY_DROPPED`] saying what was left out: it
    /// still names its source record, which can be read again there.
    ///
    /// # Errors
    /// [`Error::Abandoned`] at shutdown; [`Error::Refused`] when Kafka
    /// refuses a record for good. Either way the source offsets must not
    /// be committed.
    pub async fn write(
        &self,
        records: &[Outgoing],
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        match write_all(self, records, cancel).await {
            Ok(stripped) => {
                crate::metrics::records_stripped(self.role.as_str(), stripped);
                Ok(())
            }
            Err(Stop::Abandoned) => Err(Error::Abandoned),
            Err(Stop::Refused(code, detail)) => {
                let refused = Refused {
                    role: self.role,
                    topic: self.topic.clone(),
                    code,
                    detail,
                };
                tracing::error!(error = %refused, "Write to Kafka refused");
                Err(refused.into())
            }
        }
    }
}

/// How [`write_all`] reaches Kafka; the tests bring their own.
trait Sink {
    /// Sends `record`, `alone` in a produce batch of its own.
    async fn send(&self, record: &Outgoing, alone: bool) -> Result<(), RDKafkaErrorCode>;

    /// After a permanent `code`: `Ok` when it was put right so a retry may
    /// succeed (the missing topic was created), else what to add to the error.
    async fn repair(&self, code: RDKafkaErrorCode) -> Result<(), Option<String>>;
}

impl Sink for Writer {
    async fn send(&self, record: &Outgoing, alone: bool) -> Result<(), RDKafkaErrorCode> {
        let producer = if alone {
            self.producers
                .alone()
                .map_err(|err| err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))?
        } else {
            self.producers.0.batched.clone()
        };
        let headers = crate::header_name::kafka_headers(
            record
                .headers
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_deref())),
        );
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
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
            Ok(_) => Ok(()),
            Err((err, _)) => {
                let code = err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                tracing::debug!(topic = %self.topic, %err, "Record not acknowledged");
                Err(code)
            }
        }
    }

    async fn repair(&self, code: RDKafkaErrorCode) -> Result<(), Option<String>> {
        if !unknown_topic(code) {
            return Err(None);
        }
        if !self.producers.0.create_topics {
            return Err(Some(
                "the topic does not exist and delivery.create_topics = false: create it, \
                 then resume the partition"
                    .into(),
            ));
        }
        crate::kafka::topics::ensure(&self.producers.0.config, &[&self.topic])
            .await
            .map(|_| tracing::warn!(topic = %self.topic, "The topic had gone; created it again"))
            .map_err(|err| Some(format!("{err:#}")))
    }
}

/// How [`write_all`] ended when not every record was written.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Abandoned,
    Refused(RDKafkaErrorCode, Option<String>),
}

/// A record not yet acknowledged.
struct Pending<'a> {
    record: Cow<'a, Outgoing>,
    /// Sent in a produce batch of its own: a size refusal is its own.
    alone: bool,
    /// Its value (or key) was dropped to fit.
    stripped: bool,
}

/// Writes every record through `sink`; returns how many were written
/// stripped of their value or key.
async fn write_all(
    sink: &impl Sink,
    records: &[Outgoing],
    cancel: &CancellationToken,
) -> Result<usize, Stop> {
    let mut pending: Vec<Pending<'_>> = records
        .iter()
        .map(|record| Pending {
            record: Cow::Borrowed(record),
            alone: false,
            stripped: false,
        })
        .collect();
    let mut stripped = 0;
    let mut delay = FIRST_BACKOFF;
    while !pending.is_empty() {
        let sends = pending.iter().map(|p| sink.send(&p.record, p.alone));
        let results = futures::future::join_all(sends).await;
        let mut transient = None;
        let mut permanent = None;
        let mut retry = Vec::new();
        for (mut p, sent) in pending.into_iter().zip(results) {
            match sent {
                Ok(()) => stripped += usize::from(p.stripped),
                Err(code) if too_large(code) && !p.alone => {
                    // The batch may have been refused for another record.
                    p.alone = true;
                    retry.push(p);
                }
                Err(code) if too_large(code) => match smaller(&p.record) {
                    Some(smaller) => retry.push(Pending {
                        record: Cow::Owned(smaller),
                        alone: true,
                        stripped: true,
                    }),
                    None => {
                        return Err(Stop::Refused(
                            code,
                            Some("the record is too large even without its key and value".into()),
                        ));
                    }
                },
                Err(code) => {
                    match classify(code) {
                        Class::Transient => transient = Some(code),
                        Class::Permanent => permanent = Some(code),
                    }
                    retry.push(p);
                }
            }
        }
        pending = retry;
        if let Some(code) = permanent {
            sink.repair(code)
                .await
                .map_err(|detail| Stop::Refused(code, detail))?;
            transient = Some(code);
        }
        let Some(code) = transient else { continue };
        tracing::warn!(
            failed = pending.len(),
            error = ?code,
            retry_in_ms = delay.as_millis() as u64,
            "Write to Kafka failed; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Err(Stop::Abandoned),
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
    Ok(stripped)
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
        "Record too large for Kafka even alone; writing it without that field"
    );
    smaller
        .headers
        .push((header.to_owned(), Some(size.to_string().into_bytes())));
    Some(smaller)
}

#[cfg(test)]
mod tests;
