//! The state every handler shares: limits, known keys (Alibaba Cloud and AWS), the record, the fault rules and
//! the STS bookkeeping.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use crate::credentials::Credentials;
use crate::faults::Faults;
use crate::invocations::Recorder;

/// Shared by all handlers behind an `Arc`.
#[derive(Debug)]
pub struct Shared {
    /// Largest accepted sync payload, in bytes.
    pub sync_limit: usize,
    /// Largest accepted async payload, in bytes.
    pub async_limit: usize,
    /// Largest accepted Lambda `RequestResponse` (and `DryRun`) payload, in bytes.
    pub lambda_sync_limit: usize,
    /// Largest accepted Lambda `Event` payload, in bytes.
    pub lambda_async_limit: usize,
    /// Overrides the lifetime of issued STS credentials.
    pub sts_lifetime: Option<Duration>,
    /// Suppresses the invocation log on stdout.
    pub quiet: bool,
    /// The keys requests may be signed with.
    pub credentials: Credentials,
    /// Every accepted invocation.
    pub recorder: Recorder,
    /// The active fault rules.
    pub faults: Faults,
    /// How many AssumeRole calls succeeded.
    pub assume_role_calls: AtomicU64,
    /// How many requests STS received, refused ones included.
    pub sts_requests: AtomicU64,
    /// How many FC invocations passed authentication, before any injected
    /// latency (so a test knows a slow call is under way).
    pub fc_started: AtomicU64,
    /// `SignatureNonce`s already used with STS, to refuse replays.
    pub sts_nonces: Mutex<HashSet<String>>,
    /// Asynchronous tasks are enabled on the emulated functions: a task ID
    /// already taken is refused (409) and not run.
    pub async_tasks: AtomicBool,
    /// The task IDs taken, by service (empty for FC 3.0) and function.
    pub task_ids: Mutex<HashSet<(String, String, String)>>,
}
