//! The trace vocabulary: a [`Span`] with everything OpenTelemetry's span carries (so a span read
//! back re-encodes to the OTLP it came in as), grouped the way OTLP groups them: a
//! [`SpanBatch`] holds [`ResourceSpans`] (who sent them), which hold [`ScopeSpans`] (which
//! instrumentation library made them), which hold the spans. Every trace decoder (OTLP
//! protobuf and JSON, Zipkin) produces a `SpanBatch`; the trace store consumes one and gives
//! one back per trace, and every read API (Tempo, Jaeger, Zipkin) renders from it.
//!
//! No protobuf here: the model is plain data; `ingest::otlp` maps it to and from the wire.

use std::fmt;

use crate::Nanos;

/// A 16-byte W3C trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id; all zeros means "none" (a root span's parent).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

fn hex(b: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for x in b {
        write!(f, "{x:02x}")?;
    }
    Ok(())
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() > 2 * N || s.is_empty() {
        return None;
    }
    // Shorter ids are left-padded with zeros, as Tempo and Jaeger accept them (64-bit ids).
    let mut out = [0u8; N];
    let pad = 2 * N - s.len();
    for (i, c) in s.iter().enumerate() {
        let v = (*c as char).to_digit(16)? as u8;
        let pos = pad + i;
        out[pos / 2] |= if pos.is_multiple_of(2) { v << 4 } else { v };
    }
    Some(out)
}

impl TraceId {
    /// Parses 1 to 32 hex digits (shorter ids are 64-bit ids left-padded with zeros).
    pub fn from_hex(s: &str) -> Option<TraceId> {
        parse_hex::<16>(s).map(TraceId)
    }

    /// True for the all-zero id, which OTLP calls invalid.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl SpanId {
    /// Parses 1 to 16 hex digits.
    pub fn from_hex(s: &str) -> Option<SpanId> {
        parse_hex::<8>(s).map(SpanId)
    }

    /// True for the all-zero id ("no parent").
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

/// An attribute value: OTLP's `AnyValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AttrValue {
    /// No value (OTLP allows an empty `AnyValue`).
    #[default]
    Empty,
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<AttrValue>),
    /// A list of key/value pairs.
    Map(Vec<KeyValue>),
}

impl AttrValue {
    /// The value as a string if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    /// Strings as they are, numbers and booleans as Go and Tempo print them, the rest as JSON-ish
    /// text: the form tag values and Jaeger's tag strings take.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Empty => Ok(()),
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Bytes(b) => f.write_str(&crate::base64::encode(b)),
            AttrValue::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            AttrValue::Map(m) => {
                f.write_str("{")?;
                for (i, kv) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", kv.key, kv.value)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyValue {
    /// The attribute's name (`http.request.method`).
    pub key: String,
    /// Its value.
    pub value: AttrValue,
}

impl KeyValue {
    /// A string attribute.
    pub fn str(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
        KeyValue { key: key.into(), value: AttrValue::Str(value.into()) }
    }
}

/// Finds attribute `key` in `attrs`.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// What the span describes (OTLP's `SpanKind`, same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(u8)]
pub enum SpanKind {
    /// Not set by the sender.
    #[default]
    Unspecified = 0,
    /// An operation inside an application.
    Internal = 1,
    /// Handling a synchronous request (an HTTP server handler).
    Server = 2,
    /// Making a synchronous request (an HTTP client call, a database query).
    Client = 3,
    /// Sending a message to a broker.
    Producer = 4,
    /// Receiving a message from a broker.
    Consumer = 5,
}

impl SpanKind {
    /// From OTLP's number; unknown numbers are `Unspecified`.
    pub fn from_i32(v: i32) -> SpanKind {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// OTLP's enum name (`SPAN_KIND_SERVER`), the `span_kind` label spanmetrics writes.
    pub fn otlp_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    }

