//! OpenAPI V3 signature `ACS3-HMAC-SHA256`, used by FC 3.0 (API `2023-03-30`).
//!
//! ```text
//! CanonicalRequest = METHOD \n URI \n CanonicalQuery \n CanonicalHeaders \n
//!                    SignedHeaders \n hex(sha256(body))
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(secret, StringToSign))
//! ```
//!
//! A client signs `host`, `content-type` and every `x-acs-*` header, as the Go, Java and
//! TypeScript SDKs do ([`acs3_signed_headers`]). The Python SDK signs every header it
//! sends, so a server recomputes with the `SignedHeaders` list the request carries
//! ([`Acs3Authorization::parse`], then [`acs3_canonical_request`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::{percent_encode, sha256_hex};

/// The algorithm name, which opens both the string to sign and the `Authorization` value.
pub const ACS3_HMAC_SHA256: &str = "ACS3-HMAC-SHA256";

/// The parts of a request that the ACS3 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Acs3Request<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path exactly as sent on the wire (already percent-encoded), without the query;
    /// empty means `/`.
    pub path: &'a str,
    /// The query parameters, decoded (they are encoded again while canonicalizing).
    pub query: &'a [(&'a str, &'a str)],
    /// All request headers in any case; which are signed is decided separately.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body (the `x-acs-content-sha256` value).
    pub payload_sha256: &'a str,
}

