//! The evaluator: walks the AST over a grid of steps, like Prometheus's `evaluator`.
//!
//! Every instant-vector node evaluates to all of its series over all steps at once
//! ([`EVal::Vector`], one point per step at most), so per-series work such as grouping keys
//! and match signatures is computed once per series, not once per step. An instant query is
//! a range query with a single step.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector};
use telltale_model::{is_stale_nan, Labels, MatchOp, Matcher, Sample, TimeRange, METRIC_NAME};
use telltale_storage::MetricReader;

use crate::engine::{Annotations, EngineOptions};
use crate::error::{Error, Result};

/// Shared state of one query: the store, limits, counters and annotations.
pub(crate) struct Ctx<'a> {
    pub(crate) reader: &'a dyn MetricReader,
    pub(crate) opts: &'a EngineOptions,
    pub(crate) deadline: Option<Instant>,
    pub(crate) samples: Cell<usize>,
    pub(crate) series: Cell<usize>,
    pub(crate) checks: Cell<u32>,
    pub(crate) annotations: RefCell<Annotations>,
    /// The query's own start and end, which `@ start()` and `@ end()` refer to at any depth.
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    /// The query's step (0 for an instant query), for `step()`.
    pub(crate) query_step: i64,
    /// The query text, to point annotations at a position as Prometheus does.
    pub(crate) query: &'a str,
}

impl Ctx<'_> {
    /// Fails once the deadline has passed. Cheap enough to call in inner loops: the clock
    /// is read only every 256 calls.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        let n = self.checks.get().wrapping_add(1);
        self.checks.set(n);
        if n & 255 == 0 {
            self.check_deadline_now()?;
        }
        Ok(())
    }

    pub(crate) fn check_deadline_now(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::Timeout { stage: "query execution" }),
            _ => Ok(()),
        }
    }

    /// Counts samples held by the query against `max_samples`.
    pub(crate) fn add_samples(&self, n: usize) -> Result<()> {
        let total = self.samples.get().saturating_add(n);
        self.samples.set(total);
        if self.opts.max_samples > 0 && total > self.opts.max_samples {
            return Err(Error::TooManySamples { stage: "query execution", limit: self.opts.max_samples });
        }
        Ok(())
    }

    fn add_series(&self, n: usize) -> Result<()> {
        let total = self.series.get().saturating_add(n);
        self.series.set(total);
        if self.opts.max_series > 0 && total > self.opts.max_series {
            return Err(Error::TooManySeries { limit: self.opts.max_series });
        }
        Ok(())
    }

    /// Where `e` starts in the query, as Prometheus's ` (line:column)` suffix of annotations.
    /// The parser keeps no positions, so this looks for the expression's text.
    pub(crate) fn pos(&self, e: &Expr) -> String {
        let text = e.to_string();
        let found = self.query.find(&text).or_else(|| {
            let head: String = text.chars().take_while(|c| !matches!(c, '(' | '{' | '[' | ' ')).collect();
            (!head.is_empty()).then(|| self.query.find(&head)).flatten()
        });
        match found {
            Some(i) => {
                let before = &self.query[..i];
                let line = before.matches('\n').count() + 1;
                let col = i - before.rfind('\n').map_or(0, |p| p + 1) + 1;
                format!(" ({line}:{col})")
            }
            None => String::new(),
        }
    }

    pub(crate) fn warn(&self, msg: String) {
        let mut a = self.annotations.borrow_mut();
        if !a.warnings.contains(&msg) {
            a.warnings.push(msg);
        }
    }

    pub(crate) fn info(&self, msg: String) {
        let mut a = self.annotations.borrow_mut();
        if !a.infos.contains(&msg) {
            a.infos.push(msg);
        }
    }
}

/// The grid of evaluation times: `start, start+step, ..., <= end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

impl Steps {
    pub(crate) fn len(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }
    pub(crate) fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
    pub(crate) fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
}

/// A series inside the evaluator. `drop_name` implements Prometheus 3's delayed name
/// removal: functions mark the name for removal and it is removed when the query ends, so
/// that e.g. `label_replace` can still read it.
#[derive(Debug, Clone)]
pub(crate) struct ESeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<Sample>,
    pub(crate) drop_name: bool,
}

