//! Deterministic request IDs: the same records, sent again in the same
//! request, carry the same ID, so the function (or FC's task
//! deduplication) can refuse the second copy.
//!
//! A batch's `i`-th request is named after the connector, the topic, the
//! partition, the first and last source offset behind the batch's outputs
//! and `i`:
//!
//! ```text
//! fcsink_<connector>_t<topic>_p<partition>_<first>_<last>_<i>
//! ```
//!
//! Names are escaped into FC's alphabet (`[A-Za-z0-9_-]`): `_` becomes
//! `__`, `.` becomes `_o` and any other byte `_x` and two hex digits, so a
//! field's end (`_t`, `_p`, `_h`, `_s`) can never be mistaken for part of
//! it and distinct inputs give distinct IDs. When that would be too long
//! for FC's 128 characters, the topic and the numbers are replaced by a
//! hash of all the inputs: `fcsink_<connector>_h<32 hex>`.
//!
//! A request made of some of a request's records (those a synchronous
//! function reported failed, or a half of a failing request) is a new
//! request, not a retry: reusing the ID would have a deduplicating function
//! drop it. It gets `<root>_s<n>_<hash of its outputs>`, `n` counting the
//! re-encoded bodies of the root request, so that resending the same records
//! twice is two requests.

use sha2::{Digest, Sha256};

/// FC's limit on a task ID's length.
pub const MAX_LEN: usize = 128;

/// The longest suffix a subset adds: `_s`, a `u32`, `_`, 12 hex digits.
const SUBSET_SUFFIX_MAX: usize = 2 + 10 + 1 + SUBSET_HASH_HEX;

/// Hex digits of a subset's hash (48 bits: the subsets of one request are few).
const SUBSET_HASH_HEX: usize = 12;

/// Hex digits of the hash that replaces a name too long to keep (128 bits).
const ROOT_HASH_HEX: usize = 32;

/// Where a batch came from: what names its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOrigin<'a> {
    /// The connector's name.
    pub connector: &'a str,
    /// The source topic.
    pub topic: &'a str,
    /// The source partition.
    pub partition: i32,
    /// The first source offset behind the batch's outputs.
    pub first_offset: i64,
    /// The last source offset behind the batch's outputs.
    pub last_offset: i64,
}

/// A request's ID, valid as an FC task ID ([`is_valid`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The ID of the batch's `index`-th request (counted from 0).
    pub fn new(origin: &BatchOrigin<'_>, index: usize) -> RequestId {
        let readable = format!(
            "fcsink_{}_t{}_p{}_{}_{}_{index}",
            escape(origin.connector),
            escape(origin.topic),
            origin.partition,
            origin.first_offset,
            origin.last_offset,
        );
        if readable.len() + SUBSET_SUFFIX_MAX <= MAX_LEN {
            return RequestId(readable);
        }
        // The topic (up to 249 characters, twice that escaped) does not fit:
        // hash every input, keeping the connector when it fits.
        let mut hash = Sha256::new();
        for field in [
            origin.connector.as_bytes(),
            origin.topic.as_bytes(),
            &origin.partition.to_be_bytes(),
            &origin.first_offset.to_be_bytes(),
            &origin.last_offset.to_be_bytes(),
            &(index as u64).to_be_bytes(),
        ] {
            // Length-prefixed, so that field boundaries are part of the hash.
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field);
        }
        let digest = hex::encode(hash.finalize());
        let connector = escape(origin.connector);
        let fixed = "fcsink_".len() + "_h".len() + ROOT_HASH_HEX + SUBSET_SUFFIX_MAX;
        let connector = if connector.len() + fixed <= MAX_LEN {
            connector
        } else {
            // Only a name no config would accept: hashed in already.
            "x".into()
        };
        RequestId(format!("fcsink_{connector}_h{}", &digest[..ROOT_HASH_HEX]))
    }

    /// The ID of the `body`-th request (counted from 1) re-encoded from this
    /// request's records, carrying batch outputs `outputs`.
    #[must_use]
    pub fn subset(&self, body: u32, outputs: &[usize]) -> RequestId {
        let mut hash = Sha256::new();
        for output in outputs {
            hash.update((*output as u64).to_be_bytes());
        }
        let digest = hex::encode(hash.finalize());
        RequestId(format!("{}_s{body}_{}", self.0, &digest[..SUBSET_HASH_HEX]))
    }

    /// The ID as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// FC's rule for a task ID: a letter or `_`, then letters, digits, `_` and
