//! Channels, their unique slugs, owners and members.

use crate::child::{DESTINATIONS, KEYS, RECORDINGS};
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::model::{
    Channel, ChannelMember, Destination, RecordSetting, Recording, Role, StreamKeyMeta, Transcode,
};
use crate::store::Store;

const CHANNELS: &str = "channels";
const SLUGS: &str = "channel-slugs";

fn owner_bucket(user_id: &str) -> String {
    format!("owner-channels/{user_id}")
}

fn member_bucket(user_id: &str) -> String {
    format!("member-channels/{user_id}")
}

/// Normalises and checks a slug: 3–48 of `[a-z0-9_-]`.
pub fn normalize_slug(slug: &str) -> Result<String> {
    let s = slug.trim().to_ascii_lowercase();
    if s.len() < 3 || s.len() > 48 || !is_safe_id(&s) || s.contains('.') {
        return Err(StoreError::Invalid(
            "slug must be 3-48 characters of a-z, 0-9, '_', '-'".into(),
        ));
    }
    Ok(s)
}

/// Checks a free-text field's length.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Creates a channel owned by `owner_id`; `Conflict` when the slug is taken.
    pub async fn create_channel(
        &self,
        owner_id: &str,
        slug: &str,
        title: &str,
        description: &str,
    ) -> Result<Channel> {
        let slug = normalize_slug(slug)?;
        check_text("title", title, 200)?;
        check_text("description", description, 5000)?;
        if !is_safe_id(owner_id) {
            return Err(StoreError::Invalid("bad owner id".into()));
        }
        let now = now_ms();
        let channel = Channel {
            id: new_id(),
            owner_id: owner_id.to_string(),
            slug: slug.clone(),
            title: title.to_string(),
            description: description.to_string(),
            members: Vec::new(),
            transcode: Transcode::default(),
            record: RecordSetting::default(),
            created_at: now,
            updated_at: now,
        };
        if !self.insert_new(SLUGS, &slug, &channel.id).await? {
            return Err(StoreError::Conflict("slug is taken".into()));
        }
        self.put_json(CHANNELS, &channel.id, &channel, None).await?;
        self.put_json(&owner_bucket(owner_id), &channel.id, &channel.id, None)
            .await?;
        Ok(channel)
    }

    /// A channel by id.
    pub async fn get_channel(&self, id: &str) -> Result<Option<Channel>> {
        if !is_safe_id(id) {
            return Ok(None);
        }
        self.get_json(CHANNELS, id).await
    }

    /// A channel by slug.
    pub async fn channel_by_slug(&self, slug: &str) -> Result<Option<Channel>> {
        let Ok(slug) = normalize_slug(slug) else {
            return Ok(None);
        };
        match self.get_json::<String>(SLUGS, &slug).await? {
            Some(id) => self.get_channel(&id).await,
            None => Ok(None),
        }
    }

    /// Updates title and/or description.
    pub async fn update_channel(
        &self,
        id: &str,
        title: Option<&str>,
        description: Option<&str>,
    ) -> Result<Channel> {
        if let Some(t) = title {
            check_text("title", t, 200)?;
        }
        if let Some(d) = description {
            check_text("description", d, 5000)?;
        }
        self.update_json(CHANNELS, id, "channel", |c: &mut Channel| {
            if let Some(t) = title {
                c.title = t.to_string();
            }
            if let Some(d) = description {
                c.description = d.to_string();
            }
            c.updated_at = now_ms();
            Ok(())
        })
        .await
    }

    /// Sets whether the channel's broadcasts are transcoded (from their next publish on).
    pub async fn set_channel_transcode(&self, id: &str, transcode: Transcode) -> Result<Channel> {
        self.update_json(CHANNELS, id, "channel", |c: &mut Channel| {
            c.transcode = transcode;
            c.updated_at = now_ms();
            Ok(())
        })
        .await
    }

    /// Sets whether the channel's broadcasts are recorded (from their next publish on).
    pub async fn set_channel_record(&self, id: &str, record: RecordSetting) -> Result<Channel> {
        self.update_json(CHANNELS, id, "channel", |c: &mut Channel| {
            c.record = record;
            c.updated_at = now_ms();
            Ok(())
        })
        .await
    }

    /// Every channel (admin views), oldest first.
    pub async fn list_channels(&self) -> Result<Vec<Channel>> {
        self.list_json(CHANNELS).await
    }

    /// Channels owned by a user, oldest first.
    pub async fn channels_owned_by(&self, user_id: &str) -> Result<Vec<Channel>> {
        self.channels_in(&owner_bucket(user_id), user_id).await
    }

    /// Channels where a user is moderator or guest, oldest first.
    pub async fn channels_with_member(&self, user_id: &str) -> Result<Vec<Channel>> {
        self.channels_in(&member_bucket(user_id), user_id).await
    }

    async fn channels_in(&self, bucket: &str, user_id: &str) -> Result<Vec<Channel>> {
        if !is_safe_id(user_id) {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self.list_json(bucket).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.get_channel(&id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Grants `role` (`Moderator` or `Guest`) on a channel to a user.
    pub async fn set_channel_member(
        &self,
        channel_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Channel> {
        if !matches!(role, Role::Moderator | Role::Guest) {
            return Err(StoreError::Invalid(
                "channel members are moderators or guests".into(),
            ));
        }
        if !is_safe_id(user_id) {
            return Err(StoreError::Invalid("bad user id".into()));
        }
        let ch = self
            .update_json(CHANNELS, channel_id, "channel", |c: &mut Channel| {
                if c.owner_id == user_id {
                    return Err(StoreError::Invalid("the owner cannot be a member".into()));
                }
                c.members.retain(|m| m.user_id != user_id);
                c.members.push(ChannelMember {
                    user_id: user_id.to_string(),
                    role,
                });
                c.updated_at = now_ms();
                Ok(())
            })
            .await?;
        self.put_json(&member_bucket(user_id), channel_id, &channel_id, None)
            .await?;
        Ok(ch)
    }

    /// Removes a member.
    pub async fn remove_channel_member(&self, channel_id: &str, user_id: &str) -> Result<Channel> {
        let ch = self
            .update_json(CHANNELS, channel_id, "channel", |c: &mut Channel| {
                c.members.retain(|m| m.user_id != user_id);
                c.updated_at = now_ms();
                Ok(())
            })
            .await?;
        if is_safe_id(user_id) {
            self.kv()
                .delete(&member_bucket(user_id), channel_id)
                .await?;
        }
        Ok(ch)
    }

    /// Deletes a channel: its indexes, destinations, recordings index and entitlement go,
    /// its follows end, its stream keys are revoked. Stream history stays (it is history).
    pub async fn delete_channel(&self, id: &str) -> Result<bool> {
        let Some(ch) = self.get_channel(id).await? else {
            return Ok(false);
        };
        let keys: Vec<StreamKeyMeta> = self.list_children(KEYS, id).await?;
        for k in keys.iter().filter(|k| k.revoked_at.is_none()) {
            self.revoke_stream_key(&k.key_id).await?;
        }
        let dests: Vec<Destination> = self.list_children(DESTINATIONS, id).await?;
        for d in dests {
            self.delete_child(DESTINATIONS, &d.id).await?;
        }
        let recs: Vec<Recording> = self.list_children(RECORDINGS, id).await?;
        for r in recs {
            self.delete_child(RECORDINGS, &r.id).await?;
        }
        self.delete_entitlement(id).await?;
        self.delete_follows(id).await?;
        for m in &ch.members {
            self.kv().delete(&member_bucket(&m.user_id), id).await?;
        }
        self.kv().delete(&owner_bucket(&ch.owner_id), id).await?;
        self.kv().delete(SLUGS, &ch.slug).await?;
        self.kv().delete(CHANNELS, id).await
    }
}
