//! The ledger campaign: numbered records through fcsink under faults, then
//! a count of what was delivered, filtered, dead-lettered, duplicated and
//! lost (see `tests/src/ledger.rs`).
//!
//! ```text
//! cargo build -p fcsink-tests --bins && cargo run -p fcsink-tests --bin ledger -- [OPTIONS] [PLAN...]
//!   PLAN           storms, slow, sigkill, broker-restart, rebalance, plugins, edge, all
//!                  (default: every one, in that order)
//!   --records N    numbered records per plan (default 2000; the long form uses 100000)
//!   --seed S       seeds the moments fcsink is killed (default: the clock)
//! ```
//!
//! Exits with 1 when any record is lost or any plan's expectation fails.
//! `make test` runs the short form; `make ledger` the long one.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use fcsink_tests::ledger::plan::{self, Options};

fn main() -> Result<ExitCode> {
    let (options, names) = parse_args()?;
    let plans: Vec<_> = plan::plans()
        .into_iter()
        .filter(|p| names.is_empty() || names.iter().any(|n| n == p.name))
        .collect();
    if plans.len() < names.len() {
        let known: Vec<_> = plan::plans().iter().map(|p| p.name).collect();
        bail!("unknown plan in {names:?}; the plans are {known:?}");
    }
    anyhow::ensure!(
        options.fcsink.exists(),
        "{} is missing: run `cargo build -p fcsink-tests --bins` first",
        options.fcsink.display()
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FCSINK_LOG")
                .unwrap_or_else(|_| "warn,librdkafka=off,rdkafka=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    println!(
        "ledger: {} numbered records per plan, seed {}",
        options.records, options.seed
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let mut reports = Vec::new();
    for plan in &plans {
        let report = runtime.block_on(plan::run(plan, &options));
        println!("{report}");
        reports.push(report);
    }
    println!();
    println!(
        "{:<17} {:>9} {:>9} {:>9} {:>9} {:>6} {:>18} {:>11} {:>15}",
        "plan",
        "produced",
        "delivered",
        "filtered",
        "dead",
        "lost",
        "duplicates",
        "sent twice",
        "executed twice"
    );
    for r in &reports {
        println!(
            "{:<17} {:>9} {:>9} {:>9} {:>9} {:>6} {:>18} {:>11} {:>15}",
            r.plan,
            r.produced,
            r.delivered,
            r.filtered,
            r.dead_lettered,
            r.lost.len(),
            format!("{} ({:.2}%)", r.duplicates, r.duplicate_percent()),
            r.sent_twice,
            r.executed_twice
        );
    }
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    if failed.is_empty() {
        println!("\nnothing lost; every plan met its expectations");
        Ok(ExitCode::SUCCESS)
    } else {
        let names: Vec<_> = failed.iter().map(|r| r.plan.as_str()).collect();
        println!("\nFAILED: {names:?}");
        Ok(ExitCode::FAILURE)
    }
}

fn parse_args() -> Result<(Options, Vec<String>)> {
    let current = std::env::current_exe().context("where this program is")?;
    let mut options = Options {
        records: 2000,
        fcsink: plan::fcsink_beside(&current),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Result<u64> {
            let text = args
                .next()
                .with_context(|| format!("{what} needs a number"))?;
            text.parse()
                .with_context(|| format!("{what} needs a number, not {text:?}"))
        };
        match arg.as_str() {
            "--records" => options.records = number("--records")? as usize,
            "--seed" => options.seed = number("--seed")?,
            _ if arg.starts_with("--") => bail!("unknown option {arg}"),
            _ => names.push(arg),
        }
    }
    Ok((options, names))
}
