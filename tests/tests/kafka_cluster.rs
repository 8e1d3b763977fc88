//! fcsink against a three-node Apache Kafka cluster (KRaft, combined
//! nodes) and the failures Tansu cannot show: a partition leader SIGKILLed
//! mid-stream, static membership across a SIGKILL, a SIGKILLed instance's
//! partitions taken over after the default session timeout.
//!
//! One test, one cluster, scenarios in order (each on its own topic and
//! group), so the JVMs start once. Every scenario ends with the ledger
//! check: every offset of the source topic reached the function emulator.
//! Run with `make kafka-cluster`; needs `scripts/install-kafka.sh`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use fc_emulator::Emulator;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Process, delivered, position, wait_until};

const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");
/// librdkafka's default `session.timeout.ms`, which these tests keep.
const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster() {
    let started = Instant::now();
    let mut broker = Broker::kafka_cluster(3).await;
    eprintln!("cluster of 3 ready in {:?}", started.elapsed());
    let dir = tempfile::tempdir().unwrap();

    let step = Instant::now();
    leader_killed_mid_stream(&mut broker, dir.path()).await;
    eprintln!("leader killed mid-stream: {:?}", step.elapsed());

    let step = Instant::now();
    static_member_restarts_without_waiting(&broker, dir.path()).await;
    eprintln!("static member restart: {:?}", step.elapsed());

    let step = Instant::now();
    survivor_takes_over_a_killed_instance(&broker, dir.path()).await;
    eprintln!("survivor takes over: {:?}", step.elapsed());
}

/// The node leading partition 0 is SIGKILLed while records flow and comes
/// back; a follower in sync takes over and nothing is lost.
async fn leader_killed_mid_stream(broker: &mut Broker, dir: &Path) {
    let topic = "ha-in";
    broker
        .create_topic_with(topic, PARTITIONS, 3, &[("min.insync.replicas", "2")])
        .await;
    let emulator = connector::emulator(|_| {}).await;
    let mut sink = start(broker, &emulator, dir, "ha", topic, None);

    produce(broker, topic, "before", 300).await;
    wait_delivered(&emulator, 100).await;
    let leader = broker
        .leader_of(topic, 0)
        .await
        .expect("partition 0 has a leader");
    broker.kill_node(leader);
    produce(broker, topic, "leader-down", 300).await;
    broker.start_node(leader).await;
    produce(broker, topic, "leader-back", 300).await;

    assert_all_delivered(broker, &emulator, topic).await;
    sink.kill();
}

/// An instance with `source.instance_id` SIGKILLed and started again gets
/// its partitions back at once: the broker knows the static member and does
/// not wait `session.timeout.ms` for the dead one, as it would for a
/// dynamic member.
async fn static_member_restarts_without_waiting(broker: &Broker, dir: &Path) {
    let topic = "static-in";
    broker.create_topic_with(topic, PARTITIONS, 3, &[]).await;
    let emulator = connector::emulator(|_| {}).await;
    let mut sink = start(broker, &emulator, dir, "static", topic, Some("sink-0"));
    produce(broker, topic, "first", 60).await;
    wait_delivered(&emulator, 60).await;

    sink.kill();
    let restarted = Instant::now();
    let mut sink = start(broker, &emulator, dir, "static", topic, Some("sink-0"));
    produce(broker, topic, "after-restart", 60).await;
    assert_all_delivered(broker, &emulator, topic).await;
    let took = restarted.elapsed();
    assert!(
        took < SESSION_TIMEOUT / 3,
        "the static member took {took:?} to resume (a dynamic member waits for the session timeout)"
    );
    sink.kill();
}

/// Two instances share a group; one is SIGKILLed. With the default session
/// timeout the survivor gets its partitions within that timeout (plus a
/// rebalance), and every record is delivered.
async fn survivor_takes_over_a_killed_instance(broker: &Broker, dir: &Path) {
    let topic = "fleet-in";
    broker.create_topic_with(topic, 4, 3, &[]).await;
    let emulator = connector::emulator(|_| {}).await;
    let mut a = start(broker, &emulator, dir, "pair", topic, None);
    let mut b = start(broker, &emulator, dir, "pair", topic, None);
    // Both members joined: records on every partition get through.
    produce(broker, topic, "both", 80).await;
    wait_delivered(&emulator, 80).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    b.kill();
    let killed = Instant::now();
    produce(broker, topic, "after-kill", 80).await;
    assert_all_delivered(broker, &emulator, topic).await;
    let took = killed.elapsed();
    assert!(
        took < SESSION_TIMEOUT + Duration::from_secs(15),
        "the survivor took {took:?} to take over"
    );
    a.kill();
}

fn start(
    broker: &Broker,
    emulator: &Emulator,
    dir: &Path,
    name: &str,
    topic: &str,
    instance_id: Option<&str>,
) -> Process {
    let mut config = connector::config(
        name,
        broker,
        emulator,
        topic,
        "",
        "[batch]\nsize = 20\nlinger_ms = 50\n",
    );
    if let Some(id) = instance_id {
        config = config.replacen(
            "concurrency = 3",
            &format!("concurrency = 3\ninstance_id = \"{id}\""),
            1,
        );
    }
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let log = dir.join(format!("{name}.log"));
    Process::start(FCSINK, &file, log)
}

/// Produces `count` records spread over the partitions, values `label-i`.
async fn produce(broker: &Broker, topic: &str, label: &str, count: usize) {
    let values: Vec<String> = (0..count).map(|i| format!("{label}-{i}")).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (None, Some(v.as_bytes()), Some(v.as_bytes())))
        .collect();
    broker.produce(topic, &records).await;
}

async fn wait_delivered(emulator: &Emulator, at_least: usize) {
    wait_until(
        "records at the function",
        Duration::from_secs(60),
        || async { delivered(emulator).len() >= at_least },
    )
    .await;
}

/// The ledger: every offset below each partition's end reached the function.
async fn assert_all_delivered(broker: &Broker, emulator: &Emulator, topic: &str) {
    let ends = broker.end_offsets(topic).await;
    let total: i64 = ends.values().sum();
    let deadline = Duration::from_secs(90);
    let started = Instant::now();
    loop {
        let seen: BTreeSet<(i64, i64)> = delivered(emulator).iter().map(position).collect();
        let missing: Vec<(i32, i64)> = ends
            .iter()
            .flat_map(|(&p, &end)| (0..end).map(move |o| (p, o)))
            .filter(|&(p, o)| !seen.contains(&(i64::from(p), o)))
            .collect();
        if missing.is_empty() {
            let duplicates = delivered(emulator).len() as i64 - total;
            eprintln!("{topic}: {total} records delivered, {duplicates} duplicates");
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "{topic}: {} of {total} records never reached the function, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
