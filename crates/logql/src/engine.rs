//! Evaluation: log queries into streams, metric queries into per-step series.
//!
//! Every metric node is evaluated for all steps at once (like Loki's and Prometheus's range
//! evaluation); an instant query is a range query with one step. Range windows are
//! `(t - range, t]`, shifted back by `offset`, as in Loki.

use std::collections::HashMap;
use std::time::Instant;

use telltale_model::{Labels, LineFilter, MatchOp, TimeRange};
use telltale_storage::{Direction, LogReader, LogRow, LogSelect, Visit};

use crate::ast::*;
use crate::error::{Error, Result};
use crate::pipeline::{label_filter, run, LabelFilter, Stage, Work};

/// Limits of one query (Loki's `limits_config` names where they exist).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Most log lines one log query may return (`max_entries_limit_per_query`, 5000).
    pub max_entries_limit: usize,
    /// Most series a metric query may return (`max_query_series`, 500).
    pub max_series: usize,
    /// Most steps a range query may have (Loki and Prometheus: 11,000).
    pub max_points: usize,
    /// Longest a query may run (0: no limit); checked between streams.
    pub timeout: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_entries_limit: 5000,
            max_series: 500,
            max_points: 11_000,
            timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// One returned line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Nanoseconds since the epoch.
    pub ts: i64,
    /// The line after the pipeline.
    pub line: String,
    /// Structured metadata (filled only when labels are categorized).
    pub metadata: Labels,
    /// Labels extracted by the pipeline (filled only when labels are categorized).
    pub parsed: Labels,
}

/// A stream of a log query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    /// The stream's labels: all labels after the pipeline, or only the stream's own when
    /// labels are categorized.
    pub labels: Labels,
    /// Its lines, in the query's direction.
    pub entries: Vec<LogLine>,
}

/// A series of a metric query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    /// Its labels.
    pub labels: Labels,
    /// `(nanoseconds, value)` points, in time order.
    pub points: Vec<(i64, f64)>,
}

/// What a query returns, as Loki's `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// `streams`: a log query.
    Streams(Vec<LogStream>),
    /// `matrix`: a metric range query.
    Matrix(Vec<StepSeries>),
    /// `vector`: a metric instant query (each series has one point).
    Vector(Vec<StepSeries>),
    /// `scalar`: an instant query of a number expression.
    Scalar(i64, f64),
}

/// The parameters of one query.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The LogQL text.
    pub text: &'a str,
    /// First step / start of the log range (inclusive), ns.
    pub start: i64,
    /// Last step (inclusive) / end of the log range (exclusive), ns.
    pub end: i64,
    /// Step between evaluations, ns (metric range queries).
    pub step: i64,
    /// Most lines returned (log queries).
    pub limit: usize,
    /// Line order (log queries).
    pub direction: Direction,
    /// Keep structured metadata and parsed labels apart from the stream labels
    /// (`X-Loki-Response-Encoding-Flags: categorize-labels`).
    pub categorize: bool,
    /// An instant query (`/query`) rather than a range query.
    pub instant: bool,
}

/// Runs LogQL queries against a [`LogReader`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

type Vals = Vec<Option<f64>>;

#[derive(Debug, Clone)]
struct Ser {
    labels: Labels,
    vals: Vals,
}

enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Ser>),
}

struct Ctx<'a> {
    reader: &'a dyn LogReader,
    start: i64,
    step: i64,
    n: usize,
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    fn t(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => {
                Err(Error::Limit { limit: "query.timeout", detail: "query timed out".into() })
            }
            _ => Ok(()),
        }
    }
}

