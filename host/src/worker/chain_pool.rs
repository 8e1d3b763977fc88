//! Plugin chains, one per unit of concurrency: the permits that bound how
//! many batches are in process (transformed, sent, retried), as many as
//! `source.concurrency`.

use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;

use super::lock;
use super::permits::Permits;
use crate::transform::{Chain, Plugin};

/// Plugin chains, one per unit of concurrency: holding one is the permit to
/// work on a batch. Chains are made when first needed, so the pool can grow
/// when `source.concurrency` is raised at runtime.
pub(crate) struct ChainPool {
    permits: Permits,
    plugins: Vec<Arc<Plugin>>,
    chains: Mutex<Vec<Chain>>,
}

impl ChainPool {
    pub(crate) fn new(plugins: Vec<Arc<Plugin>>, size: usize) -> Self {
        ChainPool {
            permits: Permits::new(size),
            chains: Mutex::new((0..size).map(|_| Chain::new(&plugins)).collect()),
            plugins,
        }
    }

    /// A new `source.concurrency`: batches in process beyond it finish first.
    pub(crate) fn resize(&self, concurrency: usize) {
        self.permits.set_size(concurrency);
    }

    pub(crate) async fn acquire(&self) -> (OwnedSemaphorePermit, Chain) {
        let permit = self.permits.acquire().await;
        let chain = self
            .idle()
            .pop()
            .unwrap_or_else(|| Chain::new(&self.plugins));
        (permit, chain)
    }

    pub(crate) fn release(&self, chain: Chain) {
        self.idle().push(chain);
    }

    /// The idle chains; a panic elsewhere while they were held leaves them usable.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Chain>> {
        lock(&self.chains)
    }

    /// The plugins' names, for a failure that is no one plugin's.
    pub(crate) fn names(&self) -> String {
        let names: Vec<&str> = self.plugins.iter().map(|p| p.name()).collect();
        names.join(",")
    }
}
