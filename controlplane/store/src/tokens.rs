//! Refresh tokens (stored by hash) and revoked token families.

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
}

impl Store {
    /// Stores a new refresh token record.
    pub async fn put_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        self.put_json(TOKENS, &token.token_hash, token, None).await
    }

    /// Reads a refresh token record by hash.
    pub async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        self.get_json(TOKENS, token_hash).await
    }

    /// Atomically marks a token used. Exactly one caller wins `Consumed`; every later use
    /// gets `Replayed`.
    pub async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consume> {
        loop {
            let Some(raw) = self.kv().get(TOKENS, token_hash).await? else {
                return Ok(Consume::Unknown);
            };
            let mut token: RefreshToken = decode(TOKENS, &raw)?;
            if token.used {
                return Ok(Consume::Replayed(token));
            }
            token.used = true;
            let new = encode(&token)?;
            if self
                .kv()
                .cas(TOKENS, token_hash, Some(&raw), Some(&new))
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

    /// Revokes every token of a family.
    pub async fn revoke_token_family(&self, family_id: &str) -> Result<()> {
        tracing::warn!(family_id, "refresh token family revoked");
        let rec = Revoked {
            revoked_at: now_ms(),
        };
        self.put_json(REVOKED, family_id, &rec, None).await
    }

    /// Whether a family was revoked.
    pub async fn is_token_family_revoked(&self, family_id: &str) -> Result<bool> {
        Ok(self.kv().get(REVOKED, family_id).await?.is_some())
    }
}
