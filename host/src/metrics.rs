//! Named events counted at stage boundaries, rendered in Prometheus text
//! format (served by [`http`] at `/metrics`).
//!
//! Call sites read like `metrics::batch_flushed(reason, n)`; every metric
//! lives here so the full list is in one place. Label values are escaped and
//! each family's label sets are capped ([`labels`]).

pub mod http;
pub mod labels;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use labels::Family;

use crate::invoke::Verdict;

static RECORDS_CONSUMED: AtomicU64 = AtomicU64::new(0);
static RECORDS_DELIVERED: AtomicU64 = AtomicU64::new(0);
static RECORDS_FILTERED: AtomicU64 = AtomicU64::new(0);
static RECORDS_DEAD_LETTERED: AtomicU64 = AtomicU64::new(0);
/// `fcsink_duplicates_refused_total`: requests FC refused as tasks it
/// already took (`delivery.idempotency = "fc_task_id"`).
static DUPLICATES_REFUSED: AtomicU64 = AtomicU64::new(0);
/// `fcsink_concurrency_limit`: requests allowed in flight now.
static CONCURRENCY_LIMIT: AtomicU64 = AtomicU64::new(0);
/// `fcsink_circuit_open`: the circuit breaker holds requests.
static CIRCUIT_OPEN: AtomicBool = AtomicBool::new(false);
static LABELLED: Mutex<BTreeMap<&'static str, Family>> = Mutex::new(BTreeMap::new());
/// `fcsink_partitions_stopped` by rendered label set, per connector running
/// in this process (tests run several), each replaced on every change.
static STOPPED: Mutex<BTreeMap<u64, BTreeMap<String, u64>>> = Mutex::new(BTreeMap::new());
/// The last connector number given (`connector_started`).
static CONNECTORS: AtomicU64 = AtomicU64::new(0);
/// `fcsink_consumer_lag` per `(topic, partition)`, from librdkafka's statistics.
static LAG: Mutex<BTreeMap<(String, i32), i64>> = Mutex::new(BTreeMap::new());

/// Bucket bounds in seconds, shared by both histograms: a plugin call takes
/// milliseconds, an invocation up to minutes.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// A Prometheus histogram of durations.
struct Histogram {
    /// Observations at or below each of [`BUCKETS`] (not cumulative here).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

static INVOCATION_SECONDS: Histogram = Histogram::new();
static TRANSFORM_SECONDS: Histogram = Histogram::new();

fn count(name: &'static str, labels: &[(&str, &str)], n: u64) {
    if let Ok(mut map) = LABELLED.lock() {
        map.entry(name).or_default().add(labels, n);
    }
}

/// Records read from Kafka.
pub fn records_consumed(n: usize) {
    RECORDS_CONSUMED.fetch_add(n as u64, Ordering::Relaxed);
}

/// A batch was flushed for the given reason.
pub fn batch_flushed(reason: &'static str, records: usize) {
    count("fcsink_batches_total", &[("reason", reason)], 1);
    count(
        "fcsink_batch_records_total",
        &[("reason", reason)],
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
        &[("plugin", plugin), ("outcome", outcome)],
        1,
    );
}

/// The plugin chain took `elapsed` over a batch and ended with `outcome`
/// (`ok` or the failing plugin's failure code).
pub fn transform_finished(elapsed: Duration, outcome: &str) {
    TRANSFORM_SECONDS.observe(elapsed);
    count("fcsink_transform_batches_total", &[("outcome", outcome)], 1);
}

/// An invocation attempt took `elapsed` and ended with `verdict`, counted by its status class
/// (`2xx`, `duplicate`, `function-error`, `4xx`, `5xx`, `error`); a refused
/// duplicate is also counted in `fcsink_duplicates_refused_total`.
pub fn invoke_attempt(verdict: &Verdict, elapsed: Duration) {
    INVOCATION_SECONDS.observe(elapsed);
    if matches!(verdict, Verdict::Delivered(response) if response.duplicate) {
        DUPLICATES_REFUSED.fetch_add(1, Ordering::Relaxed);
    }
    count(
        "fcsink_invocations_total",
        &[("status", status_class(verdict))],
        1,
    );
}

/// The `status` label of an invocation attempt.
fn status_class(verdict: &Verdict) -> &'static str {
    let status = match verdict {
        Verdict::Delivered(response) => Some(response.status),
        Verdict::Retry { failure, .. }
        | Verdict::Reject(failure)
        | Verdict::TargetFailure(failure) => failure.status,
    };
    match status {
        _ if matches!(verdict, Verdict::Delivered(response) if response.duplicate) => "duplicate",
        Some(200..=299) if matches!(verdict, Verdict::Delivered(_)) => "2xx",
        Some(200..=299) => "function-error",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "error",
    }
}

