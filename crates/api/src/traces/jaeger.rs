//! Jaeger's query API (what Jaeger's UI and Grafana's Jaeger data source call,
//! <https://www.jaegertracing.io/docs/latest/apis/#http-json-internal>): services, operations,
//! trace by id and trace search, with times in microseconds.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as J};

use super::parse_trace_id;
use super::render::{jaeger_envelope, jaeger_trace};
use super::tempo::{find, parse_go_duration, read_trace, trace_v1, wants_protobuf, Request};
use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

/// `GET /api/traces/{id}`: Jaeger's JSON, or Tempo v1's protobuf when asked for it.
pub(crate) async fn trace_or_tempo(
    app: Scoped,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_trace_id(&id)?;
    if wants_protobuf(&headers) {
        return trace_v1(&app, id, &headers).await;
    }
    let read = read_trace(&app, id).await?;
    Ok(crate::json(jaeger_envelope(json!([jaeger_trace(&id, &read.batch)]), 1)).into_response())
}

/// `GET /api/services`.
pub(crate) async fn services(app: Scoped) -> Result<Response, ApiError> {
    let s = app.blocking_traces(|_, t| Ok(t.db().services())).await?;
    let n = s.len();
    Ok(crate::json(jaeger_envelope(json!(s), n)))
}

/// `GET /api/services/{service}/operations`: the span names of one service.
pub(crate) async fn service_operations(app: Scoped, Path(service): Path<String>) -> Result<Response, ApiError> {
    let ops = app.blocking_traces(move |_, t| Ok(t.db().operations(Some(&service)))).await?;
    let mut names: Vec<String> = ops.into_iter().map(|(_, n, _)| n).collect();
    names.dedup();
    let n = names.len();
    Ok(crate::json(jaeger_envelope(json!(names), n)))
}

/// `GET /api/operations?service=&spanKind=`: names with their kinds.
pub(crate) async fn operations(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let service = p.get("service").filter(|s| !s.is_empty()).map(str::to_owned);
    let kind = p.get("spanKind").filter(|s| !s.is_empty()).map(str::to_owned);
    let ops = app.blocking_traces(move |_, t| Ok(t.db().operations(service.as_deref()))).await?;
    let data: Vec<J> = ops
        .into_iter()
        .filter(|(_, _, k)| kind.as_deref().is_none_or(|want| want == k.name()))
        .map(|(_, n, k)| json!({"name": n, "spanKind": k.name()}))
        .collect();
    let n = data.len();
    Ok(crate::json(jaeger_envelope(json!(data), n)))
}

fn micros(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map(|v| v.saturating_mul(1000))
            .map_err(|_| ApiError::bad_input(format!("invalid {name} {s:?}: want unix microseconds"))),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The TraceQL a Jaeger search means: one span of `service` (and `operation`) carrying every tag,
/// at least `minDuration` long and at most `maxDuration`.
fn jaeger_query(p: &Params) -> Result<String, ApiError> {
    let mut conds = Vec::new();
    let service = p
        .get("service")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_input("parameter 'service' is required"))?;
    conds.push(format!("resource.service.name = {}", quoted(service)));
    if let Some(op) = p.get("operation").filter(|s| !s.is_empty()) {
        conds.push(format!("name = {}", quoted(op)));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(t) = p.get("tags").filter(|s| !s.is_empty()) {
        let map: serde_json::Map<String, J> =
            serde_json::from_str(t).map_err(|e| ApiError::bad_input(format!("invalid tags {t:?}: {e}")))?;
        for (k, v) in map {
            tags.push((k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        }
    }
    for t in p.all("tag") {
        let (k, v) =
            t.split_once(':').ok_or_else(|| ApiError::bad_input(format!("invalid tag {t:?}: want key:value")))?;
        tags.push((k.to_string(), v.to_string()));
    }
    for (k, v) in tags {
        conds.push(match (k.as_str(), v.as_str()) {
            ("error", "true") => "status = error".to_string(),
            ("span.kind", kind) => format!("kind = {kind}"),
            _ => format!(".\"{}\" = {}", k.replace('"', "\\\""), quoted(&v)),
        });
    }
    for (param, op) in [("minDuration", ">="), ("maxDuration", "<=")] {
        if let Some(d) = p.get(param).filter(|s| !s.is_empty()) {
            conds.push(format!("duration {op} {}ns", parse_go_duration(param, d)?));
        }
    }
    Ok(format!("{{ {} }}", conds.join(" && ")))
}

/// `GET /api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=`.
pub(crate) async fn search(app: Scoped, p: Params) -> Result<Response, ApiError> {
    if let Some(ids) = p.get("traceID").filter(|s| !s.is_empty()) {
        let mut data = Vec::new();
        for id in ids.split(',').chain(p.all("traceID").skip(1)) {
            let id = parse_trace_id(id)?;
            if let Ok(read) = read_trace(&app, id).await {
                data.push(jaeger_trace(&id, &read.batch));
            }
        }
        let n = data.len();
        return Ok(crate::json(jaeger_envelope(json!(data), n)));
    }
    let limit = match p.get("limit") {
        None | Some("") => 20,
        Some(s) => s.parse().map_err(|_| ApiError::bad_input(format!("invalid limit {s:?}")))?,
    };
    let req = Request {
        query: telltale_traceql::parse(&jaeger_query(&p)?)?,
        start: micros(&p, "start")?,
        end: micros(&p, "end")?,
        min_trace_duration: 0,
        max_trace_duration: 0,
        limit: usize::clamp(limit, 1, 10_000),
    };
    let (found, _) = app.blocking_traces(move |_, t| find(t, &req)).await?;
    let data: Vec<J> = found.iter().map(|f| jaeger_trace(&f.id, &f.batch)).collect();
    let n = data.len();
    Ok(crate::json(jaeger_envelope(json!(data), n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_searches_become_traceql() {
        let p = Params::from_query(
            "service=api&operation=GET%20%2F&tags=%7B%22http.status_code%22%3A%22500%22%2C%22error%22%3A%22true%22%7D&minDuration=1.2ms",
        );
        let q = jaeger_query(&p).unwrap();
        assert_eq!(
            q,
            r#"{ resource.service.name = "api" && name = "GET /" && status = error && ."http.status_code" = "500" && duration >= 1200000ns }"#
        );
        telltale_traceql::parse(&q).unwrap();
        assert!(jaeger_query(&Params::from_query("operation=x")).is_err());
    }
}
