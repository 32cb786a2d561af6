//! Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text into a [`WriteBatch`].
//!
//! Specs: <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>
//! (0.0.4) and <https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md>
//! (OpenMetrics 1.0). Used by `POST /api/v1/import/prometheus` and by the scraper.
//!
//! Decisions:
//! - [`decode`] picks the format from the text itself: a body whose last line is `# EOF` is
//!   OpenMetrics, anything else 0.0.4. Callers that know the Content-Type (the scraper) use
//!   [`decode_format`] with [`Format::from_content_type`]. The difference matters: OpenMetrics
//!   timestamps are seconds (floats), 0.0.4 timestamps are integer milliseconds.
//! - `# TYPE`, `# HELP` and `# UNIT` become [`MetricMetadata`] (one entry per family, in
//!   order of first appearance; a repeated line overrides). Other comments are ignored.
//! - A sample without a timestamp gets `default_ts` (the import or scrape time, passed in).
//! - OpenMetrics `_created` samples of counter, histogram, gaugehistogram and summary
//!   families are dropped: their value is a creation time, not an observation, and storing
//!   them would add one series per counter (Prometheus does not store them either when it
//!   parses OpenMetrics with created-timestamp handling on). In 0.0.4 they are ordinary series.
//! - Exemplars (` # {...} value [ts]` after a sample) are skipped. `NaN`, `+Inf`, `-Inf` (any
//!   case) are values. Metric and label names may also be quoted UTF-8 strings
//!   (`{"my.metric", "my.label"="v"}`), as Prometheus 3 accepts.
//! - Parsing stops at the first bad line: the error names the line number and quotes it.
//!   The parser is lenient where real producers are sloppy: `\r\n` line ends, runs of blanks,
//!   empty lines, unknown comments, a trailing comma inside braces.

use std::borrow::Cow;
use std::collections::HashMap;

use telltale_model::{MetricMetadata, MetricType, Sample, WriteBatch, METRIC_NAME};

use crate::error::{excerpt, Error, Result};
use crate::limits::Limits;
use crate::series::{check_request, SeriesBuilder};

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The format a Content-Type names: `application/openmetrics-text` is OpenMetrics,
    /// everything else (including no header) is 0.0.4, as Prometheus's scraper falls back.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        match ct {
            Some(ct)
                if ct
                    .split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/openmetrics-text")) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// OpenMetrics if the last non-empty line is `# EOF` (which OpenMetrics requires), else 0.0.4.
    pub fn detect(text: &[u8]) -> Format {
        let trimmed = text.trim_ascii_end();
        let last = trimmed.rsplit(|&b| b == b'\n').next().unwrap_or(b"");
        if last.trim_ascii() == b"# EOF" {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// Decodes exposition text, detecting the format with [`Format::detect`]. Samples without a
/// timestamp get `default_ts` (milliseconds).
pub fn decode(text: &[u8], default_ts: i64, limits: &Limits) -> Result<WriteBatch> {
    decode_format(text, Format::detect(text), default_ts, limits)
}

/// Decodes exposition text in the given format.
pub fn decode_format(text: &[u8], format: Format, default_ts: i64, limits: &Limits) -> Result<WriteBatch> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::syntax(line, "text is not valid utf-8")
    })?;
    let mut p =
        Parser { format, default_ts, limits, batch: WriteBatch::new(), families: HashMap::new(), pairs: Vec::new() };
    let mut eof_line = None;
    let mut last_line = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.trim_end().is_empty() {
            continue;
        }
        last_line = line_no;
        if let Some(eof) = eof_line {
            return Err(Error::syntax(line_no, format!("unexpected content after \"# EOF\" on line {eof}")));
        }
        let r = if let Some(comment) = trimmed.strip_prefix('#') {
            if format == Format::OpenMetrics && trimmed.trim_end() == "# EOF" {
                eof_line = Some(line_no);
                Ok(())
            } else {
                p.comment(comment)
            }
        } else {
            p.sample(trimmed)
        };
        r.map_err(|e| at_line(e, line_no, line))?;
    }
    if format == Format::OpenMetrics && eof_line.is_none() {
        return Err(Error::syntax(last_line + 1, "openmetrics text must end with \"# EOF\""));
    }
    Ok(p.batch)
}

