//! The mapping itself, data point by data point. Label precedence, lowest first, is Prometheus's:
//! data point attributes (colliding keys joined with `;` in key order), promoted resource
//! attributes (only where no attribute has the name), scope labels, `job`/`instance`, and finally
//! `__name__` and `le`/`quantile`.

use std::borrow::Cow;
use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint,
};
use telltale_model::{
    Labels, LabelsBuilder, MetricMetadata, MetricType, Sample, Timestamp, WriteBatch, METRIC_NAME, STALE_NAN_BITS,
};

use super::names::{format_float, label_name, metric_name, unit_name, NameKind};
use super::options::{DeltaTemporality, OtlpLimits, OtlpOptions};
use super::{Decoded, Dropped, Error, Result};

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const TARGET_INFO: &str = "target_info";

/// Owned label pairs (per resource or scope), sorted by name, names unique.
type Pairs = Vec<(String, String)>;
/// A data point's translated attributes, borrowing from the request where no translation was
/// needed; sorted by name, names unique.
type AttrPairs<'r> = Vec<(Cow<'r, str>, Cow<'r, str>)>;
/// Label pairs borrowed from the above, sorted by name, names unique.
type Refs<'x> = Vec<(&'x str, &'x str)>;

pub(super) struct Converter<'a> {
    opts: &'a OtlpOptions,
    limits: &'a OtlpLimits,
    batch: WriteBatch,
    dropped: Dropped,
    samples: usize,
    metadata_seen: HashSet<String>,
}

/// What a resource contributes to each of its series, and the time span of its samples.
struct ResourceCtx {
    /// Resource attributes promoted to labels (translated).
    promoted: Pairs,
    /// `job` and `instance`, from the `service.*` attributes.
    job_instance: Pairs,
    /// First and last timestamp of the resource's samples, for `target_info`.
    span: Option<(Timestamp, Timestamp)>,
}

impl<'a> Converter<'a> {
    pub(super) fn new(opts: &'a OtlpOptions, limits: &'a OtlpLimits) -> Self {
        Self {
            opts,
            limits,
            batch: WriteBatch::new(),
            dropped: Dropped::default(),
            samples: 0,
            metadata_seen: HashSet::new(),
        }
    }

    pub(super) fn run(mut self, req: &ExportMetricsServiceRequest) -> Result<Decoded> {
        for rm in &req.resource_metrics {
            let attrs = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            let mut res = ResourceCtx { promoted: self.promoted(attrs), job_instance: job_instance(attrs), span: None };
            for sm in &rm.scope_metrics {
                let scope = self.scope_labels(sm.scope.as_ref(), &sm.schema_url);
                for m in &sm.metrics {
                    self.metric(m, &scope, &mut res)?;
                }
            }
            if let (true, Some(span)) = (self.opts.target_info, res.span) {
                self.target_info(attrs, &res.job_instance, span)?;
            }
        }
        Ok(Decoded { batch: self.batch, dropped: self.dropped })
    }

    /// Resource attributes promoted to labels on every series (not `job`/`instance`).
    fn promoted(&self, attrs: &[KeyValue]) -> Pairs {
        let o = self.opts;
        let selected = attrs.iter().filter(|kv| {
            if o.promote_all_resource_attributes {
                !o.ignore_resource_attributes.contains(&kv.key)
            } else {
                o.promote_resource_attributes.contains(&kv.key)
            }
        });
        let pairs = self.attribute_pairs(selected).unwrap_or_default();
        pairs.into_iter().map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
    }

