//! `[batch]`: when a batch is flushed and how large a request may be.

use super::*;

/// The request size limit of `target` in `mode` when `batch.max_request_bytes` is unset.
pub(crate) fn default_request_bytes(target: &TargetSettings, mode: SendMode) -> usize {
    match (target, mode) {
        (TargetSettings::Lambda(_), SendMode::Sync) => LAMBDA_SYNC_REQUEST_BYTES,
        (TargetSettings::Lambda(_), SendMode::Async) => LAMBDA_ASYNC_REQUEST_BYTES,
        (_, SendMode::Sync) => DEFAULT_SYNC_REQUEST_BYTES,
        (_, SendMode::Async) => DEFAULT_ASYNC_REQUEST_BYTES,
    }
}

pub(super) fn batch(raw: &RawBatch, target: &TargetSettings) -> Result<BatchSettings> {
    let default_bytes = default_request_bytes(target, target.send_mode());
    Ok(BatchSettings {
        max_records: runtime::BATCH_SIZE.read(raw.size, DEFAULT_BATCH_SIZE)?,
        max_bytes: int_in(
            "batch.max_request_bytes",
            raw.max_request_bytes,
            default_bytes,
            1024..=MAX_REQUEST_BYTES as i64,
        )?,
        linger: Duration::from_millis(
            runtime::BATCH_LINGER_MS.read(raw.linger_ms, DEFAULT_LINGER.as_millis() as u64)?,
        ),
    })
}
