//! Gorilla-style chunk encoding: delta-of-delta timestamps and XOR'd float bits, as in
//! Facebook's Gorilla paper (<https://www.vldb.org/pvldb/vol8/p1816-teller.pdf>) and
//! Prometheus's XOR chunk, with Prometheus's timestamp buckets.
//!
//! Layout (all bit fields most significant bit first): `u16` big-endian sample count, then
//! the first sample as 64 raw bits of `t` and 64 raw bits of `v`; every later sample as a
//! timestamp delta-of-delta bucket and an XOR value code. `docs/format.md` spells it out.
//! Values are stored as their bit patterns, so NaN payloads and the stale marker survive.

use telltale_model::Sample;

/// Most samples one chunk holds (Prometheus's choice: about 1.3 bytes per sample and a
/// small decode cost for range reads).
pub(crate) const MAX_SAMPLES: u16 = 120;

/// A chunk's bytes did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("chunk data is corrupt: {0}")]
pub struct ChunkError(pub(crate) &'static str);

/// Appends bits, most significant first.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    fn write(&mut self, value: u64, mut nbits: u8) {
        debug_assert!(nbits <= 64);
        while nbits > 0 {
            if self.used == 0 {
                self.buf.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(nbits);
            let bits = ((value >> (nbits - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.buf.len() - 1;
            self.buf[last] |= bits << (free - take);
            self.used = (self.used + take) % 8;
            nbits -= take;
        }
    }

    fn bit(&mut self, b: bool) {
        self.write(b as u64, 1);
    }
}

/// Reads bits, most significant first.
struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn read(&mut self, mut nbits: u8) -> Result<u64, ChunkError> {
        if self.pos + nbits as usize > self.buf.len() * 8 {
            return Err(ChunkError("bit stream ends early"));
        }
        let mut out = 0u64;
        while nbits > 0 {
            let byte = self.buf[self.pos / 8];
            let off = (self.pos % 8) as u8;
            let take = (8 - off).min(nbits);
            let bits = (byte >> (8 - off - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | bits as u64;
            self.pos += take as usize;
            nbits -= take;
        }
        Ok(out)
    }

    fn bit(&mut self) -> Result<bool, ChunkError> {
        Ok(self.read(1)? == 1)
    }
}

/// Delta-of-delta buckets: (prefix bits, prefix length, payload bits).
const DOD_BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

fn fits(v: i64, bits: u8) -> bool {
    let half = 1i64 << (bits - 1);
    -half <= v && v < half
}

/// Builds one chunk sample by sample; timestamps must increase.
#[derive(Debug, Clone)]
pub(crate) struct XorAppender {
    bits: BitWriter,
    count: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    min_t: i64,
}

impl XorAppender {
    pub(crate) fn new() -> Self {
        let mut bits = BitWriter::default();
        bits.write(0, 16);
        Self { bits, count: 0, t: 0, delta: 0, v: 0, leading: u8::MAX, trailing: 0, min_t: 0 }
    }

    pub(crate) fn len(&self) -> u16 {
        self.count
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES
    }

    /// Time of the first sample (meaningless while empty).
    pub(crate) fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Time of the last sample (meaningless while empty).
    pub(crate) fn max_t(&self) -> i64 {
        self.t
    }

    /// Appends a sample newer than the last one.
    pub(crate) fn append(&mut self, t: i64, v: f64) {
        let v = v.to_bits();
        match self.count {
            0 => {
                self.bits.write(t as u64, 64);
                self.bits.write(v, 64);
                self.min_t = t;
            }
            _ => {
                debug_assert!(t > self.t, "chunk timestamps must increase");
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.delta);
                self.write_dod(dod);
                self.write_value(v);
                self.delta = delta;
            }
        }
        self.t = t;
        self.v = v;
        self.count += 1;
        let [hi, lo] = self.count.to_be_bytes();
        self.bits.buf[0] = hi;
        self.bits.buf[1] = lo;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.bits.bit(false);
            return;
        }
        for (prefix, plen, nbits) in DOD_BUCKETS {
            if fits(dod, nbits) {
                self.bits.write(prefix, plen);
                self.bits.write(dod as u64 & ((1 << nbits) - 1), nbits);
                return;
            }
        }
        self.bits.write(0b1111, 4);
        self.bits.write(dod as u64, 64);
    }

    fn write_value(&mut self, v: u64) {
        let xor = v ^ self.v;
        if xor == 0 {
            self.bits.bit(false);
            return;
        }
        self.bits.bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            // The meaningful bits fit in the previous window: reuse it.
            self.bits.bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.bits.write(xor >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.bits.bit(true);
            self.bits.write(leading as u64, 5);
            let sig = 64 - leading - trailing;
            // 64 significant bits do not fit in 6 bits; 0 stands for 64 (0 never occurs).
            self.bits.write((sig % 64) as u64, 6);
            self.bits.write(xor >> trailing, sig);
        }
    }

    /// The encoded chunk so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bits.buf
    }

    /// Bytes held, counting spare capacity (for memory accounting).
    pub(crate) fn capacity(&self) -> usize {
        self.bits.buf.capacity()
    }

    /// The finished chunk, trimmed to its size.
    pub(crate) fn finish(self) -> Box<[u8]> {
        self.bits.buf.into_boxed_slice()
    }
}

/// Decodes a whole chunk, appending its samples to `out`.
pub(crate) fn decode(data: &[u8], out: &mut Vec<Sample>) -> Result<(), ChunkError> {
    if data.len() < 2 {
        return Err(ChunkError("shorter than its header"));
    }
    let count = u16::from_be_bytes([data[0], data[1]]);
    let mut r = BitReader { buf: &data[2..], pos: 0 };
    out.reserve(count as usize);
    let (mut t, mut delta, mut v) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0u8, 0u8);
    for i in 0..count {
        if i == 0 {
            t = r.read(64)? as i64;
            v = r.read(64)?;
        } else {
            let dod = read_dod(&mut r)?;
            delta = delta.wrapping_add(dod);
            t = t.wrapping_add(delta);
            if r.bit()? {
                if r.bit()? {
                    leading = r.read(5)? as u8;
                    let sig = match r.read(6)? as u8 {
                        0 => 64,
                        n => n,
                    };
                    if leading + sig > 64 {
                        return Err(ChunkError("xor window wider than 64 bits"));
                    }
                    trailing = 64 - leading - sig;
                }
                let sig = 64 - leading - trailing;
                v ^= r.read(sig)? << trailing;
            }
        }
        out.push(Sample { t, v: f64::from_bits(v) });
    }
    Ok(())
}

