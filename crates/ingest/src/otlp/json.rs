//! OTLP/JSON (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>) read into the
//! same prost messages the protobuf path produces, so one converter serves both.
//!
//! Written here rather than taken from `opentelemetry-proto`'s `with-serde` feature, which was
//! checked against real exporter output and found to (a) read a malformed value inside a oneof
//! (`asInt: "1x"`, or any bad field of a metric's `sum`/`histogram`) as absent, because serde's
//! `flatten` swallows the error, and (b) reject `"NaN"`/`"Infinity"`, which the protobuf JSON
//! mapping uses for non-finite doubles. Here every malformed value is an error, non-finite
//! doubles are accepted as strings, `null` means "default" as in proto3 JSON, 64-bit integers
//! may be strings or numbers, enums integers or names, and unknown keys are ignored.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as pc;
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1 as pr;
use opentelemetry_proto::tonic::trace::v1 as pt;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

pub(super) fn parse(body: &[u8]) -> Result<ExportMetricsServiceRequest, serde_json::Error> {
    // serde's derived structs also accept a JSON array of field values; OTLP/JSON is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'[') {
        return Err(de::Error::custom("expected a JSON object, found an array"));
    }
    let req: Request = serde_json::from_slice(body)?;
    Ok(req.into())
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[derive(Default)]
struct Request {
    resource_metrics: Option<Vec<ResourceMetrics>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceMetrics {
    resource: Option<Resource>,
    scope_metrics: Option<Vec<ScopeMetrics>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeMetrics {
    scope: Option<Scope>,
    metrics: Option<Vec<Metric>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Scope {
    name: Option<String>,
    version: Option<String>,
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Metric {
    name: Option<String>,
    description: Option<String>,
    unit: Option<String>,
    metadata: Option<Vec<KeyValue>>,
    gauge: Option<Points<NumberPoint>>,
    sum: Option<Points<NumberPoint>>,
    histogram: Option<Points<HistogramPoint>>,
    exponential_histogram: Option<Points<IgnoredAny>>,
    summary: Option<Points<SummaryPoint>>,
}

/// The body of a gauge, sum, histogram, exponential histogram or summary.
#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Points<P> {
    data_points: Option<Vec<P>>,
    aggregation_temporality: Option<Temporality>,
    is_monotonic: Option<bool>,
}

impl<P> Default for Points<P> {
    fn default() -> Self {
        Self { data_points: None, aggregation_temporality: None, is_monotonic: None }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NumberPoint {
    attributes: Option<Vec<KeyValue>>,
    start_time_unix_nano: Option<U64>,
    time_unix_nano: Option<U64>,
    as_double: Option<F64>,
    as_int: Option<I64>,
    exemplars: Option<Vec<IgnoredAny>>,
    flags: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct HistogramPoint {
    attributes: Option<Vec<KeyValue>>,
    start_time_unix_nano: Option<U64>,
    time_unix_nano: Option<U64>,
    count: Option<U64>,
    sum: Option<F64>,
    bucket_counts: Option<Vec<U64>>,
    explicit_bounds: Option<Vec<F64>>,
    exemplars: Option<Vec<IgnoredAny>>,
    flags: Option<u32>,
    min: Option<F64>,
    max: Option<F64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SummaryPoint {
    attributes: Option<Vec<KeyValue>>,
    start_time_unix_nano: Option<U64>,
    time_unix_nano: Option<U64>,
    count: Option<U64>,
    sum: Option<F64>,
    quantile_values: Option<Vec<Quantile>>,
    flags: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Quantile {
    quantile: Option<F64>,
    value: Option<F64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct KeyValue {
    key: Option<String>,
    value: Option<AnyValue>,
}

/// `AnyValue`: an object with at most one of its value keys.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<I64>,
    double_value: Option<F64>,
    array_value: Option<ValueList<AnyValue>>,
    kvlist_value: Option<ValueList<KeyValue>>,
    bytes_value: Option<Base64>,
}

#[derive(Deserialize)]
#[serde(default)]
struct ValueList<T> {
    values: Option<Vec<T>>,
}

impl<T> Default for ValueList<T> {
    fn default() -> Self {
        Self { values: None }
    }
}

/// A 64-bit unsigned integer: JSON number or decimal string (proto3 JSON writes strings).
struct U64(u64);
/// A 64-bit signed integer: JSON number or decimal string.
struct I64(i64);
/// A double: JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string.
struct F64(f64);
/// Standard base64, as proto3 JSON writes `bytes`.
struct Base64(Vec<u8>);
/// `AggregationTemporality`: an integer, or the enum value's name.
struct Temporality(i32);

struct NumVisitor<T>(std::marker::PhantomData<T>);

/// How each number wrapper reads JSON numbers and strings.
trait FromJsonNumber: Sized {
    const EXPECTING: &'static str;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn from_str(s: &str) -> Option<Self>;
}

impl FromJsonNumber for U64 {
    const EXPECTING: &'static str = "an unsigned 64-bit integer as a number or string";
    fn from_u64(v: u64) -> Option<Self> {
        Some(U64(v))
    }
    fn from_i64(v: i64) -> Option<Self> {
        u64::try_from(v).ok().map(U64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        // `1e3` is a JSON number too; accept it when it is an exact integer in range.
        (v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v)).then_some(U64(v as u64))
    }
    fn from_str(s: &str) -> Option<Self> {
        s.parse().ok().map(U64)
    }
}

impl FromJsonNumber for I64 {
    const EXPECTING: &'static str = "a signed 64-bit integer as a number or string";
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok().map(I64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(I64(v))
    }
    fn from_f64(v: f64) -> Option<Self> {
        (v.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v))
            .then_some(I64(v as i64))
    }
    fn from_str(s: &str) -> Option<Self> {
        s.parse().ok().map(I64)
    }
}

impl FromJsonNumber for F64 {
    const EXPECTING: &'static str = "a number, or \"NaN\", \"Infinity\" or \"-Infinity\"";
    fn from_u64(v: u64) -> Option<Self> {
        Some(F64(v as f64))
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(F64(v as f64))
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(F64(v))
    }
    fn from_str(s: &str) -> Option<Self> {
        match s {
            "NaN" => Some(F64(f64::NAN)),
            "Infinity" => Some(F64(f64::INFINITY)),
            "-Infinity" => Some(F64(f64::NEG_INFINITY)),
            // Rust also parses "inf" and "nan"; proto3 JSON does not write those, but they are harmless.
            _ => s.parse().ok().map(F64),
        }
    }
}

impl<T: FromJsonNumber> Visitor<'_> for NumVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_u64(v).ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::from_i64(v).ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        T::from_f64(v).ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_str(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

macro_rules! number_deserialize {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(NumVisitor::<$t>(std::marker::PhantomData))
            }
        }
    )*};
}
number_deserialize!(U64, I64, F64);

impl<'de> Deserialize<'de> for Temporality {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Temporality;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an aggregation temporality (0, 1, 2 or its name)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Temporality, E> {
                i32::try_from(v).map(Temporality).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Temporality, E> {
                i32::try_from(v).map(Temporality).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Temporality, E> {
                pm::AggregationTemporality::from_str_name(v)
                    .map(|t| Temporality(t as i32))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        telltale_model::base64::decode(&s)
            .map(Base64)
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&s), &"base64"))
    }
}

// ---- into the prost messages ----

fn list<T, U>(v: Option<Vec<T>>, f: impl FnMut(T) -> U) -> Vec<U> {
    v.unwrap_or_default().into_iter().map(f).collect()
}

fn u64v(v: Option<U64>) -> u64 {
    v.map_or(0, |v| v.0)
}

fn f64v(v: Option<F64>) -> f64 {
    v.map_or(0.0, |v| v.0)
}

impl From<Request> for ExportMetricsServiceRequest {
    fn from(r: Request) -> Self {
        ExportMetricsServiceRequest { resource_metrics: list(r.resource_metrics, Into::into) }
    }
}

impl From<ResourceMetrics> for pm::ResourceMetrics {
    fn from(r: ResourceMetrics) -> Self {
        pm::ResourceMetrics {
            resource: r.resource.map(Into::into),
            scope_metrics: list(r.scope_metrics, Into::into),
            schema_url: r.schema_url.unwrap_or_default(),
        }
    }
}

impl From<Resource> for pr::Resource {
    fn from(r: Resource) -> Self {
        pr::Resource {
            attributes: list(r.attributes, Into::into),
            dropped_attributes_count: r.dropped_attributes_count.unwrap_or_default(),
            ..Default::default()
        }
    }
}

impl From<Scope> for pc::InstrumentationScope {
    fn from(s: Scope) -> Self {
        pc::InstrumentationScope {
            name: s.name.unwrap_or_default(),
            version: s.version.unwrap_or_default(),
            attributes: list(s.attributes, Into::into),
            dropped_attributes_count: s.dropped_attributes_count.unwrap_or_default(),
        }
    }
}

impl From<ScopeMetrics> for pm::ScopeMetrics {
    fn from(s: ScopeMetrics) -> Self {
        pm::ScopeMetrics {
            scope: s.scope.map(Into::into),
            metrics: list(s.metrics, Into::into),
            schema_url: s.schema_url.unwrap_or_default(),
        }
    }
}

fn temporality(t: Option<Temporality>) -> i32 {
    t.map_or(0, |t| t.0)
}

impl From<Metric> for pm::Metric {
    fn from(m: Metric) -> Self {
        use pm::metric::Data;
        // JSON cannot say which oneof member came last, and a valid message has one: the first
        // present wins.
        let data = if let Some(g) = m.gauge {
            Some(Data::Gauge(pm::Gauge { data_points: list(g.data_points, Into::into) }))
        } else if let Some(s) = m.sum {
            Some(Data::Sum(pm::Sum {
                data_points: list(s.data_points, Into::into),
                aggregation_temporality: temporality(s.aggregation_temporality),
                is_monotonic: s.is_monotonic.unwrap_or_default(),
            }))
        } else if let Some(h) = m.histogram {
            Some(Data::Histogram(pm::Histogram {
                data_points: list(h.data_points, Into::into),
                aggregation_temporality: temporality(h.aggregation_temporality),
            }))
        } else if let Some(h) = m.exponential_histogram {
            // Not converted yet (counted as dropped): only the number of points matters.
            Some(Data::ExponentialHistogram(pm::ExponentialHistogram {
                data_points: list(h.data_points, |_| pm::ExponentialHistogramDataPoint::default()),
                aggregation_temporality: temporality(h.aggregation_temporality),
            }))
        } else {
            m.summary.map(|s| Data::Summary(pm::Summary { data_points: list(s.data_points, Into::into) }))
        };
        pm::Metric {
            name: m.name.unwrap_or_default(),
            description: m.description.unwrap_or_default(),
            unit: m.unit.unwrap_or_default(),
            metadata: list(m.metadata, Into::into),
            data,
        }
    }
}

/// Exemplars are not stored yet; only their number is kept (for the dropped counts).
fn exemplars(v: Option<Vec<IgnoredAny>>) -> Vec<pm::Exemplar> {
    list(v, |_| pm::Exemplar::default())
}

impl From<NumberPoint> for pm::NumberDataPoint {
    fn from(p: NumberPoint) -> Self {
        use pm::number_data_point::Value;
        let value = match (p.as_double, p.as_int) {
            (Some(d), _) => Some(Value::AsDouble(d.0)),
            (None, Some(i)) => Some(Value::AsInt(i.0)),
            (None, None) => None,
        };
        pm::NumberDataPoint {
            attributes: list(p.attributes, Into::into),
            start_time_unix_nano: u64v(p.start_time_unix_nano),
            time_unix_nano: u64v(p.time_unix_nano),
            exemplars: exemplars(p.exemplars),
            flags: p.flags.unwrap_or_default(),
            value,
        }
    }
}

impl From<HistogramPoint> for pm::HistogramDataPoint {
    fn from(p: HistogramPoint) -> Self {
        pm::HistogramDataPoint {
            attributes: list(p.attributes, Into::into),
            start_time_unix_nano: u64v(p.start_time_unix_nano),
            time_unix_nano: u64v(p.time_unix_nano),
            count: u64v(p.count),
            sum: p.sum.map(|s| s.0),
            bucket_counts: list(p.bucket_counts, |c| c.0),
            explicit_bounds: list(p.explicit_bounds, |b| b.0),
            exemplars: exemplars(p.exemplars),
            flags: p.flags.unwrap_or_default(),
            min: p.min.map(|v| v.0),
            max: p.max.map(|v| v.0),
        }
    }
}

impl From<SummaryPoint> for pm::SummaryDataPoint {
    fn from(p: SummaryPoint) -> Self {
        pm::SummaryDataPoint {
            attributes: list(p.attributes, Into::into),
            start_time_unix_nano: u64v(p.start_time_unix_nano),
            time_unix_nano: u64v(p.time_unix_nano),
            count: u64v(p.count),
            sum: f64v(p.sum),
            quantile_values: list(p.quantile_values, |q| pm::summary_data_point::ValueAtQuantile {
                quantile: f64v(q.quantile),
                value: f64v(q.value),
            }),
            flags: p.flags.unwrap_or_default(),
        }
    }
}

impl From<KeyValue> for pc::KeyValue {
    fn from(kv: KeyValue) -> Self {
        pc::KeyValue { key: kv.key.unwrap_or_default(), value: kv.value.map(Into::into), ..Default::default() }
    }
}

impl From<AnyValue> for pc::AnyValue {
    fn from(v: AnyValue) -> Self {
        use pc::any_value::Value;
        let value = if let Some(s) = v.string_value {
            Some(Value::StringValue(s))
        } else if let Some(b) = v.bool_value {
            Some(Value::BoolValue(b))
        } else if let Some(i) = v.int_value {
            Some(Value::IntValue(i.0))
        } else if let Some(d) = v.double_value {
            Some(Value::DoubleValue(d.0))
        } else if let Some(a) = v.array_value {
            Some(Value::ArrayValue(pc::ArrayValue { values: list(a.values, Into::into) }))
        } else if let Some(kv) = v.kvlist_value {
            Some(Value::KvlistValue(pc::KeyValueList { values: list(kv.values, Into::into) }))
        } else {
            v.bytes_value.map(|b| Value::BytesValue(b.0))
        };
        pc::AnyValue { value }
    }
}

/// OTLP/JSON logs into the prost `ExportLogsServiceRequest`, with the same value rules as
/// metrics. Trace and span ids are hex strings, as the OTLP/JSON mapping says.
pub(super) fn parse_logs(
    body: &[u8],
) -> Result<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest, serde_json::Error> {
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'[') {
        return Err(de::Error::custom("expected a JSON object, found an array"));
    }
    let req: LogsRequest = serde_json::from_slice(body)?;
    use opentelemetry_proto::tonic::logs::v1 as pl;
    let resource_logs = list(req.resource_logs, |r: ResourceLogs| pl::ResourceLogs {
        resource: r.resource.map(Into::into),
        scope_logs: list(r.scope_logs, |s: ScopeLogs| pl::ScopeLogs {
            scope: s.scope.map(Into::into),
            log_records: list(s.log_records, |l: LogRecord| pl::LogRecord {
                time_unix_nano: l.time_unix_nano.map_or(0, |v| v.0),
                observed_time_unix_nano: l.observed_time_unix_nano.map_or(0, |v| v.0),
                severity_number: l.severity_number.map_or(0, |v| v.0),
                severity_text: l.severity_text.unwrap_or_default(),
                body: l.body.map(Into::into),
                attributes: list(l.attributes, Into::into),
                dropped_attributes_count: l.dropped_attributes_count.unwrap_or(0),
                flags: l.flags.unwrap_or(0),
                trace_id: l.trace_id.map_or_else(Vec::new, |h| h.0),
                span_id: l.span_id.map_or_else(Vec::new, |h| h.0),
                event_name: l.event_name.unwrap_or_default(),
            }),
            schema_url: s.schema_url.unwrap_or_default(),
        }),
        schema_url: r.schema_url.unwrap_or_default(),
    });
    Ok(opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest { resource_logs })
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogsRequest {
    resource_logs: Option<Vec<ResourceLogs>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceLogs {
    resource: Option<Resource>,
    scope_logs: Option<Vec<ScopeLogs>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeLogs {
    scope: Option<Scope>,
    log_records: Option<Vec<LogRecord>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogRecord {
    time_unix_nano: Option<U64>,
    observed_time_unix_nano: Option<U64>,
    severity_number: Option<Severity>,
    severity_text: Option<String>,
    body: Option<AnyValue>,
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
    flags: Option<u32>,
    trace_id: Option<Hex>,
    span_id: Option<Hex>,
    event_name: Option<String>,
}

/// Bytes written as hex (OTLP/JSON's trace and span ids).
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(de::Error::custom(format!("invalid hex id {s:?}")));
        }
        let bytes = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect();
        Ok(Hex(bytes))
    }
}

/// `SeverityNumber`: an integer or the enum value's name (`SEVERITY_NUMBER_INFO`).
struct Severity(i32);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => {
                n.as_i64().map(|n| Severity(n as i32)).ok_or_else(|| de::Error::custom("invalid severityNumber"))
            }
            serde_json::Value::String(s) => opentelemetry_proto::tonic::logs::v1::SeverityNumber::from_str_name(s)
                .map(|x| Severity(x as i32))
                .ok_or_else(|| de::Error::custom(format!("invalid severityNumber {s:?}"))),
            _ => Err(de::Error::custom("invalid severityNumber")),
        }
    }
}

