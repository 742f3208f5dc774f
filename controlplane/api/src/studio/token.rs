//! The studio's signed tokens: invitations (`wsi1.…`, what an invitation link carries)
//! and participant tokens (`wsp1.…`, what a guest who joined sends as its bearer token).
//!
//! `<kind>.<id a>.<id b>.<expiry, Unix seconds>.<mac>`, the MAC being HMAC-SHA256 over
//! everything before it under a key derived from the control plane's JWT secret
//! ([`weir_auth::Auth::derive_key`]), URL-safe base64 without padding. An invitation
//! names its broadcast and its nonce (the store's invitation id, which can be revoked); a
//! participant token names the participant and its broadcast. The signature and expiry
//! are checked here; revocation, removal and the broadcast's end by the callers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest token accepted.
const MAX_TOKEN_LEN: usize = 256;

/// Which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An invitation: (broadcast id, invitation id).
    Invitation,
    /// A participant: (participant id, broadcast id).
    Participant,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Invitation => "wsi1",
            Kind::Participant => "wsp1",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Kind::Invitation => "studio invitation v1",
            Kind::Participant => "studio participant v1",
        }
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token's shape.
    #[error("malformed")]
    Malformed,
    /// Forged or tampered with.
    #[error("bad signature")]
    BadSignature,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

/// A verified token's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// First id (broadcast for invitations, participant for participant tokens).
    pub a: String,
    /// Second id.
    pub b: String,
    /// Expiry (Unix seconds).
    pub expires_at: u64,
}

/// Whether `s` starts like a token of `kind`.
pub fn looks_like(kind: Kind, s: &str) -> bool {
    s.strip_prefix(kind.prefix())
        .is_some_and(|r| r.starts_with('.'))
}

fn mac(key: &[u8; 32], body: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(body.as_bytes());
    m
}

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Signs a token of `kind` for ids `a`, `b` until `expires_at` (Unix seconds).
pub fn sign(auth: &weir_auth::Auth, kind: Kind, a: &str, b: &str, expires_at: u64) -> String {
    let body = format!("{}.{a}.{b}.{expires_at}", kind.prefix());
    let tag = mac(&auth.derive_key(kind.purpose()), &body)
        .finalize()
        .into_bytes();
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Verifies a token of `kind` at `now` (Unix seconds).
pub fn verify(
    auth: &weir_auth::Auth,
    kind: Kind,
    token: &str,
    now: u64,
) -> Result<Verified, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let mut parts = body.split('.');
    let (Some(prefix), Some(a), Some(b), Some(exp), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    if prefix != kind.prefix() || !id_ok(a) || !id_ok(b) {
        return Err(TokenError::Malformed);
    }
    let expires_at: u64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Malformed)?;
    mac(&auth.derive_key(kind.purpose()), body)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(Verified {
        a: a.to_string(),
        b: b.to_string(),
        expires_at,
    })
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &[u8]) -> weir_auth::Auth {
        weir_auth::Auth::new(
            weir_store::Store::memory(),
            weir_auth::AuthConfig::new(secret.to_vec()),
        )
    }

    #[test]
    fn signs_and_refuses_forged_tampered_expired() {
        let a = auth(b"one-secret-one-secret-one-secret");
        let t = sign(&a, Kind::Invitation, "bcast", "nonce", 1000);
        assert!(looks_like(Kind::Invitation, &t) && !looks_like(Kind::Participant, &t));
        let v = verify(&a, Kind::Invitation, &t, 999).expect("valid");
        assert_eq!(
            (v.a.as_str(), v.b.as_str(), v.expires_at),
            ("bcast", "nonce", 1000)
        );
        assert_eq!(
            verify(&a, Kind::Invitation, &t, 1000),
            Err(TokenError::Expired)
        );
        // Another server's secret: forged.
        let other = auth(b"two-secret-two-secret-two-secret");
        assert_eq!(
            verify(&other, Kind::Invitation, &t, 1),
            Err(TokenError::BadSignature)
        );
        // Tampered expiry or ids.
        let later = t.replace(".1000.", ".9000.");
        assert_eq!(
            verify(&a, Kind::Invitation, &later, 1),
            Err(TokenError::BadSignature)
        );
        let moved = t.replace("bcast", "bcasx");
        assert_eq!(
            verify(&a, Kind::Invitation, &moved, 1),
            Err(TokenError::BadSignature)
        );
        // An invitation is not a participant token, even with a good MAC.
        assert_eq!(
            verify(&a, Kind::Participant, &t, 1),
            Err(TokenError::Malformed)
        );
        let p = sign(&a, Kind::Participant, "bcast", "nonce", 1000);
        let swapped = p.replacen("wsp1", "wsi1", 1);
        assert_eq!(
            verify(&a, Kind::Invitation, &swapped, 1),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "wsi1",
            "wsi1.a.b.c",
            "wsi1.a.b.x.AAAA",
            "wsi1.a/b.c.1.AAAA",
            &"x".repeat(300),
        ] {
            assert_eq!(
                verify(&a, Kind::Invitation, bad, 1),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
