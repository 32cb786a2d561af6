//! `histogram_quantile` over classic histograms (`_bucket` series with an `le` label).
//! See <https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile>.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};
use telltale_model::{Labels, METRIC_NAME};

use crate::aggregate::format_go;
use crate::error::Result;
use crate::eval::{by_step, EVal, Evaluator, SeriesBuilder};

/// Bucket counts within this relative difference are treated as equal (float noise).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, call: &Call, a: &[&Expr]) -> Result<EVal> {
    let q = ev.eval_scalar(a[0])?;
    let input = ev.eval_vector(a[1])?;
    let pos = ev.ctx.pos(&Expr::Call(call.clone()));
    let arg_pos = ev.ctx.pos(a[1]);
    // Group series by their labels without `le`; the output drops `le` and the name.
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
            let mut b = key.to_builder();
            b.remove(METRIC_NAME);
            groups.push(b.build().unwrap_or_default());
        }
        group_of.push(Some(g));
        uppers.push(upper);
    }
    let steps = by_step(&input, &ev.steps);
    let mut out = SeriesBuilder::new();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    for (i, points) in steps.iter().enumerate() {
        let t = ev.steps.ts(i);
        let qv = q[i];
        if !points.is_empty() && !(0.0..=1.0).contains(&qv) {
            ev.ctx
                .warn(format!("PromQL warning: quantile value should be between 0 and 1, got {}{pos}", format_go(qv)));
        }
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
            let mut b = std::mem::take(&mut buckets[g]);
            let (v, forced) = bucket_quantile(qv, &mut b);
            if forced {
                ev.ctx.info(format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}{arg_pos}",
                    input.iter().zip(&group_of).find(|(_, x)| **x == Some(g)).and_then(|(s, _)| s.labels.metric_name()).unwrap_or("")
                ));
            }
            out.push(&groups[g], false, t, v);
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
