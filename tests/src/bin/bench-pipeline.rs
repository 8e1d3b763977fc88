//! The whole pipeline's cost against the function emulator: CPU per record
//! and records per second of the `fcsink` process, of a plain Python sink
//! doing the same job (`bench/baseline.py`) and of a bare Kafka consumer
//! that only counts records (`bench/count_consumer.py`).
//!
//! ```text
//! cargo build --release -p fcsink
//! cargo run --release -p fcsink-tests --bin bench-pipeline -- [OPTIONS] [CELL...]
//!   CELL             keep cells whose label starts with it: 100B, 1KB/500 …
//!   --records N      records per cell (default 400000 for 100 B, 100000 for 1 KB)
//!   --python PATH    the venv's python (default $FCSINK_PYTHON, else .venv/bin/python)
//!   --fcsink PATH    the fcsink binary (default: `fcsink` beside this program)
//!   --no-count       skip the bare consumer
//!   --perf FILE      profile fcsink's steady state into FILE (perf record -e cpu-clock)
//! ```
//!
//! `scripts/bench-pipeline.sh` does the set-up, builds both and runs it.
//!
//! # Method
//!
//! Each cell (record size × batch size, async invocation) gets a fresh Tansu
//! broker with SQLite storage and a fresh, quiet emulator, then runs three
//! child processes one after the other, each in its own consumer group:
//!
//! 1. a topic of 6 partitions is filled with N records, round-robin, each
//!    with a key of about 10 bytes and an ASCII value of the cell's size;
//! 2. the `fcsink` binary (`run --until-end`, built-in `passthrough`,
//!    concurrency 6, linger 50 ms, async FC) runs until it stops by itself;
//! 3. the emulator's record is cleared and the Python sink runs with the
//!    same batching until the emulator again holds every record;
//! 4. the bare consumer (confluent-kafka, as the Python sink uses) reads the
//!    N records and only counts them: the floor under any sink's cost here.
//!
//! Both sinks send at most [`MAX_REQUEST_BYTES`] per request, and the
//! emulator accepts async requests that large (answering 202 at once): FC's
//! 128 KiB async limit would split the 1-KB × 500 batches (about 580 KB)
//! into five requests.
//!
//! A sink is watched through the emulator's record (read every 10 ms; every
//! `(partition, offset)` is ticked off once). **CPU** is the child's user +
//! system time over all its threads (`utime + stime` in `/proc/<pid>/stat`,
//! in clock ticks of 10 ms), read when the watcher sees the first request
//! and when it sees the request that completes the set; the bare consumer's
//! is read when it prints that it has its first batch and when it has
//! counted the last record. CPU per record is the CPU between the two
//! readings ÷ the records that arrived after the first one: the steady
//! state. What comes before (start-up: plugin compilation and group join
//! for fcsink, interpreter, imports and group join for Python) is shown
//! apart, and what comes after (fcsink waiting for its commits to show,
//! shutdown) is left out. Only the child's CPU is counted: the emulator and
//! the watcher run in this process (the emulator on its own tokio runtime)
//! and the broker in Tansu's, all on the same cores.
//!
//! **Records/s** is records after the first request ÷ time from the first
//! request to the one that completes the set, using the arrival times the
//! emulator stamps; the bare consumer's is its own, from its first batch to
//! its last record.
//!
//! **Profile.** With `--perf FILE`, `perf record -e cpu-clock --call-graph
//! dwarf` attaches to the fcsink child at the first request and follows it
//! to its exit: the steady state and the shutdown, not the start-up. The
//! sampling costs the child CPU, so take the table from a run without it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use fc_emulator::Emulator;
use fcsink_tests::bench::{self, Moment, Run, watch_with};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, KEY_ID, KEY_SECRET};
use fcsink_tests::plugins::repo_root;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 6;
const CONCURRENCY: usize = 6;
const LINGER_MS: u64 = 50;
/// The request size limit of both sinks, and the emulator's async limit.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Label, value size and records per cell.
const RECORD_SIZES: [(&str, usize, usize); 2] = [("100B", 100, 400_000), ("1KB", 1024, 100_000)];
const BATCH_SIZES: [usize; 2] = [20, 500];
/// Longest one child may take to deliver (or count) a cell's records.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a child may take to exit once its work is done.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// One benchmark cell.
struct Cell {
    label: String,
    value_size: usize,
    batch_size: usize,
    records: usize,
}

