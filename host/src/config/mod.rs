//! The configuration: one TOML file, validated into typed [`Settings`]
//! before anything starts. Every error names the field and the rule.

mod kafka;
mod operations;
mod raw;
mod rules;
pub mod runtime;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::transform::{Limits, PluginSpec};
pub use kafka::KafkaProperties;
pub use operations::{DEFAULT_STATUS_INTERVAL, OperationsSettings};
pub use raw::RawConfig;
pub(crate) use rules::{default_request_bytes, int_in, plugin_spec};

/// Records per invocation when `batch.size` is unset (the managed connector's default).
pub const DEFAULT_BATCH_SIZE: usize = 20;
/// The largest `batch.size` (the managed connector's limit).
pub const MAX_BATCH_SIZE: usize = 5000;
/// How long a partial batch waits for more records when `batch.linger_ms` is unset.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(500);
/// Request size limit for synchronous invocation (FC 2.0 and the managed connector).
pub const DEFAULT_SYNC_REQUEST_BYTES: usize = 6 * 1024 * 1024;
/// Request size limit for asynchronous invocation (FC).
pub const DEFAULT_ASYNC_REQUEST_BYTES: usize = 128 * 1024;
/// Request size limit for synchronous Lambda invocation (`RequestResponse`).
pub const LAMBDA_SYNC_REQUEST_BYTES: usize = 6_291_456;
/// Request size limit for asynchronous Lambda invocation (`Event`).
pub const LAMBDA_ASYNC_REQUEST_BYTES: usize = 1_048_576;
/// The largest request fcsink will build (FC's current synchronous limit).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// Bytes of consumed records that may wait for the workers when `source.buffer_mb` is unset.
pub const DEFAULT_BUFFER_BYTES: usize = 64 << 20;
/// Partitions handled at once when `source.concurrency` is unset (the managed default).
pub const DEFAULT_CONCURRENCY: usize = 6;
/// Retries after a failed invocation when `delivery.retries` is unset.
pub const DEFAULT_RETRIES: u32 = 2;
/// First retry delay; doubled per attempt, with full jitter.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest answer read from Lambda or an HTTP endpoint when
/// `max_response_bytes` is unset: Lambda's 6 MB synchronous limit, plus margin.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 << 20;
/// The longest answer read from FC when `target.fc.max_response_bytes` is
/// unset: FC's current 32 MB synchronous limit, plus margin.
pub const FC_DEFAULT_MAX_RESPONSE_BYTES: usize = 36 << 20;
/// The range of `max_response_bytes`: 1 KiB to 64 MiB.
pub const MAX_RESPONSE_BYTES_RANGE: std::ops::RangeInclusive<i64> = 1 << 10..=64 << 20;
/// Target-down answers in a row that open the circuit breaker.
pub const DEFAULT_BREAKER_FAILURES: u32 = 3;
/// How often an open circuit breaker probes the target.
pub const DEFAULT_BREAKER_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a target failure is retried when `delivery.target_failure_timeout_ms` is unset.
pub const DEFAULT_TARGET_FAILURE_TIMEOUT: Duration = Duration::from_secs(300);
/// `DurationSeconds` asked of STS when `target.fc.role_duration_s` is unset.
pub const DEFAULT_ROLE_DURATION: Duration = Duration::from_secs(3600);
/// FC 2.0's API version, the default.
pub const FC_API_V2: &str = "2016-08-15";
/// FC 3.0's API version.
pub const FC_API_V3: &str = "2023-03-30";

/// A configuration error: which field, and which rule it breaks.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown field or a value of the wrong type.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the field and line.
        message: String,
    },
    /// A value breaks a rule.
    #[error("`{field}`: {rule}")]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// The rule, and the value found.
        rule: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The connector's name.
    pub name: String,
    /// Kafka consumer.
    pub source: SourceSettings,
    /// Batching.
    pub batch: BatchSettings,
    /// Plugins, in order; empty means the built-in `passthrough`.
    pub transforms: Vec<PluginSpec>,
    /// The sandbox every plugin runs in.
    pub sandbox: SandboxSettings,
    /// The function to invoke.
    pub target: TargetSettings,
    /// How records are laid out in a request body (set in the target's table).
    pub format: crate::format::Format,
    /// Record headers sent as HTTP request headers (`forward_headers`, set
    /// in the target's table), checked against the target's own headers.
    pub forward_headers: Vec<String>,
    /// Retries, dead letters and the failure policy.
    pub delivery: DeliverySettings,
    /// The control plane, metrics and health endpoints.
    pub operations: OperationsSettings,
}

impl Settings {
    /// The consumer group: `connect-<name>`, as the managed connector names it.
    pub fn group_id(&self) -> String {
        format!("connect-{}", self.name)
    }

    /// The compacted topic carrying runtime changes: `connect-config-<name>`.
    pub fn config_topic(&self) -> String {
        format!("connect-config-{}", self.name)
    }

