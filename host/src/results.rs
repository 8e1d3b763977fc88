//! Result topics, as Confluent's Lambda sink writes them: in sync mode the
//! function's answer goes to the success topic, and with
//! `behavior_on_error = "log"` each failure goes to the error topic. Every
//! record is keyed by its input record's key and carries the headers
//! `input_record_topic`, `input_record_partition`, `input_record_offset` and
//! `input_record_timestamp`; error records add `error_type`,
//! `error_message` and, when there was an answer, `status_code`.
//!
//! One result per input record: when the answer is a JSON array with one
//! element per record of the request, record `i` gets element `i`;
//! otherwise every record gets the whole answer.

use tokio_util::sync::CancellationToken;

use crate::dlq::Reason;
use crate::produce::{self, Outgoing, Producers, Role, Writer};
use crate::transform::Record;

/// Writes to the success and error topics, when configured.
#[derive(Clone)]
pub struct Results {
    success: Option<Writer>,
    error: Option<Writer>,
}

impl Results {
    /// Writes through `producers` to the topics that are set.
    pub fn new(
        producers: &Producers,
        success_topic: Option<String>,
        error_topic: Option<String>,
    ) -> Self {
        Results {
            success: success_topic.map(|topic| producers.writer(topic, Role::Success)),
            error: error_topic.map(|topic| producers.writer(topic, Role::Error)),
        }
    }

    /// Writes the answer to a request carrying `inputs` to the success topic.
    ///
    /// # Errors
    /// [`produce::Error`] at shutdown or when Kafka refuses a record for good.
    pub async fn success(
        &self,
        inputs: &[&Record],
        answer: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), produce::Error> {
        let Some(writer) = &self.success else {
            return Ok(());
        };
        let values = split_answer(answer, inputs.len());
        let records: Vec<Outgoing> = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| Outgoing {
                key: input.key.clone(),
                value: Some(values.as_ref().map_or(answer, |v| v[i]).to_vec()),
                headers: input_headers(input),
                timestamp: None,
            })
            .collect();
        writer.write(&records, cancel).await
    }

    /// Reports each failed input record, with why, to the error topic.
    ///
    /// # Errors
    /// [`produce::Error`] at shutdown or when Kafka refuses a record for good.
    pub async fn errors(
        &self,
        entries: &[(&Record, Reason)],
        cancel: &CancellationToken,
    ) -> Result<(), produce::Error> {
        let Some(writer) = &self.error else {
            return Ok(());
        };
        let records: Vec<Outgoing> = entries
            .iter()
            .map(|(input, reason)| {
                let mut headers = input_headers(input);
                let mut add =
                    |k: &str, v: String| headers.push((k.to_string(), Some(v.into_bytes())));
                add("error_type", reason.code.clone());
                add("error_message", reason.message.clone());
                if let Some(status) = reason.status {
                    add("status_code", status.to_string());
                }
                Outgoing {
                    key: input.key.clone(),
                    value: Some(reason.message.clone().into_bytes()),
                    headers,
                    timestamp: None,
                }
            })
            .collect();
        writer.write(&records, cancel).await
    }
}

/// `input_record_topic`, `_partition`, `_offset` and `_timestamp`.
fn input_headers(input: &Record) -> Vec<(String, Option<Vec<u8>>)> {
    [
        ("input_record_topic", input.topic.clone()),
        ("input_record_partition", input.partition.to_string()),
        ("input_record_offset", input.offset.to_string()),
        ("input_record_timestamp", input.timestamp.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v.into_bytes())))
    .collect()
}

/// The elements of a JSON-array answer, as written, when it has exactly `count`.
fn split_answer(answer: &[u8], count: usize) -> Option<Vec<&[u8]>> {
    let elements: Vec<&serde_json::value::RawValue> = serde_json::from_slice(answer).ok()?;
    (elements.len() == count).then(|| {
        elements
            .into_iter()
            .map(|raw| raw.get().as_bytes())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_answer_is_split_per_record() {
        let answer = br#"[{"payload":{"sum":2}}, 3 ,"x"]"#;
        let parts = split_answer(answer, 3).unwrap();
        assert_eq!(
            parts,
            vec![&br#"{"payload":{"sum":2}}"#[..], b"3", br#""x""#]
        );
        assert_eq!(split_answer(answer, 2), None);
        assert_eq!(split_answer(b"{\"ok\":1}", 1), None);
    }

    #[test]
    fn headers_name_the_input_record() {
        let record = Record {
            topic: "orders".into(),
            partition: 2,
            offset: 9,
            timestamp: 1700000000000,
            key: None,
            value: None,
            headers: Vec::new(),
        };
        let headers = input_headers(&record);
        let text: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.unwrap()).unwrap()))
            .collect();
        assert_eq!(
            text,
            vec![
                ("input_record_topic".into(), "orders".into()),
                ("input_record_partition".into(), "2".into()),
                ("input_record_offset".into(), "9".into()),
                ("input_record_timestamp".into(), "1700000000000".into()),
            ]
        );
    }
}
