//! Entry points of the fuzz targets in `fuzz/` (cargo fuzz, libFuzzer).
//!
//! Each target is one call to a function here, which reads untrusted bytes
//! the way fcsink meets them (a config file, records and their headers, a
//! function's answer, STS, the control topics, a Confluent config), calls
//! the real code and asserts what it promises. A panic is a bug. The tests
//! below replay the committed corpora (`fuzz/corpus/<target>/`), so `make
//! test` keeps every input the fuzzers found interesting, crashes included.

// A failed check is a panic: that is how libFuzzer learns of it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a fuzz check fails by panicking"
)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::config::Settings;
use crate::fleet::config_topic::Entry;
use crate::fleet::live::Live;
use crate::fleet::status_topic::InstanceStatus;
use crate::format::{CloudEvents, Converter, Encoded, Format};
use crate::invoke::{Dialect, Verdict};
use crate::transform::Record;

/// A fuzz target: it panics when a check fails.
pub type Target = fn(&[u8]);

/// The targets, as named in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("encode", encode),
    ("record", record),
    ("answer", answer),
    ("partial", partial),
    ("sts", sts),
    ("config_topic", config_topic),
    ("status_topic", status_topic),
    ("import_confluent", import_confluent),
    ("scrub", scrub),
];

/// Fuzz input read as a sequence of fields; past its end every field is empty.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// Up to 254 bytes, or `None` (length 255).
    fn short(&mut self) -> Option<&'a [u8]> {
        match self.byte() {
            255 => None,
            n => Some(self.take(usize::from(n))),
        }
    }

    /// Up to 65 534 bytes, or `None` (length 65 535).
    fn long(&mut self) -> Option<&'a [u8]> {
        match self.u16() {
            u16::MAX => None,
            n => Some(self.take(usize::from(n))),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A topic name Kafka accepts (1-249 of `[a-zA-Z0-9._-]`).
fn topic_name(bytes: &[u8]) -> String {
    const LEGAL: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    let name: String = bytes
        .iter()
        .take(249)
        .map(|b| char::from(LEGAL[usize::from(*b) % LEGAL.len()]))
        .collect();
    if name.is_empty() { "t".into() } else { name }
}

/// Headers as consumed: name and value bytes.
type RawHeaders = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One consumed record, headers as `source::to_record` reads them.
fn read_record(input: &mut Input<'_>) -> (Record, RawHeaders) {
    let topic = topic_name(input.short().unwrap_or_default());
    let partition = input.u16() as i16 as i32;
    let offset = input.u64() as i64;
    let timestamp = input.u64() as i64;
    let key = input.long().map(<[u8]>::to_vec);
    let value = input.long().map(<[u8]>::to_vec);
    let count = input.byte() % 8;
    let raw: RawHeaders = (0..count)
        .map(|_| {
            let name = input.short().unwrap_or_default().to_vec();
            (name, input.short().map(<[u8]>::to_vec))
        })
        .collect();
    let headers = raw
        .iter()
        .map(|(name, value)| crate::source::header(name, value.as_deref()))
        .collect();
    let record = Record {
        topic,
        partition,
        offset,
        timestamp,
        key,
        value,
        headers,
    };
    (record, raw)
}

fn format_of(input: &mut Input<'_>) -> Format {
    let text = |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into();
    match input.byte() % 5 {
        0 => Format::Fc,
        1 => Format::Confluent {
            converter: Converter::Json,
        },
        2 => Format::Confluent {
            converter: Converter::EscapedJson,
        },
        3 => Format::AwsKafkaEvent {
            bootstrap_servers: text(input.short()),
        },
        _ => Format::CloudEvents(CloudEvents {
            instance_id: text(input.short()),
            account_id: input.short().map(|b| text(Some(b))),
        }),
    }
}

/// A config file: validated, or refused with a reason, never a panic; a
/// valid one yields a consumer config and runtime settings.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(settings) = Settings::from_toml(text) else {
        return;
    };
    let _ = crate::source::client_config(&settings);
    let _ = (
        settings.group_id(),
        settings.config_topic(),
        settings.status_topic(),
    );
    let _ = settings.delivery.output_topics();
    assert!((1..=crate::config::MAX_BATCH_SIZE).contains(&settings.batch.max_records));
    assert!(settings.batch.max_bytes >= 1024);
    let live = Live::from_settings(&settings);
    for (key, value) in live.describe() {
        let mut again = live;
        again
            .apply(&settings, &key, &value)
            .unwrap_or_else(|e| panic!("{key} = {value:?} as described is refused: {e}"));
        assert_eq!(again, live, "{key} = {value:?} changes the settings");
    }
}

