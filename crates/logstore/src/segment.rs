//! Segment files: one Parquet file per flush (time partition), its rows sorted by stream then
//! time, one or more row groups ("blocks") per stream, zstd pages; plus a sidecar `.idx`
//! holding, per block, the stream, time bounds, row and byte counts and the needle bloom
//! filter. The format is in `docs/format.md`.
//!
//! The bloom filters (about a tenth of a segment's bytes) are written to the index file as
//! each block is done and read a byte at a time (`pread`) when a needle query probes them, so
//! neither writing a large segment nor holding many open costs memory in proportion to the
//! data: only the block table stays in memory.
//!
//! Parquet columns: `timestamp` (ns, UTC), `line` or its encoding (`linecodec`: the segment
//! id, template and variable columns; the id dictionary lives in the `.idx`), one string
//! column per stream label name
//! (dictionary encoded, constant within a block) and one per structured-metadata key. The
//! field metadata `telltale.kind` says which is which, so SQL sees one flat table while
//! LogQL gets stream labels and structured metadata back apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use telltale_model::Labels;

use crate::bloom::{self, BloomBuilder};
use crate::error::{io_err, Error, Result};
use crate::linecodec::{self, EncodedRow, Encoder, ID_BYTES};
use crate::wal::{put_uvarint, put_varint, Cursor};

/// Version 1: blooms inline in a checksummed body, power-of-two sizes (read, no longer written).
const IDX_MAGIC_V1: [u8; 8] = *b"TTLIDX\0\x01";
/// Version 2: blooms first, then the block table, then a footer; exact sizes (read, no
/// longer written).
const IDX_MAGIC_V2: [u8; 8] = *b"TTLIDX\0\x02";
/// Version 3: version 2 plus, between the blooms and the table, the id dictionary's filter and
/// the dictionary (16 bytes per id) of a segment with encoded lines.
const IDX_MAGIC_V3: [u8; 8] = *b"TTLIDX\0\x03";
/// Version 4: version 3 and the merge that wrote the segment.
const IDX_MAGIC: [u8; 8] = *b"TTLIDX\0\x04";
/// Table offset (u64) and CRC32C of everything before the CRC (u32).
const IDX_FOOTER: usize = 12;
pub(crate) const KIND: &str = "telltale.kind";
pub(crate) const KEY: &str = "telltale.key";

/// The columns of a segment with encoded lines (`linecodec`) that stand for `line`: the
/// segment's id (so SQL knows which dictionary a row's refs point into), then the template
/// and the variables.
pub(crate) const ENCODED_LINE_COLUMNS: [&str; 5] =
    ["__tt_segment", "__tt_template", "__tt_nums", "__tt_hexes", "__tt_refs"];

/// One block of a segment, as its index describes it.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Index into the segment's stream table.
    pub(crate) stream: usize,
    pub(crate) row_group: usize,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) rows: u64,
    pub(crate) line_bytes: u64,
    /// Where the block's bloom filter lies in its segment's filter bytes.
    pub(crate) bloom: std::ops::Range<usize>,
}

/// What a segment's `.idx` holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentIndex {
    /// The last WAL segment whose lines this file holds (all earlier ones too).
    pub(crate) wal_upto: u64,
    pub(crate) streams: Vec<Labels>,
    pub(crate) blocks: Vec<Block>,
    /// Where the id dictionary's filter and ids lie in the index file (version 3).
    pub(crate) dict: Option<DictLocation>,
    /// The merge that wrote this segment (version 4), so that opening the store can finish
    /// or undo one a crash cut short.
    pub(crate) merge: Option<MergeRecord>,
}

/// A merge: the segments it replaces and the segments it writes (all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MergeRecord {
    pub(crate) inputs: Vec<u64>,
    pub(crate) outputs: Vec<u64>,
}

/// Byte ranges of an id dictionary in its index file.
#[derive(Debug, Clone, Default)]
pub(crate) struct DictLocation {
    pub(crate) bloom: std::ops::Range<usize>,
    pub(crate) ids: std::ops::Range<usize>,
}

impl SegmentIndex {
    pub(crate) fn min_ts(&self) -> i64 {
        self.blocks.iter().map(|b| b.min_ts).min().unwrap_or(i64::MAX)
    }

    pub(crate) fn max_ts(&self) -> i64 {
        self.blocks.iter().map(|b| b.max_ts).max().unwrap_or(i64::MIN)
    }

    /// The block table of a version 2 index (blooms are written before it).
    fn encode_table(&self) -> Vec<u8> {
        let mut body = Vec::new();
        put_uvarint(&mut body, self.wal_upto);
        put_uvarint(&mut body, self.streams.len() as u64);
        for s in &self.streams {
            put_uvarint(&mut body, s.as_bytes().len() as u64);
            body.extend_from_slice(s.as_bytes());
        }
        put_uvarint(&mut body, self.blocks.len() as u64);
        for b in &self.blocks {
            put_uvarint(&mut body, b.stream as u64);
            put_uvarint(&mut body, b.row_group as u64);
            put_varint(&mut body, b.min_ts);
            put_varint(&mut body, b.max_ts);
            put_uvarint(&mut body, b.rows);
            put_uvarint(&mut body, b.line_bytes);
            put_uvarint(&mut body, b.bloom.len() as u64);
        }
        let d = self.dict.clone().unwrap_or_default();
        put_uvarint(&mut body, d.bloom.len() as u64);
        put_uvarint(&mut body, (d.ids.len() / ID_BYTES) as u64);
        let m = self.merge.clone().unwrap_or_default();
        for ids in [&m.inputs, &m.outputs] {
            put_uvarint(&mut body, ids.len() as u64);
            for id in ids {
                put_uvarint(&mut body, *id);
            }
        }
        body
    }

