//! A worker that panics (here: a target that panics on one partition's
//! records) stops only its partition, with the panic as the reason in the
//! status, `/metrics` and `/readyz`; the process and the other partitions go
//! on, and nothing of the failed batch is committed.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use fcsink::config::Settings;
use fcsink::invoke::{Outgoing, Response, Target, Verdict};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, free_port, http_get, wait_until};
use futures::future::BoxFuture;

const WAIT: Duration = Duration::from_secs(60);

/// Panics on any request carrying a record of partition 0.
#[derive(Default)]
struct PanicsOnPartitionZero {
    delivered: Mutex<BTreeSet<(i64, i64)>>,
}

impl Target for PanicsOnPartitionZero {
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        Box::pin(async move {
            let records: Vec<serde_json::Value> = serde_json::from_slice(&request.body).unwrap();
            let positions: Vec<(i64, i64)> = records
                .iter()
                .map(|r| {
                    (
                        r["partition"].as_i64().unwrap(),
                        r["offset"].as_i64().unwrap(),
                    )
                })
                .collect();
            if positions.iter().any(|(p, _)| *p == 0) {
                panic!("a bug on partition 0");
            }
            self.delivered.lock().unwrap().extend(positions);
            Verdict::Delivered(Response {
                status: 202,
                body: Vec::new(),
                duplicate: false,
            })
        })
    }

    fn describe(&self) -> String {
        "test:panics-on-partition-0".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_stops_only_its_partition_with_the_panic_as_reason() {
    let broker = Broker::sqlite().await;
    let topic = "panics";
    broker.create_topic(topic, 2).await;
    let records: Vec<_> = (0..8)
        .map(|i| (Some(i % 2), None, Some(b"{}".as_slice())))
        .collect();
    broker.produce(topic, &records).await;

    let port = free_port();
    let target =
        "[target.fc]\nendpoint = \"http://127.0.0.1:9\"\nservice = \"s\"\nfunction = \"f\"\n";
    let extra = format!(
        "[batch]\nsize = 10\nlinger_ms = 200\n\n\
         [operations]\nstatus_interval_ms = 300\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let toml = connector::config_with_target(topic, &broker, topic, target, &extra);
    let settings = Settings::from_toml(&toml).unwrap();
    let function = std::sync::Arc::new(PanicsOnPartitionZero::default());
    let running = Running::start_with_target(settings.clone(), Box::new(Shared(function.clone())));

    // Partition 1 flows on.
    wait_until("partition 1 committed to its end", WAIT, || async {
        broker
            .committed_offsets(&settings.group_id(), topic)
            .await
            .get(&1)
            == Some(&4)
    })
    .await;
    assert_eq!(
        *function.delivered.lock().unwrap(),
        (0..4).map(|o| (1, o)).collect::<BTreeSet<_>>()
    );
    // Partition 0 stopped, and the status says why.
    let reason = super::failed_reason(&settings, 0).await;
    assert!(
        reason.contains("panicked: a bug on partition 0"),
        "{reason}"
    );
    let (ready, why) = http_get(port, "/readyz").await.expect("/readyz answers");
    assert_eq!(ready, 503, "{why}");
    assert!(why.contains("worker panicked"), "{why}");
    let (_, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("fcsink_partitions_stopped{cause=\"panic\"} 1\n"),
        "{metrics}"
    );
    // Nothing of the failed batch is committed, and the process is alive.
    let committed = broker.committed_offsets(&settings.group_id(), topic).await;
    assert_eq!(committed.get(&0), None, "{committed:?}");
    running.stop().await.unwrap();
}

struct Shared(std::sync::Arc<PanicsOnPartitionZero>);

impl Target for Shared {
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        self.0.send(request)
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}
