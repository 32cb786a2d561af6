//! The WAL file framing the log and trace stores share (the metrics WAL uses the same framing,
//! described in `crates/tsdb/docs/format.md`): a directory of numbered segment files, each an
//! 8-byte magic naming the store and version, then records of
//! `len u32 LE | crc32c u32 LE | type u8 | payload`, the CRC covering type and payload.
//!
//! A store defines its own magic, record types and payload encoding (with [`put_uvarint`],
//! [`put_varint`] and [`Cursor`]); this crate writes and reads the frames. A write is
//! acknowledged once [`Wal::append`] returns (the page cache survives `kill -9`); fsync follows
//! the store's policy. A failed append is cut back to the last good offset, so a full disk
//! never leaves a partial record, and [`read_records`] stops at the first torn or corrupt
//! record and says where, so replay keeps the good prefix.
#![warn(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bytes before a record's payload: length, CRC and type.
pub const HEADER_LEN: usize = 9;
/// The largest record a reader accepts.
pub const MAX_RECORD: usize = 256 << 20;

/// WAL settings of a store (`storage.logs.wal`, `storage.traces.wal` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// A segment file is closed and a new one started past this size.
    #[serde(with = "telltale_model::units::size")]
    pub segment_size: u64,
    /// `"always"` (fsync every write), `"never"`, or an interval (`"1s"`, the default: at most
    /// that much acknowledged data lost on power failure, none on a process crash).
    pub fsync: String,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { segment_size: 64 << 20, fsync: "1s".into() }
    }
}

impl WalOptions {
    /// Whether every write is fsynced.
    pub fn fsync_each_write(&self) -> bool {
        self.fsync == "always"
    }

    /// The periodic fsync interval, if the policy is one.
    pub fn fsync_interval(&self) -> Option<Duration> {
        match self.fsync.as_str() {
            "always" | "never" => None,
            s => telltale_model::units::parse_duration(s).ok(),
        }
    }

    /// Checks values that cannot work; the message names the key under `wal.`.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_size < 64 << 10 {
            return Err("wal.segment_size must be at least 64KiB".into());
        }
        let f = self.fsync.as_str();
        if f != "always" && f != "never" && telltale_model::units::parse_duration(f).is_err() {
            return Err(format!("wal.fsync {f:?}: want always, never or an interval like 1s"));
        }
        Ok(())
    }
}

/// Errors from WAL files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The disk (or quota) is full.
    #[error("no space left on device: cannot {op} {}", .path.display())]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("cannot {op} {}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an `io::Error` on `path`, recognising a full disk or quota.
pub fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| {
        // ENOSPC 28, EDQUOT 122.
        if matches!(e.raw_os_error(), Some(28) | Some(122)) || e.kind() == io::ErrorKind::StorageFull {
            Error::DiskFull { op, path: path.to_path_buf() }
        } else {
            Error::Io { op, path: path.to_path_buf(), source: e }
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// Appends `v` zig-zag encoded as a varint.
pub fn put_varint(b: &mut Vec<u8>, v: i64) {
    put_uvarint(b, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `bytes` prefixed by their length.
pub fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(b, bytes.len() as u64);
    b.extend_from_slice(bytes);
}

/// A cursor over a record's payload; every read returns `None` past the end or on a bad varint.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    /// What is left to read.
    pub b: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b }
    }

    /// Reads an unsigned varint.
    pub fn uvarint(&mut self) -> Option<u64> {
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

    /// Reads a zig-zag varint.
    pub fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a varint that must fit in a `usize`.
    pub fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.uvarint()?).ok()
    }

    /// Reads length-prefixed bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.usize()?;
        self.take(n)
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Some(x)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// Reads length-prefixed UTF-8.
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

/// Appends a framed record of type `typ` whose payload `body` writes.
pub fn frame(buf: &mut Vec<u8>, typ: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    buf[start + 8] = typ;
    body(buf);
    let len = (buf.len() - start - HEADER_LEN) as u32;
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Where and why a file's records stopped being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The length of the readable prefix.
    pub good_len: u64,
    /// What is wrong, with the byte offset.
    pub reason: String,
}

