//! Prometheus remote write: 1.0 (`prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`), snappy block format, into a [`WriteBatch`].
//!
//! Specs: <https://prometheus.io/docs/specs/prw/remote_write_spec/> (1.0),
//! <https://prometheus.io/docs/specs/prw/remote_write_spec_2_0/> (2.0); messages:
//! `prompb/remote.proto`, `prompb/types.proto` and `prompb/io/prometheus/write/v2/types.proto`
//! in <https://github.com/prometheus/prometheus>.
//!
//! This is the benchmark's hot path, so the wire format is parsed by hand (the private `pb` module):
//! label strings are `&str` slices of the decompressed buffer (UTF-8 checked), one
//! [`telltale_model::LabelsBuilder`] is reused across series, and each series costs exactly
//! the one allocation of its `Labels`. The decompression buffer and sample scratch are kept
//! per thread and reused across requests.
//!
//! Decisions:
//! - The body is decoded whole or rejected whole, with a one-line reason (byte offset for wire
//!   errors, the series for label errors). Prometheus treats a 4xx as non-retryable and drops
//!   the batch, which beats half-applying it silently.
//! - Empty label values are dropped (Prometheus's "empty value = no label"); duplicate or
//!   empty label names and series without any label are errors. `__name__` is not required,
//!   label names are any UTF-8 (Prometheus 3 accepts UTF-8 names).
//! - Native histograms are not stored yet: they are counted and the request is rejected with
//!   [`Error::Unsupported`] naming the count. Exemplars are skipped.
//! - 2.0: `created_timestamp` is ignored; per-series metadata becomes one
//!   [`MetricMetadata`] per metric name (the series' `__name__`) per request.

use std::cell::RefCell;
use std::collections::HashSet;

use telltale_model::{MetricMetadata, MetricType, Sample, WriteBatch, METRIC_NAME};

use crate::error::{Error, Result};
use crate::limits::{over, Limits};
use crate::pb::{Reader, I64, LEN, VARINT};
pub use crate::prom_remote_write_encode::{encode, encode_uncompressed};
use crate::series::{check_request, SeriesBuilder};