/// Every format, any records (headers included) and limits of a valid
/// config: each record is in exactly one request, in order, or reported too
/// large (only when it does not fit alone); requests keep both limits and
/// are JSON carrying exactly their records, keys and values intact.
pub fn encode(data: &[u8]) {
    let mut input = Input(data);
    let format = format_of(&mut input);
    let max_records = usize::from(input.byte() % 32) + 1;
    let max_bytes = 1024 + usize::from(input.u16());
    let mut records = Vec::new();
    while !input.is_empty() && records.len() < 64 {
        records.push(read_record(&mut input).0);
    }
    check_encoded(&format, &records, max_records, max_bytes);
}

fn check_encoded(format: &Format, records: &[Record], max_records: usize, max_bytes: usize) {
    let encoded: Encoded = format.encode(records, max_records, max_bytes);
    let mut placed = vec![0; records.len()];
    let mut next = 0;
    for request in &encoded.requests {
        let range = request.records.clone();
        assert!(range.start >= next, "requests out of order");
        assert!(!range.is_empty() && range.end <= records.len(), "{range:?}");
        assert!(range.len() <= max_records);
        assert!(
            request.body.len() <= max_bytes,
            "{} > {max_bytes}",
            request.body.len()
        );
        next = range.end;
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            // A record's JSON may hold a number no f64 holds (`1e999`): still
            // JSON, embedded as written, but serde_json cannot make a Value of it.
            Err(e) if e.to_string().starts_with("number out of range") => {
                serde_json::from_slice::<serde::de::IgnoredAny>(&request.body)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&request.body)));
                for i in range {
                    placed[i] += 1;
                }
                continue;
            }
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(&request.body)),
        };
        let elements = carried(format, &body);
        assert_eq!(elements.len(), range.len());
        if !matches!(format, Format::AwsKafkaEvent { .. }) {
            for (element, record) in elements.iter().zip(&records[range.clone()]) {
                check_element(format, element, record);
            }
        }
        for i in range {
            placed[i] += 1;
        }
    }
    for &i in &encoded.too_large {
        placed[i] += 1;
        let alone = format.encode(&records[i..=i], 1, usize::MAX);
        assert!(
            alone.requests[0].body.len() > max_bytes,
            "record {i} fits alone"
        );
    }
    assert!(placed.iter().all(|&n| n == 1), "placements {placed:?}");
}

/// A body's record elements: array elements, or for AWS's event the
/// elements of every `records` group.
fn carried<'a>(format: &Format, body: &'a Value) -> Vec<&'a Value> {
    match (format, body) {
        (Format::AwsKafkaEvent { .. }, Value::Object(event)) => event["records"]
            .as_object()
            .into_iter()
            .flat_map(|groups| groups.values())
            .filter_map(Value::as_array)
            .flatten()
            .collect(),
        (_, Value::Array(elements)) => elements.iter().collect(),
        _ => panic!("not a {} body: {body}", format.name()),
    }
}

/// The bytes a field of `object` carries (text, or base64 per `<field>Encoding`).
fn field_bytes(object: &Value, field: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = object.get(field)?.as_str()?;
    match object
        .get(format!("{field}Encoding"))
        .and_then(Value::as_str)
    {
        Some("base64") => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64"),
        ),
        Some(other) => panic!("unknown encoding {other}"),
        None => Some(text.as_bytes().to_vec()),
    }
}

