//! The rules every field must meet, applied to the raw file to build [`Settings`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{
    RawBatch, RawConfig, RawDelivery, RawFc, RawHttp, RawLambda, RawSandbox, RawSource, RawTarget,
};
use super::*;
use crate::format::{CloudEvents, Converter, Format};
use crate::transform::{self, Limits, PluginSpec};

type Result<T> = std::result::Result<T, ConfigError>;

pub(super) fn validate(raw: RawConfig, base: &Path) -> Result<Settings> {
    let name = connector_name(&raw.name)?;
    let source = source(raw.source, base)?;
    let (target, format) = target(raw.target, &name, &source)?;
    Ok(Settings {
        batch: batch(&raw.batch, &target)?,
        transforms: transforms(raw.transform, base)?,
        sandbox: sandbox(raw.sandbox)?,
        delivery: delivery(raw.delivery, &name, &target)?,
        operations: super::operations::validate(raw.operations)?,
        source,
        target,
        format,
        name,
    })
}

/// Whether `value` has a length in `len` and only bytes `allowed` accepts.
fn made_of(
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    allowed: impl Fn(u8) -> bool,
) -> bool {
    len.contains(&value.len()) && value.bytes().all(allowed)
}

/// `value` when `ok`, else the error "`field`: rule (got value)".
fn checked(field: &str, value: &str, ok: bool, rule: &str) -> Result<String> {
    if ok {
        Ok(value.to_string())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("{rule} (got {value:?})"),
        ))
    }
}

/// 1–48 characters of `0-9`, `a-z` and `-`, not starting with `-` (the managed connector's rule).
fn connector_name(name: &str) -> Result<String> {
    let ok = made_of(name, 1..=48, |b| {
        b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-'
    }) && !name.starts_with('-');
    checked(
        "name",
        name,
        ok,
        "must be 1-48 characters of 0-9, a-z and '-', not starting with '-'",
    )
}

/// Kafka's rule for topic names.
fn topic_name(field: &str, topic: &str) -> Result<String> {
    let ok = made_of(topic, 1..=249, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
    }) && topic != "."
        && topic != "..";
    checked(
        field,
        topic,
        ok,
        "must be a Kafka topic name: 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
    )
}

pub(crate) fn int_in<T: TryFrom<i64>>(
    field: &str,
    value: Option<i64>,
    default: T,
    range: std::ops::RangeInclusive<i64>,
) -> Result<T> {
    let Some(value) = value else {
        return Ok(default);
    };
    if !range.contains(&value) {
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be between {} and {} (got {value})",
                range.start(),
                range.end()
            ),
        ));
    }
    T::try_from(value)
        .map_err(|_| ConfigError::invalid(field, format!("out of range (got {value})")))
}

pub(crate) fn one_of<T: Copy>(
    field: &str,
    value: Option<&str>,
    default: T,
    choices: &[(&str, T)],
) -> Result<T> {
    let Some(value) = value else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<_> = choices.iter().map(|(n, _)| *n).collect();
            ConfigError::invalid(
                field,
                format!("must be one of {} (got {value:?})", names.join(", ")),
            )
        })
}

