//! Zipkin v2 spans (`POST /api/v2/spans`): a JSON array of spans or a protobuf `ListOfSpans`
//! into a [`SpanBatch`], and [`to_json`] back for Zipkin's read API (`/api/v2/trace/{id}`).
//!
//! Specs: <https://zipkin.io/zipkin-api/zipkin2-api.yaml> (JSON) and
//! <https://github.com/openzipkin/zipkin-api/blob/master/zipkin.proto> (protobuf). The mapping to
//! OpenTelemetry's model follows the OpenTelemetry Collector's Zipkin receiver
//! (`pkg/translator/zipkin/zipkinv2`) and the spec's Zipkin exporter mapping
//! (<https://opentelemetry.io/docs/specs/otel/trace/sdk_exporters/zipkin/>), so spans look
//! the same whether they come here directly or through a Collector:
//!
//! - Spans are grouped by `localEndpoint.serviceName` into resources with `service.name`
//!   (none when the span has no service name), together with the tags whose names are resource
//!   attributes in the semantic conventions (`host.*`, `k8s.*`, `telemetry.sdk.*`, ...); then by
//!   `otel.scope.name`/`otel.scope.version` (or the older `otel.library.*`) into scopes. Groups
//!   keep the order in which they first appear (the Collector sorts them by name instead).
//! - Ids are hex: a trace id of up to 32 digits and span ids of up to 16, left-padded with
//!   zeros (a 16-digit trace id is a 64-bit id). A span whose trace or span id is missing, not
//!   hex, too long or all zeros, or whose parent id is not hex, is refused and counted, as OTLP
//!   spans are; `parentId` equal to `id` means no parent (as the Collector reads it).
//! - `kind` CLIENT/SERVER/PRODUCER/CONSUMER map to the same span kinds; no kind with the tag
//!   `span.kind=internal` is `Internal`; an unknown kind is `Unspecified`.
//! - `timestamp` and `duration` are microseconds, turned into nanoseconds. Without a timestamp
//!   the span starts at 0 and gets `otel.zipkin.absentField.startTime=true`, as the Collector
//!   did before it started using its own clock (a pure decoder has no clock).
//! - Tags become string attributes, except: `w3c.tracestate` (the trace state),
//!   `otel.status_code` (`OK`/`ERROR`/`UNSET`, also as `STATUS_CODE_*`, any case) with
//!   `otel.status_description` (the status), and `error`: any value but `false` makes the status
//!   Error with that value as its message (unless it is `true` or empty), as Zipkin and the
//!   OpenTelemetry exporter spec use it; the Collector only reads `error=true`.
//! - Endpoints: `localEndpoint` ipv4/ipv6 and port become `net.host.ip`/`net.host.port`,
//!   `remoteEndpoint` serviceName, ipv4/ipv6 and port `peer.service`, `net.peer.ip` and
//!   `net.peer.port` (integer), as the Collector does (IPv6 wins when both are set; a value
//!   that is not an IP address is ignored). Zipkin endpoints carry no host name, so there is no
//!   `net.peer.name`.
//! - Annotations become events; the value `name|{json attributes}|dropped count` that the
//!   Collector's exporter writes for events with attributes is read back; other values are the
//!   event's name as they are.
//! - `debug` and `shared` are ignored, as the Collector ignores them.
//!
//! [`to_json`] is the inverse for the read API: a span decoded from Zipkin renders back to the
//! same Zipkin span up to tag order and id padding.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use serde_json::{json, Map, Value as J};
use telltale_model::{
    attr, AttrValue, KeyValue, Nanos, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, SpanId, SpanKind,
    StatusCode, TraceId,
};

use crate::otlp::{finish, DecodedSpans, Error, Refusal, Refused, Result, TraceLimits};

/// The attribute the Collector sets on a span that had no timestamp.
const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";

/// Tag names that are resource attributes (semantic conventions), besides `service.name`.
const RESOURCE_PREFIXES: &[&str] = &[
    "service.",
    "telemetry.sdk.",
    "telemetry.auto.",
    "host.",
    "os.",
    "process.",
    "container.",
    "k8s.",
    "cloud.",
    "deployment.",
    "device.",
    "webengine.",
    "aws.ecs.",
    "aws.eks.",
    "aws.log.",
];
const RESOURCE_KEYS: &[&str] = &["faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory"];

fn is_resource_tag(key: &str) -> bool {
    key != "service.name" && (RESOURCE_KEYS.contains(&key) || RESOURCE_PREFIXES.iter().any(|p| key.starts_with(p)))
}

/// Decodes a JSON array of Zipkin v2 spans (`Content-Type: application/json`).
pub fn decode_json(body: &[u8], limits: &TraceLimits) -> Result<DecodedSpans> {
    let spans: Vec<JsonSpan> = serde_json::from_slice(body)
        .map_err(|e| Error::Zipkin { format: "json", reason: e.to_string().replace('\n', " ") })?;
    let spans = spans.into_iter().map(ZSpan::try_from).collect::<Result<Vec<_>>>()?;
    Ok(convert(spans, limits))
}

