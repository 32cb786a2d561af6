//! A span's OTLP protobuf size, for `traces_spanmetrics_size_total`: Tempo adds
//! `span.Size()` (the encoded `opentelemetry.proto.trace.v1.Span`), so we count the same bytes
//! from the model without encoding anything.
//!
//! Field numbers from
//! <https://github.com/open-telemetry/opentelemetry-proto/blob/main/opentelemetry/proto/trace/v1/trace.proto>.
//! Proto3 leaves scalar fields at their default out; a zero parent span id is an absent one.

use telltale_model::{AttrValue, KeyValue, Span, SpanEvent, SpanLink, StatusCode};

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length-delimited field (tag below 16) holding `len` bytes.
fn ld(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A string or bytes field, omitted when empty.
fn opt_ld(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        ld(len)
    }
}

/// A varint field (tag below 16), omitted when zero.
fn opt_varint(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v)
    }
}

fn opt_fixed64(v: i64) -> usize {
    if v == 0 {
        0
    } else {
        9
    }
}

fn any_value(v: &AttrValue) -> usize {
    match v {
        AttrValue::Empty => 0,
        AttrValue::Str(s) => ld(s.len()),
        AttrValue::Bool(_) => 2,
        AttrValue::Int(i) => 1 + varint_len(*i as u64),
        AttrValue::Double(_) => 9,
        AttrValue::Bytes(b) => ld(b.len()),
        AttrValue::Array(a) => ld(a.iter().map(|v| ld(any_value(v))).sum()),
        AttrValue::Map(m) => ld(attributes(m)),
    }
}

fn key_value(kv: &KeyValue) -> usize {
    opt_ld(kv.key.len()) + ld(any_value(&kv.value))
}

/// The bytes of a repeated `KeyValue` field.
fn attributes(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| ld(key_value(kv))).sum()
}

fn event(e: &SpanEvent) -> usize {
    opt_fixed64(e.time)
        + opt_ld(e.name.len())
        + attributes(&e.attributes)
        + opt_varint(e.dropped_attributes_count.into())
}

fn link(l: &SpanLink) -> usize {
    let ids = opt_ld(if l.trace_id.is_zero() { 0 } else { 16 }) + opt_ld(if l.span_id.is_zero() { 0 } else { 8 });
    let flags = if l.flags == 0 { 0 } else { 5 };
    ids + opt_ld(l.trace_state.len())
        + attributes(&l.attributes)
        + opt_varint(l.dropped_attributes_count.into())
        + flags
}

/// The encoded size of `span` as an OTLP `Span` message.
pub(crate) fn otlp_size(span: &Span) -> usize {
    let mut n = opt_ld(if span.trace_id.is_zero() { 0 } else { 16 })
        + opt_ld(if span.span_id.is_zero() { 0 } else { 8 })
        + opt_ld(span.trace_state.len())
        + opt_ld(if span.parent_span_id.is_zero() { 0 } else { 8 })
        + opt_ld(span.name.len())
        + opt_varint(span.kind as u64)
        + opt_fixed64(span.start)
        + opt_fixed64(span.end)
        + attributes(&span.attributes)
        + opt_varint(span.dropped_attributes_count.into())
        + span.events.iter().map(|e| ld(event(e))).sum::<usize>()
        + opt_varint(span.dropped_events_count.into())
        + span.links.iter().map(|l| ld(link(l))).sum::<usize>()
        + opt_varint(span.dropped_links_count.into());
    if span.status != StatusCode::Unset || !span.status_message.is_empty() {
        n += ld(opt_ld(span.status_message.len()) + opt_varint(span.status as u64));
    }
    if span.flags != 0 {
        // Field 16 needs a two-byte tag.
        n += 2 + 4;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::{SpanId, SpanKind, TraceId};

    #[test]
    fn counts_protobuf_bytes() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
        let span = Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            name: "GET".into(),
            kind: SpanKind::Server,
            start: 1,
            end: 2,
            attributes: vec![KeyValue::str("k", "v")],
            status: StatusCode::Error,
            ..Span::default()
        };
        // ids 18 + 10, name 5, kind 2, times 9 + 9, attribute 2 + (3 + 2 + 3), status 2 + 2.
        assert_eq!(otlp_size(&span), 18 + 10 + 5 + 2 + 18 + 10 + 4);
    }
}
