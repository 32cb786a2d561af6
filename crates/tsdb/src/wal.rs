//! The write-ahead log: numbered segment files of length-prefixed, CRC32C-checked records,
//! plus a checkpoint file that replaces old segments once their data sits in blocks.
//!
//! A write is acknowledged once its records are written into the current segment (the page
//! cache: that survives `kill -9`); `fsync` follows the configured policy. A failed append
//! is cut back to the last good offset, so a full disk never leaves a partial record.
//! Replay stops at the first record whose length or checksum is wrong: the tail of the
//! last segment is truncated there, a broken middle segment is quarantined.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use telltale_model::Sample;

use crate::encoding::{put_uvarint, put_varint, Reader, Truncated};
use crate::error::{io_err, Result};

/// The first bytes of every segment and checkpoint file: "TTWAL", two zero bytes, version 1.
pub(crate) const MAGIC: [u8; 8] = *b"TTWAL\0\0\x01";
const HEADER_LEN: usize = 9; // u32 length, u32 crc, u8 type
/// Records larger than this are treated as corrupt lengths rather than allocated.
const MAX_RECORD: usize = 256 << 20;
pub(crate) const TYPE_SERIES: u8 = 1;
pub(crate) const TYPE_SAMPLES: u8 = 2;
/// A zstd frame holding further framed records (used by checkpoints, which are mostly labels).
pub(crate) const TYPE_COMPRESSED: u8 = 3;
/// Checkpoints compress their records in groups of about this many bytes.
const COMPRESS_GROUP: usize = 4 << 20;

/// One decoded entry of a record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry<'a> {
    /// Series `r` has these encoded labels (`Labels::as_bytes`).
    Series(u32, &'a [u8]),
    /// A sample of series `r`.
    Sample(u32, Sample),
}

/// Appends a framed record whose payload `body` writes.
pub(crate) fn frame(buf: &mut Vec<u8>, typ: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    buf[start + 8] = typ;
    body(buf);
    let len = (buf.len() - start - HEADER_LEN) as u32;
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a series record.
pub(crate) fn encode_series<'a>(buf: &mut Vec<u8>, series: impl IntoIterator<Item = (u32, &'a [u8])>) {
    frame(buf, TYPE_SERIES, |b| {
        for (r, labels) in series {
            put_uvarint(b, r as u64);
            put_uvarint(b, labels.len() as u64);
            b.extend_from_slice(labels);
        }
    });
}

/// Appends a samples record: the count, then per sample the ref (delta to the previous,
/// zigzag), the timestamp (delta to the previous, zigzag) and the value's 8 raw bytes.
pub(crate) fn encode_samples(buf: &mut Vec<u8>, samples: &[(u32, Sample)]) {
    frame(buf, TYPE_SAMPLES, |b| {
        put_uvarint(b, samples.len() as u64);
        let (mut r0, mut t0) = (0i64, 0i64);
        for (r, s) in samples {
            put_varint(b, *r as i64 - r0);
            put_varint(b, s.t.wrapping_sub(t0));
            b.extend_from_slice(&s.v.to_bits().to_le_bytes());
            (r0, t0) = (*r as i64, s.t);
        }
    });
}

fn decode_payload<'a>(typ: u8, payload: &'a [u8], out: &mut Vec<Entry<'a>>) -> Result<(), Truncated> {
    let mut r = Reader::new(payload);
    match typ {
        TYPE_SERIES => {
            while !r.is_empty() {
                let id = u32::try_from(r.uvarint()?).map_err(|_| Truncated)?;
                out.push(Entry::Series(id, r.len_prefixed()?));
            }
        }
        TYPE_SAMPLES => {
            let n = r.uvarint()?;
            let (mut r0, mut t0) = (0i64, 0i64);
            for _ in 0..n {
                r0 = r0.wrapping_add(r.varint()?);
                t0 = t0.wrapping_add(r.varint()?);
                let v = f64::from_bits(r.u64()?);
                out.push(Entry::Sample(u32::try_from(r0).map_err(|_| Truncated)?, Sample { t: t0, v }));
            }
            if !r.is_empty() {
                return Err(Truncated);
            }
        }
        _ => return Err(Truncated),
    }
    Ok(())
}

