//! Alibaba Cloud credentials: from the environment, optionally exchanged for
//! a RAM role's temporary credentials through STS `AssumeRole` and refreshed
//! before they expire. Secrets never appear in `Debug` output or errors, and
//! what STS says back is scrubbed (it echoes its string to sign, which holds
//! the caller's security token). A refusal is remembered for
//! [`REFUSAL_MEMORY`]: one STS call per interval for the whole connector,
//! however many batches ask.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::reload::Reloading;
use crate::config::RoleSettings;

/// Environment variable holding the AccessKey ID.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// Environment variable holding the AccessKey secret.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// Environment variable holding an STS security token (optional).
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
/// Environment variable naming a credentials file (default `~/.alibabacloud/credentials.ini`).
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
/// Environment variable naming the profile in the credentials file (default `default`).
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
/// How long a refused AssumeRole is remembered before STS is asked again.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(30);
/// The longest STS answer read.
pub const MAX_STS_ANSWER: usize = 64 << 10;
/// Role credentials are refreshed this long before they expire at most …
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// When to refresh credentials that live `lifetime`: 15 minutes before they
/// expire, or at 80% of the lifetime when a short one would leave less.
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - REFRESH_MARGIN.min(lifetime / 5)
}

/// An AccessKey pair, with a security token for temporary credentials.
#[derive(Clone)]
pub struct Credentials {
    /// The AccessKey ID (not secret; it appears in `Authorization`).
    pub access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Credentials are missing or STS refused to issue them.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the environment nor a credentials file has credentials.
    #[error(
        "no Alibaba Cloud credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET}, \
         or put access_key_id and access_key_secret in the [{profile}] section of {file}"
    )]
    Missing {
        /// The profile looked for.
        profile: String,
        /// The credentials file looked in.
        file: String,
    },
    /// The credentials file exists but cannot be used.
    #[error("credentials file {file}: {problem}")]
    File {
        /// The file.
        file: String,
        /// What is wrong (never a secret).
        problem: String,
    },
    /// AssumeRole failed on the way (network, an unreadable answer).
    #[error("STS AssumeRole for {role} failed: {message}")]
    AssumeRole {
        /// The role ARN.
        role: String,
        /// What went wrong (never the credentials).
        message: String,
    },
    /// STS refused AssumeRole; remembered for [`REFUSAL_MEMORY`].
    #[error("STS refused AssumeRole for {role}: {message}")]
    Refused {
        /// The role ARN.
        role: String,
        /// What STS said, scrubbed.
        message: String,
    },
}

impl CredentialsError {
    /// Whether STS refused, as opposed to failing on the way.
    pub fn is_refusal(&self) -> bool {
        matches!(self, CredentialsError::Refused { .. })
    }
}

impl Credentials {
    /// Credentials from explicit values.
    pub fn new(
        access_key_id: String,
        access_key_secret: String,
        security_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id,
            access_key_secret,
            security_token: security_token.filter(|t| !t.is_empty()),
        }
    }

    /// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and,
    /// if set, `ALIBABA_CLOUD_SECURITY_TOKEN`; without them, the profile
    /// `ALIBABA_CLOUD_PROFILE` (default `default`) of the credentials file
    /// `ALIBABA_CLOUD_CREDENTIALS_FILE` (default `~/.alibabacloud/credentials.ini`),
    /// the file Alibaba's CLI and SDKs use.
    ///
    /// # Errors
    /// Says where credentials were looked for.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_env_or_file().map(|(credentials, _)| credentials)
    }

    /// [`Credentials::from_env`], and the file they came from (none when
    /// from the environment), so they can be read again when it changes.
    ///
    /// # Errors
    /// Says where credentials were looked for.
    pub fn from_env_or_file() -> Result<(Self, Option<std::path::PathBuf>), CredentialsError> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        if let (Some(id), Some(secret)) = (var(ENV_ACCESS_KEY_ID), var(ENV_ACCESS_KEY_SECRET)) {
            return Ok((Credentials::new(id, secret, var(ENV_SECURITY_TOKEN)), None));
        }
        let file = var(ENV_CREDENTIALS_FILE)
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| std::path::Path::new(&home).join(".alibabacloud/credentials.ini"))
            });
        let profile = var(ENV_PROFILE).unwrap_or_else(|| "default".to_string());
        let missing = |file: &str| CredentialsError::Missing {
            profile: profile.clone(),
            file: file.to_string(),
        };
        let Some(file) = file else {
            return Err(missing("~/.alibabacloud/credentials.ini"));
        };
        let shown = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => match from_ini(&text, &profile) {
                Ok(credentials) => Ok((credentials, Some(file))),
                Err(None) => Err(missing(&shown)),
                Err(Some(problem)) => Err(CredentialsError::File {
                    file: shown.clone(),
                    problem,
                }),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(missing(&shown)),
            Err(err) => Err(CredentialsError::File {
                file: shown,
                problem: err.to_string(),
            }),
        }
    }

    /// The AccessKey secret.
    pub fn secret(&self) -> &str {
        &self.access_key_secret
    }

    /// The STS security token, for temporary credentials.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }
}

