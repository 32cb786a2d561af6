//! OTLP/HTTP traces (`POST /v1/traces`): an `ExportTraceServiceRequest` as protobuf or OTLP/JSON
//! into a [`SpanBatch`], and the way back for the read APIs (Tempo's `Trace` proto and OTLP/JSON
//! `resourceSpans`).
//!
//! Spec: <https://opentelemetry.io/docs/specs/otlp/> (JSON encoding:
//! <https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>; partial success:
//! <https://opentelemetry.io/docs/specs/otlp/#partial-success>).
//!
//! Decisions where the spec leaves room (also in `docs/traces-intake.md`):
//!
//! - A body that does not decode at all is an [`Error`] (the API answers 400). A span that
//!   decodes but cannot be stored is refused on its own and counted in
//!   [`DecodedSpans::rejected`] with a [`DecodedSpans::reason`], for OTLP's
//!   `partial_success.rejected_spans`: a trace id that is not 16 bytes or is all zeros, a span id
//!   that is not 8 bytes or is all zeros, a parent span id that is neither empty nor 8 bytes
//!   (an all-zero 8-byte parent means "root", as some SDKs send it).
//! - A link whose trace or span id has the wrong length is dropped and counted in the span's
//!   `dropped_links_count` rather than refusing the span: the span itself is fine.
//! - [`TraceLimits`] are applied the way the OpenTelemetry SDK applies its span limits: the
//!   first attributes, events and links are kept, the rest dropped and added to the matching
//!   `dropped_*_count`; over-long strings (and bytes) are cut at a character boundary. Both are
//!   counted in [`DecodedSpans::truncated`] and [`DecodedSpans::dropped`], and the OTLP
//!   response carries them as a warning (rejected 0, message set), which the spec allows.
//! - Timestamps are `fixed64` nanoseconds on the wire and `i64` in the model: values past
//!   `i64::MAX` (year 2262) are clamped; negative model times encode as 0.
//! - Nothing is merged or deduplicated: resources and scopes keep the request's grouping and
//!   order, empty ones included, so a batch encodes back to the same message.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1 as pc;
use opentelemetry_proto::tonic::resource::v1 as pr;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};
use telltale_model::{
    AttrValue, KeyValue, Nanos, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};

use super::error::{Error, Result};

/// Per-span limits applied while decoding spans (OTLP and Zipkin). Nothing is refused for
/// breaking one: the excess is cut or dropped, and counted. Zero disables a limit.
///
/// The count defaults are the OpenTelemetry SDK's span limits (`OTEL_SPAN_*_COUNT_LIMIT`,
/// 128); the value size follows Tempo's `max_attribute_bytes` (2048), which the SDK leaves
/// unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceLimits {
    /// Longest string (or bytes) attribute value kept, in bytes, for span, event, link, scope
    /// and resource attributes, nested values included. Longer values are cut at a character
    /// boundary and counted in [`DecodedSpans::truncated`].
    pub max_attribute_value_bytes: usize,
    /// Most attributes kept on one span (and on one event or link). The first ones are kept;
    /// the rest are dropped and added to that item's `dropped_attributes_count`.
    pub max_attributes_per_span: usize,
    /// Most events kept on one span; the rest are dropped and added to `dropped_events_count`.
    pub max_events_per_span: usize,
    /// Most links kept on one span; the rest are dropped and added to `dropped_links_count`.
    pub max_links_per_span: usize,
    /// Longest span (and event) name kept, in bytes; longer names are cut at a character
    /// boundary and counted in [`DecodedSpans::truncated`].
    pub max_span_name_bytes: usize,
}

impl Default for TraceLimits {
    fn default() -> Self {
        TraceLimits {
            max_attribute_value_bytes: 2048,
            max_attributes_per_span: 128,
            max_events_per_span: 128,
            max_links_per_span: 128,
            max_span_name_bytes: 1024,
        }
    }
}

impl TraceLimits {
    /// No limit at all (tests, fuzzing, trusted agents).
    pub fn unlimited() -> Self {
        TraceLimits {
            max_attribute_value_bytes: 0,
            max_attributes_per_span: 0,
            max_events_per_span: 0,
            max_links_per_span: 0,
            max_span_name_bytes: 0,
        }
    }
}

/// A decoded trace request: the spans to store, and what was refused or cut on the way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedSpans {
    /// The spans kept, grouped by resource and scope as sent.
    pub batch: SpanBatch,
    /// Spans refused because they cannot be stored (invalid ids), for OTLP's
    /// `partial_success.rejected_spans`.
    pub rejected: u64,
    /// Why spans were refused (one line, every reason with its count), or `None`.
    pub reason: Option<String>,
    /// Names and attribute values cut to [`TraceLimits`].
    pub truncated: u64,
    /// Attributes, events and links dropped over [`TraceLimits`] (also added to the spans' own
    /// `dropped_*_count`).
    pub dropped: u64,
}