    fn scope_labels(&self, scope: Option<&InstrumentationScope>, schema_url: &str) -> Pairs {
        let Some(scope) = scope.filter(|_| self.opts.promote_scope_metadata) else {
            return Vec::new();
        };
        let mut pairs: Pairs = vec![
            ("otel_scope_name".into(), scope.name.clone()),
            ("otel_scope_version".into(), scope.version.clone()),
            ("otel_scope_schema_url".into(), schema_url.to_string()),
        ];
        for kv in &scope.attributes {
            if let Some(name) = label_name(&format!("otel_scope_{}", kv.key), self.opts.translation_strategy) {
                pairs.push((name.into_owned(), value_string(kv.value.as_ref()).into_owned()));
            }
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        pairs
    }

    /// Attributes as sorted label pairs; colliding translated names are joined with `;` in the
    /// order of the original keys, as the spec requires. `None` if a key cannot be a label name.
    fn attribute_pairs<'r>(&self, attrs: impl Iterator<Item = &'r KeyValue>) -> Option<AttrPairs<'r>> {
        let mut raw: Vec<(Cow<'r, str>, &'r str, &'r KeyValue)> = Vec::new();
        for kv in attrs {
            raw.push((label_name(&kv.key, self.opts.translation_strategy)?, &kv.key, kv));
        }
        // Sorting by (translated, original) key puts colliding keys next to each other, in the
        // order of their original keys: O(n log n) however many attributes a point has.
        raw.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut pairs: AttrPairs<'r> = Vec::with_capacity(raw.len());
        for (name, _, kv) in raw {
            let value = value_string(kv.value.as_ref());
            match pairs.last_mut() {
                Some((last, v)) if *last == name => {
                    let joined = v.to_mut();
                    joined.push(';');
                    joined.push_str(&value);
                }
                _ => pairs.push((name, value)),
            }
        }
        Some(pairs)
    }

