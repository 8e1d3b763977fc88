//! Payload formats: how a batch of records becomes request bodies, each
//! within the request size limit.
//!
//! - `fc`: the managed Function Compute connector's array (the default for FC);
//! - `confluent`: Confluent's Lambda sink, `[{"payload":{…}}]`;
//! - `aws_kafka_event`: the event AWS Lambda's Kafka trigger sends;
//! - `cloudevents`: the CloudEvents envelope Alibaba EventBridge uses for Kafka.
//!
//! Bytes that are not UTF-8 are never mangled: where a format carries text,
//! such a key or value travels as standard base64 and its object says so
//! with `keyEncoding`/`valueEncoding: "base64"`. Headers follow the same
//! rule in `fc`, `confluent` and `cloudevents` ([`push_header`]): a name or
//! value that is not UTF-8 is base64 with `keyEncoding`/`valueEncoding`.

pub mod aws_kafka_event;
pub mod cloudevents;
pub mod confluent;
pub mod fc;

use std::borrow::Borrow;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::transform::{Header, Record};

/// How records are laid out in a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The managed FC connector's array.
    Fc,
    /// Confluent's Lambda sink connector.
    Confluent {
        /// How keys and values that are JSON are embedded.
        converter: Converter,
    },
    /// AWS Lambda's Kafka event (`eventSource = "SelfManagedKafka"`).
    AwsKafkaEvent {
        /// Sent as `bootstrapServers`.
        bootstrap_servers: String,
    },
    /// Alibaba EventBridge's CloudEvents for Kafka.
    CloudEvents(CloudEvents),
}

/// Confluent's record converters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converter {
    /// `JsonKeyValueConverter`: JSON keys and values embedded as JSON, anything else as a string.
    Json,
    /// `EscapedJsonKeyValueConverter`: always strings.
    EscapedJson,
}

/// What the CloudEvents envelope names besides the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvents {
    /// The Kafka instance ID in `subject` (`acs:<instance id>:topic:<topic>`),
    /// e.g. `alikafka_pre-cn-xxxx`.
    pub instance_id: String,
    /// `aliyunaccountid`, when known.
    pub account_id: Option<String>,
}

/// A batch as request bodies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// The bodies, in record order.
    pub requests: Vec<Request>,
    /// Records that do not fit in a request even alone (formats without an
    /// overflow marker); they are dead-lettered, never sent.
    pub too_large: Vec<usize>,
}

impl Format {
    /// The name used in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Fc => "fc",
            Format::Confluent { .. } => "confluent",
            Format::AwsKafkaEvent { .. } => "aws_kafka_event",
            Format::CloudEvents(_) => "cloudevents",
        }
    }

    /// Encodes `records` into bodies of at most `max_records` records and `max_bytes` bytes.
    pub fn encode<R: Borrow<Record>>(
        &self,
        records: &[R],
        max_records: usize,
        max_bytes: usize,
    ) -> Encoded {
        let records = records.iter().map(Borrow::borrow);
        match self {
            Format::Fc => Encoded {
                requests: fc::requests(records, max_records, max_bytes),
                too_large: Vec::new(),
            },
            Format::Confluent { converter } => arrays(
                records.map(|r| confluent::element(r, *converter)),
                max_records,
                max_bytes,
            ),
            Format::AwsKafkaEvent { bootstrap_servers } => {
                aws_kafka_event::encode(records, bootstrap_servers, max_records, max_bytes)
            }
            Format::CloudEvents(options) => arrays(
                records.map(|r| cloudevents::element(r, options)),
                max_records,
                max_bytes,
            ),
        }
    }
}

/// JSON arrays of the elements that fit; the others are `too_large`. A
/// request never spans a too-large record, so each carries a range.
fn arrays(
    elements: impl Iterator<Item = Vec<u8>>,
    max_records: usize,
    max_bytes: usize,
) -> Encoded {
    let mut encoded = Encoded::default();
    let mut run: Vec<Element> = Vec::new();
    let mut run_start = 0;
    let flush = |run: &mut Vec<Element>, start: usize, encoded: &mut Encoded| {
        let requests = json_arrays(std::mem::take(run), max_records, max_bytes);
        encoded
            .requests
            .extend(requests.into_iter().map(|r| Request {
                records: r.records.start + start..r.records.end + start,
                ..r
            }));
    };
    for (i, json) in elements.enumerate() {
        if json.len() + 2 <= max_bytes {
            if run.is_empty() {
                run_start = i;
            }
            run.push(Element {
                json,
                overflow: false,
            });
        } else {
            flush(&mut run, run_start, &mut encoded);
            encoded.too_large.push(i);
        }
    }
    flush(&mut run, run_start, &mut encoded);
    encoded
}

