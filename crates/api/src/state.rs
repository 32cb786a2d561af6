//! `AppState`: what every handler shares. The store is set once it is open, so the server
//! can listen (and answer `/-/ready` with 503) while the store replays its WAL.

use std::sync::{Arc, OnceLock, RwLock};

use telltale_model::{ErrorKind, Timestamp, WriteBatch};
use telltale_storage::{LogStore, MetricStore, WriteStats};

use crate::metadata::MetadataRegistry;
use crate::metrics::Metrics;
use crate::ApiError;

/// Milliseconds since the epoch, injectable so tests are exact.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Re-reads the configuration and applies what can change live; returns a one-line summary
/// or the reason it failed. Provided by the binary, called by `POST /-/reload`.
pub type Reloader = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the write paths enforce and how they decode; replaced whole on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body accepted, in bytes, before and after decompression
    /// (`server.max_body_size`).
    pub max_body_size: u64,
    /// Per-request limits every decoder enforces (`limits:`).
    pub ingest: telltale_ingest::Limits,
    /// How OTLP metrics become series (`otlp:`).
    pub otlp: telltale_ingest::otlp::OtlpOptions,
    /// The OTLP decoder's limits, derived from [`Limits::ingest`] so one `limits:` section rules all.
    pub otlp_limits: telltale_ingest::otlp::OtlpLimits,
    /// PromQL's lookback, timeout and sample limits (`query:`).
    pub query: telltale_promql::EngineOptions,
    /// Per-request limits of the log write paths (`logs.limits`).
    pub logs: telltale_ingest::LogLimits,
    /// Per-tenant and per-stream ingestion rates and stream counts (`logs.rates`).
    pub log_rates: crate::ratelimit::LogRates,
    /// LogQL's limits (`logs.query`).
    pub logql: telltale_logql::EngineOptions,
    /// Per-span limits of the trace write paths (`traces.limits`).
    pub traces: telltale_ingest::otlp::TraceLimits,
}

impl Limits {
    /// Limits from the config's parts, the OTLP ones derived from `ingest`.
    pub fn new(max_body_size: u64, ingest: telltale_ingest::Limits, otlp: telltale_ingest::otlp::OtlpOptions) -> Self {
        let otlp_limits = telltale_ingest::otlp::OtlpLimits {
            max_samples_per_request: ingest.max_samples_per_request,
            max_labels_per_series: ingest.max_labels_per_series,
            max_label_name_length: ingest.max_label_name_length,
            max_label_value_length: ingest.max_label_value_length,
        };
        Self {
            max_body_size,
            ingest,
            otlp,
            otlp_limits,
            query: Default::default(),
            logs: Default::default(),
            log_rates: Default::default(),
            logql: Default::default(),
            traces: Default::default(),
        }
    }

    /// These limits with PromQL's options replaced.
    pub fn with_query(self, query: telltale_promql::EngineOptions) -> Self {
        Self { query, ..self }
    }

    /// These limits with the log limits, rates and LogQL options replaced.
    pub fn with_logs(
        self,
        logs: telltale_ingest::LogLimits,
        log_rates: crate::ratelimit::LogRates,
        logql: telltale_logql::EngineOptions,
    ) -> Self {
        Self { logs, log_rates, logql, ..self }
    }
}

impl Limits {
    /// These limits with the trace limits replaced.
    pub fn with_traces(self, traces: telltale_ingest::otlp::TraceLimits) -> Self {
        Self { traces, ..self }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(64 << 20, Default::default(), Default::default())
    }
}

/// Shared state of all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: OnceLock<Arc<dyn MetricStore>>,
    logs: OnceLock<Arc<dyn LogStore>>,
    traces: OnceLock<Arc<crate::TraceService>>,
    rates: crate::ratelimit::RateLimiter,
    sql: OnceLock<Arc<dyn crate::sql::SqlService>>,
    tail: crate::tail::TailHub,
    limits: RwLock<Arc<Limits>>,
    clock: Clock,
    metrics: Metrics,
    metadata: MetadataRegistry,
    reloader: OnceLock<Reloader>,
    runtime: RwLock<RuntimeInfo>,
    dashboards: OnceLock<Arc<telltale_dashboards::Store>>,
    config_yaml: RwLock<String>,
    targets: OnceLock<telltale_collect::scrape::Targets>,
    rules: telltale_alerting::Rules,
    alertmanager: telltale_alerting::am::Alertmanager,
    auth: OnceLock<Arc<crate::authn::Auth>>,
    receivers: OnceLock<Arc<crate::receivers::Receivers>>,
    tenants: crate::tenant::Tenants,
}

/// What `/api/v1/status/runtimeinfo` reports beyond the process's own facts.
#[derive(Debug, Clone, Default)]
pub struct RuntimeInfo {
    /// When this state was made (the server started), milliseconds since the epoch.
    pub start_time_ms: Timestamp,
    /// Whether the last reload succeeded (true before any).
    pub reload_config_success: bool,
    /// When the configuration was last loaded, milliseconds since the epoch.
    pub last_config_time_ms: Timestamp,
    /// The storage retention in force, as the configuration says it (`"15d"`).
    pub storage_retention: String,
}