    /// A data point's translated attributes; `None` (and counted) if one cannot be translated.
    fn point_attributes<'r>(&mut self, attrs: &'r [KeyValue]) -> Option<AttrPairs<'r>> {
        let pairs = self.attribute_pairs(attrs.iter());
        if pairs.is_none() {
            self.dropped.invalid_name_points += 1;
        }
        pairs
    }

    fn metric(&mut self, m: &Metric, scope: &Pairs, res: &mut ResourceCtx) -> Result<()> {
        let Some(data) = &m.data else {
            self.dropped.metrics_without_data += 1;
            return Ok(());
        };
        match data {
            metric::Data::Gauge(g) => {
                let kind = if prometheus_type(m) == Some("unknown") { MetricType::Unknown } else { MetricType::Gauge };
                self.numbers(m, &g.data_points, NameKind::Gauge, kind, scope, res)
            }
            metric::Data::Sum(s) => {
                let Some(raw) = self.temporality_ok(s.aggregation_temporality, s.data_points.len()) else {
                    return Ok(());
                };
                let (name_kind, kind) = match (s.is_monotonic, raw) {
                    (true, false) => (NameKind::Counter, MetricType::Counter),
                    (true, true) => (NameKind::Counter, MetricType::Unknown),
                    (false, false) => (NameKind::Gauge, MetricType::Gauge),
                    (false, true) => (NameKind::Gauge, MetricType::Unknown),
                };
                self.numbers(m, &s.data_points, name_kind, kind, scope, res)
            }
            metric::Data::Histogram(h) => {
                let Some(raw) = self.temporality_ok(h.aggregation_temporality, h.data_points.len()) else {
                    return Ok(());
                };
                let kind = if raw { MetricType::Unknown } else { MetricType::Histogram };
                self.histograms(m, &h.data_points, kind, scope, res)
            }
            metric::Data::ExponentialHistogram(h) => {
                self.dropped.exponential_histogram_points += h.data_points.len() as u64;
                Ok(())
            }
            metric::Data::Summary(s) => self.summaries(m, &s.data_points, scope, res),
        }
    }

    /// `Some(is_delta)` if points of this temporality are stored, else counts them as dropped.
    fn temporality_ok(&mut self, temporality: i32, points: usize) -> Option<bool> {
        match AggregationTemporality::try_from(temporality) {
            Ok(AggregationTemporality::Cumulative) => Some(false),
            Ok(AggregationTemporality::Delta) if self.opts.delta_temporality == DeltaTemporality::Ingest => Some(true),
            Ok(AggregationTemporality::Delta) => {
                self.dropped.delta_points += points as u64;
                None
            }
            Ok(AggregationTemporality::Unspecified) | Err(_) => {
                self.dropped.invalid_temporality_points += points as u64;
                None
            }
        }
    }

    /// The family name, recording its metadata once per request; `None` (points counted as
    /// dropped) if the name translates to nothing.
    fn family(&mut self, m: &Metric, name_kind: NameKind, kind: MetricType, points: usize) -> Option<String> {
        let strategy = self.opts.translation_strategy;
        let Some(name) = metric_name(&m.name, &m.unit, name_kind, strategy) else {
            self.dropped.invalid_name_points += points as u64;
            return None;
        };
        if !self.metadata_seen.contains(&name) {
            self.metadata_seen.insert(name.clone());
            self.batch.metadata.push(MetricMetadata {
                metric_family: name.clone(),
                kind,
                help: m.description.clone(),
                unit: unit_name(&m.unit, strategy),
            });
        }
        Some(name)
    }

    fn numbers(
        &mut self,
        m: &Metric,
        points: &[NumberDataPoint],
        name_kind: NameKind,
        kind: MetricType,
        scope: &Pairs,
        res: &mut ResourceCtx,
    ) -> Result<()> {
        let Some(name) = self.family(m, name_kind, kind, points.len()) else {
            return Ok(());
        };
        for p in points {
            self.dropped.exemplars += p.exemplars.len() as u64;
            let value = match p.value {
                _ if no_recorded_value(p.flags) => stale(),
                Some(number_data_point::Value::AsDouble(v)) => plain(v),
                Some(number_data_point::Value::AsInt(v)) => v as f64,
                None => {
                    self.dropped.points_without_value += 1;
                    continue;
                }
            };
            let Some(attrs) = self.point_attributes(&p.attributes) else { continue };
            let base = layered(&attrs, scope, res);
            let t = to_millis(p.time_unix_nano);
            self.push(&base, &name, None, Sample::new(t, value))?;
            res.span = widen(res.span, t);
        }
        Ok(())
    }

    fn histograms(
        &mut self,
        m: &Metric,
        points: &[HistogramDataPoint],
        kind: MetricType,
        scope: &Pairs,
        res: &mut ResourceCtx,
    ) -> Result<()> {
        let Some(name) = self.family(m, NameKind::Other, kind, points.len()) else {
            return Ok(());
        };
        let (bucket, sum, count) = (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
        for p in points {
            self.dropped.exemplars += p.exemplars.len() as u64;
            let Some(attrs) = self.point_attributes(&p.attributes) else { continue };
            let base = layered(&attrs, scope, res);
            let t = to_millis(p.time_unix_nano);
            let is_stale = no_recorded_value(p.flags);
            let val = |v: f64| if is_stale { stale() } else { v };
            if let Some(s) = p.sum {
                self.push(&base, &sum, None, Sample::new(t, val(plain(s))))?;
            }
            self.push(&base, &count, None, Sample::new(t, val(p.count as f64)))?;
            // OTLP bucket counts are per bucket; Prometheus's `le` buckets are cumulative. A bound
            // of +Inf is skipped: the final `le="+Inf"` bucket (the total count) stands for it.
            let mut cumulative: u64 = 0;
            for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                cumulative = cumulative.saturating_add(*n);
                if *bound == f64::INFINITY {
                    continue;
                }
                let le = format_float(*bound);
                self.push(&base, &bucket, Some(("le", &le)), Sample::new(t, val(cumulative as f64)))?;
            }
            self.push(&base, &bucket, Some(("le", "+Inf")), Sample::new(t, val(p.count as f64)))?;
            res.span = widen(res.span, t);
        }
        Ok(())
    }

    fn summaries(
        &mut self,
        m: &Metric,
        points: &[SummaryDataPoint],
        scope: &Pairs,
        res: &mut ResourceCtx,
    ) -> Result<()> {
        let Some(name) = self.family(m, NameKind::Other, MetricType::Summary, points.len()) else {
            return Ok(());
        };
        let (sum, count) = (format!("{name}_sum"), format!("{name}_count"));
        for p in points {
            let Some(attrs) = self.point_attributes(&p.attributes) else { continue };
            let base = layered(&attrs, scope, res);
            let t = to_millis(p.time_unix_nano);
            let is_stale = no_recorded_value(p.flags);
            let val = |v: f64| if is_stale { stale() } else { v };
            self.push(&base, &sum, None, Sample::new(t, val(plain(p.sum))))?;
            self.push(&base, &count, None, Sample::new(t, val(p.count as f64)))?;
            for q in &p.quantile_values {
                let quantile = format_float(q.quantile);
                self.push(&base, &name, Some(("quantile", &quantile)), Sample::new(t, val(plain(q.value))))?;
            }
            res.span = widen(res.span, t);
        }
        Ok(())
    }

    /// One `target_info` series per resource with attributes beyond the identifying ones, as
    /// Prometheus writes it: a sample every half lookback delta from the resource's first to its
    /// last sample time, and one at the last, so a PromQL join
    /// (`* on (job, instance) group_left target_info`) finds it at every one of those times.
    fn target_info(&mut self, attrs: &[KeyValue], job_instance: &Pairs, span: (Timestamp, Timestamp)) -> Result<()> {
        let identifying = |k: &str| matches!(k, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID);
        // Without job or instance there is nothing to join on; without other attributes nothing to say.
        if job_instance.is_empty() || !attrs.iter().any(|kv| !identifying(&kv.key)) {
            return Ok(());
        }
        let keep = self.opts.keep_identifying_resource_attributes;
        let Some(pairs) = self.attribute_pairs(attrs.iter().filter(|kv| keep || !identifying(&kv.key))) else {
            self.dropped.invalid_name_points += 1;
            return Ok(());
        };
        let pairs = merge(as_refs(&pairs), as_refs(job_instance), true);
        if !self.metadata_seen.contains(TARGET_INFO) {
            self.metadata_seen.insert(TARGET_INFO.to_string());
            self.batch.metadata.push(MetricMetadata {
                metric_family: TARGET_INFO.into(),
                kind: MetricType::Gauge,
                help: "Target metadata".into(),
                unit: String::new(),
            });
        }
        let times = target_info_times(span);
        let labels = self.labels(&pairs, TARGET_INFO, None)?;
        self.count_samples(times.len(), TARGET_INFO)?;
        let samples: Vec<Sample> = times.into_iter().map(|t| Sample::new(t, 1.0)).collect();
        self.batch.push(labels, &samples);
        Ok(())
    }

    fn push(&mut self, base: &[(&str, &str)], name: &str, extra: Option<(&str, &str)>, sample: Sample) -> Result<()> {
        let labels = self.labels(base, name, extra)?;
        self.count_samples(1, name)?;
        self.batch.push_sample(labels, sample);
        Ok(())
    }

    fn count_samples(&mut self, n: usize, name: &str) -> Result<()> {
        self.samples += n;
        let max = self.limits.max_samples_per_request;
        if max > 0 && self.samples > max {
            return Err(limit("max_samples_per_request", self.samples, max, name));
        }
        Ok(())
    }

    fn labels(&self, base: &[(&str, &str)], name: &str, extra: Option<(&str, &str)>) -> Result<Labels> {
        let mut extras = [(METRIC_NAME, name), extra.unwrap_or(("", ""))];
        extras.sort_unstable();
        let extras = extras.into_iter().filter(|(n, _)| !n.is_empty());
        let mut all = merge(base.iter().copied(), extras, true);
        // Empty values mean "no label" in Prometheus's model (and in `LabelsBuilder`).
        all.retain(|(_, v)| !v.is_empty());
        let l = self.limits;
        if l.max_labels_per_series > 0 && all.len() > l.max_labels_per_series {
            return Err(limit("max_labels_per_series", all.len(), l.max_labels_per_series, name));
        }
        for (n, v) in &all {
            if l.max_label_name_length > 0 && n.len() > l.max_label_name_length {
                return Err(limit("max_label_name_length", n.len(), l.max_label_name_length, name));
            }
            if l.max_label_value_length > 0 && v.len() > l.max_label_value_length {
                return Err(limit("max_label_value_length", v.len(), l.max_label_value_length, name));
            }
        }
        let mut b = LabelsBuilder::new();
        for (n, v) in all {
            b.push(n, v);
        }
        // Names are sorted, unique and non-empty by construction (merged sorted lists of
        // translated, checked names), so building cannot fail; if it did, that is a bug.
        Ok(b.build().unwrap_or_else(|e| {
            debug_assert!(false, "label pairs for {name}: {e}");
            Labels::empty()
        }))
    }
}