/// What one child process did in a cell.
struct Measured {
    /// Seconds from launch to the first request (or counted batch).
    startup_s: f64,
    /// Steady records per second.
    rate: f64,
    cpu: Cpu,
}

/// A child's CPU time (user + system) up to its first delivery, and from
/// there to its last.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    startup: Duration,
    steady: Duration,
    /// Records delivered (or counted) between the two readings.
    steady_records: usize,
}

impl Cpu {
    /// Steady-state CPU microseconds per record.
    fn per_record_us(&self) -> f64 {
        self.steady.as_secs_f64() * 1e6 / self.steady_records.max(1) as f64
    }
}

struct Row {
    label: String,
    records: usize,
    fcsink: Measured,
    python: Measured,
    /// What the Python sink printed about itself.
    python_says: String,
    count: Option<Measured>,
}

struct Options {
    records: Option<usize>,
    python: PathBuf,
    fcsink: PathBuf,
    count: bool,
    /// Where to write a profile of fcsink's steady state.
    perf: Option<PathBuf>,
    filters: Vec<String>,
}

fn main() -> Result<()> {
    let options = parse_args()?;
    let cells = cells(&options);
    ensure!(!cells.is_empty(), "no cell matches {:?}", options.filters);
    ensure!(
        options.fcsink.exists(),
        "{} is missing: cargo build --release -p fcsink (or pass --fcsink PATH)",
        options.fcsink.display()
    );
    bench::init_logging();
    print_setting(&options);
    // The emulator gets its own threads, so that the watcher cannot slow
    // its answers down.
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("emulator")
        .enable_all()
        .build()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for cell in &cells {
        let row = runtime.block_on(run_cell(cell, &options, emulator_runtime.handle()))?;
        print_row_detail(&row);
        rows.push(row);
    }
    print_tables(&rows);
    Ok(())
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        records: None,
        python: std::env::var_os("FCSINK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/python")),
        fcsink: std::env::current_exe()?.with_file_name("fcsink"),
        count: true,
        perf: None,
        filters: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--records" => {
                let n = args.next().context("--records needs a number")?;
                options.records = Some(n.parse().context("--records needs a number")?);
            }
            "--python" => options.python = args.next().context("--python needs a path")?.into(),
            "--fcsink" => options.fcsink = args.next().context("--fcsink needs a path")?.into(),
            "--no-count" => options.count = false,
            "--perf" => options.perf = Some(args.next().context("--perf needs a file")?.into()),
            // `cargo bench` style runners pass this; nothing to do.
            "--bench" => {}
            _ if arg.starts_with("--") => bail!("unknown option {arg}"),
            _ => options.filters.push(arg),
        }
    }
    Ok(options)
}

fn cells(options: &Options) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (name, value_size, records) in RECORD_SIZES {
        for batch_size in BATCH_SIZES {
            let label = format!("{name}/{batch_size}");
            if options.filters.is_empty() || options.filters.iter().any(|f| label.starts_with(f)) {
                cells.push(Cell {
                    label,
                    value_size,
                    batch_size,
                    records: options.records.unwrap_or(records),
                });
            }
        }
    }
    cells
}

fn print_setting(options: &Options) {
    println!("{}", bench::machine());
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(repo_root())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    println!("commit {commit}; fcsink {}", options.fcsink.display());
    println!(
        "pipeline: async FC 2.0, passthrough, concurrency {CONCURRENCY}, linger {LINGER_MS} ms, \
         {PARTITIONS} partitions, max request {} KiB on both sides (emulator async limit too); \
         CPU clock tick {} ms",
        MAX_REQUEST_BYTES / 1024,
        1000 / bench::clock_ticks().max(1)
    );
}

