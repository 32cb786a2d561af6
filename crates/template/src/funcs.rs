//! Template functions: Go's builtins, Prometheus's (`humanize`, `query`, `reReplaceAll`,
//! ...) and Alertmanager's (`toUpper`, `join`, `safeHtml`, `stringSlice`, `date`, ...),
//! each with the upstream function's semantics and output format.

use std::collections::BTreeMap;

use crate::exec::{html_escape, Exec};
use crate::fmt::sprintf;
use crate::Value;

/// Go's zero `time.Time` (year 1), in milliseconds since the epoch.
pub(crate) const GO_ZERO_TIME_MS: i64 = -62_135_596_800_000;

const NAMES: &[&str] = &[
    // Go builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "call",
    // Prometheus
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "reReplaceAll",
    "match",
    "title",
    "toUpper",
    "toLower",
    "stripPort",
    "stripDomain",
    "safeHtml",
    "args",
    "tmpl",
    "graphLink",
    "tableLink",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "now",
    // Alertmanager
    "trimSpace",
    "join",
    "safeUrl",
    "urlUnescape",
    "stringSlice",
    "date",
    "tz",
    "toJson",
    "list",
    "append",
    "dict",
    "since",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn float_arg(name: &str, v: &Value) -> Result<f64, String> {
    v.to_f64().ok_or_else(|| format!("error calling {name}: can't convert {} to float", v.to_go_string()))
}

fn str_arg<'v>(name: &str, v: &'v Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("error calling {name}: wrong type for value; expected string; got {}", v.type_name()))
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

/// Go's `fmt.Sprint`: a space between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_) | Value::Safe(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

fn compare(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Str(x) | Value::Safe(x), Value::Str(y) | Value::Safe(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Ok(x.cmp(y)),
        (x, y) => match (x.to_f64().filter(|_| is_num(x)), y.to_f64().filter(|_| is_num(y))) {
            (Some(x), Some(y)) => x.partial_cmp(&y).ok_or_else(|| format!("error calling {name}: NaN")),
            _ => Err(format!("error calling {name}: incompatible types for comparison")),
        },
    }
}

fn is_num(v: &Value) -> bool {
    matches!(v, Value::Int(_) | Value::Float(_))
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x) | Value::Safe(x), Value::Str(y) | Value::Safe(y)) => x == y,
        (x, y) if is_num(x) && is_num(y) => x.to_f64() == y.to_f64(),
        (Value::Time(x), Value::Time(y)) => x == y,
        _ => false,
    }
}