/// Where and why a file's records stopped being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Length of the valid prefix (header and whole records).
    pub(crate) good_len: u64,
    pub(crate) reason: String,
}

/// Calls `f` with each record's entries, in order. Returns the damage found, if any; every
/// record before it was delivered.
pub(crate) fn read_records(data: &[u8], mut f: impl FnMut(&[Entry<'_>])) -> Option<Damage> {
    read_records_dyn(data, &mut f)
}

fn read_records_dyn(data: &[u8], f: &mut dyn FnMut(&[Entry<'_>])) -> Option<Damage> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        let reason = if data.len() < MAGIC.len() { "file shorter than its header" } else { "bad magic" };
        return Some(Damage { good_len: 0, reason: reason.into() });
    }
    let mut pos = MAGIC.len();
    let mut entries = Vec::new();
    while pos < data.len() {
        let damage = |reason: &str| Some(Damage { good_len: pos as u64, reason: format!("{reason} at byte {pos}") });
        if data.len() - pos < HEADER_LEN {
            return damage("torn record header");
        }
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || data.len() - pos - HEADER_LEN < len {
            return damage("torn record");
        }
        let body = &data[pos + 8..pos + HEADER_LEN + len];
        if crc32c::crc32c(body) != crc {
            return damage("checksum mismatch in record");
        }
        if body[0] == TYPE_COMPRESSED {
            let inner = zstd::stream::decode_all(&body[1..]).ok().map(|mut d| {
                let mut framed = MAGIC.to_vec();
                framed.append(&mut d);
                framed
            });
            let ok = inner.is_some_and(|framed| read_records_dyn(&framed, f).is_none());
            if !ok {
                return damage("undecodable compressed record");
            }
        } else {
            entries.clear();
            if decode_payload(body[0], &body[1..], &mut entries).is_err() {
                return damage("undecodable record");
            }
            f(&entries);
        }
        pos += HEADER_LEN + len;
    }
    None
}

/// Segment and checkpoint files found in a WAL directory.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment numbers, ascending.
    pub(crate) segments: Vec<u64>,
    /// The newest checkpoint's number (it covers segments up to and including it).
    pub(crate) checkpoint: Option<u64>,
    /// Older checkpoints and leftovers, to delete.
    pub(crate) stale: Vec<PathBuf>,
}

pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

pub(crate) fn checkpoint_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("checkpoint.{n:08}"))
}

pub(crate) fn list(dir: &Path) -> Result<Listing> {
    let mut out = Listing::default();
    let mut checkpoints = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list wal directory", dir))? {
        let e = e.map_err(io_err("list wal directory", dir))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Ok(n) = name.parse::<u64>() {
            out.segments.push(n);
        } else if let Some(n) = name.strip_prefix("checkpoint.").and_then(|s| s.parse::<u64>().ok()) {
            checkpoints.push(n);
        } else {
            out.stale.push(e.path());
        }
    }
    out.segments.sort_unstable();
    checkpoints.sort_unstable();
    out.checkpoint = checkpoints.pop();
    out.stale.extend(checkpoints.into_iter().map(|n| checkpoint_path(dir, n)));
    if let Some(c) = out.checkpoint {
        out.stale.extend(out.segments.iter().filter(|&&s| s <= c).map(|&s| segment_path(dir, s)));
        out.segments.retain(|&s| s > c);
    }
    Ok(out)
}

/// The open segment that writes go to.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    seg: u64,
    file: File,
    /// Bytes of the current segment that hold whole records.
    len: u64,
    segment_size: u64,
    fsync_each_write: bool,
    /// A failed append could not be cut back; retry before the next append.
    needs_truncate: bool,
}

