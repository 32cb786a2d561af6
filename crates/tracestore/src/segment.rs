//! Segment files: spans sorted by trace id then start, cut into zstd blocks at trace
//! boundaries, with a footer holding the resource and scope tables, each block's index entry
//! (trace id range, time range, longest span, error flag, services, span names, a bloom of
//! string attributes) and the segment's catalogue (operations per service, tag values). The
//! layout is in `docs/format.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use telltale_model::{AttrValue, KeyValue, SpanKind, StatusCode, TraceId};
use telltale_walfile::{put_bytes, put_uvarint, put_varint, sync_dir, Cursor};

use crate::codec::{self, get_resource, get_scope, put_resource, put_scope, Resource, Row, ScopeInfo};
use crate::error::{io_err, Error, Result};

/// The first and last bytes of a segment file: "TTLTRC", a zero byte, version 1.
pub(crate) const MAGIC: [u8; 8] = *b"TTLTRC\0\x01";
const TRAILER: usize = 16;
/// Distinct span names a block lists before it stops listing them (and stops pruning by name).
const MAX_BLOCK_NAMES: usize = 512;
/// Values per attribute the catalogue keeps per segment.
pub(crate) const MAX_TAG_VALUES: usize = 100;
/// Attribute keys the catalogue keeps per segment.
const MAX_TAG_KEYS: usize = 1000;
/// String values longer than this are not catalogued (they are ids, URLs, messages).
const MAX_TAG_VALUE_LEN: usize = 128;

/// Where an attribute lives, as TraceQL scopes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagScope {
    /// A span attribute.
    Span = 0,
    /// A resource attribute.
    Resource = 1,
}

/// A block's entry in the segment index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockMeta {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) crc: u32,
    pub(crate) spans: u64,
    pub(crate) min_trace: TraceId,
    pub(crate) max_trace: TraceId,
    pub(crate) min_start: i64,
    pub(crate) max_end: i64,
    pub(crate) max_duration: i64,
    pub(crate) has_error: bool,
    pub(crate) services: Vec<String>,
    /// `None` when the block has more than [`MAX_BLOCK_NAMES`] names.
    pub(crate) names: Option<Vec<String>>,
    pub(crate) bloom: Bloom,
}

/// The catalogue of a segment (or of the head): operations per service and attribute values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Catalogue {
    pub(crate) operations: BTreeMap<String, BTreeSet<(String, SpanKind)>>,
    /// (scope, key) -> values; a key whose values passed the cap holds the first ones.
    pub(crate) tags: BTreeMap<(TagScope, String), BTreeSet<String>>,
}

impl Catalogue {
    pub(crate) fn add(&mut self, res: &Resource, span: &telltale_model::Span) {
        let service = res.service();
        if let Some(ops) = self.operations.get_mut(service) {
            if !ops.contains(&(span.name.clone(), span.kind)) {
                ops.insert((span.name.clone(), span.kind));
            }
        } else {
            self.operations.insert(service.to_owned(), BTreeSet::from([(span.name.clone(), span.kind)]));
        }
        self.add_attrs(TagScope::Span, &span.attributes);
    }

    pub(crate) fn add_attrs(&mut self, scope: TagScope, attrs: &[KeyValue]) {
        for kv in attrs {
            let text = match &kv.value {
                AttrValue::Str(s) if s.len() <= MAX_TAG_VALUE_LEN => Some(s.clone()),
                AttrValue::Int(_) | AttrValue::Bool(_) => Some(kv.value.to_string()),
                _ => None,
            };
            let key = (scope, kv.key.clone());
            if !self.tags.contains_key(&key) && self.tags.len() >= MAX_TAG_KEYS {
                continue;
            }
            let values = self.tags.entry(key).or_default();
            if let Some(t) = text {
                if values.len() < MAX_TAG_VALUES && !values.contains(&t) {
                    values.insert(t);
                }
            }
        }
    }

