//! Partial batch responses: find the Kafka records in an invocation payload and answer
//! like a Lambda function with `ReportBatchItemFailures`:
//! `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":15}}]}`.
//!
//! Records are found wherever they are in the JSON: any object with a string `topic`
//! and integer `partition` and `offset` is one. That covers the formats fcsink sends:
//! AWS's Kafka event (`{"eventSource":…,"records":{"orders-0":[{…}]}}`, key and value in
//! base64), FC's array (`[{"topic","partition","offset","key","value",…}]`), Confluent's
//! (`[{"payload":{…}}]`) and CloudEvents (`[{"data":{…}}]`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// One record's identity, as `itemIdentifier` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemIdentifier {
    /// `{topic}-{partition}`.
    pub partition: String,
    /// The record's offset.
    pub offset: i64,
}

/// The records in `body` whose `value` contains `text`, in the order they appear
/// (an object's keys in sorted order). A string value matches as is or, if it is valid
/// base64, decoded; any other JSON value matches on its JSON text. A body that is not
/// JSON has no records.
pub fn failed_items(body: &[u8], text: &str) -> Vec<ItemIdentifier> {
    let mut found = Vec::new();
    if let Ok(payload) = serde_json::from_slice::<Value>(body) {
        collect(&payload, text, &mut found);
    }
    found
}

/// Every record in `body` that has a `key`, in the order they appear, with
/// its key as text (a JSON string as is, any other value as its JSON).
pub fn keyed_records(body: &[u8]) -> Vec<(ItemIdentifier, String)> {
    fn walk(node: &Value, found: &mut Vec<(ItemIdentifier, String)>) {
        match node {
            Value::Object(fields) => {
                if let Some(id) = record_id(fields) {
                    match fields.get("key") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(key)) => found.push((id, key.clone())),
                        Some(other) => found.push((id, other.to_string())),
                    }
                    return;
                }
                fields.values().for_each(|child| walk(child, found));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(payload) = serde_json::from_slice::<Value>(body) {
        walk(&payload, &mut found);
    }
    found
}

/// The function's reply listing `failures`.
pub fn response(failures: &[ItemIdentifier]) -> Value {
    let items: Vec<Value> = failures
        .iter()
        .map(|f| json!({"itemIdentifier": {"partition": f.partition, "offset": f.offset}}))
        .collect();
    json!({ "batchItemFailures": items })
}

fn collect(node: &Value, text: &str, found: &mut Vec<ItemIdentifier>) {
    match node {
        Value::Object(fields) => {
            if let Some(id) = record_id(fields) {
                if fields.get("value").is_some_and(|v| contains(v, text)) {
                    found.push(id);
                }
                return;
            }
            fields
                .values()
                .for_each(|child| collect(child, text, found));
        }
        Value::Array(items) => items.iter().for_each(|child| collect(child, text, found)),
        _ => {}
    }
}

fn record_id(fields: &serde_json::Map<String, Value>) -> Option<ItemIdentifier> {
    let topic = fields.get("topic")?.as_str()?;
    let partition = fields.get("partition")?.as_i64()?;
    let offset = fields.get("offset")?.as_i64()?;
    Some(ItemIdentifier {
        partition: format!("{topic}-{partition}"),
        offset,
    })
}

fn contains(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => {
            s.contains(text)
                || STANDARD
                    .decode(s)
                    .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(text))
        }
        Value::Null => false,
        other => other.to_string().contains(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &str) -> Vec<(String, i64)> {
        failed_items(body.as_bytes(), "poison")
            .into_iter()
            .map(|f| (f.partition, f.offset))
            .collect()
    }

    fn id(partition: &str, offset: i64) -> (String, i64) {
        (partition.to_owned(), offset)
    }

    #[test]
    fn aws_kafka_event_with_base64_values() {
        // "cG9pc29uIHBpbGw=" is "poison pill", "Y2xlYW4=" is "clean".
        let body = r#"{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092",
            "records":{"orders-0":[
                {"topic":"orders","partition":0,"offset":15,"timestamp":1,"timestampType":"CREATE_TIME",
                 "key":"cG9pc29u","value":"Y2xlYW4=","headers":[{"k":[112]}]},
                {"topic":"orders","partition":0,"offset":16,"value":"cG9pc29uIHBpbGw=","headers":[]}],
              "orders-1":[{"topic":"orders","partition":1,"offset":3,"value":"cG9pc29uIHBpbGw="}]}}"#;
        assert_eq!(ids(body), [id("orders-0", 16), id("orders-1", 3)]);
    }

    #[test]
    fn fc_array_with_text_values() {
        let body = r#"[{"key":"k","offset":7,"partition":2,"topic":"t","value":"a poison pill"},
                       {"key":"poison","offset":8,"partition":2,"topic":"t","value":"fine"}]"#;
        assert_eq!(ids(body), [id("t-2", 7)]);
    }

    #[test]
    fn confluent_payloads_with_text_and_json_values() {
        let body = r#"[{"payload":{"topic":"t","partition":0,"offset":1,"key":null,"value":"poison","timestamp":5}},
                       {"payload":{"topic":"t","partition":0,"offset":2,"value":{"kind":"poison"}}},
                       {"payload":{"topic":"t","partition":0,"offset":3,"value":null}}]"#;
        assert_eq!(ids(body), [id("t-0", 1), id("t-0", 2)]);
    }

    #[test]
    fn cloud_events_data() {
        let body = r#"[{"specversion":"1.0","data":{"topic":"t","partition":4,"offset":9,"value":"poison"}}]"#;
        assert_eq!(ids(body), [id("t-4", 9)]);
    }

    #[test]
    fn not_json_or_no_records() {
        assert!(ids("poison").is_empty());
        assert!(ids(r#"{"value":"poison"}"#).is_empty());
    }

    #[test]
    fn response_shape() {
        let failures = failed_items(
            br#"[{"topic":"orders","partition":0,"offset":15,"value":"poison"}]"#,
            "poison",
        );
        assert_eq!(
            response(&failures),
            json!({"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":15}}]})
        );
        assert_eq!(response(&[]), json!({"batchItemFailures": []}));
    }
}
