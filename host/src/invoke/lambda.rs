//! AWS Lambda `Invoke` (`POST /2015-03-31/functions/{FunctionName}/invocations`),
//! signed with SigV4 for service `lambda` exactly as botocore signs it.
//!
//! Sync mode is `RequestResponse` (HTTP 200 with the function's result),
//! async is `Event` (HTTP 202). A 200 with `X-Amz-Function-Error` is a
//! function failure; errors carry their code in `x-amzn-ErrorType`.

use futures::future::BoxFuture;

use super::aws_credentials::AwsCredentials;
use super::reload::Reloading;
use super::{Dialect, IDEMPOTENCY_KEY, Outgoing, Target, Verdict, header_map, http_client};
use crate::config::{LambdaSettings, SendMode};

/// How Lambda reports errors.
pub(crate) const LAMBDA: Dialect = Dialect {
    max_response_setting: "target.lambda.max_response_bytes",
    function_error: Some("x-amz-function-error"),
    function_error_type: Some("errorType"),
    code_header: Some("x-amzn-errortype"),
    code_fields: &["Type", "__type", "code"],
    message_fields: &["message", "Message", "errorMessage"],
};

/// Sends batches to one function.
pub struct LambdaTarget {
    settings: LambdaSettings,
    http: reqwest::Client,
    credentials: Reloading<AwsCredentials>,
    path: String,
}

impl LambdaTarget {
    /// A target with credentials from the environment or the shared AWS files.
    ///
    /// # Errors
    /// Missing credentials, or an HTTP client that cannot be built.
    pub fn new(settings: LambdaSettings) -> anyhow::Result<Self> {
        let profile = settings.profile.clone();
        let credentials = Reloading::new(Box::new(move || {
            AwsCredentials::load_with_source(profile.as_deref()).map_err(|e| e.to_string())
        }))
        .map_err(anyhow::Error::msg)?;
        Self::with_reloading(settings, credentials)
    }

    /// A target with explicit credentials.
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn with_credentials(
        settings: LambdaSettings,
        credentials: AwsCredentials,
    ) -> anyhow::Result<Self> {
        Self::with_reloading(settings, Reloading::fixed(credentials))
    }

    fn with_reloading(
        settings: LambdaSettings,
        credentials: Reloading<AwsCredentials>,
    ) -> anyhow::Result<Self> {
        super::warn_if_clear("lambda", &settings.endpoint);
        Ok(LambdaTarget {
            http: http_client(settings.timeout)?,
            path: fcsink_sign::lambda_invoke_path(&settings.function),
            settings,
            credentials,
        })
    }

    /// The request's headers, signed at `amz_date`. `Idempotency-Key` is
    /// signed like every header botocore sends (only its blacklist is not).
    fn headers(
        &self,
        credentials: &AwsCredentials,
        body: &[u8],
        amz_date: &str,
        mode: SendMode,
        id: Option<&str>,
    ) -> Vec<(String, String)> {
        let invocation_type = match mode {
            SendMode::Sync => "RequestResponse",
            SendMode::Async => "Event",
        };
        let mut unsigned = vec![("X-Amz-Invocation-Type", invocation_type)];
        if let Some(id) = id {
            unsigned.push((IDEMPOTENCY_KEY, id));
        }
        let query: Vec<(&str, &str)> = self
            .settings
            .qualifier
            .iter()
            .map(|q| ("Qualifier", q.as_str()))
            .collect();
        let host = host_header(&self.settings.endpoint);
        let payload_sha256 = fcsink_sign::sha256_hex(body);
        let request = fcsink_sign::SigV4Request {
            method: "POST",
            path: &self.path,
            query: &query,
            host: &host,
            headers: &unsigned,
            payload_sha256: &payload_sha256,
        };
        let credentials = fcsink_sign::AwsCredentials {
            access_key_id: &credentials.access_key_id,
            secret_access_key: credentials.secret(),
            session_token: credentials.session_token(),
        };
        let signed = fcsink_sign::sigv4_sign(
            &credentials,
            &self.settings.region,
            "lambda",
            &request,
            amz_date,
        );
        unsigned
            .iter()
            .copied()
            .chain(signed.pairs())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn invoke(&self, request: Outgoing) -> Verdict {
        let Outgoing {
            body,
            mode,
            id,
            forwarded,
        } = request;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let credentials = self.credentials.get();
        let amz_date = fcsink_sign::sigv4_amz_date(now);
        let id = id.as_ref().map(|id| id.as_str());
        let headers = self.headers(&credentials, &body, &amz_date, mode, id);
        let mut url = self.settings.endpoint.clone();
        url.set_path(&self.path);
        if let Some(qualifier) = &self.settings.qualifier {
            url.query_pairs_mut().append_pair("Qualifier", qualifier);
        }
        let mut headers = header_map(&headers);
        forwarded.add_to(&mut headers);
        let result = self.http.post(url).headers(headers).body(body).send().await;
        let verdict = super::classify(result, &LAMBDA, self.settings.max_response_bytes).await;
        if let Verdict::TargetFailure(failure) = &verdict
            && (failure.status == Some(403) || failure.code.contains("Token"))
        {
            // Temporary keys expire or are rotated: read them again.
            self.credentials.reload();
        }
        verdict
    }
}

impl Target for LambdaTarget {
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        Box::pin(self.invoke(request))
    }

