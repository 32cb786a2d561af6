//! `POST /api/v1/sql` with `{"query": "SELECT ..."}`: SQL over the table `logs`, answered as
//! `{"columns": [...], "rows": [[...], ...]}` (plus `"truncated": true` when rows were cut).
//! The engine (DataFusion) sits behind [`SqlService`], which the binary installs, so this
//! crate never compiles it.

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;
use telltale_model::ErrorKind;

use crate::body::read_limited;
use crate::tenant::Scoped;
use crate::ApiError;

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of JSON values.
    pub rows: Vec<Vec<Json>>,
    /// Whether rows were left out (past the configured maximum).
    pub truncated: bool,
}

/// Runs SQL; implemented by the binary over `telltale_sql`. Synchronous: the api calls it on
/// the blocking pool.
pub trait SqlService: Send + Sync {
    /// Runs `sql`, or says why not (the kind picks the status).
    fn query(&self, sql: &str) -> Result<SqlResult, (ErrorKind, String)>;
}

/// `POST /api/v1/sql` (JSON body `{"query": ...}`) or `GET /api/v1/sql?query=...`.
pub(crate) async fn sql(
    app: Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = read_limited(&headers, body, app.limits().max_body_size).await?;
    let from_url =
        q.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "query").map(|(_, v)| v.into_owned()));
    let query = if raw.iter().all(u8::is_ascii_whitespace) {
        from_url.ok_or_else(|| ApiError::bad_input("missing query: send {\"query\": \"SELECT ...\"}"))?
    } else {
        #[derive(serde::Deserialize)]
        struct Req {
            query: String,
        }
        serde_json::from_slice::<Req>(&raw)
            .map_err(|e| ApiError::bad_input(format!("invalid body: want {{\"query\": \"SELECT ...\"}}: {e}")))?
            .query
    };
    let service = app
        .on_blocking_pool(|a| a.sql())
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "sql is not available: the log store is still opening"))?;
    let out = tokio::task::spawn_blocking(move || service.query(&query))
        .await
        .map_err(|e| ApiError::internal(format!("sql task failed: {e}")))?
        .map_err(|(kind, message)| ApiError::new(kind, message))?;
    let mut body = serde_json::json!({"columns": out.columns, "rows": out.rows});
    if out.truncated {
        body["truncated"] = Json::Bool(true);
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, AppState, Limits};

    /// Answers `SELECT 1` and refuses the rest: the HTTP shape is what is under test here; the
    /// real engine is tested in crates/sql and end to end.
    struct One;

    impl SqlService for One {
        fn query(&self, sql: &str) -> Result<SqlResult, (ErrorKind, String)> {
            if sql == "SELECT 1" {
                Ok(SqlResult { columns: vec!["Int64(1)".into()], rows: vec![vec![Json::from(1)]], truncated: false })
            } else {
                Err((ErrorKind::InvalidInput, format!("SQL error: unsupported {sql:?}")))
            }
        }
    }

    async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, String) {
        let res = router(state.clone()).oneshot(req).await.unwrap();
        let s = res.status();
        (s, String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned())
    }

    #[tokio::test]
    async fn json_in_columns_and_rows_out() {
        let state = AppState::new(Limits::default(), Arc::new(|| 0));
        let req = || Request::post("/api/v1/sql").body(Body::from(r#"{"query":"SELECT 1"}"#)).unwrap();
        let (s, body) = call(&state, req()).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        state.set_sql(Arc::new(One));
        let (s, body) = call(&state, req()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"columns":["Int64(1)"],"rows":[[1]]}"#));
        let (s, body) = call(&state, Request::get("/api/v1/sql?query=SELECT%201").body(Body::empty()).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"columns":["Int64(1)"],"rows":[[1]]}"#));
        let (s, body) =
            call(&state, Request::post("/api/v1/sql").body(Body::from(r#"{"query":"DROP"}"#)).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains(r#""error":"SQL error: unsupported \"DROP\"""#), "{body}");
        let (s, _) = call(&state, Request::post("/api/v1/sql").body(Body::from("not json")).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}
