//! Immutable on-disk blocks: `blocks/<id>/{meta.json, index, chunks}`.
//!
//! A block is written into `<id>.tmp/`, every file fsynced, then renamed into place, so a
//! crash leaves either a whole block or a `.tmp` directory that the next open deletes.
//! Opening reads `meta.json` and the whole index (checked against its CRC32C) into memory
//! and rebuilds the postings from the series' labels; chunk pages are read on demand with
//! positional reads and checked against their CRC32C each time. `docs/format.md` has the bytes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use telltale_model::{Labels, LabelsBuilder, Sample, TimeRange};

use crate::blockchunk;
use crate::encoding::{put_uvarint, put_varint, Reader, Truncated};
use crate::error::{io_err, Error, Result};
use crate::pagecache::{next_block_uid, PageKey, SharedPages};
use crate::postings::Postings;
use crate::wal::sync_dir;

thread_local! {
    /// One zstd context per reading thread: creating one costs more than decompressing a page.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// The block format version this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
const INDEX_MAGIC: [u8; 8] = *b"TTIDX\0\0\x01";
const CHUNKS_MAGIC: [u8; 8] = *b"TTCHK\0\0\x01";
/// Chunk pages are cut once they hold this many bytes (before compression).
const PAGE_BYTES: usize = 128 << 10;
/// A block chunk holds at most this many samples, so a short read decodes little.
const MAX_CHUNK_SAMPLES: usize = 2048;
/// zstd level for pages: 3 is zstd's default, a good ratio at ingest-friendly speed.
const ZSTD_LEVEL: i32 = 3;
/// Page header: `u32` stored length, `u8` compression, `u32` raw length.
const PAGE_HEADER: usize = 9;

/// `meta.json`: what a block holds, written last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meta {
    pub(crate) version: u32,
    /// The directory name.
    pub(crate) id: String,
    /// Oldest sample time (ms, inclusive).
    pub(crate) min_time: i64,
    /// Newest sample time (ms, inclusive).
    pub(crate) max_time: i64,
    pub(crate) series: u64,
    pub(crate) samples: u64,
    pub(crate) chunks: u64,
    /// 1 for a block cut from the head, one more than its highest source after compaction.
    pub(crate) level: u32,
    /// Ids of the blocks merged into this one (empty when cut from the head).
    pub(crate) sources: Vec<String>,
    pub(crate) index_bytes: u64,
    pub(crate) chunks_bytes: u64,
}

/// Where a chunk lives: page number in the chunks file, byte range inside the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    page: u32,
    off: u32,
    len: u32,
}

/// Streams series (in label order) into a new block directory.
pub(crate) struct BlockWriter {
    tmp: PathBuf,
    dir: PathBuf,
    id: String,
    chunks: BufWriter<File>,
    chunks_len: u64,
    page: Vec<u8>,
    /// (offset, length) of each written page.
    pages: Vec<(u64, u32)>,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    window_ms: i64,
    min_t: i64,
    max_t: i64,
    samples: u64,
    nchunks: u64,
}

impl BlockWriter {
    /// Starts block `id` under `blocks_dir`; chunks never span two `window_ms` windows.
    pub(crate) fn new(blocks_dir: &Path, id: &str, window_ms: i64) -> Result<Self> {
        let tmp = blocks_dir.join(format!("{id}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create block directory", &tmp))?;
        let path = tmp.join("chunks");
        let mut chunks = BufWriter::with_capacity(1 << 16, File::create(&path).map_err(io_err("create", &path))?);
        chunks.write_all(&CHUNKS_MAGIC).map_err(io_err("write", &path))?;
        Ok(BlockWriter {
            dir: blocks_dir.join(id),
            tmp,
            id: id.to_string(),
            chunks,
            chunks_len: CHUNKS_MAGIC.len() as u64,
            page: Vec::with_capacity(PAGE_BYTES + 4096),
            pages: Vec::new(),
            series: Vec::new(),
            window_ms: window_ms.max(1),
            min_t: i64::MAX,
            max_t: i64::MIN,
            samples: 0,
            nchunks: 0,
        })
    }

