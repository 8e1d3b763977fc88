//! Compiled plugins cached on disk, so that a restart does not recompile them.
//!
//! The key is the SHA-256 of the component's bytes together with wasmtime's
//! compatibility hash (its version and the engine settings), so a new
//! plugin or a new fcsink build never loads a stale artifact.
//!
//! A compiled artifact is native code that wasmtime maps and runs without
//! checking it, so the cache is not trusted blindly: a folder that another
//! user owns or that group or others may write is not used at all (fcsink
//! compiles instead and says why), folders fcsink creates are private
//! (0700), and an artifact is loaded only when its bytes match the SHA-256
//! recorded beside it when fcsink wrote it; the check and the load read the
//! same bytes, never the file twice.

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
    if let Err(why) = trusted(dir) {
        tracing::warn!(dir = %dir.display(), %why, "Not using the compiled-plugin cache; compiling instead");
        return Component::new(engine, wasm);
    }
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if let Some(bytes) = verified(&path) {
        // SAFETY: wasmtime runs a deserialized artifact unchecked. These
        // bytes are named by the hash of the source and of this engine, match
        // the digest fcsink recorded when it wrote them, and come from a
        // folder only this user can write.
        match unsafe { Component::deserialize(engine, &bytes) } {
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

/// Why `dir` may not hold compiled plugins, if it exists and may not: it
/// belongs to another user, or group or others can write it.
fn trusted(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(metadata) = std::fs::metadata(dir) else {
        // Missing: `store` creates it private.
        return Ok(());
    };
    if metadata.mode() & 0o022 != 0 {
        return Err(format!(
            "group or others can write it (mode {:o})",
            metadata.mode() & 0o777
        ));
    }
    // The process's own uid, as the owner of its /proc entry.
    if let Ok(me) = std::fs::metadata("/proc/self")
        && metadata.uid() != me.uid()
    {
        return Err(format!(
            "it belongs to uid {}, not to this user",
            metadata.uid()
        ));
    }
    Ok(())
}

/// The artifact at `path`, when its bytes match the digest beside it.
fn verified(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let recorded = std::fs::read_to_string(digest_path(path)).ok()?;
    if hex::encode(Sha256::digest(&bytes)) == recorded.trim() {
        Some(bytes)
    } else {
        tracing::warn!(path = %path.display(), "A compiled plugin does not match its recorded digest; compiling again");
        None
    }
}

fn digest_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let bytes = component.serialize()?;
    let digest = hex::encode(Sha256::digest(&bytes));
    // The digest first: an artifact without its digest is never loaded.
    let tmp = tempfile_in(dir);
    std::fs::write(&tmp, digest)?;
    std::fs::rename(&tmp, digest_path(path))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = "(component (core module (func (export \"f\"))))";

    fn artifacts(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        found.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
        found
    }

    #[test]
    fn a_cached_plugin_is_loaded_only_while_it_matches_its_digest() {
        let engine = Engine::default();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("components");
        load_or_compile(&engine, WAT.as_bytes(), Some(&dir)).unwrap();
        let cached = artifacts(&dir);
        assert_eq!(cached.len(), 1, "compiled once and cached");
        let good = std::fs::read(&cached[0]).unwrap();
        assert_eq!(verified(&cached[0]).as_deref(), Some(good.as_slice()));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the cache folder is private");

        // Someone changes the artifact: it is not loaded, but compiled
        // again and rewritten.
        let mut tampered = good.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0xff;
        std::fs::write(&cached[0], &tampered).unwrap();
        assert_eq!(verified(&cached[0]), None);
        load_or_compile(&engine, WAT.as_bytes(), Some(&dir)).unwrap();
        assert_eq!(std::fs::read(&cached[0]).unwrap(), good);

        // An artifact without its digest is not loaded either.
        std::fs::remove_file(digest_path(&cached[0])).unwrap();
        assert_eq!(verified(&cached[0]), None);
    }

    #[test]
    fn a_cache_folder_others_can_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            trusted(dir.path())
                .unwrap_err()
                .contains("others can write")
        );
        load_or_compile(&engine, WAT.as_bytes(), Some(dir.path())).unwrap();
        assert!(artifacts(dir.path()).is_empty(), "nothing is written there");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(trusted(dir.path()).is_ok());
    }
}