/// One request body and the records it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The body.
    pub body: Vec<u8>,
    /// Which of the encoded records it carries (indices, in order).
    pub records: Range<usize>,
    /// Records in it that were too large and went without their content.
    pub overflowed: usize,
}

/// One record's JSON element, and whether it lost its content to fit.
pub(crate) struct Element {
    pub json: Vec<u8>,
    pub overflow: bool,
}

/// Splits elements into JSON-array requests of at most `max_records`
/// elements and `max_bytes` bytes, keeping their order. An overflowed
/// element always travels alone.
pub(crate) fn json_arrays(
    elements: Vec<Element>,
    max_records: usize,
    max_bytes: usize,
) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut overflowed = 0;
    let total = elements.len();
    for (index, element) in elements.into_iter().enumerate() {
        let count = index - start;
        // The body so far, a comma, the element and the closing bracket.
        let would_be = body.len() + 1 + element.json.len() + 1;
        let alone = element.overflow || overflowed > 0;
        if count > 0 && (count == max_records || would_be > max_bytes || alone) {
            body.push(b']');
            requests.push(Request {
                body: std::mem::take(&mut body),
                records: start..index,
                overflowed,
            });
            start = index;
            overflowed = 0;
        }
        body.push(if index == start { b'[' } else { b',' });
        body.extend_from_slice(&element.json);
        overflowed += usize::from(element.overflow);
    }
    if total > start {
        body.push(b']');
        requests.push(Request {
            body,
            records: start..total,
            overflowed,
        });
    }
    requests
}

/// Appends `text` as a JSON string.
#[expect(clippy::expect_used, reason = "writing to a Vec cannot fail")]
pub(crate) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

/// Appends `"topic":…,"partition":…,"offset":…,"timestamp":…`.
pub(crate) fn push_position(out: &mut Vec<u8>, record: &Record) {
    out.extend_from_slice(b"\"topic\":");
    push_json_str(out, &record.topic);
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(record.partition.to_string().as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(record.offset.to_string().as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(record.timestamp.to_string().as_bytes());
}

/// Writes bytes as a JSON string: the text itself when it is UTF-8, else
/// base64 (returning the encoding's name).
pub(crate) fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Option<&'static str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            push_json_str(out, text);
            None
        }
        Err(_) => {
            out.push(b'"');
            out.extend_from_slice(STANDARD.encode(bytes).as_bytes());
            out.push(b'"');
            Some("base64")
        }
    }
}

/// Appends `,"<field>Encoding":"<encoding>"` when the bytes were not text.
pub(crate) fn push_encoding(out: &mut Vec<u8>, field: &str, encoding: Option<&str>) {
    if let Some(encoding) = encoding {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"Encoding\":\"");
        out.extend_from_slice(encoding.as_bytes());
        out.push(b'"');
    }
}

