//! [`Tsdb`]: the WAL, the head and the blocks put together behind the storage traits.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use telltale_model::{Labels, Matcher, MetricType, Sample, TimeRange, WriteBatch};
use telltale_storage::{
    self as storage, matches_all, Maintenance, MetricReader, MetricWriter, Series, Stat, WriteStats,
};
use tracing::{info, warn};

use crate::block::{Block, BlockWriter, PageCache};
use crate::error::{io_err, Error, Result};
use crate::head::{sort_by_stripe, stripe_of, CutSeries, Fit, Head};
use crate::options::{ms, Fsync, Options};
use crate::pagecache::SharedPages;
use crate::wal::{self, Entry, Wal};

/// The metrics engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Tsdb {
    dir: PathBuf,
    opts: Options,
    head: Head,
    /// The write serialisation point: refs are checked, samples validated and logged under it.
    wal: Mutex<Wal>,
    /// Writers that logged samples and are still applying them to the head.
    applying: Mutex<usize>,
    /// Signalled when `applying` drops to zero.
    all_applied: parking_lot::Condvar,
    /// Blocks and data on its way into a block. Readers hold the read lock while reading
    /// the head, so a cut (which takes the write lock) is never seen half done.
    state: RwLock<State>,
    maint: Mutex<MaintState>,
    problems: Mutex<Vec<String>>,
    counters: Counters,
    /// Decompressed block pages, shared by readers.
    pages: Arc<SharedPages>,
}

#[derive(Default)]
struct State {
    /// Sorted by (min time, id).
    blocks: Vec<Arc<Block>>,
    /// Data cut from the head whose block is not written yet.
    frozen: Option<Arc<Vec<CutSeries>>>,
}

struct MaintState {
    next_block: u64,
    /// A cut whose blocks or WAL checkpoint are not written yet.
    pending: Option<PendingCut>,
}

#[derive(Clone, Copy)]
struct PendingCut {
    /// WAL segments up to this one can be replaced by a checkpoint.
    segment: u64,
    /// Samples at or before this time are in blocks.
    cut_t: i64,
}

#[derive(Default)]
struct Counters {
    samples_appended: AtomicU64,
    out_of_order_accepted: AtomicU64,
    rejected_out_of_order: AtomicU64,
    rejected_too_old: AtomicU64,
    rejected_duplicate: AtomicU64,
    compactions: AtomicU64,
    blocks_deleted: AtomicU64,
    corrupt_files: AtomicU64,
    wal_write_errors: AtomicU64,
}