impl Engine {
    /// An engine with these limits.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// Runs a query.
    pub fn query(&self, reader: &dyn LogReader, q: &Query<'_>) -> Result<QueryResult> {
        let expr = crate::parse(q.text)?;
        let deadline = (!self.opts.timeout.is_zero()).then(|| Instant::now() + self.opts.timeout);
        if let Expr::Log(log) = &expr {
            if q.instant {
                return Err(Error::Execution(
                    "log queries are not supported as an instant query type, please change your query to a range query type".into(),
                ));
            }
            if q.limit > self.opts.max_entries_limit {
                return Err(Error::Limit {
                    limit: "max_entries_limit_per_query",
                    detail: format!("limit > max_entries_limit ({} > {})", q.limit, self.opts.max_entries_limit),
                });
            }
            return self.log_query(reader, log, q, deadline).map(QueryResult::Streams);
        }
        let (start, end, step) = if q.instant { (q.end, q.end, 1) } else { (q.start, q.end, q.step) };
        if step <= 0 {
            return Err(Error::Execution(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(Error::Execution("the query time range is invalid, end must be after start".into()));
        }
        let n = ((end - start) / step) as usize + 1;
        if n > self.opts.max_points {
            return Err(Error::Execution(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.opts.max_points
            )));
        }
        let ctx = Ctx { reader, start, step, n, deadline };
        let val = self.eval(&ctx, &expr)?;
        match val {
            Val::Scalar(v) => {
                if q.instant {
                    Ok(QueryResult::Scalar(start, v[0]))
                } else {
                    let points = v.iter().enumerate().map(|(k, x)| (ctx.t(k), *x)).collect();
                    Ok(QueryResult::Matrix(vec![StepSeries { labels: Labels::empty(), points }]))
                }
            }
            Val::Vector(mut series) => {
                series.retain(|s| s.vals.iter().any(Option::is_some));
                if self.opts.max_series > 0 && series.len() > self.opts.max_series {
                    return Err(Error::Limit {
                        limit: "max_query_series",
                        detail: format!("maximum of series ({}) reached for a single query", self.opts.max_series),
                    });
                }
                let sorted = matches!(&expr, Expr::Vector(v) if matches!(v.op, VectorOp::Sort | VectorOp::SortDesc));
                if !sorted || !q.instant {
                    series.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                let out: Vec<StepSeries> = series
                    .into_iter()
                    .map(|s| StepSeries {
                        labels: s.labels,
                        points: s.vals.iter().enumerate().filter_map(|(k, v)| v.map(|v| (ctx.t(k), v))).collect(),
                    })
                    .collect();
                Ok(if q.instant { QueryResult::Vector(out) } else { QueryResult::Matrix(out) })
            }
        }
    }

    /// Evaluates a metric query at one instant into `(labels, value)` pairs: the
    /// instant-vector shape alert rules use. A scalar result becomes one sample without
    /// labels; a log query is an error.
    pub fn instant_vector(&self, reader: &dyn LogReader, query: &str, at_ns: i64) -> Result<Vec<(Labels, f64)>> {
        let q = Query {
            text: query,
            start: at_ns,
            end: at_ns,
            step: 1,
            limit: 0,
            direction: Direction::Backward,
            categorize: false,
            instant: true,
        };
        Ok(match self.query(reader, &q)? {
            QueryResult::Vector(v) => v.into_iter().filter_map(|s| s.points.first().map(|p| (s.labels, p.1))).collect(),
            QueryResult::Scalar(_, v) => vec![(Labels::empty(), v)],
            QueryResult::Streams(_) | QueryResult::Matrix(_) => Vec::new(),
        })
    }

    fn log_query(
        &self,
        reader: &dyn LogReader,
        log: &LogExpr,
        q: &Query<'_>,
        deadline: Option<Instant>,
    ) -> Result<Vec<LogStream>> {
        let (filters, stages) = pushdown(&log.stages);
        // Loki reads [start, end).
        let range = TimeRange::new(q.start, q.end.saturating_sub(1));
        let limit = q.limit;
        let mut rows: Vec<(Labels, LogLine)> = Vec::new();
        let mut taken_in_stream = 0usize;
        let mut last_stream: Option<Labels> = None;
        let mut w = Work::default();
        let select =
            LogSelect { range, matchers: &log.matchers, filters: &filters, direction: q.direction, skip_lines: false };
        let mut timed_out = false;
        let mut seen = 0u64;
        reader.select_logs(&select, &mut |stream: &Labels, row: &LogRow<'_>| {
            if last_stream.as_ref() != Some(stream) {
                last_stream = Some(stream.clone());
                taken_in_stream = 0;
            }
            seen += 1;
            if seen.is_multiple_of(4096) && deadline.is_some_and(|d| Instant::now() > d) {
                timed_out = true;
                return Visit::Stop;
            }
            if limit == 0 {
                return Visit::Stop;
            }
            w.reset(stream, row.metadata, row.ts, row.line);
            if !run(&stages, &mut w) {
                return Visit::Continue;
            }
            let (labels, metadata, parsed) = if q.categorize {
                w.categorized(stream, row.metadata)
            } else {
                (w.to_labels(), Labels::empty(), Labels::empty())
            };
            rows.push((labels, LogLine { ts: row.ts, line: std::mem::take(&mut w.line), metadata, parsed }));
            taken_in_stream += 1;
            if taken_in_stream >= limit {
                Visit::NextStream
            } else {
                Visit::Continue
            }
        })?;
        if timed_out {
            return Err(Error::Limit { limit: "query.timeout", detail: "query timed out".into() });
        }
        // The `limit` first lines in the query's direction, over all streams.
        match q.direction {
            Direction::Forward => rows.sort_by_key(|r| r.1.ts),
            Direction::Backward => rows.sort_by_key(|r| std::cmp::Reverse(r.1.ts)),
        }
        rows.truncate(limit);
        let mut streams: Vec<LogStream> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for (labels, line) in rows {
            let i = *index.entry(labels.clone()).or_insert_with(|| {
                streams.push(LogStream { labels, entries: Vec::new() });
                streams.len() - 1
            });
            streams[i].entries.push(line);
        }
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    fn eval(&self, ctx: &Ctx<'_>, e: &Expr) -> Result<Val> {
        match e {
            Expr::Number(n) => Ok(Val::Scalar(vec![*n; ctx.n])),
            Expr::VectorOf(n) => Ok(Val::Vector(vec![Ser { labels: Labels::empty(), vals: vec![Some(*n); ctx.n] }])),
            Expr::Log(_) => Err(Error::Execution("a log query cannot be evaluated as a metric query".into())),
            Expr::Range(r) => self.range(ctx, r).map(Val::Vector),
            Expr::Vector(v) => {
                let inner = match self.eval(ctx, &v.expr)? {
                    Val::Vector(s) => s,
                    Val::Scalar(_) => {
                        return Err(Error::Execution("vector aggregations need a vector, not a scalar".into()))
                    }
                };
                Ok(Val::Vector(aggregate(ctx, v, inner)?))
            }
            Expr::Binary(b) => self.binary(ctx, b),
            Expr::LabelReplace(l) => {
                let Val::Vector(series) = self.eval(ctx, &l.expr)? else {
                    return Err(Error::Execution("label_replace needs a vector".into()));
                };
                let mut out: Vec<Ser> = Vec::with_capacity(series.len());
                for s in series {
                    let src = s.labels.get(&l.src).unwrap_or("").to_string();
                    let labels = match l.regex.captures(&src) {
                        Some(c) => {
                            let mut v = String::new();
                            c.expand(&l.replacement, &mut v);
                            let mut b = s.labels.to_builder();
                            b.set(&l.dst, &v);
                            b.build().unwrap_or_default()
                        }
                        None => s.labels.clone(),
                    };
                    out.push(Ser { labels, vals: s.vals });
                }
                Ok(Val::Vector(merge_same_labels(out)?))
            }
        }
    }

    fn range(&self, ctx: &Ctx<'_>, r: &RangeAgg) -> Result<Vec<Ser>> {
        let (filters, stages) = pushdown(&r.log.stages);
        let first = ctx.t(0) - r.offset - r.range + 1;
        let last = ctx.t(ctx.n - 1) - r.offset;
        let select = LogSelect {
            range: TimeRange::new(first, last),
            matchers: &r.log.matchers,
            filters: &filters,
            direction: Direction::Forward,
            // Counting needs no line text (bytes_* and pipelines do).
            skip_lines: stages.is_empty()
                && r.unwrap.is_none()
                && matches!(r.op, RangeOp::Count | RangeOp::Rate | RangeOp::Absent),
        };
        let touches = stages.iter().any(Stage::touches_labels) || r.unwrap.is_some() || r.grouping.is_some();
        let additive = matches!(
            r.op,
            RangeOp::Count | RangeOp::Rate | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Absent | RangeOp::Sum
        );
        let windows_per_row = (r.range / ctx.step).max(1) as usize + 1;
        let bucketed = additive && windows_per_row <= 512;
        let mut acc = Acc::new(ctx.n, bucketed);
        let mut w = Work::default();
        let mut cached: Option<(Labels, usize)> = None;
        // With no pipeline, a row's series follows from its stream and metadata alone.
        let by_meta_only = stages.is_empty() && r.unwrap.is_none();
        let mut by_meta = SeriesByMeta::default();
        let mut timed_out = false;
        let mut rows = 0u64;
        ctx.reader.select_logs(&select, &mut |stream: &Labels, row: &LogRow<'_>| {
            rows += 1;
            if rows.is_multiple_of(65536) && ctx.check_deadline().is_err() {
                timed_out = true;
                return Visit::Stop;
            }
            let plain = !touches && row.metadata.is_empty();
            let value;
            let id;
            if plain && stages.is_empty() {
                value = match r.op {
                    RangeOp::Bytes | RangeOp::BytesRate => row.line.len() as f64,
                    _ => 1.0,
                };
                id = match &cached {
                    Some((l, i)) if l == stream => *i,
                    _ => {
                        let i = acc.series(stream.clone());
                        cached = Some((stream.clone(), i));
                        i
                    }
                };
            } else if let Some(i) = by_meta.get(by_meta_only, stream, row) {
                value = match r.op {
                    RangeOp::Bytes | RangeOp::BytesRate => row.line.len() as f64,
                    _ => 1.0,
                };
                id = i;
            } else {
                w.reset(stream, row.metadata, row.ts, row.line);
                if !run(&stages, &mut w) {
                    return Visit::Continue;
                }
                value = match &r.unwrap {
                    None => match r.op {
                        RangeOp::Bytes | RangeOp::BytesRate => w.line.len() as f64,
                        _ => 1.0,
                    },
                    Some(u) => {
                        let raw = w.get(&u.label).unwrap_or("").trim().to_string();
                        let v = match u.conversion {
                            Conversion::Float => raw.parse::<f64>().ok(),
                            Conversion::Duration => crate::value::parse_go_duration(&raw),
                            Conversion::Bytes => crate::value::parse_bytes(&raw),
                        };
                        let v = match v {
                            Some(v) => v,
                            None => {
                                if w.get("__error__").is_none() {
                                    w.set("__error__", "SampleExtractionErr");
                                    w.set(
                                        "__error_details__",
                                        &format!("strconv.ParseFloat: parsing {raw:?}: invalid syntax"),
                                    );
                                }
                                0.0
                            }
                        };
                        if !u.post_filters.iter().all(|f: &LabelFilter| label_filter(f, &mut w)) {
                            return Visit::Continue;
                        }
                        let label = u.label.clone();
                        w.labels.retain(|(k, _)| *k != label);
                        v
                    }
                };
                let mut labels = if plain { stream.clone() } else { w.to_labels() };
                if let Some(g) = &r.grouping {
                    // Grouping keeps a pipeline error visible, as Loki's grouped extractor does.
                    let err = labels.get("__error__").map(str::to_string);
                    labels = group_labels(&labels, g);
                    if let Some(e) = err {
                        let mut b = labels.to_builder();
                        b.set("__error__", &e);
                        labels = b.build().unwrap_or_default();
                    }
                }
                id = match &cached {
                    Some((l, i)) if *l == labels => *i,
                    _ => {
                        let i = acc.series(labels.clone());
                        cached = Some((labels, i));
                        i
                    }
                };
                if by_meta_only {
                    by_meta.insert(row, id);
                }
            }
            acc.add(ctx, r, id, row.ts, value);
            Visit::Continue
        })?;
        if timed_out {
            return Err(Error::Limit { limit: "query.timeout", detail: "query timed out".into() });
        }
        if let Some(bad) = acc.labels.iter().find(|l| l.get("__error__").is_some()) {
            return Err(Error::Execution(format!(
                "pipeline error: '{}' for series: '{}'. Use a label filter to intentionally skip this error. (e.g | __error__!=\"{}\"). To skip all potential errors you can match empty errors.(e.g __error__=\"\") The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )",
                bad.get("__error__").unwrap_or(""),
                bad,
                bad.get("__error__").unwrap_or("")
            )));
        }
        Ok(acc.finish(ctx, r))
    }

    fn binary(&self, ctx: &Ctx<'_>, b: &BinaryExpr) -> Result<Val> {
        let lhs = self.eval(ctx, &b.lhs)?;
        let rhs = self.eval(ctx, &b.rhs)?;
        let op = b.op;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                if op.is_set() {
                    return Err(Error::Execution("set operator not allowed between scalars".into()));
                }
                if op.is_comparison() && !b.return_bool {
                    return Err(Error::Execution("comparisons between scalars must use bool modifier".into()));
                }
                Ok(Val::Scalar(l.iter().zip(&r).map(|(x, y)| arith(op, *x, *y, true).unwrap_or(f64::NAN)).collect()))
            }
            (Val::Vector(v), Val::Scalar(s)) | (Val::Scalar(s), Val::Vector(v)) if op.is_set() => {
                let _ = (v, s);
                Err(Error::Execution("set operators need vectors on both sides".into()))
            }
            (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(v, &s, op, b.return_bool, false))),
            (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(v, &s, op, b.return_bool, true))),
            (Val::Vector(l), Val::Vector(r)) => vector_vector(ctx, l, r, b).map(Val::Vector),
        }
    }
}

