//! Authentication errors.

use weir_store::StoreError;

/// Why an authentication step failed. Messages are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown login or wrong password (deliberately not told apart).
    #[error("invalid login or password")]
    InvalidCredentials,
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// The password does not meet the policy.
    #[error("password must be 10 to 256 characters")]
    WeakPassword,
    /// The access token is malformed, forged or for another issuer.
    #[error("invalid access token")]
    InvalidToken,
    /// The access token expired.
    #[error("access token expired")]
    ExpiredToken,
    /// The refresh token is unknown, expired or revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The refresh token had already been used: its whole family is now revoked.
    #[error("refresh token reuse detected: all sessions of this login were revoked")]
    RefreshReplayed,
    /// Password hashing failed.
    #[error("password hashing failed")]
    Hash,
    /// Storage failed (or refused the input).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result alias.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
