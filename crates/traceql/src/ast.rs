//! The parsed form of a TraceQL query. `Display` prints a canonical query that parses back to
//! the same tree (new-style intrinsics such as `span:duration`, every binary operation in
//! parentheses).

use std::fmt::{self, Display};

use telltale_model::{SpanKind, StatusCode};

/// A whole query: a spanset pipeline, optionally turned into time series by a metrics stage.
#[derive(Debug, Clone, PartialEq)]
pub struct RootExpr {
    /// The spanset pipeline (`{ ... } | by(...) | count() > 2`).
    pub pipeline: Pipeline,
    /// The metrics stage (`| rate() by (...)`), for TraceQL metrics queries.
    pub metrics: Option<MetricsAggregate>,
}

/// Stages separated by `|`; each takes the spansets of the stage before.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The stages, first to last; never empty.
    pub stages: Vec<Stage>,
}

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Spanset filters combined with spanset operators.
    Spanset(SpansetExpr),
    /// `count() > 2`: keeps the spansets whose aggregate comparison holds.
    ScalarFilter {
        /// The comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`).
        op: BinaryOp,
        /// Left side.
        lhs: ScalarExpr,
        /// Right side.
        rhs: ScalarExpr,
    },
    /// `by(expr)`: splits each spanset into one per distinct value.
    By(FieldExpr),
    /// `select(a, b)`: attaches these fields' values to each span of the result.
    Select(Vec<FieldRef>),
    /// `coalesce()`: merges the spansets back into one.
    Coalesce,
}

/// Spanset filters combined with spanset operators.
#[derive(Debug, Clone, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`: the spans for which `expr` is true (`{}` is `{ true }`).
    Filter(FieldExpr),
    /// `lhs op rhs`.
    Op {
        /// The operator.
        op: SpansetOp,
        /// Left operand.
        lhs: Box<SpansetExpr>,
        /// Right operand.
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline of more than one stage used as an operand.
    Pipeline(Pipeline),
}

/// Operators between spansets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpansetOp {
    /// `&&`: both sides match; the spans of both.
    And,
    /// `||`: either side matches; the spans of both.
    Union,
    /// `>`: right-hand spans that are children of a left-hand span.
    Child,
    /// `<`: right-hand spans that are parents of a left-hand span.
    Parent,
    /// `>>`: right-hand spans that are descendants of a left-hand span.
    Descendant,
    /// `<<`: right-hand spans that are ancestors of a left-hand span.
    Ancestor,
    /// `~`: right-hand spans that are siblings of a left-hand span.
    Sibling,
    /// `!>`: right-hand spans that are not children of any left-hand span.
    NotChild,
    /// `!<`: right-hand spans that are not parents of any left-hand span.
    NotParent,
    /// `!>>`: right-hand spans that are not descendants of any left-hand span.
    NotDescendant,
    /// `!<<`: right-hand spans that are not ancestors of any left-hand span.
    NotAncestor,
    /// `!~`: right-hand spans that are not siblings of any left-hand span.
    NotSibling,
    /// `&>`: parents and children of such pairs.
    UnionChild,
    /// `&<`: children and parents of such pairs.
    UnionParent,
    /// `&>>`: ancestors and descendants of such pairs.
    UnionDescendant,
    /// `&<<`: descendants and ancestors of such pairs.
    UnionAncestor,
    /// `&~`: both siblings of such pairs.
    UnionSibling,
}

impl SpansetOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Union => "||",
            SpansetOp::Child => ">",
            SpansetOp::Parent => "<",
            SpansetOp::Descendant => ">>",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
        }
    }
}

/// An expression evaluated per span inside `{ }`, in `by()` and in aggregates.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldExpr {
    /// A literal.
    Static(Static),
    /// An attribute (`span.http.method`, `.foo`).
    Attribute(Attribute),
    /// An intrinsic (`span:duration`, `name`).
    Intrinsic(Intrinsic),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<FieldExpr>,
        /// Right operand.
        rhs: Box<FieldExpr>,
    },
    /// `op expr`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<FieldExpr>,
    },
}

