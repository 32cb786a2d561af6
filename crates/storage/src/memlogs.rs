use std::collections::BTreeMap;
use std::sync::RwLock;

use telltale_model::{Labels, LogBatch, LogEntry, Matcher, MetricType, TimeRange};

use crate::logs::{Direction, LogReader, LogRow, LogSelect, LogStats, LogWriteStats, LogWriter, Visit};
use crate::{matches_all, Maintenance, Result, Stat};

/// An in-memory log store with the reference semantics of the log traits; for tests and for
/// crates that need a log store without a disk.
#[derive(Debug, Default)]
pub struct MemLogStore {
    streams: RwLock<BTreeMap<Labels, Vec<LogEntry>>>,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LogWriter for MemLogStore {
    fn write_logs(&self, batch: &LogBatch) -> Result<LogWriteStats> {
        let mut all = self.streams.write().unwrap_or_else(|p| p.into_inner());
        let mut stats = LogWriteStats::default();
        for (labels, entries) in batch.iter() {
            if entries.is_empty() {
                continue;
            }
            let stored = match all.get_mut(labels) {
                Some(s) => s,
                None => {
                    stats.new_streams += 1;
                    all.entry(labels.clone()).or_default()
                }
            };
            for e in entries {
                // Entries with equal timestamps keep their write order: insert after them.
                let lo = stored.partition_point(|x| x.ts < e.ts);
                let hi = stored.partition_point(|x| x.ts <= e.ts);
                if stored[lo..hi].iter().any(|x| x.line == e.line) {
                    stats.duplicates += 1;
                    continue;
                }
                stored.insert(hi, e.clone());
                stats.entries += 1;
                stats.bytes += e.line.len();
            }
        }
        Ok(stats)
    }
}

impl LogReader for MemLogStore {
    fn select_logs(&self, q: &LogSelect<'_>, visit: &mut dyn FnMut(&Labels, &LogRow<'_>) -> Visit) -> Result<()> {
        let all = self.streams.read().unwrap_or_else(|p| p.into_inner());
        for (labels, entries) in all.iter().filter(|(l, _)| matches_all(l, q.matchers)) {
            let lo = entries.partition_point(|e| e.ts < q.range.start);
            let hi = entries.partition_point(|e| e.ts <= q.range.end);
            let rows = &entries[lo..hi.max(lo)];
            let mut each = |e: &LogEntry| {
                if !q.filters.iter().all(|f| f.matches(&e.line)) {
                    return Visit::Continue;
                }
                let meta: Vec<(&str, &str)> = e.metadata.iter().collect();
                visit(labels, &LogRow { ts: e.ts, line: &e.line, metadata: &meta, metadata_id: 0 })
            };
            let mut outcome = Visit::Continue;
            match q.direction {
                Direction::Forward => {
                    for e in rows {
                        outcome = each(e);
                        if outcome != Visit::Continue {
                            break;
                        }
                    }
                }
                Direction::Backward => {
                    for e in rows.iter().rev() {
                        outcome = each(e);
                        if outcome != Visit::Continue {
                            break;
                        }
                    }
                }
            }
            if outcome == Visit::Stop {
                break;
            }
        }
        Ok(())
    }

    fn log_streams(&self, range: TimeRange, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        let all = self.streams.read().unwrap_or_else(|p| p.into_inner());
        Ok(all
            .iter()
            .filter(|(l, e)| matches_all(l, matchers) && e.iter().any(|e| range.contains(e.ts)))
            .map(|(l, _)| l.clone())
            .collect())
    }

    fn log_stats(&self, range: TimeRange, matchers: &[Matcher]) -> Result<LogStats> {
        let all = self.streams.read().unwrap_or_else(|p| p.into_inner());
        let mut s = LogStats::default();
        for (_, entries) in all.iter().filter(|(l, _)| matches_all(l, matchers)) {
            let inside: Vec<&LogEntry> = entries.iter().filter(|e| range.contains(e.ts)).collect();
            if !inside.is_empty() {
                s.streams += 1;
                s.chunks += 1;
                s.entries += inside.len() as u64;
                s.bytes += inside.iter().map(|e| e.line.len() as u64).sum::<u64>();
            }
        }
        Ok(s)
    }
}

impl Maintenance for MemLogStore {
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Vec<Stat> {
        let all = self.streams.read().unwrap_or_else(|p| p.into_inner());
        vec![Stat {
            name: "telltale_logs_streams",
            help: "Log streams held by the store.",
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
    crate::log_conformance!(Box::new(crate::MemLogStore::new()));
}
