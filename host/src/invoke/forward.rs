//! `forward_headers`: chosen record headers sent as HTTP request headers.
//!
//! A request has one set of headers but carries many records, so the
//! records of one request always forward the same values: a batch is cut
//! into runs of consecutive records whose forwarded values are equal
//! ([`Forward::runs`]) and each run is encoded on its own. A change of
//! value starts a new request; record order is kept.
//!
//! A record's forwarded values are, for each configured name in order,
//! every header of exactly that name (Kafka names are case-sensitive), in
//! the record's order: a repeated name becomes a repeated HTTP header. A
//! null value is left out; so is a value that would not arrive as it is (a
//! control character such as a line break, a space at either end), logged
//! and counted (`fcsink_headers_not_forwarded_total`). The record is
//! delivered either way, the header in its payload.

use std::ops::Range;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::transform::Record;

/// The configured names, ready to pick headers out of records.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    names: Vec<(String, HeaderName)>,
}

/// The HTTP headers one request forwards, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded(Arc<Vec<(HeaderName, HeaderValue)>>);

impl Forward {
    /// Forwards `names` (validated: `forward_headers` in the config).
    pub fn new(names: &[String]) -> Forward {
        let names = names
            .iter()
            .filter_map(|name| Some((name.clone(), HeaderName::from_bytes(name.as_bytes()).ok()?)))
            .collect();
        Forward { names }
    }

    /// What `record` forwards.
    pub fn of(&self, record: &Record) -> Forwarded {
        let mut headers = Vec::new();
        for (name, http_name) in &self.names {
            let mut skipped = 0;
            for header in record.headers.iter().filter(|h| h.key == *name) {
                match header.value.as_deref().map(http_value) {
                    Some(Some(value)) => headers.push((http_name.clone(), value)),
                    Some(None) => skipped += 1,
                    None => {}
                }
            }
            if skipped > 0 {
                tracing::warn!(header = %name, topic = %record.topic, partition = record.partition, offset = record.offset, "A header value is not a valid HTTP header value; not forwarded");
                crate::metrics::headers_not_forwarded(name, skipped);
            }
        }
        Forwarded(Arc::new(headers))
    }

    /// `records` as runs of consecutive records forwarding the same
    /// headers, in order; one run of all of them when nothing is forwarded.
    pub fn runs(&self, records: &[Record]) -> Vec<(Range<usize>, Forwarded)> {
        if self.names.is_empty() {
            return vec![(0..records.len(), Forwarded::default())];
        }
        let mut runs: Vec<(Range<usize>, Forwarded)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let forwarded = self.of(record);
            match runs.last_mut() {
                Some((range, last)) if *last == forwarded => range.end = i + 1,
                _ => runs.push((i..i + 1, forwarded)),
            }
        }
        runs
    }
}

/// `bytes` as an HTTP header value that arrives as it is: no control
/// characters (which could end the header and start another), and no
/// space or tab at either end (which the receiver strips).
fn http_value(bytes: &[u8]) -> Option<HeaderValue> {
    let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    if padded(bytes.first()) || padded(bytes.last()) {
        return None;
    }
    HeaderValue::from_bytes(bytes).ok()
}

impl Forwarded {
    /// Adds the headers to a request's, after the target's own (which
    /// `forward_headers` can never name).
    pub fn add_to(&self, map: &mut HeaderMap) {
        for (name, value) in self.0.iter() {
            map.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::header;

    fn record(offset: i64, headers: &[(&[u8], Option<&[u8]>)]) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers: headers.iter().map(|(n, v)| header(n, *v)).collect(),
        }
    }

    fn sent(forwarded: &Forwarded) -> Vec<(String, Vec<u8>)> {
        let mut map = HeaderMap::new();
        forwarded.add_to(&mut map);
        map.iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn repeated_names_stay_repeated_in_order_and_case_matters() {
        let forward = Forward::new(&["traceparent".into(), "tag".into()]);
        let r = record(
            0,
            &[
                (b"tag", Some(b"a")),
                (b"Traceparent", Some(b"no")),
                (b"traceparent", Some(b"00-1")),
                (b"tag", Some(b"b\xff")),
                (b"other", Some(b"x")),
            ],
        );
        assert_eq!(
            sent(&forward.of(&r)),
            vec![
                ("traceparent".into(), b"00-1".to_vec()),
                ("tag".into(), b"a".to_vec()),
                ("tag".into(), b"b\xff".to_vec()),
            ]
        );
    }

    #[test]
    fn null_and_invalid_values_are_left_out_without_a_panic() {
        let forward = Forward::new(&["h".into()]);
        let r = record(
            0,
            &[
                (b"h", None),
                (b"h", Some(b"a\r\nx-evil: 1")),
                (b"h", Some(b" padded")),
                (b"h", Some(b"padded\t")),
                (b"h", Some(b"o k")),
                (b"h", Some(b"")),
            ],
        );
        assert_eq!(
            sent(&forward.of(&r)),
            vec![("h".into(), b"o k".to_vec()), ("h".into(), Vec::new())]
        );
    }

    #[test]
    fn records_forwarding_different_values_are_in_different_runs() {
        let forward = Forward::new(&["tenant".into()]);
        let records = [
            record(0, &[(b"tenant", Some(b"a"))]),
            record(1, &[(b"tenant", Some(b"a")), (b"x", Some(b"1"))]),
            record(2, &[(b"tenant", Some(b"b"))]),
            record(3, &[]),
            record(4, &[]),
            record(5, &[(b"tenant", Some(b"a"))]),
        ];
        let ranges: Vec<_> = forward.runs(&records).into_iter().map(|(r, _)| r).collect();
        assert_eq!(ranges, vec![0..2, 2..3, 3..5, 5..6]);
    }

    #[test]
    fn nothing_forwarded_is_one_run() {
        let records = [record(0, &[(b"tenant", Some(b"a"))]), record(1, &[])];
        let runs = Forward::default().runs(&records);
        assert_eq!(runs, vec![(0..2, Forwarded::default())]);
        assert!(
            Forward::default()
                .runs(&[])
                .iter()
                .all(|(r, _)| r.is_empty())
        );
    }
}
