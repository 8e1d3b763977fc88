//! A local Function Compute, AWS Lambda and plain HTTP function emulator (plus STS) for
//! fcsink's tests and quick start.
//!
//! It accepts InvokeFunction over FC 2.0 and FC 3.0 and Lambda `Invoke`, checks
//! signatures the way the real services do (recomputed from the request as received,
//! with `fcsink-sign`: FC, ACS3, SigV4), enforces the payload limits, answers like a
//! `hello_world` function (FC) or an echo function (Lambda), logs each invocation to
//! stdout like FC does, records everything in memory, and lets tests inject failures.
//! Its STS endpoint issues temporary keys that FC invocations can then be signed with.
//! Anything posted under `/http/` is taken unsigned, recorded with its headers and
//! echoed: a target for plain HTTP sinks. With asynchronous tasks on
//! ([`EmulatorConfig::with_async_tasks`], `--async-tasks`, `PUT /_emulator/async_tasks`)
//! it deduplicates FC task IDs as FC does: a repeated ID answers 409 and is not run, and
//! the record tells requests sent ([`Emulator::invocations`]) from executions
//! ([`Emulator::executed`]).
//!
//! | endpoint | API |
//! |---|---|
//! | `POST /2016-08-15/services/{service}[.{qualifier}]/functions/{fn}/invocations` | FC 2.0 |
//! | `POST /2023-03-30/functions/{fn}/invocations[?qualifier=]` | FC 3.0 |
//! | `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]` | Lambda |
//! | `POST /http/{anything}` | plain HTTP |
//! | `GET\|POST /` | STS AssumeRole |
//! | `/_emulator/…` | the control API ([`control`]) |
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fc_emulator::{AwsKey, EmulatorConfig, Fault};
//! let config = EmulatorConfig::new("test-id", "test-secret")
//!     .with_aws_key(AwsKey::new("AKIDTEST", "aws-secret"));
//! let emulator = fc_emulator::start(config, "127.0.0.1:0".parse().unwrap()).await?;
//! emulator.inject(Fault::status(503).times(2).retry_after(1));
//! // … point the client at emulator.url() …
//! assert_eq!(emulator.invocations().len(), 0);
//! emulator.shutdown().await
//! # }
//! ```
//!
//! # Layout
//!
//! - [`request_id`]: the `X-Fc-Request-Id` every response carries.
//! - [`auth`]: FC signature, clock-skew and STS-token checks; [`aws_auth`]: SigV4
//!   checks for Lambda; [`credentials`]: known keys of both clouds.
//! - [`body`]: reading a payload within its limit.
//! - [`fc`]: the InvokeFunction handlers (verify → read within limit → faults → log →
//!   record → reply); [`lambda`]: the same for Lambda `Invoke`, with [`lambda_name`]
//!   for its function name forms; [`http_sink`]: the plain HTTP endpoint.
//! - [`faults`]: the fault rules, for every endpoint; [`batch_items`]: partial batch
//!   responses; [`log`]: the stdout log; [`invocations`]: the record.
//! - [`sts`]: STS AssumeRole and the temporary keys it issues.
//! - [`control`]: the `/_emulator/…` HTTP API.
//! - [`error`]: error bodies; [`state`]: what the handlers share.

pub mod auth;
pub mod aws_auth;
pub mod batch_items;
pub mod body;
pub mod control;
pub mod credentials;
pub mod error;
pub mod faults;
pub mod fc;
pub mod http_sink;
pub mod invocations;
pub mod key_order;
pub mod lambda;
pub mod lambda_name;
pub mod log;
pub mod request_id;
pub mod state;
pub mod sts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use credentials::AwsKey;
pub use faults::{Fault, FaultKind};
pub use invocations::{Api, ApiVersion, Invocation, InvocationType};

use crate::credentials::Credentials;
use crate::state::Shared;

