//! The whole pipeline's throughput against the function emulator, beside a
//! plain Python sink doing the same job (`bench/baseline.py`).
//!
//! ```text
//! cargo run --release -p fcsink-tests --bin bench-pipeline -- [OPTIONS] [CELL...]
//!   CELL             keep cells whose label starts with it: 100B, 1KB/500 …
//!   --records N      records per cell (default 200000 for 100 B, 100000 for 1 KB)
//!   --python PATH    the venv's python (default $FCSINK_PYTHON, else .venv/bin/python)
//!   --no-ceiling     skip the count-only Kafka consumer
//! ```
//!
//! `scripts/bench-pipeline.sh` does the set-up and runs it.
//!
//! # Method
//!
//! Each cell (record size × batch size, async invocation) gets a fresh Tansu
//! broker with SQLite storage and a fresh, quiet emulator, then:
//!
//! 1. a topic of 6 partitions is filled with N records, round-robin, each
//!    with a key of about 10 bytes and an ASCII value of the cell's size;
//! 2. fcsink runs in this process (built-in `passthrough`, concurrency 6,
//!    linger 50 ms) until the emulator holds every record, then stops;
//! 3. the emulator's record is cleared and the Python sink runs, in a fresh
//!    group and with the same batching, until the emulator again holds every
//!    record;
//! 4. optionally, a bare librdkafka consumer reads the N records and only
//!    counts them: the most any sink could read from this broker here.
//!
//! Both sinks send at most [`MAX_REQUEST_BYTES`] per request, and the
//! emulator accepts async requests that large: FC's 128 KiB async limit would
//! split the 1-KB × 500 batches (about 580 KB) into five requests.
//!
//! A run is watched through the emulator's record (read incrementally; every
//! `(partition, offset)` is ticked off once), using the arrival times the
//! emulator stamps. The rate is records after the first request ÷ time from
//! the first request to the one that completes the set: the steady state,
//! without start-up. Start-up (launch to first request: plugin compilation
//! and group join for fcsink, interpreter, imports and group join for Python)
//! is shown apart. The emulator runs on its own tokio runtime, so fcsink's
//! runtime has its worker threads to itself, as in the `fcsink` process; the
//! broker, the emulator and both sinks still share this machine's cores.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use fc_emulator::Emulator;
use fcsink_tests::bench::{self, Run, watch};
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, KEY_ID, KEY_SECRET, Running};
use fcsink_tests::plugins::repo_root;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 6;
const CONCURRENCY: usize = 6;
const LINGER_MS: u64 = 50;
/// The request size limit of both sinks, and the emulator's async limit.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Label, value size and records per cell.
const RECORD_SIZES: [(&str, usize, usize); 2] = [("100B", 100, 200_000), ("1KB", 1024, 100_000)];
const BATCH_SIZES: [usize; 2] = [20, 500];
/// Longest one sink may take to deliver a cell's records.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One benchmark cell.
struct Cell {
    label: String,
    value_size: usize,
    batch_size: usize,
    records: usize,
}

struct Row {
    label: String,
    records: usize,
    fcsink: Run,
    python: Run,
    /// What the Python sink printed about itself.
    python_says: String,
    ceiling: Option<f64>,
}

struct Options {
    records: Option<usize>,
    python: PathBuf,
    ceiling: bool,
    filters: Vec<String>,
}

fn main() -> Result<()> {
    let options = parse_args()?;
    let cells = cells(&options);
    ensure!(!cells.is_empty(), "no cell matches {:?}", options.filters);
    bench::init_logging();
    print_machine();
    // The emulator gets its own threads; fcsink, the watcher and the
    // Kafka helpers run on the main runtime, like the fcsink process.
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
    print_table(&rows);
    Ok(())
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        records: None,
        python: std::env::var_os("FCSINK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/python")),
        ceiling: true,
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
            "--no-ceiling" => options.ceiling = false,
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

