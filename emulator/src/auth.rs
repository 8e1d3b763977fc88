//! Signature checks for invocations, recomputed from the request as received with
//! `fcsink-sign`, plus the clock-skew and temporary-key (STS) checks.
//!
//! Order of checks: required headers, clock skew, access key, signature, then the
//! security token and expiry of a temporary key. The codes for skew
//! (`RequestTimeTooSkewed`) and for a missing or expired token (`InvalidSecurityToken`,
//! `InvalidSecurityToken.Expired`) are this emulator's choice: FC's are unconfirmed.
//! FC 2.0 signs no body, and `Content-MD5` is not compared with it (the SDKs disagree on
//! its format and whether FC checks it is unconfirmed).

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use fcsink_sign::{
    Acs3Authorization, Acs3Request, acs3_canonical_request, acs3_signature, acs3_string_to_sign,
    fc2_signature, fc2_string_to_sign, parse_fc2_authorization, percent_decode, sha256_hex,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::{Credentials, Key};
use crate::error::ApiError;

/// How far a request's date may be from the emulator's clock, as in FC.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The header FC 2.0 requests carry an STS token in.
pub const FC2_TOKEN_HEADER: &str = "x-fc-security-token";
/// The header FC 3.0 requests carry an STS token in.
pub const FC3_TOKEN_HEADER: &str = "x-acs-security-token";
/// The header carrying the hex SHA-256 of an FC 3.0 body.
pub const FC3_CONTENT_SHA256_HEADER: &str = "x-acs-content-sha256";

/// Who sent a request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The access key id it was signed with.
    pub access_key_id: String,
}

/// Checks an FC 2.0 request: `Date`, `Authorization: FC id:sig` over the decoded path.
pub fn verify_fc2(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<Caller, ApiError> {
    let date = required(headers, "date", "Date")?;
    let authorization = required(headers, "authorization", "Authorization")?;
    let sent = httpdate::parse_http_date(date)
        .map_err(|_| ApiError::invalid_argument(format!("invalid Date header '{date}'")))?;
    check_skew(date, sent, now)?;
    let (id, signature) =
        parse_fc2_authorization(authorization).ok_or_else(ApiError::signature_not_match)?;
    let key = known_key(credentials, id)?;

    let pairs = header_pairs(headers);
    let path = percent_decode(uri.path(), false);
    let expected = fc2_signature(
        &key.secret,
        &fc2_string_to_sign(method.as_str(), &path, &borrowed(&pairs)),
    );
    if expected != signature {
        return Err(ApiError::signature_not_match());
    }
    check_temporary(&key, header(headers, FC2_TOKEN_HEADER), now)?;
    Ok(Caller {
        access_key_id: id.to_owned(),
    })
}

/// Checks an FC 3.0 request's `x-acs-date` and ACS3 `Authorization` against the
/// request's own `SignedHeaders` list. The body is checked afterwards with
/// [`verify_fc3_body`], once it has been read; `x-acs-content-sha256` is signed, so the
/// pair covers the body.
pub fn verify_fc3(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<Caller, ApiError> {
    let date = required(headers, "x-acs-date", "x-acs-date")?;
    let authorization = required(headers, "authorization", "Authorization")?;
    let content_sha256 = required(
        headers,
        FC3_CONTENT_SHA256_HEADER,
        FC3_CONTENT_SHA256_HEADER,
    )?;
    let sent = OffsetDateTime::parse(date, &Rfc3339)
        .map_err(|_| ApiError::invalid_argument(format!("invalid x-acs-date header '{date}'")))?;
    check_skew(date, sent.into(), now)?;
    let auth = Acs3Authorization::parse(authorization).ok_or_else(ApiError::signature_not_match)?;
    let key = known_key(credentials, auth.access_key_id)?;

    // Every x-acs-* header sent must be signed, so the token and body hash are covered.
    let all_signed = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-acs-"))
        .all(|name| auth.signed_headers.contains(&name.as_str()));
    if !all_signed {
        return Err(ApiError::signature_not_match());
    }

    let mut pairs = header_pairs(headers);
    // HTTP/2 carries the host as :authority, which ends up in the URI, not the headers.
    if let (None, Some(authority)) = (headers.get("host"), uri.authority()) {
        pairs.push(("host".to_owned(), authority.to_string()));
    }
    let query = query_pairs(uri.query().unwrap_or(""));
    let request = Acs3Request {
        method: method.as_str(),
        path: uri.path(),
        query: &borrowed(&query),
        headers: &borrowed(&pairs),
        payload_sha256: content_sha256,
    };
    let canonical = acs3_canonical_request(&request, &auth.signed_headers);
    if acs3_signature(&key.secret, &acs3_string_to_sign(&canonical)) != auth.signature {
        return Err(ApiError::signature_not_match());
    }
    check_temporary(&key, header(headers, FC3_TOKEN_HEADER), now)?;
    Ok(Caller {
        access_key_id: auth.access_key_id.to_owned(),
    })
}

/// Checks that `body` hashes to the (signed) `x-acs-content-sha256` header.
pub fn verify_fc3_body(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let claimed = header(headers, FC3_CONTENT_SHA256_HEADER).unwrap_or("");
    if claimed.eq_ignore_ascii_case(&sha256_hex(body)) {
        Ok(())
    } else {
        Err(ApiError::signature_not_match())
    }
}

/// Decoded `(key, value)` pairs of a raw query string; `+` is a space.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The value of header `name` if it is present and valid UTF-8.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every header as `(lower-case name, value)`, non-UTF-8 values replaced lossily.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_owned(), value)
        })
        .collect()
}

