//! `[target]`: exactly one target, and its payload format.

use super::*;

/// Exactly one of `[target.fc]`, `[target.lambda]` and `[target.http]`,
/// its payload format and its `forward_headers`.
pub(super) fn target(
    raw: RawTarget,
    name: &str,
    source: &SourceSettings,
) -> Result<(TargetSettings, Format, Vec<String>)> {
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
        let forward = forward_headers("target.fc", &fc.forward_headers, Taken::Fc)?;
        let settings = fc_settings(fc, name)?;
        let format = keys.resolve("fc", name, source, account_id)?;
        Ok((TargetSettings::Fc(settings), format, forward))
    } else if let Some(lambda) = raw.lambda {
        let keys = FormatKeys {
            table: "target.lambda",
            format: lambda.format.clone(),
            converter: lambda.converter.clone(),
            instance_id: lambda.cloudevents_instance_id.clone(),
        };
        let forward = forward_headers("target.lambda", &lambda.forward_headers, Taken::Lambda)?;
        let format = keys.resolve("confluent", name, source, None)?;
        Ok((
            TargetSettings::Lambda(lambda_settings(lambda)?),
            format,
            forward,
        ))
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
        let configured: Vec<&str> = http.headers.keys().map(String::as_str).collect();
        let forward = forward_headers(
            "target.http",
            &http.forward_headers,
            Taken::Http(&configured),
        )?;
        let format = keys.resolve("fc", name, source, None)?;
        Ok((TargetSettings::Http(http_settings(http)?), format, forward))
    }
}

/// Whose headers a forwarded header must not replace.
#[derive(Clone, Copy)]
enum Taken<'a> {
    Fc,
    Lambda,
    /// With the names of `target.http.headers`.
    Http(&'a [&'a str]),
}

/// Headers no target forwards: they describe the connection or the body,
/// or fcsink sets them.
const TRANSPORT: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

impl Taken<'_> {
    /// Why `name` (lower case) cannot be forwarded, if it cannot.
    fn refuses(self, name: &str) -> Option<&'static str> {
        if TRANSPORT.contains(&name) {
            return Some("describes the connection or the body, which fcsink sets");
        }
        match self {
            Taken::Fc => (["authorization", "date", "content-md5"].contains(&name)
                || name.starts_with("x-fc-")
                || name.starts_with("x-acs-"))
            .then_some("is signed or reserved by Function Compute"),
            Taken::Lambda => (["authorization", crate::invoke::IDEMPOTENCY_KEY].contains(&name)
                || name.starts_with("x-amz-")
                || name.starts_with("content-"))
            .then_some("is signed or reserved by Lambda, or set by fcsink"),
            Taken::Http(configured) => {
                if name == crate::invoke::IDEMPOTENCY_KEY {
                    Some("is set by fcsink")
                } else if configured.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                    Some("is already in target.http.headers")
                } else {
                    None
                }
            }
        }
    }
}

/// `forward_headers`: HTTP header names, each once (in any case), none the
/// target signs, reserves or already sends.
fn forward_headers(table: &str, names: &[String], taken: Taken<'_>) -> Result<Vec<String>> {
    let field = format!("{table}.forward_headers");
    let mut seen: Vec<String> = Vec::new();
    for name in names {
        checked(
            &field,
            name,
            is_header_name(name),
            "must be HTTP header names",
        )?;
        let lower = name.to_ascii_lowercase();
        if let Some(reason) = taken.refuses(&lower) {
            return Err(ConfigError::invalid(
                field,
                format!("cannot forward {name:?}: it {reason}"),
            ));
        }
        if seen.contains(&lower) {
            return Err(ConfigError::invalid(
                field,
                format!("names {name:?} twice (HTTP header names ignore case)"),
            ));
        }
        seen.push(lower);
    }
    Ok(names.to_vec())
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