/// Credentials from the `[profile]` section of an INI credentials file
/// (`access_key_id`, `access_key_secret`, optional `security_token`).
/// `Err(None)` when the profile has none.
fn from_ini(text: &str, profile: &str) -> Result<Credentials, Option<String>> {
    let mut pairs = super::ini::section(text, profile)?.ok_or(None)?;
    let token = pairs
        .remove("security_token")
        .or_else(|| pairs.remove("sts_token"));
    match (
        pairs.remove("access_key_id"),
        pairs.remove("access_key_secret"),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials::new(id, secret, token)),
        (None, None) => Err(None),
        _ => Err(Some(format!(
            "[{profile}] needs both access_key_id and access_key_secret"
        ))),
    }
}

/// Where each request's credentials come from.
pub enum CredentialProvider {
    /// Credentials from the environment or a file, read again when the file
    /// changes or FC refuses them.
    Static(Reloading<Credentials>),
    /// A RAM role's temporary credentials, refreshed before they expire.
    Role(Box<RoleProvider>),
}

impl CredentialProvider {
    /// Credentials for the next request.
    ///
    /// # Errors
    /// When STS cannot issue role credentials.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        match self {
            CredentialProvider::Static(credentials) => Ok(credentials.get()),
            CredentialProvider::Role(role) => role.get().await,
        }
    }

    /// Forgets cached temporary credentials and reads the base ones again
    /// (after the service refused them).
    pub async fn invalidate(&self) {
        match self {
            CredentialProvider::Static(credentials) => credentials.reload(),
            CredentialProvider::Role(role) => {
                *role.cached.lock().await = None;
                role.base.reload();
            }
        }
    }

    /// Whether `invalidate` can change anything.
    pub fn refreshable(&self) -> bool {
        matches!(self, CredentialProvider::Role(_))
    }
}

/// Assumes a RAM role through STS.
pub struct RoleProvider {
    base: Reloading<Credentials>,
    role: RoleSettings,
    http: reqwest::Client,
    cached: Mutex<Option<(Credentials, Instant)>>,
    /// The last refusal, and until when it stands.
    refused: Mutex<Option<(CredentialsError, Instant)>>,
    /// How long a refusal stands ([`REFUSAL_MEMORY`]; shorter in tests).
    refusal_memory: Duration,
}

