//! How segments store lines: a template plus typed variables (after CLP, "Compressed Log
//! Processing", OSDI 2021), instead of the text.
//!
//! Why: a general compressor sees ids and numbers as text. A 32-character trace id costs it
//! about 20 bytes on every line that repeats it, a 16-character request id about 10, and an
//! in-line timestamp that equals the entry's own time is paid for twice. Stored as a template
//! column (the line with those tokens cut out: what stays repeats from line to line, so zstd
//! packs it tightly) and three variable columns, the same lines take about a third less on
//! disk (`docs/logs.md`, "line encoding", has the measurement).
//!
//! The variables, each a whole token (bounded by bytes that are not `[A-Za-z0-9_]` or
//! non-ASCII, as the needle index tokenizes):
//! - an in-line timestamp equal to the entry's time, in RFC 3339 (`Z`, 0/3/6/9 fraction
//!   digits) or the common log format (`06/Dec/2026:17:56:24 +0000`): no bytes at all;
//! - decimal integers (`0` or no leading zero, up to 18 digits) and decimals with 1-9 fraction
//!   digits, not next to a `.`: a varint in `nums`;
//! - lowercase hex ids of 32 characters (trace ids): a varint index into the segment's id
//!   dictionary (`refs`), because a trace id repeats across services, which are different
//!   streams and so far apart in a stream-sorted file;
//! - other lowercase hex tokens of an even length from 16 to 64: their bytes in `hexes`.
//!
//! Every row decodes on its own (no state across rows), so SQL can decode any batch.
//! Template bytes 0x01-0x06 mark variables; a literal such byte is escaped with 0x06.

use std::collections::HashMap;

use crate::bloom::is_token_byte;
use crate::wal::{put_uvarint, Cursor};

const TIME: u8 = 0x01;
const INT: u8 = 0x02;
const DEC: u8 = 0x03;
const HEX: u8 = 0x04;
const REF: u8 = 0x05;
const ESC: u8 = 0x06;

/// Length of the ids the dictionary holds, in bytes (32 hex characters).
pub(crate) const ID_BYTES: usize = 16;

/// Whether `token` goes into the id dictionary: 32 lowercase hex characters.
pub(crate) fn is_dict_id(token: &[u8]) -> bool {
    token.len() == 2 * ID_BYTES && token.iter().all(|&b| is_hex_digit(b))
}

pub(crate) fn is_hex_digit(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// One row's encoded columns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EncodedRow {
    pub(crate) template: Vec<u8>,
    pub(crate) nums: Vec<u8>,
    pub(crate) hexes: Vec<u8>,
    pub(crate) refs: Vec<u8>,
}

impl EncodedRow {
    fn clear(&mut self) {
        self.template.clear();
        self.nums.clear();
        self.hexes.clear();
        self.refs.clear();
    }
}

/// A segment's id dictionary as it is built: ids in order of first use.
#[derive(Debug, Default)]
pub(crate) struct IdDict {
    index: HashMap<[u8; ID_BYTES], u32>,
    pub(crate) ids: Vec<[u8; ID_BYTES]>,
}

impl IdDict {
    fn intern(&mut self, id: [u8; ID_BYTES]) -> u32 {
        let next = self.ids.len() as u32;
        *self.index.entry(id).or_insert_with(|| {
            self.ids.push(id);
            next
        })
    }
}

/// The renderings of one second, cached because consecutive lines share their second.
#[derive(Debug, Default)]
struct Second {
    sec: Option<i64>,
    /// `2026-12-06T17:56:24`
    iso: Vec<u8>,
    /// `06/Dec/2026:17:56:24 +0000`
    clf: Vec<u8>,
    find_iso: Option<memchr::memmem::Finder<'static>>,
    find_clf: Option<memchr::memmem::Finder<'static>>,
}

