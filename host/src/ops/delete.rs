//! `fcsink delete`: removes the consumer group and the topics of the config
//! file that fcsink created (as the config topic records), then the config and
//! status topics.
//! Refuses while instances are running: the group would not be empty.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Settings;
use crate::fleet::config_topic::{Entry, Feed};
use crate::fleet::status_topic;
use crate::source::METADATA_TIMEOUT;

/// Deletes the connector after a confirmation (or with `yes`).
///
/// # Errors
/// Running instances, no confirmation, or a broker that refuses.
pub async fn run(settings: &Settings, yes: bool) -> anyhow::Result<()> {
    let client = super::client_config(settings);
    let (config_topic, status_topic) = (settings.config_topic(), settings.status_topic());
    let admin: AdminClient<DefaultClientContext> = client
        .create()
        .context("cannot create a Kafka admin client")?;
    let existing: Vec<String> = admin
        .inner()
        .fetch_metadata(None, METADATA_TIMEOUT)?
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name().to_string())
        .collect();
    let mut topics = Vec::new();
    if existing.contains(&status_topic) {
        let running = status_topic::read(&client, &status_topic).await?;
        anyhow::ensure!(
            running.is_empty(),
            "{} instance(s) of {} are running ({}); stop them first",
            running.len(),
            settings.name,
            running
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if existing.contains(&config_topic) {
        let (_, entries) = Feed::open(&client, &config_topic).await?;
        // The config topic only says which of the file's topics fcsink
        // created; a name found there alone is never deleted, so whoever can
        // write that topic cannot make `delete` remove other topics.
        let derived = settings.delivery.output_topics();
        for entry in entries {
            if let Entry::CreatedTopic(topic) = entry
                && derived.contains(&topic.as_str())
                && existing.contains(&topic)
                && !topics.contains(&topic)
            {
                topics.push(topic);
            }
        }
    }
    for topic in [status_topic, config_topic] {
        if existing.contains(&topic) && !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    let group = settings.group_id();
    if !yes && !confirm(&settings.name, &group, &topics)? {
        anyhow::bail!("not deleted");
    }
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    match admin.delete_groups(&[&group], &options).await?.pop() {
        Some(Ok(_)) => outln!("Deleted group {group}")?,
        Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => outln!("Group {group} did not exist")?,
        Some(Err((_, code))) => anyhow::bail!("cannot delete group {group}: {code}"),
        None => {}
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for result in admin.delete_topics(&names, &options).await? {
        match result {
            Ok(topic) => outln!("Deleted topic {topic}")?,
            Err((topic, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                outln!("Topic {topic} did not exist")?
            }
            Err((topic, code)) => anyhow::bail!("cannot delete topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Asks on the terminal; refuses when there is none.
fn confirm(name: &str, group: &str, topics: &[String]) -> anyhow::Result<bool> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "deleting needs a confirmation on a terminal, or --yes"
    );
    eprintln!(
        "This deletes consumer group {group} and topics: {}",
        topics.join(", ")
    );
    eprint!("Type the connector name ({name}) to confirm: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == name)
}
