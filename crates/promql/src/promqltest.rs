//! A runner for Prometheus's promqltest script format (`load`, `clear`, `eval`, `expect`),
//! described in prometheus/prometheus `promql/promqltest/README.md`.
//!
//! Each `eval` is one case. It passes when the result matches within Prometheus's relative
//! tolerance (1e-6) and the annotations match the `expect` lines. Like Prometheus's runner,
//! an instant `eval` is also run as a range query around its time, and both must match.
//! Cases that need native histograms (histogram values in `load` or in the expected
//! result, or selectors matching a series loaded with histograms) are counted as skipped.

use std::fmt::Write as _;
use std::time::Duration;

use promql_parser::parser::{AtModifier, Expr};
use regex::Regex;
use telltale_model::{Labels, LabelsBuilder, Sample, WriteBatch, STALE_NAN_BITS};
use telltale_storage::{matches_all, MemStore, MetricWriter};

use crate::engine::{Engine, EngineOptions, QueryOutput};
use crate::eval::to_matchers;
use crate::value::{format_float, Value};

/// Tolerance of value comparisons, relative, as Prometheus's `defaultEpsilon`.
const EPSILON: f64 = 0.000001;

/// One failed case.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Line of the `eval` command (1-based).
    pub line: usize,
    /// The query.
    pub query: String,
    /// What was expected, in script notation.
    pub expected: String,
    /// What the engine returned (or the mismatch found).
    pub got: String,
}

/// Outcome of one script.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The script's name (its path as given).
    pub name: String,
    /// Cases that matched.
    pub passed: usize,
    /// Cases that did not match.
    pub failed: usize,
    /// Cases that need native histograms.
    pub skipped: usize,
    /// Details of each failed case.
    pub failures: Vec<Failure>,
}

/// A value in series notation: a number, an omitted point (`_`), or a native histogram
/// (which this engine does not store).
#[derive(Debug, Clone, Copy, PartialEq)]
enum SeqValue {
    Float(f64),
    Omitted,
    Histogram,
}

#[derive(Debug)]
enum Expected {
    Nothing,
    Scalar(f64),
    Series(Vec<(Labels, Vec<SeqValue>)>),
    String(String),
}

#[derive(Debug, Default)]
struct ExpectLines {
    fail: Option<MsgMatch>,
    ordered: bool,
    warn: Vec<MsgMatch>,
    info: Vec<MsgMatch>,
    no_warn: bool,
    no_info: bool,
    any_warn: bool,
    any_info: bool,
}

#[derive(Debug)]
enum MsgMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl MsgMatch {
    fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Regex(r) => r.is_match(s),
        }
    }

    fn describe(&self) -> String {
        match self {
            MsgMatch::Any => "any".into(),
            MsgMatch::Exact(m) => format!("{m:?}"),
            MsgMatch::Regex(r) => format!("/{}/", r.as_str()),
        }
    }
}

#[derive(Debug)]
struct Eval {
    line: usize,
    query: String,
    /// `None` for instant queries.
    range: Option<(i64, i64, i64)>,
    at: i64,
    /// For instant queries returning a matrix: the grid the expected points sit on.
    expect_range: Option<(i64, i64, i64)>,
    expect: ExpectLines,
    expected: Expected,
}

/// Runs one script file.
pub fn run_file(path: &std::path::Path) -> Report {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => run_script(&name, &text),
        Err(e) => Report {
            name,
            failed: 1,
            failures: vec![Failure {
                line: 0,
                query: String::new(),
                expected: "a readable file".into(),
                got: e.to_string(),
            }],
            ..Default::default()
        },
    }
}