impl RoleProvider {
    /// A provider that signs `AssumeRole` with `base`.
    pub fn new(base: Reloading<Credentials>, role: RoleSettings, http: reqwest::Client) -> Self {
        RoleProvider {
            base,
            role,
            http,
            cached: Mutex::new(None),
            refused: Mutex::new(None),
            refusal_memory: REFUSAL_MEMORY,
        }
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some((credentials, refresh_at)) = &*cached
            && Instant::now() < *refresh_at
        {
            return Ok(credentials.clone());
        }
        // Holding `cached` while asking: concurrent batches wait for one call.
        let mut refused = self.refused.lock().await;
        if let Some((CredentialsError::Refused { role, message }, until)) = &*refused
            && Instant::now() < *until
        {
            return Err(CredentialsError::Refused {
                role: role.clone(),
                message: format!(
                    "{message} (remembered; STS is asked again within {}s)",
                    self.refusal_memory.as_secs()
                ),
            });
        }
        let (credentials, lifetime) = match self.assume_role().await {
            Ok(issued) => {
                *refused = None;
                issued
            }
            Err(err) => {
                if let CredentialsError::Refused { role, message } = &err {
                    tracing::error!(role = %role, error = %message, retry_in_s = self.refusal_memory.as_secs(), "STS refused AssumeRole");
                    *refused = Some((
                        CredentialsError::Refused {
                            role: role.clone(),
                            message: message.clone(),
                        },
                        Instant::now() + self.refusal_memory,
                    ));
                }
                return Err(err);
            }
        };
        let refresh_at = Instant::now() + refresh_after(lifetime);
        tracing::info!(role = %self.role.arn, expires_in_s = lifetime.as_secs(), "Assumed RAM role");
        *cached = Some((credentials.clone(), refresh_at));
        Ok(credentials)
    }

    async fn assume_role(&self) -> Result<(Credentials, Duration), CredentialsError> {
        let fail = |message: String| CredentialsError::AssumeRole {
            role: self.role.arn.clone(),
            message: super::scrub::scrub(&message),
        };
        let refuse = |message: String| CredentialsError::Refused {
            role: self.role.arn.clone(),
            message: super::scrub::scrub(&message),
        };
        let timestamp = OffsetDateTime::now_utc()
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .map_err(|e| fail(e.to_string()))?;
        let nonce = format!("{:032x}", rand::random::<u128>());
        let base = self.base.get();
        let duration = self.role.duration.as_secs().to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("AccessKeyId", &base.access_key_id),
            ("Action", "AssumeRole"),
            ("DurationSeconds", &duration),
            ("Format", "JSON"),
            ("RoleArn", &self.role.arn),
            ("RoleSessionName", &self.role.session_name),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", &nonce),
            ("SignatureVersion", "1.0"),
            ("Timestamp", &timestamp),
            ("Version", "2015-04-01"),
        ];
        if let Some(token) = base.security_token() {
            params.push(("SecurityToken", token));
        }
        let signature = fcsink_sign::rpc_signature(base.secret(), "GET", &params);
        params.push(("Signature", &signature));
        let query = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    fcsink_sign::percent_encode(k),
                    fcsink_sign::percent_encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut url = self.role.sts_endpoint.clone();
        url.set_query(Some(&query));

        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(refuse(format!(
                "HTTP {status} redirecting to {location:?}; fcsink does not follow redirects (set target.fc.sts_endpoint to the final URL)"
            )));
        }
        let body = match super::capped::read_capped(response, MAX_STS_ANSWER).await {
            Ok(body) => body,
            Err(super::capped::ReadError::TooLarge) => {
                return Err(fail(format!(
                    "HTTP {status} with an answer larger than {MAX_STS_ANSWER} bytes"
                )));
            }
            Err(super::capped::ReadError::Network(e)) => {
                return Err(fail(e.without_url().to_string()));
            }
        };
        sts_answer(&self.role.arn, status, &body)
    }
}

