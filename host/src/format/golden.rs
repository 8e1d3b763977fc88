//! Golden files: the exact bytes each format produces for the same records
//! (a JSON value, plain text, a null key, bytes that are not UTF-8, a
//! tombstone, headers with a null value, a repeated name, a value and a
//! name that are not UTF-8, two partitions). A change to a format shows up here
//! as a diff of its file; `FCSINK_BLESS=1 cargo test -p fcsink golden`
//! rewrites the files after a deliberate change.

use std::path::PathBuf;

use super::*;
use crate::transform::Header;

fn records() -> Vec<Record> {
    let record = |partition, offset, key: Option<&[u8]>, value: Option<&[u8]>| Record {
        topic: "orders".into(),
        partition,
        offset,
        timestamp: 1_700_000_000_000 + offset,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: Vec::new(),
    };
    let mut with_headers = record(0, 11, Some(b"k-2"), Some(b"plain text, \"quoted\""));
    with_headers.headers = vec![
        Header {
            key: "trace-id".into(),
            value: Some(b"abc".to_vec()),
        },
        Header {
            key: "empty".into(),
            value: None,
        },
        // A repeated name, a value that is not UTF-8, a name that is not.
        Header {
            key: "tag".into(),
            value: Some(b"a".to_vec()),
        },
        Header {
            key: "tag".into(),
            value: Some(b"b".to_vec()),
        },
        Header {
            key: "bin".into(),
            value: Some(vec![0x00, 0xff, 0x10]),
        },
        crate::source::header(b"n\xff", Some(b"raw name")),
    ];
    vec![
        record(0, 10, Some(b"k-1"), Some(br#"{"id": 1, "amount": 9.5}"#)),
        with_headers,
        record(0, 12, None, Some("h\u{e9}llo \u{4e16}\u{754c}".as_bytes())),
        record(1, 3, Some(&[0xff, 0xfe]), Some(&[0x00, 0x9f, 0x92, 0x96])),
        record(1, 4, Some(b"deleted"), None),
    ]
}

fn check(file: &str, format: &Format) {
    let encoded = format.encode(&records(), 20, 1 << 20);
    assert_eq!(encoded.requests.len(), 1);
    assert!(encoded.too_large.is_empty());
    let body = &encoded.requests[0].body;
    serde_json::from_slice::<serde_json::Value>(body).expect("valid JSON");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/format/golden")
        .join(file);
    if std::env::var_os("FCSINK_BLESS").is_some() {
        std::fs::write(&path, body).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&golden),
        "{file} differs; FCSINK_BLESS=1 rewrites it after a deliberate change"
    );
}

#[test]
fn fc() {
    check("fc.json", &Format::Fc);
}

#[test]
fn confluent_json() {
    check(
        "confluent-json.json",
        &Format::Confluent {
            converter: Converter::Json,
        },
    );
}

#[test]
fn confluent_escaped_json() {
    check(
        "confluent-escaped_json.json",
        &Format::Confluent {
            converter: Converter::EscapedJson,
        },
    );
}

#[test]
fn aws_kafka_event() {
    check(
        "aws_kafka_event.json",
        &Format::AwsKafkaEvent {
            bootstrap_servers: "b-1.example:9092,b-2.example:9092".into(),
        },
    );
}

#[test]
fn cloudevents() {
    check(
        "cloudevents.json",
        &Format::CloudEvents(CloudEvents {
            instance_id: "alikafka_pre-cn-test".into(), // as Alibaba names instances
            account_id: Some("1234567890123456".into()),
        }),
    );
}
