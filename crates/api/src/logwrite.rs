//! The one pipeline every log write path shares: read the body (size-limited), decompress,
//! decode with a pure `telltale_ingest` decoder, admit it through the rate limits, write it
//! to the log store (a 2xx means it is in the WAL), count it, and offer it to live tails.

use axum::body::Body;
use axum::http::HeaderMap;
use telltale_model::LogBatch;
use telltale_storage::{LogStore, LogWriteStats};

use crate::body::{decompress, read_limited, Encoding};
use crate::state::Limits;
use crate::{ApiError, AppState};

/// The tenant of a request: Loki's `X-Scope-OrgID`, `fake` without one.
pub(crate) fn tenant(headers: &HeaderMap) -> String {
    headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("fake")
        .to_string()
}

/// Read, decompress, decode, admit, write.
pub(crate) async fn ingest_logs<F>(
    app: &AppState,
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
    let tenant = tenant(headers);
    let state = app.clone();
    app.blocking_logs(move |store| {
        let body = decompress(encoding, raw, limits.max_body_size)?;
        let batch = decode(&body, &limits)?;
        let stats = write_logs(&state, store, protocol, &tenant, &batch)?;
        Ok((stats, batch))
    })
    .await
}

/// Admits `batch` for `tenant` through the rate limits and writes it. Synchronous: call it
/// on the blocking pool.
pub(crate) fn write_logs(
    app: &AppState,
    store: &dyn LogStore,
    protocol: &'static str,
    tenant: &str,
    batch: &LogBatch,
) -> Result<LogWriteStats, ApiError> {
    let m = app.metrics();
    m.add_log_rejected("truncated", batch.truncated_lines);
    if batch.is_empty() {
        return Ok(LogWriteStats::default());
    }
    let limits = app.limits();
    if let Err(refused) = app.rates().admit(tenant, batch, &limits.log_rates, app.now_ms()) {
        m.add_log_rejected("rate_limited", batch.entry_count());
        return Err(ApiError::rate_limited(refused.0));
    }
    let stats = store.write_logs(batch)?;
    m.add_log_lines(protocol, stats.entries, stats.bytes);
    m.add_log_rejected("duplicate", stats.duplicates);
    m.add_log_rejected("too_old", stats.too_old);
    app.tail().publish(batch);
    Ok(stats)
}

impl AppState {
    /// Writes a log batch that did not come over HTTP (syslog listeners, file tailing) through
    /// the same limits and counters as the HTTP paths. Synchronous: call it on the blocking pool.
    pub fn write_logs(&self, protocol: &'static str, batch: &LogBatch) -> Result<LogWriteStats, ApiError> {
        let store = self.log_store()?;
        write_logs(self, store.as_ref(), protocol, "fake", batch)
    }
}
