//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, `limitk`, ...)
//! with `by` and `without`. See
//! <https://prometheus.io/docs/prometheus/latest/querying/operators/#aggregation-operators>.

use std::collections::HashMap;

use promql_parser::parser::token::*;
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use telltale_model::{Labels, METRIC_NAME};

use crate::error::{Error, Result};
use crate::eval::{by_step, unwrap_parens, EVal, Evaluator, SeriesBuilder};
use crate::functions::kahan_inc;
use crate::hash::labels_hash;
use crate::value::format_float;

/// The group a series falls into, as the labels of the aggregated output.
fn group_labels(l: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::empty(),
        Some(LabelModifier::Include(by)) => {
            let mut b = l.to_builder();
            b.retain(|n, _| by.labels.iter().any(|x| x == n));
            b.build().unwrap_or_default()
        }
        Some(LabelModifier::Exclude(without)) => {
            let mut b = l.to_builder();
            b.retain(|n, _| n != METRIC_NAME && !without.labels.iter().any(|x| x == n));
            b.build().unwrap_or_default()
        }
    }
}

/// Running state of one group at one step.
#[derive(Clone, Default)]
struct Acc {
    count: f64,
    value: f64,
    kahan: f64,
    mean: f64,
    incremental: bool,
    values: Vec<(usize, f64)>,
}

pub(crate) fn eval_aggregate(ev: &Evaluator<'_>, a: &AggregateExpr) -> Result<EVal> {
    let op = a.op.id();
    let input = ev.eval_vector(&a.expr)?;
    let modifier = a.modifier.as_ref();

    // Parameters are evaluated per step (Prometheus 3 allows e.g. `topk(scalar(x), ...)`).
    let mut param: Vec<f64> = Vec::new();
    let mut label_param = String::new();
    if let Some(p) = &a.param {
        match op {
            T_COUNT_VALUES => match unwrap_parens(p) {
                Expr::StringLiteral(s) => label_param = s.val.clone(),
                _ => return Err(Error::bad("expected string literal as count_values parameter")),
            },
            _ => param = ev.eval_scalar(p)?,
        }
    }
    if op == T_COUNT_VALUES && !valid_label_name(&label_param) {
        return Err(Error::exec(format!("invalid label name {label_param:?}")));
    }

    if matches!(op, T_TOPK | T_BOTTOMK | T_LIMITK) && param.iter().any(|p| p.is_nan()) {
        return Err(Error::exec("Parameter value is NaN"));
    }
    if op == T_LIMIT_RATIO && param.iter().any(|p| p.is_nan()) {
        return Err(Error::exec("Ratio value is NaN"));
    }

    let mut group_of: Vec<usize> = Vec::with_capacity(input.len());
    let mut groups: Vec<Labels> = Vec::new();
    // A group keeps a to-be-dropped name if any of its series drops it (delayed name removal).
    let mut group_drop: Vec<bool> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in &input {
        let g = group_labels(&s.labels, modifier);
        let next = groups.len();
        let gi = *index.entry(g.clone()).or_insert(next);
        if gi == next {
            groups.push(g);
            group_drop.push(false);
        }
        group_drop[gi] |= s.drop_name;
        group_of.push(gi);
    }

    let steps = by_step(&input, &ev.steps);
    let mut out = SeriesBuilder::new();
    let mut accs: Vec<Option<Acc>> = vec![None; groups.len()];
    let mut group_slot: Vec<Option<usize>> = vec![None; groups.len()];
    let mut touched: Vec<usize> = Vec::new();
    for (i, points) in steps.iter().enumerate() {
        ev.ctx.check_deadline()?;
        let t = ev.steps.ts(i);
        if points.is_empty() {
            continue;
        }
        touched.clear();
        let p = param.get(i).copied().unwrap_or(f64::NAN);
        // Parameter checks for this step.
        let mut k = 0usize;
        let mut ratio = 0.0;
        match op {
            T_TOPK | T_BOTTOMK | T_LIMITK => {
                if p.is_nan() {
                    return Err(Error::exec("Parameter value is NaN"));
                }
                if p >= 9.223372036854776e18 || p <= -9.223372036854776e18 {
                    return Err(Error::exec(format!("Scalar value {} overflows int64", format_go(p))));
                }
                let kk = p as i64;
                if kk < 1 {
                    continue;
                }
                k = kk.min(points.len() as i64) as usize;
            }
            T_QUANTILE if !(0.0..=1.0).contains(&p) => {
                ev.ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}{}",
                    format_go(p),
                    ev.ctx.pos(a.param.as_deref().unwrap_or(&a.expr))
                ));
            }
            T_LIMIT_RATIO => {
                if p.is_nan() {
                    return Err(Error::exec("Ratio value is NaN"));
                }
                ratio = p;
                if !(-1.0..=1.0).contains(&p) {
                    ratio = p.clamp(-1.0, 1.0);
                    ev.ctx.warn(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                        format_go(p),
                        format_go(ratio)
                    ));
                }
            }
            _ => {}
        }
        for &(j, v) in points {
            let g = group_of[j];
            let acc = &mut accs[g];
            let Some(acc) = acc else {
                touched.push(g);
                accs[g] = Some(Acc {
                    count: 1.0,
                    value: match op {
                        T_GROUP => 1.0,
                        T_STDDEV | T_STDVAR if v.is_nan() || v.is_infinite() => f64::NAN,
                        T_STDDEV | T_STDVAR => 0.0,
                        _ => v,
                    },
                    kahan: 0.0,
                    mean: v,
                    incremental: false,
                    values: vec![(j, v)],
                });
                continue;
            };
            acc.count += 1.0;
            match op {
                T_SUM => {
                    let (s, c) = kahan_inc(v, acc.value, acc.kahan);
                    acc.value = s;
                    acc.kahan = c;
                }
                T_AVG => avg_inc(acc, v),
                T_MAX => {
                    if acc.value < v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                T_MIN => {
                    if acc.value > v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                T_STDDEV | T_STDVAR => {
                    let delta = v - acc.mean;
                    acc.mean += delta / acc.count;
                    acc.value += delta * (v - acc.mean);
                }
                _ => acc.values.push((j, v)),
            }
        }
        for &g in &touched {
            let Some(acc) = accs[g].take() else { continue };
            let gl = &groups[g];
            let gd = group_drop[g];
            let mut slot = || *group_slot[g].get_or_insert_with(|| out.slot(gl, gd));
            match op {
                T_SUM => {
                    let k = slot();
                    out.push_slot(k, t, acc.value + acc.kahan)
                }
                T_AVG => {
                    let v = if acc.incremental { acc.mean + acc.kahan } else { (acc.value + acc.kahan) / acc.count };
                    {
                        let k = slot();
                        out.push_slot(k, t, v)
                    }
                }
                T_COUNT => {
                    let k = slot();
                    out.push_slot(k, t, acc.count)
                }
                T_GROUP => {
                    let k = slot();
                    out.push_slot(k, t, 1.0)
                }
                T_MAX | T_MIN => {
                    let k = slot();
                    out.push_slot(k, t, acc.value)
                }
                T_STDVAR => {
                    let k = slot();
                    out.push_slot(k, t, acc.value / acc.count)
                }
                T_STDDEV => {
                    let k = slot();
                    out.push_slot(k, t, (acc.value / acc.count).sqrt())
                }
                T_QUANTILE => {
                    let mut vals: Vec<f64> = acc.values.iter().map(|x| x.1).collect();
                    let k = slot();
                    out.push_slot(k, t, quantile(p, &mut vals))
                }
                T_COUNT_VALUES => {
                    let mut counts: Vec<(String, f64)> = Vec::new();
                    for (_, v) in &acc.values {
                        let s = format_float(*v);
                        match counts.iter_mut().find(|(k, _)| *k == s) {
                            Some(c) => c.1 += 1.0,
                            None => counts.push((s, 1.0)),
                        }
                    }
                    for (s, c) in counts {
                        let mut b = gl.to_builder();
                        b.set(&label_param, &s);
                        let l = b.build().unwrap_or_default();
                        out.push(&l, false, t, c);
                    }
                }
                T_TOPK | T_BOTTOMK => {
                    let mut vals = acc.values;
                    let top = op == T_TOPK;
                    // NaN sorts last in both directions; the sort is stable so that earlier
                    // series win ties, as with Prometheus's heap.
                    vals.sort_by(|a, b| {
                        use std::cmp::Ordering;
                        match (a.1.is_nan(), b.1.is_nan()) {
                            (true, true) => Ordering::Equal,
                            (true, false) => Ordering::Greater,
                            (false, true) => Ordering::Less,
                            _ if top => b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal),
                            _ => a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal),
                        }
                    });
                    for (j, v) in vals.into_iter().take(k) {
                        out.push(&input[j].labels, input[j].drop_name, t, v);
                    }
                }
                T_LIMITK => {
                    for (j, v) in acc.values.into_iter().take(k) {
                        out.push(&input[j].labels, input[j].drop_name, t, v);
                    }
                }
                T_LIMIT_RATIO => {
                    for (j, v) in acc.values {
                        if ratio_keeps(ratio, &input[j].labels) {
                            out.push(&input[j].labels, input[j].drop_name, t, v);
                        }
                    }
                }
                _ => return Err(Error::bad(format!("unsupported aggregation {}", a.op))),
            }
        }
    }
    Ok(EVal::Vector(out.finish()))
}

