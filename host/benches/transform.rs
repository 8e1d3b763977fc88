//! What the transform stage costs per record and per batch: the `passthrough`
//! and `json-filter` plugins through Wasm, each beside the same logic run
//! natively in this process, for batches of 1, 20 and 500 records with values
//! of 100 B and 10 KB.
//!
//! Run it with `cargo bench -p fcsink --bench transform`; it prints a table.
//! Arguments after `--` keep only the cells whose `plugin/value/batch` label
//! starts with one of them: `-- passthrough` or `-- passthrough/100B/20`.
//!
//! # Method
//!
//! `Chain::run` consumes its batch. The copies it consumes are made, and its
//! results dropped, outside the timed part: a chunk of clones (at most
//! `CHUNK_BYTES`) is prepared, then only the runs over it are timed. So the
//! Wasm and native figures hold no clone; the `clone` column shows what one
//! clone-and-drop of the batch costs, for comparison (the worker keeps such a
//! copy of every batch for the dead-letter topic). Each cell is warmed up,
//! then timed in `SAMPLES` samples of `SAMPLE_TIME` of timed work each (or
//! `SAMPLE_WALL` of wall time, when cloning dwarfs the work); the median is
//! reported, and `spread` is (slowest − fastest) / median of the Wasm
//! samples, a hint of how noisy the machine was.
//!
//! The native path does what the chain does around a plugin call (the
//! `origins` vector, one outcome per record, records moved into a new
//! `Transformed`) with the plugin logic as an ordinary Rust call. The native
//! json-filter is a re-implementation of the plugin's `equals` predicate with
//! the host's `serde_json`: linking the plugin crate would turn on
//! `arbitrary_precision` and `preserve_order` in every test and bench build
//! of the host (Cargo unifies features), changing how the host's own tests
//! parse and print JSON and forcing a second build of wasmtime.

use std::hint::black_box;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use fcsink::transform::{Chain, Limits, Outcome, PluginSpec, Record, Runtime, Transformed};

const BATCH_SIZES: [usize; 3] = [1, 20, 500];
const VALUE_SIZES: [usize; 2] = [100, 10 * 1024];
const WARMUP: Duration = Duration::from_millis(100);
const SAMPLES: usize = 5;
const SAMPLE_TIME: Duration = Duration::from_millis(120);
const SAMPLE_WALL: Duration = Duration::from_millis(400);
/// Most bytes of batch clones prepared at once.
const CHUNK_BYTES: usize = 32 << 20;
/// Most batch clones prepared at once.
const MAX_CHUNK: usize = 4096;
/// The product's goal: passthrough adds less than this per record at batch
/// size 20 with 100-B values.
const GOAL_NS_PER_RECORD: f64 = 1_000.0;

/// json-filter's configuration: keeps records whose `status` is `ok`.
const FILTER_CONFIG: [(&str, &str); 3] = [("field", "status"), ("op", "equals"), ("value", "ok")];

