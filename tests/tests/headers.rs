//! Record headers end to end: produced to a real broker with binary values,
//! repeated names, a name that is not UTF-8 and a null value, they reach
//! the function byte for byte in the `fc` (FC), `confluent` and
//! `aws_kafka_event` (Lambda) and `cloudevents` (HTTP) payloads, and the
//! names in `forward_headers` arrive as HTTP request headers of each
//! target, one set per request.

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

/// Where each format keeps a record's headers. AWS's are one-entry
/// objects of a name (fcsink's escaped form when not UTF-8) and its bytes.
fn headers_in(format: &str, element: &Value) -> Headers {
    match format {
        "fc" => headers_of(element.get("headers")),
        "confluent" => headers_of(element["payload"].get("headers")),
        "cloudevents" => headers_of(element["data"]["headers"].get("headers")),
        _ => element["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| {
                let (name, bytes) = h.as_object().unwrap().iter().next().unwrap();
                let bytes = bytes.as_array().unwrap().iter();
                let bytes = bytes.map(|b| b.as_u64().unwrap() as u8).collect();
                (
                    fcsink::header_name::to_bytes(name).into_owned(),
                    Some(bytes),
                )
            })
            .collect(),
    }
}

/// What a format can say of `headers`: AWS's bytes have no null.
fn as_sent(format: &str, headers: &Headers) -> Headers {
    let null_is_empty = |(name, value): &(Vec<u8>, Option<Vec<u8>>)| {
        (name.clone(), Some(value.clone().unwrap_or_default()))
    };
    match format {
        "aws_kafka_event" => headers.iter().map(null_is_empty).collect(),
        _ => headers.clone(),
    }
}

/// The record elements of an invocation's body: the array, or for AWS's
/// event the elements of every `records` group.
fn elements(invocation: &Invocation) -> Vec<Value> {
    match serde_json::from_slice(&invocation.body) {
        Ok(Value::Object(event)) => event["records"]
            .as_object()
            .expect("records")
            .values()
            .flat_map(|group| group.as_array().expect("a group").clone())
            .collect(),
        _ => records_of(invocation),
    }
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
/// format and the target table. Every format, every target.
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
            "headers-aws",
            "aws_format",
            "aws_kafka_event",
            format!(
                "[target.lambda]\nfunction = \"aws_format\"\nregion = \"us-east-1\"\n\
                 endpoint = \"http://{}\"\nformat = \"aws_kafka_event\"\n{forward}",
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
            .map(|i| elements(i).len())
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
        let records: Vec<Value> = invocations.iter().flat_map(elements).collect();
        assert_eq!(records.len(), 3, "{function}: {records:?}");
        for (record, headers) in records.iter().zip(&produced) {
            assert_eq!(
                headers_in(format, record),
                as_sent(format, headers),
                "{function}: {record}"
            );
        }
        // Records 0 and 1 forward the same values and share a request;
        // record 2 forwards others and goes in a request of its own.
        let requests: Vec<(usize, Vec<(&str, &str)>)> = invocations
            .iter()
            .map(|i| (elements(i).len(), forwarded(i)))
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