/// Decodes a protobuf `zipkin.proto3.ListOfSpans` (`Content-Type: application/x-protobuf`).
pub fn decode_proto(body: &[u8], limits: &TraceLimits) -> Result<DecodedSpans> {
    use prost::Message;
    let list = proto::ListOfSpans::decode(body)
        .map_err(|e| Error::Zipkin { format: "protobuf", reason: e.to_string().replace('\n', " ") })?;
    Ok(convert(list.spans.into_iter().map(ZSpan::from).collect(), limits))
}

// ---- one Zipkin span, whichever encoding it came in ----

#[derive(Default)]
struct Endpoint {
    service_name: String,
    ip: Option<IpAddr>,
    port: u16,
}

struct ZSpan {
    ids: std::result::Result<(TraceId, SpanId, SpanId), Refusal>,
    kind: SpanKind,
    name: String,
    /// Microseconds; 0 when absent.
    timestamp: u64,
    duration: u64,
    local: Endpoint,
    remote: Endpoint,
    annotations: Vec<(u64, String)>,
    tags: BTreeMap<String, String>,
}

fn kind_from_name(s: &str) -> SpanKind {
    match s {
        "CLIENT" => SpanKind::Client,
        "SERVER" => SpanKind::Server,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn nanos(micros: u64) -> Nanos {
    Nanos::try_from(micros.saturating_mul(1000)).unwrap_or(Nanos::MAX)
}

/// Which resource and scope a span belongs to, and the span.
struct Mapped {
    resource: Vec<KeyValue>,
    scope: Scope,
    span: Span,
}

fn convert(spans: Vec<ZSpan>, limits: &TraceLimits) -> DecodedSpans {
    let mut refused = Refused::default();
    let mut batch = SpanBatch::default();
    for z in spans {
        match map_span(z) {
            Ok(m) => place(&mut batch, m),
            Err(why) => refused.add(why),
        }
    }
    finish(batch, &refused, limits)
}

/// Adds the span under its resource and scope, creating them on first sight.
fn place(batch: &mut SpanBatch, m: Mapped) {
    let r = match batch.resources.iter().position(|r| r.resource == m.resource) {
        Some(i) => i,
        None => {
            batch.resources.push(ResourceSpans { resource: m.resource, ..ResourceSpans::default() });
            batch.resources.len() - 1
        }
    };
    let scopes = &mut batch.resources[r].scopes;
    let s = match scopes.iter().position(|s| s.scope == m.scope) {
        Some(i) => i,
        None => {
            scopes.push(ScopeSpans { scope: m.scope, ..ScopeSpans::default() });
            scopes.len() - 1
        }
    };
    scopes[s].spans.push(m.span);
}

fn map_span(mut z: ZSpan) -> std::result::Result<Mapped, Refusal> {
    let (trace_id, span_id, parent_span_id) = z.ids?;
    let tags = &mut z.tags;
    let mut resource = Vec::new();
    if !z.local.service_name.is_empty() {
        resource.push(KeyValue::str("service.name", z.local.service_name.clone()));
    }
    let resource_keys: Vec<String> = tags.keys().filter(|k| is_resource_tag(k)).cloned().collect();
    for k in resource_keys {
        if let Some(v) = tags.remove(&k) {
            resource.push(KeyValue::str(k, v));
        }
    }
    let scope = Scope {
        name: either(tags, "otel.scope.name", "otel.library.name"),
        version: either(tags, "otel.scope.version", "otel.library.version"),
        ..Scope::default()
    };
    let trace_state = take(tags, "w3c.tracestate").unwrap_or_default();
    let kind = match (z.kind, take(tags, "span.kind").as_deref()) {
        (SpanKind::Unspecified, Some("internal")) => SpanKind::Internal,
        (kind, _) => kind,
    };
    let (status, status_message) = status(tags);
    let mut attributes: Vec<KeyValue> = std::mem::take(tags).into_iter().map(|(k, v)| KeyValue::str(k, v)).collect();
    endpoint_attrs(&z.local, None, "net.host.ip", "net.host.port", &mut attributes);
    endpoint_attrs(&z.remote, Some("peer.service"), "net.peer.ip", "net.peer.port", &mut attributes);
    let start = nanos(z.timestamp);
    if z.timestamp == 0 {
        set(&mut attributes, START_TIME_ABSENT, AttrValue::Bool(true));
    }
    // Tags come sorted (a JSON object has no order); endpoint attributes join them in place, so
    // a span reads back the same from its own `to_json`.
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    let span = Span {
        trace_id,
        span_id,
        trace_state,
        parent_span_id,
        name: z.name,
        kind,
        start,
        end: start.saturating_add(nanos(z.duration)),
        attributes,
        events: z.annotations.into_iter().map(|(ts, v)| event(ts, v)).collect(),
        status,
        status_message,
        ..Span::default()
    };
    Ok(Mapped { resource, scope, span })
}

fn take(tags: &mut BTreeMap<String, String>, key: &str) -> Option<String> {
    tags.remove(key)
}

/// Takes both tags (the current name and its deprecated one), preferring the first if set.
fn either(tags: &mut BTreeMap<String, String>, key: &str, old: &str) -> String {
    let (new, old) = (take(tags, key).unwrap_or_default(), take(tags, old).unwrap_or_default());
    if new.is_empty() {
        old
    } else {
        new
    }
}

/// Sets `key`, replacing an attribute of that name (an endpoint wins over a tag).
fn set(attrs: &mut Vec<KeyValue>, key: &str, value: AttrValue) {
    attrs.retain(|kv| kv.key != key);
    attrs.push(KeyValue { key: key.into(), value });
}

fn endpoint_attrs(e: &Endpoint, service: Option<&str>, ip: &str, port: &str, attrs: &mut Vec<KeyValue>) {
    if let Some(key) = service.filter(|_| !e.service_name.is_empty()) {
        set(attrs, key, AttrValue::Str(e.service_name.clone()));
    }
    if let Some(addr) = e.ip {
        set(attrs, ip, AttrValue::Str(addr.to_string()));
    }
    if e.port != 0 {
        set(attrs, port, AttrValue::Int(i64::from(e.port)));
    }
}

/// The status from `otel.status_code`/`otel.status_description` and `error`.
fn status(tags: &mut BTreeMap<String, String>) -> (StatusCode, String) {
    let mut code = StatusCode::Unset;
    // Both status tags are always taken: left as attributes they would turn into the status
    // on the way back through `to_json`.
    let mut message = take(tags, "otel.status_description").unwrap_or_default();
    if let Some(v) = take(tags, "otel.status_code") {
        let v = v.to_ascii_uppercase();
        code = match v.strip_prefix("STATUS_CODE_").unwrap_or(&v) {
            "OK" => StatusCode::Ok,
            "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        };
    }
    match take(tags, "error") {
        Some(v) if v == "false" => {}
        Some(v) => {
            code = StatusCode::Error;
            if message.is_empty() && v != "true" {
                message = v;
            }
        }
        None => {}
    }
    if code == StatusCode::Unset {
        // OTLP keeps a message only for an error; Zipkin writes none for an unset status.
        message.clear();
    }
    (code, message)
}

/// An annotation as an event, reading the Collector's `name|{attributes}|dropped` form.
fn event(ts: u64, value: String) -> SpanEvent {
    let mut e = SpanEvent { time: nanos(ts), ..SpanEvent::default() };
    if let Some((name, attributes, dropped)) = collector_event(&value) {
        e.name = name.to_string();
        e.attributes = attributes;
        e.dropped_attributes_count = dropped;
    } else {
        e.name = value;
    }
    e
}

fn collector_event(value: &str) -> Option<(&str, Vec<KeyValue>, u32)> {
    let (name, rest) = value.split_once('|')?;
    let (json, dropped) = rest.rsplit_once('|')?;
    let dropped: u32 = dropped.parse().ok()?;
    let map: Map<String, J> = serde_json::from_str(json).ok()?;
    let attrs = map.into_iter().filter_map(|(k, v)| json_attr(v).map(|value| KeyValue { key: k, value })).collect();
    Some((name, attrs, dropped))
}

/// A JSON attribute value as the Collector reads it: strings, booleans, integral numbers as
/// integers, other numbers as doubles; anything else is left out.
fn json_attr(v: J) -> Option<AttrValue> {
    match v {
        J::String(s) => Some(AttrValue::Str(s)),
        J::Bool(b) => Some(AttrValue::Bool(b)),
        J::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AttrValue::Int(i),
            (None, Some(d)) if d.fract() == 0.0 && d.abs() < 9.2e18 => AttrValue::Int(d as i64),
            (None, d) => AttrValue::Double(d.unwrap_or_default()),
        }),
        _ => None,
    }
}

// ---- JSON ----

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonSpan {
    trace_id: Option<String>,
    parent_id: Option<String>,
    id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    local_endpoint: Option<JsonEndpoint>,
    remote_endpoint: Option<JsonEndpoint>,
    annotations: Option<Vec<JsonAnnotation>>,
    tags: Option<BTreeMap<String, J>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonEndpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonAnnotation {
    timestamp: Option<u64>,
    value: Option<String>,
}

/// Parses the span's ids: refusals for what cannot be stored.
fn json_ids(
    trace: Option<&str>,
    id: Option<&str>,
    parent: Option<&str>,
) -> std::result::Result<(TraceId, SpanId, SpanId), Refusal> {
    let trace_id = trace.and_then(TraceId::from_hex).filter(|t| !t.is_zero()).ok_or(Refusal::Trace)?;
    let span_id = id.and_then(SpanId::from_hex).filter(|s| !s.is_zero()).ok_or(Refusal::Span)?;
    let parent = match parent.filter(|p| !p.is_empty()) {
        None => SpanId::default(),
        Some(p) => SpanId::from_hex(p).ok_or(Refusal::Parent)?,
    };
    Ok((trace_id, span_id, if parent == span_id { SpanId::default() } else { parent }))
}

impl From<JsonEndpoint> for Endpoint {
    fn from(e: JsonEndpoint) -> Self {
        let v4 = e.ipv4.and_then(|s| s.parse::<Ipv4Addr>().ok()).map(IpAddr::V4);
        let v6 = e.ipv6.and_then(|s| s.parse::<Ipv6Addr>().ok()).map(IpAddr::V6);
        Endpoint { service_name: e.service_name.unwrap_or_default(), ip: v6.or(v4), port: e.port.unwrap_or(0) }
    }
}

/// A tag value: Zipkin's are strings; numbers and booleans are read as their text, `null` drops
/// the tag.
fn tag_text(key: &str, v: J) -> Result<Option<String>> {
    match v {
        J::String(s) => Ok(Some(s)),
        J::Number(n) => Ok(Some(n.to_string())),
        J::Bool(b) => Ok(Some(b.to_string())),
        J::Null => Ok(None),
        _ => Err(Error::Zipkin { format: "json", reason: format!("tag {key:?} is not a string") }),
    }
}

impl TryFrom<JsonSpan> for ZSpan {
    type Error = Error;
    fn try_from(s: JsonSpan) -> Result<Self> {
        let mut tags = BTreeMap::new();
        for (k, v) in s.tags.unwrap_or_default() {
            if let Some(text) = tag_text(&k, v)? {
                tags.insert(k, text);
            }
        }
        Ok(ZSpan {
            ids: json_ids(s.trace_id.as_deref(), s.id.as_deref(), s.parent_id.as_deref()),
            kind: s.kind.as_deref().map_or(SpanKind::Unspecified, kind_from_name),
            name: s.name.unwrap_or_default(),
            timestamp: s.timestamp.unwrap_or(0),
            duration: s.duration.unwrap_or(0),
            local: s.local_endpoint.map(Into::into).unwrap_or_default(),
            remote: s.remote_endpoint.map(Into::into).unwrap_or_default(),
            annotations: s
                .annotations
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.timestamp.unwrap_or(0), a.value.unwrap_or_default()))
                .collect(),
            tags,
        })
    }
}

