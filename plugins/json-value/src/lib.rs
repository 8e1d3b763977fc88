//! What the JSON plugins (`json-filter`, `json-mask`) share: field paths,
//! reading a record's value as JSON, and the `on_invalid` rule for values
//! that cannot be read.

use fcsink_guest::{Config, Outcome, Record};
use serde_json::Value;

/// What to do with a record whose value is null, not UTF-8 or not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Filter it out.
    Drop,
    /// Pass it on unchanged.
    Keep,
    /// Send it to the dead-letter topic with the reason.
    Fail,
}

impl OnInvalid {
    /// Reads config key `on_invalid` (default `fail`).
    ///
    /// # Errors
    /// A message naming the key and the allowed values.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        match config.get("on_invalid").unwrap_or("fail") {
            "drop" => Ok(OnInvalid::Drop),
            "keep" => Ok(OnInvalid::Keep),
            "fail" => Ok(OnInvalid::Fail),
            other => Err(format!(
                "config key `on_invalid` must be drop, keep or fail, got {other:?}"
            )),
        }
    }
}

/// The record's value as JSON, or the outcome `on_invalid` gives it.
///
/// # Errors
/// The outcome for a value that is null, not UTF-8 or not JSON.
pub fn read(record: &Record, on_invalid: OnInvalid) -> Result<Value, Outcome> {
    parse(record).map_err(|reason| match on_invalid {
        OnInvalid::Drop => Outcome::Drop,
        OnInvalid::Keep => Outcome::Keep,
        OnInvalid::Fail => Outcome::Fail(reason),
    })
}

fn parse(record: &Record) -> Result<Value, String> {
    let bytes = record.value.as_deref().ok_or("value is null")?;
    let text = std::str::from_utf8(bytes).map_err(|e| format!("value is not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("value is not JSON: {e}"))
}

/// Turns a field setting into a JSON pointer: a pointer (`/a/b`) is taken as
/// is, a dotted path (`a.b`) has its segments escaped (`~` as `~0`, `/` as
/// `~1`) and joined. `None` for an empty path or an empty segment.
pub fn pointer(field: &str) -> Option<String> {
    if field.starts_with('/') {
        return Some(field.to_string());
    }
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return None;
    }
    Some(
        field
            .split('.')
            .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_become_escaped_pointers() {
        assert_eq!(pointer("order.status").as_deref(), Some("/order/status"));
        assert_eq!(pointer("a~b.c/d").as_deref(), Some("/a~0b/c~1d"));
        assert_eq!(
            pointer("/already/a/pointer").as_deref(),
            Some("/already/a/pointer")
        );
        assert_eq!(pointer("a..b"), None);
        assert_eq!(pointer(""), None);
    }

    #[test]
    fn unreadable_values_follow_on_invalid() {
        let not_json = Record::new(None, Some(b"{oops"));
        match read(&not_json, OnInvalid::Fail) {
            Err(Outcome::Fail(reason)) => {
                assert!(reason.starts_with("value is not JSON"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(read(&not_json, OnInvalid::Drop), Err(Outcome::Drop));
        assert_eq!(
            read(&Record::new(None, None), OnInvalid::Fail),
            Err(Outcome::Fail("value is null".into()))
        );
        assert_eq!(
            read(&Record::new(None, Some(b"{\"a\":1}")), OnInvalid::Fail).unwrap()["a"],
            1
        );
    }

    #[test]
    fn on_invalid_is_checked() {
        let err =
            OnInvalid::from_config(&Config::from_pairs([("on_invalid", "ignore")])).unwrap_err();
        assert!(err.contains("`on_invalid`"), "{err}");
        assert_eq!(
            OnInvalid::from_config(&Config::default()),
            Ok(OnInvalid::Fail)
        );
    }
}
