//! Errors of the gateway's operations, each with its protocol [`Code`].

use crate::protocol::Code;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] weir_store::StoreError),
    /// A stored record could not be read back.
    #[error("stored chat record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// No valid token, or it expired, or the account is not active.
    #[error("{1}")]
    Auth(Code, String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown channel, user or message.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// Too many requests from this address: retry after this many ms.
    #[error("too many connections, slow down")]
    RateLimited(u64),
}

impl ChatError {
    /// The protocol code.
    pub fn code(&self) -> Code {
        match self {
            ChatError::Store(weir_store::StoreError::Invalid(_)) => Code::BadRequest,
            ChatError::Store(weir_store::StoreError::NotFound(_)) => Code::NotFound,
            ChatError::Store(_) => Code::Unavailable,
            ChatError::Corrupt(_) => Code::Internal,
            ChatError::Auth(c, _) => *c,
            ChatError::Forbidden(_) => Code::Forbidden,
            ChatError::NotFound(_) => Code::NotFound,
            ChatError::BadRequest(_) => Code::BadRequest,
            ChatError::RateLimited(_) => Code::RateLimited,
        }
    }

    /// The message shown to clients (storage details stay in the logs).
    pub fn public_message(&self) -> String {
        match self {
            ChatError::Store(
                e @ (weir_store::StoreError::Invalid(_) | weir_store::StoreError::NotFound(_)),
            ) => e.to_string(),
            ChatError::Store(_) => "chat storage is unavailable, try again".into(),
            ChatError::Corrupt(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

/// Results of the gateway.
pub type Result<T, E = ChatError> = std::result::Result<T, E>;
