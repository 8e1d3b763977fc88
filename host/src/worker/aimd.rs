//! Adaptive concurrency: how many requests may be in flight when the target
//! throttles. Additive increase, multiplicative decrease (as TCP does): a
//! throttled answer halves the limit, a window of answers without one (as
//! many as the limit) raises it by one, never past `source.concurrency`.
//! After a halving, calm answers first regain the ground up to just below
//! where the throttle struck, one place per answer (TCP CUBIC's fast climb
//! back towards its last maximum): halving alone left a function with a
//! tight threshold at 85% of it (BENCHMARKS.md, Delivery control), while
//! the probing past the threshold stays one place per window.
//! The limit counts requests at the target, not batches: a batch waiting
//! out a retry's backoff holds no request's place.

use std::sync::Mutex;

use tokio::sync::OwnedSemaphorePermit;

use super::lock;
use super::permits::Permits;
use crate::metrics;

/// The limit and what it has seen since it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aimd {
    limit: usize,
    /// `source.concurrency`: the most the limit may reach.
    ceiling: usize,
    /// Answers without throttling since the limit last changed.
    calm: usize,
    /// Answers since the limit was last halved: requests already in flight
    /// then were sent under the old limit, and their throttling is not
    /// news.
    since_halved: usize,
    /// Throttling brought the limit down, and calm answers have not yet
    /// brought it back to the ceiling.
    lowered: bool,
    /// Just below the limit the last throttle struck at: calm answers
    /// regain places one each up to here.
    regain_to: usize,
}

impl Aimd {
    /// Starts at the ceiling: nothing says the target cannot take it.
    pub(crate) fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Aimd {
            limit: ceiling,
            ceiling,
            calm: 0,
            since_halved: usize::MAX,
            lowered: false,
            regain_to: 0,
        }
    }

    /// Requests allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A new `source.concurrency`. A limit throttling lowered stays below
    /// it and grows towards it as answers allow; otherwise it follows.
    pub(crate) fn set_ceiling(&mut self, ceiling: usize) {
        self.ceiling = ceiling.max(1);
        self.limit = if self.lowered {
            self.limit.min(self.ceiling)
        } else {
            self.ceiling
        };
    }

    /// An answer that was not throttled.
    pub(crate) fn calm(&mut self) {
        self.since_halved = self.since_halved.saturating_add(1);
        self.calm += 1;
        let regaining = self.limit < self.regain_to.min(self.ceiling);
        if (regaining || self.calm >= self.limit) && self.limit < self.ceiling {
            self.limit += 1;
            self.calm = 0;
            self.lowered = self.limit < self.ceiling;
        }
    }

    /// A throttled answer.
    pub(crate) fn throttled(&mut self) {
        self.since_halved = self.since_halved.saturating_add(1);
        self.calm = 0;
        if self.since_halved > self.limit {
            self.regain_to = self.limit.saturating_sub(1);
            self.limit = (self.limit / 2).max(1);
            self.since_halved = 0;
            self.lowered = true;
        }
    }
}

/// The places for requests in flight: `source.concurrency` of them, or as
/// many as [`Aimd`] allows when `delivery.adaptive_concurrency` is on.
pub(crate) struct RequestLimit {
    places: Permits,
    /// `None` when adaptive concurrency is off.
    aimd: Option<Mutex<Aimd>>,
}

impl RequestLimit {
    pub(crate) fn new(concurrency: usize, adaptive: bool) -> Self {
        metrics::concurrency_limit(concurrency);
        RequestLimit {
            places: Permits::new(concurrency),
            aimd: adaptive.then(|| Mutex::new(Aimd::new(concurrency))),
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

    /// Waits for a place for one request, held until its answer.
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
        self.places.acquire().await
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

    fn set_size(&self, size: usize) {
        if self.places.set_size(size) {
            metrics::concurrency_limit(size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_halves_the_limit_once_per_window() {
        let mut aimd = Aimd::new(12);
        aimd.throttled();
        assert_eq!(aimd.limit(), 6);
        // The other requests in flight under 12 throttle too: no news.
        for _ in 0..6 {
            aimd.throttled();
        }
        assert_eq!(aimd.limit(), 6);
        // A throttle after a window of answers under 6 halves again.
        aimd.throttled();
        assert_eq!(aimd.limit(), 3);
        for _ in 0..10 {
            for _ in 0..4 {
                aimd.throttled();
            }
        }
        assert_eq!(aimd.limit(), 1, "never below one");
    }

    #[test]
    fn calm_answers_regain_up_to_below_the_throttle_then_add_one_per_window() {
        let mut aimd = Aimd::new(16);
        aimd.set_ceiling(8);
        // The throttle struck at 8.
        aimd.throttled();
        assert_eq!(aimd.limit(), 4);
        // One place per calm answer up to 7, just below where it struck.
        for expected in [5, 6, 7] {
            aimd.calm();
            assert_eq!(aimd.limit(), expected);
        }
        // Then a window (as many answers as the limit) per place.
        for _ in 0..6 {
            aimd.calm();
        }
        assert_eq!(aimd.limit(), 7, "a window is as many answers as the limit");
        aimd.calm();
        assert_eq!(aimd.limit(), 8);
        for _ in 0..1000 {
            aimd.calm();
        }
        assert_eq!(aimd.limit(), 8, "never past the ceiling");
    }

    #[test]
    fn the_ceiling_bounds_the_limit_both_ways() {
        let mut aimd = Aimd::new(4);
        aimd.set_ceiling(10);
        assert_eq!(aimd.limit(), 10, "unthrottled, the limit follows at once");
        aimd.throttled();
        assert_eq!(aimd.limit(), 5);
        aimd.set_ceiling(3);
        assert_eq!(aimd.limit(), 3);
        aimd.set_ceiling(20);
        assert_eq!(aimd.limit(), 3, "once throttled, it grows back by answers");
        assert_eq!(Aimd::new(0).limit(), 1);
    }

    #[tokio::test]
    async fn throttling_takes_places_away_and_calm_gives_them_back() {
        let limit = RequestLimit::new(8, true);
        limit.answered(true);
        assert_eq!((limit.places.size(), limit.places.available()), (4, 4));
        // A lowered ceiling still bounds it; a raised one is grown to.
        limit.resize(2);
        assert_eq!(limit.places.available(), 2);
        limit.resize(8);
        assert_eq!(limit.places.available(), 2);
        for _ in 0..100 {
            limit.answered(false);
        }
        assert_eq!((limit.places.size(), limit.places.available()), (8, 8));
        let fixed = RequestLimit::new(8, false);
        fixed.answered(true);
        assert_eq!(fixed.places.available(), 8, "adaptive concurrency off");
        fixed.resize(3);
        assert_eq!(fixed.places.available(), 3, "it follows source.concurrency");
    }
}
