//! [`TraceDb`]: the WAL, the head, the segments, and the reads over all three.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use telltale_model::{Nanos, ResourceSpans, ScopeSpans, Span, SpanBatch, SpanKind, StatusCode, TraceId};
use telltale_walfile::{frame, put_bytes, put_uvarint, Cursor, Wal};
use tracing::{info, warn};

use crate::codec::{self, get_resource, get_scope, put_resource, put_scope, Resource, Row, ScopeInfo};
use crate::error::{io_err, Error, Result};
use crate::options::Options;
use crate::segment::{self, Catalogue, Segment, TagScope};

/// The first bytes of every trace WAL segment: "TTLTWL", a zero byte, version 1.
const WAL_MAGIC: [u8; 8] = *b"TTLTWL\0\x01";
const TYPE_SPANS: u8 = 1;

/// What a write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Spans written.
    pub spans: u64,
    /// Their encoded size in the WAL.
    pub bytes: u64,
}

/// A trace as read: its spans by resource and scope, and whether the read stopped at
/// [`Options::max_spans_per_trace`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceRead {
    /// The spans (deduplicated by span id).
    pub batch: SpanBatch,
    /// True when the trace has more spans than a read returns.
    pub partial: bool,
}

/// What a search needs every returned trace part to have, used to skip blocks and traces. All
/// fields are conjunctive; empty lists and zeros mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    /// Spans starting from (ns).
    pub start: Nanos,
    /// Spans starting before (ns); 0: no end.
    pub end: Nanos,
    /// One of these services (`service.name`).
    pub services: Vec<String>,
    /// One of these span names.
    pub names: Vec<String>,
    /// A span at least this long (ns).
    pub min_duration: Nanos,
    /// A span with status error.
    pub error_only: bool,
    /// Spans or resources with these string attributes.
    pub attrs: Vec<(String, String)>,
}

/// Counts for `/metrics` and the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans in the in-memory head.
    pub head_spans: u64,
    /// Segment files.
    pub segments: u64,
    /// Spans in segment files.
    pub segment_spans: u64,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Corrupt blocks met by reads since start.
    pub corrupt_blocks: u64,
}

/// Resource and scope tables with the rows that point into them.
#[derive(Debug, Default)]
struct Head {
    resources: Vec<Resource>,
    res_ids: HashMap<Vec<u8>, u32>,
    scopes: Vec<ScopeInfo>,
    scope_ids: HashMap<Vec<u8>, u32>,
    rows: Vec<Row>,
    by_trace: HashMap<TraceId, Vec<u32>>,
    bytes: u64,
    first_ms: Option<i64>,
    catalogue: Catalogue,
}

impl Head {
    /// Adds rows whose indexes point into `resources`/`scopes`.
    fn add(&mut self, resources: Vec<Resource>, scopes: Vec<ScopeInfo>, rows: Vec<Row>, bytes: u64, now_ms: i64) {
        let rmap: Vec<u32> = resources.into_iter().map(|r| self.resource_id(r)).collect();
        let smap: Vec<u32> = scopes.into_iter().map(|s| self.scope_id(s)).collect();
        for mut row in rows {
            row.res = rmap.get(row.res as usize).copied().unwrap_or(0);
            row.scope = smap.get(row.scope as usize).copied().unwrap_or(0);
            if let Some(res) = self.resources.get(row.res as usize) {
                self.catalogue.add(res, &row.span);
            }
            self.by_trace.entry(row.span.trace_id).or_default().push(self.rows.len() as u32);
            self.rows.push(row);
        }
        self.bytes += bytes;
        self.first_ms.get_or_insert(now_ms);
    }

    fn resource_id(&mut self, r: Resource) -> u32 {
        let mut key = Vec::new();
        put_resource(&mut key, &r);
        if let Some(id) = self.res_ids.get(&key) {
            return *id;
        }
        let id = self.resources.len() as u32;
        self.catalogue.add_attrs(TagScope::Resource, &r.attributes);
        self.resources.push(r);
        self.res_ids.insert(key, id);
        id
    }

    fn scope_id(&mut self, s: ScopeInfo) -> u32 {
        let mut key = Vec::new();
        put_scope(&mut key, &s);
        if let Some(id) = self.scope_ids.get(&key) {
            return *id;
        }
        let id = self.scopes.len() as u32;
        self.scopes.push(s);
        self.scope_ids.insert(key, id);
        id
    }

