//! Pipeline stages and their execution, one row at a time: line filters, parsers (`json`,
//! `logfmt`, `regexp`, `pattern`, `unpack`), label filters, `line_format`, `label_format`,
//! `drop`, `keep`, `decolorize`.
//!
//! Loki's semantics are kept where users see them: a label extracted by a parser that clashes
//! with a stream label gets the suffix `_extracted`; a parser that cannot read a line sets
//! `__error__` (`JSONParserErr`, `LogfmtParserErr`) and `__error_details__` instead of
//! dropping it; a numeric label filter on a value that is not a number sets `LabelFilterErr`
//! and keeps the line; JSON numbers keep the text they were written with.

use regex::Regex;
use telltale_model::{FilterOp, Labels, Matcher};

use crate::template::{Fields, Template};

/// A line filter stage: `|= "a" or "b"`, `!~ "x"`, `|> "<_> error <_>"`.
#[derive(Debug, Clone)]
pub struct LineStage {
    /// The test.
    pub op: FilterOp,
    /// `|>` / `!>` (pattern) instead of the text or regex ops.
    pub pattern: bool,
    /// The alternatives (`or`).
    pub values: Vec<String>,
    regexes: Vec<Regex>,
}

impl LineStage {
    pub(crate) fn new(op: FilterOp, pattern: bool, values: Vec<String>) -> Result<Self, String> {
        let regexes = if pattern {
            values.iter().map(|v| pattern_regex(v)).collect::<Result<_, _>>()?
        } else if matches!(op, FilterOp::Regex | FilterOp::NotRegex) {
            values.iter().map(|v| Regex::new(v).map_err(|e| e.to_string())).collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self { op, pattern, values, regexes })
    }

    pub(crate) fn matches(&self, line: &str) -> bool {
        let any = if self.regexes.is_empty() {
            self.values.iter().any(|v| line.contains(v.as_str()))
        } else {
            self.regexes.iter().any(|r| r.is_match(line))
        };
        match self.op {
            FilterOp::Contains | FilterOp::Regex => any,
            FilterOp::NotContains | FilterOp::NotRegex => !any,
        }
    }
}

/// `|> "<_> error <_>"`: `<_>` matches anything, the rest literally, the whole line.
fn pattern_regex(p: &str) -> Result<Regex, String> {
    let mut re = String::from("(?s)^");
    let mut rest = p;
    while let Some(i) = rest.find("<_>") {
        re.push_str(&regex::escape(&rest[..i]));
        re.push_str(".*?");
        rest = &rest[i + 3..];
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

/// A `label op value` in `drop`/`keep`: a bare name, or a name with a matcher on its value.
#[derive(Debug, Clone)]
pub struct NameMatch {
    /// The label name.
    pub name: String,
    /// The value test, if any.
    pub matcher: Option<Matcher>,
}

/// One `label_format` assignment.
#[derive(Debug, Clone)]
pub enum LabelFmt {
    /// `dst=src`: rename.
    Rename(String),
    /// `dst="{{ template }}"`.
    Template(Template),
}

/// A comparison in a numeric label filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn test(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// How a numeric label filter reads the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    /// A float.
    Number,
    /// A Go duration (`250ms`), compared in seconds.
    Duration,
    /// A byte size (`20MB`).
    Bytes,
}

/// A label filter expression: `status >= 400 and method="GET" or (a=~"x" , b != "y")`.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// Both hold.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either holds.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// A string matcher (`=`, `!=`, `=~`, `!~`).
    Str(Matcher),
    /// A numeric comparison.
    Num {
        /// The label.
        name: String,
        /// The comparison.
        op: CmpOp,
        /// The right-hand side (seconds for durations, bytes for sizes).
        value: f64,
        /// How to read the label.
        kind: NumKind,
    },
}

