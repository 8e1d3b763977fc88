//! Record headers end to end: produced to a real broker with binary values,
//! repeated names, a name that is not UTF-8 and a null value, they reach
//! the function byte for byte in the `fc` (FC), `confluent` (Lambda) and
//! `cloudevents` (HTTP) payloads, and the names in `forward_headers` arrive
//! as HTTP request headers of each target, one set per request.

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

/// A `headers` list, as bytes; none is an empty list.
fn headers_of(list: Option<&Value>) -> Headers {
    list.and_then(Value::as_array)
        .map(|headers| {
            headers
                .iter()
                .map(|h| (bytes_of(h, "key").expect("a name"), bytes_of(h, "value")))
                .collect()
        })
        .unwrap_or_default()
}

/// Where each format keeps a record's headers.
fn headers_in(format: &str, element: &Value) -> Headers {
    headers_of(match format {
        "fc" => element.get("headers"),
        "confluent" => element["payload"].get("headers"),
        _ => element["data"]["headers"].get("headers"),
    })
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

/// The connectors: name, the function as the emulator records it, the
/// format and the target table. One per target, each in another format.
fn connectors(emulator: &Emulator) -> Vec<(&'static str, &'static str, &'static str, String)> {
    let forward = "forward_headers = [\"tenant\", \"tag\"]\ntimeout_ms = 10000";
    vec![
        (
            "headers-fc",
            "fc_format",
            "fc",
            format!(
                "[target.fc]\nendpoint = \"http://{}\"\nservice = \"s\"\nfunction = \"fc_format\"\n{forward}",
                emulator.addr()
            ),
        ),
        (
            "headers-lambda",
            "confluent_format",
            "confluent",
            format!(
                "[target.lambda]\nfunction = \"confluent_format\"\nregion = \"us-east-1\"\n\
                 endpoint = \"http://{}\"\n{forward}",
                emulator.addr()
            ),
        ),
        (
            "headers-http",
            "cloudevents_format",
            "cloudevents",
            format!(
                "[target.http]\nurl = \"{}/http/cloudevents_format\"\nformat = \"cloudevents\"\n{forward}",
                emulator.url()
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_reach_every_target_byte_for_byte_and_forwarded_ones_as_request_headers() {
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
    let connectors = connectors(&emulator);
    let running: Vec<Running> = connectors
        .iter()
        .map(|(name, _, _, target)| {
            Running::start(&connector::config_with_target(
                name,
                &broker,
                TOPIC,
                target,
                "[batch]\nsize = 10\nlinger_ms = 200",
            ))
        })
        .collect();
    let count = |function: &str| {
        invocations_of(&emulator, function)
            .iter()
            .map(|i| records_of(i).len())
            .sum::<usize>()
    };
    wait_until("every record at every function", WAIT, || async {
        connectors
            .iter()
            .all(|(_, function, _, _)| count(function) >= 3)
    })
    .await;
    for running in running {
        running.stop().await.expect("fcsink runs on");
    }

    for (_, function, format, _) in &connectors {
        let invocations = invocations_of(&emulator, function);
        let records: Vec<Value> = invocations.iter().flat_map(records_of).collect();
        assert_eq!(records.len(), 3, "{function}: {records:?}");
        for (record, headers) in records.iter().zip(&produced) {
            assert_eq!(&headers_in(format, record), headers, "{function}: {record}");
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
