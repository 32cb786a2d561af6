//! Base64 as protocols carry it: standard (`Authorization: Basic`, proto3 JSON bytes) and
//! URL-safe without padding (JWTs, PKCE). Either alphabet and optional padding on decoding.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Decodes standard or URL-safe base64 (either alphabet); `None` if it is not base64.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

fn encode_with(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            for _ in c.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    encode_with(bytes, STD, true)
}

/// URL-safe base64 without padding (RFC 7515's `base64url`).
pub fn encode_url(bytes: &[u8]) -> String {
    encode_with(bytes, URL, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_both_alphabets() {
        for n in 0..20 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 250) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
            assert_eq!(decode(&encode_url(&bytes)).unwrap(), bytes);
        }
        assert_eq!(decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(encode(b"a"), "YQ==");
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
        assert!(decode("not base64!").is_none());
    }
}
