//! Sandbox limits: a memory cap per plugin instance and a time limit per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// Default time limit of one call into a plugin (one batch).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `sandbox.max_output_ratio`: a call may return this many times
/// the bytes it was given.
pub const DEFAULT_MAX_OUTPUT_RATIO: usize = 16;
/// What a call may always return, whatever its input (within the memory cap).
pub const OUTPUT_FLOOR_BYTES: usize = 1 << 20;
/// How often the epoch ticker advances; the granularity of the time limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The limits every plugin instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory (bytes) one instance may grow to.
    pub memory_bytes: usize,
    /// Longest one call (`init` or one batch) may run.
    pub call_timeout: Duration,
    /// Most bytes one call may return, as a multiple of its input (at least
    /// [`OUTPUT_FLOOR_BYTES`], at most `memory_bytes`).
    pub max_output_ratio: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_output_ratio: DEFAULT_MAX_OUTPUT_RATIO,
        }
    }
}

impl Limits {
    /// The epoch deadline, in ticks, for one call.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let ticks = self.call_timeout.as_millis() / EPOCH_TICK.as_millis();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    /// The most bytes a call given `input_bytes` may hand back to the host:
    /// `max_output_ratio` times its input, at least [`OUTPUT_FLOOR_BYTES`],
    /// never more than the memory cap.
    pub(crate) fn output_allowance(&self, input_bytes: usize) -> usize {
        self.max_output_ratio
            .saturating_mul(input_bytes)
            .max(OUTPUT_FLOOR_BYTES)
            .min(self.memory_bytes)
    }
}

/// Most core instances one plugin may create: a componentize-py or
/// componentize-js component needs a few dozen, a Rust one a handful.
pub(crate) const MAX_INSTANCES: usize = 100;
/// Most tables one plugin may create.
pub(crate) const MAX_TABLES: usize = 100;
/// Most linear memories one plugin may create (their sum is capped too).
pub(crate) const MAX_MEMORIES: usize = 10;
/// Most entries a table may have; tables hold function references, and a
/// million is far beyond any real plugin.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Most WASI resources (streams, pollables, …) one plugin may hold at once,
/// each a host allocation; wasmtime's default is a million.
pub(crate) const MAX_RESOURCES: usize = 4096;

/// Refuses memory and table growth past the cap and remembers that it did, so
/// that the trap that follows is reported as "memory exceeded". The cap is
/// on the sum of the instance's memories, not on each.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    exceeded: Arc<AtomicBool>,
    /// The size of the largest linear memory so far, in bytes.
    largest: usize,
    /// The bytes of all the instance's memories together.
    total: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            exceeded: Arc::new(AtomicBool::new(false)),
            largest: 0,
            total: 0,
        }
    }

    /// Whether a memory has grown past three quarters of the cap.
    ///
    /// Wasm memories never shrink, and some guest runtimes leak a little on
    /// every call (componentize-py and componentize-js do, by a few hundred
    /// bytes per record), so an instance left alone would one day trap in
    /// the middle of a batch. The chain replaces such an instance after its
    /// call instead.
    pub(crate) fn near_cap(&self) -> bool {
        self.largest.max(self.total) > self.max_bytes / 4 * 3
    }

    /// Whether growth was refused since the last call to `reset`.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.max_bytes {
            self.exceeded.store(true, Ordering::Relaxed);
            wasmtime::bail!(
                "plugin memory limit exceeded: wanted {total} bytes in all, cap is {} bytes",
                self.max_bytes
            );
        }
        self.total = total;
        self.largest = self.largest.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_to_ticks_and_never_reaches_zero() {
        let limits = |ms| Limits {
            memory_bytes: 1,
            call_timeout: Duration::from_millis(ms),
            ..Limits::default()
        };
        assert_eq!(limits(2000).deadline_ticks(), 200);
        assert_eq!(limits(1).deadline_ticks(), 1);
    }

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.exceeded());
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).is_err());
        assert!(limiter.exceeded());
    }

    #[test]
    fn output_is_bounded_by_the_ratio_the_floor_and_the_memory_cap() {
        let limits = Limits {
            memory_bytes: 8 << 20,
            max_output_ratio: 4,
            ..Limits::default()
        };
        assert_eq!(limits.output_allowance(100), OUTPUT_FLOOR_BYTES);
        assert_eq!(limits.output_allowance(1 << 20), 4 << 20);
        assert_eq!(limits.output_allowance(100 << 20), 8 << 20);
        assert_eq!(limits.output_allowance(usize::MAX), 8 << 20);
    }

    #[test]
    fn the_cap_holds_for_all_memories_together() {
        let mut limiter = MemoryLimiter::new(4 << 20);
        // Two memories of 2 MiB fit; growing either past that does not.
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 2 << 20, None).unwrap());
        assert!(!limiter.exceeded());
        assert!(limiter.memory_growing(2 << 20, 3 << 20, None).is_err());
        assert!(limiter.exceeded());
        assert!(limiter.near_cap(), "4 MiB of 4 MiB in use");
        assert!(limiter.instances() <= 100 && limiter.memories() <= 10);
    }

    #[test]
    fn near_cap_past_three_quarters() {
        let mut limiter = MemoryLimiter::new(4 << 20);
        assert!(limiter.memory_growing(0, 3 << 20, None).unwrap());
        assert!(!limiter.near_cap());
        assert!(
            limiter
                .memory_growing(3 << 20, (3 << 20) + 1, None)
                .unwrap()
        );
        assert!(limiter.near_cap());
    }
}
