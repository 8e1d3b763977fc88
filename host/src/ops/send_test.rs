//! `fcsink send-test`: one record to the source topic, as the managed
//! console's "test" button sends, to check the path end to end.

use anyhow::Context as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::{Settings, Topics};
use crate::source::METADATA_TIMEOUT;

/// Produces one record and prints where it went.
///
/// # Errors
/// No topic to send to, or a broker that does not acknowledge the record.
pub async fn run(
    settings: &Settings,
    topic: Option<String>,
    key: String,
    value: String,
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let topic = match (topic, &settings.source.topics) {
        (Some(topic), _) => topic,
        (None, Topics::List(list)) if list.len() == 1 => list[0].clone(),
        (None, _) => anyhow::bail!("the connector consumes several topics: name one with --topic"),
    };
    let producer: FutureProducer = super::client_config(settings)
        .create()
        .context("cannot create a Kafka producer")?;
    let mut record = FutureRecord::to(&topic).key(&key).payload(&value);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    let delivery = producer
        .send(record, METADATA_TIMEOUT)
        .await
        .map_err(|(err, _)| err)
        .with_context(|| format!("cannot produce to {topic}"))?;
    outln!(
        "Sent to {topic} partition {} offset {}",
        delivery.partition,
        delivery.offset
    )?;
    Ok(())
}
