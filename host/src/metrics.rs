//! Named events counted at stage boundaries, rendered in Prometheus text format.
//!
//! Call sites read like `metrics::batch_flushed(reason, n)`; every counter
//! lives here so the full list is in one place.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static RECORDS_CONSUMED: AtomicU64 = AtomicU64::new(0);
static RECORDS_DELIVERED: AtomicU64 = AtomicU64::new(0);
static RECORDS_FILTERED: AtomicU64 = AtomicU64::new(0);
static LABELLED: Mutex<BTreeMap<(&'static str, String), u64>> = Mutex::new(BTreeMap::new());

fn count(name: &'static str, label: String, n: u64) {
    if let Ok(mut map) = LABELLED.lock() {
        *map.entry((name, label)).or_default() += n;
    }
}

/// Records read from Kafka.
pub fn records_consumed(n: usize) {
    RECORDS_CONSUMED.fetch_add(n as u64, Ordering::Relaxed);
}

/// A batch was flushed for the given reason.
pub fn batch_flushed(reason: &'static str, records: usize) {
    count("fcsink_batches_total", format!("reason=\"{reason}\""), 1);
    count(
        "fcsink_batch_records_total",
        format!("reason=\"{reason}\""),
        records as u64,
    );
}

/// Records a plugin dropped.
pub fn records_filtered(n: usize) {
    RECORDS_FILTERED.fetch_add(n as u64, Ordering::Relaxed);
}

/// A plugin call ended with `outcome` (`ok` or a failure code).
pub fn plugin_called(plugin: &str, outcome: &str) {
    count(
        "fcsink_plugin_calls_total",
        format!("plugin=\"{plugin}\",outcome=\"{outcome}\""),
        1,
    );
}

/// An invocation attempt ended with this status class (`2xx`, `4xx`, `5xx`, `error`).
pub fn invoke_attempt(class: &str) {
    count("fcsink_invocations_total", format!("status=\"{class}\""), 1);
}

/// Records that reached the function.
pub fn records_delivered(n: usize) {
    RECORDS_DELIVERED.fetch_add(n as u64, Ordering::Relaxed);
}

/// Records written to the dead-letter topic, by reason code.
pub fn dead_lettered(code: &str, n: usize) {
    count(
        "fcsink_records_dead_lettered_total",
        format!("code=\"{code}\""),
        n as u64,
    );
}

/// Renders every counter in Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    for (name, value) in [
        ("fcsink_records_consumed_total", &RECORDS_CONSUMED),
        ("fcsink_records_delivered_total", &RECORDS_DELIVERED),
        ("fcsink_records_filtered_total", &RECORDS_FILTERED),
    ] {
        let _ = writeln!(
            out,
            "# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    if let Ok(map) = LABELLED.lock() {
        let mut last = "";
        for ((name, labels), value) in map.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    out
}