    /// The compacted topic carrying each instance's state: `connect-status-<name>`.
    pub fn status_topic(&self) -> String {
        format!("connect-status-{}", self.name)
    }

    /// What the function must provide for this configuration to work as
    /// intended, which fcsink cannot check from here (`fcsink validate`
    /// prints them).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.delivery.idempotency == Idempotency::FcTaskId {
            let how = match &self.target {
                TargetSettings::Fc(fc) if matches!(fc.api, FcApi::V3) => {
                    "turn on task mode (asynchronous tasks) in the function's asynchronous invocation settings"
                }
                _ => {
                    "set statefulInvocation = true in the function's async-invoke-config (asynchronous tasks)"
                }
            };
            notes.push(format!(
                "delivery.idempotency = \"fc_task_id\" needs asynchronous tasks enabled on the function: {how}; \
                 without them FC does not deduplicate and a retried request runs again"
            ));
        }
        notes
    }

    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field and the rule.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        rules::validate(raw, base)
    }

    /// Validates a configuration given as TOML text; relative plugin paths
    /// are resolved against the current directory.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field and the rule.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: err.to_string(),
        })?;
        rules::validate(raw, Path::new("."))
    }
}

/// Milliseconds since the Unix epoch of `text`, an RFC 3339 time or a
/// duration ago (`-2h`) resolved now: what `source.start_from` and
/// `fcsink reset-offsets --to-timestamp` take besides their own words.
///
/// # Errors
/// Anything else, naming `field` and the forms accepted.
pub fn point_in_time(field: &str, text: &str) -> Result<i64, ConfigError> {
    rules::point_in_time(text, rules::now_ms()).ok_or_else(|| {
        ConfigError::invalid(
            field,
            format!("must be {} (got {text:?})", rules::POINT_IN_TIME_RULE),
        )
    })
}

/// Which topics to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// These topics.
    List(Vec<String>),
    /// Every topic whose name matches (librdkafka regex syntax, starts with `^`).
    Regex(String),
}

/// Where to start when the group has no committed offset (AWS's
/// `StartingPosition`: `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record (the managed connector's default).
    Earliest,
    /// Only records produced after the group starts.
    Latest,
    /// The first record whose timestamp is at or after this many
    /// milliseconds since the Unix epoch (a duration ago is resolved once,
    /// when the file is read). See [`crate::kafka::offsets::start`].
    Timestamp(i64),
}

/// What order a partition's records reach the function in
/// (`source.ordering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOrder {
    /// `"partition"`: one batch of a partition in flight at a time, every
    /// record in offset order (the managed connector's behaviour).
    Partition,
    /// `"key"`: up to `source.concurrency` batches of a partition in flight
    /// at once; records with one key are never in two of them and arrive
    /// in offset order.
    Key,
    /// `"none"`: up to `source.concurrency` batches of a partition in
    /// flight at once, in no order (AWS's queue mode).
    Unordered,
}

/// The Kafka consumer's settings.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// Topics to consume.
    pub topics: Topics,
    /// Start position without a committed offset.
    pub start_from: StartFrom,
    /// Batches handled at once (partitions in parallel).
    pub concurrency: usize,
    /// Whether batches of one partition may be in flight at once.
    pub ordering: RecordOrder,
    /// Bytes of consumed records that may wait for the workers, shared by
    /// the partitions; a partition whose share is full is paused.
    pub buffer_bytes: usize,
    /// `group.instance.id` (static membership): an instance restarted
    /// within `session.timeout.ms` gets its partitions back without a
    /// rebalance. `None` is a dynamic member.
    pub instance_id: Option<String>,
    /// librdkafka properties passed through (`Debug` redacts secrets).
    pub kafka: KafkaProperties,
}

/// When a batch is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Records per invocation.
    pub max_records: usize,
    /// Bytes per request body.
    pub max_bytes: usize,
    /// Longest a partial batch waits for more records.
    pub linger: Duration,
}

/// The plugin sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Memory cap and time limit.
    pub limits: Limits,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The function to invoke.
#[derive(Debug, Clone)]
pub enum TargetSettings {
    /// Alibaba Cloud Function Compute.
    Fc(FcSettings),
    /// AWS Lambda.
    Lambda(LambdaSettings),
    /// Any HTTP(S) endpoint.
    Http(HttpSettings),
}

impl TargetSettings {
    /// The send mode of the target.
    pub fn send_mode(&self) -> SendMode {
        match self {
            TargetSettings::Fc(fc) => fc.send_mode,
            TargetSettings::Lambda(lambda) => lambda.send_mode,
            TargetSettings::Http(_) => SendMode::Sync,
        }
    }
}

/// Synchronous or asynchronous invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Wait for the function's result (HTTP 200).
    Sync,
    /// Queue the event (HTTP 202); the managed connector's recommendation.
    Async,
}

