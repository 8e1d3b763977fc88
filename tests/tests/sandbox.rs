//! The transform stage with real plugins built to Wasm: every sandbox limit
//! obeyed and violated, and the host keeps working after each violation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fcsink::transform::{
    Chain, Limits, LoadError, Outcome, PluginFailure, PluginSpec, Record, Runtime,
};
use fcsink_tests::plugins::{limits, load, misbehave, record, still_works};

fn failure(chain: &mut Chain, batch: Vec<Record>) -> PluginFailure {
    let err = chain.run(batch).unwrap_err();
    assert_eq!(err.plugin, "misbehave");
    err.failure
}

#[test]
fn passthrough_keeps_everything() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let plugin = runtime
        .load(&PluginSpec::resolve("passthrough", Vec::new()))
        .unwrap();
    let mut chain = Chain::new(&[plugin]);
    let batch = vec![record(0, "a"), record(1, "b")];
    let out = chain.run(batch.clone()).unwrap();
    assert_eq!(out.records, batch);
    assert_eq!(out.origins, vec![0, 1]);
}

#[test]
fn json_filter_then_etl_compat_chain_in_order() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let filter = load(
        &runtime,
        "json-filter",
        &[
            ("field", "status"),
            ("op", "equals"),
            ("value", "ok"),
            ("on_invalid", "drop"),
        ],
    )
    .unwrap();
    let suffix = load(&runtime, "etl-compat", &[]).unwrap();
    let mut chain = Chain::new(&[filter, suffix]);
    let out = chain
        .run(vec![
            record(0, r#"{"status":"ok"}"#),
            record(1, r#"{"status":"bad"}"#),
            record(2, "not json"),
            record(3, r#"{"status":"ok","n":1}"#),
        ])
        .unwrap();
    let values: Vec<_> = out
        .records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            r#"{"status":"ok"}ValueSurfix"#,
            r#"{"status":"ok","n":1}ValueSurfix"#
        ]
    );
    assert_eq!(out.records[0].key.as_deref(), Some(&b"k0KeySurfix"[..]));
    assert_eq!(out.origins, vec![0, 3]);
    assert_eq!(out.dropped, 2);
}

#[test]
fn refused_configuration_stops_loading_with_the_plugin_message() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    match load(
        &runtime,
        "json-filter",
        &[("field", "status"), ("op", "gt"), ("value", "ten")],
    ) {
        Err(LoadError::Config { plugin, reason }) => {
            assert_eq!(plugin, "json_filter");
            assert!(reason.contains("value"), "{reason}");
        }
        other => panic!("expected a refused config, got {:?}", other.err()),
    }
    assert!(matches!(
        load(&runtime, "misbehave", &[("mode", "init-error")]),
        Err(LoadError::Config { .. })
    ));
}

#[test]
fn time_limit_obeyed() {
    let runtime = Runtime::new(limits(64, 300), None).unwrap();
    let mut chain = misbehave(&runtime, "loop");
    // Only the trigger value loops; a batch without it passes.
    still_works(&mut chain);
}

#[test]
fn time_limit_violated_stops_the_call_and_the_host_goes_on() {
    let runtime = Runtime::new(limits(64, 300), None).unwrap();
    let mut chain = misbehave(&runtime, "loop");
    let started = Instant::now();
    assert_eq!(
        failure(&mut chain, vec![record(0, "fine"), record(1, "BAD")]),
        PluginFailure::Timeout(Duration::from_millis(300))
    );
    // Stopped by the limit, not after some unrelated long wait.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    still_works(&mut chain);
}

#[test]
fn a_plugin_sleeping_in_wasi_is_stopped_at_the_time_limit() {
    let runtime = Runtime::new(limits(64, 300), None).unwrap();
    let mut chain = misbehave(&runtime, "sleep");
    still_works(&mut chain);
    let started = Instant::now();
    assert_eq!(
        failure(&mut chain, vec![record(0, "BAD")]),
        PluginFailure::Timeout(Duration::from_millis(300))
    );
    // The plugin asked for 30 s; the call ends at the limit.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    still_works(&mut chain);
}