    fn trace_rows(&self, id: &TraceId) -> Vec<Row> {
        self.by_trace.get(id).map(|ix| ix.iter().map(|i| self.rows[*i as usize].clone()).collect()).unwrap_or_default()
    }
}

/// Splits a batch into tables and rows (indexes local to the batch).
fn split(batch: SpanBatch) -> (Vec<Resource>, Vec<ScopeInfo>, Vec<Row>) {
    let (mut resources, mut scopes, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for rs in batch.resources {
        let res = resources.len() as u32;
        resources.push(Resource {
            attributes: rs.resource,
            dropped_attributes_count: rs.dropped_attributes_count,
            schema_url: rs.schema_url,
        });
        for ss in rs.scopes {
            let scope = scopes.len() as u32;
            scopes.push(ScopeInfo { scope: ss.scope, schema_url: ss.schema_url });
            rows.extend(ss.spans.into_iter().map(|span| Row { res, scope, span }));
        }
    }
    (resources, scopes, rows)
}

fn encode_wal(buf: &mut Vec<u8>, resources: &[Resource], scopes: &[ScopeInfo], rows: &[Row]) {
    frame(buf, TYPE_SPANS, |b| {
        put_uvarint(b, resources.len() as u64);
        for r in resources {
            put_resource(b, r);
        }
        put_uvarint(b, scopes.len() as u64);
        for s in scopes {
            put_scope(b, s);
        }
        put_bytes(b, &codec::encode_rows(rows.iter()));
    });
}

type Decoded = (Vec<Resource>, Vec<ScopeInfo>, Vec<Row>);

fn decode_wal(typ: u8, payload: &[u8]) -> Option<Decoded> {
    if typ != TYPE_SPANS {
        return None;
    }
    let mut c = Cursor::new(payload);
    let mut resources = Vec::new();
    for _ in 0..c.usize()? {
        resources.push(get_resource(&mut c)?);
    }
    let mut scopes = Vec::new();
    for _ in 0..c.usize()? {
        scopes.push(get_scope(&mut c)?);
    }
    let rows = codec::decode_rows(c.bytes()?)?;
    c.b.is_empty().then_some((resources, scopes, rows))
}

struct Writer {
    wal: Wal,
    next_seq: u64,
}

/// The trace store. Every method is synchronous; call them from a blocking pool.
pub struct TraceDb {
    dir: PathBuf,
    opts: Options,
    writer: Mutex<Writer>,
    head: RwLock<Arc<RwLock<Head>>>,
    flushing: RwLock<Option<Arc<RwLock<Head>>>>,
    flush_lock: Mutex<()>,
    compact_lock: Mutex<()>,
    segments: RwLock<Vec<Arc<Segment>>>,
    quarantined: Mutex<Vec<String>>,
    corrupt_blocks: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TraceDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceDb").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl TraceDb {
    /// Opens (or creates) a store in `dir`: opens the segments (quarantining corrupt ones) and
    /// replays the WAL into the head.
    pub fn open(dir: &Path, opts: &Options) -> Result<TraceDb> {
        opts.validate()?;
        let (wal_dir, seg_dir) = (dir.join("wal"), dir.join("segments"));
        for d in [&wal_dir, &seg_dir] {
            fs::create_dir_all(d).map_err(io_err("create directory", d))?;
        }
        let mut segments = Vec::new();
        let mut quarantined = Vec::new();
        let mut next_seq = 1;
        for (seq, path) in segment::list(&seg_dir)? {
            next_seq = next_seq.max(seq + 1);
            match Segment::open(&path, seq) {
                Ok(s) => segments.push(Arc::new(s)),
                Err(e @ Error::Corrupt { .. }) => {
                    warn!(error = %e, "quarantining corrupt trace segment");
                    quarantine(dir, &path)?;
                    quarantined.push(path.display().to_string());
                }
                Err(e) => return Err(e),
            }
        }
        sort_segments(&mut segments);
        let covered = segments.iter().map(|s| s.footer.wal_upto).max().unwrap_or(0);
        let mut head = Head::default();
        let (wal_segs, _) = telltale_walfile::list(&wal_dir)?;
        let mut replayed = 0u64;
        for &n in &wal_segs {
            let path = telltale_walfile::segment_path(&wal_dir, n);
            if n <= covered {
                let _ = fs::remove_file(&path);
                continue;
            }
            let data = fs::read(&path).map_err(io_err("read wal segment", &path))?;
            let damage =
                telltale_walfile::read_records(&data, &WAL_MAGIC, |typ, payload| match decode_wal(typ, payload) {
                    Some((r, s, rows)) => {
                        replayed += rows.len() as u64;
                        head.add(r, s, rows, payload.len() as u64, 0);
                        true
                    }
                    None => false,
                });
            if let Some(d) = damage {
                warn!(path = %path.display(), reason = %d.reason, "trace wal segment damaged; keeping its readable part");
                let f = fs::OpenOptions::new().write(true).open(&path).map_err(io_err("open wal segment", &path))?;
                f.set_len(d.good_len).map_err(io_err("truncate wal segment", &path))?;
            }
        }
        if replayed > 0 {
            info!(spans = replayed, "replayed trace wal");
        }
        let last = wal_segs.last().copied().unwrap_or(0).max(covered);
        let wal = Wal::create(&wal_dir, WAL_MAGIC, last + 1, opts.wal.segment_size, opts.wal.fsync_each_write())?;
        Ok(TraceDb {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            writer: Mutex::new(Writer { wal, next_seq }),
            head: RwLock::new(Arc::new(RwLock::new(head))),
            flushing: RwLock::new(None),
            flush_lock: Mutex::new(()),
            compact_lock: Mutex::new(()),
            segments: RwLock::new(segments),
            quarantined: Mutex::new(quarantined),
            corrupt_blocks: Default::default(),
        })
    }

    /// Stores `batch`: once this returns `Ok` the spans are in the WAL (they survive `kill -9`)
    /// and visible to reads. `now_ms` dates the head for [`Options::head_max_age`].
    pub fn write(&self, batch: SpanBatch, now_ms: i64) -> Result<WriteStats> {
        let spans = batch.span_count() as u64;
        if spans == 0 {
            return Ok(WriteStats::default());
        }
        let (resources, scopes, rows) = split(batch);
        let mut buf = Vec::new();
        encode_wal(&mut buf, &resources, &scopes, &rows);
        let bytes = buf.len() as u64;
        let full = {
            let mut w = self.writer.lock();
            if w.wal.would_overflow(buf.len()) {
                w.wal.rotate()?;
            }
            w.wal.append(&buf)?;
            let head = self.head.read().clone();
            let mut h = head.write();
            h.add(resources, scopes, rows, bytes, now_ms);
            h.bytes >= self.opts.head_max_bytes
        };
        if full {
            self.flush()?;
        }
        Ok(WriteStats { spans, bytes })
    }

    /// fsyncs the WAL (the periodic fsync policy calls this).
    pub fn sync_wal(&self) -> Result<()> {
        Ok(self.writer.lock().wal.sync()?)
    }

    /// Writes the head out as a segment now (if it holds anything).
    pub fn flush_now(&self) -> Result<()> {
        self.flush()
    }

    fn flush(&self) -> Result<()> {
        let Some(_guard) = self.flush_lock.try_lock() else { return Ok(()) };
        let (old, closed, seq) = {
            let mut w = self.writer.lock();
            let head = self.head.read().clone();
            if head.read().rows.is_empty() {
                return Ok(());
            }
            let closed = w.wal.rotate()?;
            let seq = w.next_seq;
            w.next_seq += 1;
            *self.flushing.write() = Some(head.clone());
            *self.head.write() = Arc::new(RwLock::new(Head::default()));
            (head, closed, seq)
        };
        let h = old.read();
        let written = segment::write(
            &self.dir.join("segments"),
            seq,
            &h.resources,
            &h.scopes,
            h.rows.iter().collect(),
            closed,
            &self.opts,
        );
        drop(h);
        let seg = match written {
            Ok(s) => s,
            Err(e) => {
                // Keep the spans readable and in the WAL: put the head back in front of the new one.
                self.restore(old);
                return Err(e);
            }
        };
        {
            let mut segs = self.segments.write();
            segs.push(Arc::new(seg));
            sort_segments(&mut segs);
        }
        *self.flushing.write() = None;
        self.delete_wal_upto(closed);
        Ok(())
    }

    fn restore(&self, old: Arc<RwLock<Head>>) {
        let _w = self.writer.lock();
        let cur = std::mem::take(&mut *self.head.read().write());
        let mut merged = Arc::try_unwrap(old).map(RwLock::into_inner).unwrap_or_default();
        let Head { resources, scopes, rows, bytes, .. } = cur;
        merged.add(resources, scopes, rows, bytes, 0);
        *self.head.write() = Arc::new(RwLock::new(merged));
        *self.flushing.write() = None;
    }

    fn delete_wal_upto(&self, closed: u64) {
        let wal_dir = self.dir.join("wal");
        if let Ok((segs, _)) = telltale_walfile::list(&wal_dir) {
            for s in segs.into_iter().filter(|s| *s <= closed) {
                let _ = fs::remove_file(telltale_walfile::segment_path(&wal_dir, s));
            }
        }
    }

    /// The heads to read: the one filling and the one being written out.
    fn heads(&self) -> Vec<Arc<RwLock<Head>>> {
        let mut v = vec![self.head.read().clone()];
        v.extend(self.flushing.read().clone());
        v
    }

    fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().clone()
    }

    fn read_block(&self, seg: &Segment, i: usize) -> Option<Vec<Row>> {
        match seg.read_block(i) {
            Ok(rows) => Some(rows),
            Err(e) => {
                self.corrupt_blocks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(error = %e, "skipping unreadable trace block");
                None
            }
        }
    }

    /// Every span of trace `id`, whatever its time: the head by its index, each segment by its
    /// sorted trace-id ranges.
    pub fn trace(&self, id: &TraceId) -> Result<TraceRead> {
        let mut asm = Assembler::default();
        for h in self.heads() {
            let h = h.read();
            asm.add(&h.resources, &h.scopes, h.trace_rows(id));
        }
        for seg in self.segments() {
            for i in seg.blocks_of(id) {
                if let Some(rows) = self.read_block(&seg, i) {
                    let rows = rows.into_iter().filter(|r| r.span.trace_id == *id).collect();
                    asm.add(&seg.footer.resources, &seg.footer.scopes, rows);
                }
            }
        }
        Ok(asm.finish(self.opts.max_spans_per_trace))
    }

    /// Calls `f` with the parts of traces that may match `q`, newest segments first, the head
    /// before them; stops when `f` returns false. A trace that crossed a head flush comes in
    /// parts until compaction joins them; callers that need the whole trace read it by id.
    pub fn search(&self, q: &Search, f: &mut dyn FnMut(TraceId, SpanBatch) -> bool) -> Result<()> {
        for h in self.heads() {
            let pieces: Vec<(TraceId, SpanBatch)> = {
                let h = h.read();
                let mut out = Vec::new();
                for (tid, ix) in &h.by_trace {
                    let rows: Vec<&Row> = ix.iter().map(|i| &h.rows[*i as usize]).collect();
                    if piece_may_match(q, &h.resources, &rows) {
                        let mut asm = Assembler::default();
                        asm.add(&h.resources, &h.scopes, rows.into_iter().cloned().collect());
                        out.push((*tid, asm.finish(usize::MAX).batch));
                    }
                }
                out
            };
            for (tid, batch) in pieces {
                if !f(tid, batch) {
                    return Ok(());
                }
            }
        }
        let mut segs = self.segments();
        segs.reverse();
        for seg in segs {
            for (i, b) in seg.footer.blocks.iter().enumerate() {
                if !block_may_match(q, b) {
                    continue;
                }
                let Some(rows) = self.read_block(&seg, i) else { continue };
                let mut start = 0;
                while start < rows.len() {
                    let tid = rows[start].span.trace_id;
                    let end = start + rows[start..].iter().take_while(|r| r.span.trace_id == tid).count();
                    let part: Vec<&Row> = rows[start..end].iter().collect();
                    if piece_may_match(q, &seg.footer.resources, &part) {
                        let mut asm = Assembler::default();
                        asm.add(&seg.footer.resources, &seg.footer.scopes, rows[start..end].to_vec());
                        if !f(tid, asm.finish(usize::MAX).batch) {
                            return Ok(());
                        }
                    }
                    start = end;
                }
            }
        }
        Ok(())
    }

    fn catalogue(&self) -> Catalogue {
        let mut cat = Catalogue::default();
        for h in self.heads() {
            cat.merge(&h.read().catalogue);
        }
        for s in self.segments() {
            cat.merge(&s.footer.catalogue);
        }
        cat
    }

    /// Service names, sorted.
    pub fn services(&self) -> Vec<String> {
        self.catalogue().operations.into_keys().collect()
    }

    /// `(service, span name, kind)` of every operation seen, for one service or all, sorted.
    pub fn operations(&self, service: Option<&str>) -> Vec<(String, String, SpanKind)> {
        let cat = self.catalogue();
        cat.operations
            .into_iter()
            .filter(|(s, _)| service.is_none_or(|want| want == s))
            .flat_map(|(s, ops)| ops.into_iter().map(move |(n, k)| (s.clone(), n, k)))
            .collect()
    }

    /// Attribute names by scope, sorted.
    pub fn tag_names(&self) -> Vec<(TagScope, String)> {
        self.catalogue().tags.into_keys().collect()
    }

    /// Values seen for attribute `key` (in one scope, or both), sorted; at most about 100 per
    /// segment are kept.
    pub fn tag_values(&self, scope: Option<TagScope>, key: &str) -> Vec<String> {
        let cat = self.catalogue();
        let mut out = BTreeSet::new();
        for ((s, k), vs) in cat.tags {
            if k == key && scope.is_none_or(|want| want == s) {
                out.extend(vs);
            }
        }
        out.into_iter().collect()
    }

    /// Flushes an old head and deletes segments past retention (by time, then by size).
    pub fn maintain(&self, now_ms: i64) -> Result<()> {
        let aged = {
            let h = self.head.read().clone();
            let h = h.read();
            h.first_ms.is_some_and(|t| now_ms - t >= self.opts.head_max_age.as_millis() as i64) && !h.rows.is_empty()
        };
        if aged {
            self.flush()?;
        }
        let mut drop_segs = Vec::new();
        {
            let mut segs = self.segments.write();
            let keep_ns = self.opts.retention_time.as_nanos() as i64;
            if keep_ns > 0 {
                let cutoff = now_ms.saturating_mul(1_000_000) - keep_ns;
                segs.retain(|s| {
                    let old = s.footer.max_end() < cutoff;
                    if old {
                        drop_segs.push(s.clone());
                    }
                    !old
                });
            }
            if self.opts.retention_size > 0 {
                let mut total: u64 = segs.iter().map(|s| s.size).sum();
                while total > self.opts.retention_size && segs.len() > 1 {
                    let s = segs.remove(0);
                    total -= s.size;
                    drop_segs.push(s);
                }
            }
        }
        for s in drop_segs {
            info!(path = %s.path.display(), "deleting trace segment past retention");
            fs::remove_file(&s.path).map_err(io_err("delete segment", &s.path))?;
        }
        self.compact()?;
        Ok(())
    }

    /// Merges the oldest run of small segments (each under half of
    /// [`Options::compaction_target`], together at most the target) into one, streaming their
    /// blocks in trace-id order so memory holds one block per input. Joins the parts of traces
    /// that crossed a head flush. Returns whether it merged anything.
    pub fn compact(&self) -> Result<bool> {
        let target = self.opts.compaction_target;
        if target == 0 {
            return Ok(false);
        }
        let Some(_guard) = self.compact_lock.try_lock() else { return Ok(false) };
        let run = pick_run(&self.segments(), target);
        if run.len() < 2 {
            return Ok(false);
        }
        let seq = {
            let mut w = self.writer.lock();
            w.next_seq += 1;
            w.next_seq - 1
        };
        let merged = merge(&self.dir.join("segments"), seq, &run, self.opts.block_spans, self.opts.compression_level)?;
        info!(inputs = run.len(), spans = merged.footer.spans(), "compacted trace segments");
        {
            let mut segs = self.segments.write();
            segs.retain(|s| !run.iter().any(|r| r.seq == s.seq));
            segs.push(Arc::new(merged));
            sort_segments(&mut segs);
        }
        for s in &run {
            let _ = fs::remove_file(&s.path);
        }
        Ok(true)
    }

    /// Counts for `/metrics`.
    pub fn stats(&self) -> Stats {
        let segs = self.segments();
        Stats {
            head_spans: self.heads().iter().map(|h| h.read().rows.len() as u64).sum(),
            segments: segs.len() as u64,
            segment_spans: segs.iter().map(|s| s.footer.spans()).sum(),
            segment_bytes: segs.iter().map(|s| s.size).sum(),
            corrupt_blocks: self.corrupt_blocks.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Files moved to quarantine at open.
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantined.lock().clone()
    }
}

/// Segments in the order reads want them: by their newest span.
fn sort_segments(segs: &mut [Arc<Segment>]) {
    segs.sort_by_key(|s| (s.footer.max_end(), s.seq));
}

/// The first run of at least two adjacent small segments whose sizes add up to at most `target`.
fn pick_run(segs: &[Arc<Segment>], target: u64) -> Vec<Arc<Segment>> {
    let mut run: Vec<Arc<Segment>> = Vec::new();
    let mut total = 0;
    for s in segs {
        if s.size < target / 2 && total + s.size <= target {
            total += s.size;
            run.push(s.clone());
        } else if run.len() >= 2 {
            break;
        } else {
            run.clear();
            total = 0;
            if s.size < target / 2 {
                total = s.size;
                run.push(s.clone());
            }
        }
    }
    run
}

/// Maps each input's resource and scope indexes into one merged table.
/// Per input, where its resource and scope indexes go in the merged tables.
type TableMaps = Vec<(Vec<u32>, Vec<u32>)>;

fn merge_tables(run: &[Arc<Segment>]) -> (Vec<Resource>, Vec<ScopeInfo>, TableMaps) {
    let mut head = Head::default();
    let maps = run
        .iter()
        .map(|s| {
            let r = s.footer.resources.iter().map(|r| head.resource_id(r.clone())).collect();
            let sc = s.footer.scopes.iter().map(|x| head.scope_id(x.clone())).collect();
            (r, sc)
        })
        .collect();
    (head.resources, head.scopes, maps)
}

/// One input of a merge: a segment read a block at a time.
struct MergeInput {
    seg: Arc<Segment>,
    next_block: usize,
    rows: std::collections::VecDeque<Row>,
}

impl MergeInput {
    fn peek(&mut self) -> Result<Option<&Row>> {
        while self.rows.is_empty() && self.next_block < self.seg.footer.blocks.len() {
            self.rows = self.seg.read_block(self.next_block)?.into();
            self.next_block += 1;
        }
        Ok(self.rows.front())
    }
}

fn merge(dir: &Path, seq: u64, run: &[Arc<Segment>], block_spans: usize, level: i32) -> Result<Segment> {
    let (resources, scopes, maps) = merge_tables(run);
    let wal_upto = run.iter().map(|s| s.footer.wal_upto).max().unwrap_or(0);
    let mut w = segment::SegmentWriter::create(dir, seq, resources, scopes, wal_upto, level)?;
    let mut inputs: Vec<MergeInput> =
        run.iter().map(|seg| MergeInput { seg: seg.clone(), next_block: 0, rows: Default::default() }).collect();
    let mut out: Vec<Row> = Vec::new();
    let res = (|| -> Result<()> {
        loop {
            let mut best: Option<(usize, (TraceId, Nanos))> = None;
            for (i, inp) in inputs.iter_mut().enumerate() {
                if let Some(r) = inp.peek()? {
                    let key = (r.span.trace_id, r.span.start);
                    if best.is_none_or(|(_, k)| key < k) {
                        best = Some((i, key));
                    }
                }
            }
            let Some((i, (tid, _))) = best else { break };
            let full = out.len() >= 2 * block_spans
                || (out.len() >= block_spans && out.last().is_some_and(|r| r.span.trace_id != tid));
            if full {
                w.push_block(&out.iter().collect::<Vec<_>>())?;
                out.clear();
            }
            let mut row = inputs[i].rows.pop_front().expect("peeked");
            row.res = maps[i].0.get(row.res as usize).copied().unwrap_or(0);
            row.scope = maps[i].1.get(row.scope as usize).copied().unwrap_or(0);
            out.push(row);
        }
        w.push_block(&out.iter().collect::<Vec<_>>())
    })();
    match res {
        Ok(()) => w.finish(),
        Err(e) => {
            w.abandon();
            Err(e)
        }
    }
}

fn quarantine(dir: &Path, path: &Path) -> Result<()> {
    let q = dir.join("quarantine");
    fs::create_dir_all(&q).map_err(io_err("create directory", &q))?;
    let to = q.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to).map_err(io_err("quarantine segment", path))
}