/// Attaches the line number (and the line, for syntax errors) to an error from one line.
fn at_line(e: Error, line_no: usize, line: &str) -> Error {
    match e {
        Error::Syntax { reason, .. } => Error::syntax(line_no, format!("{reason} in {}", excerpt(line.as_bytes()))),
        Error::InvalidSeries { series, reason } => Error::syntax(line_no, format!("invalid series {series}: {reason}")),
        Error::Limit { limit, max, subject } => {
            Error::Limit { limit, max, subject: format!("{subject} on line {line_no}") }
        }
        other => other,
    }
}

/// A line-local syntax error; [`at_line`] adds the number and the text.
fn bad(reason: impl Into<String>) -> Error {
    Error::syntax(0, reason)
}

struct Parser<'a, 'l> {
    format: Format,
    default_ts: i64,
    limits: &'l Limits,
    batch: WriteBatch,
    /// Family name → index in `batch.metadata`.
    families: HashMap<Cow<'a, str>, usize>,
    /// Label pairs of the current line, reused across lines.
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Parser<'a, '_> {
    /// `# HELP name text`, `# TYPE name type`, `# UNIT name unit`; anything else is a comment.
    fn comment(&mut self, rest: &'a str) -> Result<()> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_blank(rest);
        let rest = rest.trim_start_matches([' ', '\t']);
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") || rest.is_empty() {
            return Ok(());
        }
        let (name, rest) = if rest.starts_with('"') {
            let (name, rest) = quoted(rest)?;
            (name, rest)
        } else {
            let (name, rest) = split_blank(rest);
            (Cow::Borrowed(name), rest)
        };
        if name.is_empty() {
            return Err(bad(format!("missing metric name after {keyword}")));
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let openmetrics = self.format == Format::OpenMetrics;
        let m = self.family(name);
        match keyword {
            "HELP" => m.help = unescape_help(rest.trim_end(), openmetrics),
            "UNIT" => m.unit = rest.trim_end().to_string(),
            _ => m.kind = parse_type(rest.trim_end())?,
        }
        Ok(())
    }

    fn family(&mut self, name: Cow<'a, str>) -> &mut MetricMetadata {
        let md = &mut self.batch.metadata;
        let i = *self.families.entry(name).or_insert_with_key(|name| {
            md.push(MetricMetadata { metric_family: name.to_string(), ..MetricMetadata::default() });
            md.len() - 1
        });
        &mut md[i]
    }

    /// `name{labels} value [timestamp] [# exemplar]`
    fn sample(&mut self, line: &'a str) -> Result<()> {
        self.pairs.clear();
        let mut name: Option<Cow<'a, str>> = None;
        let mut rest = line;
        if !rest.starts_with('{') {
            let end = rest.find(|c: char| !is_metric_name_char(c)).unwrap_or(rest.len());
            let (n, r) = rest.split_at(end);
            if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(bad("invalid metric name"));
            }
            name = Some(Cow::Borrowed(n));
            rest = r;
        }
        // Blanks may separate the name from its braces (the Go parser allows that too).
        if let Some(r) = rest.trim_start_matches([' ', '\t']).strip_prefix('{') {
            rest = self.labels(r, &mut name)?;
        } else if !rest.starts_with([' ', '\t']) {
            return Err(bad("expected a blank before the value"));
        }
        let Some(name) = name.filter(|n| !n.is_empty()) else { return Err(bad("missing metric name")) };
        let (value, rest) = split_blank(rest.trim_start_matches([' ', '\t']));
        let v = parse_value(value)?;
        let (ts, rest) = match rest.trim_start_matches([' ', '\t']) {
            "" => (self.default_ts, ""),
            r if r.starts_with('#') => (self.default_ts, r),
            r => {
                let (t, rest) = split_blank(r);
                (self.parse_timestamp(t)?, rest.trim_start_matches([' ', '\t']))
            }
        };
        // OpenMetrics exemplars follow " # "; skipped (see the module docs).
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(bad(format!("unexpected text {} after the sample", excerpt(rest.as_bytes()))));
        }
        if self.format == Format::OpenMetrics && self.is_created_sample(&name) {
            return Ok(());
        }

