//! What a ledger run produces, and what each record should become.
//!
//! Numbered records carry `{"n":…,"keep":…}` JSON values. With plugins on,
//! every tenth has `"keep":false` and the filter plugin drops it, and three
//! trigger values make the misbehaving plugins trap, loop and run out of
//! memory. With edge records on, partition 0 starts with records that test
//! the payload's corners: empty and null values, bytes that are not UTF-8,
//! values whose request is one byte under, at and over the request limit,
//! and big values (see [`BIG`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fcsink::format::Format;
use fcsink::transform::Record;
use serde_json::Value;

use super::Position;
use crate::broker::ConsumedRecord;

/// The value that makes the `trap` plugin panic.
pub const TRAP: &str = "TRAP";
/// The value that makes the `loop` plugin spin until its time limit.
pub const LOOP: &str = "LOOP";
/// The value that makes the `alloc` plugin allocate until its memory cap.
pub const OOM: &str = "OOM";
/// The key of the big record whose request the function refuses (400),
/// so that it is dead-lettered whole.
pub const REFUSED_KEY: &str = "edge-big-refused";
/// Size of the big edge values: 4 MiB. Tansu 0.6 never serves a fetch of
/// more than 5 MiB, nor a record larger than the fetch's size (no KIP-74),
/// so 10 MB records cannot be read back from it at all (`scripts/TANSU.md`);
/// the worker's handling of 10 MB records is tested without a broker.
pub const BIG: usize = 4 * 1024 * 1024;

/// What a record should become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Reach the function (or the dead-letter topic, when its batch fails).
    Deliver,
    /// Be dropped by the filter plugin.
    Filtered,
    /// Be dead-lettered: it makes a plugin fail, or the function refuses it.
    DeadLetter,
}

/// The edge cases, in the order they are produced to partition 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// A 0-byte value.
    Empty,
    /// Null key and null value.
    Null,
    /// Key and value that are not UTF-8.
    NotUtf8,
    /// A value whose one-record request is one byte under the limit.
    UnderLimit,
    /// A value whose one-record request is exactly the limit.
    AtLimit,
    /// A value whose one-record request would be one byte over the limit.
    OverLimit,
    /// A [`BIG`] value.
    Big,
    /// A [`BIG`] value whose request the function refuses.
    BigRefused,
}

const EDGES: [Edge; 8] = [
    Edge::Empty,
    Edge::Null,
    Edge::NotUtf8,
    Edge::UnderLimit,
    Edge::AtLimit,
    Edge::OverLimit,
    Edge::Big,
    Edge::BigRefused,
];

/// A record about to be produced.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its partition.
    pub partition: i32,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// What it should become.
    pub expect: Expect,
    /// Which edge case it is, if any.
    pub edge: Option<Edge>,
}

/// A record the broker acknowledged.
#[derive(Debug, Clone)]
pub struct Produced {
    /// Where it is.
    pub position: Position,
    /// What it should become.
    pub expect: Expect,
    /// Which edge case it is, if any.
    pub edge: Option<Edge>,
    /// Its value's length (0 for null).
    pub value_len: usize,
    /// Its value, for the small edge cases whose content is checked.
    pub value: Option<Vec<u8>>,
    /// Its key, for the same.
    pub key: Option<Vec<u8>>,
}

impl Produced {
    /// `planned`, acknowledged at `position`.
    pub fn new(planned: &Planned, position: Position) -> Produced {
        let small = |bytes: &Option<Vec<u8>>| bytes.clone().filter(|b| b.len() <= 64);
        Produced {
            position,
            expect: planned.expect,
            edge: planned.edge,
            value_len: planned.value.as_ref().map_or(0, Vec::len),
            value: small(&planned.value),
            key: small(&planned.key),
        }
    }
}

/// What to produce.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Numbered records.
    pub numbered: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Filter and misbehaving-plugin records.
    pub plugins: bool,
    /// Edge records first on partition 0, sized against this request limit.
    pub edge_limit: Option<usize>,
    /// Numbered records share this many keys (`k-{n % keys}`), so that each
    /// key has many records to keep in order; `None`: one key per record.
    pub keys: Option<usize>,
}