impl AppState {
    /// A state without a store yet: data endpoints answer 503 until [`AppState::set_store`].
    pub fn new(limits: Limits, clock: Clock) -> Self {
        let inner = Inner {
            store: OnceLock::new(),
            logs: OnceLock::new(),
            traces: OnceLock::new(),
            rates: Default::default(),
            sql: OnceLock::new(),
            tail: Default::default(),
            limits: RwLock::new(Arc::new(limits)),
            clock,
            metrics: Metrics::default(),
            metadata: MetadataRegistry::default(),
            reloader: OnceLock::new(),
            runtime: RwLock::default(),
            dashboards: OnceLock::new(),
            config_yaml: RwLock::default(),
            targets: OnceLock::new(),
            rules: telltale_alerting::Rules::new(),
            alertmanager: telltale_alerting::am::Alertmanager::new(),
            auth: OnceLock::new(),
            receivers: OnceLock::new(),
            tenants: Default::default(),
        };
        let state = Self { inner: Arc::new(inner) };
        let now = state.now_ms();
        state.update_runtime(|r| {
            *r = RuntimeInfo { start_time_ms: now, reload_config_success: true, last_config_time_ms: now, ..r.clone() }
        });
        state
    }

    /// A state with `store` already open and the system clock; for tests and simple setups.
    pub fn with_store(store: Arc<dyn MetricStore>, limits: Limits) -> Self {
        let state = Self::new(limits, Arc::new(system_now_ms));
        state.set_store(store);
        state
    }

    /// Turns authentication on (credentials, scopes, the web config). Without it every request
    /// acts as an anonymous admin. Later calls are ignored.
    pub fn set_auth(&self, auth: Arc<crate::authn::Auth>) {
        let _ = self.inner.auth.set(auth);
    }

    /// Authentication, when configured.
    pub fn auth(&self) -> Option<Arc<crate::authn::Auth>> {
        self.inner.auth.get().cloned()
    }

    /// Makes the store available; the server is ready from now on. Later calls are ignored.
    pub fn set_store(&self, store: Arc<dyn MetricStore>) {
        let _ = self.inner.store.set(store);
    }

    /// Installs the function `POST /-/reload` and SIGHUP call; its outcome is recorded for
    /// `/api/v1/status/runtimeinfo`.
    pub fn set_reloader(&self, reloader: Reloader) {
        let state = Arc::downgrade(&self.inner);
        let recorded: Reloader = Arc::new(move || {
            let result = reloader();
            if let Some(inner) = state.upgrade() {
                let now = (inner.clock)();
                let mut r = inner.runtime.write().unwrap_or_else(|p| p.into_inner());
                r.reload_config_success = result.is_ok();
                if result.is_ok() {
                    r.last_config_time_ms = now;
                }
            }
            result
        });
        let _ = self.inner.reloader.set(recorded);
    }

