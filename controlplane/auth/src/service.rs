//! [`Auth`]: register, login, refresh (rotation with replay detection), logout, and
//! access-token verification.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use weir_store::ids::{new_id, now_ms, random_bytes};
use weir_store::{Consume, RefreshToken, Role, Store, User};

use crate::error::{AuthError, Result};
use crate::jwt::JwtKeys;
use crate::password::{self, PasswordParams};
use crate::roles::Principal;

/// Configuration of [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HMAC secret for access tokens (32+ random bytes).
    pub jwt_secret: Vec<u8>,
    /// `iss` claim.
    pub issuer: String,
    /// Access token lifetime (short: 15 minutes by default).
    pub access_ttl: Duration,
    /// Refresh token lifetime (30 days by default).
    pub refresh_ttl: Duration,
    /// Argon2 costs.
    pub password: PasswordParams,
}

impl AuthConfig {
    /// Defaults around a secret.
    pub fn new(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            issuer: "weir".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 86400),
            password: PasswordParams::default(),
        }
    }
}

/// An access token and a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Its expiry (Unix seconds).
    pub access_expires_at: u64,
    /// Opaque refresh token (shown once; only its hash is stored).
    pub refresh_token: String,
    /// Its expiry (Unix milliseconds).
    pub refresh_expires_at: i64,
}

/// The account service.
#[derive(Debug, Clone)]
pub struct Auth {
    store: Store,
    jwt: JwtKeys,
    cfg: AuthConfig,
}

/// Hex SHA-256 of a refresh token: the stored form.
pub fn hash_refresh_token(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// A service over `store`.
    pub fn new(store: Store, cfg: AuthConfig) -> Self {
        let jwt = JwtKeys::new(&cfg.jwt_secret, &cfg.issuer, cfg.access_ttl);
        Self { store, jwt, cfg }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The JWT keys (tests craft tokens with them).
    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// Creates an account with `role`.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        password::check_policy(password)?;
        // Validate before paying for the hash.
        weir_store::normalize_username(username)?;
        weir_store::normalize_email(email)?;
        let phc = password::hash(self.cfg.password, password).await?;
        let user = self.store.create_user(username, email, &phc, role).await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "user registered");
        Ok(user)
    }

    /// Checks credentials and opens a session (a new refresh-token family).
    pub async fn login(&self, login: &str, password: &str) -> Result<(User, TokenPair)> {
        let user = self.store.find_user_by_login(login).await?;
        let phc = match &user {
            Some(u) => u.password_hash.clone(),
            None => self.dummy_hash().await,
        };
        let ok = password::verify(password, &phc).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        let pair = self.issue(&user, &new_id()).await?;
        Ok((user, pair))
    }

    /// Exchanges a refresh token for a new pair. The presented token is spent; presenting
    /// it again revokes every token of its family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<(User, TokenPair)> {
        let hash = hash_refresh_token(refresh_token);
        let token = match self.store.consume_refresh_token(&hash).await? {
            Consume::Consumed(t) => t,
            Consume::Replayed(t) => {
                self.store.revoke_token_family(&t.family_id).await?;
                tracing::warn!(user_id = %t.user_id, "refresh token replayed");
                return Err(AuthError::RefreshReplayed);
            }
            Consume::Unknown => return Err(AuthError::InvalidRefreshToken),
        };
        if token.expires_at <= now_ms()
            || self.store.is_token_family_revoked(&token.family_id).await?
        {
            return Err(AuthError::InvalidRefreshToken);
        }
        let user = self
            .store
            .get_user(&token.user_id)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        let pair = self.issue(&user, &token.family_id).await?;
        Ok((user, pair))
    }

    /// Ends the session of a refresh token: its family is revoked. Unknown tokens are
    /// ignored (logout is idempotent).
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let hash = hash_refresh_token(refresh_token);
        if let Some(t) = self.store.get_refresh_token(&hash).await? {
            self.store.revoke_token_family(&t.family_id).await?;
            self.store.delete_refresh_token(&hash).await?;
        }
        Ok(())
    }

    /// Checks an access token and returns the caller.
    pub fn verify_access(&self, token: &str) -> Result<Principal> {
        let c = self.jwt.verify(token)?;
        Ok(Principal {
            user_id: c.sub,
            username: c.name,
            role: c.role,
        })
    }

    async fn issue(&self, user: &User, family_id: &str) -> Result<TokenPair> {
        let (access_token, access_expires_at) =
            self.jwt.issue(&user.id, &user.username, user.role)?;
        let mut raw = [0u8; 32];
        random_bytes(&mut raw);
        let refresh_token = format!("wrt_{}", URL_SAFE_NO_PAD.encode(raw));
        let now = now_ms();
        let rec = RefreshToken {
            token_hash: hash_refresh_token(&refresh_token),
            user_id: user.id.clone(),
            family_id: family_id.to_string(),
            expires_at: now + self.cfg.refresh_ttl.as_millis() as i64,
            used: false,
            created_at: now,
        };
        self.store.put_refresh_token(&rec).await?;
        Ok(TokenPair {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: rec.expires_at,
        })
    }

    /// A hash to verify against when the login is unknown, so timing does not tell
    /// whether an account exists.
    async fn dummy_hash(&self) -> String {
        static DUMMY: OnceLock<String> = OnceLock::new();
        if let Some(h) = DUMMY.get() {
            return h.clone();
        }
        let h = password::hash(self.cfg.password, "dummy-password-for-timing")
            .await
            .unwrap_or_default();
        DUMMY.get_or_init(|| h).clone()
    }
}
