//! Redacts or hashes named JSON fields of the value, to keep PII out of the sink.
//!
//! Configuration:
//! - `fields` (required): comma-separated fields, each a dotted path such as
//!   `user.email` or a JSON pointer such as `/user/email`.
//! - `mode` (default `redact`): `redact` replaces each field with the string
//!   `replacement` (default `***`); `hash` replaces it with the lowercase hex
//!   SHA-256 of `salt` (default empty) followed by the field's compact JSON
//!   text, so `"a@b.c"` hashes the seven bytes `"a@b.c"`, quotes included.
//!   `replacement` is refused in hash mode and `salt` in redact mode.
//! - `on_invalid` (default `fail`): `drop`, `keep` or `fail`, for records
//!   whose value is null, not UTF-8 or not JSON. `fail` sends them to the
//!   dead-letter topic with the reason.
//!
//! A record whose value has at least one of the fields (even as `null`) is
//! replaced by one record that differs only in its value, written compactly
//! with the other fields' order and number text untouched. A record with none
//! of the fields is kept as it is.

use fcsink_guest::{Config, Outcome, Record, Transform};
use json_value::OnInvalid;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Config keys this plugin accepts.
const KEYS: &[&str] = &["fields", "mode", "replacement", "salt", "on_invalid"];

/// The plugin: which fields to mask, how, and what to do with bad values.
pub struct JsonMask {
    /// The fields as JSON pointers, in configuration order.
    pointers: Vec<String>,
    mode: Mode,
    on_invalid: OnInvalid,
}

/// How a field is masked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Replace with this string.
    Redact(String),
    /// Replace with the hex SHA-256 of this salt and the field's JSON text.
    Hash(String),
}

