//! Record headers end to end: produced to a real broker with binary values,
//! repeated names and a name that is not UTF-8, they reach the function
//! byte for byte in the `fc` and `confluent` payloads, and the names in
//! `forward_headers` arrive as HTTP request headers, one set per request.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fc_emulator::{Emulator, Invocation};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, records_of, wait_until};
use serde_json::Value;

const TOPIC: &str = "with-headers";
const WAIT: Duration = Duration::from_secs(60);

type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The records' headers, in offset order: the first two forward the same
/// `tenant` and `tag` values (and differ in others), the third does not.
fn produced() -> Vec<Headers> {
    let h = |name: &[u8], value: Option<&[u8]>| (name.to_vec(), value.map(<[u8]>::to_vec));
    vec![
        vec![
            h(b"tenant", Some(b"a")),
            h(b"tag", Some(b"x")),
            h(b"bin", Some(&[0x00, 0xff, 0x80, b'\n', 0xc3])),
            h(b"tag", Some(b"y")),
            h(b"n\xffame", Some(b"raw name")),
            h(b"null", None),
        ],
        vec![
            h(b"tag", Some(b"x")),
            h(b"tag", Some(b"y")),
            h(b"tenant", Some(b"a")),
            h(b"trace", Some(b"{\"json\":1}")),
        ],
        vec![h(b"tenant", Some(b"b")), h(b"bin", Some(b"\x7f\x00"))],
    ]
}

/// The bytes of `field` in a header object: text, or base64 as its
/// `<field>Encoding` says.
fn bytes_of(header: &Value, field: &str) -> Option<Vec<u8>> {
    let text = header.get(field)?.as_str()?;
    match header
        .get(format!("{field}Encoding"))
        .and_then(Value::as_str)
    {
        Some("base64") => Some(STANDARD.decode(text).expect("base64")),
        Some(other) => panic!("unknown encoding {other}"),
        None => Some(text.as_bytes().to_vec()),
    }
}

/// A record object's `headers` list, as bytes.
fn headers_of(record: &Value) -> Headers {
    record
        .get("headers")
        .and_then(Value::as_array)
        .map(|headers| {
            headers
                .iter()
                .map(|h| (bytes_of(h, "key").expect("a name"), bytes_of(h, "value")))
                .collect()
        })
        .unwrap_or_default()
}

fn invocations_of(emulator: &Emulator, function: &str) -> Vec<Invocation> {
    emulator
        .invocations()
        .into_iter()
        .filter(|i| i.function == function && !i.failed)
        .collect()
}

/// The forwarded request headers of an invocation, in order.
fn forwarded(invocation: &Invocation) -> Vec<(&str, &str)> {
    invocation
        .headers
        .iter()
        .filter(|(name, _)| name == "tenant" || name == "tag")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn target(emulator: &Emulator, function: &str, format: &str) -> String {
    format!(
        "[target.fc]\nendpoint = \"http://{}\"\nservice = \"s\"\nfunction = \"{function}\"\n\
         timeout_ms = 10000\nformat = \"{format}\"\nforward_headers = [\"tenant\", \"tag\"]",
        emulator.addr()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_reach_the_function_byte_for_byte_and_forwarded_ones_as_request_headers() {
    let broker = Broker::sqlite().await;
    broker.create_topic(TOPIC, 1).await;
    let produced = produced();
    for (i, headers) in produced.iter().enumerate() {
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_deref()))
            .collect();
        let value = format!("v{i}");
        broker
            .produce_with_headers(TOPIC, 0, value.as_bytes(), &headers)
            .await;
    }
    let emulator = connector::emulator(|_| {}).await;
    let batch = "[batch]\nsize = 10\nlinger_ms = 200";
    let fc = Running::start(&connector::config_with_target(
        "headers-fc",
        &broker,
        TOPIC,
        &target(&emulator, "fc_format", "fc"),
        batch,
    ));
    let confluent = Running::start(&connector::config_with_target(
        "headers-confluent",
        &broker,
        TOPIC,
        &target(&emulator, "confluent_format", "confluent"),
        batch,
    ));
    let count = |function: &str| {
        invocations_of(&emulator, function)
            .iter()
            .map(|i| records_of(i).len())
            .sum::<usize>()
    };
    wait_until("every record at both functions", WAIT, || async {
        count("fc_format") >= 3 && count("confluent_format") >= 3
    })
    .await;
    fc.stop().await.expect("fcsink runs on");
    confluent.stop().await.expect("fcsink runs on");

    for (function, payload) in [("fc_format", None), ("confluent_format", Some("payload"))] {
        let invocations = invocations_of(&emulator, function);
        let records: Vec<Value> = invocations
            .iter()
            .flat_map(records_of)
            .map(|r| match payload {
                Some(field) => r[field].clone(),
                None => r,
            })
            .collect();
        assert_eq!(records.len(), 3, "{function}: {records:?}");
        for (record, headers) in records.iter().zip(&produced) {
            assert_eq!(&headers_of(record), headers, "{function}: {record}");
        }
        // Records 0 and 1 forward the same values and share a request;
        // record 2 forwards others and goes in a request of its own.
        let requests: Vec<(usize, Vec<(&str, &str)>)> = invocations
            .iter()
            .map(|i| (records_of(i).len(), forwarded(i)))
            .collect();
        assert_eq!(
            requests,
            vec![
                (2, vec![("tenant", "a"), ("tag", "x"), ("tag", "y")]),
                (1, vec![("tenant", "b")]),
            ],
            "{function}"
        );
    }
}
