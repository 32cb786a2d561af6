//! PromQL functions over floats. See <https://prometheus.io/docs/prometheus/latest/querying/functions/>.
//!
//! Range-vector functions (`rate`, `*_over_time`, ...) slide a window over each series' raw
//! points with two cursors, so a range query costs one pass per series.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, Timelike};
use promql_parser::parser::{Call, Expr};
use telltale_model::{Labels, Sample, METRIC_NAME};

use crate::aggregate::{format_go, quantile};
use crate::error::{Error, Result};
use crate::eval::{unwrap_parens, ESeries, EVal, Evaluator, RangeArg};

/// Kahan-Babuska-Neumaier summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn args(c: &Call) -> Vec<&Expr> {
    c.args.args.iter().map(|b| b.as_ref()).collect()
}

pub(crate) fn eval_call(ev: &Evaluator<'_>, call: &Call) -> Result<EVal> {
    let name = call.func.name;
    let a = args(call);
    let n = ev.steps.len();
    // The parser checks arity; this guards the indexing below against any gap in that.
    let declared = call.func.arg_types.len();
    let min = match call.func.variadic {
        v if v > 0 => declared.saturating_sub(v as usize),
        v if v < 0 => declared.saturating_sub(1),
        _ => declared,
    };
    if a.len() < min {
        return Err(Error::bad(format!("expected at least {min} argument(s) in call to {name:?}, got {}", a.len())));
    }
    match name {
        "time" => Ok(EVal::Scalar((0..n).map(|i| ev.steps.ts(i) as f64 / 1000.0).collect())),
        "pi" => Ok(EVal::Scalar(vec![std::f64::consts::PI; n])),
        // Experimental: the query's own parameters, in seconds.
        "step" => Ok(EVal::Scalar(vec![ev.ctx.query_step as f64 / 1000.0; n])),
        "range" => Ok(EVal::Scalar(vec![(ev.ctx.query_end - ev.ctx.query_start) as f64 / 1000.0; n])),
        "start" => Ok(EVal::Scalar(vec![ev.ctx.query_start as f64 / 1000.0; n])),
        "end" => Ok(EVal::Scalar(vec![ev.ctx.query_end as f64 / 1000.0; n])),
        "min_of" | "max_of" => {
            let x = ev.eval_scalar(a[0])?;
            let y = ev.eval_scalar(a[1])?;
            let f = if name == "min_of" { go_min } else { go_max };
            Ok(EVal::Scalar(x.into_iter().zip(y).map(|(x, y)| f(x, y)).collect()))
        }
        "vector" => {
            let s = ev.eval_scalar(a[0])?;
            let points = s.into_iter().enumerate().map(|(i, v)| Sample::new(ev.steps.ts(i), v)).collect();
            Ok(EVal::Vector(vec![ESeries::new(Labels::empty(), points, false)]))
        }
        "scalar" => {
            let v = ev.eval_vector(a[0])?;
            let mut out = vec![f64::NAN; n];
            let mut count = vec![0u32; n];
            for s in &v {
                for p in &s.points {
                    let i = ev.steps.index(p.t);
                    count[i] += 1;
                    out[i] = p.v;
                }
            }
            for (o, c) in out.iter_mut().zip(count) {
                if c != 1 {
                    *o = f64::NAN;
                }
            }
            Ok(EVal::Scalar(out))
        }
        "timestamp" => eval_timestamp(ev, a[0]),
        "absent" => eval_absent(ev, a[0]),
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "acos" | "acosh" | "asin"
        | "asinh" | "atan" | "atanh" | "cos" | "cosh" | "sin" | "sinh" | "tan" | "tanh" | "deg" | "rad" => {
            let f = math_fn(name);
            map_vector(ev, a[0], f)
        }
        "round" => {
            let to = if a.len() > 1 { Some(ev.eval_scalar(a[1])?) } else { None };
            map_vector_step(ev, a[0], |i, v| {
                let nearest = to.as_ref().map_or(1.0, |t| t[i]);
                let inv = 1.0 / nearest;
                ((v * inv + 0.5).floor() / inv, true)
            })
        }
        "clamp" => {
            let lo = ev.eval_scalar(a[1])?;
            let hi = ev.eval_scalar(a[2])?;
            map_vector_step(ev, a[0], |i, v| {
                if hi[i] < lo[i] {
                    return (v, false);
                }
                (go_max(lo[i], go_min(hi[i], v)), true)
            })
        }
        "clamp_min" => {
            let lo = ev.eval_scalar(a[1])?;
            map_vector_step(ev, a[0], |i, v| (go_max(lo[i], v), true))
        }
        "clamp_max" => {
            let hi = ev.eval_scalar(a[1])?;
            map_vector_step(ev, a[0], |i, v| (go_min(hi[i], v), true))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year" => {
            eval_date(ev, name, a.first().copied())
        }
        "sort" | "sort_desc" => {
            if ev.steps.len() > 1 || ev.ctx.query_start != ev.ctx.query_end {
                ev.ctx.warn(format!(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels{}",
                    ev.ctx.pos(&Expr::Call(call.clone()))
                ));
            }
            let mut v = ev.eval_vector(a[0])?;
            let desc = name == "sort_desc";
            v.sort_by(|x, y| {
                let (a, b) = (first_value(x), first_value(y));
                match (a.is_nan(), b.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if desc => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
                    _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                }
            });
            Ok(EVal::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            if ev.steps.len() > 1 || ev.ctx.query_start != ev.ctx.query_end {
                ev.ctx.warn(format!(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels{}",
                    ev.ctx.pos(&Expr::Call(call.clone()))
                ));
            }
            let mut v = ev.eval_vector(a[0])?;
            let mut names = Vec::new();
            for e in &a[1..] {
                names.push(string_arg(e)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|x, y| {
                let mut o = Ordering::Equal;
                for n in &names {
                    let (a, b) = (x.labels.get(n).unwrap_or(""), y.labels.get(n).unwrap_or(""));
                    if a != b {
                        o = natural_cmp(a, b);
                        break;
                    }
                }
                if o == Ordering::Equal {
                    o = x.labels.cmp(&y.labels);
                }
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            Ok(EVal::Vector(v))
        }
        "label_replace" => eval_label_replace(ev, &a),
        "label_join" => eval_label_join(ev, &a),
        "histogram_quantile" => crate::histogram::histogram_quantile(ev, call, &a),
        "histogram_quantiles" => crate::histogram::histogram_quantiles(ev, call, &a),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_fraction" | "histogram_stddev"
        | "histogram_stdvar" => {
            // These read native histograms only; float samples are ignored.
            let idx = if name == "histogram_fraction" { 2 } else { 0 };
            for e in &a[..idx] {
                ev.eval_scalar(e)?;
            }
            ev.eval_vector(a[idx])?;
            Ok(EVal::Vector(Vec::new()))
        }
        _ if is_range_fn(name) => eval_range_fn(ev, call, &a),
        _ => Err(Error::bad(format!("function {name:?} is not supported"))),
    }
}

fn first_value(s: &ESeries) -> f64 {
    s.points.first().map_or(f64::NAN, |p| p.v)
}

fn string_arg(e: &Expr) -> Result<String> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        other => Err(Error::bad(format!("expected string literal, got {other}"))),
    }
}

fn math_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        _ => |v: f64| v,
    }
}