impl Second {
    fn set(&mut self, sec: i64) {
        if self.sec == Some(sec) {
            return;
        }
        let (days, rem) = (sec.div_euclid(86_400), sec.rem_euclid(86_400));
        let (y, m, d) = telltale_model::civil_from_days(days);
        let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        self.iso = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}").into_bytes();
        self.clf = format!("{d:02}/{}/{y:04}:{hh:02}:{mm:02}:{ss:02} +0000", MONTHS[(m - 1) as usize]).into_bytes();
        self.find_iso = Some(memchr::memmem::Finder::new(&self.iso).into_owned());
        self.find_clf = Some(memchr::memmem::Finder::new(&self.clf).into_owned());
        self.sec = Some(sec);
    }

    /// Appends rendering `format` (0-3: RFC 3339 with 0, 3, 6, 9 fraction digits; 4: CLF) of
    /// `ns` past the second.
    fn render(&self, format: u8, ns: u32, out: &mut Vec<u8>) -> bool {
        match format {
            0..=3 => {
                out.extend_from_slice(&self.iso);
                let digits = 3 * usize::from(format);
                if digits > 0 {
                    out.push(b'.');
                    out.extend_from_slice(&fraction(ns)[..digits]);
                }
                out.push(b'Z');
            }
            4 => out.extend_from_slice(&self.clf),
            _ => return false,
        }
        true
    }

    /// Where the line shows this second's time at `ns` past it: (start, end, format).
    fn find_in(&self, line: &[u8], ns: u32) -> Option<(usize, usize, u8)> {
        if let Some(at) = self.find_iso.as_ref()?.find(line) {
            let rest = &line[at + self.iso.len()..];
            let frac = fraction(ns);
            for format in [3u8, 2, 1, 0] {
                let digits = 3 * usize::from(format);
                let matches = if digits == 0 {
                    rest.first() == Some(&b'Z')
                } else {
                    rest.len() > digits + 1
                        && rest[0] == b'.'
                        && rest[1..=digits] == frac[..digits]
                        && rest[digits + 1] == b'Z'
                };
                if matches {
                    let len = if digits == 0 { 1 } else { digits + 2 };
                    return Some((at, at + self.iso.len() + len, format));
                }
            }
        }
        self.find_clf.as_ref()?.find(line).map(|at| (at, at + self.clf.len(), 4))
    }
}

/// The nine fraction digits of `ns` nanoseconds.
fn fraction(mut ns: u32) -> [u8; 9] {
    let mut d = [b'0'; 9];
    for i in (0..9).rev() {
        d[i] = b'0' + (ns % 10) as u8;
        ns /= 10;
    }
    d
}

/// Encodes lines, interning ids into the segment's dictionary.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    pub(crate) dict: IdDict,
    second: Second,
}

impl Encoder {
    /// Encodes `line`, whose entry time is `ts` (ns), into `out` (cleared first).
    pub(crate) fn encode(&mut self, line: &[u8], ts: i64, out: &mut EncodedRow) {
        out.clear();
        let (sec, ns) = (ts.div_euclid(1_000_000_000), ts.rem_euclid(1_000_000_000) as u32);
        self.second.set(sec);
        // The entry's time in the line, most precise rendering first.
        let time_at = self.second.find_in(line, ns);
        let time_start = time_at.map_or(usize::MAX, |t| t.0);
        let mut i = 0;
        while i < line.len() {
            if i == time_start {
                let (_, end, format) = time_at.expect("time_start is set");
                out.template.extend_from_slice(&[TIME, b'0' + format]);
                i = end;
                continue;
            }
            // A run of separators (up to the next token or the timestamp) ...
            let mut end = i;
            while end < line.len() && !is_token_byte(line[end]) && end != time_start {
                end += 1;
            }
            if end > i {
                literal(&line[i..end], &mut out.template);
                i = end;
                continue;
            }
            // ... or a token (cut at the timestamp if it starts inside).
            while end < line.len() && is_token_byte(line[end]) && end != time_start {
                end += 1;
            }
            let starts_token = i == 0 || !is_token_byte(line[i - 1]);
            if let Some(var_end) = starts_token.then(|| self.variable(line, i, end, out)).flatten() {
                i = var_end;
                continue;
            }
            // Token bytes never need escaping.
            out.template.extend_from_slice(&line[i..end]);
            i = end;
        }
    }

