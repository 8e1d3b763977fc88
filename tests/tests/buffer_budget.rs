//! `source.buffer_mb` is one byte budget over everything fcsink holds of
//! the records: queued for their partition's worker, in a batch waiting for
//! a concurrency permit, in flight. Before, each partition could hold two
//! requests' worth past its share of the buffer, so 200 partitions of 1 MB
//! records against a slow function held all of them at once (232 MiB peak
//! here against 159 MiB now, for 400 records).

use std::collections::BTreeMap;
use std::time::Duration;

use fc_emulator::Fault;
use fcsink_tests::broker::{Broker, LARGE_RECORDS};
use fcsink_tests::connector::{self, Process, peak_rss, wait_until};

const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");
const PARTITIONS: i32 = 200;
const RECORDS: usize = 400;
const RECORD_BYTES: usize = 1 << 20;
const BUFFER_MB: u64 = 64;

/// The README's bound (Configuration, `source.buffer_mb`): what fcsink
/// needs on its own, plus `buffer_mb`, plus per batch in flight its records
/// a second time (what a rewriting plugin returns beside the records as
/// consumed) and one encoded request.
fn bound(concurrency: u64, batch_bytes: u64, max_request_bytes: u64) -> u64 {
    (64 << 20) + (BUFFER_MB << 20) + concurrency * (2 * batch_bytes + max_request_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_partitions_of_megabyte_records_stay_within_the_buffer() {
    let broker = Broker::sqlite().await;
    broker
        .create_topic_with("wide", PARTITIONS, 1, &[LARGE_RECORDS])
        .await;
    // A slow function: the records pile up in fcsink, not at the broker.
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::latency(Duration::from_millis(500)));
    let values: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| {
            let mut value = format!("{i:08}").into_bytes();
            value.resize(RECORD_BYTES, b'x');
            value
        })
        .collect();
    for chunk in values.chunks(40).enumerate() {
        let (first, chunk) = chunk;
        let records: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let partition = ((first * 40 + i) % PARTITIONS as usize) as i32;
                (Some(partition), None, Some(v.as_slice()))
            })
            .collect();
        broker.produce("wide", &records).await;
    }

    let (concurrency, batch_size, max_request_bytes) = (2u64, 10u64, 4u64 << 20);
    let extra = format!(
        "[batch]\nsize = {batch_size}\nlinger_ms = 200\nmax_request_bytes = {max_request_bytes}\n"
    );
    let config = connector::config(
        "wide",
        &broker,
        &emulator,
        "wide",
        "send_mode = \"sync\"",
        &extra,
    )
    .replace(
        "concurrency = 3",
        &format!("concurrency = {concurrency}\nbuffer_mb = {BUFFER_MB}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.toml");
    std::fs::write(&path, config).unwrap();
    let mut process = Process::start(FCSINK, &path, dir.path().join("run.log"));
    let expected: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, (RECORDS / PARTITIONS as usize) as i64))
        .collect();
    wait_until(
        "every record committed",
        Duration::from_secs(300),
        || async { broker.committed_offsets("connect-wide", "wide").await == expected },
    )
    .await;
    let rss = peak_rss(process.id());
    eprintln!("peak RSS {} MiB", rss >> 20);
    assert!(process.terminate().success());
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(
        log.contains("source.buffer_mb is too small"),
        "the start says the buffer is too small for 200 partitions"
    );
    let delivered = connector::delivered(&emulator).len();
    assert_eq!(delivered, RECORDS, "every record reached the function");
    let bound = bound(
        concurrency,
        batch_size * RECORD_BYTES as u64,
        max_request_bytes,
    );
    assert!(
        rss <= bound,
        "peak RSS {} MiB, over the bound of {} MiB",
        rss >> 20,
        bound >> 20
    );
}
