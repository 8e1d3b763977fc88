//! One plugin: where its bytes come from, its compiled form, and a running
//! instance of it (a `Store` with its limits).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level, Transformer, TransformerPre};
use super::guest_log::GuestLog;
use super::limits::{Limits, MAX_RESOURCES, MemoryLimiter};
use super::{LoadError, Outcome, PluginFailure, Record, Runtime, builtin, cache};

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmSource {
    /// Compiled into fcsink.
    Builtin(&'static [u8]),
    /// A `.wasm` file.
    File(PathBuf),
}

/// A plugin as configured: its name, its component and its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Used in logs, metrics and dead-letter headers.
    pub name: String,
    /// The component.
    pub wasm: WasmSource,
    /// Given to the plugin's `init`.
    pub config: Vec<(String, String)>,
}

impl PluginSpec {
    /// Resolves `plugin` as the name of a built-in, else as a path to a `.wasm` file.
    pub fn resolve(plugin: &str, config: Vec<(String, String)>) -> Self {
        match builtin::find(plugin) {
            Some(wasm) => PluginSpec {
                name: plugin.to_string(),
                wasm: WasmSource::Builtin(wasm),
                config,
            },
            None => {
                let path = PathBuf::from(plugin);
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| plugin.to_string());
                PluginSpec {
                    name,
                    wasm: WasmSource::File(path),
                    config,
                }
            }
        }
    }
}

/// What a `Store` holds for one plugin instance.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    log: GuestLog,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::fcsink::transform::types::Host for State {}

impl bindings::fcsink::transform::log::Host for State {
    fn log(&mut self, level: Level, message: String) {
        self.log.emit(level, &message);
    }
}

/// A compiled plugin, ready to be instantiated by any worker.
pub struct Plugin {
    name: Arc<str>,
    engine: Engine,
    pre: TransformerPre<State>,
    config: Vec<(String, String)>,
    limits: Limits,
}

