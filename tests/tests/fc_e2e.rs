//! Kafka → fcsink → Function Compute end to end: a real broker (Tansu), the
//! FC emulator checking signatures, real plugins, an independent producer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use fc_emulator::{Emulator, Fault};
use fcsink_tests::broker::{Broker, LARGE_RECORDS};
use fcsink_tests::connector::{self, Running, delivered, position, wait_until};
use fcsink_tests::plugins::plugin;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// The `fcsink` program, as a process.
const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

async fn setup(topic: &str, partitions: i32) -> (Broker, Emulator) {
    let broker = Broker::sqlite().await;
    broker.create_topic(topic, partitions).await;
    let emulator = connector::emulator(|_| {}).await;
    (broker, emulator)
}

/// Produces `n` JSON records round-robin over `partitions` partitions.
async fn produce_numbered(broker: &Broker, topic: &str, partitions: i32, n: usize) {
    let values: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"n":{i},"status":"{}"}}"#,
                if i % 2 == 0 { "ok" } else { "skip" }
            )
        })
        .collect();
    let keys: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                Some((i as i32) % partitions),
                Some(keys[i].as_bytes()),
                Some(values[i].as_bytes()),
            )
        })
        .collect();
    broker.produce(topic, &records).await;
}

async fn wait_delivered(emulator: &Emulator, n: usize) {
    wait_until(&format!("{n} records at the function"), WAIT, || async {
        delivered(emulator).len() >= n
    })
    .await;
}

async fn wait_committed(broker: &Broker, group: &str, topic: &str, expected: &BTreeMap<i32, i64>) {
    wait_until("offsets committed up to the end", WAIT, || async {
        &broker.committed_offsets(group, topic).await == expected
    })
    .await;
}

