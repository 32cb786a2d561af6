//! Staleness markers for series that stop appearing, as Prometheus's scrape loop writes them.
//!
//! Prometheus ends a series by appending a sample whose value has the bit pattern
//! [`telltale_model::STALE_NAN_BITS`]; PromQL then stops returning the series at once
//! instead of for the whole lookback window. Both the host collectors (a process leaves the
//! top-N, a disk is unplugged) and scrapes (a series vanishes, a scrape fails, a target goes
//! away) use this tracker.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use telltale_model::{Labels, Sample, Timestamp, WriteBatch, STALE_NAN_BITS};

/// The series of the previous output, to mark the ones that disappear.
///
/// Keyed by a 64-bit hash of the encoded labels; the two maps are swapped each round, so a
/// steady set of series costs no allocation.
#[derive(Debug, Default)]
pub struct Staleness {
    prev: HashMap<u64, Labels>,
    next: HashMap<u64, Labels>,
    hasher: RandomState,
}

impl Staleness {
    /// A tracker that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the series in `batch` as the current set and appends a stale marker at `t`
    /// for every series of the previous set that is not in it. Series whose only sample has
    /// an explicit timestamp other than `t` are not tracked (Prometheus does not mark those).
    /// Returns how many series are new since the previous call.
    pub fn update(&mut self, batch: &mut WriteBatch, t: Timestamp) -> usize {
        let mut added = 0;
        for (labels, samples) in batch.iter() {
            if !samples.iter().any(|s| s.t == t) {
                continue;
            }
            let h = self.hasher.hash_one(labels.as_bytes());
            match self.prev.remove(&h) {
                Some(l) => {
                    self.next.insert(h, l);
                }
                None => {
                    if let std::collections::hash_map::Entry::Vacant(e) = self.next.entry(h) {
                        added += 1;
                        e.insert(labels.clone());
                    }
                }
            }
        }
        let stale = Sample::new(t, f64::from_bits(STALE_NAN_BITS));
        for (_, labels) in self.prev.drain() {
            batch.push_sample(labels, stale);
        }
        std::mem::swap(&mut self.prev, &mut self.next);
        added
    }

    /// Stale markers at `t` for every series seen last, and forgets them (a target or a
    /// collector that stops).
    pub fn end(&mut self, t: Timestamp) -> WriteBatch {
        let mut b = WriteBatch::new();
        let stale = Sample::new(t, f64::from_bits(STALE_NAN_BITS));
        for (_, labels) in self.prev.drain() {
            b.push_sample(labels, stale);
        }
        b
    }

    /// How many series the last round had.
    pub fn len(&self) -> usize {
        self.prev.len()
    }

    /// Whether the last round had no series.
    pub fn is_empty(&self) -> bool {
        self.prev.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telltale_model::is_stale_nan;

    fn batch(names: &[&str], t: i64) -> WriteBatch {
        let mut b = WriteBatch::new();
        for n in names {
            b.push_sample(Labels::from_pairs([("__name__", *n)]).unwrap(), Sample::new(t, 1.0));
        }
        b
    }

    fn stale_names(b: &WriteBatch) -> Vec<String> {
        let mut v: Vec<String> =
            b.iter().filter(|(_, s)| is_stale_nan(s[0].v)).map(|(l, _)| l.metric_name().unwrap().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn vanished_series_get_one_marker() {
        let mut s = Staleness::new();
        let mut b = batch(&["a", "b", "c"], 10);
        assert_eq!(s.update(&mut b, 10), 3);
        assert!(stale_names(&b).is_empty());
        let mut b = batch(&["a", "d"], 20);
        assert_eq!(s.update(&mut b, 20), 1);
        assert_eq!(stale_names(&b), ["b", "c"]);
        let stale_sample = b.iter().find(|(l, _)| l.metric_name() == Some("b")).unwrap().1[0];
        assert_eq!((stale_sample.t, stale_sample.v.to_bits()), (20, STALE_NAN_BITS));
        // Already marked: not marked again.
        let mut b = batch(&["a", "d"], 30);
        assert_eq!(s.update(&mut b, 30), 0);
        assert!(stale_names(&b).is_empty());
        assert_eq!(stale_names(&s.end(40)), ["a", "d"]);
        assert!(s.is_empty());
    }

    #[test]
    fn explicit_timestamps_are_not_tracked() {
        let mut s = Staleness::new();
        let mut b = batch(&["a"], 5);
        assert_eq!(s.update(&mut b, 10), 0);
        assert_eq!(s.len(), 0);
    }
}