/// Leading single-value text and regex line filters go to the store; the rest stays.
fn pushdown(stages: &[Stage]) -> (Vec<LineFilter>, Vec<Stage>) {
    let mut filters = Vec::new();
    let mut i = 0;
    while let Some(Stage::Line(f)) = stages.get(i) {
        if f.pattern || f.values.len() != 1 {
            break;
        }
        match LineFilter::new(f.op, f.values[0].clone()) {
            Ok(lf) => filters.push(lf),
            Err(_) => break,
        }
        i += 1;
    }
    (filters, stages[i..].to_vec())
}

/// Per-series accumulation of a range aggregation.
struct Acc {
    n: usize,
    bucketed: bool,
    labels: Vec<Labels>,
    index: HashMap<Labels, usize>,
    sums: Vec<Vec<f64>>,
    counts: Vec<Vec<u32>>,
    samples: Vec<Vec<(i64, f64)>>,
}

impl Acc {
    fn new(n: usize, bucketed: bool) -> Self {
        Self {
            n,
            bucketed,
            labels: Vec::new(),
            index: HashMap::new(),
            sums: Vec::new(),
            counts: Vec::new(),
            samples: Vec::new(),
        }
    }

    fn series(&mut self, labels: Labels) -> usize {
        if let Some(i) = self.index.get(&labels) {
            return *i;
        }
        let i = self.labels.len();
        self.index.insert(labels.clone(), i);
        self.labels.push(labels);
        if self.bucketed {
            self.sums.push(vec![0.0; self.n]);
            self.counts.push(vec![0; self.n]);
        } else {
            self.samples.push(Vec::new());
        }
        i
    }

