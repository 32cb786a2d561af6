//! Evaluation of a spanset pipeline over one trace, following Tempo's engine
//! (`pkg/traceql/ast_execute.go`): a trace starts as one spanset of all its spans, each stage
//! maps spansets to spansets, and empty spansets are dropped.

use std::collections::HashMap;

use regex::Regex;
use telltale_model::{attr, SpanBatch, SpanId};

use crate::ast::*;
use crate::value::{binary, unary, Value};

/// A span of the evaluated trace, by position, with the `select()`ed values.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedSpan {
    /// Index into `trace.resources`.
    pub resource: usize,
    /// Index into that resource's `scopes`.
    pub scope: usize,
    /// Index into that scope's `spans`.
    pub span: usize,
    /// `select()`ed fields that have a value on this span, by their canonical name
    /// (`span.http.method`, `span:duration`).
    pub attributes: Vec<(String, Value)>,
}

impl MatchedSpan {
    /// The span in `trace` (the batch the query was evaluated over).
    pub fn get<'a>(&self, trace: &'a SpanBatch) -> Option<&'a telltale_model::Span> {
        trace.resources.get(self.resource)?.scopes.get(self.scope)?.spans.get(self.span)
    }
}

/// One result of a query over a trace: some of its spans, plus the values `by()` grouped them
/// on and the aggregates a scalar filter computed.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSet {
    /// The matching spans in trace order; never empty.
    pub spans: Vec<MatchedSpan>,
    /// `by(...)` values and aggregate results, keyed as Tempo keys them (`by(resource.service.name)`,
    /// `count()`).
    pub attributes: Vec<(String, Value)>,
    /// The last scalar filter's left-hand value (Tempo's `Spanset.Scalar`).
    pub scalar: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Set {
    pub(crate) spans: Vec<usize>,
    pub(crate) attrs: Vec<(String, Value)>,
    pub(crate) scalar: Option<Value>,
}

/// One span of the trace with its position and family.
pub(crate) struct Entry<'a> {
    pub(crate) res: &'a telltale_model::ResourceSpans,
    pub(crate) scope: &'a telltale_model::ScopeSpans,
    pub(crate) span: &'a telltale_model::Span,
    pub(crate) at: (usize, usize, usize),
    pub(crate) parent: Option<usize>,
    pub(crate) children: usize,
}

/// A trace flattened, with parent links resolved once.
pub(crate) struct Trace<'a> {
    pub(crate) spans: Vec<Entry<'a>>,
    root: Option<usize>,
    duration: i64,
}

impl<'a> Trace<'a> {
    pub(crate) fn new(batch: &'a SpanBatch) -> Trace<'a> {
        let mut spans = Vec::with_capacity(batch.span_count());
        for (ri, r) in batch.resources.iter().enumerate() {
            for (si, s) in r.scopes.iter().enumerate() {
                for (pi, span) in s.spans.iter().enumerate() {
                    spans.push(Entry { res: r, scope: s, span, at: (ri, si, pi), parent: None, children: 0 });
                }
            }
        }
        let by_id: HashMap<SpanId, usize> = spans.iter().enumerate().map(|(i, e)| (e.span.span_id, i)).collect();
        for i in 0..spans.len() {
            let p = spans[i].span.parent_span_id;
            if !p.is_zero() {
                if let Some(&pi) = by_id.get(&p) {
                    if pi != i {
                        spans[i].parent = Some(pi);
                        spans[pi].children += 1;
                    }
                }
            }
        }
        let root = spans.iter().position(|e| e.span.parent_span_id.is_zero());
        let start = spans.iter().map(|e| e.span.start).min().unwrap_or(0);
        let end = spans.iter().map(|e| e.span.end).max().unwrap_or(0);
        Trace { spans, root, duration: (end - start).max(0) }
    }

    fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        // Bounded by the span count, so a cycle in bad data cannot loop forever.
        let mut cur = self.spans[i].parent;
        let mut steps = 0;
        std::iter::from_fn(move || {
            let p = cur?;
            steps += 1;
            if steps > self.spans.len() {
                return None;
            }
            cur = self.spans[p].parent;
            Some(p)
        })
    }
}

