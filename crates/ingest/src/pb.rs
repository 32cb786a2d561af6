//! A minimal protobuf wire-format reader that borrows from the input buffer.
//!
//! Hand-written instead of generated so that strings come out as `&str` slices of the
//! decompressed body (no per-label allocation) and unknown fields are skipped without
//! building anything. Wire format: <https://protobuf.dev/programming-guides/encoding/>.

use crate::error::{Error, Result};

/// Wire type of a varint field (int32, int64, uint32, bool, enum).
pub(crate) const VARINT: u8 = 0;
/// Wire type of a fixed 64-bit field (double, fixed64).
pub(crate) const I64: u8 = 1;
/// Wire type of a length-delimited field (string, bytes, message, packed repeated).
pub(crate) const LEN: u8 = 2;
/// Wire type of a fixed 32-bit field (float, fixed32).
pub(crate) const I32: u8 = 5;

/// A cursor over one message. `base` is the message's offset in the whole body, so error
/// offsets point into what the client sent (after decompression).
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, base: 0 }
    }

    #[inline]
    pub(crate) fn has_more(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// The unread bytes.
    #[inline]
    pub(crate) fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The absolute offset of the cursor.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[cold]
    pub(crate) fn err(&self, reason: &'static str) -> Error {
        Error::Protobuf { offset: self.offset(), reason }
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64> {
        // Fast path: one-byte varints (tags, small lengths) are the vast majority.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos + i) else {
                return Err(self.err("truncated varint"));
            };
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// Reads a field key: (field number, wire type).
    #[inline]
    pub(crate) fn key(&mut self) -> Result<(u32, u8)> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.err("invalid field number"));
        }
        Ok((field as u32, (k & 7) as u8))
    }

    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64> {
        let Some(b) = self.buf.get(self.pos..self.pos + 8) else {
            return Err(self.err("truncated fixed64"));
        };
        self.pos += 8;
        Ok(u64::from_le_bytes(b.try_into().expect("slice of 8")))
    }

    /// Reads a length-delimited payload.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let at = self.offset();
        let len = self.varint()?;
        let rest = self.buf.len() - self.pos;
        if len > rest as u64 {
            return Err(Error::Protobuf { offset: at, reason: "length past end of message" });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// Reads a length-delimited embedded message.
    #[inline]
    pub(crate) fn message(&mut self) -> Result<Reader<'a>> {
        let b = self.bytes()?;
        let start = self.pos - b.len();
        Ok(Reader { buf: b, pos: 0, base: self.base + start })
    }

    /// Reads a string, checking UTF-8 as proto3 requires.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let at = self.offset();
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| Error::Protobuf { offset: at, reason: "string is not valid utf-8" })
    }

    /// Skips a field's value of wire type `wire`.
    pub(crate) fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            I32 => {
                if self.buf.len() - self.pos < 4 {
                    return Err(self.err("truncated fixed32"));
                }
                self.pos += 4;
                Ok(())
            }
            3 | 4 => Err(self.err("groups are not supported")),
            _ => Err(self.err("invalid wire type")),
        }
    }

    /// Fails unless `wire` is `want`: a known field sent with another wire type means the
    /// sender speaks another schema.
    #[inline]
    pub(crate) fn expect(&self, wire: u8, want: u8) -> Result<()> {
        if wire == want {
            Ok(())
        } else {
            Err(self.err("unexpected wire type for a known field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut r = Reader::new(&[0x96, 0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(r.varint().unwrap(), 150);
        assert_eq!(r.varint().unwrap(), 5);
        assert_eq!(r.varint().unwrap(), u64::MAX);
        assert!(!r.has_more());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 10]).varint().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).varint().is_err());
    }

    #[test]
    fn nested_offsets_point_into_the_body() {
        // field 1 LEN 3 { field 2 LEN 5 (truncated) }
        let body = [0x0a, 0x03, 0x12, 0x05, 0x61];
        let mut r = Reader::new(&body);
        assert_eq!(r.key().unwrap(), (1, LEN));
        let mut m = r.message().unwrap();
        assert_eq!(m.key().unwrap(), (2, LEN));
        let e = m.str().unwrap_err();
        assert_eq!(e.to_string(), "invalid protobuf at byte 3: length past end of message");
    }

    #[test]
    fn rejects_bad_utf8_and_groups() {
        let mut r = Reader::new(&[0x02, 0xc3, 0x28]);
        assert!(r.str().unwrap_err().to_string().contains("utf-8"));
        assert!(Reader::new(&[]).skip(3).is_err());
        assert!(Reader::new(&[]).skip(7).is_err());
    }
}