/// Runs a script given as text; `name` labels the report.
pub fn run_script(name: &str, text: &str) -> Report {
    let mut report = Report { name: name.to_string(), ..Default::default() };
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let engine = Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        timeout: Duration::from_secs(100),
        ..Default::default()
    });
    let mut store = MemStore::new();
    let mut histogram_series: Vec<Labels> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            store = MemStore::new();
            histogram_series.clear();
            i += 1;
        } else if word.starts_with("load") {
            i = match load(&lines, i, &store, &mut histogram_series) {
                Ok(next) => next,
                Err(e) => {
                    report.failed += 1;
                    report.failures.push(Failure {
                        line: i + 1,
                        query: l.clone(),
                        expected: "a valid load command".into(),
                        got: e,
                    });
                    skip_block(&lines, i)
                }
            };
        } else if word.starts_with("eval") {
            match parse_eval(&lines, i) {
                Ok((next, ev)) => {
                    i = next;
                    if needs_histograms(&ev, &histogram_series) {
                        report.skipped += 1;
                        continue;
                    }
                    match run_eval(&engine, &store, &ev) {
                        Ok(()) => report.passed += 1,
                        Err((expected, got)) => {
                            report.failed += 1;
                            report.failures.push(Failure { line: ev.line, query: ev.query.clone(), expected, got });
                        }
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    report.failures.push(Failure {
                        line: i + 1,
                        query: l.clone(),
                        expected: "a valid eval command".into(),
                        got: e,
                    });
                    i = skip_block(&lines, i);
                }
            }
        } else {
            report.failed += 1;
            report.failures.push(Failure {
                line: i + 1,
                query: l.clone(),
                expected: "a command".into(),
                got: format!("invalid command {l:?}"),
            });
            i += 1;
        }
    }
    report
}

fn skip_block(lines: &[String], mut i: usize) -> usize {
    i += 1;
    while i < lines.len() && !lines[i].is_empty() {
        i += 1;
    }
    i
}

fn load(lines: &[String], i: usize, store: &MemStore, histograms: &mut Vec<Labels>) -> Result<usize, String> {
    let head = &lines[i];
    let mut parts = head.split_whitespace();
    let cmd = parts.next().unwrap_or("");
    let with_nhcb = cmd == "load_with_nhcb";
    let step = parse_duration(parts.next().ok_or("load needs a step")?)?;
    // A series defined twice in one load keeps its last definition, as in Prometheus.
    let mut defs: Vec<(Labels, Vec<Sample>)> = Vec::new();
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let (labels, values) = parse_series(&lines[j])?;
        let mut samples = Vec::new();
        let mut has_hist = false;
        for (k, v) in values.iter().enumerate() {
            let t = k as i64 * step;
            match v {
                SeqValue::Float(f) => samples.push(Sample::new(t, *f)),
                SeqValue::Omitted => {}
                SeqValue::Histogram => has_hist = true,
            }
        }
        if has_hist {
            histograms.push(labels.clone());
        }
        if with_nhcb {
            if let Some(base) = nhcb_series(&labels) {
                histograms.push(base);
            }
        }
        match defs.iter_mut().find(|(l, _)| *l == labels) {
            Some(d) => d.1 = samples,
            None => defs.push((labels, samples)),
        }
        j += 1;
    }
    let mut batch = WriteBatch::new();
    for (l, s) in defs {
        batch.push(l, &s);
    }
    store.write(&batch).map_err(|e| e.to_string())?;
    Ok(j)
}

/// The native histogram series `load_with_nhcb` derives from a classic histogram series.
fn nhcb_series(l: &Labels) -> Option<Labels> {
    let name = l.metric_name()?;
    let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s))?;
    let mut b = l.to_builder();
    b.remove("le");
    b.set("__name__", base);
    b.build().ok()
}

fn needs_histograms(ev: &Eval, histograms: &[Labels]) -> bool {
    if let Expected::Series(s) = &ev.expected {
        if s.iter().any(|(_, v)| v.contains(&SeqValue::Histogram)) {
            return true;
        }
    }
    let Ok(expr) = promql_parser::parser::parse(&ev.query) else { return false };
    let mut found = false;
    walk(&expr, &mut |e| match e {
        Expr::VectorSelector(vs) => found |= selector_matches(vs, histograms),
        Expr::MatrixSelector(ms) => found |= selector_matches(&ms.vs, histograms),
        Expr::Call(c) => {
            found |= matches!(
                c.func.name,
                "histogram_count"
                    | "histogram_sum"
                    | "histogram_avg"
                    | "histogram_fraction"
                    | "histogram_stddev"
                    | "histogram_stdvar"
            )
        }
        _ => {}
    });
    found
}

fn selector_matches(vs: &promql_parser::parser::VectorSelector, histograms: &[Labels]) -> bool {
    let sets: Vec<&[promql_parser::label::Matcher]> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers[..]]
    } else {
        vs.matchers.or_matchers.iter().map(|m| &m[..]).collect()
    };
    sets.into_iter().any(|set| {
        let Ok(mut ms) = to_matchers(set) else { return false };
        if let Some(n) = &vs.name {
            ms.push(telltale_model::Matcher::equal("__name__", n.clone()));
        }
        histograms.iter().any(|h| matches_all(h, &ms))
    })
}

