//! The CloudEvents envelope Alibaba Cloud EventBridge uses for Kafka
//! sources (the ApsaraMQ for Kafka trigger of Function Compute): a JSON
//! array with one event per record.
//!
//! ```json
//! [{"specversion":"1.0","id":"…","source":"acs:alikafka","type":"alikafka:Topic:Message",
//!   "subject":"acs:<instance id>:topic:<topic>",
//!   "datacontenttype":"application/json; charset=utf-8","time":"2022-06-23T02:49:51.589Z",
//!   "aliyunaccountid":"…","data":{"topic":"t","partition":7,"offset":25,
//!   "timestamp":1655952591589,"headers":{"headers":[],"isReadOnly":false},
//!   "key":"keytest","value":"{\"name\":\"shaouai\"}"}}]
//! ```
//!
//! `id` is derived from topic, partition and offset (a version-8 UUID from
//! their SHA-256), so a redelivered record keeps its id and functions can
//! deduplicate on it. `aliyunaccountid` is present when the FC target has
//! an `account_id`. Key and value are strings (omitted when null); each
//! header is `{"key":…,"value":…}` (a null value is `null`). Bytes that are
//! not UTF-8 travel as base64 with `keyEncoding`/`valueEncoding`, header
//! names and values included.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use super::{CloudEvents, push_bytes, push_encoding, push_headers, push_json_str, push_position};
use crate::transform::Record;

/// One record's event.
pub(crate) fn element(record: &Record, options: &CloudEvents) -> Vec<u8> {
    let size = record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(420 + size + size / 8);
    out.extend_from_slice(b"{\"specversion\":\"1.0\",\"id\":\"");
    out.extend_from_slice(event_id(record).as_bytes());
    out.extend_from_slice(
        b"\",\"source\":\"acs:alikafka\",\"type\":\"alikafka:Topic:Message\",\"subject\":",
    );
    push_json_str(
        &mut out,
        &format!("acs:{}:topic:{}", options.instance_id, record.topic),
    );
    out.extend_from_slice(b",\"datacontenttype\":\"application/json; charset=utf-8\",\"time\":\"");
    out.extend_from_slice(time_of(record.timestamp).as_bytes());
    out.push(b'"');
    if let Some(account) = &options.account_id {
        out.extend_from_slice(b",\"aliyunaccountid\":");
        push_json_str(&mut out, account);
    }
    out.extend_from_slice(b",\"data\":{");
    push_position(&mut out, record);
    out.extend_from_slice(b",\"headers\":{");
    push_headers(&mut out, &record.headers);
    out.extend_from_slice(b",\"isReadOnly\":false}");
    for (field, bytes) in [("key", &record.key), ("value", &record.value)] {
        if let Some(bytes) = bytes {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":");
            let encoding = push_bytes(&mut out, bytes);
            push_encoding(&mut out, field, encoding);
        }
    }
    out.extend_from_slice(b"}}");
    out
}

/// A UUID (version 8) from the SHA-256 of topic, partition and offset, and
/// the split index of a record a plugin made with others from one source
/// record ([`crate::transform::SPLIT_INDEX`]), so those differ too.
fn event_id(record: &Record) -> String {
    let mut hasher = Sha256::new();
    hasher.update(record.topic.as_bytes());
    hasher.update([0]);
    hasher.update(record.partition.to_be_bytes());
    hasher.update(record.offset.to_be_bytes());
    let split = record
        .headers
        .iter()
        .find(|header| header.key == crate::transform::SPLIT_INDEX);
    if let Some(index) = split.and_then(|header| header.value.as_deref()) {
        hasher.update([0]);
        hasher.update(index);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// RFC 3339 in UTC with milliseconds; a record without a timestamp gets the epoch.
#[expect(
    clippy::expect_used,
    reason = "a fixed format of a clamped UTC time cannot fail"
)]
fn time_of(timestamp_ms: i64) -> String {
    let nanos = i128::from(timestamp_ms.max(0)) * 1_000_000;
    let time =
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    time.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            topic: "xxtopic".into(),
            partition: 7,
            offset: 25,
            timestamp: 1655952591589,
            key: Some(b"keytest".to_vec()),
            value: Some(br#"{"name":"shaouai","age":28}"#.to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn matches_the_documented_event_shape() {
        let options = CloudEvents {
            instance_id: "alikafka_pre-cn-i7m2t7t1".into(),
            account_id: Some("164901546557".into()),
        };
        let text = String::from_utf8(element(&record(), &options)).unwrap();
        let id = event_id(&record());
        assert_eq!(
            text,
            format!(
                r#"{{"specversion":"1.0","id":"{id}","source":"acs:alikafka","type":"alikafka:Topic:Message","subject":"acs:alikafka_pre-cn-i7m2t7t1:topic:xxtopic","datacontenttype":"application/json; charset=utf-8","time":"2022-06-23T02:49:51.589Z","aliyunaccountid":"164901546557","data":{{"topic":"xxtopic","partition":7,"offset":25,"timestamp":1655952591589,"headers":{{"headers":[],"isReadOnly":false}},"key":"keytest","value":"{{\"name\":\"shaouai\",\"age\":28}}"}}}}"#
            )
        );
    }

    #[test]
    fn ids_are_stable_uuids_unique_per_record() {
        let a = event_id(&record());
        assert_eq!(a, event_id(&record()));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version 8: {a}");
        let mut other = record();
        other.offset += 1;
        assert_ne!(a, event_id(&other));
    }

    #[test]
    fn records_split_from_one_source_record_get_ids_of_their_own() {
        let split = |index: &str| {
            let mut record = record();
            record.headers.push(crate::transform::Header {
                key: crate::transform::SPLIT_INDEX.into(),
                value: Some(index.as_bytes().to_vec()),
            });
            event_id(&record)
        };
        let unsplit = event_id(&record());
        assert_ne!(split("0"), split("1"));
        assert_ne!(split("0"), unsplit);
        assert_eq!(split("1"), split("1"));
    }
}