/// Which remote write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Remote write 1.0: `prometheus.WriteRequest`.
    V1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`.
    V2,
}

/// Tells from the request's Content-Type which message to decode.
///
/// No header, or `application/x-protobuf` without a `proto` parameter, means 1.0 (the 2.0
/// spec asks receivers to assume 1.0 then). Any other media type or `proto` value is
/// [`Error::UnsupportedContentType`], which the 2.0 spec wants answered with 415.
pub fn version_from_content_type(ct: Option<&str>) -> Result<Version> {
    let Some(ct) = ct.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Version::V1);
    };
    let unsupported = || Error::UnsupportedContentType(ct.to_string());
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(unsupported());
    }
    let mut version = Version::V1;
    for param in parts {
        let Some((k, v)) = param.split_once('=') else { continue };
        if k.trim().eq_ignore_ascii_case("proto") {
            version = match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Version::V1,
                "io.prometheus.write.v2.Request" => Version::V2,
                _ => return Err(unsupported()),
            };
        }
    }
    Ok(version)
}

/// Decodes a snappy-compressed remote write 1.0 `WriteRequest`.
pub fn decode(snappy_body: &[u8], limits: &Limits) -> Result<WriteBatch> {
    with_scratch(|s| {
        let msg = decompress(snappy_body, &mut s.buf, limits)?;
        decode_v1_message(msg, limits, &mut s.samples, &mut s.spans)
    })
}

/// Decodes a snappy-compressed remote write 2.0 `Request`.
pub fn decode_v2(snappy_body: &[u8], limits: &Limits) -> Result<WriteBatch> {
    with_scratch(|s| {
        let msg = decompress(snappy_body, &mut s.buf, limits)?;
        decode_v2_message(msg, limits, &mut s.samples, &mut s.refs)
    })
}

/// Decodes `snappy_body` as the given version: what the api's handler calls after
/// [`version_from_content_type`].
pub fn decode_version(version: Version, snappy_body: &[u8], limits: &Limits) -> Result<WriteBatch> {
    match version {
        Version::V1 => decode(snappy_body, limits),
        Version::V2 => decode_v2(snappy_body, limits),
    }
}

/// Decodes an uncompressed 1.0 `WriteRequest` (for callers that already decompressed, and
/// for fuzzing the protobuf layer directly).
pub fn decode_uncompressed(msg: &[u8], limits: &Limits) -> Result<WriteBatch> {
    with_scratch(|s| decode_v1_message(msg, limits, &mut s.samples, &mut s.spans))
}

/// Decodes an uncompressed 2.0 `Request`.
pub fn decode_v2_uncompressed(msg: &[u8], limits: &Limits) -> Result<WriteBatch> {
    with_scratch(|s| decode_v2_message(msg, limits, &mut s.samples, &mut s.refs))
}

/// Buffers reused across requests on one thread.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    samples: Vec<Sample>,
    refs: Vec<u32>,
    spans: Vec<LabelSpan>,
}

/// Keep at most this much decompression buffer per thread between requests.
const KEEP_BUF: usize = 16 << 20;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> Result<T>) -> Result<T> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let r = f(&mut s);
            if s.buf.capacity() > KEEP_BUF {
                s.buf = Vec::new();
            }
            r
        }
        // Only reachable if a decoder were re-entered on the same thread; stay correct anyway.
        Err(_) => f(&mut Scratch::default()),
    })
}

fn decompress<'b>(body: &[u8], buf: &'b mut Vec<u8>, limits: &Limits) -> Result<&'b [u8]> {
    let n = snap::raw::decompress_len(body).map_err(Error::Snappy)?;
    if limits.max_decompressed_bytes != 0 && n as u64 > limits.max_decompressed_bytes {
        return Err(Error::Limit {
            limit: "max_decompressed_bytes",
            max: limits.max_decompressed_bytes,
            subject: format!("a body announcing {n} decompressed bytes"),
        });
    }
    if buf.len() < n {
        buf.resize(n, 0);
    }
    let out = &mut buf[..n];
    let written = snap::raw::Decoder::new().decompress(body, out).map_err(Error::Snappy)?;
    Ok(&buf[..written])
}

fn metric_type(v: u64) -> MetricType {
    // Same numbering in 1.0's MetricMetadata.MetricType and 2.0's Metadata.MetricType.
    match v {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// Parses a `Sample { double value = 1; int64 timestamp = 2; }` (same in 1.0 and 2.0).
#[inline]
fn parse_sample(mut r: Reader<'_>) -> Result<Sample> {
    let mut s = Sample::new(0, 0.0);
    while r.has_more() {
        match r.key()? {
            (1, I64) => s.v = f64::from_bits(r.fixed64()?),
            (2, VARINT) => s.t = r.varint()? as i64,
            (1 | 2, _) => return Err(r.err("unexpected wire type for a known field")),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(s)
}

fn native_histograms_error(histograms: usize, series: usize) -> Error {
    Error::Unsupported(format!(
        "native histograms are not supported yet (the request holds {histograms} in {series} series); \
         send classic histograms or turn native histograms off for this remote write"
    ))
}

/// `WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }`
fn decode_v1_message(
    msg: &[u8],
    limits: &Limits,
    samples: &mut Vec<Sample>,
    spans: &mut Vec<LabelSpan>,
) -> Result<WriteBatch> {
    let mut batch = WriteBatch::new();
    let mut builder = SeriesBuilder::new();
    let (mut histograms, mut histogram_series) = (0usize, 0usize);
    let mut r = Reader::new(msg);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(wire, LEN)?;
                let ts = r.message()?;
                samples.clear();
                let h = parse_v1_series(msg, ts, &mut builder, samples, spans, limits)?;
                let labels = builder.build(limits)?;
                if h > 0 {
                    histograms += h;
                    histogram_series += 1;
                }
                if !samples.is_empty() {
                    batch.push(labels, samples);
                    check_request(batch.series_count(), batch.sample_count(), limits)?;
                }
            }
            3 => {
                r.expect(wire, LEN)?;
                let m = r.message()?;
                batch.metadata.push(parse_v1_metadata(m)?);
            }
            _ => r.skip(wire)?,
        }
    }
    if histograms > 0 {
        return Err(native_histograms_error(histograms, histogram_series));
    }
    Ok(batch)
}

/// Where one label's name and value lie in the message (byte ranges; `(0, 0)` when absent).
#[derive(Clone, Copy)]
struct LabelSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2;
/// repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }`.
/// Returns the number of histograms seen.
///
/// Label strings are first located, then UTF-8-checked in one pass over the region that
/// holds them all (a length prefix's last byte and every field tag are ASCII, so each string
/// starts and ends on a char boundary of a valid region): one `from_utf8` per series instead
/// of two per label. Only when the region is invalid is each string checked, to name it.
#[inline]
fn parse_v1_series<'a>(
    msg: &'a [u8],
    mut r: Reader<'a>,
    builder: &mut SeriesBuilder<'a>,
    samples: &mut Vec<Sample>,
    spans: &mut Vec<LabelSpan>,
    limits: &Limits,
) -> Result<usize> {
    let mut histograms = 0;
    let (mut lo, mut hi) = (usize::MAX, 0);
    spans.clear();
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(wire, LEN)?;
                let span = label_span(r.message()?)?;
                for (a, b) in [span.name, span.value] {
                    if a < b {
                        lo = lo.min(a);
                        hi = hi.max(b);
                    }
                }
                spans.push(span);
            }
            2 => {
                r.expect(wire, LEN)?;
                samples.push(parse_sample(r.message()?)?);
                if over(samples.len(), limits.max_samples_per_request) {
                    check_request(0, samples.len(), limits)?;
                }
            }
            4 => {
                r.expect(wire, LEN)?;
                r.skip(LEN)?;
                histograms += 1;
            }
            _ => r.skip(wire)?,
        }
    }
    let region = if lo < hi { std::str::from_utf8(&msg[lo..hi]).ok() } else { None };
    for s in spans.iter() {
        let name = label_str(msg, region, lo, s.name)?;
        let value = label_str(msg, region, lo, s.value)?;
        builder.push(name, value, limits)?;
    }
    Ok(histograms)
}

