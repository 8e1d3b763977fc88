//! `fcsink import confluent`: Confluent's AWS Lambda sink connector, either
//! self-managed (`io.confluent.connect.aws.lambda.AwsLambdaSinkConnector`,
//! as posted to the Connect REST API: `{"name":…,"config":{…}}`) or fully
//! managed (`LambdaSink`, a flat JSON object).
//!
//! Behaviour is kept where fcsink has it: the function and region,
//! sync/async, batch size, the record converter (format `confluent`),
//! `behavior.on.error` with each product's default (`fail` self-managed,
//! `log` fully managed), the result and error topics and the dead-letter
//! topic. Credentials are never written to the file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Imported;
use crate::config::MAX_BATCH_SIZE;

/// Properties that only configure Connect or Confluent's licence and reporter plumbing.
const PLUMBING: &[&str] = &[
    "confluent.license",
    "confluent.topic.bootstrap.servers",
    "confluent.topic.replication.factor",
    "aws.lambda.user.agent",
    "reporter.result.topic.replication.factor",
    "reporter.error.topic.replication.factor",
    "reporter.result.topic.partitions",
    "reporter.error.topic.partitions",
    "reporter.result.topic.key.format",
    "reporter.result.topic.value.format",
    "reporter.error.topic.key.format",
    "reporter.error.topic.value.format",
    "errors.deadletterqueue.context.headers.enable",
    "errors.log.enable",
    "errors.log.include.messages",
];

