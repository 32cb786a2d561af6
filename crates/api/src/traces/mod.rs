//! Traces: OTLP and Zipkin intake, and the read APIs of Tempo, Jaeger and Zipkin over one
//! trace store, so Grafana's Tempo and Jaeger data sources, Jaeger's UI and Zipkin's clients
//! work unchanged.
//!
//! Every span accepted goes through [`TraceService::write`]: into the store (a 2xx means it is
//! in the WAL) and, once stored, into the RED-metrics generator, which therefore counts every
//! span the store holds exactly once. The server collects the generator's series into the
//! metric store on a timer ([`TraceService::collect`]).
//!
//! The one decision to know: `GET /api/traces/{id}` is both Tempo's v1 and Jaeger's trace by
//! id. It answers Tempo's protobuf when the request accepts `application/protobuf` (what
//! Grafana's Tempo data source sends), and Jaeger's JSON otherwise; Tempo's JSON is at
//! `/api/v2/traces/{id}`, which Grafana uses for Tempo 2.x.

mod deps;
pub(crate) mod exemplars;
mod intake;
mod jaeger;
mod jaeger_metrics;
mod jaeger_v3;
#[cfg(test)]
mod read_tests;
mod render;
mod services;
mod tempo;
mod tempo_metrics;
mod zipkin;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use telltale_model::{SpanBatch, TraceId, WriteBatch};
use telltale_spanmetrics::SpanMetrics;
use telltale_tracestore::{TraceDb, WriteStats};

use crate::access::at;
use crate::error::error_chain;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// A tenant's traces: the store and the RED-metrics generator fed by its writes.
pub struct TraceService {
    db: Arc<TraceDb>,
    generator: Mutex<SpanMetrics>,
}

impl std::fmt::Debug for TraceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceService").field("db", &self.db).finish_non_exhaustive()
    }
}

impl TraceService {
    /// A service over `db` whose writes feed a generator with `opts`.
    pub fn new(db: Arc<TraceDb>, opts: telltale_spanmetrics::Options) -> Self {
        Self { db, generator: Mutex::new(SpanMetrics::new(opts)) }
    }

    /// The store.
    pub fn db(&self) -> &Arc<TraceDb> {
        &self.db
    }

    /// Stores `batch`, then counts it in the RED metrics. Synchronous: call it on the blocking
    /// pool.
    pub fn write(&self, batch: &SpanBatch, now_ms: i64) -> Result<WriteStats, ApiError> {
        let stats = self.db.write(batch, now_ms)?;
        self.generator.lock().observe(batch, now_ms.saturating_mul(1_000_000));
        Ok(stats)
    }

    /// The RED metrics and service graph as of `now_ms`, to write into the metric store.
    pub fn collect(&self, now_ms: i64) -> WriteBatch {
        self.generator.lock().collect(now_ms)
    }

    /// Runs `f` with the generator (exemplars, quantiles, overflow warnings).
    pub(crate) fn with_generator<T>(&self, f: impl FnOnce(&SpanMetrics) -> T) -> T {
        f(&self.generator.lock())
    }
}

impl From<telltale_tracestore::Error> for ApiError {
    fn from(e: telltale_tracestore::Error) -> Self {
        Self::new(e.kind(), error_chain(&e))
    }
}

impl From<telltale_traceql::Error> for ApiError {
    fn from(e: telltale_traceql::Error) -> Self {
        Self::bad_input(e.to_string())
    }
}

impl Scoped {
    /// The tenant's trace service (blocking the first time a tenant is named).
    pub(crate) fn traces(&self) -> Result<Arc<TraceService>, ApiError> {
        match self.tenant_traces()? {
            Some(t) => Ok(t),
            None => self.default_traces(),
        }
    }

    /// Runs `f` with the tenant's trace service on the blocking pool.
    pub(crate) async fn blocking_traces<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Scoped, &TraceService) -> Result<T, ApiError> + Send + 'static,
    {
        self.on_blocking_pool(move |me| f(me, &*me.traces()?)).await
    }
}

