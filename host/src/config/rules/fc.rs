//! `[target.fc]`: Alibaba Cloud Function Compute, its credentials and role.

use super::*;

/// FC's rule for service and function names.
pub(super) fn fc_name(field: &str, value: &str, max: usize) -> Result<String> {
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

pub(super) fn endpoint_url(field: &str, value: &str) -> Result<reqwest::Url> {
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

pub(super) fn fc_settings(raw: RawFc, name: &str) -> Result<FcSettings> {
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
        // Set from `delivery.idempotency` once it is read.
        task_ids: false,
    })
}

pub(super) fn role_settings(
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