async fn run_cell(
    cell: &Cell,
    options: &Options,
    emulator_runtime: &tokio::runtime::Handle,
) -> Result<Row> {
    eprintln!("[{}] starting Tansu and the emulator", cell.label);
    let broker = Broker::sqlite().await;
    broker.create_topic(TOPIC, PARTITIONS).await;
    let emulator = emulator_runtime
        .spawn(connector::emulator(|config| {
            config.async_limit = MAX_REQUEST_BYTES;
        }))
        .await?;

    let produced = Instant::now();
    let ends = bench::fill(&broker, TOPIC, PARTITIONS, cell.records, cell.value_size).await;
    eprintln!(
        "[{}] produced {} records in {:.1} s",
        cell.label,
        cell.records,
        produced.elapsed().as_secs_f64()
    );

    eprintln!("[{}] fcsink", cell.label);
    let fcsink = run_fcsink(cell, options, &broker, &emulator, &ends).await?;

    eprintln!("[{}] Python baseline", cell.label);
    emulator.clear();
    let (python, python_says) = run_python(cell, options, &broker, &emulator, &ends).await?;

    let count = if options.count {
        eprintln!("[{}] bare consumer", cell.label);
        Some(run_count(cell, options, &broker).await?)
    } else {
        None
    };
    Ok(Row {
        label: cell.label.clone(),
        records: cell.records,
        fcsink,
        python,
        python_says,
        count,
    })
}

fn fcsink_config(cell: &Cell, broker: &Broker, emulator: &Emulator) -> String {
    format!(
        r#"
name = "bench"

[source]
bootstrap_servers = "{bootstrap}"
topics = ["{TOPIC}"]
concurrency = {CONCURRENCY}

[batch]
size = {batch_size}
linger_ms = {LINGER_MS}
max_request_bytes = {MAX_REQUEST_BYTES}

[sandbox]
cache_dir = ""

[target.fc]
endpoint = "{endpoint}"
service = "bench"
function = "sink"
send_mode = "async"
timeout_ms = 10000
"#,
        bootstrap = broker.bootstrap(),
        batch_size = cell.batch_size,
        endpoint = emulator.url(),
    )
}

/// Runs the `fcsink` binary with `--until-end` until it stops by itself.
async fn run_fcsink(
    cell: &Cell,
    options: &Options,
    broker: &Broker,
    emulator: &Emulator,
    ends: &[i64],
) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("fcsink.toml");
    std::fs::write(&config, fcsink_config(cell, broker, emulator))?;
    let log = dir.path().join("fcsink.log");
    let launched = SystemTime::now();
    let mut child = Command::new(&options.fcsink)
        .args(["run", "--until-end", "--config"])
        .arg(&config)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", KEY_SECRET)
        .env(
            "FCSINK_LOG",
            std::env::var("FCSINK_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", options.fcsink.display()))?;
    let profile = options.perf.as_deref();
    let delivered = watch_child(&child, emulator, ends, launched, cell.records, profile).await;
    let status = tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await;
    let tail = || log_tail(&log);
    let (run, cpu, perf) =
        delivered.with_context(|| format!("fcsink; its log ends:\n{}", tail()))?;
    match status {
        Ok(Ok(status)) if status.success() => {}
        Ok(status) => bail!("fcsink failed ({status:?}); its log ends:\n{}", tail()),
        Err(_) => bail!("fcsink --until-end did not stop; its log ends:\n{}", tail()),
    }
    if let Some(mut perf) = perf {
        // perf stops by itself when the process it follows has exited.
        let status = tokio::task::spawn_blocking(move || perf.wait()).await??;
        ensure!(status.success(), "perf record failed: {status}");
    }
    Ok(Measured {
        startup_s: run.startup(),
        rate: run.rate(),
        cpu,
    })
}

/// The last lines of a child's log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Runs `bench/baseline.py` in its own group until the emulator holds every record.
async fn run_python(
    cell: &Cell,
    options: &Options,
    broker: &Broker,
    emulator: &Emulator,
    ends: &[i64],
) -> Result<(Measured, String)> {
    let script = repo_root().join("bench/baseline.py");
    let launched = SystemTime::now();
    let child = Command::new(&options.python)
        .arg(&script)
        .args(["--bootstrap", &broker.bootstrap()])
        .args(["--topic", TOPIC, "--group", "bench-python"])
        .args(["--endpoint", &emulator.url()])
        .args(["--service", "bench", "--function", "sink"])
        .args(["--batch-size", &cell.batch_size.to_string()])
        .args(["--linger-ms", &LINGER_MS.to_string()])
        .args(["--max-bytes", &MAX_REQUEST_BYTES.to_string()])
        .args(["--records", &cell.records.to_string()])
        .env("FC_ACCESS_KEY_ID", KEY_ID)
        .env("FC_ACCESS_KEY_SECRET", KEY_SECRET)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", options.python.display()))?;
    let (run, cpu, _) = watch_child(&child, emulator, ends, launched, cell.records, None)
        .await
        .context("the Python sink")?;
    let output = tokio::time::timeout(EXIT_TIMEOUT, child.wait_with_output())
        .await
        .context("the Python sink did not exit")??;
    ensure!(
        output.status.success(),
        "the Python sink failed: {}",
        output.status
    );
    let says = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let measured = Measured {
        startup_s: run.startup(),
        rate: run.rate(),
        cpu,
    };
    Ok((measured, says))
}

