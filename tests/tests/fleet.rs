//! Operating a fleet: two `fcsink run` processes with one config against the
//! real broker, driven only through Kafka (`set`, `pause`, `resume`,
//! `status`); `/metrics` against what the emulator received; `--until-end`,
//! `send-test` and `delete`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use fc_emulator::Emulator;
use fcsink::config::Settings;
use fcsink::ops::status::{self, Report};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Process, delivered, position, wait_until};
use fcsink_tests::plugins::plugin;

const WAIT: Duration = Duration::from_secs(60);
/// The `fcsink` program, as a process.
const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

/// A connector config in a temporary directory: small batches, a short
/// session timeout so a killed instance's partitions move quickly, and
/// frequent status updates.
fn write_config(
    dir: &Path,
    name: &str,
    broker: &Broker,
    emulator: &Emulator,
    topic: &str,
    extra: &str,
) -> PathBuf {
    let extra = format!(
        "{extra}\n[source.kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\n[operations]\nstatus_interval_ms = 500\n"
    );
    let text = connector::config(name, broker, emulator, topic, "", &extra);
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs an `fcsink` command to completion.
pub(crate) async fn fcsink(args: &[&str]) -> Output {
    connector::run_command(FCSINK, args).await
}

/// Runs an `fcsink` command that must succeed; its standard output.
pub(crate) async fn fcsink_ok(args: &[&str]) -> String {
    connector::run_command_ok(FCSINK, args).await
}

async fn report(settings: &Settings) -> Report {
    status::collect(settings).await.expect("fcsink status")
}

/// Waits until `status` satisfies `condition`; returns that report.
async fn wait_status(
    settings: &Settings,
    what: &str,
    condition: impl Fn(&Report) -> bool,
) -> Report {
    let mut last = None;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        // The status topic appears once an instance has started.
        match status::collect(settings).await {
            Ok(report) if condition(&report) => return report,
            Ok(report) => last = Some(Ok(report)),
            Err(err) => last = Some(Err(format!("{err:#}"))),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}; last status: {last:#?}");
}

/// Produces `n` records round-robin over `partitions` partitions, keys `<tag>-<i>`.
async fn produce(broker: &Broker, topic: &str, partitions: i32, tag: &str, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let values: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"n":{i},"status":"{}"}}"#,
                if i % 2 == 0 { "ok" } else { "skip" }
            )
        })
        .collect();
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                Some(i as i32 % partitions),
                Some(keys[i].as_bytes()),
                Some(values[i].as_bytes()),
            )
        })
        .collect();
    broker.produce(topic, &records).await;
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET: the status code and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Prometheus text: every sample line as `name{labels}` → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("a sample line");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// The sum of every sample of family `name` (all label sets).
fn family(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_partitions_follow_the_config_topic_and_hand_over_partitions() {
    let broker = Broker::sqlite().await;
    broker.create_topic("fleet-in", 4).await;
    let emulator = connector::emulator(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "fleet",
        &broker,
        &emulator,
        "fleet-in",
        "[batch]\nsize = 5\nlinger_ms = 200",
    );
    let config_arg = config.to_str().unwrap();
    let settings = Settings::load(&config).unwrap();
    let mut a = Process::start(FCSINK, &config, dir.path().join("a.log"));
    wait_status(&settings, "the first instance with every partition", |r| {
        r.instances.len() == 1 && r.instances[0].partitions.len() == 4
    })
    .await;
    let mut b = Process::start(FCSINK, &config, dir.path().join("b.log"));

    // The partitions are split between the two.
    let split = wait_status(&settings, "two instances with two partitions each", |r| {
        r.instances.len() == 2 && r.instances.iter().all(|i| i.partitions.len() == 2)
    })
    .await;
    let owner: BTreeMap<i32, String> = split
        .partitions
        .iter()
        .map(|p| (p.partition, p.instance.clone().unwrap()))
        .collect();
    produce(&broker, "fleet-in", 4, "first", 40).await;
    wait_until("the first 40 records", WAIT, || async {
        delivered(&emulator).len() >= 40
    })
    .await;
    assert!(
        emulator
            .invocations()
            .iter()
            .all(|i| connector::records_of(i).len() <= 5)
    );

    // `set` reaches both: larger batches from every instance's partitions.
    let out = fcsink_ok(&[
        "set",
        "--config",
        config_arg,
        "batch.size=50",
        "batch.linger_ms=1000",
    ])
    .await;
    assert!(out.contains("batch.size = 50"), "{out}");
    wait_status(&settings, "batch.size=50 on both", |r| {
        r.instances.len() == 2 && r.instances.iter().all(|i| i.settings["batch.size"] == "50")
    })
    .await;
    let mark = emulator.invocations().len();
    produce(&broker, "fleet-in", 4, "second", 200).await;
    wait_until("the next 200 records", WAIT, || async {
        delivered(&emulator).len() >= 240
    })
    .await;
    let mut large_from = BTreeSet::new();
    for invocation in &emulator.invocations()[mark..] {
        let records = connector::records_of(invocation);
        assert!(records.len() <= 50);
        if records.len() > 5 {
            large_from.insert(owner[&(position(&records[0]).0 as i32)].clone());
        }
    }
    assert_eq!(
        large_from.len(),
        2,
        "both instances send batches above the old size"
    );

    // `pause` stops both; `resume` restarts both.
    fcsink_ok(&["pause", "--config", config_arg]).await;
    wait_status(&settings, "both paused", |r| {
        r.instances.len() == 2 && r.instances.iter().all(|i| i.state == "paused")
    })
    .await;
    let before = delivered(&emulator).len();
    produce(&broker, "fleet-in", 4, "paused", 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        delivered(&emulator).len(),
        before,
        "nothing is delivered while paused"
    );
    let paused = report(&settings).await;
    assert_eq!(paused.total_lag, 20, "{paused:#?}");
    assert!(paused.partitions.iter().all(|p| p.state == "paused"));
    fcsink_ok(&["resume", "--config", config_arg]).await;
    wait_until("the records produced while paused", WAIT, || async {
        delivered(&emulator).len() >= before + 20
    })
    .await;

    // One leaves; the other takes over its partitions and nothing is lost.
    // (Tansu 0.6 never expires a killed member, so its partitions would stay
    // unassigned: scripts/TANSU.md. A clean stop leaves the group.)
    assert!(b.terminate().success());
    produce(&broker, "fleet-in", 4, "after-stop", 40).await;
    let survivor = wait_status(
        &settings,
        "one instance with all four partitions, no lag",
        |r| r.instances.len() == 1 && r.instances[0].partitions.len() == 4 && r.total_lag == 0,
    )
    .await;
    let ends = broker.end_offsets("fleet-in").await;
    assert_eq!(ends.values().sum::<i64>(), 300);
    for p in &survivor.partitions {
        assert_eq!(Some(p.end), p.committed, "{p:?}");
        assert_eq!(p.end, ends[&p.partition]);
    }
    let seen: BTreeSet<(i64, i64)> = delivered(&emulator).iter().map(position).collect();
    for (&partition, &end) in &ends {
        for offset in 0..end {
            assert!(
                seen.contains(&(partition as i64, offset)),
                "record {partition}/{offset} lost"
            );
        }
    }

    // The plain and JSON reports show the instance and the lag.
    let text = fcsink_ok(&["status", "--config", config_arg]).await;
    assert!(
        text.contains("Instances: 1") && text.contains("Total lag: 0"),
        "{text}"
    );
    assert!(text.contains("batch.size = 50"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&fcsink_ok(&["status", "--config", config_arg, "--json"]).await)
            .unwrap();
    assert_eq!(json["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(json["instances"][0]["id"], survivor.instances[0].id);
    assert!(a.terminate().success());
    // A clean shutdown removes the instance from the status topic at once.
    assert!(report(&settings).await.instances.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_function_and_the_health_endpoints_answer() {
    let broker = Broker::sqlite().await;
    broker.create_topic("metered", 3).await;
    let emulator = connector::emulator(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let filter = format!(
        "[batch]\nsize = 7\nlinger_ms = 100\n\n[[transform]]\nplugin = {:?}\nconfig = {{ field = \"status\", op = \"equals\", value = \"ok\" }}",
        plugin("json-filter").display().to_string()
    );
    let config = write_config(
        dir.path(),
        "metered",
        &broker,
        &emulator,
        "metered",
        &filter,
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("run.log");
    let mut process = Process::start_with(
        FCSINK,
        &config,
        &["--listen", &listen, "--log-format", "json"],
        log.clone(),
    );
    produce(&broker, "metered", 3, "m", 60).await;
    wait_until("/readyz answers 200", WAIT, || async {
        tokio::task::spawn_blocking(move || get(port, "/readyz"))
            .await
            .unwrap()
            .is_some_and(|(s, _)| s == 200)
    })
    .await;
    wait_until("30 records at the function", WAIT, || async {
        delivered(&emulator).len() >= 30
    })
    .await;
    // Wait for the counters and lag to settle (the lag comes every 2 s).
    let mut samples = BTreeMap::new();
    let deadline = std::time::Instant::now() + WAIT;
    let settled = |samples: &BTreeMap<String, f64>| {
        family(samples, "fcsink_batch_records_total") == 60.0
            && samples
                .keys()
                .filter(|k| k.starts_with("fcsink_consumer_lag{"))
                .count()
                == 3
            && family(samples, "fcsink_consumer_lag") == 0.0
    };
    while !settled(&samples) {
        assert!(
            std::time::Instant::now() < deadline,
            "metrics did not settle: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some((200, text)) = tokio::task::spawn_blocking(move || get(port, "/metrics"))
            .await
            .unwrap()
        {
            samples = parse_metrics(&text);
        }
    }
    let invocations = emulator.invocations();
    assert_eq!(samples["fcsink_records_consumed_total"], 60.0);
    assert_eq!(samples["fcsink_records_filtered_total"], 30.0);
    assert_eq!(
        samples["fcsink_records_delivered_total"],
        delivered(&emulator).len() as f64
    );
    assert_eq!(samples["fcsink_records_dead_lettered_total"], 0.0);
    assert_eq!(
        samples["fcsink_invocations_total{status=\"2xx\"}"],
        invocations.len() as f64
    );
    assert_eq!(
        samples["fcsink_invocation_duration_seconds_count"],
        invocations.len() as f64
    );
    let batches = family(&samples, "fcsink_batches_total");
    assert!(
        batches >= invocations.len() as f64 && batches >= 60.0 / 7.0,
        "{samples:?}"
    );
    assert_eq!(samples["fcsink_transform_duration_seconds_count"], batches);
    assert_eq!(
        samples["fcsink_transform_batches_total{outcome=\"ok\"}"],
        batches
    );
    assert_eq!(get(port, "/healthz").map(|(s, _)| s), Some(200), "healthz");

    assert!(process.terminate().success());
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "Started" && l["level"] == "INFO"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_end_replays_what_was_there_at_start_including_a_test_record_and_exits() {
    let broker = Broker::sqlite().await;
    broker.create_topic("replay", 2).await;
    let emulator = connector::emulator(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "replay",
        &broker,
        &emulator,
        "replay",
        "[batch]\nsize = 10\nlinger_ms = 100",
    );
    let config_arg = config.to_str().unwrap();
    produce(&broker, "replay", 2, "r", 60).await;
    let sent = fcsink_ok(&[
        "send-test",
        "--config",
        config_arg,
        "--key",
        "console",
        "--value",
        "hello",
        "--partition",
        "1",
    ])
    .await;
    assert_eq!(sent.trim(), "Sent to replay partition 1 offset 30");

    let log = dir.path().join("replay.log");
    let mut process = Process::start_with(FCSINK, &config, &["--until-end"], log.clone());
    let status = process
        .wait_exit(WAIT)
        .await
        .expect("--until-end stops by itself");
    assert!(status.success());
    let records = delivered(&emulator);
    assert!(records.len() >= 61);
    assert!(
        records
            .iter()
            .any(|r| r["key"] == "console" && r["value"] == "hello" && r["partition"] == 1)
    );
    assert_eq!(
        broker.committed_offsets("connect-replay", "replay").await,
        BTreeMap::from([(0, 30), (1, 31)])
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("Replay progress"), "{log}");
    assert!(
        log.contains("Reached the end offsets present at start"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_group_and_the_topics_fcsink_created_after_confirmation() {
    let broker = Broker::sqlite().await;
    broker.create_topic("doomed", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "doomed", &broker, &emulator, "doomed", "");
    let config_arg = config.to_str().unwrap();
    produce(&broker, "doomed", 1, "d", 3).await;
    let mut process = Process::start(FCSINK, &config, dir.path().join("run.log"));
    wait_until("3 records at the function", WAIT, || async {
        delivered(&emulator).len() >= 3
    })
    .await;
    wait_until("the commit", WAIT, || async {
        broker.committed_offsets("connect-doomed", "doomed").await == BTreeMap::from([(0, 3)])
    })
    .await;

    // Refused while an instance runs, and without a confirmation.
    let running = fcsink(&["delete", "--config", config_arg, "--yes"]).await;
    assert!(!running.status.success());
    assert!(String::from_utf8_lossy(&running.stderr).contains("running"));
    assert!(process.terminate().success());
    let unconfirmed = fcsink(&["delete", "--config", config_arg]).await;
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));

    let out = fcsink_ok(&["delete", "--config", config_arg, "--yes"]).await;
    assert!(out.contains("Deleted group connect-doomed"), "{out}");
    assert!(out.contains("Deleted topic connect-error-doomed"), "{out}");
    // Tansu 0.6 deletes every topic of the cluster on any DeleteTopics
    // (scripts/TANSU.md), so only "gone" can be checked here, not that the
    // source topic stays.
    let left = topics(&broker).await;
    for topic in [
        "connect-error-doomed",
        "connect-config-doomed",
        "connect-status-doomed",
    ] {
        assert!(out.contains(topic), "{out}");
        assert!(!left.contains(topic), "{topic} is still there: {left:?}");
    }
}

/// The topics the broker knows.
async fn topics(broker: &Broker) -> BTreeSet<String> {
    let bootstrap = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))
            .unwrap()
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name().to_string())
            .collect()
    })
    .await
    .unwrap()
}
