//! A batch in flight: what the plugin chain made of it, the source record
//! behind each output, and what a function's answer says of its records.

use std::collections::BTreeSet;

use crate::dlq::{Reason, Stage};
use crate::invoke::idempotency::BatchOrigin;
use crate::invoke::partial::{self, Report};
use crate::retry::Settled;
use crate::transform::{Record, Transformed};

/// A transformed batch on its way to the function. Outputs are numbered
/// in order; each comes from one source record, as consumed.
pub(crate) struct InFlight {
    transformed: Transformed,
}

impl InFlight {
    pub(crate) fn new(transformed: Transformed) -> Self {
        InFlight { transformed }
    }

    /// The records to send.
    pub(crate) fn outputs(&self) -> &[Record] {
        &self.transformed.records
    }

    /// Records the plugins dropped.
    pub(crate) fn dropped(&self) -> usize {
        self.transformed.dropped
    }

    /// Outputs `indices`, for a request's body.
    pub(crate) fn subset(&self, indices: &[usize]) -> Vec<&Record> {
        indices
            .iter()
            .map(|&i| &self.transformed.records[i])
            .collect()
    }

    /// The source records behind outputs `indices`, each once.
    pub(crate) fn sources(&self, indices: &[usize]) -> Vec<&Record> {
        let origins: BTreeSet<usize> = indices
            .iter()
            .map(|&i| self.transformed.origins[i])
            .collect();
        origins
            .into_iter()
            .map(|i| self.transformed.source(i))
            .collect()
    }

    /// The source records a plugin failed, with the reason for each.
    pub(crate) fn plugin_failures(&self) -> Vec<(&Record, Reason)> {
        self.transformed
            .failed
            .iter()
            .map(|failure| {
                let record = self.transformed.source(failure.origin);
                tracing::warn!(plugin = %failure.plugin, offset = record.offset, reason = %failure.reason, "Plugin failed a record");
                let reason = Reason {
                    stage: Stage::Transform,
                    code: "plugin-failed-record".into(),
                    message: failure.reason.clone(),
                    component: failure.plugin.clone(),
                    attempts: 0,
                    status: None,
                };
                (record, reason)
            })
            .collect()
    }

    /// Which of outputs `pending` a synchronous answer `body` reports failed.
    pub(crate) fn settle(&self, body: &[u8], pending: &[usize]) -> Settled {
        match partial::report(body) {
            Report::All => Settled::default(),
            Report::Failed(ids) => Settled {
                failed: pending
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let r = &self.transformed.records[i];
                        ids.iter().any(|id| {
                            id.offset == r.offset
                                && id.partition == r.partition
                                && id.topic == r.topic
                        })
                    })
                    .collect(),
                why: "the function listed the record in batchItemFailures".into(),
            },
            Report::Invalid(why) => Settled {
                failed: pending.to_vec(),
                why,
            },
        }
    }

    /// What names the batch's requests: its topic, partition and the first
    /// and last source offset behind its outputs (the same batch through
    /// the same plugins gives the same); `None` without outputs.
    pub(crate) fn origin<'a>(&'a self, connector: &'a str) -> Option<BatchOrigin<'a>> {
        let sources: Vec<&Record> = (0..self.outputs().len())
            .map(|i| self.source_of(i))
            .collect();
        let first = sources.first()?;
        let offsets = sources.iter().map(|r| r.offset);
        Some(BatchOrigin {
            connector,
            topic: &first.topic,
            partition: first.partition,
            first_offset: offsets.clone().min()?,
            last_offset: offsets.max()?,
        })
    }

    /// The source record behind output `index`.
    pub(crate) fn source_of(&self, index: usize) -> &Record {
        self.transformed.source(self.transformed.origins[index])
    }

    /// The source records of outputs `pending` that are not `failed`.
    pub(crate) fn delivered(&self, pending: &[usize], failed: &[usize]) -> Vec<&Record> {
        pending
            .iter()
            .filter(|i| !failed.contains(i))
            .map(|&i| self.source_of(i))
            .collect()
    }
}
