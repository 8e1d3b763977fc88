//! Alibaba Cloud credentials: from the environment, optionally exchanged for
//! a RAM role's temporary credentials through STS `AssumeRole` and refreshed
//! before they expire. Secrets never appear in `Debug` output or errors.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use tokio::sync::Mutex;
use tokio::time::Instant;

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
/// Lifetime asked of STS for role credentials.
pub const ROLE_SESSION_SECONDS: u64 = 3600;

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
    /// AssumeRole failed.
    #[error("STS AssumeRole for {role} failed: {message}")]
    AssumeRole {
        /// The role ARN.
        role: String,
        /// What STS said (never the credentials).
        message: String,
    },
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
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        if let (Some(id), Some(secret)) = (var(ENV_ACCESS_KEY_ID), var(ENV_ACCESS_KEY_SECRET)) {
            return Ok(Credentials::new(id, secret, var(ENV_SECURITY_TOKEN)));
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
            Ok(text) => from_ini(&text, &profile).map_err(|problem| match problem {
                None => missing(&shown),
                Some(problem) => CredentialsError::File {
                    file: shown.clone(),
                    problem,
                },
            }),
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
    /// The same credentials for every request.
    Static(Credentials),
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
            CredentialProvider::Static(credentials) => Ok(credentials.clone()),
            CredentialProvider::Role(role) => role.get().await,
        }
    }

    /// Forgets cached temporary credentials (after the service refused them).
    pub async fn invalidate(&self) {
        if let CredentialProvider::Role(role) = self {
            *role.cached.lock().await = None;
        }
    }

    /// Whether `invalidate` can change anything.
    pub fn refreshable(&self) -> bool {
        matches!(self, CredentialProvider::Role(_))
    }
}

/// Assumes a RAM role through STS.
pub struct RoleProvider {
    base: Credentials,
    role: RoleSettings,
    http: reqwest::Client,
    cached: Mutex<Option<(Credentials, Instant)>>,
}

impl RoleProvider {
    /// A provider that signs `AssumeRole` with `base`.
    pub fn new(base: Credentials, role: RoleSettings, http: reqwest::Client) -> Self {
        RoleProvider {
            base,
            role,
            http,
            cached: Mutex::new(None),
        }
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some((credentials, refresh_at)) = &*cached
            && Instant::now() < *refresh_at
        {
            return Ok(credentials.clone());
        }
        let (credentials, lifetime) = self.assume_role().await?;
        // Refresh at 80% of the lifetime, as Alibaba's own SDK does.
        let refresh_at = Instant::now() + lifetime.mul_f64(0.8);
        tracing::info!(role = %self.role.arn, expires_in_s = lifetime.as_secs(), "Assumed RAM role");
        *cached = Some((credentials.clone(), refresh_at));
        Ok(credentials)
    }

    async fn assume_role(&self) -> Result<(Credentials, Duration), CredentialsError> {
        let fail = |message: String| CredentialsError::AssumeRole {
            role: self.role.arn.clone(),
            message,
        };
        let timestamp = OffsetDateTime::now_utc()
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .map_err(|e| fail(e.to_string()))?;
        let nonce = format!("{:032x}", rand::random::<u128>());
        let duration = ROLE_SESSION_SECONDS.to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("AccessKeyId", &self.base.access_key_id),
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
        if let Some(token) = self.base.security_token() {
            params.push(("SecurityToken", token));
        }
        let signature = fcsink_sign::rpc_signature(self.base.secret(), "GET", &params);
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
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| fail(format!("HTTP {status} with a body that is not JSON")))?;
        if !status.is_success() {
            let code = json
                .get("Code")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown");
            let message = json.get("Message").and_then(|v| v.as_str()).unwrap_or("");
            return Err(fail(format!("HTTP {status} {code}: {message}")));
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
