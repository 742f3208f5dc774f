//! The signing half (control plane) and the verifying half (every node) of stream keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::{KeyError, StreamKey, random_bytes, valid_channel};

/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
const STREAM_KEY_DOMAIN: &str = "weir/stream-key/v2";
const SEED_DOMAIN: &[u8] = b"weir/stream-key/seed/v2:";
const KEY_ID_BYTES: usize = 9;
/// Longest key accepted before any parsing (a channel, an id, a signature and two dots).
const MAX_KEY_LEN: usize = 256;

/// Checks stream keys and playback tokens with the public key only: what a data-plane node
/// holds. It cannot create a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVerifier {
    key: VerifyingKey,
}

/// Issues stream keys and signs playback tokens (and verifies them). Built from the signing
/// secret, which only the control plane (or an all-in-one node) holds.
#[derive(Clone)]
pub struct KeySigner {
    key: SigningKey,
    verifier: KeyVerifier,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySigner {{ public: {}, secret: *** }}",
            self.verifier.to_hex()
        )
    }
}

impl KeySigner {
    /// A signer derived from `secret` (at least 32 random bytes recommended): the Ed25519
    /// seed is SHA-256 of the secret under a domain tag, so any secret length works and the
    /// same secret gives the same key on every control plane.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let mut h = Sha256::new();
        h.update(SEED_DOMAIN);
        h.update(secret.as_ref());
        let key = SigningKey::from_bytes(&h.finalize().into());
        let verifier = KeyVerifier {
            key: key.verifying_key(),
        };
        Self { key, verifier }
    }

    /// A new random 32-byte secret.
    pub fn generate_secret() -> Result<Vec<u8>, KeyError> {
        let mut s = vec![0u8; 32];
        random_bytes(&mut s)?;
        Ok(s)
    }

    /// The verifying half: what data-plane nodes are given.
    pub fn verifier(&self) -> &KeyVerifier {
        &self.verifier
    }

    pub(crate) fn sign(&self, message: &str) -> String {
        use ed25519_dalek::Signer as _;
        URL_SAFE_NO_PAD.encode(self.key.sign(message.as_bytes()).to_bytes())
    }

    /// Issues a new key for `channel`; returns the full key and its id.
    pub fn issue(&self, channel: &str) -> Result<(String, StreamKey), KeyError> {
        if !valid_channel(channel) {
            return Err(KeyError::InvalidChannel);
        }
        let mut id = [0u8; KEY_ID_BYTES];
        random_bytes(&mut id)?;
        let key_id = URL_SAFE_NO_PAD.encode(id).replace(['-', '_'], "x");
        let sig = self.sign(&stream_key_message(channel, &key_id));
        let key = StreamKey {
            channel: channel.to_owned(),
            key_id,
        };
        Ok((format!("{}.{}.{}", key.channel, key.key_id, sig), key))
    }

    /// Checks a key's form and signature (not revocation: see [`crate::Revocations`]).
    pub fn verify(&self, key: &str) -> Result<StreamKey, KeyError> {
        self.verifier.verify(key)
    }
}

fn stream_key_message(channel: &str, key_id: &str) -> String {
    format!("{STREAM_KEY_DOMAIN}:{channel}:{key_id}")
}

impl KeyVerifier {
    /// A verifier for this public key (32 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: &[u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::BadPublicKey)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::BadPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        Ok(Self { key })
    }

    /// A verifier from the public key in hex (as `weir key public` prints it).
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let hex = hex.trim();
        if hex.len() != 2 * PUBLIC_KEY_LEN || !hex.is_ascii() {
            return Err(KeyError::BadPublicKey);
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| KeyError::BadPublicKey)?;
        Self::from_bytes(&bytes)
    }

    /// The public key in hex.
    pub fn to_hex(&self) -> String {
        self.key
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Checks `sig` (URL-safe base64) over `message`; strict: no malleable signatures.
    pub(crate) fn check(&self, message: &str, sig: &str) -> Result<(), KeyError> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| KeyError::BadSignature)?;
        let sig = Signature::from_slice(&sig).map_err(|_| KeyError::BadSignature)?;
        self.key
            .verify_strict(message.as_bytes(), &sig)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Checks a key's form and signature (not revocation: see [`crate::Revocations`]).
    pub fn verify(&self, key: &str) -> Result<StreamKey, KeyError> {
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::Malformed);
        }
        let mut parts = key.split('.');
        let (Some(channel), Some(key_id), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Malformed);
        };
        if !valid_channel(channel) {
            return Err(KeyError::InvalidChannel);
        }
        if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyError::Malformed);
        }
        self.check(&stream_key_message(channel, key_id), sig)?;
        Ok(StreamKey {
            channel: channel.to_owned(),
            key_id: key_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_verify_with_the_public_key_alone() {
        let s = KeySigner::new(b"0123456789abcdef0123456789abcdef");
        let (key, meta) = s.issue("my-show").expect("issue");
        let edge = KeyVerifier::from_hex(&s.verifier().to_hex()).expect("public key");
        let got = edge.verify(&key).expect("verify");
        assert_eq!(got, meta);
        assert_eq!(got.channel, "my-show");
        assert!(key.len() < MAX_KEY_LEN, "{}", key.len());
        assert!(
            !got.redacted()
                .contains(key.rsplit('.').next().expect("sig"))
        );
        assert!(!format!("{s:?}").contains("0123"));
    }

    #[test]
    fn the_same_secret_gives_the_same_public_key() {
        let a = KeySigner::new(b"secret");
        let b = KeySigner::new(b"secret");
        assert_eq!(a.verifier(), b.verifier());
        assert_ne!(a.verifier(), KeySigner::new(b"secret2").verifier());
    }

    #[test]
    fn forged_wrong_and_malformed_keys_are_refused() {
        let s = KeySigner::new(b"secret-one");
        let other = KeySigner::new(b"secret-two");
        let (key, _) = s.issue("chan").expect("issue");
        assert_eq!(other.verify(&key), Err(KeyError::BadSignature));
        let forged = key.replacen("chan", "chan2", 1);
        assert_eq!(s.verify(&forged), Err(KeyError::BadSignature));
        assert_eq!(s.verify("nonsense"), Err(KeyError::Malformed));
        assert_eq!(s.verify("a.b.c.d"), Err(KeyError::Malformed));
        assert_eq!(s.verify("bad chan.id.sig"), Err(KeyError::InvalidChannel));
        assert_eq!(s.verify("chan.id.!!!"), Err(KeyError::BadSignature));
        assert_eq!(s.verify("chan.id.AAAA"), Err(KeyError::BadSignature));
        assert_eq!(s.verify(&"x".repeat(300)), Err(KeyError::Malformed));
        assert!(s.issue("no/slash").is_err());
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert_eq!(KeyVerifier::from_hex("00"), Err(KeyError::BadPublicKey));
        assert_eq!(
            KeyVerifier::from_hex(&"zz".repeat(32)),
            Err(KeyError::BadPublicKey)
        );
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            KeyVerifier::from_bytes(&identity),
            Err(KeyError::BadPublicKey)
        );
    }
}
