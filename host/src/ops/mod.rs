//! The commands that operate a connector's whole fleet through Kafka: they
//! write to its config topic (`pause`, `resume`, `set`) and read its status
//! topic and group (`status`), wherever the instances run.

pub mod delete;
pub mod reset_offsets;
pub mod send_test;
pub mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;

use crate::config::Settings;
use crate::fleet::Live;
use crate::fleet::config_topic::{self, Entry};

/// Commands that reach every instance of a connector.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Show the instances, and per partition the committed offset, end offset and lag.
    Status {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Pause every instance: batches in flight finish, nothing new is fetched.
    Pause {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Resume every instance and every partition stopped by `failure_policy = "stop"`;
    /// with `--partition` (and `--topic`), only those stopped partitions.
    Resume {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Resume only this stopped partition.
        #[arg(long)]
        partition: Option<i32>,
        /// Resume only stopped partitions of this topic.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Change runtime settings of every instance (`KEY=` restores the file's value).
    #[command(after_help = keys_help())]
    Set {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The changes.
        #[arg(required = true, value_name = "KEY=VALUE")]
        changes: Vec<String>,
    },
    /// Produce one test record to the source topic.
    SendTest {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The record's key.
        #[arg(long, default_value = "demo")]
        key: String,
        /// The record's value.
        #[arg(long, default_value = r#"{"key": "test"}"#)]
        value: String,
        /// The partition (by default the producer's partitioner picks one).
        #[arg(long)]
        partition: Option<i32>,
        /// The topic, when the connector consumes several.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Move a stopped connector's committed offsets; prints old and new per partition.
    #[command(group(
        clap::ArgGroup::new("to")
            .required(true)
            .args(["to_earliest", "to_latest", "to_timestamp", "to_offset"]),
    ))]
    ResetOffsets {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The first offset still in each partition.
        #[arg(long)]
        to_earliest: bool,
        /// The end of each partition: skip everything produced so far.
        #[arg(long)]
        to_latest: bool,
        /// The first record at or after a time: RFC 3339 or a duration ago ("-2h").
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        to_timestamp: Option<String>,
        /// Partition P to offset O (repeatable; other partitions keep theirs).
        #[arg(long, value_name = "P:O")]
        to_offset: Vec<String>,
        /// Only this topic, when the connector consumes several.
        #[arg(long)]
        topic: Option<String>,
        /// Print the changes, commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete the connector: its consumer group and the topics fcsink created.
    Delete {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn keys_help() -> String {
    let mut help = String::from("Keys:\n");
    for (key, rule) in crate::config::runtime::keys() {
        help.push_str(&format!("  {key:<26} {rule}\n"));
    }
    help
}

/// Runs a fleet command.
///
/// # Errors
/// A config error, an unknown key or value, or a broker that does not answer.
pub fn run(command: FleetCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match command {
            FleetCommand::Status { config, json } => {
                let report = status::collect(&load(&config)?).await?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&report)?)?;
                } else {
                    out!("{}", report.render())?;
                }
            }
            FleetCommand::Pause { config } => {
                let settings = load(&config)?;
                let paused = Entry::Setting {
                    key: "paused".into(),
                    value: Some("true".into()),
                };
                write(&settings, &[paused]).await?;
                outln!("{}: pausing every instance", settings.name)?;
            }
            FleetCommand::Resume {
                config,
                partition,
                topic,
            } => {
                let settings = load(&config)?;
                let resume = Entry::Resume { topic, partition };
                if partition.is_none() {
                    let unpaused = Entry::Setting {
                        key: "paused".into(),
                        value: None,
                    };
                    write(&settings, &[unpaused, resume]).await?;
                    outln!("{}: resuming every instance", settings.name)?;
                } else {
                    write(&settings, &[resume]).await?;
                    outln!("{}: resuming the stopped partition", settings.name)?;
                }
            }
            FleetCommand::Set { config, changes } => {
                let settings = load(&config)?;
                let entries = set_entries(&settings, &changes)?;
                write(&settings, &entries).await?;
                for entry in &entries {
                    if let Entry::Setting { key, value } = entry {
                        let value = value.as_deref().unwrap_or("(the file's value)");
                        outln!("{key} = {value}")?;
                    }
                }
                outln!(
                    "Every instance of {} applies this within seconds.",
                    settings.name
                )?;
            }
            FleetCommand::SendTest {
                config,
                key,
                value,
                partition,
                topic,
            } => send_test::run(&load(&config)?, topic, key, value, partition).await?,
            FleetCommand::ResetOffsets {
                config,
                to_earliest,
                to_latest,
                to_timestamp,
                to_offset,
                topic,
                dry_run,
            } => {
                let target = reset_offsets::Target::from_flags(
                    to_earliest,
                    to_latest,
                    to_timestamp.as_deref(),
                    &to_offset,
                )?;
                reset_offsets::run(&load(&config)?, target, topic, dry_run).await?;
            }
            FleetCommand::Delete { config, yes } => delete::run(&load(&config)?, yes).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn load(config: &Path) -> anyhow::Result<Settings> {
    Ok(Settings::load(config)?)
}

/// `KEY=VALUE` arguments, each checked against its rule.
fn set_entries(settings: &Settings, changes: &[String]) -> anyhow::Result<Vec<Entry>> {
    let mut live = Live::from_settings(settings);
    changes
        .iter()
        .map(|change| {
            let (key, value) = change
                .split_once('=')
                .with_context(|| format!("expected KEY=VALUE, got {change:?}"))?;
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                crate::fleet::live::known(key)?;
                return Ok(Entry::Setting {
                    key: key.into(),
                    value: None,
                });
            }
            live.apply(settings, key, value)?;
            Ok(Entry::Setting {
                key: key.into(),
                value: Some(value.into()),
            })
        })
        .collect()
}

/// The connection and security settings of the connector's consumer, for
/// producers, admin clients and readers outside the group.
pub fn client_config(settings: &Settings) -> ClientConfig {
    crate::kafka::producer_config(&crate::source::client_config(settings))
}

/// Writes `entries` to the config topic, creating it if needed (and allowed).
async fn write(settings: &Settings, entries: &[Entry]) -> anyhow::Result<()> {
    let client = client_config(settings);
    let topic = settings.config_topic();
    if settings.delivery.create_topics {
        crate::kafka::topics::ensure_compacted(&client, &[&topic]).await?;
    }
    let producer: FutureProducer = client.create().context("cannot create a Kafka producer")?;
    config_topic::write(&producer, &topic, entries).await
}