/// The labels every series of one data point shares (all but `__name__`, `le`, `quantile`), by
/// precedence: attributes, then promoted resource attributes where no attribute has the name,
/// overridden by scope labels, overridden by `job`/`instance`.
fn layered<'x>(attrs: &'x AttrPairs<'_>, scope: &'x Pairs, res: &'x ResourceCtx) -> Refs<'x> {
    let pairs = merge(as_refs(attrs), as_refs(&res.promoted), false);
    let pairs = merge(pairs, as_refs(scope), true);
    merge(pairs, as_refs(&res.job_instance), true)
}

fn as_refs<'x, N: AsRef<str>, V: AsRef<str>>(p: &'x [(N, V)]) -> impl Iterator<Item = (&'x str, &'x str)> + 'x {
    p.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
}

/// Merges two name-sorted pair lists with unique names; on equal names `b` wins if `b_wins`.
fn merge<'x>(
    a: impl IntoIterator<Item = (&'x str, &'x str)>,
    b: impl IntoIterator<Item = (&'x str, &'x str)>,
    b_wins: bool,
) -> Refs<'x> {
    let (a, mut b) = (a.into_iter(), b.into_iter().peekable());
    let mut out = Vec::with_capacity(a.size_hint().0 + b.size_hint().0);
    for (n, v) in a {
        while let Some(p) = b.next_if(|(bn, _)| *bn < n) {
            out.push(p);
        }
        match b.next_if(|(bn, _)| *bn == n) {
            Some(p) if b_wins => out.push(p),
            _ => out.push((n, v)),
        }
    }
    out.extend(b);
    out
}