fn map_vector(ev: &Evaluator<'_>, e: &Expr, f: fn(f64) -> f64) -> Result<EVal> {
    map_vector_step(ev, e, |_, v| (f(v), true))
}

/// Applies `f(step index, value) -> (new value, keep)` to every point; drops the name.
fn map_vector_step(ev: &Evaluator<'_>, e: &Expr, f: impl Fn(usize, f64) -> (f64, bool)) -> Result<EVal> {
    let mut v = ev.eval_vector(e)?;
    for s in &mut v {
        s.drop_name = true;
        s.points.retain_mut(|p| {
            let (nv, keep) = f(ev.steps.index(p.t), p.v);
            p.v = nv;
            keep
        });
    }
    v.retain(|s| !s.points.is_empty());
    Ok(EVal::Vector(v))
}

fn eval_timestamp(ev: &Evaluator<'_>, e: &Expr) -> Result<EVal> {
    // On a plain selector, `timestamp` returns the sample's own time, not the step's.
    if let Expr::VectorSelector(vs) = unwrap_parens(e) {
        let mut v = ev.eval_vector_selector_with(vs, true)?;
        for s in &mut v {
            s.drop_name = true;
        }
        return Ok(EVal::Vector(v));
    }
    let mut v = ev.eval_vector(e)?;
    for s in &mut v {
        s.drop_name = true;
        for p in &mut s.points {
            p.v = p.t as f64 / 1000.0;
        }
    }
    Ok(EVal::Vector(v))
}

/// Labels `absent` and `absent_over_time` give their output: the selector's equality
/// matchers, except names that appear in more than one matcher.
fn absent_labels(e: &Expr) -> Labels {
    let ms = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(m) => &m.vs.matchers,
        _ => return Labels::empty(),
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    for m in &ms.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            pairs.retain(|(n, _)| *n != m.name);
            pairs.push((&m.name, &m.value));
            seen.push(&m.name);
        } else {
            pairs.retain(|(n, _)| *n != m.name);
            removed.push(&m.name);
        }
    }
    Labels::from_pairs(pairs).unwrap_or_default()
}

