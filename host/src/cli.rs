//! The `fcsink` command line: argument types and the commands that are not
//! the pipeline itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::config::{ConfigError, Settings};
use crate::plugin_tools;
use crate::plugin_tools::scaffold::Lang;
use crate::transform::{Header, Limits, Outcome, PluginFailure, PluginSpec, Record, Runtime};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// A Kafka sink that filters and rewrites records with WebAssembly plugins
/// and invokes serverless functions.
#[derive(Debug, Parser)]
#[command(name = "fcsink", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// fcsink's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a connector until SIGINT or SIGTERM.
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Run with these plugins, in this order, instead of the config's [[transform]] chain.
        #[arg(long = "plugin", value_name = "PATH.wasm")]
        plugins: Vec<String>,
        /// Consume up to the end offsets present at start, then stop (with a progress bar).
        #[arg(long)]
        until_end: bool,
        /// Serve /metrics, /healthz and /readyz here (overrides operations.listen).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check a configuration file and its plugins without consuming anything.
    Validate {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Operate every instance of a connector through Kafka.
    #[command(flatten)]
    Fleet(crate::ops::FleetCommand),
    /// Turn another connector's configuration into an fcsink config file.
    #[command(subcommand)]
    Import(ImportCommand),
}

/// Configurations fcsink can import.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Confluent's AWS Lambda sink (self-managed or Confluent Cloud), as JSON.
    Confluent {
        /// The connector configuration (`{"name":…,"config":{…}}` or a flat object).
        file: PathBuf,
        /// Write the TOML here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run one record through a plugin and print the outcome as JSON.
    Test {
        /// A built-in plugin's name or a path to a .wasm file.
        #[arg(default_value = "passthrough")]
        plugin: String,
        /// The record's key.
        #[arg(long, default_value = "demo")]
        key: String,
        /// The record's value.
        #[arg(long, default_value = r#"{"key": "test"}"#)]
        value: String,
        /// A record header (repeatable).
        #[arg(long = "header", value_name = "K=V", value_parser = key_value)]
        headers: Vec<(String, String)>,
        /// A plugin configuration entry (repeatable).
        #[arg(long = "config", value_name = "K=V", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// Memory cap in MiB.
        #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
        memory_mb: usize,
        /// Time limit of the call in milliseconds.
        #[arg(long, default_value_t = Limits::default().call_timeout.as_millis() as u64)]
        timeout_ms: u64,
    },
    /// Package a Python file that defines `deal_message(message)` as a plugin (needs componentize-py).
    BuildPython {
        /// The Python file.
        file: PathBuf,
        /// The plugin to write [default: the file's name with .wasm, in the current folder].
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The componentize-py executable [default: the one on PATH].
        #[arg(long, env = plugin_tools::python::COMPONENTIZE_PY_ENV)]
        componentize_py: Option<PathBuf>,
    },
    /// Create a plugin project, with a test, in a new folder NAME.
    New {
        /// The plugin's name: lowercase letters, digits and dashes.
        name: String,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// The whole `fcsink` program: parse, log, run; exit code 0 on success,
/// 1 when a tested plugin fails its record, 2 on any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        // The reader of stdout went away (`fcsink status | head -1`): not an error.
        Err(err) if crate::stdout::is_closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            config,
            plugins,
            until_end,
            listen,
        } => {
            let mut settings = load_settings(&config, &plugins)?;
            settings.operations.until_end = until_end;
            if listen.is_some() {
                settings.operations.listen = listen;
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::run(settings, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fleet(command) => crate::ops::run(command),
        Command::Validate { config } => {
            validate(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(ImportCommand::Confluent { file, output }) => {
            import_confluent(&file, output.as_deref())?;
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
                ..Limits::default()
            };
            plugin_test(&plugin, cli_record(key, value, headers), config, limits)
        }
        Command::Plugin(PluginCommand::BuildPython {
            file,
            output,
            componentize_py,
        }) => {
            let tool = plugin_tools::python::find_componentize_py(componentize_py.as_deref())?;
            let output = output.unwrap_or_else(|| plugin_tools::python::default_output(&file));
            plugin_tools::python::build(&file, &output, &tool)?;
            outln!("{}: built from {}", output.display(), file.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::New { name, lang, dir }) => {
            let created = plugin_tools::scaffold::new(&name, lang, &dir)?;
            outln!("{}: created; see its README.md", created.display())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Converts, prints the warnings to stderr and the TOML to `output` or stdout.
fn import_confluent(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let json =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let imported = crate::import::confluent::convert(&json)?;
    for warning in &imported.warnings {
        eprintln!("warning: {warning}");
    }
    if let Err(err) = Settings::from_toml(&imported.toml) {
        eprintln!("warning: the result needs editing before it runs: {err}");
    }
    match output {
        Some(path) => std::fs::write(path, &imported.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => out!("{}", imported.toml)?,
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("FCSINK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, never in log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// Loads a config and applies `--plugin` overrides.
///
/// # Errors
/// A [`ConfigError`] naming the field and the rule.
pub fn load_settings(
    config: &std::path::Path,
    plugins: &[String],
) -> Result<Settings, ConfigError> {
    let mut settings = Settings::load(config)?;
    if !plugins.is_empty() {
        let cwd = std::path::Path::new(".");
        settings.transforms = plugins
            .iter()
            .enumerate()
            .map(|(i, p)| crate::config::plugin_spec(&format!("--plugin[{i}]"), p, Vec::new(), cwd))
            .collect::<Result<_, _>>()?;
    }
    Ok(settings)
}

/// `fcsink validate`: the config and every plugin in it.
///
/// # Errors
/// The first problem found.
pub fn validate(config: &std::path::Path) -> anyhow::Result<()> {
    let settings = load_settings(config, &[])?;
    crate::pipeline::load_plugins(&settings)?;
    outln!(
        "{}: valid (connector {}, group {})",
        config.display(),
        settings.name,
        settings.group_id()
    )?;
    for note in settings.notes() {
        outln!("note: {note}")?;
    }
    Ok(())
}

/// `fcsink plugin test`: prints the outcome as JSON; exit code 0 on keep,
/// drop or replace, 1 on fail, reject or trap.
///
/// # Errors
/// When the plugin cannot be loaded.
pub fn plugin_test(
    plugin: &str,
    record: Record,
    config: Vec<(String, String)>,
    limits: Limits,
) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(limits, crate::transform::default_cache_dir())?;
    let spec = PluginSpec::resolve(plugin, config);
    let loaded = runtime.load(&spec)?;
    let mut instance = loaded.instantiate().context("starting the plugin")?;
    let (report, ok) = match instance.transform(std::slice::from_ref(&record)) {
        Ok(mut outcomes) => match outcomes.pop().context("the plugin returned no outcome")? {
            Outcome::Keep => (
                json!({"outcome": "keep", "records": [record_json(&record)]}),
                true,
            ),
            Outcome::Drop => (json!({"outcome": "drop", "records": []}), true),
            Outcome::Replace(records) => (
                json!({"outcome": "replace", "records": records.iter().map(record_json).collect::<Vec<_>>()}),
                true,
            ),
            Outcome::Fail(reason) => (json!({"outcome": "fail", "reason": reason}), false),
        },
        Err(PluginFailure::Rejected(reason)) => {
            (json!({"outcome": "reject", "reason": reason}), false)
        }
        Err(failure) => (
            json!({"outcome": "error", "code": failure.code(), "reason": failure.to_string()}),
            false,
        ),
    };
    let mut report = report;
    report["plugin"] = Value::String(spec.name);
    outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A record built from command-line text.
pub fn cli_record(key: String, value: String, headers: Vec<(String, String)>) -> Record {
    Record {
        topic: "test".into(),
        partition: 0,
        offset: 0,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(-1, |d| d.as_millis() as i64),
        key: Some(key.into_bytes()),
        value: Some(value.into_bytes()),
        headers: headers
            .into_iter()
            .map(|(key, value)| Header {
                key,
                value: Some(value.into_bytes()),
            })
            .collect(),
    }
}

fn bytes_json(bytes: &Option<Vec<u8>>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => {
                json!({"base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)})
            }
        },
    }
}

fn record_json(record: &Record) -> Value {
    json!({
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": bytes_json(&record.key),
        "value": bytes_json(&record.value),
        "headers": record.headers.iter().map(|h| json!({"key": h.key, "value": bytes_json(&h.value)})).collect::<Vec<_>>(),
    })
}