fn source(raw: RawSource, base: &Path) -> Result<SourceSettings> {
    if raw.bootstrap_servers.trim().is_empty() {
        return Err(ConfigError::invalid(
            "source.bootstrap_servers",
            "must not be empty",
        ));
    }
    let topics = match (raw.topics, raw.topic_regex) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "source.topics",
                "set either source.topics or source.topic_regex, not both",
            ));
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                "source.topics",
                "is required (or set source.topic_regex)",
            ));
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    "source.topics",
                    "must name at least one topic",
                ));
            }
            let checked = list
                .iter()
                .enumerate()
                .map(|(i, t)| topic_name(&format!("source.topics[{i}]"), t))
                .collect::<Result<Vec<_>>>()?;
            Topics::List(checked)
        }
        (None, Some(regex)) => {
            if regex.is_empty() {
                return Err(ConfigError::invalid(
                    "source.topic_regex",
                    "must not be empty",
                ));
            }
            // librdkafka treats a subscription that starts with '^' as a regex.
            let anchored = if regex.starts_with('^') {
                regex
            } else {
                format!("^{regex}")
            };
            Topics::Regex(anchored)
        }
    };
    let start_from = one_of(
        "source.start_from",
        raw.start_from.as_deref(),
        StartFrom::Earliest,
        &[
            ("earliest", StartFrom::Earliest),
            ("latest", StartFrom::Latest),
        ],
    )?;
    let concurrency = runtime::CONCURRENCY.read(raw.concurrency, DEFAULT_CONCURRENCY)?;
    let buffer_mb: usize = int_in(
        "source.buffer_mb",
        raw.buffer_mb,
        DEFAULT_BUFFER_BYTES >> 20,
        1..=16 * 1024,
    )?;
    let buffer_bytes = buffer_mb << 20;
    let instance_id = raw.instance_id.as_deref().map(instance_id).transpose()?;
    let kafka = super::kafka::properties(raw.kafka, base)?;
    Ok(SourceSettings {
        bootstrap_servers: raw.bootstrap_servers,
        topics,
        start_from,
        concurrency,
        buffer_bytes,
        instance_id,
        kafka,
    })
}

/// `source.instance_id`, `${NAME}` expanded (a StatefulSet's `${HOSTNAME}`),
/// checked as the broker checks `group.instance.id`: 1 to 249 of
/// `[A-Za-z0-9._-]`, and not `.` or `..`.
fn instance_id(raw: &str) -> Result<String> {
    const FIELD: &str = "source.instance_id";
    let value = expand_env(FIELD, raw)?;
    let ok = made_of(&value, 1..=249, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
    }) && value != "."
        && value != "..";
    checked(
        FIELD,
        &value,
        ok,
        "must be 1 to 249 of A-Z a-z 0-9 . _ - (and not . or ..), unique per instance",
    )
}

/// A TOML scalar as the string librdkafka or a plugin expects.
fn scalar(field: &str, value: &toml::Value) -> Result<String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(ConfigError::invalid(
            field,
            "must be a string, number or boolean",
        )),
    }
}

/// The request size limit of `target` in `mode` when `batch.max_request_bytes` is unset.
pub(crate) fn default_request_bytes(target: &TargetSettings, mode: SendMode) -> usize {
    match (target, mode) {
        (TargetSettings::Lambda(_), SendMode::Sync) => LAMBDA_SYNC_REQUEST_BYTES,
        (TargetSettings::Lambda(_), SendMode::Async) => LAMBDA_ASYNC_REQUEST_BYTES,
        (_, SendMode::Sync) => DEFAULT_SYNC_REQUEST_BYTES,
        (_, SendMode::Async) => DEFAULT_ASYNC_REQUEST_BYTES,
    }
}

fn batch(raw: &RawBatch, target: &TargetSettings) -> Result<BatchSettings> {
    let default_bytes = default_request_bytes(target, target.send_mode());
    Ok(BatchSettings {
        max_records: runtime::BATCH_SIZE.read(raw.size, DEFAULT_BATCH_SIZE)?,
        max_bytes: int_in(
            "batch.max_request_bytes",
            raw.max_request_bytes,
            default_bytes,
            1024..=MAX_REQUEST_BYTES as i64,
        )?,
        linger: Duration::from_millis(
            runtime::BATCH_LINGER_MS.read(raw.linger_ms, DEFAULT_LINGER.as_millis() as u64)?,
        ),
    })
}

fn transforms(raw: Vec<super::raw::RawTransform>, base: &Path) -> Result<Vec<PluginSpec>> {
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let field = format!("transform[{i}]");
            let config = t
                .config
                .iter()
                .map(|(k, v)| Ok((k.clone(), scalar(&format!("{field}.config.{k}"), v)?)))
                .collect::<Result<Vec<_>>>()?;
            plugin_spec(&format!("{field}.plugin"), &t.plugin, config, base)
        })
        .collect()
}

