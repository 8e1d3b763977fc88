//! The access keys the emulator accepts: configured long-term Alibaba Cloud keys, the
//! temporary keys its STS endpoint issued, and configured AWS keys for Lambda. The two
//! clouds' keys are separate: an FC key does not sign Lambda requests, nor the reverse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// A key the emulator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The access key secret, used to recompute signatures.
    pub secret: String,
    /// For temporary keys: the security token requests must carry.
    pub security_token: Option<String>,
    /// For temporary keys: when the key stops working.
    pub expires_at: Option<SystemTime>,
}

/// An AWS key pair Lambda requests may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsKey {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// With temporary credentials, the `X-Amz-Security-Token` every request must carry
    /// (and sign).
    pub session_token: Option<String>,
}

impl AwsKey {
    /// A long-term key: requests carry no session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Temporary credentials: requests must carry `session_token`.
    pub fn with_session_token(mut self, session_token: impl Into<String>) -> Self {
        self.session_token = Some(session_token.into());
        self
    }
}

/// The known keys, by access key id.
#[derive(Debug, Default)]
pub struct Credentials {
    long_term: HashMap<String, String>,
    temporary: Mutex<HashMap<String, Key>>,
    aws: HashMap<String, Key>,
}

impl Credentials {
    /// Knows the given `(access key id, secret)` pairs.
    pub fn new(long_term: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            long_term: long_term.into_iter().collect(),
            temporary: Mutex::default(),
            aws: HashMap::new(),
        }
    }

    /// Also knows the given AWS keys, for Lambda.
    pub fn with_aws(mut self, keys: impl IntoIterator<Item = AwsKey>) -> Self {
        self.aws = keys
            .into_iter()
            .map(|k| {
                let key = Key {
                    secret: k.secret_access_key,
                    security_token: k.session_token,
                    expires_at: None,
                };
                (k.access_key_id, key)
            })
            .collect();
        self
    }

    /// Looks up the AWS key `id`.
    pub fn get_aws(&self, id: &str) -> Option<Key> {
        self.aws.get(id).cloned()
    }

    /// Remembers a temporary key issued by AssumeRole.
    pub fn add_temporary(&self, id: String, key: Key) {
        self.lock().insert(id, key);
    }

    /// Looks up `id`, long-term keys first.
    pub fn get(&self, id: &str) -> Option<Key> {
        if let Some(secret) = self.long_term.get(id) {
            return Some(Key {
                secret: secret.clone(),
                security_token: None,
                expires_at: None,
            });
        }
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Key>> {
        self.temporary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
