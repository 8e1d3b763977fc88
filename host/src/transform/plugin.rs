//! One plugin: where its bytes come from, its compiled form, and a running
//! instance of it (a `Store` with its limits).

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level, Transformer, TransformerPre};
use super::guest_log::GuestLog;
use super::limits::{Limits, MemoryLimiter};
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
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
            log,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(self.limits.deadline_ticks());

        let init_failed = |failure| LoadError::Init {
            plugin: self.name.to_string(),
            failure,
        };
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|err| init_failed(classify_trap(&store, &err, self.limits)))?;
        match bindings.call_init(&mut store, &self.config) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(LoadError::Config {
                    plugin: self.name.to_string(),
                    reason,
                });
            }
            Err(err) => return Err(init_failed(classify_trap(&store, &err, self.limits))),
        }
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
        match self.bindings.call_transform(&mut self.store, batch) {
            Ok(Ok(outcomes)) if outcomes.len() == batch.len() => Ok(outcomes),
            Ok(Ok(outcomes)) => Err(PluginFailure::WrongOutcomeCount {
                expected: batch.len(),
                got: outcomes.len(),
            }),
            Ok(Err(reason)) => Err(PluginFailure::Rejected(reason)),
            Err(err) => Err(classify_trap(&self.store, &err, self.limits)),
        }
    }

    /// Whether the instance's memory has grown close to its cap; it should
    /// then be replaced before its next call (see `MemoryLimiter::near_cap`).
    pub fn near_memory_cap(&self) -> bool {
        self.store.data().limiter.near_cap()
    }
}

/// Tells apart the ways a call into wasm can fail.
fn classify_trap(store: &Store<State>, err: &wasmtime::Error, limits: Limits) -> PluginFailure {
    if store.data().limiter.exceeded() {
        return PluginFailure::MemoryExceeded(limits.memory_bytes);
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