    /// Parses a block table. Versions 2 and 3 give bloom lengths (the blooms lie back to back
    /// from `blooms_at`, up to `blooms_end`; in version 3 the dictionary's filter and ids
    /// follow them); version 1 gives the blooms inline, which are appended to `inline` and
    /// located there.
    fn decode_table(
        body: &[u8],
        blooms_at: usize,
        blooms_end: usize,
        mut inline: Option<&mut Vec<u8>>,
        version: u8,
        path: &Path,
    ) -> Result<Self> {
        let mut c = Cursor { b: body };
        let mut at = blooms_at;
        let mut parse = || -> Option<SegmentIndex> {
            let wal_upto = c.uvarint()?;
            let n = c.uvarint()? as usize;
            let mut streams = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                streams.push(Labels::from_encoded(c.bytes()?).ok()?);
            }
            let n = c.uvarint()? as usize;
            let mut blocks = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let stream = c.uvarint()? as usize;
                if stream >= streams.len() {
                    return None;
                }
                let (row_group, min_ts, max_ts, rows, line_bytes) =
                    (c.uvarint()? as usize, c.varint()?, c.varint()?, c.uvarint()?, c.uvarint()?);
                let bloom = match inline.as_deref_mut() {
                    Some(buf) => {
                        let start = buf.len();
                        buf.extend_from_slice(c.bytes()?);
                        start..buf.len()
                    }
                    None => {
                        let len = usize::try_from(c.uvarint()?).ok()?;
                        let end = at.checked_add(len).filter(|&e| e <= blooms_end)?;
                        let r = at..end;
                        at = end;
                        r
                    }
                };
                blocks.push(Block { stream, row_group, min_ts, max_ts, rows, line_bytes, bloom });
            }
            let mut dict = None;
            if version >= 3 {
                let bloom_len = usize::try_from(c.uvarint()?).ok()?;
                let ids_len = usize::try_from(c.uvarint()?).ok()?.checked_mul(ID_BYTES)?;
                let bloom = at..at.checked_add(bloom_len)?;
                let ids = bloom.end..bloom.end.checked_add(ids_len)?;
                if ids.end != blooms_end {
                    return None;
                }
                dict = Some(DictLocation { bloom, ids });
            }
            let mut merge = None;
            if version >= 4 {
                let mut ids = || -> Option<Vec<u64>> {
                    let n = c.uvarint()? as usize;
                    (0..n).map(|_| c.uvarint()).collect()
                };
                let (inputs, outputs) = (ids()?, ids()?);
                merge = (!inputs.is_empty()).then_some(MergeRecord { inputs, outputs });
            }
            c.b.is_empty().then_some(SegmentIndex { wal_upto, streams, blocks, dict, merge })
        };
        parse().ok_or_else(|| Error::corrupt(path, "undecodable index"))
    }
}

/// A segment's bloom filter bytes: in a version 2 index file, read byte by byte when probed,
/// or copied out of a version 1 one.
#[derive(Debug)]
enum Filters {
    InFile(File),
    Owned(Vec<u8>),
}

impl Filters {
    /// Byte `i` of the filter bytes; on a read error 0xff, so a probe never skips a block
    /// that might match (reading the block then reports the error).
    fn byte(&self, i: usize) -> u8 {
        use std::os::unix::fs::FileExt;
        match self {
            Filters::InFile(f) => {
                let mut b = [0u8];
                f.read_exact_at(&mut b, i as u64).map_or(0xff, |()| b[0])
            }
            Filters::Owned(v) => v.get(i).copied().unwrap_or(0xff),
        }
    }
}

/// Reads and verifies index file `path`: its block table and its filters.
fn read_index(path: &Path) -> Result<(SegmentIndex, Filters, bloom::Sizing, u64)> {
    use std::os::unix::fs::FileExt;
    let bad = |why: String| Error::corrupt(path, why);
    let file = File::open(path).map_err(io_err("open segment index", path))?;
    let len = file.metadata().map_err(io_err("open segment index", path))?.len();
    let mut magic = [0u8; 8];
    if len < 8 || file.read_exact_at(&mut magic, 0).is_err() {
        return Err(bad("bad magic".into()));
    }
    if magic == IDX_MAGIC_V1 {
        let data = fs::read(path).map_err(io_err("read segment index", path))?;
        if data.len() < 12 {
            return Err(bad("bad magic".into()));
        }
        let crc = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if crc32c::crc32c(&data[12..]) != crc {
            return Err(bad("checksum mismatch".into()));
        }
        let mut blooms = Vec::new();
        let index = SegmentIndex::decode_table(&data[12..], 0, 0, Some(&mut blooms), 1, path)?;
        return Ok((index, Filters::Owned(blooms), bloom::Sizing::PowerOfTwo, len));
    }
    let version = match magic {
        IDX_MAGIC_V2 => 2,
        IDX_MAGIC_V3 => 3,
        IDX_MAGIC => 4,
        _ => return Err(bad("bad magic".into())),
    };
    if len < (8 + IDX_FOOTER) as u64 {
        return Err(bad("bad magic".into()));
    }
    // Verified in pieces, so opening a large index does not hold it in memory.
    let body_end = len - 4;
    let mut crc = 0u32;
    let mut buf = vec![0u8; 1 << 18];
    let mut at = 0u64;
    while at < body_end {
        let n = (body_end - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at).map_err(io_err("read segment index", path))?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        at += n as u64;
    }
    let mut footer = [0u8; IDX_FOOTER];
    file.read_exact_at(&mut footer, len - IDX_FOOTER as u64).map_err(io_err("read segment index", path))?;
    if u32::from_le_bytes(footer[8..].try_into().expect("4 bytes")) != crc {
        return Err(bad("checksum mismatch".into()));
    }
    let table_at = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    let table_end = len - IDX_FOOTER as u64;
    if !(8..=table_end).contains(&table_at) {
        return Err(bad(format!("table offset {table_at} outside the file")));
    }
    let mut table = vec![0u8; (table_end - table_at) as usize];
    file.read_exact_at(&mut table, table_at).map_err(io_err("read segment index", path))?;
    let index = SegmentIndex::decode_table(&table, 8, table_at as usize, None, version, path)?;
    Ok((index, Filters::InFile(file), bloom::Sizing::Exact, len))
}

