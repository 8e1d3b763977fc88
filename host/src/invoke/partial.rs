//! Partial batch responses: a synchronous function may answer with AWS's
//! `{"batchItemFailures":[{"itemIdentifier":{"partition":"<topic>-<p>","offset":<n>}}]}`
//! to say that only those records failed. Only they are retried (and then
//! dead-lettered); the rest of the request counts as delivered.

/// One record a function reported as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemId {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// What a successful answer says about its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Not a partial batch response: every record succeeded.
    All,
    /// These records failed (none: every record succeeded).
    Failed(Vec<ItemId>),
    /// A partial batch response that cannot be read: as AWS does, the
    /// whole request counts as failed.
    Invalid(String),
}

/// Reads a function's answer.
pub fn report(body: &[u8]) -> Report {
    if !body.windows(17).any(|w| w == b"batchItemFailures") {
        return Report::All;
    }
    let Ok(serde_json::Value::Object(answer)) = serde_json::from_slice(body) else {
        return Report::All;
    };
    let Some(failures) = answer.get("batchItemFailures") else {
        return Report::All;
    };
    let Some(failures) = failures.as_array() else {
        return Report::Invalid("batchItemFailures is not an array".into());
    };
    let mut ids = Vec::with_capacity(failures.len());
    for failure in failures {
        match item_id(&failure["itemIdentifier"]) {
            Some(id) => ids.push(id),
            None => {
                return Report::Invalid(format!(
                    "itemIdentifier must be {{\"partition\":\"<topic>-<partition>\",\"offset\":<n>}} (got {})",
                    failure["itemIdentifier"]
                ));
            }
        }
    }
    Report::Failed(ids)
}

fn item_id(value: &serde_json::Value) -> Option<ItemId> {
    let (topic, partition) = value["partition"].as_str()?.rsplit_once('-')?;
    let offset = match &value["offset"] {
        serde_json::Value::Number(n) => n.as_i64()?,
        serde_json::Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(ItemId {
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aws_shape() {
        let body = br#"{"batchItemFailures":[{"itemIdentifier":{"partition":"my-topic-0","offset":15}},{"itemIdentifier":{"partition":"t-12","offset":"7"}}]}"#;
        assert_eq!(
            report(body),
            Report::Failed(vec![
                ItemId {
                    topic: "my-topic".into(),
                    partition: 0,
                    offset: 15
                },
                ItemId {
                    topic: "t".into(),
                    partition: 12,
                    offset: 7
                },
            ])
        );
        assert_eq!(
            report(br#"{"batchItemFailures":[]}"#),
            Report::Failed(Vec::new())
        );
    }

    #[test]
    fn other_answers_mean_everything_succeeded() {
        assert_eq!(report(b"[1,2]"), Report::All);
        assert_eq!(report(b"not json batchItemFailures"), Report::All);
        assert_eq!(report(br#"{"ok":true}"#), Report::All);
    }

    #[test]
    fn unreadable_identifiers_fail_the_request() {
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"abc"}]}"#;
        assert!(matches!(report(body), Report::Invalid(_)));
        assert!(matches!(
            report(br#"{"batchItemFailures":5}"#),
            Report::Invalid(_)
        ));
    }
}