/// Records that reached the function.
pub fn records_delivered(n: usize) {
    RECORDS_DELIVERED.fetch_add(n as u64, Ordering::Relaxed);
}

/// Records written to the dead-letter topic, by reason code (which may
/// come from the function's answer: escaped and capped like every label).
pub fn dead_lettered(code: &str, n: usize) {
    RECORDS_DEAD_LETTERED.fetch_add(n as u64, Ordering::Relaxed);
    count(
        "fcsink_records_dead_lettered_by_code_total",
        &[("code", code)],
        n as u64,
    );
}

/// Records written without their value (or key) because Kafka refused
/// them, alone, as too large; `topic` is `dead-letter`, `success` or `error`.
pub fn records_stripped(topic: &'static str, n: usize) {
    if n > 0 {
        count(
            "fcsink_records_stripped_total",
            &[("topic", topic)],
            n as u64,
        );
    }
}

/// Values of a forwarded header (`forward_headers`) left out of a request
/// because they are not valid HTTP header values, by header name.
pub fn headers_not_forwarded(header: &str, n: usize) {
    if n > 0 {
        count(
            "fcsink_headers_not_forwarded_total",
            &[("header", header)],
            n as u64,
        );
    }
}

/// Requests allowed in flight now: `source.concurrency`, or fewer while the
/// target throttles.
pub fn concurrency_limit(limit: usize) {
    CONCURRENCY_LIMIT.store(limit as u64, Ordering::Relaxed);
}

/// The circuit breaker opened (the target is down) or closed.
pub fn circuit_open(open: bool) {
    CIRCUIT_OPEN.store(open, Ordering::Relaxed);
}

/// Whether the circuit breaker is open, for the status.
pub fn current_circuit_open() -> bool {
    CIRCUIT_OPEN.load(Ordering::Relaxed)
}

/// Requests allowed in flight now, for the status.
pub fn current_concurrency_limit() -> u64 {
    CONCURRENCY_LIMIT.load(Ordering::Relaxed)
}

/// The partitions stopped now, each as `(cause, code)`: `failure_policy`
/// (no code), `target` and the target's error code, or the topic whose
/// write Kafka refused and its error code.
/// `connector` is the number [`connector_started`] gave.
pub fn partitions_stopped(connector: u64, stops: &[(&'static str, String)]) {
    let mut counts = BTreeMap::new();
    for (cause, code) in stops {
        *counts
            .entry(labels::render(&[("cause", cause), ("code", code)]))
            .or_default() += 1;
    }
    if let Ok(mut stopped) = STOPPED.lock() {
        stopped.insert(connector, counts);
    }
}

/// A number for a connector starting in this process, under which it
/// reports its stopped partitions.
pub fn connector_started() -> u64 {
    CONNECTORS.fetch_add(1, Ordering::Relaxed) + 1
}

/// The connector stopped: its partitions no longer count.
pub fn connector_stopped(connector: u64) {
    if let Ok(mut stopped) = STOPPED.lock() {
        stopped.remove(&connector);
    }
}

/// librdkafka's periodic statistics: the lag of every partition this
/// process consumes (end offset minus the offset stored after delivery).
pub fn consumer_stats(stats: &rdkafka::Statistics) {
    let Ok(mut lag) = LAG.lock() else { return };
    lag.clear();
    for (topic, t) in &stats.topics {
        for p in t.partitions.values() {
            // Partition -1 is librdkafka's internal "unassigned" queue.
            if p.partition >= 0 && p.desired && p.consumer_lag_stored >= 0 {
                lag.insert((topic.clone(), p.partition), p.consumer_lag_stored);
            }
        }
    }
}

/// The totals an instance publishes in its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Records read from Kafka.
    pub consumed: u64,
    /// Records dropped by a plugin.
    pub filtered: u64,
    /// Records that reached the function.
    pub delivered: u64,
    /// Records written to the dead-letter topic.
    pub dead_lettered: u64,
}

/// The record counters since the process started.
pub fn totals() -> Totals {
    Totals {
        consumed: RECORDS_CONSUMED.load(Ordering::Relaxed),
        filtered: RECORDS_FILTERED.load(Ordering::Relaxed),
        delivered: RECORDS_DELIVERED.load(Ordering::Relaxed),
        dead_lettered: RECORDS_DEAD_LETTERED.load(Ordering::Relaxed),
    }
}

/// What each metric family means, for `# HELP`.
const HELP: &[(&str, &str)] = &[
    ("fcsink_records_consumed_total", "Records read from Kafka."),
    (
        "fcsink_records_filtered_total",
        "Records dropped by a plugin.",
    ),
    (
        "fcsink_records_delivered_total",
        "Records that reached the function.",
    ),
    (
        "fcsink_records_dead_lettered_total",
        "Records written to the dead-letter topic.",
    ),
    (
        "fcsink_duplicates_refused_total",
        "Requests FC refused as asynchronous tasks it already took (409): delivered by an earlier attempt.",
    ),
    (
        "fcsink_records_dead_lettered_by_code_total",
        "Records written to the dead-letter topic, by reason code.",
    ),
    (
        "fcsink_batches_total",
        "Batches flushed, by reason (full, linger, closed).",
    ),
    (
        "fcsink_batch_records_total",
        "Records in flushed batches, by flush reason.",
    ),
    (
        "fcsink_invocations_total",
        "Invocation attempts, by status class.",
    ),
    (
        "fcsink_plugin_calls_total",
        "Failed plugin calls, by plugin and failure code.",
    ),
    (
        "fcsink_transform_batches_total",
        "Batches through the plugin chain, by outcome.",
    ),
    (
        "fcsink_records_stripped_total",
        "Records written without their value (or key): Kafka refused them alone as too large.",
    ),
    (
        "fcsink_headers_not_forwarded_total",
        "Values of forward_headers left out of requests: not valid HTTP header values.",
    ),
];

fn help(name: &str) -> &'static str {
    HELP.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| h)
}

