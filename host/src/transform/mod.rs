//! The transform stage: every batch passes through the configured
//! WebAssembly plugins, in order, before the function is invoked.
//!
//! One [`Runtime`] holds the wasmtime `Engine` (component model, epoch
//! interruption) and the linker. Each plugin is compiled once ([`Plugin`]);
//! each worker owns a [`Chain`] with one `Store` and instance per plugin,
//! reused across batches and recreated after a trap. A call ends in one of
//! three typed ways: the batch is transformed ([`Transformed`]), the plugin
//! rejected it ([`PluginFailure::Rejected`]), or the plugin trapped, ran out
//! of time or memory, or answered nonsense (the other [`PluginFailure`]s).

mod bindings;
mod builtin;
mod cache;
mod chain;
mod guest_log;
pub mod limits;
mod plugin;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use bindings::{Header, KafkaRecord as Record, Level, Outcome};

impl Record {
    /// The bytes the record carries: its topic, key, value and headers.
    pub(crate) fn carried_bytes(&self) -> usize {
        let len = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or(0, Vec::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + len(&h.value))
            .sum();
        self.topic.len() + len(&self.key) + len(&self.value) + headers
    }
}
pub use builtin::BUILTINS;
pub use cache::default_dir as default_cache_dir;
pub use chain::{Chain, RecordFailure, SPLIT_INDEX, Transformed};
pub use limits::Limits;
pub use plugin::{Instance, Plugin, PluginSpec, WasmSource};

use plugin::State;

/// Why one plugin failed a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin returned an error for the batch.
    #[error("rejected the batch: {0}")]
    Rejected(String),
    /// The plugin trapped (a panic, `unreachable`, a bad memory access …).
    #[error("trapped: {0}")]
    Trapped(String),
    /// The call ran past the time limit.
    #[error("ran past its time limit of {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error("exceeded its memory cap of {0} bytes")]
    MemoryExceeded(usize),
    /// What the plugin returned (or passed to the host in one call) is
    /// larger than it may be: `sandbox.max_output_ratio` times its input,
    /// at most its memory cap. Lists aliasing one buffer would otherwise
    /// make the host copy it many times over.
    #[error(
        "returned more than the {0} bytes it may (sandbox.max_output_ratio times its input, at most its memory cap)"
    )]
    OutputTooLarge(usize),
    /// The plugin returned a different number of outcomes than it got records.
    #[error("returned {got} outcomes for {expected} records")]
    WrongOutcomeCount {
        /// Records in the batch.
        expected: usize,
        /// Outcomes returned.
        got: usize,
    },
}

impl PluginFailure {
    /// A short stable code for dead-letter headers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PluginFailure::Rejected(_) => "plugin-rejected",
            PluginFailure::Trapped(_) => "plugin-trapped",
            PluginFailure::Timeout(_) => "plugin-timeout",
            PluginFailure::MemoryExceeded(_) => "plugin-memory",
            PluginFailure::OutputTooLarge(_) => "plugin-output-too-large",
            PluginFailure::WrongOutcomeCount { .. } => "plugin-bad-result",
        }
    }
}

/// A plugin failed a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` {failure}")]
pub struct TransformError {
    /// The plugin's name.
    pub plugin: String,
    /// What went wrong.
    pub failure: PluginFailure,
}

/// A plugin could not be loaded; fcsink does not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The `.wasm` file could not be read.
    #[error("plugin `{plugin}`: cannot read {}: {source}", path.display())]
    Read {
        /// The plugin's name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a component of the `fcsink:transform` world.
    #[error("plugin `{plugin}`: not a usable fcsink:transform@0.1.0 component: {reason}")]
    Invalid {
        /// The plugin's name.
        plugin: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// `init` refused the configuration.
    #[error("plugin `{plugin}` refused its configuration: {reason}")]
    Config {
        /// The plugin's name.
        plugin: String,
        /// The plugin's message.
        reason: String,
    },
    /// `init` trapped or ran out of time or memory.
    #[error("plugin `{plugin}` failed to start: {failure}")]
    Init {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        failure: PluginFailure,
    },
}

/// The wasmtime engine, linker and limits shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<State>>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker that enforces time limits.
    ///
    /// `cache_dir` is where compiled plugins are kept between runs (`None`: no cache).
    ///
    /// # Errors
    /// When wasmtime cannot be configured on this machine.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // Our world uses no component-model async; turning it off cuts
            // the fixed cost of every call by about two thirds.
            .concurrency_support(false);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::<State>::new(&engine);
        // WASI is linked so that plugins built for wasm32-wasip2 run; the
        // context each Store gets (see `plugin.rs`) grants nothing but
        // stdout/stderr into the log.
        // Async, so that a plugin blocked in WASI (sleep, poll) yields
        // instead of holding its thread and its call can be abandoned on
        // time (`plugin.rs`, `bounded`).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Transformer::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone())?;

        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            limits,
            cache_dir,
            ticker_stop,
        })
    }

    /// Compiles (or loads from the cache) a plugin and checks that it
    /// accepts its configuration.
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load(&self, spec: &PluginSpec) -> Result<Arc<Plugin>, LoadError> {
        let plugin = Plugin::compile(self, spec)?;
        // Start it once now, so that a refused configuration stops fcsink
        // before it consumes anything.
        plugin.instantiate()?;
        Ok(Arc::new(plugin))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fcsink-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(limits::EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
}