/// Watches the emulator until it holds every record, reading `child`'s CPU
/// time at the first request and at the last; with `profile`, starts
/// `perf record` on the child at the first request and returns it.
async fn watch_child(
    child: &Child,
    emulator: &Emulator,
    ends: &[i64],
    launched: SystemTime,
    records: usize,
    profile: Option<&Path>,
) -> Result<(Run, Cpu, Option<std::process::Child>)> {
    let pid = child.id().context("the child has already been reaped")?;
    let (mut first, mut cpu, mut perf) = (None, None, None);
    let mut sample = |moment| {
        let now = bench::cpu_time(pid);
        match moment {
            Moment::First { seen } => {
                first = now.map(|at| (at, seen));
                perf = profile.map(|out| start_perf(pid, out));
            }
            Moment::Done => {
                cpu = first.zip(now).map(|((at_first, seen), at_done)| Cpu {
                    startup: at_first,
                    steady: at_done.saturating_sub(at_first),
                    steady_records: records - seen,
                })
            }
        }
    };
    let run = {
        let watching = tokio::time::timeout(
            RUN_TIMEOUT,
            watch_with(emulator, ends, launched, &mut sample),
        );
        tokio::pin!(watching);
        tokio::select! {
            run = &mut watching => run.context("did not deliver every record in time")?,
            () = exited(pid) => {
                // The last requests may still be on their way to the watcher;
                // the child is not reaped yet, so its CPU time can still be read.
                match tokio::time::timeout(Duration::from_secs(2), &mut watching).await {
                    Ok(run) => run?,
                    Err(_) => bail!("exited before delivering every record"),
                }
            }
        }
    };
    let cpu = cpu.with_context(|| format!("could not read the CPU time of process {pid}"))?;
    let perf = perf.transpose()?;
    Ok((run, cpu, perf))
}

