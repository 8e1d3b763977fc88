//! What tests do with the broker through Kafka clients: create topics,
//! produce, read topics back and inspect offsets.
//!
//! The blocking librdkafka calls run on tokio's blocking pool, so a host
//! running in the same runtime keeps making progress.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::Broker;

/// Timeout for one admin, metadata or offsets request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A record to produce: partition (`None` lets librdkafka choose), key, value.
pub type ProduceRecord<'a> = (Option<i32>, Option<&'a [u8]>, Option<&'a [u8]>);

/// One record read back by [`Broker::consume_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The partition the record was read from.
    pub partition: i32,
    /// Its offset within the partition.
    pub offset: i64,
    /// The key, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in wire order; a header may have a null value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the epoch (create or log-append time), if any.
    pub timestamp: Option<i64>,
}

impl ConsumedRecord {
    /// The first header called `name`, as text; `None` when it is absent,
    /// null or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

impl Broker {
    /// Creates a topic and waits until metadata shows all its partitions.
    ///
    /// # Panics
    ///
    /// If the broker rejects the topic (for example, because it exists).
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, 1, &[]).await;
    }

    /// Creates a topic with `replication` replicas per partition and topic
    /// `configs` (such as `min.insync.replicas`), and waits until metadata
    /// shows all its partitions.
    ///
    /// # Panics
    ///
    /// If the broker rejects the topic.
    pub async fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, &str)],
    ) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
        for &(key, value) in configs {
            topic = topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        // A cluster just started, or a loaded machine, may fail the request
        // itself (a connection torn down, no controller yet): try again. A
        // topic an earlier attempt created counts as created.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let admin: AdminClient<DefaultClientContext> = client_config(&self.bootstrap())
                .create()
                .expect("create admin client");
            match admin.create_topics([&topic], &options).await {
                Ok(results) => {
                    for result in results {
                        match result {
                            Ok(_) => {}
                            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if attempt > 1 => {}
                            Err((topic, code)) => panic!("create topic {topic}: {code}"),
                        }
                    }
                    break;
                }
                Err(err) if Instant::now() < deadline => {
                    eprintln!("create topic {name}: {err}; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => panic!("create topic {name}: {err}"),
            }
        }
        let (bootstrap, name) = (self.bootstrap(), name.to_owned());
        blocking(move || {
            let consumer = reader(&bootstrap, "fcsink-tests-admin")?;
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            loop {
                match partitions_of(&consumer, &name) {
                    Ok(found) if found.len() == partitions as usize => return Ok(()),
                    _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    found => bail!("topic {name} did not show {partitions} partitions: {found:?}"),
                }
            }
        })
        .await;
    }

    /// Produces `records` in order and waits for every delivery; returns
    /// each record's `(partition, offset)`.
    ///
    /// # Panics
    ///
    /// If any record is not delivered.
    pub async fn produce(&self, topic: &str, records: &[ProduceRecord<'_>]) -> Vec<(i32, i64)> {
        let producer: FutureProducer = client_config(&self.bootstrap())
            .set("message.timeout.ms", "30000")
            // Room for the ledger's 10 MB records.
            .set("message.max.bytes", "16777216")
            // One request in flight keeps records in order across retries.
            .set("max.in.flight.requests.per.connection", "1")
            .create()
            .expect("create producer");
        let mut deliveries = Vec::with_capacity(records.len());
        for &(partition, key, value) in records {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic);
            record.partition = partition;
            record.key = key;
            record.payload = value;
            let delivery = producer
                .send_result(record)
                .unwrap_or_else(|(err, _)| panic!("enqueue a record for {topic}: {err}"));
            deliveries.push(delivery);
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(delivery)) => positions.push((delivery.partition, delivery.offset)),
                Ok(Err((err, _))) => panic!("produce to {topic}: {err}"),
                Err(_) => panic!("produce to {topic}: producer dropped the delivery"),
            }
        }
        positions
    }

    /// Produces `(partition, value, timestamp)` records with explicit
    /// CreateTime timestamps (ms since the epoch); returns their offsets.
    ///
    /// # Panics
    /// If a record is not delivered.
    pub async fn produce_at(&self, topic: &str, records: &[(i32, &str, i64)]) -> Vec<i64> {
        let producer: FutureProducer = client_config(&self.bootstrap())
            .set("message.timeout.ms", "30000")
            .set("max.in.flight.requests.per.connection", "1")
            .create()
            .expect("create producer");
        let mut offsets = Vec::with_capacity(records.len());
        for &(partition, value, timestamp) in records {
            let record = FutureRecord::<(), str>::to(topic)
                .partition(partition)
                .payload(value)
                .timestamp(timestamp);
            match producer.send(record, Duration::from_secs(30)).await {
                Ok(delivery) => offsets.push(delivery.offset),
                Err((err, _)) => panic!("produce to {topic}: {err}"),
            }
        }
        offsets
    }

    /// Produces one record with headers whose names are raw bytes (any
    /// bytes: Kafka does not check them) to `partition`; returns its offset.
    ///
    /// # Panics
    /// If the record is not delivered.
    pub async fn produce_with_headers(
        &self,
        topic: &str,
        partition: i32,
        value: &[u8],
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> i64 {
        let producer: FutureProducer = client_config(&self.bootstrap())
            .set("message.timeout.ms", "30000")
            .create()
            .expect("create producer");
        let names: Vec<String> = headers
            .iter()
            .map(|(name, _)| fcsink::header_name::from_bytes(name))
            .collect();
        let headers = fcsink::header_name::kafka_headers(
            names
                .iter()
                .zip(headers)
                .map(|(name, (_, value))| (name.as_str(), *value)),
        );
        let record = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(value)
            .headers(headers);
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(delivery) => delivery.offset,
            Err((err, _)) => panic!("produce to {topic}: {err}"),
        }
    }

    /// Reads `topic` from the beginning, sorted by partition then offset.
    /// Returns once every partition is read to its end, or once nothing new
    /// arrives for `idle`.
    pub async fn consume_all(&self, topic: &str, idle: Duration) -> Vec<ConsumedRecord> {
        let (bootstrap, topic) = (self.bootstrap(), topic.to_owned());
        blocking(move || read_to_end(&bootstrap, &topic, idle))
            .await
            .0
    }

    /// The offsets `group` has committed for `topic`, by partition; partitions
    /// without a commit are left out.
    pub async fn committed_offsets(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        let (bootstrap, group, topic) = (self.bootstrap(), group.to_owned(), topic.to_owned());
        blocking(move || {
            let consumer = reader(&bootstrap, &group)?;
            let mut list = TopicPartitionList::new();
            for partition in partitions_of(&consumer, &topic)? {
                list.add_partition(&topic, partition);
            }
            let committed = consumer
                .committed_offsets(list, REQUEST_TIMEOUT)
                .with_context(|| format!("committed offsets of {group} on {topic}"))?;
            let mut offsets = BTreeMap::new();
            for element in committed.elements() {
                // Partitions without a commit come back as Offset::Invalid.
                if let Offset::Offset(offset) = element.offset() {
                    offsets.insert(element.partition(), offset);
                }
            }
            Ok(offsets)
        })
        .await
    }

    /// Commits `offsets` (partition to next offset to read) for `group` on
    /// `topic`, as a consumer outside the group would; sets up a group's
    /// starting position before the sink runs.
    pub async fn commit_offsets(&self, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
        let (bootstrap, group, topic) = (self.bootstrap(), group.to_owned(), topic.to_owned());
        let offsets = offsets.clone();
        blocking(move || {
            let consumer = reader(&bootstrap, &group)?;
            let mut list = TopicPartitionList::new();
            for (&partition, &offset) in &offsets {
                list.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
            }
            consumer
                .commit(&list, CommitMode::Sync)
                .with_context(|| format!("commit offsets of {group} on {topic}"))
        })
        .await
    }

    /// The node id leading `partition` of `topic`, from metadata (`None`
    /// while it has no leader).
    pub async fn leader_of(&self, topic: &str, partition: i32) -> Option<u32> {
        self.partitions_of(topic)
            .await
            .into_iter()
            .find(|p| p.id == partition)
            .and_then(|p| u32::try_from(p.leader).ok())
    }

    /// How many replicas of each partition of `topic` are in sync, from
    /// metadata.
    pub async fn in_sync_replicas(&self, topic: &str) -> BTreeMap<i32, usize> {
        self.partitions_of(topic)
            .await
            .into_iter()
            .map(|p| (p.id, p.in_sync))
            .collect()
    }

    /// How many replicas each partition of `topic` has (in sync or not).
    pub async fn replication_of(&self, topic: &str) -> BTreeMap<i32, usize> {
        self.partitions_of(topic)
            .await
            .into_iter()
            .map(|p| (p.id, p.replicas))
            .collect()
    }

    /// What metadata says of each partition of `topic`.
    async fn partitions_of(&self, topic: &str) -> Vec<PartitionState> {
        let (bootstrap, topic) = (self.bootstrap(), topic.to_owned());
        blocking(move || {
            let consumer = reader(&bootstrap, "fcsink-tests-admin")?;
            let metadata = consumer
                .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
                .with_context(|| format!("metadata for {topic}"))?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions())
                .map(|p| PartitionState {
                    id: p.id(),
                    leader: p.leader(),
                    in_sync: p.isr().len(),
                    replicas: p.replicas().len(),
                })
                .collect())
        })
        .await
    }

    /// The end offset (the next offset to be written) of every partition
    /// of `topic`.
    ///
    /// Found by reading the topic to its end: Tansu 0.6's memory engine
    /// answers ListOffsets(latest) with the last batch's *first* offset + 1.
    pub async fn end_offsets(&self, topic: &str) -> BTreeMap<i32, i64> {
        let (bootstrap, topic) = (self.bootstrap(), topic.to_owned());
        blocking(move || read_to_end(&bootstrap, &topic, REQUEST_TIMEOUT))
            .await
            .1
    }
}

