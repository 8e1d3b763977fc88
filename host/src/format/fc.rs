//! The managed FC sink connector's payload: a JSON array with one object per
//! record, keys in alphabetical order:
//!
//! ```json
//! [{"key":"k","offset":8,"overflowFlag":false,"partition":4,"timestamp":1603785325438,
//!   "topic":"Test","value":"v","valueSize":1}]
//! ```
//!
//! A null key omits `key`, a null value omits `value`; `valueSize` is the
//! value's length in bytes (0 for a null value). A record whose object does
//! not fit in a request alone is sent alone without its value and with
//! `"overflowFlag":true` (and without its key and headers too if they do not
//! fit either); the function can fetch it by topic, partition and offset.
//!
//! Headers are fcsink's addition (the managed connector drops them): a
//! record with headers gains `"headers":[{"key":…,"value":…},…]`, first in
//! its object as the keys are alphabetical, the headers in the record's
//! order, a repeated name repeated, a null value `null`. A record without
//! headers has no `headers` key, so its object is the connector's exactly.
//!
//! Lossless rule for bytes that are not UTF-8: the key or value is sent as
//! standard base64 and the object gains `"keyEncoding":"base64"` or
//! `"valueEncoding":"base64"` (in its alphabetical place); so is a header
//! name or value, inside its header object. Valid UTF-8 is always sent as a
//! plain JSON string, so ordinary payloads are unchanged.

use super::{Element, Request, json_arrays, push_bytes, push_headers, push_json_str};
use crate::transform::Record;

/// Encodes `records` into requests of at most `max_records` records and `max_bytes` bytes.
pub fn requests<'a>(
    records: impl Iterator<Item = &'a Record>,
    max_records: usize,
    max_bytes: usize,
) -> Vec<Request> {
    let elements = records
        .map(|record| {
            let json = element(record, true, true);
            if json.len() + 2 <= max_bytes {
                Element {
                    json,
                    overflow: false,
                }
            } else {
                let without_value = element(record, true, false);
                // A key and headers too large to fit go too; topic,
                // partition and offset remain.
                let json = if without_value.len() + 2 <= max_bytes {
                    without_value
                } else {
                    element(record, false, false)
                };
                Element {
                    json,
                    overflow: true,
                }
            }
        })
        .collect();
    json_arrays(elements, max_records, max_bytes)
}

