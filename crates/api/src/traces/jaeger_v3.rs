//! Jaeger's API v3 over HTTP (the grpc-gateway JSON of `api_v3.QueryService`, what Jaeger v2's
//! UI and `jaeger-query` clients call; `cmd/query/app/apiv3/http_gateway.go`):
//! `GET /api/v3/services`, `/api/v3/operations?service=&span_kind=`,
//! `/api/v3/traces/{trace_id}` and `/api/v3/traces?query.service_name=&...`.
//!
//! Traces are OTLP JSON wrapped as the gateway writes them: `{"result": {"resourceSpans":
//! [...]}}`, a search's traces concatenated in one result. Search times are RFC 3339
//! (`query.start_time_min` and `query.start_time_max`, both required) and durations Go's
//! (`query.duration_min=10ms`); a span of the service (and operation) within the durations
//! must exist, as Jaeger's span stores match. Errors are the gateway's
//! `{"error": {"http_code": 400, "message": "..."}}`.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as J};
use telltale_ingest::otlp::resource_spans_json;

use super::parse_trace_id;
use super::tempo::{find, parse_go_duration, read_trace, Request};
use crate::params::{parse_time, Params};
use crate::tenant::Scoped;
use crate::ApiError;

/// Renders an error the handlers returned as the gateway's `GRPCGatewayError`.
pub(crate) fn reshape(mut res: Response) -> Response {
    let Some(e) = res.extensions_mut().remove::<ApiError>() else { return res };
    let body = json!({"error": {"http_code": e.status().as_u16(), "message": e.message()}});
    let mut res = (e.status(), [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    res.extensions_mut().insert(e);
    res
}

/// `GET /api/v3/services`: `{"services": [...]}`.
pub(crate) async fn services(app: Scoped) -> Result<Response, ApiError> {
    let s = app.blocking_traces(|_, t| Ok(t.db().services())).await?;
    Ok(crate::json(json!({"services": s})))
}

/// `GET /api/v3/operations?service=&span_kind=`: `{"operations": [{"name", "spanKind"}]}`.
pub(crate) async fn operations(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let service = p.get("service").filter(|s| !s.is_empty()).map(str::to_owned);
    let kind = p.get("span_kind").filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
    let ops = app.blocking_traces(move |_, t| Ok(t.db().operations(service.as_deref()))).await?;
    let mut seen = Vec::new();
    for (_, name, k) in ops {
        if kind.as_deref().is_none_or(|w| w == k.name()) && !seen.contains(&(name.clone(), k)) {
            seen.push((name, k));
        }
    }
    let data: Vec<J> = seen.into_iter().map(|(n, k)| json!({"name": n, "spanKind": k.name()})).collect();
    Ok(crate::json(json!({"operations": data})))
}

fn result(resource_spans: Vec<J>) -> Response {
    crate::json(json!({"result": {"resourceSpans": resource_spans}}))
}

/// `GET /api/v3/traces/{trace_id}`.
pub(crate) async fn trace(app: Scoped, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_trace_id(&id)
        .map_err(|e| ApiError::bad_input(format!("malformed parameter trace_id: {}", e.message())))?;
    let read = read_trace(&app, id).await?;
    let J::Array(rs) = resource_spans_json(&read.batch) else { return Ok(result(Vec::new())) };
    Ok(result(rs))
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The search a v3 `query.*` parameter set means, as TraceQL with its window (ns) and limit.
fn search_request(p: &Params) -> Result<Request, ApiError> {
    let (Some(min), Some(max)) = (
        p.get("query.start_time_min").filter(|s| !s.is_empty()),
        p.get("query.start_time_max").filter(|s| !s.is_empty()),
    ) else {
        return Err(ApiError::bad_input("query.start_time_min and query.start_time_max are required"));
    };
    let time = |name: &str, s: &str| -> Result<i64, ApiError> {
        parse_time(name, s)
            .map(|ms| ms.saturating_mul(1_000_000))
            .map_err(|e| ApiError::bad_input(format!("malformed parameter {name}: {}", e.message())))
    };
    let mut conds = Vec::new();
    if let Some(s) = p.get("query.service_name").filter(|s| !s.is_empty()) {
        conds.push(format!("resource.service.name = {}", quoted(s)));
    }
    if let Some(op) = p.get("query.operation_name").filter(|s| !s.is_empty()) {
        conds.push(format!("name = {}", quoted(op)));
    }
    for (param, op) in [("query.duration_min", ">="), ("query.duration_max", "<=")] {
        if let Some(d) = p.get(param).filter(|s| !s.is_empty()) {
            conds.push(format!("duration {op} {}ns", parse_go_duration(param, d)?));
        }
    }
    let limit = match p.get("query.num_traces") {
        None | Some("") | Some("0") => 100,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::bad_input(format!("malformed parameter query.num_traces: {s:?}")))?,
    };
    let text = if conds.is_empty() { "{}".to_string() } else { format!("{{ {} }}", conds.join(" && ")) };
    Ok(Request {
        query: telltale_traceql::parse(&text)?,
        start: time("query.start_time_min", min)?,
        end: time("query.start_time_max", max)?,
        min_trace_duration: 0,
        max_trace_duration: 0,
        limit: limit.clamp(1, 10_000),
    })
}

/// `GET /api/v3/traces?query.service_name=&query.operation_name=&query.start_time_min=&...`.
pub(crate) async fn search(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let req = search_request(&p)?;
    let (found, _) = app.blocking_traces(move |_, t| find(t, &req)).await?;
    let mut all = Vec::new();
    for f in &found {
        if let J::Array(rs) = resource_spans_json(&f.batch) {
            all.extend(rs);
        }
    }
    Ok(result(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_become_traceql() {
        let p = Params::from_query(
            "query.service_name=api&query.operation_name=GET%20%2F&query.start_time_min=2024-01-01T00:00:00Z&query.start_time_max=2024-01-01T01:00:00.5Z&query.duration_min=1.5ms&query.num_traces=5",
        );
        let r = search_request(&p).unwrap();
        assert_eq!(
            r.query.to_string(),
            telltale_traceql::parse(r#"{ resource.service.name = "api" && name = "GET /" && duration >= 1500000ns }"#)
                .unwrap()
                .to_string()
        );
        assert_eq!((r.start, r.end, r.limit), (1_704_067_200_000_000_000, 1_704_070_800_500_000_000, 5));
        assert!(search_request(&Params::from_query("query.service_name=a"))
            .err()
            .unwrap()
            .message()
            .contains("required"));
        assert!(search_request(&Params::from_query(
            "query.start_time_min=x&query.start_time_max=2024-01-01T00:00:00Z"
        ))
        .is_err());
    }

    #[test]
    fn errors_take_the_gateway_shape() {
        let res = reshape(ApiError::bad_input("nope").into_response());
        assert_eq!(res.status(), 400);
    }
}
