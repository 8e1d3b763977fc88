//! fcsink near its limits: how close pipelining gets to its ceiling, how
//! much memory draining a big backlog takes, and how long a start takes.
//!
//! ```text
//! cargo build --release -p fcsink-tests --bins
//! cargo run --release -p fcsink-tests --bin bench-load -- [PART...] [--records N]
//!   PART          pipelining, memory, cold-start (default: all three)
//!   --records N   records in the memory backlog (default 1000000)
//! ```
//!
//! `scripts/bench-load.sh` does the set-up and runs it.
//!
//! # Parts
//!
//! - **pipelining**: the function takes a fixed L per call; with C batches
//!   of B records in flight, no sink can beat C·B/L records/s. For each L
//!   and C, a backlog on a 12-partition topic is drained by fcsink (in this
//!   process, sync FC, passthrough) and the rate at the emulator while the
//!   middle 80% of the records arrive (every worker busy) is compared with
//!   the ceiling.
//! - **memory**: a backlog of N 100-byte records drained by the `fcsink`
//!   process against a slow function, once per `source.buffer_mb`; its
//!   resident memory is sampled every 50 ms.
//! - **cold-start**: from spawning `fcsink run` with a plugin to the first
//!   invocation, with an empty and then a warm compiled-plugin cache.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use fc_emulator::{Emulator, Fault};
use fcsink_tests::bench::{self, watch};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Process, Running, wait_until};
use fcsink_tests::plugins::plugin;

const PIPELINE_PARTITIONS: i32 = 12;
const PIPELINE_BATCH: usize = 10;
const LATENCIES_MS: [u64; 3] = [5, 50, 200];
const CONCURRENCIES: [usize; 3] = [1, 6, 12];
/// Steady-state seconds each pipelining cell aims for.
const PIPELINE_SECONDS: f64 = 10.0;

const MEMORY_PARTITIONS: i32 = 6;
const MEMORY_BATCH: usize = 500;
const MEMORY_CONCURRENCY: usize = 6;
const MEMORY_LATENCY: Duration = Duration::from_millis(200);
const BUFFER_SIZES_MB: [usize; 3] = [16, 64, 256];

const COLD_STARTS: usize = 5;

fn main() -> Result<()> {
    let mut parts = Vec::new();
    let mut records = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => {
                records = args
                    .next()
                    .context("--records needs a number")?
                    .parse()
                    .context("--records needs a number")?;
            }
            "--bench" => {}
            "pipelining" | "memory" | "cold-start" => parts.push(arg),
            _ => bail!("unknown argument {arg}; parts are pipelining, memory, cold-start"),
        }
    }
    if parts.is_empty() {
        parts = vec!["pipelining".into(), "memory".into(), "cold-start".into()];
    }
    bench::init_logging();
    println!("{}", bench::machine());
    let fcsink = std::env::current_exe()?.with_file_name("fcsink-under-test");
    ensure!(
        fcsink.exists(),
        "{} is missing: run `cargo build --release -p fcsink-tests --bins` first",
        fcsink.display()
    );
    // The emulator gets its own threads, as it would be its own process.
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("emulator")
        .enable_all()
        .build()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let emulator = emulator_runtime.handle();
    for part in &parts {
        match part.as_str() {
            "pipelining" => runtime.block_on(pipelining(emulator))?,
            "memory" => runtime.block_on(memory(emulator, &fcsink, records))?,
            _ => runtime.block_on(cold_start(emulator, &fcsink))?,
        }
    }
    Ok(())
}

async fn start_emulator(runtime: &tokio::runtime::Handle) -> Result<Emulator> {
    Ok(runtime.spawn(connector::emulator(|_| {})).await?)
}

