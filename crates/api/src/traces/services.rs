//! `GET /api/v1/services/latency`: latency percentiles per service (or per endpoint or
//! instance of one service) from the RED generator's exponential histograms, within about 1 %
//! of the exact percentile of the spans counted, where `histogram_quantile` over the classic
//! buckets can be off by half a bucket (up to 2x). The Services page takes rate and error share
//! from PromQL over `traces_spanmetrics_calls_total`, and percentiles from here.
//!
//! The histograms count since each series started (the server's start, or its first span):
//! they are not windowed until native histograms are stored in the TSDB.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::json;
use telltale_model::{Labels, MatchOp, Matcher};
use telltale_spanmetrics::NativeHistogram;

use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

/// The label a `group` parameter groups by.
fn group_label(group: &str) -> Result<&'static str, ApiError> {
    match group {
        "" | "service" => Ok("service"),
        "span_name" | "endpoint" | "operation" => Ok("span_name"),
        "instance" => Ok("instance"),
        g => Err(ApiError::bad_input(format!("invalid group {g:?}: want service, span_name or instance"))),
    }
}

fn matchers(p: &Params) -> Result<Vec<Matcher>, ApiError> {
    let m = |name: &str, op, v: &str| {
        Matcher::new(op, name, v).map_err(|e| ApiError::bad_input(format!("invalid {name} {v:?}: {e}")))
    };
    let mut out = Vec::new();
    if let Some(s) = p.get("service").filter(|s| !s.is_empty()) {
        out.push(m("service", MatchOp::Equal, s)?);
    }
    match p.get("span_kind").unwrap_or("server") {
        "all" => {}
        "server" | "" => out.push(m("span_kind", MatchOp::Regex, "SPAN_KIND_SERVER|SPAN_KIND_CONSUMER")?),
        k => out.push(m("span_kind", MatchOp::Equal, &format!("SPAN_KIND_{}", k.to_ascii_uppercase()))?),
    }
    Ok(out)
}

/// Merges the histograms of each group.
fn grouped(series: Vec<(Labels, NativeHistogram)>, by: &str) -> BTreeMap<String, NativeHistogram> {
    let mut out: BTreeMap<String, NativeHistogram> = BTreeMap::new();
    for (labels, h) in series {
        let key = labels.get(by).unwrap_or("").to_string();
        out.entry(key).or_default().merge(&h);
    }
    out
}

pub(crate) async fn latency(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let by = group_label(p.get("group").unwrap_or(""))?;
    let m = matchers(&p)?;
    let (series, overflow) = app
        .blocking_traces(move |_, t| Ok(t.with_generator(|g| (g.native_histograms(&m), g.overflowed_services()))))
        .await?;
    let groups: Vec<_> = grouped(series, by)
        .into_iter()
        .map(|(key, h)| {
            json!({
                by: key,
                "count": h.count,
                "sum": h.sum,
                "p50": h.quantile(0.5),
                "p95": h.quantile(0.95),
                "p99": h.quantile(0.99),
            })
        })
        .collect();
    let overflow: Vec<_> = overflow.into_iter().map(|(s, n)| json!({"service": s, "spans": n})).collect();
    Ok(crate::json(json!({"status": "success", "data": {"groups": groups, "overflow": overflow}})))
}
