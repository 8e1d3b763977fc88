//! Builds the built-in plugins from `plugins/` (never a committed binary) so
//! that `src/transform/builtin.rs` can embed them.

use std::path::PathBuf;
use std::process::Command;

const BUILTINS: &[&str] = &["passthrough"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "guest-sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // The fuzz build (`fuzz/`, nightly) runs no plugin, and nightly may
    // lack the Wasm target: the built-ins are left empty there.
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        for name in BUILTINS {
            let file = format!("{}.wasm", name.replace('-', "_"));
            std::fs::write(out_dir.join(file), b"").unwrap();
        }
        return;
    }

    let target_dir = out_dir.join("plugins-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root.join("plugins"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in BUILTINS {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("plugins").join(name).display()
        );
        command.args(["-p", name]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not the plugins.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key.starts_with("RUSTFLAGS")
            || key.starts_with("RUSTC_WRAPPER")
            || key.starts_with("RUSTC_WORKSPACE_WRAPPER")
            || key.starts_with("CARGO_TARGET_DIR")
            || key.starts_with("CARGO_BUILD_TARGET")
            || key.starts_with("CARGO_PROFILE_")
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command
        .status()
        .expect("could not run cargo to build the built-in plugins");
    assert!(
        status.success(),
        "building the built-in plugins failed; is the Wasm target installed? \
         Run `rustup target add wasm32-wasip2`."
    );
    for name in BUILTINS {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = target_dir.join("wasm32-wasip2/release").join(&file);
        std::fs::copy(&built, out_dir.join(&file))
            .unwrap_or_else(|err| panic!("{}: {err}", built.display()));
    }
}