    /// Encodes the token `line[start..end]` as a variable if it is one, and says where the
    /// variable ends (a decimal goes past the token's `.`).
    fn variable(&mut self, line: &[u8], start: usize, end: usize, out: &mut EncodedRow) -> Option<usize> {
        let tok = &line[start..end];
        let whole_token = end == line.len() || !is_token_byte(line[end]);
        if !whole_token {
            return None;
        }
        if is_dict_id(tok) {
            let mut id = [0u8; ID_BYTES];
            unhex(tok, &mut id);
            let r = self.dict.intern(id);
            out.template.push(REF);
            put_uvarint(&mut out.refs, u64::from(r));
            return Some(end);
        }
        if tok.len() >= 16 && tok.len() <= 64 && tok.len().is_multiple_of(2) && tok.iter().all(|&b| is_hex_digit(b)) {
            let n = tok.len() / 2;
            let at = out.hexes.len();
            out.hexes.resize(at + n, 0);
            unhex(tok, &mut out.hexes[at..]);
            out.template.extend_from_slice(&[HEX, n as u8]);
            return Some(end);
        }
        if start > 0 && line[start - 1] == b'.' {
            return None;
        }
        if let Some(dec_end) = decimal_end(line, start, end) {
            let frac = &line[end + 1..dec_end];
            let mut v = digits_value(tok);
            for &d in frac {
                v = v * 10 + u64::from(d - b'0');
            }
            out.template.extend_from_slice(&[DEC, b'0' + frac.len() as u8]);
            put_uvarint(&mut out.nums, v);
            return Some(dec_end);
        }
        if is_plain_integer(tok, 18) && !(end < line.len() && line[end] == b'.') {
            out.template.push(INT);
            put_uvarint(&mut out.nums, digits_value(tok));
            return Some(end);
        }
        None
    }
}

/// `Some(end)` if `line[start..tok_end]` begins a decimal `int.frac` (int: up to 9 digits,
/// frac: 1-9 digits, neither followed by a token byte or `.`).
fn decimal_end(line: &[u8], start: usize, tok_end: usize) -> Option<usize> {
    if !is_plain_integer(&line[start..tok_end], 9) || line.get(tok_end) != Some(&b'.') {
        return None;
    }
    let mut e = tok_end + 1;
    while e < line.len() && line[e].is_ascii_digit() {
        e += 1;
    }
    let frac = e - tok_end - 1;
    let bounded = e == line.len() || (!is_token_byte(line[e]) && line[e] != b'.');
    ((1..=9).contains(&frac) && bounded).then_some(e)
}

/// Digits only, `0` or without a leading zero, at most `max` of them.
fn is_plain_integer(tok: &[u8], max: usize) -> bool {
    !tok.is_empty() && tok.len() <= max && tok.iter().all(u8::is_ascii_digit) && (tok.len() == 1 || tok[0] != b'0')
}

fn digits_value(tok: &[u8]) -> u64 {
    tok.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'))
}

fn unhex(hex: &[u8], out: &mut [u8]) {
    let nib = |b: u8| if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = nib(pair[0]) << 4 | nib(pair[1]);
    }
}

pub(crate) fn put_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

/// Appends `v` in decimal with `frac` digits after a point (at least one before it).
fn put_decimal(mut v: u64, frac: usize, out: &mut Vec<u8>) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut written = 0;
    while v > 0 || written <= frac {
        if written == frac && frac > 0 {
            i -= 1;
            buf[i] = b'.';
        }
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        written += 1;
    }
    out.extend_from_slice(&buf[i..]);
}

fn literal(text: &[u8], template: &mut Vec<u8>) {
    if !text.iter().any(|b| (TIME..=ESC).contains(b)) {
        template.extend_from_slice(text);
        return;
    }
    for &b in text {
        if (TIME..=ESC).contains(&b) {
            template.push(ESC);
        }
        template.push(b);
    }
}

/// An encoded row as read back: the four columns' values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowRef<'a> {
    pub(crate) template: &'a [u8],
    pub(crate) nums: &'a [u8],
    pub(crate) hexes: &'a [u8],
    pub(crate) refs: &'a [u8],
}

#[cfg(test)]
impl EncodedRow {
    fn as_row(&self) -> RowRef<'_> {
        RowRef { template: &self.template, nums: &self.nums, hexes: &self.hexes, refs: &self.refs }
    }
}

/// Decodes rows of one segment, whose id dictionary is `dict` (16 bytes per id).
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    second: Second,
}

