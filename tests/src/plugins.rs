//! Builds the plugins in `plugins/` to Wasm once per test run and finds them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
