//! Plugins compiled into the fcsink binary (built from `plugins/` by `build.rs`).

/// Built-in plugins by name.
pub const BUILTINS: &[(&str, &[u8])] = &[(
    "passthrough",
    include_bytes!(concat!(env!("OUT_DIR"), "/passthrough.wasm")),
)];

/// The bytes of the built-in plugin `name`.
pub(crate) fn find(name: &str) -> Option<&'static [u8]> {
    BUILTINS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, wasm)| *wasm)
}
