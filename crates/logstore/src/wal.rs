//! The log WAL: numbered segment files of length-prefixed, CRC32C-checked records, the same
//! framing as the metrics WAL (`crates/tsdb/docs/format.md`), with log record types.
//!
//! A write is acknowledged once its records are written into the current segment (the page
//! cache survives `kill -9`); fsync follows the configured policy. A failed append is cut
//! back to the last good offset, so a full disk never leaves a partial record. Segments are
//! deleted once a flushed segment file covers them (its `wal_upto`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Result};

/// The first bytes of every log WAL segment: "TTLWAL", a zero byte, version 1.
pub(crate) const MAGIC: [u8; 8] = *b"TTLWAL\0\x01";
const HEADER_LEN: usize = 9;
const MAX_RECORD: usize = 256 << 20;
pub(crate) const TYPE_STREAMS: u8 = 1;
pub(crate) const TYPE_ENTRIES: u8 = 2;

pub(crate) fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

pub(crate) fn put_varint(b: &mut Vec<u8>, v: i64) {
    put_uvarint(b, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a record's payload.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let c = *self.b.get(i)?;
            v |= u64::from(c & 0x7f) << (7 * i);
            if c < 0x80 {
                self.b = &self.b[i + 1..];
                return Some(v);
            }
        }
        None
    }

    pub(crate) fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        if n > self.b.len() {
            return None;
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Some(x)
    }
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

/// One entry as the WAL holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WalEntry<'a> {
    pub(crate) stream: u32,
    pub(crate) ts: i64,
    pub(crate) line: &'a [u8],
    pub(crate) meta: &'a [u8],
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Streams(Vec<(u32, &'a [u8])>),
    Entries(Vec<WalEntry<'a>>),
}

pub(crate) fn encode_streams<'a>(buf: &mut Vec<u8>, streams: impl IntoIterator<Item = (u32, &'a [u8])>) {
    frame(buf, TYPE_STREAMS, |b| {
        for (id, labels) in streams {
            put_uvarint(b, u64::from(id));
            put_uvarint(b, labels.len() as u64);
            b.extend_from_slice(labels);
        }
    });
}

pub(crate) fn encode_entries<'a>(buf: &mut Vec<u8>, n: usize, entries: impl IntoIterator<Item = WalEntry<'a>>) {
    frame(buf, TYPE_ENTRIES, |b| {
        put_uvarint(b, n as u64);
        let mut t0 = 0i64;
        for e in entries {
            put_uvarint(b, u64::from(e.stream));
            put_varint(b, e.ts.wrapping_sub(t0));
            t0 = e.ts;
            put_uvarint(b, e.line.len() as u64);
            b.extend_from_slice(e.line);
            put_uvarint(b, e.meta.len() as u64);
            b.extend_from_slice(e.meta);
        }
    });
}

fn decode(typ: u8, payload: &[u8]) -> Option<Record<'_>> {
    let mut c = Cursor { b: payload };
    match typ {
        TYPE_STREAMS => {
            let mut out = Vec::new();
            while !c.b.is_empty() {
                let id = u32::try_from(c.uvarint()?).ok()?;
                out.push((id, c.bytes()?));
            }
            Some(Record::Streams(out))
        }
        TYPE_ENTRIES => {
            let n = usize::try_from(c.uvarint()?).ok()?;
            let mut out = Vec::with_capacity(n.min(1 << 20));
            let mut t0 = 0i64;
            for _ in 0..n {
                let stream = u32::try_from(c.uvarint()?).ok()?;
                t0 = t0.wrapping_add(c.varint()?);
                let line = c.bytes()?;
                let meta = c.bytes()?;
                out.push(WalEntry { stream, ts: t0, line, meta });
            }
            c.b.is_empty().then_some(Record::Entries(out))
        }
        _ => None,
    }
}

/// Where and why a file's records stopped being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) good_len: u64,
    pub(crate) reason: String,
}