/// Whether `limit_ratio(ratio, ...)` keeps a series: its label hash, scaled to [0, 1), must
/// fall under the ratio (or, for a negative ratio, in the complementary upper part).
fn ratio_keeps(ratio: f64, labels: &Labels) -> bool {
    let offset = labels_hash(labels) as f64 / u64::MAX as f64;
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn avg_inc(acc: &mut Acc, v: f64) {
    if !acc.incremental {
        let (s, c) = kahan_inc(v, acc.value, acc.kahan);
        if !s.is_infinite() {
            acc.value = s;
            acc.kahan = c;
            return;
        }
        // The running sum would overflow: continue with an incremental mean.
        acc.incremental = true;
        acc.mean = acc.value / (acc.count - 1.0);
        acc.kahan /= acc.count - 1.0;
    }
    if acc.mean.is_infinite() {
        if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
            return;
        }
        if !v.is_infinite() && !v.is_nan() {
            return;
        }
    }
    let current = acc.mean + acc.kahan;
    let (m, c) = kahan_inc(v / acc.count - current / acc.count, acc.mean, acc.kahan);
    acc.mean = m;
    acc.kahan = c;
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks; NaN sorts first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Prometheus 3 accepts any non-empty UTF-8 label name.
pub(crate) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

/// Go's `%g`-like formatting used in Prometheus's messages (`%v` of a float64).
pub(crate) fn format_go(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Go switches to exponent form with at least two exponent digits.
        let s = format!("{v:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{v}")
}