    /// TraceQL's and Jaeger's lower-case name (`server`).
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// A span's outcome (OTLP's `Status.code`, same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[repr(u8)]
pub enum StatusCode {
    /// Not set: the default.
    #[default]
    Unset = 0,
    /// Explicitly marked successful.
    Ok = 1,
    /// Failed.
    Error = 2,
}

impl StatusCode {
    /// From OTLP's number; unknown numbers are `Unset`.
    pub fn from_i32(v: i32) -> StatusCode {
        match v {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// OTLP's enum name (`STATUS_CODE_ERROR`), the `status_code` label spanmetrics writes.
    pub fn otlp_name(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    /// TraceQL's name (`error`).
    pub fn name(self) -> &'static str {
        match self {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        }
    }
}

/// A timed event inside a span (an exception, a log-like annotation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanEvent {
    /// When, in nanoseconds since the epoch.
    pub time: Nanos,
    /// The event's name (`exception`).
    pub name: String,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// A link from a span to a span of another (or the same) trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanLink {
    /// The linked trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// Its W3C trace state.
    pub trace_state: String,
    /// The link's attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// W3C trace flags (OTLP's `flags`).
    pub flags: u32,
}

/// One span, as OTLP defines it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// W3C trace state.
    pub trace_state: String,
    /// The parent span; zero for a root span.
    pub parent_span_id: SpanId,
    /// W3C trace flags and OTLP's `has_remote_parent` bits.
    pub flags: u32,
    /// The operation's name (`GET /users/{id}`).
    pub name: String,
    /// Server, client, ...
    pub kind: SpanKind,
    /// Start, nanoseconds since the epoch.
    pub start: Nanos,
    /// End, nanoseconds since the epoch.
    pub end: Nanos,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Timed events.
    pub events: Vec<SpanEvent>,
    /// Events the sender dropped.
    pub dropped_events_count: u32,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
    /// Links the sender dropped.
    pub dropped_links_count: u32,
    /// The outcome.
    pub status: StatusCode,
    /// A message describing an error status.
    pub status_message: String,
}

impl Span {
    /// End minus start, never negative.
    pub fn duration(&self) -> Nanos {
        (self.end - self.start).max(0)
    }

    /// True for a span without a parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_zero()
    }
}

/// The instrumentation library that made some spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// Its name (`opentelemetry.instrumentation.flask`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// Spans of one instrumentation scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScopeSpans {
    /// The scope.
    pub scope: Scope,
    /// The spans.
    pub spans: Vec<Span>,
    /// The schema URL of the scope's data.
    pub schema_url: String,
}

/// The entity that produced some spans (a service instance) with its spans by scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceSpans {
    /// Resource attributes (`service.name`, `service.instance.id`, `host.name`, ...).
    pub resource: Vec<KeyValue>,
    /// Resource attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Spans by scope.
    pub scopes: Vec<ScopeSpans>,
    /// The schema URL of the resource.
    pub schema_url: String,
}

/// The service name OpenTelemetry uses when a resource has none.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

impl ResourceSpans {
    /// The resource's `service.name`, or `unknown_service`.
    pub fn service_name(&self) -> &str {
        attr(&self.resource, "service.name").and_then(AttrValue::as_str).unwrap_or(UNKNOWN_SERVICE)
    }

    /// Number of spans under this resource.
    pub fn span_count(&self) -> usize {
        self.scopes.iter().map(|s| s.spans.len()).sum()
    }
}

/// What a trace decoder produces, a trace store consumes and a trace read gives back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanBatch {
    /// Spans by resource.
    pub resources: Vec<ResourceSpans>,
}

impl SpanBatch {
    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.resources.iter().map(ResourceSpans::span_count).sum()
    }

    /// True when the batch holds no span.
    pub fn is_empty(&self) -> bool {
        self.span_count() == 0
    }

    /// Every span with its resource and scope.
    pub fn spans(&self) -> impl Iterator<Item = (&ResourceSpans, &ScopeSpans, &Span)> + '_ {
        self.resources.iter().flat_map(|r| r.scopes.iter().flat_map(move |s| s.spans.iter().map(move |sp| (r, s, sp))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_lower_hex() {
        let t = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(t.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(TraceId::from_hex("0AF7651916CD43DD8448EB211C80319C"), Some(t));
        // A 64-bit Jaeger id is the low half.
        assert_eq!(TraceId::from_hex("8448eb211c80319c").unwrap().to_string(), "00000000000000008448eb211c80319c");
        assert_eq!(TraceId::from_hex("abc").unwrap().to_string(), "00000000000000000000000000000abc");
        assert_eq!(TraceId::from_hex(""), None);
        assert_eq!(TraceId::from_hex("xyz"), None);
        assert_eq!(TraceId::from_hex(&"1".repeat(33)), None);
        assert_eq!(SpanId::from_hex("b7ad6b7169203331").unwrap().to_string(), "b7ad6b7169203331");
        assert!(SpanId::default().is_zero());
    }

    #[test]
    fn a_batch_counts_and_walks_its_spans() {
        let span = |n: &str| Span { name: n.into(), start: 10, end: 5, ..Span::default() };
        let batch = SpanBatch {
            resources: vec![ResourceSpans {
                resource: vec![KeyValue::str("service.name", "api")],
                scopes: vec![
                    ScopeSpans { spans: vec![span("a"), span("b")], ..ScopeSpans::default() },
                    ScopeSpans { spans: vec![span("c")], ..ScopeSpans::default() },
                ],
                ..ResourceSpans::default()
            }],
        };
        assert_eq!(batch.span_count(), 3);
        assert_eq!(batch.resources[0].service_name(), "api");
        let names: Vec<_> = batch.spans().map(|(_, _, s)| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(span("a").duration(), 0);
        assert_eq!(ResourceSpans::default().service_name(), "unknown_service");
    }
}