/// A built-in plugin's name, or a `.wasm` file that exists (relative to the config file).
pub(crate) fn plugin_spec(
    field: &str,
    plugin: &str,
    config: Vec<(String, String)>,
    base: &Path,
) -> Result<PluginSpec> {
    if transform::BUILTINS.iter().any(|(name, _)| *name == plugin) {
        return Ok(PluginSpec::resolve(plugin, config));
    }
    let path = base.join(plugin);
    if !path.is_file() {
        let builtins: Vec<_> = transform::BUILTINS.iter().map(|(n, _)| *n).collect();
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be a built-in plugin ({}) or a path to a .wasm file; {} does not exist",
                builtins.join(", "),
                path.display()
            ),
        ));
    }
    Ok(PluginSpec::resolve(&path.to_string_lossy(), config))
}

fn sandbox(raw: RawSandbox) -> Result<SandboxSettings> {
    let memory_mb: usize = int_in(
        "sandbox.memory_mb",
        raw.memory_mb,
        Limits::default().memory_bytes >> 20,
        1..=4096,
    )?;
    let timeout_ms: u64 = int_in(
        "sandbox.call_timeout_ms",
        raw.call_timeout_ms,
        Limits::default().call_timeout.as_millis() as u64,
        10..=600_000,
    )?;
    let max_output_ratio: usize = int_in(
        "sandbox.max_output_ratio",
        raw.max_output_ratio,
        Limits::default().max_output_ratio,
        1..=1000,
    )?;
    let cache_dir = match raw.cache_dir {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => transform::default_cache_dir(),
    };
    Ok(SandboxSettings {
        limits: Limits {
            memory_bytes: memory_mb << 20,
            call_timeout: Duration::from_millis(timeout_ms),
            max_output_ratio,
        },
        cache_dir,
    })
}

/// Exactly one of `[target.fc]`, `[target.lambda]` and `[target.http]`, and its payload format.
fn target(raw: RawTarget, name: &str, source: &SourceSettings) -> Result<(TargetSettings, Format)> {
    let tables = [raw.fc.is_some(), raw.lambda.is_some(), raw.http.is_some()];
    if tables.iter().filter(|set| **set).count() != 1 {
        return Err(ConfigError::invalid(
            "target",
            "needs exactly one of [target.fc], [target.lambda] and [target.http]",
        ));
    }
    if let Some(fc) = raw.fc {
        let keys = FormatKeys {
            table: "target.fc",
            format: fc.format.clone(),
            converter: fc.converter.clone(),
            instance_id: fc.cloudevents_instance_id.clone(),
        };
        let account_id = fc.account_id.clone();
        let settings = fc_settings(fc, name)?;
        let format = keys.resolve("fc", name, source, account_id)?;
        Ok((TargetSettings::Fc(settings), format))
    } else if let Some(lambda) = raw.lambda {
        let keys = FormatKeys {
            table: "target.lambda",
            format: lambda.format.clone(),
            converter: lambda.converter.clone(),
            instance_id: lambda.cloudevents_instance_id.clone(),
        };
        let format = keys.resolve("confluent", name, source, None)?;
        Ok((TargetSettings::Lambda(lambda_settings(lambda)?), format))
    } else {
        let Some(http) = raw.http else {
            return Err(ConfigError::invalid(
                "target",
                "set one of target.fc, target.lambda or target.http",
            ));
        };
        let keys = FormatKeys {
            table: "target.http",
            format: http.format.clone(),
            converter: http.converter.clone(),
            instance_id: http.cloudevents_instance_id.clone(),
        };
        let format = keys.resolve("fc", name, source, None)?;
        Ok((TargetSettings::Http(http_settings(http)?), format))
    }
}

/// The payload-format keys of a target table.
struct FormatKeys {
    table: &'static str,
    format: Option<String>,
    converter: Option<String>,
    instance_id: Option<String>,
}