// ---- protobuf ----

/// `zipkin.proto3` messages (<https://github.com/openzipkin/zipkin-api/blob/master/zipkin.proto>),
/// written by hand: the crate has no protoc step.
pub mod proto {
    /// A list of spans: the body of `POST /api/v2/spans` as protobuf.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListOfSpans {
        /// The spans.
        #[prost(message, repeated, tag = "1")]
        pub spans: Vec<Span>,
    }

    /// One span.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        /// 8 or 16 bytes.
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// Empty or 8 bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub parent_id: Vec<u8>,
        /// 8 bytes.
        #[prost(bytes = "vec", tag = "3")]
        pub id: Vec<u8>,
        /// 0 unspecified, 1 client, 2 server, 3 producer, 4 consumer.
        #[prost(int32, tag = "4")]
        pub kind: i32,
        /// The operation name.
        #[prost(string, tag = "5")]
        pub name: String,
        /// Start, microseconds since the epoch.
        #[prost(fixed64, tag = "6")]
        pub timestamp: u64,
        /// Duration in microseconds.
        #[prost(uint64, tag = "7")]
        pub duration: u64,
        /// The recording service.
        #[prost(message, optional, tag = "8")]
        pub local_endpoint: Option<Endpoint>,
        /// The other side of an RPC or messaging span.
        #[prost(message, optional, tag = "9")]
        pub remote_endpoint: Option<Endpoint>,
        /// Timed events.
        #[prost(message, repeated, tag = "10")]
        pub annotations: Vec<Annotation>,
        /// String tags.
        #[prost(btree_map = "string, string", tag = "11")]
        pub tags: std::collections::BTreeMap<String, String>,
        /// Forced sampling.
        #[prost(bool, tag = "12")]
        pub debug: bool,
        /// A server span sharing its id with the client span.
        #[prost(bool, tag = "13")]
        pub shared: bool,
    }

    /// A network endpoint.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Endpoint {
        /// Lower-case service name.
        #[prost(string, tag = "1")]
        pub service_name: String,
        /// 4 bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub ipv4: Vec<u8>,
        /// 16 bytes.
        #[prost(bytes = "vec", tag = "3")]
        pub ipv6: Vec<u8>,
        /// The port, 0 when unknown.
        #[prost(int32, tag = "4")]
        pub port: i32,
    }

    /// A timed event.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Annotation {
        /// Microseconds since the epoch.
        #[prost(fixed64, tag = "1")]
        pub timestamp: u64,
        /// What happened.
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