impl Decoder {
    /// Appends the line of an encoded row to `out`; `None` if the row is malformed.
    pub(crate) fn decode(&mut self, dict: &[u8], row: RowRef<'_>, ts: i64, out: &mut Vec<u8>) -> Option<()> {
        let template = row.template;
        let (mut nums, mut refs) = (Cursor { b: row.nums }, Cursor { b: row.refs });
        let mut hexes = row.hexes;
        let mut i = 0;
        while i < template.len() {
            // Copy the text up to the next marker in one go.
            let text = template[i..].iter().position(|&c| (TIME..=ESC).contains(&c)).unwrap_or(template.len() - i);
            out.extend_from_slice(&template[i..i + text]);
            i += text;
            let Some(&b) = template.get(i) else { break };
            i += 1;
            match b {
                TIME => {
                    let format = template.get(i)?.checked_sub(b'0')?;
                    i += 1;
                    self.second.set(ts.div_euclid(1_000_000_000));
                    if !self.second.render(format, ts.rem_euclid(1_000_000_000) as u32, out) {
                        return None;
                    }
                }
                INT => put_decimal(nums.uvarint()?, 0, out),
                DEC => {
                    let frac = usize::from(template.get(i)?.checked_sub(b'0')?);
                    i += 1;
                    if !(1..=9).contains(&frac) {
                        return None;
                    }
                    put_decimal(nums.uvarint()?, frac, out);
                }
                HEX => {
                    let n = usize::from(*template.get(i)?);
                    i += 1;
                    let (id, rest) = (hexes.get(..n)?, hexes.get(n..)?);
                    put_hex(id, out);
                    hexes = rest;
                }
                REF => {
                    let r = usize::try_from(refs.uvarint()?).ok()?;
                    put_hex(dict.get(r * ID_BYTES..(r + 1) * ID_BYTES)?, out);
                }
                ESC => {
                    out.push(*template.get(i)?);
                    i += 1;
                }
                _ => out.push(b),
            }
        }
        (nums.b.is_empty() && refs.b.is_empty() && hexes.is_empty()).then_some(())
    }
}

/// Tells rows that cannot hold a needle without decoding them, for a needle that is an id
/// (lowercase hex with a letter, 8 bytes or more). Such a needle lies inside one token of a
/// line, and an encoded token is template text, a hex variable or a dictionary id (numbers
/// and timestamps render no such text); so a row may hold it only if its template text, its
/// hex variables (rendered side by side) or one of its dictionary ids does.
#[derive(Debug)]
pub(crate) struct NeedleFilter {
    needle: memchr::memmem::Finder<'static>,
    /// Refs of the segment's dictionary ids that hold the needle.
    refs: std::collections::HashSet<u64>,
}

impl NeedleFilter {
    /// Whether `needle` is one a filter can tell.
    pub(crate) fn applies(needle: &str) -> bool {
        needle.len() >= 8 && needle.bytes().all(is_hex_digit) && needle.bytes().any(|b| b.is_ascii_lowercase())
    }

    pub(crate) fn new(needle: &str, refs: impl IntoIterator<Item = u64>) -> NeedleFilter {
        let needle = memchr::memmem::Finder::new(needle.as_bytes()).into_owned();
        NeedleFilter { needle, refs: refs.into_iter().collect() }
    }

    /// Whether `row` may hold the needle (`scratch` is working space).
    pub(crate) fn may_match(&self, row: &RowRef<'_>, scratch: &mut Vec<u8>) -> bool {
        let finder = |hay: &[u8]| self.needle.find(hay).is_some();
        if finder(row.template) || refs_of(row.refs).any(|r| self.refs.contains(&r)) {
            return true;
        }
        // A timestamp need not be a whole token: one glued to other token bytes may hold
        // part of the needle.
        let t = row.template;
        let glued = memchr::memchr_iter(TIME, t).any(|i| {
            let before = i.checked_sub(1).map(|j| t[j]);
            let after = t.get(i + 2).copied();
            before.is_some_and(is_token_byte) || after.is_some_and(is_token_byte)
        });
        if glued {
            return true;
        }
        scratch.clear();
        put_hex(row.hexes, scratch);
        finder(scratch)
    }
}