/// A pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// A line filter.
    Line(LineStage),
    /// `| json` (all fields) or `| json a="path", b` (chosen fields).
    Json(Vec<(String, Vec<PathPart>)>),
    /// `| logfmt [--strict] [--keep-empty] [a="key", ...]`.
    Logfmt {
        /// Stop at the first malformed pair with an error.
        strict: bool,
        /// Keep keys without a value as empty labels.
        keep_empty: bool,
        /// Chosen fields (label, key); empty means all.
        params: Vec<(String, String)>,
    },
    /// `| regexp "(?P<name>...)"`.
    Regexp(Regex),
    /// `| pattern "<ip> - <_> <method>"`.
    Pattern(Vec<PatternPart>),
    /// `| unpack`.
    Unpack,
    /// `| line_format "{{...}}"`.
    LineFormat(Template),
    /// `| label_format a=b, c="{{...}}"`.
    LabelFormat(Vec<(String, LabelFmt)>),
    /// `| drop a, b="x"`.
    Drop(Vec<NameMatch>),
    /// `| keep a, b`.
    Keep(Vec<NameMatch>),
    /// `| decolorize`.
    Decolorize,
    /// `| status >= 400`.
    LabelFilter(LabelFilter),
}

impl Stage {
    /// Whether the stage may change labels (so rows cannot reuse their stream's labels).
    pub(crate) fn touches_labels(&self) -> bool {
        !matches!(self, Stage::Line(_) | Stage::LineFormat(_) | Stage::Decolorize | Stage::LabelFilter(_))
    }
}

/// A step of a JSON path: `a.b`, `a["b"]`, `a[0]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PathPart {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A piece of a `pattern` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternPart {
    /// Text to find.
    Literal(String),
    /// `<name>`, or `<_>` (None) to skip.
    Capture(Option<String>),
}

/// Parses a `pattern` expression; it needs at least one named capture and no two captures
/// in a row.
pub(crate) fn parse_pattern(p: &str) -> Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(i) => {
                let close = rest[i..].find('>').map(|j| i + j);
                let name = close.map(|c| &rest[i + 1..c]);
                match name {
                    Some(n) if n == "_" || crate::parser::is_ident(n) => {
                        if i > 0 {
                            parts.push(PatternPart::Literal(rest[..i].to_string()));
                        }
                        if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                            return Err("consecutive captures are not allowed".into());
                        }
                        parts.push(PatternPart::Capture((n != "_").then(|| n.to_string())));
                        rest = &rest[close.unwrap_or(rest.len()) + 1..];
                    }
                    _ => {
                        let next = i + 1;
                        match parts.last_mut() {
                            Some(PatternPart::Literal(l)) => l.push_str(&rest[..next]),
                            _ => parts.push(PatternPart::Literal(rest[..next].to_string())),
                        }
                        rest = &rest[next..];
                    }
                }
            }
            None => {
                match parts.last_mut() {
                    Some(PatternPart::Literal(l)) => l.push_str(rest),
                    _ => parts.push(PatternPart::Literal(rest.to_string())),
                }
                rest = "";
            }
        }
    }
    if !parts.iter().any(|p| matches!(p, PatternPart::Capture(Some(_)))) {
        return Err("at least one capture is required".into());
    }
    Ok(parts)
}

/// Loki's pattern matching: a leading literal must start the line; each capture runs to the
/// next occurrence of the literal after it; a missing literal ends the match, the capture
/// taking the rest of the line.
fn match_pattern_owned(parts: &[PatternPart], line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if line.is_empty() || parts.is_empty() {
        return out;
    }
    let mut parts = parts;
    let mut rest = line;
    if let PatternPart::Literal(l) = &parts[0] {
        if rest.find(l.as_str()) != Some(0) {
            return out;
        }
        rest = &rest[l.len()..];
        parts = &parts[1..];
    }
    while !parts.is_empty() {
        let PatternPart::Capture(name) = &parts[0] else { return out };
        if parts.len() == 1 {
            if let Some(n) = name {
                out.push((n.clone(), rest.to_string()));
            }
            return out;
        }
        let PatternPart::Literal(lit) = &parts[1] else { return out };
        parts = &parts[2..];
        match rest.find(lit.as_str()) {
            None => {
                if let Some(n) = name {
                    out.push((n.clone(), rest.to_string()));
                }
                return out;
            }
            Some(i) => {
                if let Some(n) = name {
                    out.push((n.clone(), rest[..i].to_string()));
                }
                rest = &rest[i + lit.len()..];
            }
        }
    }
    out
}

