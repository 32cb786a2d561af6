//! Every metric family the generator writes: the names Grafana's Tempo data source and
//! Jaeger's Monitor tab query, and the generator's own counters.

use telltale_model::{MetricMetadata, MetricType};

/// Tempo: calls per series (`modules/generator/processor/spanmetrics`).
pub const CALLS_TOTAL: &str = "traces_spanmetrics_calls_total";
/// Tempo: latency histogram in seconds (`_bucket`, `_sum`, `_count`).
pub const LATENCY: &str = "traces_spanmetrics_latency";
/// Tempo: OTLP bytes of the spans per series.
pub const SIZE_TOTAL: &str = "traces_spanmetrics_size_total";
/// Collector connector with namespace `traces.span.metrics`, as Jaeger queries it with
/// `normalize_calls: true`.
pub const JAEGER_CALLS_TOTAL: &str = "traces_span_metrics_calls_total";
/// The same, with `normalize_duration: true` and `latency_unit: ms` (milliseconds).
pub const JAEGER_DURATION: &str = "traces_span_metrics_duration_milliseconds";

/// Tempo service graph: requests per edge.
pub const GRAPH_REQUEST_TOTAL: &str = "traces_service_graph_request_total";
/// Failed requests per edge (either side's status is error).
pub const GRAPH_REQUEST_FAILED_TOTAL: &str = "traces_service_graph_request_failed_total";
/// Server-side latency per edge, seconds.
pub const GRAPH_SERVER_SECONDS: &str = "traces_service_graph_request_server_seconds";
/// Client-side latency per edge, seconds.
pub const GRAPH_CLIENT_SECONDS: &str = "traces_service_graph_request_client_seconds";
/// Halves that expired with nothing to pair with (the Agent's and the collector's name).
pub const GRAPH_UNPAIRED_TOTAL: &str = "traces_service_graph_unpaired_spans_total";
/// Halves dropped because the pending map was full.
pub const GRAPH_DROPPED_TOTAL: &str = "traces_service_graph_dropped_spans_total";

/// Self: spans given to `observe`.
pub const SPANS_OBSERVED: &str = "telltale_spanmetrics_spans_observed_total";
/// Self: spans folded into a service's overflow series, by service.
pub const OVERFLOW_SPANS: &str = "telltale_spanmetrics_overflow_spans_total";
/// Self: spans dropped because `max_services` services were already tracked.
pub const DROPPED_SPANS: &str = "telltale_spanmetrics_dropped_spans_total";
/// Self: span-metric series held (a histogram counts once).
pub const ACTIVE_SERIES: &str = "telltale_spanmetrics_active_series";
/// Self: service graph edges held.
pub const ACTIVE_EDGES: &str = "telltale_servicegraph_active_edges";
/// Self: half-edges waiting for their other half.
pub const PENDING_EDGES: &str = "telltale_servicegraph_pending_edges";
/// Self: completed edges not counted because `max_edges` edges were already tracked.
pub const DROPPED_EDGES: &str = "telltale_servicegraph_dropped_edges_total";

/// The label holding an exemplar's trace id (what Prometheus and the collector's exporter
/// write; Tempo's default is `traceID`).
pub const TRACE_ID_LABEL: &str = "trace_id";
/// The label holding an exemplar's span id.
pub const SPAN_ID_LABEL: &str = "span_id";
/// `span_name` of the series that collects a service's spans past its cap.
pub const OVERFLOW_SPAN_NAME: &str = "__overflow__";
/// The label the overflow series carries: OpenTelemetry's `otel.metric.overflow`, as a
/// Prometheus label.
pub const OVERFLOW_LABEL: &str = "otel_metric_overflow";

pub(crate) fn metadata(jaeger: bool) -> Vec<MetricMetadata> {
    let m = |name: &str, kind, help: &str, unit: &str| MetricMetadata {
        metric_family: name.to_string(),
        kind,
        help: help.to_string(),
        unit: unit.to_string(),
    };
    let mut v = vec![
        m(CALLS_TOTAL, MetricType::Counter, "Spans, by service, span name, kind and status.", ""),
        m(LATENCY, MetricType::Histogram, "Span duration.", "seconds"),
        m(SIZE_TOTAL, MetricType::Counter, "OTLP protobuf bytes of the spans.", "bytes"),
        m(GRAPH_REQUEST_TOTAL, MetricType::Counter, "Requests between two services.", ""),
        m(GRAPH_REQUEST_FAILED_TOTAL, MetricType::Counter, "Failed requests between two services.", ""),
        m(GRAPH_SERVER_SECONDS, MetricType::Histogram, "Request duration seen by the server.", "seconds"),
        m(GRAPH_CLIENT_SECONDS, MetricType::Histogram, "Request duration seen by the client.", "seconds"),
        m(GRAPH_UNPAIRED_TOTAL, MetricType::Counter, "Client or server spans that found no other half.", ""),
        m(GRAPH_DROPPED_TOTAL, MetricType::Counter, "Client or server spans dropped: too many waiting.", ""),
        m(SPANS_OBSERVED, MetricType::Counter, "Spans the span metrics generator saw.", ""),
        m(OVERFLOW_SPANS, MetricType::Counter, "Spans counted in their service's overflow series.", ""),
        m(DROPPED_SPANS, MetricType::Counter, "Spans dropped: too many services.", ""),
        m(ACTIVE_SERIES, MetricType::Gauge, "Span metric series held in memory.", ""),
        m(ACTIVE_EDGES, MetricType::Gauge, "Service graph edges held in memory.", ""),
        m(PENDING_EDGES, MetricType::Gauge, "Client or server spans waiting for their other half.", ""),
        m(DROPPED_EDGES, MetricType::Counter, "Service graph edges dropped: too many edges.", ""),
    ];
    if jaeger {
        v.push(m(JAEGER_CALLS_TOTAL, MetricType::Counter, "Spans (OpenTelemetry Collector naming).", ""));
        v.push(m(JAEGER_DURATION, MetricType::Histogram, "Span duration (OpenTelemetry Collector naming).", "ms"));
    }
    v
}