impl FormatKeys {
    fn resolve(
        self,
        default: &str,
        connector: &str,
        source: &SourceSettings,
        account_id: Option<String>,
    ) -> Result<Format> {
        let table = self.table;
        #[derive(Clone, Copy)]
        enum Kind {
            Fc,
            Confluent,
            AwsKafkaEvent,
            CloudEvents,
        }
        let kind = one_of(
            &format!("{table}.format"),
            Some(self.format.as_deref().unwrap_or(default)),
            Kind::Fc,
            &[
                ("fc", Kind::Fc),
                ("confluent", Kind::Confluent),
                ("aws_kafka_event", Kind::AwsKafkaEvent),
                ("cloudevents", Kind::CloudEvents),
            ],
        )?;
        if self.converter.is_some() && !matches!(kind, Kind::Confluent) {
            return Err(ConfigError::invalid(
                format!("{table}.converter"),
                "only applies to format = \"confluent\"",
            ));
        }
        if self.instance_id.is_some() && !matches!(kind, Kind::CloudEvents) {
            return Err(ConfigError::invalid(
                format!("{table}.cloudevents_instance_id"),
                "only applies to format = \"cloudevents\"",
            ));
        }
        Ok(match kind {
            Kind::Fc => Format::Fc,
            Kind::Confluent => Format::Confluent {
                converter: one_of(
                    &format!("{table}.converter"),
                    self.converter.as_deref(),
                    Converter::Json,
                    &[
                        ("json", Converter::Json),
                        ("escaped_json", Converter::EscapedJson),
                    ],
                )?,
            },
            Kind::AwsKafkaEvent => Format::AwsKafkaEvent {
                bootstrap_servers: source.bootstrap_servers.clone(),
            },
            Kind::CloudEvents => {
                let instance_id = self
                    .instance_id
                    .unwrap_or_else(|| format!("alikafka_{connector}"));
                let ok = made_of(&instance_id, 1..=128, |b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                });
                Format::CloudEvents(CloudEvents {
                    instance_id: checked(
                        &format!("{table}.cloudevents_instance_id"),
                        &instance_id,
                        ok,
                        "must be 1-128 characters of letters, digits, '-', '_' and '.'",
                    )?,
                    account_id,
                })
            }
        })
    }
}

/// Lambda's rule for `FunctionName`: a name, `name:qualifier`, or a full or partial ARN.
fn lambda_function(value: &str) -> Result<String> {
    let ok = made_of(value, 1..=170, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$')
    }) && !value.ends_with(':');
    checked(
        "target.lambda.function",
        value,
        ok,
        "must be a function name, name:alias, or ARN (arn:aws:lambda:<region>:<account>:function:<name>)",
    )
}

/// The region in `arn:<partition>:lambda:<region>:…`.
fn region_of_arn(function: &str) -> Option<&str> {
    let mut parts = function.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|region| !region.is_empty())
}

fn lambda_settings(raw: RawLambda) -> Result<LambdaSettings> {
    let function = lambda_function(&raw.function)?;
    let from_env = || {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    };
    let region = raw
        .region
        .or_else(|| region_of_arn(&function).map(str::to_string))
        .or_else(from_env)
        .ok_or_else(|| {
            ConfigError::invalid(
                "target.lambda.region",
                "is required (or give an ARN, or set AWS_REGION)",
            )
        })?;
    let ok = made_of(&region, 1..=64, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
    });
    let region = checked(
        "target.lambda.region",
        &region,
        ok,
        "must be a region like us-east-1",
    )?;
    let endpoint = match raw.endpoint {
        Some(endpoint) => endpoint_url("target.lambda.endpoint", &endpoint)?,
        None => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            endpoint_url(
                "target.lambda.endpoint",
                &format!("https://lambda.{region}.{suffix}"),
            )?
        }
    };
    let qualifier = raw
        .qualifier
        .map(|q| {
            let ok = made_of(&q, 1..=128, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$')
            });
            checked(
                "target.lambda.qualifier",
                &q,
                ok,
                "must be a version or alias: letters, digits, '-', '_' or $LATEST",
            )
        })
        .transpose()?;
    let send_mode = runtime::SEND_MODE.read(
        "target.lambda.invocation_type",
        raw.invocation_type.as_deref(),
        SendMode::Sync,
    )?;
    Ok(LambdaSettings {
        endpoint,
        region,
        function,
        qualifier,
        send_mode,
        profile: raw.profile,
        // Confluent's `aws.lambda.socket.timeout` default; Lambda runs up to 15 minutes.
        timeout: timeout("target.lambda.timeout_ms", raw.timeout_ms, 50_000)?,
        max_response_bytes: max_response_bytes(
            "target.lambda.max_response_bytes",
            raw.max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES,
        )?,
    })
}

