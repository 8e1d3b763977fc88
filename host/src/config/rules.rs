//! The rules every field must meet, applied to the raw file to build [`Settings`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{
    RawBatch, RawConfig, RawDelivery, RawFc, RawHttp, RawLambda, RawSandbox, RawSource, RawTarget,
};
use super::*;
use crate::format::{CloudEvents, Converter, Format};
use crate::transform::{self, Limits, PluginSpec};

mod batch;
mod delivery;
mod fc;
mod http;
mod lambda;
mod plugins;
mod source;
mod target;

use batch::batch;
pub(crate) use batch::default_request_bytes;
use delivery::delivery;
use fc::{endpoint_url, fc_settings};
use http::{http_settings, is_header_name};
use lambda::lambda_settings;
pub(crate) use plugins::plugin_spec;
use plugins::{sandbox, transforms};
use source::source;
pub(crate) use source::{POINT_IN_TIME_RULE, now_ms, point_in_time};
use target::target;

type Result<T> = std::result::Result<T, ConfigError>;

pub(super) fn validate(raw: RawConfig, base: &Path) -> Result<Settings> {
    let name = connector_name(&raw.name)?;
    let source = source(raw.source, base)?;
    let (mut target, format, forward_headers) = target(raw.target, &name, &source)?;
    let delivery = delivery(raw.delivery, &name, &target)?;
    if let TargetSettings::Fc(fc) = &mut target {
        fc.task_ids = delivery.idempotency == Idempotency::FcTaskId;
    }
    Ok(Settings {
        batch: batch(&raw.batch, &target)?,
        transforms: transforms(raw.transform, base)?,
        sandbox: sandbox(raw.sandbox)?,
        delivery,
        operations: super::operations::validate(raw.operations)?,
        source,
        target,
        format,
        forward_headers,
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
    value.map_or(Ok(default), |value| checked_int(field, value, range))
}

/// [`int_in`] for a setting without a default: `None` when unset.
pub(crate) fn opt_int_in<T: TryFrom<i64>>(
    field: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<T>> {
    value
        .map(|value| checked_int(field, value, range))
        .transpose()
}

/// `value` when it is within `range` and fits `T`.
fn checked_int<T: TryFrom<i64>>(
    field: &str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<T> {
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

#[cfg(test)]
mod tests;