    /// Adds a series; calls must come in label order, samples strictly increasing in time.
    pub(crate) fn add(&mut self, labels: &Labels, samples: &[Sample]) -> Result<()> {
        debug_assert!(self.series.last().is_none_or(|(l, _)| l < labels));
        debug_assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
        if samples.is_empty() {
            return Ok(());
        }
        let mut metas = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let w = rest[0].t.div_euclid(self.window_ms);
            let n = rest.iter().take(MAX_CHUNK_SAMPLES).take_while(|s| s.t.div_euclid(self.window_ms) == w).count();
            let (part, tail) = rest.split_at(n);
            rest = tail;
            let off = self.page.len();
            blockchunk::encode(part, &mut self.page);
            metas.push(ChunkMeta {
                min_t: part[0].t,
                max_t: part[n - 1].t,
                page: self.pages.len() as u32,
                off: off as u32,
                len: (self.page.len() - off) as u32,
            });
            if self.page.len() >= PAGE_BYTES {
                self.flush_page()?;
            }
        }
        self.min_t = self.min_t.min(samples[0].t);
        self.max_t = self.max_t.max(samples[samples.len() - 1].t);
        self.samples += samples.len() as u64;
        self.nchunks += metas.len() as u64;
        self.series.push((labels.clone(), metas));
        Ok(())
    }

    /// Page: `u32` stored length, `u8` compression (1 = zstd), `u32` raw length, the stored
    /// bytes, `u32` CRC32C of the stored bytes.
    fn flush_page(&mut self) -> Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        let path = self.tmp.join("chunks");
        let stored = zstd::bulk::compress(&self.page, ZSTD_LEVEL).map_err(io_err("compress page for", &path))?;
        let crc = crc32c::crc32c(&stored);
        let mut header = [0u8; PAGE_HEADER];
        header[..4].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        header[4] = 1;
        header[5..].copy_from_slice(&(self.page.len() as u32).to_le_bytes());
        let w = &mut self.chunks;
        let res =
            w.write_all(&header).and_then(|()| w.write_all(&stored)).and_then(|()| w.write_all(&crc.to_le_bytes()));
        res.map_err(io_err("write", &path))?;
        self.pages.push((self.chunks_len, stored.len() as u32));
        self.chunks_len += (PAGE_HEADER + stored.len() + 4) as u64;
        self.page.clear();
        Ok(())
    }

    /// Gives up, removing the partial directory.
    pub(crate) fn abandon(self) {
        let _ = fs::remove_dir_all(&self.tmp);
    }

    /// Writes the index and meta, fsyncs, and moves the block into place. `level` and
    /// `sources` describe its history. Returns the opened block.
    pub(crate) fn finish(mut self, level: u32, sources: Vec<String>) -> Result<Block> {
        let res = self.finish_inner(level, sources);
        if res.is_err() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
        res
    }

    fn finish_inner(&mut self, level: u32, sources: Vec<String>) -> Result<Block> {
        self.flush_page()?;
        let path = self.tmp.join("chunks");
        self.chunks.flush().map_err(io_err("write", &path))?;
        self.chunks.get_ref().sync_all().map_err(io_err("fsync", &path))?;

        let index = encode_index(&self.series, &self.pages);
        let path = self.tmp.join("index");
        write_synced(&path, &index)?;

        let meta = Meta {
            version: FORMAT_VERSION,
            id: self.id.clone(),
            min_time: self.min_t,
            max_time: self.max_t,
            series: self.series.len() as u64,
            samples: self.samples,
            chunks: self.nchunks,
            level,
            sources,
            index_bytes: index.len() as u64,
            chunks_bytes: self.chunks_len,
        };
        let json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
        write_synced(&self.tmp.join("meta.json"), &json)?;
        sync_dir(&self.tmp)?;
        let _ = fs::remove_dir_all(&self.dir);
        fs::rename(&self.tmp, &self.dir).map_err(io_err("rename block directory", &self.dir))?;
        if let Some(parent) = self.dir.parent() {
            sync_dir(parent)?;
        }
        Block::open(&self.dir)
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(io_err("create", path))?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io_err("write", path))
}

