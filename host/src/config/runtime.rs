//! The settings a running connector may change (`fcsink set`), each
//! defined once: its key, its range or choices, and its help. The file's
//! validation (`rules.rs`), `Live::apply`, `fcsink set`'s list of keys,
//! `Live::describe` and the README's key list (checked by a test) all read
//! these definitions.

use std::ops::RangeInclusive;

use super::rules::{int_in, one_of};
use super::{ConfigError, FailurePolicy, MAX_BATCH_SIZE, SendMode};

/// A whole number within a range.
pub struct IntSetting {
    /// The key, in the file (`[batch] size` is `batch.size`) and for `fcsink set`.
    pub key: &'static str,
    /// The values allowed.
    pub range: RangeInclusive<i64>,
    /// What it sets.
    pub help: &'static str,
}

impl IntSetting {
    /// `value`, or `default` when unset.
    ///
    /// # Errors
    /// A value outside the range, naming the key and the range.
    pub fn read<T: TryFrom<i64>>(&self, value: Option<i64>, default: T) -> Result<T, ConfigError> {
        int_in(self.key, value, default, self.range.clone())
    }

    /// `value` as `fcsink set` writes it (text).
    ///
    /// # Errors
    /// Text that is not a whole number, or one outside the range.
    pub fn parse<T: TryFrom<i64>>(&self, value: &str) -> Result<T, ConfigError> {
        let number = value.trim().parse::<i64>().map_err(|_| {
            ConfigError::invalid(self.key, format!("must be a whole number (got {value:?})"))
        })?;
        int_in(self.key, Some(number), number, self.range.clone()).and_then(|n: i64| {
            T::try_from(n).map_err(|_| ConfigError::invalid(self.key, "out of range"))
        })
    }

    fn rule(&self) -> String {
        format!("{}–{}", self.range.start(), self.range.end())
    }
}

/// One of a few names, each standing for a value.
pub struct ChoiceSetting<T: 'static> {
    /// The key for `fcsink set`.
    pub key: &'static str,
    /// The names and what they stand for.
    pub choices: &'static [(&'static str, T)],
    /// What it sets.
    pub help: &'static str,
}

impl<T: Copy + PartialEq> ChoiceSetting<T> {
    /// `value` read from the file's `field`, or `default` when unset.
    ///
    /// # Errors
    /// A name that is not a choice, naming the field and the choices.
    pub fn read(&self, field: &str, value: Option<&str>, default: T) -> Result<T, ConfigError> {
        one_of(field, value, default, self.choices)
    }

    /// `value` as `fcsink set` writes it.
    ///
    /// # Errors
    /// A name that is not a choice.
    pub fn parse(&self, value: &str) -> Result<T, ConfigError> {
        let first = self.choices[0].1;
        one_of(self.key, Some(value), first, self.choices)
    }

    /// The name of `value`.
    pub fn name(&self, value: T) -> &'static str {
        self.choices
            .iter()
            .find(|(_, choice)| *choice == value)
            .map_or("", |(name, _)| name)
    }

    fn rule(&self) -> String {
        let names: Vec<_> = self.choices.iter().map(|(name, _)| *name).collect();
        names.join(" | ")
    }
}

/// `batch.size`.
pub const BATCH_SIZE: IntSetting = IntSetting {
    key: "batch.size",
    range: 1..=MAX_BATCH_SIZE as i64,
    help: "records per invocation",
};

/// `batch.linger_ms`.
pub const BATCH_LINGER_MS: IntSetting = IntSetting {
    key: "batch.linger_ms",
    range: 0..=300_000,
    help: "how long a partial batch waits for more records",
};

/// `delivery.retries`.
pub const DELIVERY_RETRIES: IntSetting = IntSetting {
    key: "delivery.retries",
    range: 0..=10,
    help: "retries of a failed invocation",
};

/// `delivery.failure_policy`.
pub const FAILURE_POLICY: ChoiceSetting<FailurePolicy> = ChoiceSetting {
    key: "delivery.failure_policy",
    choices: &[
        ("continue", FailurePolicy::Continue),
        ("stop", FailurePolicy::Stop),
    ],
    help: "dead-letter and go on, or stop the partition",
};

/// `send_mode` (`target.fc.send_mode`, `target.lambda.invocation_type`).
pub const SEND_MODE: ChoiceSetting<SendMode> = ChoiceSetting {
    key: "send_mode",
    choices: &[("async", SendMode::Async), ("sync", SendMode::Sync)],
    help: "FC and Lambda targets; a request size left at its default follows the mode",
};

/// `source.concurrency`.
pub const CONCURRENCY: IntSetting = IntSetting {
    key: "source.concurrency",
    range: 1..=1024,
    help: "batches in flight at once",
};

/// `paused`.
pub const PAUSED: ChoiceSetting<bool> = ChoiceSetting {
    key: "paused",
    choices: &[("true", true), ("false", false)],
    help: "what `fcsink pause` and `resume` set",
};

/// Every runtime key with its rule and help, in the order `fcsink set`
/// lists them.
pub fn keys() -> Vec<(&'static str, String)> {
    let int = |s: &IntSetting| (s.key, format!("{}, {}", s.help, s.rule()));
    vec![
        int(&BATCH_SIZE),
        int(&BATCH_LINGER_MS),
        int(&DELIVERY_RETRIES),
        (
            FAILURE_POLICY.key,
            format!("{}, {}", FAILURE_POLICY.help, FAILURE_POLICY.rule()),
        ),
        (
            SEND_MODE.key,
            format!("{}, {}", SEND_MODE.help, SEND_MODE.rule()),
        ),
        int(&CONCURRENCY),
        (PAUSED.key, format!("{}, {}", PAUSED.help, PAUSED.rule())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_runtime_key() {
        let readme = include_str!("../../../README.md");
        let list = readme
            .split_once("`fcsink set` keys:")
            .map(|(_, rest)| rest.split("\n\n").next().unwrap_or(""))
            .expect("the README has the key list");
        for (key, _) in keys() {
            assert!(list.contains(&format!("`{key}`")), "README lacks {key}");
        }
        // And the file's ranges in the settings table are these.
        for setting in [
            &BATCH_SIZE,
            &BATCH_LINGER_MS,
            &DELIVERY_RETRIES,
            &CONCURRENCY,
        ] {
            let row = format!("| `{}` |", setting.key);
            let line = readme
                .lines()
                .find(|l| l.starts_with(&row))
                .unwrap_or_else(|| panic!("no settings row for {}", setting.key));
            assert!(
                line.contains(&setting.rule()),
                "{line} vs {}",
                setting.rule()
            );
        }
    }

    #[test]
    fn set_and_the_file_apply_the_same_rule() {
        assert_eq!(BATCH_SIZE.parse::<usize>("200").unwrap(), 200);
        let from_set = BATCH_SIZE.parse::<usize>("9000").unwrap_err().to_string();
        let from_file = BATCH_SIZE
            .read::<usize>(Some(9000), 20)
            .unwrap_err()
            .to_string();
        assert_eq!(from_set, from_file);
        assert!(from_file.contains("batch.size") && from_file.contains("1 and 5000"));
        assert!(BATCH_SIZE.parse::<usize>("ten").is_err());
        assert_eq!(FAILURE_POLICY.parse("stop").unwrap(), FailurePolicy::Stop);
        assert_eq!(FAILURE_POLICY.name(FailurePolicy::Stop), "stop");
        assert!(
            PAUSED
                .parse("yes")
                .unwrap_err()
                .to_string()
                .contains("true, false")
        );
    }
}