/// Half of Prometheus's default 5m lookback delta: `target_info` is repeated this often.
const TARGET_INFO_INTERVAL_MS: i64 = 150_000;
/// More repetitions than this (a batch spanning over two weeks) fall back to first and last.
const TARGET_INFO_MAX_SAMPLES: i64 = 10_000;

fn target_info_times((first, last): (Timestamp, Timestamp)) -> Vec<Timestamp> {
    let steps = (last - first) / TARGET_INFO_INTERVAL_MS;
    if steps >= TARGET_INFO_MAX_SAMPLES {
        return vec![first, last];
    }
    let mut times: Vec<Timestamp> =
        (0..=steps).map(|i| first + i * TARGET_INFO_INTERVAL_MS).filter(|t| *t < last).collect();
    times.push(last);
    times
}

fn limit(limit: &'static str, value: usize, max: usize, name: &str) -> Error {
    Error::LimitExceeded { limit, value, max, series: Some(name.to_string()) }
}

/// `job` from `service.namespace/service.name` (or `service.name`), `instance` from
/// `service.instance.id`, as the compatibility spec requires.
fn job_instance(attrs: &[KeyValue]) -> Pairs {
    let get = |key: &str| attrs.iter().find(|kv| kv.key == key).map(|kv| value_string(kv.value.as_ref()).into_owned());
    let mut pairs = Vec::new();
    if let Some(name) = get(SERVICE_NAME) {
        let job = match get(SERVICE_NAMESPACE).filter(|ns| !ns.is_empty()) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        pairs.push(("job".to_string(), job));
    }
    if let Some(instance) = get(SERVICE_INSTANCE_ID) {
        pairs.insert(0, ("instance".to_string(), instance));
    }
    pairs
}

/// `metric.metadata["prometheus.type"]`, set by the Prometheus receiver of the OTel Collector.
fn prometheus_type(m: &Metric) -> Option<&str> {
    m.metadata.iter().find(|kv| kv.key == "prometheus.type").and_then(|kv| match &kv.value.as_ref()?.value {
        Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    })
}

fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// A sent NaN stays an ordinary NaN: only the `NoRecordedValue` flag may produce a stale marker.
fn plain(v: f64) -> f64 {
    if v.is_nan() {
        f64::NAN
    } else {
        v
    }
}

fn to_millis(ns: u64) -> Timestamp {
    (ns / 1_000_000) as Timestamp
}

fn widen(span: Option<(Timestamp, Timestamp)>, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
    Some(match span {
        Some((a, b)) => (a.min(t), b.max(t)),
        None => (t, t),
    })
}

