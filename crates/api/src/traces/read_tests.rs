//! The read APIs of `deps`, `jaeger_metrics`, `jaeger_v3`, `tempo_metrics`, `zipkin` and
//! `exemplars` through the router: spans written through [`TraceService::write`], the RED
//! generator collected into the metric store as the server's timer does, then each endpoint
//! asked as its client would.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode as Http};
use http_body_util::BodyExt;
use serde_json::Value as J;
use telltale_model::{KeyValue, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode, TraceId};
use telltale_storage::{MemStore, MetricWriter};
use telltale_tracestore::TraceDb;
use tower::ServiceExt;

use super::TraceService;
use crate::{router, AppState, Limits};

struct Fixture {
    app: axum::Router,
    now: i64,
    _dir: tempfile::TempDir,
}

fn resource(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: vec![KeyValue::str("service.name", service)],
        scopes: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
        ..ResourceSpans::default()
    }
}

/// `front` calls `back` once (the server span fails), then the generator is collected.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(TraceDb::open(dir.path(), &telltale_tracestore::Options::default()).unwrap());
    let traces = Arc::new(TraceService::new(db, telltale_spanmetrics::Options::default()));
    let store = Arc::new(MemStore::new());
    let state = AppState::with_store(store.clone(), Limits::default());
    state.set_traces(traces.clone());
    let now = state.now_ms();
    let start = (now - 60_000) * 1_000_000;
    let trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    let span = |id: u8, parent: u8, name: &str, kind, status, ms: i64| Span {
        trace_id,
        span_id: SpanId([id; 8]),
        parent_span_id: SpanId([parent; 8]),
        name: name.into(),
        kind,
        start,
        end: start + ms * 1_000_000,
        status,
        attributes: vec![KeyValue::str("http.method", "GET")],
        ..Span::default()
    };
    let batch = SpanBatch {
        resources: vec![
            resource(
                "front",
                vec![
                    span(1, 0, "GET /", SpanKind::Server, StatusCode::Unset, 30),
                    span(2, 1, "call back", SpanKind::Client, StatusCode::Unset, 20),
                ],
            ),
            resource("back", vec![span(3, 2, "handle", SpanKind::Server, StatusCode::Error, 10)]),
        ],
    };
    traces.write(&batch, now - 60_000).unwrap();
    store.write(&traces.collect(now - 1_000)).unwrap();
    Fixture { app: router(state), now, _dir: dir }
}

