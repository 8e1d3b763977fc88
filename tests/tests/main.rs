//! fcsink's integration tests: one binary, one module per area.

// The broker harness itself: topics, produce, read back, restart.
mod broker_smoke;
// The transform stage with real plugins: every sandbox limit obeyed and violated.
mod sandbox;
// Kafka → fcsink → Function Compute end to end, faults included.
mod fc_e2e;
// delivery.idempotency = "fc_task_id": FC refuses retried task IDs, records run once.
mod idempotency;
// Kafka → fcsink → AWS Lambda (emulator and moto) and plain HTTP, result topics included.
mod lambda_e2e;
// SASL/PLAIN and SASL/SCRAM-SHA-256 over TLS with a CA file; a wrong password.
mod security;
// fcsink in a network namespace, cut off from the broker or the function for 30 s.
mod network_cut;
// Starting anywhere: `source.start_from` a time, `fcsink reset-offsets`.
mod start_from;
// Operating a fleet: config and status topics, ops commands, /metrics, --until-end.
mod fleet;
// Python plugins (`fcsink plugin build-python`): the ETL template and every kind of answer.
mod python_plugins;
// A JavaScript plugin (componentize-js): the ETL template's port.
mod js_plugins;
// Record headers in every payload, byte for byte, and forward_headers as request headers.
mod headers;
// The hostile world: closed pipes, hostile records, answers and plugins.
mod hostile;
// Runtime settings against batches in flight: one snapshot per batch.
mod live_settings;
// `source.buffer_mb` as one byte budget: 200 partitions of 1 MB records.
mod buffer_budget;