fn proto_ids(s: &proto::Span) -> std::result::Result<(TraceId, SpanId, SpanId), Refusal> {
    let mut trace = [0u8; 16];
    match s.trace_id.len() {
        16 => trace.copy_from_slice(&s.trace_id),
        8 => trace[8..].copy_from_slice(&s.trace_id),
        _ => return Err(Refusal::Trace),
    }
    let trace_id = Some(TraceId(trace)).filter(|t| !t.is_zero()).ok_or(Refusal::Trace)?;
    let span_id =
        <[u8; 8]>::try_from(s.id.as_slice()).ok().map(SpanId).filter(|s| !s.is_zero()).ok_or(Refusal::Span)?;
    let parent = match s.parent_id.len() {
        0 => SpanId::default(),
        _ => <[u8; 8]>::try_from(s.parent_id.as_slice()).map(SpanId).map_err(|_| Refusal::Parent)?,
    };
    Ok((trace_id, span_id, if parent == span_id { SpanId::default() } else { parent }))
}

impl From<proto::Endpoint> for Endpoint {
    fn from(e: proto::Endpoint) -> Self {
        let v4 = <[u8; 4]>::try_from(e.ipv4.as_slice()).ok().map(|b| IpAddr::V4(b.into()));
        let v6 = <[u8; 16]>::try_from(e.ipv6.as_slice()).ok().map(|b| IpAddr::V6(b.into()));
        Endpoint { service_name: e.service_name, ip: v6.or(v4), port: u16::try_from(e.port).unwrap_or(0) }
    }
}

