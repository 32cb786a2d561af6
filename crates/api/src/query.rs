//! The PromQL side of Prometheus's HTTP API
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/>): `/api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/format_query`, `/api/v1/query_exemplars`, and `/federate`.
//!
//! Queries run on the blocking pool with the engine options in force (`query:` config); a
//! request may lower the timeout with `timeout=` but never raise it.

use std::fmt::Write as _;
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use telltale_model::{is_stale_nan, units, TimeRange, Timestamp, METRIC_NAME};
use telltale_promql::{Engine, EngineOptions, QueryOutput};

use crate::metrics::{fmt_float, write_labels};
use crate::params::{parse_time, Params};
use crate::read::success;
use crate::tenant::Scoped;
use crate::{ApiError, AppState};

/// `GET|POST /api/v1/query`: `query`, optional `time` (default now) and `timeout`.
pub(crate) async fn instant(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let query = required(&p, "query")?;
    let at = p.get("time").map(|s| parse_time("time", s)).transpose()?.unwrap_or_else(|| app.now_ms());
    Ok(answer(eval_instant(&app, &p, query, at).await?))
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, optional `timeout`.
pub(crate) async fn range(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let query = required(&p, "query")?;
    let start = parse_time("start", required(&p, "start")?.as_str())?;
    let end = parse_time("end", required(&p, "end")?.as_str())?;
    if end < start {
        return Err(ApiError::bad_input("invalid parameter \"end\": end timestamp must not be before start time"));
    }
    let step = parse_duration("step", required(&p, "step")?.as_str())?;
    if step <= 0 {
        return Err(ApiError::bad_input(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    Ok(answer(eval_range(&app, &p, query, start, end, step).await?))
}

/// Evaluates `query` at `at` (ms) against the tenant's metric store with the request's engine:
/// what `/api/v1/query` runs, shared with the APIs that answer from PromQL (Jaeger's
/// dependencies and Monitor tab, Zipkin's dependencies).
pub(crate) async fn eval_instant(
    app: &Scoped,
    p: &Params,
    query: String,
    at: Timestamp,
) -> Result<QueryOutput, ApiError> {
    let engine = engine(app, p)?;
    app.blocking(move |s| Ok(engine.instant_query(s, &query, at)?)).await
}

/// Evaluates `query` from `start` to `end` every `step` (ms): what `/api/v1/query_range` runs.
pub(crate) async fn eval_range(
    app: &Scoped,
    p: &Params,
    query: String,
    start: Timestamp,
    end: Timestamp,
    step: i64,
) -> Result<QueryOutput, ApiError> {
    let engine = engine(app, p)?;
    app.blocking(move |s| Ok(engine.range_query(s, &query, start, end, step)?)).await
}

/// `GET|POST /api/v1/format_query`: the query pretty-printed, as `promtool` and Prometheus's UI show it.
pub(crate) async fn format(p: Params) -> Result<Response, ApiError> {
    let query = required(&p, "query")?;
    let expr = telltale_promql::parse(&query)?;
    Ok(success(expr.prettify()))
}

/// `GET|POST /api/v1/query_exemplars`: the TSDB stores no exemplars, so the answer is the
/// span-metrics generator's (each latency bucket's last span) for the query's selectors.
/// Grafana calls this for every graph.
pub(crate) async fn exemplars(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let query = required(&p, "query")?;
    telltale_promql::parse(&query)?;
    let range = p.range()?;
    Ok(success(crate::traces::exemplars::of_query(&app, query, range).await?))
}

/// `GET /federate?match[]=...`: the latest sample (within the lookback) of every selected
/// series, in the text exposition format with timestamps, sorted by metric name, so another
/// Prometheus can scrape Telltale.
pub(crate) async fn federate(app: Scoped, p: Params) -> Result<Response, ApiError> {
    let selectors = p.selectors()?;
    let now = app.now_ms();
    let lookback = app.limits().query.lookback_delta.as_millis() as Timestamp;
    // Prometheus's window is (now - lookback, now].
    let range = TimeRange::new(now - lookback + 1, now);
    let mut latest = app
        .blocking(move |s| {
            let mut out = Vec::new();
            for m in &selectors {
                for series in s.select(range, m)? {
                    if let Some(last) = series.samples.last().filter(|x| !is_stale_nan(x.v)) {
                        out.push((series.labels.clone(), *last));
                    }
                }
            }
            Ok(out)
        })
        .await?;
    latest.sort_by(|a, b| a.0.metric_name().cmp(&b.0.metric_name()).then_with(|| a.0.cmp(&b.0)));
    latest.dedup_by(|a, b| a.0 == b.0);
    let mut body = String::new();
    let mut family: Option<&str> = None;
    for (labels, sample) in &latest {
        let Some(name) = labels.metric_name() else { continue };
        if family != Some(name) {
            let _ = writeln!(body, "# TYPE {name} untyped");
            family = Some(name);
        }
        body.push_str(name);
        write_labels(&mut body, labels.iter().filter(|(k, v)| *k != METRIC_NAME && !v.is_empty()));
        let _ = writeln!(body, " {} {}", fmt_float(sample.v), sample.t);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}

fn required(p: &Params, name: &str) -> Result<String, ApiError> {
    match p.get(name) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(ApiError::bad_input(format!("invalid parameter {name:?}: missing"))),
    }
}

/// The engine for this request: the configured options, with `timeout=` if it is shorter.
fn engine(app: &AppState, p: &Params) -> Result<Engine, ApiError> {
    let mut opts: EngineOptions = app.limits().query.clone();
    if let Some(t) = p.get("timeout") {
        let asked = Duration::from_millis(parse_duration("timeout", t)?.max(0) as u64);
        if opts.timeout.is_zero() || asked < opts.timeout {
            opts.timeout = asked;
        }
    }
    Ok(Engine::new(opts))
}

/// A Prometheus duration parameter in milliseconds: float seconds (`15`, `0.5`) or a
/// duration (`1m30s`).
fn parse_duration(param: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if ms.is_finite() && ms.abs() < i64::MAX as f64 {
            return Ok(ms as i64);
        }
    }
    units::parse_duration(s).ok().and_then(|d| i64::try_from(d.as_millis()).ok()).ok_or_else(|| {
        ApiError::bad_input(format!("invalid parameter {param:?}: cannot parse {s:?} to a valid duration"))
    })
}

/// `{"status":"success","data":...}` with `warnings` and `infos` when there are any.
fn answer(out: QueryOutput) -> Response {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        status: &'static str,
        data: telltale_promql::PrometheusData<'a>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        infos: Vec<String>,
    }
    let a = out.annotations;
    let body = Answer { status: "success", data: out.value.prometheus_data(), warnings: a.warnings, infos: a.infos };
    match serde_json::to_vec(&body) {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("step", "15").unwrap(), 15_000);
        assert_eq!(parse_duration("step", "0.5").unwrap(), 500);
        assert_eq!(parse_duration("step", "1m30s").unwrap(), 90_000);
        let e = parse_duration("step", "soon").unwrap_err();
        assert_eq!(e.message(), "invalid parameter \"step\": cannot parse \"soon\" to a valid duration");
        assert!(parse_duration("step", "NaN").is_err());
    }
}
