//! Parallelism within a partition (`source.ordering`). A partition's
//! records are spread over lanes; each lane batches and sends its records
//! in offset order, one batch at a time, and the lanes run at once. With
//! `"partition"` there is one lane; with `"key"` a record's key picks its
//! lane, so records with one key are never in two batches in flight; with
//! `"none"` records are dealt to the lanes a batch's worth at a time.
//!
//! The offset committed is the lowest one not yet handled in any lane
//! ([`Unhandled`]), so a restart resends what a slower lane still had and
//! never skips it.

use std::collections::VecDeque;
use std::hash::{Hash as _, Hasher as _};

use crate::config::RecordOrder;
use crate::transform::Record;

/// Picks each record's lane.
#[derive(Debug)]
pub(crate) struct Spread {
    order: RecordOrder,
    lanes: usize,
    /// Records dealt in turn so far (`"none"`, and records without a key).
    dealt: usize,
    /// How many records one lane gets before the next one's turn.
    turn: usize,
}

impl Spread {
    /// The lanes of a partition: one per batch that may be in flight
    /// (`concurrency`) unless `order` keeps the whole partition in order.
    /// A lane's turn is a batch (`max_records`).
    pub(crate) fn new(order: RecordOrder, concurrency: usize, max_records: usize) -> Self {
        let lanes = match order {
            RecordOrder::Partition => 1,
            RecordOrder::Key | RecordOrder::Unordered => concurrency.max(1),
        };
        Spread {
            order,
            lanes,
            dealt: 0,
            turn: max_records.max(1),
        }
    }

    /// How many lanes there are.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes
    }

    /// The lane of the next record, `record`.
    pub(crate) fn lane(&mut self, record: &Record) -> usize {
        if self.lanes == 1 {
            return 0;
        }
        match (self.order, &record.key) {
            (RecordOrder::Key, Some(key)) => {
                // Fixed keys: a key's lane is the same in every worker.
                let mut hasher = std::hash::DefaultHasher::new();
                key.hash(&mut hasher);
                (hasher.finish() % self.lanes as u64) as usize
            }
            // A record without a key has no order to keep.
            _ => {
                let lane = (self.dealt / self.turn) % self.lanes;
                self.dealt = self.dealt.wrapping_add(1);
                lane
            }
        }
    }
}

/// The offsets of a partition given to its lanes and not yet handled, each
/// lane's in offset order.
#[derive(Debug)]
pub(crate) struct Unhandled {
    lanes: Vec<VecDeque<i64>>,
    /// The offset after the last record given to a lane.
    next: Option<i64>,
    /// The last position stored, or where the partition started.
    stored: Option<i64>,
}

impl Unhandled {
    pub(crate) fn new(lanes: usize) -> Self {
        Unhandled {
            lanes: vec![VecDeque::new(); lanes],
            next: None,
            stored: None,
        }
    }

    /// Record `offset` went to `lane`.
    pub(crate) fn given(&mut self, lane: usize, offset: i64) {
        self.lanes[lane].push_back(offset);
        self.stored.get_or_insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |next| next.max(offset + 1)));
    }

    /// `lane` handled its oldest `count` records. Returns the position to
    /// store when it has moved on.
    pub(crate) fn handled(&mut self, lane: usize, count: usize) -> Option<i64> {
        let queue = &mut self.lanes[lane];
        queue.drain(..count.min(queue.len()));
        let position = self.position()?;
        if self.stored.is_some_and(|stored| stored >= position) {
            return None;
        }
        self.stored = Some(position);
        Some(position)
    }

    /// The lowest offset not handled yet (where a new owner starts), or
    /// the one after the last record when every record is handled.
    pub(crate) fn position(&self) -> Option<i64> {
        self.lanes
            .iter()
            .filter_map(|queue| queue.front().copied())
            .min()
            .or(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: Option<&str>) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            key: key.map(|k| k.as_bytes().to_vec()),
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn partition_order_has_one_lane() {
        let mut spread = Spread::new(RecordOrder::Partition, 8, 10);
        assert_eq!(spread.lanes(), 1);
        let lanes: Vec<usize> = (0..50)
            .map(|i| spread.lane(&record(i, Some(&format!("k{i}")))))
            .collect();
        assert!(lanes.iter().all(|&lane| lane == 0));
    }

    #[test]
    fn one_key_always_takes_one_lane_and_keys_spread_over_all() {
        let mut spread = Spread::new(RecordOrder::Key, 4, 10);
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..400 {
            let key = format!("key-{}", i % 40);
            let lane = spread.lane(&record(i, Some(&key)));
            assert_eq!(*seen.entry(key).or_insert(lane), lane, "record {i}");
        }
        let used: std::collections::BTreeSet<usize> = seen.values().copied().collect();
        assert_eq!(used.len(), 4, "40 keys over 4 lanes use them all: {seen:?}");
    }

    #[test]
    fn unordered_and_keyless_records_are_dealt_a_batch_at_a_time() {
        let mut spread = Spread::new(RecordOrder::Unordered, 3, 2);
        let lanes: Vec<usize> = (0..8)
            .map(|i| spread.lane(&record(i, Some("same"))))
            .collect();
        assert_eq!(lanes, [0, 0, 1, 1, 2, 2, 0, 0]);
        let mut spread = Spread::new(RecordOrder::Key, 2, 1);
        let lanes: Vec<usize> = (0..4).map(|i| spread.lane(&record(i, None))).collect();
        assert_eq!(lanes, [0, 1, 0, 1]);
    }

    #[test]
    fn the_position_is_the_lowest_offset_a_lane_has_not_handled() {
        let mut unhandled = Unhandled::new(2);
        assert_eq!(unhandled.position(), None);
        for (lane, offset) in [(0, 10), (1, 11), (0, 12), (1, 13), (1, 14)] {
            unhandled.given(lane, offset);
        }
        // Lane 1 is done with 11 and 13 while lane 0 still has 10.
        assert_eq!(unhandled.handled(1, 2), None);
        assert_eq!(unhandled.position(), Some(10));
        // Lane 0 is done with 10: 12 is next.
        assert_eq!(unhandled.handled(0, 1), Some(12));
        // Lane 0 is done with 12: lane 1 still has 14.
        assert_eq!(unhandled.handled(0, 1), Some(14));
        // Everything handled: after the last record.
        assert_eq!(unhandled.handled(1, 1), Some(15));
        assert_eq!(unhandled.handled(1, 0), None, "stored once");
    }
}
