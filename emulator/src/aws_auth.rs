//! SigV4 checks for Lambda invocations, recomputed from the request as received with
//! `fcsink-sign`, against the configured AWS keys.
//!
//! Two steps, because the signature covers the body: [`check_aws_request`] looks at the
//! headers before the body is read (credential scope, clock skew, key, session token,
//! which headers are signed), then [`verify_aws_signature`] recomputes the signature
//! over the body. Errors use Lambda's names (`x-amzn-ErrorType`) and `{"message"}`
//! bodies: `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `InvalidSignatureException` and `UnrecognizedClientException`, all 403. Only
//! `X-Amz-Date` is accepted as the signing time (not `Date`).

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use fcsink_sign::{SigV4Authorization, SigV4Request, sha256_hex, sigv4_amz_date, sigv4_verify};
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::auth::{borrowed, header, header_pairs, query_pairs};
use crate::credentials::Credentials;
use crate::error::{ApiError, ErrorShape};

/// How far `X-Amz-Date` may be from the emulator's clock, as in SigV4.
pub const MAX_SIGV4_SKEW: Duration = Duration::from_secs(5 * 60);
/// The service name Lambda requests must be scoped to.
pub const LAMBDA_SERVICE: &str = "lambda";
/// The header carrying the session token of temporary credentials.
pub const AWS_TOKEN_HEADER: &str = "x-amz-security-token";
/// The header carrying the signing time.
pub const AMZ_DATE_HEADER: &str = "x-amz-date";
/// An optional header carrying the hex SHA-256 of the body, signed like the others.
pub const AMZ_CONTENT_SHA256_HEADER: &str = "x-amz-content-sha256";

/// Lambda's message for `InvalidSignatureException` on a signature mismatch.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult \
     the service documentation for details.";
/// Lambda's message for `UnrecognizedClientException`.
pub const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// A request whose headers passed [`check_aws_request`].
#[derive(Debug, Clone)]
pub struct AwsCaller {
    /// The access key id it was signed with.
    pub access_key_id: String,
    secret: String,
}

/// Checks everything but the signature itself, which needs the body.
pub fn check_aws_request(
    headers: &HeaderMap,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<AwsCaller, ApiError> {
    let Some(value) = header(headers, "authorization") else {
        return Err(auth_error(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = SigV4Authorization::parse(value).ok_or_else(|| {
        incomplete(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' \
             parameters, and a credential scope ending in 'aws4_request'.",
        )
    })?;
    let amz_date = header(headers, AMZ_DATE_HEADER).ok_or_else(|| {
        incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    })?;
    let sent = parse_amz_date(amz_date)
        .ok_or_else(|| incomplete(&format!("Invalid X-Amz-Date '{amz_date}'.")))?;
    check_skew(amz_date, sent, now)?;
    if auth.service != LAMBDA_SERVICE {
        return Err(invalid_signature(&format!(
            "Credential should be scoped to correct service: '{LAMBDA_SERVICE}'."
        )));
    }
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(invalid_signature(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..amz_date.len().min(8)],
        )));
    }
    for required in ["host", AMZ_DATE_HEADER] {
        if !auth.signed_headers.contains(&required) {
            return Err(incomplete(&format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let token = header(headers, AWS_TOKEN_HEADER);
    if token.is_some() && !auth.signed_headers.contains(&AWS_TOKEN_HEADER) {
        return Err(incomplete(
            "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let key = credentials
        .get_aws(auth.access_key_id)
        .ok_or_else(|| auth_error("UnrecognizedClientException", INVALID_TOKEN))?;
    if token != key.security_token.as_deref() {
        return Err(auth_error("UnrecognizedClientException", INVALID_TOKEN));
    }
    Ok(AwsCaller {
        access_key_id: auth.access_key_id.to_owned(),
        secret: key.secret,
    })
}

/// Recomputes the signature over the request as received and `body`.
pub fn verify_aws_signature(
    caller: &AwsCaller,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let mismatch = || invalid_signature(SIGNATURE_MISMATCH);
    let auth = header(headers, "authorization")
        .and_then(SigV4Authorization::parse)
        .ok_or_else(mismatch)?;
    let amz_date = header(headers, AMZ_DATE_HEADER).unwrap_or("");
    let body_sha256 = sha256_hex(body);
    if let Some(claimed) = header(headers, AMZ_CONTENT_SHA256_HEADER)
        && claimed != body_sha256
    {
        return Err(invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    // HTTP/2 carries the host as :authority, which ends up in the URI, not the headers.
    let host = header(headers, "host")
        .map(str::to_owned)
        .or_else(|| uri.authority().map(ToString::to_string))
        .unwrap_or_default();
    let pairs = header_pairs(headers);
    let query = query_pairs(uri.query().unwrap_or(""));
    let request = SigV4Request {
        method: method.as_str(),
        path: uri.path(),
        query: &borrowed(&query),
        host: &host,
        headers: &borrowed(&pairs),
        payload_sha256: &body_sha256,
    };
    if sigv4_verify(&caller.secret, &auth, &request, amz_date) {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|at| at.assume_utc().into())
}

fn check_skew(amz_date: &str, sent: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    let unix = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let now_text = sigv4_amz_date(unix(now));
    let skew = MAX_SIGV4_SKEW.as_secs();
    if sent + MAX_SIGV4_SKEW < now {
        let earliest = sigv4_amz_date(unix(now).saturating_sub(skew));
        return Err(invalid_signature(&format!(
            "Signature expired: {amz_date} is now earlier than {earliest} ({now_text} - 5 min.)"
        )));
    }
    if sent > now + MAX_SIGV4_SKEW {
        let latest = sigv4_amz_date(unix(now) + skew);
        return Err(invalid_signature(&format!(
            "Signature not yet current: {amz_date} is still later than {latest} \
             ({now_text} + 5 min.)"
        )));
    }
    Ok(())
}

fn auth_error(code: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message).with_shape(ErrorShape::AwsAuth)
}

fn incomplete(message: &str) -> ApiError {
    auth_error("IncompleteSignatureException", message)
}

fn invalid_signature(message: &str) -> ApiError {
    auth_error("InvalidSignatureException", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_parses_as_utc() {
        let at = parse_amz_date("20240102T030405Z").expect("valid");
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs(),
            1_704_164_645
        );
        assert!(parse_amz_date("2024-01-02T03:04:05Z").is_none());
    }

    #[test]
    fn skew_both_directions() {
        let now = SystemTime::now();
        let minute = Duration::from_secs(60);
        assert!(check_skew("", now - 4 * minute, now).is_ok());
        assert!(check_skew("", now + 4 * minute, now).is_ok());
        let late = check_skew("", now - 6 * minute, now).expect_err("expired");
        assert!(late.message.starts_with("Signature expired"));
        let early = check_skew("", now + 6 * minute, now).expect_err("early");
        assert!(early.message.starts_with("Signature not yet current"));
    }
}