/// One partition as metadata describes it.
struct PartitionState {
    id: i32,
    /// The leading node's id, negative while there is none.
    leader: i32,
    /// Replicas in sync.
    in_sync: usize,
    /// Replicas, in sync or not.
    replicas: usize,
}

/// Runs blocking librdkafka work off the async threads; panics on error.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.unwrap_or_else(|err| panic!("{err:#}")),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // Reconnect quickly after a broker restart.
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    config
}

/// A consumer that never joins its group or commits; used for metadata,
/// offsets and reading by assignment.
pub(super) fn reader(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("create consumer")
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("metadata for {topic}"))?;
    let topic_metadata = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .with_context(|| format!("no metadata for {topic}"))?;
    ensure!(
        topic_metadata.error().is_none(),
        "topic {topic}: {:?}",
        topic_metadata.error()
    );
    Ok(topic_metadata.partitions().iter().map(|p| p.id()).collect())
}

/// Reads `topic` from the beginning until librdkafka reports the end of
/// every partition (or nothing happens for `idle`). Returns the records,
/// sorted by partition then offset, and the end offset of each partition.
fn read_to_end(
    bootstrap: &str,
    topic: &str,
    idle: Duration,
) -> Result<(Vec<ConsumedRecord>, BTreeMap<i32, i64>)> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "fcsink-tests-reader")
        .set("enable.auto.commit", "false")
        // The end is the high watermark of the fetch responses, which Tansu
        // gets right with both storage engines.
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // An empty fetch is how the end shows up; don't let Tansu hold it.
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("create consumer")?;
    let partitions = partitions_of(&consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    // Next offset to read, by partition, and which partitions are at their end.
    let mut next: BTreeMap<i32, i64> = partitions.iter().map(|&p| (p, 0)).collect();
    let mut at_end = BTreeSet::new();
    let mut records = Vec::new();
    let mut last_event = Instant::now();
    while at_end.len() < partitions.len() && last_event.elapsed() < idle {
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                last_event = Instant::now();
                continue;
            }
            Some(Err(err)) => {
                eprintln!("reading {topic}: {err}");
                continue;
            }
            Some(Ok(message)) => message,
        };
        last_event = Instant::now();
        at_end.remove(&message.partition());
        next.insert(message.partition(), message.offset() + 1);
        records.push(to_record(&message));
    }
    // The position also counts offsets without records (transaction markers).
    for element in consumer.position()?.elements() {
        if let (Offset::Offset(position), Some(next)) =
            (element.offset(), next.get_mut(&element.partition()))
        {
            *next = position.max(*next);
        }
    }
    records.sort_by_key(|record| (record.partition, record.offset));
    Ok((records, next))
}

fn to_record(message: &BorrowedMessage<'_>) -> ConsumedRecord {
    // fcsink's own conversion reads header names as bytes (rdkafka's
    // iterator panics on a name that is not UTF-8).
    let headers = fcsink::source::to_record(message)
        .headers
        .into_iter()
        .map(|h| (h.key, h.value))
        .collect();
    ConsumedRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: message.timestamp().to_millis(),
    }
}