fn eval_absent(ev: &Evaluator<'_>, e: &Expr) -> Result<EVal> {
    let v = ev.eval_vector(e)?;
    let mut present = vec![false; ev.steps.len()];
    for s in &v {
        for p in &s.points {
            present[ev.steps.index(p.t)] = true;
        }
    }
    let points: Vec<Sample> =
        present.iter().enumerate().filter(|(_, p)| !**p).map(|(i, _)| Sample::new(ev.steps.ts(i), 1.0)).collect();
    if points.is_empty() {
        return Ok(EVal::Vector(Vec::new()));
    }
    Ok(EVal::Vector(vec![ESeries::new(absent_labels(e), points, false)]))
}

fn eval_date(ev: &Evaluator<'_>, name: &str, arg: Option<&Expr>) -> Result<EVal> {
    let f = |secs: f64| -> f64 {
        if secs.is_nan() || secs.is_infinite() {
            return f64::NAN;
        }
        let Some(t) = DateTime::from_timestamp(secs as i64, 0) else { return f64::NAN };
        match name {
            "day_of_month" => t.day() as f64,
            "day_of_week" => t.weekday().num_days_from_sunday() as f64,
            "day_of_year" => t.ordinal() as f64,
            "days_in_month" => {
                let (y, m) = (t.year(), t.month());
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
                let next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
                match (first, next) {
                    (Some(a), Some(b)) => (b - a).num_days() as f64,
                    _ => f64::NAN,
                }
            }
            "hour" => t.hour() as f64,
            "minute" => t.minute() as f64,
            "month" => t.month() as f64,
            _ => t.year() as f64,
        }
    };
    match arg {
        None => {
            let points = (0..ev.steps.len())
                .map(|i| {
                    let ts = ev.steps.ts(i);
                    Sample::new(ts, f(ts.div_euclid(1000) as f64))
                })
                .collect();
            Ok(EVal::Vector(vec![ESeries::new(Labels::empty(), points, false)]))
        }
        Some(e) => map_vector_step(ev, e, |_, v| (f(v), true)),
    }
}

fn eval_label_replace(ev: &Evaluator<'_>, a: &[&Expr]) -> Result<EVal> {
    let mut v = ev.eval_vector(a[0])?;
    let dst = string_arg(a[1])?;
    let repl = string_arg(a[2])?;
    let src = string_arg(a[3])?;
    let re_src = string_arg(a[4])?;
    let re = telltale_model::anchored_regex(&re_src)
        .map_err(|e| Error::exec(format!("invalid regular expression in label_replace(): {re_src}: {e}")))?;
    if dst.is_empty() {
        return Err(Error::exec(format!("invalid destination label name in label_replace(): {dst}")));
    }
    for s in &mut v {
        let value = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&value) {
            let mut out = String::new();
            caps.expand(&repl, &mut out);
            let mut b = s.labels.to_builder();
            b.set(&dst, &out);
            let l = b.build().unwrap_or_default();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
            s.labels = l;
        }
    }
    Ok(EVal::Vector(merge_same_labels(v)?))
}

fn eval_label_join(ev: &Evaluator<'_>, a: &[&Expr]) -> Result<EVal> {
    let mut v = ev.eval_vector(a[0])?;
    let dst = string_arg(a[1])?;
    let sep = string_arg(a[2])?;
    let mut srcs = Vec::new();
    for e in &a[3..] {
        srcs.push(string_arg(e)?);
    }
    if dst.is_empty() {
        return Err(Error::exec(format!("invalid destination label name in label_join(): {dst}")));
    }
    for s in &mut v {
        let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
        let joined = joined.join(&sep);
        let mut b = s.labels.to_builder();
        b.set(&dst, &joined);
        let l = b.build().unwrap_or_default();
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
        s.labels = l;
    }
    Ok(EVal::Vector(merge_same_labels(v)?))
}