async fn pipelining(emulator_runtime: &tokio::runtime::Handle) -> Result<()> {
    println!(
        "\npipelining: sync FC, passthrough, batch {PIPELINE_BATCH}, {PIPELINE_PARTITIONS} \
         partitions, 100-B records already in the topic; rate = records/s while the middle \
         80% of the records arrive"
    );
    let broker = Broker::sqlite().await;
    let emulator = start_emulator(emulator_runtime).await?;
    let mut real_latency = std::collections::BTreeMap::from([(0, Duration::ZERO)]);
    for latency_ms in LATENCIES_MS {
        let real = measured_sleep(emulator_runtime, Duration::from_millis(latency_ms)).await?;
        real_latency.insert(latency_ms, real);
    }
    let mut rows = Vec::new();
    // First the cost of a call that waits for nothing: one batch at a time,
    // the function answering at once.
    let cells = std::iter::once((0, 1)).chain(
        LATENCIES_MS
            .into_iter()
            .flat_map(|l| CONCURRENCIES.into_iter().map(move |c| (l, c))),
    );
    for (latency_ms, concurrency) in cells {
        let ceiling = if latency_ms == 0 {
            // No ceiling: measure a few seconds' worth at a guess of 1 ms per call.
            PIPELINE_BATCH as f64 * 1000.0
        } else {
            (concurrency * PIPELINE_BATCH) as f64 * 1000.0 / latency_ms as f64
        };
        // Whole batches only, several per partition.
        let round = PIPELINE_PARTITIONS as usize * PIPELINE_BATCH;
        let records = ((ceiling * PIPELINE_SECONDS) as usize)
            .div_ceil(round)
            .max(5)
            * round;
        let topic = format!("pipe-{latency_ms}-{concurrency}");
        broker.create_topic(&topic, PIPELINE_PARTITIONS).await;
        let ends = bench::fill(&broker, &topic, PIPELINE_PARTITIONS, records, 100).await;
        emulator.clear();
        emulator.clear_faults();
        if latency_ms > 0 {
            emulator.inject(Fault::latency(Duration::from_millis(latency_ms)));
        }
        let extra = format!(
            "[batch]\nsize = {PIPELINE_BATCH}\nlinger_ms = 5\n[sandbox]\ncache_dir = \"\"\n"
        );
        let config = bench::config(&topic, &broker, &emulator, &topic, &extra).replace(
            "[source]\n",
            &format!("[source]\nconcurrency = {concurrency}\n"),
        );
        let launched = SystemTime::now();
        let running = Running::start(&config);
        let run = tokio::time::timeout(Duration::from_secs(300), watch(&emulator, &ends, launched))
            .await
            .context("the backlog was not drained in time")?;
        running.stop().await?;
        let rate = run.middle_rate();
        let actual = real_latency[&latency_ms];
        eprintln!(
            "[L={latency_ms} ms C={concurrency}] {records} records: {rate:.0}/s of {ceiling:.0}/s"
        );
        rows.push((latency_ms, concurrency, records, rate, ceiling, actual));
    }
    println!(
        "{:>6} {:>4} {:>8} {:>10} {:>10} {:>9} {:>11} {:>13}",
        "L (ms)", "C", "records", "rec/s", "C·B/L", "achieved", "real L (ms)", "of C·B/real L"
    );
    for (latency, concurrency, records, rate, ceiling, actual) in rows {
        if latency == 0 {
            let per_call = 1000.0 * PIPELINE_BATCH as f64 / rate;
            println!(
                "{latency:>6} {concurrency:>4} {records:>8} {rate:>10.0}   \
                 ({per_call:.2} ms per call when the function takes no time)"
            );
            continue;
        }
        let actual_ms = actual.as_secs_f64() * 1000.0;
        let real_ceiling = (concurrency * PIPELINE_BATCH) as f64 * 1000.0 / actual_ms;
        println!(
            "{latency:>6} {concurrency:>4} {records:>8} {rate:>10.0} {ceiling:>10.0} {:>8.1}% \
             {actual_ms:>11.2} {:>12.1}%",
            100.0 * rate / ceiling,
            100.0 * rate / real_ceiling
        );
    }
    println!(
        "real L: what `sleep(L)` takes on the emulator's runtime, where its latency fault \
         sleeps (timer granularity, wake-up): mean of 20"
    );
    Ok(())
}

