//! Locks whose state stays usable after a panic elsewhere.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A lock that a panic elsewhere while it was held leaves usable (the
/// worker's and its parts' shared state: a partition's unhandled offsets,
/// the permits, the adaptive limit, the idle plugin chains; what librdkafka's
/// callbacks report).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
