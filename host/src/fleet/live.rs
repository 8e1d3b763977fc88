//! The settings a running connector may change without a restart, and the
//! keys `fcsink set` writes for them.
//!
//! Each instance keeps the file's values as a base and applies the config
//! topic's overrides on top, so removing an override restores the file value.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::runtime::{
    self, BATCH_LINGER_MS, BATCH_SIZE, CONCURRENCY, DELIVERY_RETRIES, FAILURE_POLICY, PAUSED,
    SEND_MODE,
};
use crate::config::{
    self, BatchSettings, ConfigError, FailurePolicy, SendMode, Settings, TargetSettings,
};
use crate::retry::RetryPolicy;

/// Whether `key` is one that `fcsink set` may change.
///
/// # Errors
/// Naming the keys that are.
pub fn known(key: &str) -> Result<(), ConfigError> {
    let keys = runtime::keys();
    if keys.iter().any(|(k, _)| *k == key) {
        return Ok(());
    }
    let keys: Vec<_> = keys.iter().map(|(k, _)| *k).collect();
    Err(ConfigError::invalid(
        key,
        format!(
            "cannot be changed at runtime; the keys are {}",
            keys.join(", ")
        ),
    ))
}

/// What workers and the dispatcher read per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// When a batch is flushed, and how large a request may be.
    pub batch: BatchSettings,
    /// Retries of an invocation.
    pub retry: RetryPolicy,
    /// Dead-letter and go on, or stop the partition.
    pub failure_policy: FailurePolicy,
    /// Sync or async invocation.
    pub send_mode: SendMode,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// The whole connector is paused (`fcsink pause`).
    pub paused: bool,
}

impl Live {
    /// The file's values.
    pub fn from_settings(settings: &Settings) -> Live {
        Live {
            batch: settings.batch,
            retry: RetryPolicy {
                retries: settings.delivery.retries,
                initial: settings.delivery.backoff_initial,
                max: settings.delivery.backoff_max,
                target_failure: settings.delivery.target_failure_timeout,
                bisect: settings.delivery.bisect_on_error,
                max_record_age: settings.delivery.max_record_age,
            },
            failure_policy: settings.delivery.failure_policy,
            send_mode: settings.target.send_mode(),
            concurrency: settings.source.concurrency,
            paused: false,
        }
    }

