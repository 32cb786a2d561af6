//! RED metrics and the service graph from spans: what Tempo's metrics-generator (or the
//! OpenTelemetry Collector's spanmetrics and servicegraph connectors) would compute, so
//! Grafana's Tempo data source (service graph, RED table) and Jaeger's Monitor tab work
//! against Telltale alone.
//!
//! **In:** every [`SpanBatch`] the trace ingest accepts, through [`SpanMetrics::observe`]
//! with the current time. **Out:** [`SpanMetrics::collect`] returns a [`WriteBatch`] of
//! cumulative series stamped with the time given, like a scrape of the generator: counters
//! and histograms only grow, a series seen for the first time also gets a zero sample just
//! before (so `rate` sees its first increase, as Tempo does), and a series evicted as stale
//! gets a staleness marker. Besides the stored series it answers, from memory,
//! [`SpanMetrics::exemplars`] (for `/api/v1/query_exemplars`), [`SpanMetrics::quantile`]
//! and [`SpanMetrics::native_histograms`] (exact-to-1.1 % percentiles), and
//! [`SpanMetrics::overflowed_services`] (for a UI warning). Names, labels and units are in
//! `docs/spanmetrics.md`.
//!
//! **The one decision:** the generator is pure and synchronous. It never reads a clock, spawns
//! or locks; time arrives as a value (`now` in `observe`, `collect`), so pairing, expiry and
//! staleness are deterministic and tested without waiting. The server owns the timer (collect
//! every 15 s, Tempo's `collection_interval`) and the lock around it. Memory is bounded by
//! caps in [`Options`] (series per service and in total, services, edges, pending
//! half-edges) and by dropping series idle for `stale_after`.
#![warn(missing_docs)]

mod error;
mod graph;
mod hist;
pub mod metrics;
mod options;
mod size;

use std::collections::BTreeMap;

use telltale_model::{
    attr, Labels, LabelsBuilder, Matcher, Nanos, Sample, Span, SpanBatch, SpanKind, StatusCode, TimeRange, Timestamp,
    WriteBatch, METRIC_NAME, STALE_NAN_BITS,
};

pub use error::{Error, Result};
pub use hist::{max_relative_error, Exemplar, NativeHistogram, SCHEMA, ZERO_THRESHOLD};
pub use options::Options;

use hist::Classic;
use metrics::*;

/// The exemplars of one `_bucket` series (labels include `le`), as
/// `/api/v1/query_exemplars` lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    /// The bucket series the exemplars belong to.
    pub labels: Labels,
    /// Its exemplars (one: the last span that fell in the bucket).
    pub exemplars: Vec<Exemplar>,
}

/// The generator's own numbers, for the server's `/metrics` (also written by `collect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Spans given to `observe`.
    pub spans_observed: u64,
    /// Span-metric series held (overflow series included).
    pub active_series: usize,
    /// Service graph edges held.
    pub active_edges: usize,
    /// Half-edges waiting for their other half.
    pub pending_edges: usize,
    /// Spans dropped because `max_services` services were tracked.
    pub dropped_spans: u64,
    /// Completed edges dropped because `max_edges` edges were tracked.
    pub dropped_edges: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SpanKey {
    span_name: String,
    kind: SpanKind,
    status: StatusCode,
    instance: String,
    overflow: bool,
}

#[derive(Debug, Clone)]
struct SpanSeries {
    calls: u64,
    bytes: u64,
    seconds: Classic,
    millis: Classic,
    native: NativeHistogram,
    updated: Nanos,
    written: bool,
}

