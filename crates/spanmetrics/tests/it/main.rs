//! The generator from the outside: hand-built traces in, exact series out.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use telltale_model::{
    is_stale_nan, KeyValue, Matcher, Nanos, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanId, SpanKind, StatusCode,
    TimeRange, TraceId, WriteBatch,
};
use telltale_spanmetrics::{max_relative_error, Options, SpanMetrics};

const T0: Nanos = 1_700_000_000_000_000_000;
const MS: Nanos = 1_000_000;
const SEC: Nanos = 1_000_000_000;

fn tid(t: u8) -> TraceId {
    TraceId([t; 16])
}

fn sid(s: u8) -> SpanId {
    if s == 0 {
        SpanId::default()
    } else {
        SpanId([s; 8])
    }
}

struct S {
    span: Span,
}

fn span(trace: u8, id: u8, parent: u8, name: &str, kind: SpanKind, dur_ms: i64) -> S {
    S {
        span: Span {
            trace_id: tid(trace),
            span_id: sid(id),
            parent_span_id: sid(parent),
            name: name.into(),
            kind,
            start: T0,
            end: T0 + dur_ms * MS,
            ..Span::default()
        },
    }
}

impl S {
    fn error(mut self) -> S {
        self.span.status = StatusCode::Error;
        self
    }
    fn attr(mut self, k: &str, v: &str) -> S {
        self.span.attributes.push(KeyValue::str(k, v));
        self
    }
}

fn res(service: &str, spans: Vec<S>) -> ResourceSpans {
    res_attrs(vec![KeyValue::str("service.name", service)], spans)
}

fn res_attrs(resource: Vec<KeyValue>, spans: Vec<S>) -> ResourceSpans {
    ResourceSpans {
        resource,
        scopes: vec![ScopeSpans { spans: spans.into_iter().map(|s| s.span).collect(), ..ScopeSpans::default() }],
        ..ResourceSpans::default()
    }
}

fn batch(resources: Vec<ResourceSpans>) -> SpanBatch {
    SpanBatch { resources }
}

/// Every series as Prometheus text (`name{a="1", ...}`) with its last value.
fn last(wb: &WriteBatch) -> BTreeMap<String, f64> {
    wb.iter().map(|(l, s)| (l.to_string(), s.last().unwrap().v)).collect()
}

#[track_caller]
fn assert_series(m: &BTreeMap<String, f64>, series: &str, want: f64) {
    match m.get(series) {
        Some(v) => assert!((v - want).abs() < 1e-9, "{series} = {v}, want {want}"),
        None => {
            let name = series.split('{').next().unwrap();
            let near: Vec<_> = m.keys().filter(|k| k.starts_with(name)).collect();
            panic!("no series {series}; series of that name: {near:#?}")
        }
    }
}

fn ms(ns: Nanos) -> i64 {
    ns / MS
}

/// A three-service trace: frontend (root server 100 ms, client 80 ms) calls api (server 70 ms,
/// failed), which queries postgres (client span with db.system, 20 ms).
fn shop_trace() -> SpanBatch {
    batch(vec![
        res(
            "frontend",
            vec![span(1, 1, 0, "GET /", SpanKind::Server, 100), span(1, 2, 1, "GET api", SpanKind::Client, 80)],
        ),
        res(
            "api",
            vec![
                span(1, 3, 2, "GET /users", SpanKind::Server, 70).error(),
                span(1, 4, 3, "SELECT users", SpanKind::Client, 20).attr("db.system", "postgresql"),
            ],
        ),
    ])
}