/// Largest sync payload by default: 32 MiB, FC's current limit.
pub const DEFAULT_SYNC_LIMIT: usize = 32 * 1024 * 1024;
/// Largest async payload by default: 128 KiB, FC's limit.
pub const DEFAULT_ASYNC_LIMIT: usize = 128 * 1024;
/// Largest Lambda `RequestResponse` payload by default: 6 MB (6291456 bytes), Lambda's
/// limit.
pub const DEFAULT_LAMBDA_SYNC_LIMIT: usize = 6_291_456;
/// Largest Lambda `Event` payload by default: 1 MB (1048576 bytes), Lambda's limit.
pub const DEFAULT_LAMBDA_ASYNC_LIMIT: usize = 1_048_576;

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Long-term Alibaba Cloud `(access key id, secret)` pairs it accepts for FC.
    pub credentials: Vec<(String, String)>,
    /// AWS keys it accepts for Lambda; none means every Lambda request is refused.
    pub aws_credentials: Vec<AwsKey>,
    /// Largest accepted FC sync payload (and plain HTTP payload), in bytes.
    pub sync_limit: usize,
    /// Largest accepted async (`x-fc-invocation-type: Async`) payload, in bytes.
    pub async_limit: usize,
    /// Largest accepted Lambda `RequestResponse` or `DryRun` payload, in bytes.
    pub lambda_sync_limit: usize,
    /// Largest accepted Lambda `Event` payload, in bytes.
    pub lambda_async_limit: usize,
    /// If set, STS credentials live this long whatever `DurationSeconds` asked for, so
    /// tests can see them expire.
    pub sts_lifetime: Option<Duration>,
    /// Do not write the invocation log to stdout.
    pub quiet: bool,
    /// Asynchronous tasks are enabled on the emulated functions: an async
    /// request whose task ID (`x-fc-stateful-async-invocation-id`, FC 3.0
    /// `x-fc-async-task-id`) was already taken answers 409 and is not run.
    pub async_tasks: bool,
}

impl EmulatorConfig {
    /// One long-term key, default limits, normal STS lifetimes, logging on.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            credentials: vec![(access_key_id.into(), access_key_secret.into())],
            ..Self::default()
        }
    }

    /// With asynchronous tasks enabled (see [`EmulatorConfig::async_tasks`]).
    pub fn with_async_tasks(mut self) -> Self {
        self.async_tasks = true;
        self
    }

    /// Also accepts Lambda requests signed with `key`.
    pub fn with_aws_key(mut self, key: AwsKey) -> Self {
        self.aws_credentials.push(key);
        self
    }
}

impl Default for EmulatorConfig {
    /// No keys (every signed request is refused), default limits, logging on.
    fn default() -> Self {
        Self {
            credentials: Vec::new(),
            aws_credentials: Vec::new(),
            sync_limit: DEFAULT_SYNC_LIMIT,
            async_limit: DEFAULT_ASYNC_LIMIT,
            lambda_sync_limit: DEFAULT_LAMBDA_SYNC_LIMIT,
            lambda_async_limit: DEFAULT_LAMBDA_ASYNC_LIMIT,
            sts_lifetime: None,
            quiet: false,
            async_tasks: false,
        }
    }
}

/// A running emulator. Dropping it stops the server too; [`Emulator::shutdown`] also
/// waits for it.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` (port 0 picks a free port) and serves the emulator on it in a spawned
/// task.
///
/// # Errors
///
/// Fails when the address cannot be bound.
pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        sync_limit: config.sync_limit,
        async_limit: config.async_limit,
        lambda_sync_limit: config.lambda_sync_limit,
        lambda_async_limit: config.lambda_async_limit,
        sts_lifetime: config.sts_lifetime,
        quiet: config.quiet,
        credentials: Credentials::new(config.credentials).with_aws(config.aws_credentials),
        recorder: Default::default(),
        faults: Default::default(),
        assume_role_calls: Default::default(),
        sts_requests: Default::default(),
        fc_started: Default::default(),
        sts_nonces: Default::default(),
        async_tasks: config.async_tasks.into(),
        task_ids: Default::default(),
    });
    let app = router(Arc::clone(&shared));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // Either an explicit shutdown or the handle being dropped.
                let _ = stopped.await;
            })
            .await
    });
    Ok(Emulator {
        addr,
        shared,
        stop: Some(stop),
        server,
    })
}

