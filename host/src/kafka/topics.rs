//! Topics fcsink writes to (the dead-letter topic, and the compacted config
//! and status topics of the control plane) are created at start when
//! missing, unless the user creates them by hand (`delivery.create_topics = false`).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::produce::{Class, classify};
use crate::source::METADATA_TIMEOUT;

/// How long creating a topic may keep failing on transient errors (a broker
/// of the cluster down and not yet fenced, leadership moving) before start-up
/// gives up.
const CREATE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Partitions of a topic fcsink creates.
pub const CREATED_PARTITIONS: i32 = 1;

/// Creates each of `topics` that does not exist yet; returns those created.
///
/// # Errors
/// When the broker cannot be reached or refuses to create a topic.
pub async fn ensure(client_config: &ClientConfig, topics: &[&str]) -> anyhow::Result<Vec<String>> {
    ensure_with(client_config, topics, false).await
}

/// [`ensure`] for topics that keep only the latest record per key
/// (`cleanup.policy=compact`), as the control plane's are.
///
/// # Errors
/// When the broker cannot be reached or refuses to create a topic.
pub async fn ensure_compacted(
    client_config: &ClientConfig,
    topics: &[&str],
) -> anyhow::Result<Vec<String>> {
    ensure_with(client_config, topics, true).await
}

async fn ensure_with(
    client_config: &ClientConfig,
    topics: &[&str],
    compact: bool,
) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = client_config.create()?;
    let metadata = admin.inner().fetch_metadata(None, METADATA_TIMEOUT)?;
    let missing: Vec<&str> = topics
        .iter()
        .copied()
        .filter(|t| {
            !metadata
                .topics()
                .iter()
                .any(|m| m.name() == *t && m.error().is_none())
        })
        .collect();
    let mut created = Vec::new();
    for topic in missing {
        match create_retrying(&admin, topic, compact).await {
            Ok(()) => {
                tracing::info!(topic, "Created topic");
                created.push(topic.to_string());
            }
            Err(RDKafkaErrorCode::TopicAlreadyExists) => {}
            Err(code) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(created)
}

/// Creates `topic`, retrying transient errors with backoff up to
/// [`CREATE_DEADLINE`]: in a cluster with one broker down, librdkafka may
/// send the request to that broker until the controller fences it.
async fn create_retrying(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    compact: bool,
) -> Result<(), RDKafkaErrorCode> {
    let deadline = tokio::time::Instant::now() + CREATE_DEADLINE;
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        // Replication -1 asks for the broker's default; a broker too old
        // for that gets a single replica.
        let mut result = create(admin, topic, TopicReplication::Fixed(-1), compact).await;
        if matches!(
            result,
            Err(RDKafkaErrorCode::InvalidReplicationFactor | RDKafkaErrorCode::InvalidRequest)
        ) {
            result = create(admin, topic, TopicReplication::Fixed(1), compact).await;
        }
        match result {
            Err(code)
                if classify(code) == Class::Transient
                    && tokio::time::Instant::now() + backoff < deadline =>
            {
                tracing::warn!(topic, %code, "Cannot create topic yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    replication: TopicReplication<'_>,
    compact: bool,
) -> Result<(), RDKafkaErrorCode> {
    let mut new = NewTopic::new(topic, CREATED_PARTITIONS, replication);
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    let results = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)),
        )
        .await
        .map_err(|err| err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))?;
    match results.into_iter().next() {
        Some(Err((_, code))) => Err(code),
        _ => Ok(()),
    }
}
