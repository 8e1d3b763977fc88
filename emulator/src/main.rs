//! `fc-emulator`: serve the Function Compute + STS emulator until Ctrl-C or SIGTERM.
//!
//! The accepted key comes from `ALIBABA_CLOUD_ACCESS_KEY_ID` and
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`. The invocation log goes to stdout, everything else
//! to stderr.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use fc_emulator::{DEFAULT_ASYNC_LIMIT, DEFAULT_SYNC_LIMIT, EmulatorConfig};

/// A local Alibaba Cloud Function Compute (FC 2.0 / 3.0) and STS emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Largest sync payload, in bytes.
    #[arg(long, default_value_t = DEFAULT_SYNC_LIMIT)]
    sync_limit: usize,
    /// Largest async payload, in bytes.
    #[arg(long, default_value_t = DEFAULT_ASYNC_LIMIT)]
    async_limit: usize,
    /// Make STS credentials expire after this many seconds, whatever was asked for.
    #[arg(long)]
    sts_lifetime_secs: Option<u64>,
    /// Do not log invocations to stdout.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let id = env("ALIBABA_CLOUD_ACCESS_KEY_ID")?;
    let secret = env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")?;
    let config = EmulatorConfig {
        sync_limit: args.sync_limit,
        async_limit: args.async_limit,
        sts_lifetime: args.sts_lifetime_secs.map(Duration::from_secs),
        quiet: args.quiet,
        ..EmulatorConfig::new(id, secret)
    };
    let emulator = fc_emulator::start(config, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("fc-emulator listening on {}", emulator.url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot wait for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot wait for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    emulator.shutdown().await.context("server failed")
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set to the key clients sign with"))
}
