//! Python plugins built with `fcsink plugin build-python`: the managed ETL
//! task's template gives the same output as the Rust `etl-compat` plugin,
//! and every way `deal_message` can answer (dict, `None`, list, exception,
//! nonsense) becomes the right outcome.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use fcsink::transform::{
    Chain, Header, Limits, LoadError, Outcome, Plugin, PluginSpec, Record, Runtime,
};
use fcsink_tests::plugins::{compile_cache_dir, plugin, python_plugin, repo_root};

/// One runtime for every test here, with a compile cache that outlives the
/// run: a Python plugin takes about a minute to compile in a debug build.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(Limits::default(), Some(compile_cache_dir())).unwrap())
}

/// Loads one plugin at a time, so that the first load of a component fills
/// the compile cache and the others read it instead of compiling it again.
pub fn load(path: &Path, config: &[(&str, &str)]) -> Result<Arc<Plugin>, LoadError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _loading = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    runtime().load(&PluginSpec::resolve(&path.to_string_lossy(), config))
}

fn template() -> Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let source = repo_root().join("python/examples/add_suffix.py");
            load(&python_plugin(&source), &[]).unwrap()
        })
        .clone()
}

fn cases_wasm() -> &'static Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| python_plugin(&repo_root().join("tests/python/cases.py")))
}

fn cases() -> Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN
        .get_or_init(|| load(cases_wasm(), &[]).unwrap())
        .clone()
}

fn record(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Record {
    Record {
        topic: "orders".into(),
        partition: 3,
        offset,
        timestamp: 1_700_000_000_000 + offset,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: vec![Header {
            key: "trace".into(),
            value: Some(b"t-1".to_vec()),
        }],
    }
}

/// Records the ETL template meets in practice and at the edges: JSON, text,
/// empty, null key, tombstone, both null, bytes that are not UTF-8.
pub fn etl_sample() -> Vec<Record> {
    vec![
        record(
            0,
            Some(b"k0"),
            Some(br#"{"order": 1, "note": "caf\u00e9"}"#),
        ),
        record(
            1,
            Some("clé".as_bytes()),
            Some("valeur ünicode ✓".as_bytes()),
        ),
        record(2, Some(b""), Some(b"")),
        record(3, None, Some(b"no key")),
        record(4, Some(b"tombstone"), None),
        record(5, None, None),
        record(
            6,
            Some(&[0xff, 0xfe, b'k']),
            Some(&[0x00, 0xc3, 0x28, 0xff]),
        ),
        Record {
            timestamp: -1,
            headers: Vec::new(),
            ..record(7, Some(b"k7"), Some(b"v7"))
        },
    ]
}

/// The outcomes of one batch through a fresh instance of `plugin`.
fn outcomes(plugin: &Plugin, batch: &[Record]) -> Vec<Outcome> {
    plugin.instantiate().unwrap().transform(batch).unwrap()
}

fn one(plugin: &Plugin, key: &str, value: &str) -> Outcome {
    let batch = [record(9, Some(key.as_bytes()), Some(value.as_bytes()))];
    outcomes(plugin, &batch).pop().unwrap()
}

#[test]
fn the_etl_template_gives_the_same_output_as_etl_compat() {
    let rust = load(&plugin("etl-compat"), &[]).unwrap();
    let python = Chain::new(&[template()]).run(etl_sample()).unwrap();
    let expected = Chain::new(&[rust]).run(etl_sample()).unwrap();
    assert_eq!(python, expected);
    assert_eq!(
        python.records[0].value.as_deref(),
        Some(&br#"{"order": 1, "note": "caf\u00e9"}ValueSurfix"#[..])
    );
}

#[test]
fn the_etl_template_changes_exactly_what_etl_compat_changes() {
    let rust = load(&plugin("etl-compat"), &[]).unwrap();
    assert_eq!(
        outcomes(&template(), &etl_sample()),
        outcomes(&rust, &etl_sample())
    );
}

#[test]
fn the_etl_template_refuses_configuration() {
    let source = repo_root().join("python/examples/add_suffix.py");
    let err = load(&python_plugin(&source), &[("suffix", "x")])
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Config { .. }), "{err}");
    assert!(err.to_string().contains("`suffix`"), "{err}");
}

#[test]
fn none_drops_the_record() {
    assert_eq!(one(&cases(), "k", "drop"), Outcome::Drop);
    assert_eq!(one(&cases(), "k", "none-of-many"), Outcome::Replace(vec![]));
}

#[test]
fn an_exception_fails_only_its_record_with_its_message() {
    let batch = [
        record(0, Some(b"a"), Some(b"same")),
        record(1, Some(b"b"), Some(b"raise")),
        record(2, Some(b"c"), Some(b"drop")),
    ];
    let out = Chain::new(&[cases()]).run(batch.to_vec()).unwrap();
    assert_eq!(out.records, vec![batch[0].clone()]);
    assert_eq!(out.dropped, 1);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].origin, 1);
    assert_eq!(out.failed[0].reason, "ValueError: cannot handle key b");
}