// ---- traces ----

/// OTLP/JSON traces into the prost `ExportTraceServiceRequest`, with the same value rules as
/// metrics and logs. Trace and span ids are hex strings, as the OTLP/JSON mapping says (not
/// base64, the generic protobuf JSON rule for `bytes`); a base64 id is a malformed value.
pub(super) fn parse_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, serde_json::Error> {
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'[') {
        return Err(de::Error::custom("expected a JSON object, found an array"));
    }
    let req: TracesRequest = serde_json::from_slice(body)?;
    Ok(ExportTraceServiceRequest { resource_spans: list(req.resource_spans, Into::into) })
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TracesRequest {
    resource_spans: Option<Vec<ResourceSpans>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceSpans {
    resource: Option<Resource>,
    scope_spans: Option<Vec<ScopeSpans>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeSpans {
    scope: Option<Scope>,
    spans: Option<Vec<Span>>,
    schema_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Span {
    trace_id: Option<Hex>,
    span_id: Option<Hex>,
    trace_state: Option<String>,
    parent_span_id: Option<Hex>,
    flags: Option<u32>,
    name: Option<String>,
    kind: Option<Kind>,
    start_time_unix_nano: Option<U64>,
    end_time_unix_nano: Option<U64>,
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
    events: Option<Vec<Event>>,
    dropped_events_count: Option<u32>,
    links: Option<Vec<Link>>,
    dropped_links_count: Option<u32>,
    status: Option<Status>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    time_unix_nano: Option<U64>,
    name: Option<String>,
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Link {
    trace_id: Option<Hex>,
    span_id: Option<Hex>,
    trace_state: Option<String>,
    attributes: Option<Vec<KeyValue>>,
    dropped_attributes_count: Option<u32>,
    flags: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    message: Option<String>,
    code: Option<Code>,
}

/// `Span.SpanKind`: an integer or the enum value's name (`SPAN_KIND_SERVER`).
struct Kind(i32);
/// `Status.StatusCode`: an integer or the enum value's name (`STATUS_CODE_ERROR`).
struct Code(i32);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        proto_enum(d, "span kind", |s| pt::span::SpanKind::from_str_name(s).map(|k| k as i32)).map(Kind)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        proto_enum(d, "status code", |s| pt::status::StatusCode::from_str_name(s).map(|k| k as i32)).map(Code)
    }
}

/// A protobuf enum in JSON: its number (any `int32`: unknown values are kept, as proto3 does)
/// or its value's name.
fn proto_enum<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
    by_name: fn(&str) -> Option<i32>,
) -> Result<i32, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| de::Error::custom(format!("invalid {what} {n}"))),
        serde_json::Value::String(s) => by_name(&s).ok_or_else(|| de::Error::custom(format!("invalid {what} {s:?}"))),
        other => Err(de::Error::custom(format!("invalid {what} {other}"))),
    }
}