/// Each partition's records arrive in offset order.
fn assert_ordered_per_partition(records: &[Value]) {
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for record in records {
        let (partition, offset) = position(record);
        if let Some(previous) = last.insert(partition, offset) {
            assert!(
                offset > previous,
                "partition {partition}: offset {offset} after {previous}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fc2_delivers_every_record_in_order_and_commits() {
    let (broker, emulator) = setup("orders", 3).await;
    produce_numbered(&broker, "orders", 3, 90).await;
    let running = Running::start(&connector::config(
        "happy",
        &broker,
        &emulator,
        "orders",
        "",
        "[batch]\nsize = 7\nlinger_ms = 100",
    ));
    wait_delivered(&emulator, 90).await;
    wait_committed(
        &broker,
        "connect-happy",
        "orders",
        &BTreeMap::from([(0, 30), (1, 30), (2, 30)]),
    )
    .await;
    running.stop().await.unwrap();

    let records = delivered(&emulator);
    assert_eq!(records.len(), 90, "no duplicates on the happy path");
    assert_ordered_per_partition(&records);
    let invocations = emulator.invocations();
    assert!(
        invocations
            .iter()
            .all(|i| i.header("x-fc-invocation-type") == Some("Async") && i.status == 202)
    );
    assert!(
        invocations.iter().all(|i| records_per(i) <= 7),
        "batch.size bounds every request"
    );
    assert_eq!(invocations[0].service.as_deref(), Some("guide-hello_world"));
    assert_eq!(invocations[0].qualifier.as_deref(), Some("LATEST"));
    // The managed connector's format, byte for byte (key order included).
    let prefix = r#"{"key":"key-0","offset":0,"overflowFlag":false,"partition":0,"timestamp":"#;
    let suffix = r#","topic":"orders","value":"{\"n\":0,\"status\":\"ok\"}","valueSize":21}"#;
    let body = invocations
        .iter()
        .map(|i| i.body_text().into_owned())
        .find(|b| b.contains(prefix))
        .expect("record 0/0 sent");
    let element = &body[body.find(prefix).unwrap() + prefix.len()..];
    let digits = element.chars().take_while(char::is_ascii_digit).count();
    assert!(digits >= 13, "a millisecond timestamp: {element}");
    assert!(element[digits..].starts_with(suffix), "{body}");
}

fn records_per(invocation: &fc_emulator::Invocation) -> usize {
    connector::records_of(invocation).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fc3_delivers_and_gets_the_function_result() {
    let (broker, emulator) = setup("sync-in", 2).await;
    produce_numbered(&broker, "sync-in", 2, 20).await;
    let config = connector::config(
        "sync",
        &broker,
        &emulator,
        "sync-in",
        "api_version = \"2023-03-30\"\nsend_mode = \"sync\"",
        "",
    );
    let config = config.replace("service = \"guide-hello_world\"\n", "");
    let running = Running::start(&config);
    wait_delivered(&emulator, 20).await;
    wait_committed(
        &broker,
        "connect-sync",
        "sync-in",
        &BTreeMap::from([(0, 10), (1, 10)]),
    )
    .await;
    running.stop().await.unwrap();
    let invocations = emulator.invocations();
    assert!(invocations.iter().all(|i| i.status == 200
        && i.service.is_none()
        && i.qualifier.as_deref() == Some("LATEST")));
    assert!(invocations.iter().all(|i| {
        i.header("authorization")
            .unwrap()
            .starts_with("ACS3-HMAC-SHA256 Credential=")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_plugin_drops_records_and_their_offsets_still_commit() {
    let (broker, emulator) = setup("filtered", 2).await;
    produce_numbered(&broker, "filtered", 2, 40).await;
    let extra = format!(
        "[[transform]]\nplugin = {:?}\nconfig = {{ field = \"status\", op = \"equals\", value = \"ok\" }}",
        plugin("json-filter").display().to_string()
    );
    let running = Running::start(&connector::config(
        "filter", &broker, &emulator, "filtered", "", &extra,
    ));
    // Every record is either delivered or filtered: the commit reaches the end.
    wait_committed(
        &broker,
        "connect-filter",
        "filtered",
        &BTreeMap::from([(0, 20), (1, 20)]),
    )
    .await;
    running.stop().await.unwrap();
    let records = delivered(&emulator);
    assert_eq!(records.len(), 20);
    assert!(
        records
            .iter()
            .all(|r| r["value"].as_str().unwrap().contains(r#""status":"ok""#))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_overflow_example_makes_two_requests() {
    let (broker, emulator) = setup("big", 1).await;
    // Async (128 KB): 17 records of 127 KB in all, then one of 200 KB.
    let small = vec![b's'; 127 * 1024 / 17 - 120];
    let large = vec![b'L'; 200 * 1024];
    let mut records: Vec<_> = (0..17)
        .map(|_| (Some(0), None, Some(small.as_slice())))
        .collect();
    records.push((Some(0), None, Some(large.as_slice())));
    broker.produce("big", &records).await;
    let running = Running::start(&connector::config(
        "big",
        &broker,
        &emulator,
        "big",
        "",
        "[batch]\nsize = 20\nlinger_ms = 2000",
    ));
    wait_delivered(&emulator, 18).await;
    running.stop().await.unwrap();
    let invocations = emulator.invocations();
    assert_eq!(
        invocations.len(),
        2,
        "one request with the 17, one with the large record alone"
    );
    assert_eq!(records_per(&invocations[0]), 17);
    let overflowed = &connector::records_of(&invocations[1])[0];
    assert_eq!(overflowed["overflowFlag"], true);
    assert_eq!(overflowed["valueSize"], 200 * 1024);
    assert!(
        overflowed.get("value").is_none(),
        "sent without its content"
    );
    assert!(invocations.iter().all(|i| i.body.len() <= 128 * 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_without_dead_letters_or_duplicates() {
    let (broker, emulator) = setup("flaky", 1).await;
    emulator.inject(Fault::status(503).times(2));
    emulator.inject(Fault::status(429).times(1).retry_after(1));
    produce_numbered(&broker, "flaky", 1, 5).await;
    let extra =
        "[batch]\nsize = 5\nlinger_ms = 100\n[delivery]\nretries = 3\nbackoff_initial_ms = 50";
    let running = Running::start(&connector::config(
        "flaky", &broker, &emulator, "flaky", "", extra,
    ));
    wait_delivered(&emulator, 5).await;
    wait_committed(&broker, "connect-flaky", "flaky", &BTreeMap::from([(0, 5)])).await;
    running.stop().await.unwrap();
    let invocations = emulator.invocations();
    assert_eq!(invocations.iter().filter(|i| i.failed).count(), 3);
    assert_eq!(delivered(&emulator).len(), 5, "delivered exactly once");
    // The 429 asked for one second; the retry after it honoured that.
    let (throttled, next) = (&invocations[2], &invocations[3]);
    assert_eq!(throttled.status, 429);
    assert!(
        next.received_at
            .duration_since(throttled.received_at)
            .unwrap()
            >= Duration::from_millis(950)
    );
    assert!(
        broker
            .consume_all("connect-error-flaky", Duration::from_secs(1))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_dead_letters_the_batch_with_reason_headers() {
    let (broker, emulator) = setup("rejected", 1).await;
    // 400, not 404: a function that is not found is the target's failure
    // (`hostile::targets`), not the records'.
    emulator.inject(Fault::status(400).times(1));
    produce_numbered(&broker, "rejected", 1, 3).await;
    let extra = "[batch]\nsize = 3\nlinger_ms = 100\n[delivery]\nretries = 2";
    let running = Running::start(&connector::config(
        "rejected", &broker, &emulator, "rejected", "", extra,
    ));
    wait_committed(
        &broker,
        "connect-rejected",
        "rejected",
        &BTreeMap::from([(0, 3)]),
    )
    .await;
    running.stop().await.unwrap();
    assert_eq!(emulator.invocations().len(), 1, "a 400 is not retried");
    let dead = broker
        .consume_all("connect-error-rejected", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 3);
    for (i, record) in dead.iter().enumerate() {
        assert_eq!(
            record.key.as_deref(),
            Some(format!("key-{i}").as_bytes()),
            "the source record, unchanged"
        );
        assert_eq!(record.header("__connect.errors.topic"), Some("rejected"));
        assert_eq!(record.header("__connect.errors.partition"), Some("0"));
        assert_eq!(
            record.header("__connect.errors.offset"),
            Some(i.to_string().as_str())
        );
        assert_eq!(record.header("fcsink.error.status"), Some("400"));
        assert_eq!(record.header("fcsink.error.attempts"), Some("1"));
        assert_eq!(
            record.header("fcsink.error.target"),
            Some("fc:guide-hello_world/hello_world:LATEST")
        );
        assert_eq!(record.header("__connect.errors.stage"), Some("TASK_PUT"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_for_kafka_goes_without_its_value() {
    let broker = Broker::sqlite().await;
    broker
        .create_topic_with("too-large", 1, 1, &[LARGE_RECORDS])
        .await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(400));
    let big = vec![b'v'; 1_500_000];
    broker
        .produce(
            "too-large",
            &[(Some(0), Some(b"big".as_slice()), Some(big.as_slice()))],
        )
        .await;
    // The producer may send at most 1 MB; reading the record needs a bigger fetch.
    let config = connector::config("too-large", &broker, &emulator, "too-large", "", "").replace(
        "concurrency = 3",
        "concurrency = 3\n[source.kafka]\n\"message.max.bytes\" = 1000000\n\
         \"max.partition.fetch.bytes\" = 2097152",
    );
    let running = Running::start(&config);
    wait_committed(
        &broker,
        "connect-too-large",
        "too-large",
        &BTreeMap::from([(0, 1)]),
    )
    .await;
    running.stop().await.unwrap();
    let dead = broker
        .consume_all("connect-error-too-large", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value, None, "the value is left out");
    assert_eq!(dead[0].key.as_deref(), Some(b"big".as_slice()));
    assert_eq!(dead[0].header("fcsink.value.dropped"), Some("1500000"));
    assert_eq!(dead[0].header("__connect.errors.offset"), Some("0"));
    assert_eq!(dead[0].header("fcsink.error.status"), Some("400"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_with_http_200_is_a_failure() {
    let (broker, emulator) = setup("fn-error", 1).await;
    emulator.inject(Fault::function_error("boom").times(3));
    produce_numbered(&broker, "fn-error", 1, 2).await;
    // Without bisection, so that both records share the failed request.
    let extra = "[batch]\nsize = 2\nlinger_ms = 100\n[delivery]\nretries = 2\nbackoff_initial_ms = 20\n\
                 bisect_on_error = false";
    let target = "send_mode = \"sync\"";
    let running = Running::start(&connector::config(
        "fnerr", &broker, &emulator, "fn-error", target, extra,
    ));
    wait_committed(
        &broker,
        "connect-fnerr",
        "fn-error",
        &BTreeMap::from([(0, 2)]),
    )
    .await;
    running.stop().await.unwrap();
    let invocations = emulator.invocations();
    assert_eq!(invocations.len(), 3, "first attempt and two retries");
    assert!(invocations.iter().all(|i| i.status == 200 && i.error_type.as_deref() == Some("UnhandledInvocationError")));
    let dead = broker
        .consume_all("connect-error-fnerr", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 2);
    assert_eq!(
        dead[0].header("fcsink.error.code"),
        Some("UnhandledInvocationError")
    );
    assert_eq!(
        dead[0].header("__connect.errors.exception.message"),
        Some("boom")
    );
    assert_eq!(dead[0].header("fcsink.error.attempts"), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_dead_letters_only_the_poison_records_of_a_batch() {
    let (broker, emulator) = setup("bisect", 1).await;
    // The function raises on any payload that carries a poison record (no
    // name here may contain the word).
    emulator.inject(Fault::function_error("poisoned").matching("poison"));
    let poison = [7, 250, 499];
    let values: Vec<String> = (0..500)
        .map(|i| {
            let status = if poison.contains(&i) { "poison" } else { "ok" };
            format!(r#"{{"n":{i},"status":"{status}"}}"#)
        })
        .collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(0), None, Some(v.as_bytes())))
        .collect();
    broker.produce("bisect", &records).await;
    let extra =
        "[batch]\nsize = 500\nlinger_ms = 3000\n[delivery]\nretries = 1\nbackoff_initial_ms = 10";
    let running = Running::start(&connector::config(
        "bisect",
        &broker,
        &emulator,
        "bisect",
        "send_mode = \"sync\"",
        extra,
    ));
    wait_committed(
        &broker,
        "connect-bisect",
        "bisect",
        &BTreeMap::from([(0, 500)]),
    )
    .await;
    running.stop().await.unwrap();

    let dead = broker
        .consume_all("connect-error-bisect", Duration::from_secs(2))
        .await;
    let dead_offsets: Vec<i64> = dead
        .iter()
        .map(|r| {
            r.header("__connect.errors.offset")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        dead_offsets, poison,
        "exactly the poison records are dead-lettered"
    );
    assert!(
        dead.iter()
            .all(|r| r.header("fcsink.error.code") == Some("UnhandledInvocationError"))
    );
    let delivered = delivered(&emulator);
    let offsets: BTreeSet<i64> = delivered.iter().map(|r| position(r).1).collect();
    assert_eq!(delivered.len(), 497, "every other record delivered once");
    assert_eq!(offsets.len(), 497);
    assert!(poison.iter().all(|p| !offsets.contains(p)));
    assert_ordered_per_partition(&delivered);
    let calls = emulator.invocations().len();
    // The whole batch twice, then parts; far fewer than one per record.
    assert!(calls < 120, "{calls} invocations");
}

/// 960 records over 16 partitions, 16 batches in flight at most, to a
/// function that takes 200 ms and admits 40 calls a second (so eight in
/// flight is all it takes); what came of them: (calls throttled, records
/// delivered, records dead-lettered).
async fn throttling_storm(name: &str, adaptive: bool) -> (usize, usize, usize) {
    let (broker, emulator) = setup(name, 16).await;
    emulator.inject(Fault::rate_limit(40));
    emulator.inject(Fault::latency(Duration::from_millis(200)));
    produce_numbered(&broker, name, 16, 960).await;
    let extra = format!(
        "[batch]\nsize = 5\nlinger_ms = 50\n[delivery]\nretries = 10\nbackoff_initial_ms = 100\n\
         backoff_max_ms = 1000\nadaptive_concurrency = {adaptive}"
    );
    let config = connector::config(
        name,
        &broker,
        &emulator,
        name,
        "send_mode = \"sync\"",
        &extra,
    )
    .replace("concurrency = 3", "concurrency = 16");
    let running = Running::start(&config);
    let ends: BTreeMap<i32, i64> = (0..16).map(|p| (p, 60)).collect();
    wait_until("every batch handled", Duration::from_secs(120), || async {
        broker
            .committed_offsets(&format!("connect-{name}"), name)
            .await
            == ends
    })
    .await;
    running.stop().await.unwrap();
    let throttled = emulator
        .invocations()
        .iter()
        .filter(|i| i.status == 429)
        .count();
    let delivered: BTreeSet<(i64, i64)> = delivered(&emulator).iter().map(position).collect();
    let dead = broker
        .consume_all(&format!("connect-error-{name}"), Duration::from_secs(2))
        .await;
    assert_eq!(delivered.len() + dead.len(), 960, "{name}: nothing lost");
    let calls = emulator.invocations();
    if let (Some(first), Some(last)) = (calls.first(), calls.last()) {
        let span = last
            .received_at
            .duration_since(first.received_at)
            .unwrap_or_default();
        let ok = calls.iter().filter(|i| i.status == 200).count();
        eprintln!(
            "{name}: {ok} calls answered in {:.1} s ({:.1}/s, the function admits 40/s), {throttled} throttled",
            span.as_secs_f64(),
            ok as f64 / span.as_secs_f64()
        );
    }
    (throttled, delivered.len(), dead.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_concurrency_backs_off_a_throttling_function() {
    let (fixed_throttled, _, _) = throttling_storm("storm-fixed", false).await;
    let (throttled, delivered, dead) = throttling_storm("storm-adaptive", true).await;
    eprintln!("throttled calls: {fixed_throttled} at a fixed concurrency, {throttled} adaptive");
    assert_eq!(
        (delivered, dead),
        (960, 0),
        "every record delivered, none dead-lettered"
    );
    assert!(
        throttled * 4 < fixed_throttled * 3,
        "adaptive concurrency should throttle a quarter fewer calls at least: {throttled} vs {fixed_throttled}"
    );
}

/// How long the function is down in the circuit breaker's test.
const OUTAGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_holds_records_through_an_outage_and_probes_once_per_interval() {
    let (broker, emulator) = setup("outage", 3).await;
    produce_numbered(&broker, "outage", 3, 30).await;
    let extra = "[batch]\nsize = 2\nlinger_ms = 50\n[delivery]\nretries = 3\nbackoff_initial_ms = 20\n\
                 backoff_max_ms = 50\nbreaker_failures = 4\nbreaker_probe_interval_ms = 1000";
    let running = Running::start(&connector::config(
        "outage",
        &broker,
        &emulator,
        "outage",
        "send_mode = \"sync\"",
        extra,
    ));
    wait_delivered(&emulator, 6).await;
    // The function is down for a minute: every call answers 500.
    emulator.inject(Fault::status(500));
    let outage = emulator.invocations().len();
    produce_numbered(&broker, "outage", 3, 30).await;
    tokio::time::sleep(OUTAGE).await;
    let during = emulator.invocations_since(outage);
    emulator.clear_faults();
    wait_delivered(&emulator, 60).await;
    let ends = BTreeMap::from([(0, 20), (1, 20), (2, 20)]);
    wait_committed(&broker, "connect-outage", "outage", &ends).await;
    running.stop().await.unwrap();

    let dead = broker
        .consume_all("connect-error-outage", Duration::from_secs(2))
        .await;
    assert!(
        dead.is_empty(),
        "nothing is dead-lettered because the target is down: {}",
        dead.len()
    );
    let records = delivered(&emulator);
    let distinct: BTreeSet<(i64, i64)> = records.iter().map(position).collect();
    assert_eq!(distinct.len(), 60, "every record delivered");
    // Four failures open the breaker (two more requests may be in flight
    // then); after that one probe a second: about 60 over the outage.
    let failed = during.iter().filter(|i| i.status == 500).count();
    let seconds = OUTAGE.as_secs() as usize;
    assert!(
        (4 + seconds - 5..=4 + 2 + seconds + 1).contains(&failed),
        "{failed} calls during the outage"
    );
    let probes: Vec<SystemTime> = during.iter().skip(4 + 2).map(|i| i.received_at).collect();
    for pair in probes.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(gap >= Duration::from_millis(900), "probes {gap:?} apart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_request_budget_by_their_partitions() {
    let (broker, emulator) = setup("budget", 4).await;
    produce_numbered(&broker, "budget", 4, 240).await;
    // One record per request: 240 requests at 20 a second over both
    // instances take 12 s.
    let extra = "[batch]\nsize = 1\nlinger_ms = 10\n[delivery]\nmax_requests_per_second = 20";
    let config = connector::config("budget", &broker, &emulator, "budget", "", extra);
    let first = Running::start(&config);
    let second = Running::start(&config);
    let ends = BTreeMap::from([(0, 60), (1, 60), (2, 60), (3, 60)]);
    wait_committed(&broker, "connect-budget", "budget", &ends).await;
    first.stop().await.unwrap();
    second.stop().await.unwrap();

    let distinct: BTreeSet<(i64, i64)> = delivered(&emulator).iter().map(position).collect();
    assert_eq!(distinct.len(), 240);
    // Records the first instance had in flight when the second joined are
    // sent again: requests too, under the same budget.
    let mut times: Vec<SystemTime> = emulator
        .invocations()
        .iter()
        .map(|i| i.received_at)
        .collect();
    times.sort();
    // Until librdkafka's first statistics (2 s) each instance may use the
    // whole budget; from then on they share it. A rebalance stops both
    // instances for a while (longer on a loaded machine), so the rate is
    // judged by the typical second, not the average: the budget is a
    // ceiling, and a pause below it is not what this test is about.
    let start = times[0] + Duration::from_secs(3);
    let mut per_second: Vec<usize> = Vec::new();
    for t in times.iter().filter(|t| **t >= start) {
        let bin = t.duration_since(start).unwrap().as_secs() as usize;
        per_second.resize(per_second.len().max(bin + 1), 0);
        per_second[bin] += 1;
    }
    // The last second is cut short by the end of the records.
    per_second.pop();
    let mut sorted = per_second.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    eprintln!("requests in each second over both instances: {per_second:?}, budget 20");
    // Each instance sends 10 or 11 in any one second; both using the whole
    // budget would send 40; one counting a single partition instead of
    // two, 15.
    assert!(
        (18..=22).contains(&median),
        "{median} requests in the typical second over both instances, budget 20: {per_second:?}"
    );
}

/// One partition of 240 records over 12 keys, sent by a function that
/// takes 300 ms, with `source.ordering = ordering` and 4 batches at once:
/// the invocations, in the order they were answered, and the emulator's
/// per-key order violations.
async fn one_partition_in_parallel(
    name: &str,
    ordering: &str,
) -> (Vec<fc_emulator::Invocation>, Vec<String>) {
    let (broker, emulator) = setup(name, 1).await;
    emulator.inject(Fault::latency(Duration::from_millis(300)));
    let records: Vec<(String, String)> = (0..240)
        .map(|i| (format!("key-{}", i % 12), format!(r#"{{"n":{i}}}"#)))
        .collect();
    let produced: Vec<_> = records
        .iter()
        .map(|(key, value)| (Some(0), Some(key.as_bytes()), Some(value.as_bytes())))
        .collect();
    broker.produce(name, &produced).await;
    let config = connector::config(
        name,
        &broker,
        &emulator,
        name,
        "send_mode = \"sync\"",
        "[batch]\nsize = 10\nlinger_ms = 50",
    )
    .replace(
        "concurrency = 3",
        &format!("concurrency = 4\nordering = \"{ordering}\""),
    );
    let running = Running::start(&config);
    wait_committed(
        &broker,
        &format!("connect-{name}"),
        name,
        &BTreeMap::from([(0, 240)]),
    )
    .await;
    running.stop().await.unwrap();
    let distinct: BTreeSet<(i64, i64)> = delivered(&emulator).iter().map(position).collect();
    assert_eq!(distinct.len(), 240, "every record delivered");
    (emulator.invocations(), emulator.key_order_violations())
}

/// Pairs of invocations that were at the function at once: one arrived
/// before the other's 300 ms were over.
fn concurrent_pairs(
    invocations: &[fc_emulator::Invocation],
) -> Vec<(&fc_emulator::Invocation, &fc_emulator::Invocation)> {
    let mut pairs = Vec::new();
    // In the order they were answered.
    for (i, earlier) in invocations.iter().enumerate() {
        for later in &invocations[i + 1..] {
            let gap = later
                .received_at
                .duration_since(earlier.received_at)
                .or_else(|_| earlier.received_at.duration_since(later.received_at))
                .unwrap_or_default();
            if gap < Duration::from_millis(250) {
                pairs.push((earlier, later));
            }
        }
    }
    pairs
}

fn keys_of(invocation: &fc_emulator::Invocation) -> BTreeSet<String> {
    connector::records_of(invocation)
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_ordering_sends_batches_of_one_partition_at_once_and_keeps_each_key_in_order() {
    let (invocations, violations) = one_partition_in_parallel("by-key", "key").await;
    assert!(
        violations.is_empty(),
        "per-key order, as the emulator saw it: {violations:?}"
    );
    let concurrent = concurrent_pairs(&invocations);
    assert!(
        concurrent.len() >= 6,
        "batches of the one partition were in flight together: {} pairs",
        concurrent.len()
    );
    for (earlier, later) in &concurrent {
        let shared: Vec<String> = keys_of(earlier)
            .intersection(&keys_of(later))
            .cloned()
            .collect();
        assert!(
            shared.is_empty(),
            "keys {shared:?} were in two batches in flight at once"
        );
    }
    // Each key's records in offset order, over all requests (those of one
    // key were never at the function at once, so the order they were
    // answered in is the order they were sent in).
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for record in invocations.iter().flat_map(connector::records_of) {
        let key = record["key"].as_str().unwrap().to_string();
        let offset = record["offset"].as_i64().unwrap();
        if let Some(previous) = last.insert(key.clone(), offset) {
            assert!(offset > previous, "{key}: offset {offset} after {previous}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ordering_sends_batches_of_one_partition_as_fast_as_permits_allow() {
    let (invocations, _) = one_partition_in_parallel("unordered", "none").await;
    // 24 batches of 10, four at a time.
    let concurrent = concurrent_pairs(&invocations);
    assert!(
        concurrent.len() >= 12,
        "batches of the one partition were in flight together: {} pairs",
        concurrent.len()
    );
    // Records are dealt a whole batch at a time (a fetch that splits a
    // batch's records may make a short one).
    let full = invocations.iter().filter(|i| records_per(i) == 10).count();
    assert!(full >= 20, "{full} of {} requests full", invocations.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_stop_pauses_only_the_failing_partition() {
    let (broker, emulator) = setup("stop", 3).await;
    // Partition 1's third record poisons its batch.
    emulator.inject(Fault::status(400).matching("poison").times(100));
    let mut records = Vec::new();
    let values: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            if i == 7 {
                b"poison".to_vec()
            } else {
                format!("v{i}").into_bytes()
            }
        })
        .collect();
    for (i, value) in values.iter().enumerate() {
        records.push((Some((i % 3) as i32), None, Some(value.as_slice())));
    }
    broker.produce("stop", &records).await;
    let extra = "[batch]\nsize = 1\nlinger_ms = 50\n[delivery]\nfailure_policy = \"stop\"";
    let running = Running::start(&connector::config(
        "stop", &broker, &emulator, "stop", "", extra,
    ));
    wait_committed(
        &broker,
        "connect-stop",
        "stop",
        &BTreeMap::from([(0, 10), (1, 2), (2, 10)]),
    )
    .await;
    // Give partition 1 time to (wrongly) go on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.stop().await.unwrap();
    let positions: BTreeSet<(i64, i64)> = delivered(&emulator).iter().map(position).collect();
    assert_eq!(
        positions.iter().filter(|(p, _)| *p == 1).count(),
        2,
        "partition 1 stops at the poisoned record"
    );
    assert_eq!(
        positions.iter().filter(|(p, _)| *p != 1).count(),
        20,
        "the other partitions go on"
    );
    assert_eq!(
        broker.committed_offsets("connect-stop", "stop").await,
        BTreeMap::from([(0, 10), (1, 2), (2, 10)])
    );
    assert!(
        broker
            .consume_all("connect-error-stop", Duration::from_secs(1))
            .await
            .is_empty(),
        "stop does not dead-letter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_dead_letters_its_batch_and_the_rest_flows() {
    let (broker, emulator) = setup("trap", 1).await;
    let values = ["a", "b", "BAD", "c"];
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(0), None, Some(v.as_bytes())))
        .collect();
    broker.produce("trap", &records).await;
    let extra = format!(
        "[batch]\nsize = 2\nlinger_ms = 100\n[[transform]]\nplugin = {:?}\nconfig = {{ mode = \"trap\", trigger = \"BAD\" }}",
        plugin("misbehave").display().to_string()
    );
    let running = Running::start(&connector::config(
        "trap", &broker, &emulator, "trap", "", &extra,
    ));
    wait_committed(&broker, "connect-trap", "trap", &BTreeMap::from([(0, 4)])).await;
    running.stop().await.unwrap();
    let delivered: BTreeSet<_> = delivered(&emulator)
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    let dead = broker
        .consume_all("connect-error-trap", Duration::from_secs(2))
        .await;
    let dead_values: BTreeSet<_> = dead
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    // The trapped batch holds BAD (and c too when it arrived in time).
    assert!(
        delivered.contains("a") && delivered.contains("b") && dead_values.contains("BAD"),
        "{delivered:?} {dead_values:?}"
    );
    assert!(delivered.is_disjoint(&dead_values));
    let all: BTreeSet<_> = delivered.union(&dead_values).cloned().collect();
    assert_eq!(
        all,
        BTreeSet::from(["a", "b", "BAD", "c"].map(String::from)),
        "every record delivered or dead-lettered"
    );
    assert_eq!(dead[0].header("fcsink.error.code"), Some("plugin-trapped"));
    assert_eq!(dead[0].header("fcsink.error.plugin"), Some("misbehave"));
    assert_eq!(
        dead[0].header("__connect.errors.stage"),
        Some("TRANSFORMATION")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_account_role_credentials_come_from_sts_and_are_refreshed() {
    let broker = Broker::sqlite().await;
    broker.create_topic("role", 1).await;
    // Temporary credentials live 3 s, so fcsink must refresh them mid-run.
    let emulator = connector::emulator(|c| c.sts_lifetime = Some(Duration::from_secs(3))).await;
    let target = format!(
        "account_id = \"1234567890123456\"\nrole = \"AliyunKafkaConnectorRole\"\nsts_endpoint = \"http://{}\"",
        emulator.addr()
    );
    let running = Running::start(&connector::config(
        "role",
        &broker,
        &emulator,
        "role",
        &target,
        "[batch]\nsize = 1\nlinger_ms = 10",
    ));
    for round in 0..3 {
        let value = format!("round-{round}");
        broker
            .produce("role", &[(Some(0), None, Some(value.as_bytes()))])
            .await;
        wait_delivered(&emulator, round + 1).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    running.stop().await.unwrap();
    let invocations = emulator.invocations();
    assert!(
        invocations
            .iter()
            .all(|i| i.access_key_id.starts_with("STS.")
                && i.header("x-fc-security-token").is_some())
    );
    assert!(
        invocations
            .iter()
            .all(|i| i.header("x-fc-account-id") == Some("1234567890123456"))
    );
    assert!(
        emulator.assume_role_calls() >= 2,
        "credentials refreshed before expiry"
    );
    assert!(!invocations.iter().any(|i| i.failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_names_the_field_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"Bad_Name\"\n[source]\nbootstrap_servers = \"x:1\"\ntopics = [\"t\"]\n[target.fc]\nendpoint = \"http://127.0.0.1:1\"\nservice = \"s\"\nfunction = \"f\"\n").unwrap();
    let output = std::process::Command::new(FCSINK)
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`name`: must be 1-48 characters of 0-9, a-z and '-'"),
        "{stderr}"
    );
    assert!(stderr.contains("Bad_Name"), "{stderr}");

    std::fs::write(&path, "name = \"ok\"\n[source]\nbootstrap_servers = \"x:1\"\ntopics = [\"t\"]\n[batch]\nsize = 9000\n[target.fc]\nendpoint = \"http://127.0.0.1:1\"\nservice = \"s\"\nfunction = \"f\"\n").unwrap();
    let output = std::process::Command::new(FCSINK)
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`batch.size`: must be between 1 and 5000 (got 9000)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_call_slower_than_the_poll_interval_keeps_group_membership() {
    let (broker, emulator) = setup("slow", 1).await;
    // The first call takes longer than max.poll.interval.ms (and the session timeout).
    emulator.inject(Fault::latency(Duration::from_secs(10)).times(1));
    produce_numbered(&broker, "slow", 1, 6).await;
    let config = connector::config("slow", &broker, &emulator, "slow", "send_mode = \"sync\"", "[batch]\nsize = 3\nlinger_ms = 50")
        .replace("timeout_ms = 10000", "timeout_ms = 30000")
        .replace("concurrency = 3", "concurrency = 3\n[source.kafka]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n\"max.poll.interval.ms\" = 7000");
    let running = Running::start(&config);
    wait_committed(&broker, "connect-slow", "slow", &BTreeMap::from([(0, 6)])).await;
    running.stop().await.unwrap();
    // Had the consumer lost its membership, the slow batch would have been
    // consumed and sent again after rejoining.
    let positions: Vec<_> = delivered(&emulator).iter().map(position).collect();
    assert_eq!(positions, (0..6).map(|o| (0, o)).collect::<Vec<_>>());
    assert_eq!(emulator.invocations().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_plugin_fails_are_dead_lettered_and_the_others_delivered() {
    let (broker, emulator) = setup("partial", 1).await;
    produce_numbered(&broker, "partial", 1, 10).await;
    let extra = format!(
        "[batch]\nsize = 10\nlinger_ms = 100\n[[transform]]\nplugin = {:?}\nconfig = {{ mode = \"fail-odd\" }}",
        plugin("misbehave").display().to_string()
    );
    let running = Running::start(&connector::config(
        "partial", &broker, &emulator, "partial", "", &extra,
    ));
    wait_committed(
        &broker,
        "connect-partial",
        "partial",
        &BTreeMap::from([(0, 10)]),
    )
    .await;
    running.stop().await.unwrap();
    let delivered: Vec<i64> = delivered(&emulator).iter().map(|r| position(r).1).collect();
    assert_eq!(delivered, vec![0, 2, 4, 6, 8]);
    let dead = broker
        .consume_all("connect-error-partial", Duration::from_secs(2))
        .await;
    let dead_offsets: Vec<_> = dead
        .iter()
        .map(|r| r.header("__connect.errors.offset").unwrap().to_string())
        .collect();
    assert_eq!(dead_offsets, vec!["1", "3", "5", "7", "9"]);
    assert!(
        dead.iter()
            .all(|r| r.header("fcsink.error.code") == Some("plugin-failed-record"))
    );
    assert_eq!(
        dead[0].header("__connect.errors.exception.message"),
        Some("odd offset 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_function_pauses_the_partition_and_nothing_is_lost_or_reordered() {
    let (broker, emulator) = setup("backlog", 1).await;
    // 2,000 records of 1 KB against a 1 MiB buffer: the partition must be
    // paused and resumed several times while the function takes 50 ms a call.
    emulator.inject(Fault::latency(Duration::from_millis(50)).times(u32::MAX));
    let value = vec![b'v'; 1024];
    let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
    let records: Vec<_> = keys
        .iter()
        .map(|k| (Some(0), Some(k.as_bytes()), Some(value.as_slice())))
        .collect();
    broker.produce("backlog", &records).await;
    let config = connector::config(
        "backlog",
        &broker,
        &emulator,
        "backlog",
        "",
        "[batch]\nsize = 100\nlinger_ms = 50",
    )
    .replace("concurrency = 3", "concurrency = 3\nbuffer_mb = 1");
    let running = Running::start(&config);
    wait_committed(
        &broker,
        "connect-backlog",
        "backlog",
        &BTreeMap::from([(0, 2000)]),
    )
    .await;
    running.stop().await.unwrap();
    let offsets: Vec<i64> = delivered(&emulator).iter().map(|r| position(r).1).collect();
    assert_eq!(
        offsets,
        (0..2000).collect::<Vec<_>>(),
        "every record once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_batch_in_flight_and_leaves_the_queue_to_the_next_owner() {
    let (broker, emulator) = setup("drain", 1).await;
    emulator.inject(Fault::latency(Duration::from_millis(1500)));
    produce_numbered(&broker, "drain", 1, 20).await;
    let config = connector::config(
        "drain",
        &broker,
        &emulator,
        "drain",
        "send_mode = \"sync\"",
        "[batch]\nsize = 2\nlinger_ms = 50",
    );
    let running = Running::start(&config);
    wait_delivered(&emulator, 2).await;
    // The second batch is in flight, eight more are queued.
    running.stop().await.unwrap();
    let positions: Vec<_> = delivered(&emulator).iter().map(position).collect();
    let handled = positions.len() as i64;
    assert!(
        (2..=6).contains(&handled),
        "only the batches in flight at the signal finish: {positions:?}"
    );
    assert_eq!(positions, (0..handled).map(|o| (0, o)).collect::<Vec<_>>());
    // What was delivered is committed; the rest is left for the next owner.
    let committed = broker.committed_offsets("connect-drain", "drain").await;
    assert_eq!(committed, BTreeMap::from([(0, handled)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_slower_than_the_shutdown_grace_is_left_uncommitted() {
    let (broker, emulator) = setup("grace", 1).await;
    produce_numbered(&broker, "grace", 1, 4).await;
    emulator.inject(Fault::latency(Duration::from_secs(20)).times(1));
    let config = connector::config(
        "grace",
        &broker,
        &emulator,
        "grace",
        "send_mode = \"sync\"\ntimeout_ms = 30000",
        "[batch]\nsize = 10\nlinger_ms = 50\n\n[operations]\nshutdown_grace_ms = 1000",
    )
    .replace("timeout_ms = 10000\n", "");
    let running = Running::start(&config);
    wait_until("the slow call under way", WAIT, || async {
        emulator.fc_started() > 0
    })
    .await;
    running.stop().await.unwrap();
    assert!(
        delivered(&emulator).is_empty(),
        "the stop did not wait for the slow call"
    );
    let committed = broker.committed_offsets("connect-grace", "grace").await;
    assert_eq!(committed.get(&0), None, "{committed:?}");
}