impl From<proto::Span> for ZSpan {
    fn from(s: proto::Span) -> Self {
        let kind = match s.kind {
            1 => SpanKind::Client,
            2 => SpanKind::Server,
            3 => SpanKind::Producer,
            4 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        };
        ZSpan {
            ids: proto_ids(&s),
            kind,
            name: s.name,
            timestamp: s.timestamp,
            duration: s.duration,
            local: s.local_endpoint.map(Into::into).unwrap_or_default(),
            remote: s.remote_endpoint.map(Into::into).unwrap_or_default(),
            annotations: s.annotations.into_iter().map(|a| (a.timestamp, a.value)).collect(),
            tags: s.tags,
        }
    }
}

// ---- the model back to Zipkin JSON ----

/// Renders spans as a Zipkin v2 JSON array (what `/api/v2/trace/{id}` returns): the inverse of
/// the decoding above. Resource attributes other than `service.name`, the scope
/// (`otel.scope.name`/`otel.scope.version`) and span attributes become string tags; the
/// endpoint attributes fill `localEndpoint`/`remoteEndpoint`; the status becomes
/// `otel.status_code` (`OK`/`ERROR`) with `error` holding an error's message; events with
/// attributes are written in the Collector's `name|{json}|dropped` form. Links are not written
/// (Zipkin has no place for them).
pub fn to_json(batch: &SpanBatch) -> J {
    J::Array(batch.spans().map(|(r, s, span)| span_json(r, &s.scope, span)).collect())
}

fn micros(t: Nanos) -> u64 {
    u64::try_from(t / 1000).unwrap_or(0)
}

/// A trace id as Zipkin writes it: 16 digits when the high half is zero, else 32.
fn trace_hex(t: &TraceId) -> String {
    let hex = t.to_string();
    if t.0[..8] == [0; 8] {
        hex[16..].to_string()
    } else {
        hex
    }
}

fn span_json(r: &ResourceSpans, scope: &Scope, s: &Span) -> J {
    let mut o = Map::new();
    o.insert("traceId".into(), J::String(trace_hex(&s.trace_id)));
    o.insert("id".into(), J::String(s.span_id.to_string()));
    if !s.parent_span_id.is_zero() {
        o.insert("parentId".into(), J::String(s.parent_span_id.to_string()));
    }
    if let Some(kind) = kind_name(s.kind) {
        o.insert("kind".into(), J::String(kind.into()));
    }
    if !s.name.is_empty() {
        o.insert("name".into(), J::String(s.name.clone()));
    }
    let absent = attr(&s.attributes, START_TIME_ABSENT) == Some(&AttrValue::Bool(true));
    if !absent && s.start > 0 {
        o.insert("timestamp".into(), J::from(micros(s.start)));
    }
    if s.duration() >= 1000 {
        o.insert("duration".into(), J::from(micros(s.duration())));
    }
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    let mut local = Map::new();
    if let Some(name) = attr(&r.resource, "service.name") {
        local.insert("serviceName".into(), J::String(name.to_string()));
    }
    for kv in r.resource.iter().filter(|kv| kv.key != "service.name") {
        tags.insert(kv.key.clone(), kv.value.to_string());
    }
    for (key, v) in [("otel.scope.name", &scope.name), ("otel.scope.version", &scope.version)] {
        if !v.is_empty() {
            tags.insert(key.into(), v.clone());
        }
    }
    let mut remote = Map::new();
    for kv in &s.attributes {
        let placed = match kv.key.as_str() {
            START_TIME_ABSENT => absent,
            "net.host.ip" => put_ip(&mut local, &kv.value),
            "net.host.port" => put_port(&mut local, &kv.value),
            "peer.service" => put_service(&mut remote, &kv.value),
            "net.peer.ip" => put_ip(&mut remote, &kv.value),
            "net.peer.port" => put_port(&mut remote, &kv.value),
            // Zipkin reads any `error` tag as a failure: only the status may write one.
            "error" => true,
            _ => false,
        };
        if !placed {
            tags.insert(kv.key.clone(), kv.value.to_string());
        }
    }
    status_tags(s, &mut tags);
    if !s.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), s.trace_state.clone());
    }
    if s.kind == SpanKind::Internal {
        tags.insert("span.kind".into(), "internal".into());
    }
    if !local.is_empty() {
        o.insert("localEndpoint".into(), J::Object(local));
    }
    if !remote.is_empty() {
        o.insert("remoteEndpoint".into(), J::Object(remote));
    }
    if !s.events.is_empty() {
        o.insert("annotations".into(), J::Array(s.events.iter().map(annotation_json).collect()));
    }
    if !tags.is_empty() {
        o.insert("tags".into(), json!(tags));
    }
    J::Object(o)
}

fn kind_name(k: SpanKind) -> Option<&'static str> {
    match k {
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Server => Some("SERVER"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal | SpanKind::Unspecified => None,
    }
}