/// After relabelling, series that now share labels are one series, unless they have points
/// at the same step (then the result is ambiguous and Prometheus refuses it).
pub(crate) fn merge_same_labels(v: Vec<ESeries>) -> Result<Vec<ESeries>> {
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut out: Vec<ESeries> = Vec::with_capacity(v.len());
    let mut merged = false;
    for s in v {
        match index.get(&s.labels) {
            Some(&i) => {
                merged = true;
                let t = &mut out[i];
                t.points.extend(s.points);
                t.points.sort_by_key(|p| p.t);
                if t.points.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(Error::exec("vector cannot contain metrics with the same labelset"));
                }
                t.drop_name |= s.drop_name;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    let _ = merged;
    Ok(out)
}

/// Natural order of label values: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().position(|&c| c != b'0').map_or(&dx[nx..], |p| &dx[p..]);
                let ty = dy.iter().position(|&c| c != b'0').map_or(&dy[ny..], |p| &dy[p..]);
                let o = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn is_range_fn(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "irate"
            | "increase"
            | "delta"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "changes"
            | "resets"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "last_over_time"
            | "first_over_time"
            | "present_over_time"
            | "absent_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "quantile_over_time"
            | "mad_over_time"
            | "double_exponential_smoothing"
            | "holt_winters"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
    )
}

/// Per-step scalar arguments of a range function.
struct Params {
    a: Vec<f64>,
    b: Vec<f64>,
}

fn eval_range_fn(ev: &Evaluator<'_>, call: &Call, a: &[&Expr]) -> Result<EVal> {
    let name = call.func.name;
    let matrix_idx = if name == "quantile_over_time" { 1 } else { 0 };
    let mut params = Params { a: Vec::new(), b: Vec::new() };
    match name {
        "quantile_over_time" => params.a = ev.eval_scalar(a[0])?,
        "predict_linear" => params.a = ev.eval_scalar(a[1])?,
        "double_exponential_smoothing" | "holt_winters" => {
            params.a = ev.eval_scalar(a[1])?;
            params.b = ev.eval_scalar(a[2])?;
        }
        _ => {}
    }
    let arg = ev.eval_range_arg(a[matrix_idx])?;
    if name == "absent_over_time" {
        return absent_over_time(ev, a[0], &arg);
    }
    if name == "quantile_over_time" {
        for &q in &params.a {
            if !(0.0..=1.0).contains(&q) {
                ev.ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}{}",
                    format_go(q),
                    ev.ctx.pos(a[0])
                ));
                break;
            }
        }
    }
    if matches!(name, "rate" | "increase") {
        for s in &arg.series {
            if let Some(n) = s.labels.metric_name() {
                if !s.points.is_empty() && !["_total", "_sum", "_count", "_bucket"].iter().any(|suf| n.ends_with(suf)) {
                    ev.ctx.info(format!(
                        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}{}",
                        ev.ctx.pos(a[matrix_idx])
                    ));
                }
            }
        }
    }
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let n = ev.steps.len();
    let mut out = Vec::with_capacity(arg.series.len());
    for s in &arg.series {
        ev.ctx.check_deadline()?;
        let pts = &s.points;
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut result = Vec::new();
        for i in 0..n {
            let ts = ev.steps.ts(i);
            let (start, end) = arg.window(ts);
            while lo < pts.len() && pts[lo].t <= start {
                lo += 1;
            }
            if hi < lo {
                hi = lo;
            }
            while hi < pts.len() && pts[hi].t <= end {
                hi += 1;
            }
            let w = &pts[lo..hi];
            if w.is_empty() {
                continue;
            }
            if let Some(v) = range_value(ev, name, w, start, end, &arg, ts, i, &params)? {
                result.push(Sample::new(ts, v));
            }
        }
        if !result.is_empty() {
            ev.ctx.add_samples(result.len())?;
            out.push(ESeries::new(s.labels.clone(), result, !keep_name || s.drop_name));
        }
    }
    Ok(EVal::Vector(out))
}

fn absent_over_time(ev: &Evaluator<'_>, e: &Expr, arg: &RangeArg) -> Result<EVal> {
    let mut points = Vec::new();
    for i in 0..ev.steps.len() {
        let ts = ev.steps.ts(i);
        let (start, end) = arg.window(ts);
        let any = arg.series.iter().any(|s| {
            let k = s.points.partition_point(|p| p.t <= start);
            k < s.points.len() && s.points[k].t <= end
        });
        if !any {
            points.push(Sample::new(ts, 1.0));
        }
    }
    if points.is_empty() {
        return Ok(EVal::Vector(Vec::new()));
    }
    Ok(EVal::Vector(vec![ESeries::new(absent_labels(e), points, false)]))
}