/// Which event and link of the span `event.` and `link.` read.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) span: usize,
    event: Option<usize>,
    link: Option<usize>,
}

pub(crate) struct Evaluator<'q, 't> {
    pub(crate) trace: &'t Trace<'t>,
    pub(crate) regexes: &'q HashMap<String, Regex>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn uses_scope(e: &FieldExpr, scope: Scope, intrinsics: &[Intrinsic]) -> bool {
    match e {
        FieldExpr::Static(_) => false,
        FieldExpr::Attribute(a) => a.scope == scope,
        FieldExpr::Intrinsic(i) => intrinsics.contains(i),
        FieldExpr::Unary { expr, .. } => uses_scope(expr, scope, intrinsics),
        FieldExpr::Binary { lhs, rhs, .. } => uses_scope(lhs, scope, intrinsics) || uses_scope(rhs, scope, intrinsics),
    }
}

impl Evaluator<'_, '_> {
    fn regex(&self, p: &str) -> Option<Regex> {
        match self.regexes.get(p) {
            Some(r) => Some(r.clone()),
            None => telltale_model::anchored_regex(p).ok(),
        }
    }

    pub(crate) fn field(&self, e: &FieldExpr, ctx: Ctx) -> Value {
        match e {
            FieldExpr::Static(s) => Value::from_static(s),
            FieldExpr::Attribute(a) => self.attribute(a, ctx),
            FieldExpr::Intrinsic(i) => self.intrinsic(*i, ctx),
            FieldExpr::Unary { op, expr } => unary(*op, self.field(expr, ctx)),
            FieldExpr::Binary { op, lhs, rhs } => {
                let l = self.field(lhs, ctx);
                // Short cuts, as Tempo takes them.
                match (op, &l) {
                    (BinaryOp::And, Value::Bool(false)) => return Value::Bool(false),
                    (BinaryOp::Or, Value::Bool(true)) => return Value::Bool(true),
                    _ => {}
                }
                let r = self.field(rhs, ctx);
                binary(*op, &l, &r, &|p| self.regex(p))
            }
        }
    }

    /// The field's value on span `i` (first event and link for those scopes).
    pub(crate) fn value_of(&self, e: &FieldExpr, i: usize) -> Value {
        let s = self.trace.spans[i].span;
        let ctx = Ctx { span: i, event: (!s.events.is_empty()).then_some(0), link: (!s.links.is_empty()).then_some(0) };
        self.field(e, ctx)
    }

    /// True when `e` holds for span `i`: for some event and some link of the span when
    /// `e` reads events or links (so `event.a = 1 && event.b = 2` needs one event with both).
    pub(crate) fn matches(&self, e: &FieldExpr, i: usize) -> bool {
        let s = self.trace.spans[i].span;
        let events: Vec<Option<usize>> =
            if uses_scope(e, Scope::Event, &[Intrinsic::EventName, Intrinsic::EventTimeSinceStart])
                && !s.events.is_empty()
            {
                (0..s.events.len()).map(Some).collect()
            } else {
                vec![None]
            };
        let links: Vec<Option<usize>> =
            if uses_scope(e, Scope::Link, &[Intrinsic::LinkTraceId, Intrinsic::LinkSpanId]) && !s.links.is_empty() {
                (0..s.links.len()).map(Some).collect()
            } else {
                vec![None]
            };
        events
            .iter()
            .any(|&event| links.iter().any(|&link| self.field(e, Ctx { span: i, event, link }) == Value::Bool(true)))
    }

