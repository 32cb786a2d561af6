//! Operating endpoints: `/-/ready`, `/-/healthy`, `/-/reload`, `/metrics`,
//! `/internal/force_flush`. Plain-text bodies, as Prometheus's own.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use telltale_model::ErrorKind;

use crate::metrics::render;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// `GET /-/healthy`: the process is up and serving HTTP.
pub(crate) async fn healthy() -> &'static str {
    "healthy\n"
}

/// `GET /-/ready`: 503 until the store is open; then 200, listing any problems the store
/// found on open (corrupt files it quarantined) while it serves the rest.
pub(crate) async fn ready(State(app): State<AppState>) -> Response {
    let Ok(store) = app.default_store() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting up\n").into_response();
    };
    let logs = app.log_store_opt();
    let problems = match tokio::task::spawn_blocking(move || {
        let mut p = store.problems();
        p.extend(logs.map(|l| l.problems()).unwrap_or_default());
        p
    })
    .await
    {
        Ok(p) => p,
        Err(e) => vec![format!("cannot list storage problems: {e}")],
    };
    if problems.is_empty() {
        return "ready\n".into_response();
    }
    let mut body = format!("ready, with {} storage problem(s):\n", problems.len());
    for p in problems {
        body.push_str(&format!("- {p}\n"));
    }
    body.into_response()
}

/// `POST /-/reload`: re-reads the configuration and applies what can change live.
pub(crate) async fn reload(
    State(app): State<AppState>,
    axum::Extension(p): axum::Extension<telltale_auth::Principal>,
) -> Result<String, ApiError> {
    let reloader =
        app.reloader().ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "reload is not available in this setup"))?;
    match tokio::task::spawn_blocking(move || reloader()).await {
        Ok(Ok(summary)) => {
            app.audit(
                "config_reloaded",
                &p.describe(),
                serde_json::json!({"via": "POST /-/reload", "applied": summary}),
            );
            Ok(format!("{summary}\n"))
        }
        // The file is the operator's input: the request cannot succeed until it is fixed.
        Ok(Err(reason)) => {
            app.audit(
                "config_reload_failed",
                &p.describe(),
                serde_json::json!({"via": "POST /-/reload", "reason": reason}),
            );
            Err(ApiError::bad_input(format!("config not reloaded: {reason}")))
        }
        Err(e) => Err(ApiError::internal(format!("reload task failed: {e}"))),
    }
}

/// `GET /metrics`: Telltale's own metrics in the text exposition format.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let logs = app.log_store_opt();
    let stats = match app.default_store() {
        Ok(store) => tokio::task::spawn_blocking(move || {
            let mut s = store.stats();
            s.extend(logs.map(|l| l.stats()).unwrap_or_default());
            s
        })
        .await
        .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let body = render(&app.families(&stats));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// `GET|POST /internal/force_flush`: persists the tenant's in-memory data (VictoriaMetrics
/// has the same endpoint; the benchmark harness calls it before measuring disk use).
pub(crate) async fn force_flush(
    app: Scoped,
    axum::Extension(p): axum::Extension<telltale_auth::Principal>,
) -> Result<StatusCode, ApiError> {
    app.audit("force_flush", &p.describe(), serde_json::json!({"tenant": app.tenant()}));
    app.blocking(|s| Ok(s.flush()?)).await?;
    if app.log_store_opt().is_some() {
        app.blocking_logs(|s| Ok(s.flush()?)).await?;
    }
    Ok(StatusCode::OK)
}

/// `GET|HEAD /ping`: InfluxDB's liveness probe, which Influx clients call before writing.
pub(crate) async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
