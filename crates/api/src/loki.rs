//! Loki's HTTP API (<https://grafana.com/docs/loki/latest/reference/loki-http-api/>):
//! `POST /loki/api/v1/push` and the read side Grafana's Loki data source uses: `query`,
//! `query_range`, `labels`, `label/<name>/values`, `series`, `index/stats`, `tail`
//! (websocket) and `status/buildinfo`. Responses are Loki's JSON shapes byte for byte where
//! clients look (`status`, `data.resultType`, `data.result`, nanosecond strings for log
//! timestamps, float seconds and string values for samples); errors are plain text, as Loki's.

use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};
use telltale_ingest::loki;
use telltale_logql::{Engine, LogStream, Query, QueryResult, StepSeries};
use telltale_model::{Labels, Matcher, Nanos, TimeRange};
use telltale_storage::{Direction, MemLogStore};

use crate::body::content_encoding;
use crate::logwrite::ingest_logs;
use crate::params::Params;
use crate::state::Limits;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// `POST /loki/api/v1/push`: JSON (optionally gzip) or snappy protobuf, by Content-Type.
pub(crate) async fn push(app: Scoped, headers: HeaderMap, body: Body) -> Result<StatusCode, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let json = ct.starts_with("application/json");
    let encoding = content_encoding(&headers)?;
    let decode = move |b: &[u8], l: &Limits| {
        Ok(if json { loki::decode_json(b, &l.logs)? } else { loki::decode_proto(b, &l.logs)? })
    };
    let (stats, batch) = ingest_logs(&app, &headers, body, encoding, "loki", decode).await?;
    tracing::debug!(entries = stats.entries, streams = batch.stream_count(), "loki push accepted");
    Ok(StatusCode::NO_CONTENT)
}

fn now_ns(app: &AppState) -> Nanos {
    app.now_ms().saturating_mul(1_000_000)
}

/// Loki's timestamp parameter: nanoseconds (more than 10 digits), seconds (10 digits or
/// fewer, or with a fraction), or RFC 3339.
pub(crate) fn loki_time(param: &str, s: &str) -> Result<Nanos, ApiError> {
    let bad = || ApiError::bad_input(format!("invalid parameter {param:?}: cannot parse {s:?} to a valid timestamp"));
    if s.contains('.') {
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() && f.abs() < 9.2e9 {
                let secs = f.trunc();
                let frac = ((f - secs) * 1000.0).round() / 1000.0;
                return Ok(secs as i64 * 1_000_000_000 + (frac * 1e9).round() as i64);
            }
            return Err(bad());
        }
    }
    match s.parse::<i64>() {
        Ok(n) if s.trim_start_matches('-').len() <= 10 => n.checked_mul(1_000_000_000).ok_or_else(bad),
        Ok(n) => Ok(n),
        Err(_) => loki::parse_rfc3339_ns(s).ok_or_else(bad),
    }
}

/// Seconds (float) or a Prometheus duration, in nanoseconds.
fn loki_duration(param: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.abs() < 9.2e9 {
            return Ok((f * 1e9).round() as i64);
        }
    }
    telltale_model::units::parse_duration(s).ok().and_then(|d| i64::try_from(d.as_nanos()).ok()).ok_or_else(|| {
        ApiError::bad_input(format!("invalid parameter {param:?}: cannot parse {s:?} to a valid duration"))
    })
}

fn direction(p: &Params) -> Result<Direction, ApiError> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(d) => {
            Err(ApiError::bad_input(format!("invalid parameter \"direction\": {d:?} is neither forward nor backward")))
        }
    }
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(100),
        Some(s) => {
            s.parse().map_err(|_| ApiError::bad_input(format!("invalid parameter \"limit\": {s:?} is not a number")))
        }
    }
}

