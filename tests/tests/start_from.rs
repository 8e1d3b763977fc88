//! Starting anywhere: `source.start_from` a time (offsets-for-times), and
//! `fcsink reset-offsets` on a stopped connector (dry run, to a time, to
//! an offset, refused while running), with records produced at known
//! CreateTime timestamps. On Apache Kafka: Tansu 0.6 answers a
//! ListOffsets by timestamp with the partition's first offset, whatever
//! the time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fc_emulator::Emulator;
use fcsink_tests::broker::Broker;

use super::fleet::{fcsink, fcsink_ok};
use fcsink_tests::connector::{self, Process, Running, delivered, position, wait_until};

const WAIT: Duration = Duration::from_secs(60);
/// The `fcsink` program, as a process.
const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

/// An hour ago, rounded to the second: record `i` of a partition is
/// produced at `BASE + i` seconds.
fn base_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now - 3_600_000) / 1000 * 1000
}

/// Ten records per partition, record `i` at `base + i` seconds.
async fn produce_timeline(broker: &Broker, topic: &str, partitions: i32, base: i64) {
    let values: Vec<String> = (0..10).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let records: Vec<(i32, &str, i64)> = (0..partitions)
        .flat_map(|p| {
            values
                .iter()
                .enumerate()
                .map(move |(i, v)| (p, v.as_str(), base + i as i64 * 1000))
        })
        .collect();
    broker.produce_at(topic, &records).await;
}

fn rfc3339(ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap();
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A connector config for `topic` with `start_from`, short sessions.
fn config_text(
    name: &str,
    broker: &Broker,
    emulator: &Emulator,
    topic: &str,
    start: &str,
) -> String {
    let text = connector::config(
        name,
        broker,
        emulator,
        topic,
        "",
        "[batch]\nsize = 5\nlinger_ms = 100\n",
    );
    let patched = text.replacen(
        "concurrency = 3",
        &format!("concurrency = 3\nstart_from = {start:?}\n[source.kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\""),
        1,
    );
    assert_ne!(patched, text, "the base config has a [source] table");
    patched
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The `(partition, offset)`s the function received.
fn positions(emulator: &Emulator) -> BTreeSet<(i64, i64)> {
    delivered(emulator).iter().map(position).collect()
}

/// Waits until the function received `expected`, then a little longer to
/// see that nothing else comes, and checks exactly those arrived.
async fn wait_delivered(emulator: &Emulator, expected: &BTreeSet<(i64, i64)>) {
    wait_until("the expected records", WAIT, || async {
        positions(emulator).is_superset(expected)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(&positions(emulator), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_a_time_delivers_the_records_from_then_on_and_keeps_committed_offsets() {
    let broker = Broker::kafka().await;
    broker.create_topic("since", 2).await;
    let base = base_ms();
    produce_timeline(&broker, "since", 2, base).await;
    // Partition 1 was committed before: it keeps its offset.
    broker
        .commit_offsets("connect-since", "since", &BTreeMap::from([(1, 2)]))
        .await;
    let emulator = connector::emulator(|_| {}).await;
    // Between record 4 (base + 4 s) and record 5.
    let start = rfc3339(base + 4_500);
    let running = Running::start(&config_text("since", &broker, &emulator, "since", &start));
    let expected: BTreeSet<(i64, i64)> = (5..10)
        .map(|o| (0, o))
        .chain((2..10).map(|o| (1, o)))
        .collect();
    wait_delivered(&emulator, &expected).await;
    running.stop().await.unwrap();
    assert_eq!(
        broker.committed_offsets("connect-since", "since").await,
        BTreeMap::from([(0, 10), (1, 10)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_a_time_after_every_record_starts_at_the_end() {
    let broker = Broker::kafka().await;
    broker.create_topic("after", 1).await;
    let base = base_ms();
    produce_timeline(&broker, "after", 1, base).await;
    let emulator = connector::emulator(|_| {}).await;
    let running = Running::start(&config_text("after", &broker, &emulator, "after", "-1m"));
    wait_until("the start offsets committed", WAIT, || async {
        broker.committed_offsets("connect-after", "after").await == BTreeMap::from([(0, 10)])
    })
    .await;
    broker
        .produce_at("after", &[(0, "new", base + 3_600_000)])
        .await;
    wait_delivered(&emulator, &BTreeSet::from([(0, 10)])).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_offsets_dry_run_to_timestamp_to_offset_and_refused_while_running() {
    let broker = Broker::kafka().await;
    broker.create_topic("reset", 1).await;
    let base = base_ms();
    produce_timeline(&broker, "reset", 1, base).await;
    // As if the connector had read everything.
    broker
        .commit_offsets("connect-reset", "reset", &BTreeMap::from([(0, 10)]))
        .await;
    let emulator = connector::emulator(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("reset", &broker, &emulator, "reset", "earliest");
    let config = write_config(dir.path(), "reset", &text);
    let config = config.to_str().unwrap();
    let committed = || async { broker.committed_offsets("connect-reset", "reset").await };

    let at = rfc3339(base + 4_500);
    let dry = fcsink_ok(&[
        "reset-offsets",
        "--config",
        config,
        "--to-timestamp",
        &at,
        "--dry-run",
    ])
    .await;
    assert!(
        dry.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["reset", "0", "10", "5"]),
        "{dry}"
    );
    assert!(dry.contains("Dry run: nothing committed"), "{dry}");
    assert_eq!(committed().await, BTreeMap::from([(0, 10)]));

    let done = fcsink_ok(&["reset-offsets", "--config", config, "--to-timestamp", &at]).await;
    assert!(done.contains("Committed for group connect-reset"), "{done}");
    assert_eq!(committed().await, BTreeMap::from([(0, 5)]));

    // The connector delivers from there.
    let log = dir.path().join("run.log");
    let mut process = Process::start(FCSINK, Path::new(config), log.clone());
    wait_delivered(&emulator, &(5..10).map(|o| (0, o)).collect()).await;
    wait_until("offset 10 committed", WAIT, || async {
        committed().await == BTreeMap::from([(0, 10)])
    })
    .await;

    // Refused while it runs, and nothing changes.
    let refused = fcsink(&["reset-offsets", "--config", config, "--to-earliest"]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("group connect-reset is active") && stderr.contains("stop every instance"),
        "{stderr}"
    );
    assert_eq!(committed().await, BTreeMap::from([(0, 10)]));
    assert!(process.terminate().success());

    // To an offset, within the log only.
    let outside = fcsink(&["reset-offsets", "--config", config, "--to-offset", "0:11"]).await;
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(
        !outside.status.success() && stderr.contains("holds offsets 0 to 10"),
        "{stderr}"
    );
    let moved = fcsink_ok(&["reset-offsets", "--config", config, "--to-offset", "0:7"]).await;
    assert!(
        moved
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["reset", "0", "10", "7"]),
        "{moved}"
    );
    assert_eq!(committed().await, BTreeMap::from([(0, 7)]));

    // A duration ago, past every record: the end.
    let latest = fcsink_ok(&["reset-offsets", "--config", config, "--to-timestamp", "-1m"]).await;
    assert!(
        latest
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["reset", "0", "7", "10"]),
        "{latest}"
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
