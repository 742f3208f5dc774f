//! Accounts, passwords, tokens and roles.
//!
//! - Passwords: argon2id PHC strings ([`password`]), hashed on a bounded pool of blocking
//!   threads with a bounded queue ([`HashPool`]): when it is full, [`AuthError::Busy`].
//! - Logins: failures are throttled per account whatever the source address
//!   ([`throttle`]), with [`AuthError::TooManyAttempts`].
//! - Access tokens: short-lived HS256 JWTs ([`JwtKeys`]) carrying user id, username, role.
//! - Refresh tokens: opaque random strings, stored only as SHA-256, rotated on every use;
//!   presenting a spent one revokes its whole family (every token descended from that
//!   login) — see [`Auth::refresh`]. Access tokens carry their family as `sid`, so a
//!   revoked session's access tokens can be refused too ([`Auth::is_session_revoked`]).
//! - Roles: admin / owner / moderator / guest / viewer ([`Role`]); [`roles`] maps them to
//!   [`Permission`]s, globally and per channel, with [`check_channel`] / [`check_global`].

mod error;
mod jwt;
pub mod password;
pub mod roles;
mod service;
pub mod throttle;

pub use error::{AuthError, Result, whole_secs};
pub use jwt::{Claims, JwtKeys};
pub use password::{HashPool, PasswordParams, PoolConfig};
pub use roles::{Denied, Permission, Principal, allows, channel_role, check_channel, check_global};
pub use service::{Auth, AuthConfig, TokenPair, hash_refresh_token};
pub use throttle::ThrottleConfig;
pub use weir_store::Role;