    pub(crate) fn merge(&mut self, other: &Catalogue) {
        for (s, ops) in &other.operations {
            self.operations.entry(s.clone()).or_default().extend(ops.iter().cloned());
        }
        for (k, vs) in &other.tags {
            let mine = self.tags.entry(k.clone()).or_default();
            for v in vs {
                if mine.len() >= MAX_TAG_VALUES {
                    break;
                }
                mine.insert(v.clone());
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.operations.len() as u64);
        for (s, ops) in &self.operations {
            put_bytes(out, s.as_bytes());
            put_uvarint(out, ops.len() as u64);
            for (n, k) in ops {
                put_bytes(out, n.as_bytes());
                out.push(*k as u8);
            }
        }
        put_uvarint(out, self.tags.len() as u64);
        for ((scope, key), vs) in &self.tags {
            out.push(*scope as u8);
            put_bytes(out, key.as_bytes());
            put_uvarint(out, vs.len() as u64);
            for v in vs {
                put_bytes(out, v.as_bytes());
            }
        }
    }

    fn decode(c: &mut Cursor<'_>) -> Option<Catalogue> {
        let mut cat = Catalogue::default();
        for _ in 0..c.usize()? {
            let s = c.str()?.to_owned();
            let mut ops = BTreeSet::new();
            for _ in 0..c.usize()? {
                ops.insert((c.str()?.to_owned(), SpanKind::from_i32(i32::from(c.u8()?))));
            }
            cat.operations.insert(s, ops);
        }
        for _ in 0..c.usize()? {
            let scope = if c.u8()? == 0 { TagScope::Span } else { TagScope::Resource };
            let key = c.str()?.to_owned();
            let mut vs = BTreeSet::new();
            for _ in 0..c.usize()? {
                vs.insert(c.str()?.to_owned());
            }
            cat.tags.insert((scope, key), vs);
        }
        Some(cat)
    }
}

/// A bloom filter over `key=value` texts of string attributes (span and resource), so a
/// search for an attribute value skips blocks that cannot hold it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Bloom(pub(crate) Vec<u8>);

const BLOOM_K: u64 = 6;

fn fnv(data: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl Bloom {
    fn build(items: &BTreeSet<Vec<u8>>) -> Bloom {
        let bits = (items.len() * 10).max(64).next_power_of_two();
        let mut b = Bloom(vec![0; bits / 8]);
        for it in items {
            let bits: Vec<usize> = b.bits(it).collect();
            for bit in bits {
                b.0[bit / 8] |= 1 << (bit % 8);
            }
        }
        b
    }

    fn bits(&self, item: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let (h1, h2) = (fnv(item, 0), fnv(item, 0x9e3779b97f4a7c15) | 1);
        let n = (self.0.len() * 8) as u64;
        (0..BLOOM_K).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n.max(1)) as usize)
    }

    pub(crate) fn may_contain(&self, key: &str, value: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        self.bits(&kv_bytes(key, value)).all(|bit| self.0[bit / 8] & (1 << (bit % 8)) != 0)
    }
}

fn kv_bytes(key: &str, value: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(key.len() + value.len() + 1);
    v.extend_from_slice(key.as_bytes());
    v.push(0);
    v.extend_from_slice(value.as_bytes());
    v
}

/// The footer: tables, block index, catalogue.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Footer {
    pub(crate) resources: Vec<Resource>,
    pub(crate) scopes: Vec<ScopeInfo>,
    pub(crate) blocks: Vec<BlockMeta>,
    pub(crate) catalogue: Catalogue,
    /// WAL segments up to this number are covered by this file.
    pub(crate) wal_upto: u64,
}

impl Footer {
    pub(crate) fn spans(&self) -> u64 {
        self.blocks.iter().map(|b| b.spans).sum()
    }

