//! Follows: a user follows a channel (free, unlike a subscription). Followers-only chat
//! asks for one, optionally of a minimum age; pages show the channel's follower count.
//!
//! Layout: `followers/<channel>` → user id → follow time (ms), `following/<user>` →
//! channel id → follow time, and one counter per channel in `follower-counts`, moved by
//! compare-and-swap when a follow is created or removed (so counting never lists a
//! bucket). The three writes are not one transaction: a crash between them can leave the
//! counter one off, never a follow half-made for chat (the `followers/` entry decides).

use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, now_ms};
use crate::store::{Store, decode};

const COUNTS: &str = "follower-counts";
/// Attempts of a counter update before giving up (concurrent follows of one channel).
const COUNT_RETRIES: usize = 32;

fn followers(channel_id: &str) -> String {
    format!("followers/{channel_id}")
}

fn following(user_id: &str) -> String {
    format!("following/{user_id}")
}

impl Store {
    /// `user_id` follows `channel_id`; returns when the follow began (the first time
    /// stays: following again keeps the old date).
    pub async fn follow(&self, channel_id: &str, user_id: &str) -> Result<i64> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Err(StoreError::Invalid("bad id".into()));
        }
        let now = now_ms();
        if self
            .insert_new(&followers(channel_id), user_id, &now)
            .await?
        {
            self.put_json(&following(user_id), channel_id, &now, None)
                .await?;
            self.add_to_count(channel_id, 1).await?;
            return Ok(now);
        }
        Ok(self.follow_since(channel_id, user_id).await?.unwrap_or(now))
    }

    /// Ends a follow; true when there was one.
    pub async fn unfollow(&self, channel_id: &str, user_id: &str) -> Result<bool> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Ok(false);
        }
        let existed = self.kv().delete(&followers(channel_id), user_id).await?;
        self.kv().delete(&following(user_id), channel_id).await?;
        if existed {
            self.add_to_count(channel_id, -1).await?;
        }
        Ok(existed)
    }

    /// When `user_id` began following `channel_id` (Unix ms), if it does.
    pub async fn follow_since(&self, channel_id: &str, user_id: &str) -> Result<Option<i64>> {
        if !is_safe_id(channel_id) || !is_safe_id(user_id) {
            return Ok(None);
        }
        self.get_json(&followers(channel_id), user_id).await
    }

    /// How many users follow `channel_id`.
    pub async fn follower_count(&self, channel_id: &str) -> Result<u64> {
        if !is_safe_id(channel_id) {
            return Ok(0);
        }
        Ok(self.get_json(COUNTS, channel_id).await?.unwrap_or(0))
    }

    /// The channels `user_id` follows, with when each follow began, newest first.
    pub async fn followed_channels(&self, user_id: &str) -> Result<Vec<(String, i64)>> {
        if !is_safe_id(user_id) {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        for (channel, raw) in self.kv().list(&following(user_id)).await? {
            rows.push((channel, decode(&following(user_id), &raw)?));
        }
        rows.sort_by_key(|(_, since)| std::cmp::Reverse(*since));
        Ok(rows)
    }

    /// Removes a channel's follows (the channel is being deleted).
    pub(crate) async fn delete_follows(&self, channel_id: &str) -> Result<()> {
        for (user, _) in self.kv().list(&followers(channel_id)).await? {
            self.kv().delete(&following(&user), channel_id).await?;
            self.kv().delete(&followers(channel_id), &user).await?;
        }
        self.kv().delete(COUNTS, channel_id).await?;
        Ok(())
    }

    async fn add_to_count(&self, channel_id: &str, delta: i64) -> Result<()> {
        for _ in 0..COUNT_RETRIES {
            let raw = self.kv().get(COUNTS, channel_id).await?;
            let current: i64 = match &raw {
                Some(r) => decode(COUNTS, r)?,
                None => 0,
            };
            let next = (current + delta).max(0).to_string();
            if self
                .kv()
                .cas(COUNTS, channel_id, raw.as_deref(), Some(next.as_bytes()))
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(format!(
            "follower count of {channel_id} kept changing"
        )))
    }
}
