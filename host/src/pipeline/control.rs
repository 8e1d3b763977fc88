//! The dispatcher's side of the control plane: fleet-wide pause and resume,
//! resuming partitions stopped by the failure policy, runtime settings that
//! the dispatcher applies (concurrency, send mode), and the state it publishes.

use rdkafka::Offset;
use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::TopicPartitionList;

use super::Dispatcher;
use crate::control::ResumeRequest;
use crate::metrics;
use crate::source::{self, Consumer, METADATA_TIMEOUT, TopicPartition};
use crate::worker::Stop;

impl Dispatcher {
    /// Whether `tp` should be fetched: not paused by the fleet, not stopped
    /// by the failure policy, and its worker not behind.
    fn fetching(&self, tp: &TopicPartition) -> bool {
        !self.current.paused
            && !self.stopped.contains(tp)
            && self.partitions.get(tp).is_none_or(|p| !p.paused)
    }

    /// Applies new runtime settings. Workers read theirs per batch; the
    /// dispatcher applies the rest.
    pub(super) fn on_live(&mut self, consumer: &Consumer) {
        let live = *self.live.borrow_and_update();
        let before = std::mem::replace(&mut self.current, live);
        if live == before {
            return;
        }
        if live.concurrency != before.concurrency {
            self.shared.chains.resize(live.concurrency);
        }
        if live.paused != before.paused {
            for tp in &self.assigned {
                source::set_paused(consumer, tp, !self.fetching(tp));
            }
            if live.paused {
                tracing::info!("Paused: batches in flight finish, nothing new is fetched");
            } else {
                tracing::info!("Resumed");
            }
        }
        tracing::info!(settings = ?live.describe(), "Runtime settings applied");
        self.board
            .update(|status| status.settings = live.describe());
        self.publish_partitions();
    }

    /// After an assignment: pause what the fleet has paused, mark the instance ready.
    pub(super) fn on_assigned(&mut self, consumer: &Consumer) {
        if self.current.paused {
            for tp in &self.assigned {
                source::set_paused(consumer, tp, true);
            }
        }
        self.readiness.set(true);
        self.publish_partitions();
    }

    /// Resumes the stopped partitions `request` covers, from the first
    /// offset not handled: the records after the failed batch were fetched
    /// but not kept, so the partition is sent back to its stored offset.
    pub(super) fn on_resume(&mut self, consumer: &Consumer, request: &ResumeRequest) {
        let resumed: Vec<TopicPartition> = self
            .stopped
            .iter()
            .filter(|tp| request.covers(tp))
            .cloned()
            .collect();
        if resumed.is_empty() {
            return;
        }
        // The stored offsets are those after the last handled batch.
        source::commit_now(consumer);
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &resumed {
            list.add_partition(topic, *partition);
        }
        let committed = consumer.committed_offsets(list, METADATA_TIMEOUT);
        for tp in resumed {
            self.stopped.remove(&tp);
            let why = self.failures.remove(&tp);
            let offset = committed
                .as_ref()
                .ok()
                .and_then(|c| c.find_partition(&tp.0, tp.1))
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(_)))
                .unwrap_or(Offset::Beginning);
            if let Err(err) = consumer.seek(&tp.0, tp.1, offset, METADATA_TIMEOUT) {
                tracing::warn!(%err, topic = %tp.0, partition = tp.1, "Cannot rewind the resumed partition");
            }
            let why = why.map(|why| why.to_string()).unwrap_or_default();
            tracing::info!(topic = %tp.0, partition = tp.1, ?offset, stopped_by = why, "Resuming a stopped partition");
            source::set_paused(consumer, &tp, !self.fetching(&tp));
        }
        self.publish_partitions();
    }

    /// Publishes the assigned partitions and their state, in the status,
    /// `/metrics` and `/readyz`.
    pub(super) fn publish_partitions(&self) {
        let paused = self.current.paused;
        let list: Vec<_> = self
            .assigned
            .iter()
            .map(|tp| match self.failures.get(tp) {
                Some(why) => (tp.clone(), "failed", Some(why.to_string())),
                None if paused => (tp.clone(), "paused", None),
                None => (tp.clone(), "running", None),
            })
            .collect();
        self.publish_stops();
        let last_error = self.failures.values().next().map(ToString::to_string);
        self.board.update(|status| {
            status.state = if paused { "paused" } else { "running" }.into();
            if last_error.is_some() {
                status.last_error = last_error;
            }
        });
        self.board.set_partitions(list);
    }
}

impl Dispatcher {
    /// The assigned partitions that are stopped, in `/metrics` by cause and
    /// code; `/readyz` fails while a refused write stops one.
    fn publish_stops(&self) {
        let stops: Vec<(&'static str, String)> = self
            .assigned
            .iter()
            .filter_map(|tp| self.failures.get(tp))
            .map(|stop| match stop {
                Stop::Policy(_) => ("failure_policy", String::new()),
                Stop::Refused(refused) => (refused.role.as_str(), refused.code_name()),
                Stop::Target(failure) => ("target", failure.code.clone()),
            })
            .collect();
        let refused = self
            .assigned
            .iter()
            .filter(|tp| matches!(self.failures.get(tp), Some(Stop::Refused(_))))
            .count();
        let target = self
            .assigned
            .iter()
            .filter(|tp| matches!(self.failures.get(tp), Some(Stop::Target(_))))
            .count();
        metrics::partitions_stopped(&stops);
        self.readiness.set_refused_writes(refused);
        self.readiness.set_failing_target(target);
    }
}