/// Renders every metric in Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    for (name, value) in [
        ("fcsink_records_consumed_total", &RECORDS_CONSUMED),
        ("fcsink_records_filtered_total", &RECORDS_FILTERED),
        ("fcsink_records_delivered_total", &RECORDS_DELIVERED),
        ("fcsink_records_dead_lettered_total", &RECORDS_DEAD_LETTERED),
        ("fcsink_duplicates_refused_total", &DUPLICATES_REFUSED),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} counter\n{name} {}",
            help(name),
            value.load(Ordering::Relaxed)
        );
    }
    if let Ok(map) = LABELLED.lock() {
        for (name, family) in map.iter() {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
            for (labels, value) in family.series() {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    let name = "fcsink_circuit_open";
    let _ = writeln!(
        out,
        "# HELP {name} 1 while the circuit breaker holds requests because the target is down.\n# TYPE {name} gauge\n{name} {}",
        u8::from(CIRCUIT_OPEN.load(Ordering::Relaxed))
    );
    let name = "fcsink_concurrency_limit";
    let _ = writeln!(
        out,
        "# HELP {name} Requests allowed in flight: source.concurrency, or fewer while the target throttles (delivery.adaptive_concurrency).\n# TYPE {name} gauge\n{name} {}",
        CONCURRENCY_LIMIT.load(Ordering::Relaxed)
    );
    if let Ok(stopped) = STOPPED.lock() {
        let name = "fcsink_partitions_stopped";
        let _ = writeln!(
            out,
            "# HELP {name} Assigned partitions stopped, by cause (failure_policy, target, panic, or the topic whose write Kafka refused) and error code.\n# TYPE {name} gauge"
        );
        let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
        for (labels, value) in stopped.values().flatten() {
            *sums.entry(labels).or_default() += value;
        }
        for (labels, value) in sums {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    INVOCATION_SECONDS.render(
        &mut out,
        "fcsink_invocation_duration_seconds",
        "Duration of one invocation attempt.",
    );
    TRANSFORM_SECONDS.render(
        &mut out,
        "fcsink_transform_duration_seconds",
        "Time the plugin chain took over one batch.",
    );
    if let Ok(lag) = LAG.lock() {
        let name = "fcsink_consumer_lag";
        let _ = writeln!(
            out,
            "# HELP {name} Records between the offset stored after delivery and the end of the partition.\n# TYPE {name} gauge"
        );
        for ((topic, partition), value) in lag.iter() {
            let labels = labels::render(&[("topic", topic), ("partition", &partition.to_string())]);
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_millis(200));
        histogram.observe(Duration::from_secs(500));
        let mut out = String::new();
        histogram.render(&mut out, "h", "test");
        assert!(out.contains("h_bucket{le=\"0.001\"} 0\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.25\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"120\"} 2\n"), "{out}");
        assert!(
            out.contains("h_bucket{le=\"+Inf\"} 3\nh_sum 500.203\nh_count 3\n"),
            "{out}"
        );
    }
}
