//! Targets that misbehave: a redirect is never delivery, an answer without
//! end is not read whole, a refused AssumeRole is asked once per interval
//! and never leaks the token STS echoes, and a target that refuses
//! authentication is waited for, then stops its partition visibly, without
//! dead-lettering a record.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fc_emulator::Fault;
use fcsink::config::Settings;
use fcsink::ops::status;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Process, Running, http_get, peak_rss, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

/// `n` JSON records on partition `partition` of `topic`.
async fn produce(broker: &Broker, topic: &str, partitions: i32, n: usize) {
    let values: Vec<String> = (0..n).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let records: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (Some(i as i32 % partitions), None, Some(v.as_bytes())))
        .collect();
    broker.produce(topic, &records).await;
}

fn write(dir: &Path, name: &str, toml: String) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

/// Waits until every partition of `settings`' topic is `failed` in the
/// status; returns their reasons.
async fn failed_reasons(settings: &Settings, partitions: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let report = status::collect(settings).await;
        let reasons: Vec<String> = report
            .as_ref()
            .map(|r| {
                r.partitions
                    .iter()
                    .filter(|p| p.state == "failed")
                    .map(|p| p.error.clone().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if reasons.len() == partitions {
            return reasons;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the partitions never failed in the status: {report:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Before: reqwest followed a 302 as a bodyless GET, the 2xx counted as
/// delivered and every offset was committed. Now no record is delivered,
/// to the function or to where the redirect points, and each is
/// dead-lettered with the status and the Location in its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_never_delivery_and_is_not_followed() {
    let broker = Broker::sqlite().await;
    broker.create_topic("redirect", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    // A 307 keeps the method and body: a client that followed it would
    // post the records, signed, to the emulator's plain HTTP sink.
    let stolen = format!("{}/http/stolen", emulator.url());
    emulator.inject(Fault::redirect(307, stolen.clone()));
    produce(&broker, "redirect", 1, 6).await;
    let extra =
        "[batch]\nsize = 3\nlinger_ms = 100\n[delivery]\nretries = 2\nbackoff_initial_ms = 10";
    let running = Running::start(&connector::config(
        "redirect", &broker, &emulator, "redirect", "", extra,
    ));
    wait_until("all offsets committed", WAIT, || async {
        broker
            .committed_offsets("connect-redirect", "redirect")
            .await
            == BTreeMap::from([(0, 6)])
    })
    .await;
    running.stop().await.unwrap();
    assert!(emulator.delivered().is_empty(), "nothing is delivered");
    assert!(
        emulator
            .invocations()
            .iter()
            .all(|i| i.function == "hello_world"),
        "the redirect was not followed: {:?}",
        emulator
            .invocations()
            .iter()
            .map(|i| (i.api, i.function.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(emulator.invocations().len(), 2, "a redirect is not retried");
    let dead = broker
        .consume_all("connect-error-redirect", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 6, "every record is dead-lettered");
    for letter in &dead {
        assert_eq!(letter.header("fcsink.error.code"), Some("redirect"));
        assert_eq!(letter.header("fcsink.error.status"), Some("307"));
        let message = letter.header("__connect.errors.exception.message").unwrap();
        assert!(message.contains(&stolen), "{message}");
    }
}

/// An endpoint that answers 200 with 64 MiB, streamed without a length,
/// after reading each request whole.
fn endless_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let url = format!("http://{}/endless", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = stream.read_exact(&mut body);
                let chunk = vec![b'x'; 64 << 10];
                let mut out = || -> std::io::Result<()> {
                    stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    )?;
                    for _ in 0..1024 {
                        write!(stream, "{:x}\r\n", chunk.len())?;
                        stream.write_all(&chunk)?;
                        stream.write_all(b"\r\n")?;
                    }
                    stream.write_all(b"0\r\n\r\n")
                };
                // fcsink hangs up once past its limit.
                let _ = out();
            });
        }
    });
    (url, requests)
}

/// Before: a 256 MiB answer was read whole (RSS 844 MiB). Now the read
/// stops at `max_response_bytes` and the records are dead-lettered with
/// the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_end_is_cut_at_the_limit_and_dead_letters_with_the_reason() {
    let broker = Broker::sqlite().await;
    broker.create_topic("endless", 1).await;
    let (url, requests) = endless_endpoint();
    produce(&broker, "endless", 1, 4).await;
    let target = format!("[target.http]\nurl = \"{url}\"\nmax_response_bytes = 1048576\n");
    let extra =
        "[batch]\nsize = 2\nlinger_ms = 100\n[delivery]\nretries = 1\nbackoff_initial_ms = 10";
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "endless",
        connector::config_with_target("endless", &broker, "endless", &target, extra),
    );
    let (mut process, _) = super::run_listening(&config, dir.path().join("run.log"));
    wait_until("all offsets committed", WAIT, || async {
        broker.committed_offsets("connect-endless", "endless").await == BTreeMap::from([(0, 4)])
    })
    .await;
    let rss = peak_rss(process.id());
    assert!(process.terminate().success());
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(
        log.contains("plain http://") && log.contains("in clear"),
        "an http:// target is warned about at start: {log}"
    );
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "not retried"
    );
    // Two 64 MiB answers read whole would need at least 128 MiB.
    assert!(rss < 100 << 20, "peak RSS {} MiB", rss >> 20);
    let dead = broker
        .consume_all("connect-error-endless", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 4);
    for letter in &dead {
        assert_eq!(
            letter.header("fcsink.error.code"),
            Some("response-too-large")
        );
        let message = letter.header("__connect.errors.exception.message").unwrap();
        assert!(
            message.contains("1048576") && message.contains("target.http.max_response_bytes"),
            "{message}"
        );
    }
}

