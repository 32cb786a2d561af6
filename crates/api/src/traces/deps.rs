//! Service dependencies from the service graph the span-metrics generator writes into the
//! metric store: Jaeger's `GET /api/dependencies` (the UI's System Architecture tab) and
//! Zipkin's `GET /api/v2/dependencies` (its dependency graph).
//!
//! Both are one PromQL query, evaluated through the same path as `/api/v1/query`:
//! `sum by (client, server) (increase(traces_service_graph_request_total[<lookback>]))` at
//! `endTs`, rounded to whole calls (`increase` extrapolates). Zipkin also wants
//! `errorCount`, from `traces_service_graph_request_failed_total` the same way. A link is
//! therefore as fresh as the last collection (`traces.collect_interval`, 15 s).
//!
//! Shapes: Jaeger's `DependencyLink` in its envelope (`{"data": [{"parent", "child",
//! "callCount"}], "total": 0, ...}`, `cmd/query/app/http_handler.go`, which also filters by
//! `service=` and merges duplicates); Zipkin's `DependencyLink` array, `errorCount` only when
//! non-zero as Zipkin's JSON writer does (`zipkin2-api.yaml`).

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{json, Value as J};
use telltale_promql::Value;
use telltale_spanmetrics::metrics::{GRAPH_REQUEST_FAILED_TOTAL, GRAPH_REQUEST_TOTAL};

use super::render::jaeger_envelope;
use crate::params::Params;
use crate::query::eval_instant;
use crate::tenant::Scoped;
use crate::ApiError;

/// Jaeger's and Zipkin's default lookback: a day.
const DAY_MS: i64 = 86_400_000;

/// One edge of the graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub(crate) parent: String,
    pub(crate) child: String,
    pub(crate) calls: u64,
    pub(crate) errors: u64,
}

/// The PromQL for the calls (or failed calls) between each client and server over `lookback_ms`.
pub(crate) fn edge_query(metric: &str, lookback_ms: i64) -> String {
    format!("sum by (client, server) (increase({metric}[{lookback_ms}ms]))")
}

/// Counts by `(client, server)` from an instant vector.
fn by_edge(v: &Value) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    if let Value::Vector(samples) = v {
        for s in samples {
            let (Some(c), Some(p)) = (s.labels.get("client"), s.labels.get("server")) else { continue };
            if s.v.is_finite() && s.v > 0.0 {
                *out.entry((c.to_string(), p.to_string())).or_insert(0) += s.v.round() as u64;
            }
        }
    }
    out
}

/// A millisecond parameter, or `default`.
pub(crate) fn millis(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::bad_input(format!("unable to parse param '{name}': {s:?} is not an integer"))),
    }
}

/// The links of the `lookback_ms` before `end_ms`, with error counts when `errors` is set.
pub(crate) async fn links(
    app: &Scoped,
    p: &Params,
    end_ms: i64,
    lookback_ms: i64,
    errors: bool,
) -> Result<Vec<Link>, ApiError> {
    if lookback_ms <= 0 {
        return Err(ApiError::bad_input(format!("lookback must be positive, got {lookback_ms}")));
    }
    let calls = eval_instant(app, p, edge_query(GRAPH_REQUEST_TOTAL, lookback_ms), end_ms).await?;
    let failed = if errors {
        by_edge(&eval_instant(app, p, edge_query(GRAPH_REQUEST_FAILED_TOTAL, lookback_ms), end_ms).await?.value)
    } else {
        BTreeMap::new()
    };
    Ok(by_edge(&calls.value)
        .into_iter()
        .map(|((parent, child), calls)| {
            let errors = failed.get(&(parent.clone(), child.clone())).copied().unwrap_or(0).min(calls);
            Link { parent, child, calls, errors }
        })
        .collect())
}

/// `GET /api/dependencies?endTs=&lookback=&service=` (Jaeger; milliseconds).
pub(crate) async fn jaeger(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let end = millis(&p, "endTs", app.now_ms())?;
    let lookback = millis(&p, "lookback", DAY_MS)?;
    let service = p.get("service").filter(|s| !s.is_empty()).map(str::to_owned);
    let data: Vec<J> = links(&app, &p, end, lookback, false)
        .await?
        .into_iter()
        .filter(|l| service.as_deref().is_none_or(|s| l.parent == s || l.child == s))
        .map(|l| json!({"parent": l.parent, "child": l.child, "callCount": l.calls}))
        .collect();
    Ok(crate::json(jaeger_envelope(J::Array(data), 0)))
}

/// Zipkin's `DependencyLink`.
pub(crate) fn zipkin_link(l: &Link) -> J {
    let mut v = json!({"parent": l.parent, "child": l.child, "callCount": l.calls});
    if l.errors > 0 {
        v["errorCount"] = json!(l.errors);
    }
    v
}

/// `GET /api/v2/dependencies?endTs=&lookback=` (Zipkin; milliseconds, `endTs` required).
pub(crate) async fn zipkin(app: Scoped, p: Params) -> Result<Response, ApiError> {
    if p.get("endTs").is_none_or(str::is_empty) {
        return Err(ApiError::bad_input("endTs parameter is required"));
    }
    let end = millis(&p, "endTs", 0)?;
    let lookback = millis(&p, "lookback", DAY_MS)?;
    let data: Vec<J> = links(&app, &p, end, lookback, true).await?.iter().map(zipkin_link).collect();
    Ok(crate::json(J::Array(data)))
}

#[cfg(test)]
mod tests {
    use telltale_model::Labels;
    use telltale_promql::InstantSample;

    use super::*;

    #[test]
    fn the_query_and_its_answer() {
        assert_eq!(
            edge_query(GRAPH_REQUEST_TOTAL, 3_600_000),
            "sum by (client, server) (increase(traces_service_graph_request_total[3600000ms]))"
        );
        telltale_promql::parse(&edge_query(GRAPH_REQUEST_TOTAL, 1)).unwrap();
        let s = |c: &str, p: &str, v| InstantSample {
            labels: Labels::from_pairs([("client", c), ("server", p)]).unwrap(),
            t: 0,
            v,
        };
        let v = Value::Vector(vec![s("a", "b", 2.6), s("a", "c", 0.0), s("b", "c", f64::NAN)]);
        let m = by_edge(&v);
        assert_eq!(m.len(), 1);
        assert_eq!(m[&("a".to_string(), "b".to_string())], 3);
    }

    #[test]
    fn zipkin_writes_error_count_only_when_there_are_errors() {
        let mut l = Link { parent: "a".into(), child: "b".into(), calls: 5, errors: 0 };
        assert_eq!(zipkin_link(&l).to_string(), r#"{"callCount":5,"child":"b","parent":"a"}"#);
        l.errors = 2;
        assert_eq!(zipkin_link(&l)["errorCount"], 2);
    }
}
