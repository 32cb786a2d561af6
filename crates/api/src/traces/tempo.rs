//! Tempo's HTTP API (<https://grafana.com/docs/tempo/latest/api_docs/>) as Grafana's Tempo data
//! source calls it: echo, build info (a Tempo 2.x version, so Grafana uses the v2 paths), trace
//! by id in JSON and protobuf, TraceQL and legacy tag search, tag names and values.

use std::collections::HashSet;

use axum::extract::Path;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as J};
use telltale_ingest::otlp::{encode_traces_proto, resource_spans_json};
use telltale_model::{SpanBatch, TraceId};
use telltale_traceql::{Hint, Query, SpanSet, Value};
use telltale_tracestore::{Search, TagScope, TraceRead};

use super::render::summary;
use super::{parse_trace_id, TraceService};
use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

/// The Tempo version announced: Grafana picks its API by it (v2 trace by id and search tags
/// from 2.2, TraceQL metrics from 2.4).
pub(crate) const TEMPO_COMPAT_VERSION: &str = "2.7.0";

pub(crate) async fn echo() -> &'static str {
    "echo"
}

pub(crate) async fn buildinfo() -> Response {
    crate::json(crate::status::build_info(TEMPO_COMPAT_VERSION))
}

/// True when the client asked for protobuf (Grafana's Tempo data source does).
pub(crate) fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/protobuf"))
}

/// Reads a trace; 404 when no span of it is stored.
pub(crate) async fn read_trace(app: &Scoped, id: TraceId) -> Result<TraceRead, ApiError> {
    let read = app.blocking_traces(move |_, t| Ok(t.db().trace(&id)?)).await?;
    if read.batch.is_empty() {
        return Err(ApiError::new(telltale_model::ErrorKind::NotFound, format!("trace not found: {id}")));
    }
    Ok(read)
}

/// Tempo v1's trace by id: the `Trace` message (`batches`), protobuf or JSON.
pub(crate) async fn trace_v1(app: &Scoped, id: TraceId, headers: &HeaderMap) -> Result<Response, ApiError> {
    let read = read_trace(app, id).await?;
    if wants_protobuf(headers) {
        return Ok(([(header::CONTENT_TYPE, "application/protobuf")], encode_traces_proto(&read.batch)).into_response());
    }
    Ok(crate::json(json!({"batches": resource_spans_json(&read.batch)})))
}

/// `GET /api/v2/traces/{id}`: `TraceByIDResponse` (`{"trace": {"resourceSpans": [...]}}`, and
/// `"status": "PARTIAL"` with a message when the trace is larger than a read returns).
pub(crate) async fn trace_v2(app: Scoped, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let read = read_trace(&app, parse_trace_id(&id)?).await?;
    let message = read.partial.then(|| "trace exceeds max_spans_per_trace; showing the first spans".to_string());
    if wants_protobuf(&headers) {
        // TraceByIDResponse { Trace trace = 1; ...; PartialStatus status = 3; string message = 4; }
        let trace = encode_traces_proto(&read.batch);
        let mut out = Vec::with_capacity(trace.len() + 16);
        put_field(&mut out, 1, &trace);
        if let Some(m) = &message {
            out.extend_from_slice(&[0x18, 0x01]);
            put_field(&mut out, 4, m.as_bytes());
        }
        return Ok(([(header::CONTENT_TYPE, "application/protobuf")], out).into_response());
    }
    let mut body = json!({"trace": {"resourceSpans": resource_spans_json(&read.batch)}});
    if let Some(m) = message {
        body["status"] = json!("PARTIAL");
        body["message"] = json!(m);
    }
    Ok(crate::json(body))
}

fn put_field(out: &mut Vec<u8>, field: u8, data: &[u8]) {
    out.push(field << 3 | 2);
    let mut n = data.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(data);
}

/// A search: the query, its time window and limits.
pub(crate) struct Request {
    pub(crate) query: Query,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) min_trace_duration: i64,
    pub(crate) max_trace_duration: i64,
    pub(crate) limit: usize,
}

/// A trace a search found, whole, with the spansets that matched.
pub(crate) struct Found {
    pub(crate) id: TraceId,
    pub(crate) batch: SpanBatch,
    pub(crate) sets: Vec<SpanSet>,
}

