//! Kafka refusing fcsink's own writes: a dead-letter topic that does not
//! exist stops only the partition whose dead letters it refuses, visibly
//! (status, `/readyz`, `/metrics`) and without committing the failed batch;
//! a dead letter too large is stripped alone, the others of its batch go whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fc_emulator::{Emulator, Fault};
use fcsink::config::Settings;
use fcsink_tests::broker::{Broker, LARGE_RECORDS};
use fcsink_tests::connector::{self, delivered, http_get, position, wait_until};
use fcsink_tests::ledger::Position;

const WAIT: Duration = Duration::from_secs(60);

/// Writes the connector's config (quick status, `extra` tables appended).
fn write_config(
    dir: &Path,
    name: &str,
    broker: &Broker,
    emulator: &Emulator,
    topic: &str,
    extra: &str,
) -> PathBuf {
    let extra = format!("{extra}\n[operations]\nstatus_interval_ms = 500\n");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        connector::config(name, broker, emulator, topic, "", &extra),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_stops_only_its_partition_visibly_and_loses_nothing() {
    let broker = Broker::sqlite().await;
    broker.create_topic("nodlq", 2).await;
    // delivery.create_topics = false: the control topics are made by hand,
    // the dead-letter topic is forgotten.
    broker.create_topic("connect-config-nodlq", 1).await;
    broker.create_topic("connect-status-nodlq", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(400).matching("poison"));
    let values: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"n":{i},"kind":"{}"}}"#,
                if i == 2 { "poison" } else { "ok" }
            )
        })
        .collect();
    // Partition 0 gets records 0, 2, 4, 6 (the poison among them); partition 1 the rest.
    let records: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (Some((i % 2) as i32), None, Some(v.as_bytes())))
        .collect();
    let produced: BTreeSet<Position> = broker
        .produce("nodlq", &records)
        .await
        .into_iter()
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let extra = "[batch]\nsize = 10\nlinger_ms = 200\n\n[delivery]\ncreate_topics = false\n\n\
                 [source.kafka]\n\"topic.metadata.propagation.max.ms\" = \"1000\"\n";
    let config = write_config(dir.path(), "nodlq", &broker, &emulator, "nodlq", extra);
    let settings = Settings::from_toml(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let (mut process, port) = super::run_listening(&config, dir.path().join("run.log"));

    // Partition 1 flows on.
    wait_until("partition 1 committed to its end", WAIT, || async {
        broker
            .committed_offsets("connect-nodlq", "nodlq")
            .await
            .get(&1)
            == Some(&4)
    })
    .await;
    // Partition 0 stops, and says why in the status.
    let reason = super::failed_reason(&settings, 0).await;
    assert!(reason.contains("UnknownTopicOrPartition"), "{reason}");
    assert!(reason.contains("connect-error-nodlq"), "{reason}");
    assert!(
        reason.contains("delivery.create_topics = false"),
        "{reason}"
    );
    let (ready, why) = http_get(port, "/readyz").await.expect("/readyz answers");
    assert_eq!(ready, 503, "{why}");
    let (_, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains(
            "fcsink_partitions_stopped{cause=\"dead-letter\",code=\"UnknownTopicOrPartition\"} 1\n"
        ),
        "{metrics}"
    );
    // Nothing of the failed batch is committed.
    let committed = broker.committed_offsets("connect-nodlq", "nodlq").await;
    assert_eq!(committed.get(&0), None, "{committed:?}");
    assert!(process.terminate().success());

    // With the topic there, a restart writes the dead letters and goes on.
    broker.create_topic("connect-error-nodlq", 1).await;
    let (mut process, _) = super::run_listening(&config, dir.path().join("run2.log"));
    wait_until("both partitions committed to their end", WAIT, || async {
        broker.committed_offsets("connect-nodlq", "nodlq").await == BTreeMap::from([(0, 4), (1, 4)])
    })
    .await;
    assert!(process.terminate().success());

    // Ledger: every record reached the function or the dead-letter topic.
    let dead = broker
        .consume_all("connect-error-nodlq", Duration::from_secs(2))
        .await;
    let mut found: BTreeSet<Position> = delivered(&emulator)
        .iter()
        .map(|r| {
            let (p, o) = position(r);
            (p as i32, o)
        })
        .collect();
    for letter in &dead {
        let partition = letter
            .header("__connect.errors.partition")
            .unwrap()
            .parse()
            .unwrap();
        let offset = letter
            .header("__connect.errors.offset")
            .unwrap()
            .parse()
            .unwrap();
        found.insert((partition, offset));
    }
    let lost: Vec<_> = produced.difference(&found).collect();
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(!dead.is_empty(), "the poisoned batch is dead-lettered");
    assert!(
        dead.iter()
            .all(|d| d.header("__connect.errors.partition") == Some("0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_dead_letter_too_large_is_stripped_the_others_of_its_batch_go_whole() {
    let broker = Broker::sqlite().await;
    broker
        .create_topic_with("strip", 1, 1, &[LARGE_RECORDS])
        .await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(400));
    let big = vec![b'v'; 1_500_000];
    let records = [
        (
            Some(0),
            Some(b"small-0".as_slice()),
            Some(b"tiny".as_slice()),
        ),
        (Some(0), Some(b"big".as_slice()), Some(big.as_slice())),
        (
            Some(0),
            Some(b"small-2".as_slice()),
            Some(b"tiny".as_slice()),
        ),
    ];
    broker.produce("strip", &records).await;
    let dir = tempfile::tempdir().unwrap();
    // Tansu has no per-topic max.message.bytes: librdkafka's own limit refuses
    // the big one. Reading the 1.5 MB record needs a bigger fetch.
    let extra = "[batch]\nsize = 10\nlinger_ms = 200\n\n[source.kafka]\n\
                 \"message.max.bytes\" = 1000000\n\"max.partition.fetch.bytes\" = 2097152\n";
    let config = write_config(dir.path(), "strip", &broker, &emulator, "strip", extra);
    let (mut process, port) = super::run_listening(&config, dir.path().join("run.log"));
    wait_until("the batch committed", WAIT, || async {
        broker.committed_offsets("connect-strip", "strip").await == BTreeMap::from([(0, 3)])
    })
    .await;
    let (_, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("fcsink_records_stripped_total{topic=\"dead-letter\"} 1\n"),
        "{metrics}"
    );
    assert!(process.terminate().success());
    let mut dead = broker
        .consume_all("connect-error-strip", Duration::from_secs(2))
        .await;
    dead.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0].key.as_deref(), Some(b"big".as_slice()));
    assert_eq!(dead[0].value, None);
    assert_eq!(dead[0].header("fcsink.value.dropped"), Some("1500000"));
    for small in &dead[1..] {
        assert_eq!(
            small.value.as_deref(),
            Some(b"tiny".as_slice()),
            "written whole"
        );
        assert_eq!(small.header("fcsink.value.dropped"), None);
    }
}
