//! InfluxDB line protocol (the body of v1 `POST /write` and v2 `POST /api/v2/write`) into a
//! [`WriteBatch`].
//!
//! Spec: <https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/> (and the
//! v1 reference for the extra `precision` values `n`, `u`, `m`, `h`:
//! <https://docs.influxdata.com/influxdb/v1/tools/api/#write-http-endpoint>).
//!
//! Naming follows VictoriaMetrics, so dashboards built against it keep working
//! (<https://docs.victoriametrics.com/victoriametrics/integrations/influxdb/>):
//! - each numeric field becomes its own series named `{measurement}_{field}`; a field called
//!   `value` is no exception (`cpu value=1` → `cpu_value`; VictoriaMetrics only drops the
//!   field name with `-influxSkipSingleField`, which is off by default). An empty measurement
//!   gives just `{field}`.
//! - tags become labels; a tag with an empty key or value is skipped.
//! - the `db` query parameter, when given, becomes a `db` label unless the line has a `db` tag.
//! - floats, integers (`1i`), unsigned integers (`1u`) and booleans (`t`, `true`, `F`, ... → 1
//!   or 0) are samples. String fields are skipped: VictoriaMetrics instead parses them "best
//!   effort" as numbers (0 when they are not), which invents values; Telltale stores none.
//!   A line whose fields are all strings yields nothing and is no error.
//! - a line without a timestamp gets `now_ms`. Timestamps are converted to milliseconds with
//!   the request's precision, nanoseconds by default as in InfluxDB (VictoriaMetrics guesses
//!   the unit from the magnitude instead; we do not guess).
//! - escapes: `\,`, `\=`, `\ ` and `\\` in measurements, tag keys and values and field keys;
//!   `\"` and `\\` in string field values. A backslash before anything else is kept.
//!   Lines starting with `#` are comments; `\r\n` line ends are accepted.
//! - the first bad line fails the request, naming its line number (InfluxDB also rejects
//!   the batch with 400 on a parse error).

use std::borrow::Cow;
use std::str::FromStr;

use telltale_model::{Sample, WriteBatch, METRIC_NAME};

use crate::error::{excerpt, Error, Result};
use crate::limits::Limits;
use crate::series::{check_request, SeriesBuilder};

/// The unit of line protocol timestamps, from the `precision` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `ns` (v2) or `n` (v1): the default.
    #[default]
    Nanoseconds,
    /// `us` (v2) or `u` / `µ` (v1).
    Microseconds,
    /// `ms`.
    Milliseconds,
    /// `s`.
    Seconds,
    /// `m` (v1 only).
    Minutes,
    /// `h` (v1 only).
    Hours,
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µ" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => {
                return Err(Error::Unsupported(format!(
                    "precision {}: want one of ns, us, ms, s (or n, u, m, h)",
                    excerpt(s.as_bytes())
                )))
            }
        })
    }
}

impl Precision {
    /// Converts a timestamp in this precision to milliseconds (flooring), or `None` on overflow.
    pub fn to_millis(self, t: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(t.div_euclid(1_000_000)),
            Precision::Microseconds => Some(t.div_euclid(1_000)),
            Precision::Milliseconds => Some(t),
            Precision::Seconds => t.checked_mul(1_000),
            Precision::Minutes => t.checked_mul(60_000),
            Precision::Hours => t.checked_mul(3_600_000),
        }
    }
}

/// Decodes a line protocol body. `now_ms` stamps lines without a timestamp; `db` (the v1
/// `db` query parameter) becomes a `db` label when given and not empty.
pub fn decode(body: &[u8], precision: Precision, now_ms: i64, db: Option<&str>, limits: &Limits) -> Result<WriteBatch> {
    let body = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::syntax(line, "body is not valid utf-8")
    })?;
    let db = db.filter(|d| !d.is_empty());
    let mut d =
        Decoder { precision, now_ms, db, limits, batch: WriteBatch::new(), tags: Vec::new(), fields: Vec::new() };
    for (i, raw) in body.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start_matches([' ', '\t']);
        if line.trim_end().is_empty() || line.starts_with('#') {
            continue;
        }
        d.line(line).map_err(|e| match e {
            Error::Syntax { reason, .. } => Error::syntax(i + 1, format!("{reason} in {}", excerpt(line.as_bytes()))),
            Error::InvalidSeries { series, reason } => {
                Error::syntax(i + 1, format!("invalid series {series}: {reason}"))
            }
            Error::Limit { limit, max, subject } => {
                Error::Limit { limit, max, subject: format!("{subject} on line {}", i + 1) }
            }
            other => other,
        })?;
    }
    Ok(d.batch)
}

fn bad(reason: impl Into<String>) -> Error {
    Error::syntax(0, reason)
}