    /// `lambda:<function>[:<qualifier>]`.
    fn describe(&self) -> String {
        match &self.settings.qualifier {
            Some(qualifier) => format!("lambda:{}:{qualifier}", self.settings.function),
            None => format!("lambda:{}", self.settings.function),
        }
    }
}

/// `Host` as sent: the port only when it is not the scheme's default.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(function: &str, qualifier: Option<&str>, send_mode: SendMode) -> LambdaSettings {
        LambdaSettings {
            endpoint: reqwest::Url::parse("https://lambda.us-east-1.amazonaws.com").unwrap(),
            region: "us-east-1".into(),
            function: function.into(),
            qualifier: qualifier.map(str::to_string),
            send_mode,
            profile: None,
            timeout: Duration::from_secs(5),
            max_response_bytes: 1 << 20,
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    /// The same request through `fcsink_sign::sigv4_verify`, which the
    /// emulator uses: what the target sends verifies, a changed body does not.
    #[test]
    fn requests_carry_a_verifiable_signature_over_the_invocation_type() {
        let credentials =
            AwsCredentials::new("AKIDEXAMPLE".into(), "secret".into(), Some("token".into()));
        let target = LambdaTarget::with_credentials(
            settings(
                "arn:aws:lambda:us-east-1:123456789012:function:fn",
                Some("live"),
                SendMode::Async,
            ),
            credentials,
        )
        .unwrap();
        assert_eq!(
            target.path,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn/invocations"
        );
        let headers = target.headers(
            &target.credentials.get(),
            b"[]",
            "20261123T040000Z",
            SendMode::Async,
            None,
        );
        assert_eq!(header(&headers, "X-Amz-Invocation-Type"), "Event");
        assert_eq!(header(&headers, "X-Amz-Security-Token"), "token");
        let authorization = header(&headers, "Authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-security-token, Signature="
            ),
            "{authorization}"
        );
        assert_eq!(
            target.describe(),
            "lambda:arn:aws:lambda:us-east-1:123456789012:function:fn:live"
        );

        let parsed = fcsink_sign::SigV4Authorization::parse(authorization).unwrap();
        let sent: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, _)| k != "Authorization")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let verify = |body: &[u8]| {
            let sha = fcsink_sign::sha256_hex(body);
            let request = fcsink_sign::SigV4Request {
                method: "POST",
                path: &target.path,
                query: &[("Qualifier", "live")],
                host: "lambda.us-east-1.amazonaws.com",
                headers: &sent,
                payload_sha256: &sha,
            };
            fcsink_sign::sigv4_verify("secret", &parsed, &request, "20261123T040000Z")
        };
        assert!(verify(b"[]"));
        assert!(!verify(b"[1]"));
    }

    /// `Idempotency-Key` is signed as botocore signs any header it sends
    /// (everything but its blacklist), so the function sees a key nobody
    /// on the way changed.
    #[test]
    fn the_idempotency_key_is_signed_like_any_other_header() {
        let credentials = AwsCredentials::new("AKIDEXAMPLE".into(), "secret".into(), None);
        let target =
            LambdaTarget::with_credentials(settings("fn", None, SendMode::Sync), credentials)
                .unwrap();
        let headers = target.headers(
            &target.credentials.get(),
            b"[]",
            "20261123T040000Z",
            SendMode::Sync,
            Some("fcsink_a"),
        );
        assert_eq!(header(&headers, "Idempotency-Key"), "fcsink_a");
        let authorization = header(&headers, "Authorization");
        assert!(
            authorization.contains(
                "SignedHeaders=host;idempotency-key;x-amz-date;x-amz-invocation-type, Signature="
            ),
            "{authorization}"
        );
    }
}