/// `-`, at most 128 characters.
pub fn is_valid(id: &str) -> bool {
    let mut bytes = id.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok
        && id.len() <= MAX_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `name` in FC's alphabet, injectively: `_` → `__`, `.` → `_o`, any other
/// byte outside `[A-Za-z0-9-]` → `_x` and two hex digits.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => out.push(char::from(byte)),
            b'_' => out.push_str("__"),
            b'.' => out.push_str("_o"),
            other => {
                out.push_str("_x");
                out.push_str(&format!("{other:02x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn origin<'a>(connector: &'a str, topic: &'a str) -> BatchOrigin<'a> {
        BatchOrigin {
            connector,
            topic,
            partition: 3,
            first_offset: 100,
            last_offset: 119,
        }
    }

    #[test]
    fn a_short_name_stays_readable() {
        let id = RequestId::new(&origin("orders-sink", "orders.v1"), 2);
        assert_eq!(id.as_str(), "fcsink_orders-sink_torders_ov1_p3_100_119_2");
        assert!(is_valid(id.as_str()));
    }

    #[test]
    fn the_same_request_gets_the_same_id() {
        let a = RequestId::new(&origin("c", "t"), 0);
        assert_eq!(a, RequestId::new(&origin("c", "t"), 0));
        assert_eq!(
            a.subset(1, &[2, 5]),
            RequestId::new(&origin("c", "t"), 0).subset(1, &[2, 5])
        );
    }

    #[test]
    fn escapes_do_not_collide() {
        // `a_b` and `a.b` and `a_ob` differ once escaped.
        let ids: HashSet<_> = ["a_b", "a.b", "a_ob", "a__b", "a_x2eb"]
            .iter()
            .map(|t| RequestId::new(&origin("c", t), 0))
            .collect();
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn a_long_topic_is_hashed_and_fits() {
        let topic = "t".repeat(249);
        let id = RequestId::new(&origin("orders-sink", &topic), 0);
        assert!(id.as_str().starts_with("fcsink_orders-sink_h"), "{id}");
        assert!(is_valid(id.as_str()));
        let other = "t".repeat(248) + "u";
        assert_ne!(id, RequestId::new(&origin("orders-sink", &other), 0));
        assert!(is_valid(id.subset(u32::MAX, &[1, 2, 3]).as_str()));
    }

    #[test]
    fn a_subset_never_reuses_its_parents_id() {
        let root = RequestId::new(&origin("c", "t"), 0);
        let all = root.subset(1, &[0, 1, 2, 3]);
        let half = root.subset(1, &[0, 1]);
        let again = root.subset(2, &[0, 1, 2, 3]);
        assert_ne!(root, all);
        assert_ne!(all, half);
        assert_ne!(
            all, again,
            "a second resend of the same records is a new request"
        );
    }

    #[test]
    fn the_rule_is_fcs() {
        assert!(is_valid("_a"));
        assert!(is_valid("a-b_C9"));
        assert!(!is_valid(""));
        assert!(!is_valid("9a"));
        assert!(!is_valid("-a"));
        assert!(!is_valid("a.b"));
        assert!(!is_valid(&"a".repeat(129)));
        assert!(is_valid(&"a".repeat(128)));
    }

    /// Kafka topics: `[A-Za-z0-9._-]`, 1 to 249 characters; anything else
    /// too, since a regex subscription takes what the broker has.
    fn topic() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._-]{1,249}",
            any::<String>().prop_filter("not empty", |s| !s.is_empty()),
        ]
    }

    proptest! {
        #[test]
        fn any_topic_gives_a_valid_id(
            connector in "[0-9a-z][0-9a-z-]{0,47}",
            topic in topic(),
            partition in 0..i32::MAX,
            first in 0..i64::MAX,
            len in 0..i64::MAX,
            index in 0..usize::MAX,
            body in any::<u32>(),
        ) {
            let origin = BatchOrigin {
                connector: &connector,
                topic: &topic,
                partition,
                first_offset: first,
                last_offset: first.saturating_add(len),
            };
            let id = RequestId::new(&origin, index);
            prop_assert!(is_valid(id.as_str()), "{}", id);
            let subset = id.subset(body, &[index, 1, 2]);
            prop_assert!(is_valid(subset.as_str()), "{}", subset);
        }

        #[test]
        fn distinct_inputs_give_distinct_ids(
            topics in proptest::collection::vec(topic(), 2),
            partitions in proptest::collection::vec(0..4i32, 2),
            offsets in proptest::collection::vec((0..3i64, 0..3i64), 2),
            indices in proptest::collection::vec(0..3usize, 2),
        ) {
            let make = |i: usize| {
                let origin = BatchOrigin {
                    connector: "c",
                    topic: &topics[i],
                    partition: partitions[i],
                    first_offset: offsets[i].0,
                    last_offset: offsets[i].1,
                };
                RequestId::new(&origin, indices[i])
            };
            let same = topics[0] == topics[1]
                && partitions[0] == partitions[1]
                && offsets[0] == offsets[1]
                && indices[0] == indices[1];
            prop_assert_eq!(make(0) == make(1), same);
        }
    }
}
