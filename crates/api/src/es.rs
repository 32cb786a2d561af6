//! The Elasticsearch endpoints log shippers need (`GET /` version handshake, `POST /_bulk`,
//! `POST /<index>/_bulk`), answering as Elasticsearch 8 does: every response carries
//! `X-Elastic-Product: Elasticsearch` (the official clients refuse a server without it), bulk
//! answers 200 with per-item statuses and `errors`, and errors use Elasticsearch's error object.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use telltale_ingest::es_bulk;

use crate::body::content_encoding;
use crate::logwrite::ingest_logs;
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::ApiError;

/// What `GET /` says: a cluster of one node on Elasticsearch 8.11's wire version.
pub(crate) async fn root(headers: HeaderMap) -> Response {
    if telltale_ui::wants_html(&headers) {
        return telltale_ui::index_page(&headers);
    }
    let body = serde_json::json!({
        "name": "telltale",
        "cluster_name": "telltale",
        "cluster_uuid": "dGVsbHRhbGUtY2x1c3Rlcg",
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "telltale",
            "build_date": "2023-11-04T10:04:57.184859352Z",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST|PUT /_bulk`.
pub(crate) async fn bulk(app: Scoped, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    bulk_inner(app, headers, body, None).await
}

/// `POST|PUT /<index>/_bulk`.
pub(crate) async fn bulk_index(
    app: Scoped,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    bulk_inner(app, headers, body, Some(index)).await
}

async fn bulk_inner(app: Scoped, headers: HeaderMap, body: Body, index: Option<String>) -> Result<Response, ApiError> {
    let started = Instant::now();
    let encoding = content_encoding(&headers)?;
    let now = app.now_ms().saturating_mul(1_000_000);
    let items = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = items.clone();
    let decode = move |b: &[u8], l: &Limits| {
        let bulk = es_bulk::decode(b, index.as_deref(), now, &l.logs)?;
        *out.lock().unwrap_or_else(|p| p.into_inner()) = bulk.items;
        Ok(bulk.batch)
    };
    ingest_logs(&app, &headers, body, encoding, "elasticsearch", decode).await?;
    let items = std::mem::take(&mut *items.lock().unwrap_or_else(|p| p.into_inner()));
    let body = es_bulk::response(&items, started.elapsed().as_millis() as u64);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Adds `X-Elastic-Product` to every response of the family.
pub(crate) fn product_header(mut res: Response) -> Response {
    res.headers_mut().insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use telltale_storage::{MemLogStore, MemStore};
    use tower::ServiceExt;

    use crate::{router, AppState, Limits};

    fn state() -> AppState {
        let s = AppState::new(Limits::default(), Arc::new(|| 1_700_000_000_000));
        s.set_store(Arc::new(MemStore::new()));
        s.set_log_store(Arc::new(MemLogStore::new()));
        s
    }

    async fn call(s: &AppState, req: Request<Body>) -> (StatusCode, Option<String>, String) {
        let res = router(s.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let product = res.headers().get("x-elastic-product").map(|v| v.to_str().unwrap().to_string());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, product, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn root_is_the_ui_for_browsers_and_the_handshake_for_shippers() {
        let s = state();
        let browser = Request::get("/").header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        let (st, _, body) = call(&s, browser.body(Body::empty()).unwrap()).await;
        assert_eq!(st, StatusCode::OK);
        assert!(body.contains("/ui/app.js"), "{body}");
        for accept in
            [None, Some("*/*"), Some("application/json"), Some("application/vnd.elasticsearch+json; compatible-with=8")]
        {
            let mut req = Request::get("/");
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            let (st, product, body) = call(&s, req.body(Body::empty()).unwrap()).await;
            assert_eq!((st, product.as_deref()), (StatusCode::OK, Some("Elasticsearch")), "{accept:?}");
            assert!(body.contains("\"number\":\"8.11.0\""), "{accept:?}: {body}");
        }
    }

    #[tokio::test]
    async fn handshake_bulk_and_query_back() {
        let s = state();
        let (st, product, body) = call(&s, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!((st, product.as_deref()), (StatusCode::OK, Some("Elasticsearch")));
        assert!(body.contains(r#""number":"8.11.0""#), "{body}");
        let bulk = "{\"create\":{\"_index\":\"logs-a\"}}\n{\"@timestamp\":\"2023-11-14T22:13:20.5Z\",\"message\":\"hello\",\"level\":\"warn\"}\n{\"delete\":{\"_id\":\"1\"}}\n";
        let req = Request::post("/logs-x/_bulk")
            .header("content-type", "application/x-ndjson")
            .body(Body::from(bulk))
            .unwrap();
        let (st, product, body) = call(&s, req).await;
        assert_eq!((st, product.as_deref()), (StatusCode::OK, Some("Elasticsearch")), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"], true);
        assert_eq!(v["items"][0]["create"]["status"], 201);
        assert_eq!(v["items"][1]["delete"]["status"], 400);
        let q: String = form_urlencoded::byte_serialize(br#"{index="logs-a"} | level="warn""#).collect();
        let req = Request::get(format!("/loki/api/v1/query_range?query={q}&start=1700000000&end=1700000001"))
            .body(Body::empty())
            .unwrap();
        let (_, _, body) = call(&s, req).await;
        assert!(body.contains(r#""values":[["1700000000500000000","hello"]]"#), "{body}");
        let req = Request::post("/_bulk").body(Body::from("garbage\n")).unwrap();
        let (st, product, body) = call(&s, req).await;
        assert_eq!((st, product.as_deref()), (StatusCode::BAD_REQUEST, Some("Elasticsearch")));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["type"], "illegal_argument_exception");
        assert_eq!(v["status"], 400);
    }

    #[tokio::test]
    async fn otlp_logs_json_in_loki_mapping() {
        let s = state();
        let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"otlp line"},"severityText":"WARN"}]}]}]}"#;
        let req = Request::post("/v1/logs").header("content-type", "application/json").body(Body::from(body)).unwrap();
        let (st, _, body) = call(&s, req).await;
        assert_eq!((st, body.as_str()), (StatusCode::OK, "{}"));
        let q: String = form_urlencoded::byte_serialize(br#"{service_name="svc"}"#).collect();
        let req = Request::get(format!("/loki/api/v1/query_range?query={q}&start=1699999999&end=1700000001"))
            .body(Body::empty())
            .unwrap();
        let (_, _, body) = call(&s, req).await;
        assert!(body.contains(r#"{"stream":{"service_name":"svc","severity_text":"WARN"},"values":[["1700000000000000000","otlp line"]]}"#), "{body}");
        let req = Request::post("/v1/logs").header("content-type", "text/plain").body(Body::from("x")).unwrap();
        let (st, _, _) = call(&s, req).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