#[derive(Debug, Default)]
struct Service {
    series: BTreeMap<SpanKey, SpanSeries>,
    /// Series that are not overflow series (what the cap counts).
    normal: usize,
    overflow_spans: u64,
    updated: Nanos,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EdgeKey {
    client: String,
    server: String,
    connection_type: &'static str,
    virtual_node: &'static str,
}

#[derive(Debug, Clone)]
struct EdgeSeries {
    total: u64,
    failed: u64,
    server: Classic,
    client: Classic,
    updated: Nanos,
    written: bool,
}

#[derive(Debug, Clone, Default)]
struct Counter {
    value: u64,
    updated: Nanos,
    written: bool,
}

/// The generator: feed it spans, collect cumulative series. See the crate docs.
#[derive(Debug)]
pub struct SpanMetrics {
    opts: Options,
    latency_bounds: Box<[f64]>,
    ms_bounds: Box<[f64]>,
    graph_bounds: Box<[f64]>,
    latency_le: Vec<String>,
    ms_le: Vec<String>,
    graph_le: Vec<String>,
    services: BTreeMap<String, Service>,
    /// Non-overflow span series over all services.
    series_count: usize,
    edges: BTreeMap<EdgeKey, EdgeSeries>,
    /// `(client, server)` with one side empty.
    unpaired: BTreeMap<(String, String), Counter>,
    dropped: BTreeMap<(String, String), Counter>,
    store: graph::Store,
    events: Vec<graph::Event>,
    spans_observed: u64,
    dropped_spans: u64,
    dropped_edges: u64,
    last_collect: Option<Timestamp>,
    /// Series evicted since the last collect that had been written: staleness markers due.
    stale: Vec<Labels>,
}

/// `le` values as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes them (shortest
/// round-trip, no exponent), with `+Inf` last.
fn le_values(bounds: &[f64]) -> Vec<String> {
    bounds.iter().map(|b| format!("{b}")).chain(["+Inf".to_string()]).collect()
}

fn build(pairs: &[(&str, &str)]) -> Labels {
    let mut b = LabelsBuilder::new();
    for (n, v) in pairs {
        b.push(n, v);
    }
    b.build().expect("label names are fixed and distinct")
}

fn matches(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

fn ns_to_ms(ns: Nanos) -> Timestamp {
    ns.div_euclid(1_000_000)
}

/// One sample series of a family: its labels, value, and the exemplar of a bucket.
type Visit<'a> = &'a mut dyn FnMut(Labels, f64, Option<&Exemplar>);

impl SpanMetrics {
    /// A generator with `opts` (buckets sorted and cleaned; see [`Options::validate`]).
    pub fn new(opts: Options) -> SpanMetrics {
        let latency_bounds = options::clean_buckets(&opts.latency_buckets);
        let ms_bounds = options::clean_buckets(&opts.jaeger_buckets_ms);
        let graph_bounds = options::clean_buckets(&opts.service_graph_buckets);
        SpanMetrics {
            latency_le: le_values(&latency_bounds),
            ms_le: le_values(&ms_bounds),
            graph_le: le_values(&graph_bounds),
            latency_bounds,
            ms_bounds,
            graph_bounds,
            opts,
            services: BTreeMap::new(),
            series_count: 0,
            edges: BTreeMap::new(),
            unpaired: BTreeMap::new(),
            dropped: BTreeMap::new(),
            store: graph::Store::default(),
            events: Vec::new(),
            spans_observed: 0,
            dropped_spans: 0,
            dropped_edges: 0,
            last_collect: None,
            stale: Vec::new(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Counts every span of `batch` and pairs its client and server spans; `now` (nanoseconds
    /// since the epoch) stamps exemplars and starts the wait of new half-edges, and half-edges
    /// whose wait ended by `now` expire first.
    pub fn observe(&mut self, batch: &SpanBatch, now: Nanos) {
        let mut events = std::mem::take(&mut self.events);
        self.store.expire(now, &mut events);
        for rs in &batch.resources {
            let service = rs.service_name();
            let instance = match attr(&rs.resource, "service.instance.id") {
                Some(v) if self.opts.instance_label => v.to_string(),
                _ => String::new(),
            };
            for scope in &rs.scopes {
                for span in &scope.spans {
                    self.spans_observed += 1;
                    self.observe_span(service, &instance, span, now);
                    self.store.add(&self.opts, service, &rs.resource, span, now, &mut events);
                }
            }
        }
        self.apply(&mut events, now);
        self.events = events;
    }

    fn observe_span(&mut self, service: &str, instance: &str, span: &Span, now: Nanos) {
        if !self.services.contains_key(service) {
            if self.services.len() >= self.opts.max_services {
                self.dropped_spans += 1;
                return;
            }
            self.services.insert(service.to_string(), Service::default());
        }
        let svc = self.services.get_mut(service).expect("inserted above");
        svc.updated = now;
        let mut key = SpanKey {
            span_name: span.name.clone(),
            kind: span.kind,
            status: span.status,
            instance: instance.to_string(),
            overflow: false,
        };
        if !svc.series.contains_key(&key) {
            if svc.normal >= self.opts.max_series_per_service || self.series_count >= self.opts.max_series {
                key = SpanKey {
                    span_name: OVERFLOW_SPAN_NAME.to_string(),
                    kind: span.kind,
                    status: span.status,
                    instance: String::new(),
                    overflow: true,
                };
                svc.overflow_spans += 1;
            } else {
                svc.normal += 1;
                self.series_count += 1;
            }
        }
        let (lb, mb) = (&self.latency_bounds, &self.ms_bounds);
        let s = svc.series.entry(key).or_insert_with(|| SpanSeries {
            calls: 0,
            bytes: 0,
            seconds: Classic::new(lb),
            millis: Classic::new(mb),
            native: NativeHistogram::new(),
            updated: now,
            written: false,
        });
        let ns = span.duration();
        let secs = ns as f64 / 1e9;
        let ms = ns as f64 / 1e6;
        let ex = |value| {
            (!span.trace_id.is_zero()).then_some(Exemplar {
                trace_id: span.trace_id,
                span_id: span.span_id,
                value,
                timestamp: ns_to_ms(now),
            })
        };
        s.calls += 1;
        s.bytes += size::otlp_size(span) as u64;
        s.seconds.observe(lb, secs, ex(secs));
        if self.opts.jaeger_names {
            s.millis.observe(mb, ms, ex(ms));
        }
        s.native.observe(secs);
        s.updated = now;
    }

    fn apply(&mut self, events: &mut Vec<graph::Event>, now: Nanos) {
        let max = self.opts.max_edges;
        for ev in events.drain(..) {
            match ev {
                graph::Event::Complete(e) => {
                    let key = EdgeKey {
                        client: e.client,
                        server: e.server,
                        connection_type: e.connection_type,
                        virtual_node: if self.opts.virtual_node_label { e.virtual_node } else { "" },
                    };
                    if !self.edges.contains_key(&key) && self.edges.len() >= max {
                        self.dropped_edges += 1;
                        continue;
                    }
                    let gb = &self.graph_bounds;
                    let s = self.edges.entry(key).or_insert_with(|| EdgeSeries {
                        total: 0,
                        failed: 0,
                        server: Classic::new(gb),
                        client: Classic::new(gb),
                        updated: now,
                        written: false,
                    });
                    let ex = |value| {
                        (!e.trace_id.is_zero()).then_some(Exemplar {
                            trace_id: e.trace_id,
                            span_id: e.span_id,
                            value,
                            timestamp: ns_to_ms(now),
                        })
                    };
                    s.total += 1;
                    s.failed += u64::from(e.failed);
                    s.server.observe(gb, e.server_seconds, ex(e.server_seconds));
                    s.client.observe(gb, e.client_seconds, ex(e.client_seconds));
                    s.updated = now;
                }
                graph::Event::Unpaired { client, server } => bump(&mut self.unpaired, (client, server), max, now),
                graph::Event::Dropped { client, server } => bump(&mut self.dropped, (client, server), max, now),
            }
        }
    }

    /// Expires half-edges due by `now` (milliseconds), drops series idle for `stale_after`,
    /// and returns every series at `now`: the span metrics (Tempo's and, when enabled, the
    /// collector's names), the service graph, and the generator's own counters.
    pub fn collect(&mut self, now: Timestamp) -> WriteBatch {
        let now_ns = now.saturating_mul(1_000_000);
        let mut events = std::mem::take(&mut self.events);
        self.store.expire(now_ns, &mut events);
        self.apply(&mut events, now_ns);
        self.events = events;
        self.evict(now_ns);

        let mut out = WriteBatch::new();
        out.metadata = metrics::metadata(self.opts.jaeger_names);
        let zero_at = match self.last_collect {
            Some(t) if t < now => t,
            // Tempo's choice for the first collect: the end of the previous minute, less 1 s.
            _ => now - now.rem_euclid(60_000) - 1000,
        };
        let stale = Sample::new(now, f64::from_bits(STALE_NAN_BITS));
        for l in self.stale.drain(..) {
            out.push_sample(l, stale);
        }
        let emit = |written: bool| {
            move |out: &mut WriteBatch, l: Labels, v: f64| {
                if written {
                    out.push_sample(l, Sample::new(now, v));
                } else {
                    out.push(l, &[Sample::new(zero_at, 0.0), Sample::new(now, v)]);
                }
            }
        };
        for (service, svc) in &self.services {
            for (key, s) in &svc.series {
                let push = emit(s.written);
                self.visit_span_series(service, key, s, &mut |l, v, _| push(&mut out, l, v));
            }
            if svc.overflow_spans > 0 {
                out.push_sample(
                    build(&[(METRIC_NAME, OVERFLOW_SPANS), ("service", service)]),
                    Sample::new(now, svc.overflow_spans as f64),
                );
            }
        }
        for (key, s) in &self.edges {
            let push = emit(s.written);
            self.visit_edge_series(key, s, &mut |l, v, _| push(&mut out, l, v));
        }
        for (name, map) in [(GRAPH_UNPAIRED_TOTAL, &self.unpaired), (GRAPH_DROPPED_TOTAL, &self.dropped)] {
            for ((client, server), c) in map {
                emit(c.written)(
                    &mut out,
                    build(&[(METRIC_NAME, name), ("client", client), ("server", server)]),
                    c.value as f64,
                );
            }
        }
        let stats = self.stats();
        let own = [
            (SPANS_OBSERVED, stats.spans_observed as f64),
            (DROPPED_SPANS, stats.dropped_spans as f64),
            (ACTIVE_SERIES, stats.active_series as f64),
            (ACTIVE_EDGES, stats.active_edges as f64),
            (PENDING_EDGES, stats.pending_edges as f64),
            (DROPPED_EDGES, stats.dropped_edges as f64),
        ];
        for (name, v) in own {
            out.push_sample(build(&[(METRIC_NAME, name)]), Sample::new(now, v));
        }

        for svc in self.services.values_mut() {
            svc.series.values_mut().for_each(|s| s.written = true);
        }
        self.edges.values_mut().for_each(|s| s.written = true);
        self.unpaired.values_mut().chain(self.dropped.values_mut()).for_each(|c| c.written = true);
        self.last_collect = Some(now);
        out
    }

    /// Drops every series not updated since `now - stale_after`, queueing staleness markers
    /// for those already written.
    fn evict(&mut self, now: Nanos) {
        let cutoff = now.saturating_sub(self.opts.stale_after.as_nanos().min(i64::MAX as u128) as i64);
        let mut stale = std::mem::take(&mut self.stale);
        let services = std::mem::take(&mut self.services);
        for (name, mut svc) in services {
            let old: Vec<SpanKey> =
                svc.series.iter().filter(|(_, s)| s.updated < cutoff).map(|(k, _)| k.clone()).collect();
            for k in old {
                let s = svc.series.remove(&k).expect("listed above");
                if !k.overflow {
                    svc.normal -= 1;
                    self.series_count -= 1;
                }
                if s.written {
                    self.visit_span_series(&name, &k, &s, &mut |l, _, _| stale.push(l));
                }
            }
            if svc.series.is_empty() && svc.updated < cutoff {
                if svc.overflow_spans > 0 {
                    stale.push(build(&[(METRIC_NAME, OVERFLOW_SPANS), ("service", &name)]));
                }
                continue;
            }
            self.services.insert(name, svc);
        }
        let edges = std::mem::take(&mut self.edges);
        for (k, s) in edges {
            if s.updated >= cutoff {
                self.edges.insert(k, s);
            } else if s.written {
                self.visit_edge_series(&k, &s, &mut |l, _, _| stale.push(l));
            }
        }
        for (name, map) in [(GRAPH_UNPAIRED_TOTAL, &mut self.unpaired), (GRAPH_DROPPED_TOTAL, &mut self.dropped)] {
            map.retain(|(client, server), c| {
                let keep = c.updated >= cutoff;
                if !keep && c.written {
                    stale.push(build(&[(METRIC_NAME, name), ("client", client), ("server", server)]));
                }
                keep
            });
        }
        self.stale = stale;
    }

    fn span_labels(&self, name: &str, service: &str, key: &SpanKey, le: &str) -> Labels {
        let service_label = if name.starts_with("traces_span_metrics") { "service_name" } else { "service" };
        build(&[
            (METRIC_NAME, name),
            (service_label, service),
            ("span_name", &key.span_name),
            ("span_kind", key.kind.otlp_name()),
            ("status_code", key.status.otlp_name()),
            ("instance", &key.instance),
            (OVERFLOW_LABEL, if key.overflow { "true" } else { "" }),
            ("le", le),
        ])
    }

    /// Calls `f` for every sample series of one span-metric series.
    fn visit_span_series(&self, service: &str, key: &SpanKey, s: &SpanSeries, f: Visit<'_>) {
        f(self.span_labels(CALLS_TOTAL, service, key, ""), s.calls as f64, None);
        self.visit_histogram(LATENCY, &self.latency_le, &s.seconds, &|n, le| self.span_labels(n, service, key, le), f);
        f(self.span_labels(SIZE_TOTAL, service, key, ""), s.bytes as f64, None);
        if self.opts.jaeger_names {
            f(self.span_labels(JAEGER_CALLS_TOTAL, service, key, ""), s.calls as f64, None);
            self.visit_histogram(
                JAEGER_DURATION,
                &self.ms_le,
                &s.millis,
                &|n, le| self.span_labels(n, service, key, le),
                f,
            );
        }
    }

    fn edge_labels(name: &str, key: &EdgeKey, le: &str) -> Labels {
        build(&[
            (METRIC_NAME, name),
            ("client", &key.client),
            ("server", &key.server),
            ("connection_type", key.connection_type),
            ("virtual_node", key.virtual_node),
            ("le", le),
        ])
    }

    fn visit_edge_series(&self, key: &EdgeKey, s: &EdgeSeries, f: Visit<'_>) {
        f(Self::edge_labels(GRAPH_REQUEST_TOTAL, key, ""), s.total as f64, None);
        f(Self::edge_labels(GRAPH_REQUEST_FAILED_TOTAL, key, ""), s.failed as f64, None);
        let labels = |n: &str, le: &str| Self::edge_labels(n, key, le);
        self.visit_histogram(GRAPH_SERVER_SECONDS, &self.graph_le, &s.server, &labels, f);
        self.visit_histogram(GRAPH_CLIENT_SECONDS, &self.graph_le, &s.client, &labels, f);
    }

    /// `family_bucket{le}` (cumulative, with the bucket's exemplar), `_sum`, `_count`.
    fn visit_histogram(
        &self,
        family: &str,
        le: &[String],
        h: &Classic,
        labels: &dyn Fn(&str, &str) -> Labels,
        f: Visit<'_>,
    ) {
        let bucket = format!("{family}_bucket");
        for ((le, c), ex) in le.iter().zip(h.cumulative()).zip(h.exemplars()) {
            f(labels(&bucket, le), c as f64, ex.as_ref());
        }
        f(labels(&format!("{family}_sum"), ""), h.sum, None);
        f(labels(&format!("{family}_count"), ""), h.count as f64, None);
    }

    /// The last exemplar of every `_bucket` series matching all `matchers` (against the
    /// bucket series' labels, `__name__` and `le` included) observed within `range`
    /// (milliseconds).
    pub fn exemplars(&self, matchers: &[Matcher], range: TimeRange) -> Vec<SeriesExemplars> {
        let mut out = Vec::new();
        let mut f = |l: Labels, _: f64, ex: Option<&Exemplar>| {
            if let Some(ex) = ex.filter(|ex| range.contains(ex.timestamp)) {
                if matches(&l, matchers) {
                    out.push(SeriesExemplars { labels: l, exemplars: vec![*ex] });
                }
            }
        };
        for (service, svc) in &self.services {
            for (key, s) in &svc.series {
                self.visit_span_series(service, key, s, &mut f);
            }
        }
        for (key, s) in &self.edges {
            self.visit_edge_series(key, s, &mut f);
        }
        out
    }

    /// The exponential histogram of every `traces_spanmetrics_latency` series matching all
    /// `matchers` (against `{__name__="traces_spanmetrics_latency", service, span_name,
    /// span_kind, status_code, instance}`), with those labels.
    pub fn native_histograms(&self, matchers: &[Matcher]) -> Vec<(Labels, NativeHistogram)> {
        let mut out = Vec::new();
        for (service, svc) in &self.services {
            for (key, s) in &svc.series {
                let l = self.span_labels(LATENCY, service, key, "");
                if matches(&l, matchers) {
                    out.push((l, s.native.clone()));
                }
            }
        }
        out
    }

    /// The `q`-quantile (0 ≤ q ≤ 1, nearest rank) in seconds of the span durations of every
    /// latency series matching `matchers` (as in [`SpanMetrics::native_histograms`]), within
    /// [`max_relative_error`] (1.08 %) of the exact value. `None` when nothing matches.
    pub fn quantile(&self, matchers: &[Matcher], q: f64) -> Option<f64> {
        let mut merged = NativeHistogram::new();
        for (service, svc) in &self.services {
            for (key, s) in &svc.series {
                if matches(&self.span_labels(LATENCY, service, key, ""), matchers) {
                    merged.merge(&s.native);
                }
            }
        }
        merged.quantile(q)
    }

    /// Services whose spans went to their overflow series, with how many spans did, by name.
    pub fn overflowed_services(&self) -> Vec<(String, u64)> {
        self.services.iter().filter(|(_, s)| s.overflow_spans > 0).map(|(n, s)| (n.clone(), s.overflow_spans)).collect()
    }

    /// The generator's own numbers.
    pub fn stats(&self) -> Stats {
        Stats {
            spans_observed: self.spans_observed,
            active_series: self.services.values().map(|s| s.series.len()).sum(),
            active_edges: self.edges.len(),
            pending_edges: self.store.len(),
            dropped_spans: self.dropped_spans,
            dropped_edges: self.dropped_edges,
        }
    }
}

fn bump(map: &mut BTreeMap<(String, String), Counter>, key: (String, String), max: usize, now: Nanos) {
    if !map.contains_key(&key) && map.len() >= max {
        return;
    }
    let c = map.entry(key).or_default();
    c.value += 1;
    c.updated = now;
}
