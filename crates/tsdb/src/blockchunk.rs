//! The chunk encoding of blocks: byte-aligned so that the page compressor (zstd) can
//! squeeze it further, and decimal-aware for values, as VictoriaMetrics does, but exact.
//!
//! Layout: `uvarint` sample count n; timestamps as `varint` t0, `varint` first delta, then
//! n-2 `varint` delta-of-deltas; then a value mode byte and the values:
//! - `0` constant: one `u64` (little-endian bits), every sample has it;
//! - `1` decimal deltas / `2` decimal delta-of-deltas: `u8` exponent e, then the integers
//!   m_i (value = m_i / 10^e, bit-exact) as `varint` m0, then `varint` deltas (mode 1), or
//!   `varint` first delta and delta-of-deltas (mode 2);
//! - `3` XOR: `u64` first bits, then each value's bits XOR the previous, as `u64`.
//!
//! The encoder picks the smallest mode that reproduces every value's bits exactly.

use telltale_model::Sample;

use crate::chunk::ChunkError;
use crate::encoding::{put_uvarint, put_varint, Reader};

const MAX_EXP: i32 = 15;
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Encodes samples (strictly increasing in time) into `out`.
pub(crate) fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    put_uvarint(out, samples.len() as u64);
    let Some(first) = samples.first() else { return };
    put_varint(out, first.t);
    let (mut prev_t, mut prev_d) = (first.t, 0i64);
    for (i, s) in samples.iter().enumerate().skip(1) {
        let d = s.t.wrapping_sub(prev_t);
        put_varint(out, if i == 1 { d } else { d.wrapping_sub(prev_d) });
        (prev_t, prev_d) = (s.t, d);
    }
    let bits0 = first.v.to_bits();
    if samples.iter().all(|s| s.v.to_bits() == bits0) {
        out.push(0);
        out.extend_from_slice(&bits0.to_le_bytes());
        return;
    }
    if let Some((e, ints)) = decimals(samples) {
        let mut a = Vec::with_capacity(ints.len() * 2);
        let mut b = Vec::with_capacity(ints.len() * 2);
        put_varint(&mut a, ints[0]);
        put_varint(&mut b, ints[0]);
        let mut prev_d = 0i64;
        for (i, w) in ints.windows(2).enumerate() {
            let d = w[1].wrapping_sub(w[0]);
            put_varint(&mut a, d);
            put_varint(&mut b, if i == 0 { d } else { d.wrapping_sub(prev_d) });
            prev_d = d;
        }
        let (mode, body) = if b.len() < a.len() { (2, b) } else { (1, a) };
        out.push(mode);
        out.push(e as u8);
        out.extend_from_slice(&body);
        return;
    }
    out.push(3);
    out.extend_from_slice(&bits0.to_le_bytes());
    for w in samples.windows(2) {
        out.extend_from_slice(&(w[1].v.to_bits() ^ w[0].v.to_bits()).to_le_bytes());
    }
}

/// Every value as an integer over a common power of ten, if that is exact for all.
fn decimals(samples: &[Sample]) -> Option<(i32, Vec<i64>)> {
    let mut e = 0;
    for s in samples {
        while !exact(s.v, e) {
            e += 1;
            if e > MAX_EXP {
                return None;
            }
        }
    }
    let scale = POW10[e as usize];
    let ints: Vec<i64> = samples.iter().map(|s| (s.v * scale).round() as i64).collect();
    // Check with the decoder's own arithmetic; the common exponent may not suit a value.
    samples.iter().zip(&ints).all(|(s, &m)| exact_int(s.v, m, e)).then_some((e, ints))
}

fn exact(v: f64, e: i32) -> bool {
    let m = (v * POW10[e as usize]).round();
    m.abs() <= MAX_EXACT && exact_int(v, m as i64, e)
}

fn exact_int(v: f64, m: i64, e: i32) -> bool {
    (m as f64).abs() <= MAX_EXACT && (m as f64 / POW10[e as usize]).to_bits() == v.to_bits()
}

