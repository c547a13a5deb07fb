//! Capability tokens (status, verification and reveal links) and one-time codes. Tokens are
//! 256 bits and only their SHA-256 is stored: a copy of the database cannot be used to open
//! anyone's link. Codes are six digits, so a plain hash of one is found by trying all million:
//! their stored form is an HMAC with a key kept outside the database ([`CodeKey`], from
//! `CODE_KEY_FILE`), bound to what the code is for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// A new 256-bit token (URL-safe) and its hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The hash stored for a token or code.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The key of one-time codes' stored form. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct CodeKey(std::sync::Arc<ring::hmac::Key>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey([key])")
    }
}

impl CodeKey {
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        Self(std::sync::Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            key,
        )))
    }

    /// A fresh random key (tests, and portals whose codes need not outlive the process).
    pub fn ephemeral() -> Self {
        Self::from_bytes(&crate::keys::random())
    }

    /// The key in `path`, generated there (mode 0600) when the file is absent.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, crate::keys::KeyFileError> {
        crate::keys::load_or_create(path).map(|key| Self::from_bytes(&key))
    }

    /// The stored form of `code` for `purpose` (e.g. `verify:<request id>`,
    /// `reveal:<link id>`): a code for one thing never matches another's.
    pub fn hash(&self, purpose: &str, code: &str) -> String {
        let message = format!("portcullis-code/1\n{purpose}\n{code}");
        hex::encode(ring::hmac::sign(&self.0, message.as_bytes()).as_ref())
    }
}

/// A six-digit code, as mailed.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Compares in time independent of where the strings differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a string could be one of our tokens (43 URL-safe characters).
pub fn looks_like_token(raw: &str) -> bool {
    raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(looks_like_token(&a));
        assert_eq!(hash(&a), ha);
        assert_ne!(ha, a);
        let code = new_code();
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn code_hashes_need_the_key_and_are_bound_to_their_purpose() {
        let key = CodeKey::ephemeral();
        let stored = key.hash("verify:r1", "123456");
        assert_eq!(stored, key.hash("verify:r1", "123456"));
        assert_ne!(stored, key.hash("verify:r2", "123456"));
        assert_ne!(stored, key.hash("verify:r1", "123457"));
        assert_ne!(stored, CodeKey::ephemeral().hash("verify:r1", "123456"));
        assert_ne!(stored, hash("123456"));
        assert!(!format!("{key:?}").contains(&stored[..8]));
    }
}
