//! The host side of `wit/transform.wit`: the only place bindings are generated.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transformer",
    additional_derives: [PartialEq, Eq],
    // Calls into the plugin are async so that one blocked in a WASI call
    // (a sleep, a poll on a clock) can be abandoned at its deadline.
    exports: { default: async },
});

pub use self::fcsink::transform::types::{Header, Level};
