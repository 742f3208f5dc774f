//! [`Auth`]: register, login, refresh (rotation with replay detection), logout, and
//! access-token verification.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use weir_store::ids::{new_id, now_ms, random_bytes};
use weir_store::{Consume, RefreshToken, Role, Store, User};

use crate::error::{AuthError, Result};
use crate::jwt::{Claims, JwtKeys};
use crate::password::{self, HashPool, PasswordParams, PoolConfig};
use crate::roles::Principal;
use crate::throttle::{LoginThrottle, ThrottleConfig};

/// Configuration of [`Auth`]. `Debug` leaves the JWT secret out.
#[derive(Clone)]
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
    /// Argon2 workers and queue.
    pub hash_pool: PoolConfig,
    /// Per-account throttle of failed logins.
    pub login_throttle: ThrottleConfig,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("password", &self.password)
            .field("hash_pool", &self.hash_pool)
            .field("login_throttle", &self.login_throttle)
            .finish()
    }
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
            hash_pool: PoolConfig::default(),
            login_throttle: ThrottleConfig::default(),
        }
    }
}

/// An access token and a refresh token. `Debug` leaves both tokens out.
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"<redacted>")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// The account service. Cheap to clone (clones share the hash pool and the throttle).
#[derive(Debug, Clone)]
pub struct Auth {
    store: Store,
    jwt: JwtKeys,
    cfg: AuthConfig,
    pool: HashPool,
    throttle: Arc<LoginThrottle>,
    /// Hash of a throwaway password with this service's costs (see `dummy_hash`).
    dummy: Arc<tokio::sync::OnceCell<String>>,
}

/// The throttle key of a login attempt: the account when it exists (so its username and
/// e-mail share one count), else a digest of the normalized login (unknown logins are
/// throttled alike, so throttling does not tell which accounts exist).
fn throttle_key(login: &str, user: Option<&User>) -> String {
    match user {
        Some(u) => format!("user:{}", u.id),
        None => format!("login:{}", hash_refresh_token(&login.trim().to_lowercase())),
    }
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
        Self {
            pool: HashPool::new(cfg.hash_pool),
            throttle: Arc::new(LoginThrottle::new(cfg.login_throttle)),
            dummy: Arc::default(),
            store,
            jwt,
            cfg,
        }
    }

    /// The argon2 pool.
    pub fn hash_pool(&self) -> &HashPool {
        &self.pool
    }

    /// The per-account login throttle.
    pub fn login_throttle(&self) -> &LoginThrottle {
        &self.throttle
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A 32-byte key for `purpose` derived from the JWT secret (HMAC-SHA256 of the
    /// purpose under the secret): other signed tokens of the control plane (studio
    /// invitations and participant tokens) use it, so every control plane sharing
    /// `WEIR_JWT_SECRET` verifies them and none of them is an access token.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.cfg.jwt_secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"weir derived key\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
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
        let phc = self.pool.hash(self.cfg.password, password).await?;
        let user = self.store.create_user(username, email, &phc, role).await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "user registered");
        Ok(user)
    }

    /// Checks credentials and opens a session (a new refresh-token family). Failed
    /// attempts on one account are throttled ([`AuthError::TooManyAttempts`]) before any
    /// password is checked; a success clears the account's count.
    pub async fn login(&self, login: &str, password: &str) -> Result<(User, TokenPair)> {
        let user = self.store.find_user_by_login(login).await?;
        let key = throttle_key(login, user.as_ref());
        self.throttle
            .begin(&key)
            .map_err(|retry_after| AuthError::TooManyAttempts { retry_after })?;
        let phc = match &user {
            Some(u) => Ok(u.password_hash.clone()),
            None => self.dummy_hash().await,
        };
        let checked = match phc {
            Ok(phc) => self.pool.verify(password, &phc).await,
            Err(e) => Err(e),
        };
        let ok = match checked {
            Ok(ok) => ok,
            Err(e) => {
                // Busy or broken: not the caller's failure.
                self.throttle.cancel(&key);
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if ok => u,
            _ => {
                tracing::info!(throttle_key = %key, "failed login");
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.throttle.succeeded(&key);
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
                self.store
                    .revoke_token_family(&t.family_id, self.cfg.refresh_ttl)
                    .await?;
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
            self.store
                .revoke_token_family(&t.family_id, self.cfg.refresh_ttl)
                .await?;
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

    /// Checks an access token and returns its claims (expiry and session included).
    pub fn verify_access_claims(&self, token: &str) -> Result<Claims> {
        self.jwt.verify(token)
    }

    /// Whether the session (`sid` claim) of an access token was ended by logout or by
    /// refresh-token reuse.
    pub async fn is_session_revoked(&self, sid: &str) -> Result<bool> {
        Ok(self.store.is_token_family_revoked(sid).await?)
    }

    async fn issue(&self, user: &User, family_id: &str) -> Result<TokenPair> {
        let (access_token, access_expires_at) =
            self.jwt
                .issue_for_session(&user.id, &user.username, user.role, Some(family_id))?;
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
    /// whether an account exists. Made once per service, with its own costs.
    async fn dummy_hash(&self) -> Result<String> {
        self.dummy
            .get_or_try_init(|| {
                self.pool
                    .hash(self.cfg.password, "dummy-password-for-timing")
            })
            .await
            .cloned()
    }
}