    fn add(&mut self, ctx: &Ctx<'_>, r: &RangeAgg, id: usize, ts: i64, v: f64) {
        if !self.bucketed {
            self.samples[id].push((ts, v));
            return;
        }
        // Windows k with t_k - offset - range < ts <= t_k - offset.
        let shifted = ts + r.offset;
        let lo = ceil_div(shifted - ctx.start, ctx.step).max(0);
        let hi = ceil_div(shifted + r.range - ctx.start, ctx.step) - 1;
        let hi = hi.min(self.n as i64 - 1);
        let (sums, counts) = (&mut self.sums[id], &mut self.counts[id]);
        for k in lo..=hi {
            sums[k as usize] += v;
            counts[k as usize] += 1;
        }
    }

    fn finish(mut self, ctx: &Ctx<'_>, r: &RangeAgg) -> Vec<Ser> {
        let secs = r.range as f64 / 1e9;
        if r.op == RangeOp::Absent {
            let present: Vec<bool> = (0..self.n)
                .map(|k| {
                    if self.bucketed {
                        self.counts.iter().any(|c| c[k] > 0)
                    } else {
                        self.samples.iter().any(|s| window(s, ctx, r, k).is_some_and(|w| !w.is_empty()))
                    }
                })
                .collect();
            if present.iter().all(|p| *p) {
                return Vec::new();
            }
            let labels = Labels::from_pairs(
                r.log.matchers.iter().filter(|m| m.op == MatchOp::Equal).map(|m| (m.name.as_str(), m.value.as_str())),
            )
            .unwrap_or_default();
            return vec![Ser { labels, vals: present.iter().map(|p| (!p).then_some(1.0)).collect() }];
        }
        let mut out = Vec::with_capacity(self.labels.len());
        for (i, labels) in self.labels.drain(..).enumerate() {
            let vals: Vals = if self.bucketed {
                (0..self.n)
                    .map(|k| {
                        let (s, c) = (self.sums[i][k], self.counts[i][k]);
                        (c > 0).then(|| match r.op {
                            RangeOp::Count => c as f64,
                            RangeOp::Rate if r.unwrap.is_none() => c as f64 / secs,
                            RangeOp::Rate | RangeOp::BytesRate => s / secs,
                            _ => s,
                        })
                    })
                    .collect()
            } else {
                let s = &mut self.samples[i];
                s.sort_by_key(|x| x.0);
                (0..self.n).map(|k| window(s, ctx, r, k).and_then(|w| range_fn(r, w, ctx.t(k) - r.offset))).collect()
            };
            out.push(Ser { labels, vals });
        }
        out
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

fn window<'a>(s: &'a [(i64, f64)], ctx: &Ctx<'_>, r: &RangeAgg, k: usize) -> Option<&'a [(i64, f64)]> {
    let end = ctx.t(k) - r.offset;
    let start = end - r.range;
    let lo = s.partition_point(|x| x.0 <= start);
    let hi = s.partition_point(|x| x.0 <= end);
    (lo < hi).then(|| &s[lo..hi])
}

fn range_fn(r: &RangeAgg, w: &[(i64, f64)], end: i64) -> Option<f64> {
    let n = w.len() as f64;
    let vals = w.iter().map(|x| x.1);
    Some(match r.op {
        RangeOp::Count => n,
        RangeOp::Rate if r.unwrap.is_none() => n / (r.range as f64 / 1e9),
        RangeOp::Rate | RangeOp::BytesRate => vals.sum::<f64>() / (r.range as f64 / 1e9),
        RangeOp::Bytes | RangeOp::Sum => vals.sum(),
        RangeOp::Avg => vals.sum::<f64>() / n,
        RangeOp::Min => vals.fold(f64::INFINITY, f64::min),
        RangeOp::Max => vals.fold(f64::NEG_INFINITY, f64::max),
        RangeOp::Stdvar | RangeOp::Stddev => {
            let mean = w.iter().map(|x| x.1).sum::<f64>() / n;
            let var = w.iter().map(|x| (x.1 - mean).powi(2)).sum::<f64>() / n;
            if r.op == RangeOp::Stddev {
                var.sqrt()
            } else {
                var
            }
        }
        RangeOp::Quantile => {
            let mut v: Vec<f64> = vals.collect();
            quantile(r.param.unwrap_or(0.5), &mut v)
        }
        RangeOp::First => w[0].1,
        RangeOp::Last => w[w.len() - 1].1,
        RangeOp::RateCounter => counter_rate(w, end - r.range, end)?,
        RangeOp::Absent => return None,
    })
}

/// Prometheus's quantile: linear interpolation between closest ranks.
fn quantile(q: f64, v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = q * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let weight = rank - lo as f64;
    v[lo] * (1.0 - weight) + v[hi] * weight
}

/// Prometheus's extrapolated counter rate over `(start, end]` (what Loki's `rate_counter` does).
fn counter_rate(w: &[(i64, f64)], start: i64, end: i64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let mut delta = w[w.len() - 1].1 - w[0].1;
    let mut prev = w[0].1;
    for x in &w[1..] {
        if x.1 < prev {
            delta += prev;
        }
        prev = x.1;
    }
    let (first_t, last_t) = (w[0].0 as f64 / 1e9, w[w.len() - 1].0 as f64 / 1e9);
    let (start, end) = (start as f64 / 1e9, end as f64 / 1e9);
    let sampled = last_t - first_t;
    let avg = sampled / (w.len() - 1) as f64;
    let mut to_start = first_t - start;
    let to_end = end - last_t;
    if delta > 0.0 && w[0].1 >= 0.0 {
        let zero = sampled * (w[0].1 / delta);
        if zero < to_start {
            to_start = zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg / 2.0 };
    interval += if to_end < threshold { to_end } else { avg / 2.0 };
    Some(delta * (interval / sampled) / (end - start))
}

/// Series ids of one stream's rows by their structured metadata, so that rows sharing a
/// stream and metadata (most rows, with a few distinct sets per stream) are labelled once.
#[derive(Default)]
struct SeriesByMeta {
    stream: Labels,
    by_metadata_id: hashbrown::HashMap<u64, usize>,
    by_metadata: hashbrown::HashMap<Vec<(String, String)>, usize>,
}

/// Borrowed metadata pairs, hashed as the owned key is.
#[derive(Hash)]
struct MetaRef<'a>(&'a [(&'a str, &'a str)]);

impl hashbrown::Equivalent<Vec<(String, String)>> for MetaRef<'_> {
    fn equivalent(&self, key: &Vec<(String, String)>) -> bool {
        self.0.len() == key.len() && self.0.iter().zip(key).all(|((a, b), (c, d))| a == c && b == d)
    }
}

impl SeriesByMeta {
    /// The series of `row` of `stream`, when `enabled` and a row with its metadata was seen.
    fn get(&mut self, enabled: bool, stream: &Labels, row: &LogRow<'_>) -> Option<usize> {
        if !enabled {
            return None;
        }
        if self.stream != *stream {
            self.stream = stream.clone();
            self.by_metadata_id.clear();
            self.by_metadata.clear();
            return None;
        }
        match row.metadata_id {
            0 => self.by_metadata.get(&MetaRef(row.metadata)).copied(),
            id => self.by_metadata_id.get(&id).copied(),
        }
    }