/// Calls `f` on every node of the expression.
fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, f);
            }
            walk(&a.expr, f);
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, f);
            }
        }
        _ => {}
    }
}

fn parse_eval(lines: &[String], i: usize) -> Result<(usize, Eval), String> {
    let head = &lines[i];
    let (cmd, rest) = head.split_once(char::is_whitespace).ok_or("eval needs arguments")?;
    let modifier = cmd.strip_prefix("eval").unwrap_or("").trim_start_matches('_');
    let rest = rest.trim_start();
    let mut ev = Eval {
        line: i + 1,
        query: String::new(),
        range: None,
        at: 0,
        expect_range: None,
        expect: ExpectLines::default(),
        expected: Expected::Nothing,
    };
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start();
        let r = r.strip_prefix("at").map(str::trim_start).ok_or("instant eval needs `at <time>`")?;
        let (t, q) = r.split_once(char::is_whitespace).ok_or("instant eval needs a query")?;
        ev.at = parse_duration(t)?;
        ev.query = q.trim().to_string();
    } else if let Some(r) = rest.strip_prefix("range") {
        let re = Regex::new(r"^\s*from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+?)\s+(.+)$").map_err(|e| e.to_string())?;
        let c = re.captures(r).ok_or("range eval must be `range from <start> to <end> step <step> <query>`")?;
        let (s, e, st) = (parse_duration(&c[1])?, parse_duration(&c[2])?, parse_duration(&c[3])?);
        if e < s {
            return Err("invalid test definition, end timestamp is before start timestamp".into());
        }
        ev.range = Some((s, e, st));
        ev.query = c[4].trim().to_string();
    } else {
        return Err(format!("invalid evaluation command {head:?}"));
    }
    match modifier {
        "fail" => ev.expect.fail = Some(MsgMatch::Any),
        "ordered" => ev.expect.ordered = true,
        "warn" => ev.expect.any_warn = true,
        "info" => ev.expect.any_info = true,
        _ => {}
    }
    let range_re = Regex::new(r"^\s*from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$").map_err(|e| e.to_string())?;
    let mut series = Vec::new();
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let l = &lines[j];
        j += 1;
        if ev.expect.fail.is_some() {
            if let Some(m) = l.strip_prefix("expected_fail_message") {
                ev.expect.fail = Some(MsgMatch::Exact(m.trim().to_string()));
                continue;
            }
            if let Some(m) = l.strip_prefix("expected_fail_regexp") {
                ev.expect.fail = Some(MsgMatch::Regex(Regex::new(m.trim()).map_err(|e| e.to_string())?));
                continue;
            }
        }
        if let Some(r) = l.strip_prefix("expect range vector") {
            let c = range_re.captures(r).ok_or_else(|| format!("invalid range vector definition {l:?}"))?;
            let (s, e, st) = (parse_duration(&c[1])?, parse_duration(&c[2])?, parse_duration(&c[3])?);
            ev.expect_range = Some((s, e, st));
            ev.at = e;
            continue;
        }
        if let Some(r) = l.strip_prefix("expect string") {
            ev.expected = Expected::String(unquote(r.trim()).ok_or("expected string literal not valid")?);
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            parse_expect(l, &mut ev.expect)?;
            continue;
        }
        if let Some(v) = parse_number(l) {
            ev.expected = Expected::Scalar(v);
            continue;
        }
        let (labels, values) = parse_series(l)?;
        if values.len() > 1 && ev.range.is_none() && ev.expect_range.is_none() {
            return Err("expecting multiple values in instant evaluation not allowed".into());
        }
        series.push((labels, values));
    }
    if !series.is_empty() {
        ev.expected = Expected::Series(series);
    }
    Ok((j, ev))
}