#[test]
fn a_plugin_sleeping_in_init_is_stopped_at_the_time_limit() {
    // Compiled (and cached) first, so that the time below is init's alone.
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(limits(64, 300), Some(cache.path().to_path_buf())).unwrap();
    load(&runtime, "misbehave", &[("mode", "log")]).unwrap();
    let started = Instant::now();
    // Loading runs `init` to check the configuration.
    let err = load(&runtime, "misbehave", &[("mode", "init-sleep")])
        .err()
        .expect("a plugin sleeping in init does not load");
    assert!(
        matches!(&err, LoadError::Init { failure: PluginFailure::Timeout(t), .. } if *t == Duration::from_millis(300)),
        "{err:?}"
    );
    // The plugin asked for 30 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_answer_aliasing_one_buffer_is_refused_before_the_host_copies_it() {
    // 2000 records pointing at one 64 KiB buffer: 125 MiB from a plugin
    // capped at 16 MiB, given 3 bytes: it may return the 1 MiB floor.
    let runtime = Runtime::new(limits(16, 5000), None).unwrap();
    let mut chain = misbehave(&runtime, "output-bomb");
    let failure = failure(&mut chain, vec![record(0, "BAD")]);
    assert_eq!(failure, PluginFailure::OutputTooLarge(1 << 20));
    assert_eq!(failure.code(), "plugin-output-too-large");
    still_works(&mut chain);
}

#[test]
fn an_answer_past_max_output_ratio_times_its_input_is_refused() {
    // `split` returns every record twice: within the default ratio (16),
    // past a ratio of 1 once the input is past the 1 MiB floor.
    let value = "v".repeat(2 << 20);
    let split = |ratio| {
        let runtime = Runtime::new(
            Limits {
                max_output_ratio: ratio,
                ..limits(64, 5000)
            },
            None,
        )
        .unwrap();
        let plugin = load(&runtime, "misbehave", &[("mode", "split")]).unwrap();
        Chain::new(&[plugin]).run(vec![record(0, &value)])
    };
    assert_eq!(split(16).unwrap().records.len(), 2);
    let err = split(1).unwrap_err();
    assert!(
        matches!(err.failure, PluginFailure::OutputTooLarge(allowed) if (2 << 20..3 << 20).contains(&allowed)),
        "{err:?}"
    );
}

#[test]
fn random_bytes_per_call_are_capped_well_below_wasis_default() {
    // wasmtime-wasi would hand out 64 MiB per call; fcsink allows 64 KiB.
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "random-bomb");
    match failure(&mut chain, vec![record(0, "BAD")]) {
        PluginFailure::Trapped(message) => {
            assert!(message.contains("exceeds limit 65536"), "{message}")
        }
        other => panic!("16 MiB of random bytes must trap, got {other:?}"),
    }
    still_works(&mut chain);
}

#[test]
fn the_resource_table_is_capped() {
    // A million pollables would be a million host allocations; the table
    // stops at 4096 and the call traps.
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "resource-bomb");
    match failure(&mut chain, vec![record(0, "BAD")]) {
        PluginFailure::Trapped(message) => {
            assert!(
                message.contains("resource table has no free keys"),
                "{message}"
            )
        }
        other => panic!("a million resources must trap, got {other:?}"),
    }
    still_works(&mut chain);
}

#[test]
fn memory_cap_obeyed() {
    // A real plugin parsing 100 KB of JSON fits well under an 8 MiB cap.
    let runtime = Runtime::new(limits(8, 2000), None).unwrap();
    let filter = load(
        &runtime,
        "json-filter",
        &[("field", "status"), ("op", "exists")],
    )
    .unwrap();
    let mut chain = Chain::new(&[filter]);
    let big = format!(r#"{{"status":"ok","pad":"{}"}}"#, "x".repeat(100_000));
    let out = chain.run(vec![record(0, &big)]).unwrap();
    assert_eq!(out.records.len(), 1);
}

#[test]
fn memory_cap_violated_stops_the_call_and_the_host_goes_on() {
    let runtime = Runtime::new(limits(32, 5000), None).unwrap();
    let mut chain = misbehave(&runtime, "alloc");
    assert_eq!(
        failure(&mut chain, vec![record(0, "BAD")]),
        PluginFailure::MemoryExceeded(32 << 20)
    );
    still_works(&mut chain);
}

#[test]
fn an_instance_near_its_memory_cap_is_replaced_between_batches() {
    // 1 MiB leaked per batch would pass a 32 MiB cap within 32 batches;
    // the chain starts a fresh instance once one passes three quarters of it.
    let runtime = Runtime::new(limits(32, 5000), None).unwrap();
    let mut chain = misbehave(&runtime, "leak");
    for offset in 0..100 {
        let out = chain.run(vec![record(offset, "BAD")]).unwrap();
        assert_eq!(out.records.len(), 1, "batch {offset}");
    }
}

#[test]
fn a_trap_is_contained_and_names_the_panic() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "trap");
    match failure(&mut chain, vec![record(7, "BAD")]) {
        PluginFailure::Trapped(reason) => {
            assert!(reason.contains("unreachable"), "{reason}");
            assert!(
                reason.contains("misbehave: trap at offset 7"),
                "the panic message should be in: {reason}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_works(&mut chain);
}

#[test]
fn too_many_or_too_few_outcomes_are_rejected_clearly() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "wrong-count");
    assert_eq!(
        failure(&mut chain, vec![record(0, "BAD"), record(1, "x")]),
        PluginFailure::WrongOutcomeCount {
            expected: 2,
            got: 3
        }
    );
    still_works(&mut chain);
    let mut chain = misbehave(&runtime, "too-few");
    let failure = failure(&mut chain, vec![record(0, "BAD"), record(1, "x")]);
    assert_eq!(
        failure,
        PluginFailure::WrongOutcomeCount {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(failure.to_string(), "returned 1 outcomes for 2 records");
    still_works(&mut chain);
}

#[test]
fn a_rejected_batch_carries_the_plugin_reason() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "reject");
    assert_eq!(
        failure(&mut chain, vec![record(0, "BAD")]),
        PluginFailure::Rejected("rejected by misbehave".into())
    );
    still_works(&mut chain);
}