fn print_machine() {
    println!("{}", bench::machine());
    println!(
        "pipeline: async FC 2.0, passthrough, concurrency {CONCURRENCY}, linger {LINGER_MS} ms, \
         {PARTITIONS} partitions, max request {} KiB on both sides (emulator async limit too)",
        MAX_REQUEST_BYTES / 1024
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
    let launched = SystemTime::now();
    let running = Running::start(&fcsink_config(cell, &broker, &emulator));
    let fcsink = tokio::time::timeout(RUN_TIMEOUT, watch(&emulator, &ends, launched))
        .await
        .context("fcsink did not deliver every record in time")?;
    running.stop().await?;

    eprintln!("[{}] Python baseline", cell.label);
    emulator.clear();
    let (python, python_says) = run_python(cell, options, &broker, &emulator, &ends).await?;

    let ceiling = if options.ceiling {
        eprintln!("[{}] count-only consumer", cell.label);
        let bootstrap = broker.bootstrap();
        let n = cell.records;
        Some(tokio::task::spawn_blocking(move || count_only(&bootstrap, n)).await??)
    } else {
        None
    };
    Ok(Row {
        label: cell.label.clone(),
        records: cell.records,
        fcsink,
        python,
        python_says,
        ceiling,
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

/// Runs `bench/baseline.py` in its own group until the emulator holds every record.
async fn run_python(
    cell: &Cell,
    options: &Options,
    broker: &Broker,
    emulator: &Emulator,
    ends: &[i64],
) -> Result<(Run, String)> {
    let script = repo_root().join("bench/baseline.py");
    let launched = SystemTime::now();
    let mut child = tokio::process::Command::new(&options.python)
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
    let run = tokio::select! {
        run = tokio::time::timeout(RUN_TIMEOUT, watch(emulator, ends, launched)) => {
            run.context("the Python sink did not deliver every record in time")?
        }
        status = child.wait() => bail!("the Python sink exited early: {}", status?),
    };
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("the Python sink did not exit")??;
    ensure!(
        output.status.success(),
        "the Python sink failed: {}",
        output.status
    );
    let says = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok((run, says))
}

/// A bare consumer that reads `n` records and counts them; records per
/// second from its first record to its last.
fn count_only(bootstrap: &str, n: usize) -> Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-count-only")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(TOPIC, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + RUN_TIMEOUT;
    let (mut count, mut first) = (0, None);
    while count < n {
        ensure!(Instant::now() < deadline, "count-only read {count} of {n}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    let first = first.expect("at least one record was read");
    Ok((n - 1) as f64 / first.elapsed().as_secs_f64().max(1e-6))
}

fn print_row_detail(row: &Row) {
    for (who, run) in [("fcsink", &row.fcsink), ("python", &row.python)] {
        eprintln!(
            "[{}] {who}: {:.0} records/s, start-up {:.2} s, {} received for {} records",
            row.label,
            run.rate(),
            run.startup(),
            run.received,
            run.distinct
        );
    }
    eprintln!("[{}] python says: {}", row.label, row.python_says);
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:>8} {:>14} {:>14} {:>7} {:>16} {:>15}",
        "cell",
        "records",
        "fcsink rec/s",
        "Python rec/s",
        "ratio",
        "start-up fc/py",
        "count-only rec/s"
    );
    for row in rows {
        let ceiling = row
            .ceiling
            .map_or_else(|| "-".to_string(), |c| format!("{c:.0}"));
        println!(
            "{:<9} {:>8} {:>14.0} {:>14.0} {:>7.2} {:>16} {:>15}",
            row.label,
            row.records,
            row.fcsink.rate(),
            row.python.rate(),
            row.fcsink.rate() / row.python.rate(),
            format!(
                "{:.1} s / {:.1} s",
                row.fcsink.startup(),
                row.python.startup()
            ),
            ceiling
        );
    }
    println!();
    println!(
        "records/s: steady state, first request to last at the emulator (async, batch = cell's \
         second number); ratio = fcsink / Python."
    );
}