    /// Changes the runtime facts (the binary sets the retention in force).
    pub fn update_runtime(&self, f: impl FnOnce(&mut RuntimeInfo)) {
        f(&mut self.inner.runtime.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The runtime facts.
    pub fn runtime(&self) -> RuntimeInfo {
        self.inner.runtime.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Metric family descriptions seen by the write paths.
    pub(crate) fn metadata(&self) -> &MetadataRegistry {
        &self.inner.metadata
    }

    /// Keeps receivers entered through the API in `receivers` (set once, before the first
    /// [`AppState::configure_alerting`]).
    pub fn set_receivers(&self, receivers: Arc<crate::receivers::Receivers>) {
        let _ = self.inner.receivers.set(receivers);
    }

    /// The stored receivers, if the binary set them up.
    pub(crate) fn receivers(&self) -> Option<Arc<crate::receivers::Receivers>> {
        self.inner.receivers.get().cloned()
    }

    /// Replaces the limits (on reload).
    pub fn set_limits(&self, limits: Limits) {
        *self.inner.limits.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(limits);
    }

    /// The limits in force.
    pub fn limits(&self) -> Arc<Limits> {
        self.inner.limits.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Now, in milliseconds.
    pub fn now_ms(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// The rule groups in force (the binary loads them and runs their evaluation).
    pub fn rules(&self) -> &telltale_alerting::Rules {
        &self.inner.rules
    }

    /// The notification pipeline (alerts, silences, routing); the binary configures it.
    pub fn alertmanager(&self) -> &telltale_alerting::am::Alertmanager {
        &self.inner.alertmanager
    }

    /// Every self-metric family: the registry's, the pipeline's, and the store's `stats`.
    pub fn families(&self, stats: &[telltale_storage::Stat]) -> Vec<crate::metrics::Family> {
        let mut f = self.metrics().families(stats);
        f.extend(crate::alertmanager::families(self));
        f
    }

    /// The self-metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The tenant of requests that name none (`auth.default_tenant`, else `default`).
    pub fn default_tenant(&self) -> String {
        self.auth().map_or_else(|| "default".to_string(), |a| a.default_tenant.clone())
    }

    /// Lets requests name other tenants: `opener` opens a tenant's stores the first time one
    /// is named. Without it, only the default tenant exists. Later calls are ignored.
    pub fn set_tenant_opener(&self, opener: crate::tenant::TenantOpener) {
        self.inner.tenants.set_opener(opener);
    }

    pub(crate) fn tenants(&self) -> &crate::tenant::Tenants {
        &self.inner.tenants
    }

    /// Every tenant's stores opened so far besides the default tenant's (for shutdown).
    pub fn open_tenants(&self) -> Vec<(String, crate::tenant::TenantStores)> {
        self.inner.tenants.all()
    }

    pub(crate) fn default_sql(&self) -> Option<Arc<dyn crate::sql::SqlService>> {
        self.inner.sql.get().cloned()
    }

    pub(crate) fn default_dashboards(&self) -> Option<Arc<telltale_dashboards::Store>> {
        self.inner.dashboards.get().cloned()
    }

    /// The default tenant's metric store, or 503 while it is still opening. Handlers reach
    /// stores through [`crate::Scoped`], which picks the request's tenant.
    pub fn default_store(&self) -> Result<Arc<dyn MetricStore>, ApiError> {
        self.inner
            .store
            .get()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "starting up: the store is still opening"))
    }

    /// Makes the dashboards API available (`/api/v1/dashboards`). Later calls are ignored.
    pub fn set_dashboards(&self, store: Arc<telltale_dashboards::Store>) {
        let _ = self.inner.dashboards.set(store);
    }

    /// Sets the configuration `/api/v1/status/config` shows: YAML, secrets already redacted
    /// by the caller (the binary, which knows the config's types).
    pub fn set_config_yaml(&self, yaml: String) {
        *self.inner.config_yaml.write().unwrap_or_else(|p| p.into_inner()) = yaml;
    }

    /// The configuration in force, as YAML with secrets redacted.
    pub fn config_yaml(&self) -> String {
        self.inner.config_yaml.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes the scrape manager's targets visible at `/api/v1/targets`. Later calls are ignored.
    pub fn set_targets(&self, targets: telltale_collect::scrape::Targets) {
        let _ = self.inner.targets.set(targets);
    }

    /// The scrape targets, if the binary runs a scrape manager.
    pub fn targets(&self) -> Option<telltale_collect::scrape::Targets> {
        self.inner.targets.get().cloned()
    }

    /// Makes the log store available. Later calls are ignored.
    pub fn set_log_store(&self, store: Arc<dyn LogStore>) {
        let _ = self.inner.logs.set(store);
    }

    /// The default tenant's log store, or 503 while it is still opening.
    pub fn default_log_store(&self) -> Result<Arc<dyn LogStore>, ApiError> {
        self.inner
            .logs
            .get()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "starting up: the log store is still opening"))
    }

    /// The log store if it is open (for readiness and self-metrics).
    pub(crate) fn log_store_opt(&self) -> Option<Arc<dyn LogStore>> {
        self.inner.logs.get().cloned()
    }

    /// Installs the SQL engine (`POST /api/v1/sql`). Later calls are ignored.
    pub fn set_sql(&self, sql: Arc<dyn crate::sql::SqlService>) {
        let _ = self.inner.sql.set(sql);
    }

    /// Per-tenant and per-stream rate limits of the log write paths.
    pub(crate) fn rates(&self) -> &crate::ratelimit::RateLimiter {
        &self.inner.rates
    }

    /// Live-tail subscribers.
    pub(crate) fn tail(&self) -> &crate::tail::TailHub {
        &self.inner.tail
    }

    /// The reload function, if the binary installed one.
    pub fn reloader(&self) -> Option<Reloader> {
        self.inner.reloader.get().cloned()
    }

    /// Records an audit event (`action` by `who`, with `details`: names and ids, never
    /// secrets) in the audit log, for what happens outside HTTP handlers (a SIGHUP reload).
    pub fn audit(&self, action: &'static str, who: &str, details: serde_json::Value) {
        crate::audit::record(self, crate::audit::Event { action, who, details });
    }

    /// Sets the default tenant's trace service (once).
    pub fn set_traces(&self, traces: Arc<crate::TraceService>) {
        let _ = self.inner.traces.set(traces);
    }

    /// The default tenant's trace service; 503 until the store is open.
    pub fn default_traces(&self) -> Result<Arc<crate::TraceService>, ApiError> {
        self.inner
            .traces
            .get()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "the trace store is still opening"))
    }

    /// Writes `batch` and counts the stored and refused samples under `protocol`.
    pub fn write_counted(
        &self,
        store: &dyn MetricStore,
        protocol: &'static str,
        batch: &WriteBatch,
    ) -> Result<WriteStats, ApiError> {
        let stats = store.write(batch)?;
        self.metadata().record(&batch.metadata);
        let m = self.metrics();
        m.add_ingested(protocol, stats.samples);
        m.add_rejected("out_of_order", stats.rejected.out_of_order);
        m.add_rejected("too_old", stats.rejected.too_old);
        m.add_rejected("duplicate_timestamp", stats.rejected.duplicate_timestamp);
        Ok(stats)
    }
}

/// The system clock in milliseconds since the epoch.
pub fn system_now_ms() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_millis() as Timestamp
}
