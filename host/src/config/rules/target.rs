//! `[target]`: exactly one target, and its payload format.

use super::*;

/// Exactly one of `[target.fc]`, `[target.lambda]` and `[target.http]`, and its payload format.
pub(super) fn target(
    raw: RawTarget,
    name: &str,
    source: &SourceSettings,
) -> Result<(TargetSettings, Format)> {
    let tables = [raw.fc.is_some(), raw.lambda.is_some(), raw.http.is_some()];
    if tables.iter().filter(|set| **set).count() != 1 {
        return Err(ConfigError::invalid(
            "target",
            "needs exactly one of [target.fc], [target.lambda] and [target.http]",
        ));
    }
    if let Some(fc) = raw.fc {
        let keys = FormatKeys {
            table: "target.fc",
            format: fc.format.clone(),
            converter: fc.converter.clone(),
            instance_id: fc.cloudevents_instance_id.clone(),
        };
        let account_id = fc.account_id.clone();
        let settings = fc_settings(fc, name)?;
        let format = keys.resolve("fc", name, source, account_id)?;
        Ok((TargetSettings::Fc(settings), format))
    } else if let Some(lambda) = raw.lambda {
        let keys = FormatKeys {
            table: "target.lambda",
            format: lambda.format.clone(),
            converter: lambda.converter.clone(),
            instance_id: lambda.cloudevents_instance_id.clone(),
        };
        let format = keys.resolve("confluent", name, source, None)?;
        Ok((TargetSettings::Lambda(lambda_settings(lambda)?), format))
    } else {
        let Some(http) = raw.http else {
            return Err(ConfigError::invalid(
                "target",
                "set one of target.fc, target.lambda or target.http",
            ));
        };
        let keys = FormatKeys {
            table: "target.http",
            format: http.format.clone(),
            converter: http.converter.clone(),
            instance_id: http.cloudevents_instance_id.clone(),
        };
        let format = keys.resolve("fc", name, source, None)?;
        Ok((TargetSettings::Http(http_settings(http)?), format))
    }
}

/// The payload-format keys of a target table.
struct FormatKeys {
    table: &'static str,
    format: Option<String>,
    converter: Option<String>,
    instance_id: Option<String>,
}

impl FormatKeys {
    fn resolve(
        self,
        default: &str,
        connector: &str,
        source: &SourceSettings,
        account_id: Option<String>,
    ) -> Result<Format> {
        let table = self.table;
        #[derive(Clone, Copy)]
        enum Kind {
            Fc,
            Confluent,
            AwsKafkaEvent,
            CloudEvents,
        }
        let kind = one_of(
            &format!("{table}.format"),
            Some(self.format.as_deref().unwrap_or(default)),
            Kind::Fc,
            &[
                ("fc", Kind::Fc),
                ("confluent", Kind::Confluent),
                ("aws_kafka_event", Kind::AwsKafkaEvent),
                ("cloudevents", Kind::CloudEvents),
            ],
        )?;
        if self.converter.is_some() && !matches!(kind, Kind::Confluent) {
            return Err(ConfigError::invalid(
                format!("{table}.converter"),
                "only applies to format = \"confluent\"",
            ));
        }
        if self.instance_id.is_some() && !matches!(kind, Kind::CloudEvents) {
            return Err(ConfigError::invalid(
                format!("{table}.cloudevents_instance_id"),
                "only applies to format = \"cloudevents\"",
            ));
        }
        Ok(match kind {
            Kind::Fc => Format::Fc,
            Kind::Confluent => Format::Confluent {
                converter: one_of(
                    &format!("{table}.converter"),
                    self.converter.as_deref(),
                    Converter::Json,
                    &[
                        ("json", Converter::Json),
                        ("escaped_json", Converter::EscapedJson),
                    ],
                )?,
            },
            Kind::AwsKafkaEvent => Format::AwsKafkaEvent {
                bootstrap_servers: source.bootstrap_servers.clone(),
            },
            Kind::CloudEvents => {
                let instance_id = self
                    .instance_id
                    .unwrap_or_else(|| format!("alikafka_{connector}"));
                let ok = made_of(&instance_id, 1..=128, |b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                });
                Format::CloudEvents(CloudEvents {
                    instance_id: checked(
                        &format!("{table}.cloudevents_instance_id"),
                        &instance_id,
                        ok,
                        "must be 1-128 characters of letters, digits, '-', '_' and '.'",
                    )?,
                    account_id,
                })
            }
        })
    }
}