/// The rows of one stream to write, already in time order.
pub(crate) struct StreamRows<'a> {
    pub(crate) labels: &'a Labels,
    pub(crate) ts: Vec<i64>,
    pub(crate) lines: Vec<&'a [u8]>,
    pub(crate) meta: Vec<&'a Labels>,
}

/// Settings of a segment write.
pub(crate) struct WriteSettings {
    pub(crate) block_lines: usize,
    pub(crate) compression_level: i32,
    /// Lines as templates and variables (`linecodec`), or as text.
    pub(crate) encode_lines: bool,
}

pub(crate) fn parquet_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:010}.parquet"))
}

pub(crate) fn index_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:010}.idx"))
}

/// The column of metadata key `key`: the key itself, or `meta_<key>` when a stream label
/// (`is_label`) or a built-in column (`timestamp`, `line`, the encoded line's) has that name.
pub(crate) fn meta_column_name(key: &str, is_label: bool) -> String {
    if is_label || key == "timestamp" || key == "line" || ENCODED_LINE_COLUMNS.contains(&key) {
        format!("meta_{key}")
    } else {
        key.to_string()
    }
}

/// The columns of a segment, fixed before its first row: stream label names, and metadata
/// keys with their column names (a key taken by a label or a built-in column becomes
/// `meta_<key>`).
#[derive(Debug, Default)]
pub(crate) struct Columns {
    labels: Vec<String>,
    meta: Vec<(String, String)>,
}

impl Columns {
    /// Columns for streams with these label sets and rows with these metadata keys.
    pub(crate) fn new<'a>(
        label_sets: impl IntoIterator<Item = &'a Labels>,
        meta_keys: impl IntoIterator<Item = String>,
    ) -> Self {
        let labels: BTreeSet<String> =
            label_sets.into_iter().flat_map(|l| l.iter().map(|(k, _)| k.to_string())).collect();
        let keys: BTreeSet<String> = meta_keys.into_iter().collect();
        let meta = keys
            .into_iter()
            .map(|k| {
                let col = meta_column_name(&k, labels.contains(&k));
                (k, col)
            })
            .collect();
        Columns { labels: labels.into_iter().collect(), meta }
    }

    /// Columns for exactly these streams.
    pub(crate) fn of(streams: &[StreamRows<'_>]) -> Self {
        let keys = streams.iter().flat_map(|s| s.meta.iter().flat_map(|m| m.iter().map(|(k, _)| k.to_string())));
        Self::new(streams.iter().map(|s| s.labels), keys.collect::<Vec<_>>())
    }
}

/// Writes segment `id` into `dir` (Parquet, then index; both fsynced, renamed into place).
pub(crate) fn write(
    dir: &Path,
    id: u64,
    wal_upto: u64,
    streams: &[StreamRows<'_>],
    settings: &WriteSettings,
) -> Result<(SegmentIndex, u64)> {
    let mut w = SegmentWriter::create(dir, id, wal_upto, Columns::of(streams), settings)?;
    for s in streams {
        w.add(s)?;
    }
    w.finish()
}

/// A segment being written, one stream at a time, so a writer never needs more than one
/// stream's rows in memory (compaction of large segments depends on that). Dropped before
/// [`SegmentWriter::finish`], it removes its temporary file.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    id: u64,
    tmp: PathBuf,
    cols: Columns,
    schema: Arc<Schema>,
    writer: Option<ArrowWriter<File>>,
    index: SegmentIndex,
    block_lines: usize,
    /// The index being written: blooms as blocks finish, the table at the end.
    idx: Option<IndexFile>,
    /// Encodes lines (and builds the segment's id dictionary), unless lines are stored as text.
    encoder: Option<Encoder>,
}

/// A temporary index file written front to back, with a running CRC.
struct IndexFile {
    path: PathBuf,
    out: std::io::BufWriter<File>,
    len: usize,
    crc: u32,
}

impl IndexFile {
    fn create(path: PathBuf) -> Result<IndexFile> {
        let f = File::create(&path).map_err(io_err("create segment index", &path))?;
        let mut i = IndexFile { out: std::io::BufWriter::with_capacity(1 << 16, f), path, len: 0, crc: 0 };
        i.put(&IDX_MAGIC)?;
        Ok(i)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(io_err("write segment index", &self.path))?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.len += b.len();
        Ok(())
    }

    /// Appends the table and the footer, and fsyncs.
    fn finish(mut self, table: &[u8]) -> Result<()> {
        let table_at = self.len as u64;
        self.put(table)?;
        self.put(&table_at.to_le_bytes())?;
        let crc = self.crc;
        self.out.write_all(&crc.to_le_bytes()).map_err(io_err("write segment index", &self.path))?;
        let f = self.out.into_inner().map_err(|e| io_err("write segment index", &self.path)(e.into_error()))?;
        f.sync_all().map_err(io_err("fsync segment index", &self.path))
    }
}