fn check_element(format: &Format, element: &Value, record: &Record) {
    let object = match format {
        Format::Fc => element,
        Format::Confluent { .. } => &element["payload"],
        Format::CloudEvents(_) => &element["data"],
        Format::AwsKafkaEvent { .. } => return,
    };
    assert_eq!(object["topic"], record.topic.as_str());
    assert_eq!(object["partition"], record.partition);
    assert_eq!(object["offset"], record.offset);
    if *format == Format::Fc && object["overflowFlag"] == true {
        return;
    }
    for (field, bytes) in [("key", &record.key), ("value", &record.value)] {
        let json = matches!(
            format,
            Format::Confluent {
                converter: Converter::Json
            }
        );
        match bytes.as_deref().map(serde_json::from_slice::<Value>) {
            // The JSON converter embeds JSON as it was.
            Some(Ok(given)) if json => assert_eq!(object[field], given, "{field}"),
            _ => assert_eq!(
                field_bytes(object, field).as_ref(),
                bytes.as_ref(),
                "{field}"
            ),
        }
    }
    // `fc` and `confluent` omit an empty list; CloudEvents always has one.
    let headers = match format {
        Format::CloudEvents(_) => object["headers"]["headers"].as_array(),
        _ => object.get("headers").and_then(Value::as_array),
    };
    let headers = headers.map_or(&[][..], Vec::as_slice);
    assert_eq!(headers.len(), record.headers.len(), "headers");
    for (json, header) in headers.iter().zip(&record.headers) {
        assert_eq!(
            field_bytes(json, "key").as_deref(),
            Some(crate::header_name::to_bytes(&header.key).as_ref())
        );
        assert_eq!(field_bytes(json, "value"), header.value);
    }
}

/// `raw` put into a librdkafka header list (as its protocol reader does for
/// a consumed message) and read back by the consumer's own reader: every
/// header, in order, values exact, names exact up to a NUL byte (where
/// librdkafka's NUL-terminated names end).
fn through_librdkafka(raw: &RawHeaders) {
    use rdkafka::bindings as rd;
    // SAFETY: a fresh list, filled from live slices whose lengths are
    // passed, read while alive and destroyed once, below.
    let read = unsafe {
        let list = rd::rd_kafka_headers_new(raw.len());
        for (name, value) in raw {
            let (value_ptr, value_len) = match value {
                Some(value) => (value.as_ptr().cast(), value.len() as isize),
                None => (std::ptr::null(), 0),
            };
            rd::rd_kafka_header_add(
                list,
                name.as_ptr().cast(),
                name.len() as isize,
                value_ptr,
                value_len,
            );
        }
        let read = crate::source::headers_of(list);
        rd::rd_kafka_headers_destroy(list);
        read
    };
    assert_eq!(read.len(), raw.len());
    for (header, (name, value)) in read.iter().zip(raw) {
        let until_nul = name.split(|&byte| byte == 0).next().unwrap_or_default();
        assert_eq!(
            crate::header_name::to_bytes(&header.key).as_ref(),
            until_nul
        );
        assert_eq!(&header.value, value);
    }
}

/// A consumed record with any headers: each name's string stands for
/// exactly the consumed bytes, the dead-letter copy carries them first and
/// in order, and the formats that carry headers carry them all.
pub fn record(data: &[u8]) {
    let mut input = Input(data);
    let (record, raw) = read_record(&mut input);
    through_librdkafka(&raw);
    for (header, (name, value)) in record.headers.iter().zip(&raw) {
        assert_eq!(
            crate::header_name::to_bytes(&header.key).as_ref(),
            &name[..]
        );
        assert_eq!(&header.value, value);
    }
    let reason = crate::dlq::Reason {
        stage: crate::dlq::Stage::Invoke,
        code: "http-500".into(),
        message: String::from_utf8_lossy(input.short().unwrap_or_default()).into(),
        component: "fc:s/f".into(),
        attempts: 3,
        status: Some(500),
    };
    let dead = crate::dlq::headers(&record, &reason, "c");
    assert!(dead.len() > raw.len());
    for ((name, value), (raw_name, raw_value)) in dead.iter().zip(&raw) {
        assert_eq!(crate::header_name::to_bytes(name).as_ref(), &raw_name[..]);
        assert_eq!(value, raw_value);
    }
    let kafka = crate::header_name::kafka_headers(
        dead.iter()
            .map(|(name, value)| (name.as_str(), value.as_deref())),
    );
    assert_eq!(rdkafka::message::Headers::count(&kafka), dead.len());
    for format in [
        Format::Fc,
        // Escaped: the JSON converter embeds a value such as `1e999` that
        // `Value` cannot hold (`encode` covers that converter).
        Format::Confluent {
            converter: Converter::EscapedJson,
        },
        Format::AwsKafkaEvent {
            bootstrap_servers: "b:9092".into(),
        },
        Format::CloudEvents(CloudEvents {
            instance_id: "i".into(),
            account_id: None,
        }),
    ] {
        let encoded = format.encode(std::slice::from_ref(&record), 1, usize::MAX);
        assert_eq!(encoded.requests.len(), 1);
        let body: Value = serde_json::from_slice(&encoded.requests[0].body).expect("JSON");
        let element = carried(&format, &body)[0];
        if let Format::AwsKafkaEvent { .. } = format {
            // `[{"<name>":[<byte>,…]}]`; a null value is `[]`.
            let headers = element["headers"].as_array().expect("headers");
            assert_eq!(headers.len(), raw.len());
            for (json, header) in headers.iter().zip(&record.headers) {
                let bytes: Vec<u8> = json[header.key.as_str()]
                    .as_array()
                    .expect("a header's bytes")
                    .iter()
                    .map(|n| u8::try_from(n.as_u64().expect("a byte")).expect("a byte"))
                    .collect();
                assert_eq!(bytes, header.value.clone().unwrap_or_default());
            }
        } else {
            check_element(&format, element, &record);
        }
    }
}

