//! TraceQL metrics: spans matched by the pipeline, bucketed by start time into steps and
//! aggregated per series (`by(...)` values). Quantiles use Tempo's power-of-two histogram
//! (`Log2Bucketize` and `Log2Quantile` in Tempo's `engine_metrics.go`), so they agree with
//! Tempo's numbers rather than being exact.

use std::collections::BTreeMap;

use telltale_model::SpanBatch;

use crate::ast::{FieldRef, MetricsAggregate, MetricsOp};
use crate::error::{Error, Result};
use crate::eval::{Evaluator, Set, Trace};
use crate::value::Value;
use crate::Query;

/// The time range of a metrics query, in nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsRange {
    /// First instant included.
    pub start: i64,
    /// First instant excluded.
    pub end: i64,
    /// Step width; sample `i` covers `[start + i*step, start + (i+1)*step)`.
    pub step: i64,
}

/// Most steps one query may ask for.
pub const MAX_STEPS: i64 = 11_000;

/// One output series.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    /// Labels, sorted by name: `by()` fields by their canonical name, `__name__` for an
    /// ungrouped series, `p` for a quantile, `__bucket` for a histogram bucket.
    pub labels: Vec<(String, String)>,
    /// `(milliseconds of the step's start, value)`, oldest first.
    pub samples: Vec<(i64, f64)>,
}

/// Per step: count, min, max, sum, or histogram buckets.
#[derive(Debug, Clone, Default)]
struct Acc {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    seen: bool,
    buckets: BTreeMap<u64, f64>,
}

/// Streams traces into a metrics query's series: [`MetricsEvaluator::observe`] each trace,
/// then [`MetricsEvaluator::finish`].
pub struct MetricsEvaluator<'q> {
    query: &'q Query,
    metrics: &'q MetricsAggregate,
    range: MetricsRange,
    steps: usize,
    series: BTreeMap<Vec<(String, String)>, Vec<Acc>>,
}

/// Tempo's `Log2Bucketize`: the next power of two at or above `v` (1 for `v < 2`).
pub(crate) fn log2_bucket(v: u64) -> u64 {
    if v < 2 {
        1
    } else {
        1u64.checked_shl(64 - (v - 1).leading_zeros()).unwrap_or(u64::MAX)
    }
}

/// Tempo's `Log2Quantile` over `(bucket upper bound, count)` sorted by bound.
pub(crate) fn log2_quantile(p: f64, buckets: &[(f64, f64)]) -> f64 {
    let total: f64 = buckets.iter().map(|b| b.1).sum();
    if p.is_nan() || !(0.0..=1.0).contains(&p) || buckets.is_empty() || total == 0.0 {
        return 0.0;
    }
    let max_samples = ((p * total).ceil()).max(1.0);
    let mut seen = 0.0;
    let mut bucket = 0;
    for (i, b) in buckets.iter().enumerate() {
        bucket = i;
        if seen + b.1 > max_samples {
            break;
        }
        seen += b.1;
        if seen == max_samples {
            return b.0;
        }
    }
    let interp = (max_samples - seen) / buckets[bucket].1;
    let max_v = buckets[bucket].0.log2();
    let min_v = if bucket > 0 { buckets[bucket - 1].0.log2() } else { max_v - 1.0 };
    2f64.powf(min_v + (max_v - min_v) * interp)
}

impl<'q> MetricsEvaluator<'q> {
    /// A new evaluation of `query` over `range`; fails for a query without a metrics stage
    /// or a bad range.
    pub fn new(query: &'q Query, range: MetricsRange) -> Result<Self> {
        let Some(metrics) = &query.root.metrics else {
            return Err(Error::Execution("not a metrics query: add | rate(), | count_over_time(), ...".into()));
        };
        if range.step <= 0 || range.end <= range.start {
            return Err(Error::Execution(format!(
                "invalid range: start {} end {} step {} (need start < end and step > 0)",
                range.start, range.end, range.step
            )));
        }
        let steps =
            (range.end - range.start).div_euclid(range.step) + i64::from((range.end - range.start) % range.step != 0);
        if steps > MAX_STEPS {
            return Err(Error::Execution(format!("too many steps: {steps} (at most {MAX_STEPS}); raise the step")));
        }
        Ok(MetricsEvaluator { query, metrics, range, steps: steps as usize, series: BTreeMap::new() })
    }

    /// Adds the spans of one trace.
    pub fn observe(&mut self, batch: &SpanBatch) {
        let trace = Trace::new(batch);
        let ev = Evaluator { trace: &trace, regexes: &self.query.regexes };
        let all = Set { spans: (0..trace.spans.len()).collect(), ..Set::default() };
        let mut spans: Vec<usize> =
            ev.pipeline(&self.query.root.pipeline, vec![all]).into_iter().flat_map(|s| s.spans).collect();
        spans.sort_unstable();
        spans.dedup();
        for i in spans {
            let span = trace.spans[i].span;
            if span.start < self.range.start || span.start >= self.range.end {
                continue;
            }
            let step = ((span.start - self.range.start) / self.range.step) as usize;
            let labels = self.labels_for(&ev, i);
            let value = match self.metrics.op.field() {
                None => None,
                Some(f) => match field_value(&ev, f, i) {
                    Some(v) => Some(v),
                    None => continue,
                },
            };
            let accs = self.series.entry(labels).or_insert_with(|| vec![Acc::default(); self.steps]);
            let Some(acc) = accs.get_mut(step) else { continue };
            acc.count += 1.0;
            if let Some(v) = value {
                if !acc.seen {
                    acc.min = v;
                    acc.max = v;
                }
                acc.seen = true;
                acc.sum += v;
                acc.min = acc.min.min(v);
                acc.max = acc.max.max(v);
                if matches!(self.metrics.op, MetricsOp::QuantileOverTime(..) | MetricsOp::HistogramOverTime(_)) {
                    *acc.buckets.entry(bucket_of(self.metrics.op.field(), v)).or_default() += 1.0;
                }
            }
        }
    }

