//! What `/api/v1/metadata` answers: the type, help and unit of each metric family, as the
//! write paths last saw them (remote write metadata, exposition `# TYPE`/`# HELP`, OTLP).
//!
//! Kept in memory only, like Prometheus's own (which comes from its scrape cache): metadata
//! is descriptive, resent by every client, and not worth a durable format. Bounded so a
//! client sending random names cannot grow it without limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use telltale_model::{MetricMetadata, MetricType};

/// Most metric families remembered; later new ones are ignored until restart.
const MAX_FAMILIES: usize = 100_000;
/// Most distinct (type, help, unit) entries kept per family (different clients may disagree).
const MAX_PER_FAMILY: usize = 10;

/// One family's description as Prometheus's API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub(crate) struct Entry {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) help: String,
    pub(crate) unit: String,
}

/// Metric family name to its distinct descriptions, newest last.
#[derive(Debug, Default)]
pub(crate) struct MetadataRegistry {
    families: RwLock<HashMap<String, Vec<Entry>>>,
}

impl MetadataRegistry {
    /// Remembers every description in `metadata`.
    pub(crate) fn record(&self, metadata: &[MetricMetadata]) {
        if metadata.is_empty() {
            return;
        }
        let mut families = self.families.write().unwrap_or_else(|p| p.into_inner());
        for m in metadata {
            // A family sent with only a name says nothing Prometheus would show.
            if m.kind == MetricType::Unknown && m.help.is_empty() && m.unit.is_empty() {
                continue;
            }
            let entry = Entry { kind: m.kind.as_str(), help: m.help.clone(), unit: m.unit.clone() };
            let full = families.len() >= MAX_FAMILIES;
            match families.get_mut(&m.metric_family) {
                Some(list) if !list.contains(&entry) => {
                    if list.len() >= MAX_PER_FAMILY {
                        list.remove(0);
                    }
                    list.push(entry);
                }
                Some(_) => {}
                None if !full => {
                    families.insert(m.metric_family.clone(), vec![entry]);
                }
                None => {}
            }
        }
    }

    /// Families (all, or only `metric`), sorted by name; `limit` families at most and
    /// `limit_per_metric` entries per family (0: no limit), as Prometheus's parameters.
    pub(crate) fn query(
        &self,
        metric: Option<&str>,
        limit: usize,
        limit_per_metric: usize,
    ) -> BTreeMap<String, Vec<Entry>> {
        let families = self.families.read().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        let selected: Box<dyn Iterator<Item = (&String, &Vec<Entry>)>> = match metric {
            Some(name) => Box::new(families.get_key_value(name).into_iter()),
            None => Box::new(families.iter()),
        };
        for (name, list) in selected {
            let mut list = list.clone();
            if limit_per_metric > 0 {
                list.truncate(limit_per_metric);
            }
            out.insert(name.clone(), list);
        }
        if limit > 0 {
            out = out.into_iter().take(limit).collect();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, kind: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata { metric_family: name.into(), kind, help: help.into(), unit: String::new() }
    }

    #[test]
    fn records_distinct_entries_and_answers_with_limits() {
        let r = MetadataRegistry::default();
        r.record(&[meta("up", MetricType::Gauge, "1 if up"), meta("up", MetricType::Gauge, "1 if up")]);
        r.record(&[meta("http_requests_total", MetricType::Counter, "Requests.")]);
        r.record(&[meta("http_requests_total", MetricType::Counter, "All requests.")]);
        r.record(&[meta("nothing", MetricType::Unknown, "")]);
        let all = r.query(None, 0, 0);
        assert_eq!(all.keys().collect::<Vec<_>>(), ["http_requests_total", "up"]);
        assert_eq!(all["http_requests_total"].len(), 2);
        assert_eq!(all["up"], [Entry { kind: "gauge", help: "1 if up".into(), unit: String::new() }]);
        assert_eq!(r.query(None, 1, 0).len(), 1);
        assert_eq!(r.query(None, 0, 1)["http_requests_total"].len(), 1);
        assert_eq!(r.query(Some("up"), 0, 0).len(), 1);
        assert!(r.query(Some("absent"), 0, 0).is_empty());
    }
}
