//! [`LogDb`]: the log store behind the storage traits. Writes go to the WAL and the head;
//! the head is flushed into a segment when it is large or old; reads merge the head, heads
//! being flushed and segments, stream by stream, skipping blocks by stream, time and the
//! needle index; maintenance applies retention and compacts small segments.
//!
//! Lock order (always this way round): `writer` → `head` → `persisted`. A write holds the
//! writer lock from its WAL append until its lines are in the head, so a flush (which
//! rotates the WAL and takes the head under the same locks) never separates a line from the
//! WAL segment that holds it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use telltale_model::{Labels, LineFilter, LogBatch, Matcher, MetricType, TimeRange};
use telltale_storage::{
    matches_all, Direction, LogReader, LogRow, LogSelect, LogStats, LogWriteStats, LogWriter, Maintenance, Stat, Visit,
};
use tracing::{info, warn};

use crate::bloom;
use crate::error::{io_err, Error, Result};
use crate::head::{Head, StreamHead};
use crate::linecodec::NeedleFilter;
use crate::options::Options;
use crate::segment::{self, Block, MergeRecord, Segment, StreamRows, WriteSettings};
use crate::wal::{self, Record, Wal, WalEntry};

#[derive(Debug, Default)]
struct Registry {
    by_labels: HashMap<Labels, u32>,
    labels: Vec<Labels>,
}

impl Registry {
    fn id(&mut self, l: &Labels) -> (u32, bool) {
        if let Some(&id) = self.by_labels.get(l) {
            return (id, false);
        }
        let id = self.labels.len() as u32;
        self.labels.push(l.clone());
        self.by_labels.insert(l.clone(), id);
        (id, true)
    }
}

struct Writer {
    wal: Wal,
    /// Streams whose labels the current WAL segment already holds.
    defined: HashSet<u32>,
}

/// A head taken out of service and waiting to be written as a segment.
#[derive(Debug)]
struct Frozen {
    head: Head,
    wal_upto: u64,
}

/// A segment with its streams mapped to the store's stream ids.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) seg: Segment,
    ids: Vec<u32>,
}

#[derive(Debug, Default)]
struct Persisted {
    segments: Vec<Arc<Open>>,
    flushing: Vec<Arc<Frozen>>,
}

/// Up to `slices - 1` times that split the kept rows of `inputs` into slices of about equal
/// rows: first times of blocks, so that each slice starts with a row.
fn time_cuts(inputs: &[Arc<Open>], keep: &dyn Fn(&Open, &Block) -> bool, slices: usize) -> Vec<i64> {
    let mut starts: Vec<(i64, u64)> = inputs
        .iter()
        .flat_map(|o| o.seg.index.blocks.iter().filter(|b| keep(o, b)).map(|b| (b.min_ts, b.rows)))
        .collect();
    starts.sort_unstable();
    let total: u64 = starts.iter().map(|s| s.1).sum();
    let mut cuts = Vec::new();
    let mut seen = 0;
    for (ts, rows) in starts {
        let due = total * (cuts.len() as u64 + 1) / slices.max(1) as u64;
        if cuts.len() + 1 < slices && seen >= due && cuts.last().is_none_or(|&c| ts > c) && seen > 0 {
            cuts.push(ts);
        }
        seen += rows;
    }
    cuts
}

/// Small segments that make a maintenance round merge them (while writes go on).
const BUSY_RUN: usize = 4;
/// Small segments that idle compaction merges.
const IDLE_RUN: usize = 2;
/// Most compaction targets of input one idle merge takes (split into that many slices).
const IDLE_MERGE_TARGETS: u64 = 8;
/// How long no line is written before the store counts as idle (ms).
const IDLE_MS: i64 = 3_000;

