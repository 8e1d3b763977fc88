//! `delivery.idempotency = "fc_task_id"` end to end: FC's answer is lost
//! after the function ran, fcsink retries with the same task ID, and the
//! emulator (asynchronous tasks on) refuses the copy as FC does, so every
//! record runs exactly once. Without it, the same faults run records twice.

use std::collections::BTreeMap;
use std::time::Duration;

use fc_emulator::{Emulator, Fault};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, position, records_of, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const RECORDS: usize = 10;

/// Ten records in two requests of five; the first answer of each is lost
/// (503) after the function ran. Returns the emulator and the broker once
/// every offset is committed.
async fn lost_answers(name: &str, target_extra: &str, idempotency: &str) -> (Broker, Emulator) {
    let broker = Broker::sqlite().await;
    broker.create_topic(name, 1).await;
    let emulator = connector::emulator(|config| config.async_tasks = true).await;
    emulator.inject(Fault::answer_lost(503).times(2));
    let values: Vec<String> = (0..RECORDS).map(|i| format!("{{\"n\":{i}}}")).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(0), Some(b"k".as_slice()), Some(v.as_bytes())))
        .collect();
    broker.produce(name, &records).await;
    let extra = format!(
        "[batch]\nsize = 5\nlinger_ms = 100\n[delivery]\nretries = 3\nbackoff_initial_ms = 50\n{idempotency}"
    );
    let mut config = connector::config(name, &broker, &emulator, name, target_extra, &extra);
    if target_extra.contains("2023-03-30") {
        // FC 3.0 has no services.
        config = config.replace("service = \"guide-hello_world\"\n", "");
    }
    let running = Running::start(&config);
    let group = format!("connect-{name}");
    wait_until("offsets committed up to the end", WAIT, || async {
        broker.committed_offsets(&group, name).await == BTreeMap::from([(0, RECORDS as i64)])
    })
    .await;
    running.stop().await.unwrap();
    (broker, emulator)
}

/// How many times the function ran each record.
fn executions(emulator: &Emulator) -> BTreeMap<(i64, i64), usize> {
    let mut runs = BTreeMap::new();
    for invocation in emulator.executed() {
        for record in records_of(&invocation) {
            *runs.entry(position(&record)).or_default() += 1;
        }
    }
    runs
}

async fn assert_nothing_dead_lettered(broker: &Broker, name: &str) {
    let dead = broker
        .consume_all(&format!("connect-error-{name}"), Duration::from_secs(1))
        .await;
    assert!(dead.is_empty(), "{dead:?}");
}

async fn each_record_runs_once(name: &str, target_extra: &str, header: &str) {
    let (broker, emulator) = lost_answers(name, target_extra, "idempotency = \"fc_task_id\"").await;
    let runs = executions(&emulator);
    assert_eq!(runs.len(), RECORDS, "{runs:?}");
    assert!(
        runs.values().all(|&n| n == 1),
        "executed once each: {runs:?}"
    );
    let sent = emulator.invocations();
    let refused: Vec<_> = sent.iter().filter(|i| i.status == 409).collect();
    assert_eq!(refused.len(), 2, "each lost answer's retry is refused");
    // A retry carries the ID of the attempt whose answer was lost.
    let ids: Vec<&str> = sent
        .iter()
        .map(|i| i.header(header).expect("every request carries a task ID"))
        .collect();
    for duplicate in &refused {
        let id = duplicate.header(header).unwrap_or_default();
        assert_eq!(ids.iter().filter(|&&i| i == id).count(), 2, "{ids:?}");
    }
    assert!(
        fcsink::metrics::render()
            .lines()
            .any(|l| l.starts_with("fcsink_duplicates_refused_total ") && !l.ends_with(" 0")),
        "the refusals are counted"
    );
    assert_nothing_dead_lettered(&broker, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc2_task_ids_make_retries_of_lost_answers_run_once() {
    each_record_runs_once("idem-fc2", "", "x-fc-stateful-async-invocation-id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fc3_task_ids_make_retries_of_lost_answers_run_once() {
    each_record_runs_once(
        "idem-fc3",
        "api_version = \"2023-03-30\"",
        "x-fc-async-task-id",
    )
    .await;
}

/// The same faults without task IDs: the retries run the records again,
/// which is what the test above would see if deduplication failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_task_ids_retries_of_lost_answers_run_records_twice() {
    let (broker, emulator) = lost_answers("idem-none", "", "").await;
    let runs = executions(&emulator);
    assert_eq!(runs.len(), RECORDS, "{runs:?}");
    assert!(
        runs.values().any(|&n| n > 1),
        "duplicates executed: {runs:?}"
    );
    assert!(
        emulator
            .invocations()
            .iter()
            .all(|i| i.header("x-fc-stateful-async-invocation-id").is_none())
    );
    assert_nothing_dead_lettered(&broker, "idem-none").await;
}

/// A plugin that makes two records of each keeps the source offset on both;
/// fcsink numbers them (`fcsink.split.index`), so a function deduplicating
/// on topic, partition, offset and split index, or on the CloudEvents `id`,
/// keeps every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_plugin_splits_are_numbered_and_get_cloudevents_ids_of_their_own() {
    let broker = Broker::sqlite().await;
    broker.create_topic("split", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    let values: Vec<String> = (0..RECORDS).map(|i| format!("v{i}")).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(0), None, Some(v.as_bytes())))
        .collect();
    broker.produce("split", &records).await;
    let extra = format!(
        "[batch]\nsize = 5\nlinger_ms = 100\n[[transform]]\nplugin = {:?}\nconfig = {{ mode = \"split\" }}",
        fcsink_tests::plugins::plugin("misbehave")
            .display()
            .to_string()
    );
    let running = Running::start(&connector::config(
        "split",
        &broker,
        &emulator,
        "split",
        "format = \"cloudevents\"",
        &extra,
    ));
    let events = || {
        emulator
            .invocations()
            .iter()
            .filter(|i| !i.failed)
            .flat_map(records_of)
            .collect::<Vec<_>>()
    };
    wait_until("both halves of every record", WAIT, || async {
        events().len() >= 2 * RECORDS
    })
    .await;
    running.stop().await.unwrap();

    let events = events();
    assert_eq!(events.len(), 2 * RECORDS);
    let ids: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2 * RECORDS, "every event has an id of its own");
    let mut halves: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for event in &events {
        let data = &event["data"];
        let index = data["headers"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == "fcsink.split.index")
            .and_then(|h| h["value"].as_str())
            .expect("a split record carries its index")
            .to_string();
        halves
            .entry(data["offset"].as_i64().unwrap())
            .or_default()
            .push(index);
    }
    assert_eq!(halves.len(), RECORDS);
    for (offset, indexes) in halves {
        assert_eq!(indexes, ["0", "1"], "offset {offset}: numbered in order");
    }
}
