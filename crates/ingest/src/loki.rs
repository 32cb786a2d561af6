//! Loki's push API (`POST /loki/api/v1/push`) into a [`LogBatch`]: JSON and snappy-compressed
//! protobuf, structured metadata kept.
//!
//! Spec: <https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs>; messages:
//! `pkg/push/push.proto` in <https://github.com/grafana/loki> (`PushRequest { repeated
//! StreamAdapter streams = 1 }`, `StreamAdapter { string labels = 1; repeated EntryAdapter
//! entries = 2; uint64 hash = 3 }`, `EntryAdapter { Timestamp timestamp = 1; string line = 2;
//! repeated LabelPairAdapter structuredMetadata = 3 }`).
//!
//! Decisions:
//! - JSON timestamps are strings of nanoseconds, as Loki documents; integers are accepted
//!   too. The pre-2.0 JSON shape (`labels` string and `entries` with RFC 3339 `ts`), which
//!   some old clients still send, is accepted as well.
//! - The whole request is decoded or refused with one reason, as Loki does (it answers 400).

use serde::Deserialize;
use serde_json::value::RawValue;
use telltale_model::{Labels, LogBatch, Nanos};

use crate::error::{excerpt, Error, Result};
use crate::loglimits::{LogBuilder, LogLimits};
use crate::pb::{Reader, LEN, VARINT};

/// Decodes a JSON push body (already un-gzipped).
pub fn decode_json(body: &[u8], limits: &LogLimits) -> Result<LogBatch> {
    #[derive(Deserialize)]
    struct Push<'a> {
        #[serde(borrow, default)]
        streams: Vec<Stream<'a>>,
    }
    #[derive(Deserialize)]
    struct Stream<'a> {
        #[serde(default)]
        stream: Option<std::collections::BTreeMap<String, String>>,
        #[serde(borrow, default)]
        values: Vec<Vec<&'a RawValue>>,
        // Legacy shape.
        #[serde(default)]
        labels: Option<String>,
        #[serde(default)]
        entries: Vec<LegacyEntry>,
    }
    #[derive(Deserialize)]
    struct LegacyEntry {
        #[serde(alias = "timestamp")]
        ts: String,
        line: String,
    }
    let push: Push<'_> = serde_json::from_slice(body).map_err(|e| json_err(&e))?;
    let mut b = LogBuilder::new(limits);
    for (i, s) in push.streams.iter().enumerate() {
        let labels = match (&s.stream, &s.labels) {
            (Some(map), _) => b.stream(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
            (None, Some(text)) => {
                let pairs = parse_labels(text)?;
                b.stream(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?
            }
            (None, None) => b.stream([])?,
        };
        for (j, v) in s.values.iter().enumerate() {
            let at = || format!("streams[{i}].values[{j}]");
            if v.len() < 2 || v.len() > 3 {
                return Err(Error::syntax(1, format!("{}: want [\"<unix ns>\", \"<line>\"(, {{metadata}})]", at())));
            }
            let ts = json_ns(v[0]).ok_or_else(|| {
                Error::syntax(
                    1,
                    format!("{}: timestamp {} is not a string of nanoseconds", at(), excerpt(v[0].get().as_bytes())),
                )
            })?;
            let line: std::borrow::Cow<'_, str> = serde_json::from_str(v[1].get())
                .map_err(|_| Error::syntax(1, format!("{}: the line must be a string", at())))?;
            let meta = match v.get(2) {
                None => Labels::empty(),
                Some(raw) => {
                    let m: std::collections::BTreeMap<String, String> =
                        serde_json::from_str(raw.get()).map_err(|_| {
                            Error::syntax(1, format!("{}: structured metadata must map strings to strings", at()))
                        })?;
                    b.metadata(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))?
                }
            };
            b.entry(&labels, ts, &line, meta)?;
        }
        for e in &s.entries {
            let ts = parse_rfc3339_ns(&e.ts)
                .ok_or_else(|| Error::syntax(1, format!("streams[{i}]: timestamp {:?} is not RFC 3339", e.ts)))?;
            b.entry(&labels, ts, &e.line, Labels::empty())?;
        }
    }
    Ok(b.batch)
}

