//! The access keys the emulator accepts: configured long-term keys and the temporary
//! keys its STS endpoint issued.

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

/// The known keys, by access key id.
#[derive(Debug, Default)]
pub struct Credentials {
    long_term: HashMap<String, String>,
    temporary: Mutex<HashMap<String, Key>>,
}

impl Credentials {
    /// Knows the given `(access key id, secret)` pairs.
    pub fn new(long_term: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            long_term: long_term.into_iter().collect(),
            temporary: Mutex::default(),
        }
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
