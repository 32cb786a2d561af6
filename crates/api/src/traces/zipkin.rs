//! Zipkin's v2 read API (`zipkin2-api.yaml`, <https://zipkin.io/zipkin-api/>), what Zipkin's
//! UI and Grafana's Zipkin data source call: `GET /api/v2/services`, `/api/v2/spans`,
//! `/api/v2/remoteServices`, `/api/v2/traces`, `/api/v2/trace/{traceId}` and
//! `/api/v2/dependencies` (in [`super::deps`]). Spans are written back by
//! [`telltale_ingest::zipkin::to_json`]; times are epoch milliseconds and durations
//! microseconds, as Zipkin's.
//!
//! A search becomes TraceQL, one spanset: a span of `serviceName` named `spanName`, calling
//! `remoteServiceName` (`peer.service`, where the Zipkin decoder puts `remoteEndpoint`),
//! carrying every `annotationQuery` term (`key=value` or a bare key; `error` is the error
//! status), lasting `minDuration` to `maxDuration`. Remote services are the servers the
//! service graph saw the service call in the last day.

use axum::extract::Path;
use axum::response::Response;
use serde_json::{json, Value as J};
use telltale_ingest::zipkin::to_json;

use super::deps::{links, millis};
use super::parse_trace_id;
use super::tempo::{find, read_trace, Request};
use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn attr(key: &str) -> String {
    format!(".\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    p.get(name).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_input(format!("{name} is required")))
}

/// `GET /api/v2/services`: every service name.
pub(crate) async fn services(app: Scoped) -> Result<Response, ApiError> {
    let s = app.blocking_traces(|_, t| Ok(t.db().services())).await?;
    Ok(crate::json(json!(s)))
}

/// `GET /api/v2/spans?serviceName=`: the span names of a service.
pub(crate) async fn span_names(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let service = required(&p, "serviceName")?.to_string();
    let ops = app.blocking_traces(move |_, t| Ok(t.db().operations(Some(&service)))).await?;
    let mut names: Vec<String> = ops.into_iter().map(|(_, n, _)| n).collect();
    names.sort();
    names.dedup();
    Ok(crate::json(json!(names)))
}

/// `GET /api/v2/remoteServices?serviceName=`: the services it called (from the service graph).
pub(crate) async fn remote_services(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let service = required(&p, "serviceName")?.to_string();
    let mut out: Vec<String> = links(&app, &p, app.now_ms(), 86_400_000, false)
        .await?
        .into_iter()
        .filter(|l| l.parent == service)
        .map(|l| l.child)
        .collect();
    out.sort();
    out.dedup();
    Ok(crate::json(json!(out)))
}

/// The TraceQL a Zipkin search means.
fn zipkin_query(p: &Params) -> Result<String, ApiError> {
    let mut conds = Vec::new();
    if let Some(s) = p.get("serviceName").filter(|s| !s.is_empty()) {
        conds.push(format!("resource.service.name = {}", quoted(s)));
    }
    if let Some(s) = p.get("remoteServiceName").filter(|s| !s.is_empty()) {
        conds.push(format!("span.\"peer.service\" = {}", quoted(s)));
    }
    if let Some(s) = p.get("spanName").filter(|s| !s.is_empty() && *s != "all") {
        conds.push(format!("name = {}", quoted(s)));
    }
    if let Some(q) = p.get("annotationQuery").filter(|s| !s.trim().is_empty()) {
        for term in q.split(" and ").map(str::trim).filter(|t| !t.is_empty()) {
            conds.push(match term.split_once('=') {
                Some((k, v)) if k.trim() == "error" && v.trim() == "true" => "status = error".to_string(),
                Some((k, v)) => format!("{} = {}", attr(k.trim()), quoted(v.trim())),
                None if term == "error" => "status = error".to_string(),
                None => format!("{} != nil", attr(term)),
            });
        }
    }
    for (param, op) in [("minDuration", ">="), ("maxDuration", "<=")] {
        if let Some(d) = p.get(param).filter(|s| !s.is_empty()) {
            let us: i64 =
                d.parse().map_err(|_| ApiError::bad_input(format!("invalid {param} {d:?}: want microseconds")))?;
            conds.push(format!("duration {op} {}ns", us.saturating_mul(1000)));
        }
    }
    Ok(if conds.is_empty() { "{}".into() } else { format!("{{ {} }}", conds.join(" && ")) })
}

fn search_request(p: &Params, now_ms: i64) -> Result<Request, ApiError> {
    let end = millis(p, "endTs", now_ms)?;
    let lookback = millis(p, "lookback", 86_400_000)?;
    let limit = millis(p, "limit", 10)?;
    Ok(Request {
        query: telltale_traceql::parse(&zipkin_query(p)?)?,
        start: end.saturating_sub(lookback).max(0).saturating_mul(1_000_000),
        // Spans starting at endTs count: the store's end is exclusive.
        end: end.saturating_add(1).saturating_mul(1_000_000),
        min_trace_duration: 0,
        max_trace_duration: 0,
        limit: usize::try_from(limit).unwrap_or(1).clamp(1, 10_000),
    })
}

/// `GET /api/v2/traces?serviceName=&spanName=&annotationQuery=&minDuration=&endTs=&lookback=&limit=`.
pub(crate) async fn traces(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let req = search_request(&p, app.now_ms())?;
    let (found, _) = app.blocking_traces(move |_, t| find(t, &req)).await?;
    Ok(crate::json(J::Array(found.iter().map(|f| to_json(&f.batch)).collect())))
}

/// `GET /api/v2/trace/{traceId}`: the spans of one trace.
pub(crate) async fn trace(app: Scoped, Path(id): Path<String>) -> Result<Response, ApiError> {
    let read = read_trace(&app, parse_trace_id(&id)?).await?;
    Ok(crate::json(to_json(&read.batch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipkin_searches_become_traceql() {
        let p = Params::from_query(
            "serviceName=api&spanName=get&remoteServiceName=db&annotationQuery=error%20and%20http.method%3DGET%20and%20cache.hit&minDuration=1500&maxDuration=9000",
        );
        let q = zipkin_query(&p).unwrap();
        assert_eq!(
            q,
            r#"{ resource.service.name = "api" && span."peer.service" = "db" && name = "get" && status = error && ."http.method" = "GET" && ."cache.hit" != nil && duration >= 1500000ns && duration <= 9000000ns }"#
        );
        telltale_traceql::parse(&q).unwrap();
        assert_eq!(zipkin_query(&Params::from_query("spanName=all")).unwrap(), "{}");
        assert!(zipkin_query(&Params::from_query("minDuration=1ms")).is_err());
    }

    #[test]
    fn the_window_is_endts_minus_lookback() {
        let r = search_request(&Params::from_query("endTs=2000&lookback=1000&limit=3"), 0).unwrap();
        assert_eq!((r.start, r.end, r.limit), (1_000_000_000, 2_001_000_000, 3));
        let r = search_request(&Params::from_query(""), 100_000_000).unwrap();
        assert_eq!((r.start, r.limit), ((100_000_000 - 86_400_000) * 1_000_000, 10));
    }
}
