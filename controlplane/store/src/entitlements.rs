//! Playback entitlements per channel, and subscribers.

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::model::Entitlement;
use crate::store::Store;

const ENTITLEMENTS: &str = "entitlements";

fn subscribers(channel_id: &str) -> String {
    format!("subscribers/{channel_id}")
}

impl Store {
    /// A channel's policy (public by default).
    pub async fn get_entitlement(&self, channel_id: &str) -> Result<Entitlement> {
        if !is_safe_id(channel_id) {
            return Err(StoreError::NotFound("channel"));
        }
        Ok(self
            .get_json(ENTITLEMENTS, channel_id)
            .await?
            .unwrap_or_else(|| Entitlement::public(channel_id)))
    }

    /// Replaces a channel's policy.
    pub async fn set_entitlement(&self, mut e: Entitlement) -> Result<Entitlement> {
        if e.geo_allow.len() > 300
            || e.geo_allow
                .iter()
                .any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(StoreError::Invalid(
                "geo_allow holds two-letter country codes".into(),
            ));
        }
        if e.signed_url_ttl_secs == 0 || e.signed_url_ttl_secs > 7 * 86400 {
            return Err(StoreError::Invalid(
                "signed URL lifetime must be 1 s to 7 days".into(),
            ));
        }
        e.geo_allow = e.geo_allow.iter().map(|c| c.to_ascii_uppercase()).collect();
        e.updated_at = now_ms();
        let id = e.channel_id.clone();
        self.put_json(ENTITLEMENTS, &id, &e, None).await?;
        Ok(e)
    }

    pub(crate) async fn delete_entitlement(&self, channel_id: &str) -> Result<()> {
        self.kv().delete(ENTITLEMENTS, channel_id).await?;
        Ok(())
    }

    /// Adds a subscriber to a channel.
    pub async fn add_subscriber(&self, channel_id: &str, user_id: &str) -> Result<()> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Err(StoreError::Invalid("bad id".into()));
        }
        self.put_json(&subscribers(channel_id), user_id, &now_ms(), None)
            .await
    }

    /// Removes a subscriber.
    pub async fn remove_subscriber(&self, channel_id: &str, user_id: &str) -> Result<bool> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Ok(false);
        }
        self.kv().delete(&subscribers(channel_id), user_id).await
    }

    /// Whether a user subscribes to a channel.
    pub async fn is_subscriber(&self, channel_id: &str, user_id: &str) -> Result<bool> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Ok(false);
        }
        Ok(self
            .kv()
            .get(&subscribers(channel_id), user_id)
            .await?
            .is_some())
    }
}
