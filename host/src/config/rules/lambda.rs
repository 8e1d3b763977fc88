//! `[target.lambda]`: AWS Lambda.

use super::*;

/// Lambda's rule for `FunctionName`: a name, `name:qualifier`, or a full or partial ARN.
pub(super) fn lambda_function(value: &str) -> Result<String> {
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
pub(super) fn region_of_arn(function: &str) -> Option<&str> {
    let mut parts = function.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|region| !region.is_empty())
}

pub(super) fn lambda_settings(raw: RawLambda) -> Result<LambdaSettings> {
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
