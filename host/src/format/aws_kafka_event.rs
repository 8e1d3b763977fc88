//! The event AWS Lambda's Kafka trigger (a self-managed Kafka event source
//! mapping) sends, so functions written for it run unchanged:
//!
//! ```json
//! {"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092",
//!  "records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,
//!    "timestamp":1545084650987,"timestampType":"CREATE_TIME",
//!    "key":"a2V5","value":"dmFsdWU=","headers":[{"headerKey":[104,105]}]}]}}
//! ```
//!
//! Records are grouped under `"<topic>-<partition>"` in the order the groups
//! first appear; key and value are standard base64 and omitted when null;
//! each header is a one-entry object whose value is its bytes as numbers (a
//! null header value is `[]`). A header name that is not UTF-8 cannot be a
//! JSON key as it is: it appears in fcsink's reversible escaped form
//! ([`crate::header_name`]); the other formats carry it as base64.
//! `timestampType` is always `CREATE_TIME`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Encoded, Request, push_json_str, push_position};
use crate::transform::Record;

/// Encodes `records` into events of at most `max_records` records and `max_bytes` bytes.
pub(crate) fn encode<'a>(
    records: impl Iterator<Item = &'a Record>,
    bootstrap_servers: &str,
    max_records: usize,
    max_bytes: usize,
) -> Encoded {
    let mut prefix = b"{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":".to_vec();
    push_json_str(&mut prefix, bootstrap_servers);
    prefix.extend_from_slice(b",\"records\":{");
    const SUFFIX: &[u8] = b"}}";

    let mut encoded = Encoded::default();
    let mut event = Event::default();
    for (index, record) in records.enumerate() {
        let element = element(record);
        let group = group_name(record);
        let alone = Event::default().cost(&group, &element);
        if prefix.len() + alone + SUFFIX.len() > max_bytes {
            encoded.too_large.push(index);
            continue;
        }
        let full = event.len == max_records
            || prefix.len() + event.size + event.cost(&group, &element) + SUFFIX.len() > max_bytes;
        // A request carries a range of records: one that did not fit alone
        // (skipped above) also ends the current event.
        let gap = event.end.is_some_and(|end| end != index);
        if !event.is_empty() && (full || gap) {
            encoded.requests.push(event.finish(&prefix, SUFFIX));
        }
        event.push(index, group, element);
    }
    if !event.is_empty() {
        encoded.requests.push(event.finish(&prefix, SUFFIX));
    }
    encoded
}

/// An event being filled: its groups in first-appearance order.
#[derive(Default)]
struct Event {
    groups: Vec<(String, Vec<Vec<u8>>)>,
    /// Bytes of the groups as they will be written.
    size: usize,
    len: usize,
    start: usize,
    end: Option<usize>,
}

impl Event {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that adding `element` to `group` adds.
    fn cost(&self, group: &str, element: &[u8]) -> usize {
        if self.groups.iter().any(|(name, _)| name == group) {
            1 + element.len()
        } else {
            // `,"name":[element]`; no comma before the first group.
            let comma = usize::from(!self.groups.is_empty());
            comma + json_str_len(group) + 1 + 2 + element.len()
        }
    }

    fn push(&mut self, index: usize, group: String, element: Vec<u8>) {
        self.size += self.cost(&group, &element);
        if self.is_empty() {
            self.start = index;
        }
        self.len += 1;
        self.end = Some(index + 1);
        match self.groups.iter_mut().find(|(name, _)| *name == group) {
            Some((_, elements)) => elements.push(element),
            None => self.groups.push((group, vec![element])),
        }
    }

    fn finish(&mut self, prefix: &[u8], suffix: &[u8]) -> Request {
        let event = std::mem::take(self);
        let mut body = Vec::with_capacity(prefix.len() + event.size + suffix.len());
        body.extend_from_slice(prefix);
        for (i, (name, elements)) in event.groups.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            push_json_str(&mut body, name);
            body.extend_from_slice(b":[");
            body.extend_from_slice(&elements.join(&b","[..]));
            body.push(b']');
        }
        body.extend_from_slice(suffix);
        Request {
            body,
            records: event.start..event.end.unwrap_or(event.start),
            overflowed: 0,
        }
    }
}

/// `"<topic>-<partition>"`, the key AWS groups records under.
pub(crate) fn group_name(record: &Record) -> String {
    format!("{}-{}", record.topic, record.partition)
}

