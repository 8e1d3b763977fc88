//! `[target.http]`: a plain HTTP(S) endpoint.

use super::*;

/// Whether `name` is an HTTP header name (a token of RFC 9110), at most 256 bytes.
pub(super) fn is_header_name(name: &str) -> bool {
    made_of(name, 1..=256, |b| {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    })
}

pub(super) fn http_settings(raw: RawHttp) -> Result<HttpSettings> {
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
            checked(
                &field,
                &name,
                is_header_name(&name),
                "must be an HTTP header name",
            )?;
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