pub(crate) fn call(ex: &mut Exec<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    let a = &args;
    Ok(match name {
        "and" => a.iter().find(|v| !v.truthy()).or(a.last()).cloned().unwrap_or(Value::Nil),
        "or" => a.iter().find(|v| v.truthy()).or(a.last()).cloned().unwrap_or(Value::Nil),
        "not" => {
            want(name, a, 1)?;
            Value::Bool(!a[0].truthy())
        }
        "len" => {
            want(name, a, 1)?;
            Value::Int(match &a[0] {
                Value::Str(s) | Value::Safe(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                v => return Err(format!("error calling len: len of type {}", v.type_name())),
            } as i64)
        }
        "index" => {
            let (mut v, idx) = a.split_first().ok_or("wrong number of args for index: want at least 1 got 0")?;
            let mut cur = v.clone();
            for i in idx {
                cur = match (&cur, i) {
                    (Value::List(l), Value::Int(n)) => l
                        .get(*n as usize)
                        .cloned()
                        .ok_or_else(|| format!("error calling index: index out of range: {n}"))?,
                    (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Str(String::new())),
                    (Value::Str(s), Value::Int(n)) => Value::Int(
                        *s.as_bytes().get(*n as usize).ok_or("error calling index: index out of range")? as i64,
                    ),
                    (Value::Nil, _) => return Err("error calling index: index of untyped nil".into()),
                    (c, _) => return Err(format!("error calling index: can't index item of type {}", c.type_name())),
                };
            }
            v = &cur;
            v.clone()
        }
        "slice" => {
            let (v, idx) = a.split_first().ok_or("wrong number of args for slice")?;
            let n = |i: usize| idx.get(i).and_then(|x| if let Value::Int(n) = x { Some(*n as usize) } else { None });
            match v {
                Value::Str(s) => {
                    let (lo, hi) = (n(0).unwrap_or(0), n(1).unwrap_or(s.len()));
                    Value::Str(s.get(lo..hi).ok_or("error calling slice: index out of range")?.to_string())
                }
                Value::List(l) => {
                    let (lo, hi) = (n(0).unwrap_or(0), n(1).unwrap_or(l.len()));
                    Value::List(l.get(lo..hi).ok_or("error calling slice: index out of range")?.to_vec())
                }
                v => return Err(format!("error calling slice: can't slice item of type {}", v.type_name())),
            }
        }
        "print" => Value::Str(sprint(a)),
        "println" => {
            let parts: Vec<String> = a.iter().map(Value::to_go_string).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let (f, rest) = a.split_first().ok_or("wrong number of args for printf: want at least 1 got 0")?;
            Value::Str(sprintf(str_arg(name, f)?, rest))
        }
        "eq" => {
            let (x, rest) = a.split_first().ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            Value::Bool(rest.iter().any(|y| equal(x, y)))
        }
        "ne" => {
            want(name, a, 2)?;
            Value::Bool(!equal(&a[0], &a[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let o = compare(name, &a[0], &a[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" => Value::Str(html_escape(&sprint(a))),
        "js" => Value::Str(js_escape(&sprint(a))),
        "urlquery" => Value::Str(query_escape(&sprint(a))),
        "call" => return Err("call is not supported: templates here have no function values".into()),
        "query" => {
            want(name, a, 1)?;
            let q = str_arg(name, &a[0])?;
            let f = ex.env.query.as_ref().ok_or("error calling query: no query engine available here")?;
            let samples = f(q).map_err(|e| format!("error calling query: {e}"))?;
            Value::List(
                samples
                    .into_iter()
                    .map(|s| Value::map([("Labels", Value::string_map(s.labels)), ("Value", Value::Float(s.value))]))
                    .collect(),
            )
        }
        "first" => {
            want(name, a, 1)?;
            match &a[0] {
                Value::List(l) => {
                    l.first().cloned().ok_or("error calling first: first() called on vector with no elements")?
                }
                v => return Err(format!("error calling first: wrong type {}", v.type_name())),
            }
        }
        "label" => {
            want(name, a, 2)?;
            crate::exec::field(&crate::exec::field(&a[1], "Labels")?, str_arg(name, &a[0])?)?
        }
        "value" => {
            want(name, a, 1)?;
            crate::exec::field(&a[0], "Value")?
        }
        "strvalue" => {
            want(name, a, 1)?;
            crate::exec::field(&crate::exec::field(&a[0], "Labels")?, "__value__")?
        }
        "sortByLabel" => {
            want(name, a, 2)?;
            let l = str_arg(name, &a[0])?.to_string();
            let Value::List(mut items) = a[1].clone() else {
                return Err("error calling sortByLabel: not a list".into());
            };
            let key = |v: &Value| {
                crate::exec::field(v, "Labels")
                    .and_then(|ls| crate::exec::field(&ls, &l))
                    .map(|x| x.to_go_string())
                    .unwrap_or_default()
            };
            items.sort_by_key(key);
            Value::List(items)
        }
        "humanize" => Value::Str(humanize(float_arg(name, one(name, a)?)?)),
        "humanize1024" => Value::Str(humanize1024(float_arg(name, one(name, a)?)?)),
        "humanizeDuration" => Value::Str(humanize_duration(float_arg(name, one(name, a)?)?)),
        "humanizePercentage" => Value::Str(humanize_percentage(float_arg(name, one(name, a)?)?)),
        "humanizeTimestamp" => {
            let v = float_arg(name, one(name, a)?)?;
            if v.is_nan() || v.is_infinite() {
                Value::Str(sprintf("%.4g", &[Value::Float(v)]))
            } else {
                Value::Str(crate::fmt::go_time((v * 1000.0).round() as i64, crate::fmt::GO_TIME_STRING))
            }
        }
        "toTime" => {
            let v = float_arg(name, one(name, a)?)?;
            Value::Time((v * 1000.0).round() as i64)
        }
        "toDuration" => Value::Float(float_arg(name, one(name, a)?)?),
        "parseDuration" => {
            let s = str_arg(name, one(name, a)?)?;
            let d =
                telltale_model::units::parse_duration(s).map_err(|e| format!("error calling parseDuration: {e}"))?;
            Value::Float(d.as_secs_f64())
        }
        "reReplaceAll" => {
            want(name, a, 3)?;
            let re =
                regex::Regex::new(str_arg(name, &a[0])?).map_err(|e| format!("error calling reReplaceAll: {e}"))?;
            Value::Str(re.replace_all(str_arg(name, &a[2])?, str_arg(name, &a[1])?).into_owned())
        }
        "match" => {
            want(name, a, 2)?;
            let re = regex::Regex::new(str_arg(name, &a[0])?).map_err(|e| format!("error calling match: {e}"))?;
            Value::Bool(re.is_match(str_arg(name, &a[1])?))
        }
        "title" => Value::Str(title(str_arg(name, one(name, a)?)?)),
        "toUpper" => Value::Str(str_arg(name, one(name, a)?)?.to_uppercase()),
        "toLower" => Value::Str(str_arg(name, one(name, a)?)?.to_lowercase()),
        "trimSpace" => Value::Str(str_arg(name, one(name, a)?)?.trim().to_string()),
        "stripPort" => Value::Str(strip_port(str_arg(name, one(name, a)?)?)),
        "stripDomain" => Value::Str(strip_domain(str_arg(name, one(name, a)?)?)),
        "safeHtml" | "safeUrl" => Value::Safe(one(name, a)?.to_go_string()),
        "urlUnescape" => Value::Str(unescape(str_arg(name, one(name, a)?)?)),
        "args" => Value::Map(a.iter().enumerate().map(|(i, v)| (format!("arg{i}"), v.clone())).collect()),
        "tmpl" => {
            want(name, a, 2)?;
            let t = str_arg(name, &a[0])?.to_string();
            Value::Str(ex.call_template(&t, &a[1])?)
        }
        "graphLink" => Value::Str(format!(
            "{}/graph?g0.expr={}&g0.tab=0",
            ex.env.external_url.trim_end_matches('/'),
            query_escape(str_arg(name, one(name, a)?)?)
        )),
        "tableLink" => Value::Str(format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            ex.env.external_url.trim_end_matches('/'),
            query_escape(str_arg(name, one(name, a)?)?)
        )),
        "externalURL" => Value::Str(ex.env.external_url.clone()),
        "pathPrefix" => Value::Str(path_prefix(&ex.env.external_url)),
        "now" => Value::Time(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        ),
        "since" => {
            let Value::Time(t) = one(name, a)? else { return Err("error calling since: not a time".into()) };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            Value::Float((now - t) as f64 / 1000.0)
        }
        "join" => {
            want(name, a, 2)?;
            let sep = str_arg(name, &a[0])?;
            let Value::List(l) = &a[1] else { return Err("error calling join: not a list".into()) };
            Value::Str(l.iter().map(Value::to_go_string).collect::<Vec<_>>().join(sep))
        }
        "stringSlice" | "list" => Value::List(a.clone()),
        "append" => {
            let (l, rest) = a.split_first().ok_or("wrong number of args for append")?;
            let Value::List(l) = l else { return Err("error calling append: not a list".into()) };
            Value::List(l.iter().chain(rest).cloned().collect())
        }
        "dict" => {
            if !a.len().is_multiple_of(2) {
                return Err("error calling dict: odd number of arguments".into());
            }
            let mut m = BTreeMap::new();
            for kv in a.chunks(2) {
                m.insert(kv[0].to_go_string(), kv[1].clone());
            }
            Value::Map(m)
        }
        "date" => {
            want(name, a, 2)?;
            let Value::Time(t) = &a[1] else { return Err("error calling date: not a time".into()) };
            Value::Str(crate::fmt::go_time(*t, str_arg(name, &a[0])?))
        }
        "tz" => {
            want(name, a, 2)?;
            match str_arg(name, &a[0])? {
                "UTC" | "Etc/UTC" | "Local" | "" => a[1].clone(),
                z => return Err(format!("error calling tz: time zone {z:?} is not supported (only UTC)")),
            }
        }
        "toJson" => Value::Str(one(name, a)?.to_json().to_string()),
        _ => return Err(format!("function {name:?} not defined")),
    })
}

fn one<'v>(name: &str, a: &'v [Value]) -> Result<&'v Value, String> {
    want(name, a, 1)?;
    Ok(&a[0])
}

fn g4(v: f64) -> String {
    sprintf("%.4g", &[Value::Float(v)])
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits (`1.235M`, `12.3m`).
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus's `humanize1024`: binary prefixes (`1Ki`, `1.5Gi`).
pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus's `humanizeDuration` of seconds: `1d 2h 3m 4s`, `1.5s`, `250ms`.
pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus's `humanizePercentage`: `0.1234` is `12.34%`.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Title case without lowering the rest (Prometheus's `cases.Title(..., cases.NoLower)`).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if letter && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = letter;
    }
    out
}

fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        return Some((&rest[..end], port));
    }
    let (h, p) = hp.rsplit_once(':')?;
    if h.contains(':') {
        return None;
    }
    Some((h, p))
}

/// Prometheus's `stripPort`: `host:port` to `host` (IPv6 brackets removed).
fn strip_port(hp: &str) -> String {
    match split_host_port(hp) {
        Some((h, _)) => h.to_string(),
        None => hp.to_string(),
    }
}

/// Prometheus's `stripDomain`: the first label of a host name, keeping the port; IPs stay.
fn strip_domain(hp: &str) -> String {
    let (host, port) = match split_host_port(hp) {
        Some((h, p)) => (h, Some(p)),
        None => (hp, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let first = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{first}:{p}"),
        None => first.to_string(),
    }
}

fn path_prefix(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].trim_end_matches('/').to_string(),
        None => String::new(),
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
