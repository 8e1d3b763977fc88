//! The circuit breaker: when the target is down (unreachable, timing out,
//! answering 5xx that is not throttling) for `failures` answers in a row,
//! requests stop going out. Every `probe_interval` one request is let
//! through as a probe; its success closes the breaker, its failure keeps it
//! open. Requests held meanwhile keep their records: nothing is retried to
//! exhaustion or dead-lettered because the target is down, and the held
//! batches hold their permits, so the source pauses as the buffer fills.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::invoke::Verdict;
use crate::metrics;
use crate::metrics::http::Readiness;

/// Whether the breaker lets requests through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Requests go out; consecutive target-down answers are counted.
    Closed {
        /// Target-down answers in a row.
        failing: u32,
    },
    /// No request goes out until `probe_at`; then one does.
    Open {
        /// When the next probe may go.
        probe_at: Instant,
    },
    /// One probe is out; the others wait for its answer.
    Probing,
}

/// What the breaker says to a request that wants to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it.
    Go,
    /// Send it as the probe.
    Probe,
    /// Wait until this instant (or a change), then ask again.
    Wait(Option<Instant>),
}

/// The breaker's settings: off when `failures` is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Target-down answers in a row that open the breaker.
    pub failures: u32,
    /// How often an open breaker probes.
    pub probe_interval: Duration,
}

/// The state machine, without waiting: `admit` before a request, `answered`
/// after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    settings: Settings,
    state: State,
}

impl Machine {
    /// A closed breaker.
    pub fn new(settings: Settings) -> Self {
        Machine {
            settings,
            state: State::Closed { failing: 0 },
        }
    }

    /// The state now.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether requests are held: open, or probing.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }

    /// Whether a request may go out at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Go,
            State::Open { probe_at } if now >= probe_at => {
                self.state = State::Probing;
                Admission::Probe
            }
            State::Open { probe_at } => Admission::Wait(Some(probe_at)),
            State::Probing => Admission::Wait(None),
        }
    }

    /// The answer to a request, sent as a probe or not, at `now`. Returns
    /// whether the breaker is open after it (the caller holds the request
    /// and asks again rather than failing it).
    pub fn answered(&mut self, verdict: &Verdict, probe: bool, now: Instant) -> bool {
        let down = is_target_down(verdict);
        let open = State::Open {
            probe_at: now + self.settings.probe_interval,
        };
        self.state = match (self.state, down) {
            (_, false) if probe => State::Closed { failing: 0 },
            (State::Closed { .. }, false) => State::Closed { failing: 0 },
            (_, true) if probe => open,
            (State::Closed { failing }, true) => {
                let failing = failing + 1;
                if failing >= self.settings.failures {
                    tracing::error!(failures = failing, probe_in_ms = self.settings.probe_interval.as_millis() as u64, error = ?failure_of(verdict), "The target is down; the circuit breaker opens");
                    open
                } else {
                    State::Closed { failing }
                }
            }
            // An answer to a request sent before the breaker opened.
            (state, _) => state,
        };
        if probe && !self.is_open() {
            tracing::warn!("The target answered the probe; the circuit breaker closes");
        }
        down && self.is_open()
    }
}

/// A failure that says the target is down, not that records are wrong or
/// that it is busy: no answer, a timeout, or a 5xx that is not throttling.
pub fn is_target_down(verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Retry { failure, .. } => {
            !verdict.is_throttling() && failure.status.is_none_or(|s| (500..=599).contains(&s))
        }
        _ => false,
    }
}

fn failure_of(verdict: &Verdict) -> Option<String> {
    match verdict {
        Verdict::Retry { failure, .. } => Some(failure.to_string()),
        _ => None,
    }
}

/// The breaker shared by a connector's workers. Its state is in `/readyz`
/// (unready while open), `fcsink_circuit_open` and `fcsink status`.
pub struct Breaker {
    machine: Option<Mutex<Machine>>,
    changed: Notify,
    readiness: Option<Arc<Readiness>>,
}

impl Breaker {
    /// A closed breaker; one that never opens when `settings.failures` is 0.
    pub fn new(settings: Settings, readiness: Option<Arc<Readiness>>) -> Self {
        Breaker {
            machine: (settings.failures > 0).then(|| Mutex::new(Machine::new(settings))),
            changed: Notify::new(),
            readiness,
        }
    }