/// `perf record` on process `pid` (all its threads) until it exits.
fn start_perf(pid: u32, out: &Path) -> Result<std::process::Child> {
    std::process::Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "999",
            "--call-graph",
            "dwarf,16384",
        ])
        .args(["-p", &pid.to_string(), "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .context("start perf (apt-get install linux-perf)")
}

/// Resolves once process `pid` (a child not yet waited for) has exited.
async fn exited(pid: u32) {
    while !bench::has_exited(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bare consumer's last line.
#[derive(Deserialize)]
struct Counted {
    records: usize,
    records_per_s: f64,
}

/// Runs `bench/count_consumer.py` in its own group until it has counted
/// every record, reading its CPU time when it says it has its first batch
/// and when it has the last.
async fn run_count(cell: &Cell, options: &Options, broker: &Broker) -> Result<Measured> {
    let script = repo_root().join("bench/count_consumer.py");
    let launched = Instant::now();
    let mut child = Command::new(&options.python)
        .arg(&script)
        .args(["--bootstrap", &broker.bootstrap()])
        .args(["--topic", TOPIC, "--group", "bench-count"])
        .args(["--records", &cell.records.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", options.python.display()))?;
    let pid = child.id().context("the bare consumer has already gone")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let read = async {
        let first = lines
            .next_line()
            .await?
            .context("the bare consumer said nothing")?;
        let at_first = bench::cpu_time(pid).context("its CPU time")?;
        let startup_s = launched.elapsed().as_secs_f64();
        let seen: usize = first
            .strip_prefix("first ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("the bare consumer said {first:?}"))?;
        let last = lines
            .next_line()
            .await?
            .context("the bare consumer stopped")?;
        let at_done = bench::cpu_time(pid).context("its CPU time")?;
        let counted: Counted = serde_json::from_str(&last)
            .with_context(|| format!("the bare consumer said {last:?}"))?;
        ensure!(counted.records == cell.records, "counted {last}");
        anyhow::Ok(Measured {
            startup_s,
            rate: counted.records_per_s,
            cpu: Cpu {
                startup: at_first,
                steady: at_done.saturating_sub(at_first),
                steady_records: cell.records - seen,
            },
        })
    };
    let measured = tokio::time::timeout(RUN_TIMEOUT, read)
        .await
        .context("the bare consumer did not count every record in time")??;
    // Closing its stdin lets it close the consumer and exit.
    drop(child.stdin.take());
    let status = tokio::time::timeout(EXIT_TIMEOUT, child.wait())
        .await
        .context("the bare consumer did not exit")??;
    ensure!(status.success(), "the bare consumer failed: {status}");
    Ok(measured)
}

fn print_row_detail(row: &Row) {
    let mut children = vec![("fcsink", &row.fcsink), ("python", &row.python)];
    children.extend(row.count.as_ref().map(|count| ("count", count)));
    for (who, measured) in children {
        let cpu = &measured.cpu;
        eprintln!(
            "[{}] {who}: {:.0} records/s, {:.2} µs CPU/record ({:.2} s for {} records), \
             start-up {:.2} s with {:.2} s CPU",
            row.label,
            measured.rate,
            cpu.per_record_us(),
            cpu.steady.as_secs_f64(),
            cpu.steady_records,
            measured.startup_s,
            cpu.startup.as_secs_f64(),
        );
    }
    eprintln!("[{}] python says: {}", row.label, row.python_says);
}

fn print_tables(rows: &[Row]) {
    let dash = || "-".to_string();
    println!();
    println!(
        "{:<9} {:>8} {:>13} {:>13} {:>13} {:>10} {:>10}",
        "cell", "records", "fcsink rec/s", "Python rec/s", "count rec/s", "fc/Python", "fc/count"
    );
    for row in rows {
        let count = row.count.as_ref();
        println!(
            "{:<9} {:>8} {:>13.0} {:>13.0} {:>13} {:>10.2} {:>10}",
            row.label,
            row.records,
            row.fcsink.rate,
            row.python.rate,
            count.map_or_else(dash, |c| format!("{:.0}", c.rate)),
            row.fcsink.rate / row.python.rate,
            count.map_or_else(dash, |c| format!(
                "{:.0}%",
                100.0 * row.fcsink.rate / c.rate
            )),
        );
    }
    println!();
    println!(
        "{:<9} {:>10} {:>10} {:>10} {:>12} {:>13} {:>22} {:>17}",
        "cell",
        "fcsink µs",
        "Python µs",
        "count µs",
        "fc ÷ count",
        "Python ÷ fc",
        "start-up CPU fc/py/cnt",
        "start-up fc/py/cnt"
    );
    for row in rows {
        let (fc, py) = (
            row.fcsink.cpu.per_record_us(),
            row.python.cpu.per_record_us(),
        );
        let count = row.count.as_ref();
        let count_us = count.map(|c| c.cpu.per_record_us());
        let secs = |m: Option<&Measured>, f: fn(&Measured) -> f64| {
            m.map_or_else(dash, |m| format!("{:.2}", f(m)))
        };
        let cpu_s = |m: &Measured| m.cpu.startup.as_secs_f64();
        let wall_s = |m: &Measured| m.startup_s;
        println!(
            "{:<9} {:>10.2} {:>10.2} {:>10} {:>12} {:>13.1} {:>22} {:>17}",
            row.label,
            fc,
            py,
            count_us.map_or_else(dash, |c| format!("{c:.2}")),
            count_us.map_or_else(dash, |c| format!("{:.2}×", fc / c)),
            py / fc,
            format!(
                "{:.2}/{:.2}/{} s",
                cpu_s(&row.fcsink),
                cpu_s(&row.python),
                secs(count, cpu_s)
            ),
            format!(
                "{:.1}/{:.1}/{} s",
                wall_s(&row.fcsink),
                wall_s(&row.python),
                secs(count, wall_s)
            ),
        );
    }
    println!();
    println!(
        "records/s: steady state, first request to last at the emulator (async, batch = cell's \
         second number); count: the bare consumer, first batch to last record.\n\
         µs: CPU (user + system, all threads) per record of each child process over the same \
         span; start-up: CPU and wall time from launch to the first request (count: first batch)."
    );
}
