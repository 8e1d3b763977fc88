//! The first contact with Kafka at start: the brokers answer with the
//! connection and security settings given, or start-up fails saying which
//! setting to check. librdkafka retries a refused login or a failed TLS
//! handshake for ever, so without this a wrong password looks like a hang.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// How long the brokers may take to answer at start.
const REACH_TIMEOUT: Duration = Duration::from_secs(30);
/// One metadata request's wait; the first refusal ends the wait early.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the brokers could not be used, as a caller decides on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Unreachable {
    /// The broker refused the SASL login.
    #[error(
        "Kafka refused the login ({reason}): check [source.kafka] \"sasl.username\", \
         \"sasl.password\" and \"sasl.mechanism\""
    )]
    Login { reason: String },
    /// The TLS handshake failed (an unknown CA, a name mismatch, a plaintext port).
    #[error(
        "the TLS handshake with Kafka failed ({reason}): check [source.kafka] \
         \"ssl.ca.location\" and \"security.protocol\""
    )]
    Tls { reason: String },
    /// No broker answered in time.
    #[error(
        "no Kafka broker answered within {}s at source.bootstrap_servers = {servers:?} \
         ({reason}); check the address, and [source.kafka] \"security.protocol\" if the \
         port expects TLS or SASL",
        REACH_TIMEOUT.as_secs()
    )]
    Silent { servers: String, reason: String },
}

/// Waits until a broker answers a metadata request with `config`'s settings.
///
/// # Errors
/// [`Unreachable`]: at the first refused login or failed TLS handshake, or
/// when no broker answered within 30 s.
pub async fn reach(config: &ClientConfig) -> Result<(), Unreachable> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || reach_blocking(&config))
        .await
        .unwrap_or_else(|err| {
            Err(Unreachable::Silent {
                servers: String::new(),
                reason: format!("the probe did not finish: {err}"),
            })
        })
}

fn reach_blocking(config: &ClientConfig) -> Result<(), Unreachable> {
    let servers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    // A producer, because librdkafka hands errors to the callback only
    // while the client is polled, which a producer lets us do.
    let client: BaseProducer<Refusals> =
        config
            .create_with_context(Refusals::default())
            .map_err(|err| Unreachable::Silent {
                servers: servers.clone(),
                reason: err.to_string(),
            })?;
    let deadline = Instant::now() + REACH_TIMEOUT;
    loop {
        let Err(err) = client.client().fetch_metadata(None, ATTEMPT_TIMEOUT) else {
            // One broker answering is enough, whatever another refused.
            return Ok(());
        };
        client.poll(Duration::ZERO);
        if let Some(refusal) = client.context().first() {
            return Err(refusal);
        }
        if Instant::now() >= deadline {
            return Err(Unreachable::Silent {
                servers,
                reason: client
                    .context()
                    .last_transport()
                    .unwrap_or_else(|| err.to_string()),
            });
        }
    }
}

/// Keeps the first security refusal librdkafka reports, and the last
/// transport error (for the message when nothing answers).
#[derive(Default)]
struct Refusals {
    refusal: Mutex<Option<Unreachable>>,
    transport: Mutex<Option<String>>,
}

impl Refusals {
    fn first(&self) -> Option<Unreachable> {
        crate::sync::lock(&self.refusal).clone()
    }

    fn last_transport(&self) -> Option<String> {
        crate::sync::lock(&self.transport).clone()
    }
}

impl ProducerContext for Refusals {
    type DeliveryOpaque = ();

    /// Nothing is produced.
    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

impl ClientContext for Refusals {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "librdkafka error while reaching Kafka");
        match classify(error.rdkafka_error_code(), reason) {
            Some(refusal) => {
                crate::sync::lock(&self.refusal).get_or_insert(refusal);
            }
            None => *crate::sync::lock(&self.transport) = Some(reason.to_string()),
        }
    }
}

/// A refusal that waiting will not cure, from librdkafka's error code and
/// text.
fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Unreachable> {
    let reason = reason.to_string();
    match code? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            Some(Unreachable::Login { reason })
        }
        RDKafkaErrorCode::SSL => Some(Unreachable::Tls { reason }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_names_the_sasl_settings() {
        let refusal = classify(
            Some(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed: Invalid username or password",
        )
        .map(|refusal| refusal.to_string());
        let message = refusal.as_deref().unwrap_or_default();
        assert!(message.contains("\"sasl.password\""), "{message}");
        assert!(
            message.contains("Invalid username or password"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_handshake_names_the_ca_file() {
        let refusal = classify(Some(RDKafkaErrorCode::SSL), "SSL handshake failed")
            .map(|refusal| refusal.to_string());
        assert!(
            refusal
                .as_deref()
                .is_some_and(|m| m.contains("\"ssl.ca.location\""))
        );
    }

    #[test]
    fn transport_errors_are_waited_out() {
        assert_eq!(
            classify(
                Some(RDKafkaErrorCode::BrokerTransportFailure),
                "Connection refused"
            ),
            None
        );
        assert_eq!(classify(None, "anything"), None);
    }
}
