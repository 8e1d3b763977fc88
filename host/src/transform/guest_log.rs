//! Where a plugin's words go: the `log` import and its stdout/stderr, both
//! into fcsink's log with the plugin's name, capped per call so that a chatty
//! plugin cannot flood the log.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::bindings::Level;

/// Lines a plugin may log per call before the rest are suppressed.
pub const MAX_LINES_PER_CALL: u32 = 100;
/// Stderr lines of one call kept for the reason of a trap.
const STDERR_LINES_KEPT: usize = 4;

/// Shared by the `log` import and the stdio streams of one instance.
#[derive(Clone)]
pub(crate) struct GuestLog {
    plugin: Arc<str>,
    lines_this_call: Arc<AtomicU32>,
    /// The first stderr lines of the current call: a panicking Rust plugin
    /// prints its message there just before it traps.
    call_stderr: Arc<Mutex<Vec<String>>>,
}

impl GuestLog {
    pub(crate) fn new(plugin: Arc<str>) -> Self {
        GuestLog {
            plugin,
            lines_this_call: Arc::new(AtomicU32::new(0)),
            call_stderr: Arc::default(),
        }
    }

    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    /// What the current call wrote to stderr, minus Rust's backtrace hint.
    pub(crate) fn call_stderr(&self) -> Option<String> {
        let lines = self.call_stderr.lock().ok()?;
        let useful: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        (!useful.is_empty()).then(|| useful.join(" "))
    }

    /// Starts a new call; returns how many lines the previous call had suppressed.
    pub(crate) fn start_call(&self) -> u32 {
        if let Ok(mut lines) = self.call_stderr.lock() {
            lines.clear();
        }
        let previous = self.lines_this_call.swap(0, Ordering::Relaxed);
        previous.saturating_sub(MAX_LINES_PER_CALL)
    }

    pub(crate) fn emit(&self, level: Level, message: &str) {
        let n = self.lines_this_call.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_LINES_PER_CALL {
            return;
        }
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    /// A WASI output stream that logs each line at `level`.
    pub(crate) fn stream(&self, level: Level) -> LineStream {
        LineStream {
            log: self.clone(),
            level,
        }
    }
}

/// A plugin's stdout or stderr.
#[derive(Clone)]
pub(crate) struct LineStream {
    log: GuestLog,
    level: Level,
}

impl LineStream {
    fn write_bytes(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.log.emit(self.level, line);
            if self.level == Level::Warn
                && let Ok(mut lines) = self.log.call_stderr.lock()
                && lines.len() < STDERR_LINES_KEPT
            {
                lines.push(line.to_string());
            }
        }
    }
}

impl IsTerminal for LineStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for LineStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