fn block_may_match(q: &Search, b: &segment::BlockMeta) -> bool {
    if b.max_end < q.start || (q.end > 0 && b.min_start >= q.end) {
        return false;
    }
    if !q.services.is_empty() && !b.services.iter().any(|s| q.services.contains(s)) {
        return false;
    }
    if let Some(names) = &b.names {
        if !q.names.is_empty() && !names.iter().any(|n| q.names.contains(n)) {
            return false;
        }
    }
    if b.max_duration < q.min_duration || (q.error_only && !b.has_error) {
        return false;
    }
    q.attrs.iter().all(|(k, v)| b.bloom.may_contain(k, v))
}

fn piece_may_match(q: &Search, resources: &[Resource], rows: &[&Row]) -> bool {
    let in_range = |s: &Span| s.end >= q.start && (q.end == 0 || s.start < q.end);
    let service = |r: &Row| resources.get(r.res as usize).map(Resource::service).unwrap_or_default().to_owned();
    rows.iter().any(|r| in_range(&r.span))
        && (q.services.is_empty() || rows.iter().any(|r| q.services.contains(&service(r))))
        && (q.names.is_empty() || rows.iter().any(|r| q.names.contains(&r.span.name)))
        && rows.iter().any(|r| r.span.duration() >= q.min_duration)
        && (!q.error_only || rows.iter().any(|r| r.span.status == StatusCode::Error))
        && q.attrs.iter().all(|(k, v)| {
            rows.iter().any(|r| {
                let res = resources.get(r.res as usize);
                telltale_model::attr(&r.span.attributes, k)
                    .or_else(|| res.and_then(|res| telltale_model::attr(&res.attributes, k)))
                    .and_then(|x| x.as_str())
                    == Some(v.as_str())
            })
        })
}

