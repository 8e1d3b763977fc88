//! Reading a request body within a payload limit, the way every endpoint does.

use std::future::poll_fn;
use std::pin::Pin;

use axum::body::{Body, HttpBody};

/// After a payload passes its limit, read (and drop) at most this much more so the
/// client can finish sending and see the error instead of a reset connection.
const DRAIN_AFTER_LIMIT: usize = 64 * 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// It is longer than the limit.
    TooLarge,
    /// The connection failed while reading it.
    Unreadable(String),
}

/// Reads the whole body, or fails with [`BodyError::TooLarge`] once it passes `limit`
/// bytes.
pub async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut data = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(chunk.len());
        if total <= limit {
            data.extend_from_slice(&chunk);
        } else if total > limit.saturating_add(DRAIN_AFTER_LIMIT) {
            break;
        } else {
            data = Vec::new();
        }
    }
    if total > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(data)
}
