//! The parsed form of a LogQL query.

use regex::Regex;
use telltale_model::Matcher;

use crate::pipeline::{LabelFilter, Stage};

/// A whole query: a log query (streams) or a metric query (samples).
#[derive(Debug, Clone)]
pub enum Expr {
    /// `{...} | pipeline`: returns log lines.
    Log(LogExpr),
    /// `count_over_time({...}[5m])` and the other range aggregations.
    Range(Box<RangeAgg>),
    /// `sum by (x) (...)`, `topk(3, ...)`.
    Vector(Box<VectorAgg>),
    /// `a + b`, `a > bool 1`, `a and b`.
    Binary(Box<BinaryExpr>),
    /// A number literal.
    Number(f64),
    /// `vector(1)`.
    VectorOf(f64),
    /// `label_replace(v, "dst", "replacement", "src", "regex")`.
    LabelReplace(Box<LabelReplace>),
}

/// A stream selector with its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    /// The selector's matchers.
    pub matchers: Vec<Matcher>,
    /// Pipeline stages in order.
    pub stages: Vec<Stage>,
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RangeOp {
    Count,
    Rate,
    Bytes,
    BytesRate,
    Absent,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Stdvar,
    Quantile,
    First,
    Last,
    RateCounter,
}

impl RangeOp {
    pub(crate) fn from_name(s: &str) -> Option<RangeOp> {
        Some(match s {
            "count_over_time" => RangeOp::Count,
            "rate" => RangeOp::Rate,
            "bytes_over_time" => RangeOp::Bytes,
            "bytes_rate" => RangeOp::BytesRate,
            "absent_over_time" => RangeOp::Absent,
            "sum_over_time" => RangeOp::Sum,
            "avg_over_time" => RangeOp::Avg,
            "min_over_time" => RangeOp::Min,
            "max_over_time" => RangeOp::Max,
            "stddev_over_time" => RangeOp::Stddev,
            "stdvar_over_time" => RangeOp::Stdvar,
            "quantile_over_time" => RangeOp::Quantile,
            "first_over_time" => RangeOp::First,
            "last_over_time" => RangeOp::Last,
            "rate_counter" => RangeOp::RateCounter,
            _ => return None,
        })
    }

    /// Whether the function needs `| unwrap label` (it aggregates values, not lines).
    pub fn needs_unwrap(self) -> bool {
        !matches!(self, RangeOp::Count | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Absent) && self != RangeOp::Rate
    }
}

/// How `| unwrap` turns a label into a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The value as a float.
    Float,
    /// `duration(label)` / `duration_seconds(label)`: a Go duration in seconds.
    Duration,
    /// `bytes(label)`: a size like `20MB` in bytes.
    Bytes,
}

/// `| unwrap [conv(]label[)]` and the label filters after it.
#[derive(Debug, Clone)]
pub struct Unwrap {
    /// The label to read.
    pub label: String,
    /// How to read it.
    pub conversion: Conversion,
    /// Filters applied after unwrapping (typically `| __error__=""`).
    pub post_filters: Vec<LabelFilter>,
}

/// `by (...)` or `without (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// The label names.
    pub labels: Vec<String>,
}

/// A range aggregation over a log query.
#[derive(Debug, Clone)]
pub struct RangeAgg {
    /// The function.
    pub op: RangeOp,
    /// The log query it reads.
    pub log: LogExpr,
    /// The unwrap stage, for functions over values.
    pub unwrap: Option<Unwrap>,
    /// The window, in nanoseconds.
    pub range: i64,
    /// `offset`, in nanoseconds.
    pub offset: i64,
    /// `quantile_over_time`'s φ.
    pub param: Option<f64>,
    /// `by`/`without` of unwrapped range aggregations.
    pub grouping: Option<Grouping>,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub(crate) fn from_name(s: &str) -> Option<VectorOp> {
        Some(match s {
            "sum" => VectorOp::Sum,
            "avg" => VectorOp::Avg,
            "min" => VectorOp::Min,
            "max" => VectorOp::Max,
            "count" => VectorOp::Count,
            "stddev" => VectorOp::Stddev,
            "stdvar" => VectorOp::Stdvar,
            "topk" => VectorOp::Topk,
            "bottomk" => VectorOp::Bottomk,
            "sort" => VectorOp::Sort,
            "sort_desc" => VectorOp::SortDesc,
            _ => return None,
        })
    }
}

/// A vector aggregation.
#[derive(Debug, Clone)]
pub struct VectorAgg {
    /// The operator.
    pub op: VectorOp,
    /// `by`/`without`.
    pub grouping: Option<Grouping>,
    /// `topk`/`bottomk`'s k.
    pub param: Option<f64>,
    /// What it aggregates.
    pub expr: Expr,
}

/// Binary operators, loosest first in [`BinOp::precedence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Or,
    And,
    Unless,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinOp {
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le)
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And | BinOp::Unless)
    }
}

/// `on(...)`/`ignoring(...)` and `group_left`/`group_right`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// The labels named.
    pub labels: Vec<String>,
    /// `group_left` (Some(false)) or `group_right` (Some(true)), with extra labels to copy.
    pub group: Option<(bool, Vec<String>)>,
}

/// A binary operation.
#[derive(Debug, Clone)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinOp,
    /// Left side.
    pub lhs: Expr,
    /// Right side.
    pub rhs: Expr,
    /// `bool` modifier of comparisons.
    pub return_bool: bool,
    /// Label matching between two vectors.
    pub matching: VectorMatching,
}

/// `label_replace`'s arguments.
#[derive(Debug, Clone)]
pub struct LabelReplace {
    /// The vector.
    pub expr: Expr,
    /// Destination label.
    pub dst: String,
    /// Replacement template (`$1`).
    pub replacement: String,
    /// Source label.
    pub src: String,
    /// Anchored regular expression.
    pub regex: Regex,
}
