//! A worked port of the Alibaba Cloud managed ETL task's "add suffix" template:
//! appends `KeySurfix` to the key and `ValueSurfix` to the value (the spelling
//! is the template's own) and leaves topic, partition, offset, timestamp and
//! headers alone.
//!
//! The template is Python; for each key of the message dict it does
//! `message['key'] + "KeySurfix"` and `message['value'] + "ValueSurfix"`.
//! Differences a user may notice:
//! - Kafka keys and values are bytes, not strings. The suffix bytes are
//!   appended to the raw bytes, so a value that is not UTF-8 stays exactly as
//!   it was, followed by the suffix.
//! - A null key or value stays null. The ETL task hands the template strings,
//!   but Kafka allows a record without a key and a tombstone without a value;
//!   appending a suffix would invent a key the producer never set, or turn a
//!   delete marker into data. (In Python, `None + "KeySurfix"` would raise.)
//!   An empty key or value, by contrast, is present and gets the suffix.
//! - A record with neither key nor value has nothing to change and is kept;
//!   every other record is replaced by its one changed copy.
//!
//! The plugin takes no configuration.

use fcsink_guest::{Config, Outcome, Record, Transform};

/// Appended to a present key.
pub const KEY_SUFFIX: &[u8] = b"KeySurfix";
/// Appended to a present value.
pub const VALUE_SUFFIX: &[u8] = b"ValueSurfix";

/// The plugin; it has no state and accepts no configuration.
pub struct EtlCompat;

impl Transform for EtlCompat {
    fn new(config: Config) -> Result<Self, String> {
        config.deny_unknown(&[])?;
        Ok(EtlCompat)
    }

    fn transform(&mut self, record: &Record) -> Outcome {
        if record.key.is_none() && record.value.is_none() {
            return Outcome::Keep;
        }
        let mut changed = record.clone();
        if let Some(key) = &mut changed.key {
            key.extend_from_slice(KEY_SUFFIX);
        }
        if let Some(value) = &mut changed.value {
            value.extend_from_slice(VALUE_SUFFIX);
        }
        Outcome::Replace(vec![changed])
    }
}

fcsink_guest::export!(EtlCompat);

#[cfg(test)]
mod tests {
    use super::*;
    use fcsink_guest::Header;

    fn run(key: Option<&[u8]>, value: Option<&[u8]>) -> Outcome {
        EtlCompat::new(Config::default())
            .unwrap()
            .transform(&Record::new(key, value))
    }

    fn replaced(key: Option<&[u8]>, value: Option<&[u8]>) -> Outcome {
        Outcome::Replace(vec![Record::new(key, value)])
    }

    #[test]
    fn appends_both_suffixes() {
        assert_eq!(
            run(Some(b"k"), Some(b"{\"a\":1}")),
            replaced(Some(b"kKeySurfix"), Some(b"{\"a\":1}ValueSurfix"))
        );
    }

    #[test]
    fn null_stays_null_and_empty_gets_the_suffix() {
        assert_eq!(run(None, Some(b"v")), replaced(None, Some(b"vValueSurfix")));
        assert_eq!(run(Some(b"k"), None), replaced(Some(b"kKeySurfix"), None));
        assert_eq!(
            run(Some(b""), Some(b"")),
            replaced(Some(b"KeySurfix"), Some(b"ValueSurfix"))
        );
        assert_eq!(run(None, None), Outcome::Keep);
    }

    #[test]
    fn binary_bytes_get_the_suffix_bytes() {
        let expected = [&[0xff, 0x00][..], VALUE_SUFFIX].concat();
        assert_eq!(
            run(None, Some(&[0xff, 0x00])),
            replaced(None, Some(&expected))
        );
    }

    #[test]
    fn other_fields_are_left_alone() {
        let mut record = Record::new(Some(b"k"), Some(b"v"));
        record.topic = "orders".into();
        record.partition = 7;
        record.offset = 99;
        record.timestamp = 1_700_000_000_000;
        record.headers = vec![Header {
            key: "trace".into(),
            value: Some(b"x".to_vec()),
        }];
        let expected = Record {
            key: Some(b"kKeySurfix".to_vec()),
            value: Some(b"vValueSurfix".to_vec()),
            ..record.clone()
        };
        let mut plugin = EtlCompat::new(Config::default()).unwrap();
        assert_eq!(plugin.transform(&record), Outcome::Replace(vec![expected]));
    }

    #[test]
    fn refuses_configuration() {
        let err = EtlCompat::new(Config::from_pairs([("suffix", "x")]))
            .err()
            .unwrap();
        assert!(err.contains("`suffix`"), "{err}");
    }
}
