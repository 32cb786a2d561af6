//! The inverted index from label pairs to series ids, shared by the head and by blocks,
//! and the evaluation of matchers against it.

use std::collections::BTreeMap;
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};
use telltale_model::{Labels, MatchOp, Matcher};

/// Label name → value → ids of the series carrying that pair. Each distinct name and value
/// is stored once here, whatever the number of series using it.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    map: BTreeMap<Box<str>, BTreeMap<Box<str>, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl Postings {
    pub(crate) fn add(&mut self, id: u32, labels: &Labels) {
        self.all.insert(id);
        for (n, v) in labels.iter() {
            let values = match self.map.get_mut(n) {
                Some(v) => v,
                None => self.map.entry(n.into()).or_default(),
            };
            match values.get_mut(v) {
                Some(b) => {
                    b.insert(id);
                }
                None => {
                    values.entry(v.into()).or_default().insert(id);
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, id: u32, labels: &Labels) {
        self.all.remove(id);
        for (n, v) in labels.iter() {
            if let Some(values) = self.map.get_mut(n) {
                if let Some(b) = values.get_mut(v) {
                    b.remove(id);
                    if b.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.map.remove(n);
                }
            }
        }
    }

    /// Ids of the series satisfying every matcher (all series when there are none).
    pub(crate) fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let mut out = self.all.clone();
        // Cheap, narrowing matchers first, so later ones work on a small set.
        let mut ordered: Vec<&Matcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| match m.op {
            MatchOp::Equal if !m.value.is_empty() => 0,
            MatchOp::Regex if !m.matches_empty() => 1,
            _ => 2,
        });
        for m in ordered {
            if out.is_empty() {
                break;
            }
            self.narrow(&mut out, m);
        }
        out
    }

    fn narrow(&self, out: &mut RoaringBitmap, m: &Matcher) {
        let values = self.map.get(m.name.as_str());
        if m.op == MatchOp::Equal && !m.value.is_empty() {
            match values.and_then(|v| v.get(m.value.as_str())) {
                Some(b) => *out &= b,
                None => out.clear(),
            }
            return;
        }
        if let (Some(set), false) = (m.set_values(), m.matches_empty()) {
            let hits = set.into_iter().filter_map(|v| values.and_then(|vs| vs.get(v)));
            narrow_to_union(out, hits.collect());
            return;
        }
        let Some(values) = values else {
            // Nobody has the label: it is the empty string everywhere.
            if !m.matches_empty() {
                out.clear();
            }
            return;
        };
        if m.matches_empty() {
            // Keep series without the label; drop those whose value does not match.
            for (v, b) in values {
                if !m.matches(v) {
                    *out -= b;
                }
            }
        } else {
            // `abc.*` needs only the values from "abc" on that start with it (values are sorted).
            let hits: Vec<&RoaringBitmap> = match m.literal_prefix() {
                Some(p) => values
                    .range::<str, _>((Bound::Included(p), Bound::Unbounded))
                    .take_while(|(v, _)| v.starts_with(p))
                    .map(|(_, b)| b)
                    .collect(),
                None => values.iter().filter(|(v, _)| m.matches(v)).map(|(_, b)| b).collect(),
            };
            narrow_to_union(out, hits);
        }
    }
}

/// `out &= union(hits)`. When `out` is already small (an earlier matcher narrowed it), each
/// hit is intersected with it instead: that costs about `|out|` per hit rather than building
/// a union of every series the hits hold.
fn narrow_to_union(out: &mut RoaringBitmap, hits: Vec<&RoaringBitmap>) {
    let total: u64 = hits.iter().map(|b| b.len()).sum();
    if out.len().saturating_mul(4) < total {
        let parts: Vec<RoaringBitmap> = hits.into_iter().map(|b| &*out & b).collect();
        *out = parts.union();
    } else {
        *out &= hits.union();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let mut p = Postings::default();
        let series = [
            Labels::from_pairs([("__name__", "up"), ("job", "node")]).unwrap(),
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("env", "prod")]).unwrap(),
            Labels::from_pairs([("__name__", "down")]).unwrap(),
        ];
        for (i, l) in series.iter().enumerate() {
            p.add(i as u32, l);
        }
        let sel = |p: &Postings, ms: &[Matcher]| p.select(ms).iter().collect::<Vec<_>>();
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(sel(&p, &[]), [0, 1, 2]);
        assert_eq!(sel(&p, &[Matcher::equal("__name__", "up")]), [0, 1]);
        assert_eq!(sel(&p, &[m(MatchOp::Equal, "env", "")]), [0, 2]);
        assert_eq!(sel(&p, &[m(MatchOp::NotEqual, "job", "node")]), [1, 2]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "job", "node|api")]), [0, 1]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "job", "n.*|")]), [0, 2]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "job", "no.*")]), [0]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "job", ".*i")]), [1]);
        assert_eq!(sel(&p, &[m(MatchOp::NotRegex, "job", ".+")]), [2]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "nope", ".+")]), Vec::<u32>::new());
        p.remove(1, &series[1]);
        assert_eq!(sel(&p, &[m(MatchOp::Regex, "env", ".+")]), Vec::<u32>::new());
        assert_eq!(sel(&p, &[]), [0, 2]);
    }
}
