//! Delivery control against what it promises: parallelism within a
//! partition, the request budget, adaptive concurrency.
//!
//! ```text
//! cargo run --release -p fcsink-tests --bin bench-delivery -- [PART...]
//!   PART   ordering, rate-limit, aimd (default: all three)
//! ```
//!
//! `scripts/bench-delivery.sh` does the set-up and runs it. Every part
//! drains a backlog already in the topic with fcsink in this process (sync
//! FC, passthrough, 100-B records) and measures at the emulator while the
//! middle 80% of the records arrive.
//!
//! # Parts
//!
//! - **ordering**: one partition, 1,000 keys, a function taking L per call,
//!   batches of B = 20: with `source.ordering = "partition"` no sink can
//!   beat B/L records/s; with `"key"` and `"none"`, C lanes can reach C·B/L.
//! - **rate-limit**: one record per request on 12 partitions, a function
//!   answering at once, `delivery.max_requests_per_second` = R: requests/s
//!   against R.
//! - **aimd**: 16 partitions, concurrency 16, a function admitting K
//!   requests/s (429 beyond) and taking 200 ms: records/s against K·B, with
//!   `delivery.adaptive_concurrency` on and off, and the calls throttled.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use fc_emulator::{Emulator, Fault};
use fcsink_tests::bench::{self, Run, watch};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running};

const ORDERING_BATCH: usize = 20;
const ORDERING_KEYS: usize = 1000;
/// Steady-state seconds each cell aims for.
const SECONDS: f64 = 10.0;

fn main() -> Result<()> {
    let mut parts = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => {}
            "ordering" | "rate-limit" | "aimd" => parts.push(arg),
            _ => bail!("unknown argument {arg}; parts are ordering, rate-limit, aimd"),
        }
    }
    if parts.is_empty() {
        parts = vec!["ordering".into(), "rate-limit".into(), "aimd".into()];
    }
    bench::init_logging();
    println!("{}", bench::machine());
    // The emulator gets its own threads, as it would be its own process.
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("emulator")
        .enable_all()
        .build()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let broker = Broker::sqlite().await;
        let emulator = emulator_runtime.spawn(connector::emulator(|_| {})).await?;
        for part in &parts {
            match part.as_str() {
                "ordering" => ordering(&broker, &emulator).await?,
                "rate-limit" => rate_limit(&broker, &emulator).await?,
                _ => aimd(&broker, &emulator).await?,
            }
        }
        Ok(())
    })
}

/// One drained backlog.
struct Cell {
    topic: String,
    partitions: i32,
    records: usize,
    /// Distinct keys over the records.
    keys: usize,
    faults: Vec<Fault>,
    /// Lines for `[source]`.
    source: String,
    /// Tables appended.
    extra: String,
}

impl Cell {
    async fn drain(&self, broker: &Broker, emulator: &Emulator) -> Result<Run> {
        broker.create_topic(&self.topic, self.partitions).await;
        let ends = bench::fill_keyed(
            broker,
            &self.topic,
            self.partitions,
            self.records,
            100,
            self.keys,
        )
        .await;
        emulator.clear();
        emulator.clear_faults();
        for fault in &self.faults {
            emulator.inject(fault.clone());
        }
        let extra = format!("{}\n[sandbox]\ncache_dir = \"\"\n", self.extra);
        let config = bench::config(&self.topic, broker, emulator, &self.topic, &extra)
            .replace("[source]\n", &format!("[source]\n{}\n", self.source));
        let launched = SystemTime::now();
        let running = Running::start(&config);
        let run = tokio::time::timeout(Duration::from_secs(600), watch(emulator, &ends, launched))
            .await
            .context("the backlog was not drained in time")?;
        running.stop().await?;
        Ok(run)
    }
}

/// Records for about [`SECONDS`] at `rate`, whole batches per partition.
fn records_for(rate: f64, partitions: i32, batch: usize) -> usize {
    let round = partitions as usize * batch;
    ((rate * SECONDS) as usize).div_ceil(round).max(5) * round
}