/// What STS's answer to `AssumeRole` for `role` says: temporary credentials
/// and how long they last, or why not (4xx: a refusal). Every message is
/// scrubbed. The body is untrusted (`fuzz/` target `sts`).
pub(crate) fn sts_answer(
    role: &str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<(Credentials, Duration), CredentialsError> {
    let fail = |message: String| CredentialsError::AssumeRole {
        role: role.to_string(),
        message: super::scrub::scrub(&message),
    };
    let refuse = |message: String| CredentialsError::Refused {
        role: role.to_string(),
        message: super::scrub::scrub(&message),
    };
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(_) if status.is_client_error() => {
            return Err(refuse(format!(
                "HTTP {status} with a body that is not JSON"
            )));
        }
        Err(_) => return Err(fail(format!("HTTP {status} with a body that is not JSON"))),
    };
    if !status.is_success() {
        let code = json
            .get("Code")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let message = json.get("Message").and_then(|v| v.as_str()).unwrap_or("");
        let message = format!("HTTP {status} {code}: {message}");
        // 4xx: STS said no; 5xx: it failed, try again soon.
        return Err(if status.is_client_error() {
            refuse(message)
        } else {
            fail(message)
        });
    }
    let field = |name: &str| {
        json.pointer(&format!("/Credentials/{name}"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| fail(format!("response has no Credentials.{name}")))
    };
    let expiration = OffsetDateTime::parse(&field("Expiration")?, &Iso8601::DEFAULT)
        .map_err(|e| fail(format!("unreadable Credentials.Expiration: {e}")))?;
    let lifetime = (expiration - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let credentials = Credentials::new(
        field("AccessKeyId")?,
        field("AccessKeySecret")?,
        Some(field("SecurityToken")?),
    );
    Ok((credentials, lifetime.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_profiles_are_read() {
        let text = "[default]\ntype = access_key\naccess_key_id = AKID1\naccess_key_secret = s1\n\n[prod]\naccess_key_id = AKID2\naccess_key_secret = s2\nsecurity_token = t2\n";
        let default = from_ini(text, "default").unwrap();
        assert_eq!(
            (
                default.access_key_id.as_str(),
                default.secret(),
                default.security_token()
            ),
            ("AKID1", "s1", None)
        );
        let prod = from_ini(text, "prod").unwrap();
        assert_eq!(
            (
                prod.access_key_id.as_str(),
                prod.secret(),
                prod.security_token()
            ),
            ("AKID2", "s2", Some("t2"))
        );
        assert!(matches!(from_ini(text, "other"), Err(None)));
        let half = from_ini("[default]\naccess_key_id = x\n", "default")
            .err()
            .unwrap()
            .unwrap();
        assert!(half.contains("access_key_secret"), "{half}");
    }

    /// A local STS that refuses every call, echoing the caller's token in
    /// its string to sign as Alibaba's does; counts the calls.
    fn refusing_sts() -> (reqwest::Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = [0u8; 8192];
                let n = stream.read(&mut request).unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).into_owned();
                let query = request.split(' ').nth(1).unwrap_or("").replace('&', "%26");
                let body = format!(
                    r#"{{"RequestId":"R1","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:GET&%2F&{query}"}}"#
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, calls)
    }

    #[tokio::test]
    async fn a_refusal_is_remembered_and_scrubbed() {
        let (sts, calls) = refusing_sts();
        let token = "CAIS8QF1q6Ft5B2yfSjIr5bNLNn9v7lE1YKPRWgL2ykkAt1dGUSlZDWHT87b2TOKEN";
        let mut provider = RoleProvider::new(
            Reloading::fixed(Credentials::new(
                "STS.base".into(),
                "base-secret-0000000".into(),
                Some(token.into()),
            )),
            RoleSettings {
                arn: "acs:ram::1:role/r".into(),
                session_name: "fcsink-test".into(),
                sts_endpoint: sts,
                duration: Duration::from_secs(900),
            },
            super::super::http_client(Duration::from_secs(5)).unwrap(),
        );
        provider.refusal_memory = Duration::from_millis(300);
        for _ in 0..5 {
            let err = provider.get().await.unwrap_err();
            assert!(err.is_refusal(), "{err}");
            let text = err.to_string();
            assert!(text.contains("SignatureDoesNotMatch"), "{text}");
            assert!(!text.contains("CAIS8QF1q6Ft5B2yfSjIr5"), "{text}");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(provider.get().await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn refresh_is_15_minutes_before_expiry_or_at_80_percent_of_a_short_lifetime() {
        let s = Duration::from_secs;
        assert_eq!(refresh_after(s(43_200)), s(43_200 - 900));
        assert_eq!(refresh_after(s(4500)), s(3600));
        assert_eq!(refresh_after(s(3600)), s(2880));
        assert_eq!(refresh_after(s(900)), s(720));
        assert_eq!(refresh_after(s(0)), s(0));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Credentials::new(
            "AKID".into(),
            "very-secret".into(),
            Some("token-value".into()),
        );
        let text = format!("{c:?}");
        assert!(text.contains("AKID"));
        assert!(
            !text.contains("very-secret") && !text.contains("token-value"),
            "{text}"
        );
    }
}
