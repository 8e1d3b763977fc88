//! A worker's chain of plugin instances: runs a batch through each plugin in
//! order and keeps track of which source record every output came from.

use std::sync::Arc;

use super::{Header, Instance, LoadError, Outcome, Plugin, PluginFailure, Record, TransformError};

/// The header that numbers the records a plugin made of one source record:
/// `0`, `1`, … in their order (ASCII decimal). Only such records carry it,
/// so (topic, partition, offset, split index) names every record sent.
pub const SPLIT_INDEX: &str = "fcsink.split.index";

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

/// A batch after the whole chain. It owns the batch's source records too,
/// without copying them: a record no plugin changed stands in `records`;
/// one a plugin replaced, dropped or failed is kept aside, so dead letters
/// and result topics can carry it as it was consumed.
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
    /// The source records no longer unchanged in `records`, by index (made
    /// as long as needed on first use).
    originals: Vec<Option<Record>>,
}

impl Transformed {
    /// `batch` before any plugin: every record kept.
    pub fn from_batch(batch: Vec<Record>) -> Self {
        Transformed {
            origins: (0..batch.len()).collect(),
            records: batch,
            ..Transformed::default()
        }
    }

    /// Source record `origin`, as consumed.
    ///
    /// # Panics
    /// If `origin` is not the index of one of the batch's records.
    #[expect(
        clippy::expect_used,
        reason = "every source record stays in `records` or in `originals`"
    )]
    pub fn source(&self, origin: usize) -> &Record {
        if let Some(Some(original)) = self.originals.get(origin) {
            return original;
        }
        // Unchanged, so still in `records`: origins are in order.
        let at = self.origins.partition_point(|&o| o < origin);
        self.records
            .get(at)
            .filter(|_| self.origins.get(at) == Some(&origin))
            .expect("a source record is kept aside or unchanged in the output")
    }

    /// The records after one more plugin, which gave `outcomes` for
    /// `self.records` (what [`Chain::run`] does after each plugin).
    #[must_use]
    pub fn apply(self, outcomes: Vec<Outcome>, plugin: &str) -> Transformed {
        apply(self, outcomes, plugin)
    }

    /// Every source record, in order: a batch that failed as a whole.
    pub fn into_sources(self) -> Vec<Record> {
        let mut sources = self.originals;
        for (record, origin) in self.records.into_iter().zip(self.origins) {
            let slot = slot(&mut sources, origin);
            if slot.is_none() {
                *slot = Some(record);
            }
        }
        sources.into_iter().flatten().collect()
    }

    /// Gives each record that shares its source record with others the
    /// [`SPLIT_INDEX`] header (replacing one a plugin set), numbered in
    /// order; a record alone from its source keeps its headers as they are.
    fn number_splits(&mut self) {
        let mut start = 0;
        while start < self.origins.len() {
            let origin = self.origins[start];
            let end = start
                + self.origins[start..]
                    .iter()
                    .take_while(|&&o| o == origin)
                    .count();
            if end - start > 1
                && let Some(split) = self.records.get_mut(start..end)
            {
                for (index, record) in split.iter_mut().enumerate() {
                    record.headers.retain(|header| header.key != SPLIT_INDEX);
                    record.headers.push(Header {
                        key: SPLIT_INDEX.to_string(),
                        value: Some(index.to_string().into_bytes()),
                    });
                }
            }
            start = end;
        }
    }

    /// Keeps `record`, which leaves the output, aside if it is still the
    /// source record `origin` (no plugin replaced that one before).
    fn set_aside(&mut self, origin: usize, record: Record) {
        let slot = slot(&mut self.originals, origin);
        if slot.is_none() {
            *slot = Some(record);
        }
    }
}