    pub(crate) fn max_end(&self) -> i64 {
        self.blocks.iter().map(|b| b.max_end).max().unwrap_or(0)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvarint(&mut out, self.wal_upto);
        put_uvarint(&mut out, self.resources.len() as u64);
        for r in &self.resources {
            put_resource(&mut out, r);
        }
        put_uvarint(&mut out, self.scopes.len() as u64);
        for s in &self.scopes {
            put_scope(&mut out, s);
        }
        put_uvarint(&mut out, self.blocks.len() as u64);
        for b in &self.blocks {
            put_uvarint(&mut out, b.offset);
            put_uvarint(&mut out, b.len);
            out.extend_from_slice(&b.crc.to_le_bytes());
            put_uvarint(&mut out, b.spans);
            out.extend_from_slice(&b.min_trace.0);
            out.extend_from_slice(&b.max_trace.0);
            put_varint(&mut out, b.min_start);
            put_varint(&mut out, b.max_end);
            put_varint(&mut out, b.max_duration);
            out.push(u8::from(b.has_error));
            put_strings(&mut out, &b.services);
            match &b.names {
                Some(n) => {
                    out.push(1);
                    put_strings(&mut out, n);
                }
                None => out.push(0),
            }
            put_bytes(&mut out, &b.bloom.0);
        }
        self.catalogue.encode(&mut out);
        out
    }

    fn decode(data: &[u8]) -> Option<Footer> {
        let mut c = Cursor::new(data);
        let wal_upto = c.uvarint()?;
        let mut f = Footer { wal_upto, ..Footer::default() };
        for _ in 0..c.usize()? {
            f.resources.push(get_resource(&mut c)?);
        }
        for _ in 0..c.usize()? {
            f.scopes.push(get_scope(&mut c)?);
        }
        for _ in 0..c.usize()? {
            f.blocks.push(BlockMeta {
                offset: c.uvarint()?,
                len: c.uvarint()?,
                crc: u32::from_le_bytes(c.take(4)?.try_into().ok()?),
                spans: c.uvarint()?,
                min_trace: TraceId(c.take(16)?.try_into().ok()?),
                max_trace: TraceId(c.take(16)?.try_into().ok()?),
                min_start: c.varint()?,
                max_end: c.varint()?,
                max_duration: c.varint()?,
                has_error: c.u8()? != 0,
                services: get_strings(&mut c)?,
                names: if c.u8()? == 1 { Some(get_strings(&mut c)?) } else { None },
                bloom: Bloom(c.bytes()?.to_vec()),
            });
        }
        f.catalogue = Catalogue::decode(&mut c)?;
        c.b.is_empty().then_some(f)
    }
}

fn put_strings(out: &mut Vec<u8>, v: &[String]) {
    put_uvarint(out, v.len() as u64);
    for s in v {
        put_bytes(out, s.as_bytes());
    }
}

fn get_strings(c: &mut Cursor<'_>) -> Option<Vec<String>> {
    let n = c.usize()?;
    let mut v = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        v.push(c.str()?.to_owned());
    }
    Some(v)
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) seq: u64,
    file: File,
    pub(crate) size: u64,
    pub(crate) footer: Footer,
}

pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:012}.trc")
}

impl Segment {
    /// Opens and checks a segment's trailer and footer (blocks are checked when read).
    pub(crate) fn open(path: &Path, seq: u64) -> Result<Segment> {
        let file = File::open(path).map_err(io_err("open segment", path))?;
        let size = file.metadata().map_err(io_err("stat segment", path))?.len();
        if size < (MAGIC.len() + TRAILER) as u64 {
            return Err(Error::corrupt(path, "shorter than a segment's header and trailer"));
        }
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, 0).map_err(io_err("read segment", path))?;
        let mut trailer = [0u8; TRAILER];
        file.read_exact_at(&mut trailer, size - TRAILER as u64).map_err(io_err("read segment", path))?;
        if head != MAGIC || trailer[8..] != MAGIC {
            return Err(Error::corrupt(path, "bad magic"));
        }
        let flen = u64::from(u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")));
        let fcrc = u32::from_le_bytes(trailer[4..8].try_into().expect("4 bytes"));
        if flen + (MAGIC.len() + TRAILER) as u64 > size {
            return Err(Error::corrupt(path, "footer length past the file's start"));
        }
        let mut data = vec![0u8; flen as usize];
        file.read_exact_at(&mut data, size - TRAILER as u64 - flen).map_err(io_err("read segment", path))?;
        if crc32c::crc32c(&data) != fcrc {
            return Err(Error::corrupt(path, "footer checksum mismatch"));
        }
        let footer = Footer::decode(&data).ok_or_else(|| Error::corrupt(path, "undecodable footer"))?;
        let body_end = size - TRAILER as u64 - flen;
        if footer.blocks.iter().any(|b| b.offset < MAGIC.len() as u64 || b.offset + b.len > body_end) {
            return Err(Error::corrupt(path, "a block lies outside the file's body"));
        }
        Ok(Segment { path: path.to_path_buf(), seq, file, size, footer })
    }