/// Which FC API to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcApi {
    /// FC 2.0 (`2016-08-15`), with a service.
    V2 {
        /// The service that holds the function.
        service: String,
    },
    /// FC 3.0 (`2023-03-30`).
    V3,
}

/// Function Compute settings.
#[derive(Debug, Clone)]
pub struct FcSettings {
    /// `scheme://host[:port]`, no path.
    pub endpoint: reqwest::Url,
    /// FC 2.0 or 3.0.
    pub api: FcApi,
    /// The function.
    pub function: String,
    /// Version or alias.
    pub qualifier: String,
    /// Sync or async.
    pub send_mode: SendMode,
    /// The target account, sent as `x-fc-account-id` when set.
    pub account_id: Option<String>,
    /// Cross-account access through a RAM role.
    pub role: Option<RoleSettings>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// The longest answer read (`max_response_bytes`).
    pub max_response_bytes: usize,
    /// Send each asynchronous request's ID as FC's task ID, so that FC
    /// refuses a retry of a request it already took
    /// (`delivery.idempotency = "fc_task_id"`).
    pub task_ids: bool,
}

/// AWS Lambda settings.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// `scheme://host[:port]`: the regional endpoint unless overridden.
    pub endpoint: reqwest::Url,
    /// The region requests are signed for.
    pub region: String,
    /// Name, `name:alias` or ARN, as configured.
    pub function: String,
    /// Version or alias sent as `Qualifier`.
    pub qualifier: Option<String>,
    /// `RequestResponse` (sync) or `Event` (async).
    pub send_mode: SendMode,
    /// The profile in the shared AWS files, when not from `AWS_PROFILE`.
    pub profile: Option<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// The longest answer read (`max_response_bytes`).
    pub max_response_bytes: usize,
}

/// Plain HTTP(S) target settings.
#[derive(Clone)]
pub struct HttpSettings {
    /// Where to POST.
    pub url: reqwest::Url,
    /// Headers sent with every request, environment references resolved.
    pub headers: Vec<(String, String)>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// The longest answer read (`max_response_bytes`).
    pub max_response_bytes: usize,
}

impl std::fmt::Debug for HttpSettings {
    /// Header values may be credentials: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("url", &self.url.as_str())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// A RAM role assumed through STS.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    /// `acs:ram::<account>:role/<name>`.
    pub arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// STS endpoint, `scheme://host[:port]`.
    pub sts_endpoint: reqwest::Url,
    /// `DurationSeconds` asked of STS (`role_duration_s`).
    pub duration: Duration,
}

/// What to do when a batch cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Dead-letter the records and go on (the default).
    Continue,
    /// Stop consuming the failing partition; the others go on.
    Stop,
}

/// `delivery.idempotency`: whether FC deduplicates fcsink's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotency {
    /// Requests carry no task ID; a retry of a request FC took runs again.
    #[default]
    None,
    /// Asynchronous FC requests carry their ID as the task ID
    /// (`X-Fc-Stateful-Async-Invocation-Id`, FC 3.0 `x-fc-async-task-id`):
    /// FC refuses a second request with the same ID (409), which fcsink
    /// counts as delivered.
    FcTaskId,
}

/// Retries, dead letters and the failure policy.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long a target failure (authentication, not found) is retried
    /// before the partition stops.
    pub target_failure_timeout: Duration,
    /// Split a request that keeps failing in halves to find the records at
    /// fault (synchronous targets with `failure_policy = "continue"`).
    pub bisect_on_error: bool,
    /// What the requests' deterministic IDs are used for.
    pub idempotency: Idempotency,
    /// Fewer batches in flight while the target throttles.
    pub adaptive_concurrency: bool,
    /// Requests per second over all instances, shared by partitions.
    pub max_requests_per_second: Option<u32>,
    /// When the target counts as down, and how often it is probed then.
    pub breaker: crate::breaker::Settings,
    /// Records older than this are dead-lettered instead of retried.
    pub max_record_age: Option<Duration>,
    /// Continue or stop.
    pub failure_policy: FailurePolicy,
    /// Where undeliverable records go.
    pub dead_letter_topic: String,
    /// Create missing topics fcsink writes to at start.
    pub create_topics: bool,
    /// Where the function's answers go (sync mode), one record per input record.
    pub success_topic: Option<String>,
    /// Where failures are reported (`behavior_on_error = "log"`).
    pub error_topic: Option<String>,
}

impl DeliverySettings {
    /// The topics fcsink writes records to: dead letter, then the success
    /// and error topics when set. The only topics `fcsink delete` may remove
    /// besides the control topics.
    pub fn output_topics(&self) -> Vec<&str> {
        std::iter::once(&self.dead_letter_topic)
            .chain(&self.success_topic)
            .chain(&self.error_topic)
            .map(String::as_str)
            .collect()
    }
}