fn main() -> anyhow::Result<()> {
    // Cargo passes `--bench`; anything else selects cells.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    print_machine();

    let runtime = Runtime::new(Limits::default(), None)?;
    let passthrough = runtime.load(&PluginSpec::resolve("passthrough", vec![]))?;
    let filter_config = FILTER_CONFIG
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let filter_path = json_filter_wasm()?;
    let json_filter = runtime.load(&PluginSpec::resolve(
        &filter_path.to_string_lossy(),
        filter_config,
    ))?;
    let mut chains = [
        ("passthrough", Chain::new(&[passthrough])),
        ("json-filter", Chain::new(&[json_filter])),
    ];
    let native_filter = NativeJsonFilter {
        pointer: "/status".into(),
        value: "ok".into(),
    };

    println!(
        "Each cell: {} ms warm-up, then the median of {SAMPLES} samples of {} ms of timed work \
         (or {} ms of wall time). Wasm and native exclude the clone.",
        WARMUP.as_millis(),
        SAMPLE_TIME.as_millis(),
        SAMPLE_WALL.as_millis()
    );
    println!();
    println!(
        "{:<12} {:>6} {:>5} | {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6}",
        "plugin",
        "value",
        "batch",
        "clone",
        "wasm",
        "native",
        "added",
        "wasm",
        "native",
        "added",
        "spread"
    );
    println!(
        "{:<12} {:>6} {:>5} | {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>6}",
        "", "", "", "ns/rec", "ns/rec", "ns/rec", "ns/rec", "µs/batch", "µs/batch", "µs/batch", ""
    );

    let mut goal = None;
    for (name, chain) in &mut chains {
        let name: &str = name;
        for value_size in VALUE_SIZES {
            for batch_size in BATCH_SIZES {
                let label = format!("{name}/{}/{batch_size}", human_size(value_size));
                let label = label.replace(' ', "");
                if !only.is_empty() && !only.iter().any(|o| label.starts_with(o.as_str())) {
                    continue;
                }
                let batch = make_batch(batch_size, value_size);
                let native_plugin = |records: &[Record]| -> Vec<Outcome> {
                    match name {
                        "passthrough" => records.iter().map(|_| Outcome::Keep).collect(),
                        _ => records.iter().map(|r| native_filter.outcome(r)).collect(),
                    }
                };
                // Both paths must agree before their times mean anything.
                let wasm_out = chain.run(batch.clone())?;
                assert_eq!(wasm_out, run_native(batch.clone(), native_plugin, name));

                let clone = measure_clone(&batch);
                let wasm = measure(&batch, |batch| {
                    chain.run(batch).expect("the plugin ran before")
                });
                let native = measure(&batch, |batch| run_native(batch, native_plugin, name));

                let n = batch_size as f64;
                let wasm_ns = wasm.median;
                let native_ns = native.median;
                let added_ns = wasm_ns - native_ns;
                println!(
                    "{:<12} {:>6} {:>5} | {:>7.0} | {:>9.0} {:>9.0} {:>9.0} | {:>9.2} {:>9.2} {:>9.2} | {:>5.0}%",
                    name,
                    human_size(value_size),
                    batch_size,
                    clone / n,
                    wasm_ns / n,
                    native_ns / n,
                    added_ns / n,
                    wasm_ns / 1e3,
                    native_ns / 1e3,
                    added_ns / 1e3,
                    wasm.spread() * 100.0
                );
                if name == "passthrough" && value_size == 100 && batch_size == 20 {
                    goal = Some(added_ns / n);
                }
            }
        }
    }

    if let Some(added) = goal {
        let verdict = if added < GOAL_NS_PER_RECORD {
            "met"
        } else {
            "MISSED"
        };
        println!();
        println!(
            "Goal (passthrough adds < {GOAL_NS_PER_RECORD:.0} ns/record at batch 20, 100 B): \
             {added:.0} ns/record, {verdict}."
        );
    }
    Ok(())
}

/// Prints the CPU count (as `nproc` counts), the CPU model and the load.
fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .filter(|line| line.starts_with("model name"))
        .find_map(|line| line.split_once(':'))
        .map_or("unknown", |(_, model)| model.trim());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("fcsink transform benchmark");
    println!(
        "Machine: nproc {cpus}, CPU {model}, load average {}",
        load.join(" ")
    );
}

/// Timings of one call, in nanoseconds.
struct Timing {
    median: f64,
    min: f64,
    max: f64,
}

