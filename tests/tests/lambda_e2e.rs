//! Kafka → fcsink → AWS Lambda and plain HTTP end to end: a real broker
//! (Tansu), the emulator's Lambda mode for faults, moto's Lambda server for
//! SigV4 as AWS verifies it, and the result topics read back with an
//! independent client (Python confluent-kafka).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use fc_emulator::{Api, Emulator, Fault, Invocation};
use fcsink::config::{Settings, TargetSettings};
use fcsink::invoke::aws_credentials::AwsCredentials;
use fcsink::invoke::lambda::LambdaTarget;
use fcsink_tests::broker::Broker;
use fcsink_tests::connector::{self, Running, wait_until};
use fcsink_tests::python::{Moto, PyRecord, read_topic};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

async fn setup(topic: &str, partitions: i32) -> (Broker, Emulator) {
    let broker = Broker::sqlite().await;
    broker.create_topic(topic, partitions).await;
    let emulator = connector::emulator(|_| {}).await;
    (broker, emulator)
}

/// `n` JSON records over `partitions`; record `i` has key `key-i` and value
/// `{"n":i,"tag":…}` where the tag comes from `tag(i)`.
async fn produce(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    n: usize,
    tag: impl Fn(usize) -> &'static str,
) {
    let keys: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();
    let values: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"n":{i},"tag":"{}"}}"#, tag(i)))
        .collect();
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                Some(i as i32 % partitions),
                Some(keys[i].as_bytes()),
                Some(values[i].as_bytes()),
            )
        })
        .collect();
    broker.produce(topic, &records).await;
}

fn lambda_table(emulator: &Emulator, extra: &str) -> String {
    format!(
        "[target.lambda]\nfunction = \"orders-fn\"\nqualifier = \"live\"\nregion = \"us-east-1\"\n\
         endpoint = \"http://{}\"\ntimeout_ms = 10000\n{extra}",
        emulator.addr()
    )
}

fn lambda_calls(emulator: &Emulator) -> Vec<Invocation> {
    emulator
        .invocations()
        .into_iter()
        .filter(|i| i.api == Api::Lambda)
        .collect()
}

/// The `n` of every record in a Confluent-format body.
fn numbers_confluent(body: &[u8]) -> Vec<i64> {
    let elements: Vec<Value> = serde_json::from_slice(body).unwrap();
    elements
        .iter()
        .map(|e| e["payload"]["value"]["n"].as_i64().unwrap())
        .collect()
}

