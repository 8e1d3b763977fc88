//! Alibaba Cloud Function Compute `InvokeFunction`, FC 2.0 (`2016-08-15`,
//! "FC" signature) and FC 3.0 (`2023-03-30`, ACS3-HMAC-SHA256), signed as the
//! official SDKs sign them.

use futures::future::BoxFuture;
use time::OffsetDateTime;

use super::credentials::{CredentialProvider, Credentials, RoleProvider};
use super::reload::Reloading;
use super::{Dialect, Failure, Outgoing, Response, Target, Verdict, header_map, http_client};
use crate::config::{FcApi, FcSettings, SendMode};

/// Sends batches to one function.
pub struct FcTarget {
    settings: FcSettings,
    http: reqwest::Client,
    credentials: CredentialProvider,
    path: String,
}

impl FcTarget {
    /// A target with credentials from the environment (and STS when a role is set).
    ///
    /// # Errors
    /// Missing credentials, or an HTTP client that cannot be built.
    pub fn new(settings: FcSettings) -> anyhow::Result<Self> {
        let base = Reloading::new(Box::new(|| {
            Credentials::from_env_or_file().map_err(|e| e.to_string())
        }))
        .map_err(anyhow::Error::msg)?;
        Self::with_reloading(settings, base)
    }

    /// A target with explicit credentials.
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn with_credentials(settings: FcSettings, base: Credentials) -> anyhow::Result<Self> {
        Self::with_reloading(settings, Reloading::fixed(base))
    }

    fn with_reloading(settings: FcSettings, base: Reloading<Credentials>) -> anyhow::Result<Self> {
        super::warn_if_clear("fc", &settings.endpoint);
        if let Some(role) = &settings.role {
            super::warn_if_clear("sts", &role.sts_endpoint);
        }
        let http = http_client(settings.timeout)?;
        let credentials = match &settings.role {
            Some(role) => CredentialProvider::Role(Box::new(RoleProvider::new(
                base,
                role.clone(),
                http.clone(),
            ))),
            None => CredentialProvider::Static(base),
        };
        let path = match &settings.api {
            FcApi::V2 { service } => format!(
                "/2016-08-15/services/{service}.{}/functions/{}/invocations",
                settings.qualifier, settings.function
            ),
            FcApi::V3 => format!("/2023-03-30/functions/{}/invocations", settings.function),
        };
        Ok(FcTarget {
            settings,
            http,
            credentials,
            path,
        })
    }

    /// `fc:<service>/<function>:<qualifier>` or `fc3:<function>:<qualifier>`.
    fn name(&self) -> String {
        match &self.settings.api {
            FcApi::V2 { service } => format!(
                "fc:{service}/{}:{}",
                self.settings.function, self.settings.qualifier
            ),
            FcApi::V3 => format!("fc3:{}:{}", self.settings.function, self.settings.qualifier),
        }
    }

