//! The hostile world: inputs no well-behaved peer sends. Each test names the
//! hostile case and asserts what fcsink does: nothing panics, nothing is
//! silently lost, the reason is visible.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fcsink::config::Settings;
use fcsink::ops::status;
use fcsink_tests::connector::{Process, free_port};

/// How long a hostile case may take to show.
const WAIT: Duration = Duration::from_secs(60);
/// The `fcsink` program, as a process.
const FCSINK: &str = env!("CARGO_BIN_EXE_fcsink-under-test");

/// `fcsink run --listen` on a free port; returns the process and the port.
fn run_listening(config: &Path, log: PathBuf) -> (Process, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    (
        Process::start_with(FCSINK, config, &["--listen", &listen], log),
        port,
    )
}

/// Waits until `partition` is `failed` in the connector's status; its reason.
async fn failed_reason(settings: &Settings, partition: i32) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let report = status::collect(settings).await;
        let failed = report.as_ref().ok().and_then(|r| {
            r.partitions
                .iter()
                .find(|p| p.partition == partition && p.state == "failed")
        });
        if let Some(failed) = failed {
            return failed.error.clone().unwrap_or_default();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "partition {partition} never failed in the status: {report:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

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
