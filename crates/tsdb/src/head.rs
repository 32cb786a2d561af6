//! The in-memory head: every series seen recently, its newest samples in compressed chunks,
//! and the postings index over their labels.
//!
//! Series ids ("refs") are the ids the WAL uses, assigned in order and never reused, so a
//! replayed WAL rebuilds the same head. A series' data lives in one of [`STRIPES`] mutexes
//! (`ref % STRIPES`), so readers and writers rarely wait on each other. Labels live once,
//! in the index's `labels` vector; the lookup table stores only refs.
//!
//! A writer validates and logs under the engine's WAL lock, then applies outside it, so the
//! next writer can validate and log while this one applies. A series with logged but not yet
//! applied samples is marked `pending`; a writer that meets one waits for it, so each series
//! changes in WAL order and the head always equals what a replay of the WAL builds.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use telltale_model::{Labels, Matcher, Sample, TimeRange};

use crate::chunk::{self, XorAppender};
use crate::postings::Postings;

pub(crate) const STRIPES: usize = 64;

/// The stripe holding series `r`.
pub(crate) fn stripe_of(r: u32) -> usize {
    r as usize % STRIPES
}

/// Sorts `(ref, sample)` pairs by stripe, then ref, then time, keeping the given order of
/// equal timestamps. A counting pass by stripe, then a sort only of stripes not already in
/// order (remote write usually sends a series' samples in time order and series in ref order).
pub(crate) fn sort_by_stripe(items: &mut Vec<(u32, Sample)>) {
    let mut starts = [0usize; STRIPES + 1];
    for &(r, _) in items.iter() {
        starts[stripe_of(r) + 1] += 1;
    }
    for s in 0..STRIPES {
        starts[s + 1] += starts[s];
    }
    let bounds = starts;
    let mut sorted = vec![(0u32, Sample::new(0, 0.0)); items.len()];
    for &item in items.iter() {
        let slot = &mut starts[stripe_of(item.0)];
        sorted[*slot] = item;
        *slot += 1;
    }
    for s in 0..STRIPES {
        let part = &mut sorted[bounds[s]..bounds[s + 1]];
        if !part.is_sorted_by_key(|&(r, x)| (r, x.t)) {
            part.sort_by_key(|&(r, x)| (r, x.t));
        }
    }
    *items = sorted;
}

/// One stripe's series (slot `r / STRIPES`).
#[derive(Debug, Default)]
pub(crate) struct StripeData {
    series: Vec<MemSeries>,
}

impl StripeData {
    /// Series `r`, which must live in this stripe.
    pub(crate) fn series_mut(&mut self, r: u32) -> &mut MemSeries {
        debug_assert!(self.series.len() > r as usize / STRIPES);
        &mut self.series[r as usize / STRIPES]
    }
}

#[derive(Debug, Default)]
struct Stripe {
    data: Mutex<StripeData>,
    /// Signalled when a writer has applied its samples to this stripe.
    applied: Condvar,
}

/// A closed, immutable chunk.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) data: Box<[u8]>,
}

impl Chunk {
    fn from_samples(s: &[Sample]) -> Chunk {
        Chunk { min_t: s[0].t, max_t: s[s.len() - 1].t, data: chunk::encode(s) }
    }
}

/// How a new sample relates to what a series holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Newer than every sample: append.
    InOrder,
    /// Older than the newest, inside the out-of-order window, at a new timestamp.
    OutOfOrder,
    /// Same timestamp and same value bits as a stored sample: nothing to do.
    Same,
    /// Same timestamp, another value.
    Duplicate,
    /// Older than the newest by more than the window.
    TooFarBehind,
}

/// One series' data in the head.
#[derive(Debug, Default)]
pub(crate) struct MemSeries {
    /// Closed chunks in time order.
    chunks: Vec<Chunk>,
    open: Option<XorAppender>,
    /// Out-of-order samples, sorted, at timestamps none of the chunks hold.
    ooo: Vec<Sample>,
    /// Newest in-order timestamp ever appended (kept when data moves to a block).
    max_t: Option<i64>,
    last_v: u64,
    /// Whether the WAL holds this series' record.
    pub(crate) logged: bool,
    /// The WAL holds samples of this series that are not applied yet.
    pub(crate) pending: bool,
}