        let limits = self.limits;
        let mut b = SeriesBuilder::new();
        b.push(METRIC_NAME, &name, limits)?;
        for (n, v) in &self.pairs {
            b.push(n, v, limits)?;
        }
        let labels = b.build(limits)?;
        self.batch.push_sample(labels, Sample::new(ts, v));
        check_request(self.batch.series_count(), self.batch.sample_count(), limits)
    }

    /// Parses the inside of `{...}` into `self.pairs` (and a quoted metric name into `name`);
    /// returns what follows the `}`.
    fn labels(&mut self, mut rest: &'a str, name: &mut Option<Cow<'a, str>>) -> Result<&'a str> {
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix('}') {
                return Ok(r);
            }
            let label: Cow<'a, str>;
            if rest.starts_with('"') {
                let (s, r) = quoted(rest)?;
                rest = r.trim_start_matches([' ', '\t']);
                if !rest.starts_with('=') {
                    // A lone quoted string is the metric name (Prometheus 3's UTF-8 syntax).
                    if name.is_some() {
                        return Err(bad("metric name given twice"));
                    }
                    *name = Some(s);
                    rest = self.after_label(rest)?;
                    continue;
                }
                label = s;
            } else {
                let end = rest.find(|c: char| !is_label_name_char(c)).unwrap_or(rest.len());
                let (n, r) = rest.split_at(end);
                if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(bad("invalid label name"));
                }
                label = Cow::Borrowed(n);
                rest = r.trim_start_matches([' ', '\t']);
            }
            let Some(r) = rest.strip_prefix('=') else {
                return Err(bad(format!("expected '=' after label name {label:?}")));
            };
            rest = r.trim_start_matches([' ', '\t']);
            if !rest.starts_with('"') {
                return Err(bad(format!("expected a quoted value for label {label:?}")));
            }
            let (value, r) = quoted(rest)?;
            self.pairs.push((label, value));
            rest = self.after_label(r)?;
        }
    }

    /// After a label: blanks, then `,` (consumed) or `}` (left for the caller).
    fn after_label(&self, rest: &'a str) -> Result<&'a str> {
        let rest = rest.trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix(',') {
            Ok(r)
        } else if rest.starts_with('}') {
            Ok(rest)
        } else {
            Err(bad("expected ',' or '}' after a label"))
        }
    }

    fn parse_timestamp(&self, t: &str) -> Result<i64> {
        let invalid = || bad(format!("invalid timestamp {}", excerpt(t.as_bytes())));
        match self.format {
            Format::Prometheus => t.parse::<i64>().map_err(|_| invalid()),
            // Seconds, possibly fractional; integers are converted exactly.
            Format::OpenMetrics => {
                if let Ok(s) = t.parse::<i64>() {
                    return s.checked_mul(1000).ok_or_else(invalid);
                }
                let s: f64 = t.parse().map_err(|_| invalid())?;
                let ms = (s * 1000.0).round();
                if !ms.is_finite() || ms.abs() >= 9.2e18 {
                    return Err(invalid());
                }
                Ok(ms as i64)
            }
        }
    }

    fn is_created_sample(&self, name: &str) -> bool {
        let Some(family) = name.strip_suffix("_created") else { return false };
        self.families.get(family).is_some_and(|&i| {
            matches!(
                self.batch.metadata[i].kind,
                MetricType::Counter | MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Summary
            )
        })
    }
}

fn is_metric_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits at the first blank: (word, rest starting at the blank).
fn split_blank(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    s.split_at(end)
}