/// Every route: FC 2.0, FC 3.0 and Lambda invocations, the HTTP target, STS at `/`, the
/// control API.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2016-08-15/services/{service}/functions/{function}/invocations",
            post(fc::invoke_fc2),
        )
        .route(
            "/2023-03-30/functions/{function}/invocations",
            post(fc::invoke_fc3),
        )
        .route(
            "/2015-03-31/functions/{function}/invocations",
            post(lambda::invoke),
        )
        .route("/http/{*path}", post(http_sink::invoke))
        .route("/", get(sts::handle).post(sts::handle))
        .route(
            "/_emulator/invocations",
            get(control::invocations).delete(control::clear_invocations),
        )
        .route(
            "/_emulator/faults",
            get(control::faults)
                .post(control::add_faults)
                .delete(control::clear_faults),
        )
        .route("/_emulator/stats", get(control::stats))
        .route(
            "/_emulator/async_tasks",
            get(control::async_tasks).put(control::set_async_tasks),
        )
        .fallback(fc::not_supported)
        .method_not_allowed_fallback(fc::not_supported)
        .layer(axum::middleware::from_fn(request_id::assign_request_id))
        .with_state(shared)
}

impl Emulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`: the endpoint to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted invocation so far, oldest first, failed ones included.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared.recorder.all()
    }

    /// The invocations accepted after the first `start`, oldest first: polling with the
    /// count seen so far copies only what is new (benchmarks wait on this).
    pub fn invocations_since(&self, start: usize) -> Vec<Invocation> {
        self.shared.recorder.since(start)
    }

    /// The accepted invocations that were not failed by an injected fault (a partial
    /// batch response naming records counts as failed).
    pub fn delivered(&self) -> Vec<Invocation> {
        let mut all = self.invocations();
        all.retain(|i| !i.failed);
        all
    }

    /// Records with one key (in one partition) that reached the function for
    /// the first time after a later offset of that key, as `key_order.rs`
    /// checks on every delivered call; empty when per-key order held.
    pub fn key_order_violations(&self) -> Vec<String> {
        self.shared.recorder.key_order_violations()
    }

    /// Forgets the recorded invocations (and what per-key order has seen).
    pub fn clear(&self) {
        self.shared.recorder.clear();
    }

    /// Adds a fault rule after the existing ones.
    ///
    /// # Panics
    ///
    /// Panics if the rule is invalid (a status outside 100..=599).
    pub fn inject(&self, fault: Fault) {
        if let Err(problem) = fault.validate() {
            panic!("invalid fault {fault:?}: {problem}");
        }
        self.shared.faults.add(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// The invocations that ran the function (or queued it, async): not those a
    /// status fault answered or FC refused as duplicate tasks.
    pub fn executed(&self) -> Vec<Invocation> {
        let mut all = self.invocations();
        all.retain(|i| i.executed);
        all
    }

    /// Enables or disables asynchronous tasks (task deduplication) from now on.
    pub fn set_async_tasks(&self, enabled: bool) {
        self.shared.async_tasks.store(enabled, Ordering::SeqCst);
    }

    /// How many AssumeRole calls issued credentials.
    pub fn assume_role_calls(&self) -> u64 {
        self.shared.assume_role_calls.load(Ordering::SeqCst)
    }

    /// How many requests STS received, refused ones included.
    pub fn sts_requests(&self) -> u64 {
        self.shared.sts_requests.load(Ordering::SeqCst)
    }

    /// How many FC invocations have started (passed authentication), slow
    /// ones included before they are answered and recorded.
    pub fn fc_started(&self) -> u64 {
        self.shared.fc_started.load(Ordering::SeqCst)
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits.
    ///
    /// # Errors
    ///
    /// Returns the server's I/O error, if it failed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.map_err(std::io::Error::other)?
    }
}
