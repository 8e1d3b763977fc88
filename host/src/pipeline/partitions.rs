//! Every assigned partition's state, in one place, and the one rule that
//! turns it into librdkafka's pause flag.
//!
//! The dispatcher asks this table what to do and applies the answer: each
//! transition returns the pause flags to set, so the flag librdkafka keeps
//! (it survives a revoke and a re-assign) always follows the state here.

use std::collections::BTreeMap;

use crate::fleet::ResumeRequest;
use crate::source::TopicPartition;
use crate::worker::Stop;

/// What an assigned partition is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Records are fetched and handed to its worker.
    Fetching,
    /// Paused for backpressure: its worker's backlog is full.
    Behind,
    /// A batch could not be handled; nothing is fetched until `fcsink
    /// resume`, which starts again at `at`, the failed batch's first offset.
    Stopped {
        /// Why.
        why: Stop,
        /// The failed batch's first offset.
        at: i64,
    },
}

/// A pause flag to set in librdkafka: the partition and whether it is paused.
pub(crate) type Pause = (TopicPartition, bool);

/// The partitions assigned to this instance, and whether the fleet is paused.
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    states: BTreeMap<TopicPartition, State>,
    /// `fcsink pause`: nothing is fetched, whatever the partitions' states.
    fleet_paused: bool,
}

impl Partitions {
    /// Whether `tp` is fetched: the one rule behind every pause flag.
    pub(crate) fn fetching(&self, tp: &TopicPartition) -> bool {
        !self.fleet_paused && self.states.get(tp) == Some(&State::Fetching)
    }

    fn flag(&self, tp: &TopicPartition) -> Pause {
        (tp.clone(), !self.fetching(tp))
    }

    /// `tp`'s state, when it is assigned.
    pub(crate) fn state(&self, tp: &TopicPartition) -> Option<&State> {
        self.states.get(tp)
    }

    /// Whether the fleet has paused this instance.
    pub(crate) fn fleet_paused(&self) -> bool {
        self.fleet_paused
    }