/// Builds an answer: status, some of the headers that matter, a body.
fn response(input: &mut Input<'_>) -> (u16, http::HeaderMap, Vec<u8>) {
    const HEADERS: &[&str] = &[
        "x-fc-error-type",
        "x-amz-function-error",
        "x-amzn-errortype",
        "retry-after",
        "x-acs-retry-after",
        "location",
        "content-type",
        "content-length",
    ];
    let status = 100 + input.u16() % 500;
    let present = input.byte();
    let mut headers = http::HeaderMap::new();
    for (i, name) in HEADERS.iter().enumerate() {
        if present & (1 << i) != 0
            && let Ok(value) = http::HeaderValue::from_bytes(input.short().unwrap_or_default())
        {
            headers.insert(*name, value);
        }
    }
    (status, headers, input.rest().to_vec())
}

/// What a target's answer means (FC, Lambda, HTTP): any status, headers and
/// body give a verdict; redirects and answers over the limit are rejected,
/// a 2xx without a function error is delivered with its body.
pub fn answer(data: &[u8]) {
    let mut input = Input(data);
    let max_response = usize::from(input.u16());
    let (status, headers, body) = response(&mut input);
    let dialects: [(&Dialect, &str); 3] = [
        (&crate::invoke::fc::FC, "x-fc-error-type"),
        (&crate::invoke::lambda::LAMBDA, "x-amz-function-error"),
        (&crate::invoke::http::HTTP, ""),
    ];
    for (dialect, error_header) in dialects {
        let mut answer = http::Response::new(body.clone());
        *answer.status_mut() = http::StatusCode::from_u16(status).expect("100..600");
        *answer.headers_mut() = headers.clone();
        let verdict = futures::executor::block_on(crate::invoke::classify(
            Ok(reqwest::Response::from(answer)),
            dialect,
            max_response,
        ));
        let function_error = !error_header.is_empty()
            && headers
                .get(error_header)
                .is_some_and(|v| v.to_str().is_ok());
        match (status, &verdict) {
            (300..=399, Verdict::Reject(failure)) => assert_eq!(failure.code, "redirect"),
            (300..=399, _) => panic!("a redirect is {verdict:?}"),
            // Content-Length may announce more than the body has.
            (_, Verdict::Reject(failure)) if failure.code == "response-too-large" => {}
            _ if body.len() > max_response => panic!("an answer over the limit is {verdict:?}"),
            (200..=299, Verdict::Delivered(response)) if !function_error => {
                assert_eq!(response.body, body);
            }
            (200..=299, _) if !function_error => panic!("a 2xx is {verdict:?}"),
            (_, Verdict::Delivered(_)) => panic!("{status} is delivered"),
            _ => {}
        }
    }
}

/// A partial batch response: read, or refused as a whole; what is read is
/// what an equivalent answer says.
pub fn partial(data: &[u8]) {
    use crate::invoke::partial::{Report, report};
    let Report::Failed(ids) = report(data) else {
        return;
    };
    let again: Vec<Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"itemIdentifier": {
                "partition": format!("{}-{}", id.topic, id.partition),
                "offset": id.offset,
            }})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "batchItemFailures": again })).unwrap();
    assert_eq!(report(&body), Report::Failed(ids));
}

