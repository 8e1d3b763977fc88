//! Conveniences on [`Record`] for plugin code and native tests.

use crate::{Header, Record};

impl Record {
    /// A record with the given key and value on topic `test`, partition 0,
    /// offset 0, no timestamp and no headers: handy in unit tests.
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        Record {
            topic: "test".to_string(),
            partition: 0,
            offset: 0,
            timestamp: -1,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    /// The value as UTF-8 text, if there is a value and it is valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The key as UTF-8 text, if there is a key and it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h: &&Header| h.key == name)
            .and_then(|h| h.value.as_deref())
    }
}
