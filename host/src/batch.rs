//! Batching: records of one partition are gathered until the batch is full
//! or the linger time since its first record has passed.

use std::collections::VecDeque;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::config::BatchSettings;
use crate::transform::Record;

/// Why a batch was flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// `batch.size` records were gathered.
    Full,
    /// `batch.linger_ms` passed since the first record.
    Linger,
    /// The partition's input ended (revoked or shutting down).
    Closed,
}

impl FlushReason {
    /// A label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Full => "full",
            FlushReason::Linger => "linger",
            FlushReason::Closed => "closed",
        }
    }
}

/// A partition's records as the dispatcher routes them: in chunks (what
/// one poll of Kafka brought for the partition), in offset order.
pub struct Input {
    chunks: mpsc::UnboundedReceiver<Vec<Record>>,
    /// What is left of the last chunk.
    carry: VecDeque<Record>,
}

impl Input {
    /// The receiving end of a partition's chunks.
    pub fn new(chunks: mpsc::UnboundedReceiver<Vec<Record>>) -> Self {
        Input {
            chunks,
            carry: VecDeque::new(),
        }
    }

    /// The next record, waiting for a chunk when none is left; `None` once
    /// the input is closed and empty. Cancel-safe: a chunk is taken whole.
    async fn recv(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.carry.pop_front() {
                return Some(record);
            }
            let chunk = self.chunks.recv().await?;
            self.carry.extend(chunk);
        }
    }
}

/// Waits for the next batch from `input`: at least one record, at most
/// `settings.max_records`. Returns `None` once the input is closed and empty.
pub async fn next_batch(
    input: &mut Input,
    settings: &BatchSettings,
) -> Option<(Vec<Record>, FlushReason)> {
    let first = input.recv().await?;
    let deadline = Instant::now() + settings.linger;
    let mut batch = Vec::with_capacity(settings.max_records.min(1024));
    batch.push(first);
    while batch.len() < settings.max_records {
        // What has arrived goes in without waiting.
        if let Some(record) = input.carry.pop_front() {
            batch.push(record);
            continue;
        }
        tokio::select! {
            biased;
            next = input.recv() => match next {
                Some(record) => batch.push(record),
                None => return Some((batch, FlushReason::Closed)),
            },
            () = sleep_until(deadline) => return Some((batch, FlushReason::Linger)),
        }
    }
    Some((batch, FlushReason::Full))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(offset: i64) -> Record {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    fn settings(max_records: usize, linger_ms: u64) -> BatchSettings {
        BatchSettings {
            max_records,
            max_bytes: 1 << 20,
            linger: Duration::from_millis(linger_ms),
        }
    }

    fn offsets(batch: &[Record]) -> Vec<i64> {
        batch.iter().map(|r| r.offset).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_when_full_without_waiting() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut rx = Input::new(rx);
        // One chunk larger than a batch, then one more record.
        tx.send((0..4).map(record).collect()).unwrap();
        tx.send(vec![record(4)]).unwrap();
        let started = Instant::now();
        let (batch, reason) = next_batch(&mut rx, &settings(3, 500)).await.unwrap();
        assert_eq!(
            (offsets(&batch), reason),
            (vec![0, 1, 2], FlushReason::Full)
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        let (batch, reason) = next_batch(&mut rx, &settings(3, 500)).await.unwrap();
        assert_eq!((offsets(&batch), reason), (vec![3, 4], FlushReason::Linger));
    }

    #[tokio::test(start_paused = true)]
    async fn linger_counts_from_the_first_record() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut rx = Input::new(rx);
        let producer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send(vec![record(0)]).unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            tx.send(vec![record(1)]).unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send(vec![record(2)]).unwrap();
            tx
        });
        let started = Instant::now();
        let (batch, reason) = next_batch(&mut rx, &settings(20, 500)).await.unwrap();
        // First record at 100 ms, deadline at 600 ms: records 0 and 1 only.
        assert_eq!((offsets(&batch), reason), (vec![0, 1], FlushReason::Linger));
        assert_eq!(started.elapsed(), Duration::from_millis(600));
        let _tx = producer.await.unwrap();
        let (batch, _) = next_batch(&mut rx, &settings(20, 500)).await.unwrap();
        assert_eq!(offsets(&batch), vec![2]);
    }

    proptest::proptest! {
        /// Whatever arrives, in chunks of any size, and whatever the limit: batches are never empty
        /// nor over the limit, and together they are the input, in order.
        #[test]
        fn batches_are_the_input_in_order_within_the_limit(
            count in 0usize..200,
            max_records in 1usize..40,
            arrival_ms in proptest::collection::vec(0u64..30, 0..200),
            chunk in 1usize..60,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            let batches = runtime.block_on(async {
                let (tx, rx) = mpsc::unbounded_channel();
                let mut rx = Input::new(rx);
                let gaps = arrival_ms.clone();
                tokio::spawn(async move {
                    let records: Vec<i64> = (0..count as i64).collect();
                    for (i, offsets) in records.chunks(chunk).enumerate() {
                        let gap = gaps.get(i).copied().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(gap)).await;
                        tx.send(offsets.iter().copied().map(record).collect()).unwrap();
                    }
                });
                let mut batches = Vec::new();
                while let Some((batch, _)) = next_batch(&mut rx, &settings(max_records, 20)).await {
                    batches.push(offsets(&batch));
                }
                batches
            });
            for batch in &batches {
                proptest::prop_assert!(!batch.is_empty() && batch.len() <= max_records);
            }
            let all: Vec<i64> = batches.concat();
            proptest::prop_assert_eq!(all, (0..count as i64).collect::<Vec<_>>());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closing_flushes_the_remainder_then_ends() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut rx = Input::new(rx);
        tx.send(vec![record(7)]).unwrap();
        drop(tx);
        let (batch, reason) = next_batch(&mut rx, &settings(20, 500)).await.unwrap();
        assert_eq!((offsets(&batch), reason), (vec![7], FlushReason::Closed));
        assert!(next_batch(&mut rx, &settings(20, 500)).await.is_none());
    }
}
