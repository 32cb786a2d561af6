//! The needle index: one bloom filter per block over the 8-byte n-grams of the block's
//! tokens.
//!
//! Why n-grams of tokens and not whole tokens: LogQL's `|= "x"` is a substring test, so a
//! needle may sit inside a longer token (`|= "c9e1b2d4"` inside `rid=3fa2c9e1b2d40a77`). Every
//! 8-byte window of a needle piece (the needle split at separators) is then a window of a
//! token of any matching line, so a block lacking one of them cannot match: the test never
//! gives a false negative. Tokens are runs of `[A-Za-z0-9_]` and non-ASCII bytes; pieces
//! shorter than 8 bytes cannot use the index (the block is read).
//!
//! Sizing: one hash function and 1.5 bits per distinct n-gram, rounded up to whole 64-bit
//! words (a 49% false-positive rate per n-gram); a hash picks its bit by multiply-shift, so the
//! size needs no rounding to a power of two (version 1 indexes did that, up to doubling their
//! size). A 16-character id has 9 n-grams, so a block without it passes all 9 probes with
//! probability 0.49^9 = 1.6e-3: over the 10M-line benchmark's ~1,000 blocks, one or two
//! blocks read in vain per needle. At 2 bits per n-gram (0.39^9 = 2e-4) the filters took a
//! quarter more space, 0.7 bytes per line, for a tenth of a block saved per needle. The count
//! of distinct n-grams is bounded from the block's distinct tokens, collected first, so
//! building costs one hash per token occurrence plus one per n-gram of each distinct token.
//! The measurement behind these numbers is in `docs/logs.md` (index choice).

use std::collections::HashSet;

/// Bytes per n-gram.
pub(crate) const GRAM: usize = 8;
/// Half-bits per distinct n-gram (1.5 bits).
const HALF_BITS_PER_GRAM: usize = 3;

/// Whether each byte value is a token byte.
static TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
        b += 1;
    }
    t
};