/// The longest answer read from a target; an answer past it fails its request.
fn max_response_bytes(field: &str, value: Option<i64>, default: usize) -> Result<usize> {
    int_in(field, value, default, MAX_RESPONSE_BYTES_RANGE)
}

fn timeout(field: &str, value: Option<i64>, default_ms: u64) -> Result<Duration> {
    Ok(Duration::from_millis(int_in(
        field,
        value,
        default_ms,
        100..=86_400_000,
    )?))
}

fn http_settings(raw: RawHttp) -> Result<HttpSettings> {
    let field = "target.http.url";
    let url = reqwest::Url::parse(&raw.url).map_err(|err| {
        ConfigError::invalid(
            field,
            format!(
                "must be a URL like https://host/path (got {:?}: {err})",
                raw.url
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be an http:// or https:// URL with a host (got {:?})",
                raw.url
            ),
        ));
    }
    let headers = raw
        .headers
        .into_iter()
        .map(|(name, value)| {
            let field = format!("target.http.headers.{name}");
            let ok = made_of(&name, 1..=256, |b| {
                b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
            checked(&field, &name, ok, "must be an HTTP header name")?;
            let value = expand_env(&field, &value)?;
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(ConfigError::invalid(field, "must not contain line breaks"));
            }
            Ok((name, value))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HttpSettings {
        url,
        headers,
        timeout: timeout("target.http.timeout_ms", raw.timeout_ms, 30_000)?,
        max_response_bytes: max_response_bytes(
            "target.http.max_response_bytes",
            raw.max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES,
        )?,
    })
}

/// Replaces each `${NAME}` with the environment variable `NAME`, so secrets
/// stay out of the file. The error never shows the value.
pub(crate) fn expand_env(field: &str, text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            ConfigError::invalid(field, "has an unclosed ${…} environment reference")
        })?;
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| {
            ConfigError::invalid(
                field,
                format!("refers to environment variable {name}, which is not set"),
            )
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// FC's rule for service and function names.
fn fc_name(field: &str, value: &str, max: usize) -> Result<String> {
    let ok = made_of(value, 1..=max, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
    }) && value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    checked(
        field,
        value,
        ok,
        &format!(
            "must be 1-{max} characters of letters, digits, '_' and '-', starting with a letter or '_'"
        ),
    )
}

fn endpoint_url(field: &str, value: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(value).map_err(|err| {
        ConfigError::invalid(
            field,
            format!("must be a URL like https://host (got {value:?}: {err})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            field,
            format!("must be an http:// or https:// URL with a host (got {value:?})"),
        ));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(ConfigError::invalid(
            field,
            format!("must have no path or query (got {value:?})"),
        ));
    }
    Ok(url)
}

fn fc_settings(raw: RawFc, name: &str) -> Result<FcSettings> {
    let account_id = raw
        .account_id
        .map(|id| {
            let ok = made_of(&id, 1..=usize::MAX, |b| b.is_ascii_digit());
            checked(
                "target.fc.account_id",
                &id,
                ok,
                "must be the numeric Alibaba Cloud account ID",
            )
        })
        .transpose()?;
    let region = raw
        .region
        .map(|r| {
            let ok = made_of(&r, 1..=usize::MAX, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
            });
            checked(
                "target.fc.region",
                &r,
                ok,
                "must be a region ID like cn-hangzhou",
            )
        })
        .transpose()?;
    let endpoint = match (&raw.endpoint, &account_id, &region) {
        (Some(endpoint), _, _) => endpoint_url("target.fc.endpoint", endpoint)?,
        (None, Some(account), Some(region)) => {
            let internal = if raw.internal { "-internal" } else { "" };
            endpoint_url(
                "target.fc.endpoint",
                &format!("https://{account}.{region}{internal}.fc.aliyuncs.com"),
            )?
        }
        _ => {
            return Err(ConfigError::invalid(
                "target.fc.endpoint",
                "is required (or set target.fc.account_id and target.fc.region to use the regional endpoint)",
            ));
        }
    };
    let api = match raw.api_version.as_deref().unwrap_or(FC_API_V2) {
        FC_API_V2 => {
            let service = raw.service.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    "target.fc.service",
                    "is required with api_version 2016-08-15 (FC 2.0)",
                )
            })?;
            FcApi::V2 {
                service: fc_name("target.fc.service", service, 128)?,
            }
        }
        FC_API_V3 => {
            if raw.service.is_some() {
                return Err(ConfigError::invalid(
                    "target.fc.service",
                    "FC 3.0 (api_version 2023-03-30) has no services; remove it",
                ));
            }
            FcApi::V3
        }
        other => {
            return Err(ConfigError::invalid(
                "target.fc.api_version",
                format!("must be {FC_API_V2} (FC 2.0) or {FC_API_V3} (FC 3.0) (got {other:?})"),
            ));
        }
    };
    let qualifier = raw.qualifier.unwrap_or_else(|| "LATEST".to_string());
    let ok = made_of(&qualifier, 1..=128, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
    });
    let qualifier = checked(
        "target.fc.qualifier",
        &qualifier,
        ok,
        "must be a version or alias: letters, digits, '_' and '-'",
    )?;
    let send_mode = runtime::SEND_MODE.read(
        "target.fc.send_mode",
        raw.send_mode.as_deref(),
        SendMode::Async,
    )?;
    let default_timeout_ms = match send_mode {
        SendMode::Sync => 300_000,
        SendMode::Async => 30_000,
    };
    let timeout = timeout("target.fc.timeout_ms", raw.timeout_ms, default_timeout_ms)?;
    let role = match raw.role {
        None => None,
        Some(role) => Some(role_settings(
            &role,
            raw.role_session_name,
            raw.sts_endpoint,
            raw.role_duration_s,
            account_id.as_deref(),
            region.as_deref(),
            name,
        )?),
    };
    Ok(FcSettings {
        endpoint,
        api,
        function: fc_name("target.fc.function", &raw.function, 64)?,
        qualifier,
        send_mode,
        account_id,
        role,
        timeout,
        max_response_bytes: max_response_bytes(
            "target.fc.max_response_bytes",
            raw.max_response_bytes,
            FC_DEFAULT_MAX_RESPONSE_BYTES,
        )?,
    })
}

