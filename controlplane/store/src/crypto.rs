//! Encryption at rest for secrets (destination stream keys): ChaCha20-Poly1305.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{Result, StoreError};
use crate::ids::random_bytes;

/// A 256-bit key that seals and opens secrets. Build it from configuration.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From 32 raw key bytes.
    pub fn new(key: [u8; 32]) -> Self {
        let key = Key::from(key);
        Self {
            cipher: ChaCha20Poly1305::new(&key),
        }
    }

    /// From a base64 (standard, padding optional) string holding 32 bytes, as found in
    /// configuration files.
    pub fn from_base64(text: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .or_else(|_| B64.decode(text.trim()))
            .map_err(|_| StoreError::Invalid("secret key is not base64".into()))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| StoreError::Invalid("secret key must be 32 bytes".into()))?;
        Ok(Self::new(key))
    }

    /// A fresh random key (tests, first start).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        random_bytes(&mut key);
        Self::new(key)
    }

    /// Encrypts `plain` with a random nonce; the result is `base64(nonce || ciphertext)`.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .map_err(|_| StoreError::Crypto("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    /// Decrypts what [`SecretBox::seal`] produced.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let raw = B64
            .decode(sealed)
            .map_err(|_| StoreError::Crypto("sealed secret is not base64"))?;
        if raw.len() < 12 + 16 {
            return Err(StoreError::Crypto("sealed secret too short"));
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| StoreError::Crypto("bad nonce"))?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| StoreError::Crypto("decryption failed (wrong key or tampered)"))?;
        String::from_utf8(plain).map_err(|_| StoreError::Crypto("secret is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let b = SecretBox::generate();
        let s = b.seal("live_123_secret").expect("seal");
        assert!(!s.contains("live_123"));
        assert_eq!(b.open(&s).expect("open"), "live_123_secret");
        let other = SecretBox::generate();
        assert!(other.open(&s).is_err());
        assert!(b.open("AAAA").is_err());
    }

    #[test]
    fn key_from_base64() {
        let k = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(SecretBox::from_base64(&k).is_ok());
        assert!(SecretBox::from_base64("short").is_err());
    }
}
