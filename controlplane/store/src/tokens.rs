//! Refresh tokens (stored by hash) and revoked token families. Both are written with a
//! TTL, so every backend forgets them after their lifetime, and both are ignored once that
//! lifetime has passed even where a backend deletes them late.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::now_ms;
use crate::model::RefreshToken;
use crate::store::{Store, decode, encode};

const TOKENS: &str = "refresh-tokens";
const REVOKED: &str = "revoked-families";

/// What happened when a refresh token was presented.
#[derive(Debug, Clone, PartialEq)]
pub enum Consume {
    /// First use: the token is now spent.
    Consumed(RefreshToken),
    /// The token had already been used: a replay.
    Replayed(RefreshToken),
    /// Unknown token.
    Unknown,
}

#[derive(Serialize, Deserialize)]
struct Revoked {
    revoked_at: i64,
    /// When the revocation may be forgotten (ms); absent in records written before
    /// revocations expired: those never do.
    #[serde(default)]
    expires_at: Option<i64>,
}

/// The TTL of a record that expires at `expires_at` (ms): at least one second, so a
/// record about to expire is still written (and read back as expired).
fn ttl_until(expires_at: i64) -> Duration {
    let left = expires_at.saturating_sub(now_ms()).max(1000);
    Duration::from_millis(u64::try_from(left).unwrap_or(1000))
}

impl Store {
    /// Stores a new refresh token record.
    /// The record expires (is deleted by the backend) at `token.expires_at`.
    pub async fn put_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        let ttl = ttl_until(token.expires_at);
        self.put_json(TOKENS, &token.token_hash, token, Some(ttl))
            .await
    }

    /// Reads a refresh token record by hash; `None` once it expired.
    pub async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let t: Option<RefreshToken> = self.get_json(TOKENS, token_hash).await?;
        Ok(t.filter(|t| t.expires_at > now_ms()))
    }

    /// Atomically marks a token used. Exactly one caller wins `Consumed`; every later use
    /// gets `Replayed` until the token's expiry, then `Unknown`. The spent record keeps
    /// the token's expiry (it is still needed to detect replays until then).
    pub async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consume> {
        loop {
            let Some(raw) = self.kv().get(TOKENS, token_hash).await? else {
                return Ok(Consume::Unknown);
            };
            let mut token: RefreshToken = decode(TOKENS, &raw)?;
            if token.expires_at <= now_ms() {
                return Ok(Consume::Unknown);
            }
            if token.used {
                return Ok(Consume::Replayed(token));
            }
            token.used = true;
            let new = encode(&token)?;
            let ttl = ttl_until(token.expires_at);
            if self
                .kv()
                .cas_expiring(TOKENS, token_hash, Some(&raw), &new, ttl)
                .await?
            {
                return Ok(Consume::Consumed(token));
            }
        }
    }

    /// Deletes a token record (logout).
    pub async fn delete_refresh_token(&self, token_hash: &str) -> Result<bool> {
        self.kv().delete(TOKENS, token_hash).await
    }

    /// Revokes every token of a family, for `ttl`: pass the refresh-token lifetime, after
    /// which no token of the family can be valid anyway, and the record is forgotten.
    pub async fn revoke_token_family(&self, family_id: &str, ttl: Duration) -> Result<()> {
        tracing::warn!(family_id, "refresh token family revoked");
        let now = now_ms();
        let rec = Revoked {
            revoked_at: now,
            expires_at: Some(
                now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            ),
        };
        self.put_json(
            REVOKED,
            family_id,
            &rec,
            Some(ttl.max(Duration::from_secs(1))),
        )
        .await
    }

    /// Whether a family was revoked (and the revocation has not expired).
    pub async fn is_token_family_revoked(&self, family_id: &str) -> Result<bool> {
        let rec: Option<Revoked> = self.get_json(REVOKED, family_id).await?;
        Ok(rec.is_some_and(|r| r.expires_at.is_none_or(|at| at > now_ms())))
    }

    /// Deletes what the backend keeps after its TTL passed (see [`crate::Kv::purge_expired`]);
    /// returns how many entries went.
    pub async fn purge_expired(&self) -> Result<usize> {
        self.kv().purge_expired().await
    }
}