impl SegmentWriter {
    /// Starts segment `id` in `dir` with these columns.
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        wal_upto: u64,
        cols: Columns,
        settings: &WriteSettings,
    ) -> Result<SegmentWriter> {
        let mut fields =
            vec![Field::new("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false)];
        if settings.encode_lines {
            fields.push(Field::new(ENCODED_LINE_COLUMNS[0], DataType::UInt64, false));
            fields.extend(ENCODED_LINE_COLUMNS[1..].iter().map(|c| Field::new(*c, DataType::Binary, false)));
        } else {
            fields.push(Field::new("line", DataType::Utf8, false));
        }
        for l in &cols.labels {
            fields.push(
                Field::new(l, DataType::Utf8, true).with_metadata([(KIND.to_string(), "label".to_string())].into()),
            );
        }
        for (key, col) in &cols.meta {
            let md = [(KIND.to_string(), "metadata".to_string()), (KEY.to_string(), key.clone())].into();
            fields.push(Field::new(col, DataType::Utf8, true).with_metadata(md));
        }
        let schema = Arc::new(Schema::new(fields));
        let level = ZstdLevel::try_new(settings.compression_level).map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(None)
            // One page per column of a block: zstd packs a block's templates tighter as one
            // frame than as 1 MiB pages (9.4 -> 7.0 bytes per line at level 6).
            .set_data_page_size_limit(64 << 20)
            .set_column_encoding(ColumnPath::from("timestamp"), Encoding::DELTA_BINARY_PACKED);
        if settings.encode_lines {
            props = props.set_column_dictionary_enabled(ColumnPath::from(ENCODED_LINE_COLUMNS[0]), true);
            for c in &ENCODED_LINE_COLUMNS[1..] {
                props = props.set_column_encoding(ColumnPath::from(*c), Encoding::DELTA_LENGTH_BYTE_ARRAY);
            }
            // A block's distinct templates as a dictionary: a third of its lines, so smaller
            // on disk, and zstd then works on that page alone, with smaller tables.
            let template = ColumnPath::from(ENCODED_LINE_COLUMNS[1]);
            props = props
                .set_column_dictionary_enabled(template.clone(), true)
                .set_column_dictionary_page_size_limit(template, 64 << 20);
            // Variables are mostly random bytes: a high level only costs time on them.
            let low = ZstdLevel::try_new(settings.compression_level.min(3)).expect("levels 1-3 exist");
            for c in &ENCODED_LINE_COLUMNS[2..] {
                props = props.set_column_compression(ColumnPath::from(*c), Compression::ZSTD(low));
            }
        }
        for c in cols.labels.iter().chain(cols.meta.iter().map(|(_, c)| c)) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c.as_str()), true);
        }
        let tmp = dir.join(format!("{id:010}.parquet.tmp"));
        let idx = IndexFile::create(dir.join(format!("{id:010}.idx.tmp")))?;
        let file = File::create(&tmp).map_err(io_err("create segment", &tmp))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.build())).map_err(|e| pq_err(&tmp, e))?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            id,
            tmp,
            cols,
            schema,
            writer: Some(writer),
            index: SegmentIndex { wal_upto, ..SegmentIndex::default() },
            block_lines: settings.block_lines,
            idx: Some(idx),
            encoder: settings.encode_lines.then(Encoder::default),
        })
    }

    /// Appends rows of one stream (in time order; streams in label order) as one or more
    /// row groups with their index entries. Rows of the stream added last may come in
    /// several calls, each continuing where the previous ended.
    pub(crate) fn add(&mut self, s: &StreamRows<'_>) -> Result<()> {
        if s.ts.is_empty() {
            return Ok(());
        }
        let writer = self.writer.as_mut().expect("not finished");
        let sid = match self.index.streams.last() {
            Some(last) if last == s.labels => self.index.streams.len() - 1,
            _ => {
                self.index.streams.push(s.labels.clone());
                self.index.streams.len() - 1
            }
        };
        let mut start = 0;
        while start < s.ts.len() {
            let end = (start + self.block_lines).min(s.ts.len());
            let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
            cols.push(Arc::new(TimestampNanosecondArray::from(s.ts[start..end].to_vec()).with_timezone("UTC")));
            let mut bloom = BloomBuilder::default();
            match self.encoder.as_mut() {
                Some(enc) => {
                    cols.extend(encode_block(enc, self.id, &s.lines[start..end], &s.ts[start..end], &mut bloom));
                }
                None => {
                    let lines: Vec<&str> =
                        s.lines[start..end].iter().map(|l| std::str::from_utf8(l).unwrap_or("")).collect();
                    cols.push(Arc::new(StringArray::from(lines)));
                }
            }
            for l in &self.cols.labels {
                let v = s.labels.get(l);
                cols.push(Arc::new(StringArray::from(vec![v; end - start])));
            }
            for (key, _) in &self.cols.meta {
                let vals: Vec<Option<&str>> = s.meta[start..end].iter().map(|m| m.get(key)).collect();
                cols.push(Arc::new(StringArray::from(vals)));
            }
            let batch = RecordBatch::try_new(self.schema.clone(), cols)
                .map_err(|e| Error::corrupt(&self.tmp, e.to_string()))?;
            writer.write(&batch).map_err(|e| pq_err(&self.tmp, e))?;
            writer.flush().map_err(|e| pq_err(&self.tmp, e))?;
            let mut bytes = 0u64;
            for l in &s.lines[start..end] {
                bloom.add_text(l, self.encoder.is_some());
                bytes += l.len() as u64;
            }
            let row_group = self.index.blocks.len();
            let filter = bloom.finish();
            let idx = self.idx.as_mut().expect("not finished");
            let at = idx.len;
            idx.put(&filter)?;
            self.index.blocks.push(Block {
                stream: sid,
                row_group,
                min_ts: s.ts[start],
                max_ts: s.ts[end - 1],
                rows: (end - start) as u64,
                line_bytes: bytes,
                bloom: at..at + filter.len(),
            });
            start = end;
        }
        Ok(())
    }

    /// Notes the merge this segment is written by.
    pub(crate) fn record_merge(&mut self, merge: MergeRecord) {
        self.index.merge = Some(merge);
    }

    /// Whether no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.blocks.is_empty()
    }

    /// Closes the Parquet file, writes the index, fsyncs both and renames them into place.
    /// Returns the index and the bytes of both files.
    pub(crate) fn finish(mut self) -> Result<(SegmentIndex, u64)> {
        let writer = self.writer.take().expect("finished once");
        let file = writer.into_inner().map_err(|e| pq_err(&self.tmp, e))?;
        file.sync_all().map_err(io_err("fsync segment", &self.tmp))?;
        drop(file);
        let (dir, id) = (self.dir.clone(), self.id);
        let ppath = parquet_path(&dir, id);
        let ipath = index_path(&dir, id);
        let mut idx = self.idx.take().expect("finished once");
        let itmp = idx.path.clone();
        if let Some(enc) = self.encoder.take() {
            self.index.dict = Some(write_dict(&mut idx, &enc.dict.ids)?);
        }
        let table = self.index.encode_table();
        let res = (|| -> Result<()> {
            idx.finish(&table)?;
            fs::rename(&itmp, &ipath).map_err(io_err("rename segment index", &ipath))?;
            fs::rename(&self.tmp, &ppath).map_err(io_err("rename segment", &ppath))?;
            Ok(crate::wal::sync_dir(&dir)?)
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&itmp);
            let _ = fs::remove_file(&ipath);
            return Err(e);
        }
        let size =
            fs::metadata(&ppath).map(|m| m.len()).unwrap_or(0) + fs::metadata(&ipath).map(|m| m.len()).unwrap_or(0);
        Ok((std::mem::take(&mut self.index), size))
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // Unfinished (an error, or the caller gave up): leave no temporary file behind. After
        // `finish` renamed it, this finds nothing.
        let _ = fs::remove_file(&self.tmp);
        if let Some(i) = &self.idx {
            let _ = fs::remove_file(&i.path);
        }
    }
}