/// Binary operators of field and scalar expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `=~` (fully anchored)
    Regex,
    /// `!~` (fully anchored)
    NotRegex,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinaryOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::Regex => "=~",
            BinaryOp::NotRegex => "!~",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }

    /// True for the operators that produce a boolean.
    pub fn is_boolean(self) -> bool {
        !self.is_arithmetic()
    }

    /// True for `+ - * / % ^`.
    pub fn is_arithmetic(self) -> bool {
        matches!(self, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Pow)
    }

    /// True for `= != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Neq | BinaryOp::Lt | BinaryOp::Lte | BinaryOp::Gt | BinaryOp::Gte)
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `x != nil`
    Exists,
    /// `x = nil`
    NotExists,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Static {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A duration in nanoseconds (`1.5s`).
    Duration(i64),
    /// `ok`, `error`, `unset`.
    Status(StatusCode),
    /// `server`, `client`, ...
    Kind(SpanKind),
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `.x`: the span's attributes, then its resource's.
    None,
    /// `span.x`
    Span,
    /// `resource.x`
    Resource,
    /// `event.x`: any event of the span.
    Event,
    /// `link.x`: any link of the span.
    Link,
    /// `instrumentation.x`: the instrumentation scope's attributes.
    Instrumentation,
}

impl Scope {
    /// The prefix written before the attribute's name (`span.`, or `.` for no scope).
    pub fn prefix(self) -> &'static str {
        match self {
            Scope::None => ".",
            Scope::Span => "span.",
            Scope::Resource => "resource.",
            Scope::Event => "event.",
            Scope::Link => "link.",
            Scope::Instrumentation => "instrumentation.",
        }
    }
}

/// A scoped attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The scope.
    pub scope: Scope,
    /// The name (`http.request.method`).
    pub name: String,
}

/// Values every span has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `span:name` (`name`)
    Name,
    /// `span:status` (`status`)
    Status,
    /// `span:statusMessage` (`statusMessage`)
    StatusMessage,
    /// `span:kind` (`kind`)
    Kind,
    /// `span:duration` (`duration`)
    Duration,
    /// `span:childCount`
    ChildCount,
    /// `span:id` (hex)
    SpanId,
    /// `span:parentID` (hex)
    ParentId,
    /// `trace:id` (hex)
    TraceId,
    /// `trace:duration` (`traceDuration`)
    TraceDuration,
    /// `trace:rootName` (`rootName`)
    RootName,
    /// `trace:rootService` (`rootServiceName`)
    RootService,
    /// `event:name`
    EventName,
    /// `event:timeSinceStart`
    EventTimeSinceStart,
    /// `link:traceID`
    LinkTraceId,
    /// `link:spanID`
    LinkSpanId,
    /// `instrumentation:name`
    InstrumentationName,
    /// `instrumentation:version`
    InstrumentationVersion,
}

impl Intrinsic {
    /// Every intrinsic, in the order completions list them.
    pub const ALL: [Intrinsic; 18] = [
        Intrinsic::Name,
        Intrinsic::Status,
        Intrinsic::StatusMessage,
        Intrinsic::Kind,
        Intrinsic::Duration,
        Intrinsic::ChildCount,
        Intrinsic::SpanId,
        Intrinsic::ParentId,
        Intrinsic::TraceId,
        Intrinsic::TraceDuration,
        Intrinsic::RootName,
        Intrinsic::RootService,
        Intrinsic::EventName,
        Intrinsic::EventTimeSinceStart,
        Intrinsic::LinkTraceId,
        Intrinsic::LinkSpanId,
        Intrinsic::InstrumentationName,
        Intrinsic::InstrumentationVersion,
    ];