fn json_str_len(text: &str) -> usize {
    let mut out = Vec::new();
    push_json_str(&mut out, text);
    out.len()
}

fn element(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        128 + record.key.as_ref().map_or(0, Vec::len) * 4 / 3
            + record.value.as_ref().map_or(0, Vec::len) * 4 / 3,
    );
    out.push(b'{');
    push_position(&mut out, record);
    out.extend_from_slice(b",\"timestampType\":\"CREATE_TIME\"");
    for (field, bytes) in [("key", &record.key), ("value", &record.value)] {
        if let Some(bytes) = bytes {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":\"");
            out.extend_from_slice(STANDARD.encode(bytes).as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"headers\":[");
    for (i, header) in record.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        push_json_str(&mut out, &header.key);
        out.extend_from_slice(b":[");
        let numbers: Vec<String> = header.value.iter().flatten().map(u8::to_string).collect();
        out.extend_from_slice(numbers.join(",").as_bytes());
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Header;

    fn record(topic: &str, partition: i32, offset: i64, value: &[u8]) -> Record {
        Record {
            topic: topic.into(),
            partition,
            offset,
            timestamp: 1545084650987,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn matches_the_documented_event() {
        let mut r = record("mytopic", 0, 15, b"Hello, this is a test.");
        r.key = Some(b"abc".to_vec());
        r.headers = vec![Header {
            key: "headerKey".into(),
            value: Some(b"headerValue".to_vec()),
        }];
        let encoded = encode([r].iter(), "b-2:9092,b-1:9092", 10, 1 << 20);
        assert_eq!(
            String::from_utf8(encoded.requests[0].body.clone()).unwrap(),
            r#"{"eventSource":"SelfManagedKafka","bootstrapServers":"b-2:9092,b-1:9092","records":{"mytopic-0":[{"topic":"mytopic","partition":0,"offset":15,"timestamp":1545084650987,"timestampType":"CREATE_TIME","key":"YWJj","value":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==","headers":[{"headerKey":[104,101,97,100,101,114,86,97,108,117,101]}]}]}}"#
        );
    }

    #[test]
    fn groups_by_topic_partition_in_first_appearance_order() {
        let records = [
            record("b", 1, 5, b"x"),
            record("a", 0, 7, b"y"),
            record("b", 1, 6, b"z"),
        ];
        let encoded = encode(records.iter(), "k:9092", 10, 1 << 20);
        let event: serde_json::Value = serde_json::from_slice(&encoded.requests[0].body).unwrap();
        let groups: Vec<_> = event["records"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(event["records"]["b-1"].as_array().unwrap().len(), 2);
        assert_eq!(event["records"]["a-0"][0]["offset"], 7);
        let body = String::from_utf8(encoded.requests[0].body.clone()).unwrap();
        assert!(body.find("\"b-1\"").unwrap() < body.find("\"a-0\"").unwrap());
        assert_eq!(groups.len(), 2);
    }

    #[test]
    fn splits_by_count_and_size_and_sets_aside_what_never_fits() {
        let records: Vec<_> = (0..5).map(|i| record("t", 0, i, &[b'v'; 100])).collect();
        let by_count = encode(records.iter(), "k", 2, 1 << 20);
        let ranges: Vec<_> = by_count
            .requests
            .iter()
            .map(|r| r.records.clone())
            .collect();
        assert_eq!(ranges, vec![0..2, 2..4, 4..5]);

        let two = encode(records[..2].iter(), "k", 10, 1 << 20).requests[0]
            .body
            .len();
        let by_size = encode(records.iter(), "k", 10, two);
        assert!(by_size.requests.iter().all(|r| r.body.len() <= two));
        let ranges: Vec<_> = by_size.requests.iter().map(|r| r.records.clone()).collect();
        assert_eq!(ranges, vec![0..2, 2..4, 4..5]);
        assert_eq!(encode(records.iter(), "k", 10, two - 1).requests.len(), 5);

        let mut records = records;
        records[2].value = Some(vec![b'v'; 10_000]);
        let aside = encode(records.iter(), "k", 10, 2000);
        assert_eq!(aside.too_large, vec![2]);
        let ranges: Vec<_> = aside.requests.iter().map(|r| r.records.clone()).collect();
        assert_eq!(ranges, vec![0..2, 3..5]);
    }
}
