//! What the benchmark binaries share: filling a topic, watching the
//! emulator's record until every record has arrived, reading a process's
//! CPU time, and describing the machine.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use fc_emulator::Emulator;
use serde::Deserialize;

use crate::broker::Broker;

/// How often the emulator's record is read while a sink runs.
const WATCH_EVERY: Duration = Duration::from_millis(10);
/// Records handed to the producer at once (its queue holds 100 000).
const PRODUCE_CHUNK: usize = 20_000;

/// When a sink started, first delivered and finished.
pub struct Run {
    /// When the sink was started.
    pub launched: SystemTime,
    /// When the first request arrived.
    pub first: SystemTime,
    /// Records in the first request, which the steady rate leaves out.
    pub first_records: usize,
    /// When the request that completed the set arrived.
    pub done: SystemTime,
    /// When a tenth, and when nine tenths, of the records had arrived.
    pub tenth: SystemTime,
    /// See `tenth`.
    pub nine_tenths: SystemTime,
    /// Records expected.
    pub expected: usize,
    /// Records received, duplicates included.
    pub received: usize,
    /// Distinct records received.
    pub distinct: usize,
}

impl Run {
    /// Steady records per second: after the first request, to the last.
    pub fn rate(&self) -> f64 {
        let secs = secs_between(self.first, self.done);
        (self.distinct - self.first_records) as f64 / secs
    }

    /// Records per second between a tenth and nine tenths of the records:
    /// the pace once every worker is busy, before some run out of records.
    pub fn middle_rate(&self) -> f64 {
        (self.expected as f64 * 0.8) / secs_between(self.tenth, self.nine_tenths)
    }

    /// Seconds from launch to the first request.
    pub fn startup(&self) -> f64 {
        secs_between(self.launched, self.first)
    }
}

/// Seconds from `from` to `to` (at least a microsecond).
pub fn secs_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from)
        .unwrap_or_default()
        .as_secs_f64()
        .max(1e-6)
}

/// Where a record object says it came from; the other fields are skipped.
#[derive(Deserialize)]
struct Position {
    partition: usize,
    offset: usize,
}

/// A moment of a run that [`watch_with`] reports as soon as it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The first request has arrived; `seen` records (distinct) so far.
    First {
        /// Distinct records in the requests read with the first one.
        seen: usize,
    },
    /// The request that completes the set has arrived.
    Done,
}

/// How long [`watch`] waits for the last 1% of the records once nothing
/// arrives any more.
const STRAGGLERS: Duration = Duration::from_secs(20);

/// Reads the emulator's record as it grows until every offset below `ends`
/// has arrived (or all but 1%, when nothing more comes for [`STRAGGLERS`]).
pub async fn watch(emulator: &Emulator, ends: &[i64], launched: SystemTime) -> Run {
    watch_with(emulator, ends, launched, |_| {}).await
}

