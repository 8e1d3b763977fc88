//! Plain HTTP(S): POST the body to a URL with the configured headers.
//! Any 2xx is success; the retry rules are the same as for the functions.

use futures::future::BoxFuture;

use super::{Dialect, IDEMPOTENCY_KEY, Outgoing, Target, Verdict, header_map, http_client};
use crate::config::HttpSettings;

/// A generic endpoint has no function-error header and no error schema.
pub(crate) const HTTP: Dialect = Dialect {
    max_response_setting: "target.http.max_response_bytes",
    function_error: None,
    function_error_type: None,
    code_header: None,
    code_fields: &["code", "error"],
    message_fields: &["message", "error_description", "detail"],
};

/// Posts batches to one URL.
pub struct HttpTarget {
    url: reqwest::Url,
    http: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    max_response_bytes: usize,
}

impl HttpTarget {
    /// A target for `settings`; `Content-Type` is `application/json` unless configured.
    ///
    /// # Errors
    /// An HTTP client that cannot be built.
    pub fn new(settings: HttpSettings) -> anyhow::Result<Self> {
        let mut headers = settings.headers.clone();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), "application/json".into()));
        }
        super::warn_if_clear("http", &settings.url);
        Ok(HttpTarget {
            http: http_client(settings.timeout)?,
            max_response_bytes: settings.max_response_bytes,
            headers: header_map(&headers),
            url: settings.url,
        })
    }
}

impl Target for HttpTarget {
    /// Always synchronous: the endpoint's answer is the function's
    /// (`send_mode = "async"` is refused for HTTP targets). The request's ID
    /// goes in `Idempotency-Key`, over a configured one of that name.
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Verdict> {
        Box::pin(async move {
            let mut headers = self.headers.clone();
            if let Some(id) = &request.id
                && let Ok(value) = reqwest::header::HeaderValue::from_str(id.as_str())
            {
                headers.insert(IDEMPOTENCY_KEY, value);
            }
            request.forwarded.add_to(&mut headers);
            let result = self
                .http
                .post(self.url.clone())
                .headers(headers)
                .body(request.body)
                .send()
                .await;
            super::classify(result, &HTTP, self.max_response_bytes).await
        })
    }

    /// `http:<url without query>`: queries may carry tokens.
    fn describe(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        let _ = url.set_password(None);
        format!("http:{url}")
    }
}
