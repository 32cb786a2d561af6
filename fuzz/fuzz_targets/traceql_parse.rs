//! TraceQL: any text parses or fails cleanly; what parses evaluates over a small trace, gives
//! hints, runs as metrics, and prints to a query that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale_model::{KeyValue, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId};
use telltale_traceql::MetricsRange;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = telltale_traceql::completions(text, text.len() / 2);
    let Ok(q) = telltale_traceql::parse(text) else { return };
    let printed = q.to_string();
    let again = telltale_traceql::parse(&printed).expect("a printed query parses");
    assert_eq!(again.ast(), q.ast(), "{printed}");
    let span = |id: u8, parent: u8| Span {
        span_id: SpanId([id; 8]),
        parent_span_id: SpanId([parent; 8]),
        name: format!("op{id}"),
        start: i64::from(id) * 1_000_000_000,
        end: i64::from(id) * 1_500_000_000,
        attributes: vec![KeyValue::str("a", "b")],
        ..Span::default()
    };
    let trace = SpanBatch {
        resources: vec![ResourceSpans {
            resource: vec![KeyValue::str("service.name", "svc")],
            scopes: vec![ScopeSpans { spans: vec![span(1, 0), span(2, 1), span(3, 1)], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    };
    let _ = q.eval(&trace);
    let _ = q.hints();
    let _ = q.metrics([&trace], MetricsRange { start: 0, end: 10_000_000_000, step: 1_000_000_000 });
});
