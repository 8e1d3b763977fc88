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
//! - [`format`]: the payload (FC, Confluent, AWS Kafka event or CloudEvents), split by the request size limit.
//! - [`invoke`]: the target (FC, Lambda, HTTP) behind one trait: the signed call and what its answer means.
//! - [`retry`]: bounded retries with backoff and jitter.
//! - [`dlq`]: the dead-letter topic and its reason headers.
//! - [`results`]: the success and error topics of synchronous targets.
//! - `worker.rs`: one partition's loop over these stages, ending in the offset store.
//!
//! Around it: [`config`] (the validated TOML file), [`topics`] (topics created
//! at start), [`produce`] (acknowledged writes to Kafka), [`metrics`] (named
//! counters and the `/metrics` endpoint), [`cli`] (the `fcsink` commands),
//! [`import`] (configs of other connectors), [`plugin_tools`] (building and
//! scaffolding plugins for `fcsink plugin`).
//!
//! Operating a fleet: [`fleet`] (the config and status topics every
//! instance follows and publishes to), [`ops`] (the commands that write and
//! read them: `status`, `pause`, `resume`, `set`, `send-test`, `delete`),
//! [`progress`] (`run --until-end`).

// Untrusted bytes (records, answers, plugin output, control topics) must never
// panic the process: every remaining unwrap or expect says inline why it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[macro_use]
pub mod stdout;

pub mod batch;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod dlq;
pub mod fleet;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod header_name;
pub mod import;
pub mod invoke;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod plugin_tools;
pub mod produce;
pub mod progress;
pub mod rate_limit;
pub mod results;
pub mod retry;
pub mod source;
mod sync;
pub mod transform;
mod worker;

pub use pipeline::run;