/// What a store can check before reading: the query's hints as a [`Search`].
fn store_search(req: &Request) -> Search {
    let mut s = Search { start: req.start, end: req.end, ..Search::default() };
    for h in req.query.hints().conditions {
        match h {
            Hint::ServiceName(n) if s.services.is_empty() => s.services.push(n),
            Hint::SpanName(n) if s.names.is_empty() => s.names.push(n),
            Hint::MinDuration(d) => s.min_duration = s.min_duration.max(d),
            Hint::Status(telltale_model::StatusCode::Error) => s.error_only = true,
            Hint::Attribute { key, value, .. } => s.attrs.push((key, value)),
            _ => {}
        }
    }
    s
}

/// Runs a search: candidate trace parts from the store, the query over each part, then over
/// the whole trace of each part that matched (a trace can be split over segments until
/// compaction joins it); stops at the limit.
pub(crate) fn find(traces: &TraceService, req: &Request) -> Result<(Vec<Found>, usize), ApiError> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let mut inspected = 0usize;
    let mut err = None;
    traces.db().search(&store_search(req), &mut |id, part| {
        inspected += 1;
        if seen.contains(&id) || req.query.eval(&part).is_empty() {
            return true;
        }
        seen.insert(id);
        let whole = match traces.db().trace(&id) {
            Ok(r) => r.batch,
            Err(e) => {
                err = Some(e);
                return false;
            }
        };
        let s = summary(&whole);
        let d = s.end - s.start;
        if d < req.min_trace_duration || (req.max_trace_duration > 0 && d > req.max_trace_duration) {
            return true;
        }
        let sets = req.query.eval(&whole);
        if !sets.is_empty() {
            found.push(Found { id, batch: whole, sets });
        }
        found.len() < req.limit
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    found.sort_by_key(|f| std::cmp::Reverse(summary(&f.batch).start));
    Ok((found, inspected))
}

/// A Go-style duration (`100ms`, `1.5s`, `2m`) in nanoseconds.
pub(crate) fn parse_go_duration(name: &str, s: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::bad_input(format!("invalid {name} {s:?}: want a duration like 100ms or 1.5s"));
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ').ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * scale) as i64)
}

/// Tempo's legacy `tags=` (logfmt `key=value` pairs) as TraceQL: every pair must hold for some
/// span of the trace; `name` is the span name, `status.code` the status, the rest attributes
/// of the span or its resource.
pub(crate) fn tags_query(tags: &str) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    for pair in logfmt(tags) {
        let (k, v) = pair.ok_or_else(|| ApiError::bad_input(format!("invalid tags {tags:?}: want key=value pairs")))?;
        let v = format!("{v:?}");
        parts.push(match k.as_str() {
            "name" => format!("{{ name = {v} }}"),
            "status.code" => format!("{{ status = {} }}", v.trim_matches('"')),
            "error" if v == "\"true\"" => "{ status = error }".to_string(),
            _ => format!("{{ .\"{}\" = {v} }}", k.replace('"', "\\\"")),
        });
    }
    Ok(if parts.is_empty() { "{}".into() } else { parts.join(" && ") })
}

fn logfmt(s: &str) -> Vec<Option<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push(None);
            break;
        };
        let key = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let value = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            let v = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
            v
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let v = rest[..end].to_string();
            rest = &rest[end..];
            v
        };
        out.push((!key.is_empty()).then_some((key, value)));
        rest = rest.trim_start();
    }
    out
}

fn seconds(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map(|v| v.saturating_mul(1_000_000_000))
            .map_err(|_| ApiError::bad_input(format!("invalid {name} {s:?}: want unix seconds"))),
    }
}

fn search_request(p: &Params) -> Result<(Request, usize), ApiError> {
    let text = match (p.get("q").filter(|q| !q.trim().is_empty()), p.get("tags")) {
        (Some(q), _) => q.to_string(),
        (None, Some(tags)) => tags_query(tags)?,
        (None, None) => "{}".to_string(),
    };
    let query = telltale_traceql::parse(&text)?;
    if query.is_metrics() {
        return Err(ApiError::bad_input("a metrics query belongs at /api/metrics/query_range"));
    }
    let dur = |name| p.get(name).filter(|s| !s.is_empty()).map(|s| parse_go_duration(name, s)).transpose();
    let limit = match p.get("limit") {
        None | Some("") => 20,
        Some(s) => s.parse().map_err(|_| ApiError::bad_input(format!("invalid limit {s:?}")))?,
    };
    let spss = match p.get("spss") {
        None | Some("") => 3,
        Some(s) => s.parse().map_err(|_| ApiError::bad_input(format!("invalid spss {s:?}")))?,
    };
    let req = Request {
        query,
        start: seconds(p, "start")?,
        end: seconds(p, "end")?,
        min_trace_duration: dur("minDuration")?.unwrap_or(0),
        max_trace_duration: dur("maxDuration")?.unwrap_or(0),
        limit: limit.clamp(1, 10_000),
    };
    Ok((req, spss))
}

