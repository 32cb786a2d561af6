//! Telltale's HTTP APIs: one axum [`Router`] serving every protocol family on one listener.
//!
//! Inputs: HTTP requests. Outputs: calls into the storage seam
//! ([`telltale_storage::MetricStore`], always through `spawn_blocking`) and responses in the
//! shape each family's clients expect. Decoding lives in `telltale_ingest` (pure functions);
//! this crate is the glue: read the body (size-limited, decompressed), decode, write, answer.
//!
//! The one design decision to know: [`ApiError`] is the only place that maps an
//! [`telltale_model::ErrorKind`] to an HTTP status; each family's router picks only the
//! body *shape* of its errors ([`Shape`]), so status codes cannot drift between handlers.
#![warn(missing_docs)]

mod access;
mod admin;
mod alertmanager;
mod audit;
mod authapi;
mod authn;
mod body;
mod dashboards;
mod error;
mod es;
mod logwrite;
mod loki;
mod metadata;
pub mod metrics;
mod otlplogs;
mod params;
mod query;
mod ratelimit;
mod read;
pub mod receivers;
mod rules;
mod selector;
mod sql;
mod state;
mod status;
mod tail;
mod tenant;
mod traces;
mod write;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{from_fn_with_state, map_response, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;

pub use access::{lookup as route_access, Access, ROUTES};
pub use authn::{Auth, OidcSetup, Tenant};
pub use error::{ApiError, Shape};

use access::at;
pub use ratelimit::LogRates;
pub use selector::parse_selector;
pub use sql::{SqlResult, SqlService};
pub use state::{system_now_ms, AppState, Clock, Limits, Reloader, RuntimeInfo};
pub use tenant::{check_tenant, Scoped, TenantOpener, TenantStores, AUDIT_TENANT, MAX_TENANTS};
pub use traces::TraceService;

/// Every endpoint, wired to `state`.
pub fn router(state: AppState) -> Router {
    routes()
        .layer(from_fn_with_state(state.clone(), authn::authorize))
        .layer(from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Every route, before authorization and request metrics.
fn routes() -> Router<AppState> {
    let text_errors = |r: Response| async move { error::reshape(Shape::Text, r) };
    let prom_read = Router::new()
        .route(at("/api/v1/series"), get(read::series).post(read::series))
        .route(at("/api/v1/labels"), get(read::labels).post(read::labels))
        .route(at("/api/v1/label/{name}/values"), get(read::label_values).post(read::label_values))
        .route(at("/api/v1/export"), get(read::export).post(read::export))
        .route(at("/api/v1/query"), get(query::instant).post(query::instant))
        .route(at("/api/v1/query_range"), get(query::range).post(query::range))
        .route(at("/api/v1/format_query"), get(query::format).post(query::format))
        .route(at("/api/v1/query_exemplars"), get(query::exemplars).post(query::exemplars))
        .route(at("/api/v1/metadata"), get(status::metadata))
        .route(at("/api/v1/status/buildinfo"), get(status::buildinfo))
        .route(at("/api/v1/status/runtimeinfo"), get(status::runtimeinfo))
        .route(at("/api/v1/status/config"), get(status::config))
        .route(at("/api/v1/status/tsdb"), get(status::tsdb))
        .route(at("/api/v1/dashboards"), get(dashboards::list).post(dashboards::create))
        .route(at("/api/v1/dashboards/{uid}"), get(dashboards::get).put(dashboards::update).delete(dashboards::delete))
        .route(at("/api/v1/receivers"), get(receivers::list))
        .route(at("/api/v1/receivers/{name}"), axum::routing::put(receivers::put).delete(receivers::delete))
        .route(at("/api/v1/targets"), get(status::targets))
        .route(at("/api/v1/rules"), get(rules::rules).post(rules::rules))
        .route(at("/api/v1/alerts"), get(rules::alerts).post(rules::alerts))
        .route(at("/api/v1/notifications"), get(alertmanager::notifications))
        .route(at("/api/v1/sql"), get(sql::sql).post(sql::sql));
    let federate = Router::new().route(at("/federate"), get(query::federate)).layer(map_response(text_errors));
    let prom_write = Router::new()
        .route(at("/api/v1/write"), post(write::remote_write))
        .route(at("/api/v1/import/prometheus"), post(write::import_prometheus))
        .layer(map_response(text_errors));
    let influx_v1 = Router::new()
        .route(at("/write"), post(write::influx_write))
        .layer(map_response(|r: Response| async move { error::reshape(Shape::InfluxV1, r) }));
    let influx_v2 = Router::new()
        .route(at("/api/v2/write"), post(write::influx_write))
        .layer(map_response(|r: Response| async move { error::reshape(Shape::InfluxV2, r) }));
    // OTLP renders its own errors (google.rpc.Status in the request's encoding).
    let otlp =
        Router::new().route(at("/v1/metrics"), post(write::otlp_metrics)).route(at("/v1/logs"), post(otlplogs::logs));
    // Alertmanager's API answers errors as a JSON string, as go-swagger clients (amtool) expect.
    let am = Router::new()
        .route(at("/api/v2/alerts"), get(alertmanager::get_alerts).post(alertmanager::post_alerts))
        .route(at("/api/v2/alerts/groups"), get(alertmanager::groups))
        .route(at("/api/v2/silences"), get(alertmanager::get_silences).post(alertmanager::post_silence))
        .route(at("/api/v2/silence/{id}"), get(alertmanager::get_silence).delete(alertmanager::delete_silence))
        .route(at("/api/v2/status"), get(alertmanager::status))
        .route(at("/api/v2/receivers"), get(alertmanager::receivers))
        .layer(map_response(|r: Response| async move { error::reshape(Shape::JsonString, r) }));
    let loki = Router::new()
        .route(at("/loki/api/v1/push"), post(loki::push))
        .route(at("/loki/api/v1/query"), get(loki::query).post(loki::query))
        .route(at("/loki/api/v1/query_range"), get(loki::query_range).post(loki::query_range))
        .route(at("/loki/api/v1/labels"), get(loki::labels).post(loki::labels))
        .route(at("/loki/api/v1/label/{name}/values"), get(loki::label_values).post(loki::label_values))
        .route(at("/loki/api/v1/series"), get(loki::series).post(loki::series))
        .route(at("/loki/api/v1/index/stats"), get(loki::index_stats).post(loki::index_stats))
        .route(at("/loki/api/v1/status/buildinfo"), get(loki::buildinfo))
        .route(at("/loki/api/v1/tail"), get(loki::tail))
        .layer(map_response(text_errors));
    let elasticsearch = Router::new()
        .route(at("/"), get(es::root).head(es::root))
        .route(at("/_bulk"), post(es::bulk).put(es::bulk))
        .route(at("/{index}/_bulk"), post(es::bulk_index).put(es::bulk_index))
        .layer(map_response(|r: Response| async move { es::product_header(error::reshape(Shape::Elasticsearch, r)) }));
    let auth = Router::new()
        .route(at("/api/v1/auth/login"), post(authapi::login))
        .route(at("/api/v1/auth/providers"), get(authapi::providers))
        .route(at("/api/v1/auth/oidc/login"), get(authapi::oidc_login))
        .route(at("/api/v1/auth/oidc/callback"), get(authapi::oidc_callback))
        .route(at("/api/v1/auth/logout"), post(authapi::logout))
        .route(at("/api/v1/auth/whoami"), get(authapi::whoami))
        .route(at("/api/v1/auth/password"), put(authapi::change_password))
        .route(at("/api/v1/auth/users"), get(authapi::users).post(authapi::add_user))
        .route(at("/api/v1/auth/users/{name}"), put(authapi::update_user).delete(authapi::delete_user))
        .route(at("/api/v1/auth/service_accounts"), get(authapi::service_accounts).post(authapi::add_service_account))
        .route(at("/api/v1/auth/service_accounts/{name}"), delete(authapi::delete_service_account))
        .route(at("/api/v1/auth/tokens"), get(authapi::tokens).post(authapi::create_token))
        .route(at("/api/v1/auth/tokens/{id}"), delete(authapi::revoke_token));
    let admin = Router::new()
        .route(at("/-/healthy"), get(admin::healthy).head(admin::healthy))
        .route(at("/-/ready"), get(admin::ready).head(admin::ready))
        .route(at("/-/reload"), post(admin::reload).put(admin::reload))
        .route(at("/metrics"), get(admin::metrics))
        .route(at("/internal/force_flush"), get(admin::force_flush).post(admin::force_flush))
        .route(at("/ping"), get(admin::ping).head(admin::ping))
        .layer(map_response(text_errors));
    Router::new()
        .merge(prom_write)
        .merge(influx_v1)
        .merge(influx_v2)
        .merge(otlp)
        .merge(traces::router())
        .merge(loki)
        .merge(elasticsearch)
        .merge(prom_read)
        .merge(federate)
        .merge(admin)
        .merge(telltale_ui::router())
        .merge(am)
        .merge(auth)
        .fallback(not_found)
}

/// A JSON response with status 200.
pub(crate) fn json(v: serde_json::Value) -> Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(telltale_model::ErrorKind::NotFound, format!("no endpoint at {}", uri.path()))
}

/// Counts and times every request by route (not raw path, to bound the label's values).
async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let handler = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let took = start.elapsed();
    let code = res.status().as_u16();
    app.metrics().observe_request(&handler, code, took);
    tracing::debug!(handler, code, took_ms = took.as_millis() as u64, "request");
    if let Some(e) = res.extensions().get::<ApiError>() {
        if code >= 500 {
            tracing::warn!(handler, code, error = %e, "request failed");
        } else {
            tracing::debug!(handler, code, error = %e, "request refused");
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use telltale_model::{Labels, Sample, WriteBatch};
    use telltale_storage::{MemStore, MetricWriter};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let store = MemStore::new();
        let mut b = WriteBatch::new();
        for (name, job, t) in [("up", "a", 1000), ("up", "b", 2000), ("load", "a", 3000)] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]).unwrap();
            b.push(l, &[Sample::new(t, 1.0), Sample::new(t + 1000, 2.5)]);
        }
        store.write(&b).unwrap();
        router(AppState::with_store(Arc::new(store), Limits::default()))
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, String) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(uri: &str) -> (StatusCode, String) {
        call(app(), Request::get(uri).body(Body::empty()).unwrap()).await
    }

    #[tokio::test]
    async fn series_and_labels() {
        let (s, body) = get("/api/v1/series?match[]=up").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body, r#"{"status":"success","data":[{"__name__":"up","job":"a"},{"__name__":"up","job":"b"}]}"#);
        let (_, body) = get("/api/v1/series?match[]=up&start=2.5&end=1970-01-01T00:00:10Z").await;
        assert_eq!(body, r#"{"status":"success","data":[{"__name__":"up","job":"b"}]}"#);
        let (_, body) = get("/api/v1/series?match[]=up&match[]=%7Bjob%3D%22a%22%7D&limit=2").await;
        assert_eq!(body, r#"{"status":"success","data":[{"__name__":"load","job":"a"},{"__name__":"up","job":"a"}]}"#);
        let (_, body) = get("/api/v1/labels").await;
        assert_eq!(body, r#"{"status":"success","data":["__name__","job"]}"#);
        let (_, body) = get("/api/v1/label/__name__/values").await;
        assert_eq!(body, r#"{"status":"success","data":["load","up"]}"#);
        let (_, body) = get("/api/v1/label/job/values?match[]=load").await;
        assert_eq!(body, r#"{"status":"success","data":["a"]}"#);
    }

    #[tokio::test]
    async fn form_posts_are_read() {
        let req = Request::post("/api/v1/label/job/values")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("match[]=up&start=1.5"))
            .unwrap();
        let (s, body) = call(app(), req).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"status":"success","data":["a","b"]}"#));
    }

    #[tokio::test]
    async fn read_errors_have_the_prometheus_shape() {
        let (s, body) = get("/api/v1/series").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body, r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#);
        let (s, body) = get("/api/v1/series?match[]=up&start=yesterday").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains(r#"cannot parse \"yesterday\" to a valid timestamp"#), "{body}");
        let (s, _) = get("/nope").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn export_streams_json_lines() {
        let (s, body) = get("/api/v1/export?match[]=%7Bjob%3D%22a%22%7D&end=3").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            body,
            "{\"metric\":{\"__name__\":\"load\",\"job\":\"a\"},\"values\":[1.0],\"timestamps\":[3000]}\n\
             {\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"values\":[1.0,2.5],\"timestamps\":[1000,2000]}\n"
        );
    }

    #[tokio::test]
    async fn instant_and_range_queries_answer_like_prometheus() {
        let (s, body) = get("/api/v1/query?query=sum(up)&time=2").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[2,"3.5"]}]}}"#
        );
        let (_, body) = get("/api/v1/query_range?query=up%7Bjob%3D%22a%22%7D&start=1&end=3&step=1s").await;
        assert_eq!(
            body,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1,"1"],[2,"2.5"],[3,"2.5"]]}]}}"#
        );
        let req = Request::post("/api/v1/query")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("query=1%2B1&time=10"))
            .unwrap();
        let (_, body) = call(app(), req).await;
        assert_eq!(body, r#"{"status":"success","data":{"resultType":"scalar","result":[10,"2"]}}"#);
    }

    #[tokio::test]
    async fn query_errors_have_prometheus_types_and_statuses() {
        let (s, body) = get("/api/v1/query?query=sum(").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.starts_with(r#"{"status":"error","errorType":"bad_data","error":"parse error"#), "{body}");
        let (s, body) = get("/api/v1/query").await;
        assert_eq!(
            (s, body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": missing"}"#
            )
        );
        // Two series become one label set once the name is dropped: an execution error.
        let (s, body) = get("/api/v1/query?query=%7Bjob%3D%22a%22%7D%2A1&time=3").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains(r#""errorType":"execution""#), "{body}");
        let (s, body) = get("/api/v1/query_range?query=up&start=1&end=3&step=0").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("zero or negative query resolution step widths are not accepted"), "{body}");
        let (s, _) = get("/api/v1/query_range?query=up&start=1&end=3").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn format_query_buildinfo_and_exemplars() {
        let (_, body) = get("/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)").await;
        assert_eq!(body, r#"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#);
        let (s, body) = get("/api/v1/status/buildinfo").await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains(r#""version":"3.0.0""#), "{body}");
        let (_, body) = get("/api/v1/status/runtimeinfo").await;
        assert!(body.contains(r#""reloadConfigSuccess":true"#), "{body}");
        let (_, body) = get("/api/v1/query_exemplars?query=up&start=0&end=10").await;
        assert_eq!(body, r#"{"status":"success","data":[]}"#);
    }

    #[tokio::test]
    async fn federate_gives_the_latest_samples_as_exposition_text() {
        let store = MemStore::new();
        let mut b = WriteBatch::new();
        for (name, job, v) in [("up", "a", 1.0), ("up", "b", 0.0), ("load", "a", 0.25)] {
            let l = Labels::from_pairs([("__name__", name), ("job", job)]).unwrap();
            b.push(l, &[Sample::new(100_000, 9.0), Sample::new(200_000, v)]);
        }
        store.write(&b).unwrap();
        let state = AppState::new(Limits::default(), Arc::new(|| 250_000));
        state.set_store(Arc::new(store));
        let app = router(state);
        let req = Request::get("/federate?match[]=%7Bjob%3D~%22.%2B%22%7D").body(Body::empty()).unwrap();
        let (s, body) = call(app, req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            body,
            "# TYPE load untyped\nload{job=\"a\"} 0.25 200000\n# TYPE up untyped\nup{job=\"a\"} 1 200000\nup{job=\"b\"} 0 200000\n"
        );
    }

    #[tokio::test]
    async fn ready_is_503_until_the_store_is_set() {
        let state = AppState::new(Limits::default(), Arc::new(|| 0));
        let app = router(state.clone());
        let (s, body) = call(app.clone(), Request::get("/-/ready").body(Body::empty()).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "starting up\n"));
        let (s, body) = call(app.clone(), Request::get("/api/v1/labels").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"errorType\":\"unavailable\""), "{body}");
        state.set_store(Arc::new(MemStore::new()));
        let (s, body) = call(app, Request::get("/-/ready").body(Body::empty()).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "ready\n"));
    }

    #[tokio::test]
    async fn metrics_count_requests_by_route() {
        let app = app();
        for uri in ["/api/v1/label/job/values", "/api/v1/label/__name__/values", "/nope"] {
            call(app.clone(), Request::get(uri).body(Body::empty()).unwrap()).await;
        }
        let (s, body) = call(app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            body.contains("telltale_http_requests_total{handler=\"/api/v1/label/{name}/values\",code=\"200\"} 2\n"),
            "{body}"
        );
        assert!(body.contains("telltale_http_requests_total{handler=\"unmatched\",code=\"404\"} 1\n"), "{body}");
        assert!(body.contains("telltale_storage_series 3\n"), "{body}");
    }
}