/// `slots[index]`, growing `slots` to reach it.
fn slot(slots: &mut Vec<Option<Record>>, index: usize) -> &mut Option<Record> {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    &mut slots[index]
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
        self.run_keeping(batch).map_err(|(err, _)| err)
    }

    /// [`Chain::run`], giving the batch back when a plugin fails it whole,
    /// so that its records can be dead-lettered as consumed.
    ///
    /// # Errors
    /// The first plugin that fails the whole batch, and the batch.
    pub fn run_keeping(
        &mut self,
        batch: Vec<Record>,
    ) -> Result<Transformed, (TransformError, Vec<Record>)> {
        let mut out = Transformed::from_batch(batch);
        for stage in &mut self.stages {
            if out.records.is_empty() {
                break;
            }
            match stage.call(&out.records) {
                Ok(outcomes) => out = apply(out, outcomes, stage.plugin.name()),
                Err(failure) => {
                    let err = TransformError {
                        plugin: stage.plugin.name().to_string(),
                        failure,
                    };
                    return Err((err, out.into_sources()));
                }
            }
        }
        if !self.stages.is_empty() {
            out.number_splits();
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
        originals: input.originals,
    };
    let pairs = input.records.into_iter().zip(input.origins).zip(outcomes);
    for ((record, origin), outcome) in pairs {
        match outcome {
            Outcome::Keep => {
                out.records.push(record);
                out.origins.push(origin);
            }
            Outcome::Drop => {
                out.dropped += 1;
                out.set_aside(origin, record);
            }
            Outcome::Replace(replacements) => {
                if replacements.is_empty() {
                    out.dropped += 1;
                }
                out.set_aside(origin, record);
                out.origins
                    .extend(std::iter::repeat_n(origin, replacements.len()));
                out.records.extend(replacements);
            }
            Outcome::Fail(reason) => {
                out.set_aside(origin, record);
                out.failed.push(super::RecordFailure {
                    origin,
                    plugin: plugin.to_string(),
                    reason,
                });
            }
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

    #[test]
    fn every_source_record_is_kept_as_consumed_without_a_copy() {
        // Two stages: the first replaces 1 and drops 3, the second fails
        // one of 1's replacements and keeps the rest.
        let batch: Vec<Record> = (0..5).map(record).collect();
        let first = apply(
            Transformed::from_batch(batch.clone()),
            vec![
                Outcome::Keep,
                Outcome::Replace(vec![record(20), record(21)]),
                Outcome::Keep,
                Outcome::Drop,
                Outcome::Fail("bad".into()),
            ],
            "a",
        );
        let second = apply(
            first,
            vec![
                Outcome::Keep,
                Outcome::Fail("worse".into()),
                Outcome::Keep,
                Outcome::Keep,
            ],
            "b",
        );
        assert_eq!(second.records, vec![record(0), record(21), record(2)]);
        assert_eq!(second.origins, vec![0, 1, 2]);
        for (i, original) in batch.iter().enumerate() {
            assert_eq!(second.source(i), original, "source {i}");
        }
        assert_eq!(second.into_sources(), batch);
    }

    #[test]
    fn records_split_from_one_source_record_are_numbered_the_others_left_alone() {
        let mut transformed = Transformed {
            records: vec![
                record(10),
                record(10),
                record(10),
                record(11),
                record(12),
                record(12),
            ],
            origins: vec![0, 0, 0, 1, 2, 2],
            ..Transformed::default()
        };
        // A plugin's own split index is replaced, not doubled.
        transformed.records[4].headers.push(Header {
            key: SPLIT_INDEX.into(),
            value: Some(b"7".to_vec()),
        });
        transformed.number_splits();
        let indexes: Vec<Option<String>> = transformed
            .records
            .iter()
            .map(|record| {
                let mut split = record.headers.iter().filter(|h| h.key == SPLIT_INDEX);
                let first = split.next().and_then(|h| h.value.clone());
                assert!(split.next().is_none(), "one split index per record");
                first.map(|value| String::from_utf8(value).unwrap())
            })
            .collect();
        let expected = [Some("0"), Some("1"), Some("2"), None, Some("0"), Some("1")];
        assert_eq!(indexes, expected.map(|index| index.map(String::from)));
    }
}