fn value_json(v: &Value) -> J {
    match v {
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Int(i) => json!({"intValue": i.to_string()}),
        Value::Float(f) => json!({"doubleValue": f}),
        other => json!({"stringValue": other.to_string()}),
    }
}

fn spanset_json(batch: &SpanBatch, set: &SpanSet, spss: usize) -> J {
    let spans: Vec<J> = set
        .spans
        .iter()
        .take(spss)
        .filter_map(|m| {
            let s = m.get(batch)?;
            let attrs: Vec<J> = m.attributes.iter().map(|(k, v)| json!({"key": k, "value": value_json(v)})).collect();
            Some(json!({
                "spanID": s.span_id.to_string(),
                "name": s.name,
                "startTimeUnixNano": s.start.to_string(),
                "durationNanos": s.duration().to_string(),
                "attributes": attrs,
            }))
        })
        .collect();
    let attrs: Vec<J> = set.attributes.iter().map(|(k, v)| json!({"key": k, "value": value_json(v)})).collect();
    json!({"spans": spans, "matched": set.spans.len(), "attributes": attrs})
}

/// `GET /api/search`: TraceQL (`q=`) or legacy tags, newest traces first.
pub(crate) async fn search(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let (req, spss) = search_request(&p)?;
    let (found, inspected) = app.blocking_traces(move |_, t| find(t, &req)).await?;
    let traces: Vec<J> = found
        .iter()
        .map(|f| {
            let s = summary(&f.batch);
            let sets: Vec<J> = f.sets.iter().map(|set| spanset_json(&f.batch, set, spss)).collect();
            let mut stats = serde_json::Map::new();
            for (r, _, sp) in f.batch.spans() {
                let e = stats
                    .entry(r.service_name().to_owned())
                    .or_insert_with(|| json!({"spanCount": 0, "errorCount": 0}));
                e["spanCount"] = json!(e["spanCount"].as_u64().unwrap_or(0) + 1);
                if sp.status == telltale_model::StatusCode::Error {
                    e["errorCount"] = json!(e["errorCount"].as_u64().unwrap_or(0) + 1);
                }
            }
            json!({
                "serviceStats": stats,
                "traceID": f.id.to_string(),
                "rootServiceName": s.root_service,
                "rootTraceName": s.root_name,
                "startTimeUnixNano": s.start.to_string(),
                "durationMs": (s.end - s.start) / 1_000_000,
                "spanSet": sets.first().cloned().unwrap_or(J::Null),
                "spanSets": sets,
            })
        })
        .collect();
    Ok(crate::json(json!({
        "traces": traces,
        "metrics": {"inspectedTraces": inspected, "completedJobs": 1, "totalJobs": 1},
    })))
}

