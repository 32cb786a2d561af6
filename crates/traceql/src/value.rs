//! Run-time values and Tempo's operator semantics: comparisons between different types are
//! false, a missing attribute (`Nil`) compares false with everything, numbers of different
//! types compare as floats, arrays match when any element does (all elements for `!=`, `!~`).

use std::fmt;

use regex::Regex;
use telltale_model::{AttrValue, SpanKind, StatusCode};

use crate::ast::{fmt_duration, BinaryOp, Static, UnaryOp};

/// A value read from a span or computed from one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Missing.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// Nanoseconds.
    Duration(i64),
    /// A span status.
    Status(StatusCode),
    /// A span kind.
    Kind(SpanKind),
    /// An array attribute (scalars only).
    Array(Vec<Value>),
}

impl fmt::Display for Value {
    /// The form label values and select()ed attributes take: strings as they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Duration(d) => f.write_str(&fmt_duration(*d)),
            Value::Status(s) => f.write_str(s.name()),
            Value::Kind(k) => f.write_str(k.name()),
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    v.fmt(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Value {
    /// True for `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The value as a float, for numbers (durations in nanoseconds).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Duration(d) => Some(*d as f64),
            _ => None,
        }
    }

    pub(crate) fn from_static(s: &Static) -> Value {
        match s {
            Static::Nil => Value::Nil,
            Static::Bool(b) => Value::Bool(*b),
            Static::Int(i) => Value::Int(*i),
            Static::Float(f) => Value::Float(*f),
            Static::Str(s) => Value::Str(s.clone()),
            Static::Duration(d) => Value::Duration(*d),
            Static::Status(s) => Value::Status(*s),
            Static::Kind(k) => Value::Kind(*k),
        }
    }

    pub(crate) fn from_attr(v: &AttrValue) -> Value {
        match v {
            AttrValue::Str(s) => Value::Str(s.clone()),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Int(i) => Value::Int(*i),
            AttrValue::Double(d) => Value::Float(*d),
            AttrValue::Array(a) => Value::Array(
                a.iter().map(Value::from_attr).filter(|v| !matches!(v, Value::Nil | Value::Array(_))).collect(),
            ),
            AttrValue::Bytes(_) | AttrValue::Map(_) | AttrValue::Empty => Value::Nil,
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_) | Value::Duration(_))
    }

    /// A key for grouping: equal values give equal keys.
    pub(crate) fn group_key(&self) -> String {
        format!("{self:?}")
    }
}