    /// Reads, checks and decodes block `i`.
    pub(crate) fn read_block(&self, i: usize) -> Result<Vec<Row>> {
        let b = &self.footer.blocks[i];
        let mut data = vec![0u8; b.len as usize];
        self.file.read_exact_at(&mut data, b.offset).map_err(io_err("read segment", &self.path))?;
        if crc32c::crc32c(&data) != b.crc {
            return Err(Error::corrupt(&self.path, format!("block {i} checksum mismatch")));
        }
        let raw = zstd::bulk::decompress(&data, 1 << 30)
            .map_err(|e| Error::corrupt(&self.path, format!("block {i} does not decompress: {e}")))?;
        codec::decode_rows(&raw).ok_or_else(|| Error::corrupt(&self.path, format!("block {i} is undecodable")))
    }

    /// Blocks that may hold spans of `trace`: their trace id ranges are sorted.
    pub(crate) fn blocks_of(&self, trace: &TraceId) -> impl Iterator<Item = usize> + '_ {
        let first = self.footer.blocks.partition_point(|b| b.max_trace < *trace);
        let trace = *trace;
        (first..self.footer.blocks.len()).take_while(move |i| self.footer.blocks[*i].min_trace <= trace)
    }
}

/// Writes a segment file block by block (through a temporary name; [`SegmentWriter::finish`]
/// fsyncs, renames and opens it), so compaction can stream a merge without holding it.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    seq: u64,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    offset: u64,
    footer: Footer,
    level: i32,
}

