//! Confluent's AWS Lambda sink connector payload: a JSON array with one
//! `{"payload":{…}}` per record, fields in the connector's order:
//!
//! ```json
//! [{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,
//!   "key":"k","value":{"a":1,"b":1}}}]
//! ```
//!
//! With the `json` converter (`JsonKeyValueConverter`) a key or value that is
//! valid JSON is embedded as JSON, as it was written; anything else is a
//! string. With `escaped_json` (`EscapedJsonKeyValueConverter`) both are
//! always strings. A null key or value is `null`. Bytes that are not UTF-8
//! travel as base64 with `keyEncoding`/`valueEncoding` after them.
//!
//! Headers are fcsink's addition (Confluent's connector drops them): a
//! record with headers gains `"headers":[{"key":…,"value":…},…]` last in
//! its `payload`, the headers in the record's order, a repeated name
//! repeated, a null value `null`; names and values are always strings,
//! base64 with `keyEncoding`/`valueEncoding` when not UTF-8, whatever the
//! converter. A record without headers has no `headers` key.

use super::{Converter, push_bytes, push_encoding, push_headers, push_json_str};
use crate::transform::Record;

/// One record's `{"payload":{…}}`.
pub(crate) fn element(record: &Record, converter: Converter) -> Vec<u8> {
    let size = record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(112 + record.topic.len() + size + size / 8);
    out.extend_from_slice(b"{\"payload\":{\"timestamp\":");
    out.extend_from_slice(record.timestamp.to_string().as_bytes());
    out.extend_from_slice(b",\"topic\":");
    push_json_str(&mut out, &record.topic);
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(record.partition.to_string().as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(record.offset.to_string().as_bytes());
    push_field(&mut out, "key", record.key.as_deref(), converter);
    push_field(&mut out, "value", record.value.as_deref(), converter);
    if !record.headers.is_empty() {
        out.push(b',');
        push_headers(&mut out, &record.headers);
    }
    out.extend_from_slice(b"}}");
    out
}

fn push_field(out: &mut Vec<u8>, field: &str, bytes: Option<&[u8]>, converter: Converter) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
    let Some(bytes) = bytes else {
        out.extend_from_slice(b"null");
        return;
    };
    if converter == Converter::Json
        && let Some(json) = as_json(bytes)
    {
        out.extend_from_slice(json);
        return;
    }
    let encoding = push_bytes(out, bytes);
    push_encoding(out, field, encoding);
}

/// The bytes without surrounding whitespace, when they are one JSON value.
/// JSON is UTF-8: serde_json does not check the strings it skips, so the
/// bytes are checked first.
fn as_json(bytes: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(bytes.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
        Record {
            topic: "add-topic".into(),
            partition: 0,
            offset: 0,
            timestamp: 1574851464813,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    fn text(record: &Record, converter: Converter) -> String {
        String::from_utf8(element(record, converter)).unwrap()
    }

    /// Found by the `encode` fuzz target: a JSON-looking value with bytes
    /// that are not UTF-8 inside a string was embedded as it was, making the
    /// whole body invalid JSON.
    #[test]
    fn json_with_bytes_that_are_not_utf8_travels_as_base64() {
        let value = b"{\"a\xffb\": 1}";
        let body = element(&record(None, Some(value)), Converter::Json);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["payload"]["valueEncoding"], "base64");
    }

    #[test]
    fn json_values_are_embedded_and_text_is_a_string() {
        let r = record(Some(b"k1"), Some(b" {\"a\": 1,\"b\": 1}\n"));
        assert_eq!(
            text(&r, Converter::Json),
            r#"{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,"key":"k1","value":{"a": 1,"b": 1}}}"#
        );
        let r = record(Some(b"42"), Some(b"not json {"));
        assert_eq!(
            text(&r, Converter::Json),
            r#"{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,"key":42,"value":"not json {"}}"#
        );
    }

    #[test]
    fn escaped_json_always_sends_strings() {
        let r = record(Some(b"42"), Some(b"{\"a\":1}"));
        assert_eq!(
            text(&r, Converter::EscapedJson),
            r#"{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,"key":"42","value":"{\"a\":1}"}}"#
        );
    }

    #[test]
    fn headers_come_last_in_order_and_repeated_losslessly() {
        let mut r = record(Some(b"k"), Some(b"1"));
        r.headers = vec![
            crate::source::header(b"tag", Some(b"{\"a\":1}")),
            crate::source::header(b"tag", Some(b"b")),
            crate::source::header(b"bin", Some(&[0xff, 0x00])),
            crate::source::header(b"n\xfe", None),
        ];
        // Header values are strings even with the JSON converter.
        assert_eq!(
            text(&r, Converter::Json),
            r#"{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,"key":"k","value":1,"headers":[{"key":"tag","value":"{\"a\":1}"},{"key":"tag","value":"b"},{"key":"bin","value":"/wA=","valueEncoding":"base64"},{"key":"bv4=","keyEncoding":"base64","value":null}]}}"#
        );
    }

    #[test]
    fn nulls_and_bytes_that_are_not_text() {
        let r = record(None, Some(&[0xff, 0x01]));
        assert_eq!(
            text(&r, Converter::Json),
            r#"{"payload":{"timestamp":1574851464813,"topic":"add-topic","partition":0,"offset":0,"key":null,"value":"/wE=","valueEncoding":"base64"}}"#
        );
    }
}