/// Calls `f(type, payload)` with each record of a segment file's contents, in order, until `f`
/// returns false (an undecodable payload); returns the damage found, if any.
pub fn read_records(data: &[u8], magic: &[u8; 8], mut f: impl FnMut(u8, &[u8]) -> bool) -> Option<Damage> {
    if data.len() < magic.len() || data[..magic.len()] != magic[..] {
        let reason = if data.len() < magic.len() { "file shorter than its header" } else { "bad magic" };
        return Some(Damage { good_len: 0, reason: reason.into() });
    }
    let mut pos = magic.len();
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
        if !f(body[0], &body[1..]) {
            return damage("undecodable record");
        }
        pos += HEADER_LEN + len;
    }
    None
}

/// The path of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Segment numbers in `dir`, ascending; other files are returned apart.
pub fn list(dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>)> {
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
pub struct Wal {
    dir: PathBuf,
    magic: [u8; 8],
    seg: u64,
    file: File,
    len: u64,
    segment_size: u64,
    fsync_each_write: bool,
    needs_truncate: bool,
}

impl Wal {
    /// Starts segment `seg` (a new file beginning with `magic`) in `dir`.
    pub fn create(dir: &Path, magic: [u8; 8], seg: u64, segment_size: u64, fsync_each_write: bool) -> Result<Wal> {
        let path = segment_path(dir, seg);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err("create wal segment", &path))?;
        file.write_all(&magic).map_err(io_err("write wal segment", &path))?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            magic,
            seg,
            file,
            len: magic.len() as u64,
            segment_size,
            fsync_each_write,
            needs_truncate: false,
        })
    }

    /// The number of the segment being written.
    pub fn segment(&self) -> u64 {
        self.seg
    }

    /// Whether `extra` more bytes would pass the segment size (the caller rotates first).
    pub fn would_overflow(&self, extra: usize) -> bool {
        self.len + extra as u64 > self.segment_size && self.len > self.magic.len() as u64
    }

    /// Appends already framed records. On error nothing of `data` remains in the file.
    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.needs_truncate {
            self.cut_back()?;
        }
        if let Err(e) = self.file.write_all_at(data, self.len) {
            let err = io_err("write wal segment", &segment_path(&self.dir, self.seg))(e);
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
    pub fn rotate(&mut self) -> Result<u64> {
        self.sync()?;
        let next = Wal::create(&self.dir, self.magic, self.seg + 1, self.segment_size, self.fsync_each_write)?;
        let closed = self.seg;
        *self = next;
        Ok(closed)
    }

    /// fsyncs the current segment's data.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(io_err("fsync wal segment", &segment_path(&self.dir, self.seg)))
    }
}

/// fsyncs a directory, so a file created or renamed in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAGIC: [u8; 8] = *b"TESTWAL\x01";

    fn encode(recs: &[Vec<u8>]) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        for r in recs {
            frame(&mut buf, 7, |b| put_bytes(b, r));
        }
        buf
    }

    fn decode_all(data: &[u8]) -> (Vec<Vec<u8>>, Option<Damage>) {
        let mut out = Vec::new();
        let d = read_records(data, &MAGIC, |typ, p| {
            let mut c = Cursor::new(p);
            match c.bytes() {
                Some(b) if typ == 7 && c.b.is_empty() => {
                    out.push(b.to_vec());
                    true
                }
                _ => false,
            }
        });
        (out, d)
    }

    fn recs() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..10)
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
            let (back, _) = decode_all(&data[..cut.index(data.len() + 1)]);
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

        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, u);
            put_varint(&mut b, i);
            let mut c = Cursor::new(&b);
            prop_assert_eq!(c.uvarint(), Some(u));
            prop_assert_eq!(c.varint(), Some(i));
            prop_assert!(c.b.is_empty());
        }
    }

    #[test]
    fn appends_rotate_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), MAGIC, 3, 64, false).unwrap();
        let mut buf = Vec::new();
        frame(&mut buf, 7, |b| put_bytes(b, &[1; 40]));
        wal.append(&buf).unwrap();
        assert!(wal.would_overflow(buf.len()));
        assert_eq!(wal.rotate().unwrap(), 3);
        wal.append(&buf).unwrap();
        let (segs, other) = list(dir.path()).unwrap();
        assert_eq!((segs, other.len()), (vec![3, 4], 0));
        let data = fs::read(segment_path(dir.path(), 4)).unwrap();
        assert_eq!(decode_all(&data), (vec![vec![1; 40]], None));
    }
}
