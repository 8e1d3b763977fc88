//! `source.buffer_mb` as one byte budget. Every record the pipeline holds
//! counts against it from the moment the dispatcher routes it to its
//! partition's worker until its batch is handled: while it is queued, while
//! its batch waits for a concurrency permit, and while the batch is in
//! flight. The dispatcher pauses partitions to keep the total within the
//! budget (see [`Limits`]); librdkafka's prefetch, the rest of
//! `source.buffer_mb`, is bounded by its own settings (see `source`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::transform::Record;

/// The bytes held by every partition together.
#[derive(Debug, Default)]
pub(crate) struct Total(AtomicUsize);

impl Total {
    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one partition holds, in bytes and in records; part of a [`Total`].
/// The dispatcher adds what it routes, the worker releases each batch once
/// handled; what is left when the last handle drops (a stopped or revoked
/// worker's queue) is released then.
#[derive(Clone)]
pub(crate) struct Held(Arc<Counts>);

struct Counts {
    bytes: AtomicUsize,
    records: AtomicUsize,
    total: Arc<Total>,
}

impl Held {
    pub(crate) fn new(total: Arc<Total>) -> Self {
        Held(Arc::new(Counts {
            bytes: AtomicUsize::new(0),
            records: AtomicUsize::new(0),
            total,
        }))
    }

    /// Counts `record` in; returns this partition's new size.
    pub(crate) fn add(&self, record: &Record) -> Size {
        let bytes = footprint(record);
        self.0.total.0.fetch_add(bytes, Ordering::Relaxed);
        Size {
            bytes: self.0.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes,
            records: self.0.records.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Takes `batch` out of the queue; its bytes stay held until the
    /// returned guard drops, when the batch has been handled.
    pub(crate) fn batch(&self, batch: &[Record]) -> Release {
        Release {
            held: self.clone(),
            size: Size {
                bytes: batch.iter().map(footprint).sum(),
                records: batch.len(),
            },
        }
    }

    /// This partition's size now.
    pub(crate) fn size(&self) -> Size {
        Size {
            bytes: self.0.bytes.load(Ordering::Relaxed),
            records: self.0.records.load(Ordering::Relaxed),
        }
    }

    fn release(&self, size: Size) {
        self.0.bytes.fetch_sub(size.bytes, Ordering::Relaxed);
        self.0.records.fetch_sub(size.records, Ordering::Relaxed);
        self.0.total.0.fetch_sub(size.bytes, Ordering::Relaxed);
    }
}

impl Drop for Counts {
    fn drop(&mut self) {
        self.total
            .0
            .fetch_sub(*self.bytes.get_mut(), Ordering::Relaxed);
    }
}

/// A handled batch's bytes, released on drop (whatever became of the
/// batch: handled, stopped, abandoned or panicked).
pub(crate) struct Release {
    held: Held,
    size: Size,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.held.release(self.size);
    }
}

/// Bytes and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub bytes: usize,
    pub records: usize,
}

/// When a partition must pause, and when it may resume.
///
/// Each partition may always hold its share of the budget. Past its share
/// it may go on up to two batches' worth of records (enough to keep its
/// worker busy) or two requests' worth of bytes (enough for any batch), but
/// only while the total is within the budget: the floors never multiply past
/// it. Once the total is over the budget every partition pauses, and
/// partitions resume once the total is back under half of it. So the total
/// stays within the budget plus the record that crossed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The bytes every partition together may hold.
    pub budget: usize,
    /// This partition's share of the budget.
    pub share: usize,
    /// Two batches: `2 × batch.size`.
    pub min_records: usize,
    /// Two requests: `2 × batch.max_request_bytes`.
    pub min_bytes: usize,
}

impl Limits {
    /// Pause: the total is over the budget, or the partition is past its
    /// share and past one of the floors.
    pub(crate) fn full(&self, partition: Size, total: usize) -> bool {
        total > self.budget
            || (partition.bytes > self.share
                && (partition.records >= self.min_records || partition.bytes > self.min_bytes))
    }