/// Encodes one block's lines into the encoded-line columns, adding each distinct dictionary
/// ref to the block's filter.
fn encode_block(enc: &mut Encoder, id: u64, lines: &[&[u8]], ts: &[i64], bloom: &mut BloomBuilder) -> [ArrayRef; 5] {
    let mut row = EncodedRow::default();
    let n = lines.len();
    let mut cols: [BinaryBuilder; 4] = std::array::from_fn(|_| BinaryBuilder::with_capacity(n, n * 16));
    for (l, t) in lines.iter().zip(ts) {
        enc.encode(l, *t, &mut row);
        for r in linecodec::refs_of(&row.refs) {
            bloom.add_ref(r);
        }
        for (c, v) in cols.iter_mut().zip([&row.template, &row.nums, &row.hexes, &row.refs]) {
            c.append_value(v);
        }
    }
    let [t, nums, hexes, refs] = cols.map(|mut c| Arc::new(c.finish()) as ArrayRef);
    [Arc::new(UInt64Array::from(vec![id; n])), t, nums, hexes, refs]
}

/// Appends the dictionary's filter (over the ids' hex text) and the ids to an index file.
fn write_dict(idx: &mut IndexFile, ids: &[[u8; ID_BYTES]]) -> Result<DictLocation> {
    let mut bloom = BloomBuilder::default();
    let mut hex = Vec::with_capacity(2 * ID_BYTES);
    for id in ids {
        hex.clear();
        linecodec::put_hex(id, &mut hex);
        bloom.add_line(&hex);
    }
    let filter = if ids.is_empty() { Vec::new() } else { bloom.finish_sparse() };
    let at = idx.len;
    idx.put(&filter)?;
    let bloom = at..idx.len;
    for id in ids {
        idx.put(id)?;
    }
    Ok(DictLocation { ids: bloom.end..idx.len, bloom })
}

fn pq_err(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(io) => io_err("write segment", path)(*io),
            Err(other) => Error::corrupt(path, other.to_string()),
        },
        other => {
            let msg = other.to_string();
            if msg.contains("No space left") || msg.contains("os error 28") {
                Error::DiskFull { op: "write segment", path: path.to_path_buf() }
            } else {
                Error::Io { op: "write segment", path: path.to_path_buf(), source: std::io::Error::other(msg) }
            }
        }
    }
}

/// A needle piece as probed in one segment: its n-grams, and the filter keys of each
/// dictionary id holding it.
#[derive(Debug, Clone)]
pub(crate) struct PieceProbe {
    text: Vec<u8>,
    grams: Vec<u64>,
    refs: Vec<u64>,
    ref_keys: Vec<Vec<u64>>,
}

/// An open segment: its index, its Parquet metadata, and which columns are metadata.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) index: SegmentIndex,
    pub(crate) bytes: u64,
    meta: ArrowReaderMetadata,
    /// (column index, metadata key), sorted by key.
    meta_cols: Vec<(usize, String)>,
    file: PosFile,
    filters: Filters,
    sizing: bloom::Sizing,
    /// Column indices of the encoded line (template, nums, hexes, refs), or of `line` alone.
    line_cols: Vec<usize>,
    /// The id dictionary while someone uses it (it is loaded on demand, not kept).
    dict: std::sync::Mutex<std::sync::Weak<Vec<u8>>>,
}

/// A segment file read with positional reads (`pread`), each reader keeping its own
/// position, so queries and compaction can read one segment at the same time. (Parquet's
/// reader for `File` clones the descriptor, and clones share one offset: two concurrent
/// reads of a segment then read each other's bytes.)
#[derive(Debug, Clone)]
struct PosFile(Arc<File>);

/// A [`Read`](std::io::Read) from a position of a [`PosFile`].
struct PosRead {
    file: Arc<File>,
    pos: u64,
}