#[test]
fn exact_series_for_a_hand_built_trace() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&shop_trace(), T0);
    let wb = g.collect(ms(T0 + SEC));
    let m = last(&wb);

    // Tempo's names and label values.
    let frontend =
        r#"service="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /", status_code="STATUS_CODE_UNSET""#;
    assert_series(&m, &format!("traces_spanmetrics_calls_total{{{frontend}}}"), 1.0);
    assert_series(&m, &format!(r#"traces_spanmetrics_latency_bucket{{le="0.064", {frontend}}}"#), 0.0);
    assert_series(&m, &format!(r#"traces_spanmetrics_latency_bucket{{le="0.128", {frontend}}}"#), 1.0);
    assert_series(&m, &format!(r#"traces_spanmetrics_latency_bucket{{le="16.384", {frontend}}}"#), 1.0);
    assert_series(&m, &format!(r#"traces_spanmetrics_latency_bucket{{le="+Inf", {frontend}}}"#), 1.0);
    assert_series(&m, &format!("traces_spanmetrics_latency_sum{{{frontend}}}"), 0.1);
    assert_series(&m, &format!("traces_spanmetrics_latency_count{{{frontend}}}"), 1.0);
    let api = r#"service="api", span_kind="SPAN_KIND_SERVER", span_name="GET /users", status_code="STATUS_CODE_ERROR""#;
    assert_series(&m, &format!("traces_spanmetrics_calls_total{{{api}}}"), 1.0);
    let les: Vec<_> = m
        .keys()
        .filter(|k| k.starts_with("traces_spanmetrics_latency_bucket") && k.contains(r#"span_name="GET /""#))
        .map(|k| k.split('"').nth(1).unwrap().to_string())
        .collect();
    let mut want: Vec<String> = [
        "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512", "1.024", "2.048", "4.096",
        "8.192", "16.384", "+Inf",
    ]
    .map(String::from)
    .to_vec();
    want.sort();
    assert_eq!(les, want);

    // The collector's names, as Jaeger's Monitor tab queries them (milliseconds).
    let j =
        r#"service_name="frontend", span_kind="SPAN_KIND_SERVER", span_name="GET /", status_code="STATUS_CODE_UNSET""#;
    assert_series(&m, &format!("traces_span_metrics_calls_total{{{j}}}"), 1.0);
    assert_series(&m, &format!(r#"traces_span_metrics_duration_milliseconds_bucket{{le="50", {j}}}"#), 0.0);
    assert_series(&m, &format!(r#"traces_span_metrics_duration_milliseconds_bucket{{le="100", {j}}}"#), 1.0);
    assert_series(&m, &format!(r#"traces_span_metrics_duration_milliseconds_bucket{{le="15000", {j}}}"#), 1.0);
    assert_series(&m, &format!("traces_span_metrics_duration_milliseconds_sum{{{j}}}"), 100.0);

    // The service graph: frontend → api paired (failed on the server side), api → postgres at
    // once as a database edge; the root server span still waits.
    let fa = r#"client="frontend", server="api""#;
    assert_series(&m, &format!("traces_service_graph_request_total{{{fa}}}"), 1.0);
    assert_series(&m, &format!("traces_service_graph_request_failed_total{{{fa}}}"), 1.0);
    assert_series(&m, &format!("traces_service_graph_request_server_seconds_sum{{{fa}}}"), 0.07);
    assert_series(&m, &format!("traces_service_graph_request_client_seconds_sum{{{fa}}}"), 0.08);
    assert_series(
        &m,
        r#"traces_service_graph_request_server_seconds_bucket{client="frontend", le="0.1", server="api"}"#,
        1.0,
    );
    let db = r#"client="api", connection_type="database", server="postgresql""#;
    assert_series(&m, &format!("traces_service_graph_request_total{{{db}}}"), 1.0);
    assert_series(&m, &format!("traces_service_graph_request_server_seconds_sum{{{db}}}"), 0.02);
    assert_series(&m, &format!("traces_service_graph_request_failed_total{{{db}}}"), 0.0);
    assert_series(&m, "telltale_spanmetrics_spans_observed_total", 4.0);
    assert_series(&m, "telltale_spanmetrics_active_series", 4.0);
    assert_series(&m, "telltale_servicegraph_pending_edges", 1.0);

    // First appearance: a zero sample before the value, so rate() sees the first increase.
    let (_, samples) = wb.iter().find(|(l, _)| l.metric_name() == Some("traces_spanmetrics_calls_total")).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].v, 0.0);
    assert!(samples[0].t < samples[1].t);

    // The root server span expires into an edge from the virtual client `user`.
    let m = last(&g.collect(ms(T0 + 11 * SEC)));
    assert_series(
        &m,
        r#"traces_service_graph_request_total{client="user", connection_type="virtual_node", server="frontend"}"#,
        1.0,
    );
    assert_series(&m, "telltale_servicegraph_pending_edges", 0.0);
    // Counters stay cumulative and later collects write one sample per series.
    assert_series(&m, &format!("traces_service_graph_request_total{{{fa}}}"), 1.0);
}

#[test]
fn series_are_cumulative_across_collects() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&shop_trace(), T0);
    g.collect(ms(T0 + SEC));
    g.observe(&shop_trace(), T0 + 2 * SEC);
    let wb = g.collect(ms(T0 + 3 * SEC));
    let m = last(&wb);
    let api = r#"service="api", span_kind="SPAN_KIND_SERVER", span_name="GET /users", status_code="STATUS_CODE_ERROR""#;
    assert_series(&m, &format!("traces_spanmetrics_calls_total{{{api}}}"), 2.0);
    assert!(wb.iter().all(|(l, s)| s.len() == 1 || l.metric_name().unwrap().contains("user")));
}

#[test]
fn pairs_a_client_and_a_server_arriving_in_different_batches() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&batch(vec![res("a", vec![span(7, 1, 0, "call b", SpanKind::Client, 50)])]), T0);
    assert_eq!(g.stats().pending_edges, 1);
    g.observe(&batch(vec![res("b", vec![span(7, 2, 1, "handle", SpanKind::Server, 40)])]), T0 + 9 * SEC);
    assert_eq!(g.stats().pending_edges, 0);
    let m = last(&g.collect(ms(T0 + 20 * SEC)));
    assert_series(&m, r#"traces_service_graph_request_total{client="a", server="b"}"#, 1.0);
    assert_series(&m, r#"traces_service_graph_request_client_seconds_sum{client="a", server="b"}"#, 0.05);
    assert!(!m.keys().any(|k| k.contains("unpaired")));
}

#[test]
fn a_half_arriving_after_the_wait_is_unpaired() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&batch(vec![res("a", vec![span(7, 1, 0, "call b", SpanKind::Client, 50)])]), T0);
    // Arrives 11 s later: the client expired first (no peer attribute), then the server waits
    // alone and, not being a root span, expires unpaired too.
    g.observe(&batch(vec![res("b", vec![span(7, 2, 1, "handle", SpanKind::Server, 40)])]), T0 + 11 * SEC);
    let m = last(&g.collect(ms(T0 + 12 * SEC)));
    assert_series(&m, r#"traces_service_graph_unpaired_spans_total{client="a"}"#, 1.0);
    assert!(!m.keys().any(|k| k.starts_with("traces_service_graph_request_total")));
    let m = last(&g.collect(ms(T0 + 22 * SEC)));
    assert_series(&m, r#"traces_service_graph_unpaired_spans_total{server="b"}"#, 1.0);
    assert_eq!(g.stats().pending_edges, 0);
}

#[test]
fn expired_halves_with_a_peer_become_virtual_nodes() {
    for label in [false, true] {
        let mut g = SpanMetrics::new(Options { virtual_node_label: label, ..Options::default() });
        let spans = vec![
            span(1, 1, 0, "charge", SpanKind::Client, 300).attr("peer.service", "stripe"),
            span(2, 2, 0, "GET /", SpanKind::Server, 10).attr("peer.service", "browser"),
            span(3, 3, 0, "put", SpanKind::Producer, 1),
        ];
        g.observe(&batch(vec![res("shop", spans)]), T0);
        g.observe(&batch(vec![res("worker", vec![span(3, 4, 3, "take", SpanKind::Consumer, 2)])]), T0 + SEC);
        let m = last(&g.collect(ms(T0 + 10 * SEC)));
        let (server, client) =
            if label { (r#", virtual_node="server""#, r#", virtual_node="client""#) } else { ("", "") };
        assert_series(
            &m,
            &format!(
                r#"traces_service_graph_request_total{{client="shop", connection_type="virtual_node", server="stripe"{server}}}"#
            ),
            1.0,
        );
        assert_series(
            &m,
            &format!(
                r#"traces_service_graph_request_total{{client="browser", connection_type="virtual_node", server="shop"{client}}}"#
            ),
            1.0,
        );
        assert_series(
            &m,
            r#"traces_service_graph_request_total{client="shop", connection_type="messaging_system", server="worker"}"#,
            1.0,
        );
    }
}

#[test]
fn database_edges_are_named_as_tempo_names_them() {
    let mut g = SpanMetrics::new(Options::default());
    let spans = vec![
        span(1, 1, 0, "q1", SpanKind::Client, 5).attr("db.system", "postgresql").attr("server.address", "pg-1"),
        span(1, 2, 0, "q2", SpanKind::Client, 5)
            .attr("db.system", "redis")
            .attr("network.peer.address", "10.0.0.1")
            .attr("network.peer.port", "6379"),
        span(1, 3, 0, "q3", SpanKind::Client, 5).attr("db.name", "orders").attr("db.system", "mysql"),
    ];
    g.observe(&batch(vec![res("api", spans)]), T0);
    let m = last(&g.collect(ms(T0)));
    for server in ["pg-1", "10.0.0.1:6379", "orders"] {
        assert_series(
            &m,
            &format!(
                r#"traces_service_graph_request_total{{client="api", connection_type="database", server="{server}"}}"#
            ),
            1.0,
        );
    }
    assert_eq!(g.stats().pending_edges, 0);
}

#[test]
fn a_full_pending_map_drops_and_counts() {
    let mut g = SpanMetrics::new(Options { max_pending_edges: 2, ..Options::default() });
    let spans = (1..=3).map(|i| span(i, i, 0, "call", SpanKind::Client, 1)).collect();
    g.observe(&batch(vec![res("a", spans)]), T0);
    assert_eq!(g.stats().pending_edges, 2);
    let m = last(&g.collect(ms(T0)));
    assert_series(&m, r#"traces_service_graph_dropped_spans_total{client="a"}"#, 1.0);
    // Expired halves free room again.
    g.observe(&batch(vec![res("a", vec![span(9, 9, 0, "call", SpanKind::Client, 1)])]), T0 + 10 * SEC);
    assert_eq!(g.stats().pending_edges, 1);
}

#[test]
fn spans_past_the_cap_go_to_the_overflow_series() {
    let mut g = SpanMetrics::new(Options { max_series_per_service: 2, ..Options::default() });
    let names = ["a", "b", "c", "d", "a"];
    let spans = names.iter().enumerate().map(|(i, n)| span(1, i as u8 + 1, 0, n, SpanKind::Internal, 1)).collect();
    g.observe(&batch(vec![res("svc", spans), res("other", vec![span(2, 1, 0, "x", SpanKind::Internal, 1)])]), T0);
    let m = last(&g.collect(ms(T0)));
    assert_series(
        &m,
        r#"traces_spanmetrics_calls_total{otel_metric_overflow="true", service="svc", span_kind="SPAN_KIND_INTERNAL", span_name="__overflow__", status_code="STATUS_CODE_UNSET"}"#,
        2.0,
    );
    assert_series(
        &m,
        r#"traces_spanmetrics_calls_total{service="svc", span_kind="SPAN_KIND_INTERNAL", span_name="a", status_code="STATUS_CODE_UNSET"}"#,
        2.0,
    );
    assert_series(&m, r#"telltale_spanmetrics_overflow_spans_total{service="svc"}"#, 2.0);
    assert_eq!(g.overflowed_services(), [("svc".to_string(), 2)]);
    // Totals per service stay right: 5 spans.
    let total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("traces_spanmetrics_calls_total") && k.contains(r#"service="svc""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 5.0);
}

#[test]
fn services_past_the_cap_are_dropped_and_counted() {
    let mut g = SpanMetrics::new(Options { max_services: 1, ..Options::default() });
    g.observe(&batch(vec![res("a", vec![span(1, 1, 0, "x", SpanKind::Internal, 1)])]), T0);
    g.observe(&batch(vec![res("b", vec![span(1, 2, 0, "x", SpanKind::Internal, 1)])]), T0);
    let m = last(&g.collect(ms(T0)));
    assert_series(&m, "telltale_spanmetrics_dropped_spans_total", 1.0);
    assert!(!m.keys().any(|k| k.contains(r#"service="b""#)));
}

#[test]
fn exemplars_carry_the_trace_id() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&shop_trace(), T0);
    let sel = [
        Matcher::equal("__name__", "traces_spanmetrics_latency_bucket"),
        Matcher::equal("service", "frontend"),
        Matcher::equal("span_name", "GET /"),
    ];
    let ex = g.exemplars(&sel, TimeRange::ALL);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].labels.get("le"), Some("0.128"));
    let e = ex[0].exemplars[0];
    assert_eq!(e.trace_id.to_string(), "01010101010101010101010101010101");
    assert_eq!(e.span_id.to_string(), "0101010101010101");
    assert_eq!(e.value, 0.1);
    assert_eq!(e.timestamp, ms(T0));
    assert!(g.exemplars(&sel, TimeRange::new(0, ms(T0) - 1)).is_empty());
    // Jaeger's histogram (milliseconds) and the service graph's carry them too.
    let ms_ex =
        g.exemplars(&[Matcher::equal("__name__", "traces_span_metrics_duration_milliseconds_bucket")], TimeRange::ALL);
    assert!(ms_ex.iter().any(|s| s.exemplars[0].value == 100.0));
    let graph = g
        .exemplars(&[Matcher::equal("__name__", "traces_service_graph_request_server_seconds_bucket")], TimeRange::ALL);
    assert!(graph.iter().all(|s| s.exemplars[0].trace_id == tid(1)));
    assert_eq!(graph.len(), 2);
}

#[test]
fn instance_label_comes_from_service_instance_id() {
    let resource = vec![KeyValue::str("service.name", "api"), KeyValue::str("service.instance.id", "pod-1")];
    for on in [true, false] {
        let mut g = SpanMetrics::new(Options { instance_label: on, jaeger_names: false, ..Options::default() });
        g.observe(&batch(vec![res_attrs(resource.clone(), vec![span(1, 1, 0, "x", SpanKind::Server, 1)])]), T0);
        let m = last(&g.collect(ms(T0)));
        let inst = if on { r#"instance="pod-1", "# } else { "" };
        assert_series(
            &m,
            &format!(
                r#"traces_spanmetrics_calls_total{{{inst}service="api", span_kind="SPAN_KIND_SERVER", span_name="x", status_code="STATUS_CODE_UNSET"}}"#
            ),
            1.0,
        );
        assert!(!m.keys().any(|k| k.starts_with("traces_span_metrics")));
    }
}

#[test]
fn size_total_counts_otlp_bytes() {
    let mut g = SpanMetrics::new(Options::default());
    let s = span(1, 1, 0, "GET", SpanKind::Server, 1).attr("k", "v").error();
    g.observe(&batch(vec![res("a", vec![s])]), T0);
    let m = last(&g.collect(ms(T0)));
    // ids 18 + 10, name 5, kind 2, start and end 18, attribute 10, status 4.
    assert_series(
        &m,
        r#"traces_spanmetrics_size_total{service="a", span_kind="SPAN_KIND_SERVER", span_name="GET", status_code="STATUS_CODE_ERROR"}"#,
        67.0,
    );
}

#[test]
fn idle_series_are_marked_stale_then_dropped() {
    let mut g = SpanMetrics::new(Options { stale_after: Duration::from_secs(60), ..Options::default() });
    g.observe(&shop_trace(), T0);
    g.collect(ms(T0 + SEC));
    g.observe(&batch(vec![res("api", vec![span(5, 5, 0, "tick", SpanKind::Internal, 1)])]), T0 + 100 * SEC);
    let wb = g.collect(ms(T0 + 100 * SEC));
    let frontend_calls = wb
        .iter()
        .find(|(l, _)| {
            l.metric_name() == Some("traces_spanmetrics_calls_total") && l.get("service") == Some("frontend")
        })
        .unwrap();
    assert!(is_stale_nan(frontend_calls.1[0].v));
    let wb = g.collect(ms(T0 + 115 * SEC));
    assert!(!wb.iter().any(|(l, _)| l.get("service") == Some("frontend")));
    assert!(wb.iter().any(|(l, _)| l.get("span_name") == Some("tick")));
    assert_eq!(g.stats().active_series, 1);
}

#[test]
fn output_is_deterministic() {
    let run = || {
        let mut g = SpanMetrics::new(Options::default());
        g.observe(&shop_trace(), T0);
        g.observe(&batch(vec![res("z", vec![span(9, 1, 0, "a", SpanKind::Client, 3)])]), T0);
        let wb = g.collect(ms(T0 + 30 * SEC));
        wb.iter().map(|(l, s)| format!("{l} {s:?}")).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn quantile_selects_by_labels() {
    let mut g = SpanMetrics::new(Options::default());
    g.observe(&shop_trace(), T0);
    let q =
        g.quantile(&[Matcher::equal("service", "api"), Matcher::equal("span_kind", "SPAN_KIND_SERVER")], 0.5).unwrap();
    assert!((q - 0.07).abs() / 0.07 <= max_relative_error());
    assert_eq!(g.quantile(&[Matcher::equal("service", "nope")], 0.5), None);
    let h = g.native_histograms(&[Matcher::equal("service", "frontend")]);
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].1.schema, 5);
    assert_eq!(h[0].1.count, 1);
}

proptest! {
    #[test]
    fn quantiles_are_within_two_percent_of_exact(
        durations in proptest::collection::vec(1_000i64..20_000_000_000, 1..400),
        q in prop_oneof![Just(0.5), Just(0.9), Just(0.95), Just(0.99), 0.0f64..=1.0],
    ) {
        let mut g = SpanMetrics::new(Options::default());
        let spans = durations
            .iter()
            .enumerate()
            .map(|(i, d)| S { span: Span { name: "op".into(), span_id: SpanId((i as u64 + 1).to_be_bytes()), trace_id: tid(1), start: T0, end: T0 + d, ..Span::default() } })
            .collect();
        g.observe(&batch(vec![res("svc", spans)]), T0);
        let mut sorted = durations.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        let exact = sorted[rank - 1] as f64 / 1e9;
        let got = g.quantile(&[Matcher::equal("service", "svc")], q).unwrap();
        let err = (got - exact).abs() / exact;
        prop_assert!(err <= 0.02, "q={q} exact={exact} got={got} err={err}");
        prop_assert!(err <= max_relative_error() + 1e-9);
    }
}