    fn attribute(&self, a: &Attribute, ctx: Ctx) -> Value {
        let e = &self.trace.spans[ctx.span];
        let found = match a.scope {
            Scope::Span => attr(&e.span.attributes, &a.name),
            Scope::Resource => attr(&e.res.resource, &a.name),
            Scope::None => attr(&e.span.attributes, &a.name).or_else(|| attr(&e.res.resource, &a.name)),
            Scope::Event => ctx.event.and_then(|i| e.span.events.get(i)).and_then(|ev| attr(&ev.attributes, &a.name)),
            Scope::Link => ctx.link.and_then(|i| e.span.links.get(i)).and_then(|l| attr(&l.attributes, &a.name)),
            Scope::Instrumentation => attr(&e.scope.scope.attributes, &a.name),
        };
        found.map_or(Value::Nil, Value::from_attr)
    }

    fn intrinsic(&self, i: Intrinsic, ctx: Ctx) -> Value {
        let e = &self.trace.spans[ctx.span];
        let s = e.span;
        let root = self.trace.root.map(|r| &self.trace.spans[r]);
        match i {
            Intrinsic::Name => Value::Str(s.name.clone()),
            Intrinsic::Status => Value::Status(s.status),
            Intrinsic::StatusMessage => Value::Str(s.status_message.clone()),
            Intrinsic::Kind => Value::Kind(s.kind),
            Intrinsic::Duration => Value::Duration(s.duration()),
            Intrinsic::ChildCount => Value::Int(e.children as i64),
            Intrinsic::SpanId => Value::Str(hex(&s.span_id.0)),
            Intrinsic::ParentId if s.parent_span_id.is_zero() => Value::Nil,
            Intrinsic::ParentId => Value::Str(hex(&s.parent_span_id.0)),
            Intrinsic::TraceId => Value::Str(hex(&s.trace_id.0)),
            Intrinsic::TraceDuration => Value::Duration(self.trace.duration),
            Intrinsic::RootName => root.map_or(Value::Nil, |r| Value::Str(r.span.name.clone())),
            Intrinsic::RootService => root.map_or(Value::Nil, |r| Value::Str(r.res.service_name().to_string())),
            Intrinsic::EventName => {
                ctx.event.and_then(|i| s.events.get(i)).map_or(Value::Nil, |ev| Value::Str(ev.name.clone()))
            }
            Intrinsic::EventTimeSinceStart => {
                ctx.event.and_then(|i| s.events.get(i)).map_or(Value::Nil, |ev| Value::Duration(ev.time - s.start))
            }
            Intrinsic::LinkTraceId => {
                ctx.link.and_then(|i| s.links.get(i)).map_or(Value::Nil, |l| Value::Str(hex(&l.trace_id.0)))
            }
            Intrinsic::LinkSpanId => {
                ctx.link.and_then(|i| s.links.get(i)).map_or(Value::Nil, |l| Value::Str(hex(&l.span_id.0)))
            }
            Intrinsic::InstrumentationName => Value::Str(e.scope.scope.name.clone()),
            Intrinsic::InstrumentationVersion => Value::Str(e.scope.scope.version.clone()),
        }
    }

    pub(crate) fn pipeline(&self, p: &Pipeline, mut sets: Vec<Set>) -> Vec<Set> {
        for stage in &p.stages {
            sets = match stage {
                Stage::Spanset(e) => sets.iter().flat_map(|s| self.spanset(e, s)).collect(),
                Stage::By(e) => sets.into_iter().flat_map(|s| self.group(e, s)).collect(),
                Stage::Coalesce => {
                    let mut spans: Vec<usize> = sets.into_iter().flat_map(|s| s.spans).collect();
                    spans.sort_unstable();
                    spans.dedup();
                    vec![Set { spans, ..Set::default() }]
                }
                Stage::Select(_) => sets,
                Stage::ScalarFilter { op, lhs, rhs } => sets
                    .into_iter()
                    .filter_map(|mut s| {
                        let mut attrs = Vec::new();
                        let l = self.scalar(lhs, &s, &mut attrs)?;
                        let r = self.scalar(rhs, &s, &mut attrs)?;
                        if binary(*op, &l, &r, &|_| None) != Value::Bool(true) {
                            return None;
                        }
                        for (k, v) in attrs {
                            if !s.attrs.iter().any(|(k2, _)| *k2 == k) {
                                s.attrs.push((k, v));
                            }
                        }
                        s.scalar = Some(l);
                        Some(s)
                    })
                    .collect(),
            };
            sets.retain(|s| !s.spans.is_empty());
        }
        sets
    }

