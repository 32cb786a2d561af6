//! Query results as callers see them, and their Prometheus JSON form.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};
use serde_json::{Map, Value as Json};
use telltale_model::Labels;
pub use telltale_storage::Series;

/// One element of an instant vector: a series' labels with one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels (the metric name may have been dropped by the query).
    pub labels: Labels,
    /// Evaluation time in milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// The result of a query, as in Prometheus's `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at the evaluation time.
    Scalar {
        /// Evaluation time in milliseconds.
        t: i64,
        /// The number.
        v: f64,
    },
    /// A string literal at the evaluation time.
    String {
        /// Evaluation time in milliseconds.
        t: i64,
        /// The string.
        v: String,
    },
    /// An instant vector: at most one sample per series, all at the evaluation time.
    Vector(Vec<InstantSample>),
    /// A range vector, or the result of a range query: series with their points, sorted by labels
    /// for range queries.
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's `resultType`: `scalar`, `string`, `vector` or `matrix`.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }

    /// The `data` object of Prometheus's `/api/v1/query` response:
    /// `{"resultType": ..., "result": ...}`, with timestamps as float seconds and values as
    /// strings (`"+Inf"`, `"NaN"`, shortest round-trip decimals).
    pub fn to_prometheus_json(&self) -> Json {
        serde_json::to_value(self.prometheus_data()).unwrap_or(Json::Null)
    }

    /// The same `data` object as a [`Serialize`] that writes straight to the output, for
    /// large results.
    pub fn prometheus_data(&self) -> PrometheusData<'_> {
        PrometheusData(self)
    }
}

/// Serializes a [`Value`] as Prometheus's `data` object without building a JSON tree.
#[derive(Debug, Clone, Copy)]
pub struct PrometheusData<'a>(&'a Value);

impl Serialize for PrometheusData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("resultType", self.0.result_type())?;
        match self.0 {
            Value::Scalar { t, v } => map.serialize_entry("result", &Point(*t, *v))?,
            Value::String { t, v } => map.serialize_entry("result", &(Ts(*t), v))?,
            Value::Vector(samples) => map.serialize_entry("result", &VectorJson(samples))?,
            Value::Matrix(series) => map.serialize_entry("result", &MatrixJson(series))?,
        }
        map.end()
    }
}

struct Ts(i64);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

struct Point(i64, f64);

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_tuple(2)?;
        seq.serialize_element(&Ts(self.0))?;
        seq.serialize_element(&GoFloat(self.1))?;
        seq.end()
    }
}

struct LabelsMap<'a>(&'a Labels);

impl Serialize for LabelsMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct VectorJson<'a>(&'a [InstantSample]);

impl Serialize for VectorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&SampleJson(x))?;
        }
        seq.end()
    }
}

struct SampleJson<'a>(&'a InstantSample);

impl Serialize for SampleJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("metric", &LabelsMap(&self.0.labels))?;
        map.serialize_entry("value", &Point(self.0.t, self.0.v))?;
        map.end()
    }
}

struct MatrixJson<'a>(&'a [Series]);

impl Serialize for MatrixJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&SeriesJson(x))?;
        }
        seq.end()
    }
}

struct SeriesJson<'a>(&'a Series);

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("metric", &LabelsMap(&self.0.labels))?;
        map.serialize_entry("values", &PointsJson(&self.0.samples))?;
        map.end()
    }
}

struct PointsJson<'a>(&'a [telltale_model::Sample]);

impl Serialize for PointsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&Point(p.t, p.v))?;
        }
        seq.end()
    }
}

/// A label set as a JSON object.
pub fn labels_json(labels: &Labels) -> Json {
    let mut m = Map::new();
    for (n, v) in labels.iter() {
        m.insert(n.to_string(), Json::String(v.to_string()));
    }
    Json::Object(m)
}

/// Milliseconds as Prometheus's float seconds.
pub fn timestamp_json(t: i64) -> Json {
    if t % 1000 == 0 {
        Json::from(t / 1000)
    } else {
        Json::from(t as f64 / 1000.0)
    }
}

/// Formats a float as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`):
/// the shortest decimal that round-trips, never an exponent, and `+Inf`, `-Inf`, `NaN`.
pub fn format_float(v: f64) -> String {
    with_go_float(v, str::to_string)
}

/// A float serialized as [`format_float`] writes it, without allocating.
struct GoFloat(f64);

impl Serialize for GoFloat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        with_go_float(self.0, |text| s.serialize_str(text))
    }
}

/// Calls `f` with [`format_float`]'s text, built on the stack: query results are mostly
/// floats, and this is the hot loop of every JSON answer. ryu picks the same shortest digits
/// as Go (ties to even, where Rust's `Display` rounds half up), checked against Go's own
/// output in `testdata/go_float_format.txt`.
fn with_go_float<R>(v: f64, f: impl FnOnce(&str) -> R) -> R {
    if v.is_nan() {
        return f("NaN");
    }
    if v.is_infinite() {
        return f(if v > 0.0 { "+Inf" } else { "-Inf" });
    }
    // Below 2^53 every integer is exact and is its own shortest form.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        if v == 0.0 && v.is_sign_negative() {
            return f("-0");
        }
        return f(itoa::Buffer::new().format(v as i64));
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v);
    match text.split_once('e') {
        // Go's 'f' format never uses an exponent: write the digits out.
        Some((mantissa, exp)) => f(&without_exponent(mantissa, exp.parse().unwrap_or(0))),
        None => f(text.strip_suffix(".0").unwrap_or(text)),
    }
}

/// `"-1.2345"` and exponent 3 as `"-1234.5"`; exponent -3 as `"-0.0012345"`.
fn without_exponent(mantissa: &str, exp: i32) -> String {
    let (sign, m) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exp as i64;
    if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{}", digits.trim_end_matches('0'))
    } else if point as usize >= digits.len() {
        format!("{sign}{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use telltale_model::Sample;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(-0.0), "-0");
    }

    #[test]
    fn floats_format_exactly_as_go() {
        let cases = include_str!("../testdata/go_float_format.txt");
        let mut n = 0;
        for line in cases.lines().filter(|l| !l.starts_with('#')) {
            let (bits, go) = line.split_once(' ').unwrap();
            let v = f64::from_bits(bits.parse().unwrap());
            assert_eq!(format_float(v), go, "{v:?}");
            n += 1;
        }
        assert!(n > 1500);
    }

    proptest::proptest! {
        #[test]
        fn float_text_round_trips(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            if v.is_finite() {
                let text = format_float(v);
                proptest::prop_assert!(!text.contains('e'));
                proptest::prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits());
            }
        }
    }

    #[test]
    fn json_shapes() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]).unwrap();
        let v = Value::Vector(vec![InstantSample { labels: l.clone(), t: 1500, v: 2.0 }]);
        assert_eq!(
            v.to_prometheus_json(),
            json!({"resultType": "vector", "result": [{"metric": {"__name__": "up", "job": "a"}, "value": [1.5, "2"]}]})
        );
        let m = Value::Matrix(vec![Series { labels: l, samples: vec![Sample::new(1000, f64::INFINITY)] }]);
        assert_eq!(m.to_prometheus_json()["result"][0]["values"], json!([[1, "+Inf"]]));
        assert_eq!(Value::Scalar { t: 0, v: 1.0 }.to_prometheus_json()["result"], json!([0, "1"]));
    }
}
