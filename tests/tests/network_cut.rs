//! fcsink cut off from the network for 30 s and joined again: from the
//! broker, then from the function. fcsink runs as a process in a network
//! namespace of its own; the broker (one Apache Kafka node) and the emulator
//! listen on the far ends of two veth links, so each can be parted from
//! fcsink alone ([`fcsink_tests::netns`]), packets dropped silently as in a
//! real partition. Nothing may be lost or dead-lettered: every record
//! reaches the function and its offset is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fc_emulator::Emulator;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Process, delivered, position, wait_until};
use fcsink_tests::netns::Namespace;

const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");
/// How long each cut lasts (the 30 s).
const CUT: Duration = Duration::from_secs(30);
/// How long everything may take to arrive once joined again.
const CATCH_UP: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 3;
/// Records per wave: before, during and after the cut.
const WAVE: usize = 60;
/// The links: 0 to the broker, 1 to the function.
const BROKER_LINK: usize = 0;
const FUNCTION_LINK: usize = 1;

struct Stage {
    namespace: Namespace,
    broker: Broker,
    emulator: Emulator,
    fcsink: Process,
    topic: &'static str,
    _dir: tempfile::TempDir,
}

/// The broker and the emulator on their links, fcsink in the namespace.
async fn stage(topic: &'static str) -> Stage {
    let namespace = Namespace::new(2);
    let broker = Broker::kafka_on(namespace.link(BROKER_LINK).host_addr).await;
    broker.create_topic(topic, PARTITIONS).await;
    let emulator = connector::emulator_on(namespace.link(FUNCTION_LINK).host_addr, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cut.toml");
    std::fs::write(
        &config,
        connector::config(
            topic,
            &broker,
            &emulator,
            topic,
            "",
            "[batch]\nsize = 10\nlinger_ms = 100",
        ),
    )
    .unwrap();
    let fcsink = Process::start_in_netns(
        namespace.name(),
        FCSINK,
        &config,
        dir.path().join("fcsink.log"),
    );
    Stage {
        namespace,
        broker,
        emulator,
        fcsink,
        topic,
        _dir: dir,
    }
}

impl Stage {
    async fn produce_wave(&self, wave: usize) {
        let values: Vec<String> = (0..WAVE)
            .map(|i| format!("{}-{}", self.topic, wave * WAVE + i))
            .collect();
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, value)| (Some(i as i32 % PARTITIONS), None, Some(value.as_bytes())))
            .collect();
        self.broker.produce(self.topic, &records).await;
    }

    async fn wait_distinct(&mut self, n: usize, what: &str) {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while distinct(&self.emulator).len() < n {
            if let Some(status) = self.fcsink.wait_exit(Duration::ZERO).await {
                panic!(
                    "fcsink exited ({status}) waiting for {what}:\n{}",
                    self.log()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {CATCH_UP:?} waiting for {what}: {} of {n}; fcsink's log:\n{}",
                distinct(&self.emulator).len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cuts `link` for [`CUT`] while a wave is produced, then joins it again;
    /// afterwards every record arrives, none dead-lettered, all committed.
    async fn cut_and_check(mut self, link: usize) {
        self.produce_wave(0).await;
        self.wait_distinct(WAVE, "the first wave at the function")
            .await;
        self.namespace.cut(link);
        self.produce_wave(1).await;
        tokio::time::sleep(CUT).await;
        let alive = self.fcsink.wait_exit(Duration::ZERO).await;
        assert_eq!(alive, None, "fcsink rides out the cut: {}", self.log());
        assert_eq!(
            distinct(&self.emulator).len(),
            WAVE,
            "nothing of the second wave gets through the cut"
        );
        self.namespace.heal(link);
        self.produce_wave(2).await;
        self.wait_distinct(3 * WAVE, "every wave at the function after the cut")
            .await;
        let group = format!("connect-{}", self.topic);
        let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
            .map(|partition| (partition, (3 * WAVE) as i64 / i64::from(PARTITIONS)))
            .collect();
        wait_until("offsets committed after the cut", CATCH_UP, || async {
            self.broker.committed_offsets(&group, self.topic).await == ends
        })
        .await;
        let status = self.fcsink.terminate();
        assert!(status.success(), "fcsink exits cleanly: {}", self.log());

        let dead = self
            .broker
            .consume_all(
                &format!("connect-error-{}", self.topic),
                Duration::from_secs(2),
            )
            .await;
        assert!(
            dead.is_empty(),
            "nothing dead-lettered: {} records",
            dead.len()
        );
        let records = delivered(&self.emulator);
        assert_eq!(distinct(&self.emulator).len(), 3 * WAVE, "every record");
        assert_in_order_per_partition(&records);
        eprintln!(
            "{}: {} records delivered {} times ({} duplicates)",
            self.topic,
            3 * WAVE,
            records.len(),
            records.len() - 3 * WAVE
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.fcsink.log).unwrap_or_default()
    }
}

fn distinct(emulator: &Emulator) -> BTreeSet<(i64, i64)> {
    delivered(emulator).iter().map(position).collect()
}

/// A resend may repeat records, but each partition's first deliveries come
/// in offset order.
fn assert_in_order_per_partition(records: &[serde_json::Value]) {
    let mut highest: BTreeMap<i64, i64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for record in records {
        let (partition, offset) = position(record);
        if !seen.insert((partition, offset)) {
            continue;
        }
        let last = highest.entry(partition).or_insert(-1);
        assert!(
            offset > *last,
            "partition {partition}: {offset} after {last}"
        );
        *last = offset;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_from_the_broker_for_30_s_loses_nothing() {
    stage("cut-broker").await.cut_and_check(BROKER_LINK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_from_the_function_for_30_s_loses_nothing() {
    stage("cut-function")
        .await
        .cut_and_check(FUNCTION_LINK)
        .await;
}
