//! Compiled plugins cached on disk, so that a restart does not recompile them.
//!
//! The key is the SHA-256 of the component's bytes together with wasmtime's
//! compatibility hash (its version and the engine settings), so a new
//! plugin or a new fcsink build never loads a stale artifact.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The default cache folder: `$XDG_CACHE_HOME/fcsink/components`, else
/// `$HOME/.cache/fcsink/components`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("fcsink").join("components"))
}

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut digest = Sha256::new();
    digest.update(wasm);
    digest.update(compat.finish().to_le_bytes());
    digest.update(env!("CARGO_PKG_VERSION").as_bytes());
    hex::encode(digest.finalize())
}

/// Compiles `wasm`, or loads the artifact an earlier run cached under `dir`.
///
/// A cache that cannot be read or written only costs a compile; it is never an error.
pub fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, wasm);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if path.exists() {
        // SAFETY: the file is named by the hash of the source and of this
        // engine, and only this function writes into the cache folder.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "Ignoring unreadable compiled plugin")
            }
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Err(err) = store(&component, dir, &path) {
        tracing::debug!(dir = %dir.display(), %err, "Could not cache compiled plugin");
    }
    Ok(component)
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = tempfile_in(dir);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn tempfile_in(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ))
}