fn hex_bytes(h: Option<Hex>) -> Vec<u8> {
    h.map_or_else(Vec::new, |h| h.0)
}

impl From<ResourceSpans> for pt::ResourceSpans {
    fn from(r: ResourceSpans) -> Self {
        pt::ResourceSpans {
            resource: r.resource.map(Into::into),
            scope_spans: list(r.scope_spans, Into::into),
            schema_url: r.schema_url.unwrap_or_default(),
        }
    }
}

impl From<ScopeSpans> for pt::ScopeSpans {
    fn from(s: ScopeSpans) -> Self {
        pt::ScopeSpans {
            scope: s.scope.map(Into::into),
            spans: list(s.spans, Into::into),
            schema_url: s.schema_url.unwrap_or_default(),
        }
    }
}

impl From<Span> for pt::Span {
    fn from(s: Span) -> Self {
        pt::Span {
            trace_id: hex_bytes(s.trace_id),
            span_id: hex_bytes(s.span_id),
            trace_state: s.trace_state.unwrap_or_default(),
            parent_span_id: hex_bytes(s.parent_span_id),
            flags: s.flags.unwrap_or_default(),
            name: s.name.unwrap_or_default(),
            kind: s.kind.map_or(0, |k| k.0),
            start_time_unix_nano: u64v(s.start_time_unix_nano),
            end_time_unix_nano: u64v(s.end_time_unix_nano),
            attributes: list(s.attributes, Into::into),
            dropped_attributes_count: s.dropped_attributes_count.unwrap_or_default(),
            events: list(s.events, |e| pt::span::Event {
                time_unix_nano: u64v(e.time_unix_nano),
                name: e.name.unwrap_or_default(),
                attributes: list(e.attributes, Into::into),
                dropped_attributes_count: e.dropped_attributes_count.unwrap_or_default(),
            }),
            dropped_events_count: s.dropped_events_count.unwrap_or_default(),
            links: list(s.links, |l| pt::span::Link {
                trace_id: hex_bytes(l.trace_id),
                span_id: hex_bytes(l.span_id),
                trace_state: l.trace_state.unwrap_or_default(),
                attributes: list(l.attributes, Into::into),
                dropped_attributes_count: l.dropped_attributes_count.unwrap_or_default(),
                flags: l.flags.unwrap_or_default(),
            }),
            dropped_links_count: s.dropped_links_count.unwrap_or_default(),
            status: s
                .status
                .map(|st| pt::Status { message: st.message.unwrap_or_default(), code: st.code.map_or(0, |c| c.0) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_both_alphabets_with_or_without_padding() {
        assert_eq!(telltale_model::base64::decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(telltale_model::base64::decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(telltale_model::base64::decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(telltale_model::base64::decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(telltale_model::base64::decode("").unwrap(), b"");
        assert!(telltale_model::base64::decode("a").is_none());
        assert!(telltale_model::base64::decode("a*b=").is_none());
    }

    #[test]
    fn numbers_as_numbers_or_strings() {
        let u: Vec<U64> = serde_json::from_str(r#"[1, "18446744073709551615", 1e3]"#).unwrap();
        assert_eq!(u.iter().map(|v| v.0).collect::<Vec<_>>(), [1, u64::MAX, 1000]);
        assert!(serde_json::from_str::<U64>("-1").is_err());
        assert!(serde_json::from_str::<U64>(r#""1x""#).is_err());
        assert!(serde_json::from_str::<U64>("1.5").is_err());
        let i: Vec<I64> = serde_json::from_str(r#"[-1, "-9223372036854775808"]"#).unwrap();
        assert_eq!(i.iter().map(|v| v.0).collect::<Vec<_>>(), [-1, i64::MIN]);
        let f: Vec<F64> = serde_json::from_str(r#"[1, -2.5, "NaN", "Infinity", "-Infinity", "0.25"]"#).unwrap();
        assert_eq!(f[1].0, -2.5);
        assert!(f[2].0.is_nan());
        assert_eq!((f[3].0, f[4].0, f[5].0), (f64::INFINITY, f64::NEG_INFINITY, 0.25));
        assert!(serde_json::from_str::<F64>("true").is_err());
        let t: Vec<Temporality> = serde_json::from_str(r#"[2, "AGGREGATION_TEMPORALITY_DELTA"]"#).unwrap();
        assert_eq!((t[0].0, t[1].0), (2, 1));
    }
}
