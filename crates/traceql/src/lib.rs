//! TraceQL, Grafana Tempo's trace query language: parser, evaluation over one trace, pushdown
//! hints for a trace store, TraceQL metrics and completions for the query editor.
//!
//! Input: a query string ([`parse`]) and traces as [`telltale_model::SpanBatch`]es, one per
//! trace id. Output: for a search, the trace's matching [`SpanSet`]s ([`Query::eval`]; empty
//! means the trace does not match); for a metrics query, [`MetricSeries`] over a
//! [`MetricsRange`] ([`Query::metrics`] or the streaming [`MetricsEvaluator`]). The store uses
//! [`Query::hints`] to skip blocks before it reads a trace.
//!
//! The one design decision to know: the crate never touches storage. A store fetches candidate
//! traces (narrowed by [`Hints`]) and hands each whole trace to [`Query::eval`], which runs
//! Tempo's semantics in memory (every span of a trace starts as one spanset; each `|` stage
//! maps spansets to spansets). That keeps one evaluator for every store, at the cost of
//! reading whole traces where Tempo's columnar fetch reads only the needed columns. Tempo's
//! behaviour is the reference; where Telltale differs it is written in `docs/traceql.md`.
#![warn(missing_docs)]

pub mod ast;
mod complete;
mod error;
mod eval;
mod hints;
mod lexer;
mod metrics;
mod parser;
mod value;

use std::collections::HashMap;

use regex::Regex;
use telltale_model::SpanBatch;

pub use complete::{completions, Completion, CompletionKind};
pub use error::{Error, Result};
pub use eval::{MatchedSpan, SpanSet};
pub use hints::{Hint, Hints};
pub use metrics::{MetricSeries, MetricsEvaluator, MetricsRange, MAX_STEPS};
pub use value::Value;

use ast::{FieldExpr, FieldRef, Pipeline, RootExpr, ScalarExpr, SpansetExpr, Stage};

/// A parsed, validated query, ready to run over any number of traces.
#[derive(Debug, Clone)]
pub struct Query {
    root: RootExpr,
    regexes: HashMap<String, Regex>,
    selects: Vec<FieldRef>,
}

/// Parses and validates `text`.
pub fn parse(text: &str) -> Result<Query> {
    let root = parser::parse_root(text)?;
    Ok(Query::from_ast(root))
}

impl Query {
    /// A query from a tree built by hand (or by [`parse`]). Regexes that fail to compile
    /// never match.
    pub fn from_ast(root: RootExpr) -> Query {
        let mut regexes = HashMap::new();
        let mut selects = Vec::new();
        walk_pipeline(&root.pipeline, &mut |e| collect_regexes(e, &mut regexes), &mut selects);
        Query { root, regexes, selects }
    }

    /// The parsed tree.
    pub fn ast(&self) -> &RootExpr {
        &self.root
    }

    /// True when the query ends in a metrics function (`| rate()`).
    pub fn is_metrics(&self) -> bool {
        self.root.metrics.is_some()
    }

    /// The spansets of `trace` the query yields; empty when the trace does not match. For a
    /// metrics query, the spans its metrics stage would count.
    pub fn eval(&self, trace: &SpanBatch) -> Vec<SpanSet> {
        let t = eval::Trace::new(trace);
        if t.spans.is_empty() {
            return Vec::new();
        }
        let ev = eval::Evaluator { trace: &t, regexes: &self.regexes };
        let all = eval::Set { spans: (0..t.spans.len()).collect(), ..eval::Set::default() };
        let sets = ev.pipeline(&self.root.pipeline, vec![all]);
        let select: Vec<(String, FieldExpr)> = self.selects.iter().map(|f| (f.to_string(), f.to_expr())).collect();
        sets.into_iter()
            .filter(|s| !s.spans.is_empty())
            .map(|s| SpanSet {
                spans: s
                    .spans
                    .iter()
                    .map(|&i| {
                        let (resource, scope, span) = t.spans[i].at;
                        let attributes = select
                            .iter()
                            .map(|(name, e)| (name.clone(), ev.value_of(e, i)))
                            .filter(|(_, v)| !v.is_nil())
                            .collect();
                        MatchedSpan { resource, scope, span, attributes }
                    })
                    .collect(),
                attributes: s.attrs,
                scalar: s.scalar,
            })
            .collect()
    }

    /// True when [`Query::eval`] yields at least one spanset.
    pub fn matches(&self, trace: &SpanBatch) -> bool {
        !self.eval(trace).is_empty()
    }

    /// Conditions every matching trace satisfies, for a store's block index.
    pub fn hints(&self) -> Hints {
        hints::collect(&self.root)
    }

    /// Runs a metrics query over `traces` (each a whole trace).
    pub fn metrics<'a>(
        &self,
        traces: impl IntoIterator<Item = &'a SpanBatch>,
        range: MetricsRange,
    ) -> Result<Vec<MetricSeries>> {
        let mut ev = MetricsEvaluator::new(self, range)?;
        for t in traces {
            ev.observe(t);
        }
        Ok(ev.finish())
    }
}

impl std::fmt::Display for Query {
    /// The canonical text of the query; it parses back to the same tree.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.root.fmt(f)
    }
}

fn walk_pipeline(p: &Pipeline, on_field: &mut dyn FnMut(&FieldExpr), selects: &mut Vec<FieldRef>) {
    for s in &p.stages {
        match s {
            Stage::Spanset(e) => walk_spanset(e, on_field, selects),
            Stage::By(e) => on_field(e),
            Stage::Select(fields) => {
                for f in fields {
                    if !selects.contains(f) {
                        selects.push(f.clone());
                    }
                }
            }
            Stage::ScalarFilter { lhs, rhs, .. } => {
                walk_scalar(lhs, on_field);
                walk_scalar(rhs, on_field);
            }
            Stage::Coalesce => {}
        }
    }
}

fn walk_scalar(e: &ScalarExpr, on_field: &mut dyn FnMut(&FieldExpr)) {
    match e {
        ScalarExpr::Aggregate { expr: Some(f), .. } => on_field(f),
        ScalarExpr::Binary { lhs, rhs, .. } => {
            walk_scalar(lhs, on_field);
            walk_scalar(rhs, on_field);
        }
        _ => {}
    }
}

fn walk_spanset(e: &SpansetExpr, on_field: &mut dyn FnMut(&FieldExpr), selects: &mut Vec<FieldRef>) {
    match e {
        SpansetExpr::Filter(f) => on_field(f),
        SpansetExpr::Op { lhs, rhs, .. } => {
            walk_spanset(lhs, on_field, selects);
            walk_spanset(rhs, on_field, selects);
        }
        SpansetExpr::Pipeline(p) => walk_pipeline(p, on_field, selects),
    }
}

fn collect_regexes(e: &FieldExpr, out: &mut HashMap<String, Regex>) {
    match e {
        FieldExpr::Binary { op, lhs, rhs } => {
            if let (ast::BinaryOp::Regex | ast::BinaryOp::NotRegex, FieldExpr::Static(ast::Static::Str(p))) =
                (op, &**rhs)
            {
                if let Ok(re) = telltale_model::anchored_regex(p) {
                    out.insert(p.clone(), re);
                }
            }
            collect_regexes(lhs, out);
            collect_regexes(rhs, out);
        }
        FieldExpr::Unary { expr, .. } => collect_regexes(expr, out),
        _ => {}
    }
}