    fn insert(&mut self, row: &LogRow<'_>, series: usize) {
        match row.metadata_id {
            0 => {
                let key = row.metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                self.by_metadata.insert(key, series);
            }
            id => {
                self.by_metadata_id.insert(id, series);
            }
        }
    }
}

fn group_labels(l: &Labels, g: &Grouping) -> Labels {
    let mut b = l.to_builder();
    if g.without {
        b.retain(|k, _| !g.labels.iter().any(|x| x == k));
    } else {
        b.retain(|k, _| g.labels.iter().any(|x| x == k));
    }
    b.build().unwrap_or_default()
}

#[allow(clippy::needless_range_loop)]
fn aggregate(ctx: &Ctx<'_>, v: &VectorAgg, input: Vec<Ser>) -> Result<Vec<Ser>> {
    let key = |l: &Labels| match &v.grouping {
        Some(g) => group_labels(l, g),
        None => Labels::empty(),
    };
    match v.op {
        VectorOp::Sort | VectorOp::SortDesc => {
            let mut out = input;
            // Instant queries show the order; range queries sort by labels anyway.
            out.sort_by(|a, b| {
                let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                if v.op == VectorOp::Sort {
                    x.total_cmp(&y)
                } else {
                    y.total_cmp(&x)
                }
            });
            return Ok(out);
        }
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = v.param.unwrap_or(1.0);
            if k < 1.0 {
                return Ok(Vec::new());
            }
            let k = k as usize;
            let mut groups: HashMap<Labels, Vec<usize>> = HashMap::new();
            for (i, s) in input.iter().enumerate() {
                groups.entry(key(&s.labels)).or_default().push(i);
            }
            let mut keep: Vec<Vals> = input.iter().map(|_| vec![None; ctx.n]).collect();
            for members in groups.values() {
                for step in 0..ctx.n {
                    let mut present: Vec<(usize, f64)> =
                        members.iter().filter_map(|&i| input[i].vals[step].map(|x| (i, x))).collect();
                    present.sort_by(|a, b| {
                        let o = a.1.total_cmp(&b.1);
                        if v.op == VectorOp::Topk {
                            o.reverse()
                        } else {
                            o
                        }
                    });
                    for (i, x) in present.into_iter().take(k) {
                        keep[i][step] = Some(x);
                    }
                }
            }
            return Ok(input.into_iter().zip(keep).map(|(s, vals)| Ser { labels: s.labels, vals }).collect());
        }
        _ => {}
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Vec<usize>> = HashMap::new();
    for (i, s) in input.iter().enumerate() {
        let k = key(&s.labels);
        groups
            .entry(k.clone())
            .or_insert_with(|| {
                order.push(k);
                Vec::new()
            })
            .push(i);
    }
    let mut out = Vec::with_capacity(order.len());
    for k in order {
        let members = &groups[&k];
        let vals = (0..ctx.n)
            .map(|step| {
                let xs: Vec<f64> = members.iter().filter_map(|&i| input[i].vals[step]).collect();
                if xs.is_empty() {
                    return None;
                }
                let n = xs.len() as f64;
                Some(match v.op {
                    VectorOp::Sum => xs.iter().sum(),
                    VectorOp::Avg => xs.iter().sum::<f64>() / n,
                    VectorOp::Min => xs.iter().copied().fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
                    VectorOp::Max => xs.iter().copied().fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
                    VectorOp::Count => n,
                    VectorOp::Stddev | VectorOp::Stdvar => {
                        let mean = xs.iter().sum::<f64>() / n;
                        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                        if v.op == VectorOp::Stddev {
                            var.sqrt()
                        } else {
                            var
                        }
                    }
                    _ => unreachable!("handled above"),
                })
            })
            .collect();
        out.push(Ser { labels: k, vals });
    }
    Ok(out)
}

/// `a op b` for numbers; comparisons give 1/0 with `bool`, else `None` when false.
fn arith(op: BinOp, a: f64, b: f64, return_bool: bool) -> Option<f64> {
    let cmp = |t: bool| if return_bool { Some(if t { 1.0 } else { 0.0 }) } else { t.then_some(a) };
    match op {
        BinOp::Add => Some(a + b),
        BinOp::Sub => Some(a - b),
        BinOp::Mul => Some(a * b),
        BinOp::Div => Some(a / b),
        BinOp::Mod => Some(a % b),
        BinOp::Pow => Some(a.powf(b)),
        BinOp::Eq => cmp(a == b),
        BinOp::Ne => cmp(a != b),
        BinOp::Gt => cmp(a > b),
        BinOp::Ge => cmp(a >= b),
        BinOp::Lt => cmp(a < b),
        BinOp::Le => cmp(a <= b),
        BinOp::And | BinOp::Or | BinOp::Unless => None,
    }
}

fn vector_scalar(v: Vec<Ser>, s: &[f64], op: BinOp, return_bool: bool, scalar_left: bool) -> Vec<Ser> {
    v.into_iter()
        .map(|ser| {
            let vals = ser
                .vals
                .iter()
                .zip(s)
                .map(|(x, y)| {
                    let x = (*x)?;
                    let (a, b) = if scalar_left { (*y, x) } else { (x, *y) };
                    let r = arith(op, a, b, return_bool)?;
                    // A filtering comparison keeps the vector's value.
                    Some(if op.is_comparison() && !return_bool { x } else { r })
                })
                .collect();
            Ser { labels: ser.labels, vals }
        })
        .collect()
}

fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    let mut b = l.to_builder();
    if m.on {
        b.retain(|k, _| m.labels.iter().any(|x| x == k));
    } else {
        b.retain(|k, _| !m.labels.iter().any(|x| x == k));
    }
    b.build().unwrap_or_default()
}

