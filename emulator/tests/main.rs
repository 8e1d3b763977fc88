//! The emulator driven over HTTP the way a client drives Function Compute, Lambda or a
//! plain HTTP function.

mod async_tasks; // task deduplication: 409 for a repeated task ID, sent vs executed
mod control; // the /_emulator API: record, faults, stats
mod faults; // injected failures, function errors, latency, body filters
mod fc2; // FC 2.0 signatures, skew, limits, replies
mod fc3; // FC 3.0 ACS3 signatures, body hash, query
mod http; // the plain HTTP target: echo, recorded headers, faults
mod lambda; // Lambda Invoke: SigV4, name forms, invocation types, limits
mod lambda_faults; // faults in Lambda's words, partial batch responses
mod sts; // AssumeRole, temporary keys and their expiry
mod util; // the harness: start an emulator, sign requests
