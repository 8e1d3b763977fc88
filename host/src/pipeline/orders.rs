//! The dispatcher's side of the fleet (`crate::fleet`): fleet-wide pause
//! and resume, resuming partitions stopped by the failure policy, runtime
//! settings that the dispatcher applies (concurrency), and the state it
//! publishes.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer as _;

use super::partitions::State;
use super::{Dispatcher, apply};
use crate::fleet::ResumeRequest;
use crate::metrics;
use crate::source::Consumer;
use crate::worker::Stop;

impl Dispatcher {
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
            self.shared.requests.resize(live.concurrency);
        }
        if live.paused != before.paused {
            let pauses = self.states.set_fleet_paused(live.paused);
            apply(consumer, pauses);
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

    /// Resumes the stopped partitions `request` covers at their failed
    /// batch's first offset: the records after it were fetched but not
    /// kept. The seek does not wait for the broker.
    pub(super) fn on_resume(&mut self, consumer: &Consumer, request: &ResumeRequest) {
        let resumed = self.states.resume(request);
        if resumed.is_empty() {
            return;
        }
        for (pause, at, why) in resumed {
            let (topic, partition) = &pause.0;
            if let Err(err) = consumer.seek(topic, *partition, Offset::Offset(at), Duration::ZERO) {
                tracing::warn!(%err, topic, partition, "Cannot rewind the resumed partition");
            }
            tracing::info!(topic, partition, offset = at, stopped_by = %why, "Resuming a stopped partition");
            apply(consumer, [pause]);
        }
        self.publish_partitions();
    }

    /// Publishes the assigned partitions and their state, in the status,
    /// `/metrics` and `/readyz`.
    pub(super) fn publish_partitions(&self) {
        // The request budget is shared by assigned partitions.
        self.shared
            .rate
            .share()
            .set_assigned(self.states.iter().count());
        let paused = self.states.fleet_paused();
        let list: Vec<_> = self
            .states
            .iter()
            .map(|(tp, state)| match state {
                State::Stopped { why, .. } => (tp.clone(), "failed", Some(why.to_string())),
                _ if paused => (tp.clone(), "paused", None),
                State::Fetching | State::Behind => (tp.clone(), "running", None),
            })
            .collect();
        self.publish_stops();
        let last_error = self.stops().next().map(ToString::to_string);
        self.board.update(|status| {
            status.state = if paused { "paused" } else { "running" }.into();
            if last_error.is_some() {
                status.last_error = last_error;
            }
        });
        self.board.set_partitions(list);
    }

    /// Why each stopped partition stopped.
    fn stops(&self) -> impl Iterator<Item = &Stop> {
        self.states.iter().filter_map(|(_, state)| match state {
            State::Stopped { why, .. } => Some(why),
            State::Fetching | State::Behind => None,
        })
    }

    /// The assigned partitions that are stopped, in `/metrics` by cause and
    /// code; `/readyz` fails while a refused write or a failing target stops one.
    fn publish_stops(&self) {
        let stops: Vec<(&'static str, String)> = self.stops().map(Stop::labels).collect();
        let mut unready = BTreeMap::new();
        for why in self.stops().filter_map(Stop::unready_because) {
            *unready.entry(why).or_default() += 1;
        }
        metrics::partitions_stopped(self.metrics_id, &stops);
        self.readiness.set_stopped(unready);
    }
}