/// The records of `mix`, in production order, for topic `topic`.
pub fn plan(mix: Mix, topic: &str) -> Vec<Planned> {
    let mut records = Vec::new();
    if let Some(limit) = mix.edge_limit {
        for (offset, edge) in EDGES.into_iter().enumerate() {
            records.push(edge_record(edge, topic, offset as i64, limit));
        }
    }
    let triggers: BTreeMap<usize, &str> = if mix.plugins {
        // Spread over the run: a third, half and two thirds of the way.
        BTreeMap::from([
            (mix.numbered / 3, TRAP),
            (mix.numbered / 3 + 1, TRAP),
            (mix.numbered / 2, LOOP),
            (mix.numbered * 2 / 3, OOM),
        ])
    } else {
        BTreeMap::new()
    };
    for n in 0..mix.numbered {
        let partition = (n % mix.partitions as usize) as i32;
        if let Some(trigger) = triggers.get(&n) {
            records.push(Planned {
                partition,
                key: Some(format!("trigger-{n}").into_bytes()),
                value: Some(trigger.as_bytes().to_vec()),
                expect: Expect::DeadLetter,
                edge: None,
            });
            continue;
        }
        let keep = !(mix.plugins && n % 10 == 9);
        let value = format!(r#"{{"n":{n},"keep":{keep},"pad":"{:0>40}"}}"#, n);
        records.push(Planned {
            partition,
            key: Some(match mix.keys {
                Some(keys) => format!("k-{}", n % keys.max(1)).into_bytes(),
                None => format!("n-{n}").into_bytes(),
            }),
            value: Some(value.into_bytes()),
            expect: if keep {
                Expect::Deliver
            } else {
                Expect::Filtered
            },
            edge: None,
        });
    }
    records
}

fn edge_record(edge: Edge, topic: &str, offset: i64, limit: usize) -> Planned {
    let key = |text: &str| Some(text.as_bytes().to_vec());
    let (key, value) = match edge {
        Edge::Empty => (key("edge-empty"), Some(Vec::new())),
        Edge::Null => (None, None),
        Edge::NotUtf8 => (
            Some(vec![0xff, 0x00, b'k']),
            Some(vec![0xff, 0xfe, 0x00, 0x80, b'v']),
        ),
        Edge::UnderLimit => sized("edge-under", topic, offset, limit - 1),
        Edge::AtLimit => sized("edge-at", topic, offset, limit),
        Edge::OverLimit => sized("edge-over", topic, offset, limit + 1),
        Edge::Big => (key("edge-big"), Some(vec![b'x'; BIG])),
        Edge::BigRefused => (key(REFUSED_KEY), Some(vec![b'y'; BIG])),
    };
    Planned {
        partition: 0,
        key,
        value,
        expect: if edge == Edge::BigRefused {
            Expect::DeadLetter
        } else {
            Expect::Deliver
        },
        edge: Some(edge),
    }
}

/// A key and an ASCII value such that the one-record `fc` request for the
/// record at `topic`/0/`offset` is exactly `body_len` bytes long, as
/// fcsink's own encoder lays it out when nothing limits it.
fn sized(
    key: &str,
    topic: &str,
    offset: i64,
    body_len: usize,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let body = |value_len: usize| {
        let record = Record {
            topic: topic.to_owned(),
            partition: 0,
            offset,
            // Any millisecond timestamp of this century has 13 digits.
            timestamp: 1_700_000_000_000,
            key: Some(key.as_bytes().to_vec()),
            value: Some(vec![b'x'; value_len]),
            headers: Vec::new(),
        };
        let encoded = Format::Fc.encode(&[record], 1, usize::MAX);
        encoded.requests[0].body.len()
    };
    let mut value_len = body_len.saturating_sub(body(0));
    while value_len > 0 && body(value_len) > body_len {
        value_len -= 1;
    }
    assert_eq!(
        body(value_len),
        body_len,
        "no value makes a {body_len}-byte request"
    );
    (Some(key.as_bytes().to_vec()), Some(vec![b'x'; value_len]))
}

/// Checks what the function received for each edge record (`arrived`: the
/// record objects of successful requests) and what the dead-letter topic
/// holds for the refused one (dead letters from `topic`); returns what is wrong.
pub fn check_edges(
    topic: &str,
    produced: &[Produced],
    arrived: &[Value],
    dead_letters: &[ConsumedRecord],
) -> Vec<String> {
    let mut problems = Vec::new();
    for record in produced {
        let Some(edge) = record.edge else { continue };
        let (partition, offset) = record.position;
        let at_function = arrived
            .iter()
            .find(|r| r["partition"] == partition && r["offset"] == offset);
        if edge == Edge::BigRefused {
            let letter = dead_letters
                .iter()
                .find(|l| super::dead_letter_origin(l, topic) == Ok(record.position));
            match letter {
                Some(l) if l.value.as_ref().map(Vec::len) == Some(BIG) => {}
                Some(l) => problems.push(format!(
                    "{edge:?}: dead letter holds {:?} bytes, not {BIG}",
                    l.value.as_ref().map(Vec::len)
                )),
                None => problems.push(format!("{edge:?}: not in the dead-letter topic")),
            }
            continue;
        }
        let Some(object) = at_function else {
            problems.push(format!("{edge:?}: never reached the function"));
            continue;
        };
        if let Err(problem) = check_edge(edge, record, object) {
            problems.push(format!("{edge:?}: {problem}; got {}", abbreviated(object)));
        }
    }
    problems
}

fn check_edge(edge: Edge, record: &Produced, object: &Value) -> Result<(), String> {
    let overflow = object["overflowFlag"].as_bool() == Some(true);
    let value_size = object["valueSize"].as_u64();
    let expect = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    match edge {
        Edge::Empty => expect(
            object["value"] == "" && value_size == Some(0),
            "an empty value with valueSize 0",
        ),
        Edge::Null => expect(
            object.get("key").is_none() && object.get("value").is_none() && value_size == Some(0),
            "no key, no value, valueSize 0",
        ),
        Edge::NotUtf8 => {
            let decoded = |field: &str| {
                object[field]
                    .as_str()
                    .and_then(|text| STANDARD.decode(text).ok())
            };
            expect(
                object["keyEncoding"] == "base64"
                    && object["valueEncoding"] == "base64"
                    && decoded("key") == record.key
                    && decoded("value") == record.value,
                "key and value as base64 that decodes to the bytes produced",
            )
        }
        Edge::UnderLimit | Edge::AtLimit => expect(
            !overflow && object["value"].as_str().map(str::len) == Some(record.value_len),
            "the whole value, no overflow",
        ),
        Edge::OverLimit | Edge::Big => expect(
            overflow
                && object.get("value").is_none()
                && value_size == Some(record.value_len as u64),
            "overflowFlag, no value, the value's size",
        ),
        Edge::BigRefused => Ok(()),
    }
}

/// `object` as JSON, cut short.
fn abbreviated(object: &Value) -> String {
    let text = object.to_string();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}
