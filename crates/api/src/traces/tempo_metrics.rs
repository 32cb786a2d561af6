//! TraceQL metrics over HTTP, as Tempo serves them
//! (<https://grafana.com/docs/tempo/latest/api_docs/#traceql-metrics>):
//! `GET /api/metrics/query_range?q=&start=&end=&step=` and the instant
//! `GET /api/metrics/query?q=&start=&end=` that Grafana's Tempo data source and its
//! Traces Drilldown call.
//!
//! Every trace the store's search returns for the query's hints in `[start, end)` is read
//! whole, once, and fed to [`telltale_traceql::MetricsEvaluator`], which counts the spans the
//! pipeline matches by start time into steps. Parameters follow Tempo's `pkg/api/http.go`:
//! `q` (or `query`), `start`/`end` as unix seconds (10 digits or fewer), nanoseconds, float
//! seconds or RFC 3339, by default the hour before now; `step` as float seconds or a Go
//! duration, by default Tempo's `DefaultQueryRangeStep` (about 240 points, rounded to a
//! granularity).
//!
//! The answer is `tempopb.QueryRangeResponse` as Tempo's gogo `jsonpb` writes it
//! (`pkg/tempopb/tempo.proto`): `{"series": [{"labels": [{"key": ..., "value":
//! {"stringValue": ...}}], "samples": [{"timestampMs": "<int64 as a string>", "value": 1.5}],
//! "promLabels": "{...}"}], "metrics": {...}}`. `promLabels` is what Tempo before 2.10 wrote
//! and Grafana up to then read; later Tempo dropped it and Grafana reads `labels`. Label values
//! are strings except the quantile label `p` and the histogram's `__bucket`, which are doubles
//! as in Tempo. Exemplars are not computed.

use std::collections::HashSet;

use axum::response::Response;
use serde_json::{json, Value as J};
use telltale_model::StatusCode;
use telltale_traceql::{Hint, MetricSeries, MetricsEvaluator, MetricsRange, Query};
use telltale_tracestore::Search;

use super::TraceService;
use crate::params::Params;
use crate::tenant::Scoped;
use crate::ApiError;

const SECOND: i64 = 1_000_000_000;

/// Tempo's `parseTimestamp`: nanoseconds since the epoch, or `default` for an empty value.
fn timestamp(name: &str, s: Option<&str>, default: i64) -> Result<i64, ApiError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(default) };
    let bad = || ApiError::bad_input(format!("could not parse '{name}' parameter: {s:?}"));
    if s.contains('.') {
        if let Ok(f) = s.parse::<f64>() {
            return Ok((f * 1e9).round() as i64);
        }
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(if s.trim_start_matches('-').len() <= 10 { n.saturating_mul(SECOND) } else { n });
    }
    telltale_ingest::loki::parse_rfc3339_ns(s).ok_or_else(bad)
}

/// Tempo's `DefaultQueryRangeStep`: about 240 points, at a round granularity.
fn default_step(start: i64, end: i64) -> i64 {
    let delta = end - start;
    let baseline = delta / 240;
    if delta < 60 * SECOND {
        let g = 50_000_000;
        return if baseline > g { baseline / g * g } else { g };
    }
    for g in [3600 * SECOND, 300 * SECOND, 60 * SECOND, 15 * SECOND, 5 * SECOND, SECOND] {
        if baseline > g {
            return baseline / g * g;
        }
    }
    SECOND
}

/// Tempo's `step`: float seconds or a Go duration, in nanoseconds.
fn step(p: &Params, start: i64, end: i64) -> Result<i64, ApiError> {
    let Some(s) = p.get("step").filter(|s| !s.is_empty()) else { return Ok(default_step(start, end)) };
    let ns = match s.parse::<f64>() {
        Ok(f) if f.is_finite() => (f * 1e9) as i64,
        _ => super::tempo::parse_go_duration("step", s)?,
    };
    if ns <= 0 {
        return Err(ApiError::bad_input(format!("cannot parse {s:?}: step must be positive")));
    }
    Ok(ns)
}