fn vector_vector(ctx: &Ctx<'_>, l: Vec<Ser>, r: Vec<Ser>, b: &BinaryExpr) -> Result<Vec<Ser>> {
    let m = &b.matching;
    let lsig: Vec<Labels> = l.iter().map(|s| signature(&s.labels, m)).collect();
    let rsig: Vec<Labels> = r.iter().map(|s| signature(&s.labels, m)).collect();
    if b.op.is_set() {
        let mut out: Vec<Ser> = Vec::new();
        let present = |sigs: &[Labels], ser: &[Ser], step: usize| -> std::collections::HashSet<Labels> {
            sigs.iter().zip(ser).filter(|(_, s)| s.vals[step].is_some()).map(|(g, _)| g.clone()).collect()
        };
        let lp: Vec<_> = (0..ctx.n).map(|k| present(&lsig, &l, k)).collect();
        let rp: Vec<_> = (0..ctx.n).map(|k| present(&rsig, &r, k)).collect();
        match b.op {
            BinOp::And | BinOp::Unless => {
                for (i, s) in l.into_iter().enumerate() {
                    let vals = (0..ctx.n)
                        .map(|k| s.vals[k].filter(|_| rp[k].contains(&lsig[i]) == (b.op == BinOp::And)))
                        .collect();
                    out.push(Ser { labels: s.labels, vals });
                }
            }
            _ => {
                out.extend(l);
                for (i, s) in r.into_iter().enumerate() {
                    let vals = (0..ctx.n).map(|k| s.vals[k].filter(|_| !lp[k].contains(&rsig[i]))).collect();
                    out.push(Ser { labels: s.labels, vals });
                }
            }
        }
        return Ok(out);
    }
    // Which side is "many" (group_left: left; group_right: right); one-to-one otherwise.
    let (many, one, msig, osig, swapped) = match &m.group {
        Some((true, _)) => (&r, &l, &rsig, &lsig, true),
        _ => (&l, &r, &lsig, &rsig, false),
    };
    let mut results: HashMap<Labels, Vals> = HashMap::new();
    let mut order: Vec<Labels> = Vec::new();
    for step in 0..ctx.n {
        let mut by_sig: HashMap<&Labels, usize> = HashMap::new();
        for (j, s) in one.iter().enumerate() {
            if s.vals[step].is_some() && by_sig.insert(&osig[j], j).is_some() {
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                    osig[j],
                    if swapped { "left" } else { "right" }
                )));
            }
        }
        let mut seen_many: HashMap<&Labels, usize> = HashMap::new();
        for (i, s) in many.iter().enumerate() {
            let Some(x) = s.vals[step] else { continue };
            let Some(&j) = by_sig.get(&msig[i]) else { continue };
            if m.group.is_none() && seen_many.insert(&msig[i], i).is_some() {
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {} on the left hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                    msig[i]
                )));
            }
            let y = one[j].vals[step].unwrap_or(f64::NAN);
            let (a, bv) = if swapped { (y, x) } else { (x, y) };
            let Some(v) = arith(b.op, a, bv, b.return_bool) else { continue };
            let v = if b.op.is_comparison() && !b.return_bool { a } else { v };
            let labels = result_labels(if swapped { &one[j].labels } else { &s.labels }, &one[j].labels, &s.labels, b);
            let entry = results.entry(labels.clone()).or_insert_with(|| {
                order.push(labels.clone());
                vec![None; ctx.n]
            });
            if entry[step].is_some() {
                return Err(Error::Execution(format!("multiple matches for labels: {labels}")));
            }
            entry[step] = Some(v);
        }
    }
    Ok(order.into_iter().map(|labels| Ser { vals: results.remove(&labels).unwrap_or_default(), labels }).collect())
}