/// Appends one header as `{"key":…,"value":…}`: the name as the bytes it
/// stands for ([`crate::header_name`]) and the value, each as text, or as
/// base64 followed by `keyEncoding`/`valueEncoding` when not UTF-8. A null
/// value is `null`.
pub(crate) fn push_header(out: &mut Vec<u8>, header: &Header) {
    out.extend_from_slice(b"{\"key\":");
    let encoding = push_bytes(out, &crate::header_name::to_bytes(&header.key));
    push_encoding(out, "key", encoding);
    out.extend_from_slice(b",\"value\":");
    match &header.value {
        Some(value) => {
            let encoding = push_bytes(out, value);
            push_encoding(out, "value", encoding);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// Appends `"headers":[…]`, the headers in the record's order, a repeated
/// name repeated.
pub(crate) fn push_headers(out: &mut Vec<u8>, headers: &[Header]) {
    out.extend_from_slice(b"\"headers\":[");
    for (i, header) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_header(out, header);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(sizes: &[usize]) -> Vec<Element> {
        sizes
            .iter()
            .map(|&n| Element {
                json: vec![b'1'; n],
                overflow: false,
            })
            .collect()
    }

    fn ranges(requests: &[Request]) -> Vec<Range<usize>> {
        requests.iter().map(|r| r.records.clone()).collect()
    }

    #[test]
    fn bodies_never_pass_the_byte_limit() {
        // [a,b] is 2 + 3 + 1 + 3 = 9 bytes.
        let requests = json_arrays(elements(&[3, 3, 3]), 10, 9);
        assert_eq!(ranges(&requests), vec![0..2, 2..3]);
        assert_eq!(requests[0].body, b"[111,111]");
        assert_eq!(requests[1].body, b"[111]");
        // One byte less and every element travels alone.
        let requests = json_arrays(elements(&[3, 3, 3]), 10, 8);
        assert_eq!(ranges(&requests), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn bodies_never_pass_the_record_limit() {
        let requests = json_arrays(elements(&[1; 5]), 2, 1 << 20);
        assert_eq!(ranges(&requests), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn overflowed_elements_travel_alone() {
        let mut elements = elements(&[1, 1, 1]);
        elements[1].overflow = true;
        let requests = json_arrays(elements, 10, 100);
        assert_eq!(ranges(&requests), vec![0..1, 1..2, 2..3]);
        assert_eq!(
            requests.iter().map(|r| r.overflowed).collect::<Vec<_>>(),
            vec![0, 1, 0]
        );
    }

    #[test]
    fn no_elements_no_requests() {
        assert!(json_arrays(Vec::new(), 20, 100).is_empty());
    }
}

#[cfg(test)]
mod golden;

/// Random records for the property tests of the formats.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    use crate::transform::{Header, Record};

    /// A key or value: null, arbitrary bytes, or text.
    pub fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            1 => Just(None),
            3 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some),
            3 => ".{0,200}".prop_map(|s: String| Some(s.into_bytes())),
        ]
    }

    /// Up to three headers: names that repeat, or any bytes; any values.
    pub fn headers() -> impl Strategy<Value = Vec<Header>> {
        let name = prop_oneof![
            Just(b"tag".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8)
        ];
        proptest::collection::vec((name, bytes()), 0..3).prop_map(|headers| {
            headers
                .iter()
                .map(|(name, value)| crate::source::header(name, value.as_deref()))
                .collect()
        })
    }

    /// Up to 60 records of one topic over three partitions, offsets rising.
    pub fn records() -> impl Strategy<Value = Vec<Record>> {
        let record = (bytes(), bytes(), 0i64..1_000_000, 0i32..3, headers());
        proptest::collection::vec(record, 0..60).prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (key, value, timestamp, partition, headers))| Record {
                    topic: "prop-topic".into(),
                    partition,
                    offset: i as i64,
                    timestamp,
                    key,
                    value,
                    headers,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::strategies::records;
    use super::*;

    fn formats() -> Vec<Format> {
        vec![
            Format::Fc,
            Format::Confluent {
                converter: Converter::Json,
            },
            Format::Confluent {
                converter: Converter::EscapedJson,
            },
            Format::AwsKafkaEvent {
                bootstrap_servers: "b-1:9092,b-2:9092".into(),
            },
            Format::CloudEvents(CloudEvents {
                instance_id: "alikafka_pre-cn-prop".into(),
                account_id: Some("1234567890".into()),
            }),
        ]
    }

    /// How many records a body carries: array elements, or for AWS's
    /// event the elements of every `records` group.
    fn carried(body: &Value) -> usize {
        match body {
            Value::Array(elements) => elements.len(),
            Value::Object(event) => event["records"].as_object().map_or(0, |groups| {
                groups
                    .values()
                    .filter_map(Value::as_array)
                    .map(Vec::len)
                    .sum()
            }),
            _ => 0,
        }
    }

    proptest! {
        /// Every format, whatever the records and limits: each record is in
        /// exactly one request (in order) or reported too large; requests
        /// keep both limits and are JSON carrying exactly their records; and
        /// a record is only too large when it does not fit a request alone.
        #[test]
        fn every_format_places_each_record_once_within_limits(
            records in records(),
            max_records in 1usize..25,
            max_bytes in 200usize..4000,
            which in 0usize..5,
        ) {
            let format = &formats()[which];
            let encoded = format.encode(&records, max_records, max_bytes);
            let mut placed = vec![0; records.len()];
            let mut next = 0;
            for request in &encoded.requests {
                prop_assert!(request.records.start >= next, "requests out of order");
                next = request.records.end;
                prop_assert!(!request.records.is_empty());
                prop_assert!(request.records.len() <= max_records);
                prop_assert!(request.body.len() <= max_bytes, "{} > {max_bytes}", request.body.len());
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                prop_assert_eq!(carried(&body), request.records.len());
                for i in request.records.clone() {
                    placed[i] += 1;
                }
            }
            for &i in &encoded.too_large {
                placed[i] += 1;
                let alone = format.encode(&records[i..=i], 1, usize::MAX);
                prop_assert!(alone.requests[0].body.len() > max_bytes, "record {i} fits alone");
            }
            prop_assert!(placed.iter().all(|&n| n == 1), "placements {placed:?}");
        }
    }
}