/// Calls `f` with each record, in order; returns the damage found, if any.
pub(crate) fn read_records(data: &[u8], mut f: impl FnMut(Record<'_>)) -> Option<Damage> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        let reason = if data.len() < MAGIC.len() { "file shorter than its header" } else { "bad magic" };
        return Some(Damage { good_len: 0, reason: reason.into() });
    }
    let mut pos = MAGIC.len();
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
        match decode(body[0], &body[1..]) {
            Some(r) => f(r),
            None => return damage("undecodable record"),
        }
        pos += HEADER_LEN + len;
    }
    None
}

pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Segment numbers in `dir`, ascending; other files are returned apart.
pub(crate) fn list(dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>)> {
    let mut segs = Vec::new();
    let mut other = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list wal directory", dir))? {
        let e = e.map_err(io_err("list wal directory", dir))?;
        match e.file_name().to_string_lossy().parse::<u64>() {
            Ok(n) => segs.push(n),
            Err(_) => other.push(e.path()),
        }
    }
    segs.sort_unstable();
    Ok((segs, other))
}

/// The open segment that writes go to.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    seg: u64,
    file: File,
    len: u64,
    segment_size: u64,
    fsync_each_write: bool,
    needs_truncate: bool,
}

impl Wal {
    /// Starts segment `seg` (a new file) in `dir`.
    pub(crate) fn create(dir: &Path, seg: u64, segment_size: u64, fsync_each_write: bool) -> Result<Wal> {
        let path = segment_path(dir, seg);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create wal segment", &path))?;
        file.write_all(&MAGIC).map_err(io_err("write wal segment", &path))?;
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

    /// Whether `extra` more bytes would pass the segment size (the caller rotates first, so
    /// stream records are repeated in the new segment).
    pub(crate) fn would_overflow(&self, extra: usize) -> bool {
        self.len + extra as u64 > self.segment_size && self.len > MAGIC.len() as u64
    }

    /// Appends already framed records. On error nothing of `data` remains in the file.
    pub(crate) fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.needs_truncate {
            self.cut_back()?;
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

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Owned = (u32, i64, Vec<u8>, Vec<u8>);

    fn encode(recs: &[Vec<Owned>]) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        encode_streams(&mut buf, [(1u32, &b"\x03job\x01a"[..])]);
        for r in recs {
            encode_entries(
                &mut buf,
                r.len(),
                r.iter().map(|(s, t, l, m)| WalEntry { stream: *s, ts: *t, line: l, meta: m }),
            );
        }
        buf
    }

    fn decode_all(data: &[u8]) -> (Vec<Vec<Owned>>, Option<Damage>) {
        let mut out = Vec::new();
        let d = read_records(data, |r| {
            if let Record::Entries(e) = r {
                out.push(e.iter().map(|e| (e.stream, e.ts, e.line.to_vec(), e.meta.to_vec())).collect());
            }
        });
        (out, d)
    }

    fn recs() -> impl Strategy<Value = Vec<Vec<Owned>>> {
        let e = (
            any::<u32>(),
            any::<i64>(),
            proptest::collection::vec(any::<u8>(), 0..50),
            proptest::collection::vec(any::<u8>(), 0..10),
        );
        proptest::collection::vec(proptest::collection::vec(e, 0..8), 0..8)
    }

    proptest! {
        #[test]
        fn round_trip(r in recs()) {
            let (back, d) = decode_all(&encode(&r));
            prop_assert!(d.is_none());
            prop_assert_eq!(back, r);
        }

        #[test]
        fn truncation_keeps_a_prefix(r in recs(), cut in any::<proptest::sample::Index>()) {
            let data = encode(&r);
            let at = cut.index(data.len() + 1);
            let (back, _) = decode_all(&data[..at]);
            prop_assert!(back.len() <= r.len());
            prop_assert_eq!(&back[..], &r[..back.len()]);
        }

        #[test]
        fn flipped_bits_are_detected(r in recs(), at in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let mut data = encode(&r);
            let i = at.index(data.len());
            data[i] ^= 1 << bit;
            let (back, d) = decode_all(&data);
            prop_assert!(d.is_some());
            prop_assert_eq!(&back[..], &r[..back.len()]);
        }
    }
}