/// A trace id from a path or parameter: 1 to 32 hex digits (64-bit ids are zero-padded).
pub(crate) fn parse_trace_id(s: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(s.trim())
        .ok_or_else(|| ApiError::bad_input(format!("invalid trace id {s:?}: want 1 to 32 hex digits")))
}

/// The trace routes: intake, Tempo, Jaeger.
pub(crate) fn router() -> Router<AppState> {
    let intake = Router::new()
        .route(at("/v1/traces"), post(intake::otlp))
        .route(at("/otlp/v1/traces"), post(intake::otlp))
        .route(at("/api/v2/spans"), post(intake::zipkin));
    let tempo = Router::new()
        .route(at("/api/echo"), get(tempo::echo))
        .route(at("/api/status/buildinfo"), get(tempo::buildinfo))
        .route(at("/api/v2/traces/{id}"), get(tempo::trace_v2))
        .route(at("/api/search"), get(tempo::search))
        .route(at("/api/search/tags"), get(tempo::tags))
        .route(at("/api/v2/search/tags"), get(tempo::tags_v2))
        .route(at("/api/search/tag/{tag}/values"), get(tempo::tag_values))
        .route(at("/api/v2/search/tag/{tag}/values"), get(tempo::tag_values_v2))
        .layer(axum::middleware::map_response(|r| async move { crate::error::reshape(crate::Shape::Text, r) }));
    let jaeger = Router::new()
        .route(at("/api/traces/{id}"), get(jaeger::trace_or_tempo))
        .route(at("/api/traces"), get(jaeger::search))
        .route(at("/api/services"), get(jaeger::services))
        .route(at("/api/services/{service}/operations"), get(jaeger::service_operations))
        .route(at("/api/operations"), get(jaeger::operations))
        .layer(axum::middleware::map_response(|r| async move { crate::error::reshape(crate::Shape::Jaeger, r) }));
    let own = Router::new().route(at("/api/v1/services/latency"), get(services::latency));
    let tempo_metrics = Router::new()
        .route(at("/api/metrics/query_range"), get(tempo_metrics::query_range))
        .route(at("/api/metrics/query"), get(tempo_metrics::query_instant))
        .layer(axum::middleware::map_response(|r| async move { crate::error::reshape(crate::Shape::Text, r) }));
    let jaeger_more = Router::new()
        .route(at("/api/dependencies"), get(deps::jaeger))
        .route(at("/api/metrics/latencies"), get(jaeger_metrics::latencies))
        .route(at("/api/metrics/calls"), get(jaeger_metrics::calls))
        .route(at("/api/metrics/errors"), get(jaeger_metrics::errors))
        .route(at("/api/metrics/minstep"), get(jaeger_metrics::minstep))
        .layer(axum::middleware::map_response(|r| async move { crate::error::reshape(crate::Shape::Jaeger, r) }));
    let jaeger_v3 = Router::new()
        .route(at("/api/v3/services"), get(jaeger_v3::services))
        .route(at("/api/v3/operations"), get(jaeger_v3::operations))
        .route(at("/api/v3/traces"), get(jaeger_v3::search))
        .route(at("/api/v3/traces/{id}"), get(jaeger_v3::trace))
        .layer(axum::middleware::map_response(|r| async move { jaeger_v3::reshape(r) }));
    // GET /api/v2/spans joins the intake's POST on the same path (axum merges the methods).
    let zipkin = Router::new()
        .route(at("/api/v2/services"), get(zipkin::services))
        .route(at("/api/v2/spans"), get(zipkin::span_names))
        .route(at("/api/v2/remoteServices"), get(zipkin::remote_services))
        .route(at("/api/v2/traces"), get(zipkin::traces))
        .route(at("/api/v2/trace/{id}"), get(zipkin::trace))
        .route(at("/api/v2/dependencies"), get(deps::zipkin))
        .layer(axum::middleware::map_response(|r| async move { crate::error::reshape(crate::Shape::Text, r) }));
    intake.merge(tempo).merge(jaeger).merge(own).merge(tempo_metrics).merge(jaeger_more).merge(jaeger_v3).merge(zipkin)
}