/// Index: magic, `u8` compression (1 = zstd), `u64` raw body length, the zstd-compressed
/// body, `u32` CRC32C of everything before. Body: symbol table (`uvarint` count, then `uvarint` length + bytes, sorted);
/// page table (`uvarint` count, then `uvarint` offset delta + `uvarint` length); series
/// (`uvarint` count, then per series `uvarint` label count, (name, value) symbol numbers,
/// `uvarint` chunk count, per chunk `varint` min_t delta, `uvarint` max_t - min_t,
/// `uvarint` page, `uvarint` offset, `uvarint` length).
fn encode_index(series: &[(Labels, Vec<ChunkMeta>)], pages: &[(u64, u32)]) -> Vec<u8> {
    let mut symbols: Vec<&str> = series.iter().flat_map(|(l, _)| l.iter().flat_map(|(n, v)| [n, v])).collect();
    symbols.sort_unstable();
    symbols.dedup();
    let sym = |s: &str| symbols.binary_search(&s).expect("symbol collected") as u64;
    let mut buf = INDEX_MAGIC.to_vec();
    put_uvarint(&mut buf, symbols.len() as u64);
    for s in &symbols {
        put_uvarint(&mut buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }
    put_uvarint(&mut buf, pages.len() as u64);
    let mut prev = 0;
    for &(off, len) in pages {
        put_uvarint(&mut buf, off - prev);
        put_uvarint(&mut buf, len as u64);
        prev = off;
    }
    put_uvarint(&mut buf, series.len() as u64);
    for (labels, chunks) in series {
        put_uvarint(&mut buf, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_uvarint(&mut buf, sym(n));
            put_uvarint(&mut buf, sym(v));
        }
        put_uvarint(&mut buf, chunks.len() as u64);
        let mut prev_t = 0i64;
        for c in chunks {
            put_varint(&mut buf, c.min_t.wrapping_sub(prev_t));
            put_uvarint(&mut buf, c.max_t.wrapping_sub(c.min_t) as u64);
            put_uvarint(&mut buf, c.page as u64);
            put_uvarint(&mut buf, c.off as u64);
            put_uvarint(&mut buf, c.len as u64);
            prev_t = c.max_t;
        }
    }
    // Symbol numbers and chunk references repeat a lot: zstd shrinks the index 3-5x.
    let body = zstd::bulk::compress(&buf[INDEX_MAGIC.len()..], ZSTD_LEVEL).expect("in-memory compression");
    let mut out = INDEX_MAGIC.to_vec();
    out.push(1);
    out.extend_from_slice(&((buf.len() - INDEX_MAGIC.len()) as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// One series of a block.
#[derive(Debug)]
pub(crate) struct BlockSeries {
    pub(crate) labels: Labels,
    pub(crate) chunks: Box<[ChunkMeta]>,
}

/// An open block: its metadata and index in memory, its chunks file open for reads.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) dir: PathBuf,
    pub(crate) meta: Meta,
    pub(crate) series: Vec<BlockSeries>,
    pub(crate) postings: Postings,
    pages: Vec<(u64, u32)>,
    chunks: File,
    /// Process-unique number naming this block's pages in [`SharedPages`].
    pub(crate) uid: u64,
}

/// The last page a reader used, so series next to each other in a block decode one page
/// once, and optionally the cache of decompressed pages all readers share.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    shared: Option<Arc<SharedPages>>,
    key: Option<PageKey>,
    data: Option<Arc<[u8]>>,
}

impl PageCache {
    /// A reader's cache that also looks in, and fills, `shared`.
    pub(crate) fn with_shared(shared: Arc<SharedPages>) -> Self {
        Self { shared: Some(shared), ..Self::default() }
    }
}

impl Block {
    /// Opens and verifies a block directory (meta, index checksum, file sizes).
    pub(crate) fn open(dir: &Path) -> Result<Block> {
        let path = dir.join("meta.json");
        let raw = fs::read(&path).map_err(io_err("read", &path))?;
        let meta: Meta = serde_json::from_slice(&raw).map_err(|e| Error::corrupt(&path, e.to_string()))?;
        if meta.version != FORMAT_VERSION {
            return Err(Error::corrupt(&path, format!("unsupported block format version {}", meta.version)));
        }
        let path = dir.join("index");
        let index = fs::read(&path).map_err(io_err("read", &path))?;
        if index.len() as u64 != meta.index_bytes {
            return Err(Error::corrupt(&path, format!("{} bytes, meta.json says {}", index.len(), meta.index_bytes)));
        }
        let (series, pages) = decode_index(&index).map_err(|reason| Error::corrupt(&path, reason))?;
        let path = dir.join("chunks");
        let chunks = File::open(&path).map_err(io_err("open", &path))?;
        let len = chunks.metadata().map_err(io_err("stat", &path))?.len();
        if len != meta.chunks_bytes {
            return Err(Error::corrupt(&path, format!("{len} bytes, meta.json says {}", meta.chunks_bytes)));
        }
        if pages.iter().any(|&(off, plen)| off + (PAGE_HEADER + 4) as u64 + plen as u64 > len) {
            return Err(Error::corrupt(&path, "page table points past the end"));
        }
        let mut postings = Postings::default();
        for (i, s) in series.iter().enumerate() {
            postings.add(i as u32, &s.labels);
        }
        Ok(Block { dir: dir.to_path_buf(), meta, series, postings, pages, chunks, uid: next_block_uid() })
    }

    /// Appends series `i`'s samples inside `range` to `out`, in time order.
    pub(crate) fn samples(&self, i: u32, range: TimeRange, cache: &mut PageCache, out: &mut Vec<Sample>) -> Result<()> {
        let start = out.len();
        for c in self.series[i as usize].chunks.iter().filter(|c| range.overlaps(c.min_t, c.max_t)) {
            let page = self.page(c.page, cache)?;
            let data = page
                .get(c.off as usize..(c.off as usize + c.len as usize))
                .ok_or_else(|| self.bad("chunk outside its page"))?;
            blockchunk::decode(data, out).map_err(|e| self.bad(&e.to_string()))?;
        }
        let mut keep = start;
        for i in start..out.len() {
            if range.contains(out[i].t) {
                out[keep] = out[i];
                keep += 1;
            }
        }
        out.truncate(keep);
        Ok(())
    }

    fn bad(&self, reason: &str) -> Error {
        Error::corrupt(&self.dir.join("chunks"), reason)
    }

    fn page<'c>(&self, n: u32, cache: &'c mut PageCache) -> Result<&'c [u8]> {
        let key = (self.uid, n);
        if cache.key != Some(key) {
            cache.key = None;
            let hit = cache.shared.as_ref().and_then(|s| s.get(key));
            let data = match hit {
                Some(page) => page,
                None => {
                    let page: Arc<[u8]> = self.read_page(n)?.into();
                    if let Some(shared) = &cache.shared {
                        shared.insert(key, page.clone());
                    }
                    page
                }
            };
            cache.data = Some(data);
            cache.key = Some(key);
        }
        Ok(cache.data.as_deref().unwrap_or_default())
    }

    /// Reads, checks and decompresses page `n`.
    fn read_page(&self, n: u32) -> Result<Vec<u8>> {
        let &(off, len) = self.pages.get(n as usize).ok_or_else(|| self.bad("chunk names a missing page"))?;
        let mut raw = vec![0; PAGE_HEADER + len as usize + 4];
        let path = self.dir.join("chunks");
        self.chunks.read_exact_at(&mut raw, off).map_err(io_err("read", &path))?;
        let word = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
        let (stored_len, raw_len, crc) = (word(0), word(5) as usize, word(PAGE_HEADER + len as usize));
        let stored = &raw[PAGE_HEADER..PAGE_HEADER + len as usize];
        if stored_len != len || raw[4] != 1 || crc32c::crc32c(stored) != crc {
            return Err(self.bad(&format!("page {n} at byte {off} fails its checksum")));
        }
        if raw_len > 64 << 20 {
            return Err(self.bad(&format!("page {n} at byte {off} claims {raw_len} bytes")));
        }
        DECOMPRESSOR.with(|d| {
            let mut d = d.borrow_mut();
            let d = match d.as_mut() {
                Some(d) => d,
                None => d.insert(zstd::bulk::Decompressor::new().map_err(io_err("create zstd context for", &path))?),
            };
            d.decompress(stored, raw_len)
                .map_err(|e| self.bad(&format!("page {n} at byte {off} does not decompress: {e}")))
        })
    }

    /// Whether series `i` has a chunk overlapping `range`.
    pub(crate) fn overlaps(&self, i: u32, range: TimeRange) -> bool {
        self.series[i as usize].chunks.iter().any(|c| range.overlaps(c.min_t, c.max_t))
    }

    /// Bytes on disk.
    pub(crate) fn size(&self) -> u64 {
        self.meta.index_bytes + self.meta.chunks_bytes
    }
}

