//! The `fcsink` binary: parses arguments, sets up logging and hands over to the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fcsink::cli::{self, Cli, Command, LogFormat, PluginCommand};
use fcsink::transform::Limits;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config, plugins } => {
            let settings = cli::load_settings(&config, &plugins)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(fcsink::run(settings, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { config } => {
            cli::validate(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Test {
            plugin,
            key,
            value,
            headers,
            config,
            memory_mb,
            timeout_ms,
        }) => {
            let limits = Limits {
                memory_bytes: memory_mb << 20,
                call_timeout: Duration::from_millis(timeout_ms),
            };
            cli::plugin_test(
                &plugin,
                cli::cli_record(key, value, headers),
                config,
                limits,
            )
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("FCSINK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("Shutdown requested; draining");
}