impl DecodedSpans {
    /// A one-line account of what was refused, cut or dropped, for `partial_success.error_message`
    /// and logs; `None` when everything was stored as sent.
    pub fn message(&self) -> Option<String> {
        let mut parts: Vec<String> = self.reason.iter().cloned().collect();
        if self.truncated > 0 {
            parts.push(format!("truncated {} names or attribute values over the limits", self.truncated));
        }
        if self.dropped > 0 {
            parts.push(format!("dropped {} attributes, events or links over the limits", self.dropped));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The `ExportTraceServiceResponse` to answer with, as protobuf.
    pub fn response_proto(&self) -> Vec<u8> {
        traces_response(false, self.rejected, &self.message().unwrap_or_default())
    }

    /// The same response as OTLP/JSON (`{}` when everything was stored as sent).
    pub fn response_json(&self) -> Vec<u8> {
        traces_response(true, self.rejected, &self.message().unwrap_or_default())
    }
}

/// An `ExportTraceServiceResponse` body, protobuf or OTLP/JSON: a `partial_success` with
/// `rejected` spans and `message` when either is set, else empty (`{}` in JSON). The server adds
/// the spans its store refused to those the decoder refused.
pub fn traces_response(json: bool, rejected: u64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.to_string(),
    });
    match (json, partial) {
        (false, partial_success) => ExportTraceServiceResponse { partial_success }.encode_to_vec(),
        (true, None) => b"{}".to_vec(),
        (true, Some(p)) => serde_json::json!({"partialSuccess": {
            "rejectedSpans": p.rejected_spans.to_string(),
            "errorMessage": p.error_message,
        }})
        .to_string()
        .into_bytes(),
    }
}

/// Decodes a protobuf `ExportTraceServiceRequest` (`Content-Type: application/x-protobuf`).
pub fn decode_traces_proto(body: &[u8], limits: &TraceLimits) -> Result<DecodedSpans> {
    let req = ExportTraceServiceRequest::decode(body).map_err(Error::Protobuf)?;
    Ok(convert_traces(req, limits))
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (`Content-Type: application/json`): trace
/// and span ids as hex (not base64), enums as integers or names, 64-bit integers as strings or
/// numbers, `null` as the default, unknown keys ignored; any malformed value is an error.
pub fn decode_traces_json(body: &[u8], limits: &TraceLimits) -> Result<DecodedSpans> {
    let req = super::json::parse_traces(body).map_err(Error::Json)?;
    Ok(convert_traces(req, limits))
}

/// Converts an already decoded request (for an OTLP/gRPC service sharing these messages).
pub fn convert_traces(req: ExportTraceServiceRequest, limits: &TraceLimits) -> DecodedSpans {
    let mut refused = Refused::default();
    let resources = req.resource_spans.into_iter().map(|r| resource_from_proto(r, &mut refused)).collect();
    finish(SpanBatch { resources }, &refused, limits)
}

// ---- refusals and limits, shared with the Zipkin decoder ----

/// Why one span cannot be stored: which of its ids is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Trace,
    Span,
    Parent,
}

/// Counts of refused spans by reason.
#[derive(Debug, Default)]
pub(crate) struct Refused {
    trace_id: u64,
    span_id: u64,
    parent_span_id: u64,
}

impl Refused {
    pub(crate) fn add(&mut self, why: Refusal) {
        match why {
            Refusal::Trace => self.trace_id += 1,
            Refusal::Span => self.span_id += 1,
            Refusal::Parent => self.parent_span_id += 1,
        }
    }

    fn total(&self) -> u64 {
        self.trace_id + self.span_id + self.parent_span_id
    }

    fn reason(&self) -> Option<String> {
        let parts = [
            (self.trace_id, "an invalid trace id (not 16 bytes, or all zeros)"),
            (self.span_id, "an invalid span id (not 8 bytes, or all zeros)"),
            (self.parent_span_id, "an invalid parent span id (neither empty nor 8 bytes)"),
        ];
        let text: Vec<String> =
            parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} with {what}")).collect();
        (!text.is_empty()).then(|| format!("rejected spans: {}", text.join(", ")))
    }
}

/// Applies the limits to a decoded batch and counts everything.
pub(crate) fn finish(mut batch: SpanBatch, refused: &Refused, limits: &TraceLimits) -> DecodedSpans {
    let mut cut = Cut::default();
    for r in &mut batch.resources {
        values(&mut r.resource, limits, &mut cut);
        for s in &mut r.scopes {
            values(&mut s.scope.attributes, limits, &mut cut);
            for span in &mut s.spans {
                limit_span(span, limits, &mut cut);
            }
        }
    }
    DecodedSpans {
        batch,
        rejected: refused.total(),
        reason: refused.reason(),
        truncated: cut.truncated,
        dropped: cut.dropped,
    }
}

#[derive(Default)]
struct Cut {
    truncated: u64,
    dropped: u64,
}

fn over(n: usize, max: usize) -> bool {
    max != 0 && n > max
}