/// The query and its range from the request; `instant` makes one step of the whole range.
fn request(p: &Params, now_ns: i64, instant: bool) -> Result<(Query, MetricsRange), ApiError> {
    let text = p.get("q").or_else(|| p.get("query")).unwrap_or("");
    if text.trim().is_empty() {
        return Err(ApiError::bad_input("parameter q is required: a TraceQL metrics query"));
    }
    let query = telltale_traceql::parse(text)?;
    if !query.is_metrics() {
        return Err(ApiError::bad_input("not a metrics query: add | rate(), | count_over_time(), ..."));
    }
    let end = timestamp("end", p.get("end"), now_ns)?;
    let start = timestamp("start", p.get("start"), end.min(now_ns) - 3600 * SECOND)?;
    if end <= start {
        return Err(ApiError::bad_input("invalid range: end must be after start"));
    }
    let step = if instant { end - start } else { step(p, start, end)? };
    Ok((query, MetricsRange { start, end, step }))
}

/// What the store can check before reading, from the query's hints.
fn store_search(q: &Query, r: &MetricsRange) -> Search {
    let mut s = Search { start: r.start, end: r.end, ..Search::default() };
    for h in q.hints().conditions {
        match h {
            Hint::ServiceName(n) if s.services.is_empty() => s.services.push(n),
            Hint::SpanName(n) if s.names.is_empty() => s.names.push(n),
            Hint::MinDuration(d) => s.min_duration = s.min_duration.max(d),
            Hint::Status(StatusCode::Error) => s.error_only = true,
            Hint::Attribute { key, value, .. } => s.attrs.push((key, value)),
            _ => {}
        }
    }
    s
}