/// Converts a Confluent Lambda sink connector configuration (JSON).
///
/// # Errors
/// Not JSON, not a Lambda sink, or no function name.
pub fn convert(json: &str) -> anyhow::Result<Imported> {
    let root: Value = serde_json::from_str(json)
        .map_err(|err| anyhow::anyhow!("not a JSON connector configuration: {err}"))?;
    let Some(object) = root.as_object() else {
        anyhow::bail!("a connector configuration is a JSON object");
    };
    let (outer_name, config) = match object.get("config").and_then(Value::as_object) {
        Some(config) => (object.get("name").and_then(Value::as_str), config),
        None => (None, object),
    };
    let props: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    let mut props = Props(props);
    let mut take = |key: &str| props.take(key);
    let mut warnings = Vec::new();

    let class = take("connector.class").unwrap_or_default();
    let cloud = class == "LambdaSink";
    if !cloud && !class.ends_with("AwsLambdaSinkConnector") {
        anyhow::bail!(
            "connector.class {class:?} is not Confluent's Lambda sink \
             (io.confluent.connect.aws.lambda.AwsLambdaSinkConnector or LambdaSink)"
        );
    }
    let given_name = take("name")
        .or(outer_name.map(str::to_string))
        .unwrap_or_else(|| "lambda-sink".into());
    let name = connector_name(&given_name);
    if name != given_name {
        warnings.push(format!(
            "name {given_name:?} became {name:?}: fcsink names are 1-48 characters of a-z, 0-9 and '-' \
             (the consumer group is connect-{name}; the old group's offsets are not reused)"
        ));
    }
    let function = take("aws.lambda.function.name")
        .ok_or_else(|| anyhow::anyhow!("aws.lambda.function.name is required"))?;

    let mut toml = Toml::default();
    toml.line(&format!(
        "# Imported from Confluent's {} connector by `fcsink import confluent`.",
        if cloud {
            "fully managed LambdaSink"
        } else {
            "self-managed AWS Lambda sink"
        }
    ));
    toml.pair("name", &name);

    toml.table("source");
    let reporter_servers = take("reporter.bootstrap.servers");
    let reporter = cloud || reporter_servers.is_some();
    match reporter_servers.or_else(|| take("confluent.topic.bootstrap.servers")) {
        Some(servers) => toml.pair("bootstrap_servers", &servers),
        None => {
            toml.pair("bootstrap_servers", "localhost:9092");
            warnings.push(
                "the Kafka cluster is a Connect worker setting: set source.bootstrap_servers \
                 (and SASL/TLS properties under [source.kafka])"
                    .into(),
            );
        }
    }
    match (take("topics"), take("topics.regex")) {
        (Some(topics), _) => {
            let list: Vec<String> = topics
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            toml.raw("topics", &toml_array(&list));
        }
        (None, Some(regex)) => toml.pair("topic_regex", &regex),
        (None, None) => warnings.push("no topics or topics.regex: set source.topics".into()),
    }
    if let Some(reset) = take("consumer.override.auto.offset.reset") {
        toml.pair("start_from", &reset);
    }
    if let Some(tasks) = take("tasks.max") {
        match tasks.trim().parse::<u64>() {
            Ok(n) => {
                toml.raw("concurrency", &n.to_string());
                toml.comment("tasks.max: partitions handled in parallel by one fcsink process");
            }
            Err(_) => warnings.push(format!(
                "tasks.max {tasks:?} is not a number; source.concurrency keeps its default"
            )),
        }
    }
    if cloud && (take("kafka.api.key").is_some() | take("kafka.auth.mode").is_some()) {
        take("kafka.api.secret");
        warnings.push(
            "Confluent Cloud API keys are not carried over: set sasl.username/sasl.password \
             under [source.kafka] (with security.protocol = \"SASL_SSL\", sasl.mechanisms = \"PLAIN\")"
                .into(),
        );
    }

    toml.table("batch");
    let size = take("aws.lambda.batch.size").unwrap_or_else(|| "20".into());
    match size.parse::<usize>() {
        Ok(n) if n > MAX_BATCH_SIZE => {
            toml.raw("size", &MAX_BATCH_SIZE.to_string());
            warnings.push(format!(
                "aws.lambda.batch.size {n} is above fcsink's limit; batch.size is {MAX_BATCH_SIZE} \
                 (requests are also split at the payload limit)"
            ));
        }
        Ok(n) => toml.raw("size", &n.to_string()),
        Err(_) => warnings.push(format!(
            "aws.lambda.batch.size {size:?} is not a number; default 20 kept"
        )),
    }
    toml.raw("linger_ms", "0");
    toml.comment(
        "Confluent's connector does not wait for more records; raise this to batch fuller",
    );

    toml.table("target.lambda");
    toml.pair("function", &function);
    match take("aws.lambda.region") {
        Some(region) => toml.pair("region", &region),
        None if function.starts_with("arn:") => {}
        None => warnings.push(
            "aws.lambda.region is not set: set target.lambda.region, or AWS_REGION in the environment"
                .into(),
        ),
    }
    let invocation = take("aws.lambda.invocation.type").unwrap_or_else(|| "sync".into());
    toml.pair("invocation_type", &invocation);
    toml.pair("format", "confluent");
    let converter = take("record.converter.class").unwrap_or_default();
    toml.pair(
        "converter",
        if converter.ends_with("EscapedJsonKeyValueConverter") {
            "escaped_json"
        } else {
            "json"
        },
    );
    if let Some(timeout) = take("aws.lambda.socket.timeout") {
        match timeout.trim().parse::<u64>() {
            Ok(ms) => toml.raw("timeout_ms", &ms.to_string()),
            Err(_) => warnings.push(format!(
                "aws.lambda.socket.timeout {timeout:?} is not a number; target.lambda.timeout_ms keeps its default"
            )),
        }
    }
    for key in [
        "aws.lambda.topic2function.map",
        "aws.lambda.configuration.mode",
    ] {
        if let Some(value) = take(key) {
            if key.ends_with("configuration.mode") && value == "single" {
                continue;
            }
            warnings.push(format!(
                "{key} is not carried over: fcsink invokes one function per connector; \
                 write one config per function, each with its topics"
            ));
        }
    }
    let had_keys = take("aws.access.key.id").is_some() | take("aws.secret.access.key").is_some();
    if had_keys {
        warnings.push(
            "AWS keys are never written to the file: export AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or use a profile (target.lambda.profile)"
                .into(),
        );
    }
    for key in [
        "aws.credentials.provider.class",
        "authentication.method",
        "provider.integration.id",
    ] {
        if let Some(value) = take(key) {
            if key == "authentication.method" && value == "Access Keys" {
                continue;
            }
            warnings.push(format!(
                "{key} = {value:?} is not carried over: fcsink reads credentials from the AWS \
                 environment variables or shared credentials/config files"
            ));
        }
    }

    toml.table("delivery");
    let behavior =
        take("behavior.on.error").unwrap_or_else(|| if cloud { "log" } else { "fail" }.into());
    toml.pair("behavior_on_error", &behavior);
    let topic = |value: String| value.replace("${connector}", &given_name);
    let result_topic = take("reporter.result.topic.name");
    let error_topic = take("reporter.error.topic.name");
    if invocation == "sync" {
        match (reporter, result_topic) {
            (_, Some(t)) => toml.pair("success_topic", &topic(t)),
            (true, None) if !cloud => toml.pair("success_topic", &format!("{given_name}-success")),
            (true, None) => {}
            (false, None) => toml.pair("success_topic", ""),
        }
    }
    if behavior == "log" {
        match (reporter, error_topic) {
            (_, Some(t)) => toml.pair("error_topic", &topic(t)),
            (true, None) if !cloud => toml.pair("error_topic", &format!("{given_name}-error")),
            _ => {}
        }
    } else if error_topic.is_some() {
        warnings.push(format!(
            "reporter.error.topic.name is not used with behavior.on.error = {behavior:?}: failures \
             go to the dead-letter topic (fcsink writes the error topic only with \"log\")"
        ));
    }
    if let Some(dlq) = take("errors.deadletterqueue.topic.name") {
        toml.pair("dead_letter_topic", &topic(dlq));
    }
    if take("errors.tolerance").as_deref() == Some("none") {
        warnings.push(
            "errors.tolerance = \"none\": fcsink dead-letters records a plugin fails instead \
             of stopping; set failure_policy per your needs"
                .into(),
        );
    }

    for key in [
        "key.converter",
        "value.converter",
        "input.data.format",
        "output.data.format",
    ] {
        if let Some(value) = take(key) {
            let schema = [
                "Avro",
                "AVRO",
                "Protobuf",
                "PROTOBUF",
                "JSON_SR",
                "JsonSchema",
            ]
            .iter()
            .any(|s| value.contains(s));
            if schema {
                warnings.push(format!(
                    "{key} = {value:?}: fcsink sends record bytes as they are and does not read \
                     Schema Registry; such values arrive base64-encoded (valueEncoding) unless a \
                     plugin decodes them"
                ));
            }
        }
    }
    let ignored: Vec<String> = props
        .0
        .keys()
        .filter(|k| {
            !PLUMBING.contains(&k.as_str())
                && !k.starts_with("key.converter.")
                && !k.starts_with("value.converter.")
        })
        .cloned()
        .collect();
    for key in ignored {
        warnings.push(format!("{key} is not carried over (no fcsink equivalent)"));
    }
    Ok(Imported {
        toml: toml.text,
        warnings,
    })
}

