//! The control plane through Kafka, as Kafka Connect has it: a compacted
//! config topic carries runtime changes that every instance applies
//! ([`config_topic`], [`live`]), and a compacted status topic carries each
//! instance's state ([`status_topic`]). The `fcsink` commands that operate a
//! fleet (`ops`) write and read the same topics.
//!
//! How a change reaches the workers: the follower task reads the config
//! topic, recomputes [`Live`] from the file's values plus every override,
//! and sends it on a `watch` channel. Workers read the channel's current
//! value once per batch; the dispatcher wakes on it to pause, resume,
//! and resize the plugin pool.

pub mod config_topic;
pub mod live;
pub mod status_topic;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use live::Live;
pub use status_topic::Board;

use crate::config::Settings;
use crate::metrics::http::Readiness;
use crate::source::TopicPartition;
use config_topic::{Entry, Feed};

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A request to resume partitions stopped by the failure policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRequest {
    /// The topic, or every topic.
    pub topic: Option<String>,
    /// The partition, or every partition.
    pub partition: Option<i32>,
}

impl ResumeRequest {
    /// Whether the request covers `tp`.
    pub fn covers(&self, (topic, partition): &TopicPartition) -> bool {
        self.topic.as_ref().is_none_or(|t| t == topic)
            && self.partition.is_none_or(|p| p == *partition)
    }
}

/// What the dispatcher holds of the control plane.
pub struct Handles {
    /// The runtime settings; the dispatcher wakes when they change.
    pub live: watch::Receiver<Live>,
    /// Resume requests for stopped partitions.
    pub resumes: mpsc::UnboundedReceiver<ResumeRequest>,
    /// The state published to the status topic.
    pub board: Arc<Board>,
    /// What `/readyz` answers.
    pub readiness: Arc<Readiness>,
}

/// The running control plane: its tasks end when `shutdown` is cancelled.
pub struct Control {
    /// Kept so the channel stays open when nothing follows the topic.
    _live: watch::Sender<Live>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the control plane for `settings`: creates the compacted topics
/// (when `delivery.create_topics`), records the topics fcsink created in
/// `created`, reads the config topic and follows it, and publishes the
/// instance's state. With `operations.control = false` only the file's
/// values apply.
///
/// # Errors
/// When the topics cannot be created or read.
pub async fn start(
    settings: &Settings,
    client: &ClientConfig,
    producer: &FutureProducer,
    mut created: Vec<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<(Control, Handles)> {
    let board = Board::new(settings.operations.status_interval);
    let readiness = Arc::new(Readiness::default());
    let (resume_tx, resumes) = mpsc::unbounded_channel();
    if !settings.operations.control {
        let (tx, live) = watch::channel(Live::from_settings(settings));
        let control = Control {
            _live: tx,
            tasks: Vec::new(),
        };
        return Ok((
            control,
            Handles {
                live,
                resumes,
                board,
                readiness,
            },
        ));
    }
    let (config_topic, status_topic) = (settings.config_topic(), settings.status_topic());
    if settings.delivery.create_topics {
        created.extend(
            crate::kafka::topics::ensure_compacted(client, &[&config_topic, &status_topic])
                .await
                .context("cannot prepare the config and status topics")?,
        );
    }
    let records: Vec<Entry> = created.into_iter().map(Entry::CreatedTopic).collect();
    config_topic::write(producer, &config_topic, &records).await?;
    let (feed, entries) = Feed::open(client, &config_topic).await.with_context(|| {
        format!("cannot read {config_topic} (operations.control = false runs without it)")
    })?;
    let mut overrides = BTreeMap::new();
    for entry in entries {
        // Resume requests are events: those from before the start are done.
        if let Entry::Setting { key, value } = entry {
            set(&mut overrides, key, value);
        }
    }
    let live = Live::with_overrides(settings, &overrides);
    if !overrides.is_empty() {
        tracing::info!(?overrides, "Runtime settings from the config topic");
    }
    let (live_tx, live_rx) = watch::channel(live);
    let follow = {
        let (settings, live_tx, shutdown) = (settings.clone(), live_tx.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let entry = tokio::select! {
                    () = shutdown.cancelled() => return,
                    entry = feed.next() => entry,
                };
                match entry {
                    Entry::Setting { key, value } => {
                        tracing::info!(
                            key,
                            value = value.as_deref().unwrap_or("(file value)"),
                            "Runtime setting changed"
                        );
                        set(&mut overrides, key, value);
                        let live = Live::with_overrides(&settings, &overrides);
                        live_tx
                            .send_if_modified(|current| std::mem::replace(current, live) != live);
                    }
                    Entry::Resume { topic, partition } => {
                        let _ = resume_tx.send(ResumeRequest { topic, partition });
                    }
                    Entry::CreatedTopic(_) => {}
                }
            }
        })
    };
    let publish = tokio::spawn(status_topic::publish(
        board.clone(),
        producer.clone(),
        status_topic,
        settings.operations.status_interval,
        shutdown,
    ));
    let control = Control {
        _live: live_tx,
        tasks: vec![follow, publish],
    };
    Ok((
        control,
        Handles {
            live: live_rx,
            resumes,
            board,
            readiness,
        },
    ))
}

fn set(overrides: &mut BTreeMap<String, String>, key: String, value: Option<String>) {
    match value {
        Some(value) => overrides.insert(key, value),
        None => overrides.remove(&key),
    };
}

impl Control {
    /// Waits for the tasks to end (after `shutdown`): the last status is a tombstone.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
