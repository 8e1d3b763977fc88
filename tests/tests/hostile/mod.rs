//! The hostile world: inputs no well-behaved peer sends. Each test names the
//! hostile case and asserts what fcsink does: nothing panics, nothing is
//! silently lost, the reason is visible.

// Command output into a closed pipe.
mod closed_pipe;
// Records with header names that are not UTF-8, NUL bytes, null parts.
mod records;
// Kafka refusing fcsink's own writes: a missing dead-letter topic, a dead letter too large.
mod produce;
// Targets that redirect, answer without end, refuse AssumeRole or authentication.
mod targets;
// A worker that panics: only its partition stops, with the panic as the reason.
mod worker_panic;