    /// The task ID `request` carries, if any: only asynchronous requests,
    /// and only with `delivery.idempotency = "fc_task_id"`.
    fn task_id<'a>(&self, request: &'a Outgoing) -> Option<&'a str> {
        match (&request.id, request.mode) {
            (Some(id), SendMode::Async) if self.settings.task_ids => Some(id.as_str()),
            _ => None,
        }
    }

    /// Invokes the function with `request` and classifies the answer.
    async fn invoke(&self, request: Outgoing) -> Verdict {
        let task_id = self.task_id(&request);
        let Outgoing { body, mode, .. } = &request;
        let (body, mode) = (body.clone(), *mode);
        let credentials = match self.credentials.get().await {
            Ok(credentials) => credentials,
            Err(err) => {
                let failure = Failure {
                    code: "credentials".into(),
                    message: super::scrub::scrub(&err.to_string()),
                    status: None,
                };
                // STS said no: no record is at fault, and asking again at
                // once would not change its mind.
                return if err.is_refusal() {
                    Verdict::TargetFailure(failure)
                } else {
                    Verdict::Retry {
                        failure,
                        after: None,
                    }
                };
            }
        };
        let headers = match &self.settings.api {
            FcApi::V2 { .. } => self.fc2_headers(&credentials, now_http_date(), mode, task_id),
            FcApi::V3 => {
                self.fc3_headers(&credentials, &body, now_iso8601(), &nonce(), mode, task_id)
            }
        };
        let mut url = self.settings.endpoint.clone();
        url.set_path(&self.path);
        if self.settings.api == FcApi::V3 {
            url.set_query(Some(&format!(
                "qualifier={}",
                fcsink_sign::percent_encode(&self.settings.qualifier)
            )));
        }
        let mut headers = header_map(&headers);
        request.forwarded.add_to(&mut headers);
        let result = self.http.post(url).headers(headers).body(body).send().await;
        let verdict = classify(result, self.settings.max_response_bytes).await;
        let verdict = match task_id {
            Some(_) => duplicate_refused(verdict),
            None => verdict,
        };
        if let Verdict::TargetFailure(failure) = &verdict
            && (failure.status == Some(403) || failure.code.starts_with("InvalidSecurityToken"))
        {
            // Temporary credentials may have been revoked or expired early:
            // fetch or read new ones before the retry loop tries again.
            self.credentials.invalidate().await;
        }
        verdict
    }

    /// FC 2.0 headers, `Authorization` last. Every `x-fc-*` header is
    /// signed, the task ID too, as the Go and Java SDKs sign it.
    fn fc2_headers(
        &self,
        credentials: &Credentials,
        date: String,
        mode: SendMode,
        task_id: Option<&str>,
    ) -> Vec<(String, String)> {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("date".to_string(), date),
        ];
        if mode == SendMode::Async {
            headers.push(("x-fc-invocation-type".into(), "Async".into()));
        }
        if let Some(id) = task_id {
            headers.push((FC2_TASK_ID.into(), id.to_string()));
        }
        if let Some(account) = &self.settings.account_id {
            headers.push(("x-fc-account-id".into(), account.clone()));
        }
        if let Some(token) = credentials.security_token() {
            headers.push(("x-fc-security-token".into(), token.to_string()));
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let authorization = fcsink_sign::fc2_authorization(
            &credentials.access_key_id,
            credentials.secret(),
            "POST",
            &self.path,
            &pairs,
        );
        headers.push(("authorization".into(), authorization));
        headers
    }

    /// FC 3.0 headers, signed like the Go and Java SDKs (host, content-type,
    /// x-acs-*): `x-fc-invocation-type` and the task ID go unsigned, as
    /// they do from those SDKs.
    fn fc3_headers(
        &self,
        credentials: &Credentials,
        body: &[u8],
        date: String,
        nonce: &str,
        mode: SendMode,
        task_id: Option<&str>,
    ) -> Vec<(String, String)> {
        let host = match self.settings.endpoint.port() {
            Some(port) => format!(
                "{}:{port}",
                self.settings.endpoint.host_str().unwrap_or_default()
            ),
            None => self
                .settings
                .endpoint
                .host_str()
                .unwrap_or_default()
                .to_string(),
        };
        let payload_sha256 = fcsink_sign::sha256_hex(body);
        let mut headers = vec![
            ("host".to_string(), host),
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
            ("x-acs-action".to_string(), "InvokeFunction".to_string()),
            ("x-acs-content-sha256".to_string(), payload_sha256.clone()),
            ("x-acs-date".to_string(), date),
            ("x-acs-signature-nonce".to_string(), nonce.to_string()),
            ("x-acs-version".to_string(), "2023-03-30".to_string()),
        ];
        headers.push((
            "x-fc-invocation-type".into(),
            match mode {
                SendMode::Async => "Async".into(),
                SendMode::Sync => "Sync".into(),
            },
        ));
        if let Some(id) = task_id {
            headers.push((FC3_TASK_ID.into(), id.to_string()));
        }
        if let Some(token) = credentials.security_token() {
            headers.push((
                "x-acs-accesskey-id".into(),
                credentials.access_key_id.clone(),
            ));
            headers.push(("x-acs-security-token".into(), token.to_string()));
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let query = [("qualifier", self.settings.qualifier.as_str())];
        let request = fcsink_sign::Acs3Request {
            method: "POST",
            path: &self.path,
            query: &query,
            headers: &pairs,
            payload_sha256: &payload_sha256,
        };
        let authorization = fcsink_sign::acs3_authorization(
            &credentials.access_key_id,
            credentials.secret(),
            &request,
        );
        headers.push(("authorization".into(), authorization));
        headers
    }
}

impl Target for FcTarget {
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        Box::pin(self.invoke(request))
    }

    fn describe(&self) -> String {
        self.name()
    }
}

/// FC 2.0's task-ID header (FC "Task deduplication"; the Go SDK's
/// `WithStatefulAsyncInvocationID`).
pub const FC2_TASK_ID: &str = "x-fc-stateful-async-invocation-id";

/// FC 3.0's task-ID header (`InvokeFunctionHeaders.x_fc_async_task_id`).
pub const FC3_TASK_ID: &str = "x-fc-async-task-id";

/// An answer to a request that carried a task ID: FC refuses a task ID it
/// already took with 409, and that request's records were delivered by the
/// first. FC 2.0 names the error `StatefulAsyncInvocationAlreadyExists`;
/// FC 3.0's code is not documented, so any `…AlreadyExists` code (FC's
/// naming for its 409s) or a 409 without a code counts. Other 409s keep
/// their classification.
fn duplicate_refused(verdict: Verdict) -> Verdict {
    match &verdict {
        Verdict::Reject(failure) | Verdict::TargetFailure(failure)
            if failure.status == Some(409) && is_duplicate_code(&failure.code) =>
        {
            tracing::info!(code = %failure.code, "FC refused a task it already took; its records are delivered");
            Verdict::Delivered(Response {
                status: 409,
                body: Vec::new(),
                duplicate: true,
            })
        }
        _ => verdict,
    }
}

/// The error codes of FC's duplicate-task answer (see [`duplicate_refused`]).
fn is_duplicate_code(code: &str) -> bool {
    code.ends_with("AlreadyExists") || code == "http-409"
}

fn now_http_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

#[expect(
    clippy::expect_used,
    reason = "a fixed format of a valid UTC date cannot fail"
)]
fn now_iso8601() -> String {
    OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("a UTC date always formats")
}

fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// How FC reports errors: `X-Fc-Error-Type` on a 200 for a function
/// error, `ErrorCode`/`ErrorMessage` in the body otherwise.
pub(crate) const FC: Dialect = Dialect {
    max_response_setting: "target.fc.max_response_bytes",
    function_error: Some("x-fc-error-type"),
    function_error_type: None,
    code_header: None,
    code_fields: &["ErrorCode", "errorCode", "Code", "code"],
    message_fields: &["ErrorMessage", "errorMessage", "Message", "message"],
};

/// What an answer from FC means (see [`super::classify`]), reading at
/// most `max_response` bytes of it.
pub async fn classify(
    result: Result<reqwest::Response, reqwest::Error>,
    max_response: usize,
) -> Verdict {
    super::classify(result, &FC, max_response).await
}

#[cfg(test)]
mod tests;