/// The row a pipeline works on: the line and the label set so far.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub(crate) line: String,
    pub(crate) ts: i64,
    /// Labels in insertion order; names unique.
    pub(crate) labels: Vec<(String, String)>,
    /// How many of `labels` are the stream's own (for `_extracted`).
    stream_len: usize,
    /// How many are structured metadata (after the stream's).
    meta_len: usize,
}

impl Fields for Work {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
    fn line(&self) -> &str {
        &self.line
    }
    fn ts(&self) -> i64 {
        self.ts
    }
}

impl Work {
    pub(crate) fn reset(&mut self, stream: &Labels, meta: &[(&str, &str)], ts: i64, line: &str) {
        self.line.clear();
        self.line.push_str(line);
        self.ts = ts;
        self.labels.clear();
        self.labels.extend(stream.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.stream_len = self.labels.len();
        for (k, v) in meta {
            self.set(k, v);
        }
        self.meta_len = self.labels.len() - self.stream_len;
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.labels.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => {
                v.clear();
                v.push_str(value);
            }
            None => self.labels.push((name.to_string(), value.to_string())),
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.labels.iter().position(|(k, _)| k == name) {
            self.labels.remove(i);
            if i < self.stream_len {
                self.stream_len -= 1;
            } else if i < self.stream_len + self.meta_len {
                self.meta_len -= 1;
            }
        }
    }

    /// Sets a label a parser extracted: `_extracted` is appended when the stream has it.
    fn extract(&mut self, name: &str, value: &str) {
        if self.labels[..self.stream_len].iter().any(|(k, _)| k == name) {
            let n = format!("{name}_extracted");
            self.set(&n, value);
        } else {
            self.set(name, value);
        }
    }

    fn has_error(&self) -> bool {
        self.get("__error__").is_some()
    }

    fn error(&mut self, kind: &str, details: &str) {
        if !self.has_error() {
            self.set("__error__", kind);
            self.set("__error_details__", details);
        }
    }

    /// The labels as a set (empty values dropped, as in Loki).
    pub(crate) fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_default()
    }

    /// Splits the final labels Loki-style for `categorize-labels`: (stream, structured
    /// metadata, parsed).
    pub(crate) fn categorized(&self, stream: &Labels, meta: &[(&str, &str)]) -> (Labels, Labels, Labels) {
        let mut s = Vec::new();
        let mut m = Vec::new();
        let mut p = Vec::new();
        for (k, v) in &self.labels {
            if v.is_empty() {
                continue;
            }
            if stream.get(k) == Some(v.as_str()) {
                s.push((k.as_str(), v.as_str()));
            } else if meta.iter().any(|(mk, mv)| mk == k && mv == v) {
                m.push((k.as_str(), v.as_str()));
            } else {
                p.push((k.as_str(), v.as_str()));
            }
        }
        let b = |x: Vec<(&str, &str)>| Labels::from_pairs(x).unwrap_or_default();
        (b(s), b(m), b(p))
    }
}

