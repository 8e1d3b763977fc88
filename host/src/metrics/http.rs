//! The operations endpoints on `[operations] listen`: `/metrics`
//! (Prometheus text format), `/healthz` (the process answers) and `/readyz`
//! (it has joined the group, is not shutting down, and no partition is
//! stopped because Kafka refused a write).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Stopped partitions that make the instance unready, counted by why
    /// they stopped ("Kafka refused a write" …).
    stopped: Mutex<BTreeMap<&'static str, usize>>,
    /// The circuit breaker holds requests: the target is down.
    circuit_open: AtomicBool,
}

impl Readiness {
    /// Marks the instance ready or not.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The assigned partitions stopped for a reason that needs an operator,
    /// counted by reason.
    pub fn set_stopped(&self, stopped: BTreeMap<&'static str, usize>) {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stopped;
    }

    /// The circuit breaker opened or closed.
    pub fn set_circuit_open(&self, open: bool) {
        self.circuit_open.store(open, Ordering::Relaxed);
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.why_not().is_none()
    }

    /// Why it is not ready, when it is not.
    fn why_not(&self) -> Option<String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("not ready\n".into());
        }
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut reasons: Vec<String> = stopped
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(why, count)| format!("{count} partition(s) stopped because {why}"))
            .collect();
        if self.circuit_open.load(Ordering::Relaxed) {
            reasons.push("the circuit breaker is open (the target is down)".into());
        }
        (!reasons.is_empty())
            .then(|| format!("not ready: {}; see fcsink status\n", reasons.join(", ")))
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
        readiness.set_stopped(BTreeMap::from([("Kafka refused a write", 2)]));
        assert!(!readiness.get());
        assert!(
            readiness
                .why_not()
                .unwrap()
                .contains("2 partition(s) stopped because Kafka refused a write")
        );
        readiness.set_stopped(BTreeMap::new());
        assert!(readiness.get());
    }
}