impl Wal {
    /// Starts segment `seg` (a new file) in `dir`.
    pub(crate) fn create(dir: &Path, seg: u64, segment_size: u64, fsync_each_write: bool) -> Result<Wal> {
        let path = segment_path(dir, seg);
        let file = new_segment(&path)?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            seg,
            file,
            len: MAGIC.len() as u64,
            segment_size,
            fsync_each_write,
            needs_truncate: false,
        })
    }

    /// The current segment's number.
    #[cfg(test)]
    pub(crate) fn segment(&self) -> u64 {
        self.seg
    }

    /// Appends already framed records. On error nothing of `data` remains in the file.
    pub(crate) fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.needs_truncate {
            self.cut_back()?;
        }
        if self.len + data.len() as u64 > self.segment_size && self.len > MAGIC.len() as u64 {
            self.rotate()?;
        }
        let path = segment_path(&self.dir, self.seg);
        if let Err(e) = self.file.write_all_at(data, self.len) {
            let err = io_err("write wal segment", &path)(e);
            if self.cut_back().is_err() {
                self.needs_truncate = true;
            }
            return Err(err);
        }
        self.len += data.len() as u64;
        if self.fsync_each_write {
            self.sync()?;
        }
        Ok(())
    }

    fn cut_back(&mut self) -> Result<()> {
        let path = segment_path(&self.dir, self.seg);
        self.file.set_len(self.len).map_err(io_err("truncate wal segment", &path))?;
        self.needs_truncate = false;
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts the next; returns the closed number.
    pub(crate) fn rotate(&mut self) -> Result<u64> {
        self.sync()?;
        let next = Wal::create(&self.dir, self.seg + 1, self.segment_size, self.fsync_each_write)?;
        let closed = self.seg;
        *self = next;
        Ok(closed)
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(io_err("fsync wal segment", &segment_path(&self.dir, self.seg)))
    }
}

fn new_segment(path: &Path) -> Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err("create wal segment", path))?;
    file.write_all(&MAGIC).map_err(io_err("write wal segment", path))?;
    Ok(file)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

/// Writes `checkpoint.<upto>` from the previous checkpoint and the segments up to `upto`,
/// keeping only the series and samples the filters accept, then deletes what it replaces.
/// Records that cannot be read were already reported at replay and are skipped.
pub(crate) fn checkpoint(
    dir: &Path,
    upto: u64,
    keep_series: impl Fn(u32, &[u8]) -> bool,
    keep_sample: impl Fn(u32, &Sample) -> bool,
) -> Result<()> {
    let listing = list(dir)?;
    let mut inputs: Vec<PathBuf> = listing.checkpoint.iter().map(|&c| checkpoint_path(dir, c)).collect();
    inputs.extend(listing.segments.iter().filter(|&&s| s <= upto).map(|&s| segment_path(dir, s)));
    let final_path = checkpoint_path(dir, upto);
    let tmp = dir.join(format!("checkpoint.{upto:08}.tmp"));
    let mut out = MAGIC.to_vec();
    let mut group = Vec::with_capacity(COMPRESS_GROUP + (1 << 16));
    let mut samples = Vec::new();
    let mut datas = Vec::new();
    for path in &inputs {
        datas.push(fs::read(path).map_err(io_err("read wal file", path))?);
    }
    for data in &datas {
        read_records(data, |entries| {
            let mut series: Vec<(u32, &[u8])> = Vec::new();
            samples.clear();
            for e in entries {
                match e {
                    Entry::Series(r, l) if keep_series(*r, l) => series.push((*r, l)),
                    Entry::Sample(r, s) if keep_sample(*r, s) => samples.push((*r, *s)),
                    _ => {}
                }
            }
            if !series.is_empty() {
                encode_series(&mut group, series.iter().copied());
            }
            if !samples.is_empty() {
                encode_samples(&mut group, &samples);
            }
            if group.len() >= COMPRESS_GROUP {
                compress_group(&mut out, &mut group);
            }
        });
    }
    compress_group(&mut out, &mut group);
    drop(datas);
    {
        let mut f = File::create(&tmp).map_err(io_err("create wal checkpoint", &tmp))?;
        let res = f.write_all(&out).and_then(|()| f.sync_all());
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write wal checkpoint", &tmp)(e));
        }
    }
    fs::rename(&tmp, &final_path).map_err(io_err("rename wal checkpoint", &final_path))?;
    sync_dir(dir)?;
    for path in inputs.iter().chain(&listing.stale) {
        if *path != final_path {
            let _ = fs::remove_file(path);
        }
    }
    Ok(())
}

fn compress_group(out: &mut Vec<u8>, group: &mut Vec<u8>) {
    if group.is_empty() {
        return;
    }
    let packed = zstd::bulk::compress(group, 3).expect("in-memory compression");
    frame(out, TYPE_COMPRESSED, |b| b.extend_from_slice(&packed));
    group.clear();
}

