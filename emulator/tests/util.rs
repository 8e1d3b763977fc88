//! The harness: an emulator on a free port, and requests signed the way clients sign.

use std::time::{Duration, SystemTime};

use fc_emulator::{AwsKey, Emulator, EmulatorConfig};
use fcsink_sign::{
    Acs3Request, AwsCredentials, SigV4Request, acs3_authorization, fc2_authorization,
    lambda_invoke_path, percent_encode, sha256_hex, sigv4_amz_date, sigv4_sign,
};
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

pub const AWS_ID: &str = "AKIDTESTKEY000000001";
pub const AWS_SECRET: &str = "aws-test-secret/0001+x";

/// A quiet emulator on a free port with the test FC key and the test AWS key.
pub async fn start() -> Emulator {
    start_with(quiet_config()).await
}

/// The configuration [`start`] uses, to adjust.
pub fn quiet_config() -> EmulatorConfig {
    EmulatorConfig {
        quiet: true,
        ..EmulatorConfig::new(ID, SECRET).with_aws_key(AwsKey::new(AWS_ID, AWS_SECRET))
    }
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

/// An AWS key and optional session token a Lambda request is signed with.
#[derive(Clone)]
pub struct AwsSigner {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl AwsSigner {
    pub fn test_key() -> Self {
        Self {
            id: AWS_ID.into(),
            secret: AWS_SECRET.into(),
            token: None,
        }
    }
}

/// A Lambda Invoke as a client sends it: the wire path and query, and its headers.
pub struct LambdaCall {
    pub path_and_query: String,
    pub headers: Headers,
}

/// Signs `POST` Invoke of `function` with `?Qualifier=` when given, the `extra`
/// headers (signed) and `body`, at `date`, for the emulator at `host`.
pub fn lambda_call(
    signer: &AwsSigner,
    host: &str,
    function: &str,
    qualifier: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
    date: SystemTime,
) -> LambdaCall {
    let path = lambda_invoke_path(function);
    let query: Vec<(&str, &str)> = qualifier.map(|q| ("Qualifier", q)).into_iter().collect();
    let credentials = AwsCredentials {
        access_key_id: &signer.id,
        secret_access_key: &signer.secret,
        session_token: signer.token.as_deref(),
    };
    let payload = sha256_hex(body);
    let request = SigV4Request {
        method: "POST",
        path: &path,
        query: &query,
        host,
        headers: extra,
        payload_sha256: &payload,
    };
    let unix = date
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let signed = sigv4_sign(
        &credentials,
        "us-east-1",
        "lambda",
        &request,
        &sigv4_amz_date(unix),
    );
    let mut headers: Headers = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    headers.extend(
        signed
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let path_and_query = match qualifier {
        Some(_) => format!("{path}?{}", query_string(&query)),
        None => path,
    };
    LambdaCall {
        path_and_query,
        headers,
    }
}

/// Sends a signed Lambda call with `body`.
pub async fn send_call(emulator: &Emulator, call: LambdaCall, body: Vec<u8>) -> Response {
    post(&emulator.url(), &call.path_and_query, &call.headers, body).await
}

/// Signs and sends a Lambda Invoke with the test key, now.
pub async fn invoke_lambda(
    emulator: &Emulator,
    function: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let host = emulator.addr().to_string();
    let call = lambda_call(
        &AwsSigner::test_key(),
        &host,
        function,
        None,
        extra,
        body,
        SystemTime::now(),
    );
    post(
        &emulator.url(),
        &call.path_and_query,
        &call.headers,
        body.to_vec(),
    )
    .await
}

/// The `x-amzn-ErrorType` of a response.
pub fn error_type(response: &Response) -> String {
    response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