fn json_err(e: &serde_json::Error) -> Error {
    Error::syntax(e.line(), format!("invalid JSON push body at column {}: {e}", e.column()))
}

fn json_ns(raw: &RawValue) -> Option<Nanos> {
    let s = raw.get();
    let digits = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s);
    digits.parse::<i64>().ok()
}

/// Decodes a protobuf push body, snappy block compressed as every Loki client sends it.
pub fn decode_proto(body: &[u8], limits: &LogLimits) -> Result<LogBatch> {
    // The length snappy announces is checked before it is allocated (found by the loki_proto
    // fuzz target: 7 bytes announcing 2.8 GB).
    let n = snap::raw::decompress_len(body).map_err(Error::Snappy)?;
    if crate::limits::over(n, usize::try_from(limits.max_decompressed_bytes).unwrap_or(usize::MAX)) {
        return Err(crate::loglimits::limit(
            "max_decompressed_bytes",
            limits.max_decompressed_bytes,
            format!("a body announcing {n} decompressed bytes"),
        ));
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(Error::Snappy)?;
    decode_proto_raw(&raw, limits)
}

/// Decodes an uncompressed `logproto.PushRequest`.
pub fn decode_proto_raw(raw: &[u8], limits: &LogLimits) -> Result<LogBatch> {
    let mut b = LogBuilder::new(limits);
    let mut r = Reader::new(raw);
    let mut meta: Vec<(&str, &str)> = Vec::new();
    while r.has_more() {
        let (field, wire) = r.key()?;
        if field != 1 {
            r.skip(wire)?;
            continue;
        }
        r.expect(wire, LEN)?;
        let mut s = r.message()?;
        // Labels come first in every client we know, but the wire allows any order: collect
        // the entries' readers until the labels are known.
        let mut labels: Option<Labels> = None;
        let mut pending: Vec<Reader<'_>> = Vec::new();
        while s.has_more() {
            let (f, w) = s.key()?;
            match f {
                1 => {
                    s.expect(w, LEN)?;
                    let text = s.str()?;
                    let pairs = parse_labels(text)?;
                    labels = Some(b.stream(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?);
                }
                2 => {
                    s.expect(w, LEN)?;
                    pending.push(s.message()?);
                }
                _ => s.skip(w)?,
            }
        }
        let labels = match labels {
            Some(l) => l,
            None => b.stream([])?,
        };
        for mut e in pending {
            let (mut ts, mut line) = (0i64, "");
            meta.clear();
            while e.has_more() {
                let (f, w) = e.key()?;
                match f {
                    1 => {
                        e.expect(w, LEN)?;
                        ts = timestamp(e.message()?)?;
                    }
                    2 => {
                        e.expect(w, LEN)?;
                        line = e.str()?;
                    }
                    3 => {
                        e.expect(w, LEN)?;
                        let mut p = e.message()?;
                        let (mut k, mut v) = ("", "");
                        while p.has_more() {
                            let (f, w) = p.key()?;
                            match f {
                                1 => {
                                    p.expect(w, LEN)?;
                                    k = p.str()?;
                                }
                                2 => {
                                    p.expect(w, LEN)?;
                                    v = p.str()?;
                                }
                                _ => p.skip(w)?,
                            }
                        }
                        meta.push((k, v));
                    }
                    _ => e.skip(w)?,
                }
            }
            let m = b.metadata(meta.iter().copied())?;
            b.entry(&labels, ts, line, m)?;
        }
    }
    Ok(b.batch)
}

/// `google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }` in nanoseconds.
fn timestamp(mut r: Reader<'_>) -> Result<Nanos> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    while r.has_more() {
        let (f, w) = r.key()?;
        match f {
            1 => {
                r.expect(w, VARINT)?;
                secs = r.varint()? as i64;
            }
            2 => {
                r.expect(w, VARINT)?;
                nanos = i64::from(r.varint()? as i32);
            }
            _ => r.skip(w)?,
        }
    }
    secs.checked_mul(1_000_000_000).and_then(|s| s.checked_add(nanos)).ok_or_else(|| r.err("timestamp out of range"))
}

/// Parses a label set in Prometheus notation, `{name="value", ...}`, as Loki's clients send
/// stream labels. Values use Go string escapes (`\"`, `\\`, `\n`, `\t`, `\uXXXX`).
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>> {
    let bad = |why: &str| Error::syntax(1, format!("invalid stream labels {}: {why}", excerpt(text.as_bytes())));
    let s = text.trim();
    let inner =
        s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).ok_or_else(|| bad("want {name=\"value\", ...}"))?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(bad("expected a label name"));
        }
        rest = rest[name_end..].trim_start();
        rest = rest.strip_prefix('=').ok_or_else(|| bad("expected ="))?.trim_start();
        let (value, after) = quoted(rest).ok_or_else(|| bad("expected a quoted value"))?;
        out.push((name.to_string(), value));
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(bad("expected , between labels"));
        }
    }
    Ok(out)
}