impl ESeries {
    pub(crate) fn new(labels: Labels, points: Vec<Sample>, drop_name: bool) -> Self {
        Self { labels, points, drop_name }
    }
}

/// The value of a node over all steps.
#[derive(Debug, Clone)]
pub(crate) enum EVal {
    /// Instant vector: each series has at most one point per step, at the step's time.
    Vector(Vec<ESeries>),
    /// One number per step.
    Scalar(Vec<f64>),
    /// A string literal.
    String(String),
    /// A range vector (only at the top of an instant query): raw points.
    Matrix(Vec<ESeries>),
}

/// A range-vector argument of a function: raw series plus how to place the window at a step.
pub(crate) struct RangeArg {
    /// Raw points per series (no stale markers), not aligned to steps.
    pub(crate) series: Vec<ESeries>,
    pub(crate) range: i64,
    pub(crate) at: Option<i64>,
    pub(crate) offset: i64,
}

impl RangeArg {
    /// The (exclusive start, inclusive end) window at evaluation time `ts`.
    pub(crate) fn window(&self, ts: i64) -> (i64, i64) {
        let end = self.at.unwrap_or(ts).saturating_sub(self.offset);
        (end.saturating_sub(self.range), end)
    }
}

pub(crate) struct Evaluator<'a> {
    pub(crate) ctx: &'a Ctx<'a>,
    pub(crate) steps: Steps,
}

pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    d.as_millis() as i64
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Removes parentheses around an expression.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