/// Borrows owned pairs as the `(&str, &str)` slices `fcsink-sign` takes.
pub fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn required<'a>(headers: &'a HeaderMap, name: &str, shown: &str) -> Result<&'a str, ApiError> {
    header(headers, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_header(shown))
}

fn check_skew(shown: &str, sent: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    let skew = match now.duration_since(sent) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew <= MAX_CLOCK_SKEW {
        return Ok(());
    }
    let now = httpdate::fmt_http_date(now);
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "RequestTimeTooSkewed",
        format!(
            "the difference between the request time '{shown}' and the current time '{now}' \
             is too large (more than 15 minutes)"
        ),
    ))
}

fn known_key(credentials: &Credentials, id: &str) -> Result<Key, ApiError> {
    credentials.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyID",
            format!("invalid access key ID '{id}'"),
        )
    })
}

fn check_temporary(key: &Key, token: Option<&str>, now: SystemTime) -> Result<(), ApiError> {
    if let Some(expected) = &key.security_token
        && token != Some(expected.as_str())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidSecurityToken",
            "the security token is missing or does not match the temporary access key",
        ));
    }
    if key.expires_at.is_some_and(|at| now >= at) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InvalidSecurityToken.Expired",
            "the security token has expired",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            query_pairs("qualifier=LATEST&a+b=c%2Fd&flag&"),
            [
                ("qualifier".to_owned(), "LATEST".to_owned()),
                ("a b".to_owned(), "c/d".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn skew_both_directions() {
        let now = SystemTime::now();
        let minute = Duration::from_secs(60);
        assert!(check_skew("", now - 14 * minute, now).is_ok());
        assert!(check_skew("", now + 14 * minute, now).is_ok());
        assert!(check_skew("", now - 16 * minute, now).is_err());
        assert!(check_skew("", now + 16 * minute, now).is_err());
    }

    #[test]
    fn temporary_keys_need_token_and_time() {
        let now = SystemTime::now();
        let key = Key {
            secret: "s".into(),
            security_token: Some("tok".into()),
            expires_at: Some(now + Duration::from_secs(60)),
        };
        assert!(check_temporary(&key, Some("tok"), now).is_ok());
        assert!(check_temporary(&key, None, now).is_err());
        assert!(check_temporary(&key, Some("other"), now).is_err());
        let expired = check_temporary(&key, Some("tok"), now + Duration::from_secs(61));
        assert_eq!(
            expired.expect_err("expired").code,
            "InvalidSecurityToken.Expired"
        );
    }
}