/// A Go-style double-quoted (or back-quoted) string at the start of `s`, and what follows it.
pub(crate) fn quoted(s: &str) -> Option<(String, &str)> {
    if let Some(r) = s.strip_prefix('`') {
        let end = r.find('`')?;
        return Some((r[..end].to_string(), &r[end + 1..]));
    }
    let r = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = r.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &r[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` in nanoseconds since the epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let frac: String = s[i..i + digits].chars().chain("000000000".chars()).take(9).collect();
        nanos = frac.parse().ok()?;
        i += digits;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_min * 60;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Encodes a batch as an uncompressed `logproto.PushRequest`, as Promtail sends it (before
/// snappy). Used by tests, the fuzz seeds and `telltale agent`'s shipper.
pub fn encode_proto(batch: &LogBatch) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, n: u32, bytes: &[u8]) {
        varint(out, u64::from(n << 3 | 2));
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for (labels, entries) in batch.iter() {
        let mut s = Vec::new();
        field(&mut s, 1, labels_text(labels).as_bytes());
        for e in entries {
            let mut m = Vec::new();
            let mut ts = Vec::new();
            varint(&mut ts, 8);
            varint(&mut ts, e.ts.div_euclid(1_000_000_000) as u64);
            varint(&mut ts, 16);
            varint(&mut ts, e.ts.rem_euclid(1_000_000_000) as u64);
            field(&mut m, 1, &ts);
            field(&mut m, 2, e.line.as_bytes());
            for (k, v) in e.metadata.iter() {
                let mut p = Vec::new();
                field(&mut p, 1, k.as_bytes());
                field(&mut p, 2, v.as_bytes());
                field(&mut m, 3, &p);
            }
            field(&mut s, 2, &m);
        }
        field(&mut out, 1, &s);
    }
    out
}

/// `{a="1", b="2"}` with Go escapes.
pub fn labels_text(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&format!("{v:?}"));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::LogEntry;

    fn lim() -> LogLimits {
        LogLimits::default()
    }

    #[test]
    fn issue_7_decompressed_size_is_limited_before_allocating() {
        // From the loki_proto fuzz target: 7 bytes whose snappy header announces 2.8 GB.
        let body = [216, 216, 216, 216, 10, 58, 14];
        let e = decode_proto(&body, &lim()).unwrap_err().to_string();
        assert!(e.contains("max_decompressed_bytes") && e.contains("2870357080"), "{e}");
        assert_eq!(decode_proto(&body, &lim()).unwrap_err().kind(), telltale_model::ErrorKind::TooLarge);
    }

    fn rows(b: &LogBatch) -> Vec<(String, i64, String, String)> {
        b.iter()
            .flat_map(|(l, es)| es.iter().map(move |e| (l.to_string(), e.ts, e.line.clone(), e.metadata.to_string())))
            .collect()
    }

    #[test]
    fn json_push_with_structured_metadata() {
        let body = br#"{"streams":[{"stream":{"job":"api","level":"info"},"values":[
            ["1700000000000000001","GET / 200"],
            ["1700000000000000002","with \"meta\" \u00e9",{"trace_id":"abc","user":"u1"}],
            [1700000000000000003,"numeric ts"]]}]}"#;
        let b = decode_json(body, &lim()).unwrap();
        assert_eq!(
            rows(&b),
            [
                (r#"{job="api", level="info"}"#.into(), 1700000000000000001, "GET / 200".into(), "{}".into()),
                (
                    r#"{job="api", level="info"}"#.into(),
                    1700000000000000002,
                    "with \"meta\" é".into(),
                    r#"{trace_id="abc", user="u1"}"#.into()
                ),
                (r#"{job="api", level="info"}"#.into(), 1700000000000000003, "numeric ts".into(), "{}".into()),
            ]
        );
    }

    #[test]
    fn legacy_json_shape() {
        let body =
            br#"{"streams":[{"labels":"{job=\"old\"}","entries":[{"ts":"2023-11-14T22:13:20.5Z","line":"hi"}]}]}"#;
        let b = decode_json(body, &lim()).unwrap();
        assert_eq!(rows(&b), [(r#"{job="old"}"#.into(), 1_700_000_000_500_000_000, "hi".into(), "{}".into())]);
    }

    #[test]
    fn json_errors_say_where() {
        let e = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["x","y"]]}]}"#, &lim()).unwrap_err();
        assert_eq!(e.to_string(), r#"line 1: streams[0].values[0]: timestamp "\"x\"" is not a string of nanoseconds"#);
        let e = decode_json(br#"{"streams":[{"stream":{},"values":[["1","y"]]}]}"#, &lim()).unwrap_err();
        assert!(e.to_string().contains("at least one label pair"), "{e}");
        assert!(decode_json(b"{", &lim()).is_err());
        let e = decode_json(br#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#, &lim()).unwrap_err();
        assert!(e.to_string().contains("want [\"<unix ns>\""), "{e}");
    }

    #[test]
    fn protobuf_round_trips_with_metadata() {
        let l = Labels::from_pairs([("job", "promtail"), ("path", "/var/log/\"x\".log")]).unwrap();
        let mut batch = LogBatch::new();
        batch.push(
            l,
            [
                LogEntry::new(1_700_000_000_123_456_789, "first"),
                LogEntry {
                    ts: -1_500_000_000,
                    line: "before 1970 ✓".into(),
                    metadata: Labels::from_pairs([("trace_id", "t1")]).unwrap(),
                },
            ],
        );
        let raw = encode_proto(&batch);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let got = decode_proto(&body, &lim()).unwrap();
        assert_eq!(got, batch);
    }

    #[test]
    fn protobuf_garbage_is_an_error() {
        assert!(decode_proto(b"not snappy at all", &lim()).is_err());
        assert!(decode_proto_raw(&[0x0a, 0x05, 0x0a], &lim()).is_err());
    }

    #[test]
    fn label_text() {
        let p = parse_labels(r#"{job="a", msg="q\"uote\\", x = `raw`}"#).unwrap();
        assert_eq!(p, [("job".into(), "a".into()), ("msg".into(), "q\"uote\\".into()), ("x".into(), "raw".into())]);
        assert!(parse_labels("{}").unwrap().is_empty());
        assert!(parse_labels("job=\"a\"").is_err());
        assert!(parse_labels("{job=a}").is_err());
        assert!(parse_labels("{job=\"a\" env=\"b\"}").is_err());
    }

    #[test]
    fn rfc3339_nanos() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ns("2025-11-22T06:00:00.123456789Z"), Some(1_763_791_200_123_456_789));
        assert_eq!(parse_rfc3339_ns("2025-11-22T07:00:00.1+01:00"), Some(1_763_791_200_100_000_000));
        assert_eq!(parse_rfc3339_ns("2025-11-22"), None);
    }

    proptest::proptest! {
        #[test]
        fn proto_round_trip(lines in proptest::collection::vec((any_ts(), ".{0,50}"), 1..20)) {
            let l = Labels::from_pairs([("job", "p")]).unwrap();
            let mut batch = LogBatch::new();
            batch.push(l, lines.iter().map(|(t, s)| LogEntry::new(*t, s.clone())));
            let got = decode_proto_raw(&encode_proto(&batch), &LogLimits::unlimited()).unwrap();
            proptest::prop_assert_eq!(got, batch);
        }
    }

    fn any_ts() -> impl proptest::strategy::Strategy<Value = i64> {
        -4_000_000_000_000_000_000i64..4_000_000_000_000_000_000
    }
}
