//! The host side of `wit/transform.wit`: the only place bindings are generated.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "transformer",
    additional_derives: [PartialEq, Eq],
});

pub use self::fcsink::transform::types::{Header, Level};