/// The log store.
pub struct LogDb {
    dir: PathBuf,
    opts: Options,
    retention_rules: Vec<(Vec<Matcher>, i64)>,
    registry: RwLock<Registry>,
    writer: Mutex<Writer>,
    head: RwLock<Head>,
    persisted: RwLock<Persisted>,
    next_segment: AtomicU64,
    /// Held while heads are frozen or written out.
    flush_lock: Mutex<()>,
    /// Held while retention or compaction rewrites segments. Not the flush lock: a compaction
    /// takes seconds, and a flusher waiting for it let the head grow until writers stalled
    /// (30 s request stalls, 870 MiB peak RSS over 10M lines). Both swap segments in and out
    /// of `persisted` under its lock, each keeping what the other added.
    rewrite_lock: Mutex<()>,
    /// When `flush_pending` last failed (ms), so it backs off.
    flush_failed_at: AtomicI64,
    /// When lines were last written (ms), so compaction knows the store is idle.
    last_write_at: AtomicI64,
    problems: Mutex<Vec<String>>,
    corrupt: AtomicU64,
    flushes: AtomicU64,
    compactions: AtomicU64,
    blocks_read: AtomicU64,
    blocks_skipped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl LogDb {
    /// Opens (or creates) the store in `dir`: verifies segments (quarantining corrupt ones),
    /// drops WAL segments that segments already cover, and replays the rest into the head.
    pub fn open(dir: &Path, opts: &Options) -> Result<LogDb> {
        opts.validate()?;
        let retention_rules = opts
            .retention_streams
            .iter()
            .map(|r| {
                let m = crate::selector::parse(&r.selector).map_err(Error::InvalidOptions)?;
                Ok((m, i64::try_from(r.period.as_nanos()).unwrap_or(i64::MAX)))
            })
            .collect::<Result<Vec<_>>>()?;
        let (wal_dir, seg_dir, q_dir) = (dir.join("wal"), dir.join("segments"), dir.join("quarantine"));
        for d in [&wal_dir, &seg_dir] {
            fs::create_dir_all(d).map_err(io_err("create directory", d))?;
        }
        let mut problems = Vec::new();
        let mut corrupt = 0u64;
        let mut registry = Registry::default();
        let (ids, junk) = segment::list(&seg_dir)?;
        for j in junk {
            let _ = fs::remove_file(&j);
        }
        let mut segments = Vec::new();
        let mut next = 1;
        for id in ids {
            next = next.max(id + 1);
            match Segment::open(&seg_dir, id) {
                Ok(seg) => {
                    let ids = seg.index.streams.iter().map(|l| registry.id(l).0).collect();
                    segments.push(Arc::new(Open { seg, ids }));
                }
                Err(e) => {
                    warn!(error = %e, segment = id, "quarantining corrupt log segment");
                    quarantine(&q_dir, &segment::parquet_path(&seg_dir, id));
                    quarantine(&q_dir, &segment::index_path(&seg_dir, id));
                    problems.push(format!("log segment {id:010} quarantined: {e}"));
                    corrupt += 1;
                }
            }
        }
        settle_merges(&seg_dir, &mut segments);
        let covered = segments.iter().map(|s| s.seg.index.wal_upto).max().unwrap_or(0);
        let (wal_segs, _) = wal::list(&wal_dir)?;
        let mut head = Head::default();
        let mut last = covered;
        let n = wal_segs.len();
        for (i, seg) in wal_segs.into_iter().enumerate() {
            last = last.max(seg);
            let path = wal::segment_path(&wal_dir, seg);
            if seg <= covered {
                let _ = fs::remove_file(&path);
                continue;
            }
            let data = fs::read(&path).map_err(io_err("read wal segment", &path))?;
            let mut map: HashMap<u32, u32> = HashMap::new();
            let damage = wal::read_records(&data, |r| match r {
                Record::Streams(s) => {
                    for (wid, lb) in s {
                        if let Ok(l) = Labels::from_encoded(lb) {
                            map.insert(wid, registry.id(&l).0);
                        }
                    }
                }
                Record::Entries(es) => {
                    for e in es {
                        let Some(&sid) = map.get(&e.stream) else { continue };
                        let meta = Labels::from_encoded(e.meta).unwrap_or_default();
                        push_head(&mut head, sid, e.ts, e.line, &meta);
                    }
                }
            });
            if let Some(d) = damage {
                if i + 1 == n {
                    let f =
                        fs::OpenOptions::new().write(true).open(&path).map_err(io_err("open wal segment", &path))?;
                    f.set_len(d.good_len).map_err(io_err("truncate wal segment", &path))?;
                    problems.push(format!(
                        "log wal segment {} truncated after a torn write: {}",
                        path.display(),
                        d.reason
                    ));
                } else {
                    problems.push(format!("log wal segment {} quarantined: {}", path.display(), d.reason));
                    quarantine(&q_dir, &path);
                    corrupt += 1;
                }
            }
        }
        if !head.is_empty() {
            head.since_ms = Some(now_ms());
            info!(lines = head.lines, bytes = head.bytes, "log wal replayed");
        }
        let w = Wal::create(&wal_dir, wal::MAGIC, last + 1, opts.wal.segment_size, opts.wal.fsync_each_write())?;
        let db = LogDb {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            retention_rules,
            registry: RwLock::new(registry),
            writer: Mutex::new(Writer { wal: w, defined: HashSet::new() }),
            head: RwLock::new(head),
            persisted: RwLock::new(Persisted { segments, flushing: Vec::new() }),
            next_segment: AtomicU64::new(next),
            flush_lock: Mutex::new(()),
            rewrite_lock: Mutex::new(()),
            flush_failed_at: AtomicI64::new(i64::MIN / 2),
            last_write_at: AtomicI64::new(i64::MIN / 2),
            problems: Mutex::new(problems),
            corrupt: AtomicU64::new(corrupt),
            flushes: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            blocks_read: AtomicU64::new(0),
            blocks_skipped: AtomicU64::new(0),
        };
        Ok(db)
    }

    fn seg_dir(&self) -> PathBuf {
        self.dir.join("segments")
    }

    fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }

    /// fsyncs the current WAL segment (the periodic fsync policy calls this).
    pub fn sync_wal(&self) -> Result<()> {
        Ok(lock(&self.writer).wal.sync()?)
    }

    /// Writes the head out as a segment now, and any earlier head whose write failed.
    pub fn flush_now(&self) -> Result<()> {
        let _g = lock(&self.flush_lock);
        self.freeze()?;
        self.write_frozen()
    }

    /// Writes out the heads writers froze when they filled up. The server calls this every
    /// few hundred milliseconds from a background thread, so a write waits for a segment to be
    /// written only when the flusher falls behind by a whole head. After a failure (disk
    /// full) it waits 5 s before trying again.
    pub fn flush_pending(&self) -> Result<()> {
        if read(&self.persisted).flushing.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        if now - self.flush_failed_at.load(Ordering::Relaxed) < 5_000 {
            return Ok(());
        }
        let _g = lock(&self.flush_lock);
        let res = self.write_frozen();
        if res.is_err() {
            self.flush_failed_at.store(now, Ordering::Relaxed);
        }
        res
    }

    fn freeze(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        let mut h = write(&self.head);
        if h.is_empty() {
            return Ok(());
        }
        let closed = w.wal.rotate()?;
        w.defined.clear();
        let frozen = Arc::new(Frozen { head: std::mem::take(&mut *h), wal_upto: closed });
        write(&self.persisted).flushing.push(frozen);
        Ok(())
    }

    fn write_frozen(&self) -> Result<()> {
        let pending: Vec<Arc<Frozen>> = read(&self.persisted).flushing.clone();
        for f in pending {
            let open = self.write_segment_from_head(&f)?;
            {
                let mut p = write(&self.persisted);
                if let Some(o) = open {
                    p.segments.push(o);
                }
                p.flushing.retain(|x| !Arc::ptr_eq(x, &f));
            }
            self.flushes.fetch_add(1, Ordering::Relaxed);
            let (segs, _) = wal::list(&self.wal_dir())?;
            for s in segs.into_iter().filter(|&s| s <= f.wal_upto) {
                let _ = fs::remove_file(wal::segment_path(&self.wal_dir(), s));
            }
        }
        Ok(())
    }

    fn write_segment_from_head(&self, f: &Frozen) -> Result<Option<Arc<Open>>> {
        let reg = read(&self.registry);
        let mut ids: Vec<u32> = f.head.streams.keys().copied().collect();
        ids.sort_by(|a, b| reg.labels[*a as usize].cmp(&reg.labels[*b as usize]));
        let labels: Vec<Labels> = ids.iter().map(|id| reg.labels[*id as usize].clone()).collect();
        drop(reg);
        let mut rows = Vec::with_capacity(ids.len());
        for (id, l) in ids.iter().zip(&labels) {
            let s = &f.head.streams[id];
            let order = s.order();
            rows.push(StreamRows {
                labels: l,
                ts: order.iter().map(|&i| s.ts[i as usize]).collect(),
                lines: order.iter().map(|&i| s.line(i as usize)).collect(),
                meta: order.iter().map(|&i| &s.meta[i as usize]).collect(),
            });
        }
        self.write_segment(&rows, f.wal_upto, ids)
    }