/// `start` and `end` with Loki's defaults: end now, start `since` (default `default_since`)
/// before end.
fn bounds(app: &AppState, p: &Params, default_since: i64) -> Result<(Nanos, Nanos), ApiError> {
    let end = match p.get("end") {
        Some(s) if !s.is_empty() => loki_time("end", s)?,
        _ => now_ns(app),
    };
    let since = match p.get("since") {
        Some(s) if !s.is_empty() => loki_duration("since", s)?,
        _ => default_since,
    };
    let start = match p.get("start") {
        Some(s) if !s.is_empty() => loki_time("start", s)?,
        _ => end - since,
    };
    if end < start {
        return Err(ApiError::bad_input(
            "invalid parameter \"end\": end timestamp must not be before or equal to start time",
        ));
    }
    Ok((start, end))
}

const HOUR: i64 = 3_600_000_000_000;

fn query_text(p: &Params) -> Result<String, ApiError> {
    match p.get("query") {
        Some(q) if !q.trim().is_empty() => Ok(q.to_string()),
        _ => Err(ApiError::bad_input("invalid parameter \"query\": missing")),
    }
}

fn categorize(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|f| f.trim() == "categorize-labels"))
}

/// `GET|POST /loki/api/v1/query_range`.
pub(crate) async fn query_range(app: Scoped, headers: HeaderMap, p: Params) -> Result<Response, ApiError> {
    let text = query_text(&p)?;
    let (start, end) = bounds(&app, &p, HOUR)?;
    let step = match p.get("step") {
        Some(s) if !s.is_empty() => loki_duration("step", s)?,
        // Loki's default: about 250 points, at least one second.
        _ => (((end - start) as f64 / 1e9 / 250.0).ceil().max(1.0) * 1e9) as i64,
    };
    let q = OwnedQuery {
        text,
        start,
        end,
        step,
        limit: limit(&p)?,
        direction: direction(&p)?,
        categorize: categorize(&headers),
        instant: false,
    };
    run(&app, q).await
}

/// `GET|POST /loki/api/v1/query`: an instant metric query at `time` (default now).
pub(crate) async fn query(app: Scoped, headers: HeaderMap, p: Params) -> Result<Response, ApiError> {
    let text = query_text(&p)?;
    let at = match p.get("time") {
        Some(s) if !s.is_empty() => loki_time("time", s)?,
        _ => now_ns(&app),
    };
    let q = OwnedQuery {
        text,
        start: at,
        end: at,
        step: 1,
        limit: limit(&p)?,
        direction: direction(&p)?,
        categorize: categorize(&headers),
        instant: true,
    };
    run(&app, q).await
}

struct OwnedQuery {
    text: String,
    start: Nanos,
    end: Nanos,
    step: i64,
    limit: usize,
    direction: Direction,
    categorize: bool,
    instant: bool,
}

impl OwnedQuery {
    fn borrow(&self) -> Query<'_> {
        Query {
            text: &self.text,
            start: self.start,
            end: self.end,
            step: self.step,
            limit: self.limit,
            direction: self.direction,
            categorize: self.categorize,
            instant: self.instant,
        }
    }
}

