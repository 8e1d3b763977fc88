//! Plugin chains, one per unit of concurrency: the permits that bound how
//! many batches are in flight, as many as `source.concurrency` or fewer
//! while the target throttles (`aimd`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::aimd::Aimd;
use crate::metrics;
use crate::transform::{Chain, Plugin};

/// Plugin chains, one per unit of concurrency: holding one is the permit to
/// work on a batch. Chains are made when first needed, so the pool can grow
/// when `source.concurrency` is raised at runtime.
pub(crate) struct ChainPool {
    permits: Arc<Semaphore>,
    /// Permits to retire as they come back after `resize` lowered the size
    /// below the batches in flight.
    debt: Mutex<usize>,
    size: AtomicUsize,
    /// The permits throttling allows; `None` when `delivery.adaptive_concurrency`
    /// is off.
    aimd: Option<Mutex<Aimd>>,
    plugins: Vec<Arc<Plugin>>,
    chains: Mutex<Vec<Chain>>,
}

impl ChainPool {
    pub(crate) fn new(plugins: Vec<Arc<Plugin>>, size: usize, adaptive: bool) -> Self {
        metrics::concurrency_limit(size);
        ChainPool {
            permits: Arc::new(Semaphore::new(size)),
            debt: Mutex::new(0),
            size: AtomicUsize::new(size),
            aimd: adaptive.then(|| Mutex::new(Aimd::new(size))),
            chains: Mutex::new((0..size).map(|_| Chain::new(&plugins)).collect()),
            plugins,
        }
    }

    /// A new `source.concurrency`.
    pub(crate) fn resize(&self, concurrency: usize) {
        match &self.aimd {
            Some(aimd) => {
                let mut aimd = lock(aimd);
                aimd.set_ceiling(concurrency);
                self.set_size(aimd.limit());
            }
            None => self.set_size(concurrency),
        }
    }

    /// What an answer says of the target's load: throttled or not.
    pub(crate) fn answered(&self, throttled: bool) {
        let Some(aimd) = &self.aimd else {
            return;
        };
        let mut aimd = lock(aimd);
        if throttled {
            aimd.throttled();
        } else {
            aimd.calm();
        }
        self.set_size(aimd.limit());
    }

    /// Batches allowed in flight now.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.size.load(Ordering::SeqCst)
    }

    /// Allows `size` batches at once; batches in flight beyond it finish first.
    fn set_size(&self, size: usize) {
        if self.size.load(Ordering::SeqCst) == size {
            return;
        }
        metrics::concurrency_limit(size);
        let mut debt = self
            .debt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.size.swap(size, Ordering::SeqCst);
        if size > old {
            // Raising first cancels what a lowering still owes.
            let grow = size - old;
            let cancelled = grow.min(*debt);
            *debt -= cancelled;
            self.permits.add_permits(grow - cancelled);
        } else if size < old {
            let shrink = old - size;
            let retired = self.permits.forget_permits(shrink);
            *debt += shrink - retired;
        }
    }

    /// Permits in circulation: free ones plus those held, less the debt.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.permits.available_permits()
    }

    #[expect(clippy::expect_used, reason = "the pool never closes its semaphore")]
    pub(crate) async fn acquire(&self) -> (OwnedSemaphorePermit, Chain) {
        let permit = loop {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("the pool is never closed");
            let mut debt = self
                .debt
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *debt == 0 {
                break permit;
            }
            *debt -= 1;
            permit.forget();
        };
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
        self.chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The plugins' names, for a failure that is no one plugin's.
    pub(crate) fn names(&self) -> String {
        let names: Vec<&str> = self.plugins.iter().map(|p| p.name()).collect();
        names.join(",")
    }
}

/// A lock that a panic elsewhere while it was held leaves usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lowering_then_raising_concurrency_keeps_every_permit() {
        let pool = ChainPool::new(Vec::new(), 6, false);
        // Four batches in flight, then concurrency 2, then 6 again.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await);
        }
        pool.resize(2);
        assert_eq!(
            pool.available(),
            0,
            "the two free permits are retired at once"
        );
        pool.resize(6);
        drop(held);
        assert_eq!(pool.available(), 6);
        // Lowering while all are free retires them at once.
        pool.resize(1);
        assert_eq!(pool.available(), 1);
        pool.resize(3);
        assert_eq!(pool.available(), 3);
    }

    #[tokio::test]
    async fn a_lowered_pool_admits_no_more_than_its_new_size() {
        let pool = ChainPool::new(Vec::new(), 3, false);
        let first = pool.acquire().await;
        let second = pool.acquire().await;
        pool.resize(1);
        drop(first);
        drop(second);
        let _only = pool.acquire().await;
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), pool.acquire());
        assert!(next.await.is_err(), "a second batch must wait");
    }

    #[tokio::test]
    async fn throttling_takes_permits_away_and_calm_gives_them_back() {
        let pool = ChainPool::new(Vec::new(), 8, true);
        pool.answered(true);
        assert_eq!((pool.size(), pool.available()), (4, 4));
        // A lowered ceiling still bounds it; a raised one is grown to.
        pool.resize(2);
        assert_eq!(pool.available(), 2);
        pool.resize(8);
        assert_eq!(pool.available(), 2);
        for _ in 0..100 {
            pool.answered(false);
        }
        assert_eq!((pool.size(), pool.available()), (8, 8));
        let fixed = ChainPool::new(Vec::new(), 8, false);
        fixed.answered(true);
        assert_eq!(fixed.available(), 8, "adaptive concurrency off");
    }
}
