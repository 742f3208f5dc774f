//! Stream keys: HMAC-signed tokens that name the channel they publish to.
//!
//! A key looks like `<channel>.<key_id>.<mac>` where `mac` is the URL-safe base64
//! HMAC-SHA256 of `weir/stream-key/v1:<channel>:<key_id>` under the node's secret. Any
//! node holding the secret checks a key without a round trip; revocation is by `key_id`
//! (see [`Revocations`]). The full key is a secret: log [`StreamKey::redacted`] only.

mod revocations;

pub use revocations::Revocations;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest channel name accepted.
pub const MAX_CHANNEL_LEN: usize = 64;
const DOMAIN: &str = "weir/stream-key/v1";
const KEY_ID_BYTES: usize = 9;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not `<channel>.<key_id>.<mac>`.
    #[error("stream key is malformed")]
    Malformed,
    /// The channel name has characters outside `[A-Za-z0-9_-]` or is too long.
    #[error("invalid channel name (use 1-64 of A-Z a-z 0-9 _ -)")]
    InvalidChannel,
    /// The signature does not match: a wrong or forged key.
    #[error("stream key signature does not match")]
    BadSignature,
    /// The key was revoked.
    #[error("stream key has been revoked")]
    Revoked,
    /// A signed playback URL is past its expiry.
    #[error("playback URL has expired")]
    Expired,
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// A verified stream key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    /// The channel this key publishes to.
    pub channel: String,
    /// The key's identifier, used for revocation; not secret.
    pub key_id: String,
}

impl StreamKey {
    /// A form safe for logs: channel and key id, never the signature.
    pub fn redacted(&self) -> String {
        format!("{}.{}.***", self.channel, self.key_id)
    }
}

/// Issues and verifies keys with one secret.
#[derive(Clone)]
pub struct KeySigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySigner { secret: *** }")
    }
}

/// True when `name` is a valid channel name.
pub fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Fills a buffer from the OS random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Random(e.to_string()))
}

impl KeySigner {
    /// A signer with this secret (at least 32 random bytes recommended).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// A new random 32-byte secret.
    pub fn generate_secret() -> Result<Vec<u8>, KeyError> {
        let mut s = vec![0u8; 32];
        random_bytes(&mut s)?;
        Ok(s)
    }

    fn mac(&self, channel: &str, key_id: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(DOMAIN.as_bytes());
        mac.update(b":");
        mac.update(channel.as_bytes());
        mac.update(b":");
        mac.update(key_id.as_bytes());
        mac
    }

    /// Issues a new key for `channel`; returns the full key and its id.
    pub fn issue(&self, channel: &str) -> Result<(String, StreamKey), KeyError> {
        if !valid_channel(channel) {
            return Err(KeyError::InvalidChannel);
        }
        let mut id = [0u8; KEY_ID_BYTES];
        random_bytes(&mut id)?;
        let key_id = URL_SAFE_NO_PAD.encode(id).replace(['-', '_'], "x");
        let sig = URL_SAFE_NO_PAD.encode(self.mac(channel, &key_id).finalize().into_bytes());
        let key = StreamKey {
            channel: channel.to_owned(),
            key_id,
        };
        Ok((format!("{}.{}.{}", key.channel, key.key_id, sig), key))
    }

    /// Checks a key's form and signature (not revocation: see [`Revocations`]).
    pub fn verify(&self, key: &str) -> Result<StreamKey, KeyError> {
        if key.len() > 256 {
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
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| KeyError::BadSignature)?;
        self.mac(channel, key_id)
            .verify_slice(&sig)
            .map_err(|_| KeyError::BadSignature)?;
        Ok(StreamKey {
            channel: channel.to_owned(),
            key_id: key_id.to_owned(),
        })
    }
}

const PLAYBACK_DOMAIN: &str = "weir/playback/v1";

impl KeySigner {
    fn playback_mac(&self, channel: &str, expires_at: u64) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(PLAYBACK_DOMAIN.as_bytes());
        mac.update(b":");
        mac.update(channel.as_bytes());
        mac.update(b":");
        mac.update(expires_at.to_string().as_bytes());
        mac
    }

    /// The query string (`exp=…&sig=…`) that lets a player open `channel`'s playlists
    /// until `expires_at` (UNIX seconds).
    pub fn sign_playback(&self, channel: &str, expires_at: u64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(
            self.playback_mac(channel, expires_at)
                .finalize()
                .into_bytes(),
        );
        format!("exp={expires_at}&sig={sig}")
    }

    /// Checks the `exp` and `sig` parameters of a playback request's query string.
    pub fn verify_playback(&self, channel: &str, query: &str, now: u64) -> Result<(), KeyError> {
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let exp: u64 = param("exp")
            .and_then(|v| v.parse().ok())
            .ok_or(KeyError::Malformed)?;
        let sig = param("sig").ok_or(KeyError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| KeyError::BadSignature)?;
        self.playback_mac(channel, exp)
            .verify_slice(&sig)
            .map_err(|_| KeyError::BadSignature)?;
        if now > exp {
            return Err(KeyError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_verify_and_name_their_channel() {
        let s = KeySigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let (key, meta) = s.issue("my-show").expect("issue");
        let got = s.verify(&key).expect("verify");
        assert_eq!(got, meta);
        assert_eq!(got.channel, "my-show");
        assert!(
            !got.redacted()
                .contains(key.rsplit('.').next().expect("sig"))
        );
    }

    #[test]
    fn signed_playback_urls_verify_until_they_expire() {
        let s = KeySigner::new(b"secret".to_vec());
        let q = s.sign_playback("show", 1000);
        assert_eq!(s.verify_playback("show", &format!("s=1&{q}"), 999), Ok(()));
        assert_eq!(s.verify_playback("show", &q, 1001), Err(KeyError::Expired));
        assert_eq!(
            s.verify_playback("other", &q, 999),
            Err(KeyError::BadSignature)
        );
        let longer = q.replace("exp=1000", "exp=9999");
        assert_eq!(
            s.verify_playback("show", &longer, 999),
            Err(KeyError::BadSignature)
        );
        assert_eq!(s.verify_playback("show", "", 0), Err(KeyError::Malformed));
    }

    #[test]
    fn forged_wrong_and_malformed_keys_are_refused() {
        let s = KeySigner::new(b"secret-one".to_vec());
        let other = KeySigner::new(b"secret-two".to_vec());
        let (key, _) = s.issue("chan").expect("issue");
        assert_eq!(other.verify(&key), Err(KeyError::BadSignature));
        let forged = key.replacen("chan", "chan2", 1);
        assert_eq!(s.verify(&forged), Err(KeyError::BadSignature));
        assert_eq!(s.verify("nonsense"), Err(KeyError::Malformed));
        assert_eq!(s.verify("a.b.c.d"), Err(KeyError::Malformed));
        assert_eq!(s.verify("bad chan.id.sig"), Err(KeyError::InvalidChannel));
        assert_eq!(s.verify("chan.id.!!!"), Err(KeyError::BadSignature));
        assert!(s.issue("no/slash").is_err());
    }
}
