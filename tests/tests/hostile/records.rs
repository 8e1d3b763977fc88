//! Records no well-behaved producer writes: header names that are not
//! UTF-8, NUL bytes, empty and absent parts. Kafka checks none of it, so
//! fcsink must take every such record to the function or the dead-letter
//! topic, byte for byte, and never panic.

use std::collections::BTreeMap;
use std::time::Duration;

use fc_emulator::Fault;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, delivered, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// (header name, header value) pairs of the hostile record.
const HEADERS: &[(&[u8], Option<&[u8]>)] = &[
    (b"\xff\xfe not utf-8", Some(b"v\x00\xff")),
    (b"", None),
    (b"ok", Some(b"")),
    ("\u{10FF41}escape-range".as_bytes(), Some(b"x")),
];

async fn produce_hostile(broker: &Broker, topic: &str) {
    broker.create_topic(topic, 1).await;
    broker
        .produce_with_headers(topic, 0, b"value\x00with nul", HEADERS)
        .await;
    broker
        .produce(topic, &[(Some(0), Some(b"\x00".as_slice()), None)])
        .await;
}

async fn wait_committed(broker: &Broker, group: &str, topic: &str, next: i64) {
    wait_until(
        "offsets committed past the hostile records",
        WAIT,
        || async { broker.committed_offsets(group, topic).await == BTreeMap::from([(0, next)]) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_that_are_not_utf8_are_delivered_without_a_panic() {
    let broker = Broker::sqlite().await;
    produce_hostile(&broker, "hostile-headers").await;
    let emulator = connector::emulator(|_| {}).await;
    let running = Running::start(&connector::config(
        "hostile-headers",
        &broker,
        &emulator,
        "hostile-headers",
        "",
        "[batch]\nlinger_ms = 50",
    ));
    wait_committed(&broker, "connect-hostile-headers", "hostile-headers", 2).await;
    running.stop().await.expect("fcsink runs on");
    let records = delivered(&emulator);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["value"], "value\u{0}with nul");
    assert_eq!(records[1]["key"], "\u{0}");
    assert!(records[1].get("value").is_none(), "a null value is omitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_carries_the_header_names_exactly_as_consumed() {
    let broker = Broker::sqlite().await;
    produce_hostile(&broker, "hostile-dlq").await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(400));
    let running = Running::start(&connector::config(
        "hostile-dlq",
        &broker,
        &emulator,
        "hostile-dlq",
        "",
        "[batch]\nlinger_ms = 50",
    ));
    wait_committed(&broker, "connect-hostile-dlq", "hostile-dlq", 2).await;
    running.stop().await.expect("fcsink runs on");
    let dead = broker
        .consume_all("connect-error-hostile-dlq", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 2);
    // The record's own headers come first, then fcsink's reasons.
    let own: Vec<(Vec<u8>, Option<Vec<u8>>)> = dead[0]
        .headers
        .iter()
        .take(HEADERS.len())
        .map(|(name, value)| {
            (
                fcsink::header_name::to_bytes(name).into_owned(),
                value.clone(),
            )
        })
        .collect();
    let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = HEADERS
        .iter()
        .map(|(name, value)| (name.to_vec(), value.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(own, expected);
    assert_eq!(
        dead[0].value.as_deref(),
        Some(b"value\x00with nul".as_slice())
    );
    assert_eq!(dead[0].header("__connect.errors.offset"), Some("0"));
    assert_eq!(dead[1].key.as_deref(), Some(b"\x00".as_slice()));
    assert_eq!(dead[1].value, None);
}