/// Before: a refused AssumeRole was asked again for every batch (280 STS
/// calls in 6 s) and the token STS echoed went into every dead letter. Now
/// the refusal is remembered, the partitions stop with a scrubbed reason
/// and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_assume_role_is_asked_once_per_interval_and_never_leaks_the_token() {
    const TOKEN: &str = "CAIS8QF1q6Ft5B2yfSjIr5bNLNn9v7lE1YKPRWgL2ykkAt1dGUSlZDWHT87bE2E";
    let broker = Broker::sqlite().await;
    broker.create_topic("refused", 3).await;
    let emulator = connector::emulator(|_| {}).await;
    produce(&broker, "refused", 3, 30).await;
    let role = format!(
        "account_id = \"1234567890123456\"\nrole = \"AliyunKafkaConnectorRole\"\nsts_endpoint = \"http://{}\"",
        emulator.addr()
    );
    let extra = "[batch]\nsize = 2\nlinger_ms = 50\n[delivery]\nretries = 2\nbackoff_initial_ms = 20\n\
                 backoff_max_ms = 100\ntarget_failure_timeout_ms = 4000\n\
                 [operations]\nstatus_interval_ms = 500\n";
    let toml = connector::config("refused", &broker, &emulator, "refused", &role, extra);
    let settings = Settings::from_toml(&toml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "refused", toml);
    // The right key ID with a wrong secret: STS refuses the signature and
    // echoes its string to sign, security token included.
    let log = dir.path().join("run.log");
    let mut process = Process::start_with_env(
        FCSINK,
        &config,
        &[],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "a-wrong-secret"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN),
            ("FCSINK_LOG", "debug"),
        ],
        log.clone(),
    );
    let reasons = failed_reasons(&settings, 3).await;
    let calls = emulator.sts_requests();
    assert!(process.terminate().success());
    for reason in &reasons {
        assert!(reason.contains("SignatureDoesNotMatch"), "{reason}");
        assert!(!reason.contains("CAIS8QF1q6Ft5B2yfSjIr5"), "{reason}");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("STS refused AssumeRole"), "{log}");
    assert!(
        !log.contains("CAIS8QF1q6Ft5B2yfSjIr5"),
        "the token is in the log:\n{log}"
    );
    // Three partitions retrying for 4 s asked once (twice if the interval
    // turned), not once per attempt.
    assert!(calls <= 2, "{calls} STS calls");
    assert!(emulator.invocations().is_empty());
    assert!(
        broker
            .consume_all("connect-error-refused", Duration::from_secs(2))
            .await
            .is_empty(),
        "nothing is dead-lettered"
    );
    assert!(
        broker
            .committed_offsets("connect-refused", "refused")
            .await
            .is_empty()
    );
}