    /// The assigned partitions and their states, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &State)> {
        self.states.iter()
    }

    /// Newly assigned partitions start fetching from their committed offset,
    /// whatever this instance knew of them before; every flag is set, since
    /// librdkafka keeps one from an earlier assignment.
    pub(crate) fn assign(&mut self, list: &[TopicPartition]) -> Vec<Pause> {
        for tp in list {
            self.states.insert(tp.clone(), State::Fetching);
        }
        list.iter().map(|tp| self.flag(tp)).collect()
    }

    /// Revoked partitions are forgotten: their next owner decides about them.
    pub(crate) fn revoke(&mut self, list: &[TopicPartition]) {
        for tp in list {
            self.states.remove(tp);
        }
    }

    /// `tp`'s worker is behind: pause it (only when it was fetching).
    pub(crate) fn behind(&mut self, tp: &TopicPartition) -> Option<Pause> {
        let state = self.states.get_mut(tp)?;
        (*state == State::Fetching).then(|| {
            *state = State::Behind;
            (tp.clone(), true)
        })
    }

    /// `tp`'s worker has caught up: fetch again (unless the fleet is paused).
    pub(crate) fn caught_up(&mut self, tp: &TopicPartition) -> Option<Pause> {
        let state = self.states.get_mut(tp)?;
        if *state != State::Behind {
            return None;
        }
        *state = State::Fetching;
        Some(self.flag(tp))
    }

    /// The partitions paused for backpressure.
    pub(crate) fn behind_ones(&self) -> Vec<TopicPartition> {
        self.in_state(&State::Behind)
    }

    /// The partitions neither behind nor stopped.
    pub(crate) fn fetching_ones(&self) -> Vec<TopicPartition> {
        self.in_state(&State::Fetching)
    }

    fn in_state(&self, wanted: &State) -> Vec<TopicPartition> {
        self.states
            .iter()
            .filter(|(_, state)| *state == wanted)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// `tp` stops, when it is still assigned.
    pub(crate) fn stop(&mut self, tp: &TopicPartition, why: Stop, at: i64) -> Option<Pause> {
        let state = self.states.get_mut(tp)?;
        *state = State::Stopped { why, at };
        Some((tp.clone(), true))
    }

    /// Resumes the stopped partitions `request` covers; each with the
    /// offset to start again from and why it had stopped.
    pub(crate) fn resume(&mut self, request: &ResumeRequest) -> Vec<(Pause, i64, Stop)> {
        let covered: Vec<TopicPartition> = self
            .states
            .iter()
            .filter(|(tp, state)| matches!(state, State::Stopped { .. }) && request.covers(tp))
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut resumed = Vec::with_capacity(covered.len());
        for tp in covered {
            if let Some(State::Stopped { why, at }) =
                self.states.insert(tp.clone(), State::Fetching)
            {
                resumed.push((self.flag(&tp), at, why));
            }
        }
        resumed
    }

    /// `fcsink pause` or `resume` for the whole fleet: every flag again.
    pub(crate) fn set_fleet_paused(&mut self, paused: bool) -> Vec<Pause> {
        self.fleet_paused = paused;
        self.states.keys().map(|tp| self.flag(tp)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        ("t".into(), partition)
    }

    fn stop() -> Stop {
        Stop::Policy("boom".into())
    }

    fn every() -> ResumeRequest {
        ResumeRequest {
            topic: None,
            partition: None,
        }
    }

    #[test]
    fn an_assigned_partition_fetches_and_its_flag_is_set_even_if_unpaused() {
        let mut partitions = Partitions::default();
        assert_eq!(
            partitions.assign(&[tp(0), tp(1)]),
            [(tp(0), false), (tp(1), false)]
        );
        assert!(partitions.fetching(&tp(0)));
        assert!(!partitions.fetching(&tp(2)), "not assigned");
    }

    #[test]
    fn a_partition_behind_revoked_and_assigned_back_fetches_again() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0)]);
        assert_eq!(partitions.behind(&tp(0)), Some((tp(0), true)));
        assert_eq!(partitions.behind(&tp(0)), None, "already paused");
        partitions.revoke(&[tp(0)]);
        // librdkafka still has it paused: the assignment must unpause it.
        assert_eq!(partitions.assign(&[tp(0)]), [(tp(0), false)]);
        assert!(partitions.fetching(&tp(0)));
    }

    #[test]
    fn backpressure_ends_when_the_worker_catches_up_unless_the_fleet_paused() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0), tp(1)]);
        partitions.behind(&tp(0));
        partitions.behind(&tp(1));
        assert_eq!(partitions.behind_ones(), [tp(0), tp(1)]);
        assert_eq!(partitions.caught_up(&tp(0)), Some((tp(0), false)));
        assert_eq!(partitions.caught_up(&tp(0)), None, "not behind any more");
        partitions.set_fleet_paused(true);
        assert_eq!(partitions.caught_up(&tp(1)), Some((tp(1), true)));
        assert_eq!(
            partitions.set_fleet_paused(false),
            [(tp(0), false), (tp(1), false)]
        );
    }

    #[test]
    fn a_stop_is_forgotten_on_revoke_and_not_restored_on_reassign() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0)]);
        assert_eq!(partitions.stop(&tp(0), stop(), 40), Some((tp(0), true)));
        assert!(!partitions.fetching(&tp(0)));
        partitions.revoke(&[tp(0)]);
        // Another instance may have fixed it meanwhile.
        assert_eq!(partitions.assign(&[tp(0)]), [(tp(0), false)]);
        assert_eq!(partitions.state(&tp(0)), Some(&State::Fetching));
    }

    #[test]
    fn a_stop_for_a_partition_no_longer_assigned_is_ignored() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0)]);
        partitions.revoke(&[tp(0)]);
        assert_eq!(partitions.stop(&tp(0), stop(), 7), None);
        assert_eq!(partitions.state(&tp(0)), None);
    }

    #[test]
    fn resume_starts_a_stopped_partition_at_its_failed_batch() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0), tp(1), tp(2)]);
        partitions.stop(&tp(0), stop(), 40);
        partitions.stop(&tp(1), stop(), 9);
        partitions.behind(&tp(2));
        let only_1 = ResumeRequest {
            topic: Some("t".into()),
            partition: Some(1),
        };
        assert_eq!(partitions.resume(&only_1), [((tp(1), false), 9, stop())]);
        assert_eq!(partitions.resume(&every()), [((tp(0), false), 40, stop())]);
        assert!(
            partitions.resume(&every()).is_empty(),
            "none stopped any more"
        );
        assert_eq!(partitions.state(&tp(2)), Some(&State::Behind), "untouched");
    }

    #[test]
    fn the_fleet_pause_holds_every_partition_and_lifting_it_keeps_stops() {
        let mut partitions = Partitions::default();
        partitions.assign(&[tp(0), tp(1)]);
        partitions.stop(&tp(1), stop(), 3);
        assert_eq!(
            partitions.set_fleet_paused(true),
            [(tp(0), true), (tp(1), true)]
        );
        // Assigned while paused: paused.
        assert_eq!(partitions.assign(&[tp(2)]), [(tp(2), true)]);
        assert_eq!(
            partitions.set_fleet_paused(false),
            [(tp(0), false), (tp(1), true), (tp(2), false)]
        );
        // A stopped partition resumed while the fleet is paused stays paused.
        partitions.set_fleet_paused(true);
        assert_eq!(partitions.resume(&every()), [((tp(1), true), 3, stop())]);
    }
}