fn put_ip(o: &mut Map<String, J>, v: &AttrValue) -> bool {
    match v.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(a)) => o.insert("ipv4".into(), J::String(a.to_string())).is_none(),
        Some(IpAddr::V6(a)) => o.insert("ipv6".into(), J::String(a.to_string())).is_none(),
        None => false,
    }
}

fn put_port(o: &mut Map<String, J>, v: &AttrValue) -> bool {
    match v {
        AttrValue::Int(p) if (1..=65535).contains(p) => o.insert("port".into(), J::from(*p)).is_none(),
        _ => false,
    }
}

fn put_service(o: &mut Map<String, J>, v: &AttrValue) -> bool {
    match v.as_str() {
        Some(s) if !s.is_empty() => o.insert("serviceName".into(), J::String(s.into())).is_none(),
        _ => false,
    }
}

/// The status as the OpenTelemetry Zipkin exporter spec writes it: nothing when unset,
/// `otel.status_code` otherwise, for an error the `error` tag with its message, and the
/// message in `otel.status_description`.
fn status_tags(s: &Span, tags: &mut BTreeMap<String, String>) {
    let code = match s.status {
        StatusCode::Unset => return,
        StatusCode::Ok => "OK",
        StatusCode::Error => {
            tags.insert("error".into(), s.status_message.clone());
            "ERROR"
        }
    };
    tags.insert("otel.status_code".into(), code.into());
    // As the Collector writes it; it also keeps a message `true`, which `error` cannot.
    if !s.status_message.is_empty() {
        tags.insert("otel.status_description".into(), s.status_message.clone());
    }
}

fn annotation_json(e: &SpanEvent) -> J {
    let value = if e.attributes.is_empty() && e.dropped_attributes_count == 0 {
        e.name.clone()
    } else {
        let attrs: Map<String, J> = e.attributes.iter().map(|kv| (kv.key.clone(), attr_json(&kv.value))).collect();
        format!("{}|{}|{}", e.name, J::Object(attrs), e.dropped_attributes_count)
    };
    json!({ "timestamp": micros(e.time), "value": value })
}

