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
    let start_from = match raw.start_from.as_deref() {
        None | Some("earliest") => StartFrom::Earliest,
        Some("latest") => StartFrom::Latest,
        Some(other) => StartFrom::Timestamp(point_in_time(other, now_ms()).ok_or_else(|| {
            ConfigError::invalid(
                "source.start_from",
                format!("must be \"earliest\", \"latest\", {POINT_IN_TIME_RULE} (got {other:?})"),
            )
        })?),
    };
    let concurrency = runtime::CONCURRENCY.read(raw.concurrency, DEFAULT_CONCURRENCY)?;
    let ordering = one_of(
        "source.ordering",
        raw.ordering.as_deref(),
        RecordOrder::Partition,
        &[
            ("partition", RecordOrder::Partition),
            ("key", RecordOrder::Key),
            ("none", RecordOrder::Unordered),
        ],
    )?;
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
        ordering,
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

/// What [`point_in_time`] accepts, for error messages.
pub(crate) const POINT_IN_TIME_RULE: &str =
    "an RFC 3339 time (2026-12-01T08:00:00Z) or a duration ago like \"-2h\" (s, m, h or d)";

/// Milliseconds since the Unix epoch of an RFC 3339 time
/// (`2026-12-01T08:00:00Z`, `2026-12-01T16:00:00+08:00`) or of a duration
/// before `now_ms` (`-30s`, `-15m`, `-2h`, `-7d`). `None` for anything else,
/// and for times before 1970 (Kafka's offsets-for-times reads negative
/// timestamps as "earliest" and "latest").
pub(crate) fn point_in_time(text: &str, now_ms: i64) -> Option<i64> {
    let ms = if let Some(ago) = text.strip_prefix('-') {
        let unit = ago.chars().last()?;
        let unit_ms: i64 = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        let digits = &ago[..ago.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        now_ms.checked_sub(digits.parse::<i64>().ok()?.checked_mul(unit_ms)?)?
    } else {
        let time =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()?;
        i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()?
    };
    (ms >= 0).then_some(ms)
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
