//! A plugin's configuration: the `config` table of its `[[transform]]` entry.

use std::collections::BTreeMap;
use std::str::FromStr;

/// String key/value pairs given to a plugin once, at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<String, String>,
}

impl Config {
    /// Builds a configuration from pairs; a later duplicate key wins.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let values = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Config { values }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// A message naming the key when it is missing.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("config key `{key}` is required"))
    }

    /// The value of `key` parsed as `T`, or `None` when unset.
    ///
    /// # Errors
    /// A message naming the key and the value when it does not parse.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => raw.parse().map(Some).map_err(|_| {
                format!(
                    "config key `{key}`: cannot read {raw:?} as {}",
                    std::any::type_name::<T>()
                )
            }),
        }
    }

    /// Every key, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Refuses keys outside `allowed`, so that a typo is an error, not a silent default.
    ///
    /// # Errors
    /// A message naming the first unknown key and the allowed ones.
    pub fn deny_unknown(&self, allowed: &[&str]) -> Result<(), String> {
        match self.keys().find(|k| !allowed.contains(k)) {
            None => Ok(()),
            Some(key) => Err(format!(
                "unknown config key `{key}` (allowed: {})",
                allowed.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_key_on_error() {
        let config = Config::from_pairs([("limit", "ten")]);
        let err = config.parse::<u32>("limit").unwrap_err();
        assert!(err.contains("`limit`") && err.contains("ten"), "{err}");
        assert_eq!(config.parse::<u32>("absent"), Ok(None));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let config = Config::from_pairs([("feild", "x")]);
        let err = config.deny_unknown(&["field"]).unwrap_err();
        assert!(err.contains("`feild`") && err.contains("field"), "{err}");
        assert!(
            Config::from_pairs([("field", "x")])
                .deny_unknown(&["field"])
                .is_ok()
        );
    }
}