async fn ordering(broker: &Broker, emulator: &Emulator) -> Result<()> {
    println!(
        "\nordering: one partition, sync FC, passthrough, batch {ORDERING_BATCH}, \
         {ORDERING_KEYS} keys, a function taking L per call"
    );
    println!(
        "{:>6} {:>4} {:>10} {:>8} {:>10} {:>10} {:>9} {:>11}",
        "L (ms)", "C", "ordering", "records", "rec/s", "ceiling", "achieved", "key order"
    );
    for (latency_ms, concurrency) in [(50u64, 12usize), (200, 4)] {
        for ordering in ["partition", "key", "none"] {
            let lanes = if ordering == "partition" {
                1
            } else {
                concurrency
            };
            let ceiling = (lanes * ORDERING_BATCH) as f64 * 1000.0 / latency_ms as f64;
            let cell = Cell {
                topic: format!("order-{ordering}-{latency_ms}-{concurrency}"),
                partitions: 1,
                records: records_for(ceiling, 1, ORDERING_BATCH),
                keys: ORDERING_KEYS,
                faults: vec![Fault::latency(Duration::from_millis(latency_ms))],
                source: format!("concurrency = {concurrency}\nordering = \"{ordering}\""),
                extra: format!("[batch]\nsize = {ORDERING_BATCH}\nlinger_ms = 5"),
            };
            let rate = cell.drain(broker, emulator).await?.middle_rate();
            let violations = emulator.key_order_violations().len();
            println!(
                "{latency_ms:>6} {concurrency:>4} {ordering:>10} {:>8} {rate:>10.0} \
                 {ceiling:>10.0} {:>8.1}% {:>11}",
                cell.records,
                100.0 * rate / ceiling,
                if violations == 0 {
                    "kept".to_string()
                } else {
                    format!("{violations} broken")
                }
            );
        }
    }
    println!(
        "ceiling: B/L with \"partition\" (one batch of the partition at a time), C·B/L with \
         the others; key order: records of a key first delivered after a later one of it"
    );
    Ok(())
}

async fn rate_limit(broker: &Broker, emulator: &Emulator) -> Result<()> {
    println!(
        "\nrate-limit: 12 partitions, one record per request, concurrency 6, a function \
         answering at once; requests/s while the middle 80% arrive"
    );
    println!(
        "{:>8} {:>8} {:>12} {:>9}",
        "budget", "records", "requests/s", "of budget"
    );
    for budget in [None, Some(20u32), Some(100), Some(400)] {
        let records = budget.map_or(2400, |b| records_for(f64::from(b), 12, 1));
        let limit = budget.map_or(String::new(), |b| {
            format!("[delivery]\nmax_requests_per_second = {b}")
        });
        let cell = Cell {
            topic: format!("budget-{}", budget.unwrap_or(0)),
            partitions: 12,
            records,
            keys: records,
            faults: Vec::new(),
            source: "concurrency = 6".into(),
            extra: format!("[batch]\nsize = 1\nlinger_ms = 0\n{limit}"),
        };
        let rate = cell.drain(broker, emulator).await?.middle_rate();
        match budget {
            Some(budget) => println!(
                "{budget:>8} {records:>8} {rate:>12.1} {:>8.1}%",
                100.0 * rate / f64::from(budget)
            ),
            None => println!("{:>8} {records:>8} {rate:>12.1}", "none"),
        }
    }
    Ok(())
}

async fn aimd(broker: &Broker, emulator: &Emulator) -> Result<()> {
    const ADMITTED: u32 = 40;
    const AIMD_BATCH: usize = 5;
    let ideal = f64::from(ADMITTED) * AIMD_BATCH as f64;
    println!(
        "\naimd: 16 partitions, concurrency 16, batch {AIMD_BATCH}, a function admitting \
         {ADMITTED} requests/s (429 beyond) and taking 200 ms: at most {ideal:.0} records/s"
    );
    println!(
        "{:>9} {:>8} {:>10} {:>9} {:>10} {:>10} {:>13}",
        "adaptive", "records", "rec/s", "of K·B", "calls", "throttled", "dead-lettered"
    );
    for adaptive in [false, true] {
        let cell = Cell {
            topic: format!("aimd-{adaptive}"),
            partitions: 16,
            // 30 s: with fewer, partitions finishing at different times
            // leave the middle 80% with too few batches to fill the
            // threshold (2,000 records measured 85% of K·B, 6,000 99%).
            records: records_for(ideal * 3.0, 16, AIMD_BATCH),
            keys: 1000,
            faults: vec![
                Fault::rate_limit(ADMITTED),
                Fault::latency(Duration::from_millis(200)),
            ],
            source: "concurrency = 16".into(),
            extra: format!(
                "[batch]\nsize = {AIMD_BATCH}\nlinger_ms = 50\n[delivery]\nretries = 10\n\
                 backoff_initial_ms = 100\nbackoff_max_ms = 1000\n\
                 adaptive_concurrency = {adaptive}"
            ),
        };
        let run = cell.drain(broker, emulator).await?;
        let rate = run.middle_rate();
        // Records throttled past their retries are dead-lettered.
        let undelivered = run.expected - run.distinct;
        let calls = emulator.invocations();
        let throttled = calls.iter().filter(|i| i.status == 429).count();
        println!(
            "{adaptive:>9} {:>8} {rate:>10.0} {:>8.1}% {:>10} {throttled:>10} {undelivered:>13}",
            cell.records,
            100.0 * rate / ideal,
            calls.len()
        );
    }
    Ok(())
}