/// The dictionary refs of an encoded row's `refs` bytes.
pub(crate) fn refs_of(refs: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut c = Cursor { b: refs };
    std::iter::from_fn(move || c.uvarint())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(enc: &mut Encoder, line: &[u8], ts: i64) -> EncodedRow {
        let mut row = EncodedRow::default();
        enc.encode(line, ts, &mut row);
        let dict: Vec<u8> = enc.dict.ids.iter().flatten().copied().collect();
        let mut out = Vec::new();
        Decoder::default().decode(&dict, row.as_row(), ts, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(line));
        row
    }

    #[test]
    fn variables_leave_the_template() {
        let ts = 1_796_579_784_000_625_123; // 2026-12-06T17:56:24.000625123Z
        let mut enc = Encoder::default();
        let line = br#"{"ts":"2026-12-06T17:56:24.000625Z","level":"warn","trace_id":"5a1e518fcfcf0d64aa76dd0138337051","request_id":"821e014c47ab84ed","user_id":4321,"latency_ms":13.0,"path":"/api/v1/users/113116","ip":"10.1.2.3","v":"1.2.3","n":007}"#;
        let row = roundtrip(&mut enc, line, ts);
        let t = String::from_utf8_lossy(&row.template).into_owned();
        assert_eq!(
            t,
            "{\"ts\":\"\u{1}2\",\"level\":\"warn\",\"trace_id\":\"\u{5}\",\"request_id\":\"\u{4}\u{8}\",\
             \"user_id\":\u{2},\"latency_ms\":\u{3}1,\"path\":\"/api/v1/users/\u{2}\",\"ip\":\"10.1.2.3\",\
             \"v\":\"1.2.3\",\"n\":007}"
        );
        assert_eq!(row.hexes.len(), 8);
        assert_eq!(enc.dict.ids.len(), 1);
        // The same trace id again: the same dictionary entry.
        let row = roundtrip(&mut enc, b"trace_id=5a1e518fcfcf0d64aa76dd0138337051 x", ts);
        assert_eq!((enc.dict.ids.len(), row.refs.as_slice()), (1, &[0u8][..]));
        let clf = b"10.211.159.110 - - [06/Dec/2026:17:56:24 +0000] \"GET / HTTP/1.1\" 200 2888 rt=0.078";
        let row = roundtrip(&mut enc, clf, ts);
        assert!(row.template.starts_with(b"10.211.159.110 - - [\x014]"), "{:?}", row.template);
    }

    #[test]
    fn odd_inputs_come_back_unchanged() {
        let mut enc = Encoder::default();
        for line in [
            &b""[..],
            b"\x01\x02\x03\x04\x05\x06 escapes",
            b"0.5.",
            b"1.0000000000",
            b"99999999999999999999 overflow",
            b"-12 -0.5",
            b"x.5 5. .5",
            b"ABCDEF0123456789ABCDEF0123456789 upper hex stays",
            b"0123456789abcdef0 odd hex length",
            b"2026-12-06T17:56:24Z2026-12-06T17:56:24Z",
            b"a2026-12-06T17:56:24.000Z",
            b"\xff\xfe invalid utf-8 7",
        ] {
            roundtrip(&mut enc, line, 1_796_579_784_000_000_000);
        }
    }

    #[test]
    fn dates_render_like_the_calendar() {
        let mut s = Second::default();
        for (sec, iso) in
            [(0, "1970-01-01T00:00:00"), (951_782_400, "2000-02-29T00:00:00"), (-1, "1969-12-31T23:59:59")]
        {
            s.set(sec);
            assert_eq!(String::from_utf8_lossy(&s.iso), iso);
        }
    }

    #[test]
    fn a_malformed_row_is_refused_not_panicked_on() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        assert!(d.decode(&[], RowRef { template: &[REF], nums: &[], hexes: &[], refs: &[7] }, 0, &mut out).is_none());
        assert!(d.decode(&[], RowRef { template: &[INT], nums: &[], hexes: &[], refs: &[] }, 0, &mut out).is_none());
        assert!(d
            .decode(&[], RowRef { template: &[HEX, 9], nums: &[], hexes: &[1, 2], refs: &[] }, 0, &mut out)
            .is_none());
        assert!(d
            .decode(&[], RowRef { template: &[DEC, b'0'], nums: &[1], hexes: &[], refs: &[] }, 0, &mut out)
            .is_none());
        assert!(
            d.decode(&[], RowRef { template: b"x", nums: &[1], hexes: &[], refs: &[] }, 0, &mut out).is_none(),
            "a value left over"
        );
    }

    proptest! {
        // Lines without an id-like run are skipped by the needle test, often.
        #![proptest_config(ProptestConfig { max_global_rejects: 1 << 20, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_roundtrip(line in proptest::collection::vec(any::<u8>(), 0..200), ts in any::<i64>()) {
            roundtrip(&mut Encoder::default(), &line, ts);
        }

        #[test]
        fn log_like_lines_roundtrip(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[0-9]{1,20}", "[0-9]{1,10}\\.[0-9]{0,11}", "[0-9a-f]{14,66}", "[ .=:/\"-]{1,3}",
                    "[a-z]{1,8}", Just("2026-12-06T17:56:24.000625Z".to_string()),
                ],
                0..30,
            ),
            ts in 1_796_579_784_000_000_000i64..1_796_579_786_000_000_000,
        ) {
            roundtrip(&mut Encoder::default(), parts.concat().as_bytes(), ts);
        }

        /// A needle filter may let a row through in vain, never rule out one that holds the
        /// needle: every id-like substring of a line passes it.
        #[test]
        fn a_needle_filter_keeps_every_row_that_holds_the_needle(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[0-9]{1,20}", "[0-9a-f]{8,66}", "[ .=:/\"-]{1,3}", "[a-z]{1,8}",
                    Just("2026-12-06T17:56:24.000625Z".to_string()), Just("06/Dec/2026:17:56:24 +0000".to_string()),
                ],
                1..20,
            ),
            start in any::<proptest::sample::Index>(),
            len in 8usize..40,
        ) {
            let line = parts.concat();
            let ts = 1_796_579_784_000_625_123;
            let mut enc = Encoder::default();
            let row = roundtrip(&mut enc, line.as_bytes(), ts);
            let dict: Vec<u8> = enc.dict.ids.iter().flatten().copied().collect();
            // A needle inside a run of hex digits (ids are such runs; a run may span tokens).
            let bytes = line.as_bytes();
            let mut runs = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let end = i + bytes[i..].iter().take_while(|&&b| is_hex_digit(b)).count();
                if end - i >= 8 {
                    runs.push(i..end);
                }
                i = end + 1;
            }
            prop_assume!(!runs.is_empty());
            let run = runs[start.index(runs.len())].clone();
            let len = len.min(run.len());
            let at = run.start + start.index(run.len() - len + 1);
            let needle = &line[at..at + len];
            prop_assume!(NeedleFilter::applies(needle));
            let refs: Vec<u64> = (0..dict.len() / ID_BYTES)
                .filter(|&r| {
                    let mut hex = Vec::new();
                    put_hex(&dict[r * ID_BYTES..(r + 1) * ID_BYTES], &mut hex);
                    memchr::memmem::find(&hex, needle.as_bytes()).is_some()
                })
                .map(|r| r as u64)
                .collect();
            let filter = NeedleFilter::new(needle, refs);
            prop_assert!(filter.may_match(&row.as_row(), &mut Vec::new()), "{needle:?} in {line:?}");
        }
    }

    #[test]
    fn a_needle_filter_rules_out_rows_without_the_needle() {
        let mut enc = Encoder::default();
        let row = roundtrip(&mut enc, b"trace_id=5a1e518fcfcf0d64aa76dd0138337051 rid=821e014c47ab84ed ok", 0);
        let filter = |n: &str| NeedleFilter::new(n, []).may_match(&row.as_row(), &mut Vec::new());
        assert!(filter("821e014c47ab84ed") && filter("1e014c47"), "a hex variable holds them");
        assert!(!filter("821e014c47ab84ee"));
        assert!(!filter("5a1e518fcfcf0d64"), "in an id, but the filter was given no ref holding it");
        assert!(NeedleFilter::new("5a1e518fcfcf0d64", [0]).may_match(&row.as_row(), &mut Vec::new()));
        assert!(
            !NeedleFilter::applies("12345678") && !NeedleFilter::applies("abc") && !NeedleFilter::applies("ABCDEF12")
        );
    }
}
