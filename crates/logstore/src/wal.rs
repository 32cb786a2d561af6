//! The log WAL: numbered segment files of length-prefixed, CRC32C-checked records, the same
//! framing as the metrics WAL (`crates/tsdb/docs/format.md`), with log record types.
//!
//! A write is acknowledged once its records are written into the current segment (the page
//! cache survives `kill -9`); fsync follows the configured policy. A failed append is cut
//! back to the last good offset, so a full disk never leaves a partial record. Segments are
//! deleted once a flushed segment file covers them (its `wal_upto`).

use telltale_walfile::frame;
pub(crate) use telltale_walfile::{list, segment_path, sync_dir, Damage, Wal};
pub(crate) use telltale_walfile::{put_uvarint, put_varint, Cursor};

/// The first bytes of every log WAL segment: "TTLWAL", a zero byte, version 1.
pub(crate) const MAGIC: [u8; 8] = *b"TTLWAL\0\x01";
pub(crate) const TYPE_STREAMS: u8 = 1;
pub(crate) const TYPE_ENTRIES: u8 = 2;

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
    let mut c = Cursor::new(payload);
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

/// Calls `f` with each record, in order; returns the damage found, if any.
pub(crate) fn read_records(data: &[u8], mut f: impl FnMut(Record<'_>)) -> Option<Damage> {
    telltale_walfile::read_records(data, &MAGIC, |typ, payload| match decode(typ, payload) {
        Some(r) => {
            f(r);
            true
        }
        None => false,
    })
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