/// Total bytes of the WAL directory's files.
pub(crate) fn size(dir: &Path) -> u64 {
    fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Owned {
        Series(u32, Vec<u8>),
        Samples(Vec<(u32, Sample)>),
    }

    fn encode(records: &[Owned]) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        for r in records {
            match r {
                Owned::Series(id, l) => encode_series(&mut buf, [(*id, l.as_slice())]),
                Owned::Samples(s) => encode_samples(&mut buf, s),
            }
        }
        buf
    }

    fn decode(data: &[u8]) -> (Vec<Owned>, Option<Damage>) {
        let mut out = Vec::new();
        let damage = read_records(data, |entries| match entries.first() {
            Some(Entry::Series(..)) => out.extend(entries.iter().map(|e| match e {
                Entry::Series(r, l) => Owned::Series(*r, l.to_vec()),
                Entry::Sample(..) => unreachable!("series records hold series"),
            })),
            _ => out.push(Owned::Samples(
                entries
                    .iter()
                    .map(|e| match e {
                        Entry::Sample(r, s) => (*r, *s),
                        Entry::Series(..) => unreachable!("sample records hold samples"),
                    })
                    .collect(),
            )),
        });
        (out, damage)
    }

    fn bit_eq(a: &[Owned], b: &[Owned]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Owned::Samples(x), Owned::Samples(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && p.1.bit_eq(&q.1))
                }
                _ => x == y,
            })
    }

    fn records() -> impl Strategy<Value = Vec<Owned>> {
        let series =
            (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(r, l)| Owned::Series(r, l));
        let sample =
            (any::<u32>(), any::<i64>(), any::<u64>()).prop_map(|(r, t, v)| (r, Sample::new(t, f64::from_bits(v))));
        let samples = proptest::collection::vec(sample, 0..20).prop_map(Owned::Samples);
        proptest::collection::vec(prop_oneof![series, samples], 0..12)
    }

    proptest! {
        #[test]
        fn records_round_trip(recs in records()) {
            let (back, damage) = decode(&encode(&recs));
            prop_assert!(damage.is_none());
            prop_assert!(bit_eq(&back, &recs));
        }

        #[test]
        fn truncation_replays_a_prefix(recs in records(), cut in any::<proptest::sample::Index>()) {
            let data = encode(&recs);
            let at = cut.index(data.len() + 1);
            let (back, damage) = decode(&data[..at]);
            prop_assert!(back.len() <= recs.len());
            prop_assert!(bit_eq(&back, &recs[..back.len()]));
            match damage {
                Some(d) => prop_assert!(d.good_len as usize <= at),
                // Cut exactly between records: a shorter but valid file.
                None => prop_assert_eq!(at, encode(&recs[..back.len()]).len()),
            }
        }

        #[test]
        fn flipped_byte_is_detected(recs in records(), at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let mut data = encode(&recs);
            let i = at.index(data.len());
            data[i] ^= 1 << bit;
            let (back, damage) = decode(&data);
            prop_assert!(damage.is_some());
            prop_assert!(back.len() <= recs.len() && bit_eq(&back, &recs[..back.len()]));
        }
    }

    #[test]
    fn append_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 1, 64, false).unwrap();
        let mut buf = Vec::new();
        encode_samples(&mut buf, &[(1, Sample::new(5, 1.0)), (2, Sample::new(6, 2.0))]);
        wal.append(&buf).unwrap();
        wal.append(&buf).unwrap();
        assert_eq!(wal.segment(), 2, "second append goes to a new segment past 64 bytes");
        let l = list(dir.path()).unwrap();
        assert_eq!(l.segments, [1, 2]);
        checkpoint(dir.path(), 1, |_, _| true, |r, _| r == 2).unwrap();
        let l = list(dir.path()).unwrap();
        assert_eq!((l.checkpoint, l.segments.as_slice()), (Some(1), &[2u64][..]));
        let data = fs::read(checkpoint_path(dir.path(), 1)).unwrap();
        let (recs, damage) = decode(&data);
        assert!(damage.is_none());
        assert_eq!(recs, [Owned::Samples(vec![(2, Sample::new(6, 2.0))])]);
    }
}