    /// Resume: the total is under half the budget, and the partition under
    /// half its share or half of both floors.
    pub(crate) fn drained(&self, partition: Size, total: usize) -> bool {
        total <= self.budget / 2
            && (partition.bytes <= self.share / 2
                || (partition.records < self.min_records / 2
                    && partition.bytes <= self.min_bytes / 2))
    }

    /// Whether `partitions` partitions can each hold two requests' worth
    /// within the budget; if not, they take turns and throughput suffers.
    pub(crate) fn fits(&self, partitions: usize) -> bool {
        partitions.saturating_mul(self.min_bytes) <= self.budget
    }
}

/// Roughly what a record takes in memory: its bytes plus a fixed overhead.
fn footprint(record: &Record) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD + record.carried_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: Option<&[u8]>) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_batch_stays_held_until_it_is_handled() {
        let total = Arc::new(Total::default());
        let held = Held::new(total.clone());
        let batch = [record(Some(&[0; 1000])), record(None)];
        let first = held.add(&batch[0]);
        assert!(first.bytes > 1000 && first.records == 1, "{first:?}");
        let both = held.add(&batch[1]);
        assert!(both.bytes > first.bytes && both.records == 2);
        assert_eq!(total.bytes(), both.bytes);
        let release = held.batch(&batch);
        assert_eq!(held.size(), both, "a formed batch is still held");
        drop(release);
        assert_eq!(
            held.size(),
            Size {
                bytes: 0,
                records: 0
            }
        );
        assert_eq!(total.bytes(), 0);
    }

    #[test]
    fn what_a_dropped_partition_held_leaves_the_total() {
        let total = Arc::new(Total::default());
        let kept = Held::new(total.clone());
        let dropped = Held::new(total.clone());
        kept.add(&record(Some(&[0; 10])));
        let queued = dropped.add(&record(Some(&[0; 500])));
        assert_eq!(total.bytes(), kept.size().bytes + queued.bytes);
        drop(dropped);
        assert_eq!(total.bytes(), kept.size().bytes);
    }

    #[test]
    fn small_records_are_bounded_by_the_share_big_ones_by_two_requests() {
        let limits = Limits {
            budget: 1_000_000,
            share: 1000,
            min_records: 10,
            min_bytes: 50_000,
        };
        let size = |bytes, records| Size { bytes, records };
        // Within its share, a backlog is never full while the total fits.
        assert!(!limits.full(size(1000, 500), 1000));
        // Past it: full with two batches of records, not before (unless past two requests).
        assert!(!limits.full(size(1001, 9), 1001));
        assert!(limits.full(size(1001, 10), 1001));
        assert!(limits.full(size(50_001, 1), 50_001));
        // Drained under half the share, or under half of both floors.
        assert!(limits.drained(size(500, 9), 500));
        assert!(!limits.drained(size(501, 5), 501));
        assert!(limits.drained(size(25_000, 4), 25_000));
        assert!(!limits.drained(size(25_001, 4), 25_001));
    }

    #[test]
    fn the_floors_never_multiply_past_the_budget() {
        let limits = Limits {
            budget: 100_000,
            share: 500,
            min_records: 10,
            min_bytes: 50_000,
        };
        let size = |bytes, records| Size { bytes, records };
        // Within the floors while the total fits; paused once it does not,
        // even a partition that holds nothing yet.
        assert!(!limits.full(size(20_000, 2), 100_000));
        assert!(limits.full(size(20_000, 2), 100_001));
        assert!(limits.full(size(0, 0), 100_001));
        // Nothing resumes until the total is back under half the budget.
        assert!(!limits.drained(size(0, 0), 50_001));
        assert!(limits.drained(size(0, 0), 50_000));
        assert!(limits.fits(2) && !limits.fits(3));
    }
}