/// Builds one [`SpanBatch`] from rows of several sources, grouping by equal resource and
/// scope and dropping repeated span ids (a client that retried a request).
#[derive(Default)]
struct Assembler {
    batch: SpanBatch,
    res_ix: HashMap<Vec<u8>, usize>,
    scope_ix: HashMap<(usize, Vec<u8>), usize>,
    seen: hashbrown::HashSet<(telltale_model::SpanId, Nanos)>,
    spans: usize,
    partial: bool,
}

impl Assembler {
    fn add(&mut self, resources: &[Resource], scopes: &[ScopeInfo], rows: Vec<Row>) {
        for row in rows {
            if !self.seen.insert((row.span.span_id, row.span.start)) {
                continue;
            }
            let res = resources.get(row.res as usize).cloned().unwrap_or_default();
            let scope = scopes.get(row.scope as usize).cloned().unwrap_or_default();
            let mut key = Vec::new();
            put_resource(&mut key, &res);
            let ri = *self.res_ix.entry(key).or_insert_with(|| {
                self.batch.resources.push(ResourceSpans {
                    resource: res.attributes,
                    dropped_attributes_count: res.dropped_attributes_count,
                    scopes: Vec::new(),
                    schema_url: res.schema_url,
                });
                self.batch.resources.len() - 1
            });
            let mut skey = Vec::new();
            put_scope(&mut skey, &scope);
            let scopes_of = &mut self.batch.resources[ri].scopes;
            let si = *self.scope_ix.entry((ri, skey)).or_insert_with(|| {
                scopes_of.push(ScopeSpans { scope: scope.scope, spans: Vec::new(), schema_url: scope.schema_url });
                scopes_of.len() - 1
            });
            self.batch.resources[ri].scopes[si].spans.push(row.span);
            self.spans += 1;
        }
    }

    fn finish(mut self, max_spans: usize) -> TraceRead {
        for r in &mut self.batch.resources {
            for s in &mut r.scopes {
                s.spans.sort_by_key(|sp| sp.start);
            }
        }
        if self.spans > max_spans {
            self.partial = true;
            let mut left = max_spans;
            for r in &mut self.batch.resources {
                for s in &mut r.scopes {
                    let keep = s.spans.len().min(left);
                    s.spans.truncate(keep);
                    left -= keep;
                }
                r.scopes.retain(|s| !s.spans.is_empty());
            }
            self.batch.resources.retain(|r| !r.scopes.is_empty());
        }
        TraceRead { batch: self.batch, partial: self.partial }
    }
}
