//! The FC 2.0 signature: `Authorization: FC {AccessKeyId}:{base64(HMAC-SHA256)}`.
//!
//! ```text
//! StringToSign = METHOD \n Content-MD5 \n Content-Type \n Date \n
//!                (lowercased, sorted `x-fc-*` headers as `name:value\n`) + path
//! ```
//!
//! The path is the decoded path without the query: InvokeFunction never signs a query
//! (only HTTP-trigger `/proxy/` requests do, which fcsink does not send).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of the headers that FC 2.0 signs.
const FC_HEADER_PREFIX: &str = "x-fc-";

/// Builds the FC 2.0 string to sign for `method` and `path` with `headers`.
///
/// `Content-MD5`, `Content-Type` and `Date` are looked up case-insensitively (empty when
/// absent). Every header whose lowercased name starts with `x-fc-` is emitted as
/// `name:value\n`, sorted by the lowercased name; values are used exactly as given.
/// Anything from the first `?` of `path` on is dropped. `path` must be the unescaped
/// path, which for InvokeFunction paths (names of `[A-Za-z0-9_-]`) is the wire path.
pub fn fc2_string_to_sign(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| *v)
    };
    let mut fc_headers: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .filter(|(k, _)| k.starts_with(FC_HEADER_PREFIX))
        .collect();
    // Stable, so repeated names keep their order (the SDKs never send repeats).
    fc_headers.sort_by(|a, b| a.0.cmp(&b.0));

    let resource = path.split_once('?').map_or(path, |(p, _)| p);
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        method.to_ascii_uppercase(),
        header("content-md5"),
        header("content-type"),
        header("date"),
    );
    for (name, value) in fc_headers {
        s.push_str(&name);
        s.push(':');
        s.push_str(value);
        s.push('\n');
    }
    s.push_str(resource);
    s
}

/// Signs `string_to_sign`: `base64(HMAC-SHA256(access_key_secret, string_to_sign))`.
pub fn fc2_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The full `Authorization` header value: `FC {access_key_id}:{signature}`.
///
/// With STS credentials, include `x-fc-security-token` in `headers` so it is signed.
pub fn fc2_authorization(
    access_key_id: &str,
    access_key_secret: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    let string_to_sign = fc2_string_to_sign(method, path, headers);
    format!(
        "FC {access_key_id}:{}",
        fc2_signature(access_key_secret, &string_to_sign)
    )
}