    /// The file's values with `overrides` applied in key order; a value
    /// that breaks its rule is logged and skipped.
    pub fn with_overrides(settings: &Settings, overrides: &BTreeMap<String, String>) -> Live {
        let mut live = Live::from_settings(settings);
        for (key, value) in overrides {
            if let Err(err) = live.apply(settings, key, value) {
                tracing::warn!(%err, "Ignoring a runtime setting from the config topic");
            }
        }
        live
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// An unknown key, or a value that breaks the key's rule.
    pub fn apply(
        &mut self,
        settings: &Settings,
        key: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        match key {
            k if k == BATCH_SIZE.key => self.batch.max_records = BATCH_SIZE.parse(value)?,
            k if k == BATCH_LINGER_MS.key => {
                self.batch.linger = Duration::from_millis(BATCH_LINGER_MS.parse(value)?);
            }
            k if k == DELIVERY_RETRIES.key => self.retry.retries = DELIVERY_RETRIES.parse(value)?,
            k if k == FAILURE_POLICY.key => self.failure_policy = FAILURE_POLICY.parse(value)?,
            k if k == SEND_MODE.key => {
                let mode = SEND_MODE.parse(value)?;
                if matches!(settings.target, TargetSettings::Http(_)) && mode == SendMode::Async {
                    return Err(ConfigError::invalid(key, "an HTTP target is always sync"));
                }
                if settings.delivery.idempotency == config::Idempotency::FcTaskId
                    && mode == SendMode::Sync
                {
                    return Err(ConfigError::invalid(
                        key,
                        "delivery.idempotency = \"fc_task_id\" needs async: FC deduplicates asynchronous tasks only",
                    ));
                }
                // A request size left at its default follows the mode's limit.
                let file_mode = settings.target.send_mode();
                if settings.batch.max_bytes
                    == config::default_request_bytes(&settings.target, file_mode)
                {
                    self.batch.max_bytes = config::default_request_bytes(&settings.target, mode);
                }
                self.send_mode = mode;
            }
            k if k == CONCURRENCY.key => self.concurrency = CONCURRENCY.parse(value)?,
            k if k == PAUSED.key => self.paused = PAUSED.parse(value)?,
            _ => return known(key),
        }
        Ok(())
    }

    /// Every key with its current value, as `fcsink status` shows them.
    pub fn describe(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (BATCH_SIZE.key.into(), self.batch.max_records.to_string()),
            (
                BATCH_LINGER_MS.key.into(),
                self.batch.linger.as_millis().to_string(),
            ),
            (DELIVERY_RETRIES.key.into(), self.retry.retries.to_string()),
            (
                FAILURE_POLICY.key.into(),
                FAILURE_POLICY.name(self.failure_policy).into(),
            ),
            (SEND_MODE.key.into(), SEND_MODE.name(self.send_mode).into()),
            (CONCURRENCY.key.into(), self.concurrency.to_string()),
            (PAUSED.key.into(), PAUSED.name(self.paused).into()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(target: &str) -> Settings {
        Settings::from_toml(&format!(
            "name = \"t\"\n[source]\nbootstrap_servers = \"b:9092\"\ntopics = [\"in\"]\n{target}"
        ))
        .unwrap()
    }

    fn fc() -> Settings {
        settings("[target.fc]\nendpoint = \"http://fc\"\nservice = \"s\"\nfunction = \"f\"")
    }

    #[test]
    fn overrides_apply_over_the_file_and_bad_values_are_skipped() {
        let settings = fc();
        let overrides = BTreeMap::from([
            ("batch.size".to_string(), "100".to_string()),
            ("delivery.retries".to_string(), "99".to_string()),
            ("paused".to_string(), "true".to_string()),
        ]);
        let live = Live::with_overrides(&settings, &overrides);
        assert_eq!(live.batch.max_records, 100);
        assert_eq!(live.retry.retries, settings.delivery.retries);
        assert!(live.paused);
        assert_eq!(live.describe()["batch.size"], "100");
    }

    #[test]
    fn every_key_names_its_rule() {
        let settings = fc();
        let mut live = Live::from_settings(&settings);
        let err = live.apply(&settings, "batch.size", "9000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`batch.size`: must be between 1 and 5000 (got 9000)"
        );
        let err = live.apply(&settings, "batch.size", "many").unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
        let err = live.apply(&settings, "name", "x").unwrap_err();
        assert!(
            err.to_string().contains("cannot be changed at runtime"),
            "{err}"
        );
        let err = live
            .apply(&settings, "delivery.failure_policy", "panic")
            .unwrap_err();
        assert!(err.to_string().contains("continue, stop"), "{err}");
    }

    #[test]
    fn send_mode_moves_a_default_request_limit_with_it() {
        let fc = fc();
        let mut live = Live::from_settings(&fc);
        assert_eq!(live.send_mode, SendMode::Async);
        live.apply(&fc, "send_mode", "sync").unwrap();
        assert_eq!(live.send_mode, SendMode::Sync);
        assert_eq!(live.batch.max_bytes, config::DEFAULT_SYNC_REQUEST_BYTES);
        let http = settings("[target.http]\nurl = \"http://h/\"");
        let mut live = Live::from_settings(&http);
        assert!(live.apply(&http, "send_mode", "async").is_err());
    }

    #[test]
    fn fc_task_ids_keep_the_mode_async() {
        let mut fc = fc();
        fc.delivery.idempotency = config::Idempotency::FcTaskId;
        let mut live = Live::from_settings(&fc);
        let err = live.apply(&fc, "send_mode", "sync").unwrap_err();
        assert!(err.to_string().contains("fc_task_id"), "{err}");
        assert_eq!(live.send_mode, SendMode::Async);
    }
}