/// Parses a `"..."` string at the start of `s` (escapes `\\`, `\"`, `\n`; any other escape
/// is kept verbatim, as Prometheus does). Returns the value and what follows the quote.
fn quoted(s: &str) -> Result<(Cow<'_, str>, &str)> {
    let body = &s[1..];
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'\\' => return quoted_slow(body, i),
            b'"' => return Ok((Cow::Borrowed(&body[..i]), &body[i + 1..])),
            _ => {}
        }
    }
    Err(bad("unterminated quoted string"))
}

/// The escaped part of [`quoted`]: `body[..start]` has no escapes, `body[start]` is `\`.
fn quoted_slow(body: &str, start: usize) -> Result<(Cow<'_, str>, &str)> {
    let mut out = String::with_capacity(body.len().min(256));
    out.push_str(&body[..start]);
    let mut chars = body[start..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Cow::Owned(out), &body[start + i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(bad("unterminated quoted string"))
}

/// HELP text escapes: `\\` and `\n` (and `\"` in OpenMetrics); others are kept verbatim.
fn unescape_help(s: &str, openmetrics: bool) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if openmetrics => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The 0.0.4 and OpenMetrics type names (accepted in either format: producers mix them).
fn parse_type(t: &str) -> Result<MetricType> {
    Ok(match t {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" | "unknown" => MetricType::Unknown,
        "gaugehistogram" => MetricType::GaugeHistogram,
        "info" => MetricType::Info,
        "stateset" => MetricType::StateSet,
        _ => return Err(bad(format!("invalid metric type {}", excerpt(t.as_bytes())))),
    })
}

/// A sample value: a float in Go's `ParseFloat` syntax as Prometheus writes it, including
/// `NaN`, `+Inf`, `-Inf` in any case.
fn parse_value(v: &str) -> Result<f64> {
    if v.is_empty() {
        return Err(bad("missing value"));
    }
    v.parse::<f64>().map_err(|_| bad(format!("invalid value {}", excerpt(v.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::ErrorKind;

    fn series(b: &WriteBatch) -> Vec<(String, i64, f64)> {
        b.iter().map(|(l, s)| (l.to_string(), s[0].t, s[0].v)).collect()
    }

    #[test]
    fn prometheus_basics() {
        let text = b"# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
nan_value NaN\n";
        let b = decode(text, 42, &Limits::default()).unwrap();
        let s = series(&b);
        assert_eq!(s[0], (r#"http_requests_total{code="200", method="post"}"#.into(), 1395066363000, 1027.0));
        assert_eq!(s[1].2, 3.0);
        assert_eq!(
            s[2].0,
            r#"msdos_file_access_time_seconds{error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"}"#
        );
        assert_eq!(s[3], ("metric_without_timestamp_and_labels".into(), 42, 12.47));
        assert_eq!((s[4].1, s[4].2), (-3982045, f64::INFINITY));
        assert!(s[5].2.is_nan());
        assert_eq!(
            b.metadata,
            [MetricMetadata {
                metric_family: "http_requests_total".into(),
                kind: MetricType::Counter,
                help: "The total number of HTTP requests.".into(),
                unit: String::new()
            }]
        );
    }

    #[test]
    fn openmetrics_created_units_and_exemplars() {
        let text = b"# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE foo counter\n\
foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
foo_created 1520430000.123\n\
# TYPE g gauge\n\
g_created 5 1\n\
# EOF\n";
        assert_eq!(Format::detect(text), Format::OpenMetrics);
        let b = decode(text, 7, &Limits::default()).unwrap();
        let s = series(&b);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!(s[2], ("foo_total".into(), 1520879607789, 17.0));
        // Only counter/histogram/summary `_created` are dropped.
        assert_eq!(s[3], ("g_created".into(), 1000, 5.0));
        assert_eq!(b.metadata[0].unit, "seconds");
        assert_eq!(b.metadata[0].kind, MetricType::Summary);
        assert_eq!(b.metadata[0].help, "Latency though all of ACME's HTTP request router.");
    }

    #[test]
    fn openmetrics_needs_eof_and_nothing_after() {
        let e = decode_format(b"a 1\n", Format::OpenMetrics, 0, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 2: openmetrics text must end with \"# EOF\"");
        let e = decode_format(b"a 1\n# EOF\nb 2\n", Format::OpenMetrics, 0, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 3: unexpected content after \"# EOF\" on line 2");
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"ok 1\nbad{a=\"1\" 2\n", "line 2: expected ',' or '}' after a label in \"bad{a=\\\"1\\\" 2\""),
            (b"a 1\nb\n", "line 2: expected a blank before the value in \"b\""),
            (b"x{a=\"1\",a=\"2\"} 1\n", "line 1: invalid series \"x\": duplicate label name \"a\""),
            (b"x one\n", "line 1: invalid value \"one\" in \"x one\""),
            (b"x 1 12.5\n", "line 1: invalid timestamp \"12.5\" in \"x 1 12.5\""),
            (b"# TYPE x countr\n", "line 1: invalid metric type \"countr\" in \"# TYPE x countr\""),
            (b"x{a=\"1} 1\n", "line 1: unterminated quoted string in \"x{a=\\\"1} 1\""),
            (b"x 1 2 3\n", "line 1: unexpected text \"3\" after the sample in \"x 1 2 3\""),
            (b"{a=\"1\"} 1\n", "line 1: missing metric name in \"{a=\\\"1\\\"} 1\""),
            (b"{\"\", a=\"1\"} 1\n", "line 1: missing metric name in \"{\\\"\\\", a=\\\"1\\\"} 1\""),
            (b"a 1\n\xff 2\n", "line 2: text is not valid utf-8"),
        ];
        for (text, want) in cases {
            let e = decode(text, 0, &Limits::default()).unwrap_err();
            assert_eq!(e.to_string(), *want);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn limits_apply_per_line() {
        let limits = Limits { max_labels_per_series: 2, ..Limits::default() };
        let e = decode(b"a 1\nb{x=\"1\",y=\"2\"} 1\n", 0, &limits).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"max_labels_per_series (2) exceeded by series b{x="1", y="2"} (3 labels) on line 2"#
        );
        let limits = Limits { max_series_per_request: 1, ..Limits::default() };
        assert_eq!(decode(b"a 1\nb 1\n", 0, &limits).unwrap_err().kind(), ErrorKind::TooLarge);
    }

    #[test]
    fn utf8_names_and_leniency() {
        let text = "{\"my.metric\", \"my.label\"=\"ü\", b=\"2\",} 1\r\n  spaced  {a=\"1\"}\t2\t3\n# random comment\n";
        let b = decode(text.as_bytes(), 0, &Limits::default()).unwrap();
        let s = series(&b);
        assert_eq!(s[0].0, r#"my.metric{b="2", my.label="ü"}"#);
        assert_eq!(s[1], (r#"spaced{a="1"}"#.into(), 3, 2.0));
    }

    #[test]
    fn help_escapes_differ_by_format() {
        let text = b"# HELP a x\\\\y\\nz \\\"q\\\" \\t\na 1\n";
        let p = decode_format(text, Format::Prometheus, 0, &Limits::default()).unwrap();
        assert_eq!(p.metadata[0].help, "x\\y\nz \\\"q\\\" \\t");
        let mut om = text.to_vec();
        om.extend_from_slice(b"# EOF\n");
        let o = decode(&om, 0, &Limits::default()).unwrap();
        assert_eq!(o.metadata[0].help, "x\\y\nz \"q\" \\t");
    }

    #[test]
    fn content_type() {
        assert_eq!(Format::from_content_type(Some("application/openmetrics-text; version=1.0.0")), Format::OpenMetrics);
        assert_eq!(Format::from_content_type(Some("text/plain; version=0.0.4")), Format::Prometheus);
        assert_eq!(Format::from_content_type(None), Format::Prometheus);
    }
}