    fn labels_for(&self, ev: &Evaluator<'_, '_>, i: usize) -> Vec<(String, String)> {
        if self.metrics.by.is_empty() {
            return vec![("__name__".to_string(), self.metrics.op.name().to_string())];
        }
        let mut labels: Vec<(String, String)> = self
            .metrics
            .by
            .iter()
            .filter_map(|f| {
                let v = ev.value_of(&f.to_expr(), i);
                (!v.is_nil()).then(|| (f.to_string(), v.to_string()))
            })
            .collect();
        if labels.is_empty() {
            // As Tempo: all values missing gives the first label the value "nil".
            labels.push((self.metrics.by[0].to_string(), "nil".to_string()));
        }
        labels
    }

    /// The series, sorted by labels.
    pub fn finish(self) -> Vec<MetricSeries> {
        let ts = |i: usize| (self.range.start + i as i64 * self.range.step).div_euclid(1_000_000);
        let step_secs = self.range.step as f64 / 1e9;
        let mut out = Vec::new();
        for (labels, accs) in &self.series {
            let with = |extra: (&str, String)| {
                let mut l = labels.clone();
                l.push((extra.0.to_string(), extra.1));
                l.sort();
                l
            };
            let simple = |f: &dyn Fn(&Acc) -> f64, keep_empty: bool| -> Vec<(i64, f64)> {
                accs.iter().enumerate().filter(|(_, a)| keep_empty || a.seen).map(|(i, a)| (ts(i), f(a))).collect()
            };
            match &self.metrics.op {
                MetricsOp::Rate => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.count / step_secs, true) })
                }
                MetricsOp::CountOverTime => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.count, true) })
                }
                MetricsOp::MinOverTime(_) => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.min, false) })
                }
                MetricsOp::MaxOverTime(_) => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.max, false) })
                }
                MetricsOp::SumOverTime(_) => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.sum, false) })
                }
                MetricsOp::AvgOverTime(_) => {
                    out.push(MetricSeries { labels: labels.clone(), samples: simple(&|a| a.sum / a.count, false) })
                }
                MetricsOp::QuantileOverTime(f, qs) => {
                    for q in qs {
                        let samples = simple(
                            &|a| {
                                let b: Vec<(f64, f64)> =
                                    a.buckets.iter().map(|(k, c)| (bucket_value(Some(f), *k), *c)).collect();
                                log2_quantile(*q, &b)
                            },
                            false,
                        );
                        out.push(MetricSeries { labels: with(("p", format!("{q}"))), samples });
                    }
                }
                MetricsOp::HistogramOverTime(f) => {
                    let mut all: Vec<u64> = accs.iter().flat_map(|a| a.buckets.keys().copied()).collect();
                    all.sort_unstable();
                    all.dedup();
                    for b in all {
                        let samples = simple(&|a| a.buckets.get(&b).copied().unwrap_or(0.0), true);
                        out.push(MetricSeries {
                            labels: with(("__bucket", format!("{}", bucket_value(Some(f), b)))),
                            samples,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

fn is_duration(f: Option<&FieldRef>) -> bool {
    matches!(
        f,
        Some(FieldRef::Intrinsic(
            crate::ast::Intrinsic::Duration
                | crate::ast::Intrinsic::TraceDuration
                | crate::ast::Intrinsic::EventTimeSinceStart
        ))
    )
}

/// A bucket's upper bound as reported: durations are bucketed in nanoseconds and reported in
/// seconds, as Tempo does.
fn bucket_value(f: Option<&FieldRef>, bucket: u64) -> f64 {
    if is_duration(f) {
        bucket as f64 / 1e9
    } else {
        bucket as f64
    }
}

fn bucket_of(f: Option<&FieldRef>, v: f64) -> u64 {
    let raw = if is_duration(f) { v * 1e9 } else { v };
    // Negative and NaN values land in the lowest bucket; `as` saturates.
    log2_bucket(raw.round().max(0.0) as u64)
}

fn field_value(ev: &Evaluator<'_, '_>, f: &FieldRef, i: usize) -> Option<f64> {
    match ev.value_of(&f.to_expr(), i) {
        Value::Duration(d) => Some(d as f64 / 1e9),
        Value::Int(x) => Some(x as f64),
        Value::Float(x) => Some(x),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_helpers_match_tempo() {
        assert_eq!(log2_bucket(0), 1);
        assert_eq!(log2_bucket(2), 2);
        assert_eq!(log2_bucket(3), 4);
        assert_eq!(log2_bucket(1024), 1024);
        assert_eq!(log2_bucket(1025), 2048);
        assert_eq!(log2_bucket(u64::MAX), u64::MAX);
        // Tempo's TestLog2Quantile-style: all in one bucket gives its bound at p100.
        assert_eq!(log2_quantile(1.0, &[(1.0, 1.0), (2.0, 1.0)]), 2.0);
        assert_eq!(log2_quantile(0.5, &[(1.0, 1.0), (2.0, 1.0)]), 1.0);
        // Interpolated halfway (exponentially) inside the first bucket.
        assert!((log2_quantile(0.5, &[(4.0, 4.0)]) - 2f64.powf(1.5)).abs() < 1e-12);
    }
}
