//! Traces as each read API shows them: Jaeger's JSON model, Tempo's search metadata, and the
//! trace summary (root service, root name, start, duration) search results need.

use serde_json::{json, Value as J};
use telltale_model::{AttrValue, KeyValue, SpanBatch, SpanKind, StatusCode, TraceId};

/// What a search result says about a trace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) root_service: String,
    pub(crate) root_name: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// The root span's service and name (Tempo's `<root span not yet received>` when the trace has
/// none), the first start and the last end.
pub(crate) fn summary(batch: &SpanBatch) -> Summary {
    let mut s = Summary { root_service: String::new(), root_name: String::new(), start: i64::MAX, end: i64::MIN };
    let mut root_start = i64::MAX;
    for (r, _, span) in batch.spans() {
        s.start = s.start.min(span.start);
        s.end = s.end.max(span.end);
        if span.is_root() && span.start < root_start {
            root_start = span.start;
            s.root_service = r.service_name().to_owned();
            s.root_name = span.name.clone();
        }
    }
    if root_start == i64::MAX {
        s.root_service = "<root span not yet received>".into();
    }
    if s.start == i64::MAX {
        (s.start, s.end) = (0, 0);
    }
    s
}

/// A trace id as Jaeger prints it: 16 hex digits when the high half is zero, else 32.
pub(crate) fn jaeger_id(t: &TraceId) -> String {
    let hex = t.to_string();
    match hex.strip_prefix("0000000000000000") {
        Some(low) => low.to_owned(),
        None => hex,
    }
}

fn jaeger_tag(key: &str, v: &AttrValue) -> J {
    let (ty, value) = match v {
        AttrValue::Str(s) => ("string", json!(s)),
        AttrValue::Bool(b) => ("bool", json!(b)),
        AttrValue::Int(i) => ("int64", json!(i)),
        AttrValue::Double(d) => ("float64", json!(d)),
        AttrValue::Bytes(b) => ("binary", json!(telltale_model::base64::encode(b))),
        other => ("string", json!(other.to_string())),
    };
    json!({"key": key, "type": ty, "value": value})
}

fn jaeger_tags(attrs: &[KeyValue]) -> Vec<J> {
    attrs.iter().map(|kv| jaeger_tag(&kv.key, &kv.value)).collect()
}

/// One trace in Jaeger's JSON model (`/api/traces/{id}`'s `data[0]`), translated as Jaeger's
/// own OTLP receiver does: kind as `span.kind`, status as `otel.status_code` (and `error`),
/// the scope as `otel.scope.name`/`otel.scope.version`, links as `FOLLOWS_FROM` references,
/// events as logs; one process per distinct resource.
pub(crate) fn jaeger_trace(id: &TraceId, batch: &SpanBatch) -> J {
    let mut processes = serde_json::Map::new();
    let mut spans = Vec::new();
    for (i, r) in batch.resources.iter().enumerate() {
        let pid = format!("p{}", i + 1);
        let tags: Vec<J> =
            r.resource.iter().filter(|kv| kv.key != "service.name").map(|kv| jaeger_tag(&kv.key, &kv.value)).collect();
        processes.insert(pid.clone(), json!({"serviceName": r.service_name(), "tags": tags}));
        for ss in &r.scopes {
            for s in &ss.spans {
                let mut tags = jaeger_tags(&s.attributes);
                if !ss.scope.name.is_empty() {
                    tags.push(jaeger_tag("otel.scope.name", &AttrValue::Str(ss.scope.name.clone())));
                }
                if !ss.scope.version.is_empty() {
                    tags.push(jaeger_tag("otel.scope.version", &AttrValue::Str(ss.scope.version.clone())));
                }
                if !matches!(s.kind, SpanKind::Unspecified | SpanKind::Internal) {
                    tags.push(jaeger_tag("span.kind", &AttrValue::Str(s.kind.name().into())));
                }
                match s.status {
                    StatusCode::Error => {
                        tags.push(jaeger_tag("error", &AttrValue::Bool(true)));
                        tags.push(jaeger_tag("otel.status_code", &AttrValue::Str("ERROR".into())));
                    }
                    StatusCode::Ok => tags.push(jaeger_tag("otel.status_code", &AttrValue::Str("OK".into()))),
                    StatusCode::Unset => {}
                }
                if !s.status_message.is_empty() {
                    tags.push(jaeger_tag("otel.status_description", &AttrValue::Str(s.status_message.clone())));
                }
                let mut refs = Vec::new();
                if !s.parent_span_id.is_zero() {
                    refs.push(json!({"refType": "CHILD_OF", "traceID": jaeger_id(id), "spanID": s.parent_span_id.to_string()}));
                }
                for l in &s.links {
                    refs.push(json!({"refType": "FOLLOWS_FROM", "traceID": jaeger_id(&l.trace_id), "spanID": l.span_id.to_string()}));
                }
                let logs: Vec<J> = s
                    .events
                    .iter()
                    .map(|e| {
                        let mut fields = vec![jaeger_tag("event", &AttrValue::Str(e.name.clone()))];
                        fields.extend(jaeger_tags(&e.attributes));
                        json!({"timestamp": e.time / 1000, "fields": fields})
                    })
                    .collect();
                spans.push(json!({
                    "traceID": jaeger_id(id),
                    "spanID": s.span_id.to_string(),
                    "operationName": s.name,
                    "references": refs,
                    "startTime": s.start / 1000,
                    "duration": s.duration() / 1000,
                    "tags": tags,
                    "logs": logs,
                    "processID": pid,
                    "warnings": null,
                    "flags": s.flags & 0xff,
                }));
            }
        }
    }
    json!({"traceID": jaeger_id(id), "spans": spans, "processes": processes, "warnings": null})
}

/// Jaeger's response envelope.
pub(crate) fn jaeger_envelope(data: J, total: usize) -> J {
    json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::{ResourceSpans, ScopeSpans, Span, SpanId};

    #[test]
    fn a_summary_names_the_root_and_spans_the_whole_trace() {
        let span = |id: u8, parent: u8, start, end| Span {
            span_id: SpanId([id; 8]),
            parent_span_id: SpanId([parent; 8]),
            name: format!("op{id}"),
            start,
            end,
            ..Span::default()
        };
        let batch = SpanBatch {
            resources: vec![ResourceSpans {
                resource: vec![KeyValue::str("service.name", "api")],
                scopes: vec![ScopeSpans {
                    spans: vec![span(2, 1, 5, 30), span(1, 0, 10, 20)],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        assert_eq!(summary(&batch), Summary { root_service: "api".into(), root_name: "op1".into(), start: 5, end: 30 });
        let mut orphan = batch.clone();
        orphan.resources[0].scopes[0].spans.remove(1);
        assert_eq!(summary(&orphan).root_service, "<root span not yet received>");
        assert_eq!(jaeger_id(&TraceId::from_hex("abc").unwrap()), "0000000000000abc");
    }
}
