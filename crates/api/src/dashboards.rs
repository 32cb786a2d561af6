//! `/api/v1/dashboards`: the web UI's dashboards, saved and loaded as JSON documents
//! (`telltale_dashboards::Store` keeps them in the data directory). Answers use the
//! Prometheus API's envelope (`{"status":"success","data":...}`) like the rest of `/api/v1`.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use telltale_auth::Principal;

use crate::body::read_limited;
use crate::read::success;
use crate::tenant::Scoped;
use crate::ApiError;

impl From<telltale_dashboards::Error> for ApiError {
    fn from(e: telltale_dashboards::Error) -> Self {
        ApiError::new(e.kind(), crate::error::error_chain(&e))
    }
}

async fn body(app: &Scoped, headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, ApiError> {
    read_limited(headers, body, app.limits().max_body_size).await
}

async fn blocking<T: Send + 'static>(
    app: &Scoped,
    f: impl FnOnce(&telltale_dashboards::Store, i64) -> telltale_dashboards::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let now = app.now_ms();
    let store = app.on_blocking_pool(|a| a.dashboards()).await?.ok_or_else(|| {
        ApiError::new(telltale_model::ErrorKind::Unavailable, "dashboards are not available: no store is open")
    })?;
    tokio::task::spawn_blocking(move || f(&store, now))
        .await
        .map_err(|e| ApiError::internal(format!("dashboards task failed: {e}")))?
        .map_err(ApiError::from)
}

/// `GET /api/v1/dashboards`: summaries, built-ins first.
pub(crate) async fn list(app: Scoped) -> Result<Response, ApiError> {
    Ok(success(blocking(&app, |s, _| s.list()).await?))
}

/// `POST /api/v1/dashboards`: creates (or imports) a dashboard; 201 with the stored document.
pub(crate) async fn create(
    app: Scoped,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let bytes = body(&app, &headers, b).await?;
    let doc = blocking(&app, move |s, now| s.create(&bytes, now)).await?;
    app.audit(
        "dashboard_saved",
        &p.describe(),
        serde_json::json!({"tenant": app.tenant(), "uid": doc["uid"], "new": true}),
    );
    Ok((StatusCode::CREATED, success(doc)).into_response())
}

/// `GET /api/v1/dashboards/<uid>`
pub(crate) async fn get(app: Scoped, Path(uid): Path<String>) -> Result<Response, ApiError> {
    Ok(success(blocking(&app, move |s, _| s.get(&uid)).await?))
}

/// `PUT /api/v1/dashboards/<uid>[?overwrite=true]`: saves a new version; 409 when the
/// document's `version` is not the stored one.
pub(crate) async fn update(
    app: Scoped,
    Extension(p): Extension<Principal>,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let q = q.unwrap_or_default();
    let overwrite = form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "overwrite" && (v == "true" || v == "1"));
    let bytes = body(&app, &headers, b).await?;
    let id = uid.clone();
    let doc = blocking(&app, move |s, now| s.update(&id, &bytes, overwrite, now)).await?;
    app.audit("dashboard_saved", &p.describe(), serde_json::json!({"tenant": app.tenant(), "uid": uid}));
    Ok(success(doc))
}

/// `DELETE /api/v1/dashboards/<uid>`: 204.
pub(crate) async fn delete(
    app: Scoped,
    Extension(p): Extension<Principal>,
    Path(uid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uid.clone();
    blocking(&app, move |s, _| s.delete(&id)).await?;
    app.audit("dashboard_deleted", &p.describe(), serde_json::json!({"tenant": app.tenant(), "uid": uid}));
    Ok(StatusCode::NO_CONTENT)
}
