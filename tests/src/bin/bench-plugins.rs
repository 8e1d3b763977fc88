//! What a record costs in the transform stage when the same plugin, the
//! managed ETL task's "add suffix" template, is written in Rust
//! (`plugins/etl-compat`), Python (`python/examples/add_suffix.py`, built
//! with `fcsink plugin build-python`) or JavaScript
//! (`plugins-js/add_suffix.js`, componentize-js).
//!
//! ```text
//! cargo run --release -p fcsink-tests --bin bench-plugins [-- --no-js]
//! ```
//!
//! # Method
//!
//! Records have a 9-byte key and a 100-byte JSON value, as in the transform
//! benchmark. For each plugin and batch size (1, 20, 500), a chain runs
//! the batch for a warm-up, then for `SAMPLES` samples of `SAMPLE_TIME`
//! each; the median is printed in ns per record, with its ratio to Rust.
//! Batch clones are made outside the timed part. Plugins are compiled once
//! (the compile cache lives in `target/release/fcsink-compiled`), and the
//! instance is reused across batches, as a worker does.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use fcsink::transform::{Chain, Limits, PluginSpec, Record, Runtime};
use fcsink_tests::plugins::{compile_cache_dir, js_plugin, plugin, python_plugin, repo_root};

const BATCH_SIZES: [usize; 3] = [1, 20, 500];
const WARMUP: Duration = Duration::from_millis(300);
const SAMPLES: usize = 5;
const SAMPLE_TIME: Duration = Duration::from_millis(400);
/// Batch clones prepared before each timed stretch.
const CHUNK: usize = 64;

fn main() -> anyhow::Result<()> {
    let with_js = !std::env::args().any(|arg| arg == "--no-js");
    let runtime = Runtime::new(Limits::default(), Some(compile_cache_dir()))?;
    let mut plugins = vec![
        ("rust", plugin("etl-compat")),
        (
            "python",
            python_plugin(&repo_root().join("python/examples/add_suffix.py")),
        ),
    ];
    if with_js {
        plugins.push((
            "javascript",
            js_plugin(&repo_root().join("plugins-js/add_suffix.js")),
        ));
    }

    println!("The ETL add-suffix template: ns per record (median of {SAMPLES} samples)");
    println!(
        "{:<11} {:>6} {:>12} {:>9}",
        "plugin", "batch", "ns/record", "× rust"
    );
    for batch_size in BATCH_SIZES {
        let batch = make_batch(batch_size);
        let mut rust_ns = None;
        for (name, path) in &plugins {
            let ns = per_record(&runtime, path, &batch)?;
            let rust = *rust_ns.get_or_insert(ns);
            println!("{name:<11} {batch_size:>6} {ns:>12.0} {:>8.1}×", ns / rust);
        }
    }
    Ok(())
}

/// Median nanoseconds per record of `batch` through the plugin at `path`.
fn per_record(runtime: &Runtime, path: &Path, batch: &[Record]) -> anyhow::Result<f64> {
    let loaded = runtime.load(&PluginSpec::resolve(&path.to_string_lossy(), vec![]))?;
    let mut chain = Chain::new(&[loaded]);
    let mut sample = |time: Duration| -> anyhow::Result<f64> {
        let mut spent = Duration::ZERO;
        let mut records = 0_usize;
        while spent < time {
            let inputs: Vec<Vec<Record>> = (0..CHUNK).map(|_| batch.to_vec()).collect();
            let start = Instant::now();
            for input in inputs {
                black_box(chain.run(input)?);
            }
            spent += start.elapsed();
            records += CHUNK * batch.len();
        }
        Ok(spent.as_nanos() as f64 / records as f64)
    };
    sample(WARMUP)?;
    let mut samples = (0..SAMPLES)
        .map(|_| sample(SAMPLE_TIME))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    samples.sort_by(f64::total_cmp);
    Ok(samples[SAMPLES / 2])
}

fn make_batch(size: usize) -> Vec<Record> {
    (0..size)
        .map(|i| {
            let offset = i64::try_from(i).expect("small batch");
            let head = format!(r#"{{"id":{offset:>6},"status":"ok","pad":""#);
            let value = format!("{head}{}\"}}", "x".repeat(100 - head.len() - 2));
            Record {
                topic: "orders".into(),
                partition: 0,
                offset,
                timestamp: 1_700_000_000_000 + offset,
                key: Some(format!("order-{offset:03}").into_bytes()),
                value: Some(value.into_bytes()),
                headers: Vec::new(),
            }
        })
        .collect()
}
