//! The in-memory head: the lines written since the last flush, per stream, appended in
//! arrival order (an arena of line bytes plus offsets) and sorted by time when read or
//! flushed.

use std::collections::HashMap;

use telltale_model::Labels;

/// One stream's unflushed lines.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamHead {
    pub(crate) ts: Vec<i64>,
    /// End offset of each line in `text`.
    pub(crate) ends: Vec<u32>,
    pub(crate) text: Vec<u8>,
    pub(crate) meta: Vec<Labels>,
    /// Whether `ts` is non-decreasing.
    pub(crate) sorted: bool,
    /// hash(ts, line) → index, to drop exact duplicates.
    seen: HashMap<u64, u32>,
}

fn entry_hash(ts: i64, line: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (ts as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in line {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl StreamHead {
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    pub(crate) fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Appends unless the same timestamp and line are already here; returns whether it did.
    pub(crate) fn push(&mut self, ts: i64, line: &[u8], meta: &Labels) -> bool {
        let h = entry_hash(ts, line);
        if let Some(&i) = self.seen.get(&h) {
            if self.ts[i as usize] == ts && self.line(i as usize) == line {
                return false;
            }
        }
        if self.ts.is_empty() {
            self.sorted = true;
        } else if ts < *self.ts.last().expect("not empty") {
            self.sorted = false;
        }
        self.seen.insert(h, self.ts.len() as u32);
        self.ts.push(ts);
        self.text.extend_from_slice(line);
        self.ends.push(self.text.len() as u32);
        self.meta.push(meta.clone());
        true
    }

    /// Row indexes in time order (equal times in arrival order).
    pub(crate) fn order(&self) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..self.ts.len() as u32).collect();
        if !self.sorted {
            idx.sort_by_key(|&i| self.ts[i as usize]);
        }
        idx
    }

    /// Whether another line can still fit the arena's u32 offsets.
    pub(crate) fn has_room(&self, line: usize) -> bool {
        self.text.len() + line < u32::MAX as usize
    }
}

/// Every stream's unflushed lines, keyed by the store's stream id.
#[derive(Debug, Default)]
pub(crate) struct Head {
    pub(crate) streams: HashMap<u32, StreamHead>,
    pub(crate) bytes: usize,
    pub(crate) lines: usize,
    /// When the first line of this head arrived (ms since the epoch), for `head_max_age`.
    pub(crate) since_ms: Option<i64>,
}

impl Head {
    pub(crate) fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_and_orders() {
        let mut s = StreamHead::default();
        let e = Labels::empty();
        assert!(s.push(20, b"b", &e));
        assert!(s.push(10, b"a", &e));
        assert!(s.push(20, b"b2", &e));
        assert!(!s.push(20, b"b", &e));
        assert!(s.push(10, b"a2", &e));
        let lines: Vec<&[u8]> = s.order().iter().map(|&i| s.line(i as usize)).collect();
        assert_eq!(lines, [&b"a"[..], b"a2", b"b", b"b2"]);
    }
}