async fn get(app: &axum::Router, uri: &str) -> (Http, J) {
    let res = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| J::String(String::from_utf8_lossy(&body).into()));
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_from_the_service_graph() {
    let f = fixture();
    let (s, body) = get(&f.app, &format!("/api/dependencies?endTs={}&lookback=3600000", f.now)).await;
    assert_eq!(s, Http::OK, "{body}");
    // The root server span is called by Tempo's virtual `user` node.
    assert_eq!(
        body["data"],
        serde_json::json!([
            {"parent": "front", "child": "back", "callCount": 1},
            {"parent": "user", "child": "front", "callCount": 1}
        ])
    );
    let (_, body) = get(&f.app, &format!("/api/dependencies?endTs={}&service=nobody", f.now)).await;
    assert_eq!(body["data"], serde_json::json!([]));
    let (s, body) = get(&f.app, &format!("/api/v2/dependencies?endTs={}&lookback=3600000", f.now)).await;
    assert_eq!(s, Http::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!([
            {"parent": "front", "child": "back", "callCount": 1, "errorCount": 1},
            {"parent": "user", "child": "front", "callCount": 1}
        ])
    );
    let (s, _) = get(&f.app, "/api/v2/dependencies").await;
    assert_eq!(s, Http::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn jaeger_monitor_tab() {
    let f = fixture();
    let q = format!("service=back&service=front&endTs={}&lookback=120000&step=60000&ratePer=600000", f.now);
    let (s, body) = get(&f.app, &format!("/api/metrics/calls?{q}&groupByOperation=true")).await;
    assert_eq!(s, Http::OK, "{body}");
    assert_eq!(body["name"], "service_operation_call_rate");
    assert_eq!(body["type"], "GAUGE");
    let metrics = body["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{body}");
    assert_eq!(
        metrics[0]["labels"],
        serde_json::json!([{"name": "service_name", "value": "back"}, {"name": "operation", "value": "handle"}])
    );
    let point = &metrics[0]["metricPoints"][0];
    assert!(point["gaugeValue"]["doubleValue"].as_f64().unwrap() > 0.0, "{body}");
    assert!(point["timestamp"].as_str().unwrap().ends_with('Z'));
    let (_, body) = get(&f.app, &format!("/api/metrics/errors?{q}")).await;
    let by_service: Vec<(String, f64)> = body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let pts = m["metricPoints"].as_array().unwrap();
            (
                m["labels"][0]["value"].as_str().unwrap().to_string(),
                pts[pts.len() - 1]["gaugeValue"]["doubleValue"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_service, [("back".to_string(), 1.0)], "{body}");
    let (s, body) = get(&f.app, &format!("/api/metrics/latencies?{q}&quantile=0.95")).await;
    assert_eq!(s, Http::OK, "{body}");
    assert_eq!(body["name"], "service_latencies");
    assert_eq!(body["metrics"].as_array().unwrap().len(), 2, "{body}");
    let (s, body) = get(&f.app, "/api/metrics/latencies?service=a").await;
    assert_eq!(s, Http::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 400, "{body}");
    let (_, body) = get(&f.app, "/api/metrics/minstep").await;
    assert_eq!(body["data"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn jaeger_v3() {
    let f = fixture();
    let (_, body) = get(&f.app, "/api/v3/services").await;
    assert_eq!(body, serde_json::json!({"services": ["back", "front"]}));
    let (_, body) = get(&f.app, "/api/v3/operations?service=front&span_kind=client").await;
    assert_eq!(body, serde_json::json!({"operations": [{"name": "call back", "spanKind": "client"}]}));
    let (s, body) = get(&f.app, "/api/v3/traces/0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!(s, Http::OK);
    assert_eq!(body["result"]["resourceSpans"].as_array().unwrap().len(), 2, "{body}");
    let (s, body) = get(&f.app, "/api/v3/traces/0000000000000000000000000000abcd").await;
    assert_eq!(s, Http::NOT_FOUND);
    assert_eq!(body["error"]["http_code"], 404, "{body}");
    let (s, body) = get(
        &f.app,
        "/api/v3/traces?query.service_name=back&query.start_time_min=2000-01-01T00:00:00Z&query.start_time_max=2999-01-01T00:00:00Z&query.duration_min=5ms",
    )
    .await;
    assert_eq!(s, Http::OK, "{body}");
    assert_eq!(body["result"]["resourceSpans"].as_array().unwrap().len(), 2, "{body}");
    let (s, body) = get(&f.app, "/api/v3/traces?query.service_name=back").await;
    assert_eq!(s, Http::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("required"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tempo_traceql_metrics() {
    let f = fixture();
    let (start, end) = ((f.now - 120_000) / 1000, (f.now + 1_000) / 1000);
    let q = "%7B%20resource.service.name%20%3D%20%22front%22%20%7D%20%7C%20count_over_time()%20by%20(name)";
    let (s, body) = get(&f.app, &format!("/api/metrics/query_range?q={q}&start={start}&end={end}&step=60s")).await;
    assert_eq!(s, Http::OK, "{body}");
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{body}");
    assert_eq!(series[0]["labels"][0]["key"], "span:name");
    assert_eq!(series[0]["labels"][0]["value"]["stringValue"], "GET /");
    let total: f64 = series[0]["samples"].as_array().unwrap().iter().map(|x| x["value"].as_f64().unwrap()).sum();
    assert_eq!(total, 1.0, "{body}");
    assert!(series[0]["samples"][0]["timestampMs"].is_string());
    let (_, body) = get(&f.app, &format!("/api/metrics/query?q={q}&start={start}&end={end}")).await;
    assert_eq!(body["series"][0]["value"], 1.0, "{body}");
    let (s, body) = get(&f.app, "/api/metrics/query_range?q=%7B%7D").await;
    assert_eq!(s, Http::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn zipkin_reads() {
    let f = fixture();
    let (_, body) = get(&f.app, "/api/v2/services").await;
    assert_eq!(body, serde_json::json!(["back", "front"]));
    let (_, body) = get(&f.app, "/api/v2/spans?serviceName=front").await;
    assert_eq!(body, serde_json::json!(["GET /", "call back"]));
    let (s, _) = get(&f.app, "/api/v2/spans").await;
    assert_eq!(s, Http::BAD_REQUEST);
    let (_, body) = get(&f.app, "/api/v2/remoteServices?serviceName=front").await;
    assert_eq!(body, serde_json::json!(["back"]));
    let (s, body) = get(&f.app, "/api/v2/traces?serviceName=back&annotationQuery=error&minDuration=5000").await;
    assert_eq!(s, Http::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body[0].as_array().unwrap().len(), 3, "{body}");
    let (_, body) = get(&f.app, "/api/v2/traces?serviceName=back&minDuration=50000").await;
    assert_eq!(body, serde_json::json!([]));
    let (s, body) = get(&f.app, "/api/v2/trace/0af7651916cd43dd8448eb211c80319c").await;
    assert_eq!(s, Http::OK);
    assert_eq!(body[0]["traceId"], "0af7651916cd43dd8448eb211c80319c");
}

#[tokio::test(flavor = "multi_thread")]
async fn exemplars_come_from_the_generator() {
    let f = fixture();
    let q = "histogram_quantile(0.9%2C%20sum%20by%20(le)%20(rate(traces_spanmetrics_latency_bucket%7Bservice%3D%22back%22%7D%5B5m%5D)))";
    let (s, body) = get(&f.app, &format!("/api/v1/query_exemplars?query={q}")).await;
    assert_eq!(s, Http::OK, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{body}");
    assert_eq!(data[0]["seriesLabels"]["service"], "back");
    assert_eq!(data[0]["exemplars"][0]["labels"]["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(data[0]["exemplars"][0]["labels"]["span_id"], "0303030303030303");
    let (_, body) = get(&f.app, "/api/v1/query_exemplars?query=up").await;
    assert_eq!(body["data"], serde_json::json!([]));
}
