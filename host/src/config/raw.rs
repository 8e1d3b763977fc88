//! The configuration file exactly as written: serde types, unknown fields refused.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub name: String,
    pub source: RawSource,
    #[serde(default)]
    pub batch: RawBatch,
    #[serde(default)]
    pub transform: Vec<RawTransform>,
    pub target: RawTarget,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub sandbox: RawSandbox,
    #[serde(default)]
    pub operations: super::operations::RawOperations,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub bootstrap_servers: String,
    pub topics: Option<Vec<String>>,
    pub topic_regex: Option<String>,
    pub start_from: Option<String>,
    pub concurrency: Option<i64>,
    pub ordering: Option<String>,
    pub buffer_mb: Option<i64>,
    pub instance_id: Option<String>,
    #[serde(default)]
    pub kafka: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    pub size: Option<i64>,
    pub linger_ms: Option<i64>,
    pub max_request_bytes: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    pub plugin: String,
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub fc: Option<RawFc>,
    pub lambda: Option<RawLambda>,
    pub http: Option<RawHttp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFc {
    pub endpoint: Option<String>,
    pub api_version: Option<String>,
    pub service: Option<String>,
    pub function: String,
    pub qualifier: Option<String>,
    pub send_mode: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub internal: bool,
    pub role: Option<String>,
    pub role_session_name: Option<String>,
    pub sts_endpoint: Option<String>,
    pub role_duration_s: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub max_response_bytes: Option<i64>,
    // The payload format keys, in every target table (serde's `flatten`
    // cannot be combined with `deny_unknown_fields`).
    pub format: Option<String>,
    pub converter: Option<String>,
    pub cloudevents_instance_id: Option<String>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLambda {
    pub function: String,
    pub qualifier: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub invocation_type: Option<String>,
    pub profile: Option<String>,
    pub timeout_ms: Option<i64>,
    pub max_response_bytes: Option<i64>,
    // The payload format keys, in every target table (serde's `flatten`
    // cannot be combined with `deny_unknown_fields`).
    pub format: Option<String>,
    pub converter: Option<String>,
    pub cloudevents_instance_id: Option<String>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: Option<i64>,
    pub max_response_bytes: Option<i64>,
    // The payload format keys, in every target table (serde's `flatten`
    // cannot be combined with `deny_unknown_fields`).
    pub format: Option<String>,
    pub converter: Option<String>,
    pub cloudevents_instance_id: Option<String>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub retries: Option<i64>,
    pub failure_policy: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub backoff_initial_ms: Option<i64>,
    pub backoff_max_ms: Option<i64>,
    pub target_failure_timeout_ms: Option<i64>,
    pub bisect_on_error: Option<bool>,
    pub idempotency: Option<String>,
    pub adaptive_concurrency: Option<bool>,
    pub breaker_failures: Option<i64>,
    pub max_requests_per_second: Option<i64>,
    pub breaker_probe_interval_ms: Option<i64>,
    pub max_record_age_ms: Option<i64>,
    pub create_topics: Option<bool>,
    pub behavior_on_error: Option<String>,
    pub success_topic: Option<String>,
    pub error_topic: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    pub memory_mb: Option<i64>,
    pub call_timeout_ms: Option<i64>,
    pub max_output_ratio: Option<i64>,
    pub cache_dir: Option<String>,
}
