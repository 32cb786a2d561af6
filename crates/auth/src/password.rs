//! Passwords of local users: Argon2id (RFC 9106) in PHC string form, with the `argon2` crate's
//! default cost (19 MiB, 2 passes; OWASP's minimum), so a stolen store is slow to attack.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{Error, Result};

/// The shortest password accepted (NIST SP 800-63B's minimum).
pub const MIN_LENGTH: usize = 8;

/// Hashes `password`, refusing one shorter than [`MIN_LENGTH`].
pub fn hash(password: &str) -> Result<String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Error::config("password", format!("must be at least {MIN_LENGTH} characters")));
    }
    let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>()).expect("16 bytes encode");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::config("password", format!("cannot hash: {e}")))
}

/// Whether `password` matches the PHC string `phc`. Takes tens of milliseconds: call it off the
/// async runtime.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of a password nobody has, checked once to learn how long a check takes.
pub(crate) fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&crate::secret::new_session_secret()).expect("hash a random password"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn argon2id_round_trip() {
        let h = super::hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(super::verify("correct horse battery", &h));
        assert!(!super::verify("wrong horse battery", &h));
        assert!(!super::verify("x", "not a hash"));
        assert!(super::hash("short").is_err());
    }
}