async fn run(app: &Scoped, q: OwnedQuery) -> Result<Response, ApiError> {
    let engine = Engine::new(app.limits().logql.clone());
    let started = Instant::now();
    let categorize = q.categorize;
    let result = app.blocking_logs(move |store| Ok(engine.query(store, &q.borrow())?)).await?;
    let took = started.elapsed().as_secs_f64();
    let body = query_json(&result, categorize, took);
    Ok(([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response())
}

fn labels_obj(l: &Labels) -> Json {
    let mut m = Map::new();
    for (k, v) in l.iter() {
        m.insert(k.to_string(), Json::String(v.to_string()));
    }
    Json::Object(m)
}

/// Nanoseconds as Prometheus-model seconds (milliseconds kept): `1700000000` or `1700000000.5`.
fn seconds_json(ns: Nanos) -> Json {
    let ms = ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        Json::from(ms / 1000)
    } else {
        Json::from(ms as f64 / 1000.0)
    }
}

fn stream_json(s: &LogStream, categorize: bool) -> Json {
    let values: Vec<Json> = s
        .entries
        .iter()
        .map(|e| {
            if categorize {
                let mut extra = Map::new();
                if !e.metadata.is_empty() {
                    extra.insert("structuredMetadata".into(), labels_obj(&e.metadata));
                }
                if !e.parsed.is_empty() {
                    extra.insert("parsed".into(), labels_obj(&e.parsed));
                }
                json!([e.ts.to_string(), e.line, Json::Object(extra)])
            } else {
                json!([e.ts.to_string(), e.line])
            }
        })
        .collect();
    json!({"stream": labels_obj(&s.labels), "values": values})
}

fn series_json(s: &StepSeries) -> Json {
    let values: Vec<Json> =
        s.points.iter().map(|(t, v)| json!([seconds_json(*t), telltale_logql::fmt_num(*v)])).collect();
    json!({"metric": labels_obj(&s.labels), "values": values})
}

fn query_json(r: &QueryResult, categorize: bool, took: f64) -> Json {
    let (kind, result, entries) = match r {
        QueryResult::Streams(s) => (
            "streams",
            Json::Array(s.iter().map(|x| stream_json(x, categorize)).collect()),
            s.iter().map(|x| x.entries.len()).sum(),
        ),
        QueryResult::Matrix(m) => ("matrix", Json::Array(m.iter().map(series_json).collect()), 0),
        QueryResult::Vector(v) => (
            "vector",
            Json::Array(
                v.iter()
                    .map(|s| {
                        let (t, x) = s.points[0];
                        json!({"metric": labels_obj(&s.labels), "value": [seconds_json(t), telltale_logql::fmt_num(x)]})
                    })
                    .collect(),
            ),
            0,
        ),
        QueryResult::Scalar(t, v) => ("scalar", json!([seconds_json(*t), telltale_logql::fmt_num(*v)]), 0),
    };
    let stats = json!({"summary": {
        "bytesProcessedPerSecond": 0, "linesProcessedPerSecond": 0, "totalBytesProcessed": 0,
        "totalLinesProcessed": 0, "execTime": took, "queueTime": 0, "subqueries": 0,
        "totalEntriesReturned": entries, "splits": 0, "shards": 0,
    }});
    let mut data = json!({"resultType": kind, "result": result, "stats": stats});
    if categorize && kind == "streams" {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    json!({"status": "success", "data": data})
}

fn success(data: Json) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

/// The matchers of a selector or of a whole log query (`{a="b"} |= "x"`): only the
/// selector narrows label and series lookups, as in Loki.
fn selector_matchers(param: &str, q: &str) -> Result<Vec<Matcher>, ApiError> {
    let expr =
        telltale_logql::parse(q).map_err(|e| ApiError::bad_input(format!("invalid parameter {param:?}: {e}")))?;
    match expr {
        telltale_logql::ast::Expr::Log(l) => Ok(l.matchers),
        _ => {
            Err(ApiError::bad_input(format!("invalid parameter {param:?}: want a stream selector like {{job=\"x\"}}")))
        }
    }
}

fn optional_matchers(p: &Params, name: &str) -> Result<Vec<Matcher>, ApiError> {
    match p.get(name) {
        Some(q) if !q.trim().is_empty() => selector_matchers(name, q),
        _ => Ok(Vec::new()),
    }
}

/// `GET|POST /loki/api/v1/labels`: label names over `[start, end]` (default the last 6h).
pub(crate) async fn labels(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (start, end) = bounds(&app, &p, 6 * HOUR)?;
    let matchers = optional_matchers(&p, "query")?;
    let names = app.blocking_logs(move |s| Ok(s.log_label_names(TimeRange::new(start, end), &matchers)?)).await?;
    Ok(success(json!(names)))
}

/// `GET|POST /loki/api/v1/label/<name>/values`.
pub(crate) async fn label_values(app: Scoped, Path(name): Path<String>, p: Params) -> Result<Response, ApiError> {
    let (start, end) = bounds(&app, &p, 6 * HOUR)?;
    let matchers = optional_matchers(&p, "query")?;
    let values =
        app.blocking_logs(move |s| Ok(s.log_label_values(&name, TimeRange::new(start, end), &matchers)?)).await?;
    Ok(success(json!(values)))
}

/// `GET|POST /loki/api/v1/series`: the streams matching any `match[]`.
pub(crate) async fn series(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (start, end) = bounds(&app, &p, 6 * HOUR)?;
    let selectors: Vec<Vec<Matcher>> =
        p.all("match[]").chain(p.all("match")).map(|q| selector_matchers("match[]", q)).collect::<Result<_, _>>()?;
    let streams = app
        .blocking_logs(move |s| {
            let range = TimeRange::new(start, end);
            let mut out: Vec<Labels> = Vec::new();
            if selectors.is_empty() {
                out = s.log_streams(range, &[])?;
            }
            for m in &selectors {
                out.extend(s.log_streams(range, m)?);
            }
            out.sort();
            out.dedup();
            Ok(out)
        })
        .await?;
    Ok(success(Json::Array(streams.iter().map(labels_obj).collect())))
}

/// `GET|POST /loki/api/v1/index/stats`: `{"streams","chunks","entries","bytes"}` (no envelope).
pub(crate) async fn index_stats(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (start, end) = bounds(&app, &p, HOUR)?;
    let q = query_text(&p)?;
    let matchers = selector_matchers("query", &q)?;
    let st = app.blocking_logs(move |s| Ok(s.log_stats(TimeRange::new(start, end), &matchers)?)).await?;
    let body = json!({"streams": st.streams, "chunks": st.chunks, "entries": st.entries, "bytes": st.bytes});
    Ok(([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response())
}

/// `GET /loki/api/v1/status/buildinfo`: Grafana reads the version to pick features.
pub(crate) async fn buildinfo() -> Response {
    let body = json!({"version": "3.4.0", "revision": concat!("telltale-", env!("CARGO_PKG_VERSION")), "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""});
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET /loki/api/v1/tail` (websocket): first the lines since `start` (default one hour
/// ago, at most `limit`), then every new line the query selects, as
/// `{"streams":[...],"dropped_entries":null}` messages.
pub(crate) async fn tail(app: Scoped, ws: WebSocketUpgrade, p: Params) -> Result<Response, ApiError> {
    let text = query_text(&p)?;
    let expr = telltale_logql::parse(&text)?;
    if !matches!(expr, telltale_logql::ast::Expr::Log(_)) {
        return Err(ApiError::bad_input("tail needs a log query, not a metric query"));
    }
    let limit = limit(&p)?;
    let now = now_ns(&app);
    let start = match p.get("start") {
        Some(s) if !s.is_empty() => loki_time("start", s)?,
        _ => now - HOUR,
    };
    app.on_blocking_pool(|a| a.log_store().map(|_| ())).await?;
    let rx = app.tail().subscribe();
    Ok(ws.on_upgrade(move |socket| tail_session(app, socket, rx, text, start, now, limit)))
}

async fn tail_session(
    app: Scoped,
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<(String, telltale_model::LogBatch)>>,
    text: String,
    start: Nanos,
    now: Nanos,
    limit: usize,
) {
    let opts = app.limits().logql.clone();
    let live_limit = opts.max_entries_limit;
    let engine = Engine::new(opts);
    let backlog = OwnedQuery {
        text: text.clone(),
        start,
        end: now + 1,
        step: 1,
        limit,
        direction: Direction::Forward,
        categorize: false,
        instant: false,
    };
    let e2 = engine.clone();
    let first = app.blocking_logs(move |s| Ok(e2.query(s, &backlog.borrow())?)).await;
    if let Ok(QueryResult::Streams(streams)) = first {
        if !streams.is_empty() && send_streams(&mut socket, &streams, None).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let (batch, dropped) = match msg {
                    // Another tenant's lines are not this subscriber's business.
                    Ok(b) if b.0 != app.tenant() => continue,
                    Ok(b) => (b, None),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = send_streams(&mut socket, &[], Some(n)).await;
                        continue;
                    }
                    Err(_) => return,
                };
                let (engine, text) = (engine.clone(), text.clone());
                let found = tokio::task::spawn_blocking(move || {
                    let mem = MemLogStore::new();
                    telltale_storage::LogWriter::write_logs(&mem, &batch.1).ok()?;
                    let q = Query { text: &text, start: i64::MIN + 1, end: i64::MAX, step: 1, limit: live_limit, direction: Direction::Forward, categorize: false, instant: false };
                    match engine.query(&mem, &q).ok()? {
                        QueryResult::Streams(s) => Some(s),
                        _ => None,
                    }
                }).await.ok().flatten();
                if let Some(streams) = found {
                    if !streams.is_empty() && send_streams(&mut socket, &streams, dropped).await.is_err() {
                        return;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}

async fn send_streams(socket: &mut WebSocket, streams: &[LogStream], dropped: Option<u64>) -> Result<(), axum::Error> {
    let dropped = match dropped {
        Some(n) => json!([{"labels": {}, "timestamp": "0", "dropped": n}]),
        None => Json::Null,
    };
    let msg = json!({"streams": streams.iter().map(|s| stream_json(s, false)).collect::<Vec<_>>(), "dropped_entries": dropped});
    socket.send(Message::Text(msg.to_string().into())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_times() {
        assert_eq!(loki_time("t", "1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(loki_time("t", "1700000000123456789").unwrap(), 1_700_000_000_123_456_789);
        assert_eq!(loki_time("t", "1700000000.5").unwrap(), 1_700_000_000_500_000_000);
        assert_eq!(loki_time("t", "2023-11-14T22:13:20.000000001Z").unwrap(), 1_700_000_000_000_000_001);
        assert!(loki_time("start", "yesterday").unwrap_err().message().contains("cannot parse \"yesterday\""));
        assert_eq!(loki_duration("step", "15").unwrap(), 15_000_000_000);
        assert_eq!(loki_duration("step", "1m").unwrap(), 60_000_000_000);
        assert_eq!(seconds_json(1_500_000_000), json!(1.5));
        assert_eq!(seconds_json(2_000_000_000), json!(2));
    }
}

#[cfg(test)]
mod http_tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use telltale_model::{LogBatch, LogEntry};
    use telltale_storage::{MemLogStore, MemStore};
    use tower::ServiceExt;

    use crate::{router, AppState, Limits};

    /// 2023-11-14T22:13:20Z, the fake clock's "now".
    const NOW_MS: i64 = 1_700_000_000_000;

    fn state() -> AppState {
        let state = AppState::new(Limits::default(), Arc::new(|| NOW_MS));
        state.set_store(Arc::new(MemStore::new()));
        state.set_log_store(Arc::new(MemLogStore::new()));
        state
    }

    async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, String) {
        let res = router(state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
        call(state, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    fn enc(q: &str) -> String {
        form_urlencoded::byte_serialize(q.as_bytes()).collect()
    }

    async fn push_json(state: &AppState, body: &str) -> (StatusCode, String) {
        let req = Request::post("/loki/api/v1/push")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        call(state, req).await
    }

    const T0: &str = "1699999990000000000";

    async fn loaded() -> AppState {
        let s = state();
        let body = format!(
            r#"{{"streams":[
              {{"stream":{{"job":"api","level":"info"}},"values":[["{T0}","GET /a 200"],["1699999995000000001","GET /b 200",{{"trace_id":"t1"}}]]}},
              {{"stream":{{"job":"api","level":"error"}},"values":[["1699999996000000000","POST /c 500"]]}}]}}"#
        );
        let (st, b) = push_json(&s, &body).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        s
    }

    #[tokio::test]
    async fn push_then_query_range_streams() {
        let s = loaded().await;
        let (st, body) =
            get(&s, &format!("/loki/api/v1/query_range?query={}&limit=10&direction=forward", enc(r#"{job="api"}"#)))
                .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success");
        assert_eq!(v["data"]["resultType"], "streams");
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([
                {"stream": {"job": "api", "level": "error"}, "values": [["1699999996000000000", "POST /c 500"]]},
                {"stream": {"job": "api", "level": "info"}, "values": [[T0, "GET /a 200"]]},
                {"stream": {"job": "api", "level": "info", "trace_id": "t1"}, "values": [["1699999995000000001", "GET /b 200"]]},
            ])
        );
        assert_eq!(v["data"]["stats"]["summary"]["totalEntriesReturned"], 3);
    }

    #[tokio::test]
    async fn categorized_labels_keep_metadata_apart() {
        let s = loaded().await;
        let req =
            Request::get(format!("/loki/api/v1/query_range?query={}&limit=10", enc(r#"{level="info"} | logfmt"#)))
                .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
                .body(Body::empty())
                .unwrap();
        let (st, body) = call(&s, req).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["encodingFlags"], serde_json::json!(["categorize-labels"]));
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([{"stream": {"job": "api", "level": "info"}, "values": [
                ["1699999995000000001", "GET /b 200", {"structuredMetadata": {"trace_id": "t1"}}],
                [T0, "GET /a 200", {}],
            ]}])
        );
    }

    #[tokio::test]
    async fn protobuf_push_with_structured_metadata() {
        let s = state();
        let mut batch = LogBatch::new();
        let labels = telltale_model::Labels::from_pairs([("job", "promtail")]).unwrap();
        let meta = telltale_model::Labels::from_pairs([("pod", "p-1")]).unwrap();
        batch.push(labels, [LogEntry { ts: 1_699_999_999_000_000_000, line: "hello".into(), metadata: meta }]);
        let body = snap::raw::Encoder::new().compress_vec(&telltale_ingest::loki::encode_proto(&batch)).unwrap();
        let req = Request::post("/loki/api/v1/push")
            .header("content-type", "application/x-protobuf")
            .body(Body::from(body))
            .unwrap();
        let (st, b) = call(&s, req).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        let (_, body) = get(&s, &format!("/loki/api/v1/query_range?query={}", enc(r#"{job="promtail"}"#))).await;
        assert!(
            body.contains(
                r#""result":[{"stream":{"job":"promtail","pod":"p-1"},"values":[["1699999999000000000","hello"]]}]"#
            ),
            "{body}"
        );
    }

    #[tokio::test]
    async fn metric_queries_in_loki_shapes() {
        let s = loaded().await;
        let q = enc(r#"sum by (level) (count_over_time({job="api"}[1m]))"#);
        let (st, body) = get(&s, &format!("/loki/api/v1/query?query={q}&time=1700000000")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resultType"], "vector");
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([
                {"metric": {"level": "error"}, "value": [1700000000, "1"]},
                {"metric": {"level": "info"}, "value": [1700000000, "2"]},
            ])
        );
        let (_, body) =
            get(&s, &format!("/loki/api/v1/query_range?query={q}&start=1699999980&end=1700000000&step=10")).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resultType"], "matrix");
        assert_eq!(
            v["data"]["result"][1],
            serde_json::json!({"metric": {"level": "info"}, "values": [[1699999990, "1"], [1700000000, "2"]]})
        );
        let (_, body) = get(&s, &format!("/loki/api/v1/query?query={}", enc("1+1"))).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (&v["data"]["resultType"], &v["data"]["result"]),
            (&serde_json::json!("scalar"), &serde_json::json!([1700000000, "2"]))
        );
    }

    #[tokio::test]
    async fn labels_series_and_stats() {
        let s = loaded().await;
        let (_, body) = get(&s, "/loki/api/v1/labels").await;
        assert_eq!(body, r#"{"data":["job","level"],"status":"success"}"#);
        let (_, body) = get(&s, "/loki/api/v1/label/level/values").await;
        assert_eq!(body, r#"{"data":["error","info"],"status":"success"}"#);
        let (_, body) = get(&s, &format!("/loki/api/v1/label/level/values?query={}", enc(r#"{level=~"e.*"}"#))).await;
        assert_eq!(body, r#"{"data":["error"],"status":"success"}"#);
        let (_, body) = get(&s, &format!("/loki/api/v1/series?match[]={}", enc(r#"{level="info"}"#))).await;
        assert_eq!(body, r#"{"data":[{"job":"api","level":"info"}],"status":"success"}"#);
        let (_, body) = get(&s, &format!("/loki/api/v1/index/stats?query={}", enc(r#"{job="api"}"#))).await;
        assert_eq!(body, r#"{"bytes":31,"chunks":2,"entries":3,"streams":2}"#);
        // Outside the default 6h window of the label endpoints: nothing.
        let (_, body) = get(&s, "/loki/api/v1/labels?start=1600000000&end=1600000001").await;
        assert_eq!(body, r#"{"data":[],"status":"success"}"#);
    }

    #[tokio::test]
    async fn errors_are_plain_text_with_loki_statuses() {
        let s = loaded().await;
        let (st, body) = get(&s, &format!("/loki/api/v1/query_range?query={}", enc("sum(("))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("parse error at line 1, col 6: syntax error"), "{body}");
        let (st, body) = get(&s, &format!("/loki/api/v1/query?query={}", enc(r#"{job="api"}"#))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.contains("log queries are not supported as an instant query type"), "{body}");
        let (st, body) = push_json(&s, r#"{"streams":[{"stream":{},"values":[["1","x"]]}]}"#).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(body.contains("at least one label pair is required per stream"), "{body}");
        let (st, _) = get(&s, "/loki/api/v1/query_range").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn rate_limits_answer_429_naming_the_limit() {
        let s = state();
        let mut limits = Limits::default();
        limits.log_rates.ingestion_rate = 10;
        limits.log_rates.ingestion_burst = 10;
        s.set_limits(limits);
        let (st, body) = push_json(&s, r#"{"streams":[{"stream":{"a":"b"},"values":[["1","0123456789abc"]]}]}"#).await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(body.starts_with("ingestion_rate (10B/s, burst 10B) exceeded for tenant \"default\""), "{body}");
        let (_, metrics) = get(&s, "/metrics").await;
        assert!(metrics.contains("telltale_logs_rejected_lines_total{reason=\"rate_limited\"} 1\n"), "{metrics}");
    }

    #[tokio::test]
    async fn long_lines_are_truncated_and_counted() {
        let s = state();
        let mut limits = Limits::default();
        limits.logs.max_line_size = 4;
        s.set_limits(limits);
        let (st, _) = push_json(&s, r#"{"streams":[{"stream":{"a":"b"},"values":[["1","0123456789"]]}]}"#).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (_, body) = get(&s, &format!("/loki/api/v1/query_range?query={}&start=0&end=10", enc(r#"{a="b"}"#))).await;
        assert!(body.contains(r#"["1","0123"]"#), "{body}");
        let (_, metrics) = get(&s, "/metrics").await;
        assert!(metrics.contains("telltale_logs_rejected_lines_total{reason=\"truncated\"} 1\n"), "{metrics}");
        assert!(metrics.contains("telltale_logs_ingested_lines_total{protocol=\"loki\"} 1\n"), "{metrics}");
    }

    #[tokio::test]
    async fn tail_streams_backlog_then_new_lines() {
        use futures_util::StreamExt as _;
        let s = state();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(s.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        // A line from before the tail starts (within its default hour).
        let (st, _) =
            push_json(&s, r#"{"streams":[{"stream":{"job":"t"},"values":[["1699999000000000000","old"]]}]}"#).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let url = format!("ws://{addr}/loki/api/v1/tail?query={}", enc(r#"{job="t"} != "skip""#));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let patience = std::time::Duration::from_secs(30);
        let first = tokio::time::timeout(patience, ws.next()).await.unwrap().unwrap().unwrap().into_text().unwrap();
        assert_eq!(
            first.as_str(),
            r#"{"dropped_entries":null,"streams":[{"stream":{"job":"t"},"values":[["1699999000000000000","old"]]}]}"#
        );
        push_json(&s, r#"{"streams":[{"stream":{"job":"t"},"values":[["1700000000000000000","skip me"],["1700000000000000001","new"]]},{"stream":{"job":"other"},"values":[["1700000000000000000","x"]]}]}"#).await;
        let next = tokio::time::timeout(patience, ws.next()).await.unwrap().unwrap().unwrap().into_text().unwrap();
        assert_eq!(
            next.as_str(),
            r#"{"dropped_entries":null,"streams":[{"stream":{"job":"t"},"values":[["1700000000000000001","new"]]}]}"#
        );
        ws.close(None).await.unwrap();
    }
}
