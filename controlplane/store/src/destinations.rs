//! Relay destinations; their stream keys are sealed with the store's [`crate::SecretBox`].

use crate::channels::check_text;
use crate::child::DESTINATIONS;
use crate::error::{Result, StoreError};
use crate::ids::{is_safe_id, new_id, now_ms};
use crate::model::Destination;
use crate::store::Store;

/// Fields of a destination to change; `None` keeps the current value. `Debug` leaves
/// the stream key out.
#[derive(Default, Clone)]
pub struct DestinationPatch {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New stream key (plaintext; sealed before storage).
    pub stream_key: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for DestinationPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationPatch")
            .field("name", &self.name)
            .field("url", &self.url)
            .field(
                "stream_key",
                &self.stream_key.as_ref().map(|_| crate::model::REDACTED),
            )
            .field("enabled", &self.enabled)
            .finish()
    }
}

fn check_url(url: &str) -> Result<()> {
    let ok = ["rtmp://", "rtmps://", "srt://", "http://", "https://"]
        .iter()
        .any(|p| url.starts_with(p))
        && url.len() <= 2048
        && !url.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "destination URL must be rtmp(s)://, srt:// or http(s):// without spaces".into(),
        ))
    }
}

impl Store {
    /// Adds a destination to a channel.
    pub async fn create_destination(
        &self,
        channel_id: &str,
        name: &str,
        platform: &str,
        url: &str,
        stream_key: &str,
    ) -> Result<Destination> {
        check_text("name", name, 100)?;
        check_text("stream key", stream_key, 1024)?;
        if !is_safe_id(platform) || platform.len() > 32 {
            return Err(StoreError::Invalid("bad platform".into()));
        }
        check_url(url)?;
        let d = Destination {
            id: new_id(),
            channel_id: channel_id.to_string(),
            name: name.to_string(),
            platform: platform.to_ascii_lowercase(),
            url: url.to_string(),
            stream_key_sealed: self.secrets().seal(stream_key)?,
            enabled: true,
            created_at: now_ms(),
        };
        self.put_child(DESTINATIONS, channel_id, &d.id, &d).await?;
        Ok(d)
    }

    /// A destination by id.
    pub async fn get_destination(&self, id: &str) -> Result<Option<Destination>> {
        self.get_child(DESTINATIONS, id).await
    }

    /// A channel's destinations, oldest first.
    pub async fn list_destinations(&self, channel_id: &str) -> Result<Vec<Destination>> {
        self.list_children(DESTINATIONS, channel_id).await
    }

    /// Changes a destination.
    pub async fn update_destination(
        &self,
        id: &str,
        patch: DestinationPatch,
    ) -> Result<Destination> {
        if let Some(u) = &patch.url {
            check_url(u)?;
        }
        if let Some(n) = &patch.name {
            check_text("name", n, 100)?;
        }
        let sealed = match &patch.stream_key {
            Some(k) => {
                check_text("stream key", k, 1024)?;
                Some(self.secrets().seal(k)?)
            }
            None => None,
        };
        self.update_child(DESTINATIONS, id, |d: &mut Destination| {
            if let Some(n) = &patch.name {
                d.name = n.clone();
            }
            if let Some(u) = &patch.url {
                d.url = u.clone();
            }
            if let Some(s) = &sealed {
                d.stream_key_sealed = s.clone();
            }
            if let Some(e) = patch.enabled {
                d.enabled = e;
            }
            Ok(())
        })
        .await
    }

    /// Removes a destination.
    pub async fn delete_destination(&self, id: &str) -> Result<bool> {
        self.delete_child(DESTINATIONS, id).await
    }

    /// Decrypts a destination's stream key (for the relay; never log it).
    pub fn destination_stream_key(&self, d: &Destination) -> Result<String> {
        self.secrets().open(&d.stream_key_sealed)
    }
}