fn parse_expect(l: &str, e: &mut ExpectLines) -> Result<(), String> {
    let re = Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
        .map_err(|e| e.to_string())?;
    let c = re.captures(l.trim()).ok_or_else(|| format!("invalid expect statement {l:?}"))?;
    let m = match c.get(2).map(|m| m.as_str()) {
        Some("msg") => MsgMatch::Exact(c[3].trim().to_string()),
        Some(_) => MsgMatch::Regex(Regex::new(c[3].trim()).map_err(|e| e.to_string())?),
        None => MsgMatch::Any,
    };
    match &c[1] {
        "ordered" => e.ordered = true,
        "fail" => e.fail = Some(m),
        "warn" => e.warn.push(m),
        "info" => e.info.push(m),
        "no_warn" => e.no_warn = true,
        _ => e.no_info = true,
    }
    Ok(())
}

/// Prometheus's `model.ParseDuration` (`1h30m`, `10s53ms`, `0`), as milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    if body == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = body;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("invalid duration {s:?}")),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(n.saturating_mul(mult));
    }
    Ok(if neg { -total } else { total })
}

/// A number as the series notation and PromQL write it: decimal, hex, `Inf`, `NaN`.
fn parse_number(s: &str) -> Option<f64> {
    parse_num(s, true)
}

/// In series notation `0x10` means "0 eleven times", so hex is off there.
fn parse_num(s: &str, hex: bool) -> Option<f64> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        b if hex && b.starts_with("0x") => i64::from_str_radix(&b[2..], 16).ok()? as f64,
        b if b.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_')) && !b.is_empty() => {
            b.replace('_', "").parse::<f64>().ok()?
        }
        _ => return None,
    };
    Some(if neg { -v } else { v })
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if !matches!(q, '"' | '\'' | '`') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Some(inner.to_string());
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).ok()? as char);
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Parses a series in promqltest's (and promtool's `input_series`) notation,
/// `metric{a="b"}` then values like `1 2+3x4 _ stale`, into its labels and one entry per
/// step: `None` for an omitted point (`_`). Native histogram values are refused.
pub fn parse_series_notation(series: &str, values: &str) -> Result<(Labels, Vec<Option<f64>>), String> {
    let (labels, rest) = parse_metric(series)?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {:?} after the series", rest.trim()));
    }
    let (_, vals) = parse_series(&format!("x {values}"))?;
    vals.into_iter()
        .map(|v| match v {
            SeqValue::Float(f) => Ok(Some(f)),
            SeqValue::Omitted => Ok(None),
            SeqValue::Histogram => Err("native histogram values are not supported".to_string()),
        })
        .collect::<Result<_, _>>()
        .map(|v| (labels, v))
}

/// Parses `metric{a="b"} 1 2+3x4 _ stale {{...}}` into labels and values.
fn parse_series(line: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let (labels, rest) = parse_metric(line)?;
    let mut values = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let end = rest.find("}}").ok_or("unterminated histogram")?;
            let mut after = &rest[end + 2..];
            // `{{a}}+{{b}}x3`: a histogram series with an increment.
            if let Some(t) = after.strip_prefix('+').or_else(|| after.strip_prefix('-')) {
                if t.starts_with("{{") {
                    let e = t.find("}}").ok_or("unterminated histogram")?;
                    after = &t[e + 2..];
                }
            }
            // `{{...}}x3` repeats a histogram.
            let (count, tail) = match after.strip_prefix('x') {
                Some(t) => {
                    let d = t.chars().take_while(|c| c.is_ascii_digit()).count();
                    (t[..d].parse::<usize>().unwrap_or(0) + 1, &t[d..])
                }
                None => (1, after),
            };
            values.extend(std::iter::repeat_n(SeqValue::Histogram, count));
            rest = tail.trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        rest = rest[end..].trim_start();
        parse_value_token(tok, &mut values)?;
    }
    Ok((labels, values))
}

