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

use crate::codec::{self, get_resource, get_scope, put_resource, put_scope, Resource, Row, RowRef, ScopeInfo};
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
    /// Spans tail sampling left out of segments since start.
    pub sampled_out_spans: u64,
}

/// Deduplicated resource and scope tables, and where each input index went.
#[derive(Debug, Default)]
struct Tables {
    resources: Vec<Resource>,
    res_ids: HashMap<Vec<u8>, u32>,
    scopes: Vec<ScopeInfo>,
    scope_ids: HashMap<Vec<u8>, u32>,
}

impl Tables {
    fn resource_id(&mut self, r: &Resource) -> u32 {
        let mut key = Vec::new();
        put_resource(&mut key, r);
        if let Some(id) = self.res_ids.get(&key) {
            return *id;
        }
        let id = self.resources.len() as u32;
        self.resources.push(r.clone());
        self.res_ids.insert(key, id);
        id
    }

    fn scope_id(&mut self, s: &ScopeInfo) -> u32 {
        let mut key = Vec::new();
        put_scope(&mut key, s);
        if let Some(id) = self.scope_ids.get(&key) {
            return *id;
        }
        let id = self.scopes.len() as u32;
        self.scopes.push(s.clone());
        self.scope_ids.insert(key, id);
        id
    }

    /// Adds another source's tables; returns where its indexes went.
    fn absorb(&mut self, resources: &[Resource], scopes: &[ScopeInfo]) -> (Vec<u32>, Vec<u32>) {
        (resources.iter().map(|r| self.resource_id(r)).collect(), scopes.iter().map(|s| self.scope_id(s)).collect())
    }
}

/// One write's spans as the WAL holds them: the batch's resource and scope tables and its
/// rows encoded (uncompressed columns). The head keeps writes in this form, so its memory is
/// about its encoded size rather than the several times more of decoded spans.
#[derive(Debug)]
struct Chunk {
    resources: Vec<Resource>,
    scopes: Vec<ScopeInfo>,
    rows: Vec<u8>,
}

impl Chunk {
    fn from_batch(batch: &SpanBatch) -> Chunk {
        let (mut resources, mut scopes, mut refs) = (Vec::new(), Vec::new(), Vec::new());
        for rs in &batch.resources {
            let res = resources.len() as u32;
            resources.push(Resource {
                attributes: rs.resource.clone(),
                dropped_attributes_count: rs.dropped_attributes_count,
                schema_url: rs.schema_url.clone(),
            });
            for ss in &rs.scopes {
                let scope = scopes.len() as u32;
                scopes.push(ScopeInfo { scope: ss.scope.clone(), schema_url: ss.schema_url.clone() });
                refs.extend(ss.spans.iter().map(|span| RowRef { res, scope, span }));
            }
        }
        Chunk { resources, scopes, rows: codec::encode_rows(refs.into_iter()) }
    }

    /// The rows; a chunk is only made by [`Chunk::from_batch`] or from a checked WAL record,
    /// so they decode.
    fn decode(&self) -> Vec<Row> {
        codec::decode_rows(&self.rows).unwrap_or_default()
    }

    fn encode_wal(&self, buf: &mut Vec<u8>) {
        frame(buf, TYPE_SPANS, |b| {
            put_uvarint(b, self.resources.len() as u64);
            for r in &self.resources {
                put_resource(b, r);
            }
            put_uvarint(b, self.scopes.len() as u64);
            for s in &self.scopes {
                put_scope(b, s);
            }
            put_bytes(b, &self.rows);
        });
    }

    /// A chunk from a WAL record, with its decoded rows (to index them).
    fn decode_wal(typ: u8, payload: &[u8]) -> Option<(Chunk, Vec<Row>)> {
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
        let data = c.bytes()?;
        let rows = codec::decode_rows(data)?;
        let ok = c.b.is_empty()
            && rows.iter().all(|r| (r.res as usize) < resources.len() && (r.scope as usize) < scopes.len());
        ok.then(|| (Chunk { resources, scopes, rows: data.to_vec() }, rows))
    }
}

/// The spans not yet in a segment: chunks, indexed by trace id.
#[derive(Debug, Default)]
struct Head {
    chunks: Vec<Chunk>,
    /// Chunks holding spans of each trace, ascending.
    by_trace: HashMap<TraceId, Vec<u32>>,
    spans: u64,
    bytes: u64,
    first_ms: Option<i64>,
    catalogue: Catalogue,
}

