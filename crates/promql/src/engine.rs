//! The public engine: options, query entry points, and turning the evaluator's output into
//! a [`Value`].

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;
use telltale_model::{Labels, Memo, Sample, METRIC_NAME};
use telltale_storage::{MetricReader, Series};

use crate::error::{Error, Result};
use crate::eval::{Ctx, ESeries, EVal, Evaluator, Steps};
use crate::value::{InstantSample, Value};

/// Limits and defaults of an [`Engine`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus's `--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// Most samples a query may hold (Prometheus's `--query.max-samples`); 0 means no limit.
    pub max_samples: usize,
    /// Most series a query may select from storage; 0 means no limit.
    pub max_series: usize,
    /// How long a query may run before it fails with a timeout; zero means no limit.
    pub timeout: Duration,
    /// Step of a subquery written without one (`foo[5m:]`); Prometheus uses the global
    /// evaluation interval.
    pub default_subquery_step: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_series: 0,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
        }
    }
}

/// Prometheus's non-fatal query annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Messages starting `PromQL warning:`; the API returns them as `warnings`.
    pub warnings: Vec<String>,
    /// Messages starting `PromQL info:`; the API returns them as `infos`.
    pub infos: Vec<String>,
}

/// A query's result with its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// The result.
    pub value: Value,
    /// Warnings and infos raised while evaluating.
    pub annotations: Annotations,
}

/// Evaluates PromQL over any [`MetricReader`]. Cheap to create and share: it holds only
/// options (parsed queries are cached process-wide).
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// Parses a query, returning Prometheus-style error text on failure.
pub fn parse(query: &str) -> Result<Expr> {
    promql_parser::parser::parse(query).map_err(|e| Error::bad(format!("parse error: {e}")))
}

