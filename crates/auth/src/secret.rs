//! Opaque secrets: API tokens and session ids, and how they are stored (only as hashes).
//!
//! A token is `tt_` + 40 base62 characters of randomness (238 bits) + 6 base62 characters of
//! its CRC-32 (GitHub's token scheme): the prefix lets secret scanners and people recognise
//! it, and the checksum lets a typo be refused without a lookup. The store keeps the SHA-256
//! of each token, never the token; a fast hash is enough for 238 random bits.

use sha2::{Digest, Sha256};

/// The prefix of every API token.
pub const TOKEN_PREFIX: &str = "tt_";
const RANDOM_CHARS: usize = 40;
const CHECK_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b
}

fn base62(mut v: u64, width: usize, out: &mut String) {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    out.push_str(std::str::from_utf8(&digits).expect("ascii"));
}

/// A new API token.
pub fn new_token() -> String {
    let mut s = String::with_capacity(TOKEN_PREFIX.len() + RANDOM_CHARS + CHECK_CHARS);
    s.push_str(TOKEN_PREFIX);
    // Rejection sampling keeps every character uniform.
    while s.len() < TOKEN_PREFIX.len() + RANDOM_CHARS {
        for b in random_bytes::<64>() {
            if b < 248 && s.len() < TOKEN_PREFIX.len() + RANDOM_CHARS {
                s.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    let crc = crc32fast::hash(s.as_bytes());
    base62(u64::from(crc), CHECK_CHARS, &mut s);
    s
}

/// Whether `s` is shaped like a token and its checksum matches (a typo fails here).
pub fn is_token(s: &str) -> bool {
    let Some(body) = s.strip_prefix(TOKEN_PREFIX) else { return false };
    if body.len() != RANDOM_CHARS + CHECK_CHARS || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, check) = s.split_at(s.len() - CHECK_CHARS);
    let mut want = String::new();
    base62(u64::from(crc32fast::hash(head.as_bytes())), CHECK_CHARS, &mut want);
    want == check
}

/// The SHA-256 of a secret, in hex: what the store keeps.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session id or CSRF token: 32 random bytes in hex.
pub fn new_session_secret() -> String {
    hex(&random_bytes::<32>())
}

/// A short random id (for tokens and audit references), 8 hex digits.
pub fn new_id() -> String {
    hex(&random_bytes::<4>())
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_a_checksum() {
        let t = new_token();
        assert!(t.starts_with("tt_") && t.len() == 3 + 46, "{t}");
        assert!(is_token(&t));
        let mut typo = t.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!is_token(std::str::from_utf8(&typo).unwrap()));
        assert!(!is_token("tt_short"));
        assert!(!is_token("password"));
        assert_ne!(new_token(), t);
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"diff"));
        assert!(!constant_time_eq(b"same", b"samer"));
    }
}