pub(crate) fn to_matchers(ms: &[promql_parser::label::Matcher]) -> Result<Vec<Matcher>> {
    ms.iter()
        .map(|m| {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| Error::bad(format!("invalid regular expression {:?}: {e}", m.value)))
        })
        .collect()
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(ctx: &'a Ctx<'a>, steps: Steps) -> Self {
        Self { ctx, steps }
    }

    pub(crate) fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|a| match a {
            AtModifier::Start => self.ctx.query_start,
            AtModifier::End => self.ctx.query_end,
            AtModifier::At(t) => system_time_ms(t),
        })
    }

    /// Evaluates any expression.
    pub(crate) fn eval(&self, e: &Expr) -> Result<EVal> {
        self.ctx.check_deadline_now()?;
        match e {
            Expr::NumberLiteral(n) => Ok(EVal::Scalar(vec![n.val; self.steps.len()])),
            Expr::StringLiteral(s) => Ok(EVal::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                EVal::Scalar(v) => Ok(EVal::Scalar(v.into_iter().map(|x| -x).collect())),
                EVal::Vector(mut v) => {
                    for s in &mut v {
                        s.drop_name = true;
                        for p in &mut s.points {
                            p.v = -p.v;
                        }
                    }
                    Ok(EVal::Vector(v))
                }
                _ => Err(Error::bad("unary expression only allowed on expressions of type scalar or instant vector")),
            },
            Expr::VectorSelector(vs) => Ok(EVal::Vector(self.eval_vector_selector(vs)?)),
            Expr::MatrixSelector(ms) => self.eval_matrix_top(ms),
            Expr::Subquery(sq) => {
                let arg = self.eval_subquery(sq)?;
                Ok(EVal::Matrix(self.range_arg_at_start(arg)))
            }
            Expr::Binary(b) => crate::binary::eval_binary(self, b),
            Expr::Aggregate(a) => crate::aggregate::eval_aggregate(self, a),
            Expr::Call(c) => crate::functions::eval_call(self, c),
            Expr::Extension(_) => Err(Error::bad("extension expressions are not supported")),
        }
    }

    /// Evaluates an expression that must be a scalar, one value per step.
    pub(crate) fn eval_scalar(&self, e: &Expr) -> Result<Vec<f64>> {
        match self.eval(e)? {
            EVal::Scalar(v) => Ok(v),
            _ => Err(Error::bad(format!("expected type scalar in expression {e}"))),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub(crate) fn eval_vector(&self, e: &Expr) -> Result<Vec<ESeries>> {
        match self.eval(e)? {
            EVal::Vector(v) => Ok(v),
            _ => Err(Error::bad(format!("expected type instant vector in expression {e}"))),
        }
    }

    fn select(&self, vs: &VectorSelector, range: TimeRange) -> Result<Vec<(Labels, Vec<Sample>)>> {
        let sets: Vec<&[promql_parser::label::Matcher]> = if vs.matchers.or_matchers.is_empty() {
            vec![&vs.matchers.matchers[..]]
        } else {
            vs.matchers.or_matchers.iter().map(|m| &m[..]).collect()
        };
        let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
        for set in sets {
            let mut matchers = to_matchers(set)?;
            if let Some(name) = &vs.name {
                if !matchers.iter().any(|m| m.name == METRIC_NAME) {
                    matchers.push(Matcher::equal(METRIC_NAME, name.clone()));
                }
            }
            let found = self.ctx.reader.select(range, &matchers)?;
            self.ctx.add_series(found.len())?;
            for s in found {
                out.push((s.labels, s.samples));
            }
        }
        if !vs.matchers.or_matchers.is_empty() {
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out.dedup_by(|a, b| a.0 == b.0);
        }
        Ok(out)
    }

    /// A vector selector over all steps, with lookback and staleness.
    pub(crate) fn eval_vector_selector(&self, vs: &VectorSelector) -> Result<Vec<ESeries>> {
        self.eval_vector_selector_with(vs, false)
    }

    /// A vector selector; with `timestamps`, each point's value is its sample's time in seconds.
    pub(crate) fn eval_vector_selector_with(&self, vs: &VectorSelector, timestamps: bool) -> Result<Vec<ESeries>> {
        let at = self.at_ms(&vs.at);
        let offset = offset_ms(&vs.offset);
        let lookback = duration_ms(&self.ctx.opts.lookback_delta);
        let eff = |ts: i64| at.unwrap_or(ts).saturating_sub(offset);
        let (lo, hi) = (eff(self.steps.start), eff(self.steps.end));
        let range = TimeRange::new(lo.saturating_sub(lookback) + 1, hi);
        let selected = self.select(vs, range)?;
        let n = self.steps.len();
        let mut out = Vec::with_capacity(selected.len());
        for (labels, samples) in selected {
            self.ctx.check_deadline()?;
            let mut points = Vec::new();
            let mut j = 0;
            for i in 0..n {
                let ts = self.steps.ts(i);
                let e = eff(ts);
                while j < samples.len() && samples[j].t <= e {
                    j += 1;
                }
                if j > 0 {
                    let s = samples[j - 1];
                    if s.t > e - lookback && !is_stale_nan(s.v) {
                        points.push(Sample::new(ts, if timestamps { s.t as f64 / 1000.0 } else { s.v }));
                    }
                }
            }
            if !points.is_empty() {
                self.ctx.add_samples(points.len())?;
                out.push(ESeries::new(labels, points, false));
            }
        }
        Ok(out)
    }

    /// The raw series of a matrix selector, for a function to window per step.
    pub(crate) fn eval_matrix_selector(&self, ms: &MatrixSelector) -> Result<RangeArg> {
        let vs = &ms.vs;
        let at = self.at_ms(&vs.at);
        let offset = offset_ms(&vs.offset);
        let range = duration_ms(&ms.range);
        let eff = |ts: i64| at.unwrap_or(ts).saturating_sub(offset);
        let tr = TimeRange::new(eff(self.steps.start).saturating_sub(range).saturating_add(1), eff(self.steps.end));
        let mut total = 0;
        let series: Vec<ESeries> = self
            .select(vs, tr)?
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.retain(|s| !is_stale_nan(s.v));
                total += samples.len();
                ESeries::new(labels, samples, false)
            })
            .collect();
        self.ctx.add_samples(total)?;
        Ok(RangeArg { series, range, at, offset })
    }

    /// A subquery: evaluates the inner expression on its own step grid, aligned to
    /// multiples of the subquery step as Prometheus does.
    pub(crate) fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<RangeArg> {
        let at = self.at_ms(&sq.at);
        let offset = offset_ms(&sq.offset);
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(s) if !s.is_zero() => duration_ms(s),
            _ => duration_ms(&self.ctx.opts.default_subquery_step).max(1),
        };
        let (outer_start, outer_end) = match at {
            Some(t) => (t, t),
            None => (self.steps.start, self.steps.end),
        };
        let end = outer_end.saturating_sub(offset);
        let lower = outer_start.saturating_sub(offset).saturating_sub(range);
        // Go's integer division truncates toward zero; so does Rust's.
        let mut start = step * (lower / step);
        if start <= lower {
            start += step;
        }
        if start > end {
            return Ok(RangeArg { series: Vec::new(), range, at, offset });
        }
        let inner_steps = Steps { start, end, step };
        // The grid alone must fit the sample limit, or a tiny step would allocate unboundedly.
        let max = self.ctx.opts.max_samples;
        if max > 0 && (end - start) / step >= max as i64 {
            return Err(Error::TooManySamples { stage: "subquery evaluation", limit: max });
        }
        let inner = Evaluator::new(self.ctx, inner_steps);
        let series = match inner.eval(&sq.expr)? {
            EVal::Vector(v) => v,
            EVal::Scalar(v) => vec![ESeries::new(
                Labels::empty(),
                v.into_iter().enumerate().map(|(i, x)| Sample::new(inner.steps.ts(i), x)).collect(),
                false,
            )],
            _ => return Err(Error::bad("subquery is only allowed on instant vector")),
        };
        Ok(RangeArg { series, range, at, offset })
    }

    /// A range-vector argument (matrix selector or subquery, possibly in parentheses).
    pub(crate) fn eval_range_arg(&self, e: &Expr) -> Result<RangeArg> {
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => self.eval_matrix_selector(ms),
            Expr::Subquery(sq) => self.eval_subquery(sq),
            other => Err(Error::bad(format!("expected type range vector in call, got {other}"))),
        }
    }

    fn eval_matrix_top(&self, ms: &MatrixSelector) -> Result<EVal> {
        let arg = self.eval_matrix_selector(ms)?;
        Ok(EVal::Matrix(self.range_arg_at_start(arg)))
    }

    /// The points of a range argument inside its window at the first step (instant queries).
    fn range_arg_at_start(&self, arg: RangeArg) -> Vec<ESeries> {
        let (lo, hi) = arg.window(self.steps.start);
        arg.series
            .into_iter()
            .filter_map(|mut s| {
                s.points.retain(|p| p.t > lo && p.t <= hi);
                (!s.points.is_empty()).then_some(s)
            })
            .collect()
    }
}

