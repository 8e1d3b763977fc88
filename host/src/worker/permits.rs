//! A semaphore whose size may change while its permits are held: lowering
//! it retires permits as they come back, raising it first cancels what a
//! lowering still owes.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::lock;

/// Up to `size` holders at once; `size` may change at any time.
pub(crate) struct Permits {
    semaphore: Arc<Semaphore>,
    /// Permits to retire as they come back after `set_size` lowered the
    /// size below the permits held.
    debt: Mutex<usize>,
    size: AtomicUsize,
}

impl Permits {
    pub(crate) fn new(size: usize) -> Self {
        Permits {
            semaphore: Arc::new(Semaphore::new(size)),
            debt: Mutex::new(0),
            size: AtomicUsize::new(size),
        }
    }

    /// Allows `size` holders at once; those beyond it finish first.
    /// Returns whether the size changed.
    pub(crate) fn set_size(&self, size: usize) -> bool {
        if self.size.load(Ordering::SeqCst) == size {
            return false;
        }
        let mut debt = lock(&self.debt);
        let old = self.size.swap(size, Ordering::SeqCst);
        if size > old {
            let grow = size - old;
            let cancelled = grow.min(*debt);
            *debt -= cancelled;
            self.semaphore.add_permits(grow - cancelled);
        } else if size < old {
            let shrink = old - size;
            let retired = self.semaphore.forget_permits(shrink);
            *debt += shrink - retired;
        }
        old != size
    }

    /// How many may hold a permit at once now.
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::SeqCst)
    }

    /// Permits free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Waits for a permit; it is given back when dropped.
    #[expect(clippy::expect_used, reason = "the semaphore is never closed")]
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
        loop {
            let permit = self
                .semaphore
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let mut debt = lock(&self.debt);
            if *debt == 0 {
                return permit;
            }
            *debt -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lowering_then_raising_the_size_keeps_every_permit() {
        let permits = Permits::new(6);
        // Four held, then a size of 2, then 6 again.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(permits.acquire().await);
        }
        permits.set_size(2);
        assert_eq!(
            permits.available(),
            0,
            "the two free permits are retired at once"
        );
        permits.set_size(6);
        drop(held);
        assert_eq!(permits.available(), 6);
        // Lowering while all are free retires them at once.
        permits.set_size(1);
        assert_eq!(permits.available(), 1);
        permits.set_size(3);
        assert_eq!(permits.available(), 3);
    }

    #[tokio::test]
    async fn a_lowered_size_admits_no_more_holders() {
        let permits = Permits::new(3);
        let first = permits.acquire().await;
        let second = permits.acquire().await;
        permits.set_size(1);
        drop(first);
        drop(second);
        let _only = permits.acquire().await;
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), permits.acquire());
        assert!(next.await.is_err(), "a second holder must wait");
    }
}
