//! A worker's chain of plugin instances: runs a batch through each plugin in
//! order and keeps track of which source record every output came from.

use std::sync::Arc;

use super::{Instance, LoadError, Outcome, Plugin, PluginFailure, Record, TransformError};

/// One record a plugin failed; it goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// Index of the source record in the batch given to [`Chain::run`].
    pub origin: usize,
    /// The plugin that failed it.
    pub plugin: String,
    /// The plugin's reason.
    pub reason: String,
}

/// A batch after the whole chain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// Records to send on, in order.
    pub records: Vec<Record>,
    /// For each of `records`, the index of the source record it came from.
    pub origins: Vec<usize>,
    /// Records a plugin failed.
    pub failed: Vec<RecordFailure>,
    /// Records a plugin dropped (or replaced with nothing).
    pub dropped: usize,
}

struct Stage {
    plugin: Arc<Plugin>,
    instance: Option<Instance>,
}

/// Plugin instances in configuration order, owned by one worker.
pub struct Chain {
    stages: Vec<Stage>,
}

impl Chain {
    /// A chain over `plugins`; instances start on first use.
    pub fn new(plugins: &[Arc<Plugin>]) -> Self {
        let stages = plugins
            .iter()
            .map(|plugin| Stage {
                plugin: plugin.clone(),
                instance: None,
            })
            .collect();
        Chain { stages }
    }

    /// Runs `batch` through every plugin in order. A record a plugin fails
    /// or drops does not reach the plugins after it.
    ///
    /// # Errors
    /// The first plugin that fails the whole batch.
    pub fn run(&mut self, batch: Vec<Record>) -> Result<Transformed, TransformError> {
        let mut out = Transformed {
            origins: (0..batch.len()).collect(),
            records: batch,
            ..Transformed::default()
        };
        for stage in &mut self.stages {
            if out.records.is_empty() {
                break;
            }
            let outcomes = stage.call(&out.records).map_err(|failure| TransformError {
                plugin: stage.plugin.name().to_string(),
                failure,
            })?;
            out = apply(out, outcomes, stage.plugin.name());
        }
        Ok(out)
    }
}

impl Stage {
    fn call(&mut self, batch: &[Record]) -> Result<Vec<Outcome>, PluginFailure> {
        let instance = match &mut self.instance {
            Some(instance) => instance,
            None => self
                .instance
                .insert(self.plugin.instantiate().map_err(|err| match err {
                    LoadError::Init { failure, .. } => failure,
                    other => PluginFailure::Trapped(other.to_string()),
                })?),
        };
        let result = instance.transform(batch);
        match &result {
            Err(PluginFailure::Rejected(_) | PluginFailure::WrongOutcomeCount { .. }) => {}
            // A trapped instance cannot be entered again; the next batch gets a new one.
            Err(_) => self.instance = None,
            Ok(_) if instance.near_memory_cap() => {
                tracing::info!(plugin = %self.plugin.name(), "Plugin instance near its memory cap; starting a fresh one");
                self.instance = None;
            }
            Ok(_) => {}
        }
        result
    }
}

fn apply(input: Transformed, outcomes: Vec<Outcome>, plugin: &str) -> Transformed {
    let mut out = Transformed {
        records: Vec::with_capacity(input.records.len()),
        origins: Vec::with_capacity(input.records.len()),
        failed: input.failed,
        dropped: input.dropped,
    };
    let pairs = input.records.into_iter().zip(input.origins).zip(outcomes);
    for ((record, origin), outcome) in pairs {
        match outcome {
            Outcome::Keep => {
                out.records.push(record);
                out.origins.push(origin);
            }
            Outcome::Drop => out.dropped += 1,
            Outcome::Replace(replacements) => {
                if replacements.is_empty() {
                    out.dropped += 1;
                }
                out.origins
                    .extend(std::iter::repeat_n(origin, replacements.len()));
                out.records.extend(replacements);
            }
            Outcome::Fail(reason) => out.failed.push(super::RecordFailure {
                origin,
                plugin: plugin.to_string(),
                reason,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: -1,
            key: None,
            value: Some(offset.to_string().into_bytes()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn outcomes_keep_track_of_the_source_record() {
        let input = Transformed {
            records: vec![record(10), record(11), record(12), record(13)],
            origins: vec![0, 1, 2, 2],
            ..Transformed::default()
        };
        let outcomes = vec![
            Outcome::Drop,
            Outcome::Replace(vec![record(20), record(21)]),
            Outcome::Fail("bad".into()),
            Outcome::Keep,
        ];
        let out = apply(input, outcomes, "p");
        assert_eq!(out.records, vec![record(20), record(21), record(13)]);
        assert_eq!(out.origins, vec![1, 1, 2]);
        assert_eq!(out.dropped, 1);
        assert_eq!(
            out.failed,
            vec![RecordFailure {
                origin: 2,
                plugin: "p".into(),
                reason: "bad".into()
            }]
        );
    }

    #[test]
    fn replacing_with_nothing_counts_as_a_drop() {
        let input = Transformed {
            records: vec![record(1)],
            origins: vec![0],
            ..Transformed::default()
        };
        let out = apply(input, vec![Outcome::Replace(vec![])], "p");
        assert!(out.records.is_empty());
        assert_eq!(out.dropped, 1);
    }
}
