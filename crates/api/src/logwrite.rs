//! The one pipeline every log write path shares: read the body (size-limited), decompress,
//! decode with a pure `telltale_ingest` decoder, admit it through the rate limits, write it
//! to the log store (a 2xx means it is in the WAL), count it, and offer it to live tails.

use axum::body::Body;
use axum::http::HeaderMap;
use telltale_model::LogBatch;
use telltale_storage::{LogStore, LogWriteStats};

use crate::body::{decompress, read_limited, Encoding};
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// Read, decompress, decode, admit, write.
pub(crate) async fn ingest_logs<F>(
    app: &Scoped,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
    protocol: &'static str,
    decode: F,
) -> Result<(LogWriteStats, LogBatch), ApiError>
where
    F: FnOnce(&[u8], &Limits) -> Result<LogBatch, ApiError> + Send + 'static,
{
    let limits = app.limits();
    let raw = read_limited(headers, body, limits.max_body_size).await?;
    let state = app.clone();
    app.blocking_logs(move |store| {
        let body = decompress(encoding, raw, limits.max_body_size)?;
        let batch = decode(&body, &limits)?;
        let stats = write_logs(&state, store, protocol, &batch)?;
        Ok((stats, batch))
    })
    .await
}

/// Admits `batch` through the tenant's rate limits and writes it. Synchronous: call it on the
/// blocking pool.
pub(crate) fn write_logs(
    app: &Scoped,
    store: &dyn LogStore,
    protocol: &'static str,
    batch: &LogBatch,
) -> Result<LogWriteStats, ApiError> {
    let m = app.metrics();
    m.add_log_rejected("truncated", batch.truncated_lines);
    if batch.is_empty() {
        return Ok(LogWriteStats::default());
    }
    let limits = app.limits();
    if let Err(refused) = app.rates().admit(app.tenant(), batch, &limits.log_rates, app.now_ms()) {
        m.add_log_rejected("rate_limited", batch.entry_count());
        return Err(ApiError::rate_limited(refused.0));
    }
    let stats = store.write_logs(batch)?;
    m.add_log_lines(protocol, stats.entries, stats.bytes);
    m.add_log_rejected("duplicate", stats.duplicates);
    m.add_log_rejected("too_old", stats.too_old);
    app.tail().publish(app.tenant(), batch);
    Ok(stats)
}

impl AppState {
    /// Writes a log batch that did not come over HTTP (syslog listeners, file tailing) through
    /// the same limits and counters as the HTTP paths, into the default tenant. Synchronous:
    /// call it on the blocking pool.
    pub fn write_logs(&self, protocol: &'static str, batch: &LogBatch) -> Result<LogWriteStats, ApiError> {
        let store = self.default_log_store()?;
        write_logs(&Scoped::default_tenant(self), store.as_ref(), protocol, batch)
    }
}