async fn memory(
    emulator_runtime: &tokio::runtime::Handle,
    fcsink: &Path,
    records: usize,
) -> Result<()> {
    let ceiling = (MEMORY_CONCURRENCY * MEMORY_BATCH) as f64 / MEMORY_LATENCY.as_secs_f64();
    println!(
        "\nmemory: {records} records of 100 B in {MEMORY_PARTITIONS} partitions, drained by the \
         fcsink process; sync FC, {} ms per call, batch {MEMORY_BATCH}, concurrency \
         {MEMORY_CONCURRENCY} (at most {ceiling:.0} records/s)",
        MEMORY_LATENCY.as_millis()
    );
    let broker = Broker::sqlite().await;
    broker.create_topic("backlog", MEMORY_PARTITIONS).await;
    let filled = Instant::now();
    let ends = bench::fill(&broker, "backlog", MEMORY_PARTITIONS, records, 100).await;
    eprintln!(
        "[memory] produced {records} records in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let emulator = start_emulator(emulator_runtime).await?;
    emulator.inject(Fault::latency(MEMORY_LATENCY));
    let dir = tempfile::tempdir()?;
    let idle = idle_rss(&broker, &emulator, fcsink, dir.path()).await?;
    println!(
        "idle (started, partitions assigned, empty topic): RSS {} MiB",
        idle >> 10
    );
    let mut rows = Vec::new();
    for buffer_mb in BUFFER_SIZES_MB {
        emulator.clear();
        let name = format!("memory-{buffer_mb}");
        let extra = format!(
            "[batch]\nsize = {MEMORY_BATCH}\nlinger_ms = 50\n[sandbox]\ncache_dir = \"\"\n"
        );
        let config = bench::config(&name, &broker, &emulator, "backlog", &extra).replace(
            "[source]\n",
            &format!("[source]\nconcurrency = {MEMORY_CONCURRENCY}\nbuffer_mb = {buffer_mb}\n"),
        );
        let config_file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_file, config)?;
        let launched = SystemTime::now();
        let mut process = Process::start(
            &fcsink.display().to_string(),
            &config_file,
            dir.path().join(format!("{name}.log")),
        );
        let pid = process.id();
        let sampler = tokio::spawn(sample_rss(pid));
        let run =
            tokio::time::timeout(Duration::from_secs(1800), watch(&emulator, &ends, launched))
                .await
                .context("the backlog was not drained in time")?;
        let status = process.terminate();
        ensure!(status.success(), "fcsink exited with {status}");
        let samples = sampler.await?;
        let peak = samples.iter().copied().max().unwrap_or(0);
        let settled = median(&samples[samples.len() / 2..]);
        eprintln!(
            "[memory buffer_mb={buffer_mb}] {:.0} records/s; RSS peak {} MiB, median of the \
             second half {} MiB",
            run.rate(),
            peak >> 10,
            settled >> 10
        );
        rows.push((buffer_mb, run.rate(), peak, settled, run.received));
    }
    println!(
        "{:>9} {:>10} {:>14} {:>16} {:>10}",
        "buffer_mb", "rec/s", "RSS peak MiB", "RSS median MiB", "received"
    );
    for (buffer_mb, rate, peak, settled, received) in rows {
        println!(
            "{buffer_mb:>9} {rate:>10.0} {:>14} {:>16} {received:>10}",
            peak >> 10,
            settled >> 10
        );
    }
    Ok(())
}

/// How long `sleep(latency)` really takes on `runtime`, where the
/// emulator's latency fault sleeps: the mean of 20.
async fn measured_sleep(runtime: &tokio::runtime::Handle, latency: Duration) -> Result<Duration> {
    Ok(runtime
        .spawn(async move {
            let started = Instant::now();
            for _ in 0..20 {
                tokio::time::sleep(latency).await;
            }
            started.elapsed() / 20
        })
        .await?)
}