impl Transform for JsonMask {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(KEYS)?;
        let pointers = config
            .require("fields")?
            .split(',')
            .map(|field| {
                json_value::pointer(field.trim()).ok_or_else(|| {
                    format!(
                        "config key `fields` must list dotted paths like `user.email` (or JSON pointers), \
                         comma-separated, with no empty entry or segment; got {field:?}"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (replacement, salt) = (config.get("replacement"), config.get("salt"));
        let mode = match config.get("mode").unwrap_or("redact") {
            "redact" if salt.is_some() => {
                return Err("config key `salt` is only used with `mode = hash`".to_string());
            }
            "redact" => Mode::Redact(replacement.unwrap_or("***").to_string()),
            "hash" if replacement.is_some() => {
                return Err("config key `replacement` is only used with `mode = redact`".into());
            }
            "hash" => Mode::Hash(salt.unwrap_or_default().to_string()),
            other => {
                return Err(format!(
                    "config key `mode` must be redact or hash, got {other:?}"
                ));
            }
        };
        let on_invalid = OnInvalid::from_config(&config)?;
        Ok(JsonMask {
            pointers,
            mode,
            on_invalid,
        })
    }

    fn transform(&mut self, record: &Record) -> Outcome {
        let mut document = match json_value::read(record, self.on_invalid) {
            Ok(document) => document,
            Err(outcome) => return outcome,
        };
        let mut masked = false;
        for pointer in &self.pointers {
            if let Some(field) = document.pointer_mut(pointer) {
                *field = Value::String(self.mode.mask(field));
                masked = true;
            }
        }
        if !masked {
            return Outcome::Keep;
        }
        match serde_json::to_vec(&document) {
            Ok(value) => Outcome::Replace(vec![Record {
                value: Some(value),
                ..record.clone()
            }]),
            Err(e) => Outcome::Fail(format!("cannot write masked value: {e}")),
        }
    }
}

fcsink_guest::export!(JsonMask);

impl Mode {
    /// The string that takes the field's place.
    fn mask(&self, field: &Value) -> String {
        match self {
            Mode::Redact(replacement) => replacement.clone(),
            Mode::Hash(salt) => {
                let mut hasher = Sha256::new();
                hasher.update(salt.as_bytes());
                hasher.update(field.to_string().as_bytes());
                hex::encode(hasher.finalize())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fcsink_guest::Header;

    fn mask(pairs: &[(&str, &str)]) -> JsonMask {
        JsonMask::new(Config::from_pairs(pairs.iter().copied())).unwrap()
    }

    /// The single replacement value's text; panics on any other outcome.
    fn replaced(outcome: Outcome) -> String {
        match outcome {
            Outcome::Replace(records) if records.len() == 1 => {
                String::from_utf8(records[0].value.clone().unwrap()).unwrap()
            }
            other => panic!("expected one replacement, got {other:?}"),
        }
    }

    fn run(plugin: &mut JsonMask, value: &str) -> Outcome {
        plugin.transform(&Record::new(None, Some(value.as_bytes())))
    }

    #[test]
    fn redacts_present_fields_and_keeps_order_and_numbers() {
        let mut plugin = mask(&[("fields", "user.email, card ,missing.path")]);
        let doc = r#"{"z": 1.50, "user": {"email": "a@b.c", "id": 12345678901234567890123}, "card": null}"#;
        assert_eq!(
            replaced(run(&mut plugin, doc)),
            r#"{"z":1.50,"user":{"email":"***","id":12345678901234567890123},"card":"***"}"#
        );
    }

    #[test]
    fn custom_replacement() {
        let mut plugin = mask(&[("fields", "/ssn"), ("replacement", "[gone]")]);
        assert_eq!(
            replaced(run(&mut plugin, r#"{"ssn":"123"}"#)),
            r#"{"ssn":"[gone]"}"#
        );
    }

    #[test]
    fn records_without_the_fields_are_kept() {
        let mut plugin = mask(&[("fields", "user.email")]);
        assert_eq!(run(&mut plugin, r#"{"user":{"id":1}}"#), Outcome::Keep);
        assert_eq!(run(&mut plugin, r#""just a string""#), Outcome::Keep);
    }

    #[test]
    fn hash_is_sha256_of_salt_then_json_text() {
        // Expected digests from `printf '…' | sha256sum`.
        let mut plain = mask(&[("fields", "name,n"), ("mode", "hash")]);
        assert_eq!(
            replaced(run(&mut plain, r#"{"name":"abc","n":1}"#)),
            concat!(
                r#"{"name":"6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25","#,
                r#""n":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"}"#
            )
        );
        let mut salted = mask(&[("fields", "name"), ("mode", "hash"), ("salt", "pepper")]);
        assert_eq!(
            replaced(run(&mut salted, r#"{"name":"abc"}"#)),
            r#"{"name":"5b62f6e1ab2f2cdd1345f2e5a9cf40a3a0d05a12c6a3da6d4a7d1b4c39c69a0e"}"#
        );
    }

    #[test]
    fn replacement_keeps_everything_but_the_value() {
        let mut plugin = mask(&[("fields", "pin")]);
        let mut record = Record::new(Some(b"key"), Some(br#"{"pin":1234}"#));
        record.topic = "orders".into();
        record.partition = 3;
        record.offset = 42;
        record.timestamp = 1_700_000_000_000;
        record.headers = vec![Header {
            key: "h".into(),
            value: None,
        }];
        let Outcome::Replace(out) = plugin.transform(&record) else {
            panic!("expected Replace");
        };
        let expected = Record {
            value: Some(br#"{"pin":"***"}"#.to_vec()),
            ..record
        };
        assert_eq!(out, vec![expected]);
    }

    #[test]
    fn invalid_values_follow_on_invalid() {
        let mut fail = mask(&[("fields", "a")]);
        match run(&mut fail, "{nope") {
            Outcome::Fail(reason) => assert!(reason.starts_with("value is not JSON: "), "{reason}"),
            other => panic!("expected Fail, got {other:?}"),
        }
        assert_eq!(
            fail.transform(&Record::new(None, None)),
            Outcome::Fail("value is null".into())
        );
        for (mode, want) in [("drop", Outcome::Drop), ("keep", Outcome::Keep)] {
            let mut plugin = mask(&[("fields", "a"), ("on_invalid", mode)]);
            let bad = Record::new(None, Some(&[0xc3, 0x28]));
            assert_eq!(plugin.transform(&bad), want, "{mode}");
        }
    }

    #[test]
    fn bad_config_is_refused_naming_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "`fields`"),
            (&[("fields", "a,,b")], "`fields`"),
            (&[("fields", "a.")], "`fields`"),
            (&[("fields", "a"), ("mode", "scramble")], "`mode`"),
            (
                &[("fields", "a"), ("mode", "hash"), ("replacement", "x")],
                "`replacement`",
            ),
            (&[("fields", "a"), ("salt", "x")], "`salt`"),
            (&[("fields", "a"), ("on_invalid", "ignore")], "`on_invalid`"),
            (&[("fields", "a"), ("field", "b")], "`field`"),
        ];
        for (pairs, needle) in cases {
            let err = JsonMask::new(Config::from_pairs(pairs.iter().copied()))
                .err()
                .expect("config should be refused");
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