/// Locates the name and value of a `Label { string name = 1; string value = 2; }`.
#[inline]
fn label_span(mut l: Reader<'_>) -> Result<LabelSpan> {
    // Fast path: what every sender emits, name then value, both shorter than 128 bytes.
    let b = l.remaining();
    let base = l.offset();
    if b.len() >= 4 && b[0] == 0x0a && b[1] < 0x80 {
        let n = usize::from(b[1]);
        if b.len() >= n + 4 && b[n + 2] == 0x12 && b[n + 3] < 0x80 && b.len() == n + 4 + usize::from(b[n + 3]) {
            let v = base + n + 4;
            return Ok(LabelSpan { name: (base + 2, base + 2 + n), value: (v, base + b.len()) });
        }
    }
    let mut span = LabelSpan { name: (0, 0), value: (0, 0) };
    while l.has_more() {
        let (f, w) = l.key()?;
        match (f, w) {
            (1 | 2, LEN) => {
                let len = l.bytes()?.len();
                let end = l.offset();
                if f == 1 {
                    span.name = (end - len, end);
                } else {
                    span.value = (end - len, end);
                }
            }
            (1 | 2, _) => return Err(l.err("unexpected wire type for a known field")),
            (_, wire) => l.skip(wire)?,
        }
    }
    Ok(span)
}

/// The string at `range` of `msg`, sliced from the pre-validated `region` (which starts at
/// `lo`) when there is one, else validated on its own.
#[inline]
fn label_str<'a>(msg: &'a [u8], region: Option<&'a str>, lo: usize, range: (usize, usize)) -> Result<&'a str> {
    if range.0 == range.1 {
        return Ok("");
    }
    if let Some(s) = region.and_then(|reg| reg.get(range.0 - lo..range.1 - lo)) {
        return Ok(s);
    }
    std::str::from_utf8(&msg[range.0..range.1])
        .map_err(|_| Error::Protobuf { offset: range.0, reason: "string is not valid utf-8" })
}