fn role_settings(
    role: &str,
    session_name: Option<String>,
    sts_endpoint: Option<String>,
    duration_s: Option<i64>,
    account_id: Option<&str>,
    region: Option<&str>,
    connector: &str,
) -> Result<RoleSettings> {
    let arn = if role.starts_with("acs:ram::") {
        role.to_string()
    } else {
        let account = account_id.ok_or_else(|| {
            ConfigError::invalid("target.fc.role", "a role name needs target.fc.account_id (or give the full ARN acs:ram::<account>:role/<name>)")
        })?;
        let ok = made_of(role, 1..=64, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
        });
        checked("target.fc.role", role, ok, "must be a RAM role name or ARN")?;
        format!("acs:ram::{account}:role/{role}")
    };
    let session_name = session_name.unwrap_or_else(|| format!("fcsink-{connector}"));
    let ok = made_of(&session_name, 2..=64, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'-')
    });
    let session_name = checked(
        "target.fc.role_session_name",
        &session_name,
        ok,
        "must be 2-64 characters of letters, digits, '.', '@', '_' and '-'",
    )?;
    let sts = match (sts_endpoint, region) {
        (Some(url), _) => url,
        (None, Some(region)) => format!("https://sts.{region}.aliyuncs.com"),
        (None, None) => "https://sts.aliyuncs.com".to_string(),
    };
    Ok(RoleSettings {
        arn,
        session_name,
        sts_endpoint: endpoint_url("target.fc.sts_endpoint", &sts)?,
        // STS's own bounds for DurationSeconds; a role's maximum may be lower.
        duration: Duration::from_secs(int_in(
            "target.fc.role_duration_s",
            duration_s,
            DEFAULT_ROLE_DURATION.as_secs(),
            900..=43_200,
        )?),
    })
}

