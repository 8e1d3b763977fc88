//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as botocore's `SigV4Auth` signs Lambda
//! `Invoke` and any other non-S3 service.
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//!                    SignedHeaders \n hex(sha256(body))
//! StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n date/region/service/aws4_request \n
//!                    hex(sha256(CanonicalRequest))
//! SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//!                         "aws4_request")
//! Signature        = hex(HMAC(SigningKey, StringToSign))
//! ```
//!
//! Details that botocore fixes and this module copies:
//!
//! - The canonical URI is the path *as sent*, with dot segments and empty segments
//!   removed, percent-encoded once more (only unreserved characters and `/` are kept).
//!   A Lambda function name `my-fn:prod` goes on the wire as `my-fn%3Aprod` and is signed
//!   as `my-fn%253Aprod`: non-S3 services double-encode.
//! - Every header is signed except `user-agent`, `x-amzn-trace-id`, `expect` and the
//!   hop-by-hop ones ([`UNSIGNED_HEADERS`]); `host` always is. Values are trimmed and
//!   inner runs of whitespace become one space; repeated names join their values
//!   with `,`.
//! - The query is sorted by encoded key, then encoded value.
//! - A session token travels in `X-Amz-Security-Token` and is signed.
//!
//! A client calls [`sigv4_sign`]. A server parses the `Authorization` header with
//! [`SigV4Authorization::parse`] and recomputes with [`sigv4_verify`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::{percent_encode, sha256_hex};

/// The algorithm name, which opens both the string to sign and the `Authorization` value.
pub const AWS4_HMAC_SHA256: &str = "AWS4-HMAC-SHA256";

/// Lower-case header names botocore never signs (`SIGNED_HEADERS_BLACKLIST`).
pub const UNSIGNED_HEADERS: &[&str] = &[
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// Headers [`sigv4_sign`] writes itself, so caller-supplied copies are dropped first
/// (botocore deletes them before signing, which makes a retry sign afresh).
const REPLACED_HEADERS: &[&str] = &["authorization", "x-amz-date", "x-amz-security-token"];

/// An AWS key pair, and the session token that comes with temporary credentials.
#[derive(Debug, Clone, Copy)]
pub struct AwsCredentials<'a> {
    /// The access key id, e.g. `AKIA…` or `ASIA…`.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary (STS) credentials.
    pub session_token: Option<&'a str>,
}

/// The parts of a request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path exactly as sent on the wire (already percent-encoded), without the query;
    /// see [`lambda_invoke_path`].
    pub path: &'a str,
    /// The query parameters, decoded (they are encoded while canonicalizing).
    pub query: &'a [(&'a str, &'a str)],
    /// The `Host` header value: lower-case, with the port unless it is the scheme's
    /// default.
    pub host: &'a str,
    /// The other headers, in any case. A `host` entry here is ignored in favour of
    /// [`SigV4Request::host`].
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body ([`sha256_hex`]).
    pub payload_sha256: &'a str,
}

/// The headers [`sigv4_sign`] asks the caller to add to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Headers {
    /// `X-Amz-Date`, the timestamp that was signed.
    pub x_amz_date: String,
    /// `X-Amz-Security-Token`, present with temporary credentials.
    pub x_amz_security_token: Option<String>,
    /// `Authorization`.
    pub authorization: String,
}

impl SigV4Headers {
    /// The headers as `(name, value)` pairs, ready to add to a request.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![("X-Amz-Date", self.x_amz_date.as_str())];
        if let Some(token) = &self.x_amz_security_token {
            pairs.push(("X-Amz-Security-Token", token.as_str()));
        }
        pairs.push(("Authorization", self.authorization.as_str()));
        pairs
    }
}

/// The wire path of Lambda `Invoke` for `function_name` (a name, `name:qualifier`, or a
/// full or partial ARN): every character but the unreserved ones is percent-encoded, so
/// `my-fn:prod` becomes `/2015-03-31/functions/my-fn%3Aprod/invocations`, as botocore
/// sends it.
pub fn lambda_invoke_path(function_name: &str) -> String {
    format!(
        "/2015-03-31/functions/{}/invocations",
        percent_encode(function_name)
    )
}

/// `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`, UTC) for a time given in seconds since the Unix
/// epoch.
pub fn sigv4_amz_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Signs `request` for `service` in `region` at `amz_date` (`YYYYMMDDTHHMMSSZ`, see
/// [`sigv4_amz_date`]) and returns the headers to add. Signs `host`, every header in
/// `request.headers` that botocore signs, `x-amz-date` and, with a session token,
/// `x-amz-security-token`.
pub fn sigv4_sign(
    credentials: &AwsCredentials<'_>,
    region: &str,
    service: &str,
    request: &SigV4Request<'_>,
    amz_date: &str,
) -> SigV4Headers {
    let mut headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(k, _)| !REPLACED_HEADERS.iter().any(|r| k.eq_ignore_ascii_case(r)))
        .copied()
        .collect();
    headers.push(("x-amz-date", amz_date));
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token", token));
    }
    let request = SigV4Request {
        headers: &headers,
        ..*request
    };
    let signed = sigv4_signed_headers(request.headers);
    let canonical = sigv4_canonical_request(&request, &signed);
    let date = &amz_date[..amz_date.len().min(8)];
    let scope = sigv4_scope(date, region, service);
    let string_to_sign = sigv4_string_to_sign(amz_date, &scope, &canonical);
    let signature = sigv4_signature(
        credentials.secret_access_key,
        date,
        region,
        service,
        &string_to_sign,
    );
    SigV4Headers {
        x_amz_date: amz_date.to_owned(),
        x_amz_security_token: credentials.session_token.map(str::to_owned),
        authorization: format!(
            "{AWS4_HMAC_SHA256} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key_id,
            signed.join(";")
        ),
    }
}

