//! How a partition's worker ends, and why a partition stops.

use crate::invoke::Failure;
use crate::produce::Refused;

/// How a partition's worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Its input closed (shutdown) or it was revoked.
    Finished,
    /// A batch could not be handled; the partition stops, to start again
    /// at the failed batch's first offset `at`.
    Stopped {
        /// Why.
        why: Stop,
        /// The failed batch's first offset.
        at: i64,
    },
}

/// Why a partition stopped. Its failed batch is not committed either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A batch failed under `failure_policy = "stop"`.
    Policy(String),
    /// Kafka refused a dead letter or a result for good.
    Refused(Refused),
    /// The target kept failing (authentication, not found) for
    /// `delivery.target_failure_timeout_ms`; no record was at fault.
    Target(Failure),
    /// The worker panicked: a bug in fcsink, not in the records.
    Panic(String),
}

impl Stop {
    /// The `cause` label of `fcsink_partitions_stopped`, and its `code`.
    pub(crate) fn labels(&self) -> (&'static str, String) {
        match self {
            Stop::Policy(_) => ("failure_policy", String::new()),
            Stop::Refused(refused) => (refused.role.as_str(), refused.code_name()),
            Stop::Target(failure) => ("target", failure.code.clone()),
            Stop::Panic(_) => ("panic", String::new()),
        }
    }

    /// Why the partition's stop makes the instance unready (`/readyz`);
    /// `None` for a stop the failure policy asked for.
    pub(crate) fn unready_because(&self) -> Option<&'static str> {
        match self {
            Stop::Policy(_) => None,
            Stop::Refused(_) => Some("Kafka refused a write"),
            Stop::Target(_) => Some("the target kept failing (authentication or not found)"),
            Stop::Panic(_) => Some("fcsink's worker panicked"),
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Policy(why) => f.write_str(why),
            Stop::Refused(refused) => refused.fmt(f),
            Stop::Target(failure) => write!(
                f,
                "the target kept failing for delivery.target_failure_timeout_ms: {failure}"
            ),
            Stop::Panic(message) => write!(f, "the partition's worker panicked: {message}"),
        }
    }
}
