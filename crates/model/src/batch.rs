use std::ops::Range;

use crate::{Labels, Timestamp};

/// The bit pattern of Prometheus's staleness marker, a NaN that means "this series ended".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// One float sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub t: Timestamp,
    /// The value; may be NaN, ±Inf or the stale marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: Timestamp, v: f64) -> Self {
        Self { t, v }
    }

    /// Same time and the same bits (so NaN equals NaN and the stale marker is kept apart).
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// Prometheus's metric types, as carried by remote write metadata and exposition `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// No type given.
    #[default]
    Unknown,
    /// A monotonic counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// OpenMetrics gauge histogram.
    GaugeHistogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// OpenMetrics info metric.
    Info,
    /// OpenMetrics state set.
    StateSet,
}

impl MetricType {
    /// The lowercase name used by Prometheus's APIs (`counter`, `gauge`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// Type, help and unit of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricMetadata {
    /// The family name (`http_requests_total`, or `http_request_duration_seconds` for a histogram).
    pub metric_family: String,
    /// Its type.
    pub kind: MetricType,
    /// The help text.
    pub help: String,
    /// The unit, if given.
    pub unit: String,
}

/// What a decoder produces and a writer consumes: series with their samples, plus metadata.
///
/// Samples of all series live in one vector, so a batch of N series costs N label
/// allocations and no per-series sample vector.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    series: Vec<(Labels, Range<u32>)>,
    samples: Vec<Sample>,
    /// Metric family metadata carried by the request, if any.
    pub metadata: Vec<MetricMetadata>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series with its samples (in the order given).
    pub fn push(&mut self, labels: Labels, samples: &[Sample]) {
        let start = self.samples.len() as u32;
        self.samples.extend_from_slice(samples);
        self.series.push((labels, start..self.samples.len() as u32));
    }

    /// Adds a series with a single sample.
    pub fn push_sample(&mut self, labels: Labels, sample: Sample) {
        self.push(labels, std::slice::from_ref(&sample));
    }

    /// Each series with its samples, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Labels, &[Sample])> + '_ {
        self.series.iter().map(|(l, r)| (l, &self.samples[r.start as usize..r.end as usize]))
    }

    /// Number of series entries (a series pushed twice counts twice).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Whether the batch holds no series and no metadata.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.metadata.is_empty()
    }

    /// Moves every series of `other` into this batch.
    pub fn extend(&mut self, other: WriteBatch) {
        for (l, s) in other.series.into_iter() {
            let samples = &other.samples[s.start as usize..s.end as usize];
            self.push(l, samples);
        }
        self.metadata.extend(other.metadata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_series_and_samples_apart() {
        let mut b = WriteBatch::new();
        let a = Labels::from_pairs([("__name__", "a")]).unwrap();
        b.push(a.clone(), &[Sample::new(1, 1.0), Sample::new(2, 2.0)]);
        b.push_sample(a.clone(), Sample::new(3, 3.0));
        assert_eq!(b.series_count(), 2);
        assert_eq!(b.sample_count(), 3);
        let v: Vec<_> = b.iter().map(|(_, s)| s.len()).collect();
        assert_eq!(v, [2, 1]);
    }
}