impl SegmentWriter {
    pub(crate) fn create(
        dir: &Path,
        seq: u64,
        resources: Vec<Resource>,
        scopes: Vec<ScopeInfo>,
        wal_upto: u64,
        level: i32,
    ) -> Result<SegmentWriter> {
        let tmp = dir.join(format!("{}.tmp", file_name(seq)));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create segment", &tmp))?;
        let mut w = SegmentWriter {
            dir: dir.to_path_buf(),
            seq,
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            footer: Footer { resources, scopes, wal_upto, ..Footer::default() },
            level,
        };
        for r in &w.footer.resources {
            w.footer.catalogue.add_attrs(TagScope::Resource, &r.attributes);
        }
        w.put(&MAGIC)?;
        Ok(w)
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.file.write_all(data).map_err(io_err("write segment", &self.tmp))?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Appends one block of rows (sorted by trace id, then start).
    pub(crate) fn push_block(&mut self, rows: &[&Row]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let raw = codec::encode_rows(rows.iter().map(|r| r.as_ref()));
        let packed = zstd::bulk::compress(&raw, self.level).map_err(io_err("compress block", &self.tmp))?;
        let meta = block_meta(rows, &self.footer.resources, self.offset, &packed, &mut self.footer.catalogue);
        self.footer.blocks.push(meta);
        self.put(&packed)
    }

    /// Writes the footer, makes the file durable under its real name and opens it.
    pub(crate) fn finish(mut self) -> Result<Segment> {
        let res = (|| -> Result<()> {
            let fdata = self.footer.encode();
            self.put(&fdata)?;
            self.put(&(fdata.len() as u32).to_le_bytes())?;
            self.put(&crc32c::crc32c(&fdata).to_le_bytes())?;
            self.put(&MAGIC)?;
            self.file.flush().map_err(io_err("write segment", &self.tmp))?;
            self.file.get_ref().sync_data().map_err(io_err("fsync segment", &self.tmp))?;
            Ok(())
        })();
        let path = self.dir.join(file_name(self.seq));
        let res = res.and_then(|()| {
            fs::rename(&self.tmp, &path).map_err(io_err("rename segment", &path))?;
            Ok(sync_dir(&self.dir)?)
        });
        if let Err(e) = res {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        Segment::open(&path, self.seq)
    }

    /// Removes the unfinished file.
    pub(crate) fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Cuts sorted rows into blocks of about `block_spans`, keeping a trace in one block unless it
/// alone is longer than two blocks; returns the end of each block.
pub(crate) fn block_ends(rows: &[&Row], block_spans: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = (start + block_spans).min(rows.len());
        while end < rows.len()
            && end - start < 2 * block_spans
            && rows[end].span.trace_id == rows[end - 1].span.trace_id
        {
            end += 1;
        }
        ends.push(end);
        start = end;
    }
    ends
}

/// Sorts rows the way a segment holds them.
pub(crate) fn sort_rows(rows: &mut [&Row]) {
    rows.sort_by_key(|r| (r.span.trace_id, r.span.start));
}

/// Writes a whole segment from tables and rows (any order).
pub(crate) fn write(
    dir: &Path,
    seq: u64,
    resources: &[Resource],
    scopes: &[ScopeInfo],
    mut rows: Vec<&Row>,
    wal_upto: u64,
    opts: &crate::Options,
) -> Result<Segment> {
    sort_rows(&mut rows);
    let mut w = SegmentWriter::create(dir, seq, resources.to_vec(), scopes.to_vec(), wal_upto, opts.compression_level)?;
    let mut start = 0;
    for end in block_ends(&rows, opts.block_spans) {
        if let Err(e) = w.push_block(&rows[start..end]) {
            w.abandon();
            return Err(e);
        }
        start = end;
    }
    w.finish()
}

fn block_meta(rows: &[&Row], resources: &[Resource], offset: u64, packed: &[u8], cat: &mut Catalogue) -> BlockMeta {
    let mut services = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut kvs = BTreeSet::new();
    let mut m = BlockMeta {
        offset,
        len: packed.len() as u64,
        crc: crc32c::crc32c(packed),
        spans: rows.len() as u64,
        min_trace: rows[0].span.trace_id,
        max_trace: rows[rows.len() - 1].span.trace_id,
        min_start: i64::MAX,
        max_end: i64::MIN,
        max_duration: 0,
        has_error: false,
        services: Vec::new(),
        names: None,
        bloom: Bloom::default(),
    };
    let mut seen_res = BTreeSet::new();
    for r in rows {
        let s = &r.span;
        m.min_start = m.min_start.min(s.start);
        m.max_end = m.max_end.max(s.end);
        m.max_duration = m.max_duration.max(s.duration());
        m.has_error |= s.status == StatusCode::Error;
        let res = resources.get(r.res as usize).cloned().unwrap_or_default();
        if seen_res.insert(r.res) {
            services.insert(res.service().to_owned());
            for kv in &res.attributes {
                if let AttrValue::Str(v) = &kv.value {
                    kvs.insert(kv_bytes(&kv.key, v));
                }
            }
        }
        if names.len() <= MAX_BLOCK_NAMES {
            names.insert(s.name.clone());
        }
        for kv in &s.attributes {
            if let AttrValue::Str(v) = &kv.value {
                kvs.insert(kv_bytes(&kv.key, v));
            }
        }
        cat.add(&res, s);
    }
    m.services = services.into_iter().collect();
    m.names = (names.len() <= MAX_BLOCK_NAMES).then(|| names.into_iter().collect());
    m.bloom = Bloom::build(&kvs);
    m
}

/// Sequence numbers of the segment files in `dir`, ascending; temporary files are removed.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list segments", dir))? {
        let e = e.map_err(io_err("list segments", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        } else if let Some(seq) = name.strip_suffix(".trc").and_then(|s| s.parse::<u64>().ok()) {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_finds_what_it_holds() {
        let items: BTreeSet<Vec<u8>> = (0..500).map(|i| kv_bytes("http.route", &format!("/r/{i}"))).collect();
        let b = Bloom::build(&items);
        assert!((0..500).all(|i| b.may_contain("http.route", &format!("/r/{i}"))));
        let false_hits = (500..10_500).filter(|i| b.may_contain("http.route", &format!("/r/{i}"))).count();
        assert!(false_hits < 300, "{false_hits} false positives in 10000");
        assert!(Bloom::default().may_contain("a", "b"));
    }
}