impl Head {
    fn add<'a>(&mut self, chunk: Chunk, spans: impl Iterator<Item = (u32, &'a Span)>, now_ms: i64) {
        let ix = self.chunks.len() as u32;
        for r in &chunk.resources {
            self.catalogue.add_attrs(TagScope::Resource, &r.attributes);
        }
        for (res, span) in spans {
            let list = self.by_trace.entry(span.trace_id).or_default();
            if list.last() != Some(&ix) {
                list.push(ix);
            }
            if let Some(r) = chunk.resources.get(res as usize) {
                self.catalogue.add(r, span);
            }
            self.spans += 1;
        }
        self.bytes += chunk.rows.len() as u64 + 64 * (chunk.resources.len() + chunk.scopes.len()) as u64;
        self.chunks.push(chunk);
        self.first_ms.get_or_insert(now_ms);
    }

    /// The spans of trace `id`, from each chunk holding some.
    fn trace_into(&self, id: &TraceId, asm: &mut Assembler) {
        for ci in self.by_trace.get(id).into_iter().flatten() {
            let c = &self.chunks[*ci as usize];
            let rows = c.decode().into_iter().filter(|r| r.span.trace_id == *id).collect();
            asm.add(&c.resources, &c.scopes, rows);
        }
    }

    /// Every row with tables merged, for a flush.
    fn merged(&self) -> (Tables, Vec<Row>) {
        let mut t = Tables::default();
        let mut rows = Vec::with_capacity(self.spans as usize);
        for c in &self.chunks {
            let (rmap, smap) = t.absorb(&c.resources, &c.scopes);
            rows.extend(c.decode().into_iter().map(|mut r| {
                r.res = rmap[r.res as usize];
                r.scope = smap[r.scope as usize];
                r
            }));
        }
        (t, rows)
    }
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
    sampler: Mutex<Sampler>,
    sampled_out: std::sync::atomic::AtomicU64,
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
            let damage = telltale_walfile::read_records(&data, &WAL_MAGIC, |typ, payload| {
                match Chunk::decode_wal(typ, payload) {
                    Some((chunk, rows)) => {
                        replayed += rows.len() as u64;
                        head.add(chunk, rows.iter().map(|r| (r.res, &r.span)), 0);
                        true
                    }
                    None => false,
                }
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
            sampler: Mutex::new(Sampler::default()),
            sampled_out: Default::default(),
        })
    }

    /// Stores `batch`: once this returns `Ok` the spans are in the WAL (they survive `kill -9`)
    /// and visible to reads. `now_ms` dates the head for [`Options::head_max_age`].
    pub fn write(&self, batch: &SpanBatch, now_ms: i64) -> Result<WriteStats> {
        let spans = batch.span_count() as u64;
        if spans == 0 {
            return Ok(WriteStats::default());
        }
        let chunk = Chunk::from_batch(batch);
        let mut buf = Vec::new();
        chunk.encode_wal(&mut buf);
        let bytes = buf.len() as u64;
        let refs = batch
            .resources
            .iter()
            .enumerate()
            .flat_map(|(i, rs)| rs.scopes.iter().flat_map(move |ss| ss.spans.iter().map(move |sp| (i as u32, sp))));
        let full = {
            let mut w = self.writer.lock();
            if w.wal.would_overflow(buf.len()) {
                w.wal.rotate()?;
            }
            w.wal.append(&buf)?;
            let head = self.head.read().clone();
            let mut h = head.write();
            h.add(chunk, refs, now_ms);
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
            if head.read().chunks.is_empty() {
                return Ok(());
            }
            let closed = w.wal.rotate()?;
            let seq = w.next_seq;
            w.next_seq += 1;
            *self.flushing.write() = Some(head.clone());
            *self.head.write() = Arc::new(RwLock::new(Head::default()));
            (head, closed, seq)
        };
        let (tables, mut rows) = old.read().merged();
        if self.opts.sampling.enabled {
            let before = rows.len();
            let keep = self.sampler.lock().decide(&self.opts.sampling, &rows);
            rows.retain(|r| keep.contains(&r.span.trace_id));
            self.sampled_out.fetch_add((before - rows.len()) as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let written = segment::write(
            &self.dir.join("segments"),
            seq,
            &tables.resources,
            &tables.scopes,
            rows.iter().collect(),
            closed,
            &self.opts,
        );
        drop(rows);
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
        for chunk in cur.chunks {
            let rows = chunk.decode();
            merged.add(chunk, rows.iter().map(|r| (r.res, &r.span)), cur.first_ms.unwrap_or(0));
        }
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
            h.read().trace_into(id, &mut asm);
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
                for (ci, c) in h.chunks.iter().enumerate() {
                    let mut firsts: Vec<TraceId> = Vec::new();
                    for r in c.decode() {
                        let first = h.by_trace.get(&r.span.trace_id).and_then(|v| v.first());
                        if first == Some(&(ci as u32)) && firsts.last() != Some(&r.span.trace_id) {
                            firsts.push(r.span.trace_id);
                        }
                    }
                    firsts.sort();
                    firsts.dedup();
                    for tid in firsts {
                        let mut asm = Assembler::default();
                        h.trace_into(&tid, &mut asm);
                        let batch = asm.finish(usize::MAX).batch;
                        if batch_may_match(q, &batch) {
                            out.push((tid, batch));
                        }
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
                    let mut asm = Assembler::default();
                    asm.add(&seg.footer.resources, &seg.footer.scopes, rows[start..end].to_vec());
                    let batch = asm.finish(usize::MAX).batch;
                    if batch_may_match(q, &batch) && !f(tid, batch) {
                        return Ok(());
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
            h.first_ms.is_some_and(|t| now_ms - t >= self.opts.head_max_age.as_millis() as i64) && !h.chunks.is_empty()
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
            head_spans: self.heads().iter().map(|h| h.read().spans).sum(),
            segments: segs.len() as u64,
            segment_spans: segs.iter().map(|s| s.footer.spans()).sum(),
            segment_bytes: segs.iter().map(|s| s.size).sum(),
            corrupt_blocks: self.corrupt_blocks.load(std::sync::atomic::Ordering::Relaxed),
            sampled_out_spans: self.sampled_out.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Files moved to quarantine at open.
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantined.lock().clone()
    }
}

/// Tail-sampling decisions. Traces kept for an error or their duration are remembered (the
/// last 100,000), so their spans written out by a later flush are kept too.
#[derive(Debug, Default)]
struct Sampler {
    kept: hashbrown::HashSet<TraceId>,
}

impl Sampler {
    const REMEMBER: usize = 100_000;

    fn decide(&mut self, opts: &crate::Sampling, rows: &[Row]) -> hashbrown::HashSet<TraceId> {
        let mut traces: HashMap<TraceId, (bool, Nanos, Nanos)> = HashMap::new();
        for r in rows {
            let e = traces.entry(r.span.trace_id).or_insert((false, i64::MAX, i64::MIN));
            e.0 |= r.span.status == StatusCode::Error;
            e.1 = e.1.min(r.span.start);
            e.2 = e.2.max(r.span.end);
        }
        let slow = opts.keep_slower_than.as_nanos() as i64;
        let mut keep = hashbrown::HashSet::new();
        for (id, (error, start, end)) in traces {
            let notable = (opts.keep_errors && error) || (slow > 0 && end - start >= slow);
            if notable {
                if self.kept.len() >= Self::REMEMBER {
                    self.kept.clear();
                }
                self.kept.insert(id);
            }
            if notable || self.kept.contains(&id) || by_id_percent(&id) < opts.keep_percent {
                keep.insert(id);
            }
        }
        keep
    }
}

/// Where a trace id falls in 0..100: a hash of the id (FNV-1a, then a final mix), so ids that
/// are not random (sequential test ids, 64-bit ids padded with zeros) still spread evenly.
fn by_id_percent(id: &TraceId) -> f64 {
    let mut h = 0xcbf29ce484222325u64;
    for b in id.0 {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    (h as f64 / u64::MAX as f64) * 100.0
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
    let mut t = Tables::default();
    let maps = run.iter().map(|s| t.absorb(&s.footer.resources, &s.footer.scopes)).collect();
    (t.resources, t.scopes, maps)
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

fn batch_may_match(q: &Search, batch: &SpanBatch) -> bool {
    let spans = || batch.spans();
    let attr_is = |rs: &ResourceSpans, sp: &Span, k: &str, v: &str| {
        telltale_model::attr(&sp.attributes, k)
            .or_else(|| telltale_model::attr(&rs.resource, k))
            .and_then(|x| x.as_str())
            == Some(v)
    };
    spans().any(|(_, _, s)| s.end >= q.start && (q.end == 0 || s.start < q.end))
        && (q.services.is_empty() || batch.resources.iter().any(|r| q.services.iter().any(|s| s == r.service_name())))
        && (q.names.is_empty() || spans().any(|(_, _, s)| q.names.contains(&s.name)))
        && spans().any(|(_, _, s)| s.duration() >= q.min_duration)
        && (!q.error_only || spans().any(|(_, _, s)| s.status == StatusCode::Error))
        && q.attrs.iter().all(|(k, v)| spans().any(|(r, _, s)| attr_is(r, s, k, v)))
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