/// `query` parsed, remembered process-wide (1,000 texts): dashboards, rules and refreshing
/// pages send the same texts again and again, and the parser compiles every regex matcher
/// it meets. Parsing is pure, so any engine may share the result.
fn parse_cached(query: &str) -> Result<Arc<Expr>> {
    static PARSED: Memo<Arc<Expr>> = Memo::new(1_000);
    PARSED.get_or_try(query, || parse(query).map(Arc::new))
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `at_ms` (milliseconds since the epoch).
    pub fn instant(&self, reader: &dyn MetricReader, query: &str, at_ms: i64) -> Result<Value> {
        Ok(self.instant_query(reader, query, at_ms)?.value)
    }

    /// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms` inclusive; the result
    /// is always a matrix sorted by labels.
    pub fn range(
        &self,
        reader: &dyn MetricReader,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value> {
        Ok(self.range_query(reader, query, start_ms, end_ms, step_ms)?.value)
    }

    /// Like [`Engine::instant`], with annotations.
    pub fn instant_query(&self, reader: &dyn MetricReader, query: &str, at_ms: i64) -> Result<QueryOutput> {
        let expr = parse_cached(query)?;
        self.run_instant(reader, &expr, Some(query), at_ms)
    }

    /// Like [`Engine::range`], with annotations.
    pub fn range_query(
        &self,
        reader: &dyn MetricReader,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput> {
        let expr = parse_cached(query)?;
        self.run_range(reader, &expr, Some(query), start_ms, end_ms, step_ms)
    }

    /// Evaluates an already parsed expression at one instant.
    pub fn instant_expr(&self, reader: &dyn MetricReader, expr: &Expr, at_ms: i64) -> Result<QueryOutput> {
        self.run_instant(reader, expr, None, at_ms)
    }

    /// Evaluates an already parsed expression over a range of steps.
    pub fn range_expr(
        &self,
        reader: &dyn MetricReader,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput> {
        self.run_range(reader, expr, None, start_ms, end_ms, step_ms)
    }

    fn run_instant(
        &self,
        reader: &dyn MetricReader,
        expr: &Expr,
        query_text: Option<&str>,
        at_ms: i64,
    ) -> Result<QueryOutput> {
        let text: Cow<'_, str> = query_text.map_or_else(|| expr.to_string().into(), Cow::Borrowed);
        let ctx = self.ctx(reader, &text, at_ms, at_ms, 0);
        let steps = Steps { start: at_ms, end: at_ms, step: 1 };
        let val = Evaluator::new(&ctx, steps).eval(expr)?;
        let value = match val {
            EVal::Scalar(v) => Value::Scalar { t: at_ms, v: v.first().copied().unwrap_or(f64::NAN) },
            EVal::String(s) => Value::String { t: at_ms, v: s },
            EVal::Vector(v) => {
                let v = cleanup_names(v)?;
                Value::Vector(
                    v.into_iter()
                        .filter_map(|s| {
                            s.points.first().map(|p| InstantSample { labels: s.labels.clone(), t: at_ms, v: p.v })
                        })
                        .collect(),
                )
            }
            EVal::Matrix(m) => Value::Matrix(to_series(cleanup_names(m)?)),
        };
        Ok(QueryOutput { value, annotations: ctx.annotations.into_inner() })
    }

    fn run_range(
        &self,
        reader: &dyn MetricReader,
        expr: &Expr,
        query_text: Option<&str>,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput> {
        if step_ms <= 0 {
            return Err(Error::bad("zero or negative query resolution step widths are not accepted"));
        }
        if end_ms < start_ms {
            return Err(Error::bad("end timestamp must not be before start time"));
        }
        // Prometheus's API refuses more points per series; the engine does too, so a bad
        // request cannot allocate unboundedly.
        if (end_ms - start_ms) / step_ms > 11_000 {
            return Err(Error::bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            t => {
                let name = if t == ValueType::Matrix { "range vector" } else { "string" };
                return Err(Error::bad(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let text: Cow<'_, str> = query_text.map_or_else(|| expr.to_string().into(), Cow::Borrowed);
        let ctx = self.ctx(reader, &text, start_ms, end_ms, step_ms);
        let steps = Steps { start: start_ms, end: end_ms, step: step_ms };
        let val = Evaluator::new(&ctx, steps).eval(expr)?;
        let mut series = match val {
            EVal::Scalar(v) => vec![Series {
                labels: Labels::empty(),
                samples: v.into_iter().enumerate().map(|(i, x)| Sample::new(steps.ts(i), x)).collect(),
            }],
            EVal::Vector(v) => to_series(cleanup_names(v)?),
            EVal::String(_) | EVal::Matrix(_) => {
                return Err(Error::bad("range queries must evaluate to a scalar or an instant vector"))
            }
        };
        series.retain(|s| !s.samples.is_empty());
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryOutput { value: Value::Matrix(series), annotations: ctx.annotations.into_inner() })
    }

    fn ctx<'a>(&'a self, reader: &'a dyn MetricReader, query: &'a str, start: i64, end: i64, step: i64) -> Ctx<'a> {
        Ctx {
            reader,
            opts: &self.opts,
            deadline: (!self.opts.timeout.is_zero()).then(|| Instant::now() + self.opts.timeout),
            samples: Cell::new(0),
            series: Cell::new(0),
            checks: Cell::new(0),
            annotations: RefCell::new(Annotations::default()),
            query_start: start,
            query_end: end,
            query_step: step,
            query,
        }
    }
}

fn to_series(v: Vec<ESeries>) -> Vec<Series> {
    v.into_iter().map(|s| Series { labels: s.labels, samples: s.points }).collect()
}

/// Removes the metric name from series marked for it (delayed name removal). Series that
/// then share labels merge; if they have points at the same time the result is ambiguous
/// and fails, as in Prometheus.
pub(crate) fn cleanup_names(mut v: Vec<ESeries>) -> Result<Vec<ESeries>> {
    let mut any = false;
    for s in &mut v {
        if s.drop_name && s.labels.get(METRIC_NAME).is_some() {
            s.labels = drop_metric_name(&s.labels);
            any = true;
        }
        s.drop_name = false;
    }
    if any {
        v = crate::functions::merge_same_labels(v)?;
    }
    Ok(v)
}

/// The labels without `__name__`.
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    let mut b = l.to_builder();
    b.remove(METRIC_NAME);
    b.build().unwrap_or_default()
}