#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// Calls `f` with each token (maximal run of token bytes) of `text`.
pub(crate) fn tokens(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut start = None;
    for (i, &b) in text.iter().enumerate() {
        match (is_token_byte(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: cheap and well spread.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[inline]
fn gram_hash(w: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&w[..GRAM]);
    mix(u64::from_le_bytes(b))
}

/// A 64-bit hash of `b`, eight bytes at a time (FxHash's step, splitmix64's finaliser): for
/// hash sets of tokens and lines, where a byte-at-a-time hash was a tenth of ingest CPU.
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (b.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    }
    mix(h)
}

/// How a filter maps a hash to one of its m bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sizing {
    /// m is a power of two; the bit is `h mod m` (index version 1).
    PowerOfTwo,
    /// m is any multiple of 64; the bit is `(h × m) >> 64` (index version 2).
    Exact,
}

#[inline]
fn bit(h: u64, m: u64, sizing: Sizing) -> u64 {
    match sizing {
        Sizing::PowerOfTwo => h & (m - 1),
        Sizing::Exact => ((u128::from(h) * u128::from(m)) >> 64) as u64,
    }
}

/// Collects a block's distinct tokens, then builds its filter.
#[derive(Default)]
pub(crate) struct BloomBuilder {
    seen: HashSet<u64, BuildMix>,
    long_tokens: Vec<Vec<u8>>,
    /// Hashes set as they are (dictionary refs, see [`ref_keys`]).
    keys: Vec<u64>,
    grams: usize,
}

/// Probes per dictionary ref in a block's filter: 0.49^3, a 12% false-positive rate per ref.
const REF_KEYS: u64 = 3;

/// The hashes standing for "this block uses dictionary id `r`" in its filter.
pub(crate) fn ref_keys(r: u64) -> impl Iterator<Item = u64> {
    (0..REF_KEYS).map(move |k| mix(r.wrapping_mul(REF_KEYS).wrapping_add(k) ^ 0x5bd1_e995_7f4a_7c15))
}

/// A hasher for already-mixed u64 keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct BuildMix;

pub(crate) struct MixHasher(u64);

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl std::hash::BuildHasher for BuildMix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

impl BloomBuilder {
    /// Adds a line's tokens.
    pub(crate) fn add_line(&mut self, line: &[u8]) {
        self.add_text(line, false);
    }

    /// Adds a line's tokens, without the ones the id dictionary holds when `skip_dict_ids`
    /// (an encoded segment indexes those once, in its dictionary's filter).
    pub(crate) fn add_text(&mut self, line: &[u8], skip_dict_ids: bool) {
        tokens(line, |t| {
            if skip_dict_ids && crate::linecodec::is_dict_id(t) {
                return;
            }
            if t.len() >= GRAM && self.seen.insert(hash_bytes(t)) {
                self.grams += t.len() - GRAM + 1;
                self.long_tokens.push(t.to_vec());
            }
        });
    }

    /// Adds that the block uses dictionary id `r` (once per distinct ref).
    pub(crate) fn add_ref(&mut self, r: u64) {
        if self.seen.insert(mix(r ^ 0x2545_f491_4f6c_dd1d)) {
            self.keys.extend(ref_keys(r));
            self.grams += REF_KEYS as usize;
        }
    }

    /// The filter's bytes ([`Sizing::Exact`]: a multiple of 64 bits, at least 64).
    pub(crate) fn finish(self) -> Vec<u8> {
        self.finish_sized(Sizing::Exact)
    }

    /// The filter's bytes as `sizing` lays them out (version 1's [`Sizing::PowerOfTwo`] only
    /// in tests, to show old indexes still read).
    pub(crate) fn finish_sized(self, sizing: Sizing) -> Vec<u8> {
        self.finish_with(sizing, HALF_BITS_PER_GRAM)
    }

    /// The filter at one bit per n-gram: a 63% false-positive rate per n-gram, 1.6% for a
    /// 16-character needle. For an id dictionary's filter, where a false positive costs one
    /// scan of the dictionary, not a block read, and the filter is a fifth of the index.
    pub(crate) fn finish_sparse(self) -> Vec<u8> {
        self.finish_with(Sizing::Exact, 2)
    }

    fn finish_with(self, sizing: Sizing, half_bits_per_gram: usize) -> Vec<u8> {
        let min_bits = (self.grams * half_bits_per_gram).div_ceil(2).max(64);
        let bits = match sizing {
            Sizing::PowerOfTwo => min_bits.next_power_of_two(),
            Sizing::Exact => min_bits.next_multiple_of(64),
        };
        let mut out = vec![0u8; bits / 8];
        for t in &self.long_tokens {
            for w in t.windows(GRAM) {
                let h = bit(gram_hash(w), bits as u64, sizing);
                out[(h >> 3) as usize] |= 1 << (h & 7);
            }
        }
        for &k in &self.keys {
            let h = bit(k, bits as u64, sizing);
            out[(h >> 3) as usize] |= 1 << (h & 7);
        }
        out
    }
}

/// A needle's piece of [`GRAM`] bytes or more (the needle split at separators).
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub(crate) text: Vec<u8>,
    /// Its n-gram hashes, sorted.
    pub(crate) grams: Vec<u64>,
}

impl Piece {
    /// Whether the piece may lie inside a dictionary id (it is lowercase hex, short enough).
    pub(crate) fn may_be_in_id(&self) -> bool {
        self.text.len() <= 2 * crate::linecodec::ID_BYTES
            && self.text.iter().all(|&b| crate::linecodec::is_hex_digit(b))
    }
}

/// The pieces of `needle` the index can test (none: the index cannot help).
pub(crate) fn needle_pieces(needle: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    tokens(needle.as_bytes(), |t| {
        if t.len() >= GRAM {
            let mut grams: Vec<u64> = t.windows(GRAM).map(gram_hash).collect();
            grams.sort_unstable();
            grams.dedup();
            out.push(Piece { text: t.to_vec(), grams });
        }
    });
    out
}