/// Runs `stages` on `w`; false when a filter drops the row.
pub(crate) fn run(stages: &[Stage], w: &mut Work) -> bool {
    for s in stages {
        match s {
            Stage::Line(f) => {
                if !f.matches(&w.line) {
                    return false;
                }
            }
            Stage::Json(params) => json_stage(params, w),
            Stage::Logfmt { strict, keep_empty, params } => logfmt_stage(*strict, *keep_empty, params, w),
            Stage::Regexp(re) => {
                let found: Vec<(String, String)> = match re.captures(&w.line) {
                    Some(c) => re
                        .capture_names()
                        .flatten()
                        .filter_map(|n| c.name(n).map(|m| (n.to_string(), m.as_str().to_string())))
                        .collect(),
                    None => Vec::new(),
                };
                for (k, v) in found {
                    w.extract(&k, &v);
                }
            }
            Stage::Pattern(parts) => {
                for (k, v) in match_pattern_owned(parts, &w.line) {
                    w.extract(&k, &v);
                }
            }
            Stage::Unpack => unpack_stage(w),
            Stage::LineFormat(t) => {
                let l = t.render(w);
                w.line = l;
            }
            Stage::LabelFormat(fmts) => {
                let values: Vec<(String, Option<String>, Option<String>)> = fmts
                    .iter()
                    .map(|(dst, f)| match f {
                        LabelFmt::Rename(src) => (dst.clone(), w.get(src).map(str::to_string), Some(src.clone())),
                        LabelFmt::Template(t) => (dst.clone(), Some(t.render(w)), None),
                    })
                    .collect();
                for (dst, v, src) in values {
                    if let Some(src) = src {
                        if v.is_some() && src != dst {
                            w.remove(&src);
                        }
                    }
                    if let Some(v) = v {
                        w.set(&dst, &v);
                    }
                }
            }
            Stage::Drop(names) => {
                let gone: Vec<String> = w
                    .labels
                    .iter()
                    .filter(|(k, v)| {
                        names.iter().any(|n| n.name == *k && n.matcher.as_ref().is_none_or(|m| m.matches(v)))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for g in gone {
                    w.remove(&g);
                }
            }
            Stage::Keep(names) => {
                let gone: Vec<String> = w
                    .labels
                    .iter()
                    .filter(|(k, v)| {
                        !names.iter().any(|n| n.name == *k && n.matcher.as_ref().is_none_or(|m| m.matches(v)))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for g in gone {
                    w.remove(&g);
                }
            }
            Stage::Decolorize => {
                if w.line.contains('\x1b') {
                    w.line = decolorize(&w.line);
                }
            }
            Stage::LabelFilter(f) => {
                if !label_filter(f, w) {
                    return false;
                }
            }
        }
    }
    true
}

pub(crate) fn label_filter(f: &LabelFilter, w: &mut Work) -> bool {
    match f {
        LabelFilter::And(a, b) => label_filter(a, w) && label_filter(b, w),
        LabelFilter::Or(a, b) => label_filter(a, w) || label_filter(b, w),
        LabelFilter::Str(m) => m.matches(w.get(&m.name).unwrap_or("")),
        LabelFilter::Num { name, op, value, kind } => {
            let Some(v) = w.get(name) else { return *op == CmpOp::Ne };
            let parsed = match kind {
                NumKind::Number => v.trim().parse::<f64>().ok(),
                NumKind::Duration => crate::value::parse_go_duration(v.trim()),
                NumKind::Bytes => crate::value::parse_bytes(v),
            };
            match parsed {
                Some(x) => op.test(x, *value),
                None => {
                    let detail = format!("cannot read {v:?} of label {name} as a {kind:?}");
                    w.error("LabelFilterErr", &detail);
                    true
                }
            }
        }
    }
}

fn decolorize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            while let Some(&n) = chars.peek() {
                chars.next();
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn sanitize(key: &str) -> String {
    let key = key.trim();
    let mut out: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn json_stage(params: &[(String, Vec<PathPart>)], w: &mut Work) {
    if params.is_empty() {
        let line = std::mem::take(&mut w.line);
        let mut found = Vec::new();
        let ok = crate::json::flatten(line.as_bytes(), &mut found);
        match ok {
            Ok(()) => {
                for (k, v) in found {
                    w.extract(&k, &v);
                }
            }
            Err(e) => w.error("JSONParserErr", &e),
        }
        w.line = line;
        return;
    }
    match serde_json::from_str::<serde_json::Value>(&w.line) {
        Ok(doc) => {
            for (label, path) in params {
                let mut cur = Some(&doc);
                for p in path {
                    cur = match (cur, p) {
                        (Some(serde_json::Value::Object(m)), PathPart::Key(k)) => m.get(k),
                        (Some(serde_json::Value::Array(a)), PathPart::Index(i)) => a.get(*i),
                        _ => None,
                    };
                }
                let v = match cur {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                w.extract(label, &v);
            }
        }
        Err(e) => w.error("JSONParserErr", &e.to_string()),
    }
}

fn unpack_stage(w: &mut Work) {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&w.line) {
        Ok(m) => {
            let mut entry = None;
            for (k, v) in m {
                if let serde_json::Value::String(s) = v {
                    if k == "_entry" {
                        entry = Some(s);
                    } else {
                        w.extract(&k, &s);
                    }
                }
            }
            if let Some(e) = entry {
                w.line = e;
            }
        }
        Err(e) => w.error("JSONParserErr", &e.to_string()),
    }
}

fn logfmt_stage(strict: bool, keep_empty: bool, params: &[(String, String)], w: &mut Work) {
    let line = std::mem::take(&mut w.line);
    let mut pairs = Vec::new();
    let res = logfmt_pairs(&line, strict, &mut pairs);
    if let Err(e) = res {
        w.error("LogfmtParserErr", &e);
    }
    if params.is_empty() {
        for (k, v) in &pairs {
            if v.is_empty() && !keep_empty {
                continue;
            }
            w.extract(&sanitize(k), v);
        }
    } else {
        for (label, key) in params {
            if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
                w.extract(label, v);
            }
        }
    }
    w.line = line;
}

/// Reads logfmt pairs (`key=value`, `key="quoted \"value\""`, bare `key`). Without `strict`,
/// malformed bits are skipped; with it, the first one is an error.
fn logfmt_pairs(line: &str, strict: bool, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        let key = &line[ks..i];
        if key.is_empty() {
            if strict {
                return Err(format!("logfmt syntax error at pos {}: unexpected '{}'", i + 1, b[i] as char));
            }
            i += 1;
            continue;
        }
        if i >= b.len() || b[i] != b'=' {
            if i < b.len() && b[i] == b'"' {
                if strict {
                    return Err(format!("logfmt syntax error at pos {}: unexpected '\"'", i + 1));
                }
                i += 1;
                continue;
            }
            out.push((key.to_string(), String::new()));
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < b.len() => {
                        match b[i + 1] {
                            b'n' => v.push('\n'),
                            b't' => v.push('\t'),
                            b'r' => v.push('\r'),
                            c => v.push(c as char),
                        }
                        i += 2;
                    }
                    _ => {
                        let ch = line[i..].chars().next().unwrap_or(' ');
                        v.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            if !closed {
                if strict {
                    return Err("logfmt syntax error: unterminated quoted value".into());
                }
                continue;
            }
            out.push((key.to_string(), v));
        } else {
            let vs = i;
            while i < b.len() && b[i] > b' ' {
                if strict && (b[i] == b'"' || b[i] == b'=') {
                    return Err(format!("logfmt syntax error at pos {}: unexpected '{}'", i + 1, b[i] as char));
                }
                i += 1;
            }
            out.push((key.to_string(), line[vs..i].to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::MatchOp;

    fn work(stream: &[(&str, &str)], line: &str) -> Work {
        let mut w = Work::default();
        w.reset(&Labels::from_pairs(stream.iter().copied()).unwrap(), &[], 1, line);
        w
    }

    fn labels(w: &Work) -> String {
        w.to_labels().to_string()
    }

    #[test]
    fn json_flattens_and_keeps_number_text() {
        let mut w = work(&[("job", "a")], r#"{"job":"x","a":{"b":1.50,"c":[1,2]},"ok":true,"n":null,"s":"q\"t"}"#);
        assert!(run(&[Stage::Json(vec![])], &mut w));
        assert_eq!(labels(&w), r#"{a_b="1.50", job="a", job_extracted="x", ok="true", s="q\"t"}"#);
        let mut w = work(&[("job", "a")], "not json");
        run(&[Stage::Json(vec![])], &mut w);
        assert_eq!(w.get("__error__"), Some("JSONParserErr"));
        let mut w = work(&[("job", "a")], r#"{"a":{"b":[10,{"c":"deep"}]}}"#);
        let p =
            vec![PathPart::Key("a".into()), PathPart::Key("b".into()), PathPart::Index(1), PathPart::Key("c".into())];
        run(&[Stage::Json(vec![("x".into(), p)])], &mut w);
        assert_eq!(w.get("x"), Some("deep"));
    }

    #[test]
    fn logfmt() {
        let mut w = work(&[("job", "a")], r#"level=info msg="hello \"you\"" dur=1.5s empty= flag"#);
        run(&[Stage::Logfmt { strict: false, keep_empty: false, params: vec![] }], &mut w);
        assert_eq!(labels(&w), r#"{dur="1.5s", job="a", level="info", msg="hello \"you\""}"#);
        let mut w = work(&[("job", "a")], r#"a="unterminated"#);
        run(&[Stage::Logfmt { strict: true, keep_empty: false, params: vec![] }], &mut w);
        assert_eq!(w.get("__error__"), Some("LogfmtParserErr"));
    }

    #[test]
    fn pattern_like_loki() {
        let p = parse_pattern(r#"<ip> - - [<_>] "<method> <path> <_>" <status>"#).unwrap();
        let got = match_pattern_owned(&p, r#"1.2.3.4 - - [22/Nov/2025:06:00:00 +0000] "GET /a HTTP/1.1" 200 512"#);
        assert_eq!(
            got,
            [
                ("ip".into(), "1.2.3.4".into()),
                ("method".into(), "GET".into()),
                ("path".into(), "/a".into()),
                ("status".into(), "200 512".into())
            ]
        );
        assert!(match_pattern_owned(&parse_pattern("x <a>").unwrap(), "y 1").is_empty());
        assert!(parse_pattern("<_>").is_err());
        assert!(parse_pattern("<a><b>").is_err());
    }

    #[test]
    fn filters_and_formats() {
        let mut w = work(&[("job", "a")], "status=503 took=250ms size=2KB");
        let stages = vec![
            Stage::Logfmt { strict: false, keep_empty: false, params: vec![] },
            Stage::LabelFilter(LabelFilter::And(
                Box::new(LabelFilter::Num {
                    name: "status".into(),
                    op: CmpOp::Ge,
                    value: 500.0,
                    kind: NumKind::Number,
                }),
                Box::new(LabelFilter::Num { name: "took".into(), op: CmpOp::Gt, value: 0.2, kind: NumKind::Duration }),
            )),
            Stage::LabelFilter(LabelFilter::Num {
                name: "size".into(),
                op: CmpOp::Eq,
                value: 2000.0,
                kind: NumKind::Bytes,
            }),
            Stage::LineFormat(Template::parse("{{.status}} in {{.took}}").unwrap()),
            Stage::LabelFormat(vec![("code".into(), LabelFmt::Rename("status".into()))]),
            Stage::Drop(vec![NameMatch { name: "size".into(), matcher: None }]),
        ];
        assert!(run(&stages, &mut w));
        assert_eq!(w.line, "503 in 250ms");
        assert_eq!(labels(&w), r#"{code="503", job="a", took="250ms"}"#);
        let mut w = work(&[("job", "a")], "status=abc");
        let f = LabelFilter::Num { name: "status".into(), op: CmpOp::Gt, value: 1.0, kind: NumKind::Number };
        assert!(run(
            &[Stage::Logfmt { strict: false, keep_empty: false, params: vec![] }, Stage::LabelFilter(f)],
            &mut w
        ));
        assert_eq!(w.get("__error__"), Some("LabelFilterErr"));
        let mut w = work(&[("job", "a"), ("env", "prod")], "x");
        let keep =
            NameMatch { name: "env".into(), matcher: Some(Matcher::new(MatchOp::Equal, "env", "prod").unwrap()) };
        run(&[Stage::Keep(vec![keep])], &mut w);
        assert_eq!(labels(&w), r#"{env="prod"}"#);
    }

    #[test]
    fn line_stages() {
        let s = LineStage::new(FilterOp::Contains, false, vec!["a".into(), "b".into()]).unwrap();
        assert!(s.matches("xbx") && !s.matches("c"));
        let s = LineStage::new(FilterOp::NotContains, false, vec!["a".into(), "b".into()]).unwrap();
        assert!(!s.matches("xbx") && s.matches("c"));
        let s = LineStage::new(FilterOp::Contains, true, vec!["<_> error <_>".into()]).unwrap();
        assert!(s.matches("an error here") && !s.matches("error"));
        let mut w = work(&[("job", "a")], "\x1b[31mred\x1b[0m text");
        run(&[Stage::Decolorize], &mut w);
        assert_eq!(w.line, "red text");
        let mut w = work(&[("job", "a")], r#"{"_entry":"inner line","pod":"p1","n":1}"#);
        run(&[Stage::Unpack], &mut w);
        assert_eq!((w.line.as_str(), w.get("pod"), w.get("n")), ("inner line", Some("p1"), None));
    }
}
