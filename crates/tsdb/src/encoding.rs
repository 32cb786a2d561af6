//! Little helpers for the on-disk formats: LEB128 varints, zigzag, and a bounds-checked
//! reader that turns truncation into an error instead of a panic.

/// Appends `n` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Appends `n` zigzag-encoded, so small negative numbers stay short.
pub(crate) fn put_varint(buf: &mut Vec<u8>, n: i64) {
    put_uvarint(buf, ((n << 1) ^ (n >> 63)) as u64);
}

/// Reads what the `put_*` functions wrote; every method fails on truncated input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

/// The input ended early or held an impossible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, Truncated> {
        let mut n = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            n |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(n);
            }
        }
        Err(Truncated)
    }

    pub(crate) fn varint(&mut self) -> Result<i64, Truncated> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().map_err(|_| Truncated)?))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if n > self.buf.len() {
            return Err(Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A `uvarint` length followed by that many bytes.
    pub(crate) fn len_prefixed(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.uvarint()?;
        self.bytes(usize::try_from(n).map_err(|_| Truncated)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut buf = Vec::new();
        let nums = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for n in nums {
            put_varint(&mut buf, n);
        }
        put_uvarint(&mut buf, u64::MAX);
        let mut r = Reader::new(&buf);
        for n in nums {
            assert_eq!(r.varint(), Ok(n));
        }
        assert_eq!(r.uvarint(), Ok(u64::MAX));
        assert!(r.is_empty());
        assert_eq!(r.uvarint(), Err(Truncated));
        assert_eq!(Reader::new(&[0x80, 0x80]).uvarint(), Err(Truncated));
    }
}
