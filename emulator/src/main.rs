//! `fc-emulator`: serve the Function Compute, Lambda, HTTP and STS emulator until Ctrl-C
//! or SIGTERM.
//!
//! The accepted FC key comes from `ALIBABA_CLOUD_ACCESS_KEY_ID` and
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET`; the accepted AWS key (optional) from
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, or the matching
//! flags. The invocation log goes to stdout, everything else to stderr.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use fc_emulator::{
    AwsKey, DEFAULT_ASYNC_LIMIT, DEFAULT_LAMBDA_ASYNC_LIMIT, DEFAULT_LAMBDA_SYNC_LIMIT,
    DEFAULT_SYNC_LIMIT, EmulatorConfig,
};

/// A local Alibaba Cloud Function Compute (FC 2.0 / 3.0) and STS emulator, with AWS
/// Lambda `Invoke` and a plain HTTP target (`POST /http/…`).
///
/// FC requests are signed with the key in ALIBABA_CLOUD_ACCESS_KEY_ID and
/// ALIBABA_CLOUD_ACCESS_KEY_SECRET (required). Lambda requests are signed (SigV4) with
/// the AWS key given below; without one, every Lambda request is refused.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Largest FC sync payload (and plain HTTP payload), in bytes.
    #[arg(long, default_value_t = DEFAULT_SYNC_LIMIT)]
    sync_limit: usize,
    /// Largest FC async payload, in bytes.
    #[arg(long, default_value_t = DEFAULT_ASYNC_LIMIT)]
    async_limit: usize,
    /// Largest Lambda RequestResponse (and DryRun) payload, in bytes.
    #[arg(long, default_value_t = DEFAULT_LAMBDA_SYNC_LIMIT)]
    lambda_sync_limit: usize,
    /// Largest Lambda Event payload, in bytes.
    #[arg(long, default_value_t = DEFAULT_LAMBDA_ASYNC_LIMIT)]
    lambda_async_limit: usize,
    /// AWS access key id Lambda requests may be signed with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "aws_secret_access_key")]
    aws_access_key_id: Option<String>,
    /// Its secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    aws_secret_access_key: Option<String>,
    /// Its session token: when set, every Lambda request must carry (and sign) it in
    /// X-Amz-Security-Token.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    aws_session_token: Option<String>,
    /// Make STS credentials expire after this many seconds, whatever was asked for.
    #[arg(long)]
    sts_lifetime_secs: Option<u64>,
    /// Do not log invocations to stdout.
    #[arg(long)]
    quiet: bool,
    /// Enable asynchronous tasks on the emulated functions: a repeated task ID
    /// answers 409 and is not run.
    #[arg(long)]
    async_tasks: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let id = env("ALIBABA_CLOUD_ACCESS_KEY_ID")?;
    let secret = env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")?;
    let aws_credentials = match (args.aws_access_key_id, args.aws_secret_access_key) {
        (Some(id), Some(secret)) => {
            let key = AwsKey::new(id, secret);
            vec![match args.aws_session_token {
                Some(token) => key.with_session_token(token),
                None => key,
            }]
        }
        _ => Vec::new(),
    };
    let config = EmulatorConfig {
        aws_credentials,
        sync_limit: args.sync_limit,
        async_limit: args.async_limit,
        lambda_sync_limit: args.lambda_sync_limit,
        lambda_async_limit: args.lambda_async_limit,
        sts_lifetime: args.sts_lifetime_secs.map(Duration::from_secs),
        quiet: args.quiet,
        async_tasks: args.async_tasks,
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