    fn group(&self, e: &FieldExpr, s: Set) -> Vec<Set> {
        let mut groups: Vec<(String, Set)> = Vec::new();
        let key = format!("by({e})");
        for i in s.spans {
            let v = self.value_of(e, i);
            let k = v.group_key();
            match groups.iter_mut().find(|(gk, _)| *gk == k) {
                Some((_, g)) => g.spans.push(i),
                None => {
                    let mut attrs = s.attrs.clone();
                    attrs.push((key.clone(), v));
                    groups.push((k, Set { spans: vec![i], attrs, scalar: s.scalar.clone() }));
                }
            }
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }

    fn scalar(&self, e: &ScalarExpr, s: &Set, attrs: &mut Vec<(String, Value)>) -> Option<Value> {
        match e {
            ScalarExpr::Static(v) => Some(Value::from_static(v)),
            ScalarExpr::Binary { op, lhs, rhs } => {
                let l = self.scalar(lhs, s, attrs)?;
                let r = self.scalar(rhs, s, attrs)?;
                let v = binary(*op, &l, &r, &|_| None);
                (!v.is_nil()).then_some(v)
            }
            ScalarExpr::Aggregate { op, expr } => {
                let v = self.aggregate(*op, expr.as_ref(), s)?;
                attrs.push((e.to_string(), v.clone()));
                Some(v)
            }
        }
    }

    fn aggregate(&self, op: AggregateOp, expr: Option<&FieldExpr>, s: &Set) -> Option<Value> {
        let Some(expr) = expr else { return Some(Value::Int(s.spans.len() as i64)) };
        let vals: Vec<Value> =
            s.spans.iter().map(|&i| self.value_of(expr, i)).filter(|v| v.as_f64().is_some()).collect();
        let first = vals.first()?.clone();
        match op {
            AggregateOp::Count => Some(Value::Int(s.spans.len() as i64)),
            AggregateOp::Min | AggregateOp::Max => {
                let mut best = first;
                for v in &vals[1..] {
                    let better = if op == AggregateOp::Min { BinaryOp::Lt } else { BinaryOp::Gt };
                    if binary(better, v, &best, &|_| None) == Value::Bool(true) {
                        best = v.clone();
                    }
                }
                Some(best)
            }
            AggregateOp::Sum | AggregateOp::Avg => {
                let mut sum = first;
                for v in &vals[1..] {
                    sum = binary(BinaryOp::Add, &sum, v, &|_| None);
                }
                if op == AggregateOp::Sum {
                    return Some(sum);
                }
                let n = vals.len() as f64;
                Some(match sum {
                    Value::Duration(d) => Value::Duration((d as f64 / n) as i64),
                    other => Value::Float(other.as_f64()? / n),
                })
            }
        }
    }

    /// The spansets `e` makes of the one spanset `input`.
    pub(crate) fn spanset(&self, e: &SpansetExpr, input: &Set) -> Vec<Set> {
        let derive = |spans: Vec<usize>| {
            if spans.is_empty() {
                vec![]
            } else {
                vec![Set { spans, attrs: input.attrs.clone(), scalar: input.scalar.clone() }]
            }
        };
        match e {
            SpansetExpr::Filter(f) => derive(input.spans.iter().copied().filter(|&i| self.matches(f, i)).collect()),
            SpansetExpr::Pipeline(p) => self.pipeline(p, vec![input.clone()]),
            SpansetExpr::Op { op, lhs, rhs } => {
                let l = flatten(self.spanset(lhs, input));
                let r = flatten(self.spanset(rhs, input));
                derive(self.relate(*op, &l, &r))
            }
        }
    }

    fn relate(&self, op: SpansetOp, l: &[usize], r: &[usize]) -> Vec<usize> {
        use SpansetOp::*;
        let n = self.trace.spans.len();
        let mut in_l = vec![false; n];
        for &i in l {
            in_l[i] = true;
        }
        let mut in_r = vec![false; n];
        for &i in r {
            in_r[i] = true;
        }
        let parent = |i: usize| self.trace.spans[i].parent;
        let union = |a: &[usize], b: &[usize]| {
            let mut v: Vec<usize> = a.iter().chain(b).copied().collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        // Spans (of `among`) that are a parent / an ancestor of some span marked in `of`.
        let parents_of = |of: &[usize], among: &[bool]| -> Vec<bool> {
            let mut m = vec![false; n];
            for &i in of {
                if let Some(p) = parent(i) {
                    m[p] = among[p];
                }
            }
            m
        };
        let ancestors_of = |of: &[usize], among: &[bool]| -> Vec<bool> {
            let mut m = vec![false; n];
            for &i in of {
                for a in self.trace.ancestors(i) {
                    m[a] = among[a];
                }
            }
            m
        };
        let is_child_of = |i: usize, set: &[bool]| parent(i).is_some_and(|p| set[p]);
        let is_desc_of = |i: usize, set: &[bool]| self.trace.ancestors(i).any(|a| set[a]);
        let is_sibling_of =
            |i: usize, set: &[usize]| parent(i).is_some_and(|p| set.iter().any(|&j| j != i && parent(j) == Some(p)));
        let pick =
            |from: &[usize], f: &dyn Fn(usize) -> bool| from.iter().copied().filter(|&i| f(i)).collect::<Vec<_>>();
        match op {
            And if !l.is_empty() && !r.is_empty() => union(l, r),
            And => vec![],
            Union => union(l, r),
            Child => pick(r, &|i| is_child_of(i, &in_l)),
            NotChild => pick(r, &|i| !is_child_of(i, &in_l)),
            Parent => {
                let m = parents_of(l, &in_r);
                pick(r, &|i| m[i])
            }
            NotParent => {
                let m = parents_of(l, &in_r);
                pick(r, &|i| !m[i])
            }
            Descendant => pick(r, &|i| is_desc_of(i, &in_l)),
            NotDescendant => pick(r, &|i| !is_desc_of(i, &in_l)),
            Ancestor => {
                let m = ancestors_of(l, &in_r);
                pick(r, &|i| m[i])
            }
            NotAncestor => {
                let m = ancestors_of(l, &in_r);
                pick(r, &|i| !m[i])
            }
            Sibling => pick(r, &|i| is_sibling_of(i, l)),
            NotSibling => pick(r, &|i| !is_sibling_of(i, l)),
            UnionSibling => union(&pick(r, &|i| is_sibling_of(i, l)), &pick(l, &|i| is_sibling_of(i, r))),
            UnionChild => {
                let m = parents_of(r, &in_l);
                union(&pick(l, &|i| m[i]), &pick(r, &|i| is_child_of(i, &in_l)))
            }
            UnionParent => {
                let m = parents_of(l, &in_r);
                union(&pick(r, &|i| m[i]), &pick(l, &|i| is_child_of(i, &in_r)))
            }
            UnionDescendant => {
                let m = ancestors_of(r, &in_l);
                union(&pick(l, &|i| m[i]), &pick(r, &|i| is_desc_of(i, &in_l)))
            }
            UnionAncestor => {
                let m = ancestors_of(l, &in_r);
                union(&pick(r, &|i| m[i]), &pick(l, &|i| is_desc_of(i, &in_r)))
            }
        }
    }
}

/// The spans of several spansets as one sorted list (Tempo errors on more than one spanset
/// under a structural operator; we merge them).
fn flatten(sets: Vec<Set>) -> Vec<usize> {
    let mut v: Vec<usize> = sets.into_iter().flat_map(|s| s.spans).collect();
    v.sort_unstable();
    v.dedup();
    v
}
