//! The harness: an emulator on a free port, and requests signed the way clients sign.

use std::time::{Duration, SystemTime};

use fc_emulator::{Emulator, EmulatorConfig};
use fcsink_sign::{Acs3Request, acs3_authorization, fc2_authorization, percent_encode, sha256_hex};
use reqwest::{Client, Response};
use time::OffsetDateTime;
use time::macros::format_description;

pub const ID: &str = "LTAItestkey0001";
pub const SECRET: &str = "test-secret-0001";
pub const FC2_PATH: &str =
    "/2016-08-15/services/kafka-sink.LATEST/functions/hello_world/invocations";
pub const FC3_PATH: &str = "/2023-03-30/functions/hello_world/invocations";
pub const SIGNATURE_NOT_MATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your access key and signing method";

/// A quiet emulator on a free port with the test key.
pub async fn start() -> Emulator {
    start_with(EmulatorConfig {
        quiet: true,
        ..EmulatorConfig::new(ID, SECRET)
    })
    .await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    fc_emulator::start(config, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("emulator starts")
}

/// The key and optional STS token a request is signed with.
#[derive(Clone)]
pub struct Signer {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Signer {
    pub fn test_key() -> Self {
        Self {
            id: ID.into(),
            secret: SECRET.into(),
            token: None,
        }
    }
}

pub type Headers = Vec<(String, String)>;

/// FC 2.0 headers for `path`, signed: Date, Content-Type, the given `x-fc-*` headers,
/// the token if any, and Authorization.
pub fn fc2_headers(
    signer: &Signer,
    path: &str,
    extra: &[(&str, &str)],
    date: SystemTime,
) -> Headers {
    let mut headers: Headers = vec![
        ("Date".into(), httpdate::fmt_http_date(date)),
        ("Content-Type".into(), "application/octet-stream".into()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if let Some(token) = &signer.token {
        headers.push(("x-fc-security-token".into(), token.clone()));
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let auth = fc2_authorization(&signer.id, &signer.secret, "POST", path, &pairs);
    headers.push(("Authorization".into(), auth));
    headers
}

/// `x-acs-date` for `at`.
pub fn acs_date(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("formats")
}

/// FC 3.0 headers for `POST {FC3_PATH}?{query}` with `body`, signed as the Go/Java SDKs
/// do (`host`, `content-type`, `x-acs-*`); `extra` headers are sent and, if `x-acs-*`,
/// signed.
pub fn fc3_headers(
    signer: &Signer,
    host: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    body: &[u8],
    date: SystemTime,
) -> Headers {
    let mut headers: Headers = vec![
        ("host".into(), host.into()),
        ("content-type".into(), "application/octet-stream".into()),
        ("x-acs-version".into(), "2023-03-30".into()),
        ("x-acs-action".into(), "InvokeFunction".into()),
        ("x-acs-date".into(), acs_date(date)),
        (
            "x-acs-signature-nonce".into(),
            fc_emulator::request_id::new_request_id(),
        ),
        ("x-acs-content-sha256".into(), sha256_hex(body)),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if let Some(token) = &signer.token {
        headers.push(("x-acs-accesskey-id".into(), signer.id.clone()));
        headers.push(("x-acs-security-token".into(), token.clone()));
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let payload = sha256_hex(body);
    let request = Acs3Request {
        method: "POST",
        path: FC3_PATH,
        query,
        headers: &pairs,
        payload_sha256: &payload,
    };
    let auth = acs3_authorization(&signer.id, &signer.secret, &request);
    headers.push(("Authorization".into(), auth));
    headers
}

/// `k=v&…` with RFC 3986 encoding.
pub fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends `POST {url}{path_and_query}` with exactly `headers` and `body`.
pub async fn post(url: &str, path_and_query: &str, headers: &Headers, body: Vec<u8>) -> Response {
    let mut request = Client::new()
        .post(format!("{url}{path_and_query}"))
        .body(body);
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    request.send().await.expect("request is sent")
}

/// Replaces (or adds) header `name` in `headers`.
pub fn set(headers: &mut Headers, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

/// Status and parsed JSON body.
pub async fn json(response: Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"));
    (status, value)
}

pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}
