//! `[source.kafka]`: librdkafka properties passed through, except those
//! that would break fcsink's offset contract, with secrets from the
//! environment or a file and never shown by `Debug`.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;
use super::rules::expand_env;

type Result<T> = std::result::Result<T, ConfigError>;

/// librdkafka properties fcsink sets itself, or that would let an offset be
/// committed before its record was handled; with the reason given.
const RESERVED: &[(&str, &str)] = &[
    ("group.id", "fcsink sets it to connect-<name>"),
    ("bootstrap.servers", "use source.bootstrap_servers"),
    ("group.instance.id", "use source.instance_id"),
    (
        "enable.auto.offset.store",
        "fcsink stores offsets only after delivery",
    ),
    (
        "enable.auto.commit",
        "fcsink commits in the background itself, only offsets it stored after delivery",
    ),
    (
        "auto.commit.enable",
        "fcsink commits in the background itself, only offsets it stored after delivery",
    ),
    (
        "enable.partition.eof",
        "fcsink's consumer does not handle end-of-partition events",
    ),
    ("auto.offset.reset", "use source.start_from"),
    (
        "offset.store.method",
        "offsets are stored in the group, after delivery",
    ),
];

/// Properties that may be set, but only to these values.
const RESTRICTED: &[(&str, &[&str], &str)] = &[(
    "isolation.level",
    &["read_committed"],
    "read_uncommitted would hand aborted transactions to the function",
)];

/// Properties librdkafka refuses with `group.protocol = "consumer"`
/// (KIP-848), where the broker runs the group; with what to use instead.
const CLASSIC_ONLY: &[(&str, &str)] = &[
    (
        "session.timeout.ms",
        "the broker sets it (group.consumer.session.timeout.ms)",
    ),
    (
        "heartbeat.interval.ms",
        "the broker sets it (group.consumer.heartbeat.interval.ms)",
    ),
    (
        "partition.assignment.strategy",
        "the broker assigns partitions; choose its assignor with group.remote.assignor",
    ),
];

/// Keys whose values are secrets: never printed.
fn secret(key: &str) -> bool {
    [
        "password",
        "secret",
        "token",
        "jaas",
        ".pem",
        "key",
        "credentials",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// Validated `[source.kafka]` properties, in key order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties(Vec<(String, String)>);

impl KafkaProperties {
    /// The properties, as librdkafka gets them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, v)| (k, if secret(k) { "<redacted>" } else { v })),
            )
            .finish()
    }
}

/// Checks `[source.kafka]`. A string value may refer to environment
/// variables (`"${KAFKA_PASSWORD}"`); a value `{ file = "path" }` is the
/// content of that file (relative to `base`, the config file's folder;
/// one trailing line break removed).
pub(super) fn properties(
    raw: BTreeMap<String, toml::Value>,
    base: &Path,
) -> Result<KafkaProperties> {
    let mut out = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        let field = format!("source.kafka.\"{key}\"");
        // librdkafka also takes topic properties with a `topic.` prefix.
        let name = key.strip_prefix("topic.").unwrap_or(&key);
        if let Some((_, why)) = RESERVED.iter().find(|(k, _)| *k == name) {
            return Err(ConfigError::invalid(
                field,
                format!("cannot be set here: {why}"),
            ));
        }
        let value = self::value(&field, &value, base)?;
        if let Some((_, allowed, why)) = RESTRICTED.iter().find(|(k, _, _)| *k == name)
            && !allowed.contains(&value.as_str())
        {
            return Err(ConfigError::invalid(
                field,
                format!("must be {} ({why})", allowed.join(" or ")),
            ));
        }
        out.push((key, value));
    }
    let properties = KafkaProperties(out);
    if properties.get("group.protocol") == Some("consumer")
        && let Some((key, why)) = CLASSIC_ONLY
            .iter()
            .find(|(key, _)| properties.get(key).is_some())
    {
        // librdkafka would refuse it too, but only when the consumer is
        // created, and without saying where it was set.
        return Err(ConfigError::invalid(
            format!("source.kafka.\"{key}\""),
            format!("cannot be set with group.protocol = \"consumer\": {why}"),
        ));
    }
    Ok(properties)
}

fn value(field: &str, value: &toml::Value, base: &Path) -> Result<String> {
    match value {
        toml::Value::String(s) => expand_env(field, s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Table(table) if table.len() == 1 => {
            let Some(toml::Value::String(path)) = table.get("file") else {
                return Err(ConfigError::invalid(
                    field,
                    "a table must be { file = \"path\" }",
                ));
            };
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).map_err(|err| {
                ConfigError::invalid(field, format!("cannot read {}: {err}", path.display()))
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
        }
        _ => Err(ConfigError::invalid(
            field,
            "must be a string, number, boolean or { file = \"path\" }",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<KafkaProperties> {
        let raw: BTreeMap<String, toml::Value> = toml::from_str(toml_text).unwrap();
        properties(raw, Path::new("."))
    }

    #[test]
    fn properties_that_break_the_offset_contract_are_refused_with_the_reason() {
        for key in [
            "enable.auto.commit",
            "enable.partition.eof",
            "enable.auto.offset.store",
            "topic.auto.offset.reset",
            "auto.commit.enable",
        ] {
            let err = check(&format!("\"{key}\" = \"true\""))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains("cannot be set here"),
                "{err}"
            );
        }
        let err = check("\"isolation.level\" = \"read_uncommitted\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be read_committed"), "{err}");
        assert!(check("\"isolation.level\" = \"read_committed\"").is_ok());
    }

    #[test]
    fn classic_group_settings_are_refused_with_the_consumer_protocol() {
        for key in [
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "partition.assignment.strategy",
        ] {
            let err = check(&format!(
                "\"group.protocol\" = \"consumer\"\n\"{key}\" = \"1000\""
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(key) && err.contains("group.protocol = \"consumer\""),
                "{err}"
            );
            assert!(
                check(&format!(
                    "\"group.protocol\" = \"classic\"\n\"{key}\" = \"1000\""
                ))
                .is_ok()
            );
        }
        assert!(
            check("\"group.protocol\" = \"consumer\"\n\"group.remote.assignor\" = \"range\"")
                .is_ok()
        );
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_debug_hides_them() {
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::set_var("FCSINK_TEST_KAFKA_PASSWORD", "s3cret-env") };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret-file\n").unwrap();
        let raw: BTreeMap<String, toml::Value> = toml::from_str(
            "\"sasl.password\" = \"${FCSINK_TEST_KAFKA_PASSWORD}\"\n\
             \"ssl.key.password\" = { file = \"pw\" }\n\"sasl.username\" = \"me\"",
        )
        .unwrap();
        let props = properties(raw, dir.path()).unwrap();
        assert_eq!(props.get("sasl.password"), Some("s3cret-env"));
        assert_eq!(props.get("ssl.key.password"), Some("s3cret-file"));
        let debug = format!("{props:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("\"sasl.username\": \"me\""), "{debug}");
        let err = check("\"sasl.password\" = \"${FCSINK_TEST_UNSET_VARIABLE}\"").unwrap_err();
        assert!(
            err.to_string().contains("FCSINK_TEST_UNSET_VARIABLE"),
            "{err}"
        );
        let err = check("\"sasl.password\" = { file = \"/nonexistent/pw\" }").unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