/// The header names a client signs by default: `host`, `content-type` and every
/// `x-acs-*` header present in `headers`, lowercased, sorted and deduplicated.
pub fn acs3_signed_headers(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k == "host" || k == "content-type" || k.starts_with("x-acs-"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The canonical query string: parameters sorted by key, each `key=pct(value)`, joined
/// by `&`.
///
/// Values are RFC 3986 encoded and keys are kept as given, as the Python, Go and
/// TypeScript SDKs do (keys of `[A-Za-z0-9_-]` are the same either way). A repeated key
/// is ordered by value.
pub fn acs3_canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, String)> =
        query.iter().map(|(k, v)| (*k, percent_encode(v))).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical headers for the names in `signed_headers` (lower-case, in that order):
/// `name:values\n` each, where the values of every header with that name are trimmed,
/// sorted and joined with `,`. A signed name with no header gets an empty value.
pub fn acs3_canonical_headers<S: AsRef<str>>(
    headers: &[(&str, &str)],
    signed_headers: &[S],
) -> String {
    let mut out = String::new();
    for name in signed_headers {
        let name = name.as_ref();
        let mut values: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        values.sort_unstable();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The canonical request, signing the headers named in `signed_headers` (lower-case, in
/// the order given, which is also the order of the `SignedHeaders` line).
pub fn acs3_canonical_request<S: AsRef<str>>(
    request: &Acs3Request<'_>,
    signed_headers: &[S],
) -> String {
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    let signed: Vec<&str> = signed_headers.iter().map(AsRef::as_ref).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        path,
        acs3_canonical_query(request.query),
        acs3_canonical_headers(request.headers, &signed),
        signed.join(";"),
        request.payload_sha256,
    )
}

/// The string to sign: the algorithm name, `\n`, hex SHA-256 of the canonical request.
pub fn acs3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ACS3_HMAC_SHA256}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-case hex `HMAC-SHA256(access_key_secret, string_to_sign)`.
pub fn acs3_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `Authorization` value for `request`, signing the default header set
/// ([`acs3_signed_headers`]):
/// `ACS3-HMAC-SHA256 Credential={id},SignedHeaders={a;b},Signature={hex}`.
///
/// `request.headers` must already hold `x-acs-content-sha256` (and, with STS
/// credentials, `x-acs-security-token`) so they are signed.
pub fn acs3_authorization(
    access_key_id: &str,
    access_key_secret: &str,
    request: &Acs3Request<'_>,
) -> String {
    let signed = acs3_signed_headers(request.headers);
    let canonical = acs3_canonical_request(request, &signed);
    let signature = acs3_signature(access_key_secret, &acs3_string_to_sign(&canonical));
    format!(
        "{ACS3_HMAC_SHA256} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        signed.join(";")
    )
}

/// A parsed `ACS3-HMAC-SHA256` `Authorization` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization<'a> {
    /// The `Credential` field: the access key id.
    pub access_key_id: &'a str,
    /// The `SignedHeaders` field split on `;`, in the order sent.
    pub signed_headers: Vec<&'a str>,
    /// The `Signature` field: lower-case hex.
    pub signature: &'a str,
}

impl<'a> Acs3Authorization<'a> {
    /// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
    ///
    /// The three fields may come in any order, optionally with spaces after the commas.
    /// Returns `None` for another algorithm or a missing or empty field.
    pub fn parse(value: &'a str) -> Option<Self> {
        let fields = value.strip_prefix(ACS3_HMAC_SHA256)?.strip_prefix(' ')?;
        let (mut id, mut signed, mut signature) = (None, None, None);
        for field in fields.split(',') {
            let (key, val) = field.trim().split_once('=')?;
            match key {
                "Credential" => id = Some(val),
                "SignedHeaders" => signed = Some(val),
                "Signature" => signature = Some(val),
                _ => {}
            }
        }
        let (id, signed, signature) = (id?, signed?, signature?);
        if id.is_empty() || signed.is_empty() || signature.is_empty() {
            return None;
        }
        Some(Self {
            access_key_id: id,
            signed_headers: signed.split(';').collect(),
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK_ID: &str = "LTAI5tFixedTestKeyId0001";
    const AK_SECRET: &str = "FixedTestSecretForSdkVectors0123";
    const BODY: &[u8] = br#"[{"topic":"orders","value":"hello"}]"#;
    const PAYLOAD: &str = "dc65ff65f1862637cf09f17a8b26f7b7497a05dbff031ffcd5e8b8a5755c0b76";
    const PATH: &str = "/2023-03-30/functions/hello_world/invocations";
    const QUERY: &[(&str, &str)] = &[("qualifier", "LATEST")];

    /// The `[acs3]` vectors' headers in a client's casing, plus headers the Go/Java/TS
    /// SDKs (and this crate) leave unsigned.
    fn headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("x-acs-version", "2023-03-30"),
            ("Host", "1234567890123456.cn-hangzhou.fc.aliyuncs.com"),
            ("x-acs-action", "InvokeFunction"),
            ("Content-Type", "application/octet-stream"),
            ("x-acs-date", "2024-01-02T03:04:05Z"),
            (
                "x-acs-signature-nonce",
                "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            ),
            ("x-acs-content-sha256", PAYLOAD),
            ("x-acs-accesskey-id", AK_ID),
            (
                "X-Acs-Security-Token",
                "CAISfixedSecurityTokenForVectors/+==",
            ),
            ("accept", "application/json"),
            (
                "user-agent",
                "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.6 TeaDSL/2",
            ),
            ("x-fc-invocation-type", "Async"),
        ]
    }

    fn request<'a>(headers: &'a [(&'a str, &'a str)]) -> Acs3Request<'a> {
        Acs3Request {
            method: "POST",
            path: PATH,
            query: QUERY,
            headers,
            payload_sha256: PAYLOAD,
        }
    }

    #[test]
    fn payload_hash() {
        // scripts/sdk_vectors.py: [acs3] payload_sha256 (hashlib over the [acs3] body).
        assert_eq!(sha256_hex(BODY), PAYLOAD);
    }

    #[test]
    fn signed_and_canonical_headers_match_python_sdk() {
        // alibabacloud-tea-openapi 0.4.6 utils.get_canonicalized_headers over the
        // host/content-type/x-acs-* headers (scripts/sdk_vectors.py: [acs3]
        // canonical_headers and signed_headers).
        let headers = headers();
        let signed = acs3_signed_headers(&headers);
        assert_eq!(
            signed.join(";"),
            "content-type;host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;\
             x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            acs3_canonical_headers(&headers, &signed),
            "content-type:application/octet-stream\n\
             host:1234567890123456.cn-hangzhou.fc.aliyuncs.com\n\
             x-acs-accesskey-id:LTAI5tFixedTestKeyId0001\n\
             x-acs-action:InvokeFunction\n\
             x-acs-content-sha256:dc65ff65f1862637cf09f17a8b26f7b7497a05dbff031ffcd5e8b8a5755c0b76\n\
             x-acs-date:2024-01-02T03:04:05Z\n\
             x-acs-security-token:CAISfixedSecurityTokenForVectors/+==\n\
             x-acs-signature-nonce:3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\n\
             x-acs-version:2023-03-30\n"
        );
    }

    #[test]
    fn authorization_matches_python_sdks() {
        // alibabacloud-tea-openapi 0.4.6 Utils.get_authorization and
        // alibabacloud-openapi-util 0.2.4 Client.get_authorization, which agree
        // (scripts/sdk_vectors.py: [acs3] authorization, authorization_openapi_util).
        let expected = "ACS3-HMAC-SHA256 Credential=LTAI5tFixedTestKeyId0001,\
            SignedHeaders=content-type;host;x-acs-accesskey-id;x-acs-action;\
            x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;\
            x-acs-version,\
            Signature=5fca13f9997ca445948248d8f8d403fd81c522fc0ea008eab2425ef49c370777";
        let headers = headers();
        assert_eq!(
            acs3_authorization(AK_ID, AK_SECRET, &request(&headers)),
            expected
        );
    }

    #[test]
    fn server_side_check_of_a_python_style_request() {
        // alibabacloud-tea-openapi 0.4.6 Utils.get_authorization with every header signed,
        // as the Python SDK sends it (scripts/sdk_vectors.py: [acs3]
        // python_style_authorization). A server recomputes from the request's own list.
        let sent = "ACS3-HMAC-SHA256 Credential=LTAI5tFixedTestKeyId0001,\
            SignedHeaders=accept;content-type;host;user-agent;x-acs-accesskey-id;x-acs-action;\
            x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;\
            x-acs-version;x-fc-invocation-type,\
            Signature=0ee8e9ae2656f23f186ebd3b05748b5063f89d868b2d2a6364079311c3336d18";
        let auth = Acs3Authorization::parse(sent).expect("well-formed");
        assert_eq!(auth.access_key_id, AK_ID);
        let headers = headers();
        let canonical = acs3_canonical_request(&request(&headers), &auth.signed_headers);
        let signature = acs3_signature(AK_SECRET, &acs3_string_to_sign(&canonical));
        assert_eq!(signature, auth.signature);

        // The same check fails once a signed header changes.
        let mut tampered = headers.clone();
        tampered.retain(|(k, _)| *k != "x-fc-invocation-type");
        tampered.push(("x-fc-invocation-type", "Sync"));
        let canonical = acs3_canonical_request(&request(&tampered), &auth.signed_headers);
        assert_ne!(
            acs3_signature(AK_SECRET, &acs3_string_to_sign(&canonical)),
            auth.signature
        );
    }

    #[test]
    fn canonical_query_encodes_values() {
        // alibabacloud-tea-openapi 0.4.6 utils.get_canonical_query_string
        // (scripts/sdk_vectors.py: [acs3] canonical_query_encoded).
        let query = [("qualifier", "LATEST"), ("b", "a b/c~d*e+fé"), ("a", "")];
        assert_eq!(
            acs3_canonical_query(&query),
            "a=&b=a%20b%2Fc~d%2Ae%2Bf%C3%A9&qualifier=LATEST"
        );
        assert_eq!(acs3_canonical_query(&[]), "");
    }

    #[test]
    fn canonical_headers_join_repeated_names() {
        // alibabacloud-tea-openapi 0.4.6 utils.get_canonicalized_headers over
        // {"X-Acs-Multi": "b", "x-acs-multi": "  a  ", "Host": " example.com "}
        // (scripts/sdk_vectors.py: [acs3] canonical_headers_multi).
        let headers = [
            ("X-Acs-Multi", "b"),
            ("x-acs-multi", "  a  "),
            ("Host", " example.com "),
        ];
        let signed = acs3_signed_headers(&headers);
        assert_eq!(signed, ["host", "x-acs-multi"]);
        assert_eq!(
            acs3_canonical_headers(&headers, &signed),
            "host:example.com\nx-acs-multi:a,b\n"
        );
    }

    #[test]
    fn empty_path_is_root() {
        let req = Acs3Request {
            method: "GET",
            path: "",
            query: &[],
            headers: &[],
            payload_sha256: "p",
        };
        assert_eq!(
            acs3_canonical_request(&req, &[] as &[&str]),
            "GET\n/\n\n\n\np"
        );
    }

    #[test]
    fn parse_authorization_fields() {
        let parsed = Acs3Authorization::parse(
            "ACS3-HMAC-SHA256 Credential=id, SignedHeaders=host;x-acs-date, Signature=ab",
        )
        .expect("well-formed");
        assert_eq!(parsed.access_key_id, "id");
        assert_eq!(parsed.signed_headers, ["host", "x-acs-date"]);
        assert_eq!(parsed.signature, "ab");
        assert!(Acs3Authorization::parse("ACS3-HMAC-SHA256 Credential=id,Signature=ab").is_none());
        assert!(Acs3Authorization::parse("FC id:sig").is_none());
    }
}