#[test]
fn an_unchanged_message_keeps_the_record() {
    assert_eq!(one(&cases(), "k", "same"), Outcome::Keep);
}

#[test]
fn the_message_dict_carries_every_field_as_documented() {
    let mut input = record(9, None, Some(b"describe"));
    input.headers.push(Header {
        key: "bare".into(),
        value: None,
    });
    let Outcome::Replace(out) = outcomes(&cases(), &[input]).pop().unwrap() else {
        panic!("expected a replacement");
    };
    let message: serde_json::Value =
        serde_json::from_slice(out[0].value.as_ref().unwrap()).unwrap();
    // No key: absent, not None. Headers are (name, value) pairs.
    assert_eq!(
        message,
        serde_json::json!({
            "value": "describe",
            "topic": "orders",
            "partition": 3,
            "offset": 9,
            "timestamp": 1_700_000_000_009_i64,
            "headers": [["trace", "t-1"], ["bare", null]],
        })
    );
    // Fields the returned dict lacks come from the input; a lacking key is null.
    assert_eq!(out[0].topic, "orders");
    assert_eq!(out[0].key, None);
}

#[test]
fn returned_fields_replace_the_record() {
    let Outcome::Replace(out) = one(&cases(), "k", "move") else {
        panic!("expected a replacement");
    };
    let mut expected = record(9, None, Some(b"\x00raw"));
    expected.topic = "elsewhere".into();
    expected.headers.extend([
        Header {
            key: "seen".into(),
            value: Some(b"yes".to_vec()),
        },
        Header {
            key: "empty".into(),
            value: None,
        },
    ]);
    assert_eq!(out, vec![expected]);
}

#[test]
fn a_list_of_dicts_replaces_the_record_with_several() {
    let Outcome::Replace(out) = one(&cases(), "k", "split") else {
        panic!("expected a replacement");
    };
    let values: Vec<_> = out.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, vec![b"one".to_vec(), b"two".to_vec()]);
    assert!(out.iter().all(|r| r.key.as_deref() == Some(b"k")));
}

#[test]
fn a_wrong_answer_fails_the_record_and_says_why() {
    assert_eq!(
        one(&cases(), "k", "number"),
        Outcome::Fail("TypeError: expected a dict, got int".into())
    );
    assert_eq!(
        one(&cases(), "k", "text-offset"),
        Outcome::Fail("TypeError: message['offset'] must be int, not str".into())
    );
}

#[test]
fn init_gets_the_config_and_may_refuse_it() {
    let greeted = load(cases_wasm(), &[("greeting", "hello")]).unwrap();
    let Outcome::Replace(out) = one(&greeted, "k", "setting") else {
        panic!("expected a replacement");
    };
    assert_eq!(out[0].value.as_deref(), Some(&b"hello"[..]));

    let err = load(cases_wasm(), &[("bad", "1")]).err().unwrap();
    assert!(matches!(err, LoadError::Config { .. }), "{err}");
    assert!(err.to_string().contains("`bad` is not a setting"), "{err}");
}

#[test]
fn a_file_without_deal_message_does_not_build() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("nothing.py");
    std::fs::write(&source, "def handle(message):\n    return message\n").unwrap();
    let tool = fcsink_tests::plugins::componentize_py();
    let err = fcsink::plugin_tools::python::build(&source, &dir.path().join("out.wasm"), &tool)
        .unwrap_err();
    assert!(format!("{err:#}").contains("deal_message"), "{err:#}");
}

#[test]
fn the_setup_script_installs_the_componentize_py_fcsink_names() {
    let script = std::fs::read_to_string(repo_root().join("scripts/python-env.sh")).unwrap();
    let pinned = format!(
        "componentize_py_version={}",
        fcsink::plugin_tools::python::COMPONENTIZE_PY_VERSION
    );
    assert!(
        script.contains(&pinned),
        "scripts/python-env.sh must pin {pinned}"
    );
}