/// The n-gram hashes a block must hold to possibly contain `needle`, or none if the needle
/// has no piece of [`GRAM`] bytes or more (then the index cannot help).
#[cfg(test)]
pub(crate) fn needle_grams(needle: &str) -> Vec<u64> {
    let mut out = Vec::new();
    tokens(needle.as_bytes(), |t| {
        for w in t.windows(GRAM) {
            out.push(gram_hash(w));
        }
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a block with filter `bloom` may contain every n-gram of `grams`.
#[cfg(test)]
pub(crate) fn may_contain(bloom: &[u8], grams: &[u64], sizing: Sizing) -> bool {
    may_contain_with(bloom.len(), grams, sizing, |i| bloom[i])
}

/// [`may_contain`] for a filter of `len` bytes read one byte at a time by `byte` (the filters
/// stay on disk; a needle probes one or two bytes of most blocks' filters).
pub(crate) fn may_contain_with(len: usize, grams: &[u64], sizing: Sizing, mut byte: impl FnMut(usize) -> u8) -> bool {
    if len == 0 {
        return grams.is_empty();
    }
    let m = (len * 8) as u64;
    grams.iter().all(|g| {
        let h = bit(*g, m, sizing);
        byte((h >> 3) as usize) & (1 << (h & 7)) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bloom(lines: &[&str]) -> Vec<u8> {
        let mut b = BloomBuilder::default();
        for l in lines {
            b.add_line(l.as_bytes());
        }
        b.finish()
    }

    #[test]
    fn tokenizes_on_separators() {
        let mut t = Vec::new();
        tokens(b"GET /api/v1?x=3fa2c9e1 \xc3\xa9t\xc3\xa9", |x| t.push(String::from_utf8_lossy(x).into_owned()));
        assert_eq!(t, ["GET", "api", "v1", "x", "3fa2c9e1", "été"]);
    }

    #[test]
    fn finds_tokens_and_substrings_of_tokens() {
        let b = bloom(&["level=info rid=3fa2c9e1b2d40a77 msg=\"certificate has expired\""]);
        for needle in ["3fa2c9e1b2d40a77", "rid=3fa2c9e1b2d40a77", "c9e1b2d4", "ertificate has exp", "certificate"] {
            assert!(may_contain(&b, &needle_grams(needle), Sizing::Exact), "{needle}");
        }
        assert!(!may_contain(&b, &needle_grams("deadbeefcafe1234"), Sizing::Exact));
        assert!(needle_grams("short one").is_empty(), "no piece of 8 bytes");
    }

    #[test]
    fn false_positive_rate_is_as_designed() {
        let lines: Vec<String> = (0..20_000u64).map(|i| format!("rid={:016x} ok", mix(i))).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let b = bloom(&refs);
        let trials = 2000u64;
        let hits = (0..trials)
            .filter(|i| may_contain(&b, &needle_grams(&format!("{:016x}", mix(1_000_000 + i))), Sizing::Exact))
            .count();
        // 0.49^9 = 1.6e-3: 3.2 expected; 12 or more would be off by the Poisson tail (p < 1e-3).
        assert!(hits < 12, "{hits} false positives in {trials}");
    }

    proptest! {
        #[test]
        fn never_a_false_negative(lines in proptest::collection::vec("[a-z0-9 =./\"-]{0,60}", 1..20), pick in any::<proptest::sample::Index>(), a in any::<proptest::sample::Index>(), len in 1usize..40) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let b = bloom(&refs);
            let line = &lines[pick.index(lines.len())];
            if !line.is_empty() {
                let start = a.index(line.len());
                let end = (start + len).min(line.len());
                let needle = &line[start..end];
                prop_assert!(may_contain(&b, &needle_grams(needle), Sizing::Exact), "{needle:?} in {line:?}");
            }
        }
    }
}