/// [`watch`], calling `at` the moment it sees the first request and the
/// last (e.g. to read the sink's CPU time then).
pub async fn watch_with(
    emulator: &Emulator,
    ends: &[i64],
    launched: SystemTime,
    mut at: impl FnMut(Moment),
) -> Run {
    let mut seen: Vec<Vec<bool>> = ends.iter().map(|&end| vec![false; end as usize]).collect();
    let expected: usize = ends.iter().map(|&end| end as usize).sum();
    let (mut read, mut first_reported) = (0, false);
    let mut run = Run {
        launched,
        first: launched,
        first_records: 0,
        tenth: launched,
        nine_tenths: launched,
        expected,
        done: launched,
        received: 0,
        distinct: 0,
    };
    let mut last_new = std::time::Instant::now();
    loop {
        let new = emulator.invocations_since(read);
        read += new.len();
        if !new.is_empty() {
            last_new = std::time::Instant::now();
        }
        for invocation in new.iter().filter(|i| !i.failed) {
            let records: Vec<Position> =
                serde_json::from_slice(&invocation.body).expect("the payload is a JSON array");
            if run.received == 0 {
                run.first = invocation.received_at;
                run.first_records = records.len();
            }
            run.received += records.len();
            for Position { partition, offset } in records {
                let slot = seen
                    .get_mut(partition)
                    .and_then(|offsets| offsets.get_mut(offset))
                    .unwrap_or_else(|| panic!("record {partition}/{offset} was never produced"));
                run.distinct += usize::from(!*slot);
                *slot = true;
            }
            if run.distinct * 10 < expected {
                run.tenth = invocation.received_at;
            }
            if run.distinct * 10 < expected * 9 {
                run.nine_tenths = invocation.received_at;
            }
            if run.distinct == expected {
                if !first_reported {
                    at(Moment::First { seen: run.distinct });
                }
                at(Moment::Done);
                run.done = invocation.received_at;
                return run;
            }
        }
        if !first_reported && run.received > 0 {
            first_reported = true;
            at(Moment::First { seen: run.distinct });
        }
        // A few records that never come (dead-lettered after their retries,
        // as a storm of 429s can make them) must not hold the figures back.
        if run.distinct * 100 >= expected * 99 && last_new.elapsed() > STRAGGLERS {
            eprintln!(
                "{} of {expected} records never reached the function (dead-lettered?); \
                 the figures leave them out",
                expected - run.distinct
            );
            at(Moment::Done);
            run.done = SystemTime::now() - STRAGGLERS;
            return run;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Fills `topic` with `records` records round-robin over `partitions`,
/// each with a key of about 10 bytes and an ASCII value of `value_size`
/// bytes; returns each partition's end offset.
pub async fn fill(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    records: usize,
    value_size: usize,
) -> Vec<i64> {
    fill_keyed(broker, topic, partitions, records, value_size, records).await
}

/// [`fill`] with `keys` distinct keys, record `i` keyed `key-{i % keys}`.
pub async fn fill_keyed(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    records: usize,
    value_size: usize,
    keys: usize,
) -> Vec<i64> {
    let keys = keys.max(1);
    let mut ends = vec![0i64; partitions as usize];
    for start in (0..records).step_by(PRODUCE_CHUNK) {
        let range = start..(start + PRODUCE_CHUNK).min(records);
        let names: Vec<String> = range
            .clone()
            .map(|i| format!("key-{:06}", i % keys))
            .collect();
        let values: Vec<Vec<u8>> = range
            .clone()
            .map(|i| {
                let mut value = format!("{i:010}:").into_bytes();
                value.resize(value_size, b'x');
                value
            })
            .collect();
        let chunk: Vec<_> = range
            .map(|i| {
                (
                    Some((i % partitions as usize) as i32),
                    Some(names[i - start].as_bytes()),
                    Some(values[i - start].as_slice()),
                )
            })
            .collect();
        for (partition, offset) in broker.produce(topic, &chunk).await {
            let end = &mut ends[partition as usize];
            *end = (*end).max(offset + 1);
        }
    }
    ends
}

/// A connector on `topic`, sync FC, with `extra` TOML appended.
pub fn config(
    name: &str,
    broker: &Broker,
    emulator: &Emulator,
    topic: &str,
    extra: &str,
) -> String {
    format!(
        r#"
name = "{name}"

[source]
bootstrap_servers = "{bootstrap}"
topics = ["{topic}"]

[target.fc]
endpoint = "{endpoint}"
service = "bench"
function = "sink"
send_mode = "sync"
timeout_ms = 30000

{extra}
"#,
        bootstrap = broker.bootstrap(),
        endpoint = emulator.url(),
    )
}

/// The CPU time process `pid` has used so far, user plus system, over all
/// its threads (`utime + stime` in `/proc/<pid>/stat`); `None` once it is
/// gone. Its resolution is a clock tick ([`clock_ticks`]).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces;
    // after it come field 3 (state) onwards, so utime (14) is the 12th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks() as f64,
    ))
}

/// Whether process `pid` has exited: gone, or a zombie not yet waited for
/// (whose CPU time [`cpu_time`] can still read).
pub fn has_exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, None | Some("Z" | "X"))
}

/// Clock ticks per second, the unit of CPU times in `/proc`
/// (`getconf CLK_TCK`; 100 when that cannot be run).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// One line on the machine: cores, CPU model, load average.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map_or("unknown", |rest| rest.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cores} cores, {model}; load average {}",
        load.trim()
    )
}

/// fcsink's log goes to stderr, filtered by `FCSINK_LOG` (default `warn`).
/// librdkafka's own log is off by default: the broker harness's probe
/// connects before Tansu listens, and fcsink reports consumer errors itself.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FCSINK_LOG")
        .unwrap_or_else(|_| "warn,librdkafka=off,rdkafka=off".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