impl std::io::Read for PosRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::Length for PosFile {
    fn len(&self) -> u64 {
        self.0.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

impl parquet::file::reader::ChunkReader for PosFile {
    type T = std::io::BufReader<PosRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(std::io::BufReader::new(PosRead { file: self.0.clone(), pos: start }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; length];
        self.0.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

impl Segment {
    /// Opens and verifies segment `id` of `dir`.
    pub(crate) fn open(dir: &Path, id: u64) -> Result<Segment> {
        let ipath = index_path(dir, id);
        let (index, filters, sizing, index_bytes) = read_index(&ipath)?;
        let path = parquet_path(dir, id);
        let file = File::open(&path).map_err(io_err("open segment", &path))?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| Error::corrupt(&path, format!("unreadable parquet footer: {e}")))?;
        let schema = meta.schema().clone();
        let mut meta_cols: Vec<(usize, String)> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.metadata().get(KIND).map(String::as_str) == Some("metadata"))
            .map(|(i, f)| (i, f.metadata().get(KEY).cloned().unwrap_or_else(|| f.name().clone())))
            .collect();
        meta_cols.sort_by(|a, b| a.1.cmp(&b.1));
        // Metadata columns are read as dictionaries: a row's metadata set is then a few
        // keys, and queries label each distinct set once, not each row.
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = f.as_ref().clone();
                if meta_cols.iter().any(|(c, _)| *c == i) && *f.data_type() == DataType::Utf8 {
                    f.with_data_type(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
                } else {
                    f
                }
            })
            .collect();
        let dict_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let meta =
            ArrowReaderMetadata::try_new(meta.metadata().clone(), ArrowReaderOptions::new().with_schema(dict_schema))
                .map_err(|e| Error::corrupt(&path, format!("unreadable metadata columns: {e}")))?;
        let groups = meta.metadata().num_row_groups();
        if let Some(b) = index.blocks.iter().find(|b| b.row_group >= groups) {
            return Err(Error::corrupt(&path, format!("index names row group {} of {groups}", b.row_group)));
        }
        let col = |name: &str| schema.index_of(name).ok();
        let line_cols: Option<Vec<usize>> = if col(ENCODED_LINE_COLUMNS[1]).is_some() {
            ENCODED_LINE_COLUMNS[1..].iter().map(|c| col(c)).collect()
        } else {
            col("line").map(|c| vec![c])
        };
        let (Some(line_cols), Some(0)) = (line_cols, col("timestamp")) else {
            return Err(Error::corrupt(&path, "no timestamp or line columns"));
        };
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0) + index_bytes;
        Ok(Segment {
            id,
            path,
            index,
            bytes,
            meta,
            meta_cols,
            file: PosFile(Arc::new(file)),
            filters,
            sizing,
            line_cols,
            dict: Default::default(),
        })
    }

    /// Whether lines are stored as templates and variables (not as text).
    pub(crate) fn lines_encoded(&self) -> bool {
        self.line_cols.len() > 1
    }

    /// The id dictionary (16 bytes per id; empty for a segment of text lines), read from the
    /// index file unless a reader holds it already.
    pub(crate) fn dict(&self) -> Result<Arc<Vec<u8>>> {
        let mut cached = self.dict.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = cached.upgrade() {
            return Ok(d);
        }
        let Some(loc) = &self.index.dict else { return Ok(Arc::default()) };
        let ipath = index_path(self.path.parent().unwrap_or(Path::new(".")), self.id);
        let mut ids = vec![0u8; loc.ids.len()];
        match &self.filters {
            Filters::InFile(f) => {
                use std::os::unix::fs::FileExt;
                f.read_exact_at(&mut ids, loc.ids.start as u64).map_err(io_err("read segment index", &ipath))?;
            }
            Filters::Owned(_) => return Err(Error::corrupt(&ipath, "a version 1 index with a dictionary")),
        }
        let d = Arc::new(ids);
        *cached = Arc::downgrade(&d);
        Ok(d)
    }

    /// What the index can tell about the needle pieces `pieces` in this segment, for
    /// [`Segment::may_match`]. A piece that may lie inside a dictionary id is looked up in the
    /// dictionary (its filter first, then the ids), so blocks using a matching id pass.
    pub(crate) fn probe(&self, pieces: &[bloom::Piece]) -> Result<Vec<PieceProbe>> {
        let mut out = Vec::with_capacity(pieces.len());
        for p in pieces {
            let (mut refs, mut ref_keys) = (Vec::new(), Vec::new());
            if let Some(loc) = self.index.dict.as_ref().filter(|d| !d.ids.is_empty() && p.may_be_in_id()) {
                let at = loc.bloom.start;
                if bloom::may_contain_with(loc.bloom.len(), &p.grams, self.sizing, |i| self.filters.byte(at + i)) {
                    let dict = self.dict()?;
                    let mut hex = Vec::with_capacity(2 * ID_BYTES);
                    for (r, id) in dict.chunks_exact(ID_BYTES).enumerate() {
                        hex.clear();
                        linecodec::put_hex(id, &mut hex);
                        if hex.windows(p.text.len()).any(|w| w == p.text.as_slice()) {
                            refs.push(r as u64);
                            ref_keys.push(bloom::ref_keys(r as u64).collect());
                        }
                    }
                }
            }
            out.push(PieceProbe { text: p.text.clone(), grams: p.grams.clone(), refs, ref_keys });
        }
        Ok(out)
    }

    /// A filter of the rows that may hold `needle`, for a segment of encoded lines probed
    /// for it (`probes`), when the needle is one such a filter can tell.
    pub(crate) fn needle_filter(&self, needle: &str, probes: &[PieceProbe]) -> Option<linecodec::NeedleFilter> {
        if !self.lines_encoded() || !linecodec::NeedleFilter::applies(needle) {
            return None;
        }
        let probe = probes.iter().find(|p| p.text == needle.as_bytes())?;
        Some(linecodec::NeedleFilter::new(needle, probe.refs.iter().copied()))
    }

    /// Whether `block` may hold a line with every probed piece: the piece's n-grams are in
    /// the block's filter, or the block uses a dictionary id that holds the piece.
    pub(crate) fn may_match(&self, block: &Block, probes: &[PieceProbe]) -> bool {
        let at = block.bloom.start;
        let len = block.bloom.len();
        let has = |keys: &[u64]| bloom::may_contain_with(len, keys, self.sizing, |i| self.filters.byte(at + i));
        probes.iter().all(|p| has(&p.grams) || p.ref_keys.iter().any(|k| has(k)))
    }

    /// The structured-metadata keys the segment has columns for.
    pub(crate) fn meta_keys(&self) -> impl Iterator<Item = &str> {
        self.meta_cols.iter().map(|(_, k)| k.as_str())
    }