fn parse_value_token(tok: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if tok == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if tok == "stale" {
        out.push(SeqValue::Float(f64::from_bits(STALE_NAN_BITS)));
        return Ok(());
    }
    if let Some(v) = parse_num_s(tok) {
        out.push(SeqValue::Float(v));
        return Ok(());
    }
    let bad = || format!("invalid series value {tok:?}");
    let x = tok.rfind('x').ok_or_else(bad)?;
    let times: u64 = tok[x + 1..].parse().map_err(|_| bad())?;
    let base = &tok[..x];
    if base == "_" {
        out.extend(std::iter::repeat_n(SeqValue::Omitted, times as usize));
        return Ok(());
    }
    if base == "stale" {
        out.extend(std::iter::repeat_n(SeqValue::Float(f64::from_bits(STALE_NAN_BITS)), times as usize + 1));
        return Ok(());
    }
    // `a+b`, `a-b`: split at a sign that is not the first character nor an exponent's.
    let bytes = base.as_bytes();
    let split = (1..bytes.len())
        .find(|&k| matches!(bytes[k], b'+' | b'-') && !matches!(bytes[k - 1], b'e' | b'E' | b'+' | b'-'));
    let (start, inc) = match split {
        Some(k) => (parse_num_s(&base[..k]).ok_or_else(bad)?, parse_num_s(&base[k..]).ok_or_else(bad)?),
        None => (parse_num_s(base).ok_or_else(bad)?, 0.0),
    };
    let mut v = start;
    for _ in 0..=times {
        out.push(SeqValue::Float(v));
        v += inc;
    }
    Ok(())
}

/// Parses the `name{labels}` part of a series line; returns the rest of the line.
fn parse_metric(line: &str) -> Result<(Labels, &str), String> {
    let line = line.trim_start();
    let name_len = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let name = &line[..name_len];
    let mut rest = &line[name_len..];
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    if let Some(r) = rest.strip_prefix('{') {
        let mut r = r.trim_start();
        loop {
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            // A label name, possibly quoted (UTF-8 names), or a quoted metric name alone.
            let (lname, after) = if r.starts_with('"') {
                let (s, a) = take_quoted(r)?;
                (s, a)
            } else {
                let n = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(r.len());
                (r[..n].to_string(), &r[n..])
            };
            let after = after.trim_start();
            if let Some(a) = after.strip_prefix('=') {
                let (value, a) = take_quoted(a.trim_start())?;
                pairs.push((lname, value));
                r = a.trim_start();
            } else {
                pairs.push(("__name__".into(), lname));
                r = after;
            }
            r = r.strip_prefix(',').unwrap_or(r).trim_start();
            if r.is_empty() {
                return Err(format!("unterminated label set in {line:?}"));
            }
        }
    } else if name.is_empty() {
        return Err(format!("invalid series {line:?}"));
    }
    let mut b = LabelsBuilder::new();
    for (n, v) in &pairs {
        b.push(n, v);
    }
    Ok((b.build().map_err(|e| e.to_string())?, rest))
}

fn take_quoted(s: &str) -> Result<(String, &str), String> {
    let q = s.chars().next().ok_or("expected a quoted string")?;
    if !matches!(q, '"' | '\'' | '`') {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let bytes = s.as_bytes();
    let mut k = 1;
    while k < bytes.len() {
        if bytes[k] == b'\\' && q != '`' {
            k += 2;
            continue;
        }
        if bytes[k] as char == q {
            let lit = &s[..=k];
            return Ok((unquote(lit).ok_or_else(|| format!("bad string {lit}"))?, &s[k + 1..]));
        }
        k += 1;
    }
    Err(format!("unterminated string {s:?}"))
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

type Mismatch = (String, String);

fn run_eval(engine: &Engine, store: &MemStore, ev: &Eval) -> Result<(), Mismatch> {
    if ev.range.is_some() {
        return run_one(engine, store, ev, None, ev.at);
    }
    run_one(engine, store, ev, None, ev.at)?;
    // Like Prometheus's runner: with every selector pinned to the evaluation time by `@`,
    // the query must give the same result at other evaluation times.
    if let Ok(expr) = promql_parser::parser::parse(&ev.query) {
        for (variant, t) in at_variants(&expr, ev.at) {
            run_one(engine, store, ev, Some(&variant), t).map_err(|(e, g)| (e, format!("with @ {}: {g}", ev.at)))?;
        }
    }
    Ok(())
}

/// Functions whose result depends on the evaluation time even when their arguments do not.
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    // Uses the time of its argument's samples.
    "timestamp",
    "step",
    "range",
    "start",
    "end",
];

fn at_variants(expr: &Expr, ts: i64) -> Vec<(Expr, i64)> {
    let mut unsafe_fn = false;
    walk(expr, &mut |e| {
        if let Expr::Call(c) = e {
            unsafe_fn |= AT_UNSAFE.contains(&c.func.name);
        }
    });
    if unsafe_fn {
        return Vec::new();
    }
    let at = {
        let d = Duration::from_millis(ts.unsigned_abs());
        let t = if ts >= 0 { std::time::UNIX_EPOCH.checked_add(d) } else { std::time::UNIX_EPOCH.checked_sub(d) };
        match t {
            Some(t) => AtModifier::At(t),
            None => return Vec::new(),
        }
    };
    let mut pinned = expr.clone();
    pin(&mut pinned, &at);
    let times: Vec<i64> = if ts == 0 { vec![-1000, 0, 1000] } else { vec![-10 * ts, 0, ts / 5, ts, 10 * ts] };
    times.into_iter().map(|t| (pinned.clone(), t)).collect()
}

/// Sets `@` on every selector and subquery that has none, except inside a pinned subquery.
fn pin(e: &mut Expr, at: &AtModifier) {
    match e {
        Expr::VectorSelector(vs) => {
            vs.at.get_or_insert_with(|| at.clone());
        }
        Expr::MatrixSelector(ms) => {
            ms.vs.at.get_or_insert_with(|| at.clone());
        }
        Expr::Subquery(sq) => {
            sq.at.get_or_insert_with(|| at.clone());
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                pin(p, at);
            }
            pin(&mut a.expr, at);
        }
        Expr::Unary(u) => pin(&mut u.expr, at),
        Expr::Binary(b) => {
            pin(&mut b.lhs, at);
            pin(&mut b.rhs, at);
        }
        Expr::Paren(p) => pin(&mut p.expr, at),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                pin(a, at);
            }
        }
        _ => {}
    }
}