/// `MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
/// string unit = 5; }`
fn parse_v1_metadata(mut r: Reader<'_>) -> Result<MetricMetadata> {
    let mut m = MetricMetadata::default();
    while r.has_more() {
        match r.key()? {
            (1, VARINT) => m.kind = metric_type(r.varint()?),
            (2, LEN) => m.metric_family = r.str()?.to_string(),
            (4, LEN) => m.help = r.str()?.to_string(),
            (5, LEN) => m.unit = r.str()?.to_string(),
            (1 | 2 | 4 | 5, _) => return Err(r.err("unexpected wire type for a known field")),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(m)
}

/// `Request { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }`
fn decode_v2_message(
    msg: &[u8],
    limits: &Limits,
    samples: &mut Vec<Sample>,
    refs: &mut Vec<u32>,
) -> Result<WriteBatch> {
    // Pass 1: the symbol table. Field order on the wire is up to the sender, so the symbols
    // may follow the series that reference them.
    let mut symbols: Vec<&str> = Vec::new();
    let mut r = Reader::new(msg);
    while r.has_more() {
        match r.key()? {
            (4, LEN) => symbols.push(r.str()?),
            (4, _) => return Err(r.err("unexpected wire type for a known field")),
            (_, wire) => r.skip(wire)?,
        }
    }

    let mut batch = WriteBatch::new();
    let mut builder = SeriesBuilder::new();
    let mut families: HashSet<&str> = HashSet::new();
    let (mut histograms, mut histogram_series) = (0usize, 0usize);
    let mut r = Reader::new(msg);
    while r.has_more() {
        let (field, wire) = r.key()?;
        if field != 5 {
            r.skip(wire)?;
            continue;
        }
        r.expect(wire, LEN)?;
        let ts = r.message()?;
        samples.clear();
        refs.clear();
        let parsed = parse_v2_series(ts, samples, refs)?;
        if refs.len() & 1 == 1 {
            return Err(Error::Protobuf { offset: ts.offset(), reason: "labels_refs has an odd length" });
        }
        let mut metric_name = "";
        for pair in refs.chunks_exact(2) {
            let name = symbol(&symbols, pair[0], ts)?;
            let value = symbol(&symbols, pair[1], ts)?;
            if name == METRIC_NAME {
                metric_name = value;
            }
            builder.push(name, value, limits)?;
        }
        let labels = builder.build(limits)?;
        if parsed.histograms > 0 {
            histograms += parsed.histograms;
            histogram_series += 1;
        }
        if let Some((kind, help_ref, unit_ref)) = parsed.metadata {
            let help = symbol(&symbols, help_ref, ts)?;
            let unit = symbol(&symbols, unit_ref, ts)?;
            let has_info = kind != MetricType::Unknown || !help.is_empty() || !unit.is_empty();
            // One metadata entry per metric name and request.
            if has_info && !metric_name.is_empty() && families.insert(metric_name) {
                {
                    let f = metric_name;
                    batch.metadata.push(MetricMetadata {
                        metric_family: f.to_string(),
                        kind,
                        help: help.to_string(),
                        unit: unit.to_string(),
                    });
                }
            }
        }
        if !samples.is_empty() {
            batch.push(labels, samples);
            check_request(batch.series_count(), batch.sample_count(), limits)?;
        }
    }
    if histograms > 0 {
        return Err(native_histograms_error(histograms, histogram_series));
    }
    Ok(batch)
}

#[inline]
fn symbol<'a>(symbols: &[&'a str], i: u32, at: Reader<'_>) -> Result<&'a str> {
    symbols
        .get(i as usize)
        .copied()
        .ok_or(Error::Protobuf { offset: at.offset(), reason: "symbol reference out of range" })
}

struct V2Series {
    histograms: usize,
    /// (type, help_ref, unit_ref) when a `metadata` field was present.
    metadata: Option<(MetricType, u32, u32)>,
}

/// `TimeSeries { repeated uint32 labels_refs = 1; repeated Sample samples = 2;
/// repeated Histogram histograms = 3; repeated Exemplar exemplars = 4; Metadata metadata = 5;
/// int64 created_timestamp = 6; }`
#[inline]
fn parse_v2_series(mut r: Reader<'_>, samples: &mut Vec<Sample>, refs: &mut Vec<u32>) -> Result<V2Series> {
    let mut out = V2Series { histograms: 0, metadata: None };
    while r.has_more() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, LEN) => {
                // Packed (proto3's default encoding for repeated scalars).
                let mut p = r.message()?;
                while p.has_more() {
                    refs.push(ref_u32(&mut p)?);
                }
            }
            (1, VARINT) => refs.push(ref_u32(&mut r)?),
            (2, LEN) => samples.push(parse_sample(r.message()?)?),
            (3, LEN) => {
                r.skip(LEN)?;
                out.histograms += 1;
            }
            (5, LEN) => {
                let mut m = r.message()?;
                let (mut kind, mut help, mut unit) = (MetricType::Unknown, 0, 0);
                while m.has_more() {
                    match m.key()? {
                        (1, VARINT) => kind = metric_type(m.varint()?),
                        (3, VARINT) => help = ref_u32(&mut m)?,
                        (4, VARINT) => unit = ref_u32(&mut m)?,
                        (1 | 3 | 4, _) => return Err(m.err("unexpected wire type for a known field")),
                        (_, wire) => m.skip(wire)?,
                    }
                }
                out.metadata = Some((kind, help, unit));
            }
            (1 | 2 | 3 | 5, _) => return Err(r.err("unexpected wire type for a known field")),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(out)
}