    fn write_segment(&self, rows: &[StreamRows<'_>], wal_upto: u64, ids: Vec<u32>) -> Result<Option<Arc<Open>>> {
        if rows.iter().all(|r| r.ts.is_empty()) {
            return Ok(None);
        }
        let id = self.next_segment.fetch_add(1, Ordering::Relaxed);
        let settings = WriteSettings {
            block_lines: self.opts.block_lines,
            compression_level: self.opts.flush_compression_level,
            // Encoding costs the flusher more than a third of its CPU, so flushes write text
            // and compaction encodes, unless no compaction will.
            encode_lines: !self.opts.plain_lines && self.opts.compaction_target == 0,
        };
        segment::write(&self.seg_dir(), id, wal_upto, rows, &settings)?;
        self.open_written(id, ids).map(Some)
    }

    /// Opens segment `id` just written with streams `ids` (looked up again if its index
    /// holds other streams).
    fn open_written(&self, id: u64, ids: Vec<u32>) -> Result<Arc<Open>> {
        let seg = Segment::open(&self.seg_dir(), id)?;
        let ids = if ids.len() == seg.index.streams.len() { ids } else { self.ids_of(&seg) };
        Ok(Arc::new(Open { seg, ids }))
    }

    fn ids_of(&self, seg: &Segment) -> Vec<u32> {
        let mut reg = write(&self.registry);
        seg.index.streams.iter().map(|l| reg.id(l).0).collect()
    }

    /// Upkeep at `now_ms`: flush an old head, apply retention, compact small segments.
    pub fn maintain(&self, now_ms: i64) -> Result<()> {
        let age = self.opts.head_max_age.as_millis() as i64;
        let old = read(&self.head).since_ms.is_some_and(|s| now_ms - s >= age);
        let pending = !read(&self.persisted).flushing.is_empty();
        if old || pending {
            self.flush_now()?;
        }
        self.apply_retention(now_ms.saturating_mul(1_000_000))?;
        self.compact()?;
        Ok(())
    }

    fn apply_retention(&self, now_ns: i64) -> Result<()> {
        let _g = lock(&self.rewrite_lock);
        let keep_ns = i64::try_from(self.opts.retention_time.as_nanos()).unwrap_or(i64::MAX);
        let segs: Vec<Arc<Open>> = read(&self.persisted).segments.clone();
        let mut drop_ids = HashSet::new();
        if keep_ns > 0 {
            for s in &segs {
                if s.seg.index.max_ts() < now_ns.saturating_sub(keep_ns) {
                    drop_ids.insert(s.seg.id);
                }
            }
        }
        if self.opts.retention_size > 0 {
            let mut total: u64 = segs.iter().map(|s| s.seg.bytes).sum::<u64>() + dir_size(&self.wal_dir());
            let mut by_age: Vec<&Arc<Open>> = segs.iter().collect();
            by_age.sort_by_key(|s| s.seg.index.max_ts());
            for s in by_age {
                if total <= self.opts.retention_size {
                    break;
                }
                if drop_ids.insert(s.seg.id) {
                    total = total.saturating_sub(s.seg.bytes);
                }
            }
        }
        if !drop_ids.is_empty() {
            write(&self.persisted).segments.retain(|s| !drop_ids.contains(&s.seg.id));
            for id in &drop_ids {
                let _ = fs::remove_file(segment::parquet_path(&self.seg_dir(), *id));
                let _ = fs::remove_file(segment::index_path(&self.seg_dir(), *id));
            }
            info!(segments = drop_ids.len(), "log retention deleted segments");
        }
        // Per-stream retention: rewrite segments holding expired blocks of such streams.
        if self.retention_rules.is_empty() {
            return Ok(());
        }
        let reg_labels: Vec<Labels> = read(&self.registry).labels.clone();
        let expired = |o: &Open, b: &Block| {
            let l = &reg_labels[o.ids[b.stream] as usize];
            self.retention_rules
                .iter()
                .any(|(m, period)| matches_all(l, m) && b.max_ts < now_ns.saturating_sub(*period))
        };
        let segs: Vec<Arc<Open>> = read(&self.persisted).segments.clone();
        for s in segs {
            if s.seg.index.blocks.iter().any(|b| expired(&s, b)) {
                self.rewrite(std::slice::from_ref(&s), &|o, b| !expired(o, b), 1)?;
            }
        }
        Ok(())
    }

    /// Merges runs of small segments until none is left, yielding to ingest: it stops while
    /// a full head waits for the flusher. A merge beside a busy flusher took its CPU and
    /// raised the peak memory of a burst past 500 MiB; between bursts it catches up at once
    /// instead of one run per maintenance round.
    fn compact(&self) -> Result<()> {
        if self.opts.compaction_target == 0 {
            return Ok(());
        }
        let _g = lock(&self.rewrite_lock);
        while read(&self.persisted).flushing.is_empty() {
            let Some(run) = self.compaction_run(BUSY_RUN) else { break };
            self.rewrite(&run, &|_, _| true, 1)?;
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Compacts once no line has been written for `IDLE_MS`, until done or written to
    /// again: merges any two small segments, and encodes a small segment left alone as
    /// text. The server calls this every second, so a burst is compacted as soon as it
    /// ends, not beside it (merges beside ingest cost it a third of its rate) and not a
    /// maintenance round later.
    pub fn compact_when_idle(&self) -> Result<()> {
        if self.opts.compaction_target == 0 {
            return Ok(());
        }
        let idle = || {
            now_ms() - self.last_write_at.load(Ordering::Relaxed) >= IDLE_MS
                && read(&self.persisted).flushing.is_empty()
        };
        if !idle() {
            return Ok(());
        }
        let Ok(_g) = self.rewrite_lock.try_lock() else { return Ok(()) };
        self.compact_idle_locked()
    }

    /// Does now what `compact_when_idle` does once the store is idle.
    pub fn compact_idle(&self) -> Result<()> {
        if self.opts.compaction_target == 0 {
            return Ok(());
        }
        let _g = lock(&self.rewrite_lock);
        self.compact_idle_locked()
    }

    /// Idle compaction until done, a write arrives or a head waits for the flusher.
    fn compact_idle_locked(&self) -> Result<()> {
        let since = self.last_write_at.load(Ordering::Relaxed);
        while self.last_write_at.load(Ordering::Relaxed) == since && read(&self.persisted).flushing.is_empty() {
            let Some((run, slices)) = self.idle_work() else { break };
            self.rewrite(&run, &|_, _| true, slices)?;
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// What idle compaction does next, and in how many time slices: the small segments
    /// (oldest first, up to `IDLE_MERGE_TARGETS` compaction targets) when two or more are
    /// small, else a small segment of text lines to encode.
    fn idle_work(&self) -> Option<(Vec<Arc<Open>>, usize)> {
        if self.opts.compaction_target == 0 {
            return None;
        }
        let segs = read(&self.persisted);
        let small: Vec<&Arc<Open>> = segs.segments.iter().filter(|s| self.is_small(s)).collect();
        if small.len() >= IDLE_RUN {
            let mut run = Vec::new();
            let mut total = 0;
            for s in small {
                if total + s.seg.bytes > IDLE_MERGE_TARGETS * self.opts.compaction_target && run.len() >= IDLE_RUN {
                    break;
                }
                total += s.seg.bytes;
                run.push(s.clone());
            }
            return Some((run, total.div_ceil(self.opts.compaction_target) as usize));
        }
        let text = |o: &&&Arc<Open>| !o.seg.lines_encoded() && !self.opts.plain_lines;
        small.iter().find(text).map(|o| (vec![(*o).clone()], 1))
    }

    fn is_small(&self, o: &Open) -> bool {
        o.seg.bytes < self.opts.compaction_target / 2
    }

    /// The oldest run of small segments (up to `compaction_target`) when at least
    /// `min_small` segments are small.
    fn compaction_run(&self, min_small: usize) -> Option<Vec<Arc<Open>>> {
        let segs: Vec<Arc<Open>> = read(&self.persisted).segments.clone();
        let small: Vec<&Arc<Open>> = segs.iter().filter(|s| self.is_small(s)).collect();
        if small.len() < min_small {
            return None;
        }
        let mut run = Vec::new();
        let mut total = 0;
        for s in small {
            if total + s.seg.bytes > self.opts.compaction_target && run.len() >= 2 {
                break;
            }
            total += s.seg.bytes;
            run.push(s.clone());
        }
        (run.len() >= 2).then_some(run)
    }

    /// Writes the kept blocks of `inputs` as `slices` new segments that split their time
    /// range, then swaps them in for the inputs. Slices keep what was logged at the same time
    /// together even when streams arrived skewed (as from shippers that fell behind): ids
    /// shared by the lines of one moment then sit in one segment's dictionary.
    ///
    /// Streams are written one at a time and, when a stream's blocks follow each other in
    /// time (segments are time partitions, so they usually do), block by block: memory
    /// stays at about two blocks, not the inputs' whole content.
    fn rewrite(&self, inputs: &[Arc<Open>], keep: &dyn Fn(&Open, &Block) -> bool, slices: usize) -> Result<()> {
        let reg_labels: Vec<Labels> = read(&self.registry).labels.clone();
        let mut streams: Vec<u32> = inputs.iter().flat_map(|o| o.ids.iter().copied()).collect();
        streams.sort_by(|a, b| reg_labels[*a as usize].cmp(&reg_labels[*b as usize]));
        streams.dedup();
        let wal_upto = inputs.iter().map(|o| o.seg.index.wal_upto).max().unwrap_or(0);
        let meta_keys: Vec<String> = inputs.iter().flat_map(|o| o.seg.meta_keys().map(str::to_string)).collect();
        let cuts = time_cuts(inputs, keep, slices);
        let first = self.next_segment.fetch_add(cuts.len() as u64 + 1, Ordering::Relaxed);
        let outputs: Vec<u64> = (first..=first + cuts.len() as u64).collect();
        let merge = MergeRecord { inputs: inputs.iter().map(|o| o.seg.id).collect(), outputs: outputs.clone() };
        let settings = WriteSettings {
            block_lines: self.opts.block_lines,
            compression_level: self.opts.compression_level,
            encode_lines: !self.opts.plain_lines,
        };
        // Held so each input's id dictionary loads once, not once per block.
        let _dicts: Vec<Arc<Vec<u8>>> = inputs.iter().map(|o| o.seg.dict()).collect::<Result<_>>()?;
        let mut written = Vec::new();
        for (k, id) in outputs.iter().enumerate() {
            let lo = if k == 0 { i64::MIN } else { cuts[k - 1] };
            let last = k == cuts.len();
            let hi = if last { i64::MAX } else { cuts[k] };
            let in_slice = |ts: i64| ts >= lo && (last || ts < hi);
            let cols = segment::Columns::new(streams.iter().map(|s| &reg_labels[*s as usize]), meta_keys.clone());
            let mut w = segment::SegmentWriter::create(&self.seg_dir(), *id, wal_upto, cols, &settings)?;
            w.record_merge(merge.clone());
            let mut ids = Vec::new();
            for sid in &streams {
                let labels = &reg_labels[*sid as usize];
                let mut blocks: Vec<(&Open, &Block)> = Vec::new();
                for o in inputs {
                    for (local, gid) in o.ids.iter().enumerate() {
                        if gid == sid {
                            blocks.extend(
                                o.seg
                                    .index
                                    .blocks
                                    .iter()
                                    .filter(|b| b.stream == local && b.max_ts >= lo && (last || b.min_ts < hi))
                                    .filter(|b| keep(o, b))
                                    .map(|b| (&**o, b)),
                            );
                        }
                    }
                }
                blocks.sort_by_key(|(_, b)| (b.min_ts, b.max_ts));
                let in_order = blocks.windows(2).all(|p| p[0].1.max_ts <= p[1].1.min_ts);
                let mut rows: Vec<RowOwned> = Vec::new();
                let mut any = false;
                for (o, b) in &blocks {
                    let d = o.seg.read_block(b, false)?;
                    for i in (0..d.len()).filter(|&i| in_slice(d.ts[i])) {
                        let mut pairs = Vec::new();
                        d.meta_at(i, &mut pairs);
                        rows.push((d.ts[i], d.line(i).to_string(), Labels::from_pairs(pairs).unwrap_or_default()));
                    }
                    if in_order && rows.len() >= self.opts.block_lines {
                        let full = rows.len() - rows.len() % self.opts.block_lines;
                        w.add(&stream_rows(labels, &rows[..full]))?;
                        rows.drain(..full);
                        any = true;
                    }
                }
                rows.sort_by_key(|r| r.0);
                any |= !rows.is_empty();
                w.add(&stream_rows(labels, &rows))?;
                if any {
                    ids.push(*sid);
                }
            }
            if !w.is_empty() {
                w.finish()?;
                written.push(self.open_written(*id, ids)?);
            }
        }
        let gone: HashSet<u64> = merge.inputs.iter().copied().collect();
        {
            let mut p = write(&self.persisted);
            p.segments.retain(|s| !gone.contains(&s.seg.id));
            p.segments.extend(written);
        }
        for id in gone {
            let _ = fs::remove_file(segment::parquet_path(&self.seg_dir(), id));
            let _ = fs::remove_file(segment::index_path(&self.seg_dir(), id));
        }
        Ok(())
    }

    /// Streams matching `matchers`, sorted by labels, with their ids.
    fn matching(&self, matchers: &[Matcher]) -> Vec<(Labels, u32)> {
        let reg = read(&self.registry);
        let mut out: Vec<(Labels, u32)> = reg
            .labels
            .iter()
            .enumerate()
            .filter(|(_, l)| matches_all(l, matchers))
            .map(|(i, l)| (l.clone(), i as u32))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Finishes or undoes the merges a crash cut short. A merge renames its outputs into place
/// one by one, then deletes its inputs. So while an input is left: if every output is in
/// place, the merge is finished by deleting its inputs; if one is missing, it never finished
/// writing, and its outputs are deleted (its inputs hold every line). A merge whose inputs
/// are all gone is done, even when later merges have replaced its outputs.
fn settle_merges(seg_dir: &Path, segments: &mut Vec<Arc<Open>>) {
    let present: HashSet<u64> = segments.iter().map(|s| s.seg.id).collect();
    let mut drop = HashSet::new();
    for s in segments.iter() {
        let Some(m) = &s.seg.index.merge else { continue };
        if !m.inputs.iter().any(|i| present.contains(i)) {
            continue;
        }
        let (kind, ids) = if m.outputs.iter().all(|o| present.contains(o)) {
            ("finished: deleting its inputs", &m.inputs)
        } else {
            ("undone: deleting its outputs", &m.outputs)
        };
        info!(inputs = ?m.inputs, outputs = ?m.outputs, "log segment merge cut short by a crash {kind}");
        drop.extend(ids.iter().filter(|i| present.contains(i)));
    }
    if drop.is_empty() {
        return;
    }
    segments.retain(|s| !drop.contains(&s.seg.id));
    for id in drop {
        let _ = fs::remove_file(segment::parquet_path(seg_dir, id));
        let _ = fs::remove_file(segment::index_path(seg_dir, id));
    }
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn quarantine(q_dir: &Path, path: &Path) {
    if fs::metadata(path).is_err() {
        return;
    }
    let _ = fs::create_dir_all(q_dir);
    let parent =
        path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let _ = fs::rename(path, q_dir.join(format!("{parent}-{name}")));
}

fn push_head(head: &mut Head, sid: u32, ts: i64, line: &[u8], meta: &Labels) -> bool {
    let s = head.streams.entry(sid).or_default();
    if !s.has_room(line.len()) {
        return false;
    }
    if s.push(ts, line, meta) {
        head.bytes += line.len();
        head.lines += 1;
        true
    } else {
        false
    }
}

impl LogWriter for LogDb {
    fn write_logs(&self, batch: &LogBatch) -> telltale_storage::Result<LogWriteStats> {
        let mut stats = LogWriteStats::default();
        if batch.is_empty() {
            return Ok(stats);
        }
        self.last_write_at.store(now_ms(), Ordering::Relaxed);
        // Stream ids first (new streams are counted once).
        let mut sids = Vec::with_capacity(batch.stream_count());
        {
            let known: Vec<Option<u32>> = {
                let reg = read(&self.registry);
                batch.iter().map(|(l, _)| reg.by_labels.get(l).copied()).collect()
            };
            let mut reg = None;
            for ((l, _), k) in batch.iter().zip(known) {
                let id = match k {
                    Some(id) => id,
                    None => {
                        let r = reg.get_or_insert_with(|| write(&self.registry));
                        let (id, new) = r.id(l);
                        stats.new_streams += usize::from(new);
                        id
                    }
                };
                sids.push(id);
            }
        }
        let mut buf = Vec::with_capacity(batch.line_bytes() + batch.entry_count() * 16 + 64);
        {
            let mut w = lock(&self.writer);
            let encode = |w: &mut Writer, buf: &mut Vec<u8>| {
                buf.clear();
                let reg = read(&self.registry);
                let new: Vec<u32> = {
                    let mut seen = HashSet::new();
                    sids.iter().copied().filter(|s| !w.defined.contains(s) && seen.insert(*s)).collect()
                };
                if !new.is_empty() {
                    wal::encode_streams(buf, new.iter().map(|s| (*s, reg.labels[*s as usize].as_bytes())));
                }
                let entries = batch.iter().zip(&sids).flat_map(|((_, es), sid)| {
                    es.iter().map(move |e| WalEntry {
                        stream: *sid,
                        ts: e.ts,
                        line: e.line.as_bytes(),
                        meta: e.metadata.as_bytes(),
                    })
                });
                wal::encode_entries(buf, batch.entry_count(), entries);
                new
            };
            let mut new = encode(&mut w, &mut buf);
            if w.wal.would_overflow(buf.len()) {
                w.wal.rotate().map_err(Error::from)?;
                w.defined.clear();
                new = encode(&mut w, &mut buf);
            }
            w.wal.append(&buf).map_err(Error::from)?;
            w.defined.extend(new);
            let mut h = write(&self.head);
            if h.since_ms.is_none() {
                h.since_ms = Some(now_ms());
            }
            for ((_, es), sid) in batch.iter().zip(&sids) {
                for e in es {
                    if push_head(&mut h, *sid, e.ts, e.line.as_bytes(), &e.metadata) {
                        stats.entries += 1;
                        stats.bytes += e.line.len();
                    } else {
                        stats.duplicates += 1;
                    }
                }
            }
        }
        let bytes = read(&self.head).bytes as u64;
        if bytes > self.opts.head_max_bytes {
            let pending = !read(&self.persisted).flushing.is_empty();
            if !pending {
                // Freeze the full head (a swap and a WAL rotation) and go on: the flusher
                // (`flush_pending`) writes it out while writers fill a new head.
                if let Ok(_g) = self.flush_lock.try_lock() {
                    if let Err(e) = self.freeze() {
                        warn!(error = %e, "cannot freeze the log head; retrying at the next write");
                    }
                }
            } else if bytes > self.opts.head_max_bytes + self.opts.head_max_bytes / 2 {
                // The flusher is half a head behind: wait until it has written the frozen head
                // (back-pressure instead of unbounded memory), write it here if no flusher runs,
                // then freeze this one for it. Heads in memory stay under 3 x head_max_bytes
                // (a frozen one and this one, each at most 1.5 x); at 2 x it was 4 x.
                let _g = lock(&self.flush_lock);
                let res = if read(&self.persisted).flushing.is_empty() { Ok(()) } else { self.write_frozen() };
                if let Err(e) = res.and_then(|()| self.freeze()) {
                    // The lines are in the WAL and in memory; the flush is retried later.
                    warn!(error = %e, "log head flush failed; retrying at the next write or maintenance");
                }
            }
        }
        Ok(stats)
    }
}

/// A row as compaction carries it: time, line, metadata.
type RowOwned = (i64, String, Labels);

/// Rows of one stream in the shape the segment writer takes.
fn stream_rows<'a>(labels: &'a Labels, rows: &'a [RowOwned]) -> StreamRows<'a> {
    StreamRows {
        labels,
        ts: rows.iter().map(|x| x.0).collect(),
        lines: rows.iter().map(|x| x.1.as_bytes()).collect(),
        meta: rows.iter().map(|x| &x.2).collect(),
    }
}

/// A row copied out of a head, for reading without holding its lock.
#[derive(Debug, Clone)]
struct OwnedRow {
    ts: i64,
    line: String,
    meta: Labels,
}

/// Where a stream's rows come from in one read.
enum Source {
    Rows(Vec<OwnedRow>),
    Block(Arc<Open>, usize),
}

impl Source {
    fn bounds(&self) -> (i64, i64) {
        match self {
            Source::Rows(r) => (r.first().map_or(i64::MAX, |x| x.ts), r.last().map_or(i64::MIN, |x| x.ts)),
            Source::Block(o, b) => (o.seg.index.blocks[*b].min_ts, o.seg.index.blocks[*b].max_ts),
        }
    }
}

fn head_rows(s: &StreamHead, range: TimeRange, filters: &[LineFilter], skip_lines: bool) -> Vec<OwnedRow> {
    let mut out = Vec::new();
    for i in s.order() {
        let i = i as usize;
        let ts = s.ts[i];
        if !range.contains(ts) {
            continue;
        }
        let line = std::str::from_utf8(s.line(i)).unwrap_or("");
        if !filters.iter().all(|f| f.matches(line)) {
            continue;
        }
        out.push(OwnedRow {
            ts,
            line: if skip_lines { String::new() } else { line.to_string() },
            meta: s.meta[i].clone(),
        });
    }
    out
}

impl LogDb {
    /// Head rows and segment blocks of every matching stream, captured consistently.
    fn snapshot(
        &self,
        streams: &[(Labels, u32)],
        q: &LogSelect<'_>,
        pieces: &[bloom::Piece],
    ) -> (HashMap<u32, Vec<Source>>, usize, Needles) {
        let skip_lines = q.skip_lines && q.filters.is_empty();
        let needle = q
            .filters
            .iter()
            .find(|f| f.op == telltale_model::FilterOp::Contains && NeedleFilter::applies(&f.value))
            .map(|f| f.value.as_str());
        let mut needles = Needles::new();
        let wanted: HashSet<u32> = streams.iter().map(|s| s.1).collect();
        let mut out: HashMap<u32, Vec<Source>> = HashMap::new();
        let h = read(&self.head);
        let p = read(&self.persisted);
        let mut skipped = 0;
        for o in &p.segments {
            let ix = &o.seg.index;
            if ix.max_ts() < q.range.start || ix.min_ts() > q.range.end {
                continue;
            }
            // A segment whose dictionary cannot be read is not skipped from (reading it
            // reports the error).
            let probes = if pieces.is_empty() { None } else { o.seg.probe(pieces).ok() };
            if let Some(f) = needle.zip(probes.as_ref()).and_then(|(n, p)| o.seg.needle_filter(n, p)) {
                needles.insert(o.seg.id, f);
            }
            for (bi, b) in ix.blocks.iter().enumerate() {
                let sid = o.ids[b.stream];
                if !wanted.contains(&sid) || b.max_ts < q.range.start || b.min_ts > q.range.end {
                    continue;
                }
                if probes.as_ref().is_some_and(|p| !o.seg.may_match(b, p)) {
                    skipped += 1;
                    continue;
                }
                out.entry(sid).or_default().push(Source::Block(o.clone(), bi));
            }
        }
        for f in &p.flushing {
            for (sid, s) in &f.head.streams {
                if wanted.contains(sid) {
                    let rows = head_rows(s, q.range, q.filters, skip_lines);
                    if !rows.is_empty() {
                        out.entry(*sid).or_default().push(Source::Rows(rows));
                    }
                }
            }
        }
        for (sid, s) in &h.streams {
            if wanted.contains(sid) {
                let rows = head_rows(s, q.range, q.filters, skip_lines);
                if !rows.is_empty() {
                    out.entry(*sid).or_default().push(Source::Rows(rows));
                }
            }
        }
        (out, skipped, needles)
    }
}

/// Per segment, the filter of rows that may hold the query's needle.
type Needles = HashMap<u64, NeedleFilter>;

/// The id dictionaries of the segments `sources` read, held so they load once.
fn hold_dicts<'a>(sources: impl Iterator<Item = &'a Source>) -> telltale_storage::Result<Vec<Arc<Vec<u8>>>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in sources {
        if let Source::Block(o, _) = s {
            if seen.insert(o.seg.id) {
                out.push(o.seg.dict().map_err(telltale_storage::Error::from)?);
            }
        }
    }
    Ok(out)
}

/// Rows of one source, decoded and filtered, in time order.
fn materialize(
    src: &Source,
    q: &LogSelect<'_>,
    skip_lines: bool,
    needles: &Needles,
) -> telltale_storage::Result<Vec<OwnedRow>> {
    match src {
        Source::Rows(r) => Ok(r.clone()),
        Source::Block(o, bi) => {
            let forward = LogSelect { direction: Direction::Forward, ..q.clone() };
            let mut out = Vec::new();
            let needle = needles.get(&o.seg.id);
            visit_block(o, *bi, &forward, skip_lines, needle, &mut 1, &mut |row| {
                let meta = if row.metadata.is_empty() {
                    Labels::empty()
                } else {
                    Labels::from_pairs(row.metadata.iter().copied()).unwrap_or_default()
                };
                out.push(OwnedRow { ts: row.ts, line: row.line.to_string(), meta });
                Visit::Continue
            })?;
            Ok(out)
        }
    }
}

/// Visits the rows of block `bi` of `o` that `q` selects, in `q`'s direction, until the
/// visitor stops. The block's metadata sets take ids from `next_metadata_id` on.
fn visit_block(
    o: &Open,
    bi: usize,
    q: &LogSelect<'_>,
    skip_lines: bool,
    needle: Option<&NeedleFilter>,
    next_metadata_id: &mut u64,
    visit: &mut dyn FnMut(&LogRow<'_>) -> Visit,
) -> telltale_storage::Result<Visit> {
    let d =
        o.seg.read_block_where(&o.seg.index.blocks[bi], skip_lines, needle).map_err(telltale_storage::Error::from)?;
    let (meta_set, meta_set_rows) = d.meta_sets();
    let sets: Vec<Vec<(&str, &str)>> = meta_set_rows
        .iter()
        .map(|&i| {
            let mut pairs = Vec::new();
            d.meta_at(i, &mut pairs);
            pairs
        })
        .collect();
    let first_id = *next_metadata_id;
    *next_metadata_id += sets.len() as u64;
    let mut visit_row = |i: usize| {
        let ts = d.ts[i];
        if !q.range.contains(ts) {
            return Visit::Continue;
        }
        let line = d.line(i);
        if !q.filters.iter().all(|f| f.matches(line)) {
            return Visit::Continue;
        }
        let set = meta_set[i];
        visit(&LogRow { ts, line, metadata: &sets[set as usize], metadata_id: first_id + u64::from(set) })
    };
    let mut outcome = Visit::Continue;
    if q.direction == Direction::Backward {
        for i in (0..d.len()).rev() {
            outcome = visit_row(i);
            if outcome != Visit::Continue {
                break;
            }
        }
    } else {
        for i in 0..d.len() {
            outcome = visit_row(i);
            if outcome != Visit::Continue {
                break;
            }
        }
    }
    Ok(outcome)
}

impl LogReader for LogDb {
    fn select_logs(
        &self,
        q: &LogSelect<'_>,
        visit: &mut dyn FnMut(&Labels, &LogRow<'_>) -> Visit,
    ) -> telltale_storage::Result<()> {
        let streams = self.matching(q.matchers);
        if streams.is_empty() {
            return Ok(());
        }
        let pieces: Vec<bloom::Piece> = q
            .filters
            .iter()
            .filter(|f| f.op == telltale_model::FilterOp::Contains)
            .flat_map(|f| bloom::needle_pieces(&f.value))
            .collect();
        let skip_lines = q.skip_lines && q.filters.is_empty();
        let (mut sources, skipped, needles) = self.snapshot(&streams, q, &pieces);
        // Segments load their id dictionary on demand and drop it when nobody holds it:
        // held here, each is read once per query, not once per block.
        // Segments searched for a needle load theirs only if a row may hold it.
        let _dicts = if skip_lines {
            Vec::new()
        } else {
            hold_dicts(
                sources
                    .values()
                    .flatten()
                    .filter(|s| !matches!(s, Source::Block(o, _) if needles.contains_key(&o.seg.id))),
            )?
        };
        self.blocks_skipped.fetch_add(skipped as u64, Ordering::Relaxed);
        let read_blocks = sources.values().flatten().filter(|s| matches!(s, Source::Block(..))).count();
        self.blocks_read.fetch_add(read_blocks as u64, Ordering::Relaxed);
        let mut next_metadata_id = 1;
        for (labels, sid) in &streams {
            let Some(mut srcs) = sources.remove(sid) else { continue };
            // Order sources by start; cluster the ones whose time ranges overlap.
            srcs.sort_by_key(|s| s.bounds().0);
            let mut clusters: Vec<Vec<Source>> = Vec::new();
            let mut cluster_end = i64::MIN;
            for s in srcs {
                let (lo, hi) = s.bounds();
                match clusters.last_mut() {
                    Some(c) if lo <= cluster_end => {
                        c.push(s);
                        cluster_end = cluster_end.max(hi);
                    }
                    _ => {
                        clusters.push(vec![s]);
                        cluster_end = hi;
                    }
                }
            }
            if q.direction == Direction::Backward {
                clusters.reverse();
            }
            let mut outcome = Visit::Continue;
            'stream: for c in &clusters {
                if let [Source::Block(o, bi)] = c.as_slice() {
                    // A block alone in its time range is visited as decoded, row by row,
                    // without an owned copy of each row.
                    let needle = needles.get(&o.seg.id);
                    outcome = visit_block(o, *bi, q, skip_lines, needle, &mut next_metadata_id, &mut |row| {
                        visit(labels, row)
                    })?;
                    if outcome != Visit::Continue {
                        break 'stream;
                    }
                    continue;
                }
                let mut rows = Vec::new();
                for s in c {
                    rows.extend(materialize(s, q, skip_lines, &needles)?);
                }
                if c.len() > 1 {
                    rows.sort_by_key(|r| r.ts);
                }
                let iter: Box<dyn Iterator<Item = &OwnedRow>> = if q.direction == Direction::Backward {
                    Box::new(rows.iter().rev())
                } else {
                    Box::new(rows.iter())
                };
                for r in iter {
                    let pairs: Vec<(&str, &str)> = r.meta.iter().collect();
                    outcome = visit(labels, &LogRow { ts: r.ts, line: &r.line, metadata: &pairs, metadata_id: 0 });
                    if outcome != Visit::Continue {
                        break 'stream;
                    }
                }
            }
            if outcome == Visit::Stop {
                break;
            }
        }
        Ok(())
    }

    fn log_streams(&self, range: TimeRange, matchers: &[Matcher]) -> telltale_storage::Result<Vec<Labels>> {
        let streams = self.matching(matchers);
        let wanted: HashSet<u32> = streams.iter().map(|s| s.1).collect();
        let mut present: HashSet<u32> = HashSet::new();
        let h = read(&self.head);
        let p = read(&self.persisted);
        let heads = std::iter::once(&*h).chain(p.flushing.iter().map(|f| &f.head));
        for head in heads {
            for (sid, s) in &head.streams {
                if wanted.contains(sid) && s.ts.iter().any(|t| range.contains(*t)) {
                    present.insert(*sid);
                }
            }
        }
        for o in &p.segments {
            for b in &o.seg.index.blocks {
                let sid = o.ids[b.stream];
                if wanted.contains(&sid) && range.overlaps(b.min_ts, b.max_ts) {
                    present.insert(sid);
                }
            }
        }
        Ok(streams.into_iter().filter(|(_, id)| present.contains(id)).map(|(l, _)| l).collect())
    }

    fn log_stats(&self, range: TimeRange, matchers: &[Matcher]) -> telltale_storage::Result<LogStats> {
        let streams = self.matching(matchers);
        let wanted: HashSet<u32> = streams.iter().map(|s| s.1).collect();
        let mut st = LogStats::default();
        let mut present: HashSet<u32> = HashSet::new();
        let h = read(&self.head);
        let p = read(&self.persisted);
        let heads = std::iter::once(&*h).chain(p.flushing.iter().map(|f| &f.head));
        for head in heads {
            for (sid, s) in &head.streams {
                if !wanted.contains(sid) {
                    continue;
                }
                let mut n = 0;
                for i in 0..s.len() {
                    if range.contains(s.ts[i]) {
                        n += 1;
                        st.bytes += s.line(i).len() as u64;
                    }
                }
                if n > 0 {
                    st.entries += n;
                    st.chunks += 1;
                    present.insert(*sid);
                }
            }
        }
        for o in &p.segments {
            for b in &o.seg.index.blocks {
                let sid = o.ids[b.stream];
                if !wanted.contains(&sid) || !range.overlaps(b.min_ts, b.max_ts) {
                    continue;
                }
                if range.contains(b.min_ts) && range.contains(b.max_ts) {
                    st.entries += b.rows;
                    st.bytes += b.line_bytes;
                } else {
                    let d = o.seg.read_block(b, false).map_err(telltale_storage::Error::from)?;
                    for i in 0..d.len() {
                        if range.contains(d.ts[i]) {
                            st.entries += 1;
                            st.bytes += d.line(i).len() as u64;
                        }
                    }
                }
                st.chunks += 1;
                present.insert(sid);
            }
        }
        st.streams = present.len() as u64;
        Ok(st)
    }
}

impl Maintenance for LogDb {
    fn flush(&self) -> telltale_storage::Result<()> {
        self.flush_now().map_err(telltale_storage::Error::from)
    }

    fn stats(&self) -> Vec<Stat> {
        let pending = self.idle_work().map_or(0, |(run, _)| run.len());
        let p = read(&self.persisted);
        let h = read(&self.head);
        let seg_bytes: u64 = p.segments.iter().map(|s| s.seg.bytes).sum();
        let g = |name, help, v: f64| Stat { name, help, kind: MetricType::Gauge, value: v };
        let c = |name, help, v: f64| Stat { name, help, kind: MetricType::Counter, value: v };
        vec![
            g("telltale_logs_streams", "Log streams known to the store.", read(&self.registry).labels.len() as f64),
            g("telltale_logs_segments", "Log segment files.", p.segments.len() as f64),
            g(
                "telltale_logs_compaction_pending",
                "Log segments the next compaction will merge or encode once writes stop.",
                pending as f64,
            ),
            g("telltale_logs_segment_bytes", "Bytes of log segment files and their indexes.", seg_bytes as f64),
            g("telltale_logs_wal_bytes", "Bytes of the log WAL.", dir_size(&self.wal_dir()) as f64),
            g(
                "telltale_logs_head_lines",
                "Log lines in memory, not yet in a segment.",
                (h.lines + p.flushing.iter().map(|f| f.head.lines).sum::<usize>()) as f64,
            ),
            g("telltale_logs_head_bytes", "Bytes of log lines in memory.", h.bytes as f64),
            c("telltale_logs_flushes_total", "Heads written as segments.", self.flushes.load(Ordering::Relaxed) as f64),
            c("telltale_logs_compactions_total", "Segment merges.", self.compactions.load(Ordering::Relaxed) as f64),
            c(
                "telltale_logs_blocks_read_total",
                "Segment blocks decoded by queries.",
                self.blocks_read.load(Ordering::Relaxed) as f64,
            ),
            c(
                "telltale_logs_blocks_skipped_total",
                "Segment blocks queries skipped because the needle index rules them out.",
                self.blocks_skipped.load(Ordering::Relaxed) as f64,
            ),
            g(
                "telltale_storage_corrupt_files",
                "Files found corrupt on open and quarantined.",
                self.corrupt.load(Ordering::Relaxed) as f64,
            ),
        ]
    }

    fn problems(&self) -> Vec<String> {
        lock(&self.problems).clone()
    }
}

impl LogDb {
    /// The live segments by id (SQL decodes their lines).
    pub(crate) fn open_segments(&self) -> HashMap<u64, Arc<Open>> {
        read(&self.persisted).segments.iter().map(|o| (o.seg.id, o.clone())).collect()
    }

    /// Segment files, their column names, and copies of the head's streams, consistently.
    pub(crate) fn sql_parts(&self) -> crate::sqlview::SqlParts {
        let h = read(&self.head);
        let p = read(&self.persisted);
        let reg = read(&self.registry);
        let mut files = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for o in &p.segments {
            files.push(o.seg.path.clone());
            names.extend(o.seg.column_names());
        }
        let mut heads = Vec::new();
        for head in p.flushing.iter().map(|f| &f.head).chain(std::iter::once(&*h)) {
            for (sid, s) in &head.streams {
                heads.push((reg.labels[*sid as usize].clone(), s.clone()));
            }
        }
        (files, names, heads)
    }
}

impl Drop for LogDb {
    fn drop(&mut self) {
        if let Ok(w) = self.writer.lock() {
            let _ = w.wal.sync();
        }
    }
}