struct Decoder<'a, 'l> {
    precision: Precision,
    now_ms: i64,
    db: Option<&'a str>,
    limits: &'l Limits,
    batch: WriteBatch,
    /// Tags of the current line, reused across lines.
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Numeric fields of the current line.
    fields: Vec<(Cow<'a, str>, f64)>,
}

impl<'a> Decoder<'a, '_> {
    /// `measurement[,tag=value...] field=value[,field=value...] [timestamp]`
    fn line(&mut self, line: &'a str) -> Result<()> {
        self.tags.clear();
        self.fields.clear();

        let end = find_unescaped(line, b", ");
        let measurement = unescape(&line[..end]);
        let mut rest = &line[end..];
        if let Some(r) = rest.strip_prefix(',') {
            let tags_end = find_unescaped(r, b" ");
            self.parse_tags(&r[..tags_end])?;
            rest = &r[tags_end..];
        }
        let rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return Err(bad("missing fields"));
        }
        let rest = self.parse_fields(rest)?;
        let ts = match rest.trim_matches(' ') {
            "" => self.now_ms,
            t => {
                let raw: i64 = t.parse().map_err(|_| bad(format!("invalid timestamp {}", excerpt(t.as_bytes()))))?;
                self.precision.to_millis(raw).ok_or_else(|| bad(format!("timestamp {raw} overflows")))?
            }
        };

        let mut name = String::new();
        for (field, v) in &self.fields {
            name.clear();
            if !measurement.is_empty() {
                name.push_str(&measurement);
                name.push('_');
            }
            name.push_str(field);
            let mut b = SeriesBuilder::new();
            b.push(METRIC_NAME, &name, self.limits)?;
            for (k, v) in &self.tags {
                b.push(k, v, self.limits)?;
            }
            if let Some(db) = self.db {
                if !b.has("db") {
                    b.push("db", db, self.limits)?;
                }
            }
            let labels = b.build(self.limits)?;
            self.batch.push_sample(labels, Sample::new(ts, *v));
            check_request(self.batch.series_count(), self.batch.sample_count(), self.limits)?;
        }
        Ok(())
    }

    fn parse_tags(&mut self, mut s: &'a str) -> Result<()> {
        while !s.is_empty() {
            let end = find_unescaped(s, b",");
            let tag = &s[..end];
            let eq = find_unescaped(tag, b"=");
            if eq == tag.len() {
                return Err(bad(format!("tag {} has no '='", excerpt(tag.as_bytes()))));
            }
            let (k, v) = (unescape(&tag[..eq]), unescape(&tag[eq + 1..]));
            if !k.is_empty() && !v.is_empty() {
                self.tags.push((k, v));
            }
            s = s.get(end + 1..).unwrap_or("");
        }
        Ok(())
    }

    /// Parses the field set; returns what follows it (the timestamp part).
    fn parse_fields(&mut self, mut s: &'a str) -> Result<&'a str> {
        loop {
            let eq = find_unescaped(s, b"=, ");
            if s.as_bytes().get(eq) != Some(&b'=') {
                return Err(bad(format!("field {} has no '='", excerpt(&s.as_bytes()[..eq]))));
            }
            let key = unescape(&s[..eq]);
            if key.is_empty() {
                return Err(bad("empty field key"));
            }
            s = &s[eq + 1..];
            if let Some(body) = s.strip_prefix('"') {
                // A string field: skipped (see the module docs); find its closing quote.
                let close = find_unescaped(body, b"\"");
                if close == body.len() {
                    return Err(bad(format!("unterminated string in field {key:?}")));
                }
                s = &body[close + 1..];
            } else {
                let end = s.find([',', ' ']).unwrap_or(s.len());
                let v = parse_field_value(&s[..end]).map_err(|e| bad(format!("field {key:?}: {e}")))?;
                self.fields.push((key, v));
                s = &s[end..];
            }
            match s.strip_prefix(',') {
                Some(r) => s = r,
                None if s.is_empty() || s.starts_with(' ') => return Ok(s),
                None => return Err(bad("expected ',' or ' ' after a field value")),
            }
        }
    }
}

/// Index of the first byte of `stops` in `s` that is not escaped by a backslash, or `s.len()`.
fn find_unescaped(s: &str, stops: &[u8]) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if stops.contains(&b[i]) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Removes the backslash from `\,`, `\=`, `\ `, `\\` and `\"`; keeps any other backslash.
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, ',' | '=' | ' ' | '\\' | '"') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

