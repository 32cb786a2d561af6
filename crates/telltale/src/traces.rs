//! The `traces:` section and the trace store's upkeep: intake limits, the RED-metrics
//! generator's options, the OTLP/gRPC listener; flushing, retention, compaction, WAL syncs, and
//! writing the generator's series into the metric store every `collect_interval`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telltale_api::{AppState, TraceService};
use telltale_model::units;
use telltale_storage::MetricStore;
use telltale_tracestore::TraceDb;
use tokio::sync::watch;

use crate::config::Config;
use crate::serve::periodic;

/// `traces:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TracesConfig {
    /// Per-span limits of every trace write path (attribute sizes and counts). Reloadable.
    pub(crate) limits: telltale_ingest::otlp::TraceLimits,
    /// The RED metrics and service graph written from spans (`traces_spanmetrics_*`,
    /// `traces_service_graph_*`): buckets, caps, pairing wait. Changes need a restart.
    pub(crate) metrics: telltale_spanmetrics::Options,
    /// How often the RED metrics are written into the metric store (Tempo's
    /// `collection_interval`).
    #[serde(with = "units::duration")]
    pub(crate) collect_interval: Duration,
    /// The OTLP/gRPC listener (`host:port`); empty turns it off. Changes need a restart.
    pub(crate) grpc_listen: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            limits: Default::default(),
            metrics: Default::default(),
            collect_interval: Duration::from_secs(15),
            grpc_listen: "127.0.0.1:4317".into(),
        }
    }
}

impl TracesConfig {
    /// Checks what serde cannot; the error names the key.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        self.metrics.validate().map_err(|e| ("traces.metrics".to_string(), e.to_string()))?;
        if self.collect_interval < Duration::from_secs(1) {
            return Err(("traces.collect_interval".into(), "must be at least 1s".into()));
        }
        if !self.grpc_listen.is_empty() && self.grpc_listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(("traces.grpc_listen".into(), format!("{:?} is not host:port", self.grpc_listen)));
        }
        Ok(())
    }
}

/// Opens a trace store under `dir` with its service.
pub(crate) fn open(dir: &std::path::Path, config: &Config) -> Result<Arc<TraceService>, String> {
    let db = TraceDb::open(dir, &config.storage.traces).map_err(|e| format!("cannot open the trace store: {e}"))?;
    for q in db.quarantined() {
        tracing::warn!(file = %q, "corrupt trace segment quarantined");
    }
    Ok(Arc::new(TraceService::new(Arc::new(db), config.traces.metrics.clone())))
}

/// The trace store's upkeep and the RED metrics' collection into `metrics` (counted and
/// described through `state` for the default tenant).
pub(crate) fn upkeep(
    config: &Config,
    state: Option<&AppState>,
    traces: &Arc<TraceService>,
    metrics: &Arc<dyn MetricStore>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let now = telltale_api::system_now_ms;
    let mut tasks = vec![
        tokio::spawn(periodic(
            config.storage.maintenance_interval.min(Duration::from_secs(30)),
            stop.clone(),
            "trace maintenance",
            {
                let db = traces.db().clone();
                move || db.maintain(now())
            },
        )),
        tokio::spawn(periodic(config.traces.collect_interval, stop.clone(), "span metrics", {
            let (traces, metrics, state) = (traces.clone(), metrics.clone(), state.cloned());
            move || {
                let batch = traces.collect(now());
                match &state {
                    Some(state) => state.write_counted(metrics.as_ref(), "spanmetrics", &batch).map(|_| ()),
                    None => metrics.write(&batch).map(|_| ()).map_err(telltale_api::ApiError::from),
                }
            }
        })),
    ];
    if let Some(every) = config.storage.traces.wal.fsync_interval().filter(|d| !d.is_zero()) {
        tasks.push(tokio::spawn(periodic(every, stop.clone(), "trace wal sync", {
            let db = traces.db().clone();
            move || db.sync_wal()
        })));
    }
    tasks
}