/// Runs the eval's query (or `variant` of it) once, with its checks.
fn run_one(engine: &Engine, store: &MemStore, ev: &Eval, variant: Option<&Expr>, at: i64) -> Result<(), Mismatch> {
    let expected_text = describe_expected(ev);
    let out = match (ev.range, variant) {
        (Some((s, e, st)), _) => engine.range_query(store, &ev.query, s, e, st),
        (None, Some(v)) => engine.instant_expr(store, v, at),
        (None, None) => engine.instant_query(store, &ev.query, at),
    };
    let out = match (out, &ev.expect.fail) {
        (Err(e), Some(m)) => {
            return if m.matches(&e.to_string()) {
                Ok(())
            } else {
                Err((format!("error matching {}", m.describe()), format!("error: {e}")))
            };
        }
        (Err(e), None) => return Err((expected_text, format!("error: {e}"))),
        (Ok(o), Some(_)) => return Err(("an error".into(), describe_value(&o.value))),
        (Ok(o), None) => o,
    };
    if variant.is_none() {
        check_annotations(ev, &out).map_err(|g| (expected_text.clone(), g))?;
    }
    compare(ev, &out.value)
        .map_err(|g| (expected_text.clone(), format!("{g}\n  result: {}", describe_value(&out.value))))?;
    // Like Prometheus's runner, an instant query must give the same result in range mode.
    // Queries reading the query's own parameters (`range()`, `step()`, ...) differ by design.
    let query_dependent = ["range()", "step()", "start()", "end()"].iter().any(|f| ev.query.contains(f));
    if ev.range.is_none()
        && !query_dependent
        && ev.expect_range.is_none()
        && !matches!(ev.expected, Expected::String(_))
        && !ev.expect.ordered
    {
        let r = match variant {
            Some(v) => engine.range_expr(store, v, at - 60_000, at + 60_000, 60_000),
            None => engine.range_query(store, &ev.query, at - 60_000, at + 60_000, 60_000),
        }
        .map_err(|e| (expected_text.clone(), format!("range mode error: {e}")))?;
        let Value::Matrix(m) = r.value else {
            return Err((expected_text, "range mode did not return a matrix".into()));
        };
        let vec: Vec<crate::value::InstantSample> = m
            .iter()
            .filter_map(|s| {
                s.samples.iter().find(|p| p.t == at).map(|p| crate::value::InstantSample {
                    labels: s.labels.clone(),
                    t: p.t,
                    v: p.v,
                })
            })
            .collect();
        let as_value = match out.value {
            Value::Scalar { .. } => Value::Scalar { t: at, v: vec.first().map_or(f64::NAN, |s| s.v) },
            _ => Value::Vector(vec),
        };
        compare(ev, &as_value)
            .map_err(|g| (expected_text, format!("range mode: {g}\n  result: {}", describe_value(&as_value))))?;
    }
    Ok(())
}

