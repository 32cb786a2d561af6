//! Appends samples to the round's batch with the base labels (`job`, `instance`).

use telltale_model::{LabelsBuilder, MetricMetadata, MetricType, Sample, Timestamp, WriteBatch, METRIC_NAME};

/// The current family and where its samples go.
pub(crate) struct Out<'a> {
    batch: &'a mut WriteBatch,
    base: &'a [(String, String)],
    t: Timestamp,
    meta: bool,
    name: String,
}

impl<'a> Out<'a> {
    pub(crate) fn new(batch: &'a mut WriteBatch, base: &'a [(String, String)], t: Timestamp, meta: bool) -> Self {
        Self { batch, base, t, meta, name: String::new() }
    }

    /// Starts family `name`; its metadata is recorded on rounds that carry metadata.
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        self.name.clear();
        self.name.push_str(name);
        if self.meta {
            self.batch.metadata.push(MetricMetadata {
                metric_family: name.to_string(),
                kind,
                help: help.to_string(),
                unit: String::new(),
            });
        }
    }

    /// A sample of the current family with `labels` (empty values are dropped, as Prometheus does).
    pub(crate) fn put(&mut self, labels: &[(&str, &str)], v: f64) {
        let mut b = LabelsBuilder::new();
        b.push(METRIC_NAME, &self.name);
        for (k, v) in self.base {
            b.push(k, v);
        }
        for (k, v) in labels {
            b.set(k, v);
        }
        if let Ok(l) = b.build() {
            self.batch.push_sample(l, Sample::new(self.t, v));
        }
    }

    /// Every sample of an already decoded batch (a textfile), with labels made by `labels`
    /// from the decoded ones and the base labels; its metadata on rounds that carry metadata.
    pub(crate) fn add_decoded(
        &mut self,
        decoded: WriteBatch,
        labels: impl Fn(&telltale_model::Labels, &[(String, String)]) -> Option<telltale_model::Labels>,
    ) {
        for (l, samples) in decoded.iter() {
            let Some(l) = labels(l, self.base) else { continue };
            for s in samples {
                self.batch.push_sample(l.clone(), Sample::new(self.t, s.v));
            }
        }
        if self.meta {
            self.batch.metadata.extend(decoded.metadata);
        }
    }

    /// A family with a single unlabelled sample.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, help, MetricType::Gauge);
        self.put(&[], v);
    }

    /// A counter family with a single unlabelled sample.
    pub(crate) fn counter(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, help, MetricType::Counter);
        self.put(&[], v);
    }

    /// An untyped family with a single unlabelled sample (node_exporter's vmstat, netstat).
    pub(crate) fn untyped(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, help, MetricType::Unknown);
        self.put(&[], v);
    }
}