fn read_dod(r: &mut BitReader<'_>) -> Result<i64, ChunkError> {
    let mut prefix = 0u8;
    while prefix < 4 && r.bit()? {
        prefix += 1;
    }
    let nbits = match prefix {
        0 => return Ok(0),
        1 => 14,
        2 => 17,
        3 => 20,
        _ => return Ok(r.read(64)? as i64),
    };
    let raw = r.read(nbits)?;
    // Sign-extend the payload.
    let shift = 64 - nbits as u32;
    Ok(((raw << shift) as i64) >> shift)
}

/// The number of samples a chunk holds, from its header.
#[cfg(test)]
fn sample_count(data: &[u8]) -> usize {
    data.get(..2).map_or(0, |h| u16::from_be_bytes([h[0], h[1]]) as usize)
}

/// Encodes `samples` (strictly increasing in time, at most `u16::MAX` of them) into one chunk.
pub(crate) fn encode(samples: &[Sample]) -> Box<[u8]> {
    debug_assert!(samples.len() <= u16::MAX as usize);
    let mut a = XorAppender::new();
    for s in samples {
        a.append(s.t, s.v);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use telltale_model::STALE_NAN_BITS;

    fn round_trip(samples: &[Sample]) -> Vec<Sample> {
        let data = encode(samples);
        assert_eq!(sample_count(&data), samples.len());
        let mut out = Vec::new();
        decode(&data, &mut out).unwrap();
        out
    }

    #[test]
    fn regular_scrapes_are_small() {
        let samples: Vec<_> = (0..120).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, (i / 10) as f64)).collect();
        let data = encode(&samples);
        assert!(data.len() < 80, "{} bytes", data.len());
        assert_eq!(round_trip(&samples), samples);
    }

    #[test]
    fn special_values_keep_their_bits() {
        let vals = [f64::NAN, f64::from_bits(STALE_NAN_BITS), f64::INFINITY, -0.0, 0.0, f64::MIN, 1e-310];
        let samples: Vec<_> = vals.iter().enumerate().map(|(i, v)| Sample::new(i as i64, *v)).collect();
        let out = round_trip(&samples);
        assert!(out.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
    }

    #[test]
    fn extreme_timestamps() {
        let samples = [Sample::new(i64::MIN, 1.0), Sample::new(0, 2.0), Sample::new(i64::MAX, 3.0)];
        assert_eq!(round_trip(&samples), samples);
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut out = Vec::new();
        assert!(decode(&[], &mut out).is_err());
        assert!(decode(&[0, 5, 1, 2, 3], &mut out).is_err());
        assert!(decode(
            &[0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xff],
            &mut out
        )
        .is_err());
    }

    fn samples_strategy() -> impl Strategy<Value = Vec<Sample>> {
        let value = prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (-1000i32..1000).prop_map(|i| i as f64),
            Just(f64::from_bits(STALE_NAN_BITS)),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ];
        let step = prop_oneof![1i64..20_000, Just(15_000i64), 1i64..i64::MAX / 1024];
        (any::<i64>(), proptest::collection::vec((step, value), 0..300)).prop_map(|(start, steps)| {
            let mut t = start / 2;
            let mut out = Vec::new();
            for (d, v) in steps {
                match t.checked_add(d) {
                    Some(n) => t = n,
                    None => break,
                }
                out.push(Sample::new(t, v));
            }
            out
        })
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(samples in samples_strategy()) {
            let out = round_trip(&samples);
            prop_assert_eq!(out.len(), samples.len());
            for (a, b) in out.iter().zip(&samples) {
                prop_assert!(a.bit_eq(b), "{:?} != {:?}", a, b);
            }
        }

        #[test]
        fn any_bytes_decode_without_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = decode(&data, &mut out);
        }
    }
}
