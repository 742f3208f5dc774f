//! Stream keys and playback tokens: Ed25519-signed, verified without a round trip.
//!
//! A stream key looks like `<channel>.<key_id>.<sig>`, where `sig` is the URL-safe base64
//! Ed25519 signature of `weir/stream-key/v2:<channel>:<key_id>`. A playback token is the
//! query string `exp=<unix seconds>&sig=<signature of weir/playback/v2:<channel>:<exp>>`.
//!
//! Signing and verifying are split on purpose: the control plane (or an all-in-one node)
//! holds a [`KeySigner`], built from the signing secret; a data-plane node holds only a
//! [`KeyVerifier`] (the public key), so a compromised edge checks keys but cannot mint one
//! for any channel. Revocation is by `key_id` (see [`Revocations`]). A full key is a
//! secret: log [`StreamKey::redacted`] only.

mod playback;
mod revocations;
mod signer;

pub use revocations::Revocations;
pub use signer::{KeySigner, KeyVerifier, PUBLIC_KEY_LEN};

/// Longest channel name accepted.
pub const MAX_CHANNEL_LEN: usize = 64;

/// Why a key or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not `<channel>.<key_id>.<sig>`.
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
    /// A public key that is not 32 bytes of a valid Ed25519 point.
    #[error("not an Ed25519 public key (want 64 hex characters)")]
    BadPublicKey,
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