fn delivery(raw: RawDelivery, name: &str, target: &TargetSettings) -> Result<DeliverySettings> {
    let backoff_initial = Duration::from_millis(int_in(
        "delivery.backoff_initial_ms",
        raw.backoff_initial_ms,
        DEFAULT_BACKOFF_INITIAL.as_millis() as u64,
        1..=600_000,
    )?);
    let backoff_max = Duration::from_millis(int_in(
        "delivery.backoff_max_ms",
        raw.backoff_max_ms,
        DEFAULT_BACKOFF_MAX.as_millis() as u64,
        1..=3_600_000,
    )?);
    if backoff_max < backoff_initial {
        return Err(ConfigError::invalid(
            "delivery.backoff_max_ms",
            "must not be less than delivery.backoff_initial_ms",
        ));
    }
    let lambda = matches!(target, TargetSettings::Lambda(_));
    let (failure_policy, log_errors) = failure_policy(&raw, lambda)?;
    let dead_letter_topic = match raw.dead_letter_topic {
        Some(topic) => topic_name("delivery.dead_letter_topic", &topic)?,
        None => format!("connect-error-{name}"),
    };
    let error_topic = match (log_errors, raw.error_topic) {
        (true, topic) => Some(topic_name(
            "delivery.error_topic",
            &topic.unwrap_or_else(|| format!("error-{name}")),
        )?),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ConfigError::invalid(
                "delivery.error_topic",
                "is only written with behavior_on_error = \"log\"",
            ));
        }
    };
    let sync = target.send_mode() == SendMode::Sync;
    let success_topic = match raw.success_topic {
        Some(topic) if topic.is_empty() => None,
        Some(_) if !sync => {
            return Err(ConfigError::invalid(
                "delivery.success_topic",
                "needs a synchronous target: an asynchronous invocation returns no result",
            ));
        }
        Some(topic) => Some(topic_name("delivery.success_topic", &topic)?),
        None if lambda && sync => Some(format!("success-{name}")),
        None => None,
    };
    Ok(DeliverySettings {
        retries: runtime::DELIVERY_RETRIES.read(raw.retries, DEFAULT_RETRIES)?,
        target_failure_timeout: Duration::from_millis(int_in(
            "delivery.target_failure_timeout_ms",
            raw.target_failure_timeout_ms,
            DEFAULT_TARGET_FAILURE_TIMEOUT.as_millis() as u64,
            1_000..=86_400_000,
        )?),
        backoff_initial,
        backoff_max,
        failure_policy,
        dead_letter_topic,
        create_topics: raw.create_topics.unwrap_or(true),
        success_topic,
        error_topic,
    })
}

/// `failure_policy`, or Confluent's `behavior_on_error` (one or the other),
/// and whether failures are reported to the error topic. `fail` stops the
/// partition, `ignore` skips the records and `log` reports them and goes
/// on; records that are skipped still go to the dead-letter topic.
fn failure_policy(raw: &RawDelivery, lambda: bool) -> Result<(FailurePolicy, bool)> {
    match (&raw.failure_policy, &raw.behavior_on_error) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            "delivery.behavior_on_error",
            "set either delivery.failure_policy or delivery.behavior_on_error, not both",
        )),
        (None, Some(behavior)) => one_of(
            "delivery.behavior_on_error",
            Some(behavior),
            (FailurePolicy::Continue, true),
            &[
                ("fail", (FailurePolicy::Stop, false)),
                ("ignore", (FailurePolicy::Continue, false)),
                ("log", (FailurePolicy::Continue, true)),
            ],
        ),
        (policy, None) => {
            let policy = runtime::FAILURE_POLICY.read(
                runtime::FAILURE_POLICY.key,
                policy.as_deref(),
                FailurePolicy::Continue,
            )?;
            // Confluent Cloud's Lambda sink logs errors by default.
            Ok((
                policy,
                lambda && policy == FailurePolicy::Continue && raw.failure_policy.is_none(),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