fn check_annotations(ev: &Eval, out: &QueryOutput) -> Result<(), String> {
    let e = &ev.expect;
    let a = &out.annotations;
    if e.any_warn && a.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if e.any_info && a.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    for (kind, expected, actual) in [("warn", &e.warn, &a.warnings), ("info", &e.info, &a.infos)] {
        if expected.is_empty() {
            continue;
        }
        if actual.is_empty() {
            return Err(format!("expected {kind} annotations but none were found"));
        }
        for m in expected {
            if !actual.iter().any(|x| m.matches(x)) {
                return Err(format!("expected {kind} annotation matching {} but found {actual:?}", m.describe()));
            }
        }
        for x in actual {
            if !expected.iter().any(|m| m.matches(x)) {
                return Err(format!("unexpected {kind} annotation {x:?}"));
            }
        }
    }
    if e.no_warn && !a.warnings.is_empty() {
        return Err(format!("unexpected warnings {:?}", a.warnings));
    }
    if e.no_info && !a.infos.is_empty() {
        return Err(format!("unexpected infos {:?}", a.infos));
    }
    Ok(())
}

fn compare(ev: &Eval, v: &Value) -> Result<(), String> {
    match v {
        Value::Scalar { v, .. } => match &ev.expected {
            Expected::Scalar(e) if almost_equal(*e, *v) => Ok(()),
            Expected::Scalar(e) => Err(format!("expected scalar {} but got {}", format_float(*e), format_float(*v))),
            _ => Err(format!("expected vector or matrix result, but got scalar {}", format_float(*v))),
        },
        Value::String { v, .. } => match &ev.expected {
            Expected::String(e) if e == v => Ok(()),
            _ => Err(format!("unexpected string {v:?}")),
        },
        Value::Vector(samples) => {
            let expected: &[(Labels, Vec<SeqValue>)] = match &ev.expected {
                Expected::Series(s) => s,
                Expected::Nothing => &[],
                Expected::Scalar(_) => return Err("expected scalar result, but got vector".into()),
                Expected::String(_) => return Err("expected string result, but got vector".into()),
            };
            for (pos, s) in samples.iter().enumerate() {
                let Some(k) = expected.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected metric {} in result, has value {}", s.labels, format_float(s.v)));
                };
                if ev.expect.ordered && k != pos {
                    return Err(format!("expected metric {} at position {} but was at {}", s.labels, k + 1, pos + 1));
                }
                let e = match expected[k].1.first() {
                    Some(SeqValue::Float(f)) => *f,
                    _ => return Err(format!("no expected value for {}", s.labels)),
                };
                if !almost_equal(e, s.v) {
                    return Err(format!("expected {} for {} but got {}", format_float(e), s.labels, format_float(s.v)));
                }
            }
            for (l, _) in expected {
                if !samples.iter().any(|s| s.labels == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
            if samples.len() != expected.len() {
                return Err("result has duplicate series".into());
            }
            Ok(())
        }
        Value::Matrix(series) => {
            if ev.expect.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            let expected: &[(Labels, Vec<SeqValue>)] = match &ev.expected {
                Expected::Series(s) => s,
                Expected::Nothing => &[],
                _ => return Err("expected scalar or string result, but got matrix".into()),
            };
            if let Some(w) = series.windows(2).find(|w| w[0].labels >= w[1].labels) {
                return Err(if w[0].labels == w[1].labels {
                    format!("result has duplicate series {}", w[0].labels)
                } else {
                    "matrix results should always be sorted by labels".into()
                });
            }
            let (start, end, step) = ev.range.or(ev.expect_range).unwrap_or((ev.at, ev.at, 1));
            for s in series {
                let Some((_, vals)) = expected.iter().find(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected metric {} in result", s.labels));
                };
                let mut want = Vec::new();
                for (i, v) in vals.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!(
                            "expected {} points for {}, but the range has fewer steps",
                            vals.len(),
                            s.labels
                        ));
                    }
                    if let SeqValue::Float(f) = v {
                        want.push(Sample::new(t, *f));
                    }
                }
                if want.len() != s.samples.len() {
                    return Err(format!("expected {} points for {} but got {}", want.len(), s.labels, s.samples.len()));
                }
                for (w, g) in want.iter().zip(&s.samples) {
                    if w.t != g.t {
                        return Err(format!("expected a point at {} for {} but it was at {}", w.t, s.labels, g.t));
                    }
                    if !almost_equal(w.v, g.v) {
                        return Err(format!(
                            "expected {} at t={} for {} but got {}",
                            format_float(w.v),
                            g.t,
                            s.labels,
                            format_float(g.v)
                        ));
                    }
                }
            }
            for (l, _) in expected {
                if !series.iter().any(|s| s.labels == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
            if series.len() != expected.len() {
                return Err(format!("expected {} series but got {}", expected.len(), series.len()));
            }
            Ok(())
        }
    }
}

