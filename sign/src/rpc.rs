//! RPC V2 signature (HMAC-SHA1), used by STS `AssumeRole`.
//!
//! ```text
//! Canonicalized = pct(k)=pct(v) for every parameter but Signature, sorted by key, joined by &
//! StringToSign  = METHOD & %2F & pct(Canonicalized)
//! Signature     = base64(HMAC-SHA1(secret + "&", StringToSign))
//! ```
//!
//! `pct` is RFC 3986 ([`percent_encode`]): a space is `%20`, never `+`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::encode::percent_encode;

/// The parameter that carries the signature, left out of what is signed.
const SIGNATURE_PARAM: &str = "Signature";

/// The canonicalized query string of `params`, leaving out `Signature`: `pct(k)=pct(v)`
/// sorted by key (then value), joined by `&`.
pub fn rpc_canonicalized_query(params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(k, _)| *k != SIGNATURE_PARAM)
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The string to sign: `METHOD&%2F&pct(canonicalized query)`; `method` is the HTTP
/// method the request is sent with (`GET` or `POST`).
pub fn rpc_string_to_sign(method: &str, params: &[(&str, &str)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&rpc_canonicalized_query(params))
    )
}

/// The `Signature` parameter value: `base64(HMAC-SHA1(access_key_secret + "&",
/// string_to_sign))`.
pub fn rpc_signature(access_key_secret: &str, method: &str, params: &[(&str, &str)]) -> String {
    let key = format!("{access_key_secret}&");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(rpc_string_to_sign(method, params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK_SECRET: &str = "FixedTestSecretForSdkVectors0123";

    /// The `[rpc]` vectors' AssumeRole parameters, in no particular order.
    fn params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SignatureNonce", "8d3b6a3e-1c2f-4e5d-9a7b-112233445566"),
            ("Action", "AssumeRole"),
            (
                "RoleArn",
                "acs:ram::1234567890123456:role/AliyunKafkaConnectorRole",
            ),
            ("Format", "JSON"),
            ("Version", "2015-04-01"),
            ("DurationSeconds", "3600"),
            ("RoleSessionName", "fcsink-session"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-01-02T03:04:05Z"),
            ("AccessKeyId", "LTAI5tFixedTestKeyId0001"),
        ]
    }

    #[test]
    fn string_to_sign_matches_credentials_sdk() {
        // alibabacloud-credentials 1.0.12 parameter_helper.compose_string_to_sign('GET', …)
        // (scripts/sdk_vectors.py: [rpc] assume_role_string_to_sign).
        let expected = "GET&%2F&AccessKeyId%3DLTAI5tFixedTestKeyId0001%26Action%3DAssumeRole\
            %26DurationSeconds%3D3600%26Format%3DJSON%26RoleArn%3Dacs%253Aram%253A%253A\
            1234567890123456%253Arole%252FAliyunKafkaConnectorRole%26RoleSessionName%3D\
            fcsink-session%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D\
            8d3b6a3e-1c2f-4e5d-9a7b-112233445566%26SignatureVersion%3D1.0%26Timestamp%3D\
            2024-01-02T03%253A04%253A05Z%26Version%3D2015-04-01";
        assert_eq!(rpc_string_to_sign("GET", &params()), expected);
    }

    #[test]
    fn get_signature_matches_sdks() {
        // alibabacloud-credentials 1.0.12 parameter_helper.sign_string(sts, secret + '&')
        // and alibabacloud-tea-openapi 0.4.6 Utils.get_rpcsignature(params, 'GET', secret)
        // (scripts/sdk_vectors.py: [rpc] assume_role_get_credentials, assume_role_get_tea).
        assert_eq!(
            rpc_signature(AK_SECRET, "GET", &params()),
            "zXGq//rWPlSYZM8W4IjRAQnf8Wg="
        );
    }

    #[test]
    fn post_signature_matches_tea_openapi() {
        // alibabacloud-tea-openapi 0.4.6 Utils.get_rpcsignature(params, 'POST', secret)
        // (scripts/sdk_vectors.py: [rpc] assume_role_post_tea).
        assert_eq!(
            rpc_signature(AK_SECRET, "POST", &params()),
            "BUbO/pr/NgjPCTA1SFRCVMFq3Fo="
        );
    }

    #[test]
    fn signature_param_is_ignored() {
        let mut signed = params();
        signed.push(("Signature", "zXGq//rWPlSYZM8W4IjRAQnf8Wg="));
        assert_eq!(
            rpc_signature(AK_SECRET, "GET", &signed),
            rpc_signature(AK_SECRET, "GET", &params())
        );
    }

    #[test]
    fn spaces_and_stars_are_rfc3986() {
        // alibabacloud-tea-openapi 0.4.6 Utils.get_rpcsignature with a Policy holding a
        // space, '*' and '~' (scripts/sdk_vectors.py: [rpc] assume_role_policy_get_tea).
        let mut with_policy = params();
        with_policy.push((
            "Policy",
            r#"{"Statement": [{"Action": ["fc:*"], "Effect": "Allow"}], "Version": "1~"}"#,
        ));
        assert_eq!(
            rpc_signature(AK_SECRET, "GET", &with_policy),
            "xRig6b3Tk+9ZKLSfGgcNxhXl9C4="
        );
        assert!(rpc_canonicalized_query(&with_policy).contains("%20%5B%7B%22Action%22"));
    }
}
