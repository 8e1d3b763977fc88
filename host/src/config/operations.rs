//! `[operations]`: the control plane through Kafka, the metrics and health
//! endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, int_in};

/// How often an instance publishes its state when nothing changes.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// How long a shutdown waits for the batches in flight.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// `[operations]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperations {
    pub listen: Option<String>,
    pub status_interval_ms: Option<i64>,
    pub control: Option<bool>,
    pub shutdown_grace_ms: Option<i64>,
}

/// The validated `[operations]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub listen: Option<SocketAddr>,
    /// How often the instance's state is published to the status topic;
    /// an instance silent for three intervals counts as gone.
    pub status_interval: Duration,
    /// Whether the instance follows the config topic and publishes to the
    /// status topic (both created at start like the dead-letter topic).
    pub control: bool,
    /// Consume up to the end offsets present at start, then stop
    /// (`fcsink run --until-end`; not a file setting).
    pub until_end: bool,
    /// How long a shutdown waits for the batches in flight before it
    /// abandons them (uncommitted, for the next owner) and exits.
    pub shutdown_grace: Duration,
}

pub(super) fn validate(raw: RawOperations) -> Result<OperationsSettings, ConfigError> {
    let listen = match raw.listen.as_deref() {
        None | Some("") => None,
        Some(text) => Some(text.parse().map_err(|_| {
            ConfigError::invalid(
                "operations.listen",
                format!("must be an IP address and port such as \"127.0.0.1:9464\" (got {text:?})"),
            )
        })?),
    };
    let interval_ms: u64 = int_in(
        "operations.status_interval_ms",
        raw.status_interval_ms,
        DEFAULT_STATUS_INTERVAL.as_millis() as u64,
        200..=300_000,
    )?;
    let grace_ms: u64 = int_in(
        "operations.shutdown_grace_ms",
        raw.shutdown_grace_ms,
        DEFAULT_SHUTDOWN_GRACE.as_millis() as u64,
        0..=600_000,
    )?;
    Ok(OperationsSettings {
        listen,
        status_interval: Duration::from_millis(interval_ms),
        control: raw.control.unwrap_or(true),
        until_end: false,
        shutdown_grace: Duration::from_millis(grace_ms),
    })
}
