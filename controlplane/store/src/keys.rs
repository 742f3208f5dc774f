//! Stream key metadata and revocations (the key material itself is never stored: the data
//! plane checks signed keys and consults the revocation list).

use serde::{Deserialize, Serialize};

use crate::child::KEYS;
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::model::StreamKeyMeta;
use crate::store::Store;

const REVOCATIONS: &str = "key-revocations";

/// A revoked key, as the data plane reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    /// Key id.
    pub key_id: String,
    /// Channel.
    pub channel_id: String,
    /// When.
    pub revoked_at: i64,
}

impl Store {
    /// Records that a key was issued for a channel.
    pub async fn record_stream_key(&self, channel_id: &str, key_id: &str) -> Result<StreamKeyMeta> {
        if !is_safe_id(key_id) {
            return Err(StoreError::Invalid("bad key id".into()));
        }
        let meta = StreamKeyMeta {
            key_id: key_id.to_string(),
            channel_id: channel_id.to_string(),
            created_at: now_ms(),
            revoked_at: None,
        };
        self.put_child(KEYS, channel_id, key_id, &meta).await?;
        Ok(meta)
    }

    /// A key's metadata.
    pub async fn get_stream_key(&self, key_id: &str) -> Result<Option<StreamKeyMeta>> {
        self.get_child(KEYS, key_id).await
    }

    /// A channel's keys, oldest first (revoked ones included).
    pub async fn list_stream_keys(&self, channel_id: &str) -> Result<Vec<StreamKeyMeta>> {
        self.list_children(KEYS, channel_id).await
    }

    /// Revokes a key (idempotent) and publishes it on the revocation list.
    pub async fn revoke_stream_key(&self, key_id: &str) -> Result<StreamKeyMeta> {
        let now = now_ms();
        let meta = self
            .update_child(KEYS, key_id, |m: &mut StreamKeyMeta| {
                m.revoked_at.get_or_insert(now);
                Ok(())
            })
            .await?;
        let rev = Revocation {
            key_id: key_id.to_string(),
            channel_id: meta.channel_id.clone(),
            revoked_at: meta.revoked_at.unwrap_or(now),
        };
        self.put_json(REVOCATIONS, key_id, &rev, None).await?;
        Ok(meta)
    }

    /// Puts a key id on the revocation list without key metadata (studio participants'
    /// keys are not channel keys); idempotent.
    pub(crate) async fn put_revocation(&self, key_id: &str, owner: &str) -> Result<()> {
        if !is_safe_id(key_id) {
            return Err(StoreError::Invalid("bad key id".into()));
        }
        if self.kv().get(REVOCATIONS, key_id).await?.is_some() {
            return Ok(());
        }
        let rev = Revocation {
            key_id: key_id.to_string(),
            channel_id: owner.to_string(),
            revoked_at: now_ms(),
        };
        self.put_json(REVOCATIONS, key_id, &rev, None).await
    }

    /// Whether a key id is revoked.
    pub async fn is_stream_key_revoked(&self, key_id: &str) -> Result<bool> {
        if !is_safe_id(key_id) {
            return Ok(true);
        }
        Ok(self.kv().get(REVOCATIONS, key_id).await?.is_some())
    }

    /// Every revocation (the data plane syncs this list).
    pub async fn list_revocations(&self) -> Result<Vec<Revocation>> {
        self.list_json(REVOCATIONS).await
    }
}
