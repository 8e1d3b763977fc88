use super::super::*;
use crate::format::{CloudEvents, Converter, Format};

/// The example from the configuration reference.
const EXAMPLE: &str = r#"
name = "kafka-fc-sink"

[source]
bootstrap_servers = "127.0.0.1:9092"
topics = ["fc-test-input"]
start_from = "earliest"
concurrency = 6
[source.kafka]
"security.protocol" = "SASL_SSL"
"fetch.max.bytes" = 1048576

[batch]
size = 20
linger_ms = 500

[[transform]]
plugin = "passthrough"
config = {}

[target.fc]
endpoint = "https://1234567890123456.cn-hangzhou-internal.fc.aliyuncs.com"
api_version = "2016-08-15"
service = "guide-hello_world"
function = "hello_world"
qualifier = "LATEST"
send_mode = "async"

[delivery]
retries = 2
failure_policy = "continue"
dead_letter_topic = "connect-error-kafka-fc-sink"
"#;

fn with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "{from}");
    EXAMPLE.replacen(from, to, 1)
}

fn error_of(text: &str) -> String {
    Settings::from_toml(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_is_valid() {
    let s = Settings::from_toml(EXAMPLE).unwrap();
    assert_eq!(s.group_id(), "connect-kafka-fc-sink");
    assert_eq!(s.source.topics, Topics::List(vec!["fc-test-input".into()]));
    assert_eq!(s.source.concurrency, 6);
    assert_eq!(s.source.kafka.get("fetch.max.bytes"), Some("1048576"));
    assert_eq!(s.batch.max_records, 20);
    assert_eq!(s.batch.max_bytes, DEFAULT_ASYNC_REQUEST_BYTES);
    assert_eq!(s.transforms.len(), 1);
    let TargetSettings::Fc(fc) = &s.target else {
        panic!("not FC")
    };
    assert_eq!(
        fc.api,
        FcApi::V2 {
            service: "guide-hello_world".into()
        }
    );
    assert_eq!(fc.send_mode, SendMode::Async);
    assert_eq!(s.delivery.dead_letter_topic, "connect-error-kafka-fc-sink");
}

#[test]
fn sync_mode_defaults_to_the_6_mb_limit() {
    let s = Settings::from_toml(&with("send_mode = \"async\"", "send_mode = \"sync\"")).unwrap();
    assert_eq!(s.batch.max_bytes, 6 * 1024 * 1024);
}

#[test]
fn connector_name_rule_is_enforced() {
    for bad in ["-lead", "Upper", "", "has space", &"x".repeat(49)] {
        let err = error_of(&with(
            "name = \"kafka-fc-sink\"",
            &format!("name = {bad:?}"),
        ));
        assert!(
            err.contains("`name`") && err.contains("0-9, a-z and '-'"),
            "{bad}: {err}"
        );
    }
    assert!(
        Settings::from_toml(&with(
            "name = \"kafka-fc-sink\"",
            &format!("name = \"{}\"", "a".repeat(48))
        ))
        .is_ok()
    );
}

#[test]
fn batch_size_range_is_enforced() {
    let err = error_of(&with("size = 20", "size = 5001"));
    assert_eq!(err, "`batch.size`: must be between 1 and 5000 (got 5001)");
    let err = error_of(&with("size = 20", "size = 0"));
    assert!(err.starts_with("`batch.size`"), "{err}");
}

#[test]
fn unknown_fields_are_named() {
    let err = error_of(&with("linger_ms = 500", "linger_ms = 500\nlinger = 3"));
    assert!(err.contains("unknown field `linger`"), "{err}");
}

#[test]
fn choices_list_the_allowed_values() {
    let err = error_of(&with("send_mode = \"async\"", "send_mode = \"later\""));
    assert_eq!(
        err,
        "`target.fc.send_mode`: must be one of async, sync (got \"later\")"
    );
    let err = error_of(&with(
        "failure_policy = \"continue\"",
        "failure_policy = \"panic\"",
    ));
    assert!(err.starts_with("`delivery.failure_policy`"), "{err}");
}

#[test]
fn reserved_kafka_properties_are_refused() {
    let err = error_of(&with(
        "\"fetch.max.bytes\" = 1048576",
        "\"group.id\" = \"mine\"",
    ));
    assert!(
        err.contains("source.kafka.\"group.id\"") && err.contains("connect-<name>"),
        "{err}"
    );
}

#[test]
fn fc3_has_no_service_and_fc2_needs_one() {
    let err = error_of(&with(
        "api_version = \"2016-08-15\"",
        "api_version = \"2023-03-30\"",
    ));
    assert!(err.starts_with("`target.fc.service`"), "{err}");
    let err = error_of(&with("service = \"guide-hello_world\"\n", ""));
    assert!(
        err.starts_with("`target.fc.service`") && err.contains("required"),
        "{err}"
    );
}

#[test]
fn endpoint_is_derived_from_account_and_region() {
    let text = with(
        "endpoint = \"https://1234567890123456.cn-hangzhou-internal.fc.aliyuncs.com\"",
        "account_id = \"123\"\nregion = \"cn-shanghai\"\ninternal = true",
    );
    let s = Settings::from_toml(&text).unwrap();
    let TargetSettings::Fc(fc) = &s.target else {
        panic!("not FC")
    };
    assert_eq!(
        fc.endpoint.as_str(),
        "https://123.cn-shanghai-internal.fc.aliyuncs.com/"
    );
}

#[test]
fn role_names_become_arns() {
    let text = with(
        "qualifier = \"LATEST\"",
        "qualifier = \"LATEST\"\naccount_id = \"42\"\nrole = \"AliyunKafkaConnectorRole\"",
    );
    let s = Settings::from_toml(&text).unwrap();
    let TargetSettings::Fc(fc) = &s.target else {
        panic!("not FC")
    };
    let role = fc.role.as_ref().unwrap();
    assert_eq!(role.arn, "acs:ram::42:role/AliyunKafkaConnectorRole");
    assert_eq!(role.session_name, "fcsink-kafka-fc-sink");
    assert_eq!(role.sts_endpoint.as_str(), "https://sts.aliyuncs.com/");
}

#[test]
fn topics_and_regex_are_exclusive_and_checked() {
    let err = error_of(&with("topics = [\"fc-test-input\"]", "topics = [\"a b\"]"));
    assert!(err.starts_with("`source.topics[0]`"), "{err}");
    let err = error_of(&with(
        "topics = [\"fc-test-input\"]",
        "topics = [\"a\"]\ntopic_regex = \"b\"",
    ));
    assert!(err.contains("not both"), "{err}");
    let s = Settings::from_toml(&with(
        "topics = [\"fc-test-input\"]",
        "topic_regex = \"orders-.*\"",
    ))
    .unwrap();
    assert_eq!(s.source.topics, Topics::Regex("^orders-.*".into()));
}

#[test]
fn missing_plugin_files_are_named() {
    let err = error_of(&with("plugin = \"passthrough\"", "plugin = \"nope.wasm\""));
    assert!(
        err.starts_with("`transform[0].plugin`") && err.contains("nope.wasm"),
        "{err}"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Arbitrary text never panics the parser; it is accepted or refused with a message.
        #[test]
        fn arbitrary_text_is_refused_not_panicked_on(text in "\\PC{0,400}") {
            if let Err(err) = Settings::from_toml(&text) {
                prop_assert!(!err.to_string().is_empty());
            }
        }

        /// Every integer for a ranged field is either accepted within its range or refused naming the field.
        #[test]
        fn ranged_fields_accept_exactly_their_range(size in -2i64..5003, retries in -2i64..13, concurrency in -2i64..1027) {
            let text = with("size = 20", &format!("size = {size}"))
                .replace("retries = 2", &format!("retries = {retries}"))
                .replace("concurrency = 6", &format!("concurrency = {concurrency}"));
            match Settings::from_toml(&text) {
                Ok(s) => {
                    prop_assert!((1..=5000).contains(&size) && (0..=10).contains(&retries) && (1..=1024).contains(&concurrency));
                    prop_assert_eq!(s.batch.max_records as i64, size);
                    prop_assert_eq!(s.delivery.retries as i64, retries);
                    prop_assert_eq!(s.source.concurrency as i64, concurrency);
                }
                Err(err) => {
                    let err = err.to_string();
                    let named = ["`batch.size`", "`delivery.retries`", "`source.concurrency`"].iter().any(|f| err.starts_with(f));
                    prop_assert!(named, "{}", err);
                }
            }
        }
    }
}

/// The example target replaced by `target` (a TOML table).
fn with_target(target: &str) -> String {
    let start = EXAMPLE.find("[target.fc]").unwrap();
    let end = EXAMPLE.find("[delivery]").unwrap();
    format!("{}{target}\n{}", &EXAMPLE[..start], &EXAMPLE[end..])
        .replace("failure_policy = \"continue\"\n", "")
}

#[test]
fn lambda_defaults_follow_confluent() {
    let s = Settings::from_toml(&with_target(
        "[target.lambda]\nfunction = \"Add\"\nregion = \"eu-west-1\"",
    ))
    .unwrap();
    let TargetSettings::Lambda(lambda) = &s.target else {
        panic!("not Lambda")
    };
    assert_eq!(
        lambda.endpoint.as_str(),
        "https://lambda.eu-west-1.amazonaws.com/"
    );
    assert_eq!(lambda.send_mode, SendMode::Sync);
    assert_eq!(
        s.format,
        Format::Confluent {
            converter: Converter::Json
        }
    );
    assert_eq!(s.batch.max_bytes, LAMBDA_SYNC_REQUEST_BYTES);
    assert_eq!(s.delivery.failure_policy, FailurePolicy::Continue);
    assert_eq!(
        s.delivery.success_topic.as_deref(),
        Some("success-kafka-fc-sink")
    );
    assert_eq!(
        s.delivery.error_topic.as_deref(),
        Some("error-kafka-fc-sink")
    );

    let s = Settings::from_toml(&with_target(
        "[target.lambda]\nfunction = \"arn:aws:lambda:ap-south-1:123456789012:function:Add:live\"\ninvocation_type = \"async\"\nformat = \"aws_kafka_event\"",
    ))
    .unwrap();
    let TargetSettings::Lambda(lambda) = &s.target else {
        panic!("not Lambda")
    };
    assert_eq!(lambda.region, "ap-south-1", "taken from the ARN");
    assert_eq!(s.batch.max_bytes, LAMBDA_ASYNC_REQUEST_BYTES);
    assert_eq!(s.delivery.success_topic, None, "async calls return nothing");
    assert_eq!(
        s.format,
        Format::AwsKafkaEvent {
            bootstrap_servers: "127.0.0.1:9092".into()
        }
    );
}

#[test]
fn behavior_on_error_maps_onto_the_failure_policy() {
    let lambda = "[target.lambda]\nfunction = \"Add\"\nregion = \"eu-west-1\"";
    let with_behavior = |behavior: &str| {
        with_target(lambda).replace(
            "[delivery]\n",
            &format!("[delivery]\nbehavior_on_error = \"{behavior}\"\n"),
        )
    };
    let fail = Settings::from_toml(&with_behavior("fail")).unwrap();
    assert_eq!(fail.delivery.failure_policy, FailurePolicy::Stop);
    assert_eq!(fail.delivery.error_topic, None);
    let ignore = Settings::from_toml(&with_behavior("ignore")).unwrap();
    assert_eq!(ignore.delivery.failure_policy, FailurePolicy::Continue);
    assert_eq!(ignore.delivery.error_topic, None);
    let log = Settings::from_toml(&with_behavior("log")).unwrap();
    assert_eq!(
        log.delivery.error_topic.as_deref(),
        Some("error-kafka-fc-sink")
    );

    let err = error_of(&with_behavior("drop"));
    assert!(
        err.contains("`delivery.behavior_on_error`") && err.contains("fail, ignore, log"),
        "{err}"
    );
    let both =
        with_behavior("log").replace("[delivery]\n", "[delivery]\nfailure_policy = \"stop\"\n");
    assert!(error_of(&both).contains("not both"));
    let stray = EXAMPLE.replace("[delivery]\n", "[delivery]\nerror_topic = \"errors\"\n");
    assert!(error_of(&stray).contains("`delivery.error_topic`"));
    let async_success = EXAMPLE.replace("[delivery]\n", "[delivery]\nsuccess_topic = \"ok\"\n");
    assert!(error_of(&async_success).contains("needs a synchronous target"));
}

#[test]
fn a_target_and_its_format_keys_are_checked() {
    assert!(error_of(&with_target("[target]")).contains("exactly one of"));
    let two = format!("{EXAMPLE}\n[target.http]\nurl = \"https://example.com/hook\"\n");
    assert!(error_of(&two).contains("exactly one of"));
    let err = error_of(&with_target(
        "[target.lambda]\nfunction = \"bad name!\"\nregion = \"us-east-1\"",
    ));
    assert!(err.contains("`target.lambda.function`"), "{err}");
    let err = error_of(&with(
        "send_mode = \"async\"",
        "send_mode = \"async\"\nformat = \"xml\"",
    ));
    assert!(
        err.contains("`target.fc.format`") && err.contains("cloudevents"),
        "{err}"
    );
    let err = error_of(&with(
        "send_mode = \"async\"",
        "send_mode = \"async\"\nconverter = \"json\"",
    ));
    assert!(
        err.contains("`target.fc.converter`") && err.contains("confluent"),
        "{err}"
    );
    let s = Settings::from_toml(&with(
        "send_mode = \"async\"",
        "send_mode = \"async\"\nformat = \"cloudevents\"\naccount_id = \"1234567890123456\"",
    ))
    .unwrap();
    assert_eq!(
        s.format,
        Format::CloudEvents(CloudEvents {
            instance_id: "alikafka_kafka-fc-sink".into(),
            account_id: Some("1234567890123456".into()),
        })
    );
}

#[test]
fn http_headers_take_values_from_the_environment() {
    // SAFETY: this test alone reads and writes this variable.
    unsafe { std::env::set_var("FCSINK_RULES_TEST_TOKEN", "s3cret") };
    let s = Settings::from_toml(&with_target(
        "[target.http]\nurl = \"https://example.com/hook?x=1\"\nheaders = { Authorization = \"Bearer ${FCSINK_RULES_TEST_TOKEN}\", X-Source = \"fcsink\" }",
    ))
    .unwrap();
    let TargetSettings::Http(http) = &s.target else {
        panic!("not HTTP")
    };
    assert!(
        http.headers
            .contains(&("Authorization".into(), "Bearer s3cret".into()))
    );
    assert_eq!(s.format, Format::Fc);
    assert!(
        !format!("{http:?}").contains("s3cret"),
        "Debug shows no header values"
    );

    let err = error_of(&with_target(
        "[target.http]\nurl = \"https://example.com/\"\nheaders = { Authorization = \"${FCSINK_RULES_TEST_UNSET}\" }",
    ));
    assert!(
        err.contains("`target.http.headers.Authorization`")
            && err.contains("FCSINK_RULES_TEST_UNSET"),
        "{err}"
    );
    let err = error_of(&with_target("[target.http]\nurl = \"ftp://example.com/\""));
    assert!(err.contains("`target.http.url`"), "{err}");
}

#[test]
fn ordering_is_partition_by_default_and_names_its_choices() {
    let s = Settings::from_toml(EXAMPLE).unwrap();
    assert_eq!(s.source.ordering, RecordOrder::Partition);
    let s = Settings::from_toml(&with(
        "concurrency = 6",
        "concurrency = 6\nordering = \"key\"",
    ))
    .unwrap();
    assert_eq!(s.source.ordering, RecordOrder::Key);
    let s = Settings::from_toml(&with(
        "concurrency = 6",
        "concurrency = 6\nordering = \"none\"",
    ))
    .unwrap();
    assert_eq!(s.source.ordering, RecordOrder::Unordered);
    let err = error_of(&with(
        "concurrency = 6",
        "concurrency = 6\nordering = \"keys\"",
    ));
    assert!(
        err.contains("`source.ordering`") && err.contains("partition, key, none"),
        "{err}"
    );
}

#[test]
fn instance_id_sets_static_membership() {
    let s = Settings::from_toml(&with(
        "concurrency = 6",
        "concurrency = 6\ninstance_id = \"sink-0.fc_a-1\"",
    ))
    .unwrap();
    assert_eq!(s.source.instance_id.as_deref(), Some("sink-0.fc_a-1"));
    let config = crate::source::client_config(&s);
    assert_eq!(config.get("group.instance.id"), Some("sink-0.fc_a-1"));

    let dynamic = Settings::from_toml(EXAMPLE).unwrap();
    assert_eq!(dynamic.source.instance_id, None);
    assert_eq!(
        crate::source::client_config(&dynamic).get("group.instance.id"),
        None
    );
}

#[test]
fn instance_id_comes_from_the_environment() {
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var("FCSINK_TEST_POD_NAME", "sink-2") };
    let s = Settings::from_toml(&with(
        "concurrency = 6",
        "concurrency = 6\ninstance_id = \"${FCSINK_TEST_POD_NAME}\"",
    ))
    .unwrap();
    assert_eq!(s.source.instance_id.as_deref(), Some("sink-2"));
}

#[test]
fn instance_id_is_checked_like_the_broker_does() {
    let long = "a".repeat(250);
    for bad in ["", ".", "..", "has space", "slash/no", "ü", long.as_str()] {
        let err = error_of(&with(
            "concurrency = 6",
            &format!("concurrency = 6\ninstance_id = {bad:?}"),
        ));
        assert!(err.contains("source.instance_id"), "{bad:?}: {err}");
    }
    let err = error_of(&with(
        "\"fetch.max.bytes\" = 1048576",
        "\"group.instance.id\" = \"x\"",
    ));
    assert!(err.contains("source.instance_id"), "{err}");
}

#[test]
fn start_from_takes_a_word_a_time_or_a_duration_ago() {
    let start = |value: &str| {
        Settings::from_toml(&with(
            r#"start_from = "earliest""#,
            &format!("start_from = {value:?}"),
        ))
        .map(|s| s.source.start_from)
    };
    assert_eq!(start("earliest").unwrap(), StartFrom::Earliest);
    assert_eq!(start("latest").unwrap(), StartFrom::Latest);
    assert_eq!(
        start("2026-12-01T08:00:00Z").unwrap(),
        StartFrom::Timestamp(1_796_112_000_000)
    );
    assert_eq!(
        start("2026-12-01T16:00:00.250+08:00").unwrap(),
        StartFrom::Timestamp(1_796_112_000_250)
    );
    let unset = Settings::from_toml(&with("start_from = \"earliest\"\n", "")).unwrap();
    assert_eq!(unset.source.start_from, StartFrom::Earliest);
    let now = super::now_ms();
    for (ago, ms) in [
        ("-30s", 30_000),
        ("-15m", 900_000),
        ("-2h", 7_200_000),
        ("-7d", 604_800_000),
    ] {
        let StartFrom::Timestamp(at) = start(ago).unwrap() else {
            panic!("{ago}")
        };
        let expected = now - ms;
        assert!((expected..expected + 60_000).contains(&at), "{ago}: {at}");
    }
    assert_eq!(super::point_in_time("-0s", 5_000), Some(5_000));
    assert_eq!(super::point_in_time("-2h", 10_000_000), Some(2_800_000));
}

#[test]
fn start_from_refuses_anything_else_naming_the_field() {
    for bad in [
        "",
        "Earliest",
        "now",
        "2h",
        "-2",
        "-h",
        "-2w",
        "-1.5h",
        "--2h",
        "- 2h",
        "-99999999999999999d",
        "2026-12-01",
        "2026-12-01 08:00:00",
        "2026-12-01T08:00:00",
        "1969-12-31T23:59:59Z",
    ] {
        let err = error_of(&with(
            r#"start_from = "earliest""#,
            &format!("start_from = {bad:?}"),
        ));
        assert!(
            err.contains("`source.start_from`")
                && err.contains(r#"must be "earliest", "latest", an RFC 3339 time"#)
                && err.contains("a duration ago like \"-2h\"")
                && err.contains(&format!("(got {bad:?})")),
            "{bad}: {err}"
        );
    }
    let err = point_in_time_error("--to-timestamp", "yesterday");
    assert!(
        err.starts_with("`--to-timestamp`")
            && err.contains("RFC 3339")
            && err.contains("yesterday"),
        "{err}"
    );
}

fn point_in_time_error(field: &str, text: &str) -> String {
    super::super::point_in_time(field, text)
        .unwrap_err()
        .to_string()
}

#[test]
fn bisection_is_on_and_records_never_too_old_by_default() {
    let s = Settings::from_toml(EXAMPLE).unwrap();
    assert!(s.delivery.bisect_on_error);
    assert_eq!(s.delivery.max_record_age, None);
    let s = Settings::from_toml(&with(
        "retries = 2\n",
        "retries = 2\nbisect_on_error = false\nmax_record_age_ms = 3600000\n",
    ))
    .unwrap();
    assert!(!s.delivery.bisect_on_error);
    assert_eq!(s.delivery.max_record_age, Some(Duration::from_secs(3600)));
}

#[test]
fn a_record_age_out_of_range_names_the_field_and_its_range() {
    for bad in ["0", "999", "604800001", "-1"] {
        let err = error_of(&with(
            "retries = 2\n",
            &format!("retries = 2\nmax_record_age_ms = {bad}\n"),
        ));
        assert!(
            err.starts_with("`delivery.max_record_age_ms`")
                && err.contains("between 1000 and 604800000"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn idempotency_is_none_by_default_and_fc_task_id_needs_fc_async() {
    let s = Settings::from_toml(EXAMPLE).unwrap();
    assert_eq!(s.delivery.idempotency, Idempotency::None);
    assert!(s.notes().is_empty());
    let TargetSettings::Fc(fc) = &s.target else {
        panic!("fc")
    };
    assert!(!fc.task_ids);

    let on = with("retries = 2", "retries = 2\nidempotency = \"fc_task_id\"");
    let s = Settings::from_toml(&on).unwrap();
    assert_eq!(s.delivery.idempotency, Idempotency::FcTaskId);
    let TargetSettings::Fc(fc) = &s.target else {
        panic!("fc")
    };
    assert!(fc.task_ids);
    assert!(
        s.notes()[0].contains("asynchronous tasks"),
        "{:?}",
        s.notes()
    );

    let bad = with("retries = 2", "retries = 2\nidempotency = \"yes\"");
    let err = error_of(&bad);
    assert!(
        err.contains("delivery.idempotency") && err.contains("none, fc_task_id"),
        "{err}"
    );
    let sync = on.replace("send_mode = \"async\"", "send_mode = \"sync\"");
    let err = error_of(&sync);
    assert!(
        err.contains("delivery.idempotency") && err.contains("send_mode = \"async\""),
        "{err}"
    );
    let lambda = with_target("[target.lambda]\nfunction = \"Add\"\nregion = \"eu-west-1\"")
        .replace("retries = 2", "retries = 2\nidempotency = \"fc_task_id\"");
    let err = error_of(&lambda);
    assert!(
        err.contains("delivery.idempotency") && err.contains("FC target"),
        "{err}"
    );
}

#[test]
fn forward_headers_are_kept_in_order() {
    let s = Settings::from_toml(&with(
        "send_mode = \"async\"",
        "send_mode = \"async\"\nforward_headers = [\"traceparent\", \"X-Tenant\"]",
    ))
    .unwrap();
    assert_eq!(s.forward_headers, vec!["traceparent", "X-Tenant"]);
    assert!(
        Settings::from_toml(EXAMPLE)
            .unwrap()
            .forward_headers
            .is_empty()
    );
}

#[test]
fn forward_headers_refuse_what_each_target_signs_reserves_or_sends() {
    let fc = |name: &str| {
        error_of(&with(
            "send_mode = \"async\"",
            &format!("send_mode = \"async\"\nforward_headers = [\"ok\", {name:?}]"),
        ))
    };
    for name in [
        "Authorization",
        "date",
        "Content-Type",
        "Content-MD5",
        "Content-Length",
        "Host",
        "X-Fc-Invocation-Type",
        "x-fc-anything",
        "x-acs-date",
        "Transfer-Encoding",
        "Connection",
    ] {
        let err = fc(name);
        assert!(
            err.contains("`target.fc.forward_headers`") && err.contains(name),
            "{name}: {err}"
        );
    }
    let lambda = |name: &str| {
        error_of(&with_target(&format!(
            "[target.lambda]\nfunction = \"f\"\nregion = \"us-east-1\"\nforward_headers = [{name:?}]"
        )))
    };
    for name in [
        "Authorization",
        "X-Amz-Date",
        "x-amz-security-token",
        "Host",
        "Content-Encoding",
        "Idempotency-Key",
    ] {
        let err = lambda(name);
        assert!(
            err.contains("`target.lambda.forward_headers`"),
            "{name}: {err}"
        );
    }
    let http = |names: &str| {
        error_of(&with_target(&format!(
            "[target.http]\nurl = \"https://example.com/\"\nheaders = {{ X-Source = \"fcsink\" }}\nforward_headers = {names}"
        )))
    };
    for names in [
        "[\"Host\"]",
        "[\"Content-Length\"]",
        "[\"content-type\"]",
        "[\"Transfer-Encoding\"]",
        "[\"Connection\"]",
        "[\"idempotency-key\"]",
        "[\"x-source\"]",
        "[\"a\", \"A\"]",
        "[\"bad name\"]",
        "[\"\"]",
        "[\"line\\nbreak\"]",
    ] {
        let err = http(names);
        assert!(
            err.contains("`target.http.forward_headers`"),
            "{names}: {err}"
        );
    }
    let s = Settings::from_toml(&with_target(
        "[target.http]\nurl = \"https://example.com/\"\nforward_headers = [\"Authorization\", \"traceparent\"]",
    ))
    .unwrap();
    assert_eq!(s.forward_headers, vec!["Authorization", "traceparent"]);
}