/// Decodes a chunk, appending its samples to `out`.
pub(crate) fn decode(data: &[u8], out: &mut Vec<Sample>) -> Result<(), ChunkError> {
    let bad = |_| ChunkError("block chunk ends early");
    let mut r = Reader::new(data);
    let n = r.uvarint().map_err(bad)? as usize;
    if n == 0 {
        return Ok(());
    }
    if n > data.len() {
        return Err(ChunkError("sample count larger than the chunk"));
    }
    let start = out.len();
    let res = decode_into(&mut r, n, out, start);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

fn decode_into(r: &mut Reader<'_>, n: usize, out: &mut Vec<Sample>, start: usize) -> Result<(), ChunkError> {
    let bad = |_| ChunkError("block chunk ends early");
    let (mut t, mut d) = (r.varint().map_err(bad)?, 0i64);
    out.push(Sample { t, v: 0.0 });
    for i in 1..n {
        let x = r.varint().map_err(bad)?;
        d = if i == 1 { x } else { d.wrapping_add(x) };
        t = t.wrapping_add(d);
        out.push(Sample { t, v: 0.0 });
    }
    let vals = &mut out[start..];
    match r.bytes(1).map_err(bad)?[0] {
        0 => {
            let v = f64::from_bits(r.u64().map_err(bad)?);
            vals.iter_mut().for_each(|s| s.v = v);
        }
        mode @ (1 | 2) => {
            let e = r.bytes(1).map_err(bad)?[0] as usize;
            let scale = *POW10.get(e).ok_or(ChunkError("decimal exponent out of range"))?;
            let (mut m, mut d) = (0i64, 0i64);
            for (i, s) in vals.iter_mut().enumerate() {
                let x = r.varint().map_err(bad)?;
                match (i, mode) {
                    (0, _) => m = x,
                    (_, 1) | (1, _) => {
                        d = x;
                        m = m.wrapping_add(d);
                    }
                    _ => {
                        d = d.wrapping_add(x);
                        m = m.wrapping_add(d);
                    }
                }
                s.v = m as f64 / scale;
            }
        }
        3 => {
            let mut bits = 0u64;
            for (i, s) in vals.iter_mut().enumerate() {
                let x = r.u64().map_err(bad)?;
                bits = if i == 0 { x } else { bits ^ x };
                s.v = f64::from_bits(bits);
            }
        }
        _ => return Err(ChunkError("unknown value mode")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use telltale_model::STALE_NAN_BITS;

    fn round_trip(samples: &[Sample]) -> (usize, Vec<Sample>) {
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        let mut out = Vec::new();
        decode(&buf, &mut out).unwrap();
        (buf.len(), out)
    }

    fn same(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y))
    }

    #[test]
    fn modes_are_exact_and_compact() {
        let t = |i: i64| 1_700_000_000_000 + i * 15_000;
        let constant: Vec<_> = (0..240).map(|i| Sample::new(t(i), 1.0)).collect();
        let counter: Vec<_> = (0..240).map(|i| Sample::new(t(i), (123_456 + i * 307) as f64 / 100.0)).collect();
        let gauge: Vec<_> = (0..240).map(|i| Sample::new(t(i), 0.01 * ((i * 37) % 11) as f64)).collect();
        let noise: Vec<_> = (0..240).map(|i| Sample::new(t(i), (i as f64).sin())).collect();
        for (s, max) in [(&constant, 260), (&counter, 260 + 240 * 2), (&gauge, 260 + 240), (&noise, 260 + 240 * 8)] {
            let (len, out) = round_trip(s);
            assert!(same(&out, s));
            assert!(len <= max, "{len} > {max}");
        }
        let mut special = counter.clone();
        special[5].v = f64::from_bits(STALE_NAN_BITS);
        special[6].v = -0.0;
        assert!(same(&round_trip(&special).1, &special));
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(steps in proptest::collection::vec((1i64..100_000, prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (-100_000i64..100_000).prop_map(|i| i as f64 / 100.0),
            Just(f64::from_bits(STALE_NAN_BITS)),
        ]), 0..300), start in -1_000_000_000_000i64..1_000_000_000_000) {
            let mut t = start;
            let samples: Vec<_> = steps.iter().map(|&(d, v)| { t += d; Sample::new(t, v) }).collect();
            let (_, out) = round_trip(&samples);
            prop_assert!(same(&out, &samples));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&data, &mut Vec::new());
        }
    }
}
