//! The broker harness works against a real broker (either flavor): records
//! go in on explicit partitions and come back intact, and stored data
//! survives a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use fcsink_tests::broker::{Broker, ConsumedRecord, ProduceRecord};

const TOPIC: &str = "smoke";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 100;
const IDLE: Duration = Duration::from_secs(5);

/// Record `i` goes to partition `i % 3` with key `k{i}` and value `v{i}`.
fn records() -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    (0..RECORDS)
        .map(|i| {
            (
                i as i32 % PARTITIONS,
                format!("k{i}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect()
}

async fn produce_all(broker: &Broker) {
    let records = records();
    let batch: Vec<ProduceRecord<'_>> = records
        .iter()
        .map(|(partition, key, value)| (Some(*partition), Some(&key[..]), Some(&value[..])))
        .collect();
    let positions = broker.produce(TOPIC, &batch).await;
    let partitions: Vec<i32> = positions.iter().map(|&(partition, _)| partition).collect();
    let wanted: Vec<i32> = records.iter().map(|&(partition, _, _)| partition).collect();
    assert_eq!(
        partitions, wanted,
        "every record lands on the partition it asked for"
    );
}

/// Checks that `read` holds exactly `records()`, in order within each partition.
fn assert_all_read(read: &[ConsumedRecord]) {
    assert_eq!(read.len(), RECORDS);
    let mut by_partition: BTreeMap<i32, Vec<&ConsumedRecord>> = BTreeMap::new();
    for record in read {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    for (partition, read) in &by_partition {
        let wanted: Vec<_> = records()
            .into_iter()
            .filter(|(p, _, _)| p == partition)
            .collect();
        assert_eq!(
            read.len(),
            wanted.len(),
            "record count on partition {partition}"
        );
        for (offset, (record, (_, key, value))) in read.iter().zip(wanted).enumerate() {
            assert_eq!(
                record.offset, offset as i64,
                "offsets on partition {partition} are dense"
            );
            assert_eq!(record.key.as_deref(), Some(&key[..]));
            assert_eq!(record.value.as_deref(), Some(&value[..]));
            assert!(record.headers.is_empty());
            assert!(record.timestamp.is_some());
        }
    }
    assert_eq!(by_partition.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
}

fn expected_end_offsets() -> BTreeMap<i32, i64> {
    BTreeMap::from([(0, 34), (1, 33), (2, 33)])
}

#[tokio::test]
async fn records_round_trip_in_memory() {
    let broker = Broker::memory().await;
    broker.create_topic(TOPIC, PARTITIONS).await;
    assert!(broker.consume_all(TOPIC, IDLE).await.is_empty());

    produce_all(&broker).await;

    assert_all_read(&broker.consume_all(TOPIC, IDLE).await);
    assert_eq!(broker.end_offsets(TOPIC).await, expected_end_offsets());
    assert!(broker.committed_offsets("nobody", TOPIC).await.is_empty());
}

#[tokio::test]
async fn memory_broker_restarts_empty() {
    let mut broker = Broker::memory().await;
    broker.create_topic(TOPIC, PARTITIONS).await;
    produce_all(&broker).await;

    broker.restart().await;

    // The topic is gone, so it can be created again, and it is empty.
    broker.create_topic(TOPIC, PARTITIONS).await;
    assert!(broker.consume_all(TOPIC, IDLE).await.is_empty());
}

#[tokio::test]
async fn sqlite_records_survive_restart() {
    let mut broker = Broker::sqlite().await;
    broker.create_topic(TOPIC, PARTITIONS).await;
    produce_all(&broker).await;
    assert_all_read(&broker.consume_all(TOPIC, IDLE).await);
    let committed = BTreeMap::from([(0, 5), (2, 33)]);
    broker.commit_offsets("sink", TOPIC, &committed).await;

    broker.restart().await;

    assert_eq!(broker.end_offsets(TOPIC).await, expected_end_offsets());
    assert_all_read(&broker.consume_all(TOPIC, IDLE).await);
    assert_eq!(broker.committed_offsets("sink", TOPIC).await, committed);

    // The restarted broker keeps appending after the old records.
    let positions = broker
        .produce(TOPIC, &[(Some(1), None, Some(b"after".as_slice()))])
        .await;
    assert_eq!(positions, [(1, 33)]);
}