/// The header names botocore signs for `headers`: `host` plus every name not in
/// [`UNSIGNED_HEADERS`], lower-case, sorted and deduplicated.
pub fn sigv4_signed_headers(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.trim().to_ascii_lowercase())
        .filter(|k| !UNSIGNED_HEADERS.contains(&k.as_str()))
        .chain(std::iter::once("host".to_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The canonical URI of a wire `path`: dot segments and empty segments removed (a
/// trailing `/` kept), then every byte except unreserved characters and `/`
/// percent-encoded, so an existing `%3A` becomes `%253A`. An empty path is `/`.
pub fn sigv4_canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut normalized = String::from(if path.starts_with('/') { "/" } else { "" });
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    if normalized.is_empty() {
        return "/".to_owned();
    }
    normalized
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical query: each key and value RFC 3986 encoded, sorted by key then value,
/// `k=v` joined with `&`.
pub fn sigv4_canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical headers for the names in `signed_headers` (lower-case, in that order):
/// `name:values\n` each, where every value of that name is trimmed with inner whitespace
/// runs collapsed to one space, and the values are joined with `,` in the order given.
pub fn sigv4_canonical_headers<S: AsRef<str>>(
    headers: &[(&str, &str)],
    signed_headers: &[S],
) -> String {
    let mut out = String::new();
    for name in signed_headers {
        let name = name.as_ref();
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The canonical request, signing the headers named in `signed_headers` (lower-case,
/// sorted). `request.host` stands in for any `host` header.
pub fn sigv4_canonical_request<S: AsRef<str>>(
    request: &SigV4Request<'_>,
    signed_headers: &[S],
) -> String {
    let mut headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(k, _)| !k.trim().eq_ignore_ascii_case("host"))
        .copied()
        .collect();
    headers.push(("host", request.host));
    let signed: Vec<&str> = signed_headers.iter().map(AsRef::as_ref).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        sigv4_canonical_uri(request.path),
        sigv4_canonical_query(request.query),
        sigv4_canonical_headers(&headers, &signed),
        signed.join(";"),
        request.payload_sha256,
    )
}

/// The credential scope `date/region/service/aws4_request`, `date` being `YYYYMMDD`.
pub fn sigv4_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign: algorithm, `amz_date`, `scope`, hex SHA-256 of the canonical
/// request, one per line.
pub fn sigv4_string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{AWS4_HMAC_SHA256}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-case hex signature of `string_to_sign` with the key derived from `secret` for
/// `date` (`YYYYMMDD`), `region` and `service`.
pub fn sigv4_signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign))
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A parsed `AWS4-HMAC-SHA256` `Authorization` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Authorization<'a> {
    /// The access key id, the first part of `Credential`.
    pub access_key_id: &'a str,
    /// The scope date, `YYYYMMDD`.
    pub date: &'a str,
    /// The scope region.
    pub region: &'a str,
    /// The scope service, e.g. `lambda`.
    pub service: &'a str,
    /// The `SignedHeaders` field split on `;`, in the order sent.
    pub signed_headers: Vec<&'a str>,
    /// The `Signature` field: lower-case hex.
    pub signature: &'a str,
}

impl<'a> SigV4Authorization<'a> {
    /// Parses `AWS4-HMAC-SHA256 Credential=id/date/region/service/aws4_request,
    /// SignedHeaders=a;b, Signature=hex`.
    ///
    /// The fields may come in any order, with or without spaces after the commas.
    /// Returns `None` for another algorithm, a missing or empty field, or a credential
    /// that does not end in `aws4_request`.
    pub fn parse(value: &'a str) -> Option<Self> {
        let fields = value.strip_prefix(AWS4_HMAC_SHA256)?.strip_prefix(' ')?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for field in fields.split(',') {
            let (key, val) = field.trim().split_once('=')?;
            match key {
                "Credential" => credential = Some(val),
                "SignedHeaders" => signed = Some(val),
                "Signature" => signature = Some(val),
                _ => {}
            }
        }
        let (signed, signature) = (signed?, signature?);
        // The access key id cannot hold a '/', so split from the right.
        let mut parts = credential?.rsplitn(5, '/');
        let terminator = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key_id = parts.next()?;
        let fields = [access_key_id, date, region, service, signed, signature];
        if terminator != "aws4_request" || fields.iter().any(|f| f.is_empty()) {
            return None;
        }
        Some(Self {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed.split(';').collect(),
            signature,
        })
    }
}

/// Recomputes the signature of a received `request` with the key's `secret`, the
/// `SignedHeaders` and scope from `authorization`, and the request's `X-Amz-Date`
/// value, and compares it with the one sent in constant time.
///
/// `request.headers` holds the headers as received; only the signed ones are used.
/// Checks nothing else: the caller decides which scopes, dates and headers it accepts.
pub fn sigv4_verify(
    secret: &str,
    authorization: &SigV4Authorization<'_>,
    request: &SigV4Request<'_>,
    amz_date: &str,
) -> bool {
    let canonical = sigv4_canonical_request(request, &authorization.signed_headers);
    let scope = sigv4_scope(
        authorization.date,
        authorization.region,
        authorization.service,
    );
    let expected = sigv4_signature(
        secret,
        authorization.date,
        authorization.region,
        authorization.service,
        &sigv4_string_to_sign(amz_date, &scope, &canonical),
    );
    constant_time_eq(expected.as_bytes(), authorization.signature.as_bytes())
}

/// Whether `a == b`, taking the same time for every pair of equal-length inputs.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