/// STS's answer to AssumeRole: credentials or an error, never a panic; 4xx
/// is a refusal (remembered), anything else unusable is a failure.
pub fn sts(data: &[u8]) {
    let mut input = Input(data);
    let status = reqwest::StatusCode::from_u16(100 + input.u16() % 500).expect("100..600");
    let body = input.rest();
    match crate::invoke::credentials::sts_answer("acs:ram::1:role/r", status, body) {
        Ok((credentials, _lifetime)) => {
            assert!(status.is_success());
            assert!(credentials.security_token().is_some());
        }
        Err(err) => {
            assert_eq!(
                err.is_refusal(),
                status.is_client_error(),
                "{status}: {err}"
            );
            check_scrubbed(&err.to_string());
        }
    }
}

/// A config-topic record: decoded, or ignored; what is decoded is encoded
/// back to the same entry, and a setting is applied or refused.
pub fn config_topic(data: &[u8]) {
    let mut input = Input(data);
    let Ok(key) = std::str::from_utf8(input.short().unwrap_or_default()) else {
        return;
    };
    let value = match input.short() {
        None => None,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => return,
        },
    };
    let Some(entry) = Entry::decode(key, value) else {
        return;
    };
    let (key, value) = entry.encode();
    assert_eq!(Entry::decode(&key, value.as_deref()), Some(entry.clone()));
    if let Entry::Setting {
        key,
        value: Some(value),
    } = &entry
    {
        let settings = base_settings();
        let mut live = Live::from_settings(settings);
        if live.apply(settings, key, value).is_ok() {
            let _ = live.describe();
        }
        let _ = Live::with_overrides(settings, &BTreeMap::from([(key.clone(), value.clone())]));
    }
}

/// A valid configuration for the checks that need one.
fn base_settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        Settings::from_toml(
            "name = \"fuzz\"\n[source]\nbootstrap_servers = \"b:9092\"\ntopics = [\"t\"]\n\
             [target.fc]\nendpoint = \"http://127.0.0.1:1\"\nservice = \"s\"\nfunction = \"f\"\n",
        )
        .expect("the base config is valid")
    })
}

/// A status-topic value: an instance or nothing; an instance is shown by
/// `fcsink status` and survives a round trip.
pub fn status_topic(data: &[u8]) {
    let Ok(status) = serde_json::from_slice::<InstanceStatus>(data) else {
        return;
    };
    let _ = status.is_stale(crate::fleet::now_ms());
    let _ = status.is_stale(0);
    let _ = status.is_stale(u64::MAX);
    let json = serde_json::to_vec(&status).unwrap();
    assert_eq!(
        serde_json::from_slice::<InstanceStatus>(&json).unwrap(),
        status
    );
    let report = crate::ops::status::Report {
        connector: "c".into(),
        group: "connect-c".into(),
        instances: vec![status],
        overrides: BTreeMap::new(),
        partitions: Vec::new(),
        total_lag: 0,
    };
    let _ = report.render();
}

/// A Confluent Lambda sink config: converted or refused; what is converted
/// is a TOML file (which fcsink then validates, never panicking).
pub fn import_confluent(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(imported) = crate::import::confluent::convert(text) else {
        return;
    };
    if let Err(err) = imported.toml.parse::<toml::Table>() {
        panic!("not TOML: {err}\n{}", imported.toml);
    }
    let _ = Settings::from_toml(&imported.toml);
}

/// Any text: scrubbed without a panic, and no long token survives.
pub fn scrub(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_scrubbed(&crate::invoke::scrub::scrub(&text));
}

/// Runs of this many token characters are redacted wherever they are (`scrub`).
fn check_scrubbed(text: &str) {
    let token = |b: &u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'%' | b'.')
    };
    let longest = text
        .as_bytes()
        .split(|b| !token(b))
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 100, "a token of {longest} characters: {text}");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every input the fuzzers kept (and every crash they found) still passes.
    #[test]
    fn fuzz_corpora_replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.is_file())
                .collect::<Vec<_>>();
            assert!(!entries.is_empty(), "{} is empty", dir.display());
            for path in entries {
                let data = std::fs::read(&path).unwrap();
                let run = std::panic::catch_unwind(|| target(&data));
                assert!(run.is_ok(), "{name}: {} fails", path.display());
            }
        }
    }
}
