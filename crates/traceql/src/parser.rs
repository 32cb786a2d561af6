//! A recursive-descent parser following Tempo's grammar (`pkg/traceql/expr.y`): the same
//! precedence (spanset `&&`/`||` below structural operators; field `&&`/`||` at one level,
//! below comparisons, below `+ -`, below `* / %`, below `^`), the same literals and the same
//! "syntax error: unexpected X, expecting Y" messages where it can.

use telltale_model::{SpanKind, StatusCode};

use crate::ast::*;
use crate::error::{Error, Result};
use crate::lexer::{lex, Tok, Token};

/// Names of the TraceQL metrics functions.
pub(crate) const METRICS_FUNCTIONS: &[&str] = &[
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
];

pub(crate) fn parse_root(src: &str) -> Result<RootExpr> {
    let toks = lex(src).map_err(|(pos, msg)| Error::parse(src, pos, msg))?;
    let mut p = Parser { src, toks, i: 0 };
    let root = p.root()?;
    Ok(root)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
}

type PResult<T> = std::result::Result<T, (usize, String)>;

fn keyword(t: &Tok, word: &str) -> bool {
    matches!(t, Tok::Ident(w) if w == word)
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn unexpected<T>(&self, expecting: &str) -> PResult<T> {
        let what = self.peek().describe();
        if expecting.is_empty() {
            Err((self.pos(), format!("syntax error: unexpected {what}")))
        } else {
            Err((self.pos(), format!("syntax error: unexpected {what}, expecting {expecting}")))
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> PResult<()> {
        if *self.peek() == t {
            self.bump();
            Ok(())
        } else {
            self.unexpected(what)
        }
    }

    fn root(&mut self) -> Result<RootExpr> {
        let r = self.root_inner();
        r.map_err(|(pos, msg)| Error::parse(self.src, pos, msg))
    }

    fn root_inner(&mut self) -> PResult<RootExpr> {
        if *self.peek() == Tok::Eof {
            return self.unexpected("");
        }
        let (pipeline, metrics) = self.pipeline(false)?;
        let mut root = RootExpr { pipeline, metrics };
        if keyword(self.peek(), "with") {
            self.hints()?;
        }
        if *self.peek() != Tok::Eof {
            return self.unexpected("");
        }
        validate_root(&mut root)?;
        Ok(root)
    }

    /// `with(key = value, ...)`: Tempo's query hints; accepted and ignored.
    fn hints(&mut self) -> PResult<()> {
        self.bump();
        self.expect(Tok::LParen, "(")?;
        loop {
            if !matches!(self.peek(), Tok::Ident(_)) {
                return self.unexpected("IDENTIFIER");
            }
            self.bump();
            self.expect(Tok::Eq, "=")?;
            self.primary()?;
            if *self.peek() == Tok::Comma {
                self.bump();
                continue;
            }
            return self.expect(Tok::RParen, ")");
        }
    }

    /// Stages separated by `|`. At the top level a metrics function may end it; nested
    /// pipelines stop at `)`.
    fn pipeline(&mut self, nested: bool) -> PResult<(Pipeline, Option<MetricsAggregate>)> {
        let mut stages = Vec::new();
        if keyword(self.peek(), "coalesce") {
            return self.unexpected("");
        }
        stages.push(self.stage()?);
        while *self.peek() == Tok::Pipe {
            self.bump();
            if let Tok::Ident(w) = self.peek() {
                if METRICS_FUNCTIONS.contains(&w.as_str()) {
                    if nested {
                        return self.unexpected("");
                    }
                    let m = self.metrics()?;
                    return Ok((Pipeline { stages }, Some(m)));
                }
            }
            stages.push(self.stage()?);
        }
        Ok((Pipeline { stages }, None))
    }

    fn stage(&mut self) -> PResult<Stage> {
        match self.peek().clone() {
            Tok::LBrace => Ok(Stage::Spanset(self.spanset_expr()?)),
            Tok::LParen => {
                // Either a spanset expression or a parenthesised scalar expression: try the
                // first, and report whichever attempt got further.
                let save = self.i;
                match self.spanset_expr() {
                    Ok(s) if !is_scalar_continuation(self.peek()) => Ok(Stage::Spanset(s)),
                    Ok(_) => {
                        self.i = save;
                        self.scalar_filter()
                    }
                    Err(e1) => {
                        let reached = self.i;
                        self.i = save;
                        match self.scalar_filter() {
                            Ok(s) => Ok(s),
                            Err(e2) => Err(if reached >= self.i { e1 } else { e2 }),
                        }
                    }
                }
            }
            Tok::Ident(w) if w == "by" => {
                self.bump();
                self.expect(Tok::LParen, "(")?;
                let e = self.field_expr()?;
                self.expect(Tok::RParen, ")")?;
                Ok(Stage::By(e))
            }
            Tok::Ident(w) if w == "select" => {
                self.bump();
                self.expect(Tok::LParen, "(")?;
                let list = self.field_list()?;
                self.expect(Tok::RParen, ")")?;
                Ok(Stage::Select(list))
            }
            Tok::Ident(w) if w == "coalesce" => {
                self.bump();
                self.expect(Tok::LParen, "(")?;
                self.expect(Tok::RParen, ")")?;
                Ok(Stage::Coalesce)
            }
            Tok::Ident(w) if matches!(w.as_str(), "count" | "avg" | "min" | "max" | "sum") => self.scalar_filter(),
            Tok::Int(_) | Tok::Float(_) | Tok::Duration(_) | Tok::Sub => self.scalar_filter(),
            _ => self.unexpected("{ or ("),
        }
    }

    // ---- spanset expressions

    fn spanset_expr(&mut self) -> PResult<SpansetExpr> {
        let mut lhs = self.spanset_rel()?;
        loop {
            let op = match self.peek() {
                Tok::And => SpansetOp::And,
                Tok::Or => SpansetOp::Union,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.spanset_rel()?;
            lhs = SpansetExpr::Op { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn spanset_rel(&mut self) -> PResult<SpansetExpr> {
        let mut lhs = self.spanset_primary()?;
        loop {
            let op = match self.peek() {
                Tok::Gt => SpansetOp::Child,
                Tok::Lt => SpansetOp::Parent,
                Tok::Desc => SpansetOp::Descendant,
                Tok::Ance => SpansetOp::Ancestor,
                Tok::Sibl => SpansetOp::Sibling,
                Tok::NotChild => SpansetOp::NotChild,
                Tok::NotParent => SpansetOp::NotParent,
                Tok::NotDesc => SpansetOp::NotDescendant,
                Tok::NotAnce => SpansetOp::NotAncestor,
                Tok::Nre => SpansetOp::NotSibling,
                Tok::UnionChild => SpansetOp::UnionChild,
                Tok::UnionParent => SpansetOp::UnionParent,
                Tok::UnionDesc => SpansetOp::UnionDescendant,
                Tok::UnionAnce => SpansetOp::UnionAncestor,
                Tok::UnionSibl => SpansetOp::UnionSibling,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.spanset_primary()?;
            lhs = SpansetExpr::Op { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn spanset_primary(&mut self) -> PResult<SpansetExpr> {
        match self.peek() {
            Tok::LBrace => {
                self.bump();
                if *self.peek() == Tok::RBrace {
                    self.bump();
                    return Ok(SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))));
                }
                let e = self.field_expr()?;
                self.expect(Tok::RBrace, "}")?;
                Ok(SpansetExpr::Filter(e))
            }
            Tok::LParen => {
                self.bump();
                let (mut p, _) = self.pipeline(true)?;
                self.expect(Tok::RParen, ")")?;
                if p.stages.len() == 1 {
                    if let Stage::Spanset(_) = &p.stages[0] {
                        let Some(Stage::Spanset(s)) = p.stages.pop() else { unreachable!() };
                        return Ok(s);
                    }
                }
                Ok(SpansetExpr::Pipeline(p))
            }
            _ => self.unexpected("{ or ("),
        }
    }

    // ---- scalar filters

    fn scalar_filter(&mut self) -> PResult<Stage> {
        let start = self.pos();
        let lhs = self.scalar_add()?;
        let op = match self.peek() {
            Tok::Eq => BinaryOp::Eq,
            Tok::Neq => BinaryOp::Neq,
            Tok::Lt => BinaryOp::Lt,
            Tok::Lte => BinaryOp::Lte,
            Tok::Gt => BinaryOp::Gt,
            Tok::Gte => BinaryOp::Gte,
            _ => return self.unexpected("= or != or < or <= or > or >="),
        };
        self.bump();
        let rhs = self.scalar_add()?;
        if !has_aggregate(&lhs) && !has_aggregate(&rhs) {
            return Err((start, "scalar filters must compare an aggregate (count(), avg(...), ...)".into()));
        }
        Ok(Stage::ScalarFilter { op, lhs, rhs })
    }

    fn scalar_add(&mut self) -> PResult<ScalarExpr> {
        let mut lhs = self.scalar_mul()?;
        loop {
            let op = match self.peek() {
                Tok::Add => BinaryOp::Add,
                Tok::Sub => BinaryOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.scalar_mul()?;
            lhs = ScalarExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn scalar_mul(&mut self) -> PResult<ScalarExpr> {
        let mut lhs = self.scalar_pow()?;
        loop {
            let op = match self.peek() {
                Tok::Mul => BinaryOp::Mul,
                Tok::Div => BinaryOp::Div,
                Tok::Mod => BinaryOp::Mod,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.scalar_pow()?;
            lhs = ScalarExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn scalar_pow(&mut self) -> PResult<ScalarExpr> {
        let lhs = self.scalar_primary()?;
        if *self.peek() == Tok::Pow {
            self.bump();
            let rhs = self.scalar_pow()?;
            return Ok(ScalarExpr::Binary { op: BinaryOp::Pow, lhs: Box::new(lhs), rhs: Box::new(rhs) });
        }
        Ok(lhs)
    }

    fn scalar_primary(&mut self) -> PResult<ScalarExpr> {
        match self.peek().clone() {
            Tok::LParen => {
                self.bump();
                let e = self.scalar_add()?;
                self.expect(Tok::RParen, ")")?;
                Ok(e)
            }
            Tok::Sub => {
                self.bump();
                match self.scalar_primary()? {
                    ScalarExpr::Static(s) => match negate(&s) {
                        Some(n) => Ok(ScalarExpr::Static(n)),
                        None => Err((self.pos(), "illegal operation for the given type: -".into())),
                    },
                    e => Ok(ScalarExpr::Binary {
                        op: BinaryOp::Sub,
                        lhs: Box::new(ScalarExpr::Static(Static::Int(0))),
                        rhs: Box::new(e),
                    }),
                }
            }
            Tok::Int(i) => {
                self.bump();
                Ok(ScalarExpr::Static(Static::Int(i)))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(ScalarExpr::Static(Static::Float(f)))
            }
            Tok::Duration(d) => {
                self.bump();
                Ok(ScalarExpr::Static(Static::Duration(d)))
            }
            Tok::Ident(w) => {
                let op = match w.as_str() {
                    "count" => AggregateOp::Count,
                    "avg" => AggregateOp::Avg,
                    "min" => AggregateOp::Min,
                    "max" => AggregateOp::Max,
                    "sum" => AggregateOp::Sum,
                    _ => return self.unexpected(""),
                };
                self.bump();
                self.expect(Tok::LParen, "(")?;
                if op == AggregateOp::Count {
                    self.expect(Tok::RParen, ")")?;
                    return Ok(ScalarExpr::Aggregate { op, expr: None });
                }
                let e = self.field_expr()?;
                self.expect(Tok::RParen, ")")?;
                Ok(ScalarExpr::Aggregate { op, expr: Some(e) })
            }
            _ => self.unexpected(""),
        }
    }

    // ---- field expressions

    fn field_expr(&mut self) -> PResult<FieldExpr> {
        let mut lhs = self.field_cmp()?;
        loop {
            let op = match self.peek() {
                Tok::And => BinaryOp::And,
                Tok::Or => BinaryOp::Or,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.field_cmp()?;
            lhs = FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn field_cmp(&mut self) -> PResult<FieldExpr> {
        let mut lhs = self.field_add()?;
        loop {
            let op = match self.peek() {
                Tok::Eq => BinaryOp::Eq,
                Tok::Neq => BinaryOp::Neq,
                Tok::Lt => BinaryOp::Lt,
                Tok::Lte => BinaryOp::Lte,
                Tok::Gt => BinaryOp::Gt,
                Tok::Gte => BinaryOp::Gte,
                Tok::Re => BinaryOp::Regex,
                Tok::Nre => BinaryOp::NotRegex,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.field_add()?;
            let nil = |e: &FieldExpr| matches!(e, FieldExpr::Static(Static::Nil));
            lhs = match (op, nil(&lhs), nil(&rhs)) {
                (BinaryOp::Eq | BinaryOp::Neq, true, true) => FieldExpr::Static(Static::Bool(false)),
                (BinaryOp::Eq, false, true) => FieldExpr::Unary { op: UnaryOp::NotExists, expr: Box::new(lhs) },
                (BinaryOp::Eq, true, false) => FieldExpr::Unary { op: UnaryOp::NotExists, expr: Box::new(rhs) },
                (BinaryOp::Neq, false, true) => FieldExpr::Unary { op: UnaryOp::Exists, expr: Box::new(lhs) },
                (BinaryOp::Neq, true, false) => FieldExpr::Unary { op: UnaryOp::Exists, expr: Box::new(rhs) },
                _ => FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) },
            };
        }
    }

    fn field_add(&mut self) -> PResult<FieldExpr> {
        let mut lhs = self.field_mul()?;
        loop {
            let op = match self.peek() {
                Tok::Add => BinaryOp::Add,
                Tok::Sub => BinaryOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.field_mul()?;
            lhs = FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn field_mul(&mut self) -> PResult<FieldExpr> {
        let mut lhs = self.field_pow()?;
        loop {
            let op = match self.peek() {
                Tok::Mul => BinaryOp::Mul,
                Tok::Div => BinaryOp::Div,
                Tok::Mod => BinaryOp::Mod,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.field_pow()?;
            lhs = FieldExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
    }

    fn field_pow(&mut self) -> PResult<FieldExpr> {
        let lhs = self.field_unary()?;
        if *self.peek() == Tok::Pow {
            self.bump();
            let rhs = self.field_pow()?;
            return Ok(FieldExpr::Binary { op: BinaryOp::Pow, lhs: Box::new(lhs), rhs: Box::new(rhs) });
        }
        Ok(lhs)
    }

    fn field_unary(&mut self) -> PResult<FieldExpr> {
        match self.peek() {
            Tok::Sub => {
                let pos = self.pos();
                self.bump();
                match self.field_unary()? {
                    FieldExpr::Static(s) => match negate(&s) {
                        Some(n) => Ok(FieldExpr::Static(n)),
                        None => Err((pos, format!("illegal operation for the given type: -{s}"))),
                    },
                    e => Ok(FieldExpr::Unary { op: UnaryOp::Neg, expr: Box::new(e) }),
                }
            }
            Tok::Not => {
                self.bump();
                let e = self.field_unary()?;
                Ok(FieldExpr::Unary { op: UnaryOp::Not, expr: Box::new(e) })
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> PResult<FieldExpr> {
        let pos = self.pos();
        let idx = self.i;
        let t = self.bump();
        let s = match t {
            Tok::LParen => {
                let e = self.field_expr()?;
                self.expect(Tok::RParen, ")")?;
                return Ok(e);
            }
            Tok::Str(s) => Static::Str(s),
            Tok::Int(i) => Static::Int(i),
            Tok::Float(f) => Static::Float(f),
            Tok::Duration(d) => Static::Duration(d),
            Tok::Attr(scope, name) => return Ok(FieldExpr::Attribute(Attribute { scope, name })),
            Tok::Scoped(scope, name) => {
                return match Intrinsic::scoped(&scope, &name) {
                    Some(i) => Ok(FieldExpr::Intrinsic(i)),
                    None => Err((pos, format!("syntax error: unknown intrinsic {scope}:{name}"))),
                };
            }
            Tok::Ident(w) => {
                if let Some(i) = Intrinsic::unscoped(&w) {
                    return Ok(FieldExpr::Intrinsic(i));
                }
                match w.as_str() {
                    "true" => Static::Bool(true),
                    "false" => Static::Bool(false),
                    "nil" => Static::Nil,
                    "ok" => Static::Status(StatusCode::Ok),
                    "error" => Static::Status(StatusCode::Error),
                    "unset" => Static::Status(StatusCode::Unset),
                    "unspecified" => Static::Kind(SpanKind::Unspecified),
                    "internal" => Static::Kind(SpanKind::Internal),
                    "server" => Static::Kind(SpanKind::Server),
                    "client" => Static::Kind(SpanKind::Client),
                    "producer" => Static::Kind(SpanKind::Producer),
                    "consumer" => Static::Kind(SpanKind::Consumer),
                    "minInt" => Static::Int(i64::MIN),
                    "maxInt" => Static::Int(i64::MAX),
                    "parent" | "childCount" => return Err((pos, format!("intrinsic {w} is not supported"))),
                    _ if crate::lexer::KEYWORDS.contains(&w.as_str()) => {
                        self.i = idx;
                        return self.unexpected("");
                    }
                    _ => return Err((pos, format!("unknown identifier: {w}"))),
                }
            }
            _ => {
                self.i = idx;
                return self.unexpected("");
            }
        };
        Ok(FieldExpr::Static(s))
    }

    // ---- select(), by(), metrics

    fn field_ref(&mut self) -> PResult<FieldRef> {
        let pos = self.pos();
        let idx = self.i;
        match self.bump() {
            Tok::Attr(scope, name) => Ok(FieldRef::Attribute(Attribute { scope, name })),
            Tok::Scoped(scope, name) => match Intrinsic::scoped(&scope, &name) {
                Some(i) => Ok(FieldRef::Intrinsic(i)),
                None => Err((pos, format!("syntax error: unknown intrinsic {scope}:{name}"))),
            },
            Tok::Ident(w) if Intrinsic::unscoped(&w).is_some() => {
                Ok(FieldRef::Intrinsic(Intrinsic::unscoped(&w).expect("checked above")))
            }
            _ => {
                self.i = idx;
                self.unexpected("attribute or intrinsic")
            }
        }
    }

    fn field_list(&mut self) -> PResult<Vec<FieldRef>> {
        let mut list = vec![self.field_ref()?];
        while *self.peek() == Tok::Comma {
            self.bump();
            list.push(self.field_ref()?);
        }
        Ok(list)
    }

    fn metrics(&mut self) -> PResult<MetricsAggregate> {
        let Tok::Ident(name) = self.bump() else { unreachable!("checked by the caller") };
        self.expect(Tok::LParen, "(")?;
        let op = match name.as_str() {
            "rate" => MetricsOp::Rate,
            "count_over_time" => MetricsOp::CountOverTime,
            _ => {
                let f = self.field_ref()?;
                match name.as_str() {
                    "min_over_time" => MetricsOp::MinOverTime(f),
                    "max_over_time" => MetricsOp::MaxOverTime(f),
                    "avg_over_time" => MetricsOp::AvgOverTime(f),
                    "sum_over_time" => MetricsOp::SumOverTime(f),
                    "histogram_over_time" => MetricsOp::HistogramOverTime(f),
                    _ => {
                        let mut qs = Vec::new();
                        self.expect(Tok::Comma, ",")?;
                        loop {
                            match self.peek() {
                                Tok::Int(i) => qs.push(*i as f64),
                                Tok::Float(f) => qs.push(*f),
                                _ => return self.unexpected("FLOAT or INTEGER"),
                            }
                            self.bump();
                            if *self.peek() != Tok::Comma {
                                break;
                            }
                            self.bump();
                        }
                        MetricsOp::QuantileOverTime(f, qs)
                    }
                }
            }
        };
        self.expect(Tok::RParen, ")")?;
        let mut by = Vec::new();
        if keyword(self.peek(), "by") {
            self.bump();
            self.expect(Tok::LParen, "(")?;
            by = self.field_list()?;
            self.expect(Tok::RParen, ")")?;
        }
        Ok(MetricsAggregate { op, by })
    }
}

fn is_scalar_continuation(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq | Tok::Neq | Tok::Lte | Tok::Gte | Tok::Add | Tok::Sub | Tok::Mul | Tok::Div | Tok::Mod | Tok::Pow
    )
}

fn has_aggregate(e: &ScalarExpr) -> bool {
    match e {
        ScalarExpr::Static(_) => false,
        ScalarExpr::Aggregate { .. } => true,
        ScalarExpr::Binary { lhs, rhs, .. } => has_aggregate(lhs) || has_aggregate(rhs),
    }
}

fn negate(s: &Static) -> Option<Static> {
    Some(match s {
        Static::Int(i) => Static::Int(i.wrapping_neg()),
        Static::Float(f) => Static::Float(-f),
        Static::Duration(d) => Static::Duration(d.wrapping_neg()),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Validation: Tempo's type rules, checked once at parse time.

/// The type an expression resolves to; `Attr` is "known only at run time".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Attr,
    Nil,
    Int,
    Float,
    Duration,
    Str,
    Bool,
    Status,
    Kind,
}

impl Ty {
    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Duration)
    }
}

fn static_ty(s: &Static) -> Ty {
    match s {
        Static::Nil => Ty::Nil,
        Static::Bool(_) => Ty::Bool,
        Static::Int(_) => Ty::Int,
        Static::Float(_) => Ty::Float,
        Static::Str(_) => Ty::Str,
        Static::Duration(_) => Ty::Duration,
        Static::Status(_) => Ty::Status,
        Static::Kind(_) => Ty::Kind,
    }
}

fn intrinsic_ty(i: Intrinsic) -> Ty {
    match i {
        Intrinsic::Status => Ty::Status,
        Intrinsic::Kind => Ty::Kind,
        Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => Ty::Duration,
        Intrinsic::ChildCount => Ty::Int,
        _ => Ty::Str,
    }
}

fn op_valid(op: BinaryOp, t: Ty) -> bool {
    use BinaryOp::*;
    match t {
        Ty::Attr => true,
        Ty::Bool => matches!(op, And | Or | Eq | Neq),
        Ty::Int | Ty::Float | Ty::Duration => !matches!(op, Regex | NotRegex | And | Or),
        Ty::Str => matches!(op, Eq | Neq | Regex | NotRegex | Gt | Gte | Lt | Lte),
        Ty::Nil | Ty::Status | Ty::Kind => matches!(op, Eq | Neq),
    }
}

fn field_ty(e: &FieldExpr) -> PResult<Ty> {
    match e {
        FieldExpr::Static(s) => Ok(static_ty(s)),
        FieldExpr::Attribute(_) => Ok(Ty::Attr),
        FieldExpr::Intrinsic(i) => Ok(intrinsic_ty(*i)),
        FieldExpr::Unary { op, expr } => {
            let t = field_ty(expr)?;
            match op {
                UnaryOp::Exists | UnaryOp::NotExists => Ok(Ty::Bool),
                UnaryOp::Neg if t == Ty::Attr || t.numeric() => Ok(t),
                UnaryOp::Not if t == Ty::Attr || t == Ty::Bool => Ok(Ty::Bool),
                _ => Err((0, format!("illegal operation for the given type: {e}"))),
            }
        }
        FieldExpr::Binary { op, lhs, rhs } => {
            let (l, r) = (field_ty(lhs)?, field_ty(rhs)?);
            let matching = l == Ty::Attr
                || r == Ty::Attr
                || l == r
                || (l.numeric() && r.numeric())
                || l == Ty::Nil
                || r == Ty::Nil;
            if !matching {
                return Err((0, format!("binary operations must operate on the same type: {e}")));
            }
            if !op_valid(*op, l) || !op_valid(*op, r) {
                return Err((0, format!("illegal operation for the given types: {e}")));
            }
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) {
                match &**rhs {
                    FieldExpr::Static(Static::Str(p)) => {
                        if let Err(err) = telltale_model::anchored_regex(p) {
                            let first = err.to_string().lines().last().unwrap_or("").trim().to_string();
                            return Err((0, format!("invalid regex {p:?}: {first}")));
                        }
                    }
                    _ => return Err((0, format!("invalid type for =~ or !~: {rhs}"))),
                }
            }
            Ok(if op.is_boolean() {
                Ty::Bool
            } else if l == Ty::Attr || r == Ty::Attr {
                Ty::Attr
            } else if l == r {
                l
            } else {
                Ty::Float
            })
        }
    }
}

fn validate_numeric_field(e: &FieldExpr, what: &str) -> PResult<()> {
    let t = field_ty(e)?;
    if !(t == Ty::Attr || t.numeric()) {
        return Err((0, format!("{what} field expressions must resolve to a number type: {e}")));
    }
    Ok(())
}

fn validate_scalar(e: &ScalarExpr) -> PResult<()> {
    match e {
        ScalarExpr::Static(s) if static_ty(s).numeric() => Ok(()),
        ScalarExpr::Static(s) => Err((0, format!("scalar filters must compare numbers: {s}"))),
        ScalarExpr::Aggregate { expr: None, .. } => Ok(()),
        ScalarExpr::Aggregate { expr: Some(f), .. } => validate_numeric_field(f, "aggregate"),
        ScalarExpr::Binary { lhs, rhs, .. } => {
            validate_scalar(lhs)?;
            validate_scalar(rhs)
        }
    }
}

fn validate_pipeline(p: &Pipeline) -> PResult<()> {
    for s in &p.stages {
        match s {
            Stage::Spanset(e) => validate_spanset(e)?,
            Stage::ScalarFilter { lhs, rhs, .. } => {
                validate_scalar(lhs)?;
                validate_scalar(rhs)?;
            }
            Stage::By(e) => {
                field_ty(e)?;
                if !references_span(e) {
                    return Err((0, format!("grouping field expressions must reference the span: {e}")));
                }
            }
            Stage::Select(_) | Stage::Coalesce => {}
        }
    }
    Ok(())
}

fn references_span(e: &FieldExpr) -> bool {
    match e {
        FieldExpr::Static(_) => false,
        FieldExpr::Attribute(_) | FieldExpr::Intrinsic(_) => true,
        FieldExpr::Unary { expr, .. } => references_span(expr),
        FieldExpr::Binary { lhs, rhs, .. } => references_span(lhs) || references_span(rhs),
    }
}

fn validate_spanset(e: &SpansetExpr) -> PResult<()> {
    match e {
        SpansetExpr::Filter(f) => {
            let t = field_ty(f)?;
            if !matches!(t, Ty::Bool | Ty::Attr) {
                return Err((0, format!("span filter field expressions must resolve to a boolean: {f}")));
            }
            Ok(())
        }
        SpansetExpr::Op { lhs, rhs, .. } => {
            validate_spanset(lhs)?;
            validate_spanset(rhs)
        }
        SpansetExpr::Pipeline(p) => validate_pipeline(p),
    }
}

fn validate_root(r: &mut RootExpr) -> PResult<()> {
    validate_pipeline(&r.pipeline)?;
    if let Some(m) = &r.metrics {
        if let MetricsOp::QuantileOverTime(_, qs) = &m.op {
            if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
                return Err((0, format!("quantile must be between 0 and 1: {q}")));
            }
        }
        if let Some(FieldRef::Intrinsic(i)) = m.op.field() {
            if !intrinsic_ty(*i).numeric() {
                return Err((0, format!("{}() needs a number, {i} is not one", m.op.name())));
            }
        }
    }
    Ok(())
}
