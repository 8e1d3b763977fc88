//! The harness behind fcsink's integration tests (`tests/tests/main.rs`).
//!
//! # Layout
//!
//! - [`bench`]: what the benchmark binaries share.
//! - [`broker`]: a real broker (Apache Kafka, one node or a cluster, or
//!   Tansu) run as child processes, with helpers to create topics,
//!   produce, read back and inspect offsets.
//!
//! - [`connector`]: fcsink in-process or as a killable process, and the emulator.
//! - [`ledger`]: the fault campaign that counts lost and duplicated records.
//! - [`netns`]: a network namespace joined by veth links, to cut a process off.
//! - [`plugins`]: the plugins in `plugins/`, built to Wasm once per run.
//! - [`python`]: confluent-kafka (an independent client) and moto's Lambda server.
//!
//! Tansu comes from `scripts/install-tansu.sh` (see `scripts/TANSU.md`),
//! Apache Kafka from `scripts/install-kafka.sh`; `FCSINK_BROKER` chooses
//! (Apache Kafka unless it says `tansu`).
pub mod bench;
pub mod broker;
pub mod connector;
pub mod ledger;
pub mod netns;
pub mod plugins;
pub mod python;