    /// Names of the segment's label and metadata columns.
    pub(crate) fn column_names(&self) -> Vec<String> {
        let builtin = |n: &str| n == "timestamp" || n == "line" || ENCODED_LINE_COLUMNS.contains(&n);
        self.meta.schema().fields().iter().map(|f| f.name().clone()).filter(|n| !builtin(n)).collect()
    }

    /// Decodes one block: timestamps, lines (unless `skip_lines`) and metadata pairs.
    pub(crate) fn read_block(&self, block: &Block, skip_lines: bool) -> Result<DecodedBlock> {
        self.read_block_where(block, skip_lines, None)
    }

    /// `read_block`, where rows that `needle` rules out get an empty line, not their own.
    pub(crate) fn read_block_where(
        &self,
        block: &Block,
        skip_lines: bool,
        needle: Option<&linecodec::NeedleFilter>,
    ) -> Result<DecodedBlock> {
        let file = self.file.clone();
        let mut cols = vec![0usize];
        if !skip_lines {
            cols.extend(&self.line_cols);
        }
        cols.extend(self.meta_cols.iter().map(|(i, _)| *i));
        // The projection keeps the file's column order; find each column's place in it.
        let mut order = cols.clone();
        order.sort_unstable();
        let place = |c: usize| order.binary_search(&c).expect("projected");
        let encoded = !skip_lines && self.lines_encoded();
        let mut decoder = linecodec::Decoder::default();
        let mask = ProjectionMask::roots(self.meta.metadata().file_metadata().schema_descr(), cols.iter().copied());
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_row_groups(vec![block.row_group])
            .with_projection(mask)
            .with_batch_size(block.rows.max(1) as usize)
            .build()
            .map_err(|e| Error::corrupt(&self.path, e.to_string()))?;
        let mut out = DecodedBlock::default();
        for batch in reader {
            let batch = batch.map_err(|e| Error::corrupt(&self.path, e.to_string()))?;
            let ts = batch
                .column(0)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .ok_or_else(|| Error::corrupt(&self.path, "timestamp column is not ns timestamps"))?;
            out.ts.extend(ts.values().iter().copied());
            if !skip_lines {
                let lines = match encoded {
                    true => {
                        let cols: Vec<&arrow_array::BinaryArray> = self
                            .line_cols
                            .iter()
                            .map(|&c| batch.column(place(c)).as_any().downcast_ref::<arrow_array::BinaryArray>())
                            .collect::<Option<_>>()
                            .ok_or_else(|| Error::corrupt(&self.path, "encoded line columns are not binary"))?;
                        decode_lines(&mut decoder, &mut || self.dict(), &cols, ts.values(), needle)?
                            .ok_or_else(|| Error::corrupt(&self.path, "undecodable encoded line"))?
                    }
                    false => batch
                        .column(place(self.line_cols[0]))
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| Error::corrupt(&self.path, "line column is not strings"))?
                        .clone(),
                };
                out.lines.push(lines);
            }
            let mut metas = Vec::new();
            for (i, key) in &self.meta_cols {
                let col = batch.column(place(*i));
                let s = col
                    .as_any()
                    .downcast_ref::<DictionaryArray<Int32Type>>()
                    .filter(|d| d.values().as_any().is::<StringArray>())
                    .ok_or_else(|| Error::corrupt(&self.path, "metadata column is not strings"))?;
                if s.null_count() < s.len() {
                    metas.push((key.clone(), s.clone()));
                }
            }
            out.meta.push(metas);
            out.batch_ends.push(out.ts.len());
        }
        Ok(out)
    }
}

/// Decodes encoded-line columns (template, nums, hexes, refs) with their timestamps into
/// lines; `None` if a row is malformed. Invalid UTF-8 (stored lines are UTF-8, so only
/// damage makes it) becomes U+FFFD. Rows `needle` rules out get an empty line; the id
/// dictionary is loaded (`dict`) only when a decoded row refers to it.
pub(crate) fn decode_lines(
    decoder: &mut linecodec::Decoder,
    dict: &mut dyn FnMut() -> Result<Arc<Vec<u8>>>,
    cols: &[&arrow_array::BinaryArray],
    ts: &[i64],
    needle: Option<&linecodec::NeedleFilter>,
) -> Result<Option<StringArray>> {
    let [t, nums, hexes, refs] = cols else { return Ok(None) };
    let per_line = if needle.is_some() { 0 } else { 128 };
    let mut b = arrow_array::builder::StringBuilder::with_capacity(ts.len(), ts.len() * per_line);
    let mut line = Vec::new();
    let mut held: Option<Arc<Vec<u8>>> = None;
    for (i, &ts) in ts.iter().enumerate() {
        line.clear();
        let row =
            linecodec::RowRef { template: t.value(i), nums: nums.value(i), hexes: hexes.value(i), refs: refs.value(i) };
        if needle.is_some_and(|n| !n.may_match(&row, &mut line)) {
            b.append_value("");
            continue;
        }
        line.clear();
        let dict: &[u8] = match &held {
            _ if row.refs.is_empty() => &[],
            Some(d) => d,
            None => held.insert(dict()?),
        };
        if decoder.decode(dict, row, ts, &mut line).is_none() {
            return Ok(None);
        }
        match std::str::from_utf8(&line) {
            Ok(text) => b.append_value(text),
            Err(_) => b.append_value(String::from_utf8_lossy(&line)),
        }
    }
    Ok(Some(b.finish()))
}

/// A block's decoded columns (in Arrow arrays, as Parquet gave them).
#[derive(Debug, Default)]
pub(crate) struct DecodedBlock {
    pub(crate) ts: Vec<i64>,
    lines: Vec<StringArray>,
    meta: Vec<Vec<(String, DictionaryArray<Int32Type>)>>,
    batch_ends: Vec<usize>,
}