    fn lock(machine: &Mutex<Machine>) -> std::sync::MutexGuard<'_, Machine> {
        machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether requests are held now.
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.machine
            .as_ref()
            .is_some_and(|m| Self::lock(m).is_open())
    }

    /// Sends through the breaker: waits while it is open, and holds a
    /// request whose target-down answer leaves it open, to send it again
    /// when a probe may go. Returns the first answer the breaker lets
    /// through, or, when `cancel` ends the wait, a failure worth retrying
    /// (which the cancelled retry loop does not retry).
    pub async fn send<F, Fut>(&self, cancel: &CancellationToken, mut send: F) -> Verdict
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Verdict>,
    {
        let Some(machine) = &self.machine else {
            return send().await;
        };
        loop {
            let admission = Self::lock(machine).admit(Instant::now());
            let probe = match admission {
                Admission::Go => false,
                Admission::Probe => true,
                Admission::Wait(until) => {
                    // Register before looking again, so no change is missed.
                    let changed = self.changed.notified();
                    let until = until.map_or_else(
                        || futures::future::Either::Left(std::future::pending()),
                        |at| futures::future::Either::Right(tokio::time::sleep_until(at)),
                    );
                    tokio::select! {
                        () = changed => {}
                        () = until => {}
                        () = cancel.cancelled() => {
                            return Verdict::unsent("circuit-open", "the circuit breaker was open: the target is down");
                        }
                    }
                    continue;
                }
            };
            let verdict = send().await;
            let (held, open) = {
                let mut machine = Self::lock(machine);
                let held = machine.answered(&verdict, probe, Instant::now());
                (held, machine.is_open())
            };
            self.changed.notify_waiters();
            metrics::circuit_open(open);
            if let Some(readiness) = &self.readiness {
                readiness.set_circuit_open(open);
            }
            if !held {
                return verdict;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::{Failure, Response};

    const SETTINGS: Settings = Settings {
        failures: 3,
        probe_interval: Duration::from_secs(10),
    };

    fn down() -> Verdict {
        Verdict::Retry {
            failure: Failure {
                code: "network".into(),
                message: "connection refused".into(),
                status: None,
            },
            after: None,
        }
    }

    fn ok() -> Verdict {
        Verdict::Delivered(Response {
            status: 200,
            body: Vec::new(),
            duplicate: false,
        })
    }

    #[test]
    fn what_counts_as_the_target_down() {
        assert!(is_target_down(&down()));
        let status = |status, code: &str| Verdict::Retry {
            failure: Failure {
                code: code.into(),
                message: String::new(),
                status: Some(status),
            },
            after: None,
        };
        assert!(is_target_down(&status(500, "InternalServerError")));
        assert!(is_target_down(&status(502, "http-502")));
        assert!(
            !is_target_down(&status(503, "ResourceThrottled")),
            "throttling"
        );
        assert!(!is_target_down(&status(429, "http-429")), "throttling");
        assert!(
            !is_target_down(&status(200, "UnhandledInvocationError")),
            "the records' fault"
        );
        assert!(!is_target_down(&ok()));
    }

    #[test]
    fn opens_after_failures_in_a_row_and_probes_once_per_interval() {
        let t0 = Instant::now();
        let mut m = Machine::new(SETTINGS);
        assert!(!m.answered(&down(), false, t0));
        assert!(!m.answered(&ok(), false, t0), "a success resets the count");
        assert!(!m.answered(&down(), false, t0));
        assert!(!m.answered(&down(), false, t0));
        assert!(
            m.answered(&down(), false, t0),
            "the third in a row opens it"
        );
        assert_eq!(
            m.admit(t0),
            Admission::Wait(Some(t0 + SETTINGS.probe_interval))
        );
        let later = t0 + SETTINGS.probe_interval;
        assert_eq!(m.admit(later), Admission::Probe);
        assert_eq!(m.admit(later), Admission::Wait(None), "one probe at a time");
        assert!(
            m.answered(&down(), true, later),
            "a failed probe keeps it open"
        );
        assert_eq!(
            m.admit(later),
            Admission::Wait(Some(later + SETTINGS.probe_interval))
        );
        let again = later + SETTINGS.probe_interval;
        assert_eq!(m.admit(again), Admission::Probe);
        assert!(!m.answered(&ok(), true, again));
        assert_eq!(m.state(), State::Closed { failing: 0 });
        assert_eq!(m.admit(again), Admission::Go);
    }

    #[test]
    fn answers_of_requests_sent_before_it_opened_change_nothing() {
        let t0 = Instant::now();
        let mut m = Machine::new(SETTINGS);
        for _ in 0..3 {
            m.answered(&down(), false, t0);
        }
        let open = m.state();
        assert!(m.answered(&down(), false, t0), "held, to be sent again");
        assert!(
            !m.answered(&ok(), false, t0),
            "not a probe: passes, closes nothing"
        );
        assert_eq!(m.state(), open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_request_is_sent_again_as_the_probe_and_delivers() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let breaker = Breaker::new(SETTINGS, None);
        // The target is down for four calls, then up.
        let calls = AtomicU32::new(0);
        let target = || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 4 {
                down()
            } else {
                ok()
            }
        };
        let started = Instant::now();
        // The first two failures pass to the retry loop.
        assert_eq!(
            breaker.send(&CancellationToken::new(), target).await,
            down()
        );
        assert_eq!(
            breaker.send(&CancellationToken::new(), target).await,
            down()
        );
        // The third opens the breaker and is held: it goes again as the
        // probe at 10 s (down), and at 20 s (up).
        assert_eq!(breaker.send(&CancellationToken::new(), target).await, ok());
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(started.elapsed(), 2 * SETTINGS.probe_interval);
        assert!(!breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn an_off_breaker_passes_every_answer() {
        let breaker = Breaker::new(
            Settings {
                failures: 0,
                ..SETTINGS
            },
            None,
        );
        for _ in 0..10 {
            assert_eq!(
                breaker
                    .send(&CancellationToken::new(), || async { down() })
                    .await,
                down()
            );
        }
        assert!(!breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait_of_a_held_request() {
        let breaker = Breaker::new(SETTINGS, None);
        let cancel = CancellationToken::new();
        for _ in 0..2 {
            breaker.send(&cancel, || async { down() }).await;
        }
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.cancel();
        });
        let started = Instant::now();
        let verdict = breaker.send(&cancel, || async { down() }).await;
        assert!(
            matches!(verdict, Verdict::Retry { ref failure, .. } if failure.code == "circuit-open"),
            "{verdict:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