/// Runs `query` over `range`: each candidate trace read whole, once. Returns the series and
/// how many traces were inspected.
fn evaluate(t: &TraceService, query: &Query, range: MetricsRange) -> Result<(Vec<MetricSeries>, usize), ApiError> {
    let mut ev = MetricsEvaluator::new(query, range)?;
    let mut seen = HashSet::new();
    let mut err = None;
    t.db().search(&store_search(query, &range), &mut |id, _| {
        if !seen.insert(id) {
            return true;
        }
        match t.db().trace(&id) {
            Ok(r) => {
                ev.observe(&r.batch);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok((ev.finish(), seen.len()))
}

fn label_json(k: &str, v: &str) -> J {
    let value = match (k, v.parse::<f64>()) {
        ("p" | "__bucket", Ok(f)) => json!({"doubleValue": f}),
        _ => json!({"stringValue": v}),
    };
    json!({"key": k, "value": value})
}

/// Prometheus-style text of the labels, as Tempo's `Labels.String` (`<empty>` for "").
fn prom_labels(labels: &[(String, String)]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "<empty>" } else { v.as_str() };
            format!("{k}={v:?}")
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn series_json(s: &MetricSeries, instant: bool) -> Option<J> {
    let labels: Vec<J> = s.labels.iter().map(|(k, v)| label_json(k, v)).collect();
    let samples: Vec<(i64, f64)> = s.samples.iter().copied().filter(|(_, v)| !v.is_nan()).collect();
    let (_, last) = *samples.last()?;
    let mut out = json!({"labels": labels, "promLabels": prom_labels(&s.labels)});
    if instant {
        out["value"] = json!(last);
    } else {
        out["samples"] =
            samples.iter().map(|(t, v)| json!({"timestampMs": t.to_string(), "value": v})).collect::<Vec<J>>().into();
    }
    Some(out)
}

fn response(series: &[MetricSeries], inspected: usize, instant: bool) -> J {
    let series: Vec<J> = series.iter().filter_map(|s| series_json(s, instant)).collect();
    json!({"series": series, "metrics": {"inspectedTraces": inspected, "completedJobs": 1, "totalJobs": 1}})
}

async fn run(app: Scoped, p: Params, instant: bool) -> Result<Response, ApiError> {
    let (query, range) = request(&p, app.now_ms().saturating_mul(1_000_000), instant)?;
    let (series, inspected) = app.blocking_traces(move |_, t| evaluate(t, &query, range)).await?;
    Ok(crate::json(response(&series, inspected, instant)))
}

/// `GET /api/metrics/query_range`: `QueryRangeResponse`.
pub(crate) async fn query_range(app: Scoped, p: Params) -> Result<Response, ApiError> {
    run(app, p, false).await
}

/// `GET /api/metrics/query`: `QueryInstantResponse`, one value per series over `[start, end)`.
pub(crate) async fn query_instant(app: Scoped, p: Params) -> Result<Response, ApiError> {
    run(app, p, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_as_tempo_reads_them() {
        assert_eq!(timestamp("end", Some("1700000000"), 0).unwrap(), 1_700_000_000 * SECOND);
        assert_eq!(timestamp("end", Some("1700000000000000000"), 0).unwrap(), 1_700_000_000 * SECOND);
        assert_eq!(timestamp("end", Some("1700000000.5"), 0).unwrap(), 1_700_000_000 * SECOND + SECOND / 2);
        assert_eq!(timestamp("end", Some("2024-01-01T00:00:00Z"), 0).unwrap(), 1_704_067_200 * SECOND);
        assert_eq!(timestamp("end", None, 7).unwrap(), 7);
        assert!(timestamp("end", Some("soon"), 0).is_err());
        assert_eq!(default_step(0, 3600 * SECOND), 15 * SECOND);
        assert_eq!(default_step(0, 30 * SECOND), 100_000_000);
        let now = 1_700_000_000 * SECOND;
        let (_, r) = request(&Params::from_query("q=%7B%7D%20%7C%20rate()"), now, false).unwrap();
        assert_eq!((r.start, r.end, r.step), (now - 3600 * SECOND, now, 15 * SECOND));
        let (_, r) =
            request(&Params::from_query("query=%7B%7D|rate()&start=100&end=200&step=10s"), now, false).unwrap();
        assert_eq!((r.start, r.end, r.step), (100 * SECOND, 200 * SECOND, 10 * SECOND));
        let (_, r) = request(&Params::from_query("q=%7B%7D|rate()&start=100&end=200"), now, true).unwrap();
        assert_eq!(r.step, 100 * SECOND);
        assert!(request(&Params::from_query("q=%7B%7D"), now, false).is_err());
        assert!(request(&Params::from_query("q=%7B%7D|rate()&start=2&end=1"), now, false).is_err());
    }

    #[test]
    fn hints_narrow_the_store_search() {
        let q = telltale_traceql::parse(r#"{ resource.service.name = "a" && status = error } | rate()"#).unwrap();
        let s = store_search(&q, &MetricsRange { start: 1, end: 2, step: 1 });
        assert_eq!((s.services, s.error_only, s.start, s.end), (vec!["a".to_string()], true, 1, 2));
    }

    #[test]
    fn the_response_is_tempos_json() {
        let s = MetricSeries {
            labels: vec![("p".into(), "0.9".into()), ("resource.service.name".into(), "a".into())],
            samples: vec![(1000, 1.5), (2000, f64::NAN)],
        };
        assert_eq!(
            response(std::slice::from_ref(&s), 3, false).to_string(),
            r#"{"metrics":{"completedJobs":1,"inspectedTraces":3,"totalJobs":1},"series":[{"labels":[{"key":"p","value":{"doubleValue":0.9}},{"key":"resource.service.name","value":{"stringValue":"a"}}],"promLabels":"{p=\"0.9\", resource.service.name=\"a\"}","samples":[{"timestampMs":"1000","value":1.5}]}]}"#
        );
        assert_eq!(response(&[s], 3, true)["series"][0]["value"], 1.5);
        let empty = MetricSeries { labels: vec![], samples: vec![(0, f64::NAN)] };
        assert_eq!(response(&[empty], 0, false)["series"], json!([]));
    }
}
