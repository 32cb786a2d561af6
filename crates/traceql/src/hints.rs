//! Conditions a store can check against a block's index before reading any trace.

use telltale_model::{SpanKind, StatusCode};

use crate::ast::*;

/// One condition that some span of every matching trace satisfies.
#[derive(Debug, Clone, PartialEq)]
pub enum Hint {
    /// A span's resource has `service.name` equal to this.
    ServiceName(String),
    /// A span has this name.
    SpanName(String),
    /// A span lasts at least this many nanoseconds.
    MinDuration(i64),
    /// A span has this status.
    Status(StatusCode),
    /// A span has this kind.
    Kind(SpanKind),
    /// A span (or its resource, per `scope`) has string attribute `key` equal to `value`.
    Attribute {
        /// [`Scope::Span`], [`Scope::Resource`], or [`Scope::None`] for either.
        scope: Scope,
        /// The attribute's name.
        key: String,
        /// Its string value.
        value: String,
    },
}

/// What [`crate::Query::hints`] returns: every listed condition holds for every trace the
/// query can match (each for at least one span, not necessarily the same span), so a block
/// whose index rules out any one of them can be skipped. Empty means "read everything".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hints {
    /// The conditions, all required.
    pub conditions: Vec<Hint>,
}

impl Hints {
    /// The service names required (`resource.service.name = "x"`, `trace:rootService = "x"`).
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().filter_map(|h| match h {
            Hint::ServiceName(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The largest minimum span duration required, in nanoseconds.
    pub fn min_duration(&self) -> Option<i64> {
        self.conditions
            .iter()
            .filter_map(|h| match h {
                Hint::MinDuration(d) => Some(*d),
                _ => None,
            })
            .max()
    }
}

pub(crate) fn collect(root: &RootExpr) -> Hints {
    let mut out = Vec::new();
    pipeline(&root.pipeline, &mut out);
    out.dedup();
    Hints { conditions: out }
}

fn pipeline(p: &Pipeline, out: &mut Vec<Hint>) {
    // Every spanset stage must keep a span for the pipeline to yield anything.
    for s in &p.stages {
        if let Stage::Spanset(e) = s {
            spanset(e, out);
        }
    }
}

fn spanset(e: &SpansetExpr, out: &mut Vec<Hint>) {
    use SpansetOp::*;
    match e {
        SpansetExpr::Filter(f) => field(f, out),
        SpansetExpr::Pipeline(p) => pipeline(p, out),
        SpansetExpr::Op { op, lhs, rhs } => match op {
            // Both sides must match something.
            And | Child | Parent | Descendant | Ancestor | Sibling | UnionChild | UnionParent | UnionDescendant
            | UnionAncestor | UnionSibling => {
                spanset(lhs, out);
                spanset(rhs, out);
            }
            // Only the right-hand side is returned; the left may be empty.
            NotChild | NotParent | NotDescendant | NotAncestor | NotSibling => spanset(rhs, out),
            Union => {}
        },
    }
}

fn field(e: &FieldExpr, out: &mut Vec<Hint>) {
    let FieldExpr::Binary { op, lhs, rhs } = e else { return };
    if *op == BinaryOp::And {
        field(lhs, out);
        field(rhs, out);
        return;
    }
    // Normalise `literal op field` to `field op' literal`.
    let (f, op, v) = match (&**lhs, &**rhs) {
        (FieldExpr::Static(s), f) => (f, flip(*op), s),
        (f, FieldExpr::Static(s)) => (f, *op, s),
        _ => return,
    };
    let hint = match (f, op, v) {
        (FieldExpr::Attribute(a), BinaryOp::Eq, Static::Str(s)) => {
            if a.name == "service.name" && matches!(a.scope, Scope::Resource) {
                Hint::ServiceName(s.clone())
            } else if matches!(a.scope, Scope::Span | Scope::Resource | Scope::None) {
                Hint::Attribute { scope: a.scope, key: a.name.clone(), value: s.clone() }
            } else {
                return;
            }
        }
        (FieldExpr::Intrinsic(Intrinsic::Name | Intrinsic::RootName), BinaryOp::Eq, Static::Str(s)) => {
            Hint::SpanName(s.clone())
        }
        (FieldExpr::Intrinsic(Intrinsic::RootService), BinaryOp::Eq, Static::Str(s)) => Hint::ServiceName(s.clone()),
        (FieldExpr::Intrinsic(Intrinsic::Status), BinaryOp::Eq, Static::Status(s)) => Hint::Status(*s),
        (FieldExpr::Intrinsic(Intrinsic::Kind), BinaryOp::Eq, Static::Kind(k)) => Hint::Kind(*k),
        (FieldExpr::Intrinsic(Intrinsic::Duration), op, v) => {
            let ns = match v {
                Static::Duration(d) => *d,
                Static::Int(i) => *i,
                Static::Float(f) if f.is_finite() => f.ceil() as i64,
                _ => return,
            };
            match op {
                BinaryOp::Gt => Hint::MinDuration(ns.saturating_add(1)),
                BinaryOp::Gte | BinaryOp::Eq => Hint::MinDuration(ns),
                _ => return,
            }
        }
        _ => return,
    };
    out.push(hint);
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        // A regex's pattern must be on the right; anything else is symmetric or not a hint.
        BinaryOp::Regex | BinaryOp::NotRegex => BinaryOp::Add,
        other => other,
    }
}