/// Prometheus's `resultMetric`: one-to-one keeps the `on` labels (or drops the `ignoring`
/// ones) unless it is a filtering comparison; group_left/right copy the named labels from the
/// "one" side onto the "many" side's labels.
fn result_labels(lhs: &Labels, one: &Labels, many: &Labels, b: &BinaryExpr) -> Labels {
    let m = &b.matching;
    match &m.group {
        Some((_, extra)) => {
            let mut bld = many.to_builder();
            for name in extra {
                match one.get(name) {
                    Some(v) => bld.set(name, v),
                    None => bld.remove(name),
                };
            }
            bld.build().unwrap_or_default()
        }
        None => {
            if b.op.is_comparison() && !b.return_bool {
                return lhs.clone();
            }
            if m.labels.is_empty() && !m.on {
                return lhs.clone();
            }
            signature(lhs, m)
        }
    }
}

/// After label_replace two series may share labels; that is an error as in Prometheus.
fn merge_same_labels(series: Vec<Ser>) -> Result<Vec<Ser>> {
    let mut seen: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<Ser> = Vec::new();
    for s in series {
        if let Some(&i) = seen.get(&s.labels) {
            for (a, b) in out[i].vals.iter_mut().zip(&s.vals) {
                if a.is_some() && b.is_some() {
                    return Err(Error::Execution("vector cannot contain metrics with the same labelset".into()));
                }
                if a.is_none() {
                    *a = *b;
                }
            }
        } else {
            seen.insert(s.labels.clone(), out.len());
            out.push(s);
        }
    }
    Ok(out)
}

/// The query function alert rules call (`Fn(&str, Timestamp) -> Result<Vector>`, as
/// Prometheus's `rules.QueryFunc`): a LogQL metric expression evaluated at `at_ms`
/// (milliseconds, the rules' clock) into `(labels, value)` samples. This is how a rule group
/// holds LogQL expressions, as Loki's ruler does.
pub fn rule_query<'a>(
    engine: &'a Engine,
    reader: &'a dyn LogReader,
) -> impl Fn(&str, i64) -> Result<Vec<(Labels, f64)>> + 'a {
    move |query, at_ms| engine.instant_vector(reader, query, at_ms.saturating_mul(1_000_000))
}