    /// The scoped (new) syntax: `span:duration`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Name => "span:name",
            Intrinsic::Status => "span:status",
            Intrinsic::StatusMessage => "span:statusMessage",
            Intrinsic::Kind => "span:kind",
            Intrinsic::Duration => "span:duration",
            Intrinsic::ChildCount => "span:childCount",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::TraceDuration => "trace:duration",
            Intrinsic::RootName => "trace:rootName",
            Intrinsic::RootService => "trace:rootService",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
        }
    }

    /// The old unscoped name (`duration`), for the intrinsics that have one.
    pub fn unscoped_name(self) -> Option<&'static str> {
        Some(match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootService => "rootServiceName",
            _ => return None,
        })
    }

    /// Resolves `scope:name` (`scope` is `span`, `trace`, `event`, `link` or `instrumentation`).
    pub fn scoped(scope: &str, name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|i| i.as_str().split_once(':') == Some((scope, name)))
    }

    /// Resolves an old unscoped name (`duration`, `rootServiceName`).
    pub fn unscoped(name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|i| i.unscoped_name() == Some(name))
    }
}

/// An attribute or intrinsic: what `select()`, `by()` of metrics and `*_over_time()` take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRef {
    /// An attribute.
    Attribute(Attribute),
    /// An intrinsic.
    Intrinsic(Intrinsic),
}

impl FieldRef {
    /// The same as a field expression.
    pub fn to_expr(&self) -> FieldExpr {
        match self {
            FieldRef::Attribute(a) => FieldExpr::Attribute(a.clone()),
            FieldRef::Intrinsic(i) => FieldExpr::Intrinsic(*i),
        }
    }
}

/// Aggregates over a spanset (`count()`, `avg(duration)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// `count()`
    Count,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `sum(x)`
    Sum,
}

impl AggregateOp {
    /// The function's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Count => "count",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Sum => "sum",
        }
    }
}

/// One side of a scalar filter: aggregates and literals combined with arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarExpr {
    /// A literal number or duration.
    Static(Static),
    /// An aggregate over the spanset; `expr` is `None` for `count()`.
    Aggregate {
        /// The function.
        op: AggregateOp,
        /// Its argument.
        expr: Option<FieldExpr>,
    },
    /// `lhs op rhs` with an arithmetic operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<ScalarExpr>,
        /// Right operand.
        rhs: Box<ScalarExpr>,
    },
}

/// The first stage of a TraceQL metrics query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsAggregate {
    /// The function.
    pub op: MetricsOp,
    /// `by(...)` fields; one series per distinct combination of values.
    pub by: Vec<FieldRef>,
}

/// TraceQL metrics functions.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsOp {
    /// `rate()`: spans per second.
    Rate,
    /// `count_over_time()`: spans per step.
    CountOverTime,
    /// `min_over_time(x)`
    MinOverTime(FieldRef),
    /// `max_over_time(x)`
    MaxOverTime(FieldRef),
    /// `avg_over_time(x)`
    AvgOverTime(FieldRef),
    /// `sum_over_time(x)`
    SumOverTime(FieldRef),
    /// `quantile_over_time(x, q...)`
    QuantileOverTime(FieldRef, Vec<f64>),
    /// `histogram_over_time(x)`
    HistogramOverTime(FieldRef),
}

impl MetricsOp {
    /// The function's name.
    pub fn name(&self) -> &'static str {
        match self {
            MetricsOp::Rate => "rate",
            MetricsOp::CountOverTime => "count_over_time",
            MetricsOp::MinOverTime(_) => "min_over_time",
            MetricsOp::MaxOverTime(_) => "max_over_time",
            MetricsOp::AvgOverTime(_) => "avg_over_time",
            MetricsOp::SumOverTime(_) => "sum_over_time",
            MetricsOp::QuantileOverTime(..) => "quantile_over_time",
            MetricsOp::HistogramOverTime(_) => "histogram_over_time",
        }
    }

    /// The field the function reads, if it reads one.
    pub fn field(&self) -> Option<&FieldRef> {
        match self {
            MetricsOp::Rate | MetricsOp::CountOverTime => None,
            MetricsOp::MinOverTime(f)
            | MetricsOp::MaxOverTime(f)
            | MetricsOp::AvgOverTime(f)
            | MetricsOp::SumOverTime(f)
            | MetricsOp::QuantileOverTime(f, _)
            | MetricsOp::HistogramOverTime(f) => Some(f),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Printing

/// True for characters that end an unquoted attribute name (Tempo's `isAttributeRune`).
pub(crate) fn ends_attribute(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',')
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scope.prefix())?;
        let plain = !self.name.is_empty()
            && !self.name.chars().any(|c| ends_attribute(c) || c == '"' || c == '\\' || c.is_control())
            && (self.scope != Scope::None || !self.name.starts_with(|c: char| c.is_ascii_digit()));
        if plain {
            f.write_str(&self.name)
        } else {
            // Tempo's quoted names take only `\"` and `\\` as escapes.
            f.write_str("\"")?;
            for c in self.name.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")
        }
    }
}