fn denied_reason(mode: &str) -> String {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, mode);
    let out = chain.run(vec![record(0, "BAD")]).unwrap();
    assert!(
        out.records.is_empty(),
        "{mode}: the plugin must not have succeeded"
    );
    assert_eq!(out.failed.len(), 1, "{mode}");
    out.failed[0].reason.clone()
}

#[test]
fn reading_a_file_is_denied() {
    let reason = denied_reason("read-file");
    assert!(reason.starts_with("read /etc/passwd:"), "{reason}");
}

#[test]
fn opening_a_socket_is_denied() {
    let reason = denied_reason("open-socket");
    assert!(reason.contains("127.0.0.1:9"), "{reason}");
    // Refused when the socket is created, not only when it connects.
    assert!(
        reason.to_lowercase().contains("denied") || reason.to_lowercase().contains("permission"),
        "{reason}"
    );
}

#[test]
fn the_environment_is_empty() {
    assert_eq!(denied_reason("env"), "no env");
}

#[test]
fn failed_and_split_records_keep_their_origin() {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let fail_odd = load(&runtime, "misbehave", &[("mode", "fail-odd")]).unwrap();
    let split = load(&runtime, "misbehave", &[("mode", "split")]).unwrap();
    let mut chain = Chain::new(&[fail_odd, split]);
    let out = chain
        .run(vec![record(0, "a"), record(1, "b"), record(2, "c")])
        .unwrap();
    let values: Vec<_> = out
        .records
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            b"a-a".to_vec(),
            b"a-b".to_vec(),
            b"c-a".to_vec(),
            b"c-b".to_vec()
        ]
    );
    assert_eq!(out.origins, vec![0, 0, 2, 2]);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(
        (out.failed[0].origin, out.failed[0].reason.as_str()),
        (1, "odd offset 1")
    );
}

#[test]
fn compiled_plugins_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Limits::default(), Some(cache.path().to_path_buf())).unwrap();
    load(&runtime, "etl-compat", &[]).unwrap();
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "one compiled artifact");
    // A second runtime loads it from the cache and it still works.
    let runtime = Runtime::new(Limits::default(), Some(cache.path().to_path_buf())).unwrap();
    let mut chain = Chain::new(&[load(&runtime, "etl-compat", &[]).unwrap()]);
    assert_eq!(
        chain.run(vec![record(0, "v")]).unwrap().records[0]
            .value
            .as_deref(),
        Some(&b"vValueSurfix"[..])
    );
}

#[test]
fn a_plain_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm junk").unwrap();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let err = runtime
        .load(&PluginSpec::resolve(&path.to_string_lossy(), Vec::new()))
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("fcsink:transform@0.1.0"), "{err}");
}

#[test]
fn outcomes_of_the_keep_variant_are_what_plugin_test_reports() {
    // The CLI and the chain share `Instance::transform`; check it directly.
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let plugin = load(&runtime, "misbehave", &[("mode", "log")]).unwrap();
    let mut instance = plugin.instantiate().unwrap();
    assert_eq!(
        instance.transform(&[record(0, "hello")]).unwrap(),
        vec![Outcome::Keep]
    );
}

#[test]
fn guest_logs_reach_the_host_log_with_the_plugin_name() {
    use std::io::Write;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut chain = misbehave(&runtime, "log");
    tracing::subscriber::with_default(subscriber, || {
        chain.run(vec![record(0, "BAD")]).unwrap();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("BAD")).collect();
    assert!(lines.iter().any(|l| l.contains("INFO")), "{log}");
    assert!(lines.iter().any(|l| l.contains("WARN")), "{log}");
    assert!(
        lines.iter().all(|l| l.contains("plugin=\"misbehave\"")),
        "{log}"
    );
}