impl DecodedBlock {
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    fn locate(&self, i: usize) -> (usize, usize) {
        let b = self.batch_ends.partition_point(|&e| e <= i);
        let start = if b == 0 { 0 } else { self.batch_ends[b - 1] };
        (b, i - start)
    }

    /// Line `i` ("" when lines were skipped).
    pub(crate) fn line(&self, i: usize) -> &str {
        if self.lines.is_empty() {
            return "";
        }
        let (b, j) = self.locate(i);
        self.lines[b].value(j)
    }

    /// Appends row `i`'s metadata pairs, sorted by key.
    pub(crate) fn meta_at<'a>(&'a self, i: usize, out: &mut Vec<(&'a str, &'a str)>) {
        let (b, j) = self.locate(i);
        for (k, col) in &self.meta[b] {
            if col.is_valid(j) {
                let values = col.values().as_any().downcast_ref::<StringArray>().expect("checked when read");
                out.push((k.as_str(), values.value(col.keys().value(j) as usize)));
            }
        }
    }

    /// Numbers the rows' metadata sets from the dictionary keys of the metadata columns, one
    /// column at a time (a row's set so far and its key in the column give its next set):
    /// per row its set, rows with the same number having the same metadata, and per set the
    /// first row that has it.
    pub(crate) fn meta_sets(&self) -> (Vec<u32>, Vec<usize>) {
        // Keys number values per batch, so the batch starts the set.
        let mut set: Vec<u32> = Vec::with_capacity(self.ts.len());
        for (b, &end) in self.batch_ends.iter().enumerate() {
            set.resize(end, b as u32);
        }
        let columns = self.meta.iter().map(Vec::len).max().unwrap_or(0);
        let mut first_rows: Vec<usize> = Vec::new();
        let mut next: hashbrown::HashMap<(u32, i32), u32> = hashbrown::HashMap::new();
        for c in 0..columns {
            next.clear();
            first_rows.clear();
            let mut start = 0;
            for (b, &end) in self.batch_ends.iter().enumerate() {
                let col = self.meta[b].get(c).map(|(_, col)| col);
                for (j, s) in set[start..end].iter_mut().enumerate() {
                    let key = col.filter(|col| col.is_valid(j)).map_or(-1, |col| col.keys().value(j));
                    let n = next.len() as u32;
                    *s = *next.entry((*s, key)).or_insert_with(|| {
                        first_rows.push(start + j);
                        n
                    });
                }
                start = end;
            }
        }
        if columns == 0 {
            first_rows = self.batch_ends.iter().scan(0, |start, &end| Some(std::mem::replace(start, end))).collect();
        }
        (set, first_rows)
    }
}

/// Lists segment ids in `dir`, with leftovers (temporary files, an index without data).
pub(crate) fn list(dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>)> {
    let mut parquet = BTreeMap::new();
    let mut idx = BTreeSet::new();
    let mut junk = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list segments", dir))? {
        let e = e.map_err(io_err("list segments", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".parquet").and_then(|n| n.parse::<u64>().ok()) {
            parquet.insert(id, e.path());
        } else if let Some(id) = name.strip_suffix(".idx").and_then(|n| n.parse::<u64>().ok()) {
            idx.insert(id);
        } else {
            junk.push(e.path());
        }
    }
    for id in &idx {
        if !parquet.contains_key(id) {
            junk.push(index_path(dir, *id));
        }
    }
    Ok((parquet.into_keys().collect(), junk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_index_still_opens_and_its_filters_work() {
        let dir = tempfile::tempdir().unwrap();
        let (labels, empty) = (Labels::from_pairs([("job", "a")]).unwrap(), Labels::empty());
        let lines: Vec<String> =
            (0..100u64).map(|i| format!("rid={:016x} n={i}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
        let s = StreamRows {
            labels: &labels,
            ts: (0..100).collect(),
            lines: lines.iter().map(|l| l.as_bytes()).collect(),
            meta: vec![&empty; 100],
        };
        let settings = WriteSettings { block_lines: 50, compression_level: 1, encode_lines: false };
        let (index, _) = write(dir.path(), 1, 7, &[s], &settings).unwrap();
        // The same index as version 1 wrote it: blooms inline, power-of-two sized.
        let mut body = Vec::new();
        put_uvarint(&mut body, index.wal_upto);
        put_uvarint(&mut body, 1);
        put_uvarint(&mut body, labels.as_bytes().len() as u64);
        body.extend_from_slice(labels.as_bytes());
        put_uvarint(&mut body, index.blocks.len() as u64);
        for (k, b) in index.blocks.iter().enumerate() {
            put_uvarint(&mut body, 0);
            put_uvarint(&mut body, b.row_group as u64);
            put_varint(&mut body, b.min_ts);
            put_varint(&mut body, b.max_ts);
            put_uvarint(&mut body, b.rows);
            put_uvarint(&mut body, b.line_bytes);
            let mut f = BloomBuilder::default();
            for l in &lines[k * 50..(k + 1) * 50] {
                f.add_line(l.as_bytes());
            }
            let f = f.finish_sized(bloom::Sizing::PowerOfTwo);
            put_uvarint(&mut body, f.len() as u64);
            body.extend_from_slice(&f);
        }
        let mut v1 = IDX_MAGIC_V1.to_vec();
        v1.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        v1.extend_from_slice(&body);
        fs::write(index_path(dir.path(), 1), v1).unwrap();

        let seg = Segment::open(dir.path(), 1).unwrap();
        assert_eq!(seg.sizing, bloom::Sizing::PowerOfTwo);
        assert_eq!(seg.index.wal_upto, 7);
        assert_eq!(seg.index.blocks.len(), 2);
        let probes = seg.probe(&bloom::needle_pieces(&lines[70][4..20])).unwrap();
        let hits: Vec<bool> = seg.index.blocks.iter().map(|b| seg.may_match(b, &probes)).collect();
        assert_eq!(hits, [false, true]);
        assert_eq!(seg.read_block(&seg.index.blocks[1], false).unwrap().line(20), lines[70]);
    }
}
