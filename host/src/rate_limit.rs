//! `delivery.max_requests_per_second`: the requests (attempts, retries and
//! probes alike) a connector sends, over all its instances. Each instance
//! takes the share of its partitions: with 12 partitions over three
//! instances holding 4 each, each sends a third of the budget. An instance
//! counts its own partitions at each rebalance and all of them from
//! librdkafka's statistics (every partition of the subscribed topics), so no
//! instance needs to hear from the others. Requests are spaced evenly (a generic cell rate algorithm with no
//! burst), so that any second holds the budget, not only the average.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// This instance's partitions, as of the last rebalance, and all of the
/// connector's, as librdkafka's statistics last counted them.
#[derive(Debug, Default)]
pub struct Share {
    assigned: AtomicU32,
    total: AtomicU32,
}

impl Share {
    /// The partitions assigned here, after a rebalance.
    pub fn set_assigned(&self, assigned: usize) {
        self.assigned.store(
            u32::try_from(assigned).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }

    /// The partitions of the subscribed topics, from the latest statistics.
    pub fn set_total(&self, total: u32) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// The fraction of the budget this instance may use: its partitions
    /// over all of them, or all of it until the first statistics. An
    /// instance between a revoke and an assignment, or one finishing the
    /// batches of partitions it lost, has no partitions of its own: it gets
    /// one partition's share, never a schedule that holds every later
    /// request back.
    pub fn fraction(&self) -> f64 {
        let (assigned, total) = (
            self.assigned.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        if total == 0 {
            1.0
        } else {
            f64::from(assigned.clamp(1, total)) / f64::from(total)
        }
    }
}

/// The connector's budget of requests per second.
#[derive(Debug)]
pub struct RateLimit {
    per_second: Option<u32>,
    share: std::sync::Arc<Share>,
    /// When the next request may go (its theoretical arrival time).
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// A budget of `per_second` for the whole connector (`None`: no limit),
    /// shared by partitions as `share` counts them.
    pub fn new(per_second: Option<u32>, share: std::sync::Arc<Share>) -> Self {
        RateLimit {
            per_second,
            share,
            next: Mutex::new(None),
        }
    }

    /// The counts the budget is shared by.
    pub fn share(&self) -> &Share {
        &self.share
    }

    /// The time between two requests of this instance now, if limited.
    fn interval(&self) -> Option<Duration> {
        let rate = f64::from(self.per_second?) * self.share.fraction();
        Some(Duration::from_secs_f64(1.0 / rate))
    }

    /// Waits for this request's turn. Turns are handed out in the order
    /// asked, each `interval` after the last.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval() else {
            return;
        };
        let at = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_budget() {
        let limit = RateLimit::new(Some(10), Arc::default());
        let started = Instant::now();
        for _ in 0..21 {
            limit.acquire().await;
        }
        // The first at once, then one every 100 ms.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_sends_its_partitions_share() {
        let share = Arc::new(Share::default());
        share.set_assigned(3);
        share.set_total(12);
        let limit = RateLimit::new(Some(40), share.clone());
        let started = Instant::now();
        for _ in 0..11 {
            limit.acquire().await;
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(1),
            "a quarter of 40/s"
        );
        assert!((share.fraction() - 0.25).abs() < 1e-9);
        // Between a revoke and an assignment: one partition's share, not a
        // pause that the schedule would carry on.
        share.set_assigned(0);
        assert_eq!(limit.interval(), Some(Duration::from_millis(300)));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_budget_nothing_waits() {
        let limit = RateLimit::new(None, Arc::default());
        let started = Instant::now();
        for _ in 0..1000 {
            limit.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_for_a_burst() {
        let limit = RateLimit::new(Some(10), Arc::default());
        limit.acquire().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let started = Instant::now();
        for _ in 0..3 {
            limit.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }
}
