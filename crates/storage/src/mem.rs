use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use telltale_model::{Labels, Matcher, Sample, TimeRange, WriteBatch};

use crate::{matches_all, Maintenance, MetricReader, MetricWriter, Result, Series, Stat, WriteStats};
use telltale_model::MetricType;

/// An in-memory store with the reference semantics: any order accepted, same timestamp
/// and same value ignored, same timestamp and another value refused. For tests and for
/// other crates that need a store without a disk.
#[derive(Debug, Default)]
pub struct MemStore {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetricWriter for MemStore {
    fn write(&self, batch: &WriteBatch) -> Result<WriteStats> {
        let mut all = self.series.write().expect("memstore lock poisoned");
        let mut stats = WriteStats::default();
        for (labels, samples) in batch.iter() {
            let stored = match all.get_mut(labels) {
                Some(s) => s,
                None => {
                    stats.new_series += 1;
                    all.entry(labels.clone()).or_default()
                }
            };
            for s in samples {
                match stored.binary_search_by_key(&s.t, |x| x.t) {
                    Ok(i) if stored[i].v.to_bits() == s.v.to_bits() => {}
                    Ok(_) => {
                        stats.rejected.duplicate_timestamp += 1;
                        stats.rejected.first.get_or_insert_with(|| format!("{labels} at {}", s.t));
                    }
                    Err(i) => {
                        stored.insert(i, *s);
                        stats.samples += 1;
                    }
                }
            }
        }
        all.retain(|_, s| !s.is_empty());
        Ok(stats)
    }
}

impl MemStore {
    fn matching<T>(
        &self,
        range: TimeRange,
        matchers: &[Matcher],
        f: impl Fn(&Labels, &[Sample]) -> Option<T>,
    ) -> Vec<T> {
        let all = self.series.read().expect("memstore lock poisoned");
        all.iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|x| x.t < range.start);
                let hi = s.partition_point(|x| x.t <= range.end);
                (lo < hi).then(|| f(l, &s[lo..hi])).flatten()
            })
            .collect()
    }
}

impl MetricReader for MemStore {
    fn select(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Series>> {
        Ok(self.matching(range, matchers, |l, s| Some(Series { labels: l.clone(), samples: s.to_vec() })))
    }

    fn series(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        Ok(self.matching(range, matchers, |l, _| Some(l.clone())))
    }

    fn label_names(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for l in self.series(range, matchers)? {
            names.extend(l.iter().map(|(n, _)| n.to_string()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<String>> {
        let values: BTreeSet<String> =
            self.matching(range, matchers, |l, _| l.get(name).map(str::to_string)).into_iter().collect();
        Ok(values.into_iter().collect())
    }
}

impl Maintenance for MemStore {
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Vec<Stat> {
        let all = self.series.read().expect("memstore lock poisoned");
        vec![Stat {
            name: "telltale_storage_series",
            help: "Series held by the store.",
            kind: MetricType::Gauge,
            value: all.len() as f64,
        }]
    }

    fn problems(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    crate::storage_conformance!(Box::new(crate::MemStore::new()));
}