fn parse_field_value(v: &str) -> std::result::Result<f64, String> {
    let invalid = || format!("invalid value {}", excerpt(v.as_bytes()));
    match v {
        "" => return Err("missing value".into()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if let Some(i) = v.strip_suffix('i') {
        return i.parse::<i64>().map(|n| n as f64).map_err(|_| invalid());
    }
    if let Some(u) = v.strip_suffix('u') {
        return u.parse::<u64>().map(|n| n as f64).map_err(|_| invalid());
    }
    // Line protocol floats are plain decimals: Rust would also accept "inf" and "NaN".
    if !v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return Err(invalid());
    }
    let f: f64 = v.parse().map_err(|_| invalid())?;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::ErrorKind;

    fn series(b: &WriteBatch) -> Vec<(String, i64, f64)> {
        b.iter().map(|(l, s)| (l.to_string(), s[0].t, s[0].v)).collect()
    }

    fn dec(body: &str) -> Result<Vec<(String, i64, f64)>> {
        decode(body.as_bytes(), Precision::Nanoseconds, 99, None, &Limits::default()).map(|b| series(&b))
    }

    #[test]
    fn naming_follows_victoriametrics() {
        let s = dec("cpu,host=a,region=eu usage_idle=91.5,usage_user=2i,ok=t,msg=\"x y\" 1556813561098000000\n\
                     weather value=3u\n")
        .unwrap();
        assert_eq!(
            s,
            [
                (r#"cpu_usage_idle{host="a", region="eu"}"#.into(), 1556813561098, 91.5),
                (r#"cpu_usage_user{host="a", region="eu"}"#.into(), 1556813561098, 2.0),
                (r#"cpu_ok{host="a", region="eu"}"#.into(), 1556813561098, 1.0),
                ("weather_value".into(), 99, 3.0),
            ]
        );
    }

    #[test]
    fn db_label_unless_tagged() {
        let b = decode(b"m,db=own f=1\nm f=2", Precision::Seconds, 0, Some("telegraf"), &Limits::default()).unwrap();
        let s = series(&b);
        assert_eq!(s[0].0, r#"m_f{db="own"}"#);
        assert_eq!(s[1].0, r#"m_f{db="telegraf"}"#);
        let b = decode(b"m f=2", Precision::Seconds, 0, Some(""), &Limits::default()).unwrap();
        assert_eq!(series(&b)[0].0, "m_f");
    }

    #[test]
    fn escapes() {
        let s = dec(r#"my\ meas\,ure,tag\=key=va\ l\,ue,empty= fi\=eld=1,str="a \"q\" \\ , b=c" 5000000"#).unwrap();
        assert_eq!(s, [(r#"my meas,ure_fi=eld{tag=key="va l,ue"}"#.into(), 5, 1.0)]);
        // A backslash before an ordinary character is kept.
        assert_eq!(dec(r"m,path=C:\dir f=1").unwrap()[0].0, r#"m_f{path="C:\\dir"}"#);
    }

    #[test]
    fn precisions() {
        for (p, t, want) in [
            ("ns", 1_500_000_999i64, 1500),
            ("n", -1, -1),
            ("us", 1_500_999, 1500),
            ("u", 1_500_999, 1500),
            ("ms", 1500, 1500),
            ("s", 2, 2000),
            ("m", 2, 120_000),
            ("h", 1, 3_600_000),
        ] {
            let p: Precision = p.parse().unwrap();
            let b = decode(format!("m f=1 {t}").as_bytes(), p, 0, None, &Limits::default()).unwrap();
            assert_eq!(series(&b)[0].1, want, "{p:?}");
        }
        assert_eq!("d".parse::<Precision>().unwrap_err().kind(), ErrorKind::InvalidInput);
        let e = decode(b"m f=1 9223372036854775807", Precision::Hours, 0, None, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }

    #[test]
    fn comments_blank_lines_crlf_and_strings_only() {
        let s = dec("# comment\r\n\r\nm f=1 1000000\r\n  \nm s=\"only a string\"\n").unwrap();
        assert_eq!(s, [("m_f".into(), 1, 1.0)]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("m f=1\nm\n", "line 2: missing fields in \"m\""),
            ("m f\n", "line 1: field \"f\" has no '=' in \"m f\""),
            ("m f=abc\n", "line 1: field \"f\": invalid value \"abc\" in \"m f=abc\""),
            ("m f=inf\n", "line 1: field \"f\": invalid value \"inf\" in \"m f=inf\""),
            ("m f=1 12:00\n", "line 1: invalid timestamp \"12:00\" in \"m f=1 12:00\""),
            ("m,t f=1\n", "line 1: tag \"t\" has no '=' in \"m,t f=1\""),
            ("m s=\"open\n", "line 1: unterminated string in field \"s\" in \"m s=\\\"open\""),
            ("m =1\n", "line 1: empty field key in \"m =1\""),
            ("m f=1x\n", "line 1: field \"f\": invalid value \"1x\" in \"m f=1x\""),
            ("m f=1i2\n", "line 1: field \"f\": invalid value \"1i2\" in \"m f=1i2\""),
            ("m,__name__=x f=1\n", "line 1: invalid series \"x\": duplicate label name \"__name__\""),
        ];
        for (body, want) in cases {
            let e = dec(body).unwrap_err();
            assert_eq!(e.to_string(), want);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn limits() {
        let limits = Limits { max_samples_per_request: 2, ..Limits::default() };
        let e = decode(b"m a=1,b=2,c=3", Precision::Nanoseconds, 0, None, &limits).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.to_string(), "max_samples_per_request (2) exceeded by the request on line 1");
    }
}