/// The `n` of every record in an AWS Kafka event body.
fn numbers_aws(body: &[u8]) -> Vec<i64> {
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["eventSource"], "SelfManagedKafka");
    event["records"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|records| records.as_array().unwrap().clone())
        .map(|r| {
            let value = base64::engine::general_purpose::STANDARD
                .decode(r["value"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<Value>(&value).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

fn n_of(record: &PyRecord) -> i64 {
    let value: Value = serde_json::from_str(record.value.as_deref().unwrap()).unwrap();
    value["payload"]["value"]["n"].as_i64().unwrap()
}

async fn wait_committed(broker: &Broker, group: &str, topic: &str, expected: BTreeMap<i32, i64>) {
    wait_until("offsets committed up to the end", WAIT, || async {
        broker.committed_offsets(group, topic).await == expected
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lambda_gets_confluent_payloads_and_answers_go_to_the_success_topic() {
    let (broker, emulator) = setup("orders", 2).await;
    produce(&broker, "orders", 2, 30, |_| "ok").await;
    let config = connector::config_with_target(
        "lam",
        &broker,
        "orders",
        &lambda_table(&emulator, ""),
        "[batch]\nsize = 10\nlinger_ms = 100",
    );
    let running = Running::start(&config);
    wait_committed(
        &broker,
        "connect-lam",
        "orders",
        BTreeMap::from([(0, 15), (1, 15)]),
    )
    .await;
    running.stop().await.unwrap();

    let calls = lambda_calls(&emulator);
    let mut sent: Vec<i64> = calls
        .iter()
        .flat_map(|c| numbers_confluent(&c.body))
        .collect();
    sent.sort();
    assert_eq!(sent, (0..30).collect::<Vec<_>>(), "each record once");
    for call in &calls {
        assert_eq!(
            call.header("x-amz-invocation-type"),
            Some("RequestResponse")
        );
        assert_eq!(call.qualifier.as_deref(), Some("live"));
        assert_eq!(call.status, 200);
        assert!(numbers_confluent(&call.body).len() <= 10);
    }

    // The emulator's function echoes its event: one success record per
    // input record, its element of the answer, keyed and labelled by it.
    let success = read_topic(&broker.bootstrap(), "success-lam").await;
    assert_eq!(success.len(), 30);
    for record in &success {
        let n = n_of(record);
        assert_eq!(record.key.as_deref(), Some(format!("key-{n}").as_str()));
        assert_eq!(record.header("input_record_topic"), Some("orders"));
        assert_eq!(
            record.header("input_record_partition"),
            Some((n % 2).to_string().as_str())
        );
        assert_eq!(
            record.header("input_record_offset"),
            Some((n / 2).to_string().as_str())
        );
        assert!(
            record
                .header("input_record_timestamp")
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_faults_are_retried_then_reported_and_dead_lettered() {
    let broker = Broker::sqlite().await;
    broker.create_topic("faults", 1).await;
    let emulator = connector::emulator(|c| c.lambda_sync_limit = 4096).await;
    // Throttling with Retry-After and a 5xx storm are retried through; a
    // poison record keeps failing in the function; one record is larger
    // than the emulator's Lambda limit (413).
    emulator.inject(Fault::status(429).retry_after(1).times(2));
    emulator.inject(Fault::status(502).times(2));
    emulator.inject(Fault::function_error("cannot handle poison").matching("poison"));
    let config = connector::config_with_target(
        "lamf",
        &broker,
        "faults",
        &lambda_table(&emulator, ""),
        "[batch]\nsize = 5\nlinger_ms = 50\nmax_request_bytes = 8192\n\
         [delivery]\nretries = 5\nbackoff_initial_ms = 50\nbackoff_max_ms = 200",
    );
    produce(&broker, "faults", 1, 10, |i| {
        if i == 3 { "poison" } else { "ok" }
    })
    .await;
    let big = format!(r#"{{"n":10,"tag":"{}"}}"#, "x".repeat(5000));
    broker
        .produce(
            "faults",
            &[(Some(0), Some(b"key-10"), Some(big.as_bytes()))],
        )
        .await;
    let running = Running::start(&config);
    wait_committed(&broker, "connect-lamf", "faults", BTreeMap::from([(0, 11)])).await;
    running.stop().await.unwrap();

    let calls = lambda_calls(&emulator);
    assert!(calls.iter().any(|c| c.status == 429), "throttled");
    assert!(calls.iter().any(|c| c.status == 502), "5xx storm");
    // (The emulator refuses the oversized request before logging it: its
    // 413 shows in the dead-letter code below.)
    let delivered: BTreeSet<i64> = calls
        .iter()
        .filter(|c| c.status == 200 && !c.failed)
        .flat_map(|c| numbers_confluent(&c.body))
        .collect();
    // No partial response here: bisection finds the poison record, and the
    // rest of its batch is delivered.
    let poison_batch: BTreeSet<i64> = BTreeSet::from([3]);
    let expected: BTreeSet<i64> = (0..10).filter(|n| *n != 3).collect();
    assert_eq!(delivered, expected);
    // Retries repeat a request's Idempotency-Key; the halves bisection
    // sends are new requests with keys of their own: one key, one body.
    let mut bodies: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for call in &calls {
        let key = call.header("idempotency-key").expect("a key");
        let body = *bodies.entry(key).or_insert(&call.body);
        assert_eq!(body, call.body.as_slice(), "{key} carried two bodies");
    }
    assert!(
        bodies.len() > 2,
        "the halves have keys of their own: {bodies:?}"
    );

    let dead = broker
        .consume_all("connect-error-lamf", Duration::from_secs(2))
        .await;
    let codes: BTreeMap<String, String> = dead
        .iter()
        .map(|r| {
            let header = |k: &str| {
                r.headers
                    .iter()
                    .find(|(h, _)| h == k)
                    .and_then(|(_, v)| v.clone())
                    .map(|v| String::from_utf8(v).unwrap())
            };
            (
                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                header("fcsink.error.code").unwrap(),
            )
        })
        .collect();
    for n in &poison_batch {
        assert_eq!(
            codes.get(&format!("key-{n}")).map(String::as_str),
            Some("Error"),
            "{codes:?}"
        );
    }
    assert_eq!(
        codes.get("key-10").map(String::as_str),
        Some("RequestTooLargeException"),
        "{codes:?}"
    );
    assert_eq!(dead.len(), 2, "every failed record dead-lettered once");

    // behavior_on_error defaults to "log" for Lambda: the error topic names each.
    let errors = read_topic(&broker.bootstrap(), "error-lamf").await;
    assert_eq!(errors.len(), 2);
    let poisoned = errors
        .iter()
        .find(|r| r.key.as_deref() == Some("key-3"))
        .unwrap();
    assert_eq!(poisoned.header("input_record_offset"), Some("3"));
    assert_eq!(poisoned.header("error_type"), Some("Error"));
    assert_eq!(
        poisoned.header("error_message"),
        Some("cannot handle poison")
    );
    assert_eq!(poisoned.header("status_code"), Some("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_responses_retry_only_the_listed_records() {
    let (broker, emulator) = setup("partial", 1).await;
    // The first answer lists both bad records; later ones only the sticky one.
    emulator.inject(Fault::batch_item_failures("poison").times(1));
    emulator.inject(Fault::batch_item_failures("sticky"));
    produce(&broker, "partial", 1, 10, |i| match i {
        2 => "poison-sticky",
        6 => "poison-once",
        _ => "ok",
    })
    .await;
    let config = connector::config_with_target(
        "lamp",
        &broker,
        "partial",
        &lambda_table(&emulator, "format = \"aws_kafka_event\""),
        "[batch]\nsize = 10\nlinger_ms = 300\n\
         [delivery]\nretries = 2\nbackoff_initial_ms = 20\nbackoff_max_ms = 50\nbehavior_on_error = \"ignore\"",
    );
    let running = Running::start(&config);
    wait_committed(
        &broker,
        "connect-lamp",
        "partial",
        BTreeMap::from([(0, 10)]),
    )
    .await;
    running.stop().await.unwrap();

    let sent: Vec<Vec<i64>> = lambda_calls(&emulator)
        .iter()
        .map(|c| numbers_aws(&c.body))
        .collect();
    assert_eq!(sent[0], (0..10).collect::<Vec<_>>());
    assert_eq!(
        sent[1],
        vec![2, 6],
        "only the listed records are sent again"
    );
    assert_eq!(sent[2], vec![2], "the flaky one succeeded on its retry");
    assert_eq!(sent.len(), 1 + 2, "two retries, then the dead-letter topic");
    // Each resend is a new request with an ID of its own (signed, as the
    // emulator verified), derived from the first: a function deduplicating
    // on Idempotency-Key must not drop the records it asked for again.
    let keys: Vec<String> = lambda_calls(&emulator)
        .iter()
        .map(|c| c.header("idempotency-key").expect("a key").to_string())
        .collect();
    assert!(
        keys[0].starts_with("fcsink_lamp_tpartial_p0_0_9_0"),
        "{keys:?}"
    );
    assert!(keys[1].starts_with(&format!("{}_s1_", keys[0])), "{keys:?}");
    assert!(keys[2].starts_with(&format!("{}_s2_", keys[0])), "{keys:?}");

    let dead = broker
        .consume_all("connect-error-lamp", Duration::from_secs(2))
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(&b"key-2"[..]));
    let code = dead[0]
        .headers
        .iter()
        .find(|(k, _)| k == "fcsink.error.code")
        .unwrap();
    assert_eq!(code.1.as_deref(), Some(&b"batch-item-failure"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_target_posts_with_headers_from_the_environment() {
    let (broker, emulator) = setup("hooks", 1).await;
    produce(&broker, "hooks", 1, 6, |_| "ok").await;
    emulator.inject(Fault::status(503).times(1));
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("FCSINK_E2E_HOOK_TOKEN", "t0ken") };
    let target = format!(
        "[target.http]\nurl = \"{}/http/hooks/in?src=kafka\"\nformat = \"cloudevents\"\n\
         headers = {{ Authorization = \"Bearer ${{FCSINK_E2E_HOOK_TOKEN}}\", X-Source = \"fcsink\" }}",
        emulator.url()
    );
    let config = connector::config_with_target(
        "hook",
        &broker,
        "hooks",
        &target,
        "[batch]\nlinger_ms = 50\n[delivery]\nbackoff_initial_ms = 20",
    );
    let running = Running::start(&config);
    wait_committed(&broker, "connect-hook", "hooks", BTreeMap::from([(0, 6)])).await;
    running.stop().await.unwrap();

    let calls: Vec<Invocation> = emulator
        .invocations()
        .into_iter()
        .filter(|i| i.api == Api::Http)
        .collect();
    assert_eq!(calls[0].status, 503, "a 5xx is retried");
    let ok: Vec<&Invocation> = calls.iter().filter(|c| c.status == 200).collect();
    let events: Vec<Value> = ok
        .iter()
        .flat_map(|c| serde_json::from_slice::<Vec<Value>>(&c.body).unwrap())
        .collect();
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["type"], "alikafka:Topic:Message");
    assert_eq!(events[0]["data"]["key"], "key-0");
    for call in ok {
        assert_eq!(call.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(call.header("x-source"), Some("fcsink"));
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert_eq!(call.function, "hooks/in");
    }
}

/// moto verifies SigV4 as AWS does (keys from its IAM, body hash included):
/// a correctly signed invocation is accepted and the echoed answer reaches
/// the success topic; a wrong secret is refused and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_accepts_our_signatures_and_refuses_a_wrong_secret() {
    let broker = Broker::sqlite().await;
    broker.create_topic("signed", 1).await;
    let moto = tokio::task::spawn_blocking(|| Moto::start("echo"))
        .await
        .unwrap();
    produce(&broker, "signed", 1, 8, |_| "ok").await;
    let table = format!(
        "[target.lambda]\nfunction = \"echo\"\nregion = \"us-east-1\"\nendpoint = \"{}\"",
        moto.endpoint
    );
    let start = |name: &str, secret: &str| {
        let config = connector::config_with_target(
            name,
            &broker,
            "signed",
            &table,
            "[batch]\nsize = 3\nlinger_ms = 50\n[delivery]\nretries = 0\n\
             target_failure_timeout_ms = 1000\n[operations]\nstatus_interval_ms = 500",
        );
        let settings = Settings::from_toml(&config).unwrap();
        let TargetSettings::Lambda(lambda) = settings.target.clone() else {
            unreachable!()
        };
        let credentials = AwsCredentials::new(moto.access_key_id.clone(), secret.to_string(), None);
        let target = LambdaTarget::with_credentials(lambda, credentials).unwrap();
        (
            Running::start_with_target(settings.clone(), Box::new(target)),
            settings,
        )
    };

    let (running, _) = start("moto-ok", &moto.secret_access_key);
    wait_committed(
        &broker,
        "connect-moto-ok",
        "signed",
        BTreeMap::from([(0, 8)]),
    )
    .await;
    running.stop().await.unwrap();
    let success = read_topic(&broker.bootstrap(), "success-moto-ok").await;
    let mut numbers: Vec<i64> = success.iter().map(n_of).collect();
    numbers.sort();
    assert_eq!(numbers, (0..8).collect::<Vec<_>>());

    // A refused signature is the target's failure, not the records': the
    // partition stops with the reason, nothing is dead-lettered or committed.
    let (running, settings) = start("moto-bad", "not-the-secret");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let reason = loop {
        let report = fcsink::ops::status::collect(&settings).await;
        let failed = report.as_ref().ok().and_then(|r| {
            r.partitions
                .iter()
                .find(|p| p.state == "failed")
                .and_then(|p| p.error.clone())
        });
        if let Some(reason) = failed {
            break reason;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the partition never failed in the status: {report:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    running.stop().await.unwrap();
    assert!(reason.contains("SignatureDoesNotMatch"), "{reason}");
    assert!(!reason.contains("not-the-secret"), "{reason}");
    let dead = broker
        .consume_all("connect-error-moto-bad", Duration::from_secs(2))
        .await;
    assert!(dead.is_empty(), "nothing is dead-lettered");
    assert!(
        broker
            .committed_offsets("connect-moto-bad", "signed")
            .await
            .is_empty()
    );
}