impl Tsdb {
    /// Opens (or creates) a data directory: verifies blocks, replays the WAL, and moves
    /// anything corrupt to `quarantine/` (see [`Maintenance::problems`]).
    pub fn open(dir: &Path, opts: &Options) -> Result<Tsdb> {
        opts.validate()?;
        for sub in ["", "wal", "blocks", "quarantine"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        let wal_dir = dir.join("wal");
        let listing = wal::list(&wal_dir)?;
        let next_segment = listing.segments.last().copied().max(listing.checkpoint).map_or(1, |n| n + 1);
        let always = opts.wal.fsync == Fsync::Always;
        let mut db = Tsdb {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            head: Head::default(),
            wal: Mutex::new(Wal::create(&wal_dir, next_segment, opts.wal.segment_size, always)?),
            applying: Mutex::new(0),
            all_applied: parking_lot::Condvar::new(),
            state: RwLock::default(),
            maint: Mutex::new(MaintState { next_block: 1, pending: None }),
            problems: Mutex::default(),
            counters: Counters::default(),
            pages: Arc::new(SharedPages::new(usize::try_from(opts.page_cache_size).unwrap_or(usize::MAX))),
        };
        db.load_blocks()?;
        let needs_flush = db.replay(&listing)?;
        if let Some(newest) = db.state.get_mut().blocks.iter().map(|b| b.meta.max_time).max() {
            db.head.note_time_max(newest);
        }
        if needs_flush {
            // The WAL held something odd (a damaged middle segment, a series logged twice):
            // persist the head now so the WAL starts clean.
            db.flush_head()?;
        }
        Ok(db)
    }

    fn load_blocks(&mut self) -> Result<()> {
        let blocks_dir = self.dir.join("blocks");
        let mut blocks = Vec::new();
        let mut max_seq = 0;
        for e in fs::read_dir(&blocks_dir).map_err(io_err("list", &blocks_dir))? {
            let e = e.map_err(io_err("list", &blocks_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.contains('.') {
                // An unfinished write or delete.
                let _ = fs::remove_dir_all(&path);
                continue;
            }
            if let Ok(n) = name.parse::<u64>() {
                max_seq = max_seq.max(n);
            }
            match Block::open(&path) {
                Ok(b) => blocks.push(Arc::new(b)),
                Err(e @ (Error::Corrupt { .. } | Error::Io { .. })) => self.quarantine(&path, &e.to_string()),
                Err(e) => return Err(e),
            }
        }
        // A compaction that crashed before deleting its sources leaves them behind.
        let merged: Vec<String> = blocks.iter().flat_map(|b| b.meta.sources.iter().cloned()).collect();
        blocks.retain(|b| {
            let stale = merged.contains(&b.meta.id);
            if stale {
                let _ = remove_block_dir(&b.dir);
            }
            !stale
        });
        sort_blocks(&mut blocks);
        self.state.get_mut().blocks = blocks;
        self.maint.get_mut().next_block = max_seq + 1;
        Ok(())
    }

    /// Replays the WAL files of `listing` into the head. Returns whether the head must be
    /// flushed to leave a clean WAL.
    fn replay(&mut self, listing: &wal::Listing) -> Result<bool> {
        let wal_dir = self.dir.join("wal");
        for p in &listing.stale {
            let _ = fs::remove_file(p);
        }
        let mut files: Vec<(PathBuf, bool)> =
            listing.checkpoint.iter().map(|&c| (wal::checkpoint_path(&wal_dir, c), false)).collect();
        let last = listing.segments.last().copied();
        files.extend(listing.segments.iter().map(|&s| (wal::segment_path(&wal_dir, s), Some(s) == last)));
        let mut aliases: HashMap<u32, u32> = HashMap::new();
        let (mut needs_flush, mut unknown, mut bad_labels, mut samples) = (false, 0u64, 0u64, 0u64);
        for (path, is_last) in files {
            let data = fs::read(&path).map_err(io_err("read wal file", &path))?;
            let damage = wal::read_records(&data, |entries| {
                for e in entries {
                    match *e {
                        Entry::Series(r, raw) => match Labels::from_encoded(raw) {
                            Ok(l) if !l.is_empty() => {
                                if let Err(existing) = self.head.insert_with_ref(r, l) {
                                    if existing != r {
                                        aliases.insert(r, existing);
                                    }
                                    needs_flush = true;
                                }
                            }
                            _ => bad_labels += 1,
                        },
                        Entry::Sample(r, s) => {
                            let r = aliases.get(&r).copied().unwrap_or(r);
                            if !self.head.is_live(r) {
                                unknown += 1;
                                continue;
                            }
                            let w = self.opts.block_ms();
                            self.head.with(r, |m| match m.fit(&s, i64::MAX) {
                                Fit::InOrder => m.append(s, w),
                                Fit::OutOfOrder => m.insert_ooo(s),
                                Fit::Same | Fit::Duplicate | Fit::TooFarBehind => {}
                            });
                            self.head.note_time(s.t);
                            samples += 1;
                        }
                    }
                }
            });
            if let Some(d) = damage {
                let dropped = data.len() as u64 - d.good_len;
                if is_last {
                    let msg = format!(
                        "wal segment {} damaged ({}): truncated to {} bytes, {dropped} bytes dropped",
                        path.display(),
                        d.reason,
                        d.good_len
                    );
                    warn!(path = %path.display(), reason = %d.reason, dropped, "truncating damaged wal tail");
                    let f = fs::OpenOptions::new().write(true).open(&path).map_err(io_err("open", &path))?;
                    f.set_len(d.good_len.max(wal::MAGIC.len() as u64)).map_err(io_err("truncate", &path))?;
                    self.report(msg);
                } else {
                    // Its valid prefix is in the head now; keep the file for inspection.
                    self.quarantine(&path, &format!("{} ({dropped} bytes unreadable)", d.reason));
                    needs_flush = true;
                }
            }
        }
        if unknown > 0 || bad_labels > 0 {
            self.report(format!(
                "wal replay skipped {unknown} samples of unknown series and {bad_labels} unreadable series records"
            ));
        }
        info!(samples, series = self.head.live_series(), "wal replayed");
        Ok(needs_flush)
    }

    fn report(&self, msg: String) {
        warn!(problem = %msg, "storage problem");
        self.problems.lock().push(msg);
    }

    /// Moves a file or directory into `quarantine/` and records why.
    fn quarantine(&self, path: &Path, reason: &str) {
        self.counters.corrupt_files.fetch_add(1, Relaxed);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let qdir = self.dir.join("quarantine");
        let mut target = qdir.join(format!("{}-{name}", kind.unwrap_or_default()));
        let mut n = 1;
        while fs::symlink_metadata(&target).is_ok() {
            n += 1;
            target = qdir.join(format!("{}.{n}", target.file_name().unwrap_or_default().to_string_lossy()));
        }
        let moved = match fs::rename(path, &target) {
            Ok(()) => format!("moved to {}", target.display()),
            Err(e) => format!("could not move it to quarantine: {e}"),
        };
        self.report(format!("{} is corrupt ({reason}); {moved}", path.display()));
    }

    /// Forces written WAL records to disk (the server calls this on the fsync interval).
    pub fn sync_wal(&self) -> Result<()> {
        self.wal.lock().sync()
    }

    /// Flushes and fsyncs the WAL for a graceful shutdown. Everything is recovered from the
    /// WAL on the next open.
    pub fn close(self) -> Result<()> {
        self.sync_wal()
    }

    /// Periodic upkeep: cuts old head data into blocks (keeping the newest half block for
    /// late samples; everything when nothing arrived for a block duration before `now_ms`),
    /// compacts blocks, applies retention and truncates the WAL.
    pub fn maintain(&self, now_ms: i64) -> Result<()> {
        let mut m = self.maint.lock();
        self.finish_pending(&mut m)?;
        let bd = self.opts.block_ms();
        if let Some((lo, hi)) = self.head.bounds() {
            if now_ms.saturating_sub(hi) >= bd {
                self.cut(&mut m, i64::MAX, hi)?;
            } else if hi.saturating_sub(lo) > bd / 2 * 3 {
                let t = (hi - bd / 2).div_euclid(bd) * bd - 1;
                if t >= lo {
                    self.cut(&mut m, t, t)?;
                }
            }
        }
        self.compact(&mut m)?;
        self.apply_retention();
        Ok(())
    }

    /// Everything in the head into blocks, what [`Maintenance::flush`] does.
    fn flush_head(&self) -> Result<()> {
        let mut m = self.maint.lock();
        self.finish_pending(&mut m)?;
        if let Some((_, hi)) = self.head.bounds() {
            self.cut(&mut m, i64::MAX, hi.saturating_sub(self.opts.block_ms() / 2))?;
        }
        Ok(())
    }

    /// Moves head samples at or before `t` into blocks and truncates the WAL.
    fn cut(&self, m: &mut MaintState, t: i64, forget_before: i64) -> Result<()> {
        {
            let mut wal = self.wal.lock();
            // Writers still applying logged samples must finish before the head is cut.
            self.quiesce();
            let segment = wal.rotate()?;
            let mut state = self.state.write();
            let parts = self.head.cut(t, forget_before);
            if !parts.is_empty() {
                state.frozen = Some(Arc::new(parts));
            }
            m.pending = Some(PendingCut { segment, cut_t: t });
        }
        self.finish_pending(m)
    }

    /// Writes the blocks and the WAL checkpoint of a cut (again, if it failed before).
    fn finish_pending(&self, m: &mut MaintState) -> Result<()> {
        let Some(p) = m.pending else { return Ok(()) };
        let frozen = self.state.read().frozen.clone();
        if let Some(frozen) = frozen {
            let blocks = self.write_frozen(m, &frozen)?;
            let mut state = self.state.write();
            state.blocks.extend(blocks);
            sort_blocks(&mut state.blocks);
            state.frozen = None;
        }
        let head = &self.head;
        wal::checkpoint(
            &self.dir.join("wal"),
            p.segment,
            |r, l| head.has(r, l),
            |r, s| s.t > p.cut_t && head.is_live(r),
        )?;
        m.pending = None;
        Ok(())
    }

    /// One block per block-duration window the data touches.
    fn write_frozen(&self, m: &mut MaintState, frozen: &[CutSeries]) -> Result<Vec<Arc<Block>>> {
        let bd = self.opts.block_ms();
        let blocks_dir = self.dir.join("blocks");
        let mut writers: BTreeMap<i64, BlockWriter> = BTreeMap::new();
        let mut buf = Vec::new();
        let res = (|| {
            for s in frozen {
                buf.clear();
                s.samples(TimeRange::ALL, &mut buf);
                let mut rest = &buf[..];
                while !rest.is_empty() {
                    let w = rest[0].t.div_euclid(bd);
                    let n = rest.partition_point(|x| x.t.div_euclid(bd) == w);
                    let writer = match writers.get_mut(&w) {
                        Some(wr) => wr,
                        None => {
                            let id = format!("{:010}", m.next_block);
                            m.next_block += 1;
                            writers.entry(w).or_insert(BlockWriter::new(&blocks_dir, &id, bd)?)
                        }
                    };
                    writer.add(&s.labels, &rest[..n])?;
                    rest = &rest[n..];
                }
            }
            let mut out = Vec::new();
            for (_, w) in std::mem::take(&mut writers) {
                out.push(Arc::new(w.finish(1, Vec::new())?));
            }
            Ok(out)
        })();
        if res.is_err() {
            for (_, w) in writers {
                w.abandon();
            }
        }
        res
    }

    fn compact(&self, m: &mut MaintState) -> Result<()> {
        loop {
            let blocks = self.state.read().blocks.clone();
            let newest = self.head.max_t().max(blocks.iter().map(|b| b.meta.max_time).max().unwrap_or(i64::MIN));
            let Some(group) = plan_compaction(&blocks, self.opts.block_ms(), ms(self.opts.retention_time), newest)
            else {
                return Ok(());
            };
            let id = format!("{:010}", m.next_block);
            m.next_block += 1;
            let merged = Arc::new(self.merge(&group, &id)?);
            info!(block = %id, sources = group.len(), samples = merged.meta.samples, "compacted blocks");
            {
                let mut state = self.state.write();
                state.blocks.retain(|b| !group.iter().any(|g| Arc::ptr_eq(b, g)));
                state.blocks.push(merged);
                sort_blocks(&mut state.blocks);
            }
            for b in &group {
                self.pages.forget_block(b.uid);
                let _ = remove_block_dir(&b.dir);
            }
            self.counters.compactions.fetch_add(1, Relaxed);
        }
    }

    /// Merges blocks series by series; where two hold the same timestamp the newer block wins.
    fn merge(&self, group: &[Arc<Block>], id: &str) -> Result<Block> {
        let mut order: Vec<&Arc<Block>> = group.iter().collect();
        order.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        let mut entries: Vec<(&Labels, usize, u32)> = Vec::new();
        for (bi, b) in order.iter().enumerate() {
            entries.extend(b.series.iter().enumerate().map(|(i, s)| (&s.labels, bi, i as u32)));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
        let mut w = BlockWriter::new(&self.dir.join("blocks"), id, self.opts.block_ms())?;
        let mut caches: Vec<PageCache> = order.iter().map(|_| PageCache::default()).collect();
        let mut buf = Vec::new();
        let res = (|| {
            for group in entries.chunk_by(|a, b| a.0 == b.0) {
                buf.clear();
                for &(_, bi, si) in group {
                    order[bi].samples(si, TimeRange::ALL, &mut caches[bi], &mut buf)?;
                }
                if group.len() > 1 {
                    dedup_keep_last(&mut buf);
                }
                w.add(group[0].0, &buf)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            w.abandon();
            return Err(e);
        }
        let level = order.iter().map(|b| b.meta.level).max().unwrap_or(0) + 1;
        w.finish(level, order.iter().map(|b| b.meta.id.clone()).collect())
    }

    fn apply_retention(&self) {
        let blocks = self.state.read().blocks.clone();
        let newest = self.head.max_t().max(blocks.iter().map(|b| b.meta.max_time).max().unwrap_or(i64::MIN));
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        let keep = ms(self.opts.retention_time);
        if keep > 0 {
            doomed.extend(blocks.iter().filter(|b| b.meta.max_time < newest.saturating_sub(keep)).cloned());
        }
        if self.opts.retention_size > 0 {
            let mut total: u64 = wal::size(&self.dir.join("wal")) + blocks.iter().map(|b| b.size()).sum::<u64>();
            total -= doomed.iter().map(|b| b.size()).sum::<u64>();
            let mut by_age: Vec<&Arc<Block>> =
                blocks.iter().filter(|b| !doomed.iter().any(|d| Arc::ptr_eq(b, d))).collect();
            by_age.sort_by_key(|b| (b.meta.max_time, b.meta.min_time));
            for b in by_age {
                if total <= self.opts.retention_size {
                    break;
                }
                total -= b.size();
                doomed.push(b.clone());
            }
        }
        if doomed.is_empty() {
            return;
        }
        self.state.write().blocks.retain(|b| !doomed.iter().any(|d| Arc::ptr_eq(b, d)));
        for b in doomed {
            info!(block = %b.meta.id, max_time = b.meta.max_time, "retention deletes block");
            self.pages.forget_block(b.uid);
            let _ = remove_block_dir(&b.dir);
            self.counters.blocks_deleted.fetch_add(1, Relaxed);
        }
    }

    /// Every source's data for the matching series, in source order (oldest block first,
    /// head last), unmerged.
    fn gather(&self, range: TimeRange, matchers: &[Matcher], samples: bool) -> Result<Vec<(Labels, Vec<Sample>)>> {
        let mut out: Vec<(Labels, Vec<Sample>)> = Vec::new();
        let (blocks, frozen, head) = {
            let state = self.state.read();
            let mut head = Vec::new();
            for (r, labels) in self.head.matching(matchers) {
                let mut buf = Vec::new();
                let hit = self.head.with(r, |s| {
                    if samples {
                        s.samples(range, &mut buf);
                        !buf.is_empty()
                    } else {
                        s.bounds().is_some_and(|(lo, hi)| range.overlaps(lo, hi))
                    }
                });
                if hit {
                    head.push((labels, buf));
                }
            }
            (state.blocks.clone(), state.frozen.clone(), head)
        };
        let mut block_sorted = blocks;
        block_sorted.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        for b in block_sorted.iter().filter(|b| range.overlaps(b.meta.min_time, b.meta.max_time)) {
            let mut cache = PageCache::with_shared(self.pages.clone());
            let n = out.len();
            let mut failed = None;
            for i in b.postings.select(matchers) {
                let mut buf = Vec::new();
                if samples {
                    if let Err(e) = b.samples(i, range, &mut cache, &mut buf) {
                        failed = Some(e);
                        break;
                    }
                    if buf.is_empty() {
                        continue;
                    }
                } else if !b.overlaps(i, range) {
                    continue;
                }
                out.push((b.series[i as usize].labels.clone(), buf));
            }
            if let Some(e) = failed {
                out.truncate(n);
                self.drop_corrupt_block(b, &e);
            }
        }
        if let Some(frozen) = frozen {
            for s in frozen.iter().filter(|s| matches_all(&s.labels, matchers)) {
                let mut buf = Vec::new();
                s.samples(range, &mut buf);
                if !buf.is_empty() {
                    out.push((s.labels.clone(), if samples { buf } else { Vec::new() }));
                }
            }
        }
        out.extend(head);
        Ok(out)
    }

    fn drop_corrupt_block(&self, b: &Arc<Block>, e: &Error) {
        let removed = {
            let mut state = self.state.write();
            let before = state.blocks.len();
            state.blocks.retain(|x| !Arc::ptr_eq(x, b));
            before != state.blocks.len()
        };
        if removed {
            self.pages.forget_block(b.uid);
            self.quarantine(&b.dir, &e.to_string());
        }
    }

    fn merged(&self, range: TimeRange, matchers: &[Matcher], samples: bool) -> Result<Vec<Series>> {
        let mut all = self.gather(range, matchers, samples)?;
        // Stable: equal labels keep source order, so the newest source comes last.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<Series> = Vec::with_capacity(all.len());
        for (labels, s) in all {
            match out.last_mut() {
                Some(last) if last.labels == labels => {
                    // Sources usually follow each other in time: then there is nothing to merge.
                    let disjoint = matches!((last.samples.last(), s.first()), (Some(a), Some(b)) if a.t < b.t);
                    last.samples.extend(s);
                    if !disjoint {
                        dedup_keep_last(&mut last.samples);
                    }
                }
                _ => out.push(Series { labels, samples: s }),
            }
        }
        Ok(out)
    }
}

fn dedup_keep_last(v: &mut Vec<Sample>) {
    v.sort_by_key(|s| s.t);
    let mut keep = 0;
    for i in 0..v.len() {
        if i + 1 < v.len() && v[i + 1].t == v[i].t {
            continue;
        }
        v[keep] = v[i];
        keep += 1;
    }
    v.truncate(keep);
}

fn sort_blocks(blocks: &mut [Arc<Block>]) {
    blocks.sort_by(|a, b| (a.meta.min_time, &a.meta.id).cmp(&(b.meta.min_time, &b.meta.id)));
}

fn remove_block_dir(dir: &Path) -> std::io::Result<()> {
    // Rename first so a crash mid-delete leaves a directory the next open removes.
    let doomed = dir.with_extension("deleting");
    fs::rename(dir, &doomed)?;
    fs::remove_dir_all(&doomed)
}

/// The next blocks to merge: any overlapping ones first, then aligned windows of 3x, 9x, ...
/// the block duration (up to a tenth of retention) whose time has fully passed.
fn plan_compaction(blocks: &[Arc<Block>], bd: i64, retention: i64, newest: i64) -> Option<Vec<Arc<Block>>> {
    // Overlaps: blocks are sorted by min time, so a run of overlapping neighbours.
    let mut i = 0;
    while i < blocks.len() {
        let mut max = blocks[i].meta.max_time;
        let mut j = i + 1;
        while j < blocks.len() && blocks[j].meta.min_time <= max {
            max = max.max(blocks[j].meta.max_time);
            j += 1;
        }
        if j - i > 1 {
            return Some(blocks[i..j].to_vec());
        }
        i = j;
    }
    let limit = if retention > 0 { retention / 10 } else { i64::MAX };
    let mut range = bd.saturating_mul(3);
    while range <= limit && range < i64::MAX / 4 {
        let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in blocks {
            let w = b.meta.min_time.div_euclid(range);
            if b.meta.max_time.div_euclid(range) == w {
                windows.entry(w).or_default().push(b.clone());
            }
        }
        for (w, group) in windows {
            let done = newest >= (w + 1).saturating_mul(range);
            if group.len() > 1 && done {
                return Some(group);
            }
        }
        range = range.saturating_mul(3);
    }
    None
}

impl MetricWriter for Tsdb {
    /// Looks up refs, then under the WAL lock validates against the head and logs what it
    /// accepts, then applies it after the lock is released, so the next write can validate
    /// and log while this one applies. Series with logged, unapplied samples are `pending`;
    /// a write that meets one waits for it, so every series changes in WAL order. Each phase
    /// locks a stripe once, not once per series.
    fn write(&self, batch: &WriteBatch) -> storage::Result<WriteStats> {
        let mut stats = WriteStats::default();
        let generation = self.head.generation();
        let mut items: Vec<(u32, Sample)> = Vec::with_capacity(batch.sample_count());
        let mut refs: Vec<(u32, &Labels)> = Vec::with_capacity(batch.series_count());
        for (labels, samples) in batch.iter() {
            if samples.is_empty() {
                continue;
            }
            if labels.is_empty() {
                return Err(storage::Error::InvalidInput("a series without labels cannot be stored".into()));
            }
            let (r, created) = self.head.get_or_create(labels, self.head.hash(labels));
            stats.new_series += created as usize;
            refs.push((r, labels));
            items.extend(samples.iter().map(|s| (r, *s)));
        }
        if items.is_empty() {
            return Ok(stats);
        }
        sort_by_stripe(&mut items);
        let window = ms(self.opts.out_of_order_window);
        let mut wal = self.wal.lock();
        if self.head.generation() != generation {
            // A cut may have forgotten an idle series between lookup and lock: look it up again.
            for &(r, labels) in &refs {
                if !self.head.is_live(r) {
                    let (new, _) = self.head.get_or_create(labels, self.head.hash(labels));
                    items.iter_mut().filter(|(x, _)| *x == r).for_each(|(x, _)| *x = new);
                }
            }
            sort_by_stripe(&mut items);
        }
        let oldest_allowed = match ms(self.opts.retention_time) {
            0 => i64::MIN,
            keep => self.head.max_t().saturating_sub(keep),
        };
        // Validate against the head without changing it, so a failed WAL write leaves no trace.
        let mut accepted: Vec<(u32, Sample)> = Vec::with_capacity(items.len());
        let mut ooo: Vec<bool> = Vec::with_capacity(items.len());
        let mut new_series: Vec<u32> = Vec::new();
        let mut first_refusal: Option<(u32, i64, &'static str)> = None;
        let mut refuse = |count: &mut usize, r: u32, s: &Sample, why: &'static str| {
            *count += 1;
            first_refusal.get_or_insert((r, s.t, why));
        };
        let rej = &mut stats.rejected;
        for in_stripe in items.chunk_by(|a, b| stripe_of(a.0) == stripe_of(b.0)) {
            let s = stripe_of(in_stripe[0].0);
            let mut stripe = self.head.lock_stripe(s);
            for group in in_stripe.chunk_by(|a, b| a.0 == b.0) {
                let r = group[0].0;
                // Another write logged samples of this series and applies them now: its
                // outcome is what these samples must be checked against.
                self.head.wait_applied(s, &mut stripe, r);
                let m = stripe.series_mut(r);
                if !m.logged {
                    // Logged below; a failed WAL write takes it back.
                    m.logged = true;
                    new_series.push(r);
                }
                let before = accepted.len();
                let mut prev: Option<Sample> = None;
                for (_, s) in group {
                    if let Some(p) = prev.filter(|p| p.t == s.t) {
                        if p.v.to_bits() != s.v.to_bits() {
                            let why = "another value at the same timestamp in this request";
                            refuse(&mut rej.duplicate_timestamp, r, s, why);
                        }
                        continue;
                    }
                    prev = Some(*s);
                    if s.t < oldest_allowed {
                        refuse(&mut rej.too_old, r, s, "older than the retention period");
                        continue;
                    }
                    match m.fit(s, window) {
                        Fit::InOrder => {
                            accepted.push((r, *s));
                            ooo.push(false);
                        }
                        Fit::OutOfOrder => {
                            accepted.push((r, *s));
                            ooo.push(true);
                        }
                        Fit::Same => {}
                        Fit::Duplicate => {
                            refuse(&mut rej.duplicate_timestamp, r, s, "another value is stored at this timestamp")
                        }
                        Fit::TooFarBehind => refuse(
                            &mut rej.out_of_order,
                            r,
                            s,
                            "older than the series' newest sample by more than the out-of-order window",
                        ),
                    }
                }
                m.pending = accepted.len() > before;
            }
        }
        let mut buf = Vec::with_capacity(accepted.len() * 12 + new_series.len() * 64 + 64);
        if !new_series.is_empty() {
            let labels: Vec<(u32, Labels)> =
                new_series.iter().filter_map(|&r| Some((r, self.head.labels_of(r)?))).collect();
            wal::encode_series(&mut buf, labels.iter().map(|(r, l)| (*r, l.as_bytes())));
        }
        if !accepted.is_empty() {
            wal::encode_samples(&mut buf, &accepted);
        }
        if let Err(e) = if buf.is_empty() { Ok(()) } else { wal.append(&buf) } {
            self.counters.wal_write_errors.fetch_add(1, Relaxed);
            warn!(error = %e, "wal write failed");
            self.take_back(&items, &new_series);
            return Err(e.into());
        }
        *self.applying.lock() += 1;
        drop(wal);
        self.apply(&accepted, &ooo);
        let mut applying = self.applying.lock();
        *applying -= 1;
        if *applying == 0 {
            self.all_applied.notify_all();
        }
        drop(applying);
        if let Some((r, t, why)) = first_refusal {
            let labels = self.head.labels_of(r).map(|l| l.to_string()).unwrap_or_default();
            stats.rejected.first = Some(format!("{labels} at {t}: {why}"));
        }
        let n_ooo = ooo.iter().filter(|&&o| o).count() as u64;
        stats.samples = accepted.len();
        let c = &self.counters;
        c.samples_appended.fetch_add(accepted.len() as u64, Relaxed);
        c.out_of_order_accepted.fetch_add(n_ooo, Relaxed);
        c.rejected_out_of_order.fetch_add(stats.rejected.out_of_order as u64, Relaxed);
        c.rejected_too_old.fetch_add(stats.rejected.too_old as u64, Relaxed);
        c.rejected_duplicate.fetch_add(stats.rejected.duplicate_timestamp as u64, Relaxed);
        Ok(stats)
    }
}

impl Tsdb {
    /// Puts logged samples into the head, a stripe at a time, and clears their series'
    /// `pending` marks. `accepted` is in stripe order; `ooo` says which go out of order.
    fn apply(&self, accepted: &[(u32, Sample)], ooo: &[bool]) {
        let bd = self.opts.block_ms();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut next = 0;
        for in_stripe in accepted.chunk_by(|a, b| stripe_of(a.0) == stripe_of(b.0)) {
            let s = stripe_of(in_stripe[0].0);
            let mut stripe = self.head.lock_stripe(s);
            for group in in_stripe.chunk_by(|a, b| a.0 == b.0) {
                let m = stripe.series_mut(group[0].0);
                for &(_, sample) in group {
                    if ooo[next] {
                        m.insert_ooo(sample);
                    } else {
                        m.append(sample, bd);
                    }
                    (lo, hi) = (lo.min(sample.t), hi.max(sample.t));
                    next += 1;
                }
                m.pending = false;
            }
            self.head.applied(s, stripe);
        }
        if lo <= hi {
            self.head.note_time(lo);
            self.head.note_time(hi);
        }
    }

    /// Undoes the marks validation left when the WAL write then failed (WAL lock held).
    fn take_back(&self, items: &[(u32, Sample)], new_series: &[u32]) {
        for in_stripe in items.chunk_by(|a, b| stripe_of(a.0) == stripe_of(b.0)) {
            let s = stripe_of(in_stripe[0].0);
            let mut stripe = self.head.lock_stripe(s);
            for &(r, _) in in_stripe {
                stripe.series_mut(r).pending = false;
            }
            for &r in new_series.iter().filter(|&&r| stripe_of(r) == s) {
                stripe.series_mut(r).logged = false;
            }
            self.head.applied(s, stripe);
        }
    }

    /// Waits until no write is between logging and applying (WAL lock held, so none starts).
    fn quiesce(&self) {
        let mut applying = self.applying.lock();
        while *applying > 0 {
            self.all_applied.wait(&mut applying);
        }
    }
}

impl MetricReader for Tsdb {
    fn select(&self, range: TimeRange, matchers: &[Matcher]) -> storage::Result<Vec<Series>> {
        Ok(self.merged(range, matchers, true)?)
    }

    fn series(&self, range: TimeRange, matchers: &[Matcher]) -> storage::Result<Vec<Labels>> {
        Ok(self.merged(range, matchers, false)?.into_iter().map(|s| s.labels).collect())
    }

    fn label_names(&self, range: TimeRange, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        for l in self.series(range, matchers)? {
            for (n, _) in l.iter() {
                if !names.contains(n) {
                    names.insert(n.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, range: TimeRange, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        let mut values = std::collections::BTreeSet::new();
        for l in self.series(range, matchers)? {
            if let Some(v) = l.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}

impl Maintenance for Tsdb {
    fn flush(&self) -> storage::Result<()> {
        Ok(self.flush_head()?)
    }

    fn stats(&self) -> Vec<Stat> {
        let (blocks, bytes) = {
            let s = self.state.read();
            (s.blocks.len(), s.blocks.iter().map(|b| b.size()).sum::<u64>())
        };
        let c = &self.counters;
        let counter =
            |name, help, v: &AtomicU64| Stat { name, help, kind: MetricType::Counter, value: v.load(Relaxed) as f64 };
        let gauge = |name, help, v: f64| Stat { name, help, kind: MetricType::Gauge, value: v };
        vec![
            gauge("telltale_storage_head_series", "Series held in the in-memory head.", self.head.live_series() as f64),
            gauge(
                "telltale_storage_page_cache_bytes",
                "Decompressed block pages kept for readers (storage.tsdb.page_cache_size).",
                self.pages.bytes() as f64,
            ),
            gauge("telltale_storage_head_bytes", "Bytes of sample data in the head.", self.head.heap_bytes() as f64),
            counter("telltale_storage_samples_appended_total", "Samples stored.", &c.samples_appended),
            counter(
                "telltale_storage_out_of_order_samples_total",
                "Samples stored out of order, inside the window.",
                &c.out_of_order_accepted,
            ),
            counter(
                "telltale_storage_rejected_out_of_order_total",
                "Samples refused as too far behind their series.",
                &c.rejected_out_of_order,
            ),
            counter(
                "telltale_storage_rejected_too_old_total",
                "Samples refused as older than retention.",
                &c.rejected_too_old,
            ),
            counter(
                "telltale_storage_rejected_duplicate_total",
                "Samples refused for another value at a stored timestamp.",
                &c.rejected_duplicate,
            ),
            gauge("telltale_storage_blocks", "Blocks on disk.", blocks as f64),
            gauge("telltale_storage_blocks_bytes", "Bytes of blocks on disk.", bytes as f64),
            gauge(
                "telltale_storage_wal_bytes",
                "Bytes of the write-ahead log.",
                wal::size(&self.dir.join("wal")) as f64,
            ),
            counter("telltale_storage_compactions_total", "Block compactions done.", &c.compactions),
            counter("telltale_storage_blocks_deleted_total", "Blocks deleted by retention.", &c.blocks_deleted),
            counter(
                "telltale_storage_wal_write_errors_total",
                "Writes refused because the WAL could not be written.",
                &c.wal_write_errors,
            ),
            counter("telltale_storage_corrupt_files", "Files found corrupt and quarantined.", &c.corrupt_files),
        ]
    }

    fn problems(&self) -> Vec<String> {
        self.problems.lock().clone()
    }
}
