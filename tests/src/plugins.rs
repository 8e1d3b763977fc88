//! Builds the plugins in `plugins/` to Wasm once per test run and finds
//! them; builds Python and JavaScript plugins, cached by their inputs; runs
//! them in-process through `fcsink::transform` (the sandbox tests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fcsink::plugin_tools::{self, python};
use fcsink::transform::{Chain, Limits, LoadError, Plugin, PluginSpec, Record, Runtime};
use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// The path of a built plugin, e.g. `plugin("json-filter")`; builds every
/// plugin (release, `wasm32-wasip2`) on first use.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let plugins = repo_root().join("plugins");
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.current_dir(&plugins).args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ]);
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            command.env_remove(var);
        }
        let status = command
            .status()
            .expect("cannot run cargo to build the plugins");
        assert!(
            status.success(),
            "building plugins/ for wasm32-wasip2 failed"
        );
        plugins.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "no plugin at {}", path.display());
    path
}

/// A record on partition 0 of `orders` at `offset`, keyed `k<offset>`.
pub fn record(offset: i64, value: &str) -> Record {
    Record {
        topic: "orders".into(),
        partition: 0,
        offset,
        timestamp: 1_700_000_000_000,
        key: Some(format!("k{offset}").into_bytes()),
        value: Some(value.as_bytes().to_vec()),
        headers: Vec::new(),
    }
}

/// The default limits with a memory cap of `memory_mb` MiB and a call
/// timeout of `timeout_ms`.
pub fn limits(memory_mb: usize, timeout_ms: u64) -> Limits {
    Limits {
        memory_bytes: memory_mb << 20,
        call_timeout: Duration::from_millis(timeout_ms),
        ..Limits::default()
    }
}

/// Loads the built plugin `name` (see [`plugin`]) with `config`.
///
/// # Errors
/// What [`Runtime::load`] refuses.
pub fn load(
    runtime: &Runtime,
    name: &str,
    config: &[(&str, &str)],
) -> Result<Arc<Plugin>, LoadError> {
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let spec = PluginSpec::resolve(&plugin(name).to_string_lossy(), config);
    runtime.load(&spec)
}

/// A chain of the `misbehave` fixture in `mode`, misbehaving only on
/// records whose value is `BAD`.
///
/// # Panics
/// When the fixture does not load.
pub fn misbehave(runtime: &Runtime, mode: &str) -> Chain {
    let plugin = load(runtime, "misbehave", &[("mode", mode), ("trigger", "BAD")])
        .unwrap_or_else(|err| panic!("misbehave in mode {mode}: {err}"));
    Chain::new(&[plugin])
}

/// Checks that `chain` handles a clean batch, as it must after a violation.
///
/// # Panics
/// When it does not.
pub fn still_works(chain: &mut Chain) {
    let out = chain
        .run(vec![record(10, "fine"), record(11, "also fine")])
        .unwrap_or_else(|err| panic!("the next batch must succeed: {err}"));
    assert_eq!(out.records.len(), 2, "the next batch must succeed");
}

/// Where tests and benchmarks keep what they build and compile: the cargo
/// profile folder (e.g. `target/debug`) their binary lives in.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().expect("a binary lives in a folder");
    // Tests live in target/<profile>/deps, binaries in target/<profile>.
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// A folder for wasmtime's compiled plugins, kept between test runs: the
/// Python and JavaScript plugins take a minute to compile in a debug build.
pub fn compile_cache_dir() -> PathBuf {
    profile_dir().join("fcsink-compiled")
}

/// Builds `source` into a plugin unless a build of the same inputs is
/// already cached under the target folder; returns the plugin's path.
///
/// `inputs` are the bytes the build depends on; `build` writes the plugin
/// to the path it is given.
fn cached_build(kind: &str, inputs: &[&[u8]], build: impl FnOnce(&Path)) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut digest = Sha256::new();
    for input in inputs {
        digest.update((input.len() as u64).to_le_bytes());
        digest.update(input);
    }
    let dir = profile_dir().join("fcsink-guest-builds");
    let path = dir.join(format!("{kind}-{}.wasm", hex::encode(digest.finalize())));
    // One build at a time: the machine has few cores and tests share plugins.
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("create the build cache folder");
        let partial = path.with_extension("partial");
        build(&partial);
        std::fs::rename(&partial, &path).expect("move the built plugin into place");
    }
    path
}

/// The componentize-py the tests use: `$FCSINK_COMPONENTIZE_PY`, else the
/// one `scripts/python-env.sh` installs into `.venv` (or `$FCSINK_VENV`),
/// else the one on `PATH`.
///
/// # Panics
/// When there is none: the Python plugin tests cannot run without it.
pub fn componentize_py() -> PathBuf {
    let venv = std::env::var_os("FCSINK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let explicit = std::env::var_os(python::COMPONENTIZE_PY_ENV).map(PathBuf::from);
    let in_venv = venv.join("bin/componentize-py");
    let found = match explicit {
        Some(path) => python::find_componentize_py(Some(&path)),
        None if in_venv.is_file() => Ok(in_venv),
        None => python::find_componentize_py(None),
    };
    found.unwrap_or_else(|err| {
        panic!("the Python plugin tests need componentize-py: run scripts/python-env.sh ({err:#})")
    })
}

/// The plugin built from the Python file `source` with `fcsink plugin
/// build-python`'s builder; cached by the file, the adapter, the WIT and
/// the componentize-py version.
///
/// # Panics
/// When componentize-py is missing or the build fails.
pub fn python_plugin(source: &Path) -> PathBuf {
    let tool = componentize_py();
    let version = Command::new(&tool)
        .arg("--version")
        .output()
        .expect("run componentize-py --version")
        .stdout;
    let code = std::fs::read(source).expect("read the Python file");
    let mut inputs: Vec<&[u8]> = vec![&code, plugin_tools::WIT.as_bytes(), &version];
    inputs.extend(python::ADAPTER.iter().map(|(_, text)| text.as_bytes()));
    cached_build("python", &inputs, |out| {
        python::build(source, out, &tool).unwrap_or_else(|err| panic!("{err:#}"));
    })
}

/// The plugin built from the JavaScript module `source` with
/// `plugins-js/build.mjs` (componentize-js); cached by the module, the
/// build script, the WIT and the npm lock file.
///
/// # Panics
/// When componentize-js is not installed (`scripts/js-env.sh`) or the build fails.
pub fn js_plugin(source: &Path) -> PathBuf {
    let js = repo_root().join("plugins-js");
    assert!(
        js.join("node_modules/@bytecodealliance/componentize-js")
            .is_dir(),
        "the JavaScript plugin tests need componentize-js: run scripts/js-env.sh"
    );
    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    let code = read(source);
    let script = read(&js.join("build.mjs"));
    let lock = read(&js.join("package-lock.json"));
    let inputs: [&[u8]; 4] = [&code, &script, &lock, plugin_tools::WIT.as_bytes()];
    cached_build("js", &inputs, |out| {
        let output = Command::new("node")
            .arg(js.join("build.mjs"))
            .arg(source)
            .arg(out)
            .output()
            .expect("cannot run node");
        assert!(
            output.status.success(),
            "building {} failed:\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    })
}