/// TraceQL's intrinsics, listed by the v2 tags endpoint as the `intrinsic` scope.
const INTRINSICS: &[&str] = &[
    "duration",
    "event:name",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

fn scope_param(p: &Params) -> Result<Option<TagScope>, ApiError> {
    match p.get("scope").unwrap_or("") {
        "" | "all" | "intrinsic" => Ok(None),
        "span" => Ok(Some(TagScope::Span)),
        "resource" => Ok(Some(TagScope::Resource)),
        s => Err(ApiError::bad_input(format!("invalid scope {s:?}: want span, resource, intrinsic or all"))),
    }
}

/// `GET /api/search/tags`: `{"tagNames": [...]}`.
pub(crate) async fn tags(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let scope = scope_param(&p)?;
    let names = app.blocking_traces(move |_, t| Ok(t.db().tag_names())).await?;
    let mut out: Vec<String> =
        names.into_iter().filter(|(s, _)| scope.is_none_or(|w| w == *s)).map(|(_, n)| n).collect();
    out.sort();
    out.dedup();
    Ok(crate::json(json!({"tagNames": out})))
}

/// `GET /api/v2/search/tags`: `{"scopes": [{"name": "span", "tags": [...]}, ...]}`.
pub(crate) async fn tags_v2(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let want = p.get("scope").unwrap_or("all").to_string();
    scope_param(&p)?;
    let names = app.blocking_traces(move |_, t| Ok(t.db().tag_names())).await?;
    let of =
        |scope: TagScope| -> Vec<&str> { names.iter().filter(|(s, _)| *s == scope).map(|(_, n)| n.as_str()).collect() };
    let mut scopes = Vec::new();
    for (name, list) in
        [("span", of(TagScope::Span)), ("resource", of(TagScope::Resource)), ("intrinsic", INTRINSICS.to_vec())]
    {
        if want == "all" || want == name {
            scopes.push(json!({"name": name, "tags": list}));
        }
    }
    Ok(crate::json(json!({"scopes": scopes})))
}

/// Splits `span.http.method` / `resource.service.name` / `.x` / `x` into a scope and a name.
fn scoped_tag(tag: &str) -> (Option<TagScope>, &str) {
    if let Some(n) = tag.strip_prefix("span.") {
        (Some(TagScope::Span), n)
    } else if let Some(n) = tag.strip_prefix("resource.") {
        (Some(TagScope::Resource), n)
    } else {
        (None, tag.strip_prefix('.').unwrap_or(tag))
    }
}

async fn values_of(app: &Scoped, tag: &str) -> Result<Vec<(&'static str, String)>, ApiError> {
    let intrinsic: Option<Vec<(&'static str, String)>> = match tag {
        "status" | "span:status" => Some(["error", "ok", "unset"].iter().map(|s| ("keyword", s.to_string())).collect()),
        "kind" | "span:kind" => Some(
            ["client", "consumer", "internal", "producer", "server", "unspecified"]
                .iter()
                .map(|s| ("keyword", s.to_string()))
                .collect(),
        ),
        _ => None,
    };
    if let Some(v) = intrinsic {
        return Ok(v);
    }
    let (scope, name) = scoped_tag(tag);
    let (scope, name) = (scope, name.to_string());
    let names_only = matches!(tag, "name" | "span:name" | "rootName" | "trace:rootName");
    let services = matches!(tag, "rootServiceName" | "trace:rootService");
    app.blocking_traces(move |_, t| {
        let db = t.db();
        Ok(if names_only {
            let mut v: Vec<String> = db.operations(None).into_iter().map(|(_, n, _)| n).collect();
            v.sort();
            v.dedup();
            v.into_iter().map(|n| ("string", n)).collect()
        } else if services {
            db.services().into_iter().map(|n| ("string", n)).collect()
        } else {
            db.tag_values(scope, &name).into_iter().map(|v| ("string", v)).collect()
        })
    })
    .await
}

/// `GET /api/search/tag/{tag}/values`: `{"tagValues": [...]}`.
pub(crate) async fn tag_values(app: Scoped, Path(tag): Path<String>) -> Result<Response, ApiError> {
    let values: Vec<String> = values_of(&app, &tag).await?.into_iter().map(|(_, v)| v).collect();
    Ok(crate::json(json!({"tagValues": values})))
}

/// `GET /api/v2/search/tag/{tag}/values`: `{"tagValues": [{"type": "string", "value": ...}]}`.
pub(crate) async fn tag_values_v2(app: Scoped, Path(tag): Path<String>) -> Result<Response, ApiError> {
    let values: Vec<J> =
        values_of(&app, &tag).await?.into_iter().map(|(ty, v)| json!({"type": ty, "value": v})).collect();
    Ok(crate::json(json!({"tagValues": values})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_tags_become_traceql() {
        assert_eq!(tags_query("").unwrap(), "{}");
        assert_eq!(
            tags_query(r#"service.name=api http.route="/a b" name=GET"#).unwrap(),
            r#"{ ."service.name" = "api" } && { ."http.route" = "/a b" } && { name = "GET" }"#
        );
        assert_eq!(tags_query("error=true").unwrap(), "{ status = error }");
        assert!(tags_query("novalue").is_err());
        for q in ["service.name=api http.route=\"/a b\"", "error=true status.code=error"] {
            telltale_traceql::parse(&tags_query(q).unwrap()).unwrap();
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("d", "100ms").unwrap(), 100_000_000);
        assert_eq!(parse_go_duration("d", "1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_go_duration("d", "250us").unwrap(), 250_000);
        assert!(parse_go_duration("d", "5").is_err());
        assert!(parse_go_duration("d", "-1s").is_err());
    }
}