#[inline]
fn ref_u32(r: &mut Reader<'_>) -> Result<u32> {
    let v = r.varint()?;
    u32::try_from(v).map_err(|_| r.err("symbol reference overflows uint32"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::ErrorKind;

    #[test]
    fn content_types() {
        use Version::*;
        let v = |ct| version_from_content_type(ct);
        assert_eq!(v(None).unwrap(), V1);
        assert_eq!(v(Some("")).unwrap(), V1);
        assert_eq!(v(Some("application/x-protobuf")).unwrap(), V1);
        assert_eq!(v(Some("application/x-protobuf;proto=prometheus.WriteRequest")).unwrap(), V1);
        assert_eq!(v(Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")).unwrap(), V2);
        assert_eq!(
            v(Some("Application/X-Protobuf; charset=utf-8; proto=\"io.prometheus.write.v2.Request\"")).unwrap(),
            V2
        );
        let e = v(Some("application/json")).unwrap_err();
        assert!(matches!(e, Error::UnsupportedContentType(_)));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(v(Some("application/x-protobuf;proto=io.prometheus.write.v3.Request")).is_err());
    }

    #[test]
    fn bad_snappy_is_one_line() {
        let e = decode(b"\xff\xff\xff\xff\xff\xff", &Limits::default()).unwrap_err();
        assert!(e.to_string().starts_with("invalid snappy block: "), "{e}");
        assert!(!e.to_string().contains('\n'));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn decompressed_size_is_limited_before_allocating() {
        // A snappy block announcing 2^31 bytes: header varint only.
        let body = [0x80, 0x80, 0x80, 0x80, 0x08];
        let e = decode(&body, &Limits::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert!(e.to_string().starts_with("max_decompressed_bytes (33554432) exceeded"), "{e}");
    }

    #[test]
    fn labels_in_any_field_order_and_with_unknown_fields() {
        // TimeSeries { labels: [{value: "up", name: "__name__"}, {name: "a", 7: 1, value: "b"}],
        //              samples: [{value: 1.0, timestamp: 5}] }
        let label1 = [0x12, 0x02, b'u', b'p', 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_'];
        let label2 = [0x0a, 0x01, b'a', 0x38, 0x01, 0x12, 0x01, b'b'];
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05];
        let mut ts = vec![0x0a, label1.len() as u8];
        ts.extend_from_slice(&label1);
        ts.extend_from_slice(&[0x12, sample.len() as u8]);
        ts.extend_from_slice(&sample);
        ts.extend_from_slice(&[0x0a, label2.len() as u8]);
        ts.extend_from_slice(&label2);
        let mut req = vec![0x0a, ts.len() as u8];
        req.extend_from_slice(&ts);
        let b = decode_uncompressed(&req, &Limits::default()).unwrap();
        let (labels, samples) = b.iter().next().unwrap();
        assert_eq!(labels.to_string(), r#"up{a="b"}"#);
        assert!(samples[0].bit_eq(&Sample::new(5, 1.0)));
    }

    #[test]
    fn empty_request_is_an_empty_batch() {
        let body = snap::raw::Encoder::new().compress_vec(&[]).unwrap();
        let b = decode(&body, &Limits::default()).unwrap();
        assert!(b.is_empty());
        assert!(decode_v2(&body, &Limits::default()).unwrap().is_empty());
    }
}