impl MemSeries {
    pub(crate) fn fit(&self, s: &Sample, window: i64) -> Fit {
        let Some(max_t) = self.max_t else { return Fit::InOrder };
        if s.t > max_t {
            return Fit::InOrder;
        }
        // The newest value is remembered even after its chunk moved to a block.
        let existing = if s.t == max_t { Some(self.last_v) } else { self.value_at(s.t) };
        match existing {
            Some(bits) if bits == s.v.to_bits() => Fit::Same,
            Some(_) => Fit::Duplicate,
            None if max_t.saturating_sub(s.t) <= window => Fit::OutOfOrder,
            None => Fit::TooFarBehind,
        }
    }

    /// The value bits stored at `t`, if any.
    fn value_at(&self, t: i64) -> Option<u64> {
        if let Ok(i) = self.ooo.binary_search_by_key(&t, |s| s.t) {
            return Some(self.ooo[i].v.to_bits());
        }
        let mut buf = Vec::new();
        let open = self.open.as_ref().filter(|o| o.len() > 0).map(|o| (o.min_t(), o.max_t(), o.bytes()));
        let closed = self.chunks.iter().map(|c| (c.min_t, c.max_t, &c.data[..]));
        for (lo, hi, data) in closed.chain(open) {
            if lo <= t && t <= hi {
                buf.clear();
                // Head chunks are built here; one that fails to decode holds nothing we can compare.
                let _ = chunk::decode(data, &mut buf);
                if let Ok(i) = buf.binary_search_by_key(&t, |s| s.t) {
                    return Some(buf[i].v.to_bits());
                }
            }
        }
        None
    }

    /// Appends a sample newer than every other; `window_ms` aligns chunk boundaries so a
    /// chunk never spans two block windows.
    pub(crate) fn append(&mut self, s: Sample, window_ms: i64) {
        let boundary = |o: &XorAppender| o.min_t().div_euclid(window_ms) != s.t.div_euclid(window_ms);
        if self.open.as_ref().is_some_and(|o| o.is_full() || boundary(o)) {
            self.close_open();
        }
        self.open.get_or_insert_with(XorAppender::new).append(s.t, s.v);
        self.max_t = Some(s.t);
        self.last_v = s.v.to_bits();
    }

    fn close_open(&mut self) {
        if let Some(o) = self.open.take().filter(|o| o.len() > 0) {
            let (min_t, max_t) = (o.min_t(), o.max_t());
            self.chunks.push(Chunk { min_t, max_t, data: o.finish() });
        }
    }

    pub(crate) fn insert_ooo(&mut self, s: Sample) {
        let i = self.ooo.partition_point(|x| x.t < s.t);
        self.ooo.insert(i, s);
    }

    /// Appends the samples inside `range` to `out`, in time order.
    pub(crate) fn samples(&self, range: TimeRange, out: &mut Vec<Sample>) {
        let start = out.len();
        let open = self.open.as_ref().filter(|o| o.len() > 0).map(|o| (o.min_t(), o.max_t(), o.bytes()));
        let closed = self.chunks.iter().map(|c| (c.min_t, c.max_t, &c.data[..]));
        for (lo, hi, data) in closed.chain(open) {
            if range.overlaps(lo, hi) {
                let before = out.len();
                let _ = chunk::decode(data, out);
                let mut keep = before;
                for i in before..out.len() {
                    if range.contains(out[i].t) {
                        out[keep] = out[i];
                        keep += 1;
                    }
                }
                out.truncate(keep);
            }
        }
        let n = out.len();
        out.extend(self.ooo.iter().filter(|s| range.contains(s.t)));
        if out.len() > n {
            out[start..].sort_unstable_by_key(|s| s.t);
        }
    }

    /// Oldest and newest timestamps held, if any.
    pub(crate) fn bounds(&self) -> Option<(i64, i64)> {
        let open = self.open.as_ref().filter(|o| o.len() > 0).map(|o| (o.min_t(), o.max_t()));
        let spans = self.chunks.iter().map(|c| (c.min_t, c.max_t)).chain(open);
        let spans = spans.chain(self.ooo.first().map(|f| (f.t, self.ooo[self.ooo.len() - 1].t)));
        spans.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Moves out every sample at or before `t`, as chunks plus leftover out-of-order samples.
    fn cut(&mut self, t: i64) -> (Vec<Chunk>, Vec<Sample>) {
        if self.open.as_ref().is_some_and(|o| o.len() > 0 && o.min_t() <= t) {
            self.close_open();
        }
        let n = self.chunks.partition_point(|c| c.max_t <= t);
        let mut out: Vec<Chunk> = self.chunks.drain(..n).collect();
        if let Some(c) = self.chunks.first().filter(|c| c.min_t <= t) {
            // A chunk straddling `t` (only when the block window changed): split it.
            let mut all = Vec::new();
            let _ = chunk::decode(&c.data, &mut all);
            let k = all.partition_point(|s| s.t <= t);
            out.push(Chunk::from_samples(&all[..k]));
            self.chunks[0] = Chunk::from_samples(&all[k..]);
        }
        let k = self.ooo.partition_point(|s| s.t <= t);
        let ooo: Vec<Sample> = self.ooo.drain(..k).collect();
        if self.ooo.is_empty() {
            self.ooo = Vec::new();
        }
        (out, ooo)
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.data.len() + std::mem::size_of::<Chunk>()).sum::<usize>()
            + self.open.as_ref().map_or(0, |o| o.capacity())
            + self.ooo.capacity() * std::mem::size_of::<Sample>()
    }
}

