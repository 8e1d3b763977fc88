//! AWS credentials, found where the AWS CLI and SDKs look: the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else
//! a profile of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//! default `~/.aws/credentials`) or of the config file (`AWS_CONFIG_FILE`,
//! default `~/.aws/config`, sections `[profile NAME]`). The profile is the
//! target's `profile`, else `AWS_PROFILE`, else `default`; a profile named in
//! the fcsink config wins over keys in the environment. Secrets never appear
//! in `Debug` output or errors.

use std::path::PathBuf;

/// An access key, with a session token for temporary credentials.
#[derive(Clone)]
pub struct AwsCredentials {
    /// The access key ID (not secret; it appears in `Authorization`).
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// No usable credentials.
#[derive(Debug, thiserror::Error)]
pub enum AwsCredentialsError {
    /// Nothing in the environment or the files.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put \
         aws_access_key_id and aws_secret_access_key in profile {profile:?} of {files}"
    )]
    Missing {
        /// The profile looked for.
        profile: String,
        /// The files looked in.
        files: String,
    },
    /// A file exists but cannot be used.
    #[error("AWS credentials file {file}: {problem}")]
    File {
        /// The file.
        file: String,
        /// What is wrong (never a secret).
        problem: String,
    },
}

impl AwsCredentials {
    /// Credentials given explicitly.
    pub fn new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    ) -> Self {
        AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token,
        }
    }

    /// Looks in the environment and the shared files (see the module docs).
    ///
    /// # Errors
    /// Says where credentials were looked for.
    pub fn load(profile: Option<&str>) -> Result<Self, AwsCredentialsError> {
        Self::load_with_source(profile).map(|(credentials, _)| credentials)
    }

    /// [`AwsCredentials::load`], and the file they came from (none when from
    /// the environment), so they can be read again when it changes.
    ///
    /// # Errors
    /// Says where credentials were looked for.
    pub fn load_with_source(
        profile: Option<&str>,
    ) -> Result<(Self, Option<PathBuf>), AwsCredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if profile.is_none()
            && let (Some(id), Some(secret)) =
                (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok((
                AwsCredentials::new(id, secret, var("AWS_SESSION_TOKEN")),
                None,
            ));
        }
        let profile = profile
            .map(str::to_string)
            .or_else(|| var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let home = || std::env::var_os("HOME").map(PathBuf::from);
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/credentials")));
        let config_file = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/config")));
        let config_section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let places = [
            (credentials_file, profile.clone()),
            (config_file, config_section),
        ];
        for (file, section) in &places {
            let Some(file) = file else { continue };
            if let Some(credentials) = from_file(file, section)? {
                return Ok((credentials, Some(file.clone())));
            }
        }
        let files: Vec<String> = places
            .iter()
            .filter_map(|(file, _)| file.as_ref().map(|f| f.display().to_string()))
            .collect();
        Err(AwsCredentialsError::Missing {
            profile,
            files: files.join(" and "),
        })
    }

    /// The secret access key.
    pub fn secret(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token, for temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

/// Credentials in `[section]` of `file`; `Ok(None)` when the file or the
/// section is absent or holds no keys.
fn from_file(
    file: &std::path::Path,
    section: &str,
) -> Result<Option<AwsCredentials>, AwsCredentialsError> {
    let problem = |problem: String| AwsCredentialsError::File {
        file: file.display().to_string(),
        problem,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(problem(err.to_string())),
    };
    let Some(mut pairs) = super::ini::section(&text, section).map_err(problem)? else {
        return Ok(None);
    };
    let token = pairs.remove("aws_session_token");
    match (
        pairs.remove("aws_access_key_id"),
        pairs.remove("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(AwsCredentials::new(id, secret, token))),
        (None, None) => Ok(None),
        _ => Err(problem(format!(
            "[{section}] needs both aws_access_key_id and aws_secret_access_key"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_the_credentials_then_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\
             [ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = s2\naws_session_token = t2\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[profile other]\nregion = eu-west-1\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s3\n",
        )
        .unwrap();
        let ci = from_file(&credentials, "ci").unwrap().unwrap();
        assert_eq!(
            (ci.access_key_id.as_str(), ci.secret(), ci.session_token()),
            ("AKIDCI", "s2", Some("t2"))
        );
        assert!(from_file(&credentials, "other").unwrap().is_none());
        let other = from_file(&config, "profile other").unwrap().unwrap();
        assert_eq!(other.access_key_id, "AKIDOTHER");
        assert!(
            from_file(&dir.path().join("absent"), "default")
                .unwrap()
                .is_none()
        );
        std::fs::write(&config, "[default]\naws_access_key_id = only-id\n").unwrap();
        let err = from_file(&config, "default").unwrap_err().to_string();
        assert!(
            err.contains("aws_secret_access_key") && !err.contains("only-id"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = AwsCredentials::new("AKID".into(), "very-secret".into(), Some("tok".into()));
        let text = format!("{c:?}");
        assert!(
            text.contains("AKID") && !text.contains("very-secret") && !text.contains("tok\""),
            "{text}"
        );
    }
}
