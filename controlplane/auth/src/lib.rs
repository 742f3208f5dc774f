//! Accounts, passwords, tokens and roles.
//!
//! - Passwords: argon2id PHC strings ([`password`]), hashed on the blocking pool.
//! - Access tokens: short-lived HS256 JWTs ([`JwtKeys`]) carrying user id, username, role.
//! - Refresh tokens: opaque random strings, stored only as SHA-256, rotated on every use;
//!   presenting a spent one revokes its whole family (every token descended from that
//!   login) — see [`Auth::refresh`].
//! - Roles: admin / owner / moderator / guest / viewer ([`Role`]); [`roles`] maps them to
//!   [`Permission`]s, globally and per channel, with [`check_channel`] / [`check_global`].

mod error;
mod jwt;
pub mod password;
pub mod roles;
mod service;

pub use error::{AuthError, Result};
pub use jwt::{Claims, JwtKeys};
pub use password::PasswordParams;
pub use roles::{Denied, Permission, Principal, allows, channel_role, check_channel, check_global};
pub use service::{Auth, AuthConfig, TokenPair, hash_refresh_token};
pub use weir_store::Role;