fn attr_json(v: &AttrValue) -> J {
    match v {
        AttrValue::Str(s) => J::String(s.clone()),
        AttrValue::Bool(b) => J::Bool(*b),
        AttrValue::Int(i) => J::from(*i),
        AttrValue::Double(d) => serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number),
        other => J::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    fn fixture(name: &str) -> DecodedSpans {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/zipkin").join(name);
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        decode_json(&body, &TraceLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn find<'a>(d: &'a DecodedSpans, name: &str) -> (&'a ResourceSpans, &'a ScopeSpans, &'a Span) {
        d.batch.spans().find(|(_, _, s)| s.name == name).unwrap_or_else(|| panic!("no span {name}"))
    }

    fn a<'a>(s: &'a Span, key: &str) -> Option<&'a AttrValue> {
        attr(&s.attributes, key)
    }

    #[test]
    fn zipkin_api_example() {
        let d = fixture("zipkin_api_example.json");
        assert_eq!((d.rejected, d.batch.span_count()), (0, 3));
        let services: Vec<&str> = d.batch.resources.iter().map(|r| r.service_name()).collect();
        assert_eq!(services, ["backend", "frontend"], "grouped by local service, in order of appearance");
        assert_eq!(d.batch.resources[0].span_count(), 2);

        let (_, _, server) = find(&d, "get /api");
        assert_eq!(server.trace_id.to_string(), "00000000000000005af7183fb1d4cf5f");
        assert_eq!(server.parent_span_id.to_string(), "6b221d5bc9e6496c");
        assert_eq!(
            (server.kind, server.start, server.end),
            (SpanKind::Server, 1_556_604_172_355_737_000, 1_556_604_172_357_168_000)
        );
        assert_eq!(a(server, "net.host.ip"), Some(&AttrValue::Str("192.168.99.1".into())));
        assert_eq!(a(server, "net.host.port"), Some(&AttrValue::Int(3306)));
        assert_eq!(a(server, "net.peer.ip"), Some(&AttrValue::Str("172.19.0.2".into())));
        assert_eq!(a(server, "net.peer.port"), Some(&AttrValue::Int(58648)));
        assert_eq!(a(server, "http.path"), Some(&AttrValue::Str("/api".into())));
        assert_eq!(server.status, StatusCode::Unset);

        let (_, _, client) = find(&d, "get");
        assert!(client.is_root());
        assert_eq!(
            (client.kind, client.status, client.status_message.as_str()),
            (SpanKind::Client, StatusCode::Error, "connection reset")
        );
        assert_eq!(a(client, "peer.service"), Some(&AttrValue::Str("backend".into())));
        assert_eq!(a(client, "net.host.ip"), Some(&AttrValue::Str("2001:db8::c001".into())));
        assert_eq!(a(client, "error"), None);
        assert_eq!((client.events[0].name.as_str(), client.events[0].time), ("wire send", 1_556_604_172_355_100_000));

        let (_, _, local) = find(&d, "select");
        assert_eq!(local.kind, SpanKind::Unspecified);
        assert_eq!(local.attributes, vec![], "no endpoint address, no tags");
    }

    #[test]
    fn what_the_opentelemetry_exporter_writes() {
        let d = fixture("otel_exporter.json");
        let (r, s, span) = find(&d, "checkout");
        assert_eq!(
            r.resource,
            vec![
                KeyValue::str("service.name", "shop"),
                KeyValue::str("host.name", "node-7"),
                KeyValue::str("telemetry.sdk.language", "python")
            ]
        );
        assert_eq!((s.scope.name.as_str(), s.scope.version.as_str()), ("shop.checkout", "1.4.0"));
        assert_eq!(
            (span.kind, span.status, span.status_message.as_str()),
            (SpanKind::Internal, StatusCode::Error, "out of stock")
        );
        assert_eq!(span.trace_state, "rojo=00f067aa0ba902b7");
        assert_eq!(span.attributes, vec![KeyValue::str("cart.gift", "true"), KeyValue::str("cart.items", "3")]);
        let e = &span.events[0];
        assert_eq!((e.name.as_str(), e.dropped_attributes_count), ("exception", 1));
        assert_eq!(
            e.attributes,
            vec![
                KeyValue::str("exception.message", "out of stock"),
                KeyValue { key: "fatal".into(), value: AttrValue::Bool(false) },
                KeyValue { key: "ratio".into(), value: AttrValue::Double(0.5) },
                KeyValue { key: "retries".into(), value: AttrValue::Int(2) },
            ]
        );
        assert_eq!(span.events[1].name, "a|b", "not the collector's form: the value is the name");

        let (r2, s2, charge) = find(&d, "charge");
        assert!(std::ptr::eq(r, r2), "same service and resource tags: one resource");
        assert_eq!(s2.scope.name, "shop.payments");
        assert_eq!((charge.kind, charge.status), (SpanKind::Producer, StatusCode::Ok));
        assert_eq!((charge.start, charge.end), (0, 10_000));
        assert_eq!(charge.attributes, vec![KeyValue { key: START_TIME_ABSENT.into(), value: AttrValue::Bool(true) }]);

        // And back: the status, kind, scope and resource as tags, the event in the collector's form.
        let out = to_json(&d.batch);
        let first = &out[0];
        assert_eq!(first["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert!(first.get("kind").is_none());
        assert_eq!(first["tags"]["span.kind"], "internal");
        assert_eq!(first["tags"]["otel.status_code"], "ERROR");
        assert_eq!(first["tags"]["error"], "out of stock");
        assert_eq!(first["tags"]["otel.scope.name"], "shop.checkout");
        assert_eq!(first["tags"]["host.name"], "node-7");
        assert_eq!(first["localEndpoint"]["serviceName"], "shop");
        assert_eq!(first["timestamp"], 1_700_000_000_000_000u64);
        assert_eq!(first["duration"], 250_000);
        let value = first["annotations"][0]["value"].as_str().unwrap();
        assert!(value.starts_with("exception|{") && value.ends_with("}|1"), "{value}");
        let second = out.as_array().unwrap().iter().find(|s| s["name"] == "charge").unwrap();
        assert!(second.get("timestamp").is_none());
        assert!(second["tags"].get(START_TIME_ABSENT).is_none());
        assert_eq!(second["kind"], "PRODUCER");
    }

    #[test]
    fn spans_with_invalid_ids_are_refused_one_by_one() {
        let d = fixture("invalid_ids.json");
        let names: Vec<&str> = d.batch.spans().map(|(_, _, s)| s.name.as_str()).collect();
        assert_eq!(names, ["kept", "own parent: a root"]);
        assert!(d.batch.spans().all(|(_, _, s)| s.is_root()));
        assert_eq!(d.rejected, 6);
        let reason = d.reason.unwrap();
        assert!(
            reason.contains("4 with an invalid trace id")
                && reason.contains("1 with an invalid span id")
                && reason.contains("1 with an invalid parent"),
            "{reason}"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let l = TraceLimits::default();
        for bad in [
            &b"{}"[..],
            b"[1]",
            b"[{\"timestamp\": -1}]",
            b"[{\"timestamp\": \"1\"}]",
            b"[{\"localEndpoint\": {\"port\": 70000}}]",
            b"[{\"tags\": {\"a\": [1]}}]",
            b"[",
        ] {
            let e = decode_json(bad, &l).unwrap_err();
            assert!(e.to_string().starts_with("invalid zipkin json body: ") && !e.to_string().contains('\n'), "{e}");
            assert_eq!(e.kind(), telltale_model::ErrorKind::InvalidInput);
        }
        assert!(decode_json(b"[]", &l).unwrap().batch.is_empty());
        let e = decode_proto(b"\x0a\xff", &l).unwrap_err();
        assert!(e.to_string().starts_with("invalid zipkin protobuf body: "), "{e}");
        assert!(decode_proto(b"", &l).unwrap().batch.is_empty());
    }

    #[test]
    fn protobuf_matches_json() {
        use prost::Message;
        let span = proto::Span {
            trace_id: vec![0x5a, 0xf7, 0x18, 0x3f, 0xb1, 0xd4, 0xcf, 0x5f],
            parent_id: vec![0x6b, 0x22, 0x1d, 0x5b, 0xc9, 0xe6, 0x49, 0x6c],
            id: vec![0x35, 0x2b, 0xff, 0x9a, 0x74, 0xca, 0x9a, 0xd2],
            kind: 2,
            name: "get /api".into(),
            timestamp: 1_556_604_172_355_737,
            duration: 1431,
            local_endpoint: Some(proto::Endpoint {
                service_name: "backend".into(),
                ipv4: vec![192, 168, 99, 1],
                port: 3306,
                ..Default::default()
            }),
            remote_endpoint: Some(proto::Endpoint { ipv4: vec![172, 19, 0, 2], port: 58648, ..Default::default() }),
            tags: [("http.method", "GET"), ("http.path", "/api")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Default::default()
        };
        let bad = proto::Span { trace_id: vec![1; 12], id: vec![1; 8], ..Default::default() };
        let body = proto::ListOfSpans { spans: vec![span, bad] }.encode_to_vec();
        let d = decode_proto(&body, &TraceLimits::default()).unwrap();
        assert_eq!(d.rejected, 1);
        let json = fixture("zipkin_api_example.json");
        let want = find(&json, "get /api");
        assert_eq!(d.batch.resources[0].resource, want.0.resource);
        assert_eq!(d.batch.spans().next().unwrap().2, want.2);
    }

    // ---- property test: zipkin JSON → model → to_json → model is the same model ----

    fn hex(digits: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9a-f]{{{digits}}}"))
            .unwrap()
            .prop_filter("not zero", |s| s.bytes().any(|b| b != b'0'))
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._|{}:\"é]{0,10}"
    }

    fn endpoint() -> impl Strategy<Value = J> {
        let ipv4 = proptest::option::of(any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_string()));
        let ipv6 = proptest::option::of(any::<[u8; 16]>().prop_map(|b| Ipv6Addr::from(b).to_string()));
        let service =
            proptest::option::of(prop_oneof![Just("api".to_string()), Just("db".to_string()), Just(String::new())]);
        (service, ipv4, ipv6, proptest::option::of(any::<u16>()))
            .prop_map(|(s, v4, v6, port)| json!({"serviceName": s, "ipv4": v4, "ipv6": v6, "port": port}))
    }

    fn tag_key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[a-z.]{1,8}",
            1 => proptest::sample::select(vec![
                "error", "otel.status_code", "otel.status_description", "span.kind", "w3c.tracestate", "host.name",
                "k8s.pod.name", "otel.scope.name", "otel.scope.version", "otel.library.name", "service.name",
                "peer.service", "net.peer.port", "net.host.port", "otel.zipkin.absentField.startTime",
            ]).prop_map(String::from),
        ]
    }

    fn tag_value() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => text(),
            1 => proptest::sample::select(vec!["true", "false", "OK", "ERROR", "UNSET", "internal", "80", ""]).prop_map(String::from),
        ]
    }

    fn annotation() -> impl Strategy<Value = J> {
        let value = prop_oneof![
            text(),
            (
                text(),
                btree_map(
                    "[a-z]{1,4}",
                    prop_oneof![
                        text().prop_map(J::from),
                        any::<i32>().prop_map(J::from),
                        any::<bool>().prop_map(J::from),
                        (-1e6f64..1e6).prop_map(J::from),
                    ],
                    0..3
                ),
                any::<u8>()
            )
                .prop_map(|(name, attrs, dropped)| format!(
                    "{}|{}|{dropped}",
                    name.replace('|', ""),
                    json!(attrs)
                )),
        ];
        (0u64..1 << 52, value).prop_map(|(ts, value)| json!({"timestamp": ts, "value": value}))
    }

    fn zipkin_span() -> impl Strategy<Value = J> {
        let ids = (prop_oneof![hex(16), hex(32)], hex(16), proptest::option::of(hex(16)));
        let kind =
            proptest::option::of(proptest::sample::select(vec!["CLIENT", "SERVER", "PRODUCER", "CONSUMER", "OTHER"]));
        let times = (proptest::option::of(1u64..1 << 52), proptest::option::of(0u64..1 << 40));
        let ends = (proptest::option::of(endpoint()), proptest::option::of(endpoint()));
        let rest = (vec(annotation(), 0..3), btree_map(tag_key(), tag_value(), 0..6));
        (ids, kind, text(), times, ends, rest).prop_map(|((t, id, parent), kind, name, (ts, dur), (local, remote), (annotations, tags))| {
            json!({
                "traceId": t, "id": id, "parentId": parent, "kind": kind, "name": name, "timestamp": ts, "duration": dur,
                "localEndpoint": local, "remoteEndpoint": remote, "annotations": annotations, "tags": tags,
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn json_round_trip(spans in vec(zipkin_span(), 0..6)) {
            let body = J::Array(spans).to_string();
            let first = decode_json(body.as_bytes(), &TraceLimits::default()).unwrap();
            prop_assert_eq!(first.rejected, 0);
            let again = to_json(&first.batch).to_string();
            let second = decode_json(again.as_bytes(), &TraceLimits::default()).unwrap();
            prop_assert_eq!(second.batch, first.batch, "{}", again);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in vec(any::<u8>(), 0..64)) {
            let _ = decode_json(&body, &TraceLimits::default());
            let _ = decode_proto(&body, &TraceLimits::default());
        }
    }
}