fn describe_expected(ev: &Eval) -> String {
    let mut s = String::new();
    if let Some(f) = &ev.expect.fail {
        let _ = write!(s, "failure ({}) ", f.describe());
    }
    match &ev.expected {
        Expected::Nothing => s.push_str("empty result"),
        Expected::Scalar(v) => s.push_str(&format_float(*v)),
        Expected::String(v) => {
            let _ = write!(s, "string {v:?}");
        }
        Expected::Series(series) => {
            for (l, vals) in series {
                let vals: Vec<String> = vals
                    .iter()
                    .map(|v| match v {
                        SeqValue::Float(f) => format_float(*f),
                        SeqValue::Omitted => "_".into(),
                        SeqValue::Histogram => "{{..}}".into(),
                    })
                    .collect();
                let _ = write!(s, "\n    {l} {}", vals.join(" "));
            }
        }
    }
    s
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Scalar { v, .. } => format!("scalar {}", format_float(*v)),
        Value::String { v, .. } => format!("string {v:?}"),
        Value::Vector(s) if s.is_empty() => "empty vector".into(),
        Value::Vector(s) => {
            s.iter().map(|s| format!("\n    {} {}", s.labels, format_float(s.v))).collect::<Vec<_>>().join("")
        }
        Value::Matrix(m) if m.is_empty() => "empty matrix".into(),
        Value::Matrix(m) => m
            .iter()
            .map(|s| {
                let pts: Vec<String> = s.samples.iter().map(|p| format!("{}@{}", format_float(p.v), p.t)).collect();
                format!("\n    {} {}", s.labels, pts.join(" "))
            })
            .collect::<Vec<_>>()
            .join(""),
    }
}

fn parse_num_s(s: &str) -> Option<f64> {
    parse_num(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_notation_expands() {
        let (l, v) = parse_series(r#"m{a="b", c="d"} 1 2+3x2 _ stale _x2 1-1x1"#).unwrap();
        assert_eq!(l.to_string(), r#"m{a="b", c="d"}"#);
        let f: Vec<String> = v
            .iter()
            .map(|x| match x {
                SeqValue::Float(f) if telltale_model::is_stale_nan(*f) => "stale".to_string(),
                SeqValue::Float(f) => format_float(*f),
                SeqValue::Omitted => "_".into(),
                SeqValue::Histogram => "h".into(),
            })
            .collect();
        assert_eq!(f, ["1", "2", "5", "8", "_", "stale", "_", "_", "1", "0"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("1x").is_err());
    }

    #[test]
    fn a_small_script_passes() {
        let script = "load 1m\n  up{job=\"a\"} 0+1x10\n\neval instant at 5m up\n  up{job=\"a\"} 5\n\neval instant at 5m nope\n  up 1\n";
        let r = run_script("t", script);
        assert_eq!((r.passed, r.failed, r.skipped), (1, 1, 0));
    }

    #[test]
    fn a_matrix_with_a_duplicate_series_fails() {
        let (labels, vals) = parse_series(r#"up{job="a"} 1 2"#).unwrap();
        let ev = Eval {
            line: 1,
            query: "up".into(),
            range: Some((0, 60_000, 60_000)),
            at: 0,
            expect_range: None,
            expect: ExpectLines::default(),
            expected: Expected::Series(vec![(labels.clone(), vals)]),
        };
        let one = telltale_storage::Series {
            labels: labels.clone(),
            samples: vec![Sample::new(0, 1.0), Sample::new(60_000, 2.0)],
        };
        assert_eq!(compare(&ev, &Value::Matrix(vec![one.clone()])), Ok(()));
        let err = compare(&ev, &Value::Matrix(vec![one.clone(), one])).unwrap_err();
        assert!(err.contains("duplicate series"), "{err}");
    }
}