/// Splits an `FC {id}:{signature}` header value into `(id, signature)`.
///
/// Returns `None` when the scheme is not `FC` or either part is empty.
pub fn parse_fc2_authorization(value: &str) -> Option<(&str, &str)> {
    let credential = value.strip_prefix("FC ")?;
    let (id, signature) = credential.split_once(':')?;
    (!id.is_empty() && !signature.is_empty()).then_some((id, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK_ID: &str = "LTAI5tFixedTestKeyId0001";
    const AK_SECRET: &str = "FixedTestSecretForSdkVectors0123";
    const ASYNC_PATH: &str =
        "/2016-08-15/services/kafka-sink.LATEST/functions/hello_world/invocations";

    /// The headers of the `[fc2] async_*` vectors, in a client's own casing and order.
    fn async_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                "X-Fc-Security-Token",
                "CAISfixedSecurityTokenForVectors/+==",
            ),
            ("Content-Type", "application/octet-stream"),
            ("x-fc-invocation-type", "Async"),
            ("Date", "Mon, 02 Jan 2006 15:04:05 GMT"),
            ("User-Agent", "fcsink/0.1"),
            ("X-FC-Account-Id", "1234567890123456"),
            ("x-fc-log-type", "None"),
            ("x-fcdummy", "not signed: the prefix is `x-fc-`"),
        ]
    }

    #[test]
    fn string_to_sign_matches_python_sdk() {
        // aliyun-fc2 2.5.2, fc2.auth.Auth.sign_request's logged string to sign
        // (scripts/sdk_vectors.py: [fc2] async_string_to_sign).
        let expected = "POST\n\napplication/octet-stream\nMon, 02 Jan 2006 15:04:05 GMT\n\
                        x-fc-account-id:1234567890123456\nx-fc-invocation-type:Async\n\
                        x-fc-log-type:None\n\
                        x-fc-security-token:CAISfixedSecurityTokenForVectors/+==\n\
                        /2016-08-15/services/kafka-sink.LATEST/functions/hello_world/invocations";
        assert_eq!(
            fc2_string_to_sign("post", ASYNC_PATH, &async_headers()),
            expected
        );
    }

    #[test]
    fn async_authorization_matches_python_sdk() {
        // aliyun-fc2 2.5.2, fc2.auth.Auth(id, secret, token).sign_request
        // (scripts/sdk_vectors.py: [fc2] async_authorization).
        let expected = "FC LTAI5tFixedTestKeyId0001:NdTvciwfKCJHV4F+X1GYZN2MzmjgrJ+UesG/mYi/9wU=";
        let auth = fc2_authorization(AK_ID, AK_SECRET, "POST", ASYNC_PATH, &async_headers());
        assert_eq!(auth, expected);
    }

    #[test]
    fn query_is_not_signed() {
        let with_query = format!("{ASYNC_PATH}?qualifier=ignored");
        assert_eq!(
            fc2_authorization(AK_ID, AK_SECRET, "POST", &with_query, &async_headers()),
            fc2_authorization(AK_ID, AK_SECRET, "POST", ASYNC_PATH, &async_headers()),
        );
    }

    #[test]
    fn sync_without_fc_headers_matches_python_sdk() {
        // aliyun-fc2 2.5.2, fc2.auth.Auth(id, secret).sign_request
        // (scripts/sdk_vectors.py: [fc2] sync_no_fc_headers_authorization).
        let expected = "FC LTAI5tFixedTestKeyId0001:AsGa2U23wUIujlx25NPsPUYOLIakdN40doK5nDR/TUY=";
        let headers = [
            ("CONTENT-MD5", "CY9rzUYh03PK3k6DJie09g=="),
            ("content-type", "application/json"),
            ("date", "Tue, 02 Jan 2024 03:04:05 GMT"),
        ];
        let path = "/2016-08-15/services/kafka-sink/functions/hello_world/invocations";
        assert_eq!(
            fc2_authorization(AK_ID, AK_SECRET, "POST", path, &headers),
            expected
        );
    }

    #[test]
    fn go_sdk_vector() {
        // aliyun/fc-go-sdk signature_test.go TestGetSignature, as quoted in
        // shared/reference/fc-api.md §1.4: the HMAC over a given string to sign.
        let sign_str = "GET\nef5b43a0fe1d5b401b62c3ba33a7a3d6\ntext/json\n1583221068\n\
                        x-fc-trace-id:trace-id\n/2016-08-15/proxy/service.LATEST/func/abc 123\n\
                        a=123 45\nx-fc-access-key-id=akID\nx-fc-expires=1583221068\n\
                        x-fc-security-token=stsToken\nx=456\nx=xyz";
        assert_eq!(
            fc2_signature("S9MWOBG0AOWHSO9HPASP216QOPHT5YR4NLH3A", sign_str),
            "QFdNhz0Dl+onUM/MvpX940WFH3H8OHayZHbby1c01aI="
        );
    }

    #[test]
    fn parse_authorization() {
        assert_eq!(
            parse_fc2_authorization("FC id:a/b+c="),
            Some(("id", "a/b+c="))
        );
        assert_eq!(parse_fc2_authorization("FC :sig"), None);
        assert_eq!(parse_fc2_authorization("FC id:"), None);
        assert_eq!(
            parse_fc2_authorization("ACS3-HMAC-SHA256 Credential=x"),
            None
        );
    }
}