#[allow(clippy::too_many_arguments)]
fn range_value(
    ev: &Evaluator<'_>,
    name: &str,
    w: &[Sample],
    start: i64,
    end: i64,
    arg: &RangeArg,
    ts: i64,
    i: usize,
    params: &Params,
) -> Result<Option<f64>> {
    let last = w[w.len() - 1];
    Ok(match name {
        "rate" => extrapolated_rate(w, start, end, arg.range, true, true),
        "increase" => extrapolated_rate(w, start, end, arg.range, true, false),
        "delta" => extrapolated_rate(w, start, end, arg.range, false, false),
        "irate" | "idelta" => {
            if w.len() < 2 {
                return Ok(None);
            }
            let prev = w[w.len() - 2];
            let rate = name == "irate";
            let mut v = if rate && last.v < prev.v { last.v } else { last.v - prev.v };
            let dt = last.t - prev.t;
            if dt == 0 {
                return Ok(None);
            }
            if rate {
                v /= dt as f64 / 1000.0;
            }
            Some(v)
        }
        "deriv" => {
            if w.len() < 2 {
                return Ok(None);
            }
            Some(linear_regression(w, w[0].t).0)
        }
        "predict_linear" => {
            if w.len() < 2 {
                return Ok(None);
            }
            let (slope, intercept) = linear_regression(w, ts);
            Some(slope * params.a[i] + intercept)
        }
        "changes" => {
            let mut c = 0.0;
            for p in w.windows(2) {
                if p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan()) {
                    c += 1.0;
                }
            }
            Some(c)
        }
        "resets" => Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
        "count_over_time" => Some(w.len() as f64),
        "present_over_time" => Some(1.0),
        "last_over_time" => Some(last.v),
        "first_over_time" => Some(w[0].v),
        "ts_of_last_over_time" => Some(last.t as f64 / 1000.0),
        "ts_of_first_over_time" => Some(w[0].t as f64 / 1000.0),
        "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let max = name == "ts_of_max_over_time";
            let mut best = w[0];
            for p in &w[1..] {
                let better = if max { p.v >= best.v } else { p.v <= best.v };
                if better || best.v.is_nan() {
                    best = *p;
                }
            }
            Some(best.t as f64 / 1000.0)
        }
        "sum_over_time" => {
            let (mut s, mut c) = (0.0, 0.0);
            for p in w {
                (s, c) = kahan_inc(p.v, s, c);
            }
            Some(if s.is_infinite() { s } else { s + c })
        }
        "avg_over_time" => Some(avg_over_time(w)),
        "min_over_time" => {
            let mut m = w[0].v;
            for p in &w[1..] {
                if p.v < m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        "max_over_time" => {
            let mut m = w[0].v;
            for p in &w[1..] {
                if p.v > m || m.is_nan() {
                    m = p.v;
                }
            }
            Some(m)
        }
        "stddev_over_time" => Some(variance(w).sqrt()),
        "stdvar_over_time" => Some(variance(w)),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.v).collect();
            Some(quantile(params.a[i], &mut vals))
        }
        "mad_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.v).collect();
            if vals.iter().any(|v| v.is_nan()) {
                return Ok(Some(f64::NAN));
            }
            let median = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - median).abs()).collect();
            Some(quantile(0.5, &mut dev))
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (params.a[i], params.b[i]);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(Error::exec(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(Error::exec(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
            }
            if w.len() < 2 {
                return Ok(None);
            }
            let (mut s0, mut s1) = (0.0, w[0].v);
            let mut b = w[1].v - w[0].v;
            for (k, p) in w.iter().enumerate().skip(1) {
                let x = sf * p.v;
                if k > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(s1)
        }
        _ => {
            let _ = ev;
            None
        }
    })
}

fn avg_over_time(w: &[Sample]) -> f64 {
    let (mut sum, mut count) = (w[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (k, p) in w.iter().enumerate().skip(1) {
        count = (k + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// Least-squares fit of the points, with x in seconds relative to `intercept_time`.
pub(crate) fn linear_regression(w: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].v;
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// `rate`, `increase` and `delta` with Prometheus's extrapolation to the window's edges.
/// See <https://github.com/prometheus/prometheus/blob/main/promql/functions.go> (`extrapolatedRate`).
fn extrapolated_rate(w: &[Sample], start: i64, end: i64, range: i64, counter: bool, rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.v - first.v;
    if counter {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_step = sampled / (w.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    let mut interval = sampled;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    interval += to_start;
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    interval += to_end;
    let mut factor = interval / sampled;
    if rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a10", "a2"), Ordering::Greater);
        assert_eq!(natural_cmp("abc", "abd"), Ordering::Less);
        assert_eq!(natural_cmp("1", "01"), Ordering::Equal);
    }

    #[test]
    fn kahan_keeps_small_terms() {
        let (mut s, mut c) = (0.0, 0.0);
        for v in [1e100, 1.0, -1e100] {
            (s, c) = kahan_inc(v, s, c);
        }
        assert_eq!(s + c, 1.0);
    }
}
