//! `/api/v1/query_exemplars` from the span-metrics generator: the TSDB stores no exemplars, but
//! the generator keeps the last span of every latency bucket, so a Grafana panel over
//! `traces_spanmetrics_latency_bucket` (or Jaeger's `traces_span_metrics_duration_milliseconds_bucket`)
//! links each bucket to a trace.
//!
//! The query's selectors are found by the engine itself: it evaluates the query once against a
//! reader that records every selection and returns nothing, so whatever PromQL accepts
//! (functions, binary operators, subqueries) yields the same matchers it would read with.
//! Answered in Prometheus's shape
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/#querying-exemplars>):
//! `[{"seriesLabels": {...}, "exemplars": [{"labels": {"trace_id": ..., "span_id": ...},
//! "value": "0.25", "timestamp": 1700000000.123}]}]`.

use parking_lot::Mutex;
use serde_json::{json, Value as J};
use telltale_model::{Labels, Matcher, TimeRange};
use telltale_promql::{format_float, labels_json, timestamp_json, Engine, Series};
use telltale_spanmetrics::metrics::{SPAN_ID_LABEL, TRACE_ID_LABEL};
use telltale_spanmetrics::SeriesExemplars;
use telltale_storage::MetricReader;

use crate::tenant::Scoped;
use crate::ApiError;

/// A reader that remembers what was asked of it and holds no data.
#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<Matcher>>>);

impl MetricReader for Recorder {
    fn select(&self, _: TimeRange, matchers: &[Matcher]) -> telltale_storage::Result<Vec<Series>> {
        self.0.lock().push(matchers.to_vec());
        Ok(Vec::new())
    }

    fn series(&self, _: TimeRange, matchers: &[Matcher]) -> telltale_storage::Result<Vec<Labels>> {
        self.0.lock().push(matchers.to_vec());
        Ok(Vec::new())
    }

    fn label_names(&self, _: TimeRange, _: &[Matcher]) -> telltale_storage::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn label_values(&self, _: &str, _: TimeRange, _: &[Matcher]) -> telltale_storage::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The vector selectors of `query`, as the engine reads them (deduplicated, in order).
pub(crate) fn selectors(query: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let rec = Recorder::default();
    Engine::default().instant_query(&rec, query, 0)?;
    let mut out: Vec<Vec<Matcher>> = Vec::new();
    for m in rec.0.into_inner() {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Prometheus's JSON for one series' exemplars.
fn render(s: &SeriesExemplars) -> J {
    let exemplars: Vec<J> = s
        .exemplars
        .iter()
        .map(|e| {
            json!({
                "labels": {TRACE_ID_LABEL: e.trace_id.to_string(), SPAN_ID_LABEL: e.span_id.to_string()},
                "value": format_float(e.value),
                "timestamp": timestamp_json(e.timestamp),
            })
        })
        .collect();
    json!({"seriesLabels": labels_json(&s.labels), "exemplars": exemplars})
}

/// The generator's exemplars for every selector of `query` within `range` (ms). A tenant
/// without a trace store has none.
pub(crate) async fn of_query(app: &Scoped, query: String, range: TimeRange) -> Result<Vec<J>, ApiError> {
    let found = app
        .on_blocking_pool(move |me| {
            let Ok(traces) = me.traces() else { return Ok(Vec::new()) };
            let sels = selectors(&query)?;
            let mut out: Vec<SeriesExemplars> = Vec::new();
            traces.with_generator(|g| {
                for m in &sels {
                    for s in g.exemplars(m, range) {
                        if !out.iter().any(|o| o.labels == s.labels) {
                            out.push(s);
                        }
                    }
                }
            });
            Ok(out)
        })
        .await?;
    Ok(found.iter().map(render).collect())
}

#[cfg(test)]
mod tests {
    use telltale_model::{SpanId, TraceId};
    use telltale_spanmetrics::Exemplar;

    use super::*;

    #[test]
    fn the_engine_names_the_selectors() {
        let q = r#"histogram_quantile(0.9, sum by (le) (rate(traces_spanmetrics_latency_bucket{service="a"}[5m]))) / on() group_left up"#;
        let sels = selectors(q).unwrap();
        assert_eq!(sels.len(), 2);
        let names: Vec<String> =
            sels.iter().map(|m| m.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(",")).collect();
        assert!(names[0].contains("traces_spanmetrics_latency_bucket") && names[0].contains("service"), "{names:?}");
        assert!(names[1].contains("up"), "{names:?}");
        assert!(selectors("sum(").is_err());
    }

    #[test]
    fn exemplars_render_as_prometheus_does() {
        let s = SeriesExemplars {
            labels: Labels::from_pairs([("__name__", "traces_spanmetrics_latency_bucket"), ("le", "0.5")]).unwrap(),
            exemplars: vec![Exemplar {
                trace_id: TraceId::from_hex("abc").unwrap(),
                span_id: SpanId::from_hex("0102030405060708").unwrap(),
                value: 0.25,
                timestamp: 1_700_000_000_123,
            }],
        };
        assert_eq!(
            render(&s).to_string(),
            r#"{"exemplars":[{"labels":{"span_id":"0102030405060708","trace_id":"00000000000000000000000000000abc"},"timestamp":1700000000.123,"value":"0.25"}],"seriesLabels":{"__name__":"traces_spanmetrics_latency_bucket","le":"0.5"}}"#
        );
    }
}