type Index = (Vec<BlockSeries>, Vec<(u64, u32)>);

fn decode_index(buf: &[u8]) -> Result<Index, String> {
    if buf.len() < INDEX_MAGIC.len() + 4 || buf[..INDEX_MAGIC.len()] != INDEX_MAGIC {
        return Err("bad magic".into());
    }
    let (body, crc) = buf.split_at(buf.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("checksum mismatch".into());
    }
    let t = |_: Truncated| "truncated or malformed".to_string();
    let mut h = Reader::new(&body[INDEX_MAGIC.len()..]);
    let (compression, raw_len) = (h.bytes(1).map_err(t)?[0], h.u64().map_err(t)?);
    if compression != 1 || raw_len > 4 << 30 {
        return Err(format!("unknown compression {compression} or size {raw_len}"));
    }
    let plain = zstd::bulk::decompress(&body[INDEX_MAGIC.len() + 9..], raw_len as usize)
        .map_err(|e| format!("does not decompress: {e}"))?;
    let mut r = Reader::new(&plain);
    let nsym = r.uvarint().map_err(t)?;
    let mut symbols = Vec::with_capacity(nsym.min(1 << 20) as usize);
    for _ in 0..nsym {
        let s = std::str::from_utf8(r.len_prefixed().map_err(t)?).map_err(|_| "symbol is not utf-8")?;
        symbols.push(s);
    }
    let npages = r.uvarint().map_err(t)?;
    let mut pages = Vec::with_capacity(npages.min(1 << 20) as usize);
    let mut off = 0u64;
    for _ in 0..npages {
        off = off.checked_add(r.uvarint().map_err(t)?).ok_or("page offset overflows")?;
        pages.push((off, u32::try_from(r.uvarint().map_err(t)?).map_err(|_| "page too long")?));
    }
    let nseries = r.uvarint().map_err(t)?;
    let mut series = Vec::with_capacity(nseries.min(1 << 24) as usize);
    let sym = |n: u64| symbols.get(n as usize).copied().ok_or("symbol number out of range");
    let mut b = LabelsBuilder::new();
    for _ in 0..nseries {
        b.clear();
        for _ in 0..r.uvarint().map_err(t)? {
            b.push(sym(r.uvarint().map_err(t)?)?, sym(r.uvarint().map_err(t)?)?);
        }
        let labels = b.build().map_err(|e| e.to_string())?;
        let n = r.uvarint().map_err(t)?;
        let mut chunks = Vec::with_capacity(n.min(1 << 16) as usize);
        let mut prev_t = 0i64;
        for _ in 0..n {
            let min_t = prev_t.wrapping_add(r.varint().map_err(t)?);
            let max_t = min_t.wrapping_add(r.uvarint().map_err(t)? as i64);
            let small = |v: u64| u32::try_from(v).map_err(|_| "chunk reference out of range".to_string());
            let page = small(r.uvarint().map_err(t)?)?;
            let off = small(r.uvarint().map_err(t)?)?;
            let len = small(r.uvarint().map_err(t)?)?;
            if page as usize >= pages.len() {
                return Err("chunk reference out of range".into());
            }
            chunks.push(ChunkMeta { min_t, max_t, page, off, len });
            prev_t = max_t;
        }
        series.push(BlockSeries { labels, chunks: chunks.into_boxed_slice() });
    }
    if !r.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok((series, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new(dir.path(), "0001", 1000).unwrap();
        let a = Labels::from_pairs([("__name__", "a"), ("job", "x")]).unwrap();
        let b = Labels::from_pairs([("__name__", "b")]).unwrap();
        let sa: Vec<_> = (0..5000).map(|i| Sample::new(i, i as f64)).collect();
        w.add(&a, &sa).unwrap();
        w.add(&b, &[Sample::new(7, f64::NAN)]).unwrap();
        let block = w.finish(1, vec![]).unwrap();
        assert_eq!((block.meta.min_time, block.meta.max_time, block.meta.samples), (0, 4999, 5001));
        assert_eq!(block.series[0].chunks.len(), 5);
        assert!(block.meta.chunks_bytes < 5000 * 2, "{} bytes", block.meta.chunks_bytes);
        let again = Block::open(&dir.path().join("0001")).unwrap();
        let mut cache = PageCache::default();
        let mut out = Vec::new();
        again.samples(0, TimeRange::new(998, 1001), &mut cache, &mut out).unwrap();
        assert_eq!(out.iter().map(|s| s.t).collect::<Vec<_>>(), [998, 999, 1000, 1001]);
        assert_eq!(again.postings.select(&[telltale_model::Matcher::equal("job", "x")]).len(), 1);
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new(dir.path(), "0001", 1000).unwrap();
        let a = Labels::from_pairs([("__name__", "a")]).unwrap();
        w.add(&a, &[Sample::new(1, 1.0), Sample::new(2, 2.0)]).unwrap();
        w.finish(1, vec![]).unwrap();
        let chunks = dir.path().join("0001/chunks");
        let mut data = fs::read(&chunks).unwrap();
        let last = data.len() - 6;
        data[last] ^= 0xff;
        fs::write(&chunks, &data).unwrap();
        let block = Block::open(&dir.path().join("0001")).unwrap();
        let err = block.samples(0, TimeRange::ALL, &mut PageCache::default(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let index = dir.path().join("0001/index");
        let mut data = fs::read(&index).unwrap();
        data[10] ^= 1;
        fs::write(&index, &data).unwrap();
        assert!(Block::open(&dir.path().join("0001")).is_err());
    }
}
