//! Request bodies: read with a size limit, then (for protocols that allow it) decompress
//! with the same limit on the decompressed size, so a gzip bomb costs at most
//! `max_body_size` bytes of memory and gets a 413.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::BodyExt;
use telltale_model::units::format_size;
use telltale_model::ErrorKind;

use crate::ApiError;

/// A body's `Content-Encoding`, among those we decode ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    /// HTTP's "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2); raw deflate is accepted too.
    Deflate,
}

/// The encoding named by the headers, or 400 for one we do not support.
pub(crate) fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => {
            Err(ApiError::bad_input(format!("unsupported content-encoding {other:?}; send gzip, deflate or none")))
        }
    }
}

fn too_large(what: &str, limit: u64) -> ApiError {
    ApiError::new(ErrorKind::TooLarge, format!("{what} exceeds server.max_body_size ({})", format_size(limit)))
}

/// Reads the whole body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large("request body", limit));
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large("request body", limit)),
        Err(e) => Err(ApiError::bad_input(format!("cannot read request body: {e}"))),
    }
}

/// Decompresses `raw` per `encoding`, refusing output over `limit` bytes. Synchronous:
/// call it on the blocking pool with the decoder.
pub(crate) fn decompress(encoding: Encoding, raw: Bytes, limit: u64) -> Result<Bytes, ApiError> {
    let cap = usize::try_from(limit).unwrap_or(usize::MAX).min(raw.len().saturating_mul(4));
    let mut out = Vec::with_capacity(cap);
    let read = |r: &mut dyn Read, out: &mut Vec<u8>, name: &str| -> Result<(), ApiError> {
        r.take(limit.saturating_add(1))
            .read_to_end(out)
            .map_err(|e| ApiError::bad_input(format!("invalid {name} body: {e}")))?;
        if out.len() as u64 > limit {
            return Err(too_large("decompressed request body", limit));
        }
        Ok(())
    };
    match encoding {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => read(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out, "gzip")?,
        Encoding::Deflate if is_zlib(&raw) => read(&mut flate2::read::ZlibDecoder::new(&raw[..]), &mut out, "deflate")?,
        Encoding::Deflate => read(&mut flate2::read::DeflateDecoder::new(&raw[..]), &mut out, "deflate")?,
    }
    Ok(Bytes::from(out))
}

fn is_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let data = b"cpu,host=a usage=1 1\n".repeat(10);
        assert_eq!(decompress(Encoding::Gzip, gzip(&data), 1 << 20).unwrap(), data);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&data).unwrap();
        assert_eq!(decompress(Encoding::Deflate, Bytes::from(z.finish().unwrap()), 1 << 20).unwrap(), data);
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(&data).unwrap();
        assert_eq!(decompress(Encoding::Deflate, Bytes::from(d.finish().unwrap()), 1 << 20).unwrap(), data);
    }

    #[test]
    fn bombs_are_too_large() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 100 << 10);
        let e = decompress(Encoding::Gzip, bomb, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(e.message(), "decompressed request body exceeds server.max_body_size (1MiB)");
    }

    #[test]
    fn garbage_is_bad_input() {
        let e = decompress(Encoding::Gzip, Bytes::from_static(b"not gzip"), 1 << 20).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().starts_with("invalid gzip body"), "{}", e.message());
    }

    #[test]
    fn unknown_encodings_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(content_encoding(&h).is_err());
        h.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(content_encoding(&h).unwrap(), Encoding::Gzip);
    }
}