/// A series' data cut from the head, on its way into a block.
#[derive(Debug)]
pub(crate) struct CutSeries {
    pub(crate) labels: Labels,
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) ooo: Vec<Sample>,
}

impl CutSeries {
    pub(crate) fn samples(&self, range: TimeRange, out: &mut Vec<Sample>) {
        let start = out.len();
        for c in self.chunks.iter().filter(|c| range.overlaps(c.min_t, c.max_t)) {
            let _ = chunk::decode(&c.data, out);
        }
        out.extend(self.ooo.iter().copied());
        out[start..].sort_unstable_by_key(|s| s.t);
        let tail: Vec<Sample> = out.drain(start..).filter(|s| range.contains(s.t)).collect();
        out.extend(tail);
    }
}

#[derive(Debug, Default)]
struct Index {
    /// Labels by ref; empty for refs that were garbage-collected (or never used).
    labels: Vec<Labels>,
    table: HashTable<u32>,
    postings: Postings,
    live: usize,
}

/// The head. All methods take `&self`; the engine orders writers (see the module doc).
#[derive(Debug)]
pub(crate) struct Head {
    index: RwLock<Index>,
    stripes: Box<[Stripe]>,
    hasher: DefaultHashBuilder,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Bumped by every cut that forgets series, so a writer knows whether refs it looked up
    /// before taking the WAL lock may have gone.
    generation: AtomicU64,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            index: RwLock::default(),
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            hasher: DefaultHashBuilder::default(),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            generation: AtomicU64::new(0),
        }
    }
}

impl Head {
    pub(crate) fn hash(&self, labels: &Labels) -> u64 {
        self.hasher.hash_one(labels.as_bytes())
    }

    /// The ref of `labels`, if the head has that series.
    pub(crate) fn lookup(&self, labels: &Labels, hash: u64) -> Option<u32> {
        let idx = self.index.read();
        idx.table.find(hash, |&r| idx.labels[r as usize] == *labels).copied()
    }

    /// The ref of `labels`, creating the series if needed; `true` when created.
    pub(crate) fn get_or_create(&self, labels: &Labels, hash: u64) -> (u32, bool) {
        if let Some(r) = self.lookup(labels, hash) {
            return (r, false);
        }
        let mut idx = self.index.write();
        if let Some(&r) = idx.table.find(hash, |&r| idx.labels[r as usize] == *labels) {
            return (r, false);
        }
        let r = idx.labels.len() as u32;
        self.insert(&mut idx, r, labels.clone(), hash, false);
        (r, true)
    }

    /// Recreates series `r` from the WAL. Fails with the existing ref if these labels
    /// already have another one.
    pub(crate) fn insert_with_ref(&self, r: u32, labels: Labels) -> Result<(), u32> {
        let hash = self.hash(&labels);
        let mut idx = self.index.write();
        if let Some(&old) = idx.table.find(hash, |&x| idx.labels[x as usize] == labels) {
            return if old == r { Ok(()) } else { Err(old) };
        }
        if (r as usize) < idx.labels.len() {
            if !idx.labels[r as usize].is_empty() {
                // The ref was reused for other labels: a WAL we did not write. Keep the first.
                return Err(r);
            }
            self.revive(&mut idx, r, labels, hash);
            return Ok(());
        }
        self.insert(&mut idx, r, labels, hash, true);
        Ok(())
    }

    fn insert(&self, idx: &mut Index, r: u32, labels: Labels, hash: u64, logged: bool) {
        while idx.labels.len() <= r as usize {
            let next = idx.labels.len();
            idx.labels.push(Labels::empty());
            self.stripes[next % STRIPES].data.lock().series.push(MemSeries::default());
        }
        self.revive(idx, r, labels, hash);
        self.stripes[stripe_of(r)].data.lock().series_mut(r).logged = logged;
    }

