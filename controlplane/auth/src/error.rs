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
    /// Too many failed logins for this account (from any address): wait `retry_after`.
    #[error("too many failed logins for this account: try again in {} s", whole_secs(*retry_after))]
    TooManyAttempts {
        /// How long until the next attempt is accepted.
        retry_after: std::time::Duration,
    },
    /// Every password worker is busy and the queue is full: try again shortly.
    #[error("the server is busy checking passwords: try again in a few seconds")]
    Busy,
    /// The access token's session was ended (logout, or refresh-token reuse).
    #[error("session revoked: log in again")]
    SessionRevoked,
    /// Password hashing failed.
    #[error("password hashing failed")]
    Hash,
    /// Storage failed (or refused the input).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `d` in whole seconds, rounded up (at least 1): what a client should wait.
pub fn whole_secs(d: std::time::Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// Result alias.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
