//! fcsink against Apache Kafka's SASL_SSL listener, as ApsaraMQ for Kafka
//! exposes it: SASL/PLAIN and SASL/SCRAM-SHA-256 over TLS, verified with a
//! CA file. A wrong password ends start-up with an error naming the
//! setting, instead of librdkafka's endless retries.

use std::time::Duration;

use fcsink_tests::broker::{Broker, SASL_PASSWORD, SASL_USER};
use fcsink_tests::connector::{self, Running, delivered, wait_until};

/// How long records may take to reach the function.
const WAIT: Duration = Duration::from_secs(60);

/// A connector for `topic` that reaches `broker` only through SASL_SSL.
fn secured_config(
    name: &str,
    broker: &Broker,
    emulator: &fc_emulator::Emulator,
    topic: &str,
    mechanism: &str,
    password: &str,
) -> String {
    let (sasl_bootstrap, ca) = broker.sasl_bootstrap();
    let kafka = format!(
        "[source.kafka]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"{mechanism}\"\n\
         \"sasl.username\" = \"{SASL_USER}\"\n\"sasl.password\" = \"{password}\"\n\
         \"ssl.ca.location\" = {ca:?}\n\n[batch]\nlinger_ms = 100",
        ca = ca.display().to_string(),
    );
    connector::config(name, broker, emulator, topic, "", &kafka)
        .replace(&broker.bootstrap(), &sasl_bootstrap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram_over_tls_deliver_and_commit() {
    let broker = Broker::kafka_secured().await;
    let emulator = connector::emulator(|_| {}).await;
    for (mechanism, topic) in [("PLAIN", "plain-in"), ("SCRAM-SHA-256", "scram-in")] {
        broker.create_topic(topic, 2).await;
        let values: Vec<String> = (0..20).map(|i| format!("{topic}-{i}")).collect();
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, value)| (Some(i as i32 % 2), None, Some(value.as_bytes())))
            .collect();
        broker.produce(topic, &records).await;
        let config = secured_config(topic, &broker, &emulator, topic, mechanism, SASL_PASSWORD);
        assert!(
            !config.contains(&broker.bootstrap()),
            "only the SASL_SSL port"
        );
        let running = Running::start(&config);
        wait_until(&format!("20 {mechanism} records"), WAIT, || async {
            delivered(&emulator)
                .iter()
                .filter(|record| record["topic"] == topic)
                .count()
                >= 20
        })
        .await;
        wait_until("offsets committed over SASL_SSL", WAIT, || async {
            broker
                .committed_offsets(&format!("connect-{topic}"), topic)
                .await
                .values()
                .sum::<i64>()
                == 20
        })
        .await;
        running.stop().await.unwrap();
        let arrived = delivered(&emulator)
            .into_iter()
            .filter(|record| record["topic"] == topic)
            .count();
        assert_eq!(arrived, 20, "{mechanism}: each record once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_startup_error_naming_the_setting() {
    let broker = Broker::kafka_secured().await;
    let emulator = connector::emulator(|_| {}).await;
    broker.create_topic("wrong-in", 1).await;
    let wrong = "not-the-password";
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let mut running = Running::start(&secured_config(
            "wrong", &broker, &emulator, "wrong-in", mechanism, wrong,
        ));
        let result = running
            .finished(Duration::from_secs(40))
            .await
            .unwrap_or_else(|| panic!("{mechanism}: a refused login ends start-up, not a hang"));
        let message = format!("{:#}", result.expect_err("a refused login is an error"));
        assert!(
            message.contains("\"sasl.password\""),
            "{mechanism}: {message}"
        );
        assert!(
            message.contains("refused the login"),
            "{mechanism}: {message}"
        );
        assert!(
            !message.contains(wrong),
            "the password is never shown: {message}"
        );
    }
    assert!(emulator.invocations().is_empty());
}