/// The RSS (KiB) of an fcsink that has started and been given the
/// partitions of an empty topic: what it takes before any record.
async fn idle_rss(broker: &Broker, emulator: &Emulator, fcsink: &Path, dir: &Path) -> Result<u64> {
    broker.create_topic("idle", MEMORY_PARTITIONS).await;
    let config_file = dir.join("idle.toml");
    let extra = "[sandbox]\ncache_dir = \"\"\n";
    std::fs::write(
        &config_file,
        bench::config("idle", broker, emulator, "idle", extra),
    )?;
    let log = dir.join("idle.log");
    let mut process = Process::start(&fcsink.display().to_string(), &config_file, log.clone());
    wait_until("partitions assigned", Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move { text.contains("Partitions assigned") }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(process.id()).context("read the idle RSS")?;
    process.terminate();
    Ok(rss)
}

/// VmRSS of `pid` in KiB, if it is running.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// VmRSS of `pid` in KiB every 50 ms until the process is gone.
async fn sample_rss(pid: u32) -> Vec<u64> {
    let mut samples = Vec::new();
    while let Some(kib) = rss_kib(pid) {
        samples.push(kib);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

async fn cold_start(emulator_runtime: &tokio::runtime::Handle, fcsink: &Path) -> Result<()> {
    println!(
        "\ncold start: `fcsink run` (release) with the json-filter plugin, 3 partitions, records \
         waiting; spawn → plugin loaded and topics ready (\"Started\") → partitions assigned → \
         first invocation. The first run starts with an empty plugin cache and creates the \
         connector's topics; the others are restarts"
    );
    let broker = Broker::sqlite().await;
    broker.create_topic("start", 3).await;
    let emulator = start_emulator(emulator_runtime).await?;
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("cache");
    let filter = plugin("json-filter");
    let mut rows = Vec::new();
    for run in 0..=COLD_STARTS {
        emulator.clear();
        // A restart of the same connector finds new records waiting; the
        // first run also creates its topics and group.
        bench::fill(&broker, "start", 3, 30, 100).await;
        let name = "start";
        let extra = format!(
            "[batch]\nsize = 10\nlinger_ms = 0\n[sandbox]\ncache_dir = {:?}\n\
             [[transform]]\nplugin = {:?}\nconfig = {{ field = \"/nope\", op = \"missing\", on_invalid = \"keep\" }}\n",
            cache.display().to_string(),
            filter.display().to_string()
        );
        let config_file = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config_file,
            bench::config(name, &broker, &emulator, "start", &extra),
        )?;
        let log = dir.path().join(format!("{name}-{run}.log"));
        let spawned = Instant::now();
        let mut process = Process::start(&fcsink.display().to_string(), &config_file, log.clone());
        let (mut started, mut assigned) = (None, None);
        wait_until("a first invocation", Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if started.is_none() && text.contains("fcsink::pipeline: Started") {
                started = Some(spawned.elapsed());
            }
            if assigned.is_none() && text.contains("Partitions assigned") {
                assigned = Some(spawned.elapsed());
            }
            let invoked = !emulator.invocations().is_empty();
            async move { invoked }
        })
        .await;
        let first = spawned.elapsed();
        process.terminate();
        let label = if run == 0 { "empty cache" } else { "cached" };
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        eprintln!(
            "[cold start {run}, {label}] started {:.0} ms, assigned {:.0} ms, first invocation {:.0} ms",
            ms(started),
            ms(assigned),
            ms(Some(first))
        );
        rows.push((label, ms(started), ms(assigned), ms(Some(first))));
    }
    println!(
        "{:<12} {:>12} {:>14} {:>18}",
        "run", "started ms", "assigned ms", "first invoke ms"
    );
    for (label, started, assigned, first) in &rows {
        println!("{label:<12} {started:>12.0} {assigned:>14.0} {first:>18.0}");
    }
    let cached: Vec<u64> = rows[1..].iter().map(|r| r.3 as u64).collect();
    println!(
        "cached, first invocation: median {} ms, min {} ms, max {} ms over {COLD_STARTS} runs",
        median(&cached),
        cached.iter().min().unwrap_or(&0),
        cached.iter().max().unwrap_or(&0)
    );
    Ok(())
}
