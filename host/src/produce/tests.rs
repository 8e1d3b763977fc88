use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use RDKafkaErrorCode as C;

/// A broker that refuses records over `limit` bytes and, as Kafka does, a
/// whole produce batch when one of its records is over it.
struct Broker {
    limit: usize,
    /// Some record of the write is over the limit, so every batched send fails.
    batch_refused: bool,
    /// Errors to answer first, in order, whatever the record.
    failures: Mutex<VecDeque<RDKafkaErrorCode>>,
    /// Whether [`Sink::repair`] puts a permanent failure right.
    repairable: bool,
    written: Mutex<Vec<Outgoing>>,
    sends: AtomicUsize,
}

fn size(record: &Outgoing) -> usize {
    let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len);
    len(&record.key)
        + len(&record.value)
        + record
            .headers
            .iter()
            .map(|(k, v)| k.len() + len(v))
            .sum::<usize>()
}

impl Broker {
    fn new(limit: usize, records: &[Outgoing]) -> Self {
        Broker {
            limit,
            batch_refused: records.len() > 1 && records.iter().any(|r| size(r) > limit),
            failures: Mutex::new(VecDeque::new()),
            repairable: false,
            written: Mutex::new(Vec::new()),
            sends: AtomicUsize::new(0),
        }
    }

    fn failing(self, codes: &[RDKafkaErrorCode]) -> Self {
        *self.failures.lock().unwrap() = codes.iter().copied().collect();
        self
    }

    fn written(&self) -> Vec<Outgoing> {
        self.written.lock().unwrap().clone()
    }
}

impl Sink for Broker {
    async fn send(&self, record: &Outgoing, alone: bool) -> Result<(), RDKafkaErrorCode> {
        self.sends.fetch_add(1, Ordering::Relaxed);
        if let Some(code) = self.failures.lock().unwrap().pop_front() {
            return Err(code);
        }
        if (!alone && self.batch_refused) || size(record) > self.limit {
            return Err(C::MessageSizeTooLarge);
        }
        self.written.lock().unwrap().push(record.clone());
        Ok(())
    }

    async fn repair(&self, _code: RDKafkaErrorCode) -> Result<(), Option<String>> {
        if self.repairable {
            Ok(())
        } else {
            Err(Some("cannot".into()))
        }
    }
}

fn record(key: &str, value_len: usize) -> Outgoing {
    Outgoing {
        key: Some(key.as_bytes().to_vec()),
        value: Some(vec![b'v'; value_len]),
        headers: vec![("h".into(), None)],
        timestamp: Some(1),
    }
}

#[tokio::test]
async fn a_batch_refused_for_one_large_record_strips_only_that_one() {
    let records = [record("a", 10), record("big", 5000), record("c", 10)];
    let broker = Broker::new(1000, &records);
    let stripped = write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stripped, 1);
    let mut written = broker.written();
    written.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(written.len(), 3);
    assert_eq!(written[0], records[0], "written whole");
    assert_eq!(written[2], records[2], "written whole");
    assert_eq!(written[1].key.as_deref(), Some(b"big".as_slice()));
    assert_eq!(written[1].value, None);
    assert_eq!(
        written[1].headers.last(),
        Some(&(VALUE_DROPPED.into(), Some(b"5000".to_vec())))
    );
}

#[tokio::test]
async fn a_lone_record_too_large_is_stripped_after_one_attempt_alone() {
    let records = [record("big", 5000)];
    let broker = Broker::new(1000, &records);
    let stripped = write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stripped, 1);
    // Batched, alone, then without its value.
    assert_eq!(broker.sends.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn a_record_too_large_without_key_and_value_is_refused() {
    let mut huge_headers = record("k", 1);
    huge_headers.headers = vec![("h".into(), Some(vec![0; 5000]))];
    let records = [huge_headers];
    let broker = Broker::new(1000, &records);
    let stop = write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(stop, Stop::Refused(C::MessageSizeTooLarge, Some(_))),
        "{stop:?}"
    );
    assert!(broker.written().is_empty());
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_growing_backoff() {
    let records = [record("a", 1), record("b", 1)];
    let broker = Broker::new(1000, &records).failing(&[
        C::QueueFull,
        C::LeaderNotAvailable,
        C::MessageTimedOut,
    ]);
    let started = tokio::time::Instant::now();
    let stripped = write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stripped, 0);
    assert_eq!(broker.written().len(), 2);
    // Round 1: both fail (100 ms); round 2: one fails (200 ms); round 3 succeeds.
    assert_eq!(broker.sends.load(Ordering::Relaxed), 5);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_stops_at_once_without_retrying() {
    let records = [record("a", 1)];
    let broker = Broker::new(1000, &records).failing(&[C::TopicAuthorizationFailed]);
    let started = tokio::time::Instant::now();
    let stop = write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(
        stop,
        Stop::Refused(C::TopicAuthorizationFailed, Some("cannot".into()))
    );
    assert_eq!(broker.sends.load(Ordering::Relaxed), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_repaired_failure_is_retried() {
    let records = [record("a", 1)];
    let mut broker = Broker::new(1000, &records).failing(&[C::UnknownTopicOrPartition]);
    broker.repairable = true;
    write_all(&broker, &records, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(broker.written().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_a_write_waiting_to_retry() {
    let records = [record("a", 1)];
    let broker = Broker::new(1000, &records).failing(&[C::QueueFull; 1000]);
    let cancel = CancellationToken::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            cancel.cancel();
        })
    };
    let stop = write_all(&broker, &records, &cancel).await.unwrap_err();
    stopper.await.unwrap();
    assert_eq!(stop, Stop::Abandoned);
    assert!(broker.written().is_empty());
}

#[test]
fn a_record_too_large_loses_its_value_then_its_key_and_says_so() {
    let record = Outgoing {
        key: Some(b"key".to_vec()),
        value: Some(vec![b'v'; 10]),
        headers: vec![("h".into(), None)],
        timestamp: Some(1),
    };
    let without_value = smaller(&record).unwrap();
    assert_eq!(without_value.value, None);
    assert_eq!(without_value.key, record.key);
    assert_eq!(
        without_value.headers,
        vec![
            ("h".into(), None),
            (VALUE_DROPPED.into(), Some(b"10".to_vec()))
        ]
    );
    let without_key = smaller(&without_value).unwrap();
    assert_eq!(without_key.key, None);
    assert_eq!(
        without_key.headers.last(),
        Some(&(KEY_DROPPED.into(), Some(b"3".to_vec())))
    );
    assert_eq!(smaller(&without_key), None);
}

#[test]
fn a_refusal_names_the_topic_its_role_and_the_code() {
    let refused = Refused {
        role: Role::DeadLetter,
        topic: "connect-error-x".into(),
        code: C::UnknownTopicOrPartition,
        detail: Some("create it".into()),
    };
    let text = refused.to_string();
    assert!(text.contains("dead-letter topic connect-error-x"), "{text}");
    assert!(text.contains("UnknownTopicOrPartition"), "{text}");
    assert!(text.ends_with("; create it"), "{text}");
    assert_eq!(refused.code_name(), "UnknownTopicOrPartition");
}
