//! `spanmetrics:` in the config file: names, buckets, pairing and caps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the generator names, buckets and bounds what it writes. Defaults are Tempo's (and the
/// OpenTelemetry Collector's for the Jaeger names) unless a field says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Also write the OpenTelemetry Collector spanmetrics connector's names
    /// (`traces_span_metrics_calls_total`, `traces_span_metrics_duration_milliseconds_*`) that
    /// Jaeger's Monitor tab queries.
    pub jaeger_names: bool,
    /// Upper bounds, in seconds, of `traces_spanmetrics_latency` (Tempo's
    /// `histogram_buckets`: 0.002 doubling 14 times, to 16.384).
    pub latency_buckets: Vec<f64>,
    /// Upper bounds, in milliseconds, of `traces_span_metrics_duration_milliseconds` (the
    /// collector's defaults: 2 ms to 15 s).
    pub jaeger_buckets_ms: Vec<f64>,
    /// Upper bounds, in seconds, of the service graph's latency histograms (Tempo's: 0.1
    /// doubling 8 times, to 12.8).
    pub service_graph_buckets: Vec<f64>,
    /// Add an `instance` label from the resource's `service.instance.id` when it has one
    /// (Tempo's `enable_instance_label`).
    pub instance_label: bool,
    /// Span-metric series (name, kind, status, instance) one service may have; the spans of
    /// further combinations go to the service's overflow series (`span_name="__overflow__"`).
    pub max_series_per_service: usize,
    /// Span-metric series over all services; past it, new combinations overflow as above.
    pub max_series: usize,
    /// Services tracked; the spans of further services are dropped and counted in
    /// `telltale_spanmetrics_dropped_spans_total`.
    pub max_services: usize,
    /// Service graph edges (client, server, connection type) tracked; further edges are
    /// dropped and counted in `telltale_servicegraph_dropped_edges_total`.
    pub max_edges: usize,
    /// How long a client or server span waits for its other half (Tempo's `wait`).
    #[serde(with = "telltale_model::units::duration")]
    pub wait: Duration,
    /// Half-edges waiting at once (Tempo's `max_items`); further spans are dropped and
    /// counted in `traces_service_graph_dropped_spans_total`.
    pub max_pending_edges: usize,
    /// Span attributes naming the peer of an unpaired span, first found wins (Tempo's
    /// `peer_attributes`).
    pub peer_attributes: Vec<String>,
    /// Attributes that make a client span a database call and name the database, first found
    /// wins (Tempo's `database_name_attributes`).
    pub database_name_attributes: Vec<String>,
    /// Label virtual-node edges with `virtual_node="client"` or `"server"` (Tempo's
    /// `enable_virtual_node_label`).
    pub virtual_node_label: bool,
    /// A series not updated for this long is dropped (and marked stale) at the next collect
    /// (Tempo's registry `stale_duration`).
    #[serde(with = "telltale_model::units::duration")]
    pub stale_after: Duration,
}

/// 0.002 s doubling 14 times: Prometheus's `ExponentialBuckets(0.002, 2, 14)`.
fn tempo_latency_buckets() -> Vec<f64> {
    (0..14).map(|i| 0.002 * f64::from(1u32 << i)).collect()
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jaeger_names: true,
            latency_buckets: tempo_latency_buckets(),
            jaeger_buckets_ms: vec![
                2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10_000.0,
                15_000.0,
            ],
            service_graph_buckets: (0..8).map(|i| 0.1 * f64::from(1u32 << i)).collect(),
            instance_label: true,
            max_series_per_service: 1000,
            max_series: 50_000,
            max_services: 1000,
            max_edges: 10_000,
            wait: Duration::from_secs(10),
            max_pending_edges: 10_000,
            peer_attributes: ["peer.service", "db.name", "db.system", "db.system.name"].map(String::from).to_vec(),
            database_name_attributes: ["db.namespace", "db.name", "db.system", "db.system.name"]
                .map(String::from)
                .to_vec(),
            virtual_node_label: false,
            stale_after: Duration::from_secs(15 * 60),
        }
    }
}

impl Options {
    /// Checks the buckets (finite, strictly increasing, not empty) and the caps (not zero).
    /// [`crate::SpanMetrics::new`] sorts and cleans buckets anyway, as Tempo does; the
    /// config loader calls this to report a mistake instead.
    pub fn validate(&self) -> Result<()> {
        let buckets = [
            ("latency_buckets", &self.latency_buckets),
            ("jaeger_buckets_ms", &self.jaeger_buckets_ms),
            ("service_graph_buckets", &self.service_graph_buckets),
        ];
        for (field, b) in buckets {
            if b.is_empty() {
                return Err(Error::InvalidOptions { field, reason: "no buckets".into() });
            }
            if let Some(v) = b.iter().find(|v| !v.is_finite()) {
                return Err(Error::InvalidOptions { field, reason: format!("bucket {v} is not finite") });
            }
            if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
                return Err(Error::InvalidOptions {
                    field,
                    reason: format!("buckets must increase ({} then {})", w[0], w[1]),
                });
            }
        }
        let caps = [
            ("max_series_per_service", self.max_series_per_service),
            ("max_series", self.max_series),
            ("max_services", self.max_services),
            ("max_edges", self.max_edges),
            ("max_pending_edges", self.max_pending_edges),
        ];
        for (field, v) in caps {
            if v == 0 {
                return Err(Error::InvalidOptions { field, reason: "must be at least 1".into() });
            }
        }
        Ok(())
    }
}

/// Sorted, finite and unique: what the histograms need whatever the config said.
pub(crate) fn clean_buckets(b: &[f64]) -> Box<[f64]> {
    let mut v: Vec<f64> = b.iter().copied().filter(|v| v.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tempos() {
        let o = Options::default();
        o.validate().unwrap();
        assert_eq!(o.latency_buckets.len(), 14);
        assert_eq!(o.latency_buckets[13], 16.384);
        assert_eq!(*o.service_graph_buckets.last().unwrap(), 12.8);
    }

    #[test]
    fn parses_and_rejects() {
        let o: Options = serde_json::from_str(r#"{"wait": "30s", "max_series_per_service": 5}"#).unwrap();
        assert_eq!(o.wait, Duration::from_secs(30));
        assert_eq!(o.max_series_per_service, 5);
        assert!(serde_json::from_str::<Options>(r#"{"nope": 1}"#).is_err());
        let bad = Options { latency_buckets: vec![1.0, 1.0], ..Options::default() };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "invalid spanmetrics option latency_buckets: buckets must increase (1 then 1)"
        );
        assert_eq!(&*clean_buckets(&[2.0, f64::NAN, 1.0, 2.0]), [1.0, 2.0]);
    }
}