    fn revive(&self, idx: &mut Index, r: u32, labels: Labels, hash: u64) {
        idx.postings.add(r, &labels);
        idx.labels[r as usize] = labels;
        let Index { table, labels: all, .. } = idx;
        table.insert_unique(hash, r, |&x| self.hasher.hash_one(all[x as usize].as_bytes()));
        idx.live += 1;
    }

    /// Runs `f` on series `r` under its stripe's lock.
    pub(crate) fn with<T>(&self, r: u32, f: impl FnOnce(&mut MemSeries) -> T) -> T {
        f(self.stripes[stripe_of(r)].data.lock().series_mut(r))
    }

    /// Locks stripe `s`.
    pub(crate) fn lock_stripe(&self, s: usize) -> MutexGuard<'_, StripeData> {
        self.stripes[s].data.lock()
    }

    /// Waits, in `g` (stripe `s`), until series `r` has no pending samples.
    pub(crate) fn wait_applied(&self, s: usize, g: &mut MutexGuard<'_, StripeData>, r: u32) {
        while g.series_mut(r).pending {
            self.stripes[s].applied.wait(g);
        }
    }

    /// Releases stripe `s` after applying samples to it, waking writers waiting for it.
    pub(crate) fn applied(&self, s: usize, g: MutexGuard<'_, StripeData>) {
        drop(g);
        self.stripes[s].applied.notify_all();
    }

    /// See [`Head::generation`]'s field.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records that a sample at `t` was stored, for the head's time bounds.
    pub(crate) fn note_time(&self, t: i64) {
        self.min_t.fetch_min(t, Ordering::Relaxed);
        self.max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// Raises the newest time seen (from blocks, on open).
    pub(crate) fn note_time_max(&self, t: i64) {
        self.max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// The newest sample time ever stored (`i64::MIN` if none).
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Relaxed)
    }

    /// Oldest and newest sample times in the head, if it holds any.
    pub(crate) fn bounds(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (self.min_t.load(Ordering::Relaxed), self.max_t.load(Ordering::Relaxed));
        (lo <= hi).then_some((lo, hi))
    }

    /// Labels of the live series matching `matchers`, with their refs, in ref order.
    pub(crate) fn matching(&self, matchers: &[Matcher]) -> Vec<(u32, Labels)> {
        let idx = self.index.read();
        idx.postings.select(matchers).iter().map(|r| (r, idx.labels[r as usize].clone())).collect()
    }

    pub(crate) fn labels_of(&self, r: u32) -> Option<Labels> {
        self.index.read().labels.get(r as usize).filter(|l| !l.is_empty()).cloned()
    }

    pub(crate) fn live_series(&self) -> usize {
        self.index.read().live
    }

    /// Moves every sample at or before `t` out of the head, sorted by labels, and forgets
    /// series left without data whose newest sample is at or before `forget_before`.
    pub(crate) fn cut(&self, t: i64, forget_before: i64) -> Vec<CutSeries> {
        let mut idx = self.index.write();
        let mut out = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for r in 0..idx.labels.len() as u32 {
            if idx.labels[r as usize].is_empty() {
                continue;
            }
            let (chunks, ooo, forget, bounds) = self.with(r, |s| {
                let (chunks, ooo) = s.cut(t);
                let bounds = s.bounds();
                let forget = bounds.is_none() && s.max_t.is_none_or(|m| m <= forget_before);
                if forget {
                    *s = MemSeries::default();
                }
                (chunks, ooo, forget, bounds)
            });
            if let Some((a, b)) = bounds {
                (lo, hi) = (lo.min(a), hi.max(b));
            }
            let labels = if forget {
                let labels = std::mem::take(&mut idx.labels[r as usize]);
                let hash = self.hash(&labels);
                if let Ok(e) = idx.table.find_entry(hash, |&x| x == r) {
                    e.remove();
                }
                idx.postings.remove(r, &labels);
                idx.live -= 1;
                labels
            } else {
                idx.labels[r as usize].clone()
            };
            if !chunks.is_empty() || !ooo.is_empty() {
                out.push(CutSeries { labels, chunks, ooo });
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.min_t.store(lo, Ordering::Relaxed);
        self.max_t.fetch_max(hi, Ordering::Relaxed);
        if lo == i64::MAX {
            // Empty head: keep max_t (it anchors retention and "too old"), reset min_t.
            self.min_t.store(i64::MAX, Ordering::Relaxed);
        }
        drop(idx);
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Whether live series `r` currently has these labels (for the WAL checkpoint).
    pub(crate) fn has(&self, r: u32, labels: &[u8]) -> bool {
        self.index.read().labels.get(r as usize).is_some_and(|l| !l.is_empty() && l.as_bytes() == labels)
    }

    pub(crate) fn is_live(&self, r: u32) -> bool {
        self.index.read().labels.get(r as usize).is_some_and(|l| !l.is_empty())
    }

    /// Bytes of sample data held, approximately.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.stripes.iter().map(|s| s.data.lock().series.iter().map(MemSeries::heap_bytes).sum::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", v)]).unwrap()
    }

    #[test]
    fn sorts_by_stripe_then_ref_then_time_stably() {
        let n = STRIPES as u32;
        let mut items = vec![
            (n + 1, Sample::new(5, 1.0)),
            (1, Sample::new(9, 1.0)),
            (0, Sample::new(3, 1.0)),
            (1, Sample::new(2, 1.0)),
            (n + 1, Sample::new(5, 2.0)),
            (n, Sample::new(1, 1.0)),
        ];
        sort_by_stripe(&mut items);
        let got: Vec<(u32, i64, f64)> = items.iter().map(|&(r, s)| (r, s.t, s.v)).collect();
        let want = [(0, 3, 1.0), (n, 1, 1.0), (1, 2, 1.0), (1, 9, 1.0), (n + 1, 5, 1.0), (n + 1, 5, 2.0)];
        assert_eq!(got, want);
    }

    #[test]
    fn classifies_samples() {
        let mut s = MemSeries::default();
        let w = 7_200_000;
        assert_eq!(s.fit(&Sample::new(10, 1.0), 0), Fit::InOrder);
        s.append(Sample::new(10, 1.0), w);
        s.append(Sample::new(20, 2.0), w);
        assert_eq!(s.fit(&Sample::new(20, 2.0), 0), Fit::Same);
        assert_eq!(s.fit(&Sample::new(20, 3.0), 0), Fit::Duplicate);
        assert_eq!(s.fit(&Sample::new(10, 1.0), 0), Fit::Same);
        assert_eq!(s.fit(&Sample::new(10, 5.0), 0), Fit::Duplicate);
        assert_eq!(s.fit(&Sample::new(15, 1.0), 0), Fit::TooFarBehind);
        assert_eq!(s.fit(&Sample::new(15, 1.0), 5), Fit::OutOfOrder);
        s.insert_ooo(Sample::new(15, 1.5));
        assert_eq!(s.fit(&Sample::new(15, 1.5), 5), Fit::Same);
        let mut out = Vec::new();
        s.samples(TimeRange::ALL, &mut out);
        assert_eq!(out, [Sample::new(10, 1.0), Sample::new(15, 1.5), Sample::new(20, 2.0)]);
        out.clear();
        s.samples(TimeRange::new(11, 20), &mut out);
        assert_eq!(out, [Sample::new(15, 1.5), Sample::new(20, 2.0)]);
    }

    #[test]
    fn chunks_close_at_window_boundaries_and_cut_there() {
        let mut s = MemSeries::default();
        for t in 0..300 {
            s.append(Sample::new(t * 10, t as f64), 1000);
        }
        // 100 samples per 1000 ms window, so 3 chunks of 100 each.
        assert_eq!(s.chunks.len(), 2);
        let (cut, ooo) = s.cut(999);
        assert_eq!((cut.len(), ooo.len()), (1, 0));
        assert_eq!((cut[0].min_t, cut[0].max_t), (0, 990));
        assert_eq!(s.bounds(), Some((1000, 2990)));
    }

    #[test]
    fn refs_and_postings() {
        let h = Head::default();
        let a = l("a");
        let (r, created) = h.get_or_create(&a, h.hash(&a));
        assert!(created && r == 0);
        assert_eq!(h.get_or_create(&a, h.hash(&a)), (0, false));
        h.insert_with_ref(5, l("b")).unwrap();
        assert_eq!(h.insert_with_ref(7, l("b")), Err(5));
        let (r, _) = h.get_or_create(&l("c"), h.hash(&l("c")));
        assert_eq!(r, 6);
        assert_eq!(h.matching(&[]).len(), 3);
        h.with(0, |s| s.append(Sample::new(1, 1.0), 100));
        let cut = h.cut(i64::MAX, i64::MAX);
        assert_eq!(cut.len(), 1);
        assert_eq!(h.live_series(), 0);
        assert!(h.labels_of(0).is_none());
        assert_eq!(h.get_or_create(&a, h.hash(&a)), (7, true));
    }
}