/// An attribute value as a label value, following the attribute spec's string conversion as
/// the Collector's `pcommon.Value.AsString` does: numbers as JavaScript prints them, bytes as
/// base64, arrays and maps as JSON.
pub(crate) fn value_string(v: Option<&AnyValue>) -> Cow<'_, str> {
    match v.and_then(|v| v.value.as_ref()) {
        None => Cow::Borrowed(""),
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s),
        Some(any_value::Value::BoolValue(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(any_value::Value::DoubleValue(d)) => Cow::Owned(js_number(*d)),
        Some(any_value::Value::BytesValue(b)) => Cow::Owned(base64(b)),
        // An index into a profiles dictionary: meaningless outside the profiles signal.
        Some(any_value::Value::StringValueStrindex(_)) => Cow::Borrowed(""),
        Some(other) => Cow::Owned(json_value(other).to_string()),
    }
}

fn json_value(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map(J::Number).unwrap_or(J::Null),
        any_value::Value::BytesValue(b) => J::String(base64(b)),
        any_value::Value::ArrayValue(a) => {
            J::Array(a.values.iter().map(|v| v.value.as_ref().map(json_value).unwrap_or(J::Null)).collect())
        }
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().and_then(|v| v.value.as_ref()).map(json_value).unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
        any_value::Value::StringValueStrindex(_) => J::Null,
    }
}

/// ECMAScript's Number::toString: plain digits from 1e-6 up to 1e21, exponent notation outside.
fn js_number(d: f64) -> String {
    if !d.is_finite() {
        return format_float(d);
    }
    let abs = d.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        d.to_string()
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_as_strings() {
        use any_value::Value as V;
        let s = |v: V| value_string(Some(&AnyValue { value: Some(v) })).into_owned();
        assert_eq!(s(V::StringValue("x".into())), "x");
        assert_eq!(s(V::BoolValue(true)), "true");
        assert_eq!(s(V::IntValue(-42)), "-42");
        assert_eq!(s(V::DoubleValue(0.5)), "0.5");
        assert_eq!(s(V::DoubleValue(3.0)), "3");
        assert_eq!(s(V::DoubleValue(1e21)), "1e+21");
        assert_eq!(s(V::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(s(V::BytesValue(b"hello".to_vec())), "aGVsbG8=");
        assert_eq!(s(V::BytesValue(b"hi!".to_vec())), "aGkh");
        assert_eq!(s(V::BytesValue(b"h".to_vec())), "aA==");
        let arr = V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: vec![
                AnyValue { value: Some(V::StringValue("a".into())) },
                AnyValue { value: Some(V::IntValue(1)) },
                AnyValue { value: None },
            ],
        });
        assert_eq!(s(arr), r#"["a",1,null]"#);
        assert_eq!(value_string(None), "");
    }

    #[test]
    fn target_info_repeats_every_half_lookback() {
        assert_eq!(target_info_times((5, 5)), [5]);
        assert_eq!(target_info_times((0, 100)), [0, 100]);
        assert_eq!(target_info_times((0, 300_000)), [0, 150_000, 300_000]);
        assert_eq!(target_info_times((0, 300_001)), [0, 150_000, 300_000, 300_001]);
        assert_eq!(target_info_times((0, i64::MAX / 2)), [0, i64::MAX / 2]);
    }

    #[test]
    fn merge_keeps_order_and_precedence() {
        let a = vec![("b", "1"), ("d", "1")];
        let b = vec![("a", "2"), ("b", "2"), ("c", "2"), ("e", "2")];
        assert_eq!(merge(a.clone(), b.clone(), false), [("a", "2"), ("b", "1"), ("c", "2"), ("d", "1"), ("e", "2")]);
        assert_eq!(merge(a.clone(), b.clone(), true), [("a", "2"), ("b", "2"), ("c", "2"), ("d", "1"), ("e", "2")]);
        assert_eq!(merge(Vec::new(), b.clone(), true), b);
        assert_eq!(merge(a.clone(), Vec::new(), true), a);
    }

    #[test]
    fn nanos_to_millis() {
        assert_eq!(to_millis(1_795_338_209_741_999_999), 1_795_338_209_741);
        assert_eq!(to_millis(u64::MAX), 18_446_744_073_709);
    }
}
