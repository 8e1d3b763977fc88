//! fcsink: a self-hosted Kafka sink that runs every batch through sandboxed
//! WebAssembly plugins and invokes a serverless function with the result.
//!
//! # Layout
//!
//! The pipeline, in data-flow order (`pipeline.rs` wires it together):
//!
//! - [`source`]: the Kafka consumer (group `connect-<name>`, offsets stored only after delivery).
//! - [`batch`]: per-partition batches, flushed when full or when the linger time passes.
//! - [`transform`]: the WebAssembly plugin chain (keep / drop / replace / fail).
//! - [`format`]: the payload (the managed connector's JSON array), split by the request size limit.
//! - [`invoke`]: the signed HTTP call to the function and what its answer means.
//! - [`retry`]: bounded retries with backoff and jitter.
//! - [`dlq`]: the dead-letter topic and its reason headers.
//! - `worker.rs`: one partition's loop over these stages, ending in the offset store.
//!
//! Around it: [`config`] (the validated TOML file), [`topics`] (topics created
//! at start), [`metrics`] (named counters), [`cli`] (the `fcsink` commands),
//! [`plugin_tools`] (building and scaffolding plugins for `fcsink plugin`).

pub mod batch;
pub mod cli;
pub mod config;
pub mod dlq;
pub mod format;
pub mod invoke;
pub mod metrics;
pub mod pipeline;
pub mod plugin_tools;
pub mod retry;
pub mod source;
pub mod topics;
pub mod transform;
mod worker;

pub use pipeline::run;
