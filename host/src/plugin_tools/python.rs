//! `fcsink plugin build-python`: packages a Python file that defines
//! `deal_message(message)` (the managed ETL task's function) into a plugin.
//!
//! The file is built with componentize-py together with the adapter in
//! `python/fcsink_etl/`, which maps each record to the ETL's message dict and
//! the function's answer back to an outcome (see its module doc). The
//! adapter and the WIT are embedded in fcsink, so only componentize-py has
//! to be installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The componentize-py release the adapter is tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// Environment variable naming the componentize-py executable.
pub const COMPONENTIZE_PY_ENV: &str = "FCSINK_COMPONENTIZE_PY";

/// The adapter's files, as (path in the build folder, contents).
pub const ADAPTER: &[(&str, &str)] = &[
    (
        "fcsink_etl/__init__.py",
        include_str!("../../../python/fcsink_etl/__init__.py"),
    ),
    (
        "fcsink_etl/world.py",
        include_str!("../../../python/fcsink_etl/world.py"),
    ),
];

/// The module name the user's file is copied to; the adapter imports it.
const USER_MODULE: &str = "fcsink_user.py";
/// The componentize-py app module: the adapter's entry points.
const APP_MODULE: &str = "fcsink_etl.world";

/// The componentize-py to run: `explicit` if given, else the executable on `PATH`.
///
/// # Errors
/// When none is found; the message says how to install it.
pub fn find_componentize_py(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("componentize-py not found at {}", path.display());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("componentize-py"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "componentize-py is not on PATH; install it with \
                 `pip install componentize-py=={COMPONENTIZE_PY_VERSION}` \
                 (or run scripts/python-env.sh in the fcsink repository) \
                 or name it with --componentize-py or {COMPONENTIZE_PY_ENV}"
            )
        })
}

/// `FILE.wasm` in the current folder for `some/where/FILE.py`.
pub fn default_output(source: &Path) -> PathBuf {
    let stem = source.file_stem().unwrap_or("plugin".as_ref());
    PathBuf::from(stem).with_extension("wasm")
}

/// Builds `source` (a `.py` file defining `deal_message`) into the plugin `output`.
///
/// Modules next to `source` can be imported by it; so can packages of the
/// active virtualenv (componentize-py adds its `site-packages`).
///
/// # Errors
/// When `source` cannot be read or componentize-py fails; the message
/// carries componentize-py's output (a Python traceback for a file that
/// does not import or lacks `deal_message`).
pub fn build(source: &Path, output: &Path, componentize_py: &Path) -> anyhow::Result<()> {
    let code = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let source_dir = source
        .canonicalize()?
        .parent()
        .map(Path::to_path_buf)
        .context("the Python file has no folder")?;

    let work = tempfile::Builder::new()
        .prefix("fcsink-build-python-")
        .tempdir()?;
    let dir = work.path();
    super::write_file(&dir.join("wit/transform.wit"), super::WIT)?;
    for (path, contents) in ADAPTER {
        super::write_file(&dir.join(path), contents)?;
    }
    super::write_file(&dir.join(USER_MODULE), &code)?;

    let result = Command::new(componentize_py)
        .arg("-d")
        .arg(dir.join("wit"))
        .args(["-w", "transformer", "componentize", APP_MODULE])
        // The build folder first, so that `fcsink_user` and `fcsink_etl` are ours.
        .arg("-p")
        .arg(dir)
        .arg("-p")
        .arg(&source_dir)
        .arg("-o")
        .arg(output)
        .output()
        .with_context(|| format!("cannot run {}", componentize_py.display()))?;
    if !result.status.success() {
        bail!(
            "componentize-py ({}) failed to build {}:\n{}{}",
            result.status,
            source.display(),
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr),
        );
    }
    Ok(())
}
