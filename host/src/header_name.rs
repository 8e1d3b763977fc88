//! Header names as Kafka carries them: bytes, which need not be UTF-8.
//!
//! Kafka does not validate header names, so any producer can write raw
//! bytes. The plugin contract (`wit/transform.wit`) has them as strings, so
//! fcsink carries a name as a string in a lossless, reversible form and
//! turns it back into the exact bytes whenever it writes the header to
//! Kafka (the dead-letter, success and error topics):
//!
//! - a name that is valid UTF-8 and has no character of the escape range is
//!   itself (every real name);
//! - otherwise every byte that is not part of valid UTF-8, and every byte of
//!   a character in the escape range, becomes the character `U+10FF00 + byte`
//!   (the last 256 code points of plane 16, private use).
//!
//! [`to_bytes`] inverts [`from_bytes`] for every input.

use std::borrow::Cow;

/// The first code point of the escape range; byte `b` is `ESCAPE + b`.
const ESCAPE: u32 = 0x10_FF00;

fn escaped(c: char) -> bool {
    c as u32 >= ESCAPE
}

fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        // ESCAPE + 0xFF is 0x10FFFF, the last valid code point.
        out.push(char::from_u32(ESCAPE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
}

/// The string fcsink carries for a header name of these bytes.
pub fn from_bytes(name: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(name)
        && !text.chars().any(escaped)
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if escaped(c) {
                push_escaped(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes());
            } else {
                out.push(c);
            }
        }
        push_escaped(&mut out, chunk.invalid());
    }
    out
}

/// The bytes of the header name that `name` stands for.
pub fn to_bytes(name: &str) -> Cow<'_, [u8]> {
    if !name.chars().any(escaped) {
        return Cow::Borrowed(name.as_bytes());
    }
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        if escaped(c) {
            // The escape range is 256 code points wide: this fits a byte.
            out.push((c as u32 - ESCAPE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// librdkafka headers carrying each name as the bytes it stands for
/// ([`to_bytes`]), so a record reaches Kafka exactly as it was consumed.
pub fn kafka_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> rdkafka::message::OwnedHeaders {
    let mut out = rdkafka::message::OwnedHeaders::new();
    for (name, value) in headers {
        let name = to_bytes(name);
        // SAFETY: rdkafka's `insert` only hands the name's pointer and length
        // to librdkafka's `rd_kafka_header_add`, which takes bytes; no Rust
        // code reads it as `str`. rdkafka offers no bytes-named insert.
        let key = unsafe { std::str::from_utf8_unchecked(&name) };
        out = out.insert(rdkafka::message::Header { key, value });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_names_are_themselves() {
        assert_eq!(from_bytes(b"traceparent"), "traceparent");
        assert_eq!(from_bytes("名前".as_bytes()), "名前");
        assert!(matches!(
            to_bytes("traceparent"),
            Cow::Borrowed(b"traceparent")
        ));
    }

    #[test]
    fn bytes_that_are_not_utf8_round_trip() {
        let raw = b"ab\xff\xfe\x00c";
        let name = from_bytes(raw);
        assert!(
            name.starts_with("ab") && name.ends_with("\u{0}c"),
            "{name:?}"
        );
        assert_eq!(to_bytes(&name).as_ref(), raw);
    }

    #[test]
    fn a_name_using_the_escape_range_itself_round_trips() {
        let raw = "x\u{10FF41}".as_bytes();
        let name = from_bytes(raw);
        assert_ne!(name.as_bytes(), raw);
        assert_eq!(to_bytes(&name).as_ref(), raw);
    }

    proptest! {
        #[test]
        fn every_name_round_trips(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let name = from_bytes(&raw);
            let back = to_bytes(&name).into_owned();
            prop_assert_eq!(back, raw);
        }
    }
}
