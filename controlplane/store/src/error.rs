//! Errors returned by stores and backends.

/// A storage error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness constraint or a state precondition failed (e.g. a taken username,
    /// an illegal stream state transition, a concurrent update).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed a value the store refuses (bad id characters, empty names…).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Encryption or decryption of a secret failed (wrong key, corrupted record).
    #[error("crypto error: {0}")]
    Crypto(&'static str),
    /// A stored record could not be decoded.
    #[error("corrupt record in {bucket}: {source}")]
    Corrupt {
        /// The bucket holding the record.
        bucket: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The backend (redb, etcd, Scylla) failed.
    #[error("{backend} backend error: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it said.
        message: String,
    },
}

/// Result alias for storage operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(backend: &'static str, err: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            backend,
            message: err.to_string(),
        }
    }
}
