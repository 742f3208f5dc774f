//! HS256 JWT access tokens.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use weir_store::Role;

use crate::error::{AuthError, Result};

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Global role at issue time.
    pub role: Role,
    /// Username.
    pub name: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Session: the refresh-token family of the login that issued it (absent in tokens
    /// from before sessions were tracked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl JwtKeys {
    /// Keys from a shared secret (at least 32 bytes recommended), an issuer name and the
    /// token lifetime.
    pub fn new(secret: &[u8], issuer: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            ttl,
        }
    }

    /// Issues a token; returns it with its expiry (Unix seconds).
    pub fn issue(&self, user_id: &str, username: &str, role: Role) -> Result<(String, u64)> {
        self.issue_for_session(user_id, username, role, None)
    }

    /// Issues a token tied to a session (`sid`); returns it with its expiry (Unix seconds).
    pub fn issue_for_session(
        &self,
        user_id: &str,
        username: &str,
        role: Role,
        sid: Option<&str>,
    ) -> Result<(String, u64)> {
        let iat = now_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            name: username.to_string(),
            iss: self.issuer.clone(),
            iat,
            exp: iat + self.ttl.as_secs(),
            sid: sid.map(str::to_string),
        };
        self.sign(&claims).map(|t| (t, claims.exp))
    }

    /// Signs arbitrary claims (tests build expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc)
            .map_err(|_| AuthError::InvalidToken)
    }

    /// The leeway allowed on `exp` (seconds): a token is refused this long after it expired.
    pub fn leeway(&self) -> u64 {
        self.validation.leeway
    }

    /// Checks signature, algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        match jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(AuthError::ExpiredToken)
            }
            Err(_) => Err(AuthError::InvalidToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_forgery_expiry() {
        let k = JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            "weir",
            Duration::from_secs(60),
        );
        let (t, _) = k.issue("u1", "alice", Role::Owner).expect("issue");
        let c = k.verify(&t).expect("verify");
        assert_eq!((c.sub.as_str(), c.role), ("u1", Role::Owner));
        let other = JwtKeys::new(
            b"another-secret-another-secret-xx",
            "weir",
            Duration::from_secs(60),
        );
        let (forged, _) = other.issue("u1", "alice", Role::Admin).expect("issue");
        assert!(matches!(k.verify(&forged), Err(AuthError::InvalidToken)));
        let mut old = c.clone();
        old.exp = 1000;
        old.iat = 900;
        let expired = k.sign(&old).expect("sign");
        assert!(matches!(k.verify(&expired), Err(AuthError::ExpiredToken)));
        assert!(matches!(k.verify("garbage"), Err(AuthError::InvalidToken)));
        // alg=none is refused.
        let none = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            t.split('.').nth(1).expect("payload")
        );
        assert!(k.verify(&none).is_err());
    }
}