/// `op v`.
pub(crate) fn unary(op: UnaryOp, v: Value) -> Value {
    match (op, v) {
        (UnaryOp::Exists, v) => Value::Bool(!v.is_nil()),
        (UnaryOp::NotExists, v) => Value::Bool(v.is_nil()),
        (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (UnaryOp::Neg, Value::Int(i)) => Value::Int(i.wrapping_neg()),
        (UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
        (UnaryOp::Neg, Value::Duration(d)) => Value::Duration(d.wrapping_neg()),
        (UnaryOp::Not, _) => Value::Bool(false),
        (UnaryOp::Neg, _) => Value::Nil,
    }
}

fn result_of_mismatch(op: BinaryOp) -> Value {
    if op.is_boolean() {
        Value::Bool(false)
    } else {
        Value::Nil
    }
}

/// `l op r`; `regex` gives the compiled, fully anchored form of a pattern.
pub(crate) fn binary(op: BinaryOp, l: &Value, r: &Value, regex: &dyn Fn(&str) -> Option<Regex>) -> Value {
    use BinaryOp::*;
    match (l, r) {
        (Value::Array(_), Value::Array(_)) => result_of_mismatch(op),
        (Value::Array(items), scalar) | (scalar, Value::Array(items)) => {
            if !op.is_boolean() || matches!(op, And | Or) {
                return result_of_mismatch(op);
            }
            let array_left = matches!(l, Value::Array(_));
            let test = |e: &Value| {
                let v = if array_left { binary(op, e, scalar, regex) } else { binary(op, scalar, e, regex) };
                v == Value::Bool(true)
            };
            let all = matches!(op, Neq | NotRegex);
            if items.is_empty() {
                return Value::Bool(false);
            }
            Value::Bool(if all { items.iter().all(test) } else { items.iter().any(test) })
        }
        (Value::Nil, _) | (_, Value::Nil) => result_of_mismatch(op),
        (Value::Str(a), Value::Str(b)) => match op {
            Eq => Value::Bool(a == b),
            Neq => Value::Bool(a != b),
            Lt => Value::Bool(a < b),
            Lte => Value::Bool(a <= b),
            Gt => Value::Bool(a > b),
            Gte => Value::Bool(a >= b),
            Regex | NotRegex => match regex(b) {
                Some(re) => Value::Bool(re.is_match(a) == (op == Regex)),
                None => Value::Bool(false),
            },
            _ => result_of_mismatch(op),
        },
        (Value::Bool(a), Value::Bool(b)) => match op {
            Eq => Value::Bool(a == b),
            Neq => Value::Bool(a != b),
            And => Value::Bool(*a && *b),
            Or => Value::Bool(*a || *b),
            _ => result_of_mismatch(op),
        },
        (Value::Status(a), Value::Status(b)) => match op {
            Eq => Value::Bool(a == b),
            Neq => Value::Bool(a != b),
            _ => result_of_mismatch(op),
        },
        (Value::Kind(a), Value::Kind(b)) => match op {
            Eq => Value::Bool(a == b),
            Neq => Value::Bool(a != b),
            _ => result_of_mismatch(op),
        },
        (Value::Int(a), Value::Int(b)) => int_op(op, *a, *b).unwrap_or(Value::Nil),
        (Value::Duration(a), Value::Duration(b)) => match op {
            Add => Value::Duration(a.wrapping_add(*b)),
            Sub => Value::Duration(a.wrapping_sub(*b)),
            _ => match int_op(op, *a, *b) {
                Some(Value::Int(_)) => float_op(op, *a as f64, *b as f64),
                Some(v) => v,
                None => Value::Nil,
            },
        },
        (a, b) if a.numeric() && b.numeric() => {
            float_op(op, a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN))
        }
        _ => result_of_mismatch(op),
    }
}

fn int_op(op: BinaryOp, a: i64, b: i64) -> Option<Value> {
    use BinaryOp::*;
    Some(match op {
        Add => Value::Int(a.wrapping_add(b)),
        Sub => Value::Int(a.wrapping_sub(b)),
        Mul => Value::Int(a.wrapping_mul(b)),
        Div => Value::Int(a.checked_div(b)?),
        Mod => Value::Int(a.checked_rem(b)?),
        Pow => match u32::try_from(b) {
            Ok(e) => Value::Int(a.checked_pow(e).unwrap_or(i64::MAX)),
            Err(_) => Value::Float((a as f64).powf(b as f64)),
        },
        Eq => Value::Bool(a == b),
        Neq => Value::Bool(a != b),
        Lt => Value::Bool(a < b),
        Lte => Value::Bool(a <= b),
        Gt => Value::Bool(a > b),
        Gte => Value::Bool(a >= b),
        Regex | NotRegex | And | Or => Value::Bool(false),
    })
}

fn float_op(op: BinaryOp, a: f64, b: f64) -> Value {
    use BinaryOp::*;
    match op {
        Add => Value::Float(a + b),
        Sub => Value::Float(a - b),
        Mul => Value::Float(a * b),
        Div => Value::Float(a / b),
        Mod => Value::Float(a % b),
        Pow => Value::Float(a.powf(b)),
        Eq => Value::Bool(a == b),
        Neq => Value::Bool(a != b),
        Lt => Value::Bool(a < b),
        Lte => Value::Bool(a <= b),
        Gt => Value::Bool(a > b),
        Gte => Value::Bool(a >= b),
        Regex | NotRegex | And | Or => Value::Bool(false),
    }
}
