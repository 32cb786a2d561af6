//! The dynamic data templates see, standing in for Go's reflected values.

use std::collections::BTreeMap;

/// A template value. Maps keep their keys sorted, as Go prints and ranges over them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's nil (and a missing value).
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer (Go `int`): number literals without a point, `len`, ...
    Int(i64),
    /// A float (Go `float64`): sample values, `$value`.
    Float(f64),
    /// A string.
    Str(String),
    /// A string already safe for HTML (`safeHtml`); prints unescaped in HTML mode.
    Safe(String),
    /// A list (Go slice).
    List(Vec<Value>),
    /// A map with string keys (Go `map[string]T` or a struct's fields).
    Map(BTreeMap<String, Value>),
    /// An instant, milliseconds since the epoch, UTC (Go `time.Time`).
    Time(i64),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map of strings, as label sets are.
    pub fn string_map<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), Value::Str(v.into()))).collect())
    }

    /// Go's truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Safe(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Time(_) => true,
        }
    }

    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Safe(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, converting strings as Prometheus's `convertToFloat` does.
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) | Value::Safe(s) => s.trim().parse().ok(),
            Value::Time(ms) => Some(*ms as f64 / 1000.0),
            _ => None,
        }
    }

    /// Go's name of the type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Safe(_) => "template.HTML",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Time(_) => "time.Time",
        }
    }

    /// As Go's `fmt.Print` would show it (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out, true);
        out
    }

    fn write_go(&self, out: &mut String, top: bool) {
        match self {
            Value::Nil => out.push_str(if top { "<no value>" } else { "<nil>" }),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&crate::fmt::go_float(*f)),
            Value::Str(s) | Value::Safe(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Time(ms) => out.push_str(&crate::fmt::go_time(*ms, crate::fmt::GO_TIME_STRING)),
        }
    }

    /// The value as JSON (`toJson`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) | Value::Safe(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Time(ms) => J::String(crate::fmt::rfc3339(*ms)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