/// A valid fcsink name from a Connect connector name.
fn connector_name(given: &str) -> String {
    let mut name: String = given
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-');
    let name: String = name.chars().take(48).collect();
    if name.is_empty() {
        "lambda-sink".into()
    } else {
        name.trim_end_matches('-').to_string()
    }
}

fn toml_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|t| toml_string(t)).collect();
    format!("[{}]", quoted.join(", "))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The connector's properties not yet used.
struct Props(BTreeMap<String, String>);

impl Props {
    /// Uses `key`; an empty value counts as absent.
    fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key).filter(|v| !v.is_empty())
    }
}

/// The file being written.
#[derive(Default)]
struct Toml {
    text: String,
}

impl Toml {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn table(&mut self, name: &str) {
        self.text.push('\n');
        self.line(&format!("[{name}]"));
    }

    fn pair(&mut self, key: &str, value: &str) {
        self.raw(key, &toml_string(value));
    }

    fn raw(&mut self, key: &str, value: &str) {
        self.line(&format!("{key} = {value}"));
    }

    fn comment(&mut self, text: &str) {
        self.line(&format!("# {text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FailurePolicy, SendMode, Settings, TargetSettings};
    use crate::format::{Converter, Format};

    /// The self-managed connector's documented example: the quick start's
    /// properties as posted to the Connect REST API
    /// (docs.confluent.io/kafka-connectors/aws-lambda/current/overview.html).
    const PLATFORM: &str = include_str!("examples/confluent-platform.json");
    /// The fully managed connector's documented JSON
    /// (docs.confluent.io/cloud/current/connectors/cc-aws-lambda-sink.html).
    const CLOUD: &str = include_str!("examples/confluent-cloud.json");

    #[test]
    fn the_self_managed_example_becomes_a_valid_config() {
        let imported = convert(PLATFORM).unwrap();
        let settings = Settings::from_toml(&imported.toml)
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
        assert_eq!(settings.name, "aws-lambda");
        assert_eq!(settings.source.bootstrap_servers, "localhost:9092");
        assert_eq!(settings.batch.max_records, 50);
        let TargetSettings::Lambda(lambda) = &settings.target else {
            panic!("not Lambda")
        };
        assert_eq!(
            (lambda.function.as_str(), lambda.region.as_str()),
            ("Add", "us-west-2")
        );
        assert_eq!(lambda.send_mode, SendMode::Sync);
        assert_eq!(
            settings.format,
            Format::Confluent {
                converter: Converter::Json
            }
        );
        // behavior.on.error = fail stops the partition; the error topic is unused.
        assert_eq!(settings.delivery.failure_policy, FailurePolicy::Stop);
        assert_eq!(
            settings.delivery.success_topic.as_deref(),
            Some("success-responses")
        );
        assert_eq!(settings.delivery.error_topic, None);
        assert!(!imported.toml.contains("EXAMPLEKEY") && !imported.toml.contains("AKIA"));

        let warnings = imported.warnings.join("\n");
        assert!(
            warnings.contains("AWS keys are never written"),
            "{warnings}"
        );
        assert!(
            warnings.contains("value.converter") && warnings.contains("Schema Registry"),
            "{warnings}"
        );
        assert!(
            warnings.contains("reporter.error.topic.name is not used"),
            "{warnings}"
        );
        assert_eq!(imported.warnings.len(), 3, "{warnings}");
    }

    #[test]
    fn the_fully_managed_example_keeps_its_defaults_and_names_what_is_lost() {
        let imported = convert(CLOUD).unwrap();
        let warnings = imported.warnings.join("\n");
        for expected in [
            "became \"lambdasinkconnector-0\"",
            "API keys are not carried over",
            "aws.lambda.region is not set",
            "aws.lambda.topic2function.map is not carried over",
            "set source.bootstrap_servers",
        ] {
            assert!(
                warnings.contains(expected),
                "{expected:?} missing from\n{warnings}"
            );
        }
        let toml = imported.toml.replace(
            "[target.lambda]\n",
            "[target.lambda]\nregion = \"eu-central-1\"\n",
        );
        let settings = Settings::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(settings.source.concurrency, 2);
        assert_eq!(
            settings.format,
            Format::Confluent {
                converter: Converter::EscapedJson
            }
        );
        // Confluent Cloud logs errors and reports to success-/error-<name>.
        assert_eq!(settings.delivery.failure_policy, FailurePolicy::Continue);
        assert_eq!(
            settings.delivery.error_topic.as_deref(),
            Some("error-lambdasinkconnector-0")
        );
        let TargetSettings::Lambda(lambda) = &settings.target else {
            panic!("not Lambda")
        };
        assert_eq!(lambda.function, "myLambda:live");
    }

    /// Found by the `import_confluent` fuzz target: `"tasks.max": "."` was
    /// written as `concurrency = .`, and any text could inject TOML.
    #[test]
    fn numbers_that_are_not_numbers_are_warned_about_never_written() {
        let imported = convert(
            r#"{"connector.class":"LambdaSink","aws.lambda.function.name":"f",
                "tasks.max":".","aws.lambda.socket.timeout":"1\n[evil]\nx = 1"}"#,
        )
        .unwrap();
        let table: toml::Table = imported.toml.parse().unwrap();
        assert!(table.get("evil").is_none(), "{}", imported.toml);
        assert!(!imported.toml.contains("concurrency"), "{}", imported.toml);
        assert!(!imported.toml.contains("timeout_ms"), "{}", imported.toml);
        for key in ["tasks.max", "aws.lambda.socket.timeout"] {
            assert!(
                imported.warnings.iter().any(|w| w.starts_with(key)),
                "{key}: {:?}",
                imported.warnings
            );
        }
    }

    #[test]
    fn other_connectors_are_refused_by_name() {
        let err = convert(r#"{"connector.class":"io.confluent.connect.http.HttpSinkConnector"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not Confluent's Lambda sink"), "{err}");
        let err = convert(r#"{"connector.class":"LambdaSink"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("aws.lambda.function.name"), "{err}");
        assert!(convert("[1]").is_err());
    }
}
