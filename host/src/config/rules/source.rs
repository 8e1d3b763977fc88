//! `[source]`: the brokers, the topics, the consumer's Kafka properties.

use super::*;

pub(super) fn source(raw: RawSource, base: &Path) -> Result<SourceSettings> {
    if raw.bootstrap_servers.trim().is_empty() {
        return Err(ConfigError::invalid(
            "source.bootstrap_servers",
            "must not be empty",
        ));
    }
    let topics = match (raw.topics, raw.topic_regex) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "source.topics",
                "set either source.topics or source.topic_regex, not both",
            ));
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                "source.topics",
                "is required (or set source.topic_regex)",
            ));
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    "source.topics",
                    "must name at least one topic",
                ));
            }
            let checked = list
                .iter()
                .enumerate()
                .map(|(i, t)| topic_name(&format!("source.topics[{i}]"), t))
                .collect::<Result<Vec<_>>>()?;
            Topics::List(checked)
        }
        (None, Some(regex)) => {
            if regex.is_empty() {
                return Err(ConfigError::invalid(
                    "source.topic_regex",
                    "must not be empty",
                ));
            }
            // librdkafka treats a subscription that starts with '^' as a regex.
            let anchored = if regex.starts_with('^') {
                regex
            } else {
                format!("^{regex}")
            };
            Topics::Regex(anchored)
        }
    };
    let start_from = one_of(
        "source.start_from",
        raw.start_from.as_deref(),
        StartFrom::Earliest,
        &[
            ("earliest", StartFrom::Earliest),
            ("latest", StartFrom::Latest),
        ],
    )?;
    let concurrency = runtime::CONCURRENCY.read(raw.concurrency, DEFAULT_CONCURRENCY)?;
    let buffer_mb: usize = int_in(
        "source.buffer_mb",
        raw.buffer_mb,
        DEFAULT_BUFFER_BYTES >> 20,
        1..=16 * 1024,
    )?;
    let buffer_bytes = buffer_mb << 20;
    let instance_id = raw.instance_id.as_deref().map(instance_id).transpose()?;
    let kafka = super::kafka::properties(raw.kafka, base)?;
    Ok(SourceSettings {
        bootstrap_servers: raw.bootstrap_servers,
        topics,
        start_from,
        concurrency,
        buffer_bytes,
        instance_id,
        kafka,
    })
}

/// `source.instance_id`, `${NAME}` expanded (a StatefulSet's `${HOSTNAME}`),
/// checked as the broker checks `group.instance.id`: 1 to 249 of
/// `[A-Za-z0-9._-]`, and not `.` or `..`.
pub(super) fn instance_id(raw: &str) -> Result<String> {
    const FIELD: &str = "source.instance_id";
    let value = expand_env(FIELD, raw)?;
    let ok = made_of(&value, 1..=249, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
    }) && value != "."
        && value != "..";
    checked(
        FIELD,
        &value,
        ok,
        "must be 1 to 249 of A-Z a-z 0-9 . _ - (and not . or ..), unique per instance",
    )
}
