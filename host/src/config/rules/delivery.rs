//! `[delivery]`: retries, the failure policy and the dead-letter topic.

use super::*;

pub(super) fn delivery(
    raw: RawDelivery,
    name: &str,
    target: &TargetSettings,
) -> Result<DeliverySettings> {
    let backoff_initial = Duration::from_millis(int_in(
        "delivery.backoff_initial_ms",
        raw.backoff_initial_ms,
        DEFAULT_BACKOFF_INITIAL.as_millis() as u64,
        1..=600_000,
    )?);
    let backoff_max = Duration::from_millis(int_in(
        "delivery.backoff_max_ms",
        raw.backoff_max_ms,
        DEFAULT_BACKOFF_MAX.as_millis() as u64,
        1..=3_600_000,
    )?);
    if backoff_max < backoff_initial {
        return Err(ConfigError::invalid(
            "delivery.backoff_max_ms",
            "must not be less than delivery.backoff_initial_ms",
        ));
    }
    let lambda = matches!(target, TargetSettings::Lambda(_));
    let (failure_policy, log_errors) = failure_policy(&raw, lambda)?;
    let dead_letter_topic = match raw.dead_letter_topic {
        Some(topic) => topic_name("delivery.dead_letter_topic", &topic)?,
        None => format!("connect-error-{name}"),
    };
    let error_topic = match (log_errors, raw.error_topic) {
        (true, topic) => Some(topic_name(
            "delivery.error_topic",
            &topic.unwrap_or_else(|| format!("error-{name}")),
        )?),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ConfigError::invalid(
                "delivery.error_topic",
                "is only written with behavior_on_error = \"log\"",
            ));
        }
    };
    let sync = target.send_mode() == SendMode::Sync;
    let success_topic = match raw.success_topic {
        Some(topic) if topic.is_empty() => None,
        Some(_) if !sync => {
            return Err(ConfigError::invalid(
                "delivery.success_topic",
                "needs a synchronous target: an asynchronous invocation returns no result",
            ));
        }
        Some(topic) => Some(topic_name("delivery.success_topic", &topic)?),
        None if lambda && sync => Some(format!("success-{name}")),
        None => None,
    };
    let idempotency = idempotency(raw.idempotency.as_deref(), target)?;
    Ok(DeliverySettings {
        idempotency,
        retries: runtime::DELIVERY_RETRIES.read(raw.retries, DEFAULT_RETRIES)?,
        target_failure_timeout: Duration::from_millis(int_in(
            "delivery.target_failure_timeout_ms",
            raw.target_failure_timeout_ms,
            DEFAULT_TARGET_FAILURE_TIMEOUT.as_millis() as u64,
            1_000..=86_400_000,
        )?),
        backoff_initial,
        backoff_max,
        bisect_on_error: raw.bisect_on_error.unwrap_or(true),
        adaptive_concurrency: raw.adaptive_concurrency.unwrap_or(true),
        max_requests_per_second: opt_int_in(
            "delivery.max_requests_per_second",
            raw.max_requests_per_second,
            1..=100_000,
        )?,
        breaker: crate::breaker::Settings {
            failures: int_in(
                "delivery.breaker_failures",
                raw.breaker_failures,
                DEFAULT_BREAKER_FAILURES,
                0..=1_000,
            )?,
            probe_interval: Duration::from_millis(int_in(
                "delivery.breaker_probe_interval_ms",
                raw.breaker_probe_interval_ms,
                DEFAULT_BREAKER_PROBE_INTERVAL.as_millis() as u64,
                100..=3_600_000,
            )?),
        },
        max_record_age: opt_int_in(
            "delivery.max_record_age_ms",
            raw.max_record_age_ms,
            1_000..=604_800_000,
        )?
        .map(Duration::from_millis),
        failure_policy,
        dead_letter_topic,
        create_topics: raw.create_topics.unwrap_or(true),
        success_topic,
        error_topic,
    })
}

/// `failure_policy`, or Confluent's `behavior_on_error` (one or the other),
/// and whether failures are reported to the error topic. `fail` stops the
/// partition, `ignore` skips the records and `log` reports them and goes
/// on; records that are skipped still go to the dead-letter topic.
pub(super) fn failure_policy(raw: &RawDelivery, lambda: bool) -> Result<(FailurePolicy, bool)> {
    match (&raw.failure_policy, &raw.behavior_on_error) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "delivery.behavior_on_error",
            "set either delivery.failure_policy or delivery.behavior_on_error, not both",
        )),
        (None, Some(behavior)) => one_of(
            "delivery.behavior_on_error",
            Some(behavior),
            (FailurePolicy::Continue, true),
            &[
                ("fail", (FailurePolicy::Stop, false)),
                ("ignore", (FailurePolicy::Continue, false)),
                ("log", (FailurePolicy::Continue, true)),
            ],
        ),
        (policy, None) => {
            let policy = runtime::FAILURE_POLICY.read(
                runtime::FAILURE_POLICY.key,
                policy.as_deref(),
                FailurePolicy::Continue,
            )?;
            // Confluent Cloud's Lambda sink logs errors by default.
            Ok((
                policy,
                lambda && policy == FailurePolicy::Continue && raw.failure_policy.is_none(),
            ))
        }
    }
}

/// `delivery.idempotency`: `fc_task_id` needs FC in async mode, the only
/// invocation FC deduplicates; Lambda and HTTP requests carry their ID as
/// `Idempotency-Key` whatever it says.
fn idempotency(value: Option<&str>, target: &TargetSettings) -> Result<Idempotency> {
    const FIELD: &str = "delivery.idempotency";
    let idempotency = one_of(
        FIELD,
        value,
        Idempotency::None,
        &[
            ("none", Idempotency::None),
            ("fc_task_id", Idempotency::FcTaskId),
        ],
    )?;
    if idempotency == Idempotency::FcTaskId {
        match target {
            TargetSettings::Fc(fc) if fc.send_mode == SendMode::Async => {}
            TargetSettings::Fc(_) => {
                return Err(ConfigError::invalid(
                    FIELD,
                    "\"fc_task_id\" needs target.fc.send_mode = \"async\": FC deduplicates asynchronous tasks only",
                ));
            }
            _ => {
                return Err(ConfigError::invalid(
                    FIELD,
                    "\"fc_task_id\" needs the FC target ([target.fc]); Lambda and HTTP requests always carry their ID as Idempotency-Key",
                ));
            }
        }
    }
    Ok(idempotency)
}
