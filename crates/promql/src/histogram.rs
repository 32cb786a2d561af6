//! `histogram_quantile` over classic histograms (`_bucket` series with an `le` label).
//! See <https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile>.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};
use telltale_model::Labels;

use crate::aggregate::format_go;
use crate::error::Result;
use crate::eval::{by_step, EVal, Evaluator, SeriesBuilder};
use crate::value::format_float;

/// Bucket counts within this relative difference are treated as equal (float noise).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, call: &Call, a: &[&Expr]) -> Result<EVal> {
    let q = ev.eval_scalar(a[0])?;
    quantiles(ev, call, a[1], vec![(None, q)], ev.ctx.pos(a[0]))
}

/// `histogram_quantiles(v, "label", q1, q2, ...)`: one output series per quantile, told
/// apart by `label`.
pub(crate) fn histogram_quantiles(ev: &Evaluator<'_>, call: &Call, a: &[&Expr]) -> Result<EVal> {
    let label = match crate::eval::unwrap_parens(a[1]) {
        Expr::StringLiteral(s) => s.val.clone(),
        _ => {
            return Err(crate::error::Error::bad("expected a string literal as second argument of histogram_quantiles"))
        }
    };
    let mut qs = Vec::new();
    for e in &a[2..] {
        let v = ev.eval_scalar(e)?;
        let text = quantile_label(v.first().copied().unwrap_or(f64::NAN));
        qs.push((Some((label.clone(), text)), v));
    }
    let pos = a.get(2).map(|e| ev.ctx.pos(e)).unwrap_or_default();
    quantiles(ev, call, a[0], qs, pos)
}

/// A quantile as a label value: always with a decimal point (`0.0`, `1.0`, `0.25`).
fn quantile_label(q: f64) -> String {
    let s = format_float(q);
    if q.is_finite() && !s.contains('.') {
        format!("{s}.0")
    } else {
        s
    }
}

type QuantileSpec = (Option<(String, String)>, Vec<f64>);

fn quantiles(ev: &Evaluator<'_>, call: &Call, input: &Expr, qs: Vec<QuantileSpec>, q_pos: String) -> Result<EVal> {
    let _ = call;
    let arg_pos = ev.ctx.pos(input);
    let input = ev.eval_vector(input)?;
    for (label, _) in &qs {
        if let Some((n, _)) = label {
            if let Some(s) = input.iter().find(|s| s.labels.get(n).is_some()) {
                return Err(crate::error::Error::exec(format!(
                    "label {n:?} already exists in series {}",
                    crate::binary::prom_labels(&s.labels)
                )));
            }
        }
    }
    for (_, q) in &qs {
        if let Some(bad) = q.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            ev.ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}{q_pos}",
                format_go(*bad)
            ));
        }
    }
    // Group series by their labels without `le`; the output drops `le` and (at the end of
    // the query) the name, so two histograms differing only by name collide as in Prometheus.
    let mut group_of: Vec<Option<usize>> = Vec::with_capacity(input.len());
    let mut uppers: Vec<f64> = Vec::with_capacity(input.len());
    let mut groups: Vec<Labels> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in &input {
        let le = s.labels.get("le").unwrap_or("");
        let upper = match parse_go_float(le) {
            Some(u) => u,
            None => {
                ev.ctx.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {:?}{arg_pos}",
                    s.labels.metric_name().unwrap_or("")
                ));
                group_of.push(None);
                uppers.push(f64::NAN);
                continue;
            }
        };
        let mut b = s.labels.to_builder();
        b.remove("le");
        let key = b.build().unwrap_or_default();
        let next = groups.len();
        let g = *index.entry(key.clone()).or_insert(next);
        if g == next {
            groups.push(key);
        }
        group_of.push(Some(g));
        uppers.push(upper);
    }
    let steps = by_step(&input, &ev.steps);
    let mut out = SeriesBuilder::new();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    for (i, points) in steps.iter().enumerate() {
        let t = ev.steps.ts(i);
        let mut touched = Vec::new();
        for &(j, v) in points {
            if let Some(g) = group_of[j] {
                if buckets[g].is_empty() {
                    touched.push(g);
                }
                buckets[g].push(Bucket { upper: uppers[j], count: v });
            }
        }
        for g in touched {
            let b = std::mem::take(&mut buckets[g]);
            for (label, q) in &qs {
                let mut b = b.clone();
                let (v, forced) = bucket_quantile(q[i], &mut b);
                if forced {
                    ev.ctx.info(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}{arg_pos}",
                        groups[g].metric_name().unwrap_or("")
                    ));
                }
                let labels = match label {
                    Some((n, val)) => {
                        let mut lb = groups[g].to_builder();
                        lb.set(n, val);
                        lb.build().unwrap_or_default()
                    }
                    None => groups[g].clone(),
                };
                out.push(&labels, true, t, v);
            }
        }
    }
    Ok(EVal::Vector(out.finish()))
}

/// Go's `strconv.ParseFloat` for the values `le` takes (including `+Inf`).
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Prometheus's `BucketQuantile`; returns the value and whether monotonicity was forced.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    coalesce(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|x| x.count < rank);
    if b == n {
        return (buckets[n - 1].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}