/// One record's object; `with_key` covers its headers too.
fn element(record: &Record, with_key: bool, with_value: bool) -> Vec<u8> {
    let overflow = !with_value;
    let value_size = record.value.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(96 + value_size + record.key.as_ref().map_or(0, Vec::len));
    out.push(b'{');
    if with_key && !record.headers.is_empty() {
        push_headers(&mut out, &record.headers);
        out.push(b',');
    }
    let key_encoding = match (&record.key, with_key) {
        (Some(key), true) => {
            out.extend_from_slice(b"\"key\":");
            let encoding = push_bytes(&mut out, key);
            out.push(b',');
            encoding
        }
        _ => None,
    };
    if let Some(encoding) = key_encoding {
        out.extend_from_slice(b"\"keyEncoding\":\"");
        out.extend_from_slice(encoding.as_bytes());
        out.extend_from_slice(b"\",");
    }
    out.extend_from_slice(b"\"offset\":");
    out.extend_from_slice(record.offset.to_string().as_bytes());
    out.extend_from_slice(if overflow {
        b",\"overflowFlag\":true"
    } else {
        b",\"overflowFlag\":false"
    });
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(record.partition.to_string().as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(record.timestamp.to_string().as_bytes());
    out.extend_from_slice(b",\"topic\":");
    push_json_str(&mut out, &record.topic);
    if let (Some(value), true) = (&record.value, with_value) {
        out.extend_from_slice(b",\"value\":");
        if let Some(encoding) = push_bytes(&mut out, value) {
            out.extend_from_slice(b",\"valueEncoding\":\"");
            out.extend_from_slice(encoding.as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"valueSize\":");
    out.extend_from_slice(value_size.to_string().as_bytes());
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            topic: "Test".into(),
            partition: 4,
            offset,
            timestamp: 1603785325438,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    fn body(records: &[Record]) -> String {
        let requests = requests(records.iter(), 20, 6 << 20);
        assert_eq!(requests.len(), 1);
        String::from_utf8(requests[0].body.clone()).unwrap()
    }

    #[test]
    fn matches_the_managed_connector_example_byte_for_byte() {
        let r = record(
            8,
            Some(b"this is the message's key2"),
            Some(b"this is the message's value2"),
        );
        assert_eq!(
            body(&[r]),
            r#"[{"key":"this is the message's key2","offset":8,"overflowFlag":false,"partition":4,"timestamp":1603785325438,"topic":"Test","value":"this is the message's value2","valueSize":28}]"#
        );
    }

    #[test]
    fn null_key_and_value_are_omitted() {
        assert_eq!(
            body(&[record(1, None, None)]),
            r#"[{"offset":1,"overflowFlag":false,"partition":4,"timestamp":1603785325438,"topic":"Test","valueSize":0}]"#
        );
        assert_eq!(
            body(&[record(1, None, Some(b""))]),
            r#"[{"offset":1,"overflowFlag":false,"partition":4,"timestamp":1603785325438,"topic":"Test","value":"","valueSize":0}]"#
        );
    }

    #[test]
    fn value_size_counts_bytes_and_text_is_escaped() {
        let text = body(&[record(
            2,
            Some(b"k\"\n"),
            Some("h\u{e9}llo \u{4e16}".as_bytes()),
        )]);
        assert!(text.contains(r#""key":"k\"\n""#), "{text}");
        assert!(
            text.contains("\"value\":\"h\u{e9}llo \u{4e16}\",\"valueSize\":10"),
            "{text}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["value"], "h\u{e9}llo \u{4e16}");
    }

    #[test]
    fn non_utf8_bytes_travel_as_base64_and_say_so() {
        let bytes = [0xff, 0x00, 0x80, b'a'];
        let text = body(&[record(3, Some(&bytes), Some(&bytes))]);
        assert_eq!(
            text,
            r#"[{"key":"/wCAYQ==","keyEncoding":"base64","offset":3,"overflowFlag":false,"partition":4,"timestamp":1603785325438,"topic":"Test","value":"/wCAYQ==","valueEncoding":"base64","valueSize":4}]"#
        );
    }

    #[test]
    fn headers_come_first_in_order_and_repeated_losslessly() {
        let mut r = record(5, Some(b"k"), Some(b"v"));
        r.headers = vec![
            crate::source::header(b"tag", Some(b"a")),
            crate::source::header(b"tag", Some(b"b")),
            crate::source::header(b"bin", Some(&[0xff, 0x00])),
            crate::source::header(b"n\xfe", None),
        ];
        assert_eq!(
            body(&[r]),
            r#"[{"headers":[{"key":"tag","value":"a"},{"key":"tag","value":"b"},{"key":"bin","value":"/wA=","valueEncoding":"base64"},{"key":"bv4=","keyEncoding":"base64","value":null}],"key":"k","offset":5,"overflowFlag":false,"partition":4,"timestamp":1603785325438,"topic":"Test","value":"v","valueSize":1}]"#
        );
    }

    #[test]
    fn an_overflowed_record_keeps_its_headers_when_they_fit() {
        let mut r = record(4, Some(b"123"), Some(&[b'x'; 5000]));
        r.headers = vec![crate::source::header(b"h", Some(b"1"))];
        let sent = requests(std::iter::once(&r), 20, 1024);
        assert_eq!(
            String::from_utf8(sent[0].body.clone()).unwrap(),
            r#"[{"headers":[{"key":"h","value":"1"}],"key":"123","offset":4,"overflowFlag":true,"partition":4,"timestamp":1603785325438,"topic":"Test","valueSize":5000}]"#
        );
        r.headers = vec![crate::source::header(b"h", Some(&[b'y'; 2000]))];
        let sent = requests(std::iter::once(&r), 20, 1024);
        assert_eq!(
            String::from_utf8(sent[0].body.clone()).unwrap(),
            r#"[{"offset":4,"overflowFlag":true,"partition":4,"timestamp":1603785325438,"topic":"Test","valueSize":5000}]"#
        );
    }

    #[test]
    fn a_record_too_large_alone_goes_alone_without_content() {
        let big = vec![b'x'; 272_687];
        let records = [
            record(3, Some(b"a"), Some(b"small")),
            record(4, Some(b"123"), Some(&big)),
            record(5, None, Some(b"s")),
        ];
        let requests = requests(records.iter(), 20, 128 * 1024);
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[1].records, 1..2);
        assert_eq!(requests[1].overflowed, 1);
        assert_eq!(
            String::from_utf8(requests[1].body.clone()).unwrap(),
            r#"[{"key":"123","offset":4,"overflowFlag":true,"partition":4,"timestamp":1603785325438,"topic":"Test","valueSize":272687}]"#
        );
    }

    #[test]
    fn the_documented_async_example_makes_two_requests() {
        // Async, batch size 20: 17 records of 127 KB in all, then one of 200 KB.
        let small = vec![b'v'; 127 * 1024 / 17 - 120];
        let mut records: Vec<_> = (0..17).map(|i| record(i, None, Some(&small))).collect();
        records.push(record(17, None, Some(&vec![b'v'; 200 * 1024])));
        let requests = requests(records.iter(), 20, 128 * 1024);
        let ranges: Vec<_> = requests.iter().map(|r| r.records.clone()).collect();
        assert_eq!(ranges, vec![0..17, 17..18]);
        assert!(requests.iter().all(|r| r.body.len() <= 128 * 1024));
        assert_eq!((requests[0].overflowed, requests[1].overflowed), (0, 1));
    }

    #[test]
    fn a_record_that_fits_exactly_is_not_overflowed() {
        let r = record(0, None, Some(b"abc"));
        let exact = element(&r, true, true).len() + 2;
        assert_eq!(requests(std::iter::once(&r), 20, exact)[0].overflowed, 0);
        assert_eq!(
            requests(std::iter::once(&r), 20, exact - 1)[0].overflowed,
            1
        );
    }
}

#[cfg(test)]
mod properties {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;
    use crate::format::strategies::records;

    fn decoded(object: &serde_json::Value, field: &str) -> Option<Vec<u8>> {
        let text = object.get(field)?.as_str().unwrap();
        match object.get(format!("{field}Encoding")) {
            Some(encoding) => {
                assert_eq!(encoding, "base64");
                Some(STANDARD.decode(text).unwrap())
            }
            None => Some(text.as_bytes().to_vec()),
        }
    }

    proptest! {
        /// Whatever the records and limits: requests keep order, cover every
        /// record once, respect both limits (an overflowed record travels
        /// alone), and each body carries exactly its records, headers
        /// included, losslessly.
        #[test]
        fn requests_are_lossless_and_within_limits(records in records(), max_records in 1usize..25, max_bytes in 400usize..4000) {
            let requests = requests(records.iter(), max_records, max_bytes);
            let mut next = 0;
            for request in &requests {
                prop_assert_eq!(request.records.start, next);
                next = request.records.end;
                prop_assert!(request.records.len() <= max_records);
                prop_assert!(request.body.len() <= max_bytes, "{} > {}", request.body.len(), max_bytes);
                let parsed: Vec<serde_json::Value> = serde_json::from_slice(&request.body).unwrap();
                prop_assert_eq!(parsed.len(), request.records.len());
                if request.overflowed > 0 {
                    prop_assert_eq!(request.records.len(), 1);
                }
                for (object, record) in parsed.iter().zip(&records[request.records.clone()]) {
                    prop_assert_eq!(object["offset"].as_i64(), Some(record.offset));
                    let value_size = record.value.as_ref().map_or(0, Vec::len);
                    prop_assert_eq!(object["valueSize"].as_u64(), Some(value_size as u64));
                    if object["overflowFlag"] == true {
                        prop_assert!(object.get("value").is_none());
                    } else {
                        prop_assert_eq!(decoded(object, "key"), record.key.clone());
                        prop_assert_eq!(decoded(object, "value"), record.value.clone());
                        let headers: Vec<_> = object
                            .get("headers")
                            .and_then(serde_json::Value::as_array)
                            .map_or(&[][..], Vec::as_slice)
                            .iter()
                            .map(|h| {
                                let value = (!h["value"].is_null()).then(|| decoded(h, "value"));
                                (decoded(h, "key"), value.flatten())
                            })
                            .collect();
                        let expected: Vec<_> = record
                            .headers
                            .iter()
                            .map(|h| {
                                let name = crate::header_name::to_bytes(&h.key).into_owned();
                                (Some(name), h.value.clone())
                            })
                            .collect();
                        prop_assert_eq!(headers, expected);
                    }
                }
            }
            prop_assert_eq!(next, records.len());
        }
    }
}