fn add_dropped(count: &mut u32, n: usize) {
    *count = count.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

fn cut_str(s: &mut String, max: usize, cut: &mut Cut) {
    if over(s.len(), max) {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        cut.truncated += 1;
    }
}

fn cut_value(v: &mut AttrValue, max: usize, cut: &mut Cut) {
    match v {
        AttrValue::Str(s) => cut_str(s, max, cut),
        AttrValue::Bytes(b) if over(b.len(), max) => {
            b.truncate(max);
            cut.truncated += 1;
        }
        AttrValue::Array(a) => a.iter_mut().for_each(|x| cut_value(x, max, cut)),
        AttrValue::Map(m) => m.iter_mut().for_each(|kv| cut_value(&mut kv.value, max, cut)),
        _ => {}
    }
}

/// Cuts over-long values (resource and scope attributes: no count limit).
fn values(attrs: &mut [KeyValue], limits: &TraceLimits, cut: &mut Cut) {
    for kv in attrs {
        cut_value(&mut kv.value, limits.max_attribute_value_bytes, cut);
    }
}

/// Keeps the first `max` items, adding the others to `dropped_count`.
fn keep_first<T>(items: &mut Vec<T>, max: usize, dropped_count: &mut u32, cut: &mut Cut) {
    if over(items.len(), max) {
        let excess = items.len() - max;
        items.truncate(max);
        add_dropped(dropped_count, excess);
        cut.dropped += excess as u64;
    }
}

fn attributes(attrs: &mut Vec<KeyValue>, dropped_count: &mut u32, limits: &TraceLimits, cut: &mut Cut) {
    keep_first(attrs, limits.max_attributes_per_span, dropped_count, cut);
    values(attrs, limits, cut);
}

fn limit_span(span: &mut Span, limits: &TraceLimits, cut: &mut Cut) {
    cut_str(&mut span.name, limits.max_span_name_bytes, cut);
    attributes(&mut span.attributes, &mut span.dropped_attributes_count, limits, cut);
    keep_first(&mut span.events, limits.max_events_per_span, &mut span.dropped_events_count, cut);
    for e in &mut span.events {
        cut_str(&mut e.name, limits.max_span_name_bytes, cut);
        attributes(&mut e.attributes, &mut e.dropped_attributes_count, limits, cut);
    }
    keep_first(&mut span.links, limits.max_links_per_span, &mut span.dropped_links_count, cut);
    for l in &mut span.links {
        attributes(&mut l.attributes, &mut l.dropped_attributes_count, limits, cut);
    }
}

// ---- protobuf into the model ----

fn nanos(t: u64) -> Nanos {
    Nanos::try_from(t).unwrap_or(Nanos::MAX)
}

fn trace_id(b: &[u8]) -> Option<TraceId> {
    <[u8; 16]>::try_from(b).ok().map(TraceId)
}

fn span_id(b: &[u8]) -> Option<SpanId> {
    <[u8; 8]>::try_from(b).ok().map(SpanId)
}

fn resource_from_proto(r: pt::ResourceSpans, refused: &mut Refused) -> ResourceSpans {
    let res = r.resource.unwrap_or_default();
    ResourceSpans {
        resource: attrs_from_proto(res.attributes),
        dropped_attributes_count: res.dropped_attributes_count,
        scopes: r.scope_spans.into_iter().map(|s| scope_from_proto(s, refused)).collect(),
        schema_url: r.schema_url,
    }
}

fn scope_from_proto(s: pt::ScopeSpans, refused: &mut Refused) -> ScopeSpans {
    let scope = s.scope.unwrap_or_default();
    let mut spans = Vec::with_capacity(s.spans.len());
    for span in s.spans {
        match span_from_proto(span) {
            Ok(span) => spans.push(span),
            Err(why) => refused.add(why),
        }
    }
    ScopeSpans {
        scope: Scope {
            name: scope.name,
            version: scope.version,
            attributes: attrs_from_proto(scope.attributes),
            dropped_attributes_count: scope.dropped_attributes_count,
        },
        spans,
        schema_url: s.schema_url,
    }
}

fn span_from_proto(s: pt::Span) -> Result<Span, Refusal> {
    let trace_id = trace_id(&s.trace_id).filter(|t| !t.is_zero()).ok_or(Refusal::Trace)?;
    let span_id = span_id(&s.span_id).filter(|t| !t.is_zero()).ok_or(Refusal::Span)?;
    let parent_span_id = match s.parent_span_id.len() {
        0 => SpanId::default(),
        _ => self::span_id(&s.parent_span_id).ok_or(Refusal::Parent)?,
    };
    let status = s.status.unwrap_or_default();
    let mut dropped_links_count = s.dropped_links_count;
    let mut links = Vec::with_capacity(s.links.len());
    for l in s.links {
        match link_from_proto(l) {
            Some(l) => links.push(l),
            None => add_dropped(&mut dropped_links_count, 1),
        }
    }
    Ok(Span {
        trace_id,
        span_id,
        trace_state: s.trace_state,
        parent_span_id,
        flags: s.flags,
        name: s.name,
        kind: SpanKind::from_i32(s.kind),
        start: nanos(s.start_time_unix_nano),
        end: nanos(s.end_time_unix_nano),
        attributes: attrs_from_proto(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s.events.into_iter().map(event_from_proto).collect(),
        dropped_events_count: s.dropped_events_count,
        links,
        dropped_links_count,
        status: StatusCode::from_i32(status.code),
        status_message: status.message,
    })
}

fn event_from_proto(e: pt::span::Event) -> SpanEvent {
    SpanEvent {
        time: nanos(e.time_unix_nano),
        name: e.name,
        attributes: attrs_from_proto(e.attributes),
        dropped_attributes_count: e.dropped_attributes_count,
    }
}

fn link_from_proto(l: pt::span::Link) -> Option<SpanLink> {
    Some(SpanLink {
        trace_id: trace_id(&l.trace_id)?,
        span_id: span_id(&l.span_id)?,
        trace_state: l.trace_state,
        attributes: attrs_from_proto(l.attributes),
        dropped_attributes_count: l.dropped_attributes_count,
        flags: l.flags,
    })
}

fn attrs_from_proto(kvs: Vec<pc::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| KeyValue { key: kv.key, value: kv.value.map_or(AttrValue::Empty, value_from_proto) })
        .collect()
}

fn value_from_proto(v: pc::AnyValue) -> AttrValue {
    use pc::any_value::Value;
    match v.value {
        Some(Value::StringValue(s)) => AttrValue::Str(s),
        Some(Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(Value::IntValue(i)) => AttrValue::Int(i),
        Some(Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(Value::ArrayValue(a)) => AttrValue::Array(a.values.into_iter().map(value_from_proto).collect()),
        Some(Value::KvlistValue(kv)) => AttrValue::Map(attrs_from_proto(kv.values)),
        // A reference into a profile's string table: meaningless outside profiles.
        Some(_) | None => AttrValue::Empty,
    }
}

// ---- the model into protobuf ----

/// Encodes a batch as an `ExportTraceServiceRequest`: field 1 holds the `ResourceSpans`, which
/// makes the same bytes a valid OTLP `TracesData` and a Tempo `Trace` (`batches`).
pub fn encode_traces_proto(batch: &SpanBatch) -> Vec<u8> {
    ExportTraceServiceRequest { resource_spans: batch.resources.iter().map(resource_to_proto).collect() }
        .encode_to_vec()
}

fn unix_nanos(t: Nanos) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

fn resource_to_proto(r: &ResourceSpans) -> pt::ResourceSpans {
    pt::ResourceSpans {
        resource: Some(pr::Resource {
            attributes: attrs_to_proto(&r.resource),
            dropped_attributes_count: r.dropped_attributes_count,
            ..Default::default()
        }),
        scope_spans: r.scopes.iter().map(scope_to_proto).collect(),
        schema_url: r.schema_url.clone(),
    }
}

fn scope_to_proto(s: &ScopeSpans) -> pt::ScopeSpans {
    pt::ScopeSpans {
        scope: Some(pc::InstrumentationScope {
            name: s.scope.name.clone(),
            version: s.scope.version.clone(),
            attributes: attrs_to_proto(&s.scope.attributes),
            dropped_attributes_count: s.scope.dropped_attributes_count,
        }),
        spans: s.spans.iter().map(span_to_proto).collect(),
        schema_url: s.schema_url.clone(),
    }
}

fn span_to_proto(s: &Span) -> pt::Span {
    pt::Span {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: s.trace_state.clone(),
        // A root span has no parent: empty bytes, as the SDKs send it.
        parent_span_id: if s.parent_span_id.is_zero() { Vec::new() } else { s.parent_span_id.0.to_vec() },
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind as i32,
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: attrs_to_proto(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| pt::span::Event {
                time_unix_nano: unix_nanos(e.time),
                name: e.name.clone(),
                attributes: attrs_to_proto(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| pt::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attrs_to_proto(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: (s.status != StatusCode::Unset || !s.status_message.is_empty())
            .then(|| pt::Status { message: s.status_message.clone(), code: s.status as i32 }),
    }
}

fn attrs_to_proto(kvs: &[KeyValue]) -> Vec<pc::KeyValue> {
    kvs.iter()
        .map(|kv| pc::KeyValue { key: kv.key.clone(), value: Some(value_to_proto(&kv.value)), ..Default::default() })
        .collect()
}

fn value_to_proto(v: &AttrValue) -> pc::AnyValue {
    use pc::any_value::Value;
    let value = match v {
        AttrValue::Empty => None,
        AttrValue::Str(s) => Some(Value::StringValue(s.clone())),
        AttrValue::Bool(b) => Some(Value::BoolValue(*b)),
        AttrValue::Int(i) => Some(Value::IntValue(*i)),
        AttrValue::Double(d) => Some(Value::DoubleValue(*d)),
        AttrValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        AttrValue::Array(a) => {
            Some(Value::ArrayValue(pc::ArrayValue { values: a.iter().map(value_to_proto).collect() }))
        }
        AttrValue::Map(m) => Some(Value::KvlistValue(pc::KeyValueList { values: attrs_to_proto(m) })),
    };
    pc::AnyValue { value }
}

// ---- the model into OTLP/JSON ----

/// The batch as a JSON array of OTLP/JSON `ResourceSpans` objects: lowerCamelCase keys, hex ids,
/// 64-bit integers as strings, kind and status code as integers, default and empty fields left
/// out as the protobuf JSON mapping does. The API wraps it (`{"batches": ...}` for Tempo v1,
/// `{"trace": {"resourceSpans": ...}}` for v2).
pub fn resource_spans_json(batch: &SpanBatch) -> J {
    J::Array(batch.resources.iter().map(resource_json).collect())
}

fn put_str(o: &mut Map<String, J>, key: &str, v: &str) {
    if !v.is_empty() {
        o.insert(key.into(), J::String(v.to_string()));
    }
}

fn put_u32(o: &mut Map<String, J>, key: &str, v: u32) {
    if v != 0 {
        o.insert(key.into(), J::from(v));
    }
}

/// A `fixed64` nanosecond time, written as a decimal string.
fn put_nanos(o: &mut Map<String, J>, key: &str, t: Nanos) {
    if t != 0 {
        o.insert(key.into(), J::String(unix_nanos(t).to_string()));
    }
}

fn put_attrs(o: &mut Map<String, J>, key: &str, kvs: &[KeyValue]) {
    if !kvs.is_empty() {
        o.insert(key.into(), attrs_json(kvs));
    }
}

fn resource_json(r: &ResourceSpans) -> J {
    let mut res = Map::new();
    put_attrs(&mut res, "attributes", &r.resource);
    put_u32(&mut res, "droppedAttributesCount", r.dropped_attributes_count);
    let mut o = Map::new();
    o.insert("resource".into(), J::Object(res));
    if !r.scopes.is_empty() {
        o.insert("scopeSpans".into(), J::Array(r.scopes.iter().map(scope_json).collect()));
    }
    put_str(&mut o, "schemaUrl", &r.schema_url);
    J::Object(o)
}

fn scope_json(s: &ScopeSpans) -> J {
    let mut scope = Map::new();
    put_str(&mut scope, "name", &s.scope.name);
    put_str(&mut scope, "version", &s.scope.version);
    put_attrs(&mut scope, "attributes", &s.scope.attributes);
    put_u32(&mut scope, "droppedAttributesCount", s.scope.dropped_attributes_count);
    let mut o = Map::new();
    o.insert("scope".into(), J::Object(scope));
    if !s.spans.is_empty() {
        o.insert("spans".into(), J::Array(s.spans.iter().map(span_json).collect()));
    }
    put_str(&mut o, "schemaUrl", &s.schema_url);
    J::Object(o)
}

fn span_json(s: &Span) -> J {
    let mut o = Map::new();
    o.insert("traceId".into(), J::String(s.trace_id.to_string()));
    o.insert("spanId".into(), J::String(s.span_id.to_string()));
    put_str(&mut o, "traceState", &s.trace_state);
    if !s.parent_span_id.is_zero() {
        o.insert("parentSpanId".into(), J::String(s.parent_span_id.to_string()));
    }
    put_u32(&mut o, "flags", s.flags);
    put_str(&mut o, "name", &s.name);
    put_u32(&mut o, "kind", s.kind as u32);
    put_nanos(&mut o, "startTimeUnixNano", s.start);
    put_nanos(&mut o, "endTimeUnixNano", s.end);
    put_attrs(&mut o, "attributes", &s.attributes);
    put_u32(&mut o, "droppedAttributesCount", s.dropped_attributes_count);
    if !s.events.is_empty() {
        o.insert("events".into(), J::Array(s.events.iter().map(event_json).collect()));
    }
    put_u32(&mut o, "droppedEventsCount", s.dropped_events_count);
    if !s.links.is_empty() {
        o.insert("links".into(), J::Array(s.links.iter().map(link_json).collect()));
    }
    put_u32(&mut o, "droppedLinksCount", s.dropped_links_count);
    let mut status = Map::new();
    put_str(&mut status, "message", &s.status_message);
    put_u32(&mut status, "code", s.status as u32);
    if !status.is_empty() {
        o.insert("status".into(), J::Object(status));
    }
    J::Object(o)
}

fn event_json(e: &SpanEvent) -> J {
    let mut o = Map::new();
    put_nanos(&mut o, "timeUnixNano", e.time);
    put_str(&mut o, "name", &e.name);
    put_attrs(&mut o, "attributes", &e.attributes);
    put_u32(&mut o, "droppedAttributesCount", e.dropped_attributes_count);
    J::Object(o)
}

fn link_json(l: &SpanLink) -> J {
    let mut o = Map::new();
    o.insert("traceId".into(), J::String(l.trace_id.to_string()));
    o.insert("spanId".into(), J::String(l.span_id.to_string()));
    put_str(&mut o, "traceState", &l.trace_state);
    put_attrs(&mut o, "attributes", &l.attributes);
    put_u32(&mut o, "droppedAttributesCount", l.dropped_attributes_count);
    put_u32(&mut o, "flags", l.flags);
    J::Object(o)
}

fn attrs_json(kvs: &[KeyValue]) -> J {
    J::Array(kvs.iter().map(|kv| serde_json::json!({"key": kv.key, "value": value_json(&kv.value)})).collect())
}

fn value_json(v: &AttrValue) -> J {
    use serde_json::json;
    match v {
        AttrValue::Empty => J::Object(Map::new()),
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Double(d) => json!({ "doubleValue": double_json(*d) }),
        AttrValue::Bytes(b) => json!({ "bytesValue": telltale_model::base64::encode(b) }),
        AttrValue::Array(a) => {
            let mut inner = Map::new();
            if !a.is_empty() {
                inner.insert("values".into(), J::Array(a.iter().map(value_json).collect()));
            }
            json!({ "arrayValue": inner })
        }
        AttrValue::Map(m) => {
            let mut inner = Map::new();
            put_attrs(&mut inner, "values", m);
            json!({ "kvlistValue": inner })
        }
    }
}

/// A double as the protobuf JSON mapping writes it: a number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
fn double_json(d: f64) -> J {
    match serde_json::Number::from_f64(d) {
        Some(n) => J::Number(n),
        None if d.is_nan() => J::String("NaN".into()),
        None if d > 0.0 => J::String("Infinity".into()),
        None => J::String("-Infinity".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use telltale_model::attr;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/otlp_traces").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn json_fixture(name: &str) -> DecodedSpans {
        decode_traces_json(&fixture(name), &TraceLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn only_span(d: &DecodedSpans) -> &Span {
        assert_eq!(d.batch.span_count(), 1, "{d:?}");
        d.batch.spans().next().map(|(_, _, s)| s).unwrap()
    }

    #[test]
    fn spec_example() {
        let d = json_fixture("spec_example.json");
        let (r, s, span) = d.batch.spans().next().unwrap();
        assert_eq!(r.service_name(), "my.service");
        assert_eq!((s.scope.name.as_str(), s.scope.version.as_str()), ("my.library", "1.0.0"));
        assert_eq!(span.trace_id.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(span.span_id.to_string(), "eee19b7ec3c1b174");
        assert_eq!(span.parent_span_id.to_string(), "eee19b7ec3c1b173");
        assert_eq!(
            (span.kind, span.start, span.duration()),
            (SpanKind::Server, 1_544_712_660_000_000_000, 1_000_000_000)
        );
        assert_eq!(attr(&span.attributes, "my.span.attr"), Some(&AttrValue::Str("some value".into())));
        assert_eq!((d.rejected, d.reason.as_deref(), d.message()), (0, None, None));
        assert_eq!(d.response_json(), b"{}");
        assert!(d.response_proto().is_empty());
    }

    #[test]
    fn every_field_and_both_enum_spellings() {
        let d = json_fixture("every_field.json");
        let r = &d.batch.resources[0];
        assert_eq!((r.dropped_attributes_count, r.schema_url.as_str()), (1, "https://opentelemetry.io/schemas/1.26.0"));
        assert_eq!(attr(&r.resource, "host.cpus"), Some(&AttrValue::Int(8)));
        assert_eq!(r.scopes[0].scope.dropped_attributes_count, 2);
        let s = only_span(&d);
        assert!(s.is_root());
        assert_eq!(
            (s.kind, s.status, s.status_message.as_str()),
            (SpanKind::Client, StatusCode::Error, "upstream returned 503")
        );
        assert_eq!((s.flags, s.trace_state.as_str()), (769, "rojo=00f067aa0ba902b7"));
        assert_eq!((s.start, s.end), (1_700_000_000_000_000_000, 1_700_000_000_250_000_000));
        let a = |k| attr(&s.attributes, k).unwrap();
        assert_eq!(a("http.response.status_code"), &AttrValue::Int(503));
        assert_eq!(a("retry"), &AttrValue::Bool(true));
        assert!(matches!(a("ratio"), AttrValue::Double(d) if d.is_nan()));
        assert_eq!(a("blob"), &AttrValue::Bytes(b"hello".to_vec()));
        assert_eq!(a("tags"), &AttrValue::Array(vec![AttrValue::Str("a".into()), AttrValue::Int(1)]));
        assert_eq!(a("map"), &AttrValue::Map(vec![KeyValue::str("k", "v")]));
        assert_eq!((a("nothing"), a("null")), (&AttrValue::Empty, &AttrValue::Empty));
        assert_eq!((s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count), (3, 4, 5));
        assert_eq!(
            (s.events[0].name.as_str(), s.events[0].time, s.events[0].dropped_attributes_count),
            ("exception", 1_700_000_000_100_000_000, 1)
        );
        let l = &s.links[0];
        assert_eq!(
            (l.trace_id.to_string(), l.span_id.to_string()),
            ("4bf92f3577b34da6a3ce929d0e0e4736".into(), "00f067aa0ba902b7".into())
        );
        assert_eq!((l.trace_state.as_str(), l.flags, l.attributes.len()), ("congo=t61rcWkgMzE", 257, 1));
    }

    #[test]
    fn spans_with_invalid_ids_are_refused_one_by_one() {
        let d = json_fixture("invalid_ids.json");
        let names: Vec<&str> = d.batch.spans().map(|(_, _, s)| s.name.as_str()).collect();
        assert_eq!(names, ["kept", "zero parent is a root"]);
        assert_eq!(d.rejected, 6);
        assert_eq!(
            d.reason.as_deref(),
            Some("rejected spans: 3 with an invalid trace id (not 16 bytes, or all zeros), 2 with an invalid span id (not 8 bytes, or all zeros), 1 with an invalid parent span id (neither empty nor 8 bytes)")
        );
        let root = d.batch.spans().nth(1).unwrap().2;
        assert!(root.is_root() && root.links.is_empty());
        assert_eq!(root.dropped_links_count, 1, "a link with a short id is dropped and counted");
        let resp: J = serde_json::from_slice(&d.response_json()).unwrap();
        assert_eq!(resp["partialSuccess"]["rejectedSpans"], "6");
        let proto = ExportTraceServiceResponse::decode(d.response_proto().as_slice()).unwrap();
        assert_eq!(proto.partial_success.unwrap().rejected_spans, 6);
    }

    #[test]
    fn malformed_bodies_and_values_are_errors() {
        let l = TraceLimits::default();
        let span = |fields: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"{fields}}}]}}]}}]}}"#
            )
        };
        assert!(decode_traces_json(span("").as_bytes(), &l).is_ok());
        for bad in [
            r#","startTimeUnixNano":"1x""#,
            r#","startTimeUnixNano":-1"#,
            r#","kind":"SERVER""#,
            r#","kind":true"#,
            r#","status":{"code":"ERROR"}"#,
            r#","parentSpanId":"W47/95gDgQM=""#,
            r#","attributes":[{"key":"a","value":{"intValue":"1.5"}}]"#,
            r#","flags":"1""#,
        ] {
            let e = decode_traces_json(span(bad).as_bytes(), &l).unwrap_err();
            assert!(
                e.to_string().starts_with("invalid otlp json body: ") && !e.to_string().contains('\n'),
                "{bad}: {e}"
            );
            assert_eq!(e.kind(), telltale_model::ErrorKind::InvalidInput);
        }
        // base64 trace id (the generic protobuf JSON rule) instead of hex: malformed.
        let b64 = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"CvdlGRbNQ92ESOshHIAxnA==","spanId":"t61rcWkgMzE="}]}]}]}"#;
        assert!(decode_traces_json(b64, &l).is_err());
        assert!(decode_traces_json(b"[]", &l).is_err());
        assert!(decode_traces_json(b"{", &l).is_err());
        assert!(decode_traces_proto(b"\xff\xff\xff", &l).is_err());
        // null is the default, unknown keys are ignored, an empty request is fine.
        let d = decode_traces_json(br#"{"resourceSpans":null,"other":1}"#, &l).unwrap();
        assert!(d.batch.is_empty());
        assert!(decode_traces_proto(b"", &l).unwrap().batch.is_empty());
    }

    #[test]
    fn protobuf_built_with_prost() {
        use pc::any_value::Value;
        let kv = |k: &str, v: Value| pc::KeyValue {
            key: k.into(),
            value: Some(pc::AnyValue { value: Some(v) }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![pt::ResourceSpans {
                resource: Some(pr::Resource {
                    attributes: vec![kv("service.name", Value::StringValue("db".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![pt::ScopeSpans {
                    scope: None,
                    spans: vec![
                        pt::Span {
                            trace_id: vec![1; 16],
                            span_id: vec![2; 8],
                            parent_span_id: vec![3; 8],
                            name: "SELECT".into(),
                            kind: 3,
                            start_time_unix_nano: 10,
                            end_time_unix_nano: u64::MAX,
                            attributes: vec![kv("db.system", Value::StringValue("postgresql".into()))],
                            status: Some(pt::Status { code: 7, message: String::new() }),
                            ..Default::default()
                        },
                        pt::Span { trace_id: vec![1; 15], span_id: vec![2; 8], ..Default::default() },
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let d = decode_traces_proto(&req.encode_to_vec(), &TraceLimits::default()).unwrap();
        assert_eq!(d.rejected, 1);
        assert_eq!(d.batch.resources[0].service_name(), "db");
        let s = only_span(&d);
        assert_eq!((s.kind, s.status, s.start, s.end), (SpanKind::Client, StatusCode::Unset, 10, i64::MAX));
        assert_eq!(s.parent_span_id, SpanId([3; 8]));
    }

    #[test]
    fn limits_cut_and_drop_like_the_sdk() {
        let limits = TraceLimits {
            max_attribute_value_bytes: 4,
            max_attributes_per_span: 2,
            max_events_per_span: 1,
            max_links_per_span: 1,
            max_span_name_bytes: 3,
        };
        let link = SpanLink { trace_id: TraceId([1; 16]), span_id: SpanId([1; 8]), ..SpanLink::default() };
        let span = Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            name: "héllo".into(),
            attributes: vec![
                KeyValue::str("a", "abcdef"),
                KeyValue { key: "b".into(), value: AttrValue::Array(vec![AttrValue::Str("ééé".into())]) },
                KeyValue::str("c", "x"),
            ],
            dropped_attributes_count: 1,
            events: vec![SpanEvent::default(), SpanEvent::default()],
            links: vec![link.clone(), link.clone(), link],
            ..Span::default()
        };
        let batch = SpanBatch {
            resources: vec![ResourceSpans {
                resource: vec![KeyValue::str("service.name", "a-long-name")],
                scopes: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        };
        let d = decode_traces_proto(&encode_traces_proto(&batch), &limits).unwrap();
        let s = only_span(&d);
        assert_eq!(s.name, "hé");
        assert_eq!(
            s.attributes,
            vec![
                KeyValue::str("a", "abcd"),
                KeyValue { key: "b".into(), value: AttrValue::Array(vec![AttrValue::Str("éé".into())]) },
            ]
        );
        assert_eq!(
            (s.dropped_attributes_count, s.events.len(), s.dropped_events_count, s.links.len(), s.dropped_links_count),
            (2, 1, 1, 1, 2)
        );
        assert_eq!(d.batch.resources[0].service_name(), "a-lo");
        assert_eq!((d.truncated, d.dropped, d.rejected), (4, 4, 0));
        let msg = d.message().unwrap();
        assert_eq!(msg, "truncated 4 names or attribute values over the limits; dropped 4 attributes, events or links over the limits");
        let resp: J = serde_json::from_slice(&d.response_json()).unwrap();
        assert_eq!(
            (resp["partialSuccess"]["rejectedSpans"].as_str(), resp["partialSuccess"]["errorMessage"].as_str()),
            (Some("0"), Some(msg.as_str()))
        );
        let unlimited = decode_traces_proto(&encode_traces_proto(&batch), &TraceLimits::unlimited()).unwrap();
        assert_eq!(unlimited.batch, batch);
    }

    #[test]
    fn json_output_follows_the_protobuf_json_mapping() {
        let d = json_fixture("every_field.json");
        let out = resource_spans_json(&d.batch);
        let span = &out[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span["kind"], 3);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["status"], serde_json::json!({"code": 2, "message": "upstream returned 503"}));
        assert!(span.get("parentSpanId").is_none());
        let attrs = span["attributes"].as_array().unwrap();
        let get = |k: &str| attrs.iter().find(|a| a["key"] == k).unwrap()["value"].clone();
        assert_eq!(get("http.response.status_code"), serde_json::json!({"intValue": "503"}));
        assert_eq!(get("ratio"), serde_json::json!({"doubleValue": "NaN"}));
        assert_eq!(get("blob"), serde_json::json!({"bytesValue": "aGVsbG8="}));
        assert_eq!(get("nothing"), serde_json::json!({}));
        let spec = resource_spans_json(&json_fixture("spec_example.json").batch);
        let span = &spec[0]["scopeSpans"][0]["spans"][0];
        assert!(span.get("status").is_none() && span.get("events").is_none() && span.get("flags").is_none());
    }

    // ---- property tests: encode then decode gives the batch back ----

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._/é😀\"\\\\]{0,12}"
    }

    fn value() -> impl Strategy<Value = AttrValue> {
        let leaf = prop_oneof![
            Just(AttrValue::Empty),
            text().prop_map(AttrValue::Str),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            any::<f64>().prop_filter("finite", |d| d.is_finite()).prop_map(AttrValue::Double),
            vec(any::<u8>(), 0..8).prop_map(AttrValue::Bytes),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..3).prop_map(AttrValue::Array),
                vec((text(), inner), 0..3).prop_map(|kvs| AttrValue::Map(
                    kvs.into_iter().map(|(key, value)| KeyValue { key, value }).collect()
                )),
            ]
        })
    }

    fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
        vec((text(), value()), 0..4)
            .prop_map(|kvs| kvs.into_iter().map(|(key, value)| KeyValue { key, value }).collect())
    }

    fn time() -> impl Strategy<Value = Nanos> {
        prop_oneof![Just(0), 0..Nanos::MAX]
    }

    fn event() -> impl Strategy<Value = SpanEvent> {
        (time(), text(), attrs(), any::<u32>()).prop_map(|(time, name, attributes, dropped_attributes_count)| {
            SpanEvent { time, name, attributes, dropped_attributes_count }
        })
    }

    fn link() -> impl Strategy<Value = SpanLink> {
        (any::<[u8; 16]>(), any::<[u8; 8]>(), text(), attrs(), any::<u32>(), any::<u32>()).prop_map(
            |(t, s, trace_state, attributes, dropped_attributes_count, flags)| SpanLink {
                trace_id: TraceId(t),
                span_id: SpanId(s),
                trace_state,
                attributes,
                dropped_attributes_count,
                flags,
            },
        )
    }

    fn span() -> impl Strategy<Value = Span> {
        let ids = (
            any::<[u8; 16]>().prop_filter("valid", |t| *t != [0; 16]),
            any::<[u8; 8]>().prop_filter("valid", |s| *s != [0; 8]),
            prop_oneof![Just([0u8; 8]), any::<[u8; 8]>()],
            text(),
            any::<u32>(),
        );
        let body = (text(), 0..6i32, time(), time(), attrs(), any::<u32>(), vec(event(), 0..3), any::<u32>());
        let rest = (vec(link(), 0..2), any::<u32>(), 0..3i32, text());
        (ids, body, rest).prop_map(|((t, s, p, trace_state, flags), body, rest)| {
            let (name, kind, start, end, attributes, dropped_attributes_count, events, dropped_events_count) = body;
            let (links, dropped_links_count, status, status_message) = rest;
            Span {
                trace_id: TraceId(t),
                span_id: SpanId(s),
                trace_state,
                parent_span_id: SpanId(p),
                flags,
                name,
                kind: SpanKind::from_i32(kind),
                start,
                end,
                attributes,
                dropped_attributes_count,
                events,
                dropped_events_count,
                links,
                dropped_links_count,
                status: StatusCode::from_i32(status),
                status_message,
            }
        })
    }

    pub(crate) fn batch() -> impl Strategy<Value = SpanBatch> {
        let scope = (text(), text(), attrs(), any::<u32>(), vec(span(), 0..3), text()).prop_map(
            |(name, version, attributes, dropped_attributes_count, spans, schema_url)| ScopeSpans {
                scope: Scope { name, version, attributes, dropped_attributes_count },
                spans,
                schema_url,
            },
        );
        let resource = (attrs(), any::<u32>(), vec(scope, 0..3), text()).prop_map(
            |(resource, dropped_attributes_count, scopes, schema_url)| ResourceSpans {
                resource,
                dropped_attributes_count,
                scopes,
                schema_url,
            },
        );
        vec(resource, 0..3).prop_map(|resources| SpanBatch { resources })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn proto_round_trip(batch in batch()) {
            let d = decode_traces_proto(&encode_traces_proto(&batch), &TraceLimits::default()).unwrap();
            prop_assert_eq!((d.rejected, d.truncated, d.dropped), (0, 0, 0));
            prop_assert_eq!(d.batch, batch);
        }

        #[test]
        fn json_round_trip(batch in batch()) {
            let body = serde_json::json!({ "resourceSpans": resource_spans_json(&batch) }).to_string();
            let d = decode_traces_json(body.as_bytes(), &TraceLimits::default()).unwrap();
            prop_assert_eq!((d.rejected, d.truncated, d.dropped), (0, 0, 0));
            prop_assert_eq!(d.batch, batch);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in vec(any::<u8>(), 0..64)) {
            let _ = decode_traces_proto(&body, &TraceLimits::default());
            let _ = decode_traces_json(&body, &TraceLimits::default());
        }
    }
}