impl Timing {
    fn spread(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// Times `run` on fresh clones of `batch`, in nanoseconds per call. The
/// clones are made, and the results dropped, outside the timed part.
fn measure(batch: &[Record], mut run: impl FnMut(Vec<Record>) -> Transformed) -> Timing {
    let chunk = (CHUNK_BYTES / batch_bytes(batch)).clamp(1, MAX_CHUNK);
    let mut inputs: Vec<Vec<Record>> = Vec::with_capacity(chunk);
    let mut outputs: Vec<Transformed> = Vec::with_capacity(chunk);
    let mut sample = |timed: Duration, wall: Duration| {
        let wall_start = Instant::now();
        let mut spent = Duration::ZERO;
        let mut calls = 0_u32;
        while spent < timed && wall_start.elapsed() < wall {
            inputs.extend((0..chunk).map(|_| batch.to_vec()));
            let start = Instant::now();
            for input in inputs.drain(..) {
                outputs.push(black_box(run(input)));
            }
            spent += start.elapsed();
            calls += u32::try_from(chunk).expect("small chunk");
            outputs.clear();
        }
        spent.as_nanos() as f64 / f64::from(calls)
    };
    sample(WARMUP, WARMUP * 4);
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| sample(SAMPLE_TIME, SAMPLE_WALL))
        .collect();
    samples.sort_by(f64::total_cmp);
    Timing {
        median: samples[SAMPLES / 2],
        min: samples[0],
        max: samples[SAMPLES - 1],
    }
}

/// Nanoseconds to clone `batch` and drop the clone (median of `SAMPLES`).
fn measure_clone(batch: &[Record]) -> f64 {
    let start = Instant::now();
    let mut calls = 0_u32;
    while start.elapsed() < WARMUP {
        drop(black_box(batch.to_vec()));
        calls += 1;
    }
    let calls = calls.max(1);
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                drop(black_box(batch.to_vec()));
            }
            start.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

/// Roughly what one clone of `batch` occupies, to size the chunks of clones.
fn batch_bytes(batch: &[Record]) -> usize {
    let payload: usize = batch
        .iter()
        .map(|r| {
            r.topic.len()
                + r.key.as_ref().map_or(0, Vec::len)
                + r.value.as_ref().map_or(0, Vec::len)
        })
        .sum();
    (payload + std::mem::size_of_val(batch)).max(1)
}

/// `size` records whose values are JSON objects of exactly `value_size`
/// bytes; every other record has `"status":"ok"`, so json-filter keeps half
/// (a batch of one keeps its record).
fn make_batch(size: usize, value_size: usize) -> Vec<Record> {
    (0..size)
        .map(|i| {
            let offset = i64::try_from(i).expect("small batch");
            let status = if i % 2 == 0 { "ok" } else { "failed" };
            let head = format!(r#"{{"id":{offset},"status":"{status}","pad":""#);
            let tail = r#""}"#;
            let pad = value_size - head.len() - tail.len();
            let value = format!("{head}{}{tail}", "x".repeat(pad));
            assert_eq!(value.len(), value_size);
            Record {
                topic: "orders".into(),
                partition: 0,
                offset,
                timestamp: 1_700_000_000_000 + offset,
                key: Some(format!("order-{offset}").into_bytes()),
                value: Some(value.into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect()
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// What `Chain::run` does around one plugin, with `plugin` called natively:
/// number the records, get one outcome each, apply them.
fn run_native(
    batch: Vec<Record>,
    plugin: impl FnOnce(&[Record]) -> Vec<Outcome>,
    name: &str,
) -> Transformed {
    let input = Transformed::from_batch(batch);
    let outcomes = plugin(&input.records);
    input.apply(outcomes, name)
}

/// json-filter's `equals` op, natively: keep the record when the field is a
/// JSON string equal to `value` or a scalar whose JSON text is `value`;
/// a value that is null, not UTF-8 or not JSON fails.
struct NativeJsonFilter {
    pointer: String,
    value: String,
}

impl NativeJsonFilter {
    fn outcome(&self, record: &Record) -> Outcome {
        let document = record
            .value
            .as_deref()
            .ok_or_else(|| "value is null".to_string())
            .and_then(|bytes| {
                std::str::from_utf8(bytes).map_err(|e| format!("value is not UTF-8: {e}"))
            })
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| format!("value is not JSON: {e}"))
            });
        let document = match document {
            Ok(document) => document,
            Err(reason) => return Outcome::Fail(reason),
        };
        let matches = match document.pointer(&self.pointer) {
            Some(serde_json::Value::String(s)) => *s == self.value,
            Some(
                scalar @ (serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
                | serde_json::Value::Null),
            ) => {
                // Not `*scalar == self.value`: `Value == String` only matches strings.
                let text = scalar.to_string();
                text == self.value
            }
            _ => false,
        };
        if matches {
            Outcome::Keep
        } else {
            Outcome::Drop
        }
    }
}

/// The json-filter component, built first when it is missing or older than
/// its sources.
fn json_filter_wasm() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the repository");
    let plugins = root.join("plugins");
    let wasm = plugins.join("target/wasm32-wasip2/release/json_filter.wasm");
    let sources = [
        plugins.join("json-filter"),
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
        root.join("guest-sdk"),
        root.join("wit"),
    ];
    let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
    let newest_source = sources.iter().filter_map(|s| newest_mtime(s)).max();
    if built.is_none() || newest_source > built {
        build_plugin(&plugins, "json-filter")?;
    }
    Ok(wasm)
}

/// Runs `cargo build --release --target wasm32-wasip2 -p <name>` in the
/// plugins workspace, without the outer build's flags and target settings.
fn build_plugin(plugins: &Path, name: &str) -> anyhow::Result<()> {
    eprintln!("Building plugin {name} for wasm32-wasip2 …");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(plugins).args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
        "-p",
        name,
    ]);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let outer = [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_",
            "CARGO_PROFILE_",
        ];
        if outer.iter().any(|prefix| key.starts_with(prefix)) {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status()?;
    anyhow::ensure!(
        status.success(),
        "building plugin {name} failed ({status}); is the target installed? \
         `rustup target add wasm32-wasip2`"
    );
    Ok(())
}

/// The newest modification time of `path` or of any file below it.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path).ok()?;
    children
        .filter_map(|entry| newest_mtime(&entry.ok()?.path()))
        .chain(own)
        .max()
}
