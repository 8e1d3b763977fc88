//! Runtime settings (`fcsink set`) against batches in flight: a batch runs
//! on one snapshot of the settings from its first request to its last retry.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fcsink::config::Settings;
use fcsink::fleet::config_topic::{self, Entry};
use fcsink::invoke::{Outgoing, Response, Target, Verdict};
use fcsink::ops::status;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, wait_until};
use futures::future::BoxFuture;
use rdkafka::producer::FutureProducer;
use tokio::sync::Notify;

const RECORDS: i64 = 10;

/// A synchronous function that holds the first request until the test
/// opens the gate, then reports every record of each other request as
/// failed the first time it sees it (a partial batch response).
#[derive(Default)]
struct FailsEachRecordOnce {
    first_arrived: Notify,
    gate: Notify,
    calls: Mutex<Vec<Vec<i64>>>,
    seen: Mutex<BTreeSet<i64>>,
    succeeded: Mutex<BTreeSet<i64>>,
}

impl FailsEachRecordOnce {
    async fn answer(&self, body: bytes::Bytes) -> Verdict {
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&body).expect("an fc-format request is a JSON array");
        let offsets: Vec<i64> = records
            .iter()
            .map(|r| r["offset"].as_i64().expect("each record has an offset"))
            .collect();
        let first = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(offsets.clone());
            calls.len() == 1
        };
        if first {
            self.first_arrived.notify_one();
            self.gate.notified().await;
        }
        let new: Vec<&serde_json::Value> = {
            let mut seen = self.seen.lock().unwrap();
            records
                .iter()
                .filter(|r| seen.insert(r["offset"].as_i64().unwrap_or(-1)))
                .collect()
        };
        if first || new.is_empty() {
            self.succeeded.lock().unwrap().extend(&offsets);
            return ok(b"{}".to_vec());
        }
        let failures: Vec<_> = new
            .iter()
            .map(|r| {
                serde_json::json!({"itemIdentifier": {
                    "partition": format!("{}-{}", r["topic"].as_str().unwrap_or(""), r["partition"]),
                    "offset": r["offset"],
                }})
            })
            .collect();
        let answered: BTreeSet<i64> = offsets
            .iter()
            .copied()
            .filter(|o| !new.iter().any(|r| r["offset"].as_i64() == Some(*o)))
            .collect();
        self.succeeded.lock().unwrap().extend(answered);
        ok(serde_json::to_vec(&serde_json::json!({ "batchItemFailures": failures })).unwrap())
    }
}

fn ok(body: Vec<u8>) -> Verdict {
    Verdict::Delivered(Response {
        status: 200,
        body,
        duplicate: false,
    })
}

struct Shared(Arc<FailsEachRecordOnce>);

impl Target for Shared {
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        Box::pin(self.0.answer(request.body))
    }

    fn describe(&self) -> String {
        "test:fails-each-record-once".into()
    }
}

#[tokio::test]
async fn lowering_batch_size_during_a_retry_still_sends_every_failed_record() {
    let broker = Broker::sqlite().await;
    let topic = "live-snapshot";
    broker.create_topic(topic, 1).await;
    let values: Vec<String> = (0..RECORDS).map(|i| format!("{i:0>300}")).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(0), Some(b"k".as_slice()), Some(v.as_bytes())))
        .collect();
    broker.produce(topic, &records).await;

    // Ten records make one batch; about three fit in a request.
    let target = "[target.fc]\nendpoint = \"http://127.0.0.1:9\"\nservice = \"s\"\n\
                  function = \"f\"\nsend_mode = \"sync\"\n";
    let extra = "[batch]\nsize = 10\nlinger_ms = 2000\nmax_request_bytes = 1500\n\n\
                 [delivery]\nretries = 5\nbackoff_initial_ms = 100\nbackoff_max_ms = 200\n\n\
                 [operations]\nstatus_interval_ms = 300\n";
    let toml = connector::config_with_target("live-snapshot", &broker, topic, target, extra);
    let settings = Settings::from_toml(&toml).unwrap();
    let function = Arc::new(FailsEachRecordOnce::default());
    let running = Running::start_with_target(settings.clone(), Box::new(Shared(function.clone())));

    tokio::time::timeout(Duration::from_secs(60), function.first_arrived.notified())
        .await
        .expect("the batch's first request within a minute");
    // While the batch's first request is in flight: one record per request.
    let producer: FutureProducer = fcsink::ops::client_config(&settings).create().unwrap();
    let smaller = Entry::Setting {
        key: "batch.size".into(),
        value: Some("1".into()),
    };
    config_topic::write(&producer, &settings.config_topic(), &[smaller])
        .await
        .unwrap();
    wait_until(
        "batch.size = 1 applied",
        Duration::from_secs(30),
        || async {
            status::collect(&settings).await.is_ok_and(|report| {
                report
                    .instances
                    .iter()
                    .any(|i| i.settings.get("batch.size").map(String::as_str) == Some("1"))
            })
        },
    )
    .await;
    function.gate.notify_one();

    let every: BTreeSet<i64> = (0..RECORDS).collect();
    let arrived = tokio::time::timeout(Duration::from_secs(30), async {
        while *function.succeeded.lock().unwrap() != every {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let calls = function.calls.lock().unwrap().clone();
    assert!(
        arrived.is_ok(),
        "records counted delivered without a successful call: {:?}; calls: {calls:?}",
        every
            .difference(&function.succeeded.lock().unwrap())
            .collect::<Vec<_>>()
    );
    assert!(
        calls[1].len() > 1,
        "the test needs a second request of several records: {calls:?}"
    );
    running.stop().await.unwrap();
}
