//! Glue between the alerting crate and the rest of the server: the query closure over the
//! PromQL engine and the store, the write closure, and loading rule groups from the
//! config.

use std::path::Path;
use std::sync::Arc;

use telltale_alerting::rules::{EvalContext, Group, VectorSample};
use telltale_model::{Labels, WriteBatch};
use telltale_promql::{Engine, EngineOptions, Value};
use telltale_storage::{LogReader, MetricStore};

use crate::config::Config;

/// The directory relative rule-file paths are resolved against: the config file's.
pub(crate) fn base_dir(config_path: Option<&Path>) -> std::path::PathBuf {
    config_path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| ".".into())
}

/// The groups the config asks for (rule files and the built-in pack).
pub(crate) fn load_groups(c: &Config, config_path: Option<&Path>) -> Result<Vec<Group>, String> {
    telltale_alerting::manager::load_groups(&c.rule_files, &base_dir(config_path), &c.rules).map_err(|e| e.to_string())
}

/// Evaluates rule expressions with the PromQL engine; a scalar becomes a one-sample vector
/// without labels, as Prometheus's `EngineQueryFunc` does.
pub(crate) fn query_fn(store: Arc<dyn MetricStore>, opts: EngineOptions) -> telltale_alerting::rules::QueryFn {
    let engine = Engine::new(opts);
    Arc::new(move |q: &str, t| match engine.instant(store.as_ref(), q, t).map_err(|e| e.to_string())? {
        Value::Vector(v) => Ok(v.into_iter().map(|s| VectorSample { labels: s.labels, value: s.v }).collect()),
        Value::Scalar { v, .. } => Ok(vec![VectorSample { labels: Labels::empty(), value: v }]),
        other => Err(format!("rule result must be a vector or scalar, got {}", other.result_type())),
    })
}

/// Evaluates the LogQL metric expressions of `type: logql` groups over the log store, as
/// Loki's ruler does; samples without labels stay so, like PromQL scalars.
pub(crate) fn log_query_fn(
    logs: Arc<dyn LogReader + Send + Sync>,
    opts: telltale_logql::EngineOptions,
) -> telltale_alerting::rules::QueryFn {
    let engine = telltale_logql::Engine::new(opts);
    Arc::new(move |q: &str, t| {
        let query = telltale_logql::rule_query(&engine, logs.as_ref());
        let vector = query(q, t).map_err(|e| e.to_string())?;
        Ok(vector.into_iter().map(|(labels, value)| VectorSample { labels, value }).collect())
    })
}

/// The evaluation context of the server's rules: PromQL over the metric store, LogQL over
/// the log store.
pub(crate) fn eval_context(
    store: Arc<dyn MetricStore>,
    logs: Arc<dyn LogReader + Send + Sync>,
    c: &Config,
    external_url: String,
) -> EvalContext {
    let w = store.clone();
    EvalContext {
        query: query_fn(store, c.query.engine_options()),
        log_query: Some(log_query_fn(logs, c.logs.engine_options())),
        write: Arc::new(move |b: &WriteBatch| w.write(b).map(|_| ()).map_err(|e| e.to_string())),
        external_url,
        resend_delay: c.rules.resend_delay,
    }
}

/// Where alerts from rules go: the notification pipeline.
pub(crate) fn sender(state: &telltale_api::AppState) -> Arc<dyn Fn(Vec<telltale_alerting::Alert>) + Send + Sync> {
    let am = state.alertmanager().clone();
    Arc::new(move |alerts| am.receive(alerts, telltale_api::system_now_ms()))
}

/// Applies the `alerting:` section (with the receivers stored through the API) to the
/// pipeline, and its `templates:` to `sender`.
pub(crate) fn configure(
    state: &telltale_api::AppState,
    sender: &telltale_notify::Sender,
    c: &Config,
    config_path: Option<&Path>,
    external_url: &str,
) -> Result<(), String> {
    let files = telltale_alerting::manager::expand_globs(&c.alerting.templates, &base_dir(config_path))
        .map_err(|e| format!("alerting.templates: {e}"))?;
    let templates = telltale_notify::load_templates(&files).map_err(|e| format!("alerting.templates: {e}"))?;
    state.configure_alerting(&c.alerting, external_url)?;
    sender.set_templates(templates);
    Ok(())
}

/// The external URL in force: the configured one, or `http://` + the bound address.
pub(crate) fn external_url(c: &Config, bound: std::net::SocketAddr) -> String {
    if c.server.external_url.is_empty() {
        format!("http://{bound}")
    } else {
        c.server.external_url.trim_end_matches('/').to_string()
    }
}
