//! `/api/v1/dashboards`: the web UI's dashboards, saved and loaded as JSON documents
//! (`telltale_dashboards::Store` keeps them in the data directory). Answers use the
//! Prometheus API's envelope (`{"status":"success","data":...}`) like the rest of `/api/v1`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::body::read_limited;
use crate::read::success;
use crate::{ApiError, AppState};

impl From<telltale_dashboards::Error> for ApiError {
    fn from(e: telltale_dashboards::Error) -> Self {
        ApiError::new(e.kind(), crate::error::error_chain(&e))
    }
}

async fn body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, ApiError> {
    read_limited(headers, body, app.limits().max_body_size).await
}

async fn blocking<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&telltale_dashboards::Store, i64) -> telltale_dashboards::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let (store, now) = (app.dashboards()?, app.now_ms());
    tokio::task::spawn_blocking(move || f(&store, now))
        .await
        .map_err(|e| ApiError::internal(format!("dashboards task failed: {e}")))?
        .map_err(ApiError::from)
}

/// `GET /api/v1/dashboards`: summaries, built-ins first.
pub(crate) async fn list(State(app): State<AppState>) -> Result<Response, ApiError> {
    Ok(success(blocking(&app, |s, _| s.list()).await?))
}

/// `POST /api/v1/dashboards`: creates (or imports) a dashboard; 201 with the stored document.
pub(crate) async fn create(State(app): State<AppState>, headers: HeaderMap, b: Body) -> Result<Response, ApiError> {
    let bytes = body(&app, &headers, b).await?;
    let doc = blocking(&app, move |s, now| s.create(&bytes, now)).await?;
    Ok((StatusCode::CREATED, success(doc)).into_response())
}

/// `GET /api/v1/dashboards/<uid>`
pub(crate) async fn get(State(app): State<AppState>, Path(uid): Path<String>) -> Result<Response, ApiError> {
    Ok(success(blocking(&app, move |s, _| s.get(&uid)).await?))
}

/// `PUT /api/v1/dashboards/<uid>[?overwrite=true]`: saves a new version; 409 when the
/// document's `version` is not the stored one.
pub(crate) async fn update(
    State(app): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    let q = q.unwrap_or_default();
    let overwrite = form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "overwrite" && (v == "true" || v == "1"));
    let bytes = body(&app, &headers, b).await?;
    Ok(success(blocking(&app, move |s, now| s.update(&uid, &bytes, overwrite, now)).await?))
}

/// `DELETE /api/v1/dashboards/<uid>`: 204.
pub(crate) async fn delete(State(app): State<AppState>, Path(uid): Path<String>) -> Result<StatusCode, ApiError> {
    blocking(&app, move |s, _| s.delete(&uid)).await?;
    Ok(StatusCode::NO_CONTENT)
}