/// Before: a 403 dead-lettered every record at full speed. Now a refusal
/// shorter than `delivery.target_failure_timeout_ms` ends with everything
/// delivered, and nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_refusing_for_less_than_the_timeout_delivers_everything() {
    let broker = Broker::sqlite().await;
    broker.create_topic("forbidden-a-while", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(403).times(6));
    produce(&broker, "forbidden-a-while", 1, 6).await;
    let extra = "[batch]\nsize = 3\nlinger_ms = 100\n[delivery]\nretries = 1\nbackoff_initial_ms = 50\n\
                 backoff_max_ms = 200\ntarget_failure_timeout_ms = 30000";
    let running = Running::start(&connector::config(
        "forbidden-a-while",
        &broker,
        &emulator,
        "forbidden-a-while",
        "",
        extra,
    ));
    wait_until("all offsets committed", WAIT, || async {
        broker
            .committed_offsets("connect-forbidden-a-while", "forbidden-a-while")
            .await
            == BTreeMap::from([(0, 6)])
    })
    .await;
    running.stop().await.unwrap();
    assert_eq!(connector::delivered(&emulator).len(), 6);
    assert!(
        broker
            .consume_all("connect-error-forbidden-a-while", Duration::from_secs(2))
            .await
            .is_empty()
    );
}

/// … and one longer stops the partition visibly (status, `/readyz`,
/// `/metrics`) with nothing dead-lettered or committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_refusing_for_longer_stops_the_partition_visibly() {
    let broker = Broker::sqlite().await;
    broker.create_topic("forbidden", 1).await;
    let emulator = connector::emulator(|_| {}).await;
    emulator.inject(Fault::status(403));
    produce(&broker, "forbidden", 1, 6).await;
    let extra = "[batch]\nsize = 3\nlinger_ms = 100\n[delivery]\nretries = 1\nbackoff_initial_ms = 50\n\
                 backoff_max_ms = 200\ntarget_failure_timeout_ms = 2000\n\
                 [operations]\nstatus_interval_ms = 500\n";
    let dir = tempfile::tempdir().unwrap();
    let toml = connector::config("forbidden", &broker, &emulator, "forbidden", "", extra);
    let settings = Settings::from_toml(&toml).unwrap();
    let config = write(dir.path(), "forbidden", toml);
    let (mut process, port) = super::run_listening(&config, dir.path().join("run.log"));
    let reasons = failed_reasons(&settings, 1).await;
    assert!(
        reasons[0].contains("target_failure_timeout_ms"),
        "{reasons:?}"
    );
    assert!(reasons[0].contains("403"), "{reasons:?}");
    let (ready, why) = http_get(port, "/readyz").await.expect("/readyz answers");
    assert_eq!(ready, 503, "{why}");
    let (_, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
    assert!(
        metrics.contains("fcsink_partitions_stopped{cause=\"target\",code=\"InjectedFault\"} 1\n"),
        "{metrics}"
    );
    let attempts = emulator.invocations().len();
    assert!(process.terminate().success());
    // Paced by the backoff, not at full speed.
    assert!((3..200).contains(&attempts), "{attempts} attempts");
    assert!(
        broker
            .consume_all("connect-error-forbidden", Duration::from_secs(2))
            .await
            .is_empty(),
        "nothing is dead-lettered"
    );
    assert!(
        broker
            .committed_offsets("connect-forbidden", "forbidden")
            .await
            .is_empty()
    );
}
