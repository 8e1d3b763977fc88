//! The operations endpoints on `[operations] listen`: `/metrics`
//! (Prometheus text format), `/healthz` (the process answers) and `/readyz`
//! (it has joined the group, is not shutting down, and no partition is
//! stopped because Kafka refused a write).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Whether the instance is ready: set once partitions were first assigned,
/// cleared when the drain begins, and not while a partition is stopped
/// because Kafka refused a write (a dead letter, a result) for good or the
/// target kept failing.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
    refused_writes: AtomicUsize,
    failing_target: AtomicUsize,
}

impl Readiness {
    /// Marks the instance ready or not.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// How many assigned partitions a refused write stops.
    pub fn set_refused_writes(&self, partitions: usize) {
        self.refused_writes.store(partitions, Ordering::Relaxed);
    }

    /// How many assigned partitions a failing target stops.
    pub fn set_failing_target(&self, partitions: usize) {
        self.failing_target.store(partitions, Ordering::Relaxed);
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.why_not().is_none()
    }

    /// Why it is not ready, when it is not.
    fn why_not(&self) -> Option<String> {
        let refused = self.refused_writes.load(Ordering::Relaxed);
        let failing = self.failing_target.load(Ordering::Relaxed);
        if !self.ready.load(Ordering::Relaxed) {
            Some("not ready\n".into())
        } else if refused > 0 {
            Some(format!(
                "not ready: {refused} partition(s) stopped because Kafka refused a write; see fcsink status\n"
            ))
        } else if failing > 0 {
            Some(format!(
                "not ready: {failing} partition(s) stopped because the target kept failing (authentication or not found); see fcsink status\n"
            ))
        } else {
            None
        }
    }
}

/// Binds `addr` and serves the endpoints until `shutdown` is cancelled.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (operations.listen)"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::warn!(%err, "The operations endpoint stopped");
        }
    });
    Ok((bound, handle))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::render(),
    )
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    match readiness.why_not() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_stopped_by_a_refused_write_makes_the_instance_unready() {
        let readiness = Readiness::default();
        assert!(!readiness.get(), "not ready before an assignment");
        readiness.set(true);
        assert!(readiness.get());
        readiness.set_refused_writes(2);
        assert!(!readiness.get());
        assert!(readiness.why_not().unwrap().contains("2 partition(s)"));
        readiness.set_refused_writes(0);
        assert!(readiness.get());
    }
}