/// Groups the points of several series by step: `out[step] = [(series index, value)]`.
pub(crate) fn by_step(series: &[ESeries], steps: &Steps) -> Vec<Vec<(usize, f64)>> {
    let mut out = vec![Vec::new(); steps.len()];
    for (i, s) in series.iter().enumerate() {
        for p in &s.points {
            out[steps.index(p.t)].push((i, p.v));
        }
    }
    out
}

/// Collects per-step outputs keyed by label set into series, in order of first appearance.
pub(crate) struct SeriesBuilder {
    index: HashMap<Labels, usize>,
    pub(crate) series: Vec<ESeries>,
}

impl SeriesBuilder {
    pub(crate) fn new() -> Self {
        Self { index: HashMap::new(), series: Vec::new() }
    }

    pub(crate) fn slot(&mut self, labels: &Labels, drop_name: bool) -> usize {
        if let Some(&i) = self.index.get(labels) {
            return i;
        }
        let i = self.series.len();
        self.index.insert(labels.clone(), i);
        self.series.push(ESeries::new(labels.clone(), Vec::new(), drop_name));
        i
    }

    pub(crate) fn push(&mut self, labels: &Labels, drop_name: bool, t: i64, v: f64) {
        let i = self.slot(labels, drop_name);
        self.series[i].points.push(Sample::new(t, v));
    }

    /// Appends a point to a series obtained from [`SeriesBuilder::slot`].
    pub(crate) fn push_slot(&mut self, slot: usize, t: i64, v: f64) {
        self.series[slot].points.push(Sample::new(t, v));
    }

    /// The series that received points, in order of first appearance.
    pub(crate) fn finish(self) -> Vec<ESeries> {
        self.series.into_iter().filter(|s| !s.points.is_empty()).collect()
    }
}