impl fmt::Display for Intrinsic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldRef::Attribute(a) => a.fmt(f),
            FieldRef::Intrinsic(i) => i.fmt(f),
        }
    }
}

/// Prints a duration in the largest unit that keeps it exact (`1500ms`, `2s`, `7ns`).
pub(crate) fn fmt_duration(ns: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if ns == 0 {
        return "0s".into();
    }
    for (size, unit) in UNITS {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

impl fmt::Display for Static {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Static::Nil => f.write_str("nil"),
            Static::Bool(b) => write!(f, "{b}"),
            // The one integer without a literal (its negation overflows).
            Static::Int(i64::MIN) => f.write_str("minInt"),
            Static::Int(i) => write!(f, "{i}"),
            Static::Float(x) => write!(f, "{x:?}"),
            Static::Str(s) => write_quoted(f, s),
            Static::Duration(d) => f.write_str(&fmt_duration(*d)),
            Static::Status(s) => f.write_str(s.name()),
            Static::Kind(k) => f.write_str(k.name()),
        }
    }
}

impl fmt::Display for FieldExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldExpr::Static(s) => s.fmt(f),
            FieldExpr::Attribute(a) => a.fmt(f),
            FieldExpr::Intrinsic(i) => i.fmt(f),
            FieldExpr::Binary { op, lhs, rhs } => write!(f, "({lhs} {} {rhs})", op.as_str()),
            FieldExpr::Unary { op: UnaryOp::Neg, expr } => write!(f, "-({expr})"),
            FieldExpr::Unary { op: UnaryOp::Not, expr } => write!(f, "!({expr})"),
            FieldExpr::Unary { op: UnaryOp::Exists, expr } => write!(f, "({expr} != nil)"),
            FieldExpr::Unary { op: UnaryOp::NotExists, expr } => write!(f, "({expr} = nil)"),
        }
    }
}

impl fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarExpr::Static(s) => s.fmt(f),
            ScalarExpr::Aggregate { op, expr: None } => write!(f, "{}()", op.as_str()),
            ScalarExpr::Aggregate { op, expr: Some(e) } => write!(f, "{}({e})", op.as_str()),
            ScalarExpr::Binary { op, lhs, rhs } => write!(f, "({lhs} {} {rhs})", op.as_str()),
        }
    }
}

impl fmt::Display for SpansetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))) => f.write_str("{ }"),
            SpansetExpr::Filter(e) => write!(f, "{{ {e} }}"),
            SpansetExpr::Op { op, lhs, rhs } => write!(f, "({lhs} {} {rhs})", op.as_str()),
            SpansetExpr::Pipeline(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(s) => s.fmt(f),
            Stage::ScalarFilter { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str()),
            Stage::By(e) => write!(f, "by({e})"),
            Stage::Select(fields) => {
                f.write_str("select(")?;
                write_list(f, fields)?;
                f.write_str(")")
            }
            Stage::Coalesce => f.write_str("coalesce()"),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, fields: &[FieldRef]) -> fmt::Result {
    for (i, x) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        x.fmt(f)?;
    }
    Ok(())
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            s.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for MetricsAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.name())?;
        f.write_str("(")?;
        if let Some(field) = self.op.field() {
            field.fmt(f)?;
        }
        if let MetricsOp::QuantileOverTime(_, qs) = &self.op {
            for q in qs {
                write!(f, ", {q:?}")?;
            }
        }
        f.write_str(")")?;
        if !self.by.is_empty() {
            f.write_str(" by (")?;
            write_list(f, &self.by)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for RootExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pipeline.fmt(f)?;
        if let Some(m) = &self.metrics {
            write!(f, " | {m}")?;
        }
        Ok(())
    }
}