impl Plugin {
    pub(super) fn compile(runtime: &Runtime, spec: &PluginSpec) -> Result<Self, LoadError> {
        let invalid = |err: wasmtime::Error| LoadError::Invalid {
            plugin: spec.name.clone(),
            reason: format!("{err:#}"),
        };
        let file;
        let wasm: &[u8] = match &spec.wasm {
            WasmSource::Builtin(bytes) => bytes,
            WasmSource::File(path) => {
                file = std::fs::read(path).map_err(|source| LoadError::Read {
                    plugin: spec.name.clone(),
                    path: path.clone(),
                    source,
                })?;
                &file
            }
        };
        let component = cache::load_or_compile(&runtime.engine, wasm, runtime.cache_dir.as_deref())
            .map_err(invalid)?;
        let pre = runtime
            .linker
            .instantiate_pre(&component)
            .and_then(TransformerPre::new)
            .map_err(invalid)?;
        Ok(Plugin {
            name: spec.name.as_str().into(),
            engine: runtime.engine.clone(),
            pre,
            config: spec.config.clone(),
            limits: runtime.limits,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a fresh instance in its own `Store` and gives it its configuration.
    ///
    /// # Errors
    /// [`LoadError::Config`] when `init` refuses the configuration,
    /// [`LoadError::Init`] when it traps or runs out of time or memory.
    pub fn instantiate(&self) -> Result<Instance, LoadError> {
        let log = GuestLog::new(self.name.clone());
        let wasi = WasiCtx::builder()
            .stdout(log.stream(Level::Info))
            .stderr(log.stream(Level::Warn))
            // No network at all, not even a socket that could not connect.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        // Each WASI resource is a host allocation: a plugin may not pile up
        // a million of them.
        table.set_max_capacity(MAX_RESOURCES);
        let state = State {
            wasi,
            table,
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
            log,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.limits.deadline_ticks());
        // What the host copies out of the plugin in one call (its answer
        // included) is bounded by its memory cap.
        store.set_hostcall_fuel(self.limits.memory_bytes);

        let init_failed = |failure| LoadError::Init {
            plugin: self.name.to_string(),
            failure,
        };
        let started = bounded(self.limits.call_timeout, async {
            let bindings = self.pre.instantiate_async(&mut store).await?;
            let init = bindings.call_init(&mut store, &self.config).await?;
            Ok::<_, wasmtime::Error>((bindings, init))
        });
        let bindings = match started {
            None => {
                return Err(init_failed(PluginFailure::Timeout(
                    self.limits.call_timeout,
                )));
            }
            Some(Err(err)) => {
                return Err(init_failed(classify_trap(
                    &store,
                    &err,
                    self.limits,
                    self.limits.memory_bytes,
                )));
            }
            Some(Ok((_, Err(reason)))) => {
                return Err(LoadError::Config {
                    plugin: self.name.to_string(),
                    reason,
                });
            }
            Some(Ok((bindings, Ok(())))) => bindings,
        };
        Ok(Instance {
            store,
            bindings,
            limits: self.limits,
        })
    }
}

/// A running plugin instance; reused across batches until it traps.
pub struct Instance {
    store: Store<State>,
    bindings: Transformer,
    limits: Limits,
}

impl Instance {
    /// Runs one batch through the plugin: one outcome per record, in order.
    ///
    /// # Errors
    /// A [`PluginFailure`]. After anything but `Rejected` or
    /// `WrongOutcomeCount` the instance must be dropped: a trapped instance
    /// cannot be entered again.
    pub fn transform(&mut self, batch: &[Record]) -> Result<Vec<Outcome>, PluginFailure> {
        let suppressed = self.store.data().log.start_call();
        if suppressed > 0 {
            tracing::warn!(plugin = %self.store.data().log.plugin(), suppressed, "Plugin log lines suppressed");
        }
        self.store.set_epoch_deadline(self.limits.deadline_ticks());
        // What the host may copy back, set per call from this batch's size.
        let allowance = self
            .limits
            .output_allowance(batch.iter().map(Record::carried_bytes).sum());
        self.store.set_hostcall_fuel(allowance);
        let called = bounded(
            self.limits.call_timeout,
            self.bindings.call_transform(&mut self.store, batch),
        );
        let Some(result) = called else {
            return Err(PluginFailure::Timeout(self.limits.call_timeout));
        };
        match result {
            Ok(Ok(outcomes)) if outcomes.len() == batch.len() => Ok(outcomes),
            Ok(Ok(outcomes)) => Err(PluginFailure::WrongOutcomeCount {
                expected: batch.len(),
                got: outcomes.len(),
            }),
            Ok(Err(reason)) => Err(PluginFailure::Rejected(reason)),
            Err(err) => Err(classify_trap(&self.store, &err, self.limits, allowance)),
        }
    }

    /// Whether the instance's memory has grown close to its cap; it should
    /// then be replaced before its next call (see `MemoryLimiter::near_cap`).
    pub fn near_memory_cap(&self) -> bool {
        self.store.data().limiter.near_cap()
    }
}

/// Tells apart the ways a call into wasm can fail.
/// `allowance` is the host-call fuel the call had.
fn classify_trap(
    store: &Store<State>,
    err: &wasmtime::Error,
    limits: Limits,
    allowance: usize,
) -> PluginFailure {
    if store.data().limiter.exceeded() {
        return PluginFailure::MemoryExceeded(limits.memory_bytes);
    }
    // wasmtime's error for exhausted host-call fuel is private; its text is not.
    if err.chain().any(|cause| {
        cause
            .to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    }) {
        return PluginFailure::OutputTooLarge(allowance);
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PluginFailure::Timeout(limits.call_timeout);
    }
    // The root cause names the trap; the backtrace of anonymous wasm
    // functions would only bury it.
    let trap = err.root_cause().to_string();
    match store.data().log.call_stderr() {
        Some(stderr) => PluginFailure::Trapped(format!("{trap}; stderr: {stderr}")),
        None => PluginFailure::Trapped(trap),
    }
}

/// The most random bytes a plugin may ask for in one call (wasmtime-wasi
/// allows 64 MiB, which the host would allocate).
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// Runs one call into a plugin on this thread, abandoning it at `timeout`.
///
/// The epoch deadline stops a plugin that computes; this stops one that
/// waits in WASI (a sleep, a poll on a clock), which yields to the executor
/// here instead of blocking the thread. An abandoned call leaves its
/// instance unusable; the caller drops it. Calls run on blocking threads
/// (or in tests, on plain threads), so the thread itself drives the call,
/// and WASI's timers and blocking work go to a small runtime of the
/// sandbox's own.
fn bounded<F: Future>(timeout: Duration, call: F) -> Option<F::Output> {
    let _context = sandbox_runtime().enter();
    futures::executor::block_on(async { tokio::time::timeout(timeout, call).await.ok() })
}

/// The runtime that drives WASI's timers and blocking work for every plugin.
#[expect(
    clippy::expect_used,
    reason = "without a thread for timers no plugin can run; this fails only if the OS refuses a thread"
)]
fn sandbox_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fcsink-sandbox")
            .enable_all()
            .build()
            .expect("start the sandbox's timer thread")
    })
}
