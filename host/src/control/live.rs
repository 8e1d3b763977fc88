//! The settings a running connector may change without a restart, and the
//! keys `fcsink set` writes for them.
//!
//! Each instance keeps the file's values as a base and applies the config
//! topic's overrides on top, so removing an override restores the file value.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{
    self, BatchSettings, ConfigError, FailurePolicy, MAX_BATCH_SIZE, SendMode, Settings,
    TargetSettings,
};
use crate::retry::RetryPolicy;

/// The keys `fcsink set` accepts, with the values each takes.
pub const KEYS: &[(&str, &str)] = &[
    ("batch.size", "records per invocation, 1-5000"),
    ("batch.linger_ms", "0-300000"),
    ("delivery.retries", "0-10"),
    ("delivery.failure_policy", "continue | stop"),
    ("send_mode", "async | sync (FC and Lambda targets)"),
    ("source.concurrency", "batches in flight at once, 1-1024"),
    (
        "paused",
        "true | false (what `fcsink pause` and `resume` set)",
    ),
];

/// Whether `key` is one of [`KEYS`].
///
/// # Errors
/// Naming the keys that are.
pub fn known(key: &str) -> Result<(), ConfigError> {
    if KEYS.iter().any(|(k, _)| *k == key) {
        return Ok(());
    }
    let keys: Vec<_> = KEYS.iter().map(|(k, _)| *k).collect();
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
        let number = || {
            value.trim().parse::<i64>().map_err(|_| {
                ConfigError::invalid(key, format!("must be a whole number (got {value:?})"))
            })
        };
        match key {
            "batch.size" => {
                self.batch.max_records =
                    config::int_in(key, Some(number()?), 0, 1..=MAX_BATCH_SIZE as i64)?;
            }
            "batch.linger_ms" => {
                let ms: u64 = config::int_in(key, Some(number()?), 0, 0..=300_000)?;
                self.batch.linger = Duration::from_millis(ms);
            }
            "delivery.retries" => {
                self.retry.retries = config::int_in(key, Some(number()?), 0, 0..=10)?;
            }
            "delivery.failure_policy" => {
                self.failure_policy = config::one_of(
                    key,
                    Some(value),
                    FailurePolicy::Continue,
                    &[
                        ("continue", FailurePolicy::Continue),
                        ("stop", FailurePolicy::Stop),
                    ],
                )?;
            }
            "send_mode" => {
                let mode = config::one_of(
                    key,
                    Some(value),
                    SendMode::Async,
                    &[("async", SendMode::Async), ("sync", SendMode::Sync)],
                )?;
                if matches!(settings.target, TargetSettings::Http(_)) && mode == SendMode::Async {
                    return Err(ConfigError::invalid(key, "an HTTP target is always sync"));
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
            "source.concurrency" => {
                self.concurrency = config::int_in(key, Some(number()?), 1, 1..=1024)?;
            }
            "paused" => {
                self.paused =
                    config::one_of(key, Some(value), false, &[("true", true), ("false", false)])?;
            }
            _ => return known(key),
        }
        Ok(())
    }

    /// Every key with its current value, as `fcsink status` shows them.
    pub fn describe(&self) -> BTreeMap<String, String> {
        let name = |mode| match mode {
            SendMode::Async => "async",
            SendMode::Sync => "sync",
        };
        BTreeMap::from([
            ("batch.size".into(), self.batch.max_records.to_string()),
            (
                "batch.linger_ms".into(),
                self.batch.linger.as_millis().to_string(),
            ),
            ("delivery.retries".into(), self.retry.retries.to_string()),
            (
                "delivery.failure_policy".into(),
                match self.failure_policy {
                    FailurePolicy::Continue => "continue",
                    FailurePolicy::Stop => "stop",
                }
                .into(),
            ),
            ("send_mode".into(), name(self.send_mode).into()),
            ("source.concurrency".into(), self.concurrency.to_string()),
            ("paused".into(), self.paused.to_string()),
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
}
